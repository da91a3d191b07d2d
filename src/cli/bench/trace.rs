//! Table 13: causal tracing. One residual-stream grid of a minimal pair, timed three ways in
//! the same run: patched runs side by side each decoded from its position (the default),
//! side by side from the start (`--no-reuse`), and one at a time from the start. The grids
//! are checked equal, bit for bit, before a figure is printed.

use std::time::Instant;

use super::super::fatal::Fatal;
use crate::analysis::trace::TraceReport;
use crate::engine::trace::{trace, TraceError, TraceOptions};
use crate::model::Model;

/// Pairs of the same token count on the default model: a subject swapped (12 tokens, the
/// texts differ from position 1) and a name swapped late (14 tokens, from position 9).
pub const PAIRS: [(&str, &str); 2] = [
    (
        "The Eiffel Tower stands in the heart of the city of",
        "The Colosseum stands in the heart of the city of",
    ),
    (
        "When John and Mary went to the store, John gave a drink to",
        "When John and Mary went to the store, Mary gave a drink to",
    ),
];

fn run(
    model: &Model,
    clean: &str,
    corrupt: &str,
    reuse: bool,
    width: usize,
) -> Result<(TraceReport, f64), Fatal> {
    let opts = TraceOptions {
        reuse,
        width,
        ..TraceOptions::default()
    };
    let t = Instant::now();
    let r =
        trace(model, clean, corrupt, &opts, &mut |_, _| {}, &|| false).map_err(|e| match e {
            TraceError::Model(e) => Fatal::other(e.to_string()),
            TraceError::Refused(w) => Fatal::other(w),
        })?;
    let secs = t.elapsed().as_secs_f64();
    r.map(|r| (r, secs))
        .ok_or_else(|| Fatal::other("trace cancelled"))
}

pub fn table(model: &Model) -> Result<(), Fatal> {
    println!("13. causal tracing: one residual-stream grid (every layer × position)");
    println!("corrupt text                           tokens  cells  mode                         runs decoded  tokens decoded  s");
    for (clean, corrupt) in PAIRS {
        let modes = [
            ("side by side, prefix reused", true, 32),
            ("side by side, from the start", false, 32),
            ("one at a time, from the start", false, 1),
        ];
        let mut first: Option<TraceReport> = None;
        for (name, reuse, width) in modes {
            let (r, secs) = run(model, clean, corrupt, reuse, width)?;
            if let Some(f) = &first {
                if f.grids != r.grids {
                    return Err(Fatal::other(format!(
                        "the grids of {name:?} differ from the default's: not printing a figure"
                    )));
                }
            }
            let cells: usize = r.grids.iter().map(|g| g.cells.len()).sum();
            println!(
                "{:<38} {:>6} {:>6}  {:<28} {:>12} {:>15} {:>5.1}",
                format!("{:.36}", corrupt),
                r.corrupt_tokens.len(),
                cells,
                name,
                r.work.runs,
                r.work.tokens,
                secs
            );
            first.get_or_insert(r);
        }
    }
    Ok(())
}
