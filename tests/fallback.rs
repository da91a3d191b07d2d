//! Where several sequences in one decode would change the numbers, the model falls back to one
//! sequence at a time and says so. Provoked here with ggml's fast CPU kernels switched back on
//! (`LOGITSCOPE_REPACK=1`, `GGML_CPU_TILED_MM=1`), which choose a path by row count.
#![allow(clippy::unwrap_used)]

mod common;

use common::models;
use serde_json::Value;

const FAST: [(&str, &str); 2] = [("LOGITSCOPE_REPACK", "1"), ("GGML_CPU_TILED_MM", "1")];

fn json(out: &std::process::Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::json_lines(out)
}

/// The probe itself finds the difference (not only the rule that knows these kernels).
#[test]
fn the_probe_detects_layout_dependent_kernels() {
    for (k, v) in FAST {
        // Read at the model's load and at ggml's first matrix product, both after this; this
        // test binary loads no other model.
        std::env::set_var(k, v);
    }
    let model = models::load(&models::quant("q4_k_m"), 512);
    let found = model.probe_layout().unwrap();
    assert!(found.side_by_side.is_some(), "{found:?}");
    let layout = model.layout();
    assert!(!layout.side_by_side_exact() && !layout.incremental_exact());
    assert!(layout.note().unwrap().contains("one sequence at a time"));
    assert!(model.info().batching.is_some());
}

#[test]
fn score_and_fill_fall_back_say_so_and_give_the_numbers_of_each_text_alone() {
    let g = models::gemma3();
    let m = g.to_str().unwrap();
    let texts = common::sentences();
    let input = common::sentences_file();
    let side = json(&common::run_env(
        &["score", "-m", m, "--parallel", "8"],
        Some(input.as_bytes()),
        &FAST,
    ));
    assert_eq!(side.len(), texts.len());
    for (text, mut line) in texts.iter().zip(side) {
        let note = line.as_object_mut().unwrap().remove("batching").unwrap();
        assert!(
            note.as_str().unwrap().contains("one sequence at a time"),
            "{note}"
        );
        // Each text alone, in a process of its own.
        let alone = json(&common::run_env(&["score", "-m", m, text], None, &FAST)).remove(0);
        assert_eq!(line, alone, "{text}");
    }
    let text = "The chef carefully seasoned the soup with a pinch of ____.";
    let fill = json(&common::run_env(
        &["fill", "-m", m, text, "--search", "0", "--no-ask"],
        None,
        &FAST,
    ))
    .remove(0);
    assert!(fill["batching"]
        .as_str()
        .unwrap()
        .contains("one sequence at a time"));
    for c in fill["blanks"][0]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .take(4)
    {
        let filled = text.replacen("____", c["text"].as_str().unwrap(), 1);
        let alone = json(&common::run_env(&["score", "-m", m, &filled], None, &FAST)).remove(0);
        let (a, b) = (
            c["sentence_logprob"].as_f64().unwrap(),
            alone["total_logprob"].as_f64().unwrap(),
        );
        assert!((a - b).abs() <= 1e-6, "{filled}: fill {a} vs score {b}");
    }
}
