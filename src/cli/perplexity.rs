//! `logitscope perplexity -f FILE`: llama-perplexity's measurement (its chunking, BOS rule,
//! estimate and text lines) with `score`'s numbers; `--format json` for the same figures per
//! chunk and in total.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::fatal::Fatal;
use super::settings::Settings;
use crate::analysis::perplexity::{Accumulator, Plan};
use crate::analysis::stats::ViewOptions;
use crate::engine::corpus::chunk_nlls;
use crate::engine::score::Batcher;

/// The subcommand's own flags.
pub struct Options {
    pub file: std::path::PathBuf,
    pub chunks: Option<usize>,
    pub batch_size: usize,
    pub json: bool,
}

pub fn run(settings: &Settings, opts: Options) -> Result<ExitCode, Fatal> {
    if settings.vs.is_some() || !settings.watch.is_empty() {
        return Err(Fatal::other(
            "perplexity takes one model and no --watch (the KL divergence against a base model is not built yet)",
        ));
    }
    let bytes = std::fs::read(&opts.file)
        .map_err(|e| Fatal::other(format!("cannot read {}: {e}", opts.file.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Fatal::other(format!(
            "{} is not UTF-8 text (byte {} is not): perplexity reads text files",
            opts.file.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    let model = settings.load_model()?;
    eprintln!("perplexity: tokenizing the input ..");
    let tokens = model.tokenize(&text);
    let n_ctx = settings.ctx_size as usize;
    let plan =
        Plan::new(tokens.len(), n_ctx, opts.chunks).map_err(|e| Fatal::other(e.to_string()))?;
    let n_seq = (opts.batch_size / n_ctx).max(1);
    let mut batcher = Batcher::new(&model, n_seq).map_err(|e| Fatal::other(e.to_string()))?;
    if batcher.n_ctx() < n_ctx {
        return Err(Fatal::other(format!(
            "the context holds {} tokens, fewer than a chunk of {n_ctx}",
            batcher.n_ctx()
        )));
    }
    eprintln!(
        "perplexity: calculating perplexity over {} chunks, n_ctx={n_ctx}, batch_size={}, n_seq={n_seq}",
        plan.n_chunk, opts.batch_size
    );
    let view = ViewOptions {
        temp: settings.view.temp,
        n_probs: 1,
    };
    // Ctrl-C ends after the chunks being decoded, with the estimate over the chunks done; a
    // second Ctrl-C ends at once.
    let stop = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register_conditional_shutdown(
        signal_hook::consts::SIGINT,
        130,
        Arc::clone(&stop),
    );
    let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop));
    let mut done = 0;
    let mut total = Accumulator::default();
    let mut chunks = Vec::with_capacity(plan.n_chunk);
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    let mut i = 0;
    while i < plan.n_chunk {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let group = i..(i + n_seq).min(plan.n_chunk);
        let pass = Instant::now();
        let nlls = chunk_nlls(&mut batcher, &tokens, &plan, group.clone(), view)
            .map_err(|e| Fatal::other(format!("chunk {}: {e}", i + 1)))?;
        if i == 0 {
            let secs = pass.elapsed().as_secs_f64();
            let eta = secs * plan.n_chunk.div_ceil(n_seq) as f64;
            eprintln!(
                "perplexity: {secs:.2} seconds per pass - ETA {:.2} minutes",
                eta / 60.0
            );
        }
        for (k, chunk) in group.zip(nlls) {
            done = k + 1;
            let mut own = Accumulator::default();
            for &v in &chunk {
                own.add(v);
                total.add(v);
            }
            if opts.json {
                chunks.push(json!({
                    "chunk": k + 1,
                    "nll": own.nll,
                    "count": own.count,
                    "ppl": own.ppl(),
                    "ppl_so_far": total.ppl(),
                }));
            } else {
                write!(out, "[{}]{:.4},", k + 1, total.ppl()).map_err(write_error)?;
                out.flush().map_err(write_error)?;
            }
        }
        i += n_seq;
    }
    let interrupted = done < plan.n_chunk;
    if interrupted {
        eprintln!(
            "perplexity: interrupted: {done} of {} chunks done, the estimate is over those",
            plan.n_chunk
        );
        if done == 0 {
            return Ok(ExitCode::from(130));
        }
    }
    let (ppl, err) = total.estimate();
    tracing::info!(
        "perplexity: {} chunks in {:.1} s",
        plan.n_chunk,
        started.elapsed().as_secs_f64()
    );
    if opts.json {
        let report = json!({
            "model": model.info().file_name,
            "file": opts.file.display().to_string(),
            "n_tokens": tokens.len(),
            "n_ctx": n_ctx,
            "n_chunk": plan.n_chunk,
            "n_chunk_done": done,
            "interrupted": interrupted,
            "scored_per_chunk": plan.scored_per_chunk(),
            "temperature": settings.view.temp,
            "chunks": chunks,
            "count": total.count,
            "mean_nll": total.nll / total.count as f64,
            "ppl": ppl,
            "ppl_uncertainty": err,
        });
        writeln!(out, "{report}").map_err(write_error)?;
    } else {
        writeln!(out).map_err(write_error)?;
        match err {
            Some(err) => writeln!(out, "Final estimate: PPL = {ppl:.4} +/- {err:.5}"),
            None => writeln!(
                out,
                "Final estimate: PPL = {ppl:.4} (no uncertainty: the log-likelihoods do not vary)"
            ),
        }
        .map_err(write_error)?;
    }
    Ok(if interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_error(e: std::io::Error) -> Fatal {
    Fatal::other(format!("cannot write the results: {e}"))
}
