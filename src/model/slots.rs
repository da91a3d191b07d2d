//! Many token sequences decoded side by side on one context, step by step: a shared prefix
//! decoded once on stream 0, each sequence on its own KV-cache stream (a slot) that starts
//! from a copy of the prefix. The caller decides which sequences go on and how far each step
//! goes — the vocabulary search stops a candidate as soon as its bound falls below the best
//! found (`engine::search`).
//!
//! The rules that keep every number equal to what `score` gives the whole text (llama.cpp's
//! results depend on how a text is split into decodes; tests/search.rs checks them against
//! scoring each text alone): the members of one step all decode the same number of tokens, and
//! a step is never tiny — see [`step_size`].

use llama_cpp_2::token::LlamaToken;

use super::loader::ModelError;
use super::session::{plan_chunks, Session, MAX_WAVE, MIN_DECODE};
use crate::analysis::stats::{log_softmax, logprobs_of};

/// The fewest tokens one member decodes in a step.
pub const MIN_MEMBER_STEP: usize = 3;

/// How many tokens each of `members` must decode in one step so that the step is not tiny:
/// at least [`MIN_MEMBER_STEP`] each and [`MIN_DECODE`] in all.
pub fn step_size(members: usize) -> usize {
    MIN_DECODE.div_ceil(members.max(1)).max(MIN_MEMBER_STEP)
}

/// What decoding the prefix told: the log-probability of each prefix token (`None` for the
/// first) and the distribution after the whole prefix (ln p over the vocabulary; empty for an
/// empty prefix).
#[derive(Debug, Clone, Default)]
pub struct PrefixRows {
    pub token_logprobs: Vec<Option<f64>>,
    pub next: Vec<f64>,
}

/// A session with its prefix decoded on stream 0 and slots (streams 1..) for the sequences.
pub struct Slots<'s, 'm> {
    session: &'s mut Session<'m>,
    prefix: Vec<u32>,
    temp: f32,
    /// Where the model's self-check failed ([`super::Model::layout`]): a one-sequence
    /// session that scores each member's whole sequence alone, as `score` would, and what it
    /// found per slot.
    alone: Option<Alone<'m>>,
}

struct Alone<'m> {
    session: Session<'m>,
    /// Per slot: the sequence last scored there and its token log-probabilities.
    done: Vec<Option<Scored>>,
}

type Scored = (Vec<u32>, Vec<Option<f64>>);

impl<'m> Session<'m> {
    /// Decode `prefix` on stream 0 (the cached text is forgotten). Returns `None` when
    /// cancelled. Needs a session with several streams ([`super::Model::batch_session`]).
    /// On a model whose self-check failed, every step scores its members one at a time.
    pub fn open_slots(
        &mut self,
        prefix: &[u32],
        temp: f32,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Option<(Slots<'_, 'm>, PrefixRows)>, ModelError> {
        let alone = if !self.checked || self.model.layout().side_by_side_exact() {
            None
        } else {
            let mut session = self.model.session()?;
            session.set_edits(self.edits().cloned());
            Some(Alone {
                session,
                done: Vec::new(),
            })
        };
        Ok(self
            .open_slots_raw(prefix, temp, cancel)?
            .map(|(mut slots, rows)| {
                slots.alone = alone;
                (slots, rows)
            }))
    }

    fn open_slots_raw(
        &mut self,
        prefix: &[u32],
        temp: f32,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Option<(Slots<'_, 'm>, PrefixRows)>, ModelError> {
        if prefix.len() >= self.n_ctx {
            return Err(ModelError::TooLong {
                n_tokens: prefix.len(),
                n_ctx: self.n_ctx,
            });
        }
        self.reset();
        let mut rows = PrefixRows {
            token_logprobs: vec![None; prefix.len()],
            next: Vec::new(),
        };
        let mut pos = 0;
        for len in plan_chunks(prefix.len(), self.max_decode()) {
            if cancel() {
                self.reset();
                return Ok(None);
            }
            self.decode_tokens(&prefix[pos..pos + len], pos, 0)?;
            for i in 0..len {
                let logits = self.ctx.get_logits_ith(i as i32);
                match prefix.get(pos + i + 1) {
                    Some(&t) => {
                        rows.token_logprobs[pos + i + 1] = Some(logprobs_of(logits, temp, &[t])?[0])
                    }
                    None => rows.next = log_softmax(logits, temp)?,
                }
            }
            pos += len;
        }
        Ok(Some((
            Slots {
                session: self,
                prefix: prefix.to_vec(),
                temp,
                alone: None,
            },
            rows,
        )))
    }
}

/// Where a member's step starts: on a fresh slot (a copy of the prefix up to `from`), or
/// continuing what the slot already holds (anything from `from` on is dropped first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Fresh,
    Continue,
}

impl Slots<'_, '_> {
    /// Where the model's self-check failed: the log-probability of every token of `seq`
    /// (`out[j]` for token j, `None` for j = 0) from `seq` decoded alone, as `score` decodes
    /// it — the prefix's rows are then not the candidate's. `None` where slots are exact.
    pub fn alone(&mut self, seq: &[u32]) -> Result<Option<Vec<Option<f64>>>, ModelError> {
        let Some(alone) = &mut self.alone else {
            return Ok(None);
        };
        alone.session.token_logprobs_alone(seq, self.temp).map(Some)
    }

    /// The temperature the slots score at.
    pub fn temp(&self) -> f32 {
        self.temp
    }

    /// The intervention the slots' decodes carry.
    pub fn edits(&self) -> Option<std::sync::Arc<super::Edits>> {
        self.session.edits().cloned()
    }

    /// The decoded prefix.
    pub fn prefix(&self) -> &[u32] {
        &self.prefix
    }

