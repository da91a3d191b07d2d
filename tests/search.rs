//! The vocabulary search for a blank, on the real model: exact (its top 10 equals brute force,
//! each word written into the blank and scored alone), anytime (it says how much it searched),
//! and it finds the words the left context alone ranks thousands deep.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::Value;

fn fill(args: &[&str]) -> Value {
    common::run_ok("fill", args).remove(0)
}

/// `score`'s total log-probability of each text (one process, texts on stdin).
use common::score_totals;

fn filled(text: &str, word: &str) -> String {
    text.replacen("____", word, 1)
}

#[test]
fn the_search_top_10_equals_brute_force_over_2000_words() {
    let model = common::load_model_with_ctx(512);
    let all = logitscope::analysis::search::whole_words(model.vocab(), true);
    drop(model);
    // Every 15th whole-word token (a spread of frequent and rare words), and the word the
    // sentence is about.
    let mut words: Vec<String> = all.iter().step_by(15).map(|w| w.text.clone()).collect();
    words.push("sun".into());
    assert!(words.len() >= 2000, "{}", words.len());
    let text = "The ____ rises in the east.";
    let v = common::search_words(&common::model_path(), text, &words);
    let blank = &v["blanks"][0];
    assert_eq!(blank["vocabulary_words"], words.len());
    assert_eq!(blank["searched"], words.len());
    assert_eq!(blank["search_complete"], true);
    let scored = blank["search_scored"].as_u64().unwrap() as usize;
    assert!(
        scored < words.len(),
        "the bound pruned nothing ({scored} of {} scored to the end)",
        words.len()
    );
    let got: Vec<(String, f64)> = blank["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["source"], "search");
            (
                c["text"].as_str().unwrap().to_owned(),
                c["sentence_logprob"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(got.len() >= 10, "{got:?}");

    let texts: Vec<String> = words.iter().map(|w| filled(text, w)).collect();
    let totals = score_totals(&texts);
    let mut brute: Vec<(String, f64)> = words.iter().cloned().zip(totals).collect();
    brute.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (i, ((gw, gs), (bw, bs))) in got.iter().zip(&brute).take(10).enumerate() {
        assert_eq!(
            gw,
            bw,
            "rank {}: search {got:?}\nbrute force {:?}",
            i + 1,
            &brute[..10]
        );
        assert!((gs - bs).abs() <= 1e-3, "{gw}: {gs} vs score {bs}");
    }
    eprintln!(
        "top 10 of {} words equal brute force; {} scored to the end, the rest ruled out",
        words.len(),
        scored
    );
}

#[test]
fn the_search_finds_sun_and_ranks_it_exactly() {
    let text = "The ____ rises in the east and sets in the west.";
    let v = fill(&[text]);
    let blank = &v["blanks"][0];
    let candidates = blank["candidates"].as_array().unwrap();
    assert_eq!(candidates[0]["text"], "sun", "{candidates:?}");
    assert_eq!(candidates[0]["source"], "search");
    let sun = candidates[0]["sentence_logprob"].as_f64().unwrap();
    let totals = score_totals(&[filled(text, "sun")]);
    assert!(
        (sun - totals[0]).abs() <= 1e-3,
        "{sun} vs score {}",
        totals[0]
    );
    for w in candidates.windows(2) {
        assert!(w[0]["sentence_logprob"].as_f64() >= w[1]["sentence_logprob"].as_f64());
    }
    // The left context alone ranks "sun" far down: the shortlist could not have found it.
    assert!(candidates[0]["left_rank"].as_u64().unwrap() > 50);
    assert!(blank["searched"].as_u64().unwrap() > 0);
    assert_eq!(blank["vocabulary_words"], 31_664);
    assert_eq!(blank["search_complete"], false);
}

#[test]
fn a_blank_at_the_very_start_gets_candidates() {
    let v = fill(&[
        "____ is the largest planet in our solar system.",
        "--search",
        "60",
    ]);
    let blank = &v["blanks"][0];
    assert_eq!(blank["left_top_logprobs"].as_array().unwrap().len(), 0);
    assert!(blank["left_entropy_bits"].is_null());
    let candidates = blank["candidates"].as_array().unwrap();
    assert!(!candidates.is_empty());
    eprintln!(
        "start blank: {:?}",
        candidates
            .iter()
            .take(5)
            .map(|c| c["text"].as_str().unwrap())
            .collect::<Vec<_>>()
    );
}
