//! Table 10: `pairs` against `score` on the same sentences, as a user runs them — 1,000
//! agreement pairs (2,000 distinct sentences), a fresh process each run, wall time, runs
//! interleaved, median of 3: sentences per second of each.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::super::fatal::Fatal;
use super::super::settings::Settings;
use super::timing::{median, ms, timed};
use crate::model::Model;

const RUNS: usize = 3;

/// The first sentence of each of the first `n` agreement pairs.
pub fn agreement_sentences(n: usize) -> Vec<String> {
    agreement_pairs()
        .into_iter()
        .take(n)
        .map(|(a, _)| a)
        .collect()
}

/// 1,000 distinct agreement pairs: `good<TAB>bad`.
pub fn agreement_pairs() -> Vec<(String, String)> {
    const NOUNS: [&str; 20] = [
        "key", "dog", "teacher", "painting", "student", "car", "letter", "window", "farmer",
        "song", "doctor", "bridge", "story", "flower", "player", "lamp", "river", "cook", "book",
        "child",
    ];
    const PLACES: [&str; 10] = [
        "station", "garden", "library", "kitchen", "market", "harbour", "school", "museum",
        "forest", "office",
    ];
    const ADJECTIVES: [&str; 5] = ["old", "quiet", "famous", "broken", "new"];
    let mut out = Vec::new();
    for n in NOUNS {
        for p in PLACES {
            for a in ADJECTIVES {
                let plural = if n == "child" {
                    "children".to_owned()
                } else {
                    format!("{n}s")
                };
                out.push((
                    format!("The {plural} near the {p} are {a}."),
                    format!("The {plural} near the {p} is {a}."),
                ));
            }
        }
    }
    out
}

pub fn table(settings: &Settings, model: &Model) -> Result<(), Fatal> {
    let exe = std::env::current_exe().map_err(|e| Fatal::other(e.to_string()))?;
    let pairs = agreement_pairs();
    let dir = tempfile::tempdir().map_err(|e| Fatal::other(e.to_string()))?;
    let (pairs_file, sentences_file) = (dir.path().join("pairs.tsv"), dir.path().join("s.txt"));
    let write = |p: &Path, s: String| std::fs::write(p, s).map_err(|e| Fatal::other(e.to_string()));
    write(
        &pairs_file,
        pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect(),
    )?;
    write(
        &sentences_file,
        pairs.iter().map(|(a, b)| format!("{a}\n{b}\n")).collect(),
    )?;
    let path = model.options().path.display().to_string();
    let (t, c) = (settings.threads.to_string(), settings.ctx_size.to_string());
    let run = |sub: &str| {
        let mut cmd = Command::new(&exe);
        cmd.args([sub, "-m", &path, "-t", &t, "-c", &c]);
        cmd
    };
    let (mut score, mut pair) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        score.push(timed(run("score"), &sentences_file)?);
        pair.push(timed(run("pairs"), &pairs_file)?);
    }
    let n = 2 * pairs.len();
    let per_s = |d: Duration| n as f64 / d.as_secs_f64();
    let (ms_score, ms_pairs) = (median(score), median(pair));
    println!(
        "10. pairs against score: {} pairs = {n} sentences on stdin, a fresh process each, wall \
         time (median of {RUNS}, interleaved)",
        pairs.len()
    );
    println!("program     median ms  sentences/s");
    println!(
        "score       {:>9.0} {:>12.1}",
        ms(ms_score),
        per_s(ms_score)
    );
    println!(
        "pairs       {:>9.0} {:>12.1}",
        ms(ms_pairs),
        per_s(ms_pairs)
    );
    println!(
        "pairs / score sentences per second: {:.3} (target ≥ 0.95)",
        per_s(ms_pairs) / per_s(ms_score)
    );
    Ok(())
}
