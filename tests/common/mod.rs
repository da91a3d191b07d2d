//! Shared by the integration tests: the real default model and the real binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod gguf_edit;
pub mod models;
pub mod rpc_server;
pub mod server;
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
    run_env(args, stdin, &[])
}

/// [`run`] with environment variables set for the child.
pub fn run_env(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.envs(env.iter().copied());
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

/// Run a subcommand on the default model (`logitscope SUB -m MODEL ARGS…`), which must
/// succeed; its JSON lines.
pub fn run_ok(subcommand: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let model = model_arg();
    let mut all = vec![subcommand, "-m", &model];
    all.extend_from_slice(args);
    let out = run(&all, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&out)
}

/// The default model loaded in this process (n_ctx 2048, 2 threads, CPU).
pub fn load_model() -> logitscope::model::Model {
    load_model_with_ctx(2048)
}

/// The default model loaded in this process with a context of `ctx_size` tokens.
pub fn load_model_with_ctx(ctx_size: u32) -> logitscope::model::Model {
    models::load(&model_path(), ctx_size)
}

/// The reference sentences file (tests/fixtures/sentences.txt): one sentence per line.
pub fn sentences_file() -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/sentences.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The reference sentences.
pub fn sentences() -> Vec<String> {
    sentences_file()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// The bytes a `score` line's tokens spell, in order.
pub fn token_bytes(line: &serde_json::Value) -> Vec<u8> {
    line["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| {
            t["bytes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_u64().unwrap() as u8)
        })
        .collect()
}

/// `score`'s `total_logprob` of each text (one stdin line each), on the default model.
pub fn score_totals(texts: &[String]) -> Vec<f64> {
    let model = model_arg();
    let input = texts.join("\n") + "\n";
    let out = run(&["score", "-m", &model], Some(input.as_bytes()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&out)
        .iter()
        .map(|v| v["total_logprob"].as_f64().unwrap())
        .collect()
}

/// The default model with GGUF metadata `edits` applied, written to `dir/name`.
pub fn edited_model(
    dir: &std::path::Path,
    name: &str,
    edits: &[(&str, Option<gguf_edit::V>)],
) -> PathBuf {
    let real = std::fs::read(model_path()).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, gguf_edit::edit(&real, edits)).unwrap();
    path
}

/// The default model asking for final logit soft-capping, which llama.cpp's llama graph does
/// not apply: a model whose logit lens fails its self-check.
pub fn softcapped_model(dir: &std::path::Path) -> PathBuf {
    edited_model(
        dir,
        "softcapped.gguf",
        &[(
            "llama.final_logit_softcapping",
            Some(gguf_edit::V::F32(1.0)),
        )],
    )
}

/// A fixture of tests/fixtures, parsed.
pub fn fixture(name: &str) -> serde_json::Value {
    let p = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The token ids of a JSON array: of ids, or of objects with an `id`.
pub fn ids(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().or_else(|| t["id"].as_u64()).unwrap())
        .collect()
}

/// `fill TEXT` on `model` searching exactly the words of `words` (written to a list file),
/// with no other candidates: the blank's report.
pub fn search_words(model: &std::path::Path, text: &str, words: &[String]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("words.txt");
    std::fs::write(&list, words.join("\n")).unwrap();
    let args = [
        text,
        "--search",
        "all",
        "--word-list",
        list.to_str().unwrap(),
        "--n-candidates",
        "0",
        "--no-ask",
    ];
    models::run_on(model, "fill", &args, None).remove(0)
}

/// The words a brute-force test of the vocabulary search runs over, for the blank of `text`
/// on `model`: `spread` whole words evenly spaced over the vocabulary's (frequent and rare
/// words, which the bounds must rule out), the whole words among the model's `near` most likely next tokens at
/// the blank (from `score`'s `next`, an independent path: the near ties the search's bounds
/// must still order exactly, which a spread sample hardly reaches), and "sun". Sorted, no
/// repeats.
pub fn brute_force_words(
    model: &std::path::Path,
    text: &str,
    spread: usize,
    near: usize,
) -> Vec<String> {
    let (left, _) = text.split_once("____").unwrap();
    let loaded = models::load(model, 512);
    let all = logitscope::analysis::search::whole_words(loaded.vocab(), !left.is_empty());
    drop(loaded);
    let step = (all.len() / spread.max(1)).max(1);
    let mut words: Vec<String> = all.iter().step_by(step).map(|w| w.text.clone()).collect();
    let n = near.to_string();
    let next = &models::run_on(model, "score", &["--n-probs", &n, left.trim_end()], None)[0];
    let ids: std::collections::HashSet<u64> =
        ids(&next["next"]["top_logprobs"]).into_iter().collect();
    let close: Vec<String> = all
        .iter()
        .filter(|w| ids.contains(&u64::from(w.id)))
        .map(|w| w.text.clone())
        .collect();
    assert!(
        close.len() >= near / 5,
        "{}: only {} whole words among the top {near} at the blank of {text}",
        model.display(),
        close.len()
    );
    words.extend(close);
    words.push("sun".into());
    words.sort();
    words.dedup();
    words
}
