//! The trace view (F6 … Ctrl-Y in a minimal pair): causal tracing of sentence A (clean)
//! against sentence B (corrupt). Its state, its part of `update` (opening it, asking the
//! engine for the grid when the pair changes, taking the cells as they come, choosing a
//! cell) and its keys. Pure; the drawing is `views::trace`.
//!
//! The grid fills in as the engine computes it (anytime) and is asked for again whenever
//! either sentence changes; typing stops a running trace (the engine drops it for the
//! evaluation), and it starts over once both sentences are scored again.

pub mod panel;

pub use panel::{TraceAnswer, TracePanel};

use crate::explorer::message::Command;
use crate::explorer::state::{App, Inspect};
use crate::explorer::worker::protocol::{Cancel, Epoch, Job, TraceUpdate};

/// Ctrl-Y: open the view, or close it when open (a running trace is stopped: it is asked
/// for again when the view opens).
pub fn toggle(app: &mut App) -> Vec<Command> {
    crate::explorer::inspect::toggle(app, Inspect::Trace);
    if app.inspect == Inspect::Trace || !app.trace.running() {
        return Vec::new();
    }
    stop(app)
}

/// Stop the running trace (the view closed, the pair gone).
fn stop(app: &mut App) -> Vec<Command> {
    vec![Command::Cancel(Cancel::Trace(app.trace.slot.cancel()))]
}

/// The (clean, corrupt) texts to trace: both sentences of the pair, each scored as it reads
/// now; `None` outside a pair or while either is being evaluated.
fn pair_texts(app: &App) -> Option<(String, String)> {
    let (a, b) = app.pair()?;
    let (sa, sb) = (a.scored.as_ref()?, b.scored.as_ref()?);
    if app.stale() || sa.text.is_empty() || sb.text.is_empty() {
        return None;
    }
    Some((sa.text.clone(), sb.text.clone()))
}

/// The position shown: the selected token (of B; of A, the same index, when A is edited),
/// within the corrupt text's tokens.
pub fn shown_position(app: &App) -> Option<usize> {
    let n = app.trace.report()?.corrupt_tokens.len();
    Some(app.selected_token().min(n.checked_sub(1)?))
}

/// Ask for the trace of the pair when the view is open and lacks it.
pub fn request(app: &mut App) -> Vec<Command> {
    if app.inspect != Inspect::Trace {
        return Vec::new();
    }
    if app.pair().is_none() && app.trace.running() {
        // The second line was closed under a running trace.
        return stop(app);
    }
    let Some(texts) = pair_texts(app) else {
        return Vec::new();
    };
    // Asked once per pair (a new pair is a new epoch, its grid starts empty), and again
    // after a stop until the grid is complete or has failed.
    let Some((request, epoch)) = app
        .trace
        .slot
        .ask(&texts, (), |_, a| a.done || a.error.is_some())
    else {
        return Vec::new();
    };
    vec![Command::Run(Job::Trace {
        request,
        epoch,
        clean: texts.0,
        corrupt: texts.1,
        temp: app.view.temp,
    })]
}

pub fn on_update(app: &mut App, epoch: Epoch, update: TraceUpdate) {
    let panel = &mut app.trace;
    let so_far = |held: Option<TraceAnswer>| held.unwrap_or_default();
    match update {
        TraceUpdate::Progress {
            report,
            done,
            total,
        } => {
            panel.slot.update(epoch, |held| TraceAnswer {
                progress: (done, total),
                report: Some(report),
                ..so_far(held)
            });
        }
        TraceUpdate::Done(report) => {
            let total = report.grids.iter().map(|g| g.cells.len()).sum();
            let layers = report.n_layer;
            if panel.slot.update(epoch, |held| TraceAnswer {
                progress: (total, total),
                report: Some(report),
                done: true,
                ..so_far(held)
            }) {
                panel.layer = panel.layer.min(layers.saturating_sub(1));
            }
            panel.slot.settle(epoch);
        }
        TraceUpdate::Stopped => panel.slot.settle(epoch),
        TraceUpdate::Failed(e) => {
            panel.slot.update(epoch, |held| TraceAnswer {
                error: Some(e),
                ..so_far(held)
            });
            panel.slot.settle(epoch);
        }
    }
}

