//! Attention on the real models (SmolLM2 Q4_1, Gemma 3 Q4_K_M, SmolLM2 Q4_K_M): every row is
//! a distribution over the positions it may see (sums to 1, nothing on the future, nothing
//! outside a sliding window); reading it changes no other number of `score`; the default model
//! has an induction head.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use logitscope::engine::attention::Attentions;
use logitscope::model::attention::Keep;
use serde_json::Value;

fn models() -> Vec<(String, std::path::PathBuf)> {
    let mut v = common::models::both();
    v.push(("SmolLM2 q4_k_m".into(), common::models::quant("q4_k_m")));
    v
}

#[test]
fn every_row_sums_to_one_and_puts_nothing_on_the_future() {
    for (name, path) in models() {
        let model = common::models::load(&path, 512);
        let mut attentions = Attentions::new(&model);
        for text in common::sentences() {
            let tokens = model.tokenize(&text);
            let map = attentions.map(&tokens, 4, Keep::All).unwrap().unwrap();
            let f = &map.facts;
            assert_eq!(map.len(), tokens.len());
            for layer in 0..f.n_layer {
                for p in 0..map.len() {
                    for head in 0..f.n_head {
                        let r = map.row(layer, p, head).unwrap();
                        assert!(
                            (r.sum - 1.0).abs() <= 1e-5,
                            "{name}: {text:?} layer {layer} position {p} head {head}: sum {}",
                            r.sum
                        );
                        assert_eq!(r.future, 0.0, "{name}: weight after position {p}");
                        assert!(r.top.iter().all(|&(j, _)| j as usize <= p));
                        let row = map.full_row(layer, p, head).unwrap();
                        assert!(row[p + 1..].iter().all(|&w| w == 0.0));
                        let visible: f64 = row[..=p].iter().map(|&w| f64::from(w)).sum();
                        assert!(
                            (visible - 1.0).abs() <= 1e-5,
                            "{name}: whole row sums to {visible}"
                        );
                        // The top weights are the row's own, largest first.
                        let best = row[..=p].iter().copied().fold(f32::MIN, f32::max);
                        assert_eq!(r.top[0].1, best);
                        assert_eq!(row[r.top[0].0 as usize], best);
                    }
                }
            }
        }
    }
}

#[test]
fn gemmas_sliding_layers_see_only_their_window() {
    let path = common::models::gemma3();
    let model = common::models::load(&path, 1024);
    let mut attentions = Attentions::new(&model);
    // A text longer than Gemma 3's 512-token window.
    let text = common::sentences().join(" ").repeat(8);
    let tokens: Vec<u32> = model.tokenize(&text).into_iter().take(700).collect();
    assert_eq!(tokens.len(), 700, "the text is long enough");
    let map = attentions
        .map(&tokens, 2, Keep::Positions(vec![699]))
        .unwrap()
        .unwrap();
    let f = map.facts.clone();
    let dense: Vec<usize> = (0..f.n_layer).filter(|&l| f.window(l).is_none()).collect();
    assert_eq!(
        dense,
        vec![5, 11, 17],
        "llama.cpp's gemma3 pattern: every sixth layer dense"
    );
    assert!((0..f.n_layer).all(|l| f.window(l).is_none_or(|w| w == 512)));
    assert_eq!((f.n_head, f.n_head_kv), (4, 1));
    let mut beyond_on_dense = 0.0;
    for layer in 0..f.n_layer {
        for p in 0..map.len() {
            for head in 0..f.n_head {
                let r = map.row(layer, p, head).unwrap();
                assert!((r.sum - 1.0).abs() <= 1e-5);
                assert_eq!(r.future, 0.0);
                match f.window(layer) {
                    Some(_) => assert_eq!(
                        r.outside_window, 0.0,
                        "layer {layer} position {p} head {head} sees outside its window"
                    ),
                    None => {
                        // What a window would hide, a dense layer sees.
                        let hidden = (p + 1).saturating_sub(512);
                        let row = if p == 699 {
                            map.full_row(layer, p, head)
                        } else {
                            None
                        };
                        if let Some(row) = row {
                            beyond_on_dense +=
                                row[..hidden].iter().map(|&w| f64::from(w)).sum::<f64>();
                        }
                    }
                }
            }
        }
    }
    // On the sliding layers the last position's whole row is zero before its window.
    for layer in (0..f.n_layer).filter(|l| !dense.contains(l)) {
        for head in 0..f.n_head {
            let row = map.full_row(layer, 699, head).unwrap();
            assert!(row[..699 + 1 - 512].iter().all(|&w| w == 0.0));
            assert!(row[699 + 1 - 512..].iter().any(|&w| w > 0.0));
        }
    }
    assert!(
        beyond_on_dense > 0.0,
        "dense layers attend beyond 512 positions back"
    );
}

