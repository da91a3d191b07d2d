//! Reading aids on the real model: the watch-list (exact against full rows and against scoring
//! the extended text), words (sums and a partition of the bytes, hostile texts too), CSV.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::Value;

fn score(args: &[&str], texts: &[&str]) -> Vec<Value> {
    let all: Vec<&str> = args.iter().chain(texts).copied().collect();
    common::run_ok("score", &all)
}

const TEXTS: [&str; 3] = [
    "Yesterday the doctor said that she would call the nurse in Paris.",
    "The engineer told the assistant that he had fixed the bug.",
    "When the teacher arrived, the students stood up.",
];

/// One-token watched words: their probability and rank at every position equal what the
/// whole row says (`--n-probs` = the vocabulary: every token's log-probability).
#[test]
fn watched_words_equal_the_full_rows_at_every_position() {
    let watched = ["he", "she", "Paris", "nurse"];
    let list = watched.join(",");
    let with_watch = score(&["--watch", &list], &TEXTS);
    let full = score(&["--n-probs", "49152"], &TEXTS);
    let mut checked = 0;
    for (w, f) in with_watch.iter().zip(&full) {
        let positions = w["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .skip(1)
            .zip(f["tokens"].as_array().unwrap().iter().skip(1))
            .map(|(a, b)| (&a["watch"], &b["top_logprobs"]))
            .chain(std::iter::once((
                &w["next"]["watch"],
                &f["next"]["top_logprobs"],
            )));
        for (values, row) in positions {
            let row = row.as_array().unwrap();
            assert_eq!(row.len(), 49_152);
            for v in values.as_array().unwrap() {
                assert_eq!(v["tokens"], 1, "{v}");
                let token = format!(" {}", v["word"].as_str().unwrap());
                let (rank, e) = row
                    .iter()
                    .enumerate()
                    .find(|(_, e)| e["token"] == token.as_str())
                    .unwrap_or_else(|| panic!("{token} in the row"));
                assert_eq!(v["logprob"], e["logprob"], "{token}");
                assert_eq!(v["rank"].as_u64().unwrap() as usize, rank + 1, "{token}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 4 * 30, "{checked}");
}

/// A word of several tokens: the probability of the whole word as the continuation equals
/// the product of its tokens' conditional probabilities from scoring the extended text.
#[test]
fn a_multi_token_word_is_the_product_of_its_tokens() {
    let word = "Yogyakarta";
    let text = "Last summer we flew from Jakarta to";
    let v = score(&["--watch", word], &[text]);
    let tokens = v[0]["tokens"].as_array().unwrap();
    let mut checked = 0;
    // Positions where the text so far ends a word: the extended text is that prefix + " word".
    for (i, t) in tokens.iter().enumerate() {
        let prefix: String = tokens[..=i]
            .iter()
            .map(|t| t["token"].as_str().unwrap())
            .collect();
        let is_word_end = tokens
            .get(i + 1)
            .is_none_or(|n| n["token"].as_str().unwrap().starts_with(' '));
        if !is_word_end {
            continue;
        }
        let watch = if i + 1 == tokens.len() {
            &v[0]["next"]["watch"][0]
        } else {
            &tokens[i + 1]["watch"][0]
        };
        let _ = t;
        let k = watch["tokens"].as_u64().unwrap() as usize;
        assert!(k >= 2, "{word} is {k} tokens");
        let extended = score(&[], &[&format!("{prefix} {word}")]);
        let et = extended[0]["tokens"].as_array().unwrap();
        // The extended text is the prefix's tokens and then the word's.
        assert_eq!(et.len(), i + 1 + k, "{prefix} {word}");
        let want: f64 = et[i + 1..]
            .iter()
            .map(|t| t["logprob"].as_f64().unwrap())
            .sum();
        let got = watch["logprob"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-4,
            "after {prefix:?}: {got} vs {want}"
        );
        assert!(watch["rank"].is_null());
        checked += 1;
    }
    assert!(checked >= 5, "{checked}");
}

/// Words: their sums are the token sums, and every byte of the text belongs to exactly one
/// word — for ordinary and hostile texts (emoji, combining marks, CJK, byte pieces).
#[test]
fn words_partition_every_text_and_sum_its_tokens() {
    let mut texts: Vec<String> = TEXTS.iter().map(|s| (*s).to_owned()).collect();
    texts.extend(
        common::hostile_inputs()
            .into_iter()
            .filter(|(_, t)| !t.trim().is_empty() && t.len() < 10_000 && !t.contains('\n'))
            .map(|(_, t)| t),
    );
    // On stdin, one text per line (a NUL cannot be an argument).
    let model = common::model_arg();
    let input = texts.join("\n") + "\n";
    let run = common::run(&["score", "-m", &model, "--words"], Some(input.as_bytes()));
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = common::json_lines(&run);
    assert_eq!(out.len(), texts.len());
    for (text, line) in texts.iter().zip(&out) {
        let tokens = line["tokens"].as_array().unwrap();
        let bytes = common::token_bytes(line);
        let words = line["words"].as_array().unwrap();
        let (mut at, mut next) = (0, 0);
        let mut word_sum = 0.0;
        for w in words {
            assert_eq!(w["byte_start"].as_u64().unwrap() as usize, at, "{text:?}");
            assert_eq!(w["start"].as_u64().unwrap() as usize, next, "{text:?}");
            at = w["byte_end"].as_u64().unwrap() as usize;
            next = w["end"].as_u64().unwrap() as usize;
            let s = w["byte_start"].as_u64().unwrap() as usize;
            // No mojibake: a word's text is its bytes, whole characters.
            assert_eq!(
                w["text"].as_str().unwrap().as_bytes(),
                &bytes[s..at],
                "{text:?}"
            );
            word_sum += w["logprob"].as_f64().unwrap_or(0.0);
        }
        assert_eq!(at, bytes.len(), "{text:?}: every byte in a word");
        assert_eq!(next, tokens.len());
        let token_sum: f64 = tokens.iter().filter_map(|t| t["logprob"].as_f64()).sum();
        assert!((word_sum - token_sum).abs() <= 1e-9, "{text:?}");
        assert!((token_sum - line["total_logprob"].as_f64().unwrap()).abs() <= 1e-9);
    }
}

#[test]
fn csv_has_one_row_per_token_and_parses() {
    let model = common::model_arg();
    let out = common::run(
        &[
            "score",
            "-m",
            &model,
            "--format",
            "csv",
            "--watch",
            "he",
            "A \"quoted\", text",
            "",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "the empty line fails");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().unwrap().clone();
    assert_eq!(&header[0], "line");
    assert_eq!(&header[11], "watch:he");
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    let json = score(&[], &["A \"quoted\", text"]);
    let n = json[0]["tokens"].as_array().unwrap().len();
    assert_eq!(rows.len(), n + 1);
    assert_eq!(&rows[1][3], json[0]["tokens"][1]["token"].as_str().unwrap());
    assert!(rows[n][12].contains("empty"), "{:?}", rows[n]);
}
