//! What the sentence lines do: an edit asks for a new evaluation (latest wins), an empty line
//! forgets its results and cancels what is on its way, a blank starts a fill; the second line
//! of a minimal pair opens, closes and takes the focus.

use crate::engine::fill::{FillRequest, DEFAULT_CANDIDATES};
use crate::explorer::state::{App, FillState, Focus, Phase, Sentence, MAX_K, TEMPS};
use crate::explorer::worker::protocol::{Cancel, Job, TextGen};

use crate::explorer::message::Command;

/// The text changed: ask for a new evaluation (latest wins), or, for an empty line, forget
/// the old one and everything still on its way.
pub(super) fn text_changed(app: &mut App) -> Vec<Command> {
    app.history.reset_navigation();
    if app.editor().text().is_empty() {
        return clear(app);
    }
    request(app)
}

/// The next tick of the app's one clock.
fn tick(app: &mut App) -> TextGen {
    app.clock = app.clock.next();
    app.clock
}

/// The active line is empty: nothing to show, and results still in flight for older text must
/// not bring it back.
fn clear(app: &mut App) -> Vec<Command> {
    let g = tick(app);
    let n = app.active;
    let s = app.sentence_mut();
    s.generation = g;
    s.shown_generation = g;
    s.scored = None;
    s.eval_error = None;
    s.watch_at = None;
    s.fill = FillState {
        candidates: std::mem::take(&mut s.fill.candidates),
        ..FillState::default()
    };
    app.selected = 0;
    app.follow_end = true;
    let mut cmds = vec![Command::Cancel(Cancel::Texts(n, g))];
    cmds.extend(forget_lens(app));
    cmds
}

/// The lens of the old text: forgotten, and its requests so far cancelled on the lens's own
/// counter (the next request is newer than the cancel).
fn forget_lens(app: &mut App) -> Vec<Command> {
    app.lens.slot.forget();
    vec![Command::Cancel(Cancel::Lens(app.lens.slot.cancel()))]
}

/// Ask for the active sentence to be evaluated, and filled when it has a blank; cancel a fill
/// still running for a blank that is gone.
pub(super) fn request(app: &mut App) -> Vec<Command> {
    if app.phase != Phase::Ready || app.editor().text().is_empty() {
        return Vec::new();
    }
    let mut cmds = evaluate(app, app.active);
    let (view, search) = (app.view, app.search);
    let blank = app.has_blank();
    let s = app.sentence_mut();
    let g = s.generation;
    if blank {
        s.fill.generation = g;
        s.fill.progress = Some((0, 0, 0));
        s.fill.searched = 0;
        cmds.push(Command::Run(Job::Fill {
            generation: g,
            request: FillRequest {
                text: s.editor.text().to_owned(),
                user_candidates: s.fill.candidates.clone(),
                n_candidates: DEFAULT_CANDIDATES,
                view,
                search,
                ask: true,
                word_list: None,
                prune: true,
                shared_prefix: true,
            },
        }));
    } else {
        if s.fill.progress.is_some() {
            // The blank is gone while its fill is still running: stop it, so the engine is
            // free for the evaluations of what is typed now.
            cmds.push(Command::Cancel(Cancel::Fill(g)));
        }
        s.fill.report = None;
        s.fill.progress = None;
        s.fill.error = None;
    }
    cmds
}

/// Every sentence asked for again (a setting changed, the model loaded): the active one with
/// its fill, the others evaluated.
pub(super) fn request_all(app: &mut App) -> Vec<Command> {
    let mut cmds = request(app);
    for n in 0..app.sentences.len() {
        if n != app.active {
            cmds.extend(evaluate(app, n));
        }
    }
    cmds
}

/// Ask for sentence `n`'s text as shown (with its fills, see `App::display_text`) to be
/// evaluated.
pub(super) fn evaluate(app: &mut App, n: usize) -> Vec<Command> {
    if app.phase != Phase::Ready || app.sentences[n].editor.text().is_empty() {
        return Vec::new();
    }
    let g = tick(app);
    app.sentences[n].generation = g;
    vec![Command::Run(Job::Evaluate {
        sentence: n,
        generation: g,
        text: app.display_text_of(n),
        view: app.view,
        watch: app.watch.clone(),
        readers: n == app.active && app.inspect.reads_the_decode(),
    })]
}

