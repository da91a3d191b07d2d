//! `score` with many lines on stdin scores them side by side (one KV-cache stream each); the
//! numbers must be those of scoring each line alone, bit for bit — on the reference sentences,
//! on lines of very different lengths (chunks padded to equal length), with a watch-list, and
//! through the library call itself.
#![allow(clippy::unwrap_used)]

mod common;

use logitscope::analysis::ViewOptions;

use common::sentences_file as sentences;

/// Lines of 1 to about 300 tokens, and a few that fail (empty, too long for a stream).
fn mixed_lines() -> String {
    let words = "the chef seasoned a soup with salt while rain fell on the old town and a cat \
        watched people hurry home with bread as a bell rang twice";
    let w: Vec<&str> = words.split(' ').collect();
    let mut out = String::new();
    for (i, n) in [
        1usize, 3, 17, 64, 65, 90, 2, 130, 40, 255, 7, 33, 300, 12, 0, 16,
    ]
    .iter()
    .enumerate()
    {
        let line: Vec<&str> = (0..*n).map(|k| w[(k * 7 + i) % w.len()]).collect();
        out.push_str(&line.join(" "));
        out.push('\n');
    }
    out.push_str(&"salt ".repeat(700));
    out.push('\n');
    out
}

fn compare(input: &str, extra: &[&str]) {
    let model = common::model_arg();
    let mut alone = vec!["score", "-m", &model, "--parallel", "1"];
    alone.extend_from_slice(extra);
    let mut side = vec!["score", "-m", &model, "--parallel", "8"];
    side.extend_from_slice(extra);
    let a = common::run(&alone, Some(input.as_bytes()));
    let b = common::run(&side, Some(input.as_bytes()));
    assert_eq!(a.status.code(), b.status.code());
    assert_eq!(
        input.lines().count(),
        String::from_utf8_lossy(&a.stdout).lines().count()
    );
    // Byte for byte: every number of every line.
    assert!(
        a.stdout == b.stdout,
        "side by side differs from one at a time:\n{}\n---\n{}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout)
    );
}

#[test]
fn the_reference_sentences_side_by_side_equal_one_at_a_time_bit_for_bit() {
    compare(&sentences(), &[]);
    compare(&sentences(), &["--watch", "he,she,the", "--n-probs", "20"]);
}

#[test]
fn lines_of_very_different_lengths_side_by_side_equal_one_at_a_time() {
    compare(&mixed_lines(), &[]);
}

#[test]
fn the_library_call_groups_and_matches_each_text_alone() {
    let model = common::load_model_with_ctx(4096);
    let view = ViewOptions {
        temp: 0.7,
        n_probs: 5,
    };
    let text = sentences();
    let texts: Vec<&str> = text.lines().collect();
    let mut batch = model.batch_session(8, 512).unwrap();
    let side = logitscope::engine::score::score_side_by_side(&mut batch, &texts, view).unwrap();
    let mut alone = model.session().unwrap();
    for (t, s) in texts.iter().zip(side) {
        let (report, ev) = s.unwrap();
        let (r1, ev1) = logitscope::engine::score::score_text(&mut alone, t, view).unwrap();
        assert_eq!(ev.rows, ev1.rows, "{t}");
        assert_eq!(report, r1);
    }
}

/// The layout self-check's finding is kept in the state directory and used by the next process
/// with the same build, CPU, model file and settings — and only then.
#[test]
fn the_self_checks_finding_is_kept_for_the_same_build_and_model_file_only() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let kept = state.join("self-check.json");
    let model = dir.path().join("copy.gguf");
    std::fs::copy(common::model_path(), &model).unwrap();
    let model = model.to_string_lossy().into_owned();
    let input =
        "The cat sat on the mat.\nParis is the capital of France.\nShe opened the door and\n";
    let score = |env: &[(&str, &str)]| {
        let mut env = env.to_vec();
        let state = state.to_string_lossy().into_owned();
        env.push(("LOGITSCOPE_STATE_DIR", &state));
        let out = common::run_env(&["score", "-m", &model], Some(input.as_bytes()), &env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        common::json_lines(&out)
    };
    let entries = || -> Vec<serde_json::Value> {
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&kept).unwrap())
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let first = score(&[]);
    assert_eq!(first.len(), 3);
    assert!(
        first.iter().all(|l| l.get("batching").is_none()),
        "{first:?}"
    );
    let e = entries();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0]["side_by_side"].is_null() && e[0]["incremental"].is_null());
    assert!(e[0]["key"]["model"].as_str().unwrap().contains("copy.gguf"));

    // A finding changed on disk is what the next process goes by: it is read, not re-probed.
    let mut tampered = e.clone();
    tampered[0]["side_by_side"] = "a finding written by the test".into();
    std::fs::write(&kept, serde_json::to_vec(&tampered).unwrap()).unwrap();
    let second = score(&[]);
    for (a, b) in first.iter().zip(&second) {
        let note = b["batching"].as_str().unwrap_or_default();
        assert!(
            note.contains("one sequence at a time (a finding written by the test)"),
            "{b}"
        );
        assert_eq!(a["tokens"], b["tokens"]);
        assert_eq!(a["total_logprob"], b["total_logprob"]);
    }
    // Switched off, the check runs again (and finds what it found first) and keeps nothing.
    let off = score(&[("LOGITSCOPE_SELF_CHECK_CACHE", "0")]);
    assert!(off.iter().all(|l| l.get("batching").is_none()));
    assert_eq!(entries(), tampered);
    // Another kernel environment is another key.
    let tiled = score(&[("LLAMA_LOGITSCOPE_TEST", "1")]);
    assert!(tiled.iter().all(|l| l.get("batching").is_none()));
    assert_eq!(entries().len(), 2);
    // The same model file rewritten (a new modification time) is another key: probed again.
    let f = std::fs::File::options().write(true).open(&model).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    let rewritten = score(&[]);
    assert!(rewritten.iter().all(|l| l.get("batching").is_none()));
    assert_eq!(first, rewritten);
    assert_eq!(entries().len(), 3);
}

/// On both test models and a K-quant: a process that scores side by side from the kept finding
/// gives the bits of the process that probed, and of one text at a time.
#[test]
fn scoring_from_the_kept_finding_equals_one_at_a_time_on_every_test_model() {
    let mut models = common::models::both();
    models.push(("SmolLM2 q4_k_m".into(), common::models::quant("q4_k_m")));
    let input = sentences().into_bytes();
    for (name, path) in models {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_string_lossy().into_owned();
        let model = path.to_string_lossy().into_owned();
        let score = |parallel: &str| {
            let out = common::run_env(
                &["score", "-m", &model, "--parallel", parallel],
                Some(&input),
                &[("LOGITSCOPE_STATE_DIR", &state)],
            );
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        let probed = score("8");
        let kept: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("self-check.json")).unwrap())
                .unwrap();
        assert_eq!(kept.as_array().unwrap().len(), 1, "{name}: {kept}");
        assert!(kept[0]["side_by_side"].is_null(), "{name}: {kept}");
        let from_kept = score("8");
        assert_eq!(probed, from_kept, "{name}");
        assert_eq!(score("1"), from_kept, "{name}");
    }
}
