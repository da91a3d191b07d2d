//! The attention panel (F11): its state, its part of `update` (opening it, moving between
//! layers and heads, asking the engine for the selected position, taking the answer), and
//! the keys it handles. Pure; the drawing is `views::attention`.
//!
//! The position shown is the one that predicted the selected token (as the lens: chip j is
//! p_{j−1}, so the query at position j−1 and what it read).

pub mod panel;

pub use panel::AttentionPanel;

use crate::analysis::attention::AttentionView;
use crate::engine::EngineError;
use crate::explorer::message::Command;
use crate::explorer::state::{App, Inspect};
use crate::explorer::worker::protocol::{Epoch, Job};

/// F11: open the panel, or close it when open.
pub fn toggle(app: &mut App) {
    crate::explorer::inspect::toggle(app, Inspect::Attention);
}

/// Move the selected layer (`dl`) or head (`dh`) by one, within the model's; `false` (the
/// key goes on to the next binding) while the panel is closed.
pub fn step(app: &mut App, dl: isize, dh: isize) -> bool {
    if app.inspect != Inspect::Attention {
        return false;
    }
    let panel = &mut app.attention;
    let (n_layer, n_head) = match panel.slot.answer() {
        Some((_, Ok(v))) => (v.facts.n_layer, v.facts.n_head),
        _ => return true,
    };
    panel.layer = panel.layer.saturating_add_signed(dl).min(n_layer - 1);
    panel.head = panel.head.saturating_add_signed(dh).min(n_head - 1);
    true
}

/// The position the panel shows: the one that predicted the selected token, or the last.
pub fn shown_position(app: &App) -> Option<usize> {
    let n = app.scored()?.tokens.len();
    Some(app.selected_position().unwrap_or(0).min(n.checked_sub(1)?))
}

/// Ask for the selected position's attention when the panel is open and lacks it.
pub fn request(app: &mut App) -> Vec<Command> {
    if app.inspect != Inspect::Attention || app.stale() {
        return Vec::new();
    }
    let Some(position) = shown_position(app) else {
        return Vec::new();
    };
    let text = app.scored().map(|s| s.text.clone()).unwrap_or_default();
    let slot = &mut app.attention.slot;
    // Unavailable is for every position of the text.
    let Some((request, epoch)) = slot.ask(&text, position, |p, a| a.is_err() || *p == position)
    else {
        return Vec::new();
    };
    vec![Command::Run(Job::Attention {
        request,
        epoch,
        text,
        position,
    })]
}

/// Take the engine's answer (an answer for another text is dropped).
pub fn on_answer(
    app: &mut App,
    epoch: Epoch,
    position: usize,
    result: Result<AttentionView, EngineError>,
) {
    let panel = &mut app.attention;
    let shape = result
        .as_ref()
        .ok()
        .map(|v| (v.facts.n_layer, v.facts.n_head));
    if panel.slot.take(epoch, position, result.map(Box::new)) {
        if let Some((n_layer, n_head)) = shape {
            panel.layer = panel.layer.min(n_layer.saturating_sub(1));
            panel.head = panel.head.min(n_head.saturating_sub(1));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::analysis::attention::{digest, AttentionFacts, AttentionMap};
    use crate::explorer::inspect::tests::app_with;
    use crate::explorer::worker::protocol::LensRequest;

    fn view(position: usize) -> AttentionView {
        let tokens = vec![1, 2, 3];
        let facts = AttentionFacts {
            n_layer: 2,
            n_head: 2,
            n_head_kv: 1,
            windows: vec![None, None],
        };
        let cells = [1.0, 0.0, 0.0];
        let rows = (0..2 * 3 * 2)
            .map(|i| digest(&cells, (i / 2) % 3, &tokens, None, 1))
            .collect();
        let map = AttentionMap {
            facts,
            tokens,
            rows,
            full: (0..3).map(|p| (p, vec![0.0; 12])).collect(),
        };
        map.view(position, 0.5).unwrap()
    }

    fn asked(cmds: &[Command]) -> Option<(u64, usize)> {
        cmds.iter().find_map(|c| match c {
            Command::Run(Job::Attention {
                request: LensRequest(r),
                position,
                ..
            }) => Some((*r, *position)),
            _ => None,
        })
    }

    #[test]
    fn the_selected_position_is_asked_for_once_while_open() {
        let mut app = app_with(3);
        assert!(request(&mut app).is_empty(), "closed");
        toggle(&mut app);
        assert_eq!(asked(&request(&mut app)), Some((1, 2)));
        assert!(request(&mut app).is_empty(), "asked already");
        let epoch = app.attention.slot.epoch();
        on_answer(&mut app, epoch, 2, Ok(view(2)));
        assert!(app.attention.view_at(2).is_some());
        assert!(request(&mut app).is_empty(), "answered");
        app.selected = 1;
        assert_eq!(asked(&request(&mut app)), Some((2, 0)));
        // An answer for an older text is dropped.
        on_answer(&mut app, Epoch(epoch.0 + 7), 0, Ok(view(0)));
        assert!(app.attention.view_at(0).is_none());
    }

    #[test]
    fn layers_and_heads_move_within_the_model_only_while_open() {
        let mut app = app_with(3);
        assert!(!step(&mut app, 1, 0), "closed: the key is not ours");
        toggle(&mut app);
        request(&mut app);
        let epoch = app.attention.slot.epoch();
        on_answer(&mut app, epoch, 2, Ok(view(2)));
        assert!(step(&mut app, 5, 1));
        assert_eq!((app.attention.layer, app.attention.head), (1, 1));
        step(&mut app, -9, -1);
        assert_eq!((app.attention.layer, app.attention.head), (0, 0));
    }

    #[test]
    fn an_unavailable_answer_is_kept_and_not_asked_again() {
        let mut app = app_with(3);
        toggle(&mut app);
        request(&mut app);
        let epoch = app.attention.slot.epoch();
        on_answer(
            &mut app,
            epoch,
            2,
            Err(EngineError::Unavailable("flash attention".into())),
        );
        app.selected = 1;
        assert!(request(&mut app).is_empty());
        assert_eq!(
            app.attention.unavailable().map(ToString::to_string),
            Some("flash attention".to_string())
        );
    }
}
