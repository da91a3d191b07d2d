//! `logitscope perplexity -f FILE`: llama-perplexity's measurement (its chunking, BOS rule,
//! estimate and text lines) with `score`'s numbers; `--kl-divergence-base F` writes its base
//! file, `--kl-divergence` reads one and prints its KL-divergence table and statistics,
//! `--vs BASE`... compares with a base model decoded beside it; `--worst N` lists the positions
//! to look at; `--format json` for the same figures per chunk and in total.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::fatal::Fatal;
use super::settings::Settings;
use crate::analysis::kld::{Largest, Position, Totals, TABLE_HEADER};
use crate::analysis::perplexity::{Accumulator, Plan};
use crate::analysis::worst::Place;
use crate::engine::corpus::{
    against_file, against_model, chunk_nlls, chunk_tokens, BaseReader, BaseWriter, Corpus,
};
use crate::model::Model;

/// The subcommand's own flags.
pub struct Options {
    pub file: Option<PathBuf>,
    pub chunks: Option<usize>,
    pub batch_size: usize,
    pub json: bool,
    /// `--kl-divergence-base`: the file to write (or, with `kl_divergence`, to read).
    pub kl_base: Option<PathBuf>,
    pub kl_divergence: bool,
    pub worst: usize,
}

pub fn run(settings: &Settings, opts: Options) -> Result<ExitCode, Fatal> {
    if !settings.watch.is_empty() {
        return Err(Fatal::other("perplexity takes no --watch"));
    }
    let temp_one = settings.view.temp == 1.0;
    if opts.kl_base.is_some() && !temp_one {
        return Err(Fatal::other(
            "--kl-divergence-base files hold temperature-1 log-probabilities (as llama-perplexity writes them): leave out --temp",
        ));
    }
    if opts.kl_divergence && opts.kl_base.is_none() {
        return Err(Fatal::other(
            "--kl-divergence reads the base model's log-probabilities: name their file with --kl-divergence-base FILE (written by a run without --kl-divergence)",
        ));
    }
    if settings.vs.is_some() && opts.kl_base.is_some() {
        return Err(Fatal::other(
            "--vs compares with a base model decoded beside this one; --kl-divergence-base with a base file: choose one",
        ));
    }
    if !opts.kl_divergence && opts.file.is_none() {
        return Err(Fatal::other("perplexity needs a text file: -f FILE"));
    }
    let model = settings.load_model()?;
    let text = opts.file.as_deref().map(read_text).transpose()?;
    let n_seq = |n_ctx: usize| (opts.batch_size / n_ctx).max(1);
    let stop = interrupt_flag();
    if opts.kl_divergence {
        let base_path = opts.kl_base.as_deref().expect("checked above");
        let base = BaseReader::open(base_path).map_err(|e| Fatal::other(e.to_string()))?;
        check_base(&model, &base, text.as_deref())?;
        let h = &base.header;
        let plan = Plan {
            n_ctx: h.n_ctx,
            n_chunk: opts.chunks.map_or(h.n_chunk, |c| c.min(h.n_chunk)),
        };
        let mut corpus = open_corpus(&model, plan.n_ctx, n_seq(plan.n_ctx))?;
        let tokens = h.tokens.clone();
        let run = Run::new(&model, &tokens, plan, &opts, &stop);
        let base_name = base_path.display().to_string();
        run.compared(&base_name, corpus.n_seq(), &mut |group| {
            against_file(&mut corpus, &base, &plan, group, 1.0)
        })
    } else {
        let text = text.expect("checked above");
        eprintln!("perplexity: tokenizing the input ..");
        let tokens = model.tokenize(&text);
        let n_ctx = settings.ctx_size as usize;
        let plan =
            Plan::new(tokens.len(), n_ctx, opts.chunks).map_err(|e| Fatal::other(e.to_string()))?;
        let mut corpus = open_corpus(&model, n_ctx, n_seq(n_ctx))?;
        let run = Run::new(&model, &tokens, plan, &opts, &stop);
        if let Some(second) = settings.load_second(&model)? {
            // The -m model is the base (A, as in `score --vs`); --vs is the one measured.
            let mut measured = open_corpus(&second, n_ctx, n_seq(n_ctx))?;
            let n = corpus.n_seq().min(measured.n_seq());
            let temp = settings.view.temp;
            let name = model.info().file_name.clone();
            let run = Run {
                model: &second,
                ..run
            };
            run.compared(&name, n, &mut |group| {
                against_model(&mut corpus, &mut measured, &tokens, &plan, group, temp)
            })
        } else {
            let mut writer = match &opts.kl_base {
                Some(path) => Some(
                    BaseWriter::create(path, &tokens, &plan, model.vocab().len())
                        .map_err(|e| Fatal::other(e.to_string()))?,
                ),
                None => None,
            };
            let temp = settings.view.temp;
            let n = corpus.n_seq();
            let result = run.alone(n, &mut |group| {
                chunk_nlls(&mut corpus, &tokens, &plan, group, temp, writer.as_mut())
            });
            match (writer, &result) {
                (Some(w), Ok((_, done))) if *done > 0 => {
                    w.finish(*done).map_err(|e| Fatal::other(e.to_string()))?;
                    eprintln!(
                        "perplexity: base log-probabilities of {done} chunks written to {}",
                        opts.kl_base.as_deref().expect("a writer").display()
                    );
                }
                (Some(w), _) => w.discard(),
                (None, _) => {}
            }
            result.map(|(code, _)| code)
        }
    }
}

