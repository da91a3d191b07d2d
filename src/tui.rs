//! The explorer's runtime: terminal set-up and restore, the input and signal threads, and the
//! loop that feeds [`Msg`]s to [`update`] and draws [`view::draw`]. Everything interesting is in
//! `app` (state) and `view` (drawing); this file is plumbing.
//!
//! The terminal is restored on every exit: normal quit, an error, a panic (hook) and
//! SIGTERM/SIGHUP/SIGINT (a signal thread turns them into a message).

use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
};
use crossterm::execute;
use ratatui::backend::Backend;
use ratatui::Terminal;

use crate::app::{update, App, Command, EngineMsg, Msg, Phase};
use crate::cli::{Fatal, Settings};
use crate::worker::JobSlot;

pub fn run(settings: Settings, warning: Option<String>) -> Result<ExitCode, Fatal> {
    // Everything that can fail before the screen is taken fails here, as a plain line.
    let path = crate::cli::resolve_model_path(&settings)?;
    crate::gguf::inspect(&path).map_err(|e| Fatal::model(&path, e))?;
    {
        use std::io::IsTerminal;
        if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
            return Err(Fatal::other(
                "the explorer needs a terminal; for scripts use `logitscope score` or `logitscope fill`",
            ));
        }
    }
    let options = crate::cli::model_options(&settings, path.clone());
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let mut app = App::new(settings.view, load_history(), no_color);
    app.warning = warning;
    app.model_name = path
        .file_name()
        .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());

    let (tx, rx) = mpsc::channel();
    let jobs = Arc::new(JobSlot::default());
    crate::worker::spawn(options, jobs.clone(), tx.clone())
        .map_err(|e| Fatal::other(format!("cannot start the engine thread: {e}")))?;
    spawn_signal_thread(tx.clone())?;

    let mut terminal = enter()?;
    if let Ok(size) = terminal.size() {
        app.size = (size.width, size.height);
    }
    spawn_input_thread(tx);
    let result = event_loop(&mut terminal, &mut app, &rx, &jobs);
    leave();
    jobs.shutdown();
    result?;
    if let Phase::Failed(msg) = &app.phase {
        eprintln!("logitscope: error: {msg}");
        let _ = std::io::stderr().flush();
        // The engine thread may still be inside llama.cpp: do not wait for it.
        std::process::exit(2);
    }
    let _ = std::io::stdout().flush();
    std::process::exit(0)
}

/// Take the terminal: raw mode, alternate screen, mouse, bracketed paste; and make sure a
/// panic gives it back.
fn enter() -> Result<Terminal<ratatui::backend::CrosstermBackend<std::io::Stdout>>, Fatal> {
    let terminal =
        ratatui::try_init().map_err(|e| Fatal::other(format!("cannot use this terminal: {e}")))?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(
            std::io::stdout(),
            DisableMouseCapture,
            DisableBracketedPaste
        );
        // ratatui's own hook (installed by init) restores raw mode and the screen.
        previous(info);
    }));
    let _ = execute!(std::io::stdout(), EnableMouseCapture, EnableBracketedPaste);
    Ok(terminal)
}

fn leave() {
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste
    );
    ratatui::restore();
}

fn spawn_input_thread(tx: Sender<Msg>) {
    let _ = std::thread::Builder::new()
        .name("input".into())
        .spawn(move || loop {
            let msg = match crossterm::event::read() {
                Ok(Event::Key(k)) => Msg::Key(k),
                Ok(Event::Paste(s)) => Msg::Paste(s),
                Ok(Event::Mouse(m)) => Msg::Mouse(m),
                Ok(Event::Resize(w, h)) => Msg::Resize(w, h),
                Ok(_) => continue,
                Err(_) => Msg::Signal,
            };
            if tx.send(msg).is_err() {
                return;
            }
        });
}

fn spawn_signal_thread(tx: Sender<Msg>) -> Result<(), Fatal> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT])
        .map_err(|e| Fatal::other(format!("cannot install signal handlers: {e}")))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for _ in signals.forever() {
                if tx.send(Msg::Signal).is_err() {
                    return;
                }
            }
        })
        .map(|_| ())
        .map_err(|e| Fatal::other(format!("cannot start the signal thread: {e}")))
}

/// Receive, update, execute, draw — coalescing every message already waiting into one draw.
pub fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    rx: &Receiver<Msg>,
    jobs: &JobSlot,
) -> Result<(), Fatal> {
    draw(terminal, app)?;
    while let Ok(msg) = rx.recv() {
        let mut commands = step(app, msg);
        while let Ok(more) = rx.try_recv() {
            commands.extend(step(app, more));
        }
        for c in commands {
            execute_command(c, jobs);
        }
        if app.quit || matches!(app.phase, Phase::Failed(_)) {
            return Ok(());
        }
        draw(terminal, app)?;
    }
    Ok(())
}

/// One message through `update`, plus keeping the input line's horizontal scroll.
pub fn step(app: &mut App, msg: Msg) -> Vec<Command> {
    let failed_load = matches!(msg, Msg::Engine(EngineMsg::LoadFailed(_)));
    let cmds = update(app, msg);
    let width = crate::view::areas(ratatui::layout::Rect::new(0, 0, app.size.0, app.size.1))
        .input
        .width
        .saturating_sub(4) as usize;
    app.input_scroll = app.editor.viewport(width, app.input_scroll).scroll;
    if failed_load {
        app.quit = true;
    }
    cmds
}

fn draw<B: Backend>(terminal: &mut Terminal<B>, app: &App) -> Result<(), Fatal> {
    terminal
        .draw(|f| crate::view::draw(f, app))
        .map(|_| ())
        .map_err(|e| Fatal::other(format!("cannot draw: {e}")))
}

fn execute_command(c: Command, jobs: &JobSlot) {
    match c {
        Command::Run(job) => jobs.submit(job),
        Command::SaveHistory(entries) => {
            if let Err(e) = save_history(&entries) {
                tracing::warn!("cannot save history: {e}");
            }
        }
        Command::Quit => {}
    }
}

fn load_history() -> Vec<String> {
    crate::paths::history_file()
        .and_then(|p| std::fs::read(p).ok())
        .map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Write the history atomically: a temporary file beside it, then a rename.
pub fn save_history(entries: &[String]) -> std::io::Result<()> {
    let Some(path) = crate::paths::history_file() else {
        return Ok(());
    };
    write_atomically(&path, entries.join("\n").as_bytes())
}

pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent directory"))?;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".history-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map(|_| ()).map_err(|e| e.error)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn history_is_replaced_atomically_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/history.txt");
        write_atomically(&path, b"first\nsecond").unwrap();
        write_atomically(&path, b"third").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "third\n");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("history.txt")]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.txt");
        write_atomically(&path, b"kept").unwrap();
        // A directory where the file should go makes the rename fail.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomically(&blocked, b"new").is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept\n");
    }
}
