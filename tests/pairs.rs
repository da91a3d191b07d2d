//! `logitscope pairs` on the real models: each total is `score`'s total for the same sentence,
//! bit for bit; the accuracy counts the pairs whose good sentence has the higher total; the
//! alignment marks exactly the differing tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

const PAIRS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pairs.tsv");

fn models() -> Vec<(String, std::path::PathBuf)> {
    let mut v = common::models::both();
    v.push(("SmolLM2 q4_k_m".into(), common::models::quant("q4_k_m")));
    v
}

#[test]
fn every_total_is_scores_total_and_the_accuracy_counts_the_good_ones() {
    let file = std::fs::read_to_string(PAIRS).unwrap();
    let pairs: Vec<(&str, &str)> = file
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c[0], c[1])
        })
        .collect();
    assert_eq!(pairs.len(), 24);
    for (name, path) in models() {
        let out = common::models::run_on(&path, "pairs", &[PAIRS], None);
        let (reports, summary) = out.split_at(out.len() - 1);
        assert_eq!(reports.len(), 24, "{name}");
        let sentences: String = pairs
            .iter()
            .flat_map(|(a, b)| [*a, *b])
            .map(|s| format!("{s}\n"))
            .collect();
        // One at a time, so that the pairs' side-by-side scoring is checked against it.
        let scored = common::models::run_on(&path, "score", &["--parallel", "1"], Some(&sentences));
        let mut good = 0;
        for (k, r) in reports.iter().enumerate() {
            let (sa, sb) = (&scored[2 * k], &scored[2 * k + 1]);
            assert_eq!(r["a"], pairs[k].0);
            assert_eq!(
                r["total_a"].to_string(),
                sa["total_logprob"].to_string(),
                "{name}: {}",
                pairs[k].0
            );
            assert_eq!(
                r["total_b"].to_string(),
                sb["total_logprob"].to_string(),
                "{name}: {}",
                pairs[k].1
            );
            assert_eq!(r["n_tokens_a"], sa["tokens"].as_array().unwrap().len());
            assert_eq!(r["n_scored_b"], sb["n_scored"]);
            let (ta, tb) = (
                sa["total_logprob"].as_f64().unwrap(),
                sb["total_logprob"].as_f64().unwrap(),
            );
            good += usize::from(ta > tb);
            let want = if ta > tb {
                "a"
            } else if tb > ta {
                "b"
            } else {
                "tie"
            };
            assert_eq!(r["prefers"], want, "{name}");
            assert_eq!(r["delta"].as_f64().unwrap(), tb - ta);
            // The aligned rows sum to the difference of the totals.
            let sum: f64 = r["aligned"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["delta"].as_f64().unwrap())
                .sum();
            assert!(
                (sum - (tb - ta)).abs() < 1e-9,
                "{name}: {sum} vs {}",
                tb - ta
            );
            assert!(!r["labels"][0].as_str().unwrap().is_empty());
        }
        let summary = &summary[0];
        assert_eq!(summary["summary"], true);
        assert_eq!(summary["pairs"], 24);
        assert_eq!(summary["correct"], good, "{name}");
        assert_eq!(summary["accuracy"].as_f64().unwrap(), good as f64 / 24.0);
        let by: usize = summary["by_label"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v["correct"].as_u64().unwrap() as usize)
            .sum();
        assert_eq!(by, good);
        assert_eq!(summary["by_label"].as_object().unwrap().len(), 5);
        eprintln!("{name}: {summary}");
    }
}

/// The tokens marked as differing in each sentence of a pair, joined.
fn marked(r: &Value) -> (String, String) {
    let mut a = String::new();
    let mut b = String::new();
    for row in r["aligned"].as_array().unwrap() {
        if row["differs"].as_bool().unwrap() {
            a.push_str(row["token_a"].as_str().unwrap_or(""));
            b.push_str(row["token_b"].as_str().unwrap_or(""));
        } else {
            assert_eq!(
                row["token_a"], row["token_b"],
                "a shared row holds the same token"
            );
        }
    }
    (a, b)
}

