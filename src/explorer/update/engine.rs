//! The engine's answers: a model loaded, a sentence evaluated, a fill's progress, the lens,
//! watched words. Each is checked against the generation of what it is for and dropped when
//! older than what is shown.

use super::text::{clamp_selection, evaluate, recall, request_all};
use crate::explorer::message::Command;
use crate::explorer::state::{App, LoadedModel, Phase};
use crate::explorer::worker::protocol::EngineMsg;

pub(super) fn on_engine(app: &mut App, e: EngineMsg) -> Vec<Command> {
    match e {
        EngineMsg::LoadProgress(p) => {
            if let Phase::Loading { progress } = &mut app.phase {
                *progress = p.clamp(0.0, 1.0);
            }
            Vec::new()
        }
        EngineMsg::Loaded {
            info,
            vocab,
            n_ctx,
            second,
        } => {
            app.model = Some(LoadedModel {
                info,
                vocab,
                n_ctx,
                second,
            });
            app.phase = Phase::Ready;
            // A corpus report opens at its first entry.
            if app.report.as_ref().is_some_and(|r| r.opened.is_none()) {
                if let Some(text) = crate::explorer::report::open(app) {
                    return recall(app, &text);
                }
            }
            // Text typed while loading is evaluated now.
            request_all(app)
        }
        EngineMsg::LoadFailed(e) => {
            app.phase = Phase::Failed(e.to_string());
            Vec::new()
        }
        EngineMsg::Lost(line) => {
            app.lost = Some(line);
            Vec::new()
        }
        EngineMsg::Crashed(msg) => {
            let log = app
                .log_file
                .as_ref()
                .map(|l| format!("; the log is {l}"))
                .unwrap_or_default();
            app.phase = Phase::Failed(format!("the engine thread panicked: {msg}{log}"));
            Vec::new()
        }
        EngineMsg::Evaluated {
            sentence,
            generation,
            result,
        } => {
            let active = sentence == app.active;
            // A sentence closed since (the pair's second line) has no place for it.
            let Some(s) = app.sentences.get_mut(sentence) else {
                return Vec::new();
            };
            // A result older than the one shown (or than a cleared line) is dropped; a newer
            // request may still be running, in which case this one is shown (marked stale)
            // until it lands.
            if generation < s.shown_generation {
                return Vec::new();
            }
            match result {
                Ok(scored) => {
                    s.eval_error = None;
                    s.scored = Some(scored);
                    s.shown_generation = generation;
                    if active {
                        clamp_selection(app);
                        crate::explorer::report::place_selection(app);
                    }
                }
                Err(e) => {
                    if generation == s.generation {
                        s.eval_error = Some(e);
                        s.scored = None;
                        if active {
                            app.selected = 0;
                        }
                    }
                }
            }
            Vec::new()
        }
        EngineMsg::WatchedAt {
            sentence,
            generation,
            position,
            values,
        } => {
            if sentence == app.active && generation == app.sentence().shown_generation {
                app.sentence_mut().watch_at = Some((generation, position, values));
            }
            Vec::new()
        }
        EngineMsg::Lens { epoch, update } => {
            crate::explorer::inspect::on_update(app, epoch, update);
            Vec::new()
        }
        EngineMsg::Attention {
            epoch,
            position,
            result,
        } => {
            crate::explorer::attention::on_answer(app, epoch, position, result);
            Vec::new()
        }
        EngineMsg::Intervened { ablate, result } => {
            if crate::explorer::ablation::on_applied(app, ablate, result) {
                (0..app.sentences.len())
                    .flat_map(|n| evaluate(app, n))
                    .collect()
            } else {
                Vec::new()
            }
        }
        EngineMsg::Attribution {
            epoch,
            position,
            target,
            result,
        } => {
            crate::explorer::attribution::on_answer(app, epoch, position, target, result);
            Vec::new()
        }
        EngineMsg::Trace { epoch, update } => {
            crate::explorer::trace::on_update(app, epoch, update);
            Vec::new()
        }
        EngineMsg::FillProgress {
            generation,
            blank,
            done,
            total,
            searched,
            partial,
        } => {
            let fill = &mut app.sentence_mut().fill;
            if generation == fill.generation {
                fill.progress = Some((blank, done, total));
                fill.searched = searched;
                if let Some(r) = partial {
                    fill.report = Some(r);
                }
            }
            Vec::new()
        }
        EngineMsg::Filled { generation, result } => {
            let fill = &mut app.sentence_mut().fill;
            if generation != fill.generation {
                return Vec::new();
            }
            fill.progress = None;
            match result {
                Ok(r) => {
                    fill.report = Some(r);
                    fill.error = None;
                    // The strip now shows the sentence with its best fills.
                    evaluate(app, app.active)
                }
                Err(e) => {
                    fill.error = Some(e);
                    Vec::new()
                }
            }
        }
    }
}
