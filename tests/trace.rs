//! Causal tracing on the real models (SmolLM2 Q4_1, Gemma 3 Q4_K_M, SmolLM2 Q4_K_M): a layer
//! of the clean residual stream patched in at every position gives the clean run bit for bit;
//! the corrupt run's own activations change nothing; the last layer at the last position
//! restores the clean answer exactly; patched runs decoded from their position, side by side,
//! give the grid of runs decoded one at a time from the start, bit for bit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use logitscope::analysis::trace::What;
use logitscope::engine::trace::{trace, TraceOptions};
use logitscope::model::trace::{Keep, Patch};
use logitscope::model::Model;

fn models() -> Vec<(String, PathBuf)> {
    let mut v = common::models::both();
    v.push(("SmolLM2 q4_k_m".into(), common::models::quant("q4_k_m")));
    v
}

/// Pairs of the same token count on every test model (checked).
const PAIRS: [(&str, &str); 2] = [
    (
        "The Eiffel Tower is in the city of",
        "The Colosseum is in the city of",
    ),
    ("The keys to the old cabinet", "The key to the old cabinet"),
];

fn bits(rows: &[Vec<f32>]) -> Vec<Vec<u32>> {
    rows.iter()
        .map(|r| r.iter().map(|x| x.to_bits()).collect())
        .collect()
}

fn l_out(model: &Model, layer: usize) -> String {
    model.components().unwrap().layers[layer]
        .out
        .clone()
        .expect("the graph names l_out")
}

#[test]
fn a_patched_layer_is_the_clean_run_and_an_own_activation_changes_nothing() {
    for (name, path) in models() {
        let model = common::models::load(&path, 512);
        let (n_layer, _) = model.shape();
        for (clean, corrupt) in PAIRS {
            let (ct, kt) = (model.tokenize(clean), model.tokenize(corrupt));
            assert_eq!(ct.len(), kt.len(), "{name}: {clean:?} and {corrupt:?}");
            let n = kt.len();
            let nodes: Vec<String> = (0..n_layer).map(|l| l_out(&model, l)).collect();
            let c = model.capture(&ct, &nodes, &[], Keep::All).unwrap();
            let k = model.capture(&kt, &nodes, &[], Keep::All).unwrap();
            assert_ne!(bits(&c.logits), bits(&k.logits), "{name}: the texts differ");
            for layer in [0, n_layer / 2, n_layer - 1] {
                let whole = |from: &logitscope::model::trace::Capture| -> Vec<Patch> {
                    (0..n)
                        .map(|i| Patch {
                            node: nodes[layer].clone(),
                            position: i,
                            values: Arc::from(from.row(layer, i)),
                        })
                        .collect()
                };
                let patched = model.capture(&kt, &[], &whole(&c), Keep::All).unwrap();
                assert_eq!(
                    bits(&patched.logits),
                    bits(&c.logits),
                    "{name}: {corrupt:?} with {clean:?}'s layer {layer} everywhere: every distribution is the clean run's"
                );
                let own = model.capture(&kt, &[], &whole(&k), Keep::All).unwrap();
                assert_eq!(
                    bits(&own.logits),
                    bits(&k.logits),
                    "{name}: {corrupt:?} with its own layer {layer}"
                );
            }
            // The same through the side-by-side decodes, from several positions: one run per
            // (layer, position) with the corrupt run's own activation.
            let mut tracer = model.tracer(&kt, 8).unwrap();
            for from in [0, 1, n - 3] {
                let runs: Vec<Vec<Patch>> = [0, n_layer / 2, n_layer - 2]
                    .iter()
                    .flat_map(|&l| [from, n - 1].map(|i| (l, i)))
                    .map(|(l, i)| {
                        vec![Patch {
                            node: nodes[l].clone(),
                            position: i,
                            values: Arc::from(k.row(l, i)),
                        }]
                    })
                    .collect();
                let mut got = Vec::new();
                tracer
                    .step(from, &runs, &mut |_, z| {
                        got.push(z.iter().map(|x| x.to_bits()).collect::<Vec<u32>>())
                    })
                    .unwrap();
                assert_eq!(got.len(), runs.len());
                let want: Vec<u32> = k.logits[n - 1].iter().map(|x| x.to_bits()).collect();
                assert!(
                    got.iter().all(|g| *g == want),
                    "{name}: {corrupt:?} decoded from {from} with its own activations"
                );
            }
        }
    }
}

