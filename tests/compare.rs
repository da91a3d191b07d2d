//! Two models compared position by position (`--vs`), on the real default model and a second
//! quantization of it made with `logitscope quantize` (llama.cpp's quantizer).
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::Value;

use common::sentences;

fn score(args: &[&str], texts: &[String]) -> Vec<Value> {
    let mut all = vec!["score"];
    all.extend_from_slice(args);
    let input = texts.join("\n") + "\n";
    let out = common::run(&all, Some(input.as_bytes()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::json_lines(&out)
}

/// A Q4_0 re-quantization of the default model (made by `logitscope quantize`, cached).
fn second_quantization() -> std::path::PathBuf {
    common::models::quant("q4_0")
}

#[test]
fn a_model_against_itself_differs_by_exactly_nothing() {
    let m = common::model_arg();
    let texts = sentences();
    for line in score(&["-m", &m, "--vs", &m], &texts) {
        let c = &line["compare"];
        assert_eq!(c["mean_kl_bits"], 0.0);
        assert_eq!(c["max_kl_bits"], 0.0);
        assert_eq!(c["top1_changes"], 0);
        assert_eq!(c["delta_total_logprob"], 0.0);
        for t in line["tokens"].as_array().unwrap().iter().skip(1) {
            let tc = &t["compare"];
            assert_eq!(tc["kl_bits"], 0.0, "{t}");
            assert_eq!(tc["kl_reverse_bits"], 0.0);
            assert_eq!(tc["js_bits"], 0.0);
            assert_eq!(tc["top1_changed"], false);
            assert_eq!(tc["logprob_b"], t["logprob"]);
        }
    }
}

/// Every token's log-probability at one position, from `score --n-probs |V|`.
fn full_row(top: &Value, n_vocab: usize) -> Vec<f64> {
    let mut row = vec![f64::NAN; n_vocab];
    for e in top.as_array().unwrap() {
        row[e["id"].as_u64().unwrap() as usize] = e["logprob"].as_f64().unwrap();
    }
    assert!(row.iter().all(|x| !x.is_nan()), "the whole row is listed");
    row
}

/// KL(A‖B) in bits, computed here in f64 from the two full rows, independently of the
/// program's own code.
fn kl_bits(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .filter(|(x, _)| x.is_finite())
        .map(|(x, y)| x.exp() * (x - y))
        .sum::<f64>()
        / std::f64::consts::LN_2
}

#[test]
fn kl_against_a_second_quantization_matches_an_independent_f64_computation() {
    let b = second_quantization();
    let b = b.to_str().unwrap();
    let a = common::model_arg();
    let texts: Vec<String> = sentences().into_iter().take(3).collect();
    let compared = score(&["-m", &a, "--vs", b], &texts);
    let n_vocab = 49_152;
    let k = n_vocab.to_string();
    let rows_a = score(&["-m", &a, "--n-probs", &k], &texts);
    let rows_b = score(&["-m", b, "--n-probs", &k], &texts);
    let mut worst = 0f64;
    let mut positions = 0;
    for ((c, ra), rb) in compared.iter().zip(&rows_a).zip(&rows_b) {
        assert!(c["compare"]["mean_kl_bits"].as_f64().unwrap() > 0.0);
        let tokens = c["tokens"].as_array().unwrap();
        for (j, t) in tokens.iter().enumerate().skip(1) {
            let pa = full_row(&ra["tokens"][j]["top_logprobs"], n_vocab);
            let pb = full_row(&rb["tokens"][j]["top_logprobs"], n_vocab);
            let want = kl_bits(&pa, &pb);
            let reverse = kl_bits(&pb, &pa);
            let got = t["compare"]["kl_bits"].as_f64().unwrap();
            let got_rev = t["compare"]["kl_reverse_bits"].as_f64().unwrap();
            worst = worst.max((got - want).abs()).max((got_rev - reverse).abs());
            assert!((got - want).abs() <= 1e-6, "position {j}: {got} vs {want}");
            assert!((got_rev - reverse).abs() <= 1e-6);
            assert!(got > 0.0);
            positions += 1;
        }
    }
    assert!(positions >= 20);
    eprintln!("{positions} positions: worst |ΔKL| against the independent f64 sum {worst:e} bit");
}

#[test]
fn models_with_different_vocabularies_are_refused_in_one_line() {
    use common::gguf_edit::{read_str_array, V};
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read(common::model_path()).unwrap();
    let mut tokens = read_str_array(&real, "tokenizer.ggml.tokens");
    tokens[4000] = b"logitscope-renamed".to_vec();
    let other = common::edited_model(
        dir.path(),
        "renamed.gguf",
        &[("tokenizer.ggml.tokens", Some(V::StrArray(tokens)))],
    );
    let out = common::run(
        &[
            "-m",
            &common::model_arg(),
            "--vs",
            other.to_str().unwrap(),
            "score",
            "The chef",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("their vocabularies differ at token 4000"),
        "{stderr}"
    );
    assert!(stderr.contains("logitscope-renamed"), "{stderr}");
    assert!(out.stdout.is_empty());
}
