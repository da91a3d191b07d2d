//! The explorer's one transition function, by message family: keys and mouse here, the
//! engine's answers in [`engine`], what the sentence lines do in [`text`].
//!
//! `update(&mut App, Msg) -> Vec<Command>` is pure: keys, pastes, mouse clicks, resizes and the
//! engine's answers come in as [`Msg`]; what should happen outside (run or cancel engine work,
//! save history, quit) goes out as [`Command`]s. Nothing here waits on the model, which is why
//! typing always feels instant, and why all of it is tested without one. Keys go through the
//! [`keymap`](crate::explorer::keymap) table.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, MouseButton, MouseEvent, MouseEventKind};

use crate::explorer::keymap::{self, Action};
use crate::explorer::layout;
use crate::explorer::state::{App, ColorMode, Focus, Phase};

pub use crate::explorer::message::{Command, Msg};
use crate::explorer::reading;

mod engine;
mod text;

use engine::on_engine;
use text::{
    add_candidates, clamp_selection, edit, evaluate, moved, quit, recall, request, select, set_k,
    set_temp, switch_sentence, text_changed, toggle_pair,
};

/// The single transition function.
pub fn update(app: &mut App, msg: Msg) -> Vec<Command> {
    let before = (
        app.selected_token(),
        app.active,
        app.sentence().shown_generation,
    );
    let mut cmds = match msg {
        Msg::Key(key) => on_key(app, key),
        Msg::Paste(s) => {
            if app.help {
                return Vec::new();
            }
            match app.focus {
                Focus::Text => {
                    app.sentence_mut().editor.insert_str(&s);
                    text_changed(app)
                }
                Focus::Candidates => {
                    app.sentence_mut().fill.input.insert_str(&s);
                    Vec::new()
                }
                Focus::Watch | Focus::Ablate => {
                    app.watch_input.insert_str(&s);
                    Vec::new()
                }
            }
        }
        Msg::Mouse(m) => on_mouse(app, m),
        Msg::Resize(w, h) => {
            app.size = (w, h);
            Vec::new()
        }
        Msg::Signal => quit(app),
        Msg::Notice(n) => {
            app.notice = Some(n);
            Vec::new()
        }
        Msg::Engine(e) => on_engine(app, e),
    };
    // Keep the input line's horizontal scroll so the cursor stays visible.
    let width = layout::input_text_width(app);
    for s in &mut app.sentences {
        s.input_scroll = s.editor.viewport(width, s.input_scroll).scroll;
    }
    // Watched words of several tokens are decoded at the selected position on request.
    if (
        app.selected_token(),
        app.active,
        app.sentence().shown_generation,
    ) != before
    {
        cmds.extend(reading::watch_at_selection(app));
    }
    // The lens and H·W panels ask for what they lack.
    cmds.extend(crate::explorer::inspect::request(app));
    cmds.extend(crate::explorer::attention::request(app));
    cmds.extend(crate::explorer::attribution::request(app));
    cmds.extend(crate::explorer::trace::request(app));
    cmds
}

/// Move in the attention grid; declines (the key goes on) while the panel is closed.
fn step(app: &mut App, dl: isize, dh: isize) -> Option<Vec<Command>> {
    crate::explorer::attention::step(app, dl, dh).then(Vec::new)
}