#[test]
fn the_last_layer_at_the_last_position_restores_the_clean_answer() {
    for (name, path) in models() {
        let model = common::models::load(&path, 512);
        let (n_layer, _) = model.shape();
        let (clean, corrupt) = PAIRS[0];
        let r = trace(
            &model,
            clean,
            corrupt,
            &TraceOptions::default(),
            &mut |_, _| {},
            &|| false,
        )
        .unwrap()
        .unwrap();
        let n = r.corrupt_tokens.len();
        let g = &r.grids[0];
        assert_eq!(g.cells.len(), n_layer * n, "{name}: every cell");
        let last = g.cell(n_layer - 1, n - 1).unwrap();
        assert_eq!(last.p, r.baselines.clean.p, "{name}: p of the clean answer");
        assert_eq!(last.restored, Some(1.0), "{name}");
        assert_eq!(
            last.top_logprobs, r.baselines.clean.top_logprobs,
            "{name}: the clean distribution's top tokens"
        );
        // Before the texts differ the clean activation is the corrupt one: nothing restored.
        for c in g.cells.iter().filter(|c| c.position < r.differing[0]) {
            assert_eq!(c.p, r.baselines.corrupt.p, "{name}: {c:?}");
            assert!(!c.decoded);
        }
        assert!(
            g.cells
                .iter()
                .any(|c| c.decoded && c.restored.unwrap() > 0.5),
            "{name}: some patch restores most of the answer"
        );
        eprintln!(
            "{name}: {:?} clean p {:.4}, corrupt p {:.4}; strongest {:?}",
            r.answer.token,
            r.baselines.clean.p,
            r.baselines.corrupt.p,
            g.strongest(3)
                .iter()
                .map(|c| (c.layer, c.position, c.restored))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn prefix_reuse_gives_the_grid_of_runs_decoded_from_the_start() {
    for (name, path) in models() {
        let model = common::models::load(&path, 512);
        for (clean, corrupt) in PAIRS {
            let opts = |reuse: bool, width: usize| TraceOptions {
                reuse,
                width,
                what: What::ALL.to_vec(),
                against: Some(model.tokenize_continuation(" the")[0]),
                ..TraceOptions::default()
            };
            // Every grid, at the first two, a middle and the last two layers.
            let (n_layer, _) = model.shape();
            let layers = vec![0, 1, n_layer / 2, n_layer - 2, n_layer - 1];
            let run = |reuse: bool, width: usize| {
                let opts = TraceOptions {
                    layers: Some(layers.clone()),
                    ..opts(reuse, width)
                };
                trace(&model, clean, corrupt, &opts, &mut |_, _| {}, &|| false)
                    .unwrap()
                    .unwrap()
            };
            let t = std::time::Instant::now();
            let fast = run(true, 32);
            assert!(
                fast.work.prefix_reuse && fast.work.side_by_side > 1,
                "{name}"
            );
            let t1 = t.elapsed();
            let alone = run(false, 1);
            assert_eq!(alone.work.side_by_side, 1);
            assert!(
                alone.work.tokens > fast.work.tokens,
                "{name}: reuse decodes less"
            );
            assert_eq!(fast.grids.len(), 3);
            assert_eq!(
                fast.grids, alone.grids,
                "{name}: {corrupt:?}: one run at a time, from the start"
            );
            assert!(fast
                .grids
                .iter()
                .all(|g| g.cells.len() == layers.len() * fast.corrupt_tokens.len()));
            eprintln!(
                "{name}: {corrupt:?}: {} runs, reused {t1:?}, alone {:?}",
                fast.work.runs,
                t.elapsed() - t1
            );
            assert!(fast.grids[0].cells.iter().all(|c| c.logit_diff.is_some()));
        }
    }
}

#[test]
fn texts_of_different_lengths_share_their_start_align_their_ends_and_say_so() {
    let model = common::model_arg();
    let out = common::run(
        &[
            "trace",
            "-m",
            &model,
            "The Eiffel Tower is in",
            "The big tower is in",
            "--answer",
            " Paris",
            "--against",
            " London",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = &common::json_lines(&out)[0];
    let (nc, nk) = (
        r["clean_tokens"].as_array().unwrap().len(),
        r["corrupt_tokens"].as_array().unwrap().len(),
    );
    assert_ne!(nc, nk);
    assert!(r["alignment"]
        .as_str()
        .unwrap()
        .contains("the rest from their ends"));
    let n_layer = r["n_layer"].as_u64().unwrap() as usize;
    let cells = r["grids"][0]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), n_layer * nc.min(nk));
    assert_eq!(r["answer"]["token"], " Paris");
    assert!(cells.iter().all(|c| c["logit_diff"].is_number()));
    let bad = common::run(
        &[
            "trace",
            "-m",
            &model,
            "a b",
            "a c",
            "--answer",
            " Paris France",
        ],
        None,
    );
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("not one") && err.lines().filter(|l| l.contains("error")).count() == 1,
        "{err}"
    );
}
