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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

/// What happened: the one-line message, whether it is an RPC server lost (the network, not
/// the model), and whether the thread is parked instead of ending the process.
#[derive(Debug, Clone, Copy)]
pub struct Fault<'a> {
    pub line: &'a str,
    pub lost_server: bool,
    pub parked: bool,
}

/// Something to do on an abort. Runs on whichever thread hit it, possibly while other threads
/// hold locks: hooks must not block.
pub type Hook = fn(&Fault<'_>);

static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Whether a lost RPC server parks the thread that noticed it (the explorer keeps running and
/// says so) instead of ending the process (scripting: one line, status 2).
static PARK_ON_LOST_SERVER: AtomicBool = AtomicBool::new(false);

/// From now on, a lost RPC server parks the thread that noticed it (see [`Fault`]).
pub fn park_on_lost_server() {
    PARK_ON_LOST_SERVER.store(true, Ordering::SeqCst);
}

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

/// The RPC servers in use, named when one is lost (set by `model::rpc`).
static SERVERS: Mutex<String> = Mutex::new(String::new());

/// Name the RPC servers in use, for the line about a lost one.
pub fn set_servers(servers: &str) {
    if let Ok(mut s) = SERVERS.lock() {
        *s = servers.to_owned();
    }
}

/// The line for an abort of ggml's RPC client: which servers, and what ggml said.
pub fn describe_lost(message: &str) -> String {
    let what = describe(message);
    let what = what.trim_start_matches("llama.cpp aborted: ");
    // "ggml-rpc.cpp:571: Remote RPC server crashed…" → "Remote RPC server crashed… (ggml-rpc.cpp:571)"
    let what = match what.split_once(": ") {
        Some((at, rest)) if at.starts_with("ggml-rpc") => format!("{rest} ({at})"),
        _ => what.to_owned(),
    };
    let servers = SERVERS.try_lock().map(|s| s.clone()).unwrap_or_default();
    format!("lost the RPC server ({servers}): {what}")
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
    if text.contains("ggml-rpc") {
        end(&describe_lost(&text), true);
    } else {
        end(&describe(&text), false);
    }
}

/// An RPC server stopped answering (the watchdog's verdict): as if ggml had aborted on it.
pub fn lost_server(what: &str) {
    end(&format!("lost the RPC server: {what}"), true);
}

fn end(line: &str, lost_server: bool) {
    let parked = lost_server && PARK_ON_LOST_SERVER.load(Ordering::SeqCst);
    let fault = Fault {
        line,
        lost_server,
        parked,
    };
    // Another thread may hold the lock (or have panicked with it): then no hooks run, rather
    // than waiting.
    let hooks: Vec<Hook> = HOOKS.try_lock().map(|h| h.clone()).unwrap_or_default();
    for hook in hooks {
        hook(&fault);
    }
    if parked {
        // This thread (ggml's, or the engine's) never comes back; the process goes on.
        loop {
            std::thread::park();
        }
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
