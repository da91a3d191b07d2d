//! What comes after a text: the whole distribution after its last token (to rank given
//! tokens or to sample from), and the one-token draft steps greedy generation proposes with.

use super::loader::ModelError;
use super::session::{Evaluation, Session};
use crate::analysis::stats::ViewOptions;

impl Session<'_> {
    /// Evaluate `tokens` (as [`Session::evaluate`], with its prefix reuse) and return the
    /// log-probabilities of `ids` in the distribution after the last token: the whole row, not
    /// only its top-k. `None` when cancelled.
    pub fn next_logprobs(
        &mut self,
        tokens: &[u32],
        view: ViewOptions,
        ids: &[u32],
        cancel: &dyn Fn() -> bool,
    ) -> Result<Option<(Evaluation, Vec<f64>)>, ModelError> {
        let Some(ev) = self.evaluate_whole(tokens, view, cancel)? else {
            return Ok(None);
        };
        let lps = crate::analysis::stats::logprobs_of(self.last_row(), view.temp, ids)?;
        Ok(Some((ev, lps)))
    }

    /// Evaluate `tokens` (as [`Session::evaluate`]) and return the logits of the distribution
    /// after the last token (the whole row, to sample from). `None` when cancelled.
    pub fn next_logits(
        &mut self,
        tokens: &[u32],
        view: ViewOptions,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Option<(Evaluation, Vec<f32>)>, ModelError> {
        let Some(ev) = self.evaluate_whole(tokens, view, cancel)? else {
            return Ok(None);
        };
        Ok(Some((ev, self.last_row().to_vec())))
    }

    /// [`Session::evaluate`] of every token of `tokens` (more than the context holds is an
    /// error, not a truncation); `None` when cancelled.
    fn evaluate_whole(
        &mut self,
        tokens: &[u32],
        view: ViewOptions,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Option<Evaluation>, ModelError> {
        let ev = self.evaluate(tokens, view, cancel)?;
        if ev.cancelled {
            return Ok(None);
        }
        if ev.tokens.len() < tokens.len() {
            return Err(ModelError::TooLong {
                n_tokens: tokens.len(),
                n_ctx: self.n_ctx,
            });
        }
        Ok(Some(ev))
    }

    /// The logits after the last token evaluated: `evaluate` always decodes the last token
    /// (its row is never reused), so the row is the last of the last decode.
    fn last_row(&self) -> &[f32] {
        self.ctx.get_logits_ith(self.last_decode_rows as i32 - 1)
    }

    /// A draft step of generation: decode `token` alone at position `pos` (at most the cached
    /// tokens and the drafts so far: a draft there and after is dropped first, and cached
    /// tokens from `pos` on are forgotten) and return its logits. A one-token decode is
    /// llama.cpp's fastest step but its numbers are not a whole decode's (1- and 2-token
    /// decodes round otherwise), so a draft only proposes tokens: the next evaluation removes
    /// every draft cell and decodes those tokens again in one decode of at least
    /// [`MIN_DECODE`](super::plan::MIN_DECODE) tokens, whose numbers are `score`'s.
    pub fn draft(&mut self, token: u32, pos: usize) -> Result<&[f32], ModelError> {
        let cached = self.cached_tokens.len();
        if pos > cached + self.drafted {
            return Err(ModelError::Decode(format!(
                "a draft at position {pos} after {cached} cached and {} drafted tokens",
                self.drafted
            )));
        }
        if pos + 1 > self.n_ctx {
            return Err(ModelError::TooLong {
                n_tokens: pos + 1,
                n_ctx: self.n_ctx,
            });
        }
        if pos < cached + self.drafted {
            self.ctx
                .kv_cache_seq_rm(0, Some(pos as u32), None)
                .map_err(|e| ModelError::KvCache(e.to_string()))?;
            if pos < cached {
                self.cached_tokens.truncate(pos);
                self.cached_rows.truncate(pos);
            }
            self.drafted = pos - self.cached_tokens.len();
        }
        // Counted before the decode: a failed one leaves cells to remove all the same.
        self.drafted += 1;
        self.decode_tokens(&[token], pos, 0)?;
        Ok(self.ctx.get_logits_ith(0))
    }
}
