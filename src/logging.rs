//! Where log lines go. llama.cpp and ggml print to stderr by default, which would corrupt the
//! explorer's screen and the purity of `score`'s stdout; here they are routed through
//! `tracing` into a log file in the state directory, and to stderr only with `-v`.
//!
//! The last error llama.cpp logged is also remembered, because llama.cpp reports a failed load
//! as a bare null pointer: the reason ("unknown model architecture: 'x'") is only in its log.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

static LAST_LLAMA_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Forget the remembered llama.cpp error (call before an operation that may fail).
pub fn clear_last_llama_error() {
    if let Ok(mut last) = LAST_LLAMA_ERROR.lock() {
        *last = None;
    }
}

/// The last error line llama.cpp logged since [`clear_last_llama_error`], if any.
pub fn last_llama_error() -> Option<String> {
    LAST_LLAMA_ERROR.lock().ok().and_then(|l| l.clone())
}

/// A layer that keeps the text of the last ERROR event coming from llama.cpp.
struct LastErrorLayer;

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

impl<S: Subscriber> Layer<S> for LastErrorLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() == Level::ERROR && meta.target().starts_with("llama") {
            let mut visitor = MessageVisitor(None);
            event.record(&mut visitor);
            if let (Some(msg), Ok(mut last)) = (visitor.0, LAST_LLAMA_ERROR.lock()) {
                // llama.cpp logs the cause first ("error loading model: unknown model
                // architecture: 'x'") and generic lines after it ("failed to load model"):
                // keep the cause.
                let msg = msg.trim();
                if let Some(cause) = msg.strip_prefix("error loading model: ") {
                    *last = Some(cause.to_owned());
                } else if last.is_none() {
                    *last = Some(msg.to_owned());
                }
            }
        }
    }
}

/// Keeps the file writer alive; drop it last so buffered lines are flushed.
pub struct LogGuard {
    _guard: Option<tracing_appender::non_blocking::WorkerGuard>,
    pub file: Option<PathBuf>,
}

/// Install the global subscriber and send llama.cpp's logs into it. `verbose` also prints
/// everything to stderr. Failing to open the log file is not fatal: logs are then dropped.
pub fn init(log_dir: Option<&Path>, verbose: bool) -> LogGuard {
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());

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
        .with(LastErrorLayer)
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
    LogGuard {
        _guard: guard,
        file,
    }
}

fn open_log(dir: &Path) -> std::io::Result<(std::fs::File, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("logitscope.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    Ok((file, path))
}

/// Install only the error-capturing layer (for tests that use the engine directly).
pub fn init_quiet() {
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let _ = tracing_subscriber::registry()
        .with(LastErrorLayer)
        .try_init();
}
