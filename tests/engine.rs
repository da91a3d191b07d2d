//! The engine on the real model: prefix reuse decodes only the new tail, and the numbers of a
//! text never depend on how it was typed (bit for bit, |Δlogprob| ≤ 1e-6 asserted).
#![allow(clippy::unwrap_used)]

mod common;

use logitscope::analysis::stats::ViewOptions;
use logitscope::model::{Evaluation, ModelOptions, MIN_DECODE};

use common::load_model as model;

const WORDS: &str = "the chef carefully seasoned a pot of soup with salt while rain fell on the \
    old town and a cat watched people hurry home with bread under their arms as a bell rang";

fn text_with_words(n: usize) -> String {
    WORDS
        .split(' ')
        .cycle()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

fn assert_same(a: &Evaluation, b: &Evaluation, what: &str) {
    assert_eq!(a.tokens, b.tokens, "{what}");
    assert_eq!(a.rows.len(), b.rows.len(), "{what}");
    for (i, (x, y)) in a.rows.iter().zip(&b.rows).enumerate() {
        let (tx, ty) = (
            x.target.map(|t| (t.id, t.logprob, t.rank)),
            y.target.map(|t| (t.id, t.logprob, t.rank)),
        );
        match (tx, ty) {
            (Some((ix, lx, rx)), Some((iy, ly, ry))) => {
                assert_eq!((ix, rx), (iy, ry), "{what}: row {i}");
                assert!(
                    (lx - ly).abs() <= 1e-6,
                    "{what}: row {i}: logprob {lx} vs {ly}"
                );
            }
            (None, None) => {}
            _ => panic!("{what}: row {i}: target presence differs"),
        }
        assert!(
            (x.entropy_bits - y.entropy_bits).abs() <= 1e-6,
            "{what}: row {i} entropy"
        );
        let ids = |r: &logitscope::analysis::stats::RowSummary| {
            r.top.iter().map(|e| e.id).collect::<Vec<_>>()
        };
        assert_eq!(ids(x), ids(y), "{what}: row {i} top-k");
        for (ex, ey) in x.top.iter().zip(&y.top) {
            assert!(
                (ex.logprob - ey.logprob).abs() <= 1e-6,
                "{what}: row {i} top logprob"
            );
        }
    }
}

#[test]
fn prefix_reuse_decodes_only_the_tail_and_matches_a_fresh_evaluation() {
    let model = model();
    let mut typed = model.session().unwrap();
    let mut fresh = model.session().unwrap();
    let view = ViewOptions::default();
    let never = || false;
    let mut report = Vec::new();
    for n_words in [4usize, 20, 90, 598] {
        let base = text_with_words(n_words);
        let mid = base.len() / 2;
        let mid = base[..mid].rfind(' ').unwrap_or(0);
        let edits = [
            ("end", format!("{base} tonight")),
            (
                "middle",
                format!("{} quietly{}", &base[..mid], &base[mid..]),
            ),
            ("start", format!("Yesterday {base}")),
        ];
        for (where_, edited) in edits {
            let a = model.tokenize(&base);
            let b = model.tokenize(&edited);
            typed.evaluate(&a, view, &never).unwrap();
            let inc = typed.evaluate(&b, view, &never).unwrap();
            fresh.reset();
            let whole = fresh.evaluate(&b, view, &never).unwrap();
            assert_eq!(whole.decoded, b.len());
            let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
            // Bounds from the contract, not from the planner: every token from the first
            // change on is decoded, plus the last cached one (its row needs the new target),
            // and a decode is never shorter than MIN_DECODE tokens (or the whole text).
            let at_least = (b.len() - common + 1).min(b.len());
            let at_most = (b.len() - common + 1).max(MIN_DECODE.min(b.len()));
            assert!(
                (at_least..=at_most).contains(&inc.decoded),
                "{where_} edit of {} tokens: decoded {}, expected {at_least}..={at_most}",
                a.len(),
                inc.decoded
            );
            if where_ == "end" && b.len() > 2 * MIN_DECODE {
                assert!(
                    inc.decoded <= b.len() - common + MIN_DECODE,
                    "decoded {}",
                    inc.decoded
                );
                assert!(
                    inc.decoded < b.len() / 2,
                    "reuse must skip most of a long text"
                );
            }
            assert_same(
                &inc,
                &whole,
                &format!("{where_} edit of {} tokens", a.len()),
            );
            report.push(format!("{}+{where_}: {}/{}", a.len(), inc.decoded, b.len()));
        }
    }
    eprintln!("decoded/total per edit: {}", report.join(", "));
}

#[test]
fn typing_character_by_character_gives_the_whole_text_numbers() {
    let model = model();
    let mut typed = model.session().unwrap();
    let mut fresh = model.session().unwrap();
    let view = ViewOptions {
        temp: 0.7,
        n_probs: 5,
    };
    let text = "The chef carefully seasoned the soup with a pinch of salt.";
    let mut last = None;
    for end in 1..=text.len() {
        let tokens = model.tokenize(&text[..end]);
        if tokens.is_empty() {
            continue;
        }
        last = Some(typed.evaluate(&tokens, view, &|| false).unwrap());
    }
    let whole = fresh
        .evaluate(&model.tokenize(text), view, &|| false)
        .unwrap();
    assert_same(&last.unwrap(), &whole, "typed one character at a time");
}

#[test]
fn a_cancelled_evaluation_leaves_a_usable_cache() {
    let model = model();
    let mut s = model.session().unwrap();
    let view = ViewOptions::default();
    let tokens = model.tokenize(&text_with_words(400));
    assert!(tokens.len() > 300);
    let ev = s.evaluate(&tokens, view, &|| true).unwrap();
    assert!(ev.cancelled);
    assert!(ev.decoded < tokens.len());
    let done = s.evaluate(&tokens, view, &|| false).unwrap();
    assert!(!done.cancelled);
    let mut fresh = model.session().unwrap();
    assert_same(
        &done,
        &fresh.evaluate(&tokens, view, &|| false).unwrap(),
        "after cancel",
    );
}

#[test]
fn text_longer_than_the_context_is_truncated_not_aborted() {
    let model = common::load_model_with_ctx(64);
    let mut s = model.session().unwrap();
    let tokens = model.tokenize(&text_with_words(700));
    let ev = s
        .evaluate(&tokens, ViewOptions::default(), &|| false)
        .unwrap();
    assert_eq!(ev.tokens.len(), s.n_ctx());
    assert_eq!(ev.n_tokens_total, tokens.len());
    assert!(ev.truncated());
}

/// Candidate scoring gives every sequence the numbers `evaluate` gives it alone, both with
/// several sequences side by side (one KV-cache stream each, the prefix decoded once and
/// copied) and with one stream (one tail at a time): tails of equal length share a batch,
/// short tails re-decode the end of the prefix, texts shorter than MIN_DECODE still share
/// theirs, and a tail longer than a wave is decoded in chunks.
#[test]
fn batched_sequences_match_one_evaluation_each() {
    let model = model();
    let view = ViewOptions {
        temp: 1.0,
        n_probs: 5,
    };
    let prefix = text_with_words(60);
    let texts: Vec<String> = [
        " salt and pepper.",
        " bread.",
        " bread!",
        " rain on the roofs of the town.",
        " a cat that watched.",
        " a dog that barked.",
        " a bell rang and the chef looked up from the pot.",
        " it.",
    ]
    .iter()
    .map(|tail| format!("{prefix}{tail}"))
    .collect();
    let short = |w: &str| model.tokenize(&format!("A pinch of {w}."));
    let sets: Vec<Vec<Vec<u32>>> = vec![
        // A shared prefix of ≈ 60 tokens: decoded once, the tails side by side.
        texts.iter().map(|t| model.tokenize(t)).collect(),
        // Short texts that differ near the end (a fill-in at the end of a short sentence).
        [
            "salt",
            "sugar",
            "pepper",
            "toothpaste",
            "saffron",
            "New York",
        ]
        .iter()
        .map(|w| short(w))
        .collect(),
        // Nothing shared: a short text, and a tail longer than a wave.
        vec![
            model.tokenize("A short one."),
            model.tokenize(&texts[1]),
            model.tokenize(&text_with_words(620)),
        ],
    ];
    let lens: Vec<usize> = sets[0].iter().map(Vec::len).collect();
    assert!(
        lens.iter()
            .any(|&l| lens.iter().filter(|&&m| m == l).count() > 1),
        "some tails of equal length share a batch: {lens:?}"
    );
    let max_len = sets.iter().flatten().map(Vec::len).max().unwrap();
    let (streams, per_seq) = logitscope::engine::fill::batch_shape(max_len, 2048).unwrap();
    assert!(streams > 2, "{streams} streams");
    let mut main = model.session().unwrap();
    let mut alone = |seq: &[u32]| -> Vec<f64> {
        main.reset();
        let ev = main.evaluate(seq, view, &|| false).unwrap();
        ev.rows[..seq.len() - 1]
            .iter()
            .map(|r| r.target.unwrap().logprob)
            .collect()
    };
    let want: Vec<Vec<Vec<f64>>> = sets
        .iter()
        .map(|set| set.iter().map(|s| alone(s)).collect())
        .collect();

    // Many streams (tails side by side), and the fewest: the prefix and one slot.
    for streams in [streams, 2] {
        let mut batch = model.batch_session(streams as u32, per_seq as u32).unwrap();
        assert_eq!(batch.n_seq(), streams);
        let mut worst = 0f64;
        for (set, want) in sets.iter().zip(&want) {
            let mut steps = 0;
            let out = logitscope::engine::sequence_logprobs(
                &mut batch,
                set,
                view.temp,
                &|| false,
                &mut |_, _| steps += 1,
            )
            .unwrap()
            .unwrap();
            assert!(steps > 1, "progress reported");
            for (s, (got, want)) in out.iter().zip(want).enumerate() {
                assert_eq!(got.len(), want.len() + 1);
                assert_eq!(got[0], None);
                for (j, (g, w)) in got[1..].iter().zip(want).enumerate() {
                    let g = g.unwrap();
                    worst = worst.max((g - w).abs());
                    assert!(
                        (g - w).abs() <= 1e-4,
                        "{streams} streams, text {s} token {}: batched {g} vs alone {w}",
                        j + 1
                    );
                }
            }
        }
        eprintln!("{streams} streams: worst |Δlogprob| vs one evaluation each: {worst:e}");

        // Cancelled part-way (after the first wave): nothing returned, the session still exact.
        let steps = std::cell::Cell::new(0);
        let cancelled = logitscope::engine::sequence_logprobs(
            &mut batch,
            &sets[0],
            view.temp,
            &|| steps.get() >= 2,
            &mut |_, _| steps.set(steps.get() + 1),
        )
        .unwrap();
        assert!(cancelled.is_none());
        let after = logitscope::engine::sequence_logprobs(
            &mut batch,
            &sets[0],
            view.temp,
            &|| false,
            &mut |_, _| {},
        )
        .unwrap()
        .unwrap();
        for (got, want) in after.iter().zip(&want[0]) {
            for (g, w) in got[1..].iter().zip(want) {
                assert!((g.unwrap() - w).abs() <= 1e-4);
            }
        }
    }
}

/// Defect: the cause of a failed load was read from one global "last llama.cpp error", which
/// races when two models load at once (the comparison of two models does). Each load now
/// carries the error lines its own thread logged.
#[test]
fn two_loads_failing_at_once_each_carry_their_own_cause() {
    logitscope::support::logging::init_quiet();
    let dir = tempfile::tempdir().unwrap();
    let handles: Vec<_> = ["firstarch", "secondarch"]
        .into_iter()
        .map(|arch| {
            let path = dir.path().join(format!("{arch}.gguf"));
            std::fs::write(
                &path,
                common::synth::synthetic_gguf(arch, &[("output.weight", &[64, 8], 0)]),
            )
            .unwrap();
            std::thread::spawn(move || {
                (0..20)
                    .map(|_| {
                        let options = ModelOptions {
                            path: path.clone(),
                            n_gpu_layers: 0,
                            ctx_size: 256,
                            threads: 1,
                            flash_attn: false,
                            rpc: Vec::new(),
                        };
                        match logitscope::model::load(&options, |_| true) {
                            Ok(_) => panic!("{arch} loaded"),
                            Err(e) => (arch, e.to_string()),
                        }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        for (arch, error) in h.join().unwrap() {
            assert!(
                error.ends_with(&format!("unknown model architecture: '{arch}'")),
                "{arch}: {error}"
            );
        }
    }
}
