//! `logitscope bench`: the numbers behind the speed targets, in one run on the real model.
//!
//! 1. decode-only (llama.cpp decode + reading every logit row) against full analysis;
//! 2. keystroke latency: append one character to a text and re-score it (prefix reuse);
//! 3. statistics throughput per row on synthetic rows;
//! 4. peak resident memory after scoring 16 and 1,024 tokens (each in a fresh process);
//! 5. fill-in: 50 candidates with a 10-token suffix, batched vs one evaluation each;
//! 6. the vocabulary search for a blank: words per second with and without the pruning, and
//!    (with `--full-vocabulary`) the time to search every word;
//! 7. the logit lens: `score --layers` against `score`, and the explorer's lens path;
//! 8. `score` against a plain decode of the same texts (fresh processes), one text at a time
//!    and side by side;
//! 9. a model split across two RPC servers on this host against the local CPU;
//! 10. `pairs` against `score` on the same 2,000 sentences;
//! 11. `score --attention` and the attention panel;
//! 12. ablated and steered evaluations against intact ones, and the attribution panel;
//! 14. `score` with the lens, attention and attribution, alone and together (one decode).

use std::process::ExitCode;
use std::time::{Duration, Instant};

mod attention;
mod intervene;
mod lens;
mod overhead;
mod pairs;
mod readers;
mod rpc;
mod search;
mod timing;
mod trace;

use super::args::BenchTable;
use super::fatal::Fatal;
use super::settings::Settings;
use crate::analysis::stats::ViewOptions;
use crate::model::{Model, ModelError, Session};
use timing::{median, ms, text_of, time, PASSAGE};

/// Table 3 alone: needs no model.
pub fn stats_table() -> String {
    let mut out = String::from(
        "3. statistics per row (one core; max + log-sum-exp + entropy, top-10, target rank)\n\
         |V|        µs/row   rows/s\n",
    );
    for n in [49_152usize, 262_144] {
        let row = crate::analysis::stats::synthetic_row(n, n as u64);
        let reps = if n > 100_000 { 400 } else { 2000 };
        let t = Instant::now();
        for i in 0..reps {
            std::hint::black_box(crate::analysis::stats::summarize_row(
                std::hint::black_box(&row),
                1.0,
                10,
                Some((i * 7919 % n) as u32),
            ))
            .ok();
        }
        let per = t.elapsed().as_secs_f64() / reps as f64;
        out.push_str(&format!("{n:<10} {:>7.1} {:>8.0}\n", per * 1e6, 1.0 / per));
    }
    out
}

/// Peak resident set (VmHWM) of this process, in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

