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

use crate::engine::compare::{check_same_vocabulary, evaluate_compared, PairCache};
use crate::engine::fill::{FillError, FillRequest, Filler};
use crate::engine::lens::Lenses;
use crate::engine::watch::{resolve, single_ids};
use crate::explorer::update::Msg;
use crate::model::{Model, ModelOptions, Session};
use protocol::{EngineMsg, Job, JobKind, LensUpdate, Scored, ScoredCompare};
use queue::JobQueue;

/// The engine thread's name (the panic hook recognises it).
pub const THREAD_NAME: &str = "engine";

/// Start the engine thread: load the model (reporting progress), then serve jobs until the
/// queue shuts down.
pub fn spawn(
    options: ModelOptions,
    second: Option<ModelOptions>,
    jobs: Arc<JobQueue>,
    tx: Sender<Msg>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || guarded(&tx, || serve(options, second, &jobs, &tx)))
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

/// The engine's state while it serves jobs.
struct Engine<'m> {
    model: &'m Model,
    main: Session<'m>,
    filler: Filler<'m>,
    /// The second model's session and the comparisons of the cached prefix (`--vs`).
    second: Option<(Session<'m>, PairCache)>,
    /// The logit lens, made when first asked for.
    lenses: Lenses<'m>,
}

/// Load a model, reporting progress as the part `[from, from + span)` of the whole load.
fn load(options: &ModelOptions, tx: &Sender<Msg>, from: f32, span: f32) -> Result<Model, String> {
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
    .map_err(|e| e.to_string())
}

fn serve(options: ModelOptions, second: Option<ModelOptions>, jobs: &JobQueue, tx: &Sender<Msg>) {
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
            return send(tx, EngineMsg::LoadFailed(why));
        }
    }
    let sessions = model.session().and_then(|main| {
        let b = model_b.as_ref().map(Model::session).transpose()?;
        Ok((main, b))
    });
    let (main, b) = match sessions {
        Ok(s) => s,
        Err(e) => return send(tx, EngineMsg::LoadFailed(e.to_string())),
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
            info: model.info(),
            vocab: model.vocab().clone(),
            n_ctx: main.n_ctx(),
            second: model_b.as_ref().map(Model::info),
        },
    );
    let mut engine = Engine {
        model: &model,
        main,
        filler: Filler::new(&model),
        second: b.map(|s| (s, PairCache::default())),
        lenses: Lenses::new(&model),
    };
    while let Some(job) = jobs.take() {
        if jobs.superseded(&job) {
            continue;
        }
        let cancel = || jobs.superseded(&job);
        match &job {
            Job::Evaluate {
                generation,
                text,
                view,
                watch,
            } => {
                let ids = single_ids(&resolve(engine.model, watch));
                engine.main.set_watch(&ids);
                evaluate(&mut engine, generation.0, text, *view, &cancel, tx)
            }
            Job::Watch {
                generation,
                text,
                position,
                words,
                view,
            } => watch_at(
                &mut engine,
                generation.0,
                text,
                *position,
                words,
                *view,
                &cancel,
                tx,
            ),
            Job::Fill {
                generation,
                request,
            } => fill(&mut engine, generation.0, request, &cancel, tx),
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
                    epoch: *epoch,
                    first: *first,
                    hw: *hw,
                    skip,
                };
                lens(&mut engine, text, *view, &ask, &cancel, &pause, tx)
            }
        }
    }
}

/// Test hook: a text containing this panics the engine thread (tests/pty.rs proves that the
/// explorer then ends with the message instead of hanging).
const TEST_PANIC_MARKER: &str = "\u{1F4A5}panic-the-engine\u{1F4A5}";

fn evaluate(
    engine: &mut Engine<'_>,
    generation: u64,
    text: &str,
    view: crate::analysis::stats::ViewOptions,
    cancel: &dyn Fn() -> bool,
    tx: &Sender<Msg>,
) {
    if text.contains(TEST_PANIC_MARKER)
        && std::env::var_os("LOGITSCOPE_TEST_ENGINE_PANIC").is_some_and(|v| v == "1")
    {
        panic!("test hook: the engine was asked to panic");
    }
    let started = Instant::now();
    let tokens = engine.model.tokenize(text);
    let evaluated = match &mut engine.second {
        Some((b, cache)) => evaluate_compared(&mut engine.main, b, cache, &tokens, view, cancel)
            .map(|c| {
                let compare = ScoredCompare {
                    b_rows: c.b.rows,
                    rows: c.rows,
                };
                (c.a, Some(compare))
            }),
        None => engine
            .main
            .evaluate(&tokens, view, cancel)
            .map(|ev| (ev, None)),
    };
    let result = match evaluated {
        Ok((ev, _)) if ev.cancelled => return,
        Ok((ev, compare)) => Ok(Scored {
            text: text.to_owned(),
            tokens: ev.tokens,
            rows: ev.rows,
            n_tokens_total: ev.n_tokens_total,
            view,
            elapsed: started.elapsed(),
            decoded: ev.decoded,
            compare,
        }),
        Err(e) => Err(e.to_string()),
    };
    send(tx, EngineMsg::Evaluated { generation, result });
}

