//! Table 11: attention. What `score --attention` (and `--attention-full`) adds to `score` on
//! the same texts, a fresh process each run, interleaved, median of 3; and the explorer
//! panel's latency: one position's attention of a text already evaluated (a decode of the text
//! with every `kq_soft_max` read and digested), and then of the position before it (whole rows
//! kept around the selection), median of 5, at 12, 256 and 1,024 tokens.

use std::time::Instant;

use super::super::fatal::Fatal;
use super::super::settings::Settings;
use super::pairs::agreement_sentences;
use super::timing::{median, ms, score_rounds, text_of};
use crate::engine::attention::Attentions;
use crate::model::Model;

const RUNS: usize = 3;

pub fn table(settings: &Settings, model: &Model) -> Result<(), Fatal> {
    let fail = |e: String| Fatal::other(e);
    let variants: [(&str, &[&str]); 3] = [
        ("score", &[]),
        ("score --attention", &["--attention"]),
        ("score --attention-full", &["--attention-full"]),
    ];
    let flags: Vec<&[&str]> = variants.iter().map(|(_, f)| *f).collect();
    let times = score_rounds(settings, model, &agreement_sentences(50), &flags, RUNS)?;
    println!(
        "11. attention: 50 sentences (≈ 9 tokens) on stdin, a fresh process each, wall time \
         (median of {RUNS}, interleaved)"
    );
    println!("program                 median ms  × score");
    let base = ms(median(times[0].clone()));
    for ((name, _), t) in variants.iter().zip(times) {
        let m = ms(median(t));
        println!("{name:<23} {m:>9.0} {:>8.2}", m / base);
    }
    println!("\nthe panel: one position's attention of an evaluated text (median of 5)");
    println!("tokens  new text ms  next position ms");
    let mut attentions = Attentions::new(model);
    for n in [12usize, 256, 1024] {
        let (_, tokens) = text_of(model, n);
        let tokens = &tokens[..n];
        let mut took = Vec::new();
        let mut moved = Vec::new();
        for round in 0..5 {
            // Each round a text of its own (the panel keeps the last text's answer).
            let mut text = tokens.to_vec();
            text[0] = tokens[round % n.min(5) + 1];
            let t0 = Instant::now();
            match attentions
                .view(&text, n - 1)
                .map_err(|e| fail(e.to_string()))?
            {
                Ok(_) => took.push(t0.elapsed()),
                Err(why) => return Err(fail(why)),
            }
            // The selection moves one token left: kept rows, or a decode of the text again.
            let t0 = Instant::now();
            if let Err(why) = attentions
                .view(&text, n - 2)
                .map_err(|e| fail(e.to_string()))?
            {
                return Err(fail(why));
            }
            moved.push(t0.elapsed());
        }
        println!(
            "{n:>6} {:>12.0} {:>17.1}",
            ms(median(took)),
            ms(median(moved))
        );
    }
    Ok(())
}
