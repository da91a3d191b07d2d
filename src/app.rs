//! The explorer's state and its one transition function.
//!
//! `update(&mut App, Msg) -> Vec<Command>` is pure: keys, pastes, mouse clicks, resizes and the
//! engine's answers come in as [`Msg`]; what should happen outside (evaluate a text, fill a
//! blank, save history, quit) goes out as [`Command`]s. Nothing here waits on the model, which is
//! why typing always feels instant, and why all of it is tested without one.

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use crate::editor::{History, LineEditor};
use crate::engine::{ModelInfo, ViewOptions};
use crate::fill::FillReport;
use crate::stats::RowSummary;
use crate::vocab::Vocab;

/// Everything that can happen to the explorer.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Paste(String),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// A termination signal (SIGTERM, SIGHUP, SIGINT): leave cleanly.
    Signal,
    Engine(EngineMsg),
}

/// What the engine thread reports.
#[derive(Debug, Clone)]
pub enum EngineMsg {
    LoadProgress(f32),
    Loaded {
        info: ModelInfo,
        vocab: Arc<Vocab>,
        n_ctx: usize,
    },
    LoadFailed(String),
    Evaluated {
        generation: u64,
        result: Result<Scored, String>,
    },
    FillProgress {
        generation: u64,
        blank: usize,
        done: usize,
        total: usize,
    },
    Filled {
        generation: u64,
        result: Result<Box<FillReport>, String>,
    },
}

/// A scored text as the explorer keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub text: String,
    pub tokens: Vec<u32>,
    /// `rows[i]` = p_i, the distribution after token i.
    pub rows: Vec<RowSummary>,
    pub n_tokens_total: usize,
    pub view: ViewOptions,
    pub elapsed: Duration,
    pub decoded: usize,
}

/// What the explorer asks the outside world to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Work for the engine thread (latest wins, see `worker`).
    Run(Job),
    SaveHistory(Vec<String>),
    Quit,
}

/// A piece of engine work, tagged with the generation of the text it is for.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    Evaluate {
        generation: u64,
        text: String,
        view: ViewOptions,
    },
    Fill {
        generation: u64,
        text: String,
        candidates: Vec<String>,
        view: ViewOptions,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Loading { progress: f32 },
    Ready,
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// GLTR buckets: top-1, top-10, top-100, beyond.
    Buckets,
    /// A continuous scale over log p.
    Heat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Text,
    Candidates,
}

/// The fill panel's state.
#[derive(Debug, Clone, Default)]
pub struct FillState {
    pub generation: u64,
    pub progress: Option<(usize, usize, usize)>,
    pub report: Option<Box<FillReport>>,
    pub error: Option<String>,
    pub candidates: Vec<String>,
    pub input: LineEditor,
    pub input_scroll: usize,
}

/// The temperatures the view steps through.
pub const TEMPS: [f32; 12] = [0.1, 0.2, 0.3, 0.5, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0];
pub const MAX_K: usize = 50;

#[derive(Debug, Clone)]
pub struct App {
    pub phase: Phase,
    pub model: Option<(ModelInfo, Arc<Vocab>, usize)>,
    pub editor: LineEditor,
    pub input_scroll: usize,
    pub history: History,
    pub view: ViewOptions,
    /// Generation of the newest evaluation asked for.
    pub generation: u64,
    /// Generation of the evaluation shown.
    pub shown_generation: u64,
    /// The newest evaluation received (possibly of an older text: then the view is stale).
    pub scored: Option<Scored>,
    pub eval_error: Option<String>,
    /// Selected chip: token j (showing p_{j-1}), or `n` = the prediction after the last token.
    pub selected: usize,
    /// Keep the selection on the "next" chip while typing.
    pub follow_end: bool,
    pub color: ColorMode,
    pub no_color: bool,
    pub help: bool,
    pub focus: Focus,
    pub fill: FillState,
    pub size: (u16, u16),
    pub warning: Option<String>,
    /// The model's file name, shown while it loads.
    pub model_name: String,
    pub quit: bool,
}

