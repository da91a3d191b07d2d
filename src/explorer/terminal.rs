//! Taking the terminal and giving it back on every exit: normal quit, an error, a panic (hook),
//! SIGTERM/SIGHUP/SIGINT (a signal thread turns them into a message), and llama.cpp's abort (a
//! hook the model layer runs before the process ends).

use std::io::Stdout;
use std::sync::mpsc::Sender;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
};
use crossterm::execute;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use crate::explorer::update::Msg;

/// Take the terminal: raw mode, alternate screen, mouse, bracketed paste; and make sure a
/// panic or an abort gives it back.
pub fn enter() -> Result<Terminal<CrosstermBackend<Stdout>>, String> {
    let terminal = ratatui::try_init().map_err(|e| format!("cannot use this terminal: {e}"))?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(crate::explorer::worker::THREAD_NAME) {
            // The worker catches its own panics and reports them (`EngineMsg::Crashed`); the
            // explorer then leaves properly and prints the message. Printing it here would
            // land on the screen.
            tracing::error!("panic on the engine thread: {info}");
            return;
        }
        let _ = execute!(
            std::io::stdout(),
            DisableMouseCapture,
            DisableBracketedPaste
        );
        // ratatui's own hook (installed by init) restores raw mode and the screen.
        previous(info);
    }));
    crate::model::abort::on_abort_run(restore_after_abort);
    let _ = execute!(std::io::stdout(), EnableMouseCapture, EnableBracketedPaste);
    Ok(terminal)
}

pub fn leave() {
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste
    );
    ratatui::restore();
}

/// Where a lost RPC server is reported (the explorer's channel).
static LOST_SERVER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Msg>>> =
    std::sync::OnceLock::new();

/// Report a lost RPC server to the explorer through `tx` instead of ending the process.
pub fn tell_lost_server_to(tx: std::sync::mpsc::Sender<Msg>) {
    let _ = LOST_SERVER.set(std::sync::Mutex::new(tx));
}

/// Give the terminal back from llama.cpp's abort, on whatever thread hit it: raw writes to
/// the terminal (stdout's lock may be held by a draw in progress), no waiting. A lost RPC
/// server whose thread is parked is told to the explorer instead, which goes on.
fn restore_after_abort(fault: &crate::model::abort::Fault<'_>) {
    if fault.parked {
        if let Some(tx) = LOST_SERVER.get().and_then(|m| m.try_lock().ok()) {
            let _ = tx.send(Msg::Engine(
                crate::explorer::worker::protocol::EngineMsg::Lost(fault.line.to_owned()),
            ));
        }
        return;
    }
    const RESET: &[u8] = b"\x1b[?1006l\x1b[?1015l\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b[?2004l\x1b[?1049l\x1b[?25h\r\n";
    let _ = crossterm::terminal::disable_raw_mode();
    // SAFETY: write(2) on fd 1 with a valid buffer; the result is irrelevant at this point.
    unsafe {
        libc::write(1, RESET.as_ptr().cast(), RESET.len());
    }
}

pub fn spawn_input_thread(tx: Sender<Msg>) {
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

pub fn spawn_signal_thread(tx: Sender<Msg>) -> Result<(), String> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
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
        .map_err(|e| format!("cannot start the signal thread: {e}"))
}
