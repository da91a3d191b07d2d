//! The attribution panel (F12 / Ctrl-G): its state, its part of `update` (opening it,
//! choosing which logit to split, asking the engine for the selected position, taking the
//! answer), and the keys it handles. Pure; the drawing is `views::attribution`.
//!
//! The position shown is the one that predicted the selected token (chip j: p_{j−1}), and the
//! logit split is that token's by default; Alt/Shift-↑↓ go through the position's most likely
//! tokens instead.

pub mod panel;

pub use panel::AttributionPanel;

use crate::analysis::attribution::Attribution;
use crate::engine::EngineError;
use crate::explorer::message::Command;
use crate::explorer::state::{App, Inspect};
use crate::explorer::worker::protocol::{Epoch, Job};

/// F12: open the panel, or close it when open.
pub fn toggle(app: &mut App) {
    crate::explorer::inspect::toggle(app, Inspect::Attribution);
}

/// The logits the panel can split at `position`: the token that follows (`None`), then the
/// position's most likely tokens other than it; at the last position, the most likely ones.
pub fn targets(app: &App, position: usize) -> Vec<Option<u32>> {
    let Some(s) = app.scored() else {
        return Vec::new();
    };
    let actual = s.tokens.get(position + 1).copied();
    let top = s
        .rows
        .get(position)
        .map(|r| r.top.iter().map(|t| t.id).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut v: Vec<Option<u32>> = Vec::new();
    if actual.is_some() {
        v.push(None);
    }
    v.extend(top.into_iter().filter(|&t| Some(t) != actual).map(Some));
    v
}

/// The (position, target) the panel shows.
pub fn shown(app: &App) -> Option<(usize, Option<u32>)> {
    let position = crate::explorer::attention::shown_position(app)?;
    let t = targets(app, position);
    let target = *t.get(app.attribution.choice.min(t.len().checked_sub(1)?))?;
    Some((position, target))
}

/// The token a target names at `position` (`None`: the one that follows).
pub fn target_id(app: &App, position: usize, target: Option<u32>) -> Option<u32> {
    target.or_else(|| app.scored()?.tokens.get(position + 1).copied())
}

/// Alt/Shift-↑↓: the previous or next logit to split; `false` (the key goes on) while the
/// panel is closed.
pub fn step(app: &mut App, d: isize) -> bool {
    if app.inspect != Inspect::Attribution {
        return false;
    }
    let n = crate::explorer::attention::shown_position(app).map_or(0, |p| targets(app, p).len());
    let panel = &mut app.attribution;
    panel.choice = panel
        .choice
        .saturating_add_signed(d)
        .min(n.saturating_sub(1));
    true
}

/// Ask for the split shown when the panel is open and lacks it.
pub fn request(app: &mut App) -> Vec<Command> {
    if app.inspect != Inspect::Attribution || app.stale() {
        return Vec::new();
    }
    let Some((position, target)) = shown(app) else {
        return Vec::new();
    };
    let text = app.scored().map(|s| s.text.clone()).unwrap_or_default();
    let key = (position, target);
    let Some((request, epoch)) = app.attribution.slot.ask(&text, key, |k, _| *k == key) else {
        return Vec::new();
    };
    vec![Command::Run(Job::Attribution {
        request,
        epoch,
        text,
        position,
        target,
    })]
}

/// Take the engine's answer (an answer for another text is dropped).
pub fn on_answer(
    app: &mut App,
    epoch: Epoch,
    position: usize,
    target: Option<u32>,
    result: Result<Attribution, EngineError>,
) {
    app.attribution
        .slot
        .take(epoch, (position, target), result.map(Box::new));
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::analysis::attribution::{Kind, LayerHeads, Part};
    use crate::explorer::inspect::tests::app_with;
    use crate::explorer::worker::protocol::LensRequest;

    /// A split of 2 layers of 3 heads at `position` for `target`.
    pub(crate) fn split(position: usize, target: u32) -> Attribution {
        let parts = vec![
            Part::new(Kind::Embed, None, 0.25),
            Part::new(Kind::Attn, Some(0), -1.5),
            Part::new(Kind::Ffn, Some(0), 0.75),
            Part::new(Kind::Attn, Some(1), 2.0),
            Part::new(Kind::Ffn, Some(1), 3.5),
            Part::new(Kind::Rest, None, 1e-7),
        ];
        let sum = parts.iter().map(|p| p.value).sum();
        Attribution {
            position,
            target,
            target_text: " salt".into(),
            parts,
            sum,
            logit_f64: sum,
            llama: (sum - 0.01) as f32,
            rounding: 0.02,
            post: None,
            heads: Some(vec![
                LayerHeads {
                    layer: 0,
                    heads: vec![-1.0, -0.25, -0.2],
                    rest: -0.05,
                },
                LayerHeads {
                    layer: 1,
                    heads: vec![0.5, 1.25, 0.2],
                    rest: 0.05,
                },
            ]),
            heads_unavailable: None,
        }
    }

    fn asked(cmds: &[Command]) -> Option<(u64, usize, Option<u32>)> {
        cmds.iter().find_map(|c| match c {
            Command::Run(Job::Attribution {
                request: LensRequest(r),
                position,
                target,
                ..
            }) => Some((*r, *position, *target)),
            _ => None,
        })
    }

    #[test]
    fn the_selected_logit_is_asked_for_once_while_open() {
        let mut app = app_with(3);
        // The selected chip is the next prediction (position 2): its most likely token.
        assert!(request(&mut app).is_empty(), "closed");
        toggle(&mut app);
        assert_eq!(asked(&request(&mut app)), Some((1, 2, Some(2))));
        assert!(request(&mut app).is_empty(), "asked already");
        let epoch = app.attribution.slot.epoch();
        on_answer(&mut app, epoch, 2, Some(2), Ok(split(2, 2)));
        assert!(app.attribution.at(2, Some(2)).is_some());
        assert!(request(&mut app).is_empty(), "answered");
        // Token 1 (chip 1) came from position 0: its own logit first, then another.
        app.selected = 1;
        assert_eq!(asked(&request(&mut app)), Some((2, 0, None)));
        assert!(step(&mut app, 1));
        assert_eq!(asked(&request(&mut app)), Some((3, 0, Some(2))));
        assert!(step(&mut app, 9), "clamped to the choices there are");
        assert_eq!(app.attribution.choice, 1);
        // An answer for an older text is dropped.
        on_answer(&mut app, Epoch(epoch.0 + 7), 0, None, Ok(split(0, 1)));
        assert!(app.attribution.at(0, None).is_none());
    }

    #[test]
    fn keys_decline_while_closed_and_errors_are_kept() {
        let mut app = app_with(3);
        assert!(!step(&mut app, 1), "closed: the key is not ours");
        toggle(&mut app);
        request(&mut app);
        let epoch = app.attribution.slot.epoch();
        on_answer(
            &mut app,
            epoch,
            2,
            Some(2),
            Err(EngineError::Unavailable("no graph".into())),
        );
        assert_eq!(
            app.attribution.unavailable().map(ToString::to_string),
            Some("no graph".to_string())
        );
        assert!(
            request(&mut app).is_empty(),
            "not asked again for the same logit"
        );
    }
}
