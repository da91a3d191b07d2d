//! The engine thread: loads the model, owns its llama.cpp contexts, takes the newest job of the
//! highest-priority kind from the [`JobQueue`] and answers with [`EngineMsg`]s. One handler
//! per [`JobKind`]. A running job stops early (between decodes) once it is superseded.
//!
//! A panic on this thread is caught and reported as [`EngineMsg::Crashed`]: the explorer then
//! ends with the panic's message instead of waiting for an answer that never comes.

pub mod protocol;
pub mod queue;

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

use crate::engine::compare::check_same_vocabulary;
use crate::engine::fill::{FillError, FillRequest};
use crate::engine::workbench::{LensAsk, Workbench};
use crate::engine::EngineError;
use crate::explorer::update::Msg;
use crate::model::{Model, ModelOptions};
use protocol::{EngineMsg, Job, JobKind, Scored, ScoredCompare, TextGen, TraceUpdate};
use queue::JobQueue;

/// The engine thread's name (the panic hook recognises it).
pub const THREAD_NAME: &str = "engine";

/// Start the engine thread: load the model (reporting progress), then serve jobs until the
/// queue shuts down.
pub fn spawn(
    options: ModelOptions,
    second: Option<ModelOptions>,
    start: Start,
    jobs: Arc<JobQueue>,
    tx: Sender<Msg>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || guarded(&tx, || serve(options, second, start, &jobs, &tx)))
}

/// What the model starts with: `--ablate` and the control vectors of the flags.
#[derive(Debug, Clone, Default)]
pub struct Start {
    pub ablate: String,
    pub steering: crate::model::Intervention,
}

fn send(tx: &Sender<Msg>, m: EngineMsg) {
    let _ = tx.send(Msg::Engine(m));
}

/// Run `body`, turning a panic into [`EngineMsg::Crashed`] with the panic's message.
pub fn guarded(tx: &Sender<Msg>, body: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        tracing::error!("the engine thread panicked: {message}");
        send(tx, EngineMsg::Crashed(message));
    }
}

/// Load a model, reporting progress as the part `[from, from + span)` of the whole load.
fn load(
    options: &ModelOptions,
    tx: &Sender<Msg>,
    from: f32,
    span: f32,
) -> Result<Model, EngineError> {
    let progress_tx = tx.clone();
    // Test hook: stretch the load so a test can act while it is in progress.
    let slow_ms: u64 = std::env::var("LOGITSCOPE_TEST_SLOW_LOAD_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    crate::model::load(options, move |p| {
        let _ = progress_tx.send(Msg::Engine(EngineMsg::LoadProgress(from + span * p)));
        if slow_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(slow_ms));
        }
        true
    })
    .map_err(EngineError::from)
}

