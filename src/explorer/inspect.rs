//! The lens and H·W panels' part of `update`: opening and closing them, asking the engine for
//! what they need (the selected position first, then the rest of the grid), and taking its
//! answers. Pure, like the rest of `update`.

use crate::explorer::message::Command;
use crate::explorer::state::{App, Inspect, LensAnswer};
use crate::explorer::worker::protocol::{Epoch, Job, LensUpdate};

/// F9 / F10: open `mode`, or close it when it is open.
pub fn toggle(app: &mut App, mode: Inspect) {
    app.inspect = if app.inspect == mode {
        Inspect::Off
    } else {
        mode
    };
}

/// Ask for what the open panel needs and does not have. Called after every message: asks
/// only when something is missing and not already asked for.
pub fn request(app: &mut App) -> Vec<Command> {
    if matches!(app.inspect, Inspect::Off | Inspect::Report) || app.stale() {
        return Vec::new();
    }
    let selected = app.selected_position();
    let Some(scored) = app.sentences[app.active].scored.as_ref() else {
        return Vec::new();
    };
    let lens = &mut app.lens;
    let about = Some((scored.text.clone(), scored.view));
    lens.slot.about(&about);
    if lens.error().is_some() || lens.status().is_some_and(|s| !s.available) {
        return Vec::new();
    }
    let n = scored.tokens.len();
    let covered = lens.covered(n);
    let first = selected.unwrap_or(0).min(n.saturating_sub(1));
    let want_hw = app.inspect == Inspect::Hw
        && first < covered
        && lens.hw().is_none_or(|h| h.position != first);
    let columns = lens.columns();
    let want_first = first < covered && !columns.contains_key(&first);
    let complete = lens.status().is_some() && (0..covered).all(|p| columns.contains_key(&p));
    let wanted = want_first || want_hw || (!complete && !lens.slot.is_asked());
    if !wanted {
        return Vec::new();
    }
    let skip = columns.keys().copied().collect();
    let Some((request, epoch)) = lens.slot.ask(&about, (first, want_hw), |_, _| false) else {
        return Vec::new(); // asked already
    };
    vec![Command::Run(Job::Lens {
        request,
        epoch,
        text: scored.text.clone(),
        view: scored.view,
        first,
        hw: want_hw,
        skip,
    })]
}

