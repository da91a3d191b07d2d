//! Test doubles for the explorer's tests: a tiny vocabulary and hand-made rows. They stand in
//! for the model only where the screen is under test; the model itself is tested elsewhere.
//! Shared by the integration tests (`mod common`) and the explorer's unit tests (`#[path]`),
//! never part of the library.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use logitscope::analysis::stats::{RowSummary, TargetStats, TopEntry, ViewOptions};
use logitscope::analysis::vocab::Vocab;
use logitscope::explorer::state::App;
use logitscope::explorer::update::{update, Command, Msg};
use logitscope::explorer::worker::protocol::{EngineMsg, Scored};
use logitscope::model::ModelInfo;

pub const WORDS: [&str; 12] = [
    "The",
    " chef",
    " seasoned",
    " the",
    " soup",
    " with",
    " a",
    " pinch",
    " of",
    " salt",
    " sugar",
    ".",
];

pub fn vocab() -> Arc<Vocab> {
    Arc::new(Vocab::from_bytes(WORDS.map(str::as_bytes)))
}

pub fn info() -> ModelInfo {
    ModelInfo {
        file_name: "tiny-test.gguf".into(),
        n_vocab: WORDS.len(),
        n_ctx_train: 2048,
        n_params: 1,
        gpu_layers: 0,
        gpu_available: false,
        devices: Vec::new(),
        batching: None,
        intervention: None,
    }
}

/// A ready app (model loaded) of the given size.
pub fn ready(w: u16, h: u16) -> App {
    loaded(vocab(), vec!["an older sentence".into()], None, w, h)
}

/// An app of the given size with `history`, once the model (and `second`, a model to compare
/// with) reported loaded with `vocab`.
pub fn loaded(
    vocab: Arc<Vocab>,
    history: Vec<String>,
    second: Option<ModelInfo>,
    w: u16,
    h: u16,
) -> App {
    let mut app = App::new(ViewOptions::default(), history, true);
    app.size = (w, h);
    update(
        &mut app,
        Msg::Engine(EngineMsg::Loaded {
            info: info(),
            vocab,
            n_ctx: 4096,
            second,
        }),
    );
    app
}

/// A made-up but self-consistent row: `top` ids with decreasing probability, `target`'s
/// rank found in it (or 42 when absent).
pub fn row(top: &[u32], target: Option<u32>) -> RowSummary {
    let probs = [0.55, 0.2, 0.1, 0.05, 0.03, 0.02, 0.01, 0.01, 0.005, 0.005];
    let top: Vec<TopEntry> = top
        .iter()
        .zip(probs)
        .map(|(&id, p)| TopEntry {
            id,
            logprob: f64::ln(p),
        })
        .collect();
    let target = target.map(|id| {
        let (rank, logprob) = top
            .iter()
            .position(|e| e.id == id)
            .map_or((42, -9.0), |i| (i as u32 + 1, top[i].logprob));
        TargetStats {
            id,
            logprob,
            prob: logprob.exp(),
            rank,
        }
    });
    RowSummary {
        entropy_bits: 1.75,
        max_logit: 10.0,
        ln_sum: 0.0,
        inv_temp: 1.0,
        top,
        target,
        watched: Vec::new(),
    }
}

/// "The chef seasoned the soup with a pinch of" scored with plausible rows.
pub fn scored(text: &str) -> Scored {
    let tokens: Vec<u32> = (0..9).collect();
    let rows = (0..9u32)
        .map(|i| {
            let next = (i + 1 < 9).then_some(i + 1);
            match i {
                8 => row(&[9, 10, 11], None),
                0 => row(&[3, 11, 5], next),
                _ => row(&[i + 1, 11, 9, 3], next),
            }
        })
        .collect();
    Scored {
        text: text.into(),
        tokens,
        rows,
        n_tokens_total: 9,
        view: ViewOptions::default(),
        elapsed: Duration::from_millis(12),
        decoded: 9,
        compare: None,
    }
}

pub fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn key_mod(code: KeyCode, m: KeyModifiers) -> Msg {
    Msg::Key(KeyEvent::new(code, m))
}

pub fn type_text(app: &mut App, s: &str) -> Vec<Command> {
    s.chars()
        .flat_map(|c| update(app, key(KeyCode::Char(c))))
        .collect()
}

/// Pieces that are hard to draw, as a real vocabulary has them: zero-width characters (the
/// default vocabulary has 18), bytes that are not whole characters, combining marks, wide
/// characters, control characters, right-to-left script. Ids 0..12 like [`WORDS`].
pub fn awkward_vocab() -> Arc<Vocab> {
    let pieces: [&[u8]; 12] = [
        "\u{fe0f}".as_bytes(),
        " \u{200b}".as_bytes(),
        "\u{301}".as_bytes(),
        "日本".as_bytes(),
        &[0xE3],
        &[0x81, 0x82],
        "e\u{301}".as_bytes(),
        "👩\u{200d}👩\u{200d}👧".as_bytes(),
        b"\t",
        " \u{646}\u{627}".as_bytes(),
        "\u{200d}".as_bytes(),
        " sugar".as_bytes(),
    ];
    Arc::new(Vocab::from_bytes(pieces))
}

/// A ready app whose model has the given vocabulary (ids as in [`scored`]).
pub fn ready_with(vocab: Arc<Vocab>, w: u16, h: u16) -> App {
    loaded(vocab, vec![], None, w, h)
}

/// The sentence the screen tests score.
pub const SENTENCE: &str = "The chef seasoned the soup with a pinch of";

/// The explorer drawn on ratatui's TestBackend at its size, one line per row, trailing
/// blanks trimmed.
pub fn screen(app: &App) -> String {
    let buf = buffer(app);
    (0..buf.area.height)
        .map(|y| {
            let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
            format!("{}\n", line.trim_end())
        })
        .collect()
}

/// The explorer drawn on ratatui's TestBackend at its size: the cells.
pub fn buffer(app: &App) -> ratatui::buffer::Buffer {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    let mut t = Terminal::new(TestBackend::new(app.size.0, app.size.1)).unwrap();
    t.draw(|f| logitscope::explorer::views::draw(f, app))
        .unwrap();
    t.backend().buffer().clone()
}

/// A loaded explorer of `w`×`h` showing [`SENTENCE`], scored.
pub fn scored_app(w: u16, h: u16) -> App {
    let mut app = ready(w, h);
    update(&mut app, Msg::Paste(SENTENCE.into()));
    deliver(&mut app, scored(SENTENCE));
    app
}

/// `text` scored as the tokens `tokens` (ids of [`WORDS`]), with plausible rows.
pub fn scored_tokens(text: &str, tokens: &[u32]) -> Scored {
    let rows = (0..tokens.len())
        .map(|i| {
            let next = tokens.get(i + 1).copied();
            row(&[(tokens[i] + 1) % 12, 11, 9, 3], next)
        })
        .collect();
    Scored {
        text: text.into(),
        tokens: tokens.to_vec(),
        rows,
        n_tokens_total: tokens.len(),
        view: ViewOptions::default(),
        elapsed: Duration::from_millis(12),
        decoded: tokens.len(),
        compare: None,
    }
}

/// The engine's evaluation `scored` arriving for the text now in the active line.
pub fn deliver(app: &mut App, scored: Scored) -> Vec<Command> {
    let g = app.sentence().generation;
    let sentence = app.active;
    update(
        app,
        Msg::Engine(EngineMsg::Evaluated {
            sentence,
            generation: g,
            result: Ok(scored),
        }),
    )
}
