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
