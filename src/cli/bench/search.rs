//! Table 6: the vocabulary search for a blank, in words settled per second, with the first
//! bounds from shared-prefix fan-outs and word by word, with the pruning and without it; and
//! the whole vocabulary on request (README's sentence and a blank at the very start).

use std::time::Instant;

use super::super::fatal::Fatal;
use crate::analysis::search::Budget;
use crate::analysis::stats::ViewOptions;
use crate::engine::fill::{FillRequest, Filler};
use crate::model::Model;

const SENTENCE: &str = "The old ____ sat quietly by the warm fire all evening.";
const README: &str = "The ____ rises in the east and sets in the west.";
const CHEF: &str = "The chef seasoned the soup with a pinch of ____.";
const BOX: &str = "They named the dog ____.";
const START: &str = "____ is the largest planet in our solar system.";

pub fn table(model: &Model, view: ViewOptions, full_vocabulary: bool) -> Result<(), Fatal> {
    println!(
        "6. vocabulary search, words only (no shortlist); first bounds: shared prefix / per word"
    );
    println!(
        "{:<52} {:<22} {:>6} {:>7} {:>9} {:>8}   best",
        "blank", "search", "words", "scored", "seconds", "words/s"
    );
    let mut main = model.session().map_err(|e| Fatal::other(e.to_string()))?;
    let mut filler = Filler::new(model);
    let mut run = |text: &str, budget: Budget, prune: bool, shared: bool| -> Result<(), Fatal> {
        let req = FillRequest {
            text: text.into(),
            user_candidates: Vec::new(),
            n_candidates: 0,
            view,
            search: budget,
            ask: false,
            word_list: None,
            prune,
            shared_prefix: shared,
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
        // The way the words went (a blank far from the end goes word by word either way).
        let used = b.coverage.map_or("-", |c| match c.first_bounds {
            crate::analysis::search::FirstBoundsUsed::SharedPrefix => "shared prefix",
            crate::analysis::search::FirstBoundsUsed::PerWord => "per word",
        });
        let label = format!(
            "{budget}, {used}{}",
            if prune { "" } else { ", no pruning" }
        );
        println!(
            "{:<52} {label:<22} {searched:>6} {scored:>7} {secs:>9.1} {:>8.1}   {}{}",
            format!("{text:?}"),
            searched as f64 / secs,
            b.candidates.first().map_or("-".to_owned(), |c| format!(
                "{} {:.4}",
                c.text, c.sentence_logprob
            )),
            if complete { " (complete)" } else { "" }
        );
        Ok(())
    };
    run(SENTENCE, Budget::Words(300), true, true)?;
    run(SENTENCE, Budget::Words(300), false, true)?;
    run(CHEF, Budget::Words(2000), true, true)?;
    for shared in [true, false] {
        run(BOX, Budget::Words(2000), true, shared)?;
    }
    run(README, Budget::Words(2000), true, true)?;
    run(START, Budget::Words(2000), true, true)?;
    if full_vocabulary {
        run(CHEF, Budget::All, true, true)?;
        for shared in [true, false] {
            run(BOX, Budget::All, true, shared)?;
        }
        run(README, Budget::All, true, true)?;
        run(START, Budget::All, true, true)?;
    }
    Ok(())
}
