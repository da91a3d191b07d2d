//! The explorer's screen on ratatui's TestBackend: snapshots of each state, and a fuzz run of
//! random events through the real `update` and `draw`. The model is a test double here (a tiny
//! vocabulary and hand-made rows); tests/pty.rs runs the real thing.
#![allow(clippy::unwrap_used)]

mod common;

use common::ui::*;
use crossterm::event::{KeyCode, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use logitscope::analysis::blanks::{BlankReport, CandidateReport, FillReport};
use logitscope::analysis::report::TopLogprob;
use logitscope::analysis::search::{Budget, SearchCoverage};
use logitscope::analysis::stats::ViewOptions;
use logitscope::engine::EngineError;
use logitscope::explorer::state::App;
use logitscope::explorer::update::{update, Command, Msg};
use logitscope::explorer::worker::protocol::Job;
use logitscope::explorer::worker::protocol::{EngineMsg, Epoch, TextGen};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// The cell columns where each top-k row of the distribution panel starts its bar and its
/// probability: (first bar cell, the probability's decimal point), one pair per row.
fn distribution_columns(app: &App) -> Vec<(u16, u16)> {
    columns_in(&buffer(app))
}

fn columns_in(buf: &ratatui::buffer::Buffer) -> Vec<(u16, u16)> {
    let area = logitscope::explorer::layout::areas(buf.area).dist;
    if area.height < 3 || area.width < 3 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for y in area.y + 2..area.y + area.height - 1 {
        let cells: Vec<(u16, String)> = (area.x + 1..area.x + area.width - 1)
            .map(|x| (x, buf[(x, y)].symbol().to_owned()))
            .collect();
        let Some(bar) = cells.iter().position(|(_, s)| s == "█" || s == "·") else {
            continue;
        };
        let Some(dot) = cells[bar..]
            .iter()
            .position(|(_, s)| s == ".")
            .map(|i| i + bar)
        else {
            continue;
        };
        out.push((cells[bar].0, cells[dot].0));
    }
    out
}

#[test]
fn snapshot_loading() {
    let mut app = App::new(ViewOptions::default(), vec![], true);
    app.size = (80, 24);
    update(&mut app, Msg::Engine(EngineMsg::LoadProgress(0.42)));
    insta::assert_snapshot!("loading", screen(&app));
}

#[test]
fn snapshot_empty_input() {
    insta::assert_snapshot!("empty", screen(&ready(80, 24)));
}

#[test]
fn snapshot_scored_sentence_with_a_selected_position() {
    let mut app = scored_app(100, 30);
    // Select " pinch" (token 7): the distribution that predicted it.
    update(&mut app, key_mod(KeyCode::Left, KeyModifiers::SHIFT));
    update(&mut app, key_mod(KeyCode::Left, KeyModifiers::SHIFT));
    assert_eq!(app.selected, 7);
    let s = screen(&app);
    assert!(s.contains("token 7 ␣pinch"));
    assert!(s.contains("◂ actual"));
    insta::assert_snapshot!("scored_selected", s);
}

#[test]
fn snapshot_next_prediction_narrow() {
    let app = scored_app(60, 24);
    let s = screen(&app);
    assert!(s.contains("what comes next"));
    assert!(s.contains("␣salt"));
    insta::assert_snapshot!("scored_next_narrow", s);
}

#[test]
fn snapshot_help_overlay() {
    let mut app = scored_app(80, 24);
    update(&mut app, key(KeyCode::F(1)));
    let s = screen(&app);
    assert!(s.contains("F2 F3") && s.contains("quit"));
    insta::assert_snapshot!("help", s);
}

/// Ctrl-P opens the pair's second line as a copy of the first; both are evaluated, each in
/// its own slot; the aligned strip marks the changed token, Δ per token, the summary says which
/// sentence is preferred; Ctrl-O switches lines; Ctrl-P closes and cancels the second line's work.
#[test]
fn snapshot_pair_view() {
    let mut app = scored_app(100, 30);
    let ctrl = |c| key_mod(KeyCode::Char(c), KeyModifiers::CONTROL);
    let cmds = update(&mut app, ctrl('p'));
    assert_eq!(app.sentences.len(), 2);
    assert_eq!(app.active, 1);
    assert_eq!(app.editor().text(), SENTENCE);
    assert!(cmds.iter().any(
        |c| matches!(c, Command::Run(Job::Evaluate { sentence: 1, text, .. }) if text == SENTENCE)
    ));
    // B: "… a pinch salt": " of" replaced by " salt" (token 9 for token 8).
    for _ in 0..3 {
        update(&mut app, key(KeyCode::Backspace));
    }
    let cmds = type_text(&mut app, " salt");
    assert!(cmds
        .iter()
        .all(|c| !matches!(c, Command::Run(Job::Evaluate { sentence: 0, .. }))));
    let b_text = "The chef seasoned the soup with a pinch salt";
    assert_eq!(app.editor().text(), b_text);
    deliver(
        &mut app,
        scored_tokens(b_text, &[0, 1, 2, 3, 4, 5, 6, 7, 9]),
    );
    let report = app.pair_report().expect("both scored");
    assert_eq!(report.aligned.iter().filter(|r| r.differs).count(), 1);
    let total = |n: usize| -> f64 {
        let s = app.sentences[n].scored.as_ref().unwrap();
        s.rows
            .iter()
            .filter_map(|r| r.target)
            .map(|t| t.logprob)
            .sum()
    };
    assert_eq!(report.delta, total(1) - total(0));
    let lp = |n: usize, j: usize| {
        app.sentences[n].scored.as_ref().unwrap().rows[j - 1]
            .target
            .unwrap()
            .logprob
    };
    let changed = report.aligned.iter().find(|r| r.differs).unwrap();
    assert_eq!((changed.a, changed.b), (Some(8), Some(8)));
    assert_eq!(changed.delta, lp(1, 8) - lp(0, 8));
    let prefers = if report.delta < 0.0 {
        "prefers A"
    } else {
        "prefers B"
    };
    // Select the changed token: both distributions side by side.
    update(&mut app, key_mod(KeyCode::Left, KeyModifiers::SHIFT));
    assert_eq!(app.selected_token(), 8);
    let s = screen(&app);
    assert!(s.contains(prefers), "{s}");
    assert!(s.contains("≠▼"), "{s}");
    assert!(s.contains("A's top") && s.contains("B's top"), "{s}");
    insta::assert_snapshot!("pair", s);
    // Ctrl-O: edit A again; the strip and panels are A's.
    update(&mut app, ctrl('o'));
    assert_eq!(app.active, 0);
    assert_eq!(app.editor().text(), SENTENCE);
    // Ctrl-P closes the second line and cancels what is still running for it.
    let cmds = update(&mut app, ctrl('p'));
    assert_eq!(app.sentences.len(), 1);
    assert!(cmds.iter().any(|c| matches!(
        c,
        Command::Cancel(logitscope::explorer::worker::protocol::Cancel::Texts(1, _))
    )));
    assert!(!screen(&app).contains("minimal pair"));
    // An answer for the closed line is dropped without harm.
    update(
        &mut app,
        Msg::Engine(EngineMsg::Evaluated {
            sentence: 1,
            generation: TextGen(99),
            result: Ok(scored(SENTENCE)),
        }),
    );
    assert_eq!(app.sentences.len(), 1);
}

#[test]
fn snapshot_too_small() {
    let app = scored_app(30, 8);
    let s = screen(&app);
    assert!(s.contains("too small"));
    insta::assert_snapshot!("too_small", s);
}

#[test]
fn a_click_selects_the_chip_under_the_mouse() {
    let mut app = scored_app(100, 30);
    let s = screen(&app);
    let row = s.lines().position(|l| l.contains("␣soup")).unwrap() as u16;
    let line = s.lines().nth(row as usize).unwrap();
    let byte = line.find("␣soup").unwrap();
    let col = line[..byte].chars().count() as u16 + 1;
    update(
        &mut app,
        Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: col,
            row,
            modifiers: KeyModifiers::NONE,
        }),
    );
    assert_eq!(app.selected, 4, "clicked ␣soup");
}