/// Remove every `attention` member, recursively.
fn without_attention(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("attention");
            m.values_mut().for_each(without_attention);
        }
        Value::Array(a) => a.iter_mut().for_each(without_attention),
        _ => {}
    }
}

#[test]
fn reading_attention_changes_no_other_field_of_score() {
    let text = common::sentences_file();
    for (name, path) in models() {
        for parallel in ["1", "8"] {
            let plain =
                common::models::run_on(&path, "score", &["--parallel", parallel], Some(&text));
            let with = common::models::run_on(
                &path,
                "score",
                &[
                    "--parallel",
                    parallel,
                    "--attention-full",
                    "--attention-k",
                    "2",
                ],
                Some(&text),
            );
            assert_eq!(plain.len(), with.len());
            for (a, mut b) in plain.into_iter().zip(with) {
                let status = &b["attention"];
                assert_eq!(status["available"], true, "{name}: {status}");
                let tokens = b["tokens"].as_array().unwrap();
                for (j, t) in tokens.iter().enumerate() {
                    let Some(layers) = t["attention"].as_array() else {
                        assert_eq!(
                            j, 0,
                            "{name}: only the first token has no predicting position"
                        );
                        continue;
                    };
                    assert_eq!(
                        layers.len(),
                        status["facts"]["n_layer"].as_u64().unwrap() as usize
                    );
                    for head in layers.iter().flat_map(|l| l["heads"].as_array().unwrap()) {
                        let row: Vec<f64> = head["row"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|w| w.as_f64().unwrap())
                            .collect();
                        assert_eq!(row.len(), j, "{name}: position j-1 sees j positions");
                        assert!((row.iter().sum::<f64>() - 1.0).abs() <= 1e-5);
                        assert_eq!(head["top"].as_array().unwrap().len(), 2.min(j));
                        let top = &head["top"][0];
                        assert_eq!(
                            row[top["position"].as_u64().unwrap() as usize],
                            top["weight"].as_f64().unwrap()
                        );
                    }
                }
                assert!(b["next"]["attention"].is_array());
                without_attention(&mut b);
                assert_eq!(
                    a.to_string(),
                    b.to_string(),
                    "{name} (--parallel {parallel})"
                );
            }
        }
    }
}

#[test]
fn the_default_model_has_an_induction_head() {
    let model = common::models::load(&common::model_path(), 512);
    let mut attentions = Attentions::new(&model);
    // A random sequence of ordinary tokens, no repeats, then the same again.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut seq: Vec<u32> = Vec::new();
    while seq.len() < 24 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let id = 1000 + (seed % 30_000) as u32;
        if !seq.contains(&id) {
            seq.push(id);
        }
    }
    let len = seq.len();
    let tokens: Vec<u32> = seq.iter().chain(&seq).copied().collect();
    let map = attentions
        .map(&tokens, 1, Keep::Positions(Vec::new()))
        .unwrap()
        .unwrap();
    let f = &map.facts;
    // Per head: the mean weight, over the second repetition, on the token after the previous
    // occurrence of the current one.
    let mut best = (0.0f64, 0, 0);
    for layer in 0..f.n_layer {
        for head in 0..f.n_head {
            let mean = (len..2 * len)
                .map(|p| f64::from(map.row(layer, p, head).unwrap().induction.unwrap()))
                .sum::<f64>()
                / len as f64;
            if mean > best.0 {
                best = (mean, layer, head);
            }
        }
    }
    let (share, layer, head) = best;
    println!("induction head {layer}.{head}: mean weight {share:.3} on the token after the previous occurrence");
    assert!(
        share > 0.5,
        "the strongest induction head ({layer}.{head}) puts only {share:.3} there"
    );
    // The summary names it too.
    let suspects = map.suspects(0.5);
    assert!(suspects.iter().any(|s| s.layer == layer
        && s.head == head
        && s.habit == logitscope::analysis::attention::Habit::Induction));
}

#[test]
fn with_flash_attention_it_says_why_there_is_none() {
    let out = common::models::run_on(
        &common::model_path(),
        "score",
        &["--attention", "-fa"],
        Some("A short text.\n"),
    );
    let status = &out[0]["attention"];
    assert_eq!(status["available"], false);
    assert!(
        status["reason"]
            .as_str()
            .unwrap()
            .contains("flash attention"),
        "{status}"
    );
    assert!(out[0]["tokens"][1].get("attention").is_none());
}