fn serve(
    options: ModelOptions,
    second: Option<ModelOptions>,
    start: Start,
    jobs: &JobQueue,
    tx: &Sender<Msg>,
) {
    let span = if second.is_some() { 0.5 } else { 1.0 };
    let model = match load(&options, tx, 0.0, span) {
        Ok(m) => m,
        Err(e) => return send(tx, EngineMsg::LoadFailed(e)),
    };
    let model_b = match second.as_ref().map(|o| load(o, tx, 0.5, 0.5)).transpose() {
        Ok(b) => b,
        Err(e) => return send(tx, EngineMsg::LoadFailed(e)),
    };
    if let Some(b) = &model_b {
        if let Err(why) = check_same_vocabulary(&model, b) {
            return send(tx, EngineMsg::LoadFailed(EngineError::Refused(why)));
        }
    }
    let mut bench = match Workbench::new(&model, model_b.as_ref()) {
        Ok(w) => w,
        Err(e) => return send(tx, EngineMsg::LoadFailed(e.into())),
    };
    // The flags' intervention, before anything is evaluated (a bad one fails the start).
    let (label, intact) = match bench.intervene(&start.ablate, Some(&start.steering)) {
        Ok(x) => x,
        Err(e) => return send(tx, EngineMsg::LoadFailed(e)),
    };
    // The layout self-check runs now, before typing starts, so the status bar can say when the
    // model is scored one sequence at a time or from scratch.
    model.layout();
    if let Some(b) = &model_b {
        b.layout();
    }
    send(
        tx,
        EngineMsg::Loaded {
            info: crate::model::ModelInfo {
                intervention: label,
                ..model.info()
            },
            vocab: model.vocab().clone(),
            n_ctx: bench.n_ctx(),
            second: model_b.as_ref().map(Model::info).or(intact),
        },
    );
    while let Some(job) = jobs.take() {
        if jobs.superseded(&job) {
            continue;
        }
        let cancel = || jobs.superseded(&job);
        let decodes = bench.decodes();
        match &job {
            Job::Evaluate {
                sentence,
                generation,
                text,
                view,
                watch,
                readers,
            } => evaluate(
                &mut bench,
                (*sentence, *generation),
                text,
                (*view, *readers),
                watch,
                &cancel,
                tx,
            ),
            Job::Watch {
                sentence,
                generation,
                text,
                position,
                words,
                view,
            } => match bench.watch_at(*sentence, text, *position, words, *view, &cancel) {
                Ok(Some(values)) => send(
                    tx,
                    EngineMsg::WatchedAt {
                        sentence: *sentence,
                        generation: *generation,
                        position: *position,
                        values,
                    },
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!("watch: {e}"),
            },
            Job::Fill {
                generation,
                request,
            } => fill(&mut bench, *generation, request, &cancel, tx),
            Job::Lens {
                epoch,
                text,
                view,
                first,
                hw,
                skip,
                ..
            } => {
                let pause = || jobs.urgent_waiting(JobKind::Lens);
                let ask = LensAsk {
                    first: *first,
                    hw: *hw,
                    skip,
                };
                let epoch = *epoch;
                bench.lens(text, *view, &ask, &cancel, &pause, &mut |update| {
                    send(tx, EngineMsg::Lens { epoch, update })
                })
            }
            Job::Attention {
                epoch,
                text,
                position,
                ..
            } => {
                let started = std::time::Instant::now();
                let result = bench.attention(text, *position);
                tracing::debug!(
                    "attention of position {position} ready in {} ms",
                    started.elapsed().as_millis()
                );
                send(
                    tx,
                    EngineMsg::Attention {
                        epoch: *epoch,
                        position: *position,
                        result,
                    },
                )
            }
            Job::Intervene { ablate, .. } => send(
                tx,
                EngineMsg::Intervened {
                    ablate: ablate.clone(),
                    result: bench.intervene(ablate, None),
                },
            ),
            Job::Trace {
                epoch,
                clean,
                corrupt,
                temp,
                ..
            } => {
                let epoch = *epoch;
                // Typing (an evaluation waiting) or a change of the model stops the trace;
                // other jobs (a watched word at the selection) wait for it.
                let stop = || cancel() || jobs.evaluation_waiting();
                let mut last: Option<Instant> = None;
                let update =
                    match bench.trace(clean, corrupt, *temp, &stop, &mut |report, done, total| {
                        // Cells now and then: a grid's clone per decode is cheap, but the
                        // screen needs no more than a few a second.
                        if last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_millis(150))
                        {
                            last = Some(Instant::now());
                            let report = Box::new(report.clone());
                            send(
                                tx,
                                EngineMsg::Trace {
                                    epoch,
                                    update: TraceUpdate::Progress {
                                        report,
                                        done,
                                        total,
                                    },
                                },
                            );
                        }
                    }) {
                        Ok(Some(r)) => TraceUpdate::Done(Box::new(r)),
                        Ok(None) => TraceUpdate::Stopped,
                        Err(e) => TraceUpdate::Failed(e),
                    };
                send(tx, EngineMsg::Trace { epoch, update })
            }
            Job::Attribution {
                epoch,
                text,
                position,
                target,
                ..
            } => {
                let started = std::time::Instant::now();
                let result = bench.attribution(text, *position, *target);
                tracing::debug!(
                    "attribution of position {position} ready in {} ms",
                    started.elapsed().as_millis()
                );
                send(
                    tx,
                    EngineMsg::Attribution {
                        epoch: *epoch,
                        position: *position,
                        target: *target,
                        result,
                    },
                )
            }
        }
        tracing::debug!(
            "{:?} job: {} decode(s) of the sentences and the readers (fills not counted)",
            job.kind(),
            bench.decodes() - decodes
        );
    }
}