/// A small deterministic generator (no extra dependency for randomness).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A fill report for the current text, with candidates drawn from `vocab`'s awkward pieces.
fn fill_report(app: &App, rng: &mut Rng) -> FillReport {
    let vocab = app.vocab().cloned().unwrap_or_else(vocab);
    let cand = |i: u32, post: f64| CandidateReport {
        text: vocab.text(i % 12),
        left_logprob: -1.0,
        sentence_logprob: post.ln() - 30.0,
        posterior: post,
        left_rank: 1 + i as usize,
        source: if i.is_multiple_of(3) { "user" } else { "left" },
        sentence_logprob_b: None,
    };
    let top = |id: u32, p: f64| TopLogprob {
        id: id % 12,
        token: String::new(),
        bytes: vec![],
        logprob: p.ln(),
    };
    let n = 1 + rng.below(12) as u32;
    FillReport {
        text: app.editor().text().into(),
        model: "tiny-test.gguf".into(),
        temperature: 1.0,
        order: "left to right",
        blanks: (0..1 + rng.below(3) as usize)
            .map(|index| BlankReport {
                index,
                byte_offset: 0,
                left_top_logprobs: (0..n).map(|i| top(i, 0.5 / f64::from(i + 1))).collect(),
                left_entropy_bits: Some(2.0),
                candidates: (0..n).map(|i| cand(i, 0.5 / f64::from(i + 1))).collect(),
                scored_text: String::new(),
                coverage: None,
            })
            .collect(),
        filled_text: String::new(),
        batching: None,
    }
}

/// What must hold of every screen: panels keep their borders (nothing drawn over another
/// panel), every chip the layout places is drawn where a click would find it, and the status
/// bar counts the tokens the state holds.
/// Any piece of a lens, some of them odd: positions beyond the text, empty columns,
/// unavailable, failed.
fn lens_update(rng: &mut Rng) -> logitscope::explorer::worker::protocol::LensUpdate {
    use logitscope::analysis::lens::{HwReport, LensFacts, LensStatus};
    use logitscope::explorer::worker::protocol::LensUpdate;
    let facts = LensFacts {
        n_layer: 1 + rng.below(40) as usize,
        n_embd: 4,
        n_vocab: 12,
        w: "output.weight".into(),
        w_type: "Q6_K".into(),
        tied: false,
        norm: "RMS norm, eps 1e-6".into(),
        post: (rng.below(2) == 0).then(|| "30·tanh(z/30) (final_logit_softcapping)".into()),
    };
    let id = |rng: &mut Rng| rng.below(12) as u32;
    match rng.below(6) {
        0 => LensUpdate::Status(if rng.below(4) == 0 {
            LensStatus::unavailable("no l_out tensors", None)
        } else {
            LensStatus {
                available: true,
                reason: None,
                max_abs_dp: Some(0.0),
                max_abs_dp_shown: None,
                positions: Some(rng.below(12) as usize),
                facts: Some(facts),
            }
        }),
        1 | 2 => LensUpdate::Column {
            position: rng.below(14) as usize,
            rows: (0..rng.below(40))
                .map(|_| {
                    let (a, b) = (id(rng), id(rng));
                    row(&[a, b], (rng.below(2) == 0).then_some(b))
                })
                .collect(),
        },
        3 => LensUpdate::Hw(Box::new(HwReport {
            position: rng.below(12) as usize,
            facts,
            residual_norm: 1.0,
            h_norm: 1.0,
            h_top: vec![(0, 1.0)],
            h: vec![1.0, -2.0, 0.5, 0.0],
            tokens: vec![logitscope::analysis::lens::HwToken {
                id: id(rng),
                exact: 1.0,
                llama: 1.5,
            }],
            max_abs_delta: 0.5,
            max_abs_delta_rounded: None,
            dot_type: "F32".into(),
        })),
        4 => LensUpdate::Failed(EngineError::Refused("decode failed".into())),
        _ => LensUpdate::Paused,
    }
}

fn check_screen(app: &App, buf: &ratatui::buffer::Buffer, event: usize) {
    use logitscope::explorer::layout::{
        areas_for, chip_layout, pair_columns_area, pair_layout, strip_inner, MIN_HEIGHT, MIN_WIDTH,
    };
    use logitscope::explorer::state::Phase;
    if buf.area.width < MIN_WIDTH
        || buf.area.height < MIN_HEIGHT
        || app.phase != Phase::Ready
        || app.help
    {
        return;
    }
    let pair = app.pair().is_some();
    let a = areas_for(buf.area, pair);
    for (name, r) in [
        ("input", a.input),
        ("strip", a.strip),
        ("distribution", a.dist),
        ("side", a.side),
    ] {
        // The trace view lays out the whole body itself.
        if app.inspect == logitscope::explorer::state::Inspect::Trace
            && matches!(name, "distribution" | "side")
        {
            continue;
        }
        let corners = [
            (r.x, r.y, "┌"),
            (r.x + r.width - 1, r.y, "┐"),
            (r.x, r.y + r.height - 1, "└"),
            (r.x + r.width - 1, r.y + r.height - 1, "┘"),
        ];
        for (x, y, want) in corners {
            assert_eq!(
                buf[(x, y)].symbol(),
                want,
                "event {event}: the {name} panel's corner at ({x},{y}) was drawn over"
            );
        }
    }
    if app.inspect != logitscope::explorer::state::Inspect::Off {
        return;
    }
    if pair {
        // Every aligned column is drawn where the layout (and a click) places it: Δ's line
        // starts with its cue.
        if let Some(report) = app.pair_report() {
            let errors = app.sentences.iter().any(|s| s.eval_error.is_some());
            for col in pair_layout(app, &report, pair_columns_area(strip_inner(app))) {
                let sym = buf[(col.x, col.y + 2)].symbol();
                assert!(
                    errors || ["·", "▲", "▼", "≠"].contains(&sym),
                    "event {event}: column {} not drawn at ({}, {}): {sym:?}",
                    col.row,
                    col.x,
                    col.y + 2
                );
            }
        }
        return;
    }
    let cols = columns_in(buf);
    assert!(
        cols.iter().all(|c| *c == cols[0]),
        "event {event}: distribution columns differ between rows: {cols:?}"
    );
    let status: String = (0..buf.area.width)
        .map(|x| buf[(x, a.status.y)].symbol())
        .collect();
    if let Some(s) = &app.sentence().scored {
        let want = format!("{} tokens", s.tokens.len());
        assert!(
            status.contains(&want),
            "event {event}: status {status:?} lacks {want:?}"
        );
        let glyphs = ["█", "▆", "▃", "▁", "·", " "];
        for chip in chip_layout(app, strip_inner(app)) {
            let sym = buf[(chip.x, chip.y)].symbol();
            assert!(
                glyphs.contains(&sym),
                "event {event}: chip {} not drawn at ({}, {}): {sym:?}",
                chip.index,
                chip.x,
                chip.y
            );
            assert!(
                chip.index < app.n_chips(),
                "event {event}: chip {} beyond the state's {} chips",
                chip.index,
                app.n_chips()
            );
        }
    }
}

