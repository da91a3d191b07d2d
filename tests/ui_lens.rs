//! The lens (F9) and H·W (F10) panels on ratatui's TestBackend: what the explorer asks the
//! engine for, snapshots of the grid, the by-layer list and the H·W panel, and the
//! "unavailable" screen. Rows are hand-made here; tests/lens.rs and tests/pty.rs run the real
//! model.
#![allow(clippy::unwrap_used)]

mod common;

use common::ui::*;
use crossterm::event::{KeyCode, KeyModifiers};
use logitscope::analysis::lens::{HwReport, HwToken, LensFacts, LensStatus};
use logitscope::analysis::stats::RowSummary;
use logitscope::explorer::state::{App, Inspect};
use logitscope::explorer::update::{update, Command, Msg};
use logitscope::explorer::worker::protocol::{EngineMsg, Job, LensUpdate};

const LAYERS: usize = 6;

fn facts() -> LensFacts {
    LensFacts {
        n_layer: LAYERS,
        n_embd: 8,
        n_vocab: WORDS.len(),
        w: "token_embd.weight".into(),
        w_type: "Q8_0".into(),
        tied: true,
        norm: "RMS norm, eps 1e-5".into(),
        post: None,
    }
}

fn available() -> LensStatus {
    LensStatus {
        available: true,
        reason: None,
        max_abs_dp: Some(0.0),
        max_abs_dp_shown: None,
        positions: Some(9),
        facts: Some(facts()),
    }
}

/// The lens of position `p`: the early layers predict " the" (id 3), the later ones the
/// token that actually follows, which rises layer by layer.
fn column(p: usize) -> Vec<RowSummary> {
    let next = (p + 1 < 9).then_some(p as u32 + 1);
    (0..LAYERS)
        .map(|l| {
            let mut r = if l < 3 {
                row(&[3, 11, 5], next)
            } else {
                row(&[next.unwrap_or(9), 3, 11], next)
            };
            r.entropy_bits = 4.0 - l as f64 * 0.5;
            r
        })
        .collect()
}

fn lens_msg(app: &App, update: LensUpdate) -> Msg {
    Msg::Engine(EngineMsg::Lens {
        epoch: app.lens.epoch(),
        update,
    })
}

fn asked(cmds: &[Command]) -> Option<(usize, bool)> {
    cmds.iter().find_map(|c| match c {
        Command::Run(Job::Lens { first, hw, .. }) => Some((*first, *hw)),
        _ => None,
    })
}

/// F9 on " pinch" (token 7): the lens is asked for position 6 first; every column arrives.
fn lens_app(w: u16, h: u16) -> App {
    let mut app = scored_app(w, h);
    update(&mut app, key_mod(KeyCode::Left, KeyModifiers::SHIFT));
    update(&mut app, key_mod(KeyCode::Left, KeyModifiers::SHIFT));
    assert_eq!(app.selected, 7);
    let cmds = update(&mut app, key(KeyCode::F(9)));
    assert_eq!(app.inspect, Inspect::Lens);
    assert_eq!(
        asked(&cmds),
        Some((6, false)),
        "the selected position first"
    );
    let m = lens_msg(&app, LensUpdate::Status(available()));
    update(&mut app, m);
    for p in [6, 5, 7, 4, 8, 3, 2, 1, 0] {
        let m = lens_msg(
            &app,
            LensUpdate::Column {
                position: p,
                rows: column(p),
            },
        );
        assert!(
            asked(&update(&mut app, m)).is_none(),
            "nothing more is asked"
        );
    }
    app
}

#[test]
fn snapshot_lens_grid_and_layers() {
    let app = lens_app(100, 30);
    let s = screen(&app);
    assert!(s.contains("logit lens · top token · 6 layers"), "{s}");
    assert!(
        s.contains("␣pinch is the top token from layer 3 (of 0–5) on"),
        "{s}"
    );
    assert!(s.contains("max |Δp| 0.0e0"));
    insta::assert_snapshot!("lens_grid", s);
}

#[test]
fn a_short_panel_samples_layers_and_says_so() {
    let app = lens_app(100, 16);
    let s = screen(&app);
    assert!(s.contains("of 6 layers"), "{s}");
    assert!(s.contains("  5 "), "the last layer is always shown: {s}");
}

#[test]
fn snapshot_hw_panel() {
    let mut app = lens_app(100, 30);
    let cmds = update(&mut app, key(KeyCode::F(10)));
    assert_eq!(app.inspect, Inspect::Hw);
    assert_eq!(asked(&cmds), Some((6, true)));
    let h = vec![0.5, -3.0, 1.25, 0.0, 2.0, -0.25, 0.75, 1.0];
    let hw = HwReport {
        position: 6,
        facts: facts(),
        residual_norm: 41.5,
        h_norm: 4.25,
        h_top: logitscope::analysis::lens::largest_components(&h, 8),
        h,
        tokens: vec![
            HwToken {
                id: 7,
                exact: 17.131_032,
                llama: 17.175_77,
            },
            HwToken {
                id: 3,
                exact: 14.665_829,
                llama: 14.637_537,
            },
            HwToken {
                id: 11,
                exact: 12.997_699,
                llama: 13.047_611,
            },
        ],
        max_abs_delta: 0.2061,
        max_abs_delta_rounded: Some(5.8e-6),
        dot_type: "Q8_0".into(),
    };
    let m = lens_msg(&app, LensUpdate::Hw(Box::new(hw)));
    update(&mut app, m);
    let s = screen(&app);
    assert!(s.contains("H·W at position 6 · predicts ␣pinch"), "{s}");
    assert!(
        s.contains("W = token_embd.weight: 8 × 12, Q8_0, tied"),
        "{s}"
    );
    assert!(s.contains("max |Δ| over all 12 logits: 2.06e-1"), "{s}");
    insta::assert_snapshot!("hw_panel", s);
}

#[test]
fn snapshot_lens_unavailable() {
    let mut app = scored_app(80, 24);
    update(&mut app, key(KeyCode::F(9)));
    let why = "the last layer's lens differs from llama.cpp's own distribution by 9.9e-1 in p";
    let m = lens_msg(
        &app,
        LensUpdate::Status(LensStatus::unavailable(why, Some(facts()))),
    );
    assert!(asked(&update(&mut app, m)).is_none());
    let s = screen(&app);
    assert!(s.contains("Logit lens unavailable for this model"), "{s}");
    update(&mut app, key(KeyCode::F(10)));
    assert!(screen(&app).contains("H·W unavailable for this model"));
    update(&mut app, key(KeyCode::F(9)));
    insta::assert_snapshot!("lens_unavailable", s);
}

#[test]
fn the_lens_follows_a_new_text_and_drops_the_old_one() {
    let mut app = lens_app(100, 30);
    let old = app.lens.epoch();
    update(&mut app, key(KeyCode::Char('x')));
    let text = app.editor().text().to_owned();
    let cmds = deliver(&mut app, scored(&text));
    assert!(asked(&cmds).is_some(), "the new text's lens is asked for");
    assert_eq!(app.lens.epoch(), old.next());
    assert!(app.lens.columns().is_empty());
    update(
        &mut app,
        Msg::Engine(EngineMsg::Lens {
            epoch: old,
            update: LensUpdate::Column {
                position: 1,
                rows: column(1),
            },
        }),
    );
    assert!(
        app.lens.columns().is_empty(),
        "the old text's column is dropped"
    );
    assert!(screen(&app).contains("Computing the lens"));
}
