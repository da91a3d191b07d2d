//! Table 8: what `score` costs over the plain decode, as a user meets it — 20 distinct texts
//! of 84 tokens on stdin, a fresh process each run, rounds interleaved, wall time, median of 7
//! — against `examples/decode_floor`, a separate plain llama-cpp-2 program with the context a
//! user of `score` gets (n_ctx, threads, batch) that decodes each text in one decode and
//! touches every logit row. One at a time (`--parallel 1`), side by side (the default), and
//! side by side in a process that runs the layout self-check again instead of using the kept
//! finding (`LOGITSCOPE_SELF_CHECK_CACHE=0`, what the first process on a model pays).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::super::fatal::Fatal;
use super::super::settings::Settings;
use super::timing::{median, ms, timed, PASSAGE};
use crate::model::Model;

const TEXTS: usize = 20;
const TOKENS: usize = 84;
const RUNS: usize = 7;

/// `TEXTS` distinct texts of exactly `TOKENS` tokens: the passage's words from different
/// starting points, cut where the tokens reach the count.
fn texts(model: &Model) -> Vec<String> {
    let words: Vec<&str> = PASSAGE.split_whitespace().collect();
    (0..TEXTS)
        .map(|k| {
            let mut text = String::new();
            let mut i = k * 7;
            while model.tokenize(&text).len() < TOKENS {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(words[i % words.len()]);
                i += 1;
            }
            // Drop the last word if it overshot, and top up with single-token words.
            while model.tokenize(&text).len() > TOKENS {
                text.truncate(text.rfind(' ').unwrap_or(0));
            }
            while model.tokenize(&text).len() < TOKENS {
                text.push_str(" and");
            }
            text
        })
        .collect()
}

fn floor_binary() -> Result<PathBuf, Fatal> {
    let exe = std::env::current_exe().map_err(|e| Fatal::other(e.to_string()))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let floor = dir.join("examples").join("decode_floor");
    if floor.is_file() {
        Ok(floor)
    } else {
        Err(Fatal::other(format!(
            "table 8 needs {}: build it with `cargo build --release --example decode_floor` \
             (./dev bench does)",
            floor.display()
        )))
    }
}

pub fn table(settings: &Settings, model: &Model) -> Result<(), Fatal> {
    let floor = floor_binary()?;
    let exe = std::env::current_exe().map_err(|e| Fatal::other(e.to_string()))?;
    let texts = texts(model);
    let dir = tempfile::tempdir().map_err(|e| Fatal::other(e.to_string()))?;
    let input = dir.path().join("texts.txt");
    std::fs::write(&input, texts.join("\n") + "\n").map_err(|e| Fatal::other(e.to_string()))?;
    let path = model.options().path.display().to_string();
    let (t, c) = (settings.threads.to_string(), settings.ctx_size.to_string());
    let score = |parallel: &str, kept: bool| {
        let mut cmd = Command::new(&exe);
        cmd.args([
            "score",
            "-m",
            &path,
            "-t",
            &t,
            "-c",
            &c,
            "--parallel",
            parallel,
        ]);
        if !kept {
            cmd.env("LOGITSCOPE_SELF_CHECK_CACHE", "0");
        }
        cmd
    };
    // The first process that scores side by side runs the layout self-check and keeps its
    // finding; the rounds below are the processes after it, as a user's are.
    timed(score("8", true), &input)?;
    let mut runs: [Vec<Duration>; 4] = Default::default();
    for _ in 0..RUNS {
        let mut floor_cmd = Command::new(&floor);
        floor_cmd.args([&path, &t, &c]);
        for (k, cmd) in [
            floor_cmd,
            score("1", true),
            score("8", true),
            score("8", false),
        ]
        .into_iter()
        .enumerate()
        {
            runs[k].push(timed(cmd, &input)?);
        }
    }
    println!(
        "8. score against the decode floor: {TEXTS} texts of {TOKENS} tokens on stdin, a fresh \
         process each, rounds interleaved, wall time (median of {RUNS})"
    );
    println!("program                                        median ms  lines/s  / floor (range)");
    let lps = |d: Duration| TEXTS as f64 / d.as_secs_f64();
    for (k, label) in [
        "decode_floor (one decode each)",
        "score --parallel 1 (one at a time)",
        "score (8 side by side)",
        "score (8 side by side), self-check run again",
    ]
    .into_iter()
    .enumerate()
    {
        let m = median(runs[k].clone());
        // Each round's time over the floor's in the same round.
        let mut ratios: Vec<f64> = runs[k]
            .iter()
            .zip(&runs[0])
            .map(|(a, f)| a.as_secs_f64() / f.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "{label:<46} {:>8.0} {:>8.2}  {:.3} ({:.3}–{:.3})",
            ms(m),
            lps(m),
            ratios[RUNS / 2],
            ratios[0],
            ratios[RUNS - 1]
        );
    }
    Ok(())
}
