//! Table 12: interventions. An ablated or steered evaluation against an ordinary one on the
//! same session (its cache reset before each, so every run decodes the whole text), median of
//! 5, at 16, 256 and 1,024 tokens; and the attribution panel's latency: the split at the last
//! position of a new text (one hooked decode plus the split and the H·W rounding), then at the
//! position before it (the parts already read).

use std::time::Instant;

use super::super::fatal::Fatal;
use super::timing::{median, ms, text_of};
use crate::analysis::intervention::Part;
use crate::analysis::stats::ViewOptions;
use crate::engine::attribution::{Attributions, Target};
use crate::model::{ControlVector, Intervention, Model};

const RUNS: usize = 5;

pub fn table(model: &Model, view: ViewOptions) -> Result<(), Fatal> {
    let fail = |e: String| Fatal::other(e);
    let (n_layer, _) = model.shape();
    let dir = tempfile::tempdir().map_err(|e| fail(e.to_string()))?;
    let cv = dir.path().join("bench-vector.gguf");
    let directions: Vec<Vec<f32>> = (1..n_layer)
        .map(|l| {
            (0..model.n_embd())
                .map(|i| ((i * 31 + l * 7) % 17) as f32 / 170.0 - 0.05)
                .collect()
        })
        .collect();
    crate::model::cvector::write(&cv, "bench", &directions).map_err(fail)?;
    let mid = n_layer / 2;
    let variants: Vec<(String, Intervention)> = vec![
        ("intact".into(), Intervention::default()),
        (
            format!("--ablate attn:{mid}"),
            Intervention {
                ablate: vec![Part::Attn(mid)],
                ..Default::default()
            },
        ),
        (
            format!("--ablate ffn:0-{}", n_layer - 1),
            Intervention {
                ablate: (0..n_layer).map(Part::Ffn).collect(),
                ..Default::default()
            },
        ),
        (
            format!("--ablate head:{mid}.0"),
            Intervention {
                ablate: vec![Part::Head(mid, 0)],
                ..Default::default()
            },
        ),
        (
            "--control-vector (every layer)".into(),
            Intervention {
                steer: vec![ControlVector {
                    path: cv.clone(),
                    scale: 1.0,
                }],
                ..Default::default()
            },
        ),
    ];
    println!(
        "12. interventions: one evaluation from an empty cache, the same session, median of \
         {RUNS} (interleaved)"
    );
    println!("tokens  {:<32} median ms  × intact", "variant");
    let mut session = model.session().map_err(|e| fail(e.to_string()))?;
    for n in [16usize, 256, 1024] {
        let (_, tokens) = text_of(model, n);
        let tokens = &tokens[..n.min(session.n_ctx())];
        let edits: Vec<_> = variants
            .iter()
            .map(|(_, iv)| model.edits(iv).map_err(|e| fail(e.to_string())))
            .collect::<Result<_, _>>()?;
        let mut times = vec![Vec::new(); variants.len()];
        for _ in 0..RUNS {
            for (i, e) in edits.iter().enumerate() {
                session.set_edits(e.clone());
                session.reset();
                let t0 = Instant::now();
                session
                    .evaluate(tokens, view, &|| false)
                    .map_err(|e| fail(e.to_string()))?;
                times[i].push(t0.elapsed());
            }
        }
        let base = ms(median(times[0].clone()));
        for ((name, _), t) in variants.iter().zip(times) {
            let m = ms(median(t));
            println!("{n:>6}  {name:<32} {m:>9.1} {:>8.3}", m / base);
        }
    }
    session.set_edits(None);
    println!("\nthe attribution panel: the split of a logit (median of {RUNS})");
    println!("tokens  new text ms  another position ms");
    let mut attributions = Attributions::new(model);
    for n in [12usize, 256] {
        let (_, tokens) = text_of(model, n);
        let mut took = Vec::new();
        let mut moved = Vec::new();
        for round in 0..RUNS {
            let mut text = tokens[..n].to_vec();
            text[0] = tokens[round + 1];
            for (position, out) in [(n - 2, &mut took), (n - 3, &mut moved)] {
                let t0 = Instant::now();
                let (status, _) = attributions
                    .split(&text, &[position], Target::Actual, &|_| None)
                    .map_err(|e| fail(e.to_string()))?;
                if !status.available {
                    return Err(fail(status.reason.unwrap_or_default()));
                }
                out.push(t0.elapsed());
            }
        }
        println!(
            "{n:>6}  {:>11.1}  {:>19.1}",
            ms(median(took)),
            ms(median(moved))
        );
    }
    Ok(())
}
