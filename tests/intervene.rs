//! Ablation on the real models, through the tensor hook every session carries: no
//! intervention leaves `score` as it was (SmolLM2 Q4_1, Gemma 3 Q4_K_M and SmolLM2 Q4_K_M: the
//! numbers, bit for bit, on both quant families); ablating a layer's attention changes the lens
//! only from that layer on and the final distributions, switching off every head of a layer is
//! switching off its attention, and fill, pairs and serve run the ablated model (on both
//! architectures, SmolLM2 Q4_1 and Gemma 3 Q4_K_M: what these check is where the hook writes,
//! which the quantization does not change; a third model was a third of tests/intervene.rs's
//! 163 s of CI); a bad part is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

fn models() -> Vec<(String, std::path::PathBuf)> {
    let mut v = common::models::both();
    v.push(("SmolLM2 q4_k_m".into(), common::models::quant("q4_k_m")));
    v
}

fn score(path: &std::path::Path, extra: &[&str], texts: &[String]) -> Vec<Value> {
    let m = path.to_string_lossy().into_owned();
    let mut args = vec!["-m", m.as_str(), "score"];
    args.extend_from_slice(extra);
    let stdin = texts.join("\n");
    let out = common::run(&args, Some(stdin.as_bytes()));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::json_lines(&out)
}

#[test]
fn an_empty_ablation_is_plain_score_and_compares_as_equal() {
    let texts = common::sentences();
    for (name, path) in models() {
        let plain = score(&path, &["--parallel", "1"], &texts);
        let side = score(&path, &["--parallel", "8"], &texts);
        let empty = score(&path, &["--ablate", ""], &texts);
        assert_eq!(plain, side, "{name}: side by side with the hook installed");
        assert_eq!(plain, empty, "{name}: --ablate ''");
    }
}

