//! A real client: lm-evaluation-harness (`lm-eval[api]`, in the virtual environment `./dev test`
//! makes at target/lmeval-venv) runs its `gguf` model type against `logitscope serve` on a
//! multiple-choice task of our own (tests/lmeval), and every per-item log-likelihood it logs
//! equals the sum `score` gives for the same continuation, bit for bit — an item after which
//! the default model's greedy next token is `<|im_end|>` included. Its `local-completions`
//! model type runs on the server's own tokenizer: multiple choice, generation and perplexity.
//!
//! By hand: `logitscope serve --port 8080`, then
//! `lm_eval --model gguf --model_args base_url=http://127.0.0.1:8080 --tasks logitscope_mc
//! --include_path tests/lmeval --log_samples --output_path OUT`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::server::{score_tokens, Server};
use serde_json::{json, Value};

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

/// Run lm-eval's `model_type` with `model_args` on our `tasks` (tests/lmeval): each task's
/// logged samples, and the log.
fn lm_eval_samples(
    name: &str,
    model_type: &str,
    model_args: &str,
    tasks: &[&str],
) -> (Vec<(String, Vec<Value>)>, String) {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(lm_eval())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--model", model_type, "--model_args", model_args])
        .args([
            "--tasks",
            &tasks.join(","),
            "--include_path",
            "tests/lmeval",
        ])
        .args(["--log_samples", "--output_path"])
        .arg(out.path())
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HUB_OFFLINE", "1")
        .env("TOKENIZERS_PARALLELISM", "false")
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&run.stderr).into_owned() + &String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{name}: lm_eval failed:\n{log}");
    eprintln!("{name}:\n{}", String::from_utf8_lossy(&run.stdout));
    let files = walk(out.path());
    let samples = tasks
        .iter()
        .map(|task| {
            let prefix = format!("samples_{task}_");
            let file = files
                .iter()
                .find(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(&prefix)
                })
                .unwrap_or_else(|| panic!("{name}: no samples of {task}:\n{log}"));
            let docs = std::fs::read_to_string(file)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            ((*task).to_owned(), docs)
        })
        .collect();
    (samples, log)
}

/// A logged multiple-choice request: ((context, continuation), (log-likelihood, greedy)).
type Logged = ((String, String), (f64, bool));

/// A multiple-choice task's logged requests.
fn choices(docs: &[Value]) -> Vec<Logged> {
    let mut out = Vec::new();
    for doc in docs {
        let args = doc["arguments"].as_object().unwrap();
        for (k, resp) in doc["resps"].as_array().unwrap().iter().enumerate() {
            let a = &args[&format!("gen_args_{k}")];
            let (context, continuation) =
                (a["arg_0"].as_str().unwrap(), a["arg_1"].as_str().unwrap());
            out.push((
                (context.to_owned(), continuation.to_owned()),
                (number(&resp[0][0]), resp[0][1].as_str().unwrap() == "True"),
            ));
        }
    }
    out
}

/// How a client splits a scored text into its context and the continuation it sums.
#[derive(Clone, Copy)]
enum Split {
    /// The `gguf` client: the tokens from the first that begins at or after the context's
    /// length in characters (it reads `text_offset`).
    Offsets,
    /// `local-completions` with tokenized requests: the text's tokens after as many as the
    /// context alone has.
    TokenCount,
}

/// Every logged log-likelihood equals the sum of `score`'s logprobs over the continuation,
/// bit for bit; "greedy" exactly when each continuation token was the most likely. Returns
/// how many items end where the model ends generation.
fn assert_choices_are_scores(
    name: &str,
    path: &std::path::Path,
    logged: &[Logged],
    split: Split,
) -> usize {
    assert!(
        logged.len() >= 30,
        "{name}: {} requests logged",
        logged.len()
    );
    // Texts with a newline cannot be stdin lines: score them as arguments.
    let texts: Vec<String> = logged.iter().map(|((c, x), _)| format!("{c}{x}")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let reports = common::models::run_on(path, "score", &refs, None);
    let contexts: Vec<&str> = logged.iter().map(|((c, _), _)| c.as_str()).collect();
    let context_reports = match split {
        Split::Offsets => Vec::new(),
        Split::TokenCount => common::models::run_on(path, "score", &contexts, None),
    };
    // Items whose text the model would end there (its greedy next token ends generation):
    // `max_tokens: 1` then generates that token, and the answer must list it as the
    // generated one the client drops (a continuation's own last token was dropped once).
    let model = common::models::load(path, 512);
    let ending = reports
        .iter()
        .filter(|r| {
            let id = r["next"]["top_logprobs"][0]["id"].as_u64().unwrap();
            model.is_end_of_generation(id as u32)
        })
        .count();
    drop(model);
    eprintln!("{name}: {ending} items end where the model ends generation");
    for (i, (((context, continuation), (got, greedy)), report)) in
        logged.iter().zip(&reports).enumerate()
    {
        let tokens = report["tokens"].as_array().unwrap();
        let first = match split {
            Split::Offsets => {
                let n = context.chars().count();
                tokens.len() - score_tokens(report).iter().filter(|t| t.2 >= n).count()
            }
            Split::TokenCount => context_reports[i]["tokens"].as_array().unwrap().len(),
        };
        let tail = &tokens[first..];
        assert!(!tail.is_empty(), "{name}: {context:?} + {continuation:?}");
        let want = tail
            .iter()
            .fold(0.0, |s, t| s + t["logprob"].as_f64().unwrap());
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "{name}: {context:?} + {continuation:?}: lm-eval {got}, score {want}"
        );
        let ranks_one = tail.iter().all(|t| t["rank"] == 1);
        assert_eq!(*greedy, ranks_one, "{name}: {context:?} + {continuation:?}");
    }
    ending
}