#[test]
fn ten_thousand_random_events_never_panic_and_80x24_is_sane_after() {
    let mut rng = Rng(0x2545F4914F6CDD1D);
    let mut app = scored_app(80, 24);
    let texts = [
        "👩‍👩‍👧‍👦",
        "e\u{301}",
        "🇯🇵",
        "日本語",
        "مرحبا",
        "\u{1b}[2J",
        "\0",
        "____",
        "[MASK]",
        "<|im_start|>",
        " ",
        "x",
        "I ❤\u{fe0f}",
        "\u{200b}\u{301}",
    ];
    let keys = [
        KeyCode::Left,
        KeyCode::Right,
        KeyCode::Home,
        KeyCode::End,
        KeyCode::Backspace,
        KeyCode::Delete,
        KeyCode::Up,
        KeyCode::Down,
        KeyCode::Enter,
        KeyCode::Tab,
        KeyCode::PageUp,
        KeyCode::PageDown,
        KeyCode::F(1),
        KeyCode::F(2),
        KeyCode::F(3),
        KeyCode::F(4),
        KeyCode::F(5),
        KeyCode::F(6),
        KeyCode::F(9),
        KeyCode::F(10),
        KeyCode::F(11),
        KeyCode::F(12),
        KeyCode::Esc,
        // With Ctrl: the pair's second line on and off, switching lines, the attention and
        // attribution panels.
        KeyCode::Char('p'),
        KeyCode::Char('o'),
        KeyCode::Char('t'),
        KeyCode::Char('g'),
        KeyCode::Char('y'),
    ];
    let mods = [
        KeyModifiers::NONE,
        KeyModifiers::SHIFT,
        KeyModifiers::CONTROL,
        KeyModifiers::ALT,
    ];
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut fills = 0;
    for i in 0..10_000 {
        let msg = match rng.below(15) {
            0..=2 => key(KeyCode::Char(
                char::from_u32(0x20 + rng.below(0x60) as u32).unwrap(),
            )),
            3..=4 => key_mod(
                keys[rng.below(keys.len() as u64) as usize],
                mods[rng.below(4) as usize],
            ),
            5 => Msg::Paste(
                texts[rng.below(texts.len() as u64) as usize].repeat(1 + rng.below(40) as usize),
            ),
            6 => {
                let (w, h) = if rng.below(3) == 0 {
                    (1 + rng.below(4) as u16, 1 + rng.below(4) as u16)
                } else {
                    (1 + rng.below(500) as u16, 1 + rng.below(200) as u16)
                };
                Msg::Resize(w, h)
            }
            7 => Msg::Mouse(MouseEvent {
                kind: if rng.below(2) == 0 {
                    MouseEventKind::Down(MouseButton::Left)
                } else {
                    MouseEventKind::ScrollDown
                },
                column: rng.below(520) as u16,
                row: rng.below(220) as u16,
                modifiers: KeyModifiers::NONE,
            }),
            8 if rng.below(4) == 0 => {
                // The attribution panel's answer, for any position and target, of this text
                // or an old one.
                let position = rng.below(12) as usize;
                let target = (rng.below(2) == 0).then(|| rng.below(12) as u32);
                let result = if rng.below(5) == 0 {
                    Err(EngineError::Unavailable(
                        "attribution unavailable: a test".to_owned(),
                    ))
                } else {
                    Ok(attribution_of(position, target.unwrap_or(1)))
                };
                Msg::Engine(EngineMsg::Attribution {
                    epoch: Epoch(app.attribution.slot.epoch().0.saturating_sub(rng.below(2))),
                    position,
                    target,
                    result,
                })
            }
            8 if rng.below(4) == 0 => {
                // The trace's cells, done or not, of this pair or an old one.
                use logitscope::explorer::worker::protocol::TraceUpdate;
                let n = 1 + rng.below(12) as usize;
                let tokens: Vec<&str> = (0..n).map(|i| ["a", " b", " chef"][i % 3]).collect();
                let r = Box::new(trace_report(
                    1 + rng.below(30) as usize,
                    &tokens,
                    rng.below(400) as usize,
                ));
                let update = match rng.below(4) {
                    0 => TraceUpdate::Done(r),
                    1 => TraceUpdate::Stopped,
                    2 => TraceUpdate::Failed(EngineError::Unavailable(
                        "trace unavailable: a test".into(),
                    )),
                    _ => TraceUpdate::Progress {
                        report: r,
                        done: rng.below(400) as usize,
                        total: rng.below(400) as usize,
                    },
                };
                Msg::Engine(EngineMsg::Trace {
                    epoch: Epoch(app.trace.epoch().0.saturating_sub(rng.below(2))),
                    update,
                })
            }
            8 if rng.below(3) == 0 => {
                // The attention panel's answer, for any position, of this text or an old one.
                let position = rng.below(12) as usize;
                let tokens = scored(SENTENCE).tokens;
                let result = attention_map(&tokens).view(position, 0.5).ok_or_else(|| {
                    EngineError::Unavailable("attention unavailable: a test".to_owned())
                });
                Msg::Engine(EngineMsg::Attention {
                    epoch: Epoch(app.attention.slot.epoch().0.saturating_sub(rng.below(2))),
                    position,
                    result,
                })
            }
            8 => {
                // The engine answers, sometimes late, sometimes for text long gone, sometimes
                // for a pair's second line that was closed since.
                let n = rng.below(3) as usize;
                let g = app.sentences.get(n).map_or(7, |s| s.generation.0);
                Msg::Engine(EngineMsg::Evaluated {
                    sentence: n,
                    generation: TextGen(g.saturating_sub(rng.below(3))),
                    result: Ok(scored(SENTENCE)),
                })
            }
            9 => Msg::Engine(EngineMsg::Evaluated {
                sentence: app.active,
                generation: app.sentence().generation,
                result: Err(EngineError::Unavailable("context full".into())),
            }),
            10 => Msg::Engine(EngineMsg::FillProgress {
                generation: TextGen(
                    app.sentence()
                        .fill
                        .generation
                        .0
                        .saturating_sub(rng.below(2)),
                ),
                blank: rng.below(3) as usize,
                done: rng.below(500) as usize,
                total: rng.below(500) as usize,
                searched: rng.below(40_000) as usize,
                partial: (rng.below(4) == 0).then(|| Box::new(fill_report(&app, &mut rng))),
            }),
            11 => {
                fills += 1;
                let result = if rng.below(5) == 0 {
                    Err(EngineError::Refused("blank 1 has no candidates".into()))
                } else {
                    Ok(Box::new(fill_report(&app, &mut rng)))
                };
                Msg::Engine(EngineMsg::Filled {
                    generation: TextGen(
                        app.sentence()
                            .fill
                            .generation
                            .0
                            .saturating_sub(rng.below(2)),
                    ),
                    result,
                })
            }
            13 => Msg::Engine(EngineMsg::Lens {
                epoch: Epoch(app.lens.epoch().0.saturating_sub(rng.below(2))),
                update: lens_update(&mut rng),
            }),
            12 => Msg::Engine(EngineMsg::Loaded {
                info: info(),
                vocab: if rng.below(2) == 0 {
                    awkward_vocab()
                } else {
                    vocab()
                },
                n_ctx: 4096,
                second: None,
            }),
            _ => Msg::Engine(EngineMsg::LoadProgress(rng.below(100) as f32 / 100.0)),
        };
        if let Msg::Resize(w, h) = msg {
            terminal.backend_mut().resize(w, h);
        }
        update(&mut app, msg);
        // Esc or q may quit: start again, as a user would.
        if app.quit {
            app = scored_app(app.size.0, app.size.1);
        }
        terminal
            .draw(|f| logitscope::explorer::views::draw(f, &app))
            .unwrap();
        assert!(app.selected <= app.n_chips(), "event {i}");
        check_screen(&app, terminal.backend().buffer(), i);
    }
    assert!(fills > 500, "fill results were sent: {fills}");
    app.help = false;
    update(&mut app, Msg::Resize(80, 24));
    if app.pair().is_some() {
        assert!(screen(&app).contains("minimal pair"));
        update(&mut app, key_mod(KeyCode::Char('p'), KeyModifiers::CONTROL));
    }
    let s = screen(&app);
    assert!(s.contains("type a sentence"), "{s}");
    assert!(s.contains("F1 help"));
}