#[test]
fn ablating_attention_reaches_only_its_layer_and_later() {
    let texts = common::sentences();
    for (name, path) in common::models::both() {
        // The lens of the intact model, computed once (tests/exactness.rs checks it).
        let plain = common::models::run_on_once(
            &path,
            "score",
            &["--layers"],
            Some(&common::sentences_file()),
        );
        assert_eq!(plain.len(), texts.len(), "{name}");
        let n_layer = plain[0]["lens"]["n_layer"].as_u64().unwrap() as usize;
        let layer = n_layer / 3;
        let spec = format!("attn:{layer}");
        let ablated = score(&path, &["--layers", "--ablate", &spec], &texts);
        let mut changed_final = 0;
        for (p, a) in plain.iter().zip(&ablated) {
            assert_eq!(a["intervention"], format!("ablate {spec}"), "{name}");
            // The lens of the ablated model still reproduces llama.cpp's ablated logits.
            assert_eq!(a["lens"]["available"], true, "{name}: {}", a["lens"]);
            for (tp, ta) in p["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .zip(a["tokens"].as_array().unwrap())
            {
                let (lp, la) = (tp["layers"].as_array(), ta["layers"].as_array());
                let (Some(lp), Some(la)) = (lp, la) else {
                    continue;
                };
                for (x, y) in lp.iter().zip(la) {
                    let l = x["layer"].as_u64().unwrap() as usize;
                    if l < layer {
                        assert_eq!(x, y, "{name}: layer {l} below the ablated {layer} changed");
                    }
                }
                // At the ablated layer the residual lost the attention's output.
                assert_ne!(lp[layer], la[layer], "{name}: layer {layer} did not change");
                if tp["logprob"] != ta["logprob"] {
                    changed_final += 1;
                }
                // compare is against the intact model: its logprob is plain score's.
                if let Some(c) = ta.get("compare") {
                    assert_eq!(c["logprob_b"], tp["logprob"], "{name}");
                }
            }
            let c = &a["compare"];
            assert_eq!(c["total_logprob_b"], p["total_logprob"], "{name}");
            assert!(c["mean_kl_bits"].as_f64().unwrap() > 0.0, "{name}");
        }
        assert!(changed_final > 0, "{name}: no final distribution changed");
    }
}

#[test]
fn every_head_of_a_layer_switched_off_is_its_attention_switched_off() {
    let texts = common::sentences();
    for (name, path) in common::models::both() {
        for layer in [0usize, 2, 5] {
            let attn = score(&path, &["--ablate", &format!("attn:{layer}")], &texts);
            let heads = score(&path, &["--ablate", &format!("head:{layer}.*")], &texts);
            for (a, h) in attn.iter().zip(&heads) {
                let pairs = a["tokens"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(h["tokens"].as_array().unwrap());
                for (ta, th) in pairs {
                    for (x, y) in [(&ta["logprob"], &th["logprob"])] {
                        if let (Some(x), Some(y)) = (x.as_f64(), y.as_f64()) {
                            assert!((x.exp() - y.exp()).abs() <= 1e-5, "{name}: layer {layer}");
                        }
                    }
                    let tops = ta["top_logprobs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .zip(th["top_logprobs"].as_array().unwrap());
                    for (x, y) in tops {
                        let (x, y) = (
                            x["logprob"].as_f64().unwrap(),
                            y["logprob"].as_f64().unwrap(),
                        );
                        assert!((x.exp() - y.exp()).abs() <= 1e-5, "{name}: layer {layer}");
                    }
                }
                assert_eq!(
                    a["tokens"].as_array().unwrap().len(),
                    h["tokens"].as_array().unwrap().len()
                );
            }
        }
    }
}

#[test]
fn a_part_the_model_lacks_is_refused_in_one_line() {
    let m = common::model_arg();
    for (spec, phrase) in [
        ("attn:30", "the model has layers 0-29"),
        ("head:3.9", "heads 0-8"),
        ("neuron:1", "unknown part"),
    ] {
        let out = common::run(&["-m", &m, "score", "--ablate", spec, "x"], None);
        assert_eq!(out.status.code(), Some(2), "{spec}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(phrase), "{spec}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{spec}: {err}");
    }
}

/// `fill` (candidates side by side, several sequences at once), `pairs` and `serve` run on the
/// ablated model: their numbers are `score --ablate`'s, and not the intact model's.
#[test]
fn fill_pairs_and_serve_run_the_ablated_model() {
    let spec = "attn:2,ffn:3";
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(1.0);
    for (name, path) in common::models::both() {
        let words = ["salt", "pepper", "sugar", "love", "a dash of honey"];
        let blank = "The chef seasoned the soup with a pinch of ____ and served it hot.";
        let filled: Vec<String> = words.iter().map(|w| blank.replace("____", w)).collect();
        let ablated = score(&path, &["--ablate", spec], &filled);
        let intact = score(&path, &[], &filled);
        let total = |v: &Value| v["total_logprob"].as_f64().unwrap();
        assert!(
            ablated
                .iter()
                .zip(&intact)
                .all(|(a, b)| !close(total(a), total(b))),
            "{name}: the ablation changes the totals"
        );
        // fill: each candidate's sentence logprob is the ablated total of its sentence (the
        // listed candidates only: fill's default 500-word search, which nothing here reads,
        // was 50 of this test's 73 s).
        let list = words.join(",");
        let out = common::models::run_on(
            &path,
            "fill",
            &[
                "--ablate",
                spec,
                "--no-ask",
                "--search",
                "0",
                "--n-candidates",
                "0",
                "--candidates",
                &list,
            ],
            Some(&format!("{blank}\n")),
        );
        let cands = out[0]["blanks"][0]["candidates"].as_array().unwrap();
        for (w, a) in words.iter().zip(&ablated) {
            let c = cands
                .iter()
                .find(|c| c["text"].as_str().unwrap().trim() == *w)
                .unwrap_or_else(|| panic!("{name}: no candidate {w}: {cands:?}"));
            let s = c["sentence_logprob"].as_f64().unwrap();
            assert!(
                close(s, total(a)),
                "{name}: fill {w}: {s} vs score --ablate {}",
                total(a)
            );
        }
        // pairs: both totals are the ablated ones.
        let input = format!(
            "{}\t{}\n{}\t{}\n",
            filled[0], filled[1], filled[2], filled[4]
        );
        let out = common::models::run_on(&path, "pairs", &["--ablate", spec], Some(&input));
        for (row, (ia, ib)) in out.iter().zip([(0, 1), (2, 4)]) {
            let (ta, tb) = (
                row["total_a"].as_f64().unwrap(),
                row["total_b"].as_f64().unwrap(),
            );
            assert!(close(ta, total(&ablated[ia])), "{name}: pairs A {ta}");
            assert!(close(tb, total(&ablated[ib])), "{name}: pairs B {tb}");
        }
        // serve: the echoed prompt's logprobs are the ablated model's.
        let server = common::server::Server::start(&path, &["--ablate", spec]);
        let choices = server.echo(serde_json::json!(filled[0]), 0);
        let got = choices[0]["logprobs"]["token_logprobs"].as_array().unwrap();
        let want = common::server::score_tokens(&ablated[0]);
        assert_eq!(got.len(), want.len(), "{name}");
        for (g, (token, w, _)) in got.iter().zip(&want) {
            match (g.as_f64(), w.as_f64()) {
                (Some(g), Some(w)) => assert!(close(g, w), "{name}: serve {token:?}: {g} vs {w}"),
                (None, None) => {}
                other => panic!("{name}: {token:?}: {other:?}"),
            }
        }
        eprintln!("{name}: fill, pairs and serve give score --ablate {spec}'s numbers");
    }
}
