//! One hooked decode, many readers (`model::readers`): the lens, attention and attribution
//! made on one shared decode read a text from one decode of it, and every number they give
//! equals, bit for bit, what each gives from a decode of its own, on both test models, for
//! sentences and for a text longer than the lens covers (the decode then spans attention's
//! 1,024 tokens, the lens reads its first 512).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use logitscope::engine::attention::Attentions;
use logitscope::engine::attribution::{Attributions, Target};
use logitscope::engine::lens::Lenses;
use logitscope::model::attention::Keep;
use logitscope::model::lens::Lens;
use logitscope::model::readers::Shared;
use logitscope::model::Model;

/// Everything the three readers say of `tokens` at `positions`, as comparable values.
#[derive(Debug, PartialEq)]
struct Said {
    /// Per position and layer: the lens's logits' bits.
    lens: Vec<Vec<Vec<u32>>>,
    check: Option<u64>,
    /// The attention map: tokens, every digested row's top weights (bits) and sums.
    attention: (Vec<u32>, Vec<Vec<(u32, u64)>>),
    /// Per position: each part's value (bits), the sum, llama.cpp's logit, the rounding.
    attribution: Vec<Vec<u64>>,
}

fn read(
    lens: &mut Lens<'_>,
    attentions: &mut Attentions<'_>,
    attributions: &mut Attributions<'_>,
    tokens: &[u32],
    positions: &[usize],
) -> Said {
    let n_layer = lens.facts().n_layer;
    let covered = lens.run(tokens, 1.0).unwrap();
    let lens_rows = positions
        .iter()
        .filter(|&&p| p < covered)
        .map(|&p| {
            (0..n_layer)
                .map(|l| {
                    let z = lens.logits(l, p).unwrap();
                    z.iter().map(|x| x.to_bits()).collect()
                })
                .collect()
        })
        .collect();
    let map = attentions
        .map(tokens, 3, Keep::Positions(Vec::new()))
        .unwrap()
        .unwrap();
    let f = map.facts.clone();
    let mut rows = Vec::new();
    for &p in positions.iter().filter(|&&p| p < map.len()) {
        for layer in 0..f.n_layer {
            for head in 0..f.n_head {
                let r = map.row(layer, p, head).unwrap();
                let mut v: Vec<(u32, u64)> = r
                    .top
                    .iter()
                    .map(|&(j, w)| (j, u64::from(w.to_bits())))
                    .collect();
                v.push((u32::MAX, r.sum.to_bits()));
                rows.push(v);
            }
        }
    }
    let attention = (map.tokens.clone(), rows);
    let (status, splits) = attributions
        .split(tokens, positions, Target::Actual, &|_| Some(0))
        .unwrap();
    assert!(status.available, "{status:?}");
    let attribution = splits
        .iter()
        .flatten()
        .map(|a| {
            let mut v: Vec<u64> = a.parts.iter().map(|p| p.value.to_bits()).collect();
            v.extend([
                a.sum.to_bits(),
                u64::from(a.llama.to_bits()),
                a.rounding.to_bits(),
                a.logit_f64.to_bits(),
            ]);
            v
        })
        .collect();
    Said {
        lens: lens_rows,
        check: lens.check().map(f64::to_bits),
        attention,
        attribution,
    }
}

/// Readers on one shared decode, and readers each with a decode of its own.
fn both_ways(model: &Model, texts: &[Vec<u32>], positions: &dyn Fn(usize) -> Vec<usize>) {
    let probe = Shared::new(model);
    let mut shared = (
        Lens::on(&probe).unwrap(),
        Attentions::on(&probe),
        Attributions::on(&probe),
    );
    shared.1.join(3);
    shared.2.join();
    let mut own = (
        Lens::new(model).unwrap(),
        Attentions::new(model),
        Attributions::new(model),
    );
    for tokens in texts {
        let before = probe.decodes();
        let ps = positions(tokens.len());
        let a = read(&mut shared.0, &mut shared.1, &mut shared.2, tokens, &ps);
        assert_eq!(
            probe.decodes(),
            before + 1,
            "the lens, attention and attribution of one text are one decode"
        );
        let b = read(&mut own.0, &mut own.1, &mut own.2, tokens, &ps);
        assert!(!a.lens.is_empty() && !a.attention.1.is_empty() && !a.attribution.is_empty());
        assert_eq!(
            a,
            b,
            "{} tokens: shared and separate decodes differ",
            tokens.len()
        );
        // Asked again, nothing is decoded again for the lens and attribution.
        let before = probe.decodes();
        shared.0.run(tokens, 1.0).unwrap();
        let ps1 = [ps[0]];
        shared
            .2
            .split(tokens, &ps1, Target::Actual, &|_| Some(0))
            .unwrap();
        assert_eq!(probe.decodes(), before);
    }
}

