//! llama.cpp and ggml print to stderr by default, which would corrupt the explorer's screen and
//! `score`'s output. Their lines go into `tracing` instead (target `llama-cpp-2`), where the
//! support layer's subscriber writes them to the log file and captures the error lines of a
//! failing call (`support::logging::capture_errors`).

use std::sync::Once;

/// Route llama.cpp's and ggml's log lines into `tracing`. Must run before the backend is
/// initialised; later calls do nothing.
pub fn route_to_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default()));
}
