//! Corpus mode: a long text measured in chunks as llama.cpp's `llama-perplexity` measures it
//! ([`crate::analysis::perplexity`]), each chunk evaluated as `score` evaluates a text (the
//! same sessions, side by side where several fit), so every position's number is `score`'s
//! for that chunk's tokens.

use std::ops::Range;

use crate::analysis::perplexity::Plan;
use crate::analysis::stats::ViewOptions;
use crate::model::{Model, ModelError};

use super::score::Batcher;

/// The tokens of chunk `i` as they are decoded: the text's own, the first replaced by BOS on
/// a model whose tokenizer adds one (as llama-perplexity does, so every chunk starts as a
/// text does).
pub fn chunk_tokens(model: &Model, tokens: &[u32], plan: &Plan, i: usize) -> Vec<u32> {
    let mut chunk = tokens[plan.chunk(i)].to_vec();
    if let Some((bos, true)) = model.bos() {
        chunk[0] = bos;
    }
    chunk
}

/// The scored negative log-likelihoods (nats) of `chunks`: for each, positions
/// `plan.first() .. n_ctx - 1`, each the −ln p of the token after it, at the view's
/// temperature.
pub fn chunk_nlls(
    batcher: &mut Batcher<'_>,
    tokens: &[u32],
    plan: &Plan,
    chunks: Range<usize>,
    view: ViewOptions,
) -> Result<Vec<Vec<f64>>, ModelError> {
    let model = batcher.model();
    let n_ctx = batcher.n_ctx();
    let texts: Vec<Vec<u32>> = chunks
        .clone()
        .map(|i| chunk_tokens(model, tokens, plan, i))
        .collect();
    let view = ViewOptions { n_probs: 1, ..view };
    batcher
        .evaluate_all(&texts, view)
        .into_iter()
        .map(|ev| {
            let ev = ev?;
            if ev.rows.len() < plan.n_ctx {
                return Err(ModelError::TooLong {
                    n_tokens: plan.n_ctx,
                    n_ctx,
                });
            }
            (plan.first()..plan.n_ctx - 1)
                .map(|j| {
                    ev.rows[j]
                        .target
                        .map(|t| -t.logprob)
                        .ok_or_else(|| ModelError::Decode(format!("no target at position {j}")))
                })
                .collect()
        })
        .collect()
}