/// Defect: a zero-width piece (U+FE0F, the top prediction after "I ❤") printed an invisible
/// label and every column after it moved left; wide and combining pieces misaligned too.
#[test]
fn awkward_pieces_keep_the_distribution_columns_aligned() {
    let mut app = ready_with(awkward_vocab(), 100, 30);
    update(&mut app, Msg::Paste(SENTENCE.into()));
    let mut s = scored(SENTENCE);
    for r in &mut s.rows {
        *r = row(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 10], None);
    }
    deliver(&mut app, s);
    let cols = distribution_columns(&app);
    assert_eq!(cols.len(), 10, "ten top-k rows drawn: {cols:?}");
    assert!(
        cols.iter().all(|c| *c == cols[0]),
        "columns differ between rows: {cols:?}\n{}",
        screen(&app)
    );
    let text = screen(&app);
    assert!(text.contains("<U+FE0F>"), "{text}");
    assert!(text.contains("␣<U+200B>"), "{text}");
    assert!(text.contains("<0xE3>"), "{text}");
}

/// The filled sentence as the engine would score it: the fixture's tokens, " salt" and ".".
fn scored_filled(text: &str) -> logitscope::explorer::worker::protocol::Scored {
    let mut s = scored(text);
    s.tokens.extend([9, 11]);
    let last = s.rows.len() - 1;
    s.rows[last] = row(&[9, 10, 11], Some(9));
    s.rows.push(row(&[11, 3], Some(11)));
    s.rows.push(row(&[3, 0], None));
    s.n_tokens_total = s.tokens.len();
    s
}

fn chef_fill_report(app: &App, coverage: Option<SearchCoverage>) -> FillReport {
    let cand = |text: &str, post: f64, left_rank: usize, source: &'static str| CandidateReport {
        text: text.into(),
        left_logprob: -1.0,
        sentence_logprob: post.ln() - 40.0,
        posterior: post,
        left_rank,
        source,
        sentence_logprob_b: None,
    };
    let top = |id: u32, p: f64| TopLogprob {
        id,
        token: String::new(),
        bytes: vec![],
        logprob: p.ln(),
    };
    FillReport {
        text: app.editor().text().into(),
        model: "tiny-test.gguf".into(),
        temperature: 1.0,
        order: "left to right",
        blanks: vec![BlankReport {
            index: 0,
            byte_offset: 43,
            left_top_logprobs: vec![top(9, 0.62), top(10, 0.05), top(11, 0.04)],
            left_entropy_bits: Some(3.7),
            candidates: vec![
                cand("salt", 0.85, 1, "left"),
                cand("sugar", 0.10, 2, "left"),
                cand("pepper", 0.04, 5, "user"),
                cand("saffron", 0.01, 9, "search"),
            ],
            scored_text: "The chef seasoned the soup with a pinch of salt.".into(),
            coverage,
        }],
        filled_text: "The chef seasoned the soup with a pinch of salt.".into(),
        batching: None,
    }
}

/// A scored 100×30 explorer whose line was replaced by the chef sentence with a blank, and
/// the generation of the fill it asked for.
fn chef_blank_app() -> (App, TextGen) {
    let mut app = scored_app(100, 30);
    update(&mut app, key_mod(KeyCode::Char('u'), KeyModifiers::CONTROL));
    update(
        &mut app,
        Msg::Paste("The chef seasoned the soup with a pinch of ____.".into()),
    );
    let g = app.sentence().fill.generation;
    (app, g)
}

#[test]
fn snapshot_fill_panel() {
    let (mut app, g) = chef_blank_app();
    let report = chef_fill_report(&app, None);
    let cmds = update(
        &mut app,
        Msg::Engine(EngineMsg::Filled {
            generation: g,
            result: Ok(Box::new(report)),
        }),
    );
    // The strip is asked to show the sentence with its best fill.
    let filled = "The chef seasoned the soup with a pinch of salt.";
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::Run(Job::Evaluate { text, .. }) if text == filled)),
        "{cmds:?}"
    );
    assert_eq!(app.display_text(), filled);
    assert_eq!(app.fill_spans(), [(43, 47)]);
    deliver(&mut app, scored_filled(filled));
    assert!(!app.stale());
    let s = screen(&app);
    assert!(s.contains("salt") && s.contains("0.850"));
    assert!(s.contains("blanks hold their best fill"));
    insta::assert_snapshot!("fill_panel", s);
}