#[test]
fn lm_evaluation_harness_gets_scores_log_likelihoods() {
    for (name, path) in common::models::both() {
        let server = Server::start(&path, &[]);
        let (samples, _) = lm_eval_samples(
            &name,
            "gguf",
            &format!("base_url={}", server.base),
            &["logitscope_mc"],
        );
        let ending =
            assert_choices_are_scores(&name, &path, &choices(&samples[0].1), Split::Offsets);
        if path == common::model_path() {
            assert!(ending >= 1, "{name}: no item ends in <|im_end|>");
        }
    }
}

/// lm-eval's `local-completions` (its client for vLLM and SGLang) with the server's own
/// tokenizer (`tokenizer_backend=auto` finds `/tokenizer_info` and `/tokenize`): token-id
/// prompts, no Hugging Face tokenizer anywhere. On the default model the multiple-choice
/// log-likelihoods are `score`'s sums and the generations are greedy; on Gemma 3 (BOS, which
/// lm-eval puts first as the prefix of a perplexity window) each text's rolling
/// log-likelihood is `score`'s total over the text. lm-eval's remote tokenizer never adds BOS
/// to a context, so the multiple-choice numbers of a BOS model are not `score`'s (its texts
/// begin with BOS): docs/serve.md says so.
#[test]
fn lm_eval_local_completions_runs_on_the_servers_tokenizer() {
    let default = common::model_path();
    let gemma = common::models::gemma3();
    for (name, path, tasks) in [
        (
            "SmolLM2 Q4_1",
            &default,
            &["logitscope_mc", "logitscope_gen"][..],
        ),
        ("Gemma 3 Q4_K_M", &gemma, &["logitscope_rolling"][..]),
    ] {
        let server = Server::start(path, &["-c", "1024"]);
        let args = format!(
            "model=logitscope,base_url={}/v1/completions,tokenizer_backend=auto,tokenized_requests=True,max_length=1024,num_concurrent=2",
            server.base
        );
        let (samples, log) = lm_eval_samples(name, "local-completions", &args, tasks);
        assert!(
            log.contains("Using remote tokenizer"),
            "{name}: lm-eval did not take the server's tokenizer:\n{log}"
        );
        for (task, docs) in &samples {
            match task.as_str() {
                "logitscope_mc" => {
                    assert_choices_are_scores(name, path, &choices(docs), Split::TokenCount);
                }
                "logitscope_gen" => assert_generations_are_greedy(name, path, &server, docs),
                "logitscope_rolling" => assert_rolling_is_score_total(name, path, docs),
                _ => unreachable!(),
            }
        }
    }
}

/// Each generation lm-eval logged is the model's greedy continuation: the text a plain
/// request gives, every token of it the most likely, the first `score`'s top next token.
fn assert_generations_are_greedy(
    name: &str,
    path: &std::path::Path,
    server: &Server,
    docs: &[Value],
) {
    assert!(docs.len() >= 3, "{name}: {} generations", docs.len());
    let contexts: Vec<&str> = docs
        .iter()
        .map(|d| d["arguments"]["gen_args_0"]["arg_0"].as_str().unwrap())
        .collect();
    let reports = common::models::run_on(path, "score", &contexts, None);
    for ((doc, context), report) in docs.iter().zip(&contexts).zip(&reports) {
        let got = doc["resps"][0][0].as_str().unwrap();
        let (status, answer) = server.post(
            "/v1/completions",
            &json!({"prompt": context, "max_tokens": 12, "temperature": 0, "stop": ["\n"], "logprobs": 1}),
        );
        assert_eq!(status, 200, "{answer}");
        let choice = &answer["choices"][0];
        assert_eq!(got, choice["text"].as_str().unwrap(), "{name}: {context:?}");
        let lp = &choice["logprobs"];
        let tokens = lp["tokens"].as_array().unwrap();
        assert!(!tokens.is_empty(), "{name}: {context:?} generated nothing");
        assert_eq!(
            tokens[0], report["next"]["top_logprobs"][0]["token"],
            "{name}: {context:?}"
        );
        for (i, top) in lp["top_logprobs"].as_array().unwrap().iter().enumerate() {
            let best = top.as_object().unwrap().values().next().unwrap();
            assert_eq!(
                lp["token_logprobs"][i], *best,
                "{name}: {context:?}: token {i}"
            );
        }
    }
}

/// Each text's `loglikelihood_rolling` is `score`'s total over the text (every token after
/// BOS), summed in the same order.
fn assert_rolling_is_score_total(name: &str, path: &std::path::Path, docs: &[Value]) {
    assert!(docs.len() >= 3, "{name}: {} texts", docs.len());
    let texts: Vec<&str> = docs
        .iter()
        .map(|d| d["doc"]["text"].as_str().unwrap())
        .collect();
    let reports = common::models::run_on(path, "score", &texts, None);
    for ((doc, text), report) in docs.iter().zip(&texts).zip(&reports) {
        assert!(
            report["tokens"][0]["special"].as_bool().unwrap(),
            "{name}: no BOS"
        );
        let got = number(&doc["resps"][0][0]);
        let want = report["tokens"].as_array().unwrap()[1..]
            .iter()
            .fold(0.0, |s, t| s + t["logprob"].as_f64().unwrap());
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "{name}: {text:?}: lm-eval {got}, score {want}"
        );
        let total = report["total_logprob"].as_f64().unwrap();
        assert!(
            (got - total).abs() <= 1e-9,
            "{name}: {got} vs total {total}"
        );
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