/// Walk the corpus report; declines while it is closed.
fn report_step(app: &mut App, d: isize) -> Option<Vec<Command>> {
    let opened = crate::explorer::report::step(app, d)?;
    Some(opened.map_or_else(Vec::new, |text| recall(app, &text)))
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Command> {
    if key.kind == KeyEventKind::Release {
        return Vec::new();
    }
    let line = match app.focus {
        Focus::Text => keymap::Scope::Text,
        Focus::Candidates => keymap::Scope::Candidates,
        Focus::Watch | Focus::Ablate => keymap::Scope::Watch,
    };
    let scopes = keymap::scopes(app.help, matches!(app.phase, Phase::Failed(_)), line);
    for action in keymap::candidates(&scopes, &key) {
        if let Some(cmds) = apply(app, action, &key) {
            return cmds;
        }
    }
    Vec::new()
}

/// Do what `action` says; `None` when it does not apply here (the lookup goes on).
fn apply(app: &mut App, action: Action, key: &KeyEvent) -> Option<Vec<Command>> {
    let none = Vec::new;
    Some(match action {
        Action::Quit => quit(app),
        Action::ToggleHelp => {
            app.help = !app.help;
            none()
        }
        Action::CloseHelp => {
            app.help = false;
            none()
        }
        Action::HelpOnEmptyLine => {
            if !app.editor().text().is_empty() {
                return None;
            }
            app.help = true;
            none()
        }
        Action::Ignore => none(),
        Action::TempDown => set_temp(app, -1),
        Action::TempUp => set_temp(app, 1),
        Action::FewerRows => set_k(app, -1),
        Action::MoreRows => set_k(app, 1),
        Action::ToggleColor => {
            let comparing = app.model.as_ref().is_some_and(|m| m.second.is_some());
            app.color = match app.color {
                ColorMode::Buckets => ColorMode::Heat,
                ColorMode::Heat if comparing => ColorMode::Divergence,
                ColorMode::Heat | ColorMode::Divergence => ColorMode::Buckets,
            };
            none()
        }
        Action::SelectPrev => {
            select(app, app.selected.saturating_sub(1));
            none()
        }
        Action::SelectNext => {
            select(app, app.selected + 1);
            none()
        }
        Action::SelectFirst => {
            select(app, 0);
            none()
        }
        Action::SelectLast => {
            select(app, usize::MAX);
            none()
        }
        Action::SwitchFocus => {
            app.focus = match app.focus {
                Focus::Text if app.has_blank() => Focus::Candidates,
                _ => Focus::Text,
            };
            none()
        }
        Action::Type => {
            let KeyCode::Char(c) = key.code else {
                return None;
            };
            match app.focus {
                Focus::Text => {
                    app.sentence_mut().editor.insert_char(c);
                    text_changed(app)
                }
                Focus::Candidates => {
                    app.sentence_mut().fill.input.insert_char(c);
                    none()
                }
                Focus::Watch | Focus::Ablate => {
                    app.watch_input.insert_char(c);
                    none()
                }
            }
        }
        Action::DeleteWord => edit(app, |ed| ed.delete_word_before()),
        Action::ClearLine => edit(app, |ed| ed.clear()),
        Action::Backspace => edit(app, |ed| ed.backspace()),
        Action::Delete => edit(app, |ed| ed.delete()),
        Action::Left => moved(app, |ed| ed.left()),
        Action::Right => moved(app, |ed| ed.right()),
        Action::WordLeft => moved(app, |ed| ed.word_left()),
        Action::WordRight => moved(app, |ed| ed.word_right()),
        Action::Home => moved(app, |ed| ed.home()),
        Action::End => moved(app, |ed| ed.end()),
        Action::HistoryPrev => {
            let current = app.editor().text().to_owned();
            match app.history.prev(&current).map(str::to_owned) {
                Some(prev) => recall(app, &prev),
                None => none(),
            }
        }
        Action::HistoryNext => match app.history.next().map(str::to_owned) {
            Some(next) => recall(app, &next),
            None => none(),
        },
        Action::SaveToHistory => {
            let text = app.editor().text().to_owned();
            app.history.push(&text);
            app.history.reset_navigation();
            vec![Command::SaveHistory(app.history.entries().to_vec())]
        }
        Action::LeaveCandidates => {
            app.focus = Focus::Text;
            none()
        }
        Action::AddCandidates => add_candidates(app),
        Action::EditWatch => {
            app.watch_input.set_text(&app.watch.join(", "));
            app.focus = Focus::Watch;
            none()
        }
        Action::ApplyWatch if app.focus == Focus::Ablate => crate::explorer::ablation::apply(app),
        Action::EditAblation => crate::explorer::ablation::edit(app),
        Action::ApplyWatch => {
            let words: Vec<String> = app
                .watch_input
                .text()
                .split(',')
                .map(str::to_owned)
                .collect();
            app.watch = crate::analysis::watch::parse_list(&words);
            for s in &mut app.sentences {
                s.watch_at = None;
            }
            app.focus = Focus::Text;
            (0..app.sentences.len())
                .flat_map(|n| evaluate(app, n))
                .collect()
        }
        Action::LeaveWatch => {
            app.focus = Focus::Text;
            none()
        }
        Action::ToggleWords => {
            // Keep the selection on the same place of the text.
            let token = app.selected_token();
            let at_end = app.follow_end;
            app.word_mode = !app.word_mode;
            if app.word_mode {
                let words = app.words();
                app.selected = words
                    .iter()
                    .position(|w| (w.start..w.end).contains(&token))
                    .unwrap_or(words.len());
            } else {
                app.selected = token;
            }
            if at_end {
                select(app, usize::MAX);
            }
            clamp_selection(app);
            none()
        }
        Action::Export => reading::export(app),
        Action::TogglePair => toggle_pair(app),
        Action::SwitchSentence => switch_sentence(app),
        Action::ToggleLens => {
            crate::explorer::inspect::toggle(app, crate::explorer::state::Inspect::Lens);
            none()
        }
        Action::ToggleAttention => {
            crate::explorer::attention::toggle(app);
            none()
        }
        Action::AttentionLayerUp => step(app, -1, 0)?,
        Action::AttentionLayerDown => step(app, 1, 0)?,
        Action::AttentionHeadLeft => step(app, 0, -1)?,
        Action::AttentionHeadRight => step(app, 0, 1)?,
        Action::ToggleAttribution => {
            crate::explorer::attribution::toggle(app);
            none()
        }
        Action::ToggleTrace => crate::explorer::trace::toggle(app),
        Action::TraceLayerUp => crate::explorer::trace::step(app, -1).then(none)?,
        Action::TraceLayerDown => crate::explorer::trace::step(app, 1).then(none)?,
        Action::AttributionTargetUp => crate::explorer::attribution::step(app, -1).then(none)?,
        Action::AttributionTargetDown => crate::explorer::attribution::step(app, 1).then(none)?,
        Action::ToggleReport => {
            let opened = crate::explorer::report::toggle(app)?;
            opened.map_or_else(none, |text| recall(app, &text))
        }
        Action::ReportUp => report_step(app, -1)?,
        Action::ReportDown => report_step(app, 1)?,
        Action::ToggleHw => {
            crate::explorer::inspect::toggle(app, crate::explorer::state::Inspect::Hw);
            none()
        }
        Action::ClearCandidates => {
            // Ctrl-U on an empty candidate line forgets the user's candidates.
            let fill = &mut app.sentence_mut().fill;
            if !fill.input.clear() && !fill.candidates.is_empty() {
                fill.candidates.clear();
                request(app)
            } else {
                none()
            }
        }
    })
}

fn on_mouse(app: &mut App, m: MouseEvent) -> Vec<Command> {
    match m.kind {
        MouseEventKind::Down(MouseButton::Left) => {
            if let Some(i) = layout::chip_at(app, m.column, m.row) {
                select(app, i);
            }
        }
        MouseEventKind::ScrollUp => select(app, app.selected.saturating_sub(1)),
        MouseEventKind::ScrollDown => select(app, app.selected + 1),
        _ => {}
    }
    Vec::new()
}

#[cfg(test)]
#[path = "../../../tests/common/ui.rs"]
mod fixtures;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::fixtures::*;
    use super::*;
    use crate::analysis::stats::ViewOptions;
    use crate::explorer::state::{App, Focus, TEMPS};
    use crate::explorer::worker::protocol::{Cancel, EngineMsg, Job, TextGen};
    use crossterm::event::{KeyCode, KeyModifiers};

    const SENTENCE: &str = "The chef seasoned the soup with a pinch of";

    fn evaluated(app: &mut App, generation: TextGen, text: &str) {
        update(
            app,
            Msg::Engine(EngineMsg::Evaluated {
                sentence: 0,
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
                    sentence: 0,
                    generation: TextGen(1),
                    text: "a".into(),
                    view: ViewOptions::default(),
                    watch: vec![],
                    readers: false,
                }),
                Command::Run(Job::Evaluate {
                    sentence: 0,
                    generation: TextGen(2),
                    text: "ab".into(),
                    view: ViewOptions::default(),
                    watch: vec![],
                    readers: false,
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
                second: None,
            }),
        );
        assert!(matches!(&cmds[..], [Command::Run(Job::Evaluate { text, .. })] if text == "hi"));
    }

    #[test]
    fn stale_results_are_dropped_and_the_newest_is_shown() {
        let mut app = ready(80, 24);
        type_text(&mut app, SENTENCE);
        let newest = app.sentence().generation;
        evaluated(&mut app, newest, SENTENCE);
        assert!(!app.stale());
        // An older result arriving late is dropped.
        evaluated(&mut app, TextGen(newest.0 - 3), "The chef");
        assert_eq!(app.sentence().scored.as_ref().unwrap().text, SENTENCE);
        // An intermediate result is shown (marked stale) while the newest is computed.
        type_text(&mut app, " salt");
        evaluated(&mut app, TextGen(newest.0 + 2), &format!("{SENTENCE} sa"));
        assert!(app.stale());
        // An error for an old generation does not hide the shown result.
        update(
            &mut app,
            Msg::Engine(EngineMsg::Evaluated {
                sentence: 0,
                generation: TextGen(newest.0 + 1),
                result: Err(crate::engine::EngineError::Unavailable("boom".into())),
            }),
        );
        assert!(app.sentence().eval_error.is_none());
    }

    #[test]
    fn backspace_and_arrows_work_on_grapheme_clusters() {
        let mut app = ready(80, 24);
        for (text, clusters) in [("a👩‍👩‍👧‍👦b", 3), ("cafe\u{301}!", 5), ("🇯🇵🇫🇷", 2), ("日本語", 3)]
        {
            update(&mut app, key_mod(KeyCode::Char('u'), KeyModifiers::CONTROL));
            update(&mut app, Msg::Paste(text.into()));
            assert_eq!(app.sentence_mut().editor.text(), text);
            let mut moves = 0;
            while app.sentence_mut().editor.cursor() > 0 {
                update(&mut app, key(KeyCode::Left));
                moves += 1;
            }
            assert_eq!(moves, clusters, "{text}");
            update(&mut app, key(KeyCode::End));
            for _ in 0..clusters {
                update(&mut app, key(KeyCode::Backspace));
            }
            assert_eq!(app.sentence_mut().editor.text(), "", "{text}");
        }
        update(&mut app, Msg::Paste("x👩‍👩‍👧‍👦y".into()));
        update(&mut app, key(KeyCode::Home));
        update(&mut app, key(KeyCode::Right));
        update(&mut app, key(KeyCode::Delete));
        assert_eq!(app.sentence_mut().editor.text(), "xy");
    }

    #[test]
    fn word_keys_and_line_clearing() {
        let mut app = ready(80, 24);
        type_text(&mut app, "The chef seasoned");
        update(&mut app, key_mod(KeyCode::Char('w'), KeyModifiers::CONTROL));
        assert_eq!(app.sentence_mut().editor.text(), "The chef ");
        update(&mut app, key_mod(KeyCode::Left, KeyModifiers::CONTROL));
        assert_eq!(app.sentence_mut().editor.cursor(), 4);
        let cmds = update(&mut app, key_mod(KeyCode::Char('u'), KeyModifiers::CONTROL));
        assert_eq!(app.sentence_mut().editor.text(), "");
        assert!(
            !cmds.iter().any(|c| matches!(c, Command::Run(_))),
            "an empty line is not evaluated"
        );
        assert!(app.sentence().scored.is_none());
    }

    #[test]
    fn pastes_are_flattened_to_one_line() {
        let mut app = ready(80, 24);
        let cmds = update(&mut app, Msg::Paste("one\ntwo\tthree\u{1b}[31m".into()));
        assert!(!app
            .sentence_mut()
            .editor
            .text()
            .contains(['\n', '\t', '\u{1b}']));
        assert_eq!(cmds.len(), 1);
    }

    #[test]
    fn selection_moves_with_keys_and_follows_the_end_while_typing() {
        let mut app = ready(80, 24);
        type_text(&mut app, SENTENCE);
        let g = app.sentence().generation;
        evaluated(&mut app, g, SENTENCE);
        assert_eq!(app.selected, 9, "the 'next' chip after 9 tokens");
        update(&mut app, key_mod(KeyCode::Left, KeyModifiers::SHIFT));
        update(&mut app, key(KeyCode::PageUp));
        assert_eq!(app.selected, 7);
        assert!(!app.follow_end);
        let g = app.sentence().generation;
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
            !app.help && app.sentence_mut().editor.text().is_empty(),
            "a key closes help"
        );
        type_text(&mut app, "why?");
        assert_eq!(
            app.sentence_mut().editor.text(),
            "why?",
            "? is text once there is text"
        );
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
        assert_eq!(app.sentence_mut().editor.text(), "an older sentence");
        assert!(matches!(&cmds[..], [Command::Run(Job::Evaluate { .. })]));
        update(&mut app, key(KeyCode::Down));
        assert_eq!(app.sentence_mut().editor.text(), "draft");
        let cmds = update(&mut app, key(KeyCode::Enter));
        assert_eq!(
            cmds,
            vec![Command::SaveHistory(vec![
                "an older sentence".into(),
                "draft".into()
            ])]
        );
    }

    /// "The ____ barked" typed: a fill was asked for.
    fn app_with_a_blank() -> App {
        let mut app = ready(80, 24);
        let cmds = type_text(&mut app, "The ____ barked");
        assert!(cmds
            .iter()
            .any(|c| matches!(c, Command::Run(Job::Fill { .. }))));
        app
    }

    #[test]
    fn a_blank_asks_for_fill_and_candidates_can_be_added() {
        let mut app = app_with_a_blank();
        update(&mut app, key(KeyCode::Tab));
        assert_eq!(app.focus, Focus::Candidates);
        type_text(&mut app, "dog, cat");
        let cmds = update(&mut app, key(KeyCode::Enter));
        assert!(cmds.iter().any(
            |c| matches!(c, Command::Run(Job::Fill { request, .. }) if request.user_candidates == ["dog", "cat"])
        ));
        assert_eq!(
            app.sentence_mut().editor.text(),
            "The ____ barked",
            "typing went to the candidates"
        );
        // Progress and results of an older fill are ignored.
        let g = app.sentence_mut().fill.generation;
        update(
            &mut app,
            Msg::Engine(EngineMsg::FillProgress {
                generation: TextGen(g.0 - 1),
                blank: 0,
                done: 1,
                total: 9,
                searched: 0,
                partial: None,
            }),
        );
        assert_ne!(app.sentence_mut().fill.progress, Some((0, 1, 9)));
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
            Msg::Engine(EngineMsg::LoadFailed(crate::engine::EngineError::Refused(
                "model file 'x' is empty".into(),
            ))),
        );
        assert!(matches!(app.phase, Phase::Failed(_)));
        type_text(&mut app, "abc");
        assert!(app.sentence_mut().editor.text().is_empty());
        update(&mut app, key(KeyCode::Enter));
        assert!(app.quit);
    }

    /// Defect: clearing the line bumped `generation` but not `shown_generation`, so a result
    /// still in flight for the old text was drawn again under an "evaluating…" that never
    /// cleared.
    #[test]
    fn a_cleared_line_drops_results_still_in_flight() {
        let mut app = ready(80, 24);
        type_text(&mut app, SENTENCE);
        let in_flight = app.sentence().generation;
        update(&mut app, key_mod(KeyCode::Char('u'), KeyModifiers::CONTROL));
        evaluated(&mut app, in_flight, SENTENCE);
        assert!(
            app.sentence().scored.is_none(),
            "the old sentence came back"
        );
        assert!(!app.stale(), "an empty line has nothing to evaluate");
        // The same through history: recalling an empty entry is a clear too.
        type_text(&mut app, "abc");
        let in_flight = app.sentence().generation;
        app.sentence_mut().editor.set_text("");
        let cmds = recall(&mut app, "");
        assert!(cmds.iter().all(|c| matches!(c, Command::Cancel(_))));
        evaluated(&mut app, in_flight, "abc");
        assert!(app.sentence().scored.is_none());
    }

    /// Defect: deleting the blank sent no fill job, so a fill of several seconds kept the
    /// engine busy while every keystroke's evaluation waited behind it.
    #[test]
    fn deleting_the_blank_cancels_its_fill() {
        let mut app = app_with_a_blank();
        let fill_generation = app.sentence_mut().fill.generation;
        // Delete the blank (and what follows): the text has no blank any more.
        let mut cmds = Vec::new();
        for _ in 0.."___ barked".len() {
            cmds.extend(update(&mut app, key(KeyCode::Backspace)));
        }
        assert!(!app.has_blank());
        let cancel = cmds.iter().find_map(|c| match c {
            Command::Cancel(Cancel::Fill(g)) => Some(*g),
            _ => None,
        });
        assert!(
            cancel.is_some_and(|g| g > fill_generation),
            "no cancel of the running fill in {cmds:?}"
        );
        // Typing on without a blank sends no further cancels.
        let cmds = type_text(&mut app, "x");
        assert!(!cmds.iter().any(|c| matches!(c, Command::Cancel(_))));
    }

    /// Defect: a panic on the engine thread left the explorer waiting forever.
    #[test]
    fn an_engine_crash_ends_the_explorer_with_the_message_and_the_log() {
        let mut app = ready(80, 24);
        app.log_file = Some("/tmp/x/logitscope.log".into());
        type_text(&mut app, SENTENCE);
        update(
            &mut app,
            Msg::Engine(EngineMsg::Crashed("index out of bounds".into())),
        );
        match &app.phase {
            Phase::Failed(msg) => {
                assert!(msg.contains("index out of bounds"), "{msg}");
                assert!(msg.contains("/tmp/x/logitscope.log"), "{msg}");
            }
            other => panic!("not failed: {other:?}"),
        }
    }
}
