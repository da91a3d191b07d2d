//! The corpus report panel (`--report`, Ctrl-R) on ratatui's TestBackend: the first entry
//! opens when the model is loaded, Alt-↑↓ walks and opens the others, the token is selected
//! once its excerpt is scored, and the panel sets the corpus's figures beside the excerpt's.
//! Rows are hand-made here; tests/pty.rs runs the real command and models.
#![allow(clippy::unwrap_used)]

mod common;

use common::ui::*;
use crossterm::event::{KeyCode, KeyModifiers};
use logitscope::analysis::stats::ViewOptions;
use logitscope::analysis::worst::{Place, Ranking, Report};
use logitscope::explorer::report::ReportPanel;
use logitscope::explorer::state::{App, Inspect};
use logitscope::explorer::update::{update, Command, Msg};
use logitscope::explorer::worker::protocol::{EngineMsg, Job};

/// " salt" after the sentence (ids 0..=8 then 9), and " the" in the middle (id 3).
fn report() -> Report {
    let place = |before: &str, token: &str, id: u32, after: &str, p: f64| Place {
        chunk: 1,
        pos: 40,
        index: 41,
        token_id: id,
        token: token.into(),
        before: before.into(),
        after: after.into(),
        nll: -p.ln(),
        p,
        kld: Some(1.25),
        nll_base: Some(0.5),
        p_base: Some((-0.5f64).exp()),
        top: Some(" sugar".into()),
        top_base: Some(token.into()),
    };
    Report {
        model: "tiny-test.gguf".into(),
        base: Some("base.gguf".into()),
        n_ctx: 128,
        entries: vec![
            (Ranking::Kld, place(SENTENCE, " salt", 9, ".", 0.05)),
            (
                Ranking::PDrop,
                place("The chef seasoned", " the", 3, " soup", 0.2),
            ),
        ],
    }
}

fn evaluated_text(cmds: &[Command]) -> Option<String> {
    cmds.iter().find_map(|c| match c {
        Command::Run(Job::Evaluate { text, .. }) => Some(text.clone()),
        _ => None,
    })
}

fn alt(code: KeyCode) -> Msg {
    key_mod(code, KeyModifiers::ALT)
}

/// An explorer started with the report, its model just loaded.
fn report_app(w: u16, h: u16) -> (App, Vec<Command>) {
    let mut app = App::new(ViewOptions::default(), vec![], true);
    app.size = (w, h);
    app.report = Some(ReportPanel::new(report()));
    app.inspect = Inspect::Report;
    let cmds = update(
        &mut app,
        Msg::Engine(EngineMsg::Loaded {
            info: info(),
            vocab: vocab(),
            n_ctx: 4096,
            second: None,
        }),
    );
    (app, cmds)
}

const SALT: [u32; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11];

#[test]
fn the_first_entry_opens_with_its_token_selected_and_alt_arrows_walk() {
    let (mut app, cmds) = report_app(100, 30);
    let first = format!("{SENTENCE} salt.");
    assert_eq!(evaluated_text(&cmds).as_deref(), Some(first.as_str()));
    assert_eq!(app.editor().text(), first);
    deliver(&mut app, scored_tokens(&first, &SALT));
    assert_eq!(app.selected, 9, "the chip of ␣salt");
    let opened = app.report.as_ref().unwrap().opened.clone().unwrap();
    assert_eq!(opened.found, Some((9, true)));

    // Alt-↓ opens the second entry; its token is selected when it is scored.
    let cmds = update(&mut app, alt(KeyCode::Down));
    let second = "The chef seasoned the soup";
    assert_eq!(evaluated_text(&cmds).as_deref(), Some(second));
    deliver(&mut app, scored_tokens(second, &[0, 1, 2, 3, 4]));
    assert_eq!(app.selected, 3);
    // At the end of the list, Alt-↓ does nothing (no evaluation asked for again).
    assert!(update(&mut app, alt(KeyCode::Down)).is_empty());
    let cmds = update(&mut app, alt(KeyCode::Up));
    assert_eq!(evaluated_text(&cmds).as_deref(), Some(first.as_str()));

    // Ctrl-R closes the panel; Alt-↓ then leaves the line alone.
    update(&mut app, key_mod(KeyCode::Char('r'), KeyModifiers::CONTROL));
    assert_eq!(app.inspect, Inspect::Off);
    assert!(evaluated_text(&update(&mut app, alt(KeyCode::Down))).is_none());
    assert_eq!(app.editor().text(), first);
    update(&mut app, key_mod(KeyCode::Char('r'), KeyModifiers::CONTROL));
    assert_eq!(app.inspect, Inspect::Report);
}

#[test]
fn without_a_report_ctrl_r_does_nothing() {
    let mut app = scored_app(100, 30);
    let cmds = update(&mut app, key_mod(KeyCode::Char('r'), KeyModifiers::CONTROL));
    assert!(cmds.is_empty());
    assert_eq!(app.inspect, Inspect::Off);
    assert_eq!(app.editor().text(), SENTENCE);
}

#[test]
fn an_excerpt_tokenized_otherwise_says_so() {
    let (mut app, _) = report_app(100, 30);
    let first = format!("{SENTENCE} salt.");
    // The excerpt's token at the place is another id than the corpus's.
    let mut other = SALT;
    other[9] = 10;
    deliver(&mut app, scored_tokens(&first, &other));
    let opened = app.report.as_ref().unwrap().opened.clone().unwrap();
    assert_eq!(opened.found, Some((9, false)));
    let s = screen(&app);
    assert!(s.contains("tokenizes it as"), "{s}");
}

#[test]
fn snapshot_report_panel() {
    let (mut app, _) = report_app(110, 30);
    let first = format!("{SENTENCE} salt.");
    deliver(&mut app, scored_tokens(&first, &SALT));
    let s = screen(&app);
    assert!(
        s.contains("corpus report 1/2: largest KL divergence"),
        "{s}"
    );
    assert!(
        s.contains("corpus chunk 1 pos 40 (41 tokens before): p"),
        "{s}"
    );
    assert!(s.contains("0.0500, base 0.6065, KLD 1.2500 nats"), "{s}");
    // The excerpt's own figures: row 8 gives ␣salt p 0.55 in the hand-made rows.
    assert!(
        s.contains("here (this excerpt, 9 tokens before): p 0.5500"),
        "{s}"
    );
    assert!(
        s.contains("(no base here: -m BASE --vs MODEL shows both)"),
        "{s}"
    );
    insta::assert_snapshot!("report_panel", s);
}
