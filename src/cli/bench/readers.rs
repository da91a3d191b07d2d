//! Table 14: one decode, many readers. `score` with the lens, attention and attribution,
//! alone and together, against plain `score` on the same sentences, a fresh process each run,
//! interleaved rounds, medians. Each text is decoded once whatever is asked (the readers'
//! hooked decode scores it too); what the readers add beyond that is their own arithmetic: the
//! lens's pass over W per layer and position, attribution's f64 pass over W per position
//! (the `rounding` field) and its shares, attention's digest of every row, and the JSON.

use super::super::fatal::Fatal;
use super::super::settings::Settings;
use super::pairs::agreement_sentences;
use super::timing::{median, ms, score_rounds};

const ROUNDS: usize = 5;
const SENTENCES: usize = 20;

pub fn table(settings: &Settings, model: &crate::model::Model) -> Result<(), Fatal> {
    let variants: [(&str, &[&str]); 5] = [
        ("score", &[]),
        ("score --attention", &["--attention"]),
        ("score --attribution", &["--attribution"]),
        ("score --layers", &["--layers"]),
        (
            "score --layers --attention --attribution",
            &["--layers", "--attention", "--attribution"],
        ),
    ];
    let flags: Vec<&[&str]> = variants.iter().map(|(_, f)| *f).collect();
    let times = score_rounds(
        settings,
        model,
        &agreement_sentences(SENTENCES),
        &flags,
        ROUNDS,
    )?;
    println!(
        "14. one decode, many readers: {SENTENCES} sentences on stdin, a fresh process each, \
         wall time (median of {ROUNDS} interleaved rounds)"
    );
    println!("program                                    median ms  × score  × --layers");
    let medians: Vec<f64> = times.into_iter().map(|t| ms(median(t))).collect();
    for ((name, _), m) in variants.iter().zip(&medians) {
        println!(
            "{name:<42} {m:>9.0} {:>8.2} {:>10.2}",
            m / medians[0],
            m / medians[3]
        );
    }
    Ok(())
}