impl App {
    pub fn new(view: ViewOptions, history: Vec<String>, no_color: bool) -> Self {
        Self {
            phase: Phase::Loading { progress: 0.0 },
            model: None,
            editor: LineEditor::new(),
            input_scroll: 0,
            history: History::new(history, 1000),
            view,
            generation: 0,
            shown_generation: 0,
            scored: None,
            eval_error: None,
            selected: 0,
            follow_end: true,
            color: ColorMode::Buckets,
            no_color,
            help: false,
            focus: Focus::Text,
            fill: FillState::default(),
            size: (80, 24),
            warning: None,
            model_name: "model".into(),
            quit: false,
        }
    }

    /// The view shows an older text (or older settings) than the one typed.
    pub fn stale(&self) -> bool {
        match &self.scored {
            Some(s) => s.text != self.editor.text() || s.view != self.view,
            None => !self.editor.text().is_empty(),
        }
    }

    /// Number of chips in the token strip: the tokens plus the "next" chip.
    pub fn n_chips(&self) -> usize {
        self.scored.as_ref().map_or(0, |s| s.tokens.len() + 1)
    }

    pub fn has_blank(&self) -> bool {
        !crate::fill::find_blanks(self.editor.text()).is_empty()
    }
}

/// The single transition function.
pub fn update(app: &mut App, msg: Msg) -> Vec<Command> {
    match msg {
        Msg::Key(key) => on_key(app, key),
        Msg::Paste(s) => {
            if app.help {
                return Vec::new();
            }
            let changed = match app.focus {
                Focus::Text => {
                    app.editor.insert_str(&s);
                    true
                }
                Focus::Candidates => {
                    app.fill.input.insert_str(&s);
                    false
                }
            };
            if changed {
                text_changed(app)
            } else {
                Vec::new()
            }
        }
        Msg::Mouse(m) => on_mouse(app, m),
        Msg::Resize(w, h) => {
            app.size = (w, h);
            Vec::new()
        }
        Msg::Signal => {
            app.quit = true;
            vec![
                Command::SaveHistory(app.history.entries().to_vec()),
                Command::Quit,
            ]
        }
        Msg::Engine(e) => on_engine(app, e),
    }
}

fn on_engine(app: &mut App, e: EngineMsg) -> Vec<Command> {
    match e {
        EngineMsg::LoadProgress(p) => {
            if let Phase::Loading { progress } = &mut app.phase {
                *progress = p.clamp(0.0, 1.0);
            }
            Vec::new()
        }
        EngineMsg::Loaded { info, vocab, n_ctx } => {
            app.model = Some((info, vocab, n_ctx));
            app.phase = Phase::Ready;
            // Text typed while loading is evaluated now.
            if app.editor.text().is_empty() {
                Vec::new()
            } else {
                request(app)
            }
        }
        EngineMsg::LoadFailed(msg) => {
            app.phase = Phase::Failed(msg);
            Vec::new()
        }
        EngineMsg::Evaluated { generation, result } => {
            // A result older than the one shown is dropped; a newer request may still be
            // running, in which case this one is shown (marked stale) until it lands.
            if generation < app.shown_generation {
                return Vec::new();
            }
            match result {
                Ok(s) => {
                    app.eval_error = None;
                    app.scored = Some(s);
                    app.shown_generation = generation;
                    clamp_selection(app);
                }
                Err(e) => {
                    if generation == app.generation {
                        app.eval_error = Some(e);
                        app.scored = None;
                        app.selected = 0;
                    }
                }
            }
            Vec::new()
        }
        EngineMsg::FillProgress {
            generation,
            blank,
            done,
            total,
        } => {
            if generation == app.fill.generation {
                app.fill.progress = Some((blank, done, total));
            }
            Vec::new()
        }
        EngineMsg::Filled { generation, result } => {
            if generation == app.fill.generation {
                app.fill.progress = None;
                match result {
                    Ok(r) => {
                        app.fill.report = Some(r);
                        app.fill.error = None;
                    }
                    Err(e) => {
                        app.fill.error = Some(e);
                    }
                }
            }
            Vec::new()
        }
    }
}

fn clamp_selection(app: &mut App) {
    let n = app.n_chips();
    if app.follow_end || app.selected >= n {
        app.selected = n.saturating_sub(1);
    }
}

