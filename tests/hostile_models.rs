//! The default model with hostile hyperparameters and special-token ids, each patched into a
//! copy of the file. Every variant either works (llama.cpp tolerates the value: valid JSON,
//! exit 0) or is refused with exit status 2 and exactly one line on stderr naming the file —
//! never an abort (status 134), never a debugger's backtrace on stdout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::gguf_edit::{edit, read_str_array, V};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Exit 2, one stderr line containing this phrase, nothing on stdout.
    Refused(&'static str),
    /// Exit 0 and a valid JSON line.
    Works,
}

/// A named variant: the metadata edits and what must happen.
type Variant = (&'static str, Vec<(&'static str, Option<V>)>, Expect);

fn variants() -> Vec<Variant> {
    use Expect::*;
    let real = std::fs::read(common::model_path()).unwrap();
    let mut dup_tokens = read_str_array(&real, "tokenizer.ggml.tokens");
    dup_tokens[1000] = dup_tokens[1001].clone();
    vec![
        (
            "block_count 0",
            vec![("llama.block_count", Some(V::U32(0)))],
            Refused("llama.block_count is 0; llama.cpp needs 1 to 512 layers"),
        ),
        (
            "block_count 1000",
            vec![("llama.block_count", Some(V::U32(1000)))],
            Refused("llama.block_count is 1000; llama.cpp needs 1 to 512 layers"),
        ),
        (
            "block_count 31",
            vec![("llama.block_count", Some(V::U32(31)))],
            Refused("rejected by llama.cpp"),
        ),
        (
            "block_count as i32",
            vec![("llama.block_count", Some(V::I32(30)))],
            Refused("rejected by llama.cpp"),
        ),
        (
            "nextn_predict_layers 40",
            vec![("llama.nextn_predict_layers", Some(V::U32(40)))],
            Refused("llama.nextn_predict_layers is 40"),
        ),
        (
            "head_count 0",
            vec![("llama.attention.head_count", Some(V::U32(0)))],
            Refused("rejected by llama.cpp"),
        ),
        (
            "head_count_kv 4 of 9 heads",
            vec![("llama.attention.head_count_kv", Some(V::U32(4)))],
            Refused("does not divide"),
        ),
        (
            "head_count_kv 0",
            vec![("llama.attention.head_count_kv", Some(V::U32(0)))],
            Refused("rejected by llama.cpp"),
        ),
        (
            "embedding_length 0",
            vec![("llama.embedding_length", Some(V::U32(0)))],
            Refused("rejected by llama.cpp"),
        ),
        (
            "context_length 0",
            vec![("llama.context_length", Some(V::U32(0)))],
            Works,
        ),
        (
            "rms epsilon NaN",
            vec![(
                "llama.attention.layer_norm_rms_epsilon",
                Some(V::F32(f32::NAN)),
            )],
            Refused("layer_norm_rms_epsilon is NaN"),
        ),
        (
            "rms epsilon -1",
            vec![("llama.attention.layer_norm_rms_epsilon", Some(V::F32(-1.0)))],
            Refused("layer_norm_rms_epsilon is -1"),
        ),
        (
            "expert_count 2000",
            vec![("llama.expert_count", Some(V::U32(2000)))],
            Refused("llama.expert_count is 2000, more than 1024"),
        ),
        (
            "expert_used_count without experts",
            vec![("llama.expert_used_count", Some(V::U32(2)))],
            Refused("llama.expert_used_count is 2, more than"),
        ),
        (
            "rope scaling type bogus",
            vec![("llama.rope.scaling.type", Some(V::Str("bogus".into())))],
            Refused("llama.rope.scaling.type is \"bogus\""),
        ),
        (
            "key_length 64, value_length 32",
            vec![
                ("llama.attention.key_length", Some(V::U32(64))),
                ("llama.attention.value_length", Some(V::U32(32))),
            ],
            Refused("differs from llama.attention.value_length"),
        ),
        (
            "bos_token_id out of range",
            vec![("tokenizer.ggml.bos_token_id", Some(V::U32(999_999)))],
            Works,
        ),
        (
            "eos_token_id out of range",
            vec![("tokenizer.ggml.eos_token_id", Some(V::U32(999_999)))],
            Works,
        ),
        (
            "padding_token_id u32::MAX",
            vec![("tokenizer.ggml.padding_token_id", Some(V::U32(u32::MAX)))],
            Works,
        ),
        (
            "bos_token_id as i32 -1",
            vec![("tokenizer.ggml.bos_token_id", Some(V::I32(-1)))],
            Refused("rejected by llama.cpp"),
        ),
        (
            "add_bos_token with bos out of range",
            vec![
                ("tokenizer.ggml.add_bos_token", Some(V::Bool(true))),
                ("tokenizer.ggml.bos_token_id", Some(V::U32(999_999))),
            ],
            Refused("tokenizer.ggml.bos_token_id is 999999, outside the vocabulary"),
        ),
        (
            "tokenizer model none",
            vec![("tokenizer.ggml.model", Some(V::Str("none".into())))],
            Refused("the model has no tokenizer"),
        ),
        (
            "tokenizer model unknown",
            vec![("tokenizer.ggml.model", Some(V::Str("nope".into())))],
            Refused("rejected by llama.cpp"),
        ),
        (
            "vocab_size 5",
            vec![("llama.vocab_size", Some(V::U32(5)))],
            Works,
        ),
        (
            "duplicate token strings",
            vec![("tokenizer.ggml.tokens", Some(V::StrArray(dup_tokens)))],
            Refused("lists the token"),
        ),
        (
            "architecture removed",
            vec![("general.architecture", None)],
            Refused("rejected by llama.cpp"),
        ),
    ]
}

