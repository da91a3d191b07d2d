//! Fill-in-the-blank on the real model: candidates are ranked by the log-probability of the
//! whole sentence, which equals what `score` says of the filled sentence.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::Value;

fn fill(args: &[&str]) -> Vec<Value> {
    common::run_ok("fill", args)
}

use common::score_totals;

#[test]
fn salt_wins_the_chef_blank() {
    let v = fill(&["The chef carefully seasoned the soup with a pinch of ____."]);
    let blank = &v[0]["blanks"][0];
    assert_eq!(blank["candidates"][0]["text"], "salt");
    assert_eq!(blank["left_top_logprobs"][0]["token"], " salt");
    assert_eq!(blank["byte_offset"], 53);
    assert_eq!(
        v[0]["filled_text"],
        "The chef carefully seasoned the soup with a pinch of salt."
    );
}

#[test]
fn sentence_logprob_equals_score_of_the_filled_sentence_and_orders_candidates() {
    let cases = [
        (
            "The ____ barked at the mailman all morning.",
            "dog,cat,car,tree",
        ),
        (
            "She brushed her teeth with ____ before bed.",
            "toothpaste,soap,New York",
        ),
        ("[MASK] is the capital of France.", "Paris,London,Berlin"),
        (
            "In 1492, Columbus sailed across the ____ Ocean.",
            "Atlantic,Pacific,Indian",
        ),
    ];
    let mut checked = 0;
    for (text, cands) in cases {
        // Every source of candidates: the left context, the user, the model asked, the search.
        let v = fill(&[
            text,
            "--candidates",
            cands,
            "--n-candidates",
            "5",
            "--search",
            "40",
        ]);
        let blank = &v[0]["blanks"][0];
        let candidates = blank["candidates"].as_array().unwrap();
        let filled: Vec<String> = candidates
            .iter()
            .map(|c| {
                let b = logitscope::analysis::blanks::find_blanks(text)[0];
                format!(
                    "{}{}{}",
                    &text[..b.start],
                    c["text"].as_str().unwrap(),
                    &text[b.end..]
                )
            })
            .collect();
        let totals = score_totals(&filled);
        for (c, total) in candidates.iter().zip(&totals) {
            let s = c["sentence_logprob"].as_f64().unwrap();
            assert!(
                (s - total).abs() <= 1e-3,
                "{text} / {}: {s} vs score {total}",
                c["text"]
            );
            checked += 1;
        }
        for w in candidates.windows(2) {
            assert!(w[0]["sentence_logprob"].as_f64() >= w[1]["sentence_logprob"].as_f64());
            assert!(w[0]["posterior"].as_f64() >= w[1]["posterior"].as_f64());
        }
        let total_posterior: f64 = candidates
            .iter()
            .map(|c| c["posterior"].as_f64().unwrap())
            .sum();
        assert!((total_posterior - 1.0).abs() < 1e-9);
        for user in cands.split(',') {
            // A user candidate the left context already proposed is listed once.
            let listed = candidates.iter().filter(|c| c["text"] == user).count();
            assert_eq!(listed, 1, "{user} is listed {listed} times");
        }
    }
    assert!(checked >= 20);
}

#[test]
fn right_context_changes_the_winner() {
    let v = fill(&[
        "The ____ barked at the mailman all morning.",
        "--candidates",
        "dog,cat,car,tree",
        "--n-candidates",
        "0",
        "--search",
        "0",
        "--no-ask",
    ]);
    let candidates = v[0]["blanks"][0]["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 4);
    let by = |key: &str| {
        candidates
            .iter()
            .max_by(|a, b| {
                a[key]
                    .as_f64()
                    .unwrap()
                    .total_cmp(&b[key].as_f64().unwrap())
            })
            .unwrap()["text"]
            .clone()
    };
    assert_eq!(by("sentence_logprob"), "dog");
    assert_ne!(
        by("left_logprob"),
        "dog",
        "left context alone must prefer another word"
    );
    assert_eq!(candidates[0]["text"], "dog");
}

#[test]
fn several_blanks_are_filled_left_to_right() {
    let v = fill(&[
        "The ____ barked at the ____ all morning.",
        "--n-candidates",
        "8",
        "--search",
        "20",
    ]);
    let blanks = v[0]["blanks"].as_array().unwrap();
    assert_eq!(blanks.len(), 2);
    let first = blanks[0]["candidates"][0]["text"].as_str().unwrap();
    let second_text = blanks[1]["scored_text"].as_str().unwrap();
    assert!(
        second_text.starts_with(&format!("The {first} barked at the ")),
        "{second_text}"
    );
    assert!(v[0]["order"].as_str().unwrap().contains("left to right"));
    // The first blank was scored only up to the next blank.
    assert!(!blanks[0]["scored_text"]
        .as_str()
        .unwrap()
        .contains("morning"));
}

#[test]
fn degenerate_blanks_are_per_line_errors() {
    let model = common::model_arg();
    let many = "x ".to_owned() + &"____ ".repeat(1000);
    let input = format!("____\n{many}\nThe cat sat on the ____.\n");
    let out = common::run(
        &[
            "fill",
            "-m",
            &model,
            "--n-candidates",
            "3",
            "--search",
            "20",
        ],
        Some(input.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(1));
    let lines = common::json_lines(&out);
    assert_eq!(lines.len(), 3);
    // A lone blank has no left context, but the search still proposes words.
    assert!(!lines[0]["blanks"][0]["candidates"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(lines[1]["error"]
        .as_str()
        .unwrap()
        .contains("too many blanks"));
    assert!(!lines[2]["blanks"][0]["candidates"]
        .as_array()
        .unwrap()
        .is_empty());
}
