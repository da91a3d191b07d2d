//! Table 8: what `score` costs over the plain decode, as a user meets it — 20 distinct texts
//! of 84 tokens on stdin, a fresh process each run, wall time, median of 7 — against
//! `examples/decode_floor`, a plain llama-cpp-2 program that decodes each text in one decode and
//! touches every logit row. And lines per second one at a time (`--parallel 1`) against side by
//! side (the default).

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
    let score = |parallel: &str| {
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
        cmd
    };
    let (mut f, mut one, mut side, mut ratios) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let mut floor_cmd = Command::new(&floor);
        floor_cmd.args([&path, &t, &c]);
        let a = timed(floor_cmd, &input)?;
        let b = timed(score("1"), &input)?;
        let s = timed(score("8"), &input)?;
        ratios.push(b.as_secs_f64() / a.as_secs_f64());
        f.push(a);
        one.push(b);
        side.push(s);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "8. score against the decode floor: {TEXTS} texts of {TOKENS} tokens on stdin, a fresh \
         process each, wall time (median of {RUNS})"
    );
    println!("program                          median ms  lines/s");
    let lps = |d: Duration| TEXTS as f64 / d.as_secs_f64();
    for (label, v) in [
        ("decode_floor (one decode each)", &f),
        ("score --parallel 1 (one at a time)", &one),
        ("score (8 side by side)", &side),
    ] {
        let m = median(v.clone());
        println!("{label:<34} {:>8.0} {:>8.2}", ms(m), lps(m));
    }
    println!(
        "score --parallel 1 / floor: median {:.3} (runs {:.3}–{:.3}); side by side / one at a \
         time: {:.3}",
        ratios[RUNS / 2],
        ratios[0],
        ratios[RUNS - 1],
        median(side).as_secs_f64() / median(one).as_secs_f64()
    );
    Ok(())
}
