//! Table 6: the vocabulary search for a blank in the middle of a 12-token sentence, in words
//! settled per second, with the pruning and without it; and the whole vocabulary on request.

use std::time::Instant;

use super::super::fatal::Fatal;
use crate::analysis::search::Budget;
use crate::analysis::stats::ViewOptions;
use crate::engine::fill::{FillRequest, Filler};
use crate::model::Model;

const SENTENCE: &str = "The old ____ sat quietly by the warm fire all evening.";

pub fn table(model: &Model, view: ViewOptions, full_vocabulary: bool) -> Result<(), Fatal> {
    println!(
        "6. vocabulary search: {SENTENCE:?} ({} tokens), words only (no shortlist)",
        model.tokenize(SENTENCE).len()
    );
    println!("search               words  scored    seconds  words/s   best");
    let mut main = model.session().map_err(|e| Fatal::other(e.to_string()))?;
    let mut filler = Filler::new(model);
    let mut run = |label: &str, budget: Budget, prune: bool| -> Result<(), Fatal> {
        let req = FillRequest {
            text: SENTENCE.into(),
            user_candidates: Vec::new(),
            n_candidates: 0,
            view,
            search: budget,
            ask: false,
            word_list: None,
            prune,
        };
        let t = Instant::now();
        let r = filler
            .fill(&mut main, &req, &|| false, &mut |_| {})
            .map_err(|e| Fatal::other(e.to_string()))?;
        let secs = t.elapsed().as_secs_f64();
        let b = &r.blanks[0];
        let (searched, scored, complete) = b
            .coverage
            .map_or((0, 0, false), |c| (c.searched, c.scored, c.complete));
        println!(
            "{label:<20} {searched:>6} {scored:>7} {secs:>10.1} {:>8.1}   {}{}",
            searched as f64 / secs,
            b.candidates.first().map_or("-", |c| c.text.as_str()),
            if complete { " (complete)" } else { "" }
        );
        Ok(())
    };
    run("300, pruning", Budget::Words(300), true)?;
    run("300, no pruning", Budget::Words(300), false)?;
    if full_vocabulary {
        run("all, pruning", Budget::All, true)?;
    }
    Ok(())
}