pub fn run(
    settings: &Settings,
    only: Option<BenchTable>,
    full_vocabulary: bool,
) -> Result<ExitCode, Fatal> {
    if let Ok(n) = std::env::var("LOGITSCOPE_BENCH_PROBE") {
        return memory_probe(settings, n.parse().unwrap_or(16));
    }
    if only == Some(BenchTable::Stats) {
        println!("{}", stats_table());
        return Ok(ExitCode::SUCCESS);
    }
    if only == Some(BenchTable::Rpc) {
        // The table loads the model itself, locally and over RPC.
        rpc::table(settings)?;
        return Ok(ExitCode::SUCCESS);
    }
    let model = settings.load_model()?;
    let view = settings.view;
    match only {
        Some(BenchTable::Fill) => {
            println!("5. fill-in: 50 candidates, 10-token suffix");
            fill_bench(&model, view)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(BenchTable::Search) => {
            search::table(&model, view, full_vocabulary)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(BenchTable::Lens) => {
            lens::table(&model, view)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(BenchTable::Attention) => {
            attention::table(settings, &model)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(BenchTable::Intervene) => {
            intervene::table(&model, view)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(BenchTable::Pairs) => {
            pairs::table(settings, &model)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(BenchTable::Readers) => {
            readers::table(settings, &model)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(BenchTable::Trace) => {
            trace::table(&model)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(BenchTable::Decode) => {
            let mut s = model.session().map_err(|e| Fatal::other(e.to_string()))?;
            decode_tables(&model, &mut s, view)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(BenchTable::Overhead) => {
            overhead::table(settings, &model)?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let mut s = model.session().map_err(|e| Fatal::other(e.to_string()))?;

    println!(
        "machine: {} threads, model {}, n_ctx {}, flash attention {}",
        settings.threads,
        model.info().file_name,
        s.n_ctx(),
        if settings.flash_attn { "on" } else { "off" }
    );
    println!();
    decode_tables(&model, &mut s, view)?;
    println!("\n{}", stats_table().trim_end());

    println!(
        "\n4. peak resident memory (fresh process each, same n_ctx {})",
        s.n_ctx()
    );
    println!("tokens  peak RSS MiB");
    let exe = std::env::current_exe().map_err(|x| Fatal::other(x.to_string()))?;
    for n in [16usize, 1024] {
        let out = std::process::Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .env("LOGITSCOPE_BENCH_PROBE", n.to_string())
            .output()
            .map_err(|x| Fatal::other(x.to_string()))?;
        println!("{n:<7} {}", String::from_utf8_lossy(&out.stdout).trim());
    }

    drop(s);
    println!("\n5. fill-in: 50 candidates, 10-token suffix");
    fill_bench(&model, view)?;
    println!();
    search::table(&model, view, full_vocabulary)?;
    println!();
    lens::table(&model, view)?;
    println!();
    overhead::table(settings, &model)?;
    println!();
    pairs::table(settings, &model)?;
    drop(model);
    println!();
    rpc::table(settings)?;
    Ok(ExitCode::SUCCESS)
}

fn memory_probe(settings: &Settings, n: usize) -> Result<ExitCode, Fatal> {
    let model = settings.load_model()?;
    let mut s = model.session().map_err(|e| Fatal::other(e.to_string()))?;
    let (_, tokens) = text_of(&model, n);
    s.evaluate(&tokens, settings.view, &|| false)
        .map_err(|e| Fatal::other(e.to_string()))?;
    println!("{:.1}", peak_rss_mib().unwrap_or(f64::NAN));
    Ok(ExitCode::SUCCESS)
}

fn fill_bench(model: &Model, view: ViewOptions) -> Result<(), Fatal> {
    let e = |e: ModelError| Fatal::other(e.to_string());
    // A paragraph of left context (≈ 100 tokens), the blank, a 10-token suffix.
    let left = format!(
        "{}After a long day at work, she went to the kitchen and made herself a cup of",
        PASSAGE
    );
    let left = left.as_str();
    let suffix = " tea with milk and honey before going to bed.";
    let mut main = model.session().map_err(e)?;
    let wide = ViewOptions {
        temp: view.temp,
        n_probs: 200,
    };
    let row = main
        .evaluate(&model.tokenize(left), wide, &|| false)
        .map_err(e)?
        .rows
        .pop()
        .ok_or_else(|| Fatal::other("no row"))?;
    let cands = crate::analysis::blanks::left_candidates(model.vocab(), &row, 50);
    let seqs: Vec<Vec<u32>> = cands
        .iter()
        .map(|c| model.tokenize(&format!("{left} {c}{suffix}")))
        .collect();
    let suffix_tokens = model.tokenize(suffix).len();
    let max_len = seqs.iter().map(Vec::len).max().unwrap_or(1);
    let (streams, per_seq) = crate::engine::fill::batch_shape(max_len, main.n_ctx()).map_err(e)?;
    // `streams` KV-cache streams: the prefix's and `streams - 1` for tails side by side.
    let time_with = |streams: usize, reps: usize| -> Result<Duration, Fatal> {
        let mut batch: Session<'_> = model
            .batch_session(streams as u32, per_seq as u32)
            .map_err(e)?;
        let mut failed = None;
        let t = time(reps, || {
            crate::engine::sequence_logprobs(
                &mut batch,
                &seqs,
                view.temp,
                &|| false,
                &mut |_, _| {},
            )
            .map_err(|x| failed = Some(x))
        });
        failed.map_or(Ok(t), |x| Err(e(x)))
    };
    let batched = time_with(streams, 3)?;
    let one_stream = time_with(2, 3)?;
    let separate = time(1, || {
        for s in &seqs {
            main.reset();
            let _ = main.evaluate(s, view, &|| false);
        }
    });
    println!(
        "{} candidates, suffix {} tokens, texts ≈ {} tokens",
        seqs.len(),
        suffix_tokens,
        seqs.first().map_or(0, Vec::len)
    );
    println!(
        "batched (prefix decoded once, up to {} tails side by side): {:.0} ms",
        streams.saturating_sub(1).max(1),
        ms(batched)
    );
    println!(
        "prefix decoded once, one tail at a time: {:.0} ms",
        ms(one_stream)
    );
    println!(
        "one full evaluation each: {:.0} ms   speed-up of batched {:.1}×",
        ms(separate),
        separate.as_secs_f64() / batched.as_secs_f64()
    );
    Ok(())
}

/// Tables 1 and 2: a decode alone against the full analysis, and a keystroke's latency, at
/// 16 to 1,024 tokens.
fn decode_tables(model: &Model, s: &mut Session<'_>, view: ViewOptions) -> Result<(), Fatal> {
    let e = |e: ModelError| Fatal::other(e.to_string());
    println!("1. decode-only vs full analysis (median of 3)");
    println!("tokens  decode ms  analysis ms  ms/token  ratio");
    for n in [16usize, 64, 256, 1024] {
        let (_, tokens) = text_of(model, n);
        let mut err = None;
        let decode = time(3, || s.decode_only(&tokens).map_err(|x| err = Some(x)));
        let analysis = time(3, || {
            s.reset();
            s.evaluate(&tokens, view, &|| false)
                .map_err(|x| err = Some(x))
        });
        if let Some(x) = err {
            return Err(e(x));
        }
        println!(
            "{n:<7} {:>9.1} {:>12.1} {:>9.2} {:>6.3}",
            ms(decode),
            ms(analysis),
            ms(analysis) / n as f64,
            analysis.as_secs_f64() / decode.as_secs_f64()
        );
    }

    println!("\n2. keystroke latency: append one character and re-score (median of 5)");
    println!("tokens  keystroke ms  decoded  full re-evaluation ms");
    for n in [16usize, 64, 256, 1024] {
        let (text, _) = text_of(model, n);
        let full_tokens = model.tokenize(&text);
        let mut decoded = 0;
        let mut lat = Vec::new();
        for _ in 0..5 {
            s.evaluate(&full_tokens, view, &|| false).map_err(e)?;
            let t = Instant::now();
            let typed = model.tokenize(&format!("{text}s"));
            let ev = s.evaluate(&typed, view, &|| false).map_err(e)?;
            decoded = ev.decoded;
            lat.push(t.elapsed());
        }
        let full = time(1, || {
            s.reset();
            s.evaluate(&full_tokens, view, &|| false).ok()
        });
        println!(
            "{n:<7} {:>12.1} {decoded:>8} {:>22.1}",
            ms(median(lat)),
            ms(full)
        );
    }

    Ok(())
}