fn read_text(path: &Path) -> Result<String, Fatal> {
    let bytes = std::fs::read(path)
        .map_err(|e| Fatal::other(format!("cannot read {}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        Fatal::other(format!(
            "{} is not UTF-8 text (byte {} is not): perplexity reads text files",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

fn open_corpus<'m>(model: &'m Model, n_ctx: usize, n_seq: usize) -> Result<Corpus<'m>, Fatal> {
    Corpus::new(model, n_ctx, n_seq).map_err(|e| {
        Fatal::other(format!(
            "{}: cannot hold chunks of {n_ctx} tokens: {e}",
            model.info().file_name
        ))
    })
}

/// A base file fits this model: the same vocabulary size, and (when the text is given too)
/// the same tokens as this model's tokenization of it.
fn check_base(model: &Model, base: &BaseReader, text: Option<&str>) -> Result<(), Fatal> {
    let h = &base.header;
    let name = base.path.display();
    if h.n_vocab != model.vocab().len() {
        return Err(Fatal::other(format!(
            "{name} was written for a vocabulary of {} tokens; '{}' has {}: a base file is read by a model of the same vocabulary",
            h.n_vocab,
            model.info().file_name,
            model.vocab().len()
        )));
    }
    if let Some(text) = text {
        let tokens = model.tokenize(text);
        let n = h.tokens.len();
        if let Some(i) = (0..n).find(|&i| tokens.get(i) != Some(&h.tokens[i])) {
            return Err(Fatal::other(format!(
                "{name} holds another tokenization of the text than -f's under '{}' (they differ at token {i} of {n}): was it written from another file or tokenizer?",
                model.info().file_name
            )));
        }
    }
    Ok(())
}

/// Ctrl-C ends after the chunks being decoded, with the figures over the chunks done; a
/// second Ctrl-C ends at once.
fn interrupt_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register_conditional_shutdown(
        signal_hook::consts::SIGINT,
        130,
        Arc::clone(&stop),
    );
    let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop));
    stop
}

/// One measurement's shared parts: the corpus, its plan, the flags, the interrupt.
#[derive(Clone, Copy)]
struct Run<'a> {
    model: &'a Model,
    tokens: &'a [u32],
    plan: Plan,
    opts: &'a Options,
    stop: &'a AtomicBool,
}

type Group = std::ops::Range<usize>;

impl<'a> Run<'a> {
    fn new(
        model: &'a Model,
        tokens: &'a [u32],
        plan: Plan,
        opts: &'a Options,
        stop: &'a AtomicBool,
    ) -> Self {
        Self {
            model,
            tokens,
            plan,
            opts,
            stop,
        }
    }

