//! The last line of defence against `GGML_ASSERT`.
//!
//! ggml ends the process when an assertion fails (`ggml_abort`). By default it prints the
//! message, then forks a debugger whose backtrace lands on *stdout* — in the middle of
//! `score`'s JSON — and dies with SIGABRT. The pre-flight check in [`super::gguf`] refuses the
//! files known to trigger that; for anything it misses, [`install`] sets ggml's abort callback:
//! the hooks registered by the layers above run (the explorer restores the terminal), one line
//! naming the assertion goes to stderr, and the process exits with status 2. No debugger is
//! spawned (`GGML_NO_BACKTRACE` is set too, for ggml code that prints its own backtrace).

use std::ffi::{c_char, CStr};
use std::sync::{Mutex, Once};

/// Something to do before the process ends on an abort, given the one-line message. Runs on
/// whichever thread hit the assertion, possibly while other threads hold locks: hooks must not
/// block.
pub type Hook = fn(&str);

static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Install ggml's abort callback. Call early, on the main thread, before other threads start
/// (it also sets `GGML_NO_BACKTRACE` in the environment); later calls do nothing.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("GGML_NO_BACKTRACE").is_none() {
            std::env::set_var("GGML_NO_BACKTRACE", "1");
        }
        // SAFETY: the callback is a plain function with the C signature ggml expects; ggml keeps
        // the pointer, which stays valid for the life of the process.
        unsafe {
            llama_cpp_sys_2::ggml_set_abort_callback(Some(on_abort));
        }
    });
}

/// Register a hook to run before the process exits on an abort.
pub fn on_abort_run(hook: Hook) {
    if let Ok(mut hooks) = HOOKS.lock() {
        if !hooks.contains(&hook) {
            hooks.push(hook);
        }
    }
}

/// The line printed for an abort message: `llama.cpp aborted: <file>:<line>: <what>`, with
/// the build machine's directories cut from the file name.
pub fn describe(message: &str) -> String {
    let message = message.trim();
    let short = match message.split_once(": ") {
        Some((location, rest)) if location.contains('/') || location.contains('\\') => {
            let file = location.rsplit(['/', '\\']).next().unwrap_or(location);
            format!("{file}: {rest}")
        }
        _ => message.to_owned(),
    };
    let one_line: String = short
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("llama.cpp aborted: {one_line}")
}

extern "C" fn on_abort(message: *const c_char) {
    let text = if message.is_null() {
        String::from("(no message)")
    } else {
        // SAFETY: ggml passes a NUL-terminated buffer that lives for the duration of the call.
        unsafe { CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned()
    };
    let line = describe(&text);
    // Another thread may hold the lock (or have panicked with it): then no hooks run, rather
    // than waiting.
    let hooks: Vec<Hook> = HOOKS.try_lock().map(|h| h.clone()).unwrap_or_default();
    for hook in hooks {
        hook(&line);
    }
    let out = format!("logitscope: error: {line}\n");
    // SAFETY: write(2) and _exit(2) are async-signal-safe; nothing here waits for a lock held
    // elsewhere. _exit skips atexit handlers that could touch a half-dead llama.cpp.
    unsafe {
        libc::write(2, out.as_ptr().cast(), out.len());
        libc::_exit(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_loses_the_build_directories_and_stays_on_one_line() {
        assert_eq!(
            describe("/root/.cargo/registry/src/x/llama.cpp/src/llama-model.cpp:1330: GGML_ASSERT(hparams.n_layer_all > 0) failed\n"),
            "llama.cpp aborted: llama-model.cpp:1330: GGML_ASSERT(hparams.n_layer_all > 0) failed"
        );
        assert_eq!(describe("fatal error"), "llama.cpp aborted: fatal error");
        assert_eq!(describe("a\nb"), "llama.cpp aborted: a b");
    }
}
