//! Several texts scored side by side: one llama.cpp decode carries a chunk of each text, every
//! text in its own KV-cache stream, so a batch of short lines keeps the hardware busy.
//!
//! Each text is cut into exactly the chunks it gets when scored alone ([`plan_chunks`]), and
//! decode k carries chunk k of every text. llama.cpp takes the same number of tokens from each
//! stream into a micro-batch, so chunks of unequal length are padded at their end to the
//! longest with filler tokens whose logits are not read and whose cells are removed before
//! the next decode: a real token never sees them (they come after it), and every text keeps
//! its own decode boundaries. The numbers are those of scoring each text alone, bit for bit
//! (tests/side_by_side.rs proves it).

use llama_cpp_2::token::LlamaToken;

use super::loader::ModelError;
use super::session::{plan_chunks, Evaluation, Session, MAX_DECODE};
use crate::analysis::stats::ViewOptions;

/// How many texts of `longest` tokens fit side by side in a session of `n_seq` streams and a
/// batch of `capacity` tokens.
pub fn group_size(n_seq: usize, capacity: usize, longest: usize) -> usize {
    let chunk = longest.clamp(1, MAX_DECODE);
    (capacity / chunk).clamp(1, n_seq.max(1))
}

impl Session<'_> {
    /// Evaluate each of `texts` from scratch, side by side (at most [`Session::n_seq`] texts,
    /// each at most the context and the batch allows per stream; see [`group_size`]). The
    /// evaluations equal those of [`Session::evaluate`] on each text alone: where the model's
    /// self-check ([`Model::layout`](super::Model::layout)) found otherwise, each text is
    /// evaluated alone.
    pub fn evaluate_side_by_side(
        &mut self,
        texts: &[&[u32]],
        view: ViewOptions,
    ) -> Result<Vec<Evaluation>, ModelError> {
        if !self.checked || self.model.layout().side_by_side_exact() {
            return self.evaluate_side_by_side_raw(texts, view);
        }
        let mut alone = self.model.session()?;
        alone.set_watch(&self.watch);
        alone.set_edits(self.edits().cloned());
        texts
            .iter()
            .map(|t| {
                alone.reset();
                alone.evaluate(t, view, &|| false)
            })
            .collect()
    }

    fn evaluate_side_by_side_raw(
        &mut self,
        texts: &[&[u32]],
        view: ViewOptions,
    ) -> Result<Vec<Evaluation>, ModelError> {
        if texts.len() > self.n_seq {
            return Err(ModelError::Decode(format!(
                "{} texts side by side, but the session has {} streams",
                texts.len(),
                self.n_seq
            )));
        }
        if texts.iter().any(|t| t.is_empty()) {
            return Err(ModelError::Empty);
        }
        let kv = |e: &dyn std::fmt::Display| ModelError::KvCache(e.to_string());
        self.reset();
        let fitted: Vec<&[u32]> = texts
            .iter()
            .map(|t| &t[..t.len().min(self.n_ctx)])
            .collect();
        let chunks: Vec<Vec<usize>> = fitted
            .iter()
            .map(|t| plan_chunks(t.len(), self.max_decode()))
            .collect();
        let waves = chunks.iter().map(Vec::len).max().unwrap_or(0);
        let mut done: Vec<usize> = vec![0; texts.len()];
        let mut rows = vec![Vec::new(); texts.len()];
        for w in 0..waves {
            let width = chunks
                .iter()
                .filter_map(|c| c.get(w))
                .max()
                .copied()
                .unwrap_or(0);
            let members: Vec<usize> = (0..texts.len())
                .filter(|&i| chunks[i].get(w).is_some())
                .collect();
            if members.len() * width > self.batch_capacity {
                return Err(ModelError::Decode(format!(
                    "{} chunks of {width} tokens side by side exceed the batch ({})",
                    members.len(),
                    self.batch_capacity
                )));
            }
            self.batch.clear();
            for &i in &members {
                let (from, len) = (done[i], chunks[i][w]);
                for j in 0..width {
                    // Past the chunk: a filler (the chunk's last token) whose row is not read.
                    let (token, real) = if j < len {
                        (fitted[i][from + j], true)
                    } else {
                        (fitted[i][from + len - 1], false)
                    };
                    self.batch
                        .add(
                            LlamaToken(token as i32),
                            (from + j) as i32,
                            &[i as i32],
                            real,
                        )
                        .map_err(|e| ModelError::Decode(e.to_string()))?;
                }
            }
            self.decode_batch()?;
            for (k, &i) in members.iter().enumerate() {
                let (from, len) = (done[i], chunks[i][w]);
                for j in 0..len {
                    // Rows are addressed by the token's place in the batch.
                    let target = fitted[i].get(from + j + 1).copied();
                    rows[i].push(self.summarize(k * width + j, view, target)?);
                }
                // The filler cells go before the next chunk takes their positions.
                if len < width {
                    self.ctx
                        .kv_cache_seq_rm(i as i32, Some((from + len) as u32), None)
                        .map_err(|e| kv(&e))?;
                }
                done[i] += len;
            }
        }
        // The streams hold texts the one-text path cannot reuse.
        self.reset();
        self.last_decode_rows = 0;
        Ok(fitted
            .iter()
            .zip(rows)
            .zip(texts)
            .map(|((t, rows), original)| Evaluation {
                tokens: t.to_vec(),
                rows,
                n_tokens_total: original.len(),
                decoded: t.len(),
                cancelled: false,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_fill_the_batch_without_passing_the_streams() {
        assert_eq!(
            group_size(8, 512, 84),
            6,
            "chunks of 84 tokens: 6 fit in 512"
        );
        assert_eq!(group_size(16, 512, 300), 5, "chunks of at most 96 tokens");
        assert_eq!(group_size(16, 512, 20), 16);
        assert_eq!(group_size(4, 512, 1), 4);
        assert_eq!(group_size(8, 10, 500), 1);
    }
}