/// While the vocabulary is searched: the progress in the title and a bar; when done, how
/// much was searched and where each candidate came from.
#[test]
fn snapshot_fill_search_progress_and_coverage() {
    let (mut app, g) = chef_blank_app();
    let partial = chef_fill_report(&app, None);
    update(
        &mut app,
        Msg::Engine(EngineMsg::FillProgress {
            generation: g,
            blank: 0,
            done: 120,
            total: 250,
            searched: 1200,
            partial: Some(Box::new(partial)),
        }),
    );
    let s = screen(&app);
    assert!(s.contains("searching blank 1 … 1,200 words"), "{s}");
    assert!(s.contains("120/250"), "{s}");
    insta::assert_snapshot!("fill_search_progress", s);
    let coverage = SearchCoverage {
        searched: 1200,
        vocabulary_words: 31664,
        budget: Budget::Words(1200),
        complete: false,
        scored: 300,
        first_bounds: logitscope::analysis::search::FirstBoundsUsed::SharedPrefix,
    };
    let report = chef_fill_report(&app, Some(coverage));
    update(
        &mut app,
        Msg::Engine(EngineMsg::Filled {
            generation: g,
            result: Ok(Box::new(report)),
        }),
    );
    let s = screen(&app);
    assert!(s.contains("searched 1,200 of 31,664 words"), "{s}");
    assert!(s.contains("+saffron"), "{s}");
    insta::assert_snapshot!("fill_search_done", s);
}

/// Two models compared: the distribution panel shows A's top tokens under both with Δp, the
/// divergences and B's own top; the strip is shaded by KL (F6 cycles to it); the status bar
/// names both models.
/// Model B's side of [`SENTENCE`] scored: its rows and every position compared.
fn compared() -> logitscope::explorer::worker::protocol::ScoredCompare {
    use logitscope::analysis::compare::RowCompare;
    let b_rows: Vec<_> = (0..9u32)
        .map(|i| row(&[(i + 2) % 12, i + 1, 11], (i + 1 < 9).then_some(i + 1)))
        .collect();
    let rows: Vec<RowCompare> = (0..9)
        .map(|i| RowCompare {
            kl_bits: [0.001, 0.05, 0.5, 2.0][i % 4],
            kl_reverse_bits: 0.3,
            js_bits: 0.1,
            a_top_in_b: vec![(0.2f64).ln(), (0.3f64).ln(), (0.1f64).ln(), (0.05f64).ln()],
        })
        .collect();
    logitscope::explorer::worker::protocol::ScoredCompare { b_rows, rows }
}

#[test]
fn snapshot_compare_view() {
    let mut b_info = info();
    b_info.file_name = "tiny-test-q8.gguf".into();
    let mut app = loaded(vocab(), vec![], Some(b_info), 100, 30);
    update(&mut app, Msg::Paste(SENTENCE.into()));
    let mut s = scored(SENTENCE);
    s.compare = Some(compared());
    deliver(&mut app, s);
    update(&mut app, key(KeyCode::F(6)));
    update(&mut app, key(KeyCode::F(6)));
    assert_eq!(
        app.color,
        logitscope::explorer::state::ColorMode::Divergence
    );
    update(&mut app, key_mod(KeyCode::Left, KeyModifiers::SHIFT));
    let screen = screen(&app);
    assert!(screen.contains("KL(A‖B)"), "{screen}");
    assert!(
        screen.contains("A tiny-test.gguf vs B tiny-test-q8.gguf"),
        "{screen}"
    );
    assert!(screen.contains("A vs B: █ KL≥1 bit"), "{screen}");
    insta::assert_snapshot!("compare", screen);
}

/// The chart's positions are labelled under the plot; the selected token is named there (▲)
/// in the very column of the selection line; the legend is below, not over the data.
#[test]
fn the_chart_labels_its_positions_under_the_selection() {
    use ratatui::layout::Rect;
    for (w, h, back) in [(100, 30, 2), (120, 40, 0), (90, 24, 5), (160, 50, 8)] {
        let mut app = scored_app(w, h);
        for _ in 0..back {
            update(&mut app, key_mod(KeyCode::Left, KeyModifiers::SHIFT));
        }
        let buf = buffer(&app);
        let side = logitscope::explorer::layout::areas(Rect::new(0, 0, w, h)).side;
        let row_of = |pred: &dyn Fn(&str) -> bool| {
            (side.y..side.bottom()).find(|&y| {
                let line: String = (side.x..side.right())
                    .map(|x| buf[(x, y)].symbol())
                    .collect();
                pred(&line)
            })
        };
        let labels_y = row_of(&|l| l.contains('▲')).expect("a label row");
        let caret_x = (side.x..side.right())
            .find(|&x| buf[(x, labels_y)].symbol() == "▲")
            .unwrap();
        // The selection line: a column of █ in the rows just above the labels.
        let above = labels_y - 2;
        let line_x: Vec<u16> = (side.x..side.right())
            .filter(|&x| buf[(x, above)].symbol() == "█")
            .collect();
        assert_eq!(line_x, [caret_x], "{w}×{h}: selection line vs ▲");
        let labels: String = (side.x..side.right())
            .map(|x| buf[(x, labels_y)].symbol())
            .collect();
        let selected = &scored(SENTENCE).tokens[app.selected.min(8)];
        let _ = selected;
        assert!(labels.contains("The"), "{labels}");
        let legend_y = row_of(&|l| l.contains("⠉⠒ entropy")).unwrap();
        assert_eq!(legend_y, labels_y + 1, "the legend is below the labels");
    }
}

/// Watched words: pinned rows in the distribution panel, and lines of their own in the chart.
#[test]
fn snapshot_watch_rows() {
    use logitscope::analysis::stats::TargetStats;
    let mut app = ready(100, 30);
    app.watch = vec!["salt".into(), "sugar".into(), "New York".into()];
    update(&mut app, Msg::Paste(SENTENCE.into()));
    let mut s = scored(SENTENCE);
    for (i, r) in s.rows.iter_mut().enumerate() {
        let p = |x: f64| TargetStats {
            id: 0,
            logprob: x.ln(),
            prob: x,
            rank: 1,
        };
        let salt = 0.01 * (i as f64 + 1.0);
        r.watched = vec![
            TargetStats { id: 9, ..p(salt) },
            TargetStats {
                id: 10,
                rank: 40 - i as u32,
                ..p(salt / 3.0)
            },
        ];
    }
    let g = app.sentence().generation;
    let cmds = deliver(&mut app, s);
    // The words of several tokens are asked for at the selected position.
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::Run(Job::Watch { position: 8, .. }))),
        "{cmds:?}"
    );
    update(
        &mut app,
        Msg::Engine(EngineMsg::WatchedAt {
            sentence: 0,
            generation: g,
            position: 8,
            values: vec![logitscope::analysis::watch::WatchValue {
                word: "New York".into(),
                logprob: (2e-6f64).ln(),
                prob: 2e-6,
                rank: None,
                tokens: 2,
            }],
        }),
    );
    let screen = screen(&app);
    assert!(screen.contains("watched"), "{screen}");
    assert!(
        screen.contains("␣salt") && screen.contains("rank 1"),
        "{screen}"
    );
    assert!(screen.contains("2 tokens"), "{screen}");
    assert!(
        screen.contains("▀ salt") && screen.contains("▀ sugar"),
        "{screen}"
    );
    assert!(screen.contains("watch salt,sugar,New York"), "{screen}");
    insta::assert_snapshot!("watch_rows", screen);
}