    /// Measure every chunk, `n_seq` at a time, handing each group's results to `each`, with
    /// llama-perplexity's ETA after the first pass (and progress on a terminal in JSON);
    /// returns the chunks done.
    fn passes<T>(
        &self,
        what: &str,
        n_seq: usize,
        measure: &mut dyn FnMut(Group) -> Result<Vec<T>, crate::engine::corpus::CorpusError>,
        each: &mut dyn FnMut(usize, T) -> Result<(), Fatal>,
    ) -> Result<usize, Fatal> {
        let plan = self.plan;
        eprintln!(
            "{what}: calculating over {} chunks, n_ctx={}, batch_size={}, n_seq={n_seq}",
            plan.n_chunk, plan.n_ctx, self.opts.batch_size
        );
        let started = Instant::now();
        let mut done = 0;
        while done < plan.n_chunk && !self.stop.load(Ordering::SeqCst) {
            let group = done..(done + n_seq).min(plan.n_chunk);
            let pass = Instant::now();
            let results = measure(group.clone())
                .map_err(|e| Fatal::other(format!("chunk {}: {e}", done + 1)))?;
            if done == 0 {
                let secs = pass.elapsed().as_secs_f64();
                let eta = secs * plan.n_chunk.div_ceil(n_seq) as f64;
                eprintln!(
                    "{what}: {secs:.2} seconds per pass - ETA {:.2} minutes",
                    eta / 60.0
                );
            }
            for (k, r) in group.zip(results) {
                each(k, r)?;
                done = k + 1;
            }
            if self.opts.json && std::io::stderr().is_terminal() {
                let per = started.elapsed().as_secs_f64() / done as f64;
                eprint!(
                    "\r{what}: {done}/{} chunks, {:.1} minutes left ",
                    plan.n_chunk,
                    per * (plan.n_chunk - done) as f64 / 60.0
                );
            }
        }
        if self.opts.json && std::io::stderr().is_terminal() {
            eprintln!();
        }
        if done < plan.n_chunk {
            eprintln!(
                "{what}: interrupted: {done} of {} chunks done, the figures are over those",
                plan.n_chunk
            );
        }
        tracing::info!(
            "{what}: {done} chunks in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(done)
    }

    /// Perplexity alone: llama-perplexity's `[i]` lines and final estimate.
    fn alone(
        &self,
        n_seq: usize,
        measure: &mut dyn FnMut(Group) -> Result<Vec<Vec<f64>>, crate::engine::corpus::CorpusError>,
    ) -> Result<(ExitCode, usize), Fatal> {
        let mut total = Accumulator::default();
        let mut chunks = Vec::new();
        let mut worst = Largest::new(self.opts.worst);
        let mut out = std::io::stdout().lock();
        let json = self.opts.json;
        let done = self.passes("perplexity", n_seq, measure, &mut |k, nlls| {
            let mut own = Accumulator::default();
            for (j, &v) in nlls.iter().enumerate() {
                own.add(v);
                total.add(v);
                worst.offer(v, || (k, j, v));
            }
            if json {
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
            Ok(())
        })?;
        let interrupted = done < self.plan.n_chunk;
        if done == 0 {
            return Ok((ExitCode::from(130), 0));
        }
        let (ppl, err) = total.estimate();
        let worst: Vec<Place> = worst
            .into_sorted()
            .into_iter()
            .map(|(_, (k, j, nll))| self.place(k, j, nll))
            .collect();
        if json {
            let report = json!({
                "model": self.model.info().file_name,
                "file": self.opts.file.as_ref().map(|f| f.display().to_string()),
                "n_tokens": self.tokens.len(),
                "n_ctx": self.plan.n_ctx,
                "n_chunk": self.plan.n_chunk,
                "n_chunk_done": done,
                "interrupted": interrupted,
                "scored_per_chunk": self.plan.scored_per_chunk(),
                "chunks": chunks,
                "count": total.count,
                "mean_nll": total.nll / total.count as f64,
                "ppl": ppl,
                "ppl_uncertainty": err,
                "worst": worst,
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
            if !worst.is_empty() {
                writeln!(out, "\n====== Least likely tokens ======").map_err(write_error)?;
                writeln!(
                    out,
                    "{:>4}  {:>5}  {:>5}  {:>8}  context ⟦token⟧",
                    "#", "chunk", "pos", "p"
                )
                .map_err(write_error)?;
                for (i, w) in worst.iter().enumerate() {
                    writeln!(
                        out,
                        "{:>4}  {:>5}  {:>5}  {:>8.6}  {}",
                        i + 1,
                        w.chunk,
                        w.pos,
                        w.p,
                        context_text(w)
                    )
                    .map_err(write_error)?;
                }
            }
        }
        Ok((exit(interrupted), done))
    }

    /// Against a base: llama-perplexity's `--kl-divergence` table and statistics.
    fn compared(
        &self,
        base: &str,
        n_seq: usize,
        measure: &mut dyn FnMut(
            Group,
        )
            -> Result<Vec<Vec<Position>>, crate::engine::corpus::CorpusError>,
    ) -> Result<ExitCode, Fatal> {
        let mut totals = Totals::default();
        let mut chunks = Vec::new();
        let mut by_kld = Largest::new(self.opts.worst);
        let mut by_drop = Largest::new(self.opts.worst);
        let mut out = std::io::stdout().lock();
        let json = self.opts.json;
        if !json {
            writeln!(out, "{TABLE_HEADER}").map_err(write_error)?;
        }
        let done = self.passes("kl_divergence", n_seq, measure, &mut |k, positions| {
            for (j, p) in positions.iter().enumerate() {
                totals.add(p);
                by_kld.offer(p.kld, || (k, j, *p));
                by_drop.offer(-p.p_diff(), || (k, j, *p));
            }
            if json {
                chunks.push(json!({"chunk": k + 1, "line": totals.chunk_line(k + 1)}));
            } else {
                writeln!(out, "{}", totals.chunk_line(k + 1)).map_err(write_error)?;
                out.flush().map_err(write_error)?;
            }
            Ok(())
        })?;
        let interrupted = done < self.plan.n_chunk;
        if done == 0 {
            return Ok(ExitCode::from(130));
        }
        let summary = totals.summary();
        let list = |l: Largest<(usize, usize, Position)>| -> Vec<Place> {
            l.into_sorted()
                .into_iter()
                .map(|(_, (k, j, p))| self.compared_place(k, j, &p))
                .collect()
        };
        let (by_kld, by_drop) = (list(by_kld), list(by_drop));
        if json {
            let report = json!({
                "model": self.model.info().file_name,
                "base": base,
                "n_ctx": self.plan.n_ctx,
                "n_chunk": self.plan.n_chunk,
                "n_chunk_done": done,
                "interrupted": interrupted,
                "chunks": chunks,
                "summary": summary,
                "worst_kld": by_kld,
                "worst_p_drop": by_drop,
            });
            writeln!(out, "{report}").map_err(write_error)?;
        } else {
            writeln!(out).map_err(write_error)?;
            match summary {
                Some(s) => write!(out, "{}", s.text()),
                None => writeln!(
                    out,
                    "(fewer than 100 positions: no statistics, as llama-perplexity)"
                ),
            }
            .map_err(write_error)?;
            for (title, list) in [
                ("largest KL divergence", &by_kld),
                ("largest drop in p", &by_drop),
            ] {
                if list.is_empty() {
                    continue;
                }
                writeln!(out, "\n====== Positions with the {title} ======").map_err(write_error)?;
                writeln!(
                    out,
                    "{:>4}  {:>5}  {:>5}  {:>9}  {:>8}  {:>8}  context ⟦token⟧  [most likely: model | base]",
                    "#", "chunk", "pos", "KLD", "p", "p(base)"
                )
                .map_err(write_error)?;
                for (i, w) in list.iter().enumerate() {
                    let f = |v: Option<f64>| v.unwrap_or(f64::NAN);
                    writeln!(
                        out,
                        "{:>4}  {:>5}  {:>5}  {:>9.6}  {:>8.6}  {:>8.6}  {}  [{} | {}]",
                        i + 1,
                        w.chunk,
                        w.pos,
                        f(w.kld),
                        w.p,
                        f(w.p_base),
                        context_text(w),
                        w.top.as_deref().unwrap_or(""),
                        w.top_base.as_deref().unwrap_or("")
                    )
                    .map_err(write_error)?;
                }
            }
        }
        Ok(exit(interrupted))
    }

    /// Where a scored position is: chunk (from 1), position in the chunk (its row predicts the
    /// token after it), the actual token and the text around it, with the model's −ln p.
    fn place(&self, k: usize, j: usize, nll: f64) -> Place {
        let pos = self.plan.first() + j;
        let chunk = chunk_tokens(self.model, self.tokens, &self.plan, k);
        let vocab = self.model.vocab();
        let text = |ids: &[u32]| {
            let bytes: Vec<u8> = ids
                .iter()
                .filter(|&&id| !vocab.piece(id).is_some_and(|p| p.special))
                .flat_map(|&id| vocab.bytes(id).to_vec())
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let target = chunk[pos + 1];
        Place {
            chunk: k + 1,
            pos,
            index: k * self.plan.n_ctx + pos + 1,
            token_id: target,
            token: text(&[target]),
            before: text(&chunk[pos.saturating_sub(24)..=pos]),
            after: text(&chunk[(pos + 2).min(chunk.len())..(pos + 10).min(chunk.len())]),
            nll,
            p: (-nll).exp(),
            kld: None,
            nll_base: None,
            p_base: None,
            top: None,
            top_base: None,
        }
    }

    fn compared_place(&self, k: usize, j: usize, p: &Position) -> Place {
        let piece = |id: u32| self.model.vocab().display(id);
        Place {
            kld: Some(p.kld),
            nll_base: Some(p.nll_base),
            p_base: Some((-p.nll_base).exp()),
            top: Some(piece(p.top)),
            top_base: Some(piece(p.top_base)),
            ..self.place(k, j, p.nll)
        }
    }
}

/// One line of text around a position: newlines and tabs escaped, the token in ⟦ ⟧.
fn context_text(w: &Place) -> String {
    let s = |v: &str| v.replace('\n', "\\n").replace('\t', "\\t");
    let before = s(&w.before);
    let before: String = {
        let n = before.chars().count();
        before.chars().skip(n.saturating_sub(40)).collect()
    };
    format!("{before}⟦{}⟧{}", s(&w.token), s(&w.after))
}

fn exit(interrupted: bool) -> ExitCode {
    if interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    }
}

fn write_error(e: std::io::Error) -> Fatal {
    Fatal::other(format!("cannot write the results: {e}"))
}
