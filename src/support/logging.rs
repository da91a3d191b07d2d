//! Where log lines go. llama.cpp and ggml print to stderr by default, which would corrupt the
//! explorer's screen and the purity of `score`'s stdout; the model layer routes them into
//! `tracing`, and here they go to a log file in the state directory (and to stderr only with
//! `-v`).
//!
//! llama.cpp reports a failed load as a bare null pointer: the reason ("unknown model
//! architecture: 'x'") is only in its log. [`capture_errors`] collects the error lines that
//! the *calling thread* logs while it runs a closure, so each failing call carries its own
//! cause — two models loading on two threads never see each other's errors.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Which lines a capture keeps: by level and text.
pub type Keep = fn(&Level, &str) -> bool;

thread_local! {
    /// Lines logged on this thread while a [`capture_lines`] call is running, and which to
    /// keep; `None` when no capture is active.
    static CAPTURED: RefCell<Option<(Keep, Vec<String>)>> = const { RefCell::new(None) };
}

/// Run `f`, collecting the ERROR-level log lines this thread emits meanwhile (whatever their
/// source). Nested captures are not supported: the inner one takes the lines.
pub fn capture_errors<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    capture_lines(|level, _| *level == Level::ERROR, f)
}

/// Run `f`, collecting the log lines this thread emits meanwhile that `keep` accepts.
pub fn capture_lines<T>(keep: Keep, f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let outer = CAPTURED.with(|c| c.borrow_mut().replace((keep, Vec::new())));
    let value = f();
    let lines = CAPTURED
        .with(|c| std::mem::replace(&mut *c.borrow_mut(), outer))
        .map(|(_, lines)| lines)
        .unwrap_or_default();
    (value, lines)
}

/// A layer that hands events to an active [`capture_lines`] on the same thread.
struct CaptureLayer;

struct MessageVisitor(Option<String>);

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && self.0.is_none() {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        CAPTURED.with(|c| {
            if let Some((keep, lines)) = c.borrow_mut().as_mut() {
                let mut visitor = MessageVisitor(None);
                event.record(&mut visitor);
                if let Some(msg) = visitor.0 {
                    let msg = msg.trim();
                    if keep(event.metadata().level(), msg) {
                        lines.push(msg.to_owned());
                    }
                }
            }
        });
    }
}

/// Keeps the file writer alive; drop it last so buffered lines are flushed.
pub struct LogGuard {
    _guard: Option<tracing_appender::non_blocking::WorkerGuard>,
    pub file: Option<PathBuf>,
}

/// Install the global subscriber. `verbose` also prints everything to stderr. Failing to open
/// the log file is not fatal: logs are then dropped.
pub fn init(log_dir: Option<&Path>, verbose: bool) -> LogGuard {
    let (file_layer, guard, file) = match log_dir.and_then(|d| open_log(d).ok()) {
        Some((writer, path)) => {
            let (nb, guard) = tracing_appender::non_blocking(writer);
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(nb)
                .with_ansi(false)
                .with_filter(EnvFilter::new(
                    std::env::var("LOGITSCOPE_LOG").unwrap_or_else(|_| "info".into()),
                ));
            (Some(layer), Some(guard), Some(path))
        }
        None => (None, None, None),
    };
    let stderr_layer = verbose.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(EnvFilter::new("debug"))
    });
    // A second init (tests run many commands in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(CaptureLayer)
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
    LogGuard {
        _guard: guard,
        file,
    }
}

/// The log file's path in `dir` (where [`init`] writes).
pub fn log_file_in(dir: &Path) -> PathBuf {
    dir.join("logitscope.log")
}

fn open_log(dir: &Path) -> std::io::Result<(std::fs::File, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let path = log_file_in(dir);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    Ok((file, path))
}

/// Install only the error-capturing layer (for tests that use the model directly).
pub fn init_quiet() {
    let _ = tracing_subscriber::registry().with(CaptureLayer).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_captures_only_its_own_errors() {
        init_quiet();
        let other = std::thread::spawn(|| {
            capture_errors(|| {
                tracing::error!("from the other thread");
                std::thread::sleep(std::time::Duration::from_millis(20));
            })
            .1
        });
        let ((), mine) = capture_errors(|| {
            tracing::error!(target: "llama-cpp-2", "unknown model architecture: 'x'");
            tracing::warn!("not an error");
            std::thread::sleep(std::time::Duration::from_millis(20));
        });
        tracing::error!("after the capture");
        assert_eq!(mine, vec!["unknown model architecture: 'x'".to_owned()]);
        assert_eq!(
            other.join().ok(),
            Some(vec!["from the other thread".to_owned()])
        );
    }
}