/// F8 groups tokens into words: the strip shows words, the panel a word's surprisal.
#[test]
fn snapshot_word_view() {
    use std::sync::Arc;
    let pieces = [
        "The", " chef", " sea", "soned", " the", " soup", " with", " a", " pin", "ch", " of",
        " salt",
    ];
    let mut app = ready_with(
        Arc::new(logitscope::analysis::vocab::Vocab::from_bytes(
            pieces.map(str::as_bytes),
        )),
        100,
        30,
    );
    update(
        &mut app,
        Msg::Paste("The chef seasoned the soup with a pinch of".into()),
    );
    let mut s = scored("The chef seasoned the soup with a pinch of");
    s.tokens = (0..11).collect();
    s.rows = (0..11u32)
        .map(|i| row(&[(i + 1) % 12, 11, 3], (i + 1 < 11).then_some(i + 1)))
        .collect();
    s.n_tokens_total = 11;
    deliver(&mut app, s);
    update(&mut app, key(KeyCode::F(8)));
    assert!(app.word_mode);
    assert_eq!(app.n_chips(), 10, "9 words and the next chip");
    // Select " seasoned" (word 2, tokens 2–3).
    update(&mut app, key_mod(KeyCode::Home, KeyModifiers::SHIFT));
    update(&mut app, key(KeyCode::PageDown));
    update(&mut app, key(KeyCode::PageDown));
    let screen = screen(&app);
    assert!(screen.contains("␣seasoned"), "{screen}");
    assert!(screen.contains("word 2 ␣seasoned (tokens 2–3)"), "{screen}");
    assert!(screen.contains("whole word: p"), "{screen}");
    assert!(screen.contains("words: █ p≥0.5"), "{screen}");
    insta::assert_snapshot!("word_view", screen);
    // Back to tokens: the selection stays on the word's first token.
    update(&mut app, key(KeyCode::F(8)));
    assert_eq!(app.selected, 2);
}

/// Ctrl-S: the export holds the score report of the text shown (words included) and parses
/// back as the documented JSON.
#[test]
fn export_builds_the_documented_json() {
    let mut app = scored_app(100, 30);
    let cmds = update(&mut app, key_mod(KeyCode::Char('s'), KeyModifiers::CONTROL));
    let export = cmds
        .iter()
        .find_map(|c| match c {
            Command::Export(e) => Some(e),
            _ => None,
        })
        .expect("an export command");
    let v: serde_json::Value = serde_json::to_value(export.as_ref()).unwrap();
    assert_eq!(v["score"]["text"], SENTENCE);
    assert_eq!(v["score"]["tokens"].as_array().unwrap().len(), 9);
    assert!(v["score"]["words"].as_array().unwrap().len() >= 9);
    assert!(v["score"]["next"]["top_logprobs"].is_array());
}

/// A made-up attention of `tokens`: per layer, head 0 a sink (position 0), head 1 the previous
/// token, head 2 itself; layer 1 has a sliding window of 4.
fn attention_map(tokens: &[u32]) -> logitscope::analysis::attention::AttentionMap {
    use logitscope::analysis::attention::{digest, AttentionFacts, AttentionMap};
    let n = tokens.len();
    let (n_layer, n_head) = (3, 3);
    let windows = vec![None, Some(4), None];
    let row_of = |layer: usize, p: usize, head: usize| -> Vec<f32> {
        let mut r = vec![0.0f32; n];
        let first = if windows[layer].is_some() {
            (p + 1).saturating_sub(4)
        } else {
            0
        };
        let target = match head {
            0 => first,
            1 => p.saturating_sub(1).max(first),
            _ => p,
        };
        r[target] = 0.75;
        let rest = (first..=p).filter(|&j| j != target).count();
        for j in (first..=p).filter(|&j| j != target) {
            r[j] = 0.25 / rest as f32;
        }
        if rest == 0 {
            r[target] = 1.0;
        }
        r
    };
    let mut rows = Vec::new();
    for (layer, &window) in windows.iter().enumerate() {
        for p in 0..n {
            for head in 0..n_head {
                rows.push(digest(&row_of(layer, p, head), p, tokens, window, 2));
            }
        }
    }
    let full = (0..n)
        .map(|p| {
            let mut all = Vec::new();
            for layer in 0..n_layer {
                for head in 0..n_head {
                    all.extend(row_of(layer, p, head));
                }
            }
            (p, all)
        })
        .collect();
    AttentionMap {
        facts: AttentionFacts {
            n_layer,
            n_head,
            n_head_kv: 1,
            windows,
        },
        tokens: tokens.to_vec(),
        rows,
        full,
    }
}

/// F11 opens the attention panel: it asks the engine for the selected position, shows the grid
/// of layers × heads (most attended token, a weight glyph, `w` on sliding layers), the selected
/// head's row beside the layer mean, and the heads with a habit; Alt-↓ and Ctrl-↓ move the
/// selection; an answer for another text is dropped.
#[test]
fn snapshot_attention_panel() {
    let mut app = scored_app(100, 30);
    let cmds = update(&mut app, key(KeyCode::F(11)));
    let (epoch, position) = cmds
        .iter()
        .find_map(|c| match c {
            Command::Run(Job::Attention {
                epoch, position, ..
            }) => Some((*epoch, *position)),
            _ => None,
        })
        .expect("the panel asks for its position");
    let tokens = app.scored().unwrap().tokens.clone();
    assert_eq!(
        position,
        tokens.len() - 1,
        "the ▸next chip is selected: the last position"
    );
    assert!(screen(&app).contains("Reading every head's attention"));
    let view = attention_map(&tokens).view(position, 0.5).unwrap();
    update(
        &mut app,
        Msg::Engine(EngineMsg::Attention {
            epoch: epoch.next(),
            position,
            result: Ok(view.clone()),
        }),
    );
    assert!(
        screen(&app).contains("Reading every head's attention"),
        "another text's answer"
    );
    update(
        &mut app,
        Msg::Engine(EngineMsg::Attention {
            epoch,
            position,
            result: Ok(view),
        }),
    );
    update(&mut app, key_mod(KeyCode::Down, KeyModifiers::ALT));
    update(&mut app, key_mod(KeyCode::Down, KeyModifiers::CONTROL));
    assert_eq!((app.attention.layer, app.attention.head), (1, 1));
    let s = screen(&app);
    assert!(s.contains("3 layers × 3 heads"), "{s}");
    assert!(s.contains("head 1.1 (KV 0) · window 4"), "{s}");
    assert!(s.contains("sink") && s.contains("previous"), "{s}");
    assert!(s.contains("masked"), "positions before the window: {s}");
    assert!(s.contains(" 1w "), "sliding layer marked: {s}");
    insta::assert_snapshot!("attention", s);
    // Closed again: Alt-↓ is the history key once more.
    update(&mut app, key(KeyCode::F(11)));
    assert!(!screen(&app).contains("most attended token"));
}

