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
        let mut rows = vec![Vec::new(); texts.len()];
        let mut scan = Scan::new(self, texts, 0)?;
        while let Some(wave) = scan.next_wave()? {
            for r in wave {
                let target = scan.texts[r.text].get(r.pos + 1).copied();
                rows[r.text].push(scan.session.summarize(r.index, view, target)?);
            }
        }
        let fitted: Vec<Vec<u32>> = scan.texts.iter().map(|t| t.to_vec()).collect();
        drop(scan);
        Ok(fitted
            .into_iter()
            .zip(rows)
            .zip(texts)
            .map(|((t, rows), original)| Evaluation {
                decoded: t.len(),
                tokens: t,
                rows,
                n_tokens_total: original.len(),
                cancelled: false,
            })
            .collect())
    }
}

/// One real row of a [`Scan`]'s last decode: position `pos` of text `text`, at `index` in the
/// decode (read it with [`Scan::row`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanRow {
    pub text: usize,
    pub pos: usize,
    pub index: usize,
}

/// Texts decoded from scratch side by side, one wave (decode) at a time, each in exactly the
/// chunks it gets alone ([`plan_chunks`]); the caller reads each wave's rows before asking for
/// the next. Decodes whose positions all lie before `from` ask llama.cpp for no logits at all
/// (a row depends only on its own cells and the keys and values before it, which every
/// decode computes), the others for every real row, as a whole-text decode does. The session
/// forgets the texts when the scan is dropped.
pub struct Scan<'s, 'm> {
    session: &'s mut Session<'m>,
    texts: Vec<&'s [u32]>,
    chunks: Vec<Vec<usize>>,
    done: Vec<usize>,
    wave: usize,
    from: usize,
}

impl<'s, 'm> Scan<'s, 'm> {
    /// At most [`Session::n_seq`] non-empty texts, each cut to the context.
    pub fn new(
        session: &'s mut Session<'m>,
        texts: &[&'s [u32]],
        from: usize,
    ) -> Result<Self, ModelError> {
        if texts.len() > session.n_seq {
            return Err(ModelError::Decode(format!(
                "{} texts side by side, but the session has {} streams",
                texts.len(),
                session.n_seq
            )));
        }
        if texts.iter().any(|t| t.is_empty()) {
            return Err(ModelError::Empty);
        }
        session.reset();
        let n_ctx = session.n_ctx;
        let texts: Vec<&[u32]> = texts.iter().map(|t| &t[..t.len().min(n_ctx)]).collect();
        let chunks = texts
            .iter()
            .map(|t| plan_chunks(t.len(), session.max_decode()))
            .collect();
        Ok(Self {
            done: vec![0; texts.len()],
            session,
            texts,
            chunks,
            wave: 0,
            from,
        })
    }

    /// The texts as decoded (cut to the context).
    pub fn texts(&self) -> &[&'s [u32]] {
        &self.texts
    }

    /// Decode the next wave; its real rows at positions `from` and after (none when the
    /// decode asked for no logits), or `None` when every text is done.
    pub fn next_wave(&mut self) -> Result<Option<Vec<ScanRow>>, ModelError> {
        let w = self.wave;
        let members: Vec<usize> = (0..self.texts.len())
            .filter(|&i| self.chunks[i].get(w).is_some())
            .collect();
        if members.is_empty() {
            return Ok(None);
        }
        self.wave += 1;
        let width = members
            .iter()
            .map(|&i| self.chunks[i][w])
            .max()
            .unwrap_or(0);
        let s = &mut *self.session;
        if members.len() * width > s.batch_capacity {
            return Err(ModelError::Decode(format!(
                "{} chunks of {width} tokens side by side exceed the batch ({})",
                members.len(),
                s.batch_capacity
            )));
        }
        // Logits for a whole decode or none of it: every decode that reads rows computes them
        // as a whole-text decode does.
        let wanted = |i: usize| self.done[i] + self.chunks[i][w] > self.from;
        s.batch.clear();
        for &i in &members {
            let (from, len) = (self.done[i], self.chunks[i][w]);
            for j in 0..width {
                // Past the chunk: a filler (the chunk's last token) whose row is not read.
                let (token, real) = if j < len {
                    (self.texts[i][from + j], true)
                } else {
                    (self.texts[i][from + len - 1], false)
                };
                s.batch
                    .add(
                        LlamaToken(token as i32),
                        (from + j) as i32,
                        &[i as i32],
                        real && wanted(i),
                    )
                    .map_err(|e| ModelError::Decode(e.to_string()))?;
            }
        }
        s.decode_batch()?;
        let mut rows = Vec::new();
        for (k, &i) in members.iter().enumerate() {
            let (from, len) = (self.done[i], self.chunks[i][w]);
            if wanted(i) {
                rows.extend((0..len).filter(|j| from + j >= self.from).map(|j| ScanRow {
                    text: i,
                    pos: from + j,
                    // Rows are addressed by the token's place in the batch.
                    index: k * width + j,
                }));
            }
            // The filler cells go before the next chunk takes their positions.
            if len < width {
                s.ctx
                    .kv_cache_seq_rm(i as i32, Some((from + len) as u32), None)
                    .map_err(|e| ModelError::KvCache(e.to_string()))?;
            }
        }
        for &i in &members {
            self.done[i] += self.chunks[i][w];
        }
        Ok(Some(rows))
    }

    /// The logits of a row of the last wave.
    pub fn row(&self, r: ScanRow) -> &[f32] {
        self.session.row(r.index)
    }
}

impl Drop for Scan<'_, '_> {
    fn drop(&mut self) {
        // The streams hold texts the one-text path cannot reuse.
        self.session.reset();
        self.session.last_decode_rows = 0;
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