/// The text or the view settings changed: ask for a new evaluation (latest wins).
fn text_changed(app: &mut App) -> Vec<Command> {
    app.history.reset_navigation();
    if app.editor.text().is_empty() {
        app.generation += 1;
        app.scored = None;
        app.eval_error = None;
        app.selected = 0;
        app.follow_end = true;
        app.fill = FillState {
            candidates: std::mem::take(&mut app.fill.candidates),
            ..FillState::default()
        };
        return Vec::new();
    }
    request(app)
}

fn request(app: &mut App) -> Vec<Command> {
    if app.phase != Phase::Ready || app.editor.text().is_empty() {
        return Vec::new();
    }
    app.generation += 1;
    let mut cmds = vec![Command::Run(Job::Evaluate {
        generation: app.generation,
        text: app.editor.text().to_owned(),
        view: app.view,
    })];
    if app.has_blank() {
        app.fill.generation = app.generation;
        app.fill.progress = Some((0, 0, 0));
        cmds.push(Command::Run(Job::Fill {
            generation: app.generation,
            text: app.editor.text().to_owned(),
            candidates: app.fill.candidates.clone(),
            view: app.view,
        }));
    } else {
        app.fill.report = None;
        app.fill.progress = None;
        app.fill.error = None;
    }
    cmds
}