/// A split of a 3-layer model's logit: 3 heads per layer.
fn attribution_of(position: usize, target: u32) -> logitscope::analysis::attribution::Attribution {
    use logitscope::analysis::attribution::{Attribution, Kind, LayerHeads, Part};
    let parts = vec![
        Part::new(Kind::Embed, None, 0.4),
        Part::new(Kind::Attn, Some(0), -0.8),
        Part::new(Kind::Ffn, Some(0), 1.1),
        Part::new(Kind::Attn, Some(1), 2.6),
        Part::new(Kind::Ffn, Some(1), -1.9),
        Part::new(Kind::Attn, Some(2), 0.3),
        Part::new(Kind::Ffn, Some(2), 6.2),
        Part::new(Kind::Rest, None, 2e-7),
    ];
    let sum: f64 = parts.iter().map(|p| p.value).sum();
    Attribution {
        position,
        target,
        target_text: String::new(),
        parts,
        sum,
        logit_f64: sum + 1e-7,
        llama: (sum - 0.012) as f32,
        rounding: 0.031,
        post: None,
        heads: Some(
            (0..3)
                .map(|l| LayerHeads {
                    layer: l,
                    heads: vec![0.1 * l as f64, -0.5, 1.5 - l as f64],
                    rest: 0.01,
                })
                .collect(),
        ),
        heads_unavailable: None,
    }
}

#[test]
fn snapshot_attribution_panel() {
    let mut app = scored_app(100, 30);
    let asked = |cmds: &[Command]| {
        cmds.iter().find_map(|c| match c {
            Command::Run(Job::Attribution {
                epoch,
                position,
                target,
                ..
            }) => Some((*epoch, *position, *target)),
            _ => None,
        })
    };
    let (epoch, position, target) =
        asked(&update(&mut app, key(KeyCode::F(12)))).expect("the panel asks for its logit");
    let scored = app.scored().unwrap().clone();
    assert_eq!(
        position,
        scored.tokens.len() - 1,
        "the ▸next chip: the last position"
    );
    let top1 = scored.rows[position].top[0].id;
    assert_eq!(
        target,
        Some(top1),
        "at the end: the most likely token's logit"
    );
    assert!(screen(&app).contains("Splitting the logit"));
    // Another text's answer is dropped.
    let answer = |epoch, position, target, a| {
        Msg::Engine(EngineMsg::Attribution {
            epoch,
            position,
            target,
            result: a,
        })
    };
    update(
        &mut app,
        answer(
            epoch.next(),
            position,
            target,
            Ok(attribution_of(position, top1)),
        ),
    );
    assert!(
        screen(&app).contains("Splitting the logit"),
        "another text's answer"
    );
    // A token inside the sentence: its own logit, made at the position before it.
    let cmds = update(&mut app, key_mod(KeyCode::Left, KeyModifiers::SHIFT));
    let selected = app.selected_position().unwrap();
    assert_eq!(asked(&cmds).map(|g| (g.1, g.2)), Some((selected, None)));
    let actual = scored.tokens[selected + 1];
    update(
        &mut app,
        answer(epoch, selected, None, Ok(attribution_of(selected, actual))),
    );
    let s = screen(&app);
    assert!(
        s.contains("Σ parts 7.9000 · f64 7.9000 · llama.cpp 7.8880"),
        "{s}"
    );
    assert!(s.contains("rounding here: ≤ 3.10e-2"), "{s}");
    // Largest first, signed: ffn:2 on top, ffn:1 negative, left of the axis.
    let lines: Vec<&str> = s.lines().collect();
    let at = |part: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(&format!("│{part} ")))
            .unwrap()
    };
    assert!(at("ffn:2") < at("attn:1") && at("attn:1") < at("ffn:1") && at("ffn:1") < at("embed"));
    assert!(lines[at("ffn:1")].contains("-1.900"), "{s}");
    assert!(s.contains("attn:1    +2.60  h1 -0.50  h2 +0.50"), "{s}");
    insta::assert_snapshot!("attribution", s);
    // Alt-↓: the next most likely token's logit is asked for; the status says nothing stale.
    let cmds = update(&mut app, key_mod(KeyCode::Down, KeyModifiers::ALT));
    let next = asked(&cmds).expect("another logit");
    assert_eq!(next.1, selected);
    assert!(next.2.is_some() && next.2 != Some(actual));
    assert!(screen(&app).contains("Splitting the logit"));
    // An unavailable answer says why.
    update(
        &mut app,
        answer(
            epoch,
            next.1,
            next.2,
            Err(EngineError::Unavailable("no graph".into())),
        ),
    );
    assert!(screen(&app).contains("Attribution unavailable: no graph"));
    // Closed again: Alt-↓ is the history key once more.
    update(&mut app, key(KeyCode::F(12)));
    assert!(!screen(&app).contains("attribution at"));
}

/// Ctrl-K, a spec, Enter: the engine is asked; once it has switched the parts off, the
/// sentence is evaluated again and shown against the intact model, the status bar saying what
/// is off. A spec the model refuses (a graph without the tensor) says so and changes nothing.
#[test]
fn snapshot_ablated_view() {
    let mut app = scored_app(100, 30);
    update(&mut app, key_mod(KeyCode::Char('k'), KeyModifiers::CONTROL));
    assert!(screen(&app).contains("switch off (attn:3"));
    for c in "head:1.0".chars() {
        update(&mut app, key(KeyCode::Char(c)));
    }
    let cmds = update(&mut app, key(KeyCode::Enter));
    let asked = cmds.iter().find_map(|c| match c {
        Command::Run(Job::Intervene { ablate, .. }) => Some(ablate.clone()),
        _ => None,
    });
    assert_eq!(asked.as_deref(), Some("head:1.0"));
    assert!(screen(&app).contains("switching to head:1.0…"));
    // Refused: the reason, and the intact numbers stay.
    let refused = "head ablation is unavailable for this model: its graph has no kqv_out-1";
    update(
        &mut app,
        Msg::Engine(EngineMsg::Intervened {
            ablate: "head:1.0".into(),
            result: Err(EngineError::Refused(refused.into())),
        }),
    );
    let s = screen(&app);
    assert!(
        s.contains("ablation not applied: head ablation is unavailable"),
        "{s}"
    );
    assert!(!s.contains("Δ vs intact"), "{s}");
    // Another spec, applied.
    update(&mut app, key_mod(KeyCode::Char('k'), KeyModifiers::CONTROL));
    update(&mut app, key_mod(KeyCode::Char('u'), KeyModifiers::CONTROL));
    for c in "ffn:2".chars() {
        update(&mut app, key(KeyCode::Char(c)));
    }
    update(&mut app, key(KeyCode::Enter));
    let mut intact = info();
    intact.file_name = "tiny-test.gguf (intact)".into();
    let cmds = update(
        &mut app,
        Msg::Engine(EngineMsg::Intervened {
            ablate: "ffn:2".into(),
            result: Ok((Some("ablate ffn:2".into()), Some(intact))),
        }),
    );
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::Run(Job::Evaluate { .. }))),
        "the sentence is evaluated again on the changed model"
    );
    assert!(
        app.scored().is_none(),
        "no intact numbers shown as ablated ones"
    );
    let mut s = scored(SENTENCE);
    s.compare = Some(compared());
    deliver(&mut app, s);
    update(&mut app, key_mod(KeyCode::Left, KeyModifiers::SHIFT));
    let s = screen(&app);
    assert!(s.contains("⚠ ablate ffn:2 · Δ vs intact"), "{s}");
    assert!(s.contains("A ablate ffn:2 vs B intact"), "{s}");
    assert!(s.contains("KL(A‖B)") && s.contains("Δp B−A"), "{s}");
    insta::assert_snapshot!("ablated", s);
}

