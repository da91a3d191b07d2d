//! Direct logit attribution on the real models (SmolLM2 Q4_1, Gemma 3 Q4_K_M, SmolLM2
//! Q4_K_M): at every position of the reference sentences the parts sum to the f64 logit and
//! stay within the H·W panel's rounding of llama.cpp's; an ablated part contributes nothing; a
//! control vector is the rest; a model whose output the split cannot reproduce says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use logitscope::engine::attribution::{Attributions, Target};
use logitscope::model::lens::Lens;
use serde_json::Value;

fn models() -> Vec<(String, PathBuf)> {
    let mut v = common::models::both();
    v.push(("SmolLM2 q4_k_m".into(), common::models::quant("q4_k_m")));
    v
}

/// Every attribution of a score line, with the token id it should split (the actual token;
/// the most likely one at `next`).
fn splits(line: &Value) -> Vec<(u64, &Value)> {
    let mut v: Vec<(u64, &Value)> = line["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|t| (t["id"].as_u64().unwrap(), &t["attribution"]))
        .collect();
    let next = &line["next"];
    v.push((
        next["top_logprobs"][0]["id"].as_u64().unwrap(),
        &next["attribution"],
    ));
    v
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn part<'a>(a: &'a Value, name: &str) -> &'a Value {
    a["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["part"] == name)
        .unwrap_or_else(|| panic!("no part {name}"))
}

#[test]
fn parts_sum_to_the_f64_logit_and_stay_within_the_hw_rounding_of_llamas() {
    let texts = common::sentences_file();
    for (name, path) in models() {
        let lines = common::models::run_on(&path, "score", &["--attribution"], Some(&texts));
        let model = common::models::load(&path, 512);
        let (n_layer, n_head) = model.shape();
        let (mut worst_gap, mut worst_excess, mut worst_heads, mut checked) = (0f64, 0f64, 0f64, 0);
        for line in &lines {
            assert_eq!(line["attribution"]["available"], true, "{name}: {line}");
            for (id, a) in splits(line) {
                assert_eq!(a["target"].as_u64(), Some(id), "{name}: target");
                let parts = a["parts"].as_array().unwrap();
                // embed, attn and ffn of every layer, rest (no final layer norm here).
                assert_eq!(parts.len(), 2 + 2 * n_layer, "{name}");
                let sum: f64 = parts.iter().map(|p| f(&p["value"])).sum();
                assert!((sum - f(&a["sum"])).abs() <= 1e-9 * sum.abs().max(1.0));
                let (z, llama, rounding) = (f(&a["logit_f64"]), f(&a["llama"]), f(&a["rounding"]));
                let gap = (sum - z).abs() / z.abs().max(1.0);
                assert!(
                    gap <= 1e-4,
                    "{name}: {:?}: parts sum to {sum}, the f64 logit is {z}",
                    line["text"]
                );
                assert!(
                    (z - llama).abs() <= rounding,
                    "{name}: f64 {z} vs llama.cpp {llama}: more than the stated {rounding}"
                );
                let excess = (sum - llama).abs() - rounding;
                assert!(
                    excess <= 1e-4 * z.abs().max(1.0),
                    "{name}: the sum {sum} is {} from llama.cpp's {llama}, the rounding {rounding}",
                    (sum - llama).abs()
                );
                // Nothing but f32 rounding outside the named parts of an intact model.
                let rest = f(&part(a, "rest")["value"]);
                let scale: f64 = parts.iter().map(|p| f(&p["value"]).abs()).sum();
                assert!(rest.abs() <= 1e-5 * scale, "{name}: rest {rest} of {scale}");
                // Heads: one share per head per layer, adding up to the layer's attention but
                // for the activation rounding of llama.cpp's product (and Gemma's frozen
                // post-attention norm).
                let heads = a["heads"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{name}: no heads: {}", a["heads_unavailable"]));
                assert_eq!(heads.len(), n_layer);
                let (mut off, mut total) = (0f64, 0f64);
                for h in heads {
                    let shares = h["heads"].as_array().unwrap();
                    assert_eq!(shares.len(), n_head, "{name}");
                    let s: f64 = shares.iter().map(f).sum();
                    let whole = f(&part(a, &format!("attn:{}", h["layer"]))["value"]);
                    assert!((s + f(&h["rest"]) - whole).abs() <= 1e-9 * whole.abs().max(1.0));
                    off += f(&h["rest"]).abs();
                    total += whole.abs();
                }
                worst_heads = worst_heads.max(off / total.max(1e-9));
                worst_gap = worst_gap.max(gap);
                worst_excess = worst_excess.max(excess);
                checked += 1;
            }
        }
        // The heads explain their layers' parts: what is left is a few percent at most.
        assert!(
            worst_heads <= 0.1,
            "{name}: heads leave {worst_heads} of the attention parts"
        );
        eprintln!(
            "{name}: {checked} positions; parts vs f64 logit at most {worst_gap:.1e} (relative); \
             |sum − llama.cpp| − rounding at most {worst_excess:.1e}; heads leave at most \
             {:.2}% of their layers' parts",
            100.0 * worst_heads
        );
    }
}

/// The `rounding` is the H·W panel's own figure, and `logit_f64` its exact product.
#[test]
fn the_rounding_is_the_hw_panels() {
    for (name, path) in models() {
        let model = common::models::load(&path, 512);
        let text = "The chef seasoned the soup with a pinch of salt.";
        let tokens = model.tokenize(text);
        let mut lens = Lens::new(&model).unwrap();
        lens.run(&tokens, 1.0).unwrap();
        let mut attributions = Attributions::new(&model);
        let positions: Vec<usize> = (0..tokens.len()).collect();
        let (status, splits) = attributions
            .split(&tokens, &positions, Target::Actual, &|_| Some(0))
            .unwrap();
        assert!(status.available, "{name}: {status:?}");
        for (p, a) in splits.iter().enumerate() {
            let a = a.as_ref().unwrap();
            let hw = lens.hw(p, 5).unwrap();
            assert!(
                (a.rounding - hw.max_abs_delta).abs() <= 1e-12,
                "{name}: position {p}: rounding {} vs the H·W panel's {}",
                a.rounding,
                hw.max_abs_delta
            );
            for t in &hw.tokens {
                if t.id == a.target {
                    assert!((a.logit_f64 - t.exact).abs() <= 1e-9);
                    assert_eq!(a.llama, t.llama);
                }
            }
        }
    }
}

#[test]
fn an_ablated_part_gives_nothing_and_a_control_vector_is_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let text = "The chef seasoned the soup with a pinch of salt.\n";
    for (name, path) in models() {
        let model = common::models::load(&path, 512);
        let (n_layer, _) = model.shape();
        let last = format!("ffn:{}", n_layer - 1);
        let lines = common::models::run_on(
            &path,
            "score",
            &["--attribution", "--ablate", &last],
            Some(text),
        );
        for (_, a) in splits(&lines[0]) {
            assert_eq!(f(&part(a, &last)["value"]), 0.0, "{name}: ablated {last}");
            let z = f(&a["logit_f64"]);
            assert!((f(&a["sum"]) - z).abs() <= 1e-4 * z.abs().max(1.0));
            assert!((z - f(&a["llama"])).abs() <= f(&a["rounding"]));
        }
        // A vector of our own added after layer 1.
        let n_embd = model.n_embd();
        let mut directions = vec![vec![0f32; n_embd]; n_layer - 1];
        for (i, x) in directions[0].iter_mut().enumerate() {
            *x = if i % 3 == 0 { 0.05 } else { -0.02 };
        }
        let file = dir.path().join(format!("{}.gguf", name.replace(' ', "_")));
        logitscope::model::cvector::write(&file, "test", &directions).unwrap();
        let file = file.to_str().unwrap();
        let rest = |scale: &str| -> Vec<f64> {
            let lines = common::models::run_on(
                &path,
                "score",
                &["--attribution", "--control-vector-scaled", file, scale],
                Some(text),
            );
            splits(&lines[0])
                .into_iter()
                .map(|(_, a)| {
                    let z = f(&a["logit_f64"]);
                    assert!((f(&a["sum"]) - z).abs() <= 1e-4 * z.abs().max(1.0));
                    f(&part(a, "rest")["value"])
                })
                .collect()
        };
        let (none, some) = (rest("0"), rest("8"));
        assert!(none.iter().all(|r| r.abs() < 1e-3), "{name}: {none:?}");
        assert!(
            some.iter().any(|r| r.abs() > 1e-2),
            "{name}: the vector's share should be the rest: {some:?}"
        );
    }
}

#[test]
fn one_position_and_another_token_are_the_same_split() {
    let path = common::model_path();
    let text = "The chef seasoned the soup with a pinch of salt.";
    let all = common::models::run_on(&path, "score", &["--attribution"], Some(text));
    let n = all[0]["tokens"].as_array().unwrap().len();
    for j in [1, n - 1, n] {
        let one = common::models::run_on(
            &path,
            "score",
            &["--attribution-at", &j.to_string()],
            Some(text),
        );
        let (got, want) = if j == n {
            (
                &one[0]["next"]["attribution"],
                &all[0]["next"]["attribution"],
            )
        } else {
            (
                &one[0]["tokens"][j]["attribution"],
                &all[0]["tokens"][j]["attribution"],
            )
        };
        assert_eq!(got, want, "token {j}");
        let others = one[0]["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t.get("attribution").is_some())
            .count();
        assert_eq!(others, usize::from(j < n));
    }
    // Another token's logit: " pepper" at the blank.
    let model = common::load_model();
    let pepper = model.tokenize_continuation(" pepper");
    assert_eq!(pepper.len(), 1);
    let at = (n - 2).to_string();
    let one = common::models::run_on(
        &path,
        "score",
        &["--attribution-at", &at, "--attribution-token", " pepper"],
        Some(text),
    );
    let a = &one[0]["tokens"][n - 2]["attribution"];
    assert_eq!(a["target"].as_u64(), Some(u64::from(pepper[0])));
    assert_eq!(a["target_text"], " pepper");
    assert!((f(&a["sum"]) - f(&a["logit_f64"])).abs() <= 1e-4 * f(&a["logit_f64"]).abs().max(1.0));
    // Refusals, each in one line.
    for (args, says) in [
        (vec!["--attribution-token", " pepper and salt"], "not one"),
        (vec!["--attribution", "--format", "table"], "JSON only"),
    ] {
        let mut all = vec!["score", "-m", path.to_str().unwrap()];
        all.extend(args);
        all.push(text);
        let out = common::run(&all, None);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    let out = common::run(
        &[
            "score",
            "-m",
            path.to_str().unwrap(),
            "--attribution-at",
            "0",
            text,
        ],
        None,
    );
    let v = common::json_lines(&out);
    assert!(v[0]["error"]
        .as_str()
        .unwrap()
        .contains("--attribution-at 0"));
}

/// The default model asking for a soft-cap llama.cpp's llama graph does not apply: the split
/// would not be llama.cpp's logit, so it says so instead of showing one.
#[test]
fn a_model_whose_output_the_split_cannot_reproduce_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::softcapped_model(dir.path());
    let lines = common::models::run_on(
        &path,
        "score",
        &["--attribution"],
        Some("The chef seasoned the soup.\n"),
    );
    let status = &lines[0]["attribution"];
    assert_eq!(status["available"], false, "{status}");
    assert!(status["reason"]
        .as_str()
        .unwrap()
        .contains("do not reproduce"));
    assert!(lines[0]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t.get("attribution").is_none()));
    // The scores themselves are still there.
    assert!(lines[0]["total_logprob"].as_f64().is_some());
}