/// Ctrl-P: open the second line of a minimal pair (starting as a copy of the first, to be
/// changed in one place) and edit it, or close it.
pub(super) fn toggle_pair(app: &mut App) -> Vec<Command> {
    if app.sentences.len() > 1 {
        let g = tick(app);
        app.sentences.truncate(1);
        let was = std::mem::replace(&mut app.active, 0);
        app.focus = Focus::Text;
        follow(app);
        let mut cmds = vec![Command::Cancel(Cancel::Texts(1, g))];
        if was != 0 {
            cmds.extend(forget_lens(app));
        }
        return cmds;
    }
    let mut b = Sentence::default();
    b.editor.set_text(app.sentences[0].editor.text());
    app.sentences.push(b);
    switch_to(app, 1)
}

/// Ctrl-O: edit the other line of the pair.
pub(super) fn switch_sentence(app: &mut App) -> Vec<Command> {
    if app.sentences.len() < 2 {
        return Vec::new();
    }
    let other = (app.active + 1) % app.sentences.len();
    switch_to(app, other)
}

fn switch_to(app: &mut App, n: usize) -> Vec<Command> {
    app.active = n;
    app.focus = Focus::Text;
    app.history.reset_navigation();
    follow(app);
    let mut cmds = forget_lens(app);
    let s = app.sentence();
    let unfilled = app.has_blank() && s.fill.report.is_none() && s.fill.progress.is_none();
    if s.scored.is_none() || unfilled || app.stale() {
        cmds.extend(request(app));
    }
    cmds
}

/// The selection follows the end of the active sentence.
fn follow(app: &mut App) {
    app.follow_end = true;
    clamp_selection(app);
}

pub(super) fn select(app: &mut App, to: usize) {
    let n = app.n_chips();
    if n == 0 {
        return;
    }
    app.selected = to.min(n - 1);
    app.follow_end = app.selected == n - 1;
}

/// An edit of the focused line; the sentence is re-evaluated when it changed.
pub(super) fn edit(
    app: &mut App,
    f: impl FnOnce(&mut crate::explorer::editor::LineEditor) -> bool,
) -> Vec<Command> {
    match app.focus {
        Focus::Text => {
            if f(&mut app.sentence_mut().editor) {
                text_changed(app)
            } else {
                Vec::new()
            }
        }
        Focus::Candidates => {
            f(&mut app.sentence_mut().fill.input);
            Vec::new()
        }
        Focus::Watch | Focus::Ablate => {
            f(&mut app.watch_input);
            Vec::new()
        }
    }
}

/// A cursor motion in the focused line.
pub(super) fn moved(
    app: &mut App,
    f: impl FnOnce(&mut crate::explorer::editor::LineEditor),
) -> Vec<Command> {
    match app.focus {
        Focus::Text => f(&mut app.sentence_mut().editor),
        Focus::Candidates => f(&mut app.sentence_mut().fill.input),
        Focus::Watch | Focus::Ablate => f(&mut app.watch_input),
    }
    Vec::new()
}

/// A history recall changes the text without leaving history navigation.
pub(super) fn recall(app: &mut App, text: &str) -> Vec<Command> {
    app.sentence_mut().editor.set_text(text);
    if app.editor().text().is_empty() {
        return clear(app);
    }
    request(app)
}

pub(super) fn add_candidates(app: &mut App) -> Vec<Command> {
    let fill = &mut app.sentence_mut().fill;
    let added: Vec<String> = fill
        .input
        .text()
        .split(',')
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    fill.input.clear();
    let mut changed = false;
    for c in added {
        if !fill.candidates.contains(&c) {
            fill.candidates.push(c);
            changed = true;
        }
    }
    if changed {
        request(app)
    } else {
        Vec::new()
    }
}

pub(super) fn quit(app: &mut App) -> Vec<Command> {
    app.quit = true;
    vec![
        Command::SaveHistory(app.history.entries().to_vec()),
        Command::Quit,
    ]
}

pub(super) fn set_temp(app: &mut App, dir: i32) -> Vec<Command> {
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
    request_all(app)
}

pub(super) fn set_k(app: &mut App, dir: i32) -> Vec<Command> {
    let k = app.view.n_probs as i64 + i64::from(dir);
    app.view.n_probs = k.clamp(1, MAX_K as i64) as usize;
    request_all(app)
}

pub(super) fn clamp_selection(app: &mut App) {
    let n = app.n_chips();
    if app.follow_end || app.selected >= n {
        app.selected = n.saturating_sub(1);
    }
}