/// Alt/Shift-↑↓: the layer above or below; `false` (the key goes on) while closed.
pub fn step(app: &mut App, d: isize) -> bool {
    if app.inspect != Inspect::Trace {
        return false;
    }
    let n = app.trace.report().map_or(1, |r| r.n_layer);
    let panel = &mut app.trace;
    panel.layer = panel
        .layer
        .saturating_add_signed(d)
        .min(n.saturating_sub(1));
    true
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::analysis::trace::{Baselines, Grid, Outcome, TokenRef, TraceReport, What, Work};
    use crate::engine::EngineError;
    use crate::explorer::inspect::tests::app_with;
    use crate::explorer::worker::protocol::LensRequest;
    use crate::explorer::worker::protocol::Scored;

    /// A report of `n_layer` layers over the corrupt tokens `tokens`, its grid empty (the
    /// screen's tests, tests/ui.rs, fill grids in).
    pub(crate) fn report(n_layer: usize, tokens: &[&str]) -> TraceReport {
        let tok = |i: usize, t: &str| TokenRef {
            id: i as u32,
            token: t.into(),
            bytes: t.as_bytes().to_vec(),
        };
        let o = Outcome {
            p: 0.5,
            logprob: 0.5f64.ln(),
            logit_diff: None,
            top_logprobs: vec![],
        };
        let refs: Vec<TokenRef> = tokens.iter().enumerate().map(|(i, t)| tok(i, t)).collect();
        TraceReport {
            clean: "clean".into(),
            corrupt: "corrupt".into(),
            model: "m".into(),
            n_layer,
            layers: (0..n_layer).collect(),
            clean_tokens: refs.clone(),
            corrupt_tokens: refs,
            differing: vec![1],
            alignment: None,
            answer: tok(9, " Paris"),
            against: None,
            baselines: Baselines {
                clean: o.clone(),
                corrupt: o,
            },
            grids: vec![Grid {
                what: What::Resid,
                node: "l_out-{layer}".into(),
                cells: vec![],
            }],
            work: Work::default(),
            intervention: None,
        }
    }

    fn pair_app() -> App {
        let mut app = app_with(3);
        app.sentences.push(app.sentences[0].clone());
        let s: Scored = app.sentences[1].scored.clone().unwrap();
        app.sentences[1].scored = Some(Scored {
            text: "a b d".into(),
            ..s
        });
        app
    }

    fn asked(cmds: &[Command]) -> Option<(u64, String, String)> {
        cmds.iter().find_map(|c| match c {
            Command::Run(Job::Trace {
                request: LensRequest(r),
                clean,
                corrupt,
                ..
            }) => Some((*r, clean.clone(), corrupt.clone())),
            _ => None,
        })
    }

    #[test]
    fn the_pair_is_traced_once_and_again_when_it_changes() {
        let mut app = app_with(3);
        toggle(&mut app);
        assert!(
            request(&mut app).is_empty(),
            "one sentence: nothing to trace"
        );
        let mut app = pair_app();
        assert!(request(&mut app).is_empty(), "closed");
        toggle(&mut app);
        assert_eq!(
            asked(&request(&mut app)),
            Some((1, "a b c".into(), "a b d".into()))
        );
        assert!(request(&mut app).is_empty(), "running");
        let epoch = app.trace.epoch();
        let r = Box::new(report(4, &["a", " b", " d"]));
        on_update(
            &mut app,
            epoch,
            TraceUpdate::Progress {
                report: r.clone(),
                done: 3,
                total: 12,
            },
        );
        assert_eq!(app.trace.progress(), (3, 12));
        on_update(&mut app, epoch, TraceUpdate::Stopped);
        assert!(asked(&request(&mut app)).is_some(), "stopped: asked again");
        on_update(&mut app, epoch, TraceUpdate::Done(r));
        assert!(app.trace.done() && !app.trace.running());
        assert!(request(&mut app).is_empty(), "done");
        assert!(step(&mut app, 9));
        assert_eq!(app.trace.layer, 3, "clamped to the layers there are");
        // B changes: a new epoch, the old grid gone, answers for the old one dropped.
        app.sentences[1].scored.as_mut().unwrap().text = "a b e".into();
        assert_eq!(asked(&request(&mut app)).map(|a| a.2), Some("a b e".into()));
        assert!(app.trace.report().is_none());
        on_update(
            &mut app,
            epoch,
            TraceUpdate::Failed(EngineError::Refused("old".into())),
        );
        assert!(app.trace.error().is_none());
        // Closing the view stops the running trace.
        assert!(matches!(
            &toggle(&mut app)[..],
            [Command::Cancel(Cancel::Trace(_))]
        ));
        assert!(!step(&mut app, 1), "closed: the key is not ours");
    }
}
