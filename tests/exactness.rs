//! Exact on every model: several sequences in one decode give, bit for bit, what one sequence
//! at a time gives, and both are llama.cpp's numbers — on the default model (llama, Q4_1), on
//! Gemma 3 (sliding-window attention, BOS, Q4_K_M) and on the default model in six K-quants.
//! What used to differ (Q4_K rows through a 4-row gemm or a gemv by their place in a decode,
//! the tiled K-quant kernel from 8 rows on) is pinned in `model::kernels`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::models::{self, run_on};

/// Lines of 1 to 130 tokens beside the reference sentences: chunks padded to equal length.
fn lines() -> String {
    let words: Vec<&str> = "the chef seasoned a soup with salt while rain fell on the old town \
        and a cat watched people hurry home with bread as a bell rang twice"
        .split(' ')
        .collect();
    let mut out = common::sentences_file();
    for (i, n) in [1usize, 3, 7, 17, 40, 130].iter().enumerate() {
        let line: Vec<&str> = (0..*n).map(|k| words[(k * 7 + i) % words.len()]).collect();
        out.push_str(&line.join(" "));
        out.push('\n');
    }
    out
}

fn score_raw(model: &Path, args: &[&str], input: &str) -> Vec<u8> {
    let m = model.to_string_lossy().into_owned();
    let mut all = vec!["score", "-m", &m];
    all.extend_from_slice(args);
    let out = common::run(&all, Some(input.as_bytes()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn side_by_side_equals_one_at_a_time_bit_for_bit_on_every_model() {
    let input = lines();
    for (name, path) in models::all() {
        let alone = score_raw(&path, &["--parallel", "1"], &input);
        let side = score_raw(&path, &["--parallel", "8"], &input);
        assert_eq!(
            String::from_utf8_lossy(&alone).lines().count(),
            input.lines().count()
        );
        assert!(
            alone == side,
            "{name}: side by side differs from one at a time:\n{}\n---\n{}",
            String::from_utf8_lossy(&alone),
            String::from_utf8_lossy(&side)
        );
        // The self-check passed: nothing fell back.
        assert!(
            !String::from_utf8_lossy(&side).contains("\"batching\""),
            "{name}: the layout self-check failed"
        );
        eprintln!(
            "{name}: {} lines, side by side = one at a time",
            input.lines().count()
        );
    }
}

/// `score` against the independent references (examples/reference.rs for Gemma 3; see
/// tests/fixtures/README.md): |Δp| ≤ 1e-6 on every scored token and top-10 entry.
#[test]
fn both_models_match_their_independent_references_within_1e_6() {
    for (model, fixture) in [
        (common::model_path(), "reference-exact.json"),
        (models::gemma3(), "reference-gemma3-exact.json"),
    ] {
        let reference = common::fixture(fixture);
        let ours = run_on(&model, "score", &[], Some(&common::sentences_file()));
        let sentences = reference["sentences"].as_array().unwrap();
        assert_eq!(ours.len(), sentences.len());
        let (mut worst, mut checked) = (0f64, 0);
        for (line, s) in ours.iter().zip(sentences) {
            let tokens = line["tokens"].as_array().unwrap();
            assert_eq!(
                common::ids(&line["tokens"]),
                common::ids(&s["tokens"]),
                "{fixture}: tokens of {}",
                s["text"]
            );
            for (j, t) in tokens.iter().enumerate().skip(1) {
                let pos = &s["positions"][j - 1];
                let dp = (t["prob"].as_f64().unwrap() - pos["next"]["p"].as_f64().unwrap()).abs();
                worst = worst.max(dp);
                assert_eq!(
                    t["rank"], pos["next"]["rank"],
                    "{fixture}: rank of token {j}"
                );
                assert_eq!(
                    common::ids(&t["top_logprobs"]),
                    common::ids(&pos["top"]),
                    "{fixture}: top 10 at token {j}"
                );
                for (e, r) in t["top_logprobs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(pos["top"].as_array().unwrap())
                {
                    let dp =
                        (e["logprob"].as_f64().unwrap().exp() - r["p"].as_f64().unwrap()).abs();
                    worst = worst.max(dp);
                }
                let dh = (t["entropy_bits"].as_f64().unwrap()
                    - pos["entropy_bits"].as_f64().unwrap())
                .abs();
                assert!(dh <= 1e-5, "{fixture}: entropy at token {j}: {dh}");
                checked += 1;
            }
        }
        eprintln!("{fixture}: max |Δp| {worst:.2e} over {checked} tokens");
        assert!(worst <= 1e-6, "{fixture}: max |Δp| {worst}");
        assert!(checked >= 60);
    }
}

/// Every fill-in candidate's `sentence_logprob` is `score`'s total of the filled text.
#[test]
fn fill_candidates_equal_score_totals_on_every_model() {
    let texts = [
        "The chef carefully seasoned the soup with a pinch of ____.",
        "The capital of France is ____, and Berlin is the capital of Germany.",
        "She opened the ____ and walked out into the rain.",
    ];
    for (name, path) in models::all() {
        let mut filled = Vec::new();
        let mut claimed = Vec::new();
        // The three texts in one process, eight shortlist candidates each (every candidate is
        // scored the same way: the default 50 made this test 234 s of CI for no other case).
        let mut args = texts.to_vec();
        args.extend(["--search", "0", "--no-ask", "--n-candidates", "8"]);
        let reports = run_on(&path, "fill", &args, None);
        assert_eq!(reports.len(), texts.len(), "{name}");
        for (text, report) in texts.iter().zip(&reports) {
            assert!(report.get("batching").is_none(), "{name}: fell back");
            for c in report["blanks"][0]["candidates"].as_array().unwrap() {
                filled.push(text.replacen("____", c["text"].as_str().unwrap(), 1));
                claimed.push(c["sentence_logprob"].as_f64().unwrap());
            }
        }
        assert!(filled.len() >= 3 * 5, "{name}: {} candidates", filled.len());
        let input = filled.join("\n") + "\n";
        let scored = run_on(&path, "score", &["--parallel", "1"], Some(&input));
        let mut worst = 0f64;
        for ((text, claim), line) in filled.iter().zip(&claimed).zip(&scored) {
            let total = line["total_logprob"].as_f64().unwrap();
            worst = worst.max((claim - total).abs());
            assert!(
                (claim - total).abs() <= 1e-6,
                "{name}: {text}: fill {claim} vs score {total}"
            );
        }
        eprintln!("{name}: {} candidates, max |Δ| {worst:.1e}", filled.len());
    }
}

/// The vocabulary search's top 10 equals brute force (every word written into the blank and
/// scored by `score`) on Gemma 3 (the K-quant family; SmolLM2 Q4_1, the other model and quant
/// family, has its 2,000 spread words in tests/search.rs) and on the default model's Q4_K_M:
/// over 700 and 300 words spread over the vocabulary plus the whole words among each model's
/// 150 most likely tokens at the blank (the near ties, where a wrong bound would show). The
/// brute force is 97 % of this test's time (the search itself 1-2 s): Gemma's 2,000 spread
/// words were 377 s of a CI run, and what they added beyond 700 was more words far below the
/// top 10 that the first bound rules out. What the K-quant adds, fan-outs bit for bit as each
/// word alone on it, is proven directly in tests/search.rs
/// (`shared_prefix_bounds_equal_each_word_alone_bit_for_bit`).
#[test]
fn the_search_top_10_equals_brute_force_on_both_models_and_a_k_quant() {
    // A blank near the end: every word is scored in fan-outs over the shared prefix.
    let text = "She keeps her old letters in a wooden ____.";
    for (name, path, spread) in [
        ("SmolLM2 q4_k_m".to_owned(), models::quant("q4_k_m"), 300),
        ("Gemma 3 Q4_K_M".to_owned(), models::gemma3(), 700),
    ] {
        let words = common::brute_force_words(&path, text, spread, 150);
        assert!(words.len() >= spread + 30, "{name}: {}", words.len());
        let v = common::search_words(&path, text, &words);
        let blank = &v["blanks"][0];
        assert_eq!(blank["search_complete"], true, "{name}");
        assert_eq!(blank["searched"], words.len(), "{name}");
        assert_eq!(blank["search_first_bounds"], "shared prefix", "{name}");
        let got: Vec<(String, f64)> = blank["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["text"].as_str().unwrap().to_owned(),
                    c["sentence_logprob"].as_f64().unwrap(),
                )
            })
            .collect();
        let input = words
            .iter()
            .map(|w| text.replacen("____", w, 1))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        let totals: Vec<f64> = run_on(&path, "score", &[], Some(&input))
            .iter()
            .map(|l| l["total_logprob"].as_f64().unwrap())
            .collect();
        let mut brute: Vec<(String, f64)> = words.iter().cloned().zip(totals).collect();
        brute.sort_by(|a, b| b.1.total_cmp(&a.1));
        assert!(got.len() >= 10, "{name}: {got:?}");
        for (i, ((gw, gs), (bw, bs))) in got.iter().zip(&brute).take(10).enumerate() {
            assert_eq!(
                gw,
                bw,
                "{name}: rank {}: search {got:?}\nbrute force {:?}",
                i + 1,
                &brute[..10]
            );
            assert!((gs - bs).abs() <= 1e-6, "{name}: {gw}: {gs} vs score {bs}");
        }
        eprintln!(
            "{name}: top 10 of {} words equal brute force ({} scored to the end)",
            words.len(),
            blank["search_scored"]
        );
    }
}

/// The logit lens's last layer is the distribution shown, within the lens's tolerance, on
/// both models (Gemma 3's scaled embeddings, extra norms and tied output included).
#[test]
fn the_lens_last_layer_equals_the_shown_distribution_on_both_models() {
    for (name, path) in models::both() {
        // Computed once: tests/intervene.rs compares its ablations with the same run.
        let out = models::run_on_once(
            &path,
            "score",
            &["--layers"],
            Some(&common::sentences_file()),
        );
        let mut checked = 0;
        for line in &out {
            let lens = &line["lens"];
            assert_eq!(lens["available"], true, "{name}: {lens}");
            assert!(
                lens["max_abs_dp"].as_f64().unwrap() <= 1e-4,
                "{name}: {lens}"
            );
            assert!(
                lens["max_abs_dp_shown"].as_f64().unwrap() <= 1e-4,
                "{name}: {lens}"
            );
            let n_layer = lens["n_layer"].as_u64().unwrap() as usize;
            for t in line["tokens"].as_array().unwrap().iter().skip(1) {
                let layers = t["layers"].as_array().unwrap();
                assert_eq!(layers.len(), n_layer);
                let last = &layers[n_layer - 1];
                let (a, b) = (
                    last["logprob"].as_f64().unwrap(),
                    t["logprob"].as_f64().unwrap(),
                );
                assert!((a.exp() - b.exp()).abs() <= 1e-4, "{name}: {a} vs {b}");
                checked += 1;
            }
        }
        assert!(checked >= 60, "{name}: {checked}");
    }
}

/// A text typed character by character, and edits at its start, middle and end, give the
/// numbers of a fresh evaluation, on Q4_K_M models too: a keystroke's decode takes the same
/// kernel path as a whole-text decode.
#[test]
fn typing_history_never_changes_a_number_on_k_quants() {
    use logitscope::analysis::stats::ViewOptions;
    let view = ViewOptions {
        temp: 1.0,
        n_probs: 5,
    };
    for (name, path) in [
        ("Gemma 3 Q4_K_M".to_owned(), models::gemma3()),
        ("SmolLM2 q4_k_m".to_owned(), models::quant("q4_k_m")),
        ("SmolLM2 q3_k_m".to_owned(), models::quant("q3_k_m")),
    ] {
        let model = models::load(&path, 1024);
        let mut typed = model.session().unwrap();
        let mut fresh = model.session().unwrap();
        let text = "The chef carefully seasoned the soup with a pinch of salt, and the guests \
            at the long table by the window asked for more bread.";
        let mut last = None;
        for end in (1..=text.len()).filter(|&e| text.is_char_boundary(e)) {
            let tokens = model.tokenize(&text[..end]);
            if !tokens.is_empty() {
                last = Some(typed.evaluate(&tokens, view, &|| false).unwrap());
            }
        }
        let whole = fresh
            .evaluate(&model.tokenize(text), view, &|| false)
            .unwrap();
        assert_eq!(
            last.unwrap().rows,
            whole.rows,
            "{name}: typed one character at a time"
        );
        let mid = text[..text.len() / 2].rfind(' ').unwrap();
        for edited in [
            format!("Yesterday {text}"),
            format!("{} quietly{}", &text[..mid], &text[mid..]),
            format!("{text} Then it rained."),
        ] {
            typed
                .evaluate(&model.tokenize(text), view, &|| false)
                .unwrap();
            let inc = typed
                .evaluate(&model.tokenize(&edited), view, &|| false)
                .unwrap();
            fresh.reset();
            let whole = fresh
                .evaluate(&model.tokenize(&edited), view, &|| false)
                .unwrap();
            assert!(inc.decoded <= whole.decoded);
            assert_eq!(inc.rows, whole.rows, "{name}: {edited}");
        }
        // The self-check agrees (it ran for the prefix reuse above).
        let layout = model.layout();
        assert!(
            layout.incremental_exact() && layout.side_by_side_exact(),
            "{name}: {layout:?}"
        );
    }
}

/// A model compared with itself differs by exactly nothing; watched words equal the rows;
/// words sum to their tokens — on Gemma 3 as on the default model (tests/compare.rs,
/// tests/reading.rs).
#[test]
fn compare_watch_and_words_hold_on_gemma() {
    let g = models::gemma3();
    let gs = g.to_string_lossy().into_owned();
    let input = common::sentences_file();
    for line in run_on(&g, "score", &["--vs", &gs], Some(&input)) {
        let c = &line["compare"];
        assert_eq!(c["mean_kl_bits"], 0.0);
        assert_eq!(c["max_kl_bits"], 0.0);
        assert_eq!(c["top1_changes"], 0);
        assert_eq!(c["delta_total_logprob"], 0.0);
    }
    // Watched one-token words against the top 2,000 of each row, where they are in it.
    let watched = run_on(
        &g,
        "score",
        &["--watch", "he,she,the,soup", "--words"],
        Some(&input),
    );
    let rows = run_on(&g, "score", &["--n-probs", "2000"], Some(&input));
    let mut checked = 0;
    for (w, r) in watched.iter().zip(&rows) {
        for (a, b) in w["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .zip(r["tokens"].as_array().unwrap())
            .skip(1)
        {
            let row = b["top_logprobs"].as_array().unwrap();
            for v in a["watch"].as_array().unwrap() {
                let token = format!(" {}", v["word"].as_str().unwrap());
                if let Some((rank, e)) = row
                    .iter()
                    .enumerate()
                    .find(|(_, e)| e["token"] == token.as_str())
                {
                    assert_eq!(v["logprob"], e["logprob"], "{token}");
                    assert_eq!(v["rank"].as_u64().unwrap() as usize, rank + 1, "{token}");
                    checked += 1;
                }
            }
        }
        let token_sum: f64 = w["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["logprob"].as_f64())
            .sum();
        let word_sum: f64 = w["words"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["logprob"].as_f64())
            .sum();
        assert!((word_sum - token_sum).abs() <= 1e-9);
    }
    assert!(checked >= 100, "{checked}");
}
