//! The ablation line (Ctrl-K): what is switched off in the model, edited in the status bar
//! in `--ablate` syntax (`attn:3`, `ffn:10-15`, `head:4.2`, comma-separated; empty: nothing).
//! Enter sends it to the engine; once applied, every sentence is evaluated again on the
//! changed model, compared with the intact one (the Δ the strip and the panels show), and
//! the status bar says what is off. A spec the model refuses leaves it as it was, with the
//! reason in the status bar. Pure, like the rest of `update`.

use crate::engine::EngineError;
use crate::explorer::message::Command;
use crate::explorer::state::{App, Focus};
use crate::explorer::worker::protocol::Job;
use crate::model::ModelInfo;

/// Ctrl-K: open the line with the spec in force.
pub fn edit(app: &mut App) -> Vec<Command> {
    let spec = app
        .ablation
        .pending
        .clone()
        .unwrap_or_else(|| app.ablation.spec.clone());
    app.watch_input.set_text(&spec);
    app.focus = Focus::Ablate;
    Vec::new()
}

/// Enter: ask the engine to switch the line's parts off.
pub fn apply(app: &mut App) -> Vec<Command> {
    let spec = app.watch_input.text().trim().to_owned();
    app.focus = Focus::Text;
    if spec == app.ablation.spec && app.ablation.pending.is_none() {
        return Vec::new();
    }
    app.ablation.requests = app.ablation.requests.next();
    app.ablation.pending = Some(spec.clone());
    vec![Command::Run(Job::Intervene {
        request: app.ablation.requests,
        ablate: spec,
    })]
}

/// The engine's answer: the model changed (every panel's numbers forgotten; `true`: every
/// sentence is to be evaluated again), or why not (`false`).
pub fn on_applied(
    app: &mut App,
    ablate: String,
    result: Result<(Option<String>, Option<ModelInfo>), EngineError>,
) -> bool {
    if app.ablation.pending.as_deref() == Some(ablate.as_str()) {
        app.ablation.pending = None;
    }
    let (label, second) = match result {
        Ok(x) => x,
        Err(e) => {
            app.notice = Some(format!("ablation not applied: {e}"));
            return false;
        }
    };
    app.ablation.spec = ablate;
    app.notice = None;
    if let Some(m) = &mut app.model {
        m.info.intervention = label;
        m.second = second;
    }
    // Nothing computed on the model as it was stays on screen.
    for s in &mut app.sentences {
        s.scored = None;
        s.watch_at = None;
    }
    app.lens.slot.forget();
    app.attention.slot.forget();
    app.attribution.slot.forget();
    // The trace too: asked again on the changed model (its running job is superseded).
    app.trace.slot.forget();
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::explorer::inspect::tests::app_with;
    use crate::explorer::worker::protocol::LensRequest;

    #[test]
    fn a_spec_is_sent_applied_and_everything_is_evaluated_again() {
        let mut app = app_with(3);
        edit(&mut app);
        assert_eq!(app.focus, Focus::Ablate);
        app.watch_input.set_text(" ffn:2 ");
        let cmds = apply(&mut app);
        assert!(matches!(
            &cmds[..],
            [Command::Run(Job::Intervene { request: LensRequest(1), ablate })] if ablate == "ffn:2"
        ));
        assert_eq!(app.focus, Focus::Text);
        // Refused: nothing changes but the notice.
        assert!(!on_applied(
            &mut app,
            "ffn:2".into(),
            Err(EngineError::Refused("layer 2 of 1".into()))
        ));
        assert_eq!(app.ablation.spec, "");
        assert!(app.sentences[0].scored.is_some());
        assert!(app.notice.as_deref().unwrap().contains("layer 2 of 1"));
        // Applied: the old numbers go.
        let before = app.attribution.slot.epoch();
        on_applied(
            &mut app,
            "ffn:2".into(),
            Ok((Some("ablate ffn:2".into()), None)),
        );
        assert_eq!(app.ablation.spec, "ffn:2");
        assert!(app.sentences[0].scored.is_none());
        assert_eq!(app.attribution.slot.epoch(), before.next());
        // The same spec again asks nothing.
        edit(&mut app);
        assert_eq!(app.watch_input.text(), "ffn:2");
        assert!(apply(&mut app).is_empty());
    }
}