/// Take a piece of the lens from the engine (pieces of another text's lens are dropped).
pub fn on_update(app: &mut App, epoch: Epoch, update: LensUpdate) {
    let slot = &mut app.lens.slot;
    let so_far = |held: Option<LensAnswer>| held.unwrap_or_default();
    match update {
        LensUpdate::Status(s) => {
            slot.update(epoch, |held| LensAnswer {
                status: Some(s),
                ..so_far(held)
            });
        }
        LensUpdate::Column { position, rows } => {
            slot.update(epoch, |held| {
                let mut a = so_far(held);
                a.columns.insert(position, rows);
                a
            });
        }
        LensUpdate::Hw(h) => {
            slot.update(epoch, |held| LensAnswer {
                hw: Some(h),
                ..so_far(held)
            });
        }
        LensUpdate::Failed(e) => {
            slot.update(epoch, |held| LensAnswer {
                error: Some(e),
                ..so_far(held)
            });
            slot.settle(epoch);
        }
        LensUpdate::Paused => slot.settle(epoch),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::analysis::lens::LensStatus;
    use crate::analysis::stats::{summarize_row, ViewOptions};
    use crate::explorer::worker::protocol::LensRequest;
    use crate::explorer::worker::protocol::Scored;

    /// An app with a scored text of `tokens` tokens, the last selected (shared by the
    /// inspection panels' tests).
    pub(crate) fn app_with(tokens: usize) -> App {
        let mut app = App::new(ViewOptions::default(), vec![], true);
        app.sentence_mut().editor.set_text("a b c");
        let row = summarize_row(&[1.0, 2.0, 3.0], 1.0, 2, Some(1)).unwrap();
        app.sentence_mut().scored = Some(Scored {
            text: "a b c".into(),
            tokens: vec![1; tokens],
            rows: vec![row; tokens],
            n_tokens_total: tokens,
            view: ViewOptions::default(),
            elapsed: std::time::Duration::ZERO,
            decoded: tokens,
            compare: None,
        });
        app.selected = tokens;
        app
    }

    fn asked(cmds: &[Command]) -> Option<(u64, usize, bool, Vec<usize>)> {
        cmds.iter().find_map(|c| match c {
            Command::Run(Job::Lens {
                request: LensRequest(generation),
                first,
                hw,
                skip,
                ..
            }) => Some((*generation, *first, *hw, skip.clone())),
            _ => None,
        })
    }

    fn status(positions: usize) -> LensStatus {
        LensStatus {
            available: true,
            reason: None,
            max_abs_dp: Some(0.0),
            max_abs_dp_shown: None,
            positions: Some(positions),
            facts: None,
        }
    }

    #[test]
    fn nothing_is_asked_while_closed_then_the_selected_column_first() {
        let mut app = app_with(3);
        assert!(request(&mut app).is_empty());
        toggle(&mut app, Inspect::Lens);
        let (g, first, hw, skip) = asked(&request(&mut app)).unwrap();
        assert_eq!((g, first, hw, skip), (1, 2, false, vec![]));
        assert!(request(&mut app).is_empty(), "asked once");
        let epoch = app.lens.epoch();
        on_update(&mut app, epoch, LensUpdate::Status(status(3)));
        let rows = app.scored().unwrap().rows.clone();
        on_update(
            &mut app,
            epoch,
            LensUpdate::Column {
                position: 2,
                rows: rows.clone(),
            },
        );
        // Moving to a column not there yet asks again, skipping what is there.
        app.selected = 1;
        let (g, first, _, skip) = asked(&request(&mut app)).unwrap();
        assert_eq!((g, first, skip), (2, 0, vec![2]));
        // A pause (more urgent work came first) is resumed.
        on_update(&mut app, epoch, LensUpdate::Paused);
        assert!(asked(&request(&mut app)).is_some());
        for p in 0..3 {
            on_update(
                &mut app,
                epoch,
                LensUpdate::Column {
                    position: p,
                    rows: rows.clone(),
                },
            );
        }
        on_update(&mut app, epoch, LensUpdate::Paused);
        assert!(request(&mut app).is_empty(), "the grid is complete");
        // H·W needs its own answer for the selected position.
        toggle(&mut app, Inspect::Hw);
        let (_, first, hw, _) = asked(&request(&mut app)).unwrap();
        assert_eq!((first, hw), (0, true));
    }

    #[test]
    fn another_text_starts_a_new_epoch_and_old_answers_are_dropped() {
        let mut app = app_with(3);
        toggle(&mut app, Inspect::Lens);
        request(&mut app);
        let old = app.lens.epoch();
        let mut scored = app.scored().cloned().unwrap();
        scored.text = "a b d".into();
        app.sentence_mut().editor.set_text("a b d");
        app.sentence_mut().scored = Some(scored);
        assert!(asked(&request(&mut app)).is_some());
        assert_eq!(app.lens.epoch(), old.next());
        on_update(&mut app, old, LensUpdate::Status(status(3)));
        assert!(app.lens.status().is_none(), "an answer for the old text");
    }

    #[test]
    fn an_unavailable_lens_asks_for_nothing_more() {
        let mut app = app_with(3);
        toggle(&mut app, Inspect::Lens);
        request(&mut app);
        let epoch = app.lens.epoch();
        on_update(
            &mut app,
            epoch,
            LensUpdate::Status(LensStatus::unavailable("no l_out", None)),
        );
        app.selected = 1;
        assert!(request(&mut app).is_empty());
        toggle(&mut app, Inspect::Lens);
        assert_eq!(app.inspect, Inspect::Off);
    }
}
