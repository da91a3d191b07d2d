//! A real client: lm-evaluation-harness (`lm-eval[api]`, in the virtual environment `./dev test`
//! makes at target/lmeval-venv) runs its `gguf` model type against `logitscope serve` on a
//! multiple-choice task of our own (tests/lmeval), and every per-item log-likelihood it logs
//! equals the sum `score` gives for the same continuation, bit for bit.
//!
//! By hand: `logitscope serve --port 8080`, then
//! `lm_eval --model gguf --model_args base_url=http://127.0.0.1:8080 --tasks logitscope_mc
//! --include_path tests/lmeval --log_samples --output_path OUT`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::server::{score_tokens, Server};
use serde_json::Value;

fn lm_eval() -> PathBuf {
    let p = std::env::var_os("LOGITSCOPE_LM_EVAL").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/lmeval-venv/bin/lm_eval"),
        PathBuf::from,
    );
    assert!(
        p.is_file(),
        "lm-evaluation-harness is missing at {}: run `./dev test`, which installs it",
        p.display()
    );
    p
}

/// A logged number: lm-eval writes floats as their Python repr, in strings.
fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        other => other.as_f64().unwrap(),
    }
}

#[test]
fn lm_evaluation_harness_gets_scores_log_likelihoods() {
    let lm_eval = lm_eval();
    for (name, path) in common::models::both() {
        let server = Server::start(&path, &[]);
        let out = tempfile::tempdir().unwrap();
        let run = Command::new(&lm_eval)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["--model", "gguf", "--model_args"])
            .arg(format!("base_url={}", server.base))
            .args(["--tasks", "logitscope_mc", "--include_path", "tests/lmeval"])
            .args(["--log_samples", "--output_path"])
            .arg(out.path())
            .env("HF_DATASETS_OFFLINE", "1")
            .env("HF_HUB_OFFLINE", "1")
            .env("TOKENIZERS_PARALLELISM", "false")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&run.stderr).into_owned()
            + &String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "{name}: lm_eval failed:\n{log}");
        eprintln!("{name}:\n{}", String::from_utf8_lossy(&run.stdout));
        let samples = walk(out.path())
            .into_iter()
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("samples_")
            })
            .unwrap_or_else(|| panic!("{name}: no samples file:\n{log}"));
        let mut pairs = Vec::new();
        let mut logged = Vec::new();
        for line in std::fs::read_to_string(&samples).unwrap().lines() {
            let doc: Value = serde_json::from_str(line).unwrap();
            let args = doc["arguments"].as_object().unwrap();
            for (k, resp) in doc["resps"].as_array().unwrap().iter().enumerate() {
                let a = &args[&format!("gen_args_{k}")];
                let (context, continuation) =
                    (a["arg_0"].as_str().unwrap(), a["arg_1"].as_str().unwrap());
                pairs.push((context.to_owned(), continuation.to_owned()));
                logged.push((number(&resp[0][0]), resp[0][1].as_str().unwrap() == "True"));
            }
        }
        assert!(pairs.len() >= 30, "{name}: {} requests logged", pairs.len());
        // Texts with a newline cannot be stdin lines: score them as arguments.
        let texts: Vec<String> = pairs.iter().map(|(c, x)| format!("{c}{x}")).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let reports = common::models::run_on(&path, "score", &refs, None);
        for (((context, continuation), (got, greedy)), report) in
            pairs.iter().zip(&logged).zip(&reports)
        {
            // As lm-eval's gguf client reads the answer: the tokens from the first that
            // begins at or after the context's length (in characters), summed in order.
            let tokens = score_tokens(report);
            let n = context.chars().count();
            let tail: Vec<&(String, Value, usize)> = tokens.iter().filter(|t| t.2 >= n).collect();
            assert!(!tail.is_empty(), "{name}: {context:?} + {continuation:?}");
            let want = tail.iter().fold(0.0, |s, t| s + t.1.as_f64().unwrap());
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "{name}: {context:?} + {continuation:?}: lm-eval {got}, score {want}"
            );
            // Greedy exactly when every continuation token was the most likely.
            let first = report["tokens"].as_array().unwrap().len() - tail.len();
            let ranks_one = report["tokens"].as_array().unwrap()[first..]
                .iter()
                .all(|t| t["rank"] == 1);
            assert_eq!(*greedy, ranks_one, "{name}: {context:?} + {continuation:?}");
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