#[test]
fn hostile_hyperparameters_give_one_clear_line_or_work() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read(common::model_path()).unwrap();
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for (name, edits, expect) in variants() {
        let path = dir.path().join("patched.gguf");
        std::fs::write(&path, edit(&real, &edits)).unwrap();
        let out = common::run(&["-m", path.to_str().unwrap(), "score", "The chef"], None);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = out.status.code();
        let outcome = match code {
            Some(0) => format!("works ({} bytes of JSON)", stdout.len()),
            Some(c) => format!("exit {c}: {}", stderr.trim()),
            None => "killed by a signal".into(),
        };
        table.push(format!("{name:<40} {outcome}"));
        let ok = match expect {
            Expect::Works => {
                code == Some(0)
                    && stdout.lines().count() == 1
                    && serde_json::from_str::<serde_json::Value>(stdout.trim()).is_ok()
            }
            Expect::Refused(phrase) => {
                code == Some(2)
                    && stdout.is_empty()
                    && stderr.lines().count() == 1
                    && stderr.contains(phrase)
                    && stderr.contains("patched.gguf")
            }
        };
        if !ok {
            failures.push(format!(
                "{name}: expected {expect:?}, got {outcome}\nstdout: {stdout:.300}"
            ));
        }
    }
    eprintln!("{}", table.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn patched(dir: &std::path::Path, name: &str, layers: u32) -> std::path::PathBuf {
    common::edited_model(dir, name, &[("llama.block_count", Some(V::U32(layers)))])
}

/// One line on stderr, nothing but JSON (here: nothing) on stdout, status 2.
fn assert_one_line(out: &std::process::Output, phrase: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    assert!(stderr.contains(phrase), "{what}: {stderr}");
    for line in stdout.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "{what}: stdout holds more than JSON: {line}"
        );
    }
}

#[test]
fn layer_counts_0_and_1000_are_refused_by_score_and_fill() {
    let dir = tempfile::tempdir().unwrap();
    for layers in [0, 1000] {
        let path = patched(dir.path(), &format!("layers-{layers}.gguf"), layers);
        let m = path.to_str().unwrap();
        let phrase = format!("llama.block_count is {layers}");
        for args in [
            vec!["-m", m, "score", "The chef"],
            vec!["-m", m, "fill", "The ____ barked."],
        ] {
            assert_one_line(&common::run(&args, None), &phrase, &args.join(" "));
        }
    }
}

/// The last line of defence: with the pre-flight check switched off (a test hook), llama.cpp
/// itself hits `GGML_ASSERT` on 1000 layers. ggml's abort callback turns that into one line
/// naming the assertion and status 2 — no debugger, no SIGABRT, nothing on stdout.
#[test]
fn an_assertion_past_the_preflight_ends_in_one_line_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = patched(dir.path(), "layers-1000.gguf", 1000);
    let m = path.to_str().unwrap();
    for args in [
        vec!["-m", m, "score", "The chef"],
        vec!["-m", m, "fill", "The ____ barked."],
    ] {
        let out = std::process::Command::new(common::bin())
            .args(&args)
            .env("LOGITSCOPE_TEST_SKIP_PREFLIGHT", "1")
            .env("LOGITSCOPE_STATE_DIR", dir.path())
            .output()
            .unwrap();
        assert_one_line(&out, "llama.cpp aborted: llama-model.cpp:", &args.join(" "));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("GGML_ASSERT(hparams.n_layer_all > 0"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "nothing on stdout");
    }
}
