//! `score` against distributions computed independently (tests/fixtures/README.md): the exact
//! reference (same llama.cpp, float64 softmax) within its exact tolerances, and another
//! llama.cpp version within its loose tolerance.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Score every reference sentence in one run (stdin, one per line).
fn scored() -> Vec<Value> {
    let sentences = std::fs::read_to_string(format!(
        "{}/tests/fixtures/sentences.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let model = common::model_arg();
    let out = common::run(&["score", "-m", &model], Some(sentences.as_bytes()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = common::json_lines(&out);
    assert_eq!(lines.len(), sentences.lines().count());
    lines
}

#[test]
fn score_matches_the_exact_reference() {
    let reference = common::fixture("reference-exact.json");
    let ours = scored();
    let mut checked = 0;
    let (mut worst_p, mut worst_lp, mut worst_h) = (0f64, 0f64, 0f64);
    for (s, line) in reference["sentences"].as_array().unwrap().iter().zip(&ours) {
        assert_eq!(line["text"], s["text"]);
        assert_eq!(
            common::ids(&line["tokens"]),
            common::ids(&s["tokens"]),
            "tokenization of {}",
            s["text"]
        );
        assert!(
            line["tokens"][0]["logprob"].is_null(),
            "no BOS: nothing predicts token 0"
        );
        let positions = s["positions"].as_array().unwrap();
        for (i, pos) in positions.iter().enumerate() {
            // Token-centric JSON: p_i is carried by token i+1, the last one by `next`.
            let (entropy, top) = if i + 1 < positions.len() {
                let tok = &line["tokens"][i + 1];
                let next = &pos["next"];
                let dp = (f(&tok["prob"]) - f(&next["p"])).abs();
                worst_p = worst_p.max(dp);
                assert!(
                    dp <= 1e-4,
                    "{}: token {} p {} vs {}",
                    s["text"],
                    i + 1,
                    tok["prob"],
                    next["p"]
                );
                if f(&next["p"]) >= 1e-6 {
                    let dl = (f(&tok["logprob"]) - f(&next["logprob"])).abs();
                    worst_lp = worst_lp.max(dl);
                    assert!(dl <= 1e-3, "{}: token {} logprob", s["text"], i + 1);
                }
                assert_eq!(
                    tok["rank"],
                    next["rank"],
                    "{}: token {} rank",
                    s["text"],
                    i + 1
                );
                (&tok["entropy_bits"], &tok["top_logprobs"])
            } else {
                (&line["next"]["entropy_bits"], &line["next"]["top_logprobs"])
            };
            let dh = (f(entropy) - f(&pos["entropy_bits"])).abs();
            worst_h = worst_h.max(dh);
            assert!(dh <= 1e-3, "{}: position {i} entropy", s["text"]);
            let ref_top = pos["top"].as_array().unwrap();
            let top = top.as_array().unwrap();
            assert_eq!(top.len(), 10);
            for (rank, (a, b)) in top.iter().zip(ref_top).enumerate() {
                assert_eq!(
                    a["id"],
                    b["id"],
                    "{}: position {i} top rank {}",
                    s["text"],
                    rank + 1
                );
                let dp = (f(&a["logprob"]).exp() - f(&b["p"])).abs();
                worst_p = worst_p.max(dp);
                assert!(dp <= 1e-4);
            }
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} positions checked");
    eprintln!("exact reference: {checked} positions, worst |Δp| {worst_p:.2e}, |Δlogprob| {worst_lp:.2e}, |ΔH| {worst_h:.2e}");
}

#[test]
fn score_is_close_to_another_llama_cpp_version() {
    let reference = common::fixture("reference-cross-version.json");
    let ours = scored();
    let mut leaders = 0;
    for (s, line) in reference["sentences"].as_array().unwrap().iter().zip(&ours) {
        let positions = s["positions"].as_array().unwrap();
        for (i, pos) in positions.iter().enumerate() {
            let top = if i + 1 < positions.len() {
                let tok = &line["tokens"][i + 1];
                assert!((f(&tok["prob"]) - f(&pos["next"]["p"])).abs() <= 0.2);
                &tok["top_logprobs"]
            } else {
                &line["next"]["top_logprobs"]
            };
            let ref_top = pos["top"].as_array().unwrap();
            if f(&ref_top[0]["p"]) - f(&ref_top[1]["p"]) >= 0.1 {
                leaders += 1;
                assert_eq!(
                    top[0]["id"], ref_top[0]["id"],
                    "{}: position {i} top-1",
                    s["text"]
                );
            }
            for t in ref_top {
                if let Some(ours) = top.as_array().unwrap().iter().find(|o| o["id"] == t["id"]) {
                    assert!((f(&ours["logprob"]).exp() - f(&t["p"])).abs() <= 0.2);
                }
            }
        }
    }
    assert!(leaders > 10);
}