    /// Whether the model failed its layout self-check (see [`Slots::alone`]).
    pub fn one_at_a_time(&self) -> bool {
        self.alone.is_some()
    }

    /// Slots available (streams besides the prefix's).
    pub fn count(&self) -> usize {
        self.session.n_seq.saturating_sub(1)
    }

    /// Tokens one sequence may hold.
    pub fn n_ctx(&self) -> usize {
        self.session.n_ctx
    }

    /// The most tokens one step should decode in all: [`MAX_WAVE`] (a cancel waits for one
    /// step), or less when the batch is smaller.
    pub fn max_step_tokens(&self) -> usize {
        MAX_WAVE.min(self.session.batch_capacity)
    }

    /// Decode `seq[from..to]` of every member `(slot, seq)` in one batch; slots are
    /// `0..count()`, each used by one member at a time. With [`Start::Fresh`] a slot first gets
    /// a copy of the prefix up to `from` (which the member must share); with
    /// [`Start::Continue`] it keeps what it holds below `from`. Returns, per member, the
    /// log-probability of `seq[j + 1]` for `j` in `from..to` (`None` past the end).
    pub fn step(
        &mut self,
        members: &[(usize, &[u32])],
        from: usize,
        to: usize,
        start: Start,
    ) -> Result<Vec<Vec<Option<f64>>>, ModelError> {
        let Some(alone) = &mut self.alone else {
            return self.step_raw(members, from, to, start);
        };
        if members.iter().any(|(_, m)| to > m.len() || from >= to) {
            return Err(ModelError::Decode(format!(
                "a step of tokens {from}..{to} does not fit its sequences"
            )));
        }
        let mut out = Vec::with_capacity(members.len());
        for &(slot, m) in members {
            if alone.done.len() <= slot {
                alone.done.resize(slot + 1, None);
            }
            let fresh = !matches!(&alone.done[slot], Some((seq, _)) if seq.as_slice() == m);
            if fresh {
                let lps = alone.session.token_logprobs_alone(m, self.temp)?;
                alone.done[slot] = Some((m.to_vec(), lps));
            }
            let lps = alone.done[slot]
                .as_ref()
                .map(|(_, l)| l.as_slice())
                .unwrap_or_default();
            out.push(
                (from..to)
                    .map(|j| lps.get(j + 1).copied().flatten())
                    .collect(),
            );
        }
        Ok(out)
    }

    /// [`Slots::step`] on the shared decode.
    fn step_raw(
        &mut self,
        members: &[(usize, &[u32])],
        from: usize,
        to: usize,
        start: Start,
    ) -> Result<Vec<Vec<Option<f64>>>, ModelError> {
        let s = &mut *self.session;
        let kv = |e: &dyn std::fmt::Display| ModelError::KvCache(e.to_string());
        let decode = |e: &dyn std::fmt::Display| ModelError::Decode(e.to_string());
        if members.len() > s.n_seq.saturating_sub(1) {
            return Err(ModelError::Decode(format!(
                "{} sequences in one step, the context has {} slots",
                members.len(),
                s.n_seq.saturating_sub(1)
            )));
        }
        if members.iter().any(|(slot, _)| *slot + 1 >= s.n_seq) {
            return Err(ModelError::Decode(
                "a slot beyond the context's streams".into(),
            ));
        }
        if members.iter().any(|(_, m)| to > m.len() || from >= to) || to > s.n_ctx {
            return Err(ModelError::Decode(format!(
                "a step of tokens {from}..{to} does not fit its sequences"
            )));
        }
        if members.len() * (to - from) > s.batch_capacity {
            return Err(ModelError::Decode(format!(
                "a step of {} tokens is larger than the batch ({})",
                members.len() * (to - from),
                s.batch_capacity
            )));
        }
        for (k, &(slot, m)) in members.iter().enumerate() {
            let slot = (slot + 1) as i32;
            match start {
                Start::Fresh => {
                    if from > self.prefix.len() || m[..from] != self.prefix[..from] {
                        return Err(ModelError::Decode(format!(
                            "member {k} does not share the first {from} prefix tokens"
                        )));
                    }
                    s.fresh_stream(slot, from)?;
                }
                Start::Continue => {
                    s.ctx
                        .kv_cache_seq_rm(slot, Some(from as u32), None)
                        .map_err(|e| kv(&e))?;
                }
            }
        }
        s.batch.clear();
        for &(slot, m) in members {
            for (j, &t) in m.iter().enumerate().take(to).skip(from) {
                s.batch
                    .add(LlamaToken(t as i32), j as i32, &[(slot + 1) as i32], true)
                    .map_err(|e| decode(&e))?;
            }
        }
        s.decode_batch()?;
        let mut out = Vec::with_capacity(members.len());
        let mut i = 0i32;
        for (_, m) in members {
            let mut lps = Vec::with_capacity(to - from);
            for j in from..to {
                lps.push(match m.get(j + 1) {
                    Some(&next) => {
                        let row = s.ctx.get_logits_ith(i);
                        Some(logprobs_of(row, self.temp, &[next])?[0])
                    }
                    None => None,
                });
                i += 1;
            }
            out.push(lps);
        }
        Ok(out)
    }
}

impl Drop for Slots<'_, '_> {
    fn drop(&mut self) {
        // The streams hold candidates, not a text the session could reuse.
        self.session.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_never_tiny() {
        for members in 1..=64 {
            let s = step_size(members);
            assert!(s >= MIN_MEMBER_STEP);
            assert!(s * members >= MIN_DECODE);
        }
        assert_eq!(step_size(1), MIN_DECODE);
        assert_eq!(step_size(8), MIN_MEMBER_STEP);
    }
}