/// Test hook: a text containing this panics the engine thread (tests/pty.rs proves that the
/// explorer then ends with the message instead of hanging).
const TEST_PANIC_MARKER: &str = "\u{1F4A5}panic-the-engine\u{1F4A5}";

fn evaluate(
    bench: &mut Workbench<'_>,
    (sentence, generation): (usize, TextGen),
    text: &str,
    (view, readers): (crate::analysis::stats::ViewOptions, bool),
    watch: &[String],
    cancel: &dyn Fn() -> bool,
    tx: &Sender<Msg>,
) {
    if text.contains(TEST_PANIC_MARKER)
        && std::env::var_os("LOGITSCOPE_TEST_ENGINE_PANIC").is_some_and(|v| v == "1")
    {
        panic!("test hook: the engine was asked to panic");
    }
    let started = Instant::now();
    let result = match bench.evaluate(sentence, text, view, watch, readers, cancel) {
        Ok(None) => return,
        Ok(Some(done)) => Ok(Scored {
            text: text.to_owned(),
            tokens: done.ev.tokens,
            rows: done.ev.rows,
            n_tokens_total: done.ev.n_tokens_total,
            view,
            elapsed: started.elapsed(),
            decoded: done.ev.decoded,
            compare: done
                .compare
                .map(|(b_rows, rows)| ScoredCompare { b_rows, rows }),
        }),
        Err(e) => Err(e.into()),
    };
    send(
        tx,
        EngineMsg::Evaluated {
            sentence,
            generation,
            result,
        },
    );
}

fn fill(
    bench: &mut Workbench<'_>,
    generation: TextGen,
    request: &FillRequest,
    cancel: &dyn Fn() -> bool,
    tx: &Sender<Msg>,
) {
    let started = Instant::now();
    let mut last = (0, 0);
    let result = bench.fill(request, cancel, &mut |update| {
        let p = update.progress;
        last = (p.settled, p.planned);
        send(
            tx,
            EngineMsg::FillProgress {
                generation,
                blank: update.blank,
                done: p.settled,
                total: p.planned,
                searched: p.searched,
                partial: update.partial.map(Box::new),
            },
        )
    });
    let ms = started.elapsed().as_millis();
    match &result {
        Err(FillError::Cancelled) => tracing::info!(
            "fill {} cancelled by newer input after {ms} ms ({}/{} candidates)",
            generation.0,
            last.0,
            last.1
        ),
        Err(e) => tracing::info!("fill {} failed after {ms} ms: {e}", generation.0),
        Ok(r) => tracing::info!(
            "fill {} done in {ms} ms: {} blank(s), {} candidates, searched {}",
            generation.0,
            r.blanks.len(),
            r.blanks.iter().map(|b| b.candidates.len()).sum::<usize>(),
            r.blanks
                .iter()
                .map(|b| b.coverage.map_or(0, |c| c.searched))
                .sum::<usize>()
        ),
    }
    if !matches!(result, Err(FillError::Cancelled)) {
        send(
            tx,
            EngineMsg::Filled {
                generation,
                result: result.map(Box::new).map_err(EngineError::from),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_panic_becomes_a_crash_message() {
        let (tx, rx) = std::sync::mpsc::channel();
        // The default hook would print the panic; keep the test output clean.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        guarded(&tx, || panic!("boom {}", 42));
        std::panic::set_hook(hook);
        match rx.try_recv().unwrap() {
            Msg::Engine(EngineMsg::Crashed(m)) => assert_eq!(m, "boom 42"),
            other => panic!("unexpected {other:?}"),
        }
        guarded(&tx, || {});
        assert!(rx.try_recv().is_err(), "no message without a panic");
    }
}