/// The watched words at one position: one-token words from the main session's row (the
/// text is cached, so this costs no decode), words of several tokens decoded after it.
#[allow(clippy::too_many_arguments)]
fn watch_at(
    engine: &mut Engine<'_>,
    generation: u64,
    text: &str,
    position: usize,
    words: &[String],
    view: crate::analysis::stats::ViewOptions,
    cancel: &dyn Fn() -> bool,
    tx: &Sender<Msg>,
) {
    let model = engine.model;
    let list = resolve(model, words);
    let tokens = model.tokenize(text);
    engine.main.set_watch(&single_ids(&list));
    let ev = match engine.main.evaluate(&tokens, view, cancel) {
        Ok(ev) if !ev.cancelled => ev,
        _ => return,
    };
    let Some(row) = ev.rows.get(position) else {
        return;
    };
    let mut multi = Vec::new();
    for (w, word) in list.iter().enumerate() {
        if word.single().is_some() {
            continue;
        }
        let longest = ev.tokens.len() + word.tokens.len();
        let batch = match engine.filler.batch_for(longest) {
            Ok(b) => b,
            Err(e) => return tracing::warn!("watch: {e}"),
        };
        match crate::engine::watch::continuation_logprobs(
            batch,
            &ev.tokens,
            word,
            &[position],
            view.temp,
            cancel,
        ) {
            Ok(Some(lps)) => multi.extend(lps.first().map(|&lp| (w, lp))),
            Ok(None) => return,
            Err(e) => return tracing::warn!("watch: {e}"),
        }
    }
    let values = crate::engine::watch::values(&list, row, &multi);
    send(
        tx,
        EngineMsg::WatchedAt {
            generation,
            position,
            values,
        },
    );
}

/// What a lens job asks for.
struct LensAsk<'a> {
    epoch: u64,
    first: usize,
    hw: bool,
    skip: &'a [usize],
}

/// Top tokens kept per layer for the explorer's lens.
const LENS_TOP: usize = 3;
/// Tokens the H·W panel lists.
const HW_TOKENS: usize = 8;

/// The lens of a text: its status, the column asked for first (with its H·W panel), then the
/// other columns nearest first. Stops when superseded and pauses (saying so) when more
/// urgent work waits: each column costs a pass over W per layer.
fn lens(
    engine: &mut Engine<'_>,
    text: &str,
    view: crate::analysis::stats::ViewOptions,
    ask: &LensAsk<'_>,
    cancel: &dyn Fn() -> bool,
    pause: &dyn Fn() -> bool,
    tx: &Sender<Msg>,
) {
    let epoch = ask.epoch;
    let say = |update| send(tx, EngineMsg::Lens { epoch, update });
    let tokens = engine.model.tokenize(text);
    if tokens.is_empty() {
        return;
    }
    let started = Instant::now();
    let run = match engine.lenses.run(&tokens, view.temp) {
        Ok(run) => run,
        Err(e) => return say(LensUpdate::Failed(e.to_string())),
    };
    if !run.status.available {
        return say(LensUpdate::Status(run.status.clone()));
    }
    // The rows shown for this text (the main session has them cached): each column's last
    // layer must be them, or the lens is not shown.
    let shown = match engine.main.evaluate(&tokens, view, cancel) {
        Ok(ev) if !ev.cancelled => ev.rows,
        Ok(_) => return,
        Err(e) => return say(LensUpdate::Failed(e.to_string())),
    };
    say(LensUpdate::Status(run.status.clone()));
    let mut order: Vec<usize> = (0..tokens.len())
        .filter(|p| !ask.skip.contains(p) || *p == ask.first)
        .collect();
    order.sort_by_key(|&p| p.abs_diff(ask.first));
    for p in order {
        if cancel() {
            return;
        }
        if pause() {
            return say(LensUpdate::Paused);
        }
        let asked_first = p == ask.first;
        if !asked_first || !ask.skip.contains(&p) {
            match run.column(p, LENS_TOP) {
                Ok(Some(rows)) => {
                    let gap = rows
                        .last()
                        .zip(shown.get(p))
                        .map_or(0.0, |(l, s)| crate::analysis::lens::shown_gap(l, s));
                    if gap > crate::model::lens::CHECK_TOLERANCE {
                        let mut status = run.status.clone();
                        status.available = false;
                        status.max_abs_dp_shown = Some(gap);
                        status.reason = Some(format!(
                            "the lens's last layer differs from the distribution shown at position {p} (|Δp| {gap:.2e})"
                        ));
                        return say(LensUpdate::Status(status));
                    }
                    say(LensUpdate::Column { position: p, rows })
                }
                Ok(None) => {}
                Err(e) => return say(LensUpdate::Failed(e.to_string())),
            }
        }
        if asked_first && ask.hw {
            match run.hw(p, HW_TOKENS) {
                Ok(Some(hw)) => say(LensUpdate::Hw(Box::new(hw))),
                Ok(None) => {}
                Err(e) => return say(LensUpdate::Failed(e.to_string())),
            }
        }
        if asked_first {
            tracing::debug!(
                "lens of position {p} ready {} ms after the request",
                started.elapsed().as_millis()
            );
        }
    }
}

fn fill(
    engine: &mut Engine<'_>,
    generation: u64,
    request: &FillRequest,
    cancel: &dyn Fn() -> bool,
    tx: &Sender<Msg>,
) {
    let started = Instant::now();
    let mut last = (0, 0);
    let result = engine
        .filler
        .fill(&mut engine.main, request, cancel, &mut |update| {
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
            "fill {generation} cancelled by newer input after {ms} ms ({}/{} candidates)",
            last.0,
            last.1
        ),
        Err(e) => tracing::info!("fill {generation} failed after {ms} ms: {e}"),
        Ok(r) => tracing::info!(
            "fill {generation} done in {ms} ms: {} blank(s), {} candidates, searched {}",
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
                result: result.map(Box::new).map_err(|e| e.to_string()),
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