fn select(app: &mut App, to: usize) {
    let n = app.n_chips();
    if n == 0 {
        return;
    }
    app.selected = to.min(n - 1);
    app.follow_end = app.selected == n - 1;
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Command> {
    if key.kind == KeyEventKind::Release {
        return Vec::new();
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    let shift = key.modifiers.contains(KeyModifiers::SHIFT);

    // Keys that work everywhere.
    match key.code {
        KeyCode::Char('c') if ctrl => return quit(app),
        KeyCode::F(1) => {
            app.help = !app.help;
            return Vec::new();
        }
        _ => {}
    }
    if app.help {
        return match key.code {
            KeyCode::Char('q') => quit(app),
            _ => {
                app.help = false;
                Vec::new()
            }
        };
    }
    if let Phase::Failed(_) = app.phase {
        return match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Enter => quit(app),
            _ => Vec::new(),
        };
    }

    // View controls.
    match key.code {
        KeyCode::F(2) => return set_temp(app, -1),
        KeyCode::F(3) => return set_temp(app, 1),
        KeyCode::F(4) => return set_k(app, -1),
        KeyCode::F(5) => return set_k(app, 1),
        KeyCode::F(6) => {
            app.color = match app.color {
                ColorMode::Buckets => ColorMode::Heat,
                ColorMode::Heat => ColorMode::Buckets,
            };
            return Vec::new();
        }
        KeyCode::Left if alt || shift => {
            select(app, app.selected.saturating_sub(1));
            return Vec::new();
        }
        KeyCode::Right if alt || shift => {
            select(app, app.selected + 1);
            return Vec::new();
        }
        KeyCode::PageUp => {
            select(app, app.selected.saturating_sub(1));
            return Vec::new();
        }
        KeyCode::PageDown => {
            select(app, app.selected + 1);
            return Vec::new();
        }
        KeyCode::Home if alt || shift => {
            select(app, 0);
            return Vec::new();
        }
        KeyCode::End if alt || shift => {
            select(app, usize::MAX);
            return Vec::new();
        }
        KeyCode::Tab | KeyCode::BackTab => {
            app.focus = match app.focus {
                Focus::Text if app.has_blank() => Focus::Candidates,
                _ => Focus::Text,
            };
            return Vec::new();
        }
        _ => {}
    }

    if app.focus == Focus::Candidates {
        return candidate_key(app, key, ctrl);
    }

    if key.code == KeyCode::Char('?') && app.editor.text().is_empty() {
        app.help = true;
        return Vec::new();
    }
    let ed = &mut app.editor;
    let changed = match key.code {
        KeyCode::Esc => return quit(app),
        KeyCode::Char('u') if ctrl => ed.clear(),
        KeyCode::Char('w') if ctrl => ed.delete_word_before(),
        KeyCode::Char('h') if ctrl => ed.backspace(),
        KeyCode::Char('a') if ctrl => {
            ed.home();
            false
        }
        KeyCode::Char('e') if ctrl => {
            ed.end();
            false
        }
        KeyCode::Char(c) if !ctrl && !alt => {
            ed.insert_char(c);
            true
        }
        KeyCode::Backspace if ctrl || alt => ed.delete_word_before(),
        KeyCode::Backspace => ed.backspace(),
        KeyCode::Delete => ed.delete(),
        KeyCode::Left if ctrl => {
            ed.word_left();
            false
        }
        KeyCode::Right if ctrl => {
            ed.word_right();
            false
        }
        KeyCode::Left => {
            ed.left();
            false
        }
        KeyCode::Right => {
            ed.right();
            false
        }
        KeyCode::Home => {
            ed.home();
            false
        }
        KeyCode::End => {
            ed.end();
            false
        }
        KeyCode::Up => {
            let current = ed.text().to_owned();
            if let Some(prev) = app.history.prev(&current).map(str::to_owned) {
                app.editor.set_text(&prev);
                return request_keep_history(app);
            }
            false
        }
        KeyCode::Down => {
            if let Some(next) = app.history.next().map(str::to_owned) {
                app.editor.set_text(&next);
                return request_keep_history(app);
            }
            false
        }
        KeyCode::Enter => {
            let text = ed.text().to_owned();
            app.history.push(&text);
            app.history.reset_navigation();
            return vec![Command::SaveHistory(app.history.entries().to_vec())];
        }
        _ => false,
    };
    if changed {
        text_changed(app)
    } else {
        Vec::new()
    }
}

/// A history recall changes the text without leaving history navigation.
fn request_keep_history(app: &mut App) -> Vec<Command> {
    if app.editor.text().is_empty() {
        app.scored = None;
        return Vec::new();
    }
    request(app)
}

fn candidate_key(app: &mut App, key: KeyEvent, ctrl: bool) -> Vec<Command> {
    let ed = &mut app.fill.input;
    match key.code {
        KeyCode::Esc => {
            app.focus = Focus::Text;
        }
        KeyCode::Enter => {
            let added: Vec<String> = ed
                .text()
                .split(',')
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect();
            ed.clear();
            let mut changed = false;
            for c in added {
                if !app.fill.candidates.contains(&c) {
                    app.fill.candidates.push(c);
                    changed = true;
                }
            }
            if changed {
                return request(app);
            }
        }
        KeyCode::Char('u')
            if ctrl
            // Ctrl-U on an empty candidate line forgets the user's candidates.
            && !ed.clear() && !app.fill.candidates.is_empty() =>
        {
            app.fill.candidates.clear();
            return request(app);
        }
        KeyCode::Char('w') if ctrl => {
            ed.delete_word_before();
        }
        KeyCode::Char(c) if !ctrl => ed.insert_char(c),
        KeyCode::Backspace => {
            ed.backspace();
        }
        KeyCode::Delete => {
            ed.delete();
        }
        KeyCode::Left => ed.left(),
        KeyCode::Right => ed.right(),
        KeyCode::Home => ed.home(),
        KeyCode::End => ed.end(),
        _ => {}
    }
    Vec::new()
}

fn quit(app: &mut App) -> Vec<Command> {
    app.quit = true;
    vec![
        Command::SaveHistory(app.history.entries().to_vec()),
        Command::Quit,
    ]
}

fn set_temp(app: &mut App, dir: i32) -> Vec<Command> {
    let cur = app.view.temp;
    app.view.temp = if dir < 0 {
        TEMPS
            .iter()
            .rev()
            .find(|&&t| t < cur - 1e-6)
            .copied()
            .unwrap_or(TEMPS[0])
    } else {
        TEMPS
            .iter()
            .find(|&&t| t > cur + 1e-6)
            .copied()
            .unwrap_or(TEMPS[TEMPS.len() - 1])
    };
    request(app)
}

fn set_k(app: &mut App, dir: i32) -> Vec<Command> {
    let k = app.view.n_probs as i64 + i64::from(dir);
    app.view.n_probs = k.clamp(1, MAX_K as i64) as usize;
    request(app)
}

fn on_mouse(app: &mut App, m: MouseEvent) -> Vec<Command> {
    match m.kind {
        MouseEventKind::Down(MouseButton::Left) => {
            if let Some(i) = crate::view::chip_at(app, m.column, m.row) {
                select(app, i);
            }
        }
        MouseEventKind::ScrollUp => select(app, app.selected.saturating_sub(1)),
        MouseEventKind::ScrollDown => select(app, app.selected + 1),
        _ => {}
    }
    Vec::new()
}

/// Test doubles shared by the UI tests: a tiny vocabulary and hand-made rows. They stand in
/// for the model only where the screen is under test; the model itself is tested elsewhere.
#[doc(hidden)]
pub mod fixtures {
    use super::*;
    use crate::stats::{RowSummary, TargetStats, TopEntry};
    use crate::vocab::Piece;

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
        Arc::new(Vocab::new(
            WORDS
                .iter()
                .map(|w| Piece {
                    bytes: w.as_bytes().to_vec(),
                    special: false,
                })
                .collect(),
        ))
    }

    pub fn info() -> ModelInfo {
        ModelInfo {
            file_name: "tiny-test.gguf".into(),
            n_vocab: WORDS.len(),
            n_ctx_train: 2048,
            n_params: 1,
            gpu_layers: 0,
            gpu_available: false,
        }
    }

    /// A ready app (model loaded) of the given size.
    pub fn ready(w: u16, h: u16) -> App {
        let mut app = App::new(
            ViewOptions::default(),
            vec!["an older sentence".into()],
            true,
        );
        app.size = (w, h);
        update(
            &mut app,
            Msg::Engine(EngineMsg::Loaded {
                info: info(),
                vocab: vocab(),
                n_ctx: 4096,
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::fixtures::*;
    use super::*;

    const SENTENCE: &str = "The chef seasoned the soup with a pinch of";

    fn evaluated(app: &mut App, generation: u64, text: &str) {
        update(
            app,
            Msg::Engine(EngineMsg::Evaluated {
                generation,
                result: Ok(scored(text)),
            }),
        );
    }

    #[test]
    fn every_edit_asks_for_an_evaluation_with_a_newer_generation() {
        let mut app = ready(80, 24);
        let cmds = type_text(&mut app, "ab");
        assert_eq!(
            cmds,
            vec![
                Command::Run(Job::Evaluate {
                    generation: 1,
                    text: "a".into(),
                    view: ViewOptions::default()
                }),
                Command::Run(Job::Evaluate {
                    generation: 2,
                    text: "ab".into(),
                    view: ViewOptions::default()
                }),
            ]
        );
        assert!(app.stale());
        // Moving the cursor is not an edit.
        assert!(update(&mut app, key(KeyCode::Left)).is_empty());
    }

    #[test]
    fn nothing_is_evaluated_before_the_model_is_loaded_then_the_text_is() {
        let mut app = App::new(ViewOptions::default(), vec![], false);
        assert!(type_text(&mut app, "hi").is_empty());
        let cmds = update(
            &mut app,
            Msg::Engine(EngineMsg::Loaded {
                info: info(),
                vocab: vocab(),
                n_ctx: 64,
            }),
        );
        assert!(matches!(&cmds[..], [Command::Run(Job::Evaluate { text, .. })] if text == "hi"));
    }

    #[test]
    fn stale_results_are_dropped_and_the_newest_is_shown() {
        let mut app = ready(80, 24);
        type_text(&mut app, SENTENCE);
        let newest = app.generation;
        evaluated(&mut app, newest, SENTENCE);
        assert!(!app.stale());
        // An older result arriving late is dropped.
        evaluated(&mut app, newest - 3, "The chef");
        assert_eq!(app.scored.as_ref().unwrap().text, SENTENCE);
        // An intermediate result is shown (marked stale) while the newest is computed.
        type_text(&mut app, " salt");
        evaluated(&mut app, newest + 2, &format!("{SENTENCE} sa"));
        assert!(app.stale());
        // An error for an old generation does not hide the shown result.
        update(
            &mut app,
            Msg::Engine(EngineMsg::Evaluated {
                generation: newest + 1,
                result: Err("boom".into()),
            }),
        );
        assert!(app.eval_error.is_none());
    }

    #[test]
    fn backspace_and_arrows_work_on_grapheme_clusters() {
        let mut app = ready(80, 24);
        for (text, clusters) in [("a👩‍👩‍👧‍👦b", 3), ("cafe\u{301}!", 5), ("🇯🇵🇫🇷", 2), ("日本語", 3)]
        {
            update(&mut app, key_mod(KeyCode::Char('u'), KeyModifiers::CONTROL));
            update(&mut app, Msg::Paste(text.into()));
            assert_eq!(app.editor.text(), text);
            let mut moves = 0;
            while app.editor.cursor() > 0 {
                update(&mut app, key(KeyCode::Left));
                moves += 1;
            }
            assert_eq!(moves, clusters, "{text}");
            update(&mut app, key(KeyCode::End));
            for _ in 0..clusters {
                update(&mut app, key(KeyCode::Backspace));
            }
            assert_eq!(app.editor.text(), "", "{text}");
        }
        update(&mut app, Msg::Paste("x👩‍👩‍👧‍👦y".into()));
        update(&mut app, key(KeyCode::Home));
        update(&mut app, key(KeyCode::Right));
        update(&mut app, key(KeyCode::Delete));
        assert_eq!(app.editor.text(), "xy");
    }

    #[test]
    fn word_keys_and_line_clearing() {
        let mut app = ready(80, 24);
        type_text(&mut app, "The chef seasoned");
        update(&mut app, key_mod(KeyCode::Char('w'), KeyModifiers::CONTROL));
        assert_eq!(app.editor.text(), "The chef ");
        update(&mut app, key_mod(KeyCode::Left, KeyModifiers::CONTROL));
        assert_eq!(app.editor.cursor(), 4);
        let cmds = update(&mut app, key_mod(KeyCode::Char('u'), KeyModifiers::CONTROL));
        assert_eq!(app.editor.text(), "");
        assert!(cmds.is_empty(), "an empty line is not evaluated");
        assert!(app.scored.is_none());
    }

    #[test]
    fn pastes_are_flattened_to_one_line() {
        let mut app = ready(80, 24);
        let cmds = update(&mut app, Msg::Paste("one\ntwo\tthree\u{1b}[31m".into()));
        assert!(!app.editor.text().contains(['\n', '\t', '\u{1b}']));
        assert_eq!(cmds.len(), 1);
    }

    #[test]
    fn selection_moves_with_keys_and_follows_the_end_while_typing() {
        let mut app = ready(80, 24);
        type_text(&mut app, SENTENCE);
        let g = app.generation;
        evaluated(&mut app, g, SENTENCE);
        assert_eq!(app.selected, 9, "the 'next' chip after 9 tokens");
        update(&mut app, key_mod(KeyCode::Left, KeyModifiers::SHIFT));
        update(&mut app, key(KeyCode::PageUp));
        assert_eq!(app.selected, 7);
        assert!(!app.follow_end);
        let g = app.generation;
        evaluated(&mut app, g, SENTENCE);
        assert_eq!(app.selected, 7, "a new result keeps a chosen position");
        update(&mut app, key_mod(KeyCode::Home, KeyModifiers::ALT));
        assert_eq!(app.selected, 0);
        update(&mut app, key_mod(KeyCode::End, KeyModifiers::SHIFT));
        assert_eq!(app.selected, 9);
        assert!(app.follow_end);
    }

    #[test]
    fn temperature_and_k_re_request_with_new_view() {
        let mut app = ready(80, 24);
        type_text(&mut app, SENTENCE);
        let cmds = update(&mut app, key(KeyCode::F(3)));
        assert!(
            matches!(&cmds[..], [Command::Run(Job::Evaluate { view, .. })] if view.temp == 1.2)
        );
        update(&mut app, key(KeyCode::F(2)));
        update(&mut app, key(KeyCode::F(2)));
        assert_eq!(app.view.temp, 0.85);
        for _ in 0..100 {
            update(&mut app, key(KeyCode::F(2)));
        }
        assert_eq!(app.view.temp, TEMPS[0]);
        let cmds = update(&mut app, key(KeyCode::F(5)));
        assert!(
            matches!(&cmds[..], [Command::Run(Job::Evaluate { view, .. })] if view.n_probs == 11)
        );
        for _ in 0..100 {
            update(&mut app, key(KeyCode::F(4)));
        }
        assert_eq!(app.view.n_probs, 1);
        assert!(app.stale(), "the shown numbers are for other settings");
    }

    #[test]
    fn help_quit_and_question_mark_as_text() {
        let mut app = ready(80, 24);
        update(&mut app, key(KeyCode::Char('?')));
        assert!(app.help, "? on an empty line opens help");
        update(&mut app, key(KeyCode::Char('x')));
        assert!(
            !app.help && app.editor.text().is_empty(),
            "a key closes help"
        );
        type_text(&mut app, "why?");
        assert_eq!(app.editor.text(), "why?", "? is text once there is text");
        update(&mut app, key(KeyCode::F(1)));
        let cmds = update(&mut app, key(KeyCode::Char('q')));
        assert!(app.quit && cmds.contains(&Command::Quit));
        let mut app = ready(80, 24);
        type_text(&mut app, "q");
        assert!(!app.quit, "q is text in the input line");
        let cmds = update(&mut app, key(KeyCode::Esc));
        assert!(app.quit);
        assert!(matches!(cmds[0], Command::SaveHistory(_)));
        let mut app = ready(80, 24);
        update(&mut app, key_mod(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert!(app.quit);
    }

    #[test]
    fn history_is_recalled_and_saved() {
        let mut app = ready(80, 24);
        type_text(&mut app, "draft");
        let cmds = update(&mut app, key(KeyCode::Up));
        assert_eq!(app.editor.text(), "an older sentence");
        assert!(matches!(&cmds[..], [Command::Run(Job::Evaluate { .. })]));
        update(&mut app, key(KeyCode::Down));
        assert_eq!(app.editor.text(), "draft");
        let cmds = update(&mut app, key(KeyCode::Enter));
        assert_eq!(
            cmds,
            vec![Command::SaveHistory(vec![
                "an older sentence".into(),
                "draft".into()
            ])]
        );
    }

    #[test]
    fn a_blank_asks_for_fill_and_candidates_can_be_added() {
        let mut app = ready(80, 24);
        let cmds = type_text(&mut app, "The ____ barked");
        assert!(cmds
            .iter()
            .any(|c| matches!(c, Command::Run(Job::Fill { .. }))));
        update(&mut app, key(KeyCode::Tab));
        assert_eq!(app.focus, Focus::Candidates);
        type_text(&mut app, "dog, cat");
        let cmds = update(&mut app, key(KeyCode::Enter));
        assert!(cmds.iter().any(
            |c| matches!(c, Command::Run(Job::Fill { candidates, .. }) if candidates == &["dog", "cat"])
        ));
        assert_eq!(
            app.editor.text(),
            "The ____ barked",
            "typing went to the candidates"
        );
        // Progress and results of an older fill are ignored.
        let g = app.fill.generation;
        update(
            &mut app,
            Msg::Engine(EngineMsg::FillProgress {
                generation: g - 1,
                blank: 0,
                done: 1,
                total: 9,
            }),
        );
        assert_ne!(app.fill.progress, Some((0, 1, 9)));
        update(&mut app, key(KeyCode::Esc));
        assert_eq!(app.focus, Focus::Text);
        assert!(!app.quit, "Esc leaves the candidate line first");
    }

    #[test]
    fn a_signal_quits_cleanly() {
        let mut app = ready(80, 24);
        let cmds = update(&mut app, Msg::Signal);
        assert!(app.quit);
        assert_eq!(cmds.last(), Some(&Command::Quit));
    }

    #[test]
    fn a_failed_load_is_shown_and_any_quit_key_leaves() {
        let mut app = App::new(ViewOptions::default(), vec![], false);
        update(
            &mut app,
            Msg::Engine(EngineMsg::LoadFailed("model file 'x' is empty".into())),
        );
        assert!(matches!(app.phase, Phase::Failed(_)));
        type_text(&mut app, "abc");
        assert!(app.editor.text().is_empty());
        update(&mut app, key(KeyCode::Enter));
        assert!(app.quit);
    }
}
