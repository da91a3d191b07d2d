//! Control vectors on the real models (SmolLM2 Q4_1, Gemma 3 Q4_K_M, SmolLM2 Q4_K_M): one made
//! by `logitscope cvector` from happy and sad texts makes " happy" more likely than " sad" as
//! its scale rises; a zero vector and a scale of 0 change no number; our way of adding the vector gives exactly
//! the logits llama.cpp's own `llama_set_adapter_cvec` gives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use logitscope::model::{cvector, ControlVector, Intervention};
use serde_json::Value;

const POSITIVE: &str = "I am so happy today, everything is wonderful.
What a joyful, delightful morning this is.
She smiled with pure happiness and love.
We celebrated the great news with laughter.
This is the best day of my life.
";
const NEGATIVE: &str = "I am so sad today, everything is terrible.
What a miserable, gloomy morning this is.
She cried with deep sadness and grief.
We mourned the awful news with tears.
This is the worst day of my life.
";

/// (name, path, a scale that steers without breaking the model: Gemma's residual stream is
/// larger than SmolLM2's).
fn models() -> Vec<(String, PathBuf, f32)> {
    vec![
        ("SmolLM2 Q4_1".into(), common::model_path(), 4.0),
        ("Gemma 3 Q4_K_M".into(), common::models::gemma3(), 20.0),
        (
            "SmolLM2 q4_k_m".into(),
            common::models::quant("q4_k_m"),
            4.0,
        ),
    ]
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "logitscope-steer-{}-{}",
        std::process::id(),
        name.replace(' ', "_")
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `logitscope cvector` on `model`: the happy − sad vector's file.
fn make(model: &Path, at: &Path) -> PathBuf {
    let (pos, neg, out) = (
        at.join("pos.txt"),
        at.join("neg.txt"),
        at.join("happy.gguf"),
    );
    std::fs::write(&pos, POSITIVE).unwrap();
    std::fs::write(&neg, NEGATIVE).unwrap();
    let m = model.to_string_lossy().into_owned();
    let args = [
        "-m",
        m.as_str(),
        "cvector",
        "--positive-file",
        pos.to_str().unwrap(),
        "--negative-file",
        neg.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let run = common::run(&args, None);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

fn score(model: &Path, extra: &[&str], texts: &[String]) -> Vec<Value> {
    let m = model.to_string_lossy().into_owned();
    let mut args = vec!["-m", m.as_str()];
    args.extend_from_slice(extra);
    args.push("score");
    let out = common::run(&args, Some(texts.join("\n").as_bytes()));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::json_lines(&out)
}

/// The report without what a comparison adds (`compare`, `intervention`); every KL of the
/// comparison must be 0.
fn without_compare(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                if let Some(c) = o.remove("compare") {
                    for key in ["kl_bits", "mean_kl_bits", "max_kl_bits"] {
                        if let Some(kl) = c.get(key) {
                            assert_eq!(kl.as_f64(), Some(0.0), "{key} in {c}");
                        }
                    }
                }
                o.remove("intervention");
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

#[test]
fn a_zero_vector_and_a_zero_scale_change_nothing() {
    let texts = common::sentences();
    for (name, path, _) in models() {
        let at = dir(&name);
        let made = make(&path, &at);
        let model = common::models::load(&path, 512);
        let (n_layer, _) = model.shape();
        let zero = at.join("zero.gguf");
        cvector::write(&zero, "test", &vec![vec![0.0; model.n_embd()]; n_layer - 1]).unwrap();
        drop(model);
        let plain = score(&path, &[], &texts);
        let zeroed = score(&path, &["--control-vector", zero.to_str().unwrap()], &texts);
        let scaled = score(
            &path,
            &["--control-vector-scaled", made.to_str().unwrap(), "0"],
            &texts,
        );
        for (what, got) in [("zero vector", zeroed), ("scale 0", scaled)] {
            assert_eq!(got.len(), plain.len(), "{name}: {what}");
            assert!(
                got[0]["intervention"].is_string(),
                "{name}: {what} is named"
            );
            let got: Vec<Value> = got.into_iter().map(without_compare).collect();
            assert_eq!(got, plain, "{name}: {what}");
        }
    }
}

/// Under each scale, how much more the model expects `stem` + " happy" than `stem` + " sad":
/// the log-probability of the last token of the one minus the other's.
fn preference(path: &Path, file: &Path, stem: &str, scales: &[f32]) -> Vec<f64> {
    scales
        .iter()
        .map(|s| {
            let s = s.to_string();
            let texts = [format!("{stem} happy"), format!("{stem} sad")];
            let r = score(
                path,
                &["--control-vector-scaled", file.to_str().unwrap(), &s],
                &texts,
            );
            let last = |i: usize| {
                let tokens = r[i]["tokens"].as_array().unwrap();
                tokens.last().unwrap()["logprob"].as_f64().unwrap()
            };
            last(0) - last(1)
        })
        .collect()
}

#[test]
fn a_vector_made_from_happy_and_sad_texts_moves_happy_over_sad() {
    for (name, path, s) in models() {
        let at = dir(&format!("{name}-moves"));
        let made = make(&path, &at);
        for stem in ["Today I feel very", "The children were"] {
            let d = preference(&path, &made, stem, &[-s, 0.0, s]);
            eprintln!("{name}: '{stem} happy' over '… sad' at −{s}, 0, +{s}: {d:?}");
            assert!(
                d[0] < d[1] && d[1] < d[2],
                "{name}: '{stem}': {d:?} should rise with the scale"
            );
        }
    }
}

#[test]
fn our_control_vector_is_llamas_to_the_bit() {
    let text = "The chef seasoned the soup with a pinch of salt and a little pepper.";
    for (name, path, s) in models() {
        let at = dir(&format!("{name}-llama"));
        let made = make(&path, &at);
        let model = common::models::load(&path, 512);
        let (n_layer, _) = model.shape();
        let tokens = model.tokenize(text);
        let plain = cvector::edited_logits(&model, &tokens).unwrap();
        // The file's directions × s, laid out as llama.cpp's API takes them (layer 1 first).
        let info = logitscope::model::gguf::inspect(&made).unwrap();
        assert_eq!(info.tensors.len(), n_layer - 1, "{name}");
        for range in [None, Some((3i32, 7i32))] {
            let intervention = Intervention {
                steer: vec![ControlVector {
                    path: made.clone(),
                    scale: s,
                }],
                layer_range: range,
                ..Default::default()
            };
            model.set_edits(model.edits(&intervention).unwrap());
            let ours = cvector::edited_logits(&model, &tokens).unwrap();
            model.set_edits(None);
            let data = steer_data(&made, s, model.n_embd());
            let (start, end) = range.unwrap_or((1, n_layer as i32));
            let theirs = cvector::llama_cvec_logits(&model, &tokens, &data, start, end).unwrap();
            assert_ne!(ours, plain, "{name} {range:?}: steering changed nothing");
            assert_eq!(
                ours, theirs,
                "{name} {range:?}: ours vs llama_set_adapter_cvec"
            );
        }
    }
}

/// `direction.k × s` at `(k − 1)·n_embd`: the values read here from the file's bytes.
fn steer_data(file: &Path, s: f32, n_embd: usize) -> Vec<f32> {
    let bytes = std::fs::read(file).unwrap();
    let info = logitscope::model::gguf::inspect(file).unwrap();
    let mut data = vec![0f32; n_embd * info.tensors.len()];
    for t in &info.tensors {
        let k: usize = t.name.strip_prefix("direction.").unwrap().parse().unwrap();
        let at = t.offset as usize;
        for (i, c) in bytes[at..at + n_embd * 4].chunks_exact(4).enumerate() {
            data[(k - 1) * n_embd + i] = f32::from_le_bytes([c[0], c[1], c[2], c[3]]) * s;
        }
    }
    data
}
