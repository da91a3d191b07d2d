//! The engine on the real model: prefix reuse decodes only the new tail, and the numbers of a
//! text never depend on how it was typed (bit for bit, |Δlogprob| ≤ 1e-6 asserted).
#![allow(clippy::unwrap_used)]

mod common;

use logitscope::engine::{plan_start, Evaluation, Model, ModelOptions, ViewOptions, MIN_DECODE};

fn model() -> Model {
    logitscope::logging::init_quiet();
    let options = ModelOptions {
        path: common::model_path(),
        n_gpu_layers: 0,
        ctx_size: 2048,
        threads: 2,
        flash_attn: false,
    };
    Model::load(&options, |_| true).unwrap()
}

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
        let ids =
            |r: &logitscope::stats::RowSummary| r.top.iter().map(|e| e.id).collect::<Vec<_>>();
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
            let expected = b.len() - plan_start(common, b.len());
            assert_eq!(inc.decoded, expected, "{where_} edit of {} tokens", a.len());
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
    logitscope::logging::init_quiet();
    let options = ModelOptions {
        path: common::model_path(),
        n_gpu_layers: 0,
        ctx_size: 64,
        threads: 2,
        flash_attn: false,
    };
    let model = Model::load(&options, |_| true).unwrap();
    let mut s = model.session().unwrap();
    let tokens = model.tokenize(&text_with_words(700));
    let ev = s
        .evaluate(&tokens, ViewOptions::default(), &|| false)
        .unwrap();
    assert_eq!(ev.tokens.len(), s.n_ctx());
    assert_eq!(ev.n_tokens_total, tokens.len());
    assert!(ev.truncated());
}
