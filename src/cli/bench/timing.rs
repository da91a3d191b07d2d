//! Timing helpers and benchmark inputs shared by the tables.

use std::time::{Duration, Instant};

use crate::model::Model;

/// Natural text to cut benchmark inputs from.
pub const PASSAGE: &str =
    "The chef carefully seasoned the soup with a pinch of salt, then tasted it \
    and added a little pepper. Outside, the rain had stopped and the streets of the old town \
    were shining under the lamps. A cat sat on the wall by the bakery, watching the people \
    hurry home with bread under their arms. In the distance a church bell rang eight times, \
    and somewhere a radio was playing an old song about the sea. ";

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A text of exactly `n` tokens (as the model tokenizes it) cut from the passage.
pub fn text_of(model: &Model, n: usize) -> (String, Vec<u32>) {
    let mut s = String::new();
    while model.tokenize(&s).len() < n + 8 {
        s.push_str(PASSAGE);
    }
    // Cut at a word boundary close to n tokens.
    let words: Vec<&str> = s.split(' ').collect();
    let (mut lo, mut hi) = (1, words.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if model.tokenize(&words[..mid].join(" ")).len() < n {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let text = words[..lo].join(" ");
    let mut tokens = model.tokenize(&text);
    tokens.truncate(n);
    (text, tokens)
}

/// Wall time of `cmd` run with `input` on stdin (its output discarded); a failure is an error.
pub fn timed(
    mut cmd: std::process::Command,
    input: &std::path::Path,
) -> Result<Duration, super::super::fatal::Fatal> {
    use super::super::fatal::Fatal;
    use std::process::Stdio;
    let t = Instant::now();
    let status = cmd
        .stdin(std::fs::File::open(input).map_err(|e| Fatal::other(e.to_string()))?)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| Fatal::other(e.to_string()))?;
    if !status.success() {
        return Err(Fatal::other(format!("{cmd:?} failed: {status}")));
    }
    Ok(t.elapsed())
}

/// `score` of `sentences` (one per line) on stdin with each variant's extra flags, a fresh
/// process each run, `rounds` interleaved rounds: `[variant][round]`.
pub fn score_rounds(
    settings: &super::super::settings::Settings,
    model: &crate::model::Model,
    sentences: &[String],
    variants: &[&[&str]],
    rounds: usize,
) -> Result<Vec<Vec<Duration>>, super::super::fatal::Fatal> {
    use super::super::fatal::Fatal;
    let fail = |e: String| Fatal::other(e);
    let exe = std::env::current_exe().map_err(|e| fail(e.to_string()))?;
    let dir = tempfile::tempdir().map_err(|e| fail(e.to_string()))?;
    let texts = dir.path().join("texts.txt");
    let lines: String = sentences.iter().map(|a| format!("{a}\n")).collect();
    std::fs::write(&texts, lines).map_err(|e| fail(e.to_string()))?;
    let path = model.options().path.display().to_string();
    let (t, c) = (settings.threads.to_string(), settings.ctx_size.to_string());
    let mut times = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (i, extra) in variants.iter().enumerate() {
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(["score", "-m", &path, "-t", &t, "-c", &c])
                .args(*extra);
            times[i].push(timed(cmd, &texts)?);
        }
    }
    Ok(times)
}
