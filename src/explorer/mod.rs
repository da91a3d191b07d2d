//! The explorer (TUI).
//!
//! ```text
//! keystroke ─> input thread ─Msg─> update(&mut App, Msg) -> Vec<Command>   (pure)
//!                                      │ Command::Run(Job) / Cancel
//!                                      ▼
//!                        worker: engine thread, latest-wins JobQueue per job kind
//!                                      │ Msg::Engine(EngineMsg)
//!                                      ▼
//!                        update drops stale generations; views::draw(frame, &App)
//! ```
//! - [`state`]: what the screen is drawn from; [`update`]: the one transition function;
//!   [`keymap`]: the one table from keys to actions (help is drawn from it);
//!   [`layout`]: where panels go (shared by the views and mouse hit testing);
//!   [`views`]: one file per panel; [`editor`]: the line editor;
//!   [`worker`]: the engine thread and its job queue; [`terminal`]: taking the terminal and
//!   giving it back on every exit.

pub mod ablation;
pub mod attention;
pub mod attribution;
pub mod editor;
pub mod history;
pub mod inspect;
pub mod keymap;
pub mod layout;
pub mod message;
pub mod reading;
pub mod report;
pub mod slot;
pub mod state;
pub mod terminal;
pub mod trace;
pub mod update;
pub mod views;
pub mod worker;

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use ratatui::backend::Backend;
use ratatui::Terminal;

use crate::analysis::search::Budget;
use crate::analysis::stats::ViewOptions;
use crate::model::ModelOptions;
use state::{App, Phase};
use update::{update, Command, Msg};
use worker::queue::JobQueue;

/// What the explorer starts with.
pub struct Config {
    pub model: ModelOptions,
    /// A second model to compare with (`--vs`).
    pub second: Option<ModelOptions>,
    pub view: ViewOptions,
    /// How much of the vocabulary a fill searches.
    pub search: Budget,
    /// Words watched at every position.
    pub watch: Vec<String>,
    /// `--ablate` and the control vectors the model starts with.
    pub start: worker::Start,
    /// A warning to show in the status bar (a config file that could not be read).
    pub warning: Option<String>,
    pub log_file: Option<PathBuf>,
    /// A corpus report to walk (`--report`): opened with its first entry once the model is
    /// loaded.
    pub report: Option<crate::analysis::worst::Report>,
}

/// Why the explorer ended: 0 for a quit, 2 with a message for a failure.
pub enum Outcome {
    Quit,
    Failed(String),
}

/// How the explorer ended, and whether its engine thread stopped: when it did not (still in a
/// long llama.cpp call), the process must end without running llama.cpp's static destructors
/// under it (`Ended::engine_stopped`).
pub struct Ended {
    pub outcome: Outcome,
    pub engine_stopped: bool,
}

/// How long the explorer waits for the engine thread to finish its current step at exit.
const ENGINE_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Run the explorer until the user quits. Everything that can fail before the screen is taken
/// fails here, as a plain message.
pub fn run(config: Config) -> Result<Ended, String> {
    let path = config.model.path.clone();
    crate::model::preflight(&path).map_err(|e| e.to_string())?;
    {
        use std::io::IsTerminal;
        if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
            return Err(
                "the explorer needs a terminal; for scripts use `logitscope score` or `logitscope fill`"
                    .into(),
            );
        }
    }
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let mut app = App::new(config.view, history::load(), no_color);
    app.search = config.search;
    app.watch = config.watch;
    app.warning = config.warning;
    app.log_file = config.log_file.map(|p| p.display().to_string());
    app.report = config.report.map(report::ReportPanel::new);
    if app.report.is_some() {
        app.inspect = state::Inspect::Report;
    }
    app.model_name = path
        .file_name()
        .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());

    let (tx, rx) = mpsc::channel();
    let jobs = Arc::new(JobQueue::default());
    // A lost RPC server is shown, not fatal: the explorer keeps what it shows.
    terminal::tell_lost_server_to(tx.clone());
    crate::model::abort::park_on_lost_server();
    if let Some(second) = &config.second {
        crate::model::preflight(&second.path).map_err(|e| e.to_string())?;
    }
    app.ablation.spec = config.start.ablate.clone();
    let engine = worker::spawn(
        config.model,
        config.second,
        config.start,
        jobs.clone(),
        tx.clone(),
    )
    .map_err(|e| format!("cannot start the engine thread: {e}"))?;
    terminal::spawn_signal_thread(tx.clone())?;

    let mut term = terminal::enter()?;
    if let Ok(size) = term.size() {
        app.size = (size.width, size.height);
    }
    terminal::spawn_input_thread(tx.clone());
    let result = event_loop(&mut term, &mut app, &rx, &tx, &jobs);
    terminal::leave();
    // Running work sees the shutdown between two decodes and returns.
    jobs.shutdown();
    let _ = std::io::stdout().flush();
    result?;
    let waited = std::time::Instant::now();
    // After a lost RPC server the engine waits on the network for good: do not wait for it.
    let wait = if app.lost.is_some() {
        std::time::Duration::ZERO
    } else {
        ENGINE_STOP_WAIT
    };
    while !engine.is_finished() && waited.elapsed() < wait {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let engine_stopped = engine.is_finished();
    if engine_stopped {
        let _ = engine.join();
    } else {
        tracing::warn!("the engine thread did not stop within {ENGINE_STOP_WAIT:?}");
    }
    tracing::info!("explorer closed");
    Ok(Ended {
        outcome: match (app.phase, app.lost) {
            (Phase::Failed(msg), _) | (_, Some(msg)) => Outcome::Failed(msg),
            _ => Outcome::Quit,
        },
        engine_stopped,
    })
}

/// Receive, update, execute, draw — coalescing every message already waiting into one draw.
pub fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    rx: &Receiver<Msg>,
    tx: &Sender<Msg>,
    jobs: &JobQueue,
) -> Result<(), String> {
    draw(terminal, app)?;
    while let Ok(msg) = rx.recv() {
        let mut commands = update(app, msg);
        while let Ok(more) = rx.try_recv() {
            commands.extend(update(app, more));
        }
        for c in commands {
            execute(c, jobs, tx);
        }
        if app.quit || matches!(app.phase, Phase::Failed(_)) {
            return Ok(());
        }
        draw(terminal, app)?;
    }
    Ok(())
}

fn draw<B: Backend>(terminal: &mut Terminal<B>, app: &App) -> Result<(), String> {
    terminal
        .draw(|f| views::draw(f, app))
        .map(|_| ())
        .map_err(|e| format!("cannot draw: {e}"))
}

fn execute(c: Command, jobs: &JobQueue, tx: &Sender<Msg>) {
    match c {
        Command::Run(job) => jobs.submit(job),
        Command::Cancel(cancel) => jobs.cancel(cancel),
        Command::Export(export) => {
            let notice = match history::export(&export) {
                Ok(path) => format!("exported to {}", path.display()),
                Err(e) => format!("export failed: {e}"),
            };
            tracing::info!("{notice}");
            let _ = tx.send(Msg::Notice(notice));
        }
        Command::SaveHistory(entries) => {
            if let Err(e) = history::save(&entries) {
                tracing::warn!("cannot save history: {e}");
            }
        }
        Command::Quit => {}
    }
}
