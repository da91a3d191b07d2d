//! Shared by the integration tests: the real default model and the real binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The default model, fetched by `./dev test` (or `logitscope fetch`) before the tests run.
/// Its absence is a failure, not a skip: these tests are the proof that the program works.
pub fn model_path() -> PathBuf {
    let p = logitscope::fetch::default_model_path().expect("a data directory");
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
