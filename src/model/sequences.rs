//! Scoring several token sequences that share a prefix, side by side: the prefix decoded once,
//! the tails in waves, one KV-cache stream per sequence (fill-in's candidates).

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::token::LlamaToken;

use super::loader::ModelError;
use super::session::Session;
use super::session::{common_prefix, plan_chunks, MIN_DECODE};

impl Session<'_> {
    /// The log-probability of every token of several token sequences that share a prefix:
    /// `out[s][j] = ln p(seqs[s][j] | seqs[s][..j])` for j ≥ 1 (`None` for j = 0, which nothing
    /// predicts). Returns `None` when cancelled. The cached text is forgotten.
    ///
    /// The shared prefix is decoded once, on sequence 0. In a session with several KV-cache
    /// streams ([`Model::batch_session`]) the tails are then decoded side by side in waves,
    /// one sequence per stream on a copy of the prefix; with one stream, one tail at a time on
    /// top of the prefix. Every decode holds at least [`MIN_DECODE`] tokens (a short tail
    /// re-decodes the end of the prefix), so every sequence gets the numbers `evaluate` gives
    /// it (llama.cpp's numbers depend on decode sizes: tests/engine.rs).
    pub fn sequence_logprobs(
        &mut self,
        seqs: &[Vec<u32>],
        temp: f32,
        cancel: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Option<Vec<Vec<Option<f64>>>>, ModelError> {
        if seqs.iter().any(Vec::is_empty) {
            return Err(ModelError::Empty);
        }
        if let Some(long) = seqs.iter().find(|s| s.len() > self.n_ctx) {
            return Err(ModelError::TooLong {
                n_tokens: long.len(),
                n_ctx: self.n_ctx,
            });
        }
        self.reset();
        let mut out: Vec<Vec<Option<f64>>> = seqs.iter().map(|s| vec![None; s.len()]).collect();
        let Some(first) = seqs.first() else {
            return Ok(Some(out));
        };
        // With spare streams the tails go to streams 1.., sequence 0 keeping the whole shared
        // prefix; with one stream the tails replace each other on sequence 0, so the prefix
        // stops MIN_DECODE tokens before the shortest sequence ends.
        let spare = self.n_seq > 1;
        let (first_slot, slots) = if spare { (1, self.n_seq - 1) } else { (0, 1) };
        let margin = if spare { 1 } else { MIN_DECODE };
        // Every sequence keeps at least one token of its own.
        let base = seqs
            .iter()
            .map(|s| {
                common_prefix(first, s)
                    .min(s.len() - 1)
                    .min(s.len().saturating_sub(margin))
            })
            .min()
            .unwrap_or(0);
        let total: usize = base + seqs.iter().map(|s| s.len() - base).sum::<usize>();
        let mut done = 0;

        // 1. The shared prefix. Its last row predicts each sequence's first own token.
        let mut pos = 0;
        for len in plan_chunks(base, self.max_decode()) {
            if cancel() {
                self.reset();
                return Ok(None);
            }
            self.decode_tokens(&first[pos..pos + len], pos, 0)?;
            for i in 0..len {
                let j = pos + i + 1;
                let row = self.ctx.get_logits_ith(i as i32);
                let targets: Vec<u32> = seqs.iter().map(|s| s[j]).collect();
                let lps = crate::analysis::stats::logprobs_of(row, temp, &targets)?;
                for (o, lp) in out.iter_mut().zip(lps) {
                    o[j] = Some(lp);
                }
            }
            pos += len;
            done += len;
            progress(done, total);
        }

        // 2. The tails, in waves: sequences of the same length (llama.cpp then keeps a wave in
        //    one micro-batch instead of splitting it into tiny ones), at most MAX_WAVE tokens
        //    (a cancel waits for one wave at most).
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&s| seqs[s].len());
        for group in order.chunk_by(|&a, &b| seqs[a].len() == seqs[b].len()) {
            let len = seqs[group[0]].len();
            let per_wave = slots.min(self.max_wave() / (len - base)).max(1);
            for wave in group.chunks(per_wave) {
                // Short tails start earlier so that the wave's decode is not tiny.
                let start = base.min(len.saturating_sub(MIN_DECODE.div_ceil(wave.len())));
                let tails = Wave {
                    seqs,
                    members: wave,
                    first_slot,
                    start,
                    base,
                };
                let mut step = |wave_done: usize| progress(done + wave_done, total);
                if !self.decode_wave(&tails, temp, cancel, &mut step, &mut out)? {
                    self.reset();
                    return Ok(None);
                }
                done += (len - base) * wave.len();
            }
        }
        self.reset();
        Ok(Some(out))
    }

    /// Decode the tails of one wave, member k on sequence (and stream) `first_slot + k`, and
    /// write the log-probability of each token after `base` into `out`. A lone member is
    /// decoded in chunks (it may be long), asking `cancel` between them; several members in
    /// one batch. Returns false when cancelled.
    fn decode_wave(
        &mut self,
        w: &Wave<'_>,
        temp: f32,
        cancel: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(usize),
        out: &mut [Vec<Option<f64>>],
    ) -> Result<bool, ModelError> {
        let kv = |e: &dyn std::fmt::Display| ModelError::KvCache(e.to_string());
        let err = |e: &dyn std::fmt::Display| ModelError::Decode(e.to_string());
        // Each member's sequence: the prefix up to `start`, nothing else.
        for slot in w.slots() {
            if slot == 0 {
                self.ctx
                    .kv_cache_seq_rm(0, Some(w.start as u32), None)
                    .map_err(|e| kv(&e))?;
            } else {
                self.ctx
                    .clear_kv_cache_seq(Some(slot as u32), None, None)
                    .map_err(|e| kv(&e))?;
                if w.start > 0 {
                    self.ctx
                        .copy_kv_cache_seq(0, slot as i32, None, None)
                        .map_err(|e| kv(&e))?;
                    self.ctx
                        .kv_cache_seq_rm(slot as i32, Some(w.start as u32), None)
                        .map_err(|e| kv(&e))?;
                }
            }
        }
        if let ([s], Some(slot)) = (w.members, w.slots().next()) {
            let seq = &w.seqs[*s];
            let mut pos = w.start;
            for len in plan_chunks(seq.len() - w.start, self.max_decode()) {
                if cancel() {
                    return Ok(false);
                }
                self.decode_tokens(&seq[pos..pos + len], pos, slot as i32)?;
                for i in 0..len {
                    w.record(&self.ctx, i as i32, *s, pos + i, temp, out)?;
                }
                pos += len;
                progress(pos.saturating_sub(w.base));
            }
            return Ok(true);
        }
        if cancel() {
            return Ok(false);
        }
        self.batch.clear();
        for (&s, slot) in w.members.iter().zip(w.slots()) {
            for (j, &t) in w.seqs[s].iter().enumerate().skip(w.start) {
                self.batch
                    .add(LlamaToken(t as i32), j as i32, &[slot as i32], true)
                    .map_err(|e| err(&e))?;
            }
        }
        self.ctx.decode(&mut self.batch).map_err(|e| err(&e))?;
        let mut i = 0;
        for &s in w.members {
            for j in w.start..w.seqs[s].len() {
                w.record(&self.ctx, i, s, j, temp, out)?;
                i += 1;
            }
        }
        progress(w.members.len() * (w.seqs[w.members[0]].len() - w.base));
        Ok(true)
    }
}

/// One wave of [`Session::sequence_logprobs`]: the sequences `members` (indices into `seqs`,
/// all of one length) decoded from position `start`, member k on sequence `first_slot + k`.
/// Rows up to `base` came from the shared prefix already.
struct Wave<'a> {
    seqs: &'a [Vec<u32>],
    members: &'a [usize],
    first_slot: usize,
    start: usize,
    base: usize,
}

impl Wave<'_> {
    fn slots(&self) -> std::ops::Range<usize> {
        self.first_slot..self.first_slot + self.members.len()
    }

    /// Batch row `i` holds member `s`'s token at position `j`: its logits predict token j + 1.
    fn record(
        &self,
        ctx: &LlamaContext<'_>,
        i: i32,
        s: usize,
        j: usize,
        temp: f32,
        out: &mut [Vec<Option<f64>>],
    ) -> Result<(), ModelError> {
        match self.seqs[s].get(j + 1) {
            Some(&next) if j >= self.base => {
                let row = ctx.get_logits_ith(i);
                out[s][j + 1] = Some(crate::analysis::stats::logprobs_of(row, temp, &[next])?[0]);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
