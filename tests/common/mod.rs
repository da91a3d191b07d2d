//! Shared by the integration tests: the real default model and the real binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod gguf_edit;
pub mod rpc_server;
pub mod synth;
pub mod ui;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The default model, fetched by `./dev test` (or `logitscope fetch`) before the tests run.
/// Its absence is a failure, not a skip: these tests are the proof that the program works.
pub fn model_path() -> PathBuf {
    let p = logitscope::support::fetch::default_model_path().expect("a data directory");
    assert!(
        p.is_file(),
        "the default model is missing at {}: run `./dev test` (or `logitscope fetch`) first",
        p.display()
    );
    p
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_logitscope")
}

/// Run the binary with arguments and optional stdin; logs go to a scratch state dir.
pub fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start logitscope");
    if let Some(input) = stdin {
        let mut si = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = si.write_all(&input);
        });
    }
    child.wait_with_output().unwrap()
}

pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {e}: {l}")))
        .collect()
}

pub fn model_arg() -> String {
    model_path().to_string_lossy().into_owned()
}

/// (name, text). Texts with a newline cannot be a stdin line; they go as arguments.
pub fn hostile_inputs() -> Vec<(&'static str, String)> {
    vec![
        ("empty", String::new()),
        ("whitespace only", "   \t  ".into()),
        ("200,000 characters", "lorem ipsum dolor ".repeat(11_112)),
        ("NUL bytes", "a\0b\0c".into()),
        ("control characters", "bell\x07 back\x08 del\x7f".into()),
        (
            "ANSI escapes",
            "\x1b[31mred\x1b[0m \x1b[2J\x1b]0;title\x07".into(),
        ),
        ("ZWJ emoji", "family 👩‍👩‍👧‍👦 here".into()),
        ("flags", "🇯🇵🇫🇷🏴‍☠️".into()),
        (
            "combining marks",
            "e\u{301}\u{302}\u{303} Z\u{351}\u{34f}\u{35c}".into(),
        ),
        ("right to left", "مرحبا بالعالم שלום".into()),
        (
            "special-token lookalikes",
            "<|im_start|>user hi<|im_end|>".into(),
        ),
        ("BOS/EOS lookalikes", "<s> hello </s> <|endoftext|>".into()),
        ("a blank alone", "____".into()),
        ("a mask alone", "[MASK]".into()),
        ("1,000 blanks", "x ".to_owned() + &"____ ".repeat(1000)),
        ("byte-order mark", "\u{feff}Hello".into()),
        ("CJK", "日本語のテキストです".into()),
        ("zero-width only", "\u{200d}\u{200b}\u{2060}".into()),
        ("one long word", "a".repeat(5000)),
        ("digits and punctuation", "1, 2, 3... ?!?! ((([[[".into()),
        ("lone combining mark", "\u{301}".into()),
        (
            "private use and noncharacters",
            "\u{e000}\u{fdd0}\u{10ffff}".into(),
        ),
    ]
}
