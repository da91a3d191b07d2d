//! Two models evaluating the same token ids in lockstep: each chunk is decoded by both, and
//! their rows are handed over together while both are still in llama.cpp's buffers — so the
//! comparison reads full rows and keeps none of them.

use super::loader::ModelError;
use super::session::{plan_chunks, Evaluation, Session};
use crate::analysis::stats::ViewOptions;

/// Called with each decoded position and the two models' logits there.
pub type OnRows<'f> = dyn FnMut(usize, &[f32], &[f32]) -> Result<(), ModelError> + 'f;

/// Evaluate `tokens` on `a` and `b` (each reusing its cached prefix; both start where the
/// earlier of the two must). `on_rows(i, row_a, row_b)` gets the logits of position i, for
/// every decoded position. Returns both evaluations and the first decoded position.
pub fn evaluate_pair(
    a: &mut Session<'_>,
    b: &mut Session<'_>,
    tokens: &[u32],
    view: ViewOptions,
    cancel: &dyn Fn() -> bool,
    on_rows: &mut OnRows<'_>,
) -> Result<(Evaluation, Evaluation, usize), ModelError> {
    let start = a.plan(tokens, view)?.min(b.plan(tokens, view)?);
    // Both begin at `start`: it is at most what either one's plan allows.
    b.begin(tokens, view, start)?;
    let (tokens, start) = a.begin(tokens, view, start)?;
    let max = a.max_decode().min(b.max_decode());
    let mut cancelled = false;
    let mut pos = start;
    for len in plan_chunks(tokens.len() - start, max) {
        if pos > start && cancel() {
            cancelled = true;
            break;
        }
        a.decode_chunk(tokens, pos, len, view)?;
        b.decode_chunk(tokens, pos, len, view)?;
        for i in 0..len {
            on_rows(pos + i, a.row(i), b.row(i))?;
        }
        pos += len;
    }
    Ok((
        a.evaluation(pos - start, cancelled),
        b.evaluation(pos - start, cancelled),
        start,
    ))
}