/// A trace of `tokens` (B's) over `n_layer` layers: B's second token restores A's answer in
/// the early layers, the last layer at the last position fully; `upto` cells computed.
fn trace_report(
    n_layer: usize,
    tokens: &[&str],
    upto: usize,
) -> logitscope::analysis::trace::TraceReport {
    use logitscope::analysis::trace::*;
    let tok = |i: usize, t: &str| TokenRef {
        id: i as u32,
        token: t.into(),
        bytes: t.as_bytes().to_vec(),
    };
    let o = |p: f64, top: &str| Outcome {
        p,
        logprob: p.ln(),
        logit_diff: None,
        top_logprobs: vec![TopLogprob {
            id: 3,
            token: top.into(),
            bytes: top.as_bytes().to_vec(),
            logprob: p.max(0.2).ln(),
        }],
    };
    let baselines = Baselines {
        clean: o(0.8, " salt"),
        corrupt: o(0.05, " pepper"),
    };
    let n = tokens.len();
    let mut cells = Vec::new();
    for layer in 0..n_layer {
        for position in 0..n {
            let p = if (layer, position) == (n_layer - 1, n - 1) {
                0.8
            } else if position == n - 2 {
                0.05 + 0.75 * (1.0 - layer as f64 / n_layer as f64)
            } else if position == n - 1 {
                0.05 + 0.75 * layer as f64 / n_layer as f64
            } else {
                0.05
            };
            cells.push(Cell::new(
                layer,
                position,
                o(p, " salt"),
                &baselines,
                position >= n - 2,
            ));
        }
    }
    cells.truncate(upto);
    TraceReport {
        clean: "A".into(),
        corrupt: "B".into(),
        model: "tiny-test.gguf".into(),
        n_layer,
        layers: (0..n_layer).collect(),
        clean_tokens: tokens.iter().enumerate().map(|(i, t)| tok(i, t)).collect(),
        corrupt_tokens: tokens.iter().enumerate().map(|(i, t)| tok(i, t)).collect(),
        differing: vec![n - 2],
        alignment: None,
        answer: tok(9, " salt"),
        against: None,
        baselines,
        grids: vec![Grid {
            what: What::Resid,
            node: "l_out-{layer}".into(),
            cells,
        }],
        work: Work::default(),
        intervention: None,
    }
}

/// Ctrl-Y in a pair: the trace of A into B is asked for, fills in with a progress bar, and the
/// selected cell (Alt-↑↓ for the layer) shows its patched distribution; a change of B asks
/// again and drops the old grid.
#[test]
fn snapshot_trace_view() {
    use logitscope::explorer::worker::protocol::TraceUpdate;
    let mut app = scored_app(100, 30);
    let ctrl = |c| key_mod(KeyCode::Char(c), KeyModifiers::CONTROL);
    update(&mut app, ctrl('y'));
    assert!(screen(&app).contains("Tracing needs a minimal pair"));
    update(&mut app, ctrl('y'));
    update(&mut app, ctrl('p'));
    for _ in 0..3 {
        update(&mut app, key(KeyCode::Backspace));
    }
    type_text(&mut app, " salt");
    let b_text = "The chef seasoned the soup with a pinch salt";
    deliver(
        &mut app,
        scored_tokens(b_text, &[0, 1, 2, 3, 4, 5, 6, 7, 9]),
    );
    let asked = |cmds: &[Command]| {
        cmds.iter().find_map(|c| match c {
            Command::Run(Job::Trace {
                epoch,
                clean,
                corrupt,
                ..
            }) => Some((*epoch, clean.clone(), corrupt.clone())),
            _ => None,
        })
    };
    let (epoch, clean, corrupt) = asked(&update(&mut app, ctrl('y'))).expect("a trace is asked");
    assert_eq!((clean.as_str(), corrupt.as_str()), (SENTENCE, b_text));
    // B's tokens: " of" replaced by " salt".
    let tokens: Vec<&str> = WORDS[..8].iter().chain(&WORDS[9..10]).copied().collect();
    let progress = |upto, done| {
        Msg::Engine(EngineMsg::Trace {
            epoch,
            update: TraceUpdate::Progress {
                report: Box::new(trace_report(6, &tokens, upto)),
                done,
                total: 54,
            },
        })
    };
    update(&mut app, progress(20, 20));
    let s = screen(&app);
    assert!(s.contains("tracing 20/54"), "{s}");
    // An old pair's cells are dropped.
    update(
        &mut app,
        Msg::Engine(EngineMsg::Trace {
            epoch: Epoch(epoch.0 - 1),
            update: TraceUpdate::Failed(EngineError::Refused("old".into())),
        }),
    );
    assert!(!screen(&app).contains("Trace unavailable"));
    update(
        &mut app,
        Msg::Engine(EngineMsg::Trace {
            epoch,
            update: TraceUpdate::Done(Box::new(trace_report(6, &tokens, 54))),
        }),
    );
    // The selected chip is B's last token; layer 1.
    update(&mut app, key_mod(KeyCode::Down, KeyModifiers::ALT));
    update(&mut app, key_mod(KeyCode::Left, KeyModifiers::SHIFT));
    let s = screen(&app);
    assert!(s.contains("all 54 patched runs"), "{s}");
    assert!(s.contains("layer 1 at 8 ␣salt, patched:"), "{s}");
    assert!(s.contains("p 0.1750 · restored 0.17"), "{s}");
    assert!(
        s.contains("␣pinch   *"),
        "the differing token is marked: {s}"
    );
    assert!(
        s.contains("layer 5 at 8 ␣salt: 1.00"),
        "the strongest named: {s}"
    );
    insta::assert_snapshot!("trace", s);
    // B changes: the trace is asked again, the old grid gone.
    update(&mut app, key(KeyCode::Backspace));
    deliver(
        &mut app,
        scored_tokens(
            "The chef seasoned the soup with a pinch sal",
            &[0, 1, 2, 3, 4, 5, 6, 7, 8],
        ),
    );
    assert!(screen(&app).contains("reading both sentences"));
}
