//! What goes into `update` ([`Msg`]: keys, pastes, mouse clicks, resizes, the engine's
//! answers) and what comes out ([`Command`]: engine work, files to write, quitting).

use crossterm::event::{KeyEvent, MouseEvent};

use crate::explorer::worker::protocol::{Cancel, EngineMsg, Job};

/// Everything that can happen to the explorer. (An engine message is the largest, ~270 bytes
/// for the model facts at load: moved once per event, not worth a box per message.)
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Msg {
    Key(KeyEvent),
    Paste(String),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// A termination signal (SIGTERM, SIGHUP, SIGINT): leave cleanly.
    Signal,
    /// Something to tell the user in the status bar (an export's path or failure).
    Notice(String),
    Engine(EngineMsg),
}

/// What the explorer asks the outside world to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Work for the engine thread (latest wins per kind, see `worker::queue`).
    Run(Job),
    /// Work that is no longer wanted (each kind on its own counter).
    Cancel(Cancel),
    /// Write this to a file in the data directory (answered with `Msg::Notice`).
    Export(Box<crate::analysis::report::Export>),
    SaveHistory(Vec<String>),
    Quit,
}