#[test]
fn one_decode_serves_every_reader_with_the_numbers_of_its_own() {
    for (name, path) in common::models::both() {
        let model = common::models::load(&path, 2048);
        let texts: Vec<Vec<u32>> = common::sentences()
            .iter()
            .take(4)
            .map(|t| model.tokenize(t))
            .collect();
        eprintln!("{name}");
        both_ways(&model, &texts, &|n| (0..n).collect());
    }
}

#[test]
fn a_long_text_reads_the_same_where_each_reader_stops() {
    let model = common::load_model();
    let base = common::sentences().join(" ");
    let mut text = String::new();
    while model.tokenize(&text).len() < 700 {
        text.push_str(&base);
        text.push(' ');
    }
    let tokens = model.tokenize(&text);
    // Around the lens's and attribution's 512 and further, where only attention reads.
    both_ways(&model, &[tokens], &|_| vec![0, 300, 510, 511, 600]);
}

/// The explorer's readers join when first asked: a second reader joining makes the next
/// text's decode read for both, and what the first read stays exact.
#[test]
fn a_reader_joining_later_shares_the_next_decode() {
    let model = common::load_model();
    let probe = Shared::new(&model);
    let mut lenses = Lenses::on(&probe);
    let mut attentions = Attentions::on(&probe);
    let sentences = common::sentences();
    let t1 = model.tokenize(&sentences[0]);
    let t2 = model.tokenize(&sentences[1]);
    let run = lenses.run(&t1, 1.0).unwrap();
    assert!(run.status.available);
    assert_eq!(probe.decodes(), 1);
    // Attention joins: these tokens are decoded again, for both.
    attentions.view(&t1, 2).unwrap().unwrap();
    assert_eq!(probe.decodes(), 2);
    let run = lenses.run(&t1, 1.0).unwrap();
    let column = run.column(2, 3).unwrap().unwrap();
    assert_eq!(
        probe.decodes(),
        2,
        "the lens's rows of this text are still held"
    );
    let mut alone = Lenses::new(&model);
    let own = alone.run(&t1, 1.0).unwrap().column(2, 3).unwrap().unwrap();
    assert_eq!(column, own);
    // A new text: one decode for the lens and attention.
    lenses.run(&t2, 1.0).unwrap();
    attentions.view(&t2, 1).unwrap().unwrap();
    assert_eq!(probe.decodes(), 3);
}

/// The explorer with its lens, attention and attribution panels asked once: each later
/// keystroke (a new text, evaluated with `readers`) is one decode, which answers the
/// distributions and every panel, and the distributions are the session's bit for bit.
#[test]
fn a_keystroke_with_the_panels_open_is_one_decode() {
    use logitscope::analysis::stats::ViewOptions;
    use logitscope::engine::workbench::{LensAsk, LensUpdate, Workbench};
    let never = || false;
    for (name, path) in common::models::both() {
        let model = common::models::load(&path, 2048);
        let mut bench = Workbench::new(&model, None).unwrap();
        let view = ViewOptions::default();
        let texts = common::sentences();
        let panels = |bench: &mut Workbench<'_>, text: &str, n: usize| {
            let mut columns = 0;
            let ask = LensAsk {
                first: n - 1,
                hw: true,
                skip: &[],
            };
            bench.lens(text, view, &ask, &never, &never, &mut |u| match u {
                LensUpdate::Column { .. } => columns += 1,
                LensUpdate::Failed(e) => panic!("{e}"),
                LensUpdate::Status(s) => assert!(s.available, "{s:?}"),
                _ => {}
            });
            assert_eq!(columns, n, "{text}: every column of the lens");
            bench.attention(text, n - 1).unwrap();
            bench.attribution(text, n - 2, None).unwrap();
        };
        // The panels are opened on the first text: each reader joins when first asked.
        let first = &texts[0];
        bench.evaluate(0, first, view, &[], false, &never).unwrap();
        panels(&mut bench, first, model.tokenize(first).len());
        for text in &texts[1..4] {
            let n = model.tokenize(text).len();
            let before = bench.decodes();
            let shown = bench
                .evaluate(0, text, view, &[], true, &never)
                .unwrap()
                .unwrap();
            panels(&mut bench, text, n);
            assert_eq!(
                bench.decodes(),
                before + 1,
                "{name}: {text}: the keystroke and its panels are one decode"
            );
            let mut alone = Workbench::new(&model, None).unwrap();
            let own = alone
                .evaluate(0, text, view, &[], false, &never)
                .unwrap()
                .unwrap();
            assert_eq!(shown.ev.tokens, own.ev.tokens);
            assert_eq!(
                format!("{:?}", shown.ev.rows),
                format!("{:?}", own.ev.rows),
                "{name}: {text}: the readers' decode shows the session's numbers"
            );
        }
    }
}
