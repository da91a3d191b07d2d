//! Table 7: the logit lens. What `score --layers` costs against `score`, and the explorer's
//! lens path: a new text (the lens decode with its self-check, then the selected position's
//! column of layers), a selection move (one column), and the H·W panel.

use std::time::Instant;

use super::super::fatal::Fatal;
use super::timing::{median, ms, text_of, time};
use crate::analysis::stats::ViewOptions;
use crate::engine::lens::{lens_columns, Lenses};
use crate::model::lens::Lens;
use crate::model::Model;

pub fn table(model: &Model, view: ViewOptions) -> Result<(), Fatal> {
    let fatal = |e: String| Fatal::other(e);
    let mut session = model.session().map_err(|e| fatal(e.to_string()))?;
    let mut lenses = Lenses::new(model);
    let mut lens = Lens::new(model).map_err(|e| fatal(e.to_string()))?;
    println!(
        "7. logit lens ({} layers; median of 3): score vs score --layers (top {} per layer), \
         and the explorer's lens",
        lens.facts().n_layer,
        view.n_probs
    );
    println!("tokens  score ms  --layers ms  ratio  new text → column ms  column ms  H·W ms");
    for n in [12usize, 64, 256] {
        let (_, tokens) = text_of(model, n);
        let mut failed = None;
        let score = time(3, || {
            session.reset();
            session
                .evaluate(&tokens, view, &|| false)
                .map_err(|e| failed = Some(e.to_string()))
        });
        let layered = time(3, || {
            session.reset();
            let ev = session.evaluate(&tokens, view, &|| false);
            let shown = ev.as_ref().map(|e| e.rows.clone()).unwrap_or_default();
            let cols = lens_columns(&mut lenses, &tokens, &shown, view.temp, view.n_probs);
            // A different text next time, so the lens decodes again as `score` would.
            lenses.run(&tokens[..1], view.temp).ok();
            (
                ev.is_ok(),
                cols.map_err(|e| failed = Some(e.to_string())).is_ok(),
            )
        });
        let last = tokens.len() - 1;
        let mut fresh = Vec::new();
        for _ in 0..3 {
            lens.run(&tokens[..1], view.temp).ok();
            let t = Instant::now();
            lens.run(&tokens, view.temp)
                .map_err(|e| fatal(e.to_string()))?;
            lens.column(last, 3).map_err(|e| fatal(e.to_string()))?;
            fresh.push(t.elapsed());
        }
        let column = time(3, || lens.column(last / 2, 3).is_ok());
        let hw = time(3, || lens.hw(last, 8).is_ok());
        if let Some(e) = failed {
            return Err(fatal(e));
        }
        println!(
            "{n:<7} {:>8.1} {:>12.1} {:>6.1} {:>21.1} {:>10.1} {:>7.1}",
            ms(score),
            ms(layered),
            layered.as_secs_f64() / score.as_secs_f64(),
            ms(median(fresh)),
            ms(column),
            ms(hw)
        );
    }
    Ok(())
}