#[test]
fn the_alignment_marks_exactly_the_differing_tokens() {
    for (name, path) in models() {
        let input =
            "The keys to the cabinet are on the table.\tThe keys to the cabinet is on the table.\n\
                     She went to the store.\tShe quickly went to the store.\n\
                     The dog chased the cat.\tThe cat chased the dog.\n";
        let out = common::models::run_on(&path, "pairs", &[], Some(input));
        assert_eq!(marked(&out[0]), (" are".into(), " is".into()), "{name}");
        assert_eq!(
            marked(&out[1]),
            (String::new(), " quickly".into()),
            "{name}"
        );
        assert_eq!(
            marked(&out[2]),
            (" dog cat".into(), " cat dog".into()),
            "{name}"
        );
        // The changed word decides the first pair.
        let d = &out[0]["deciding"];
        let row = &out[0]["aligned"][d["row"].as_u64().unwrap() as usize];
        assert!(
            row["differs"].as_bool().unwrap() || d["row"].as_u64().unwrap() > 5,
            "{name}: {d}"
        );
    }
}

#[test]
fn options_reduce_bos_csv_and_errors() {
    let path = common::model_path();
    let input = "The cat sat on the mat.\tThe cat sat on mat the.\tword-order\n";
    let sum = &common::models::run_on(&path, "pairs", &[], Some(input))[0];
    let mean = &common::models::run_on(&path, "pairs", &["--reduce", "mean"], Some(input))[0];
    assert_eq!(mean["reduction"], "mean");
    assert_eq!(mean["total_a"], sum["total_a"]);
    let (ma, mb) = (
        mean["mean_a"].as_f64().unwrap(),
        mean["mean_b"].as_f64().unwrap(),
    );
    assert_eq!(mean["delta"].as_f64().unwrap(), mb - ma);
    // SmolLM2 adds no BOS: the first token is unscored unless --bos scores it from BOS.
    assert_eq!(
        sum["n_scored_a"].as_u64().unwrap() + 1,
        sum["n_tokens_a"].as_u64().unwrap()
    );
    let bos = &common::models::run_on(&path, "pairs", &["--bos"], Some(input))[0];
    assert_eq!(bos["n_scored_a"], bos["n_tokens_a"].as_u64().unwrap() - 1);
    assert_eq!(
        bos["n_tokens_a"].as_u64().unwrap(),
        sum["n_tokens_a"].as_u64().unwrap() + 1
    );
    assert!(bos["total_a"].as_f64().unwrap() < sum["total_a"].as_f64().unwrap());
    // Gemma 3 adds BOS itself: --bos changes nothing.
    let g = common::models::gemma3();
    let plain = common::models::run_on(&g, "pairs", &[], Some(input));
    let with = common::models::run_on(&g, "pairs", &["--bos"], Some(input));
    assert_eq!(plain, with);
    // CSV: a header and one row per pair; --summary alone: the per-label table.
    let m = common::model_arg();
    let out = common::run(
        &["pairs", "-m", &m, "--format", "csv"],
        Some(input.as_bytes()),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.starts_with("line,a,b,total_a"));
    let out = common::run(
        &["pairs", "-m", &m, "--format", "csv", "--summary"],
        Some(input.as_bytes()),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().collect::<Vec<_>>()[1].split(',').next(),
        Some("word-order"),
        "{text}"
    );
    // A line without a tab is an error line, the others go on; exit status 1.
    let out = common::run(
        &["pairs", "-m", &m],
        Some(b"no tab here\nA cat.\tA cats.\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    let lines = common::json_lines(&out);
    assert!(lines[0]["error"].as_str().unwrap().contains("tab"));
    assert!(lines[1]["prefers"].as_str().is_some());
    assert_eq!(lines[2]["failed"], 1);
    assert_eq!(lines[2]["pairs"], 1);
}
