//! Scoring the texts a blank could be filled with, exactly and side by side: the text before
//! the blank is decoded once, each candidate's own tokens on a KV-cache slot of their own, in
//! waves of candidates whose texts have the same length (llama.cpp keeps such a wave in one
//! micro-batch). Each candidate's score is the sum of the log-probabilities of all its tokens —
//! the `total_logprob` that `score` gives the filled text.
//!
//! With pruning (the vocabulary search), the decode of a wave goes in steps; after each step a
//! candidate whose bound — the sum of the log-probabilities known so far, all later ones being
//! ≤ 0 — is below the k-th best complete score is dropped.

use crate::analysis::search::TopK;
use crate::model::slots::{step_size, Slots, Start};
use crate::model::ModelError;

/// A text for the blank, with what is known of its score.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub text: String,
    pub source: &'static str,
    /// The filled text's tokens.
    pub tokens: Vec<u32>,
    /// `logprobs[j]` = ln p(tokens[j] | tokens[..j]), once known; `None` for tokens nothing
    /// predicts (the first, without BOS) and for those not scored yet.
    pub logprobs: Vec<Option<f64>>,
    /// Tokens shared with the decoded prefix (the text before the blank).
    pub shared: usize,
    /// Targets `1..=known` have their log-probability.
    pub known: usize,
    /// Scored to the end.
    pub complete: bool,
}

impl Candidate {
    /// An upper bound of the final score: the sum of what is known.
    pub fn bound(&self) -> f64 {
        self.logprobs.iter().flatten().sum()
    }
}

/// What the scorer knows about the prefix: the log-probability of each prefix token (from the
/// main evaluation of the text before the blank) and of every token after it (that row).
pub struct PrefixFacts<'a> {
    pub tokens: &'a [u32],
    /// `token_logprobs[j]` for prefix token j (`None` for j = 0 or where nothing predicts it).
    pub token_logprobs: Vec<Option<f64>>,
    /// The distribution after the whole prefix, over the whole vocabulary (ln p); empty when
    /// the prefix is empty.
    pub next: &'a [f64],
}

impl PrefixFacts<'_> {
    /// Fill in what the prefix already tells about `c`'s tokens.
    pub fn seed(&self, c: &mut Candidate) {
        let shared = c.shared;
        for j in 1..shared {
            c.logprobs[j] = self.token_logprobs.get(j).copied().flatten();
        }
        c.known = shared.saturating_sub(1);
        if shared == self.tokens.len() && shared > 0 {
            if let (Some(&t), Some(slot)) = (c.tokens.get(shared), c.logprobs.get_mut(shared)) {
                *slot = self.next.get(t as usize).copied();
                c.known = shared;
            }
        }
    }
}

/// The log-probability of every token of several token sequences, scored side by side on
/// `batch` (a session with several streams): `out[s][j] = ln p(seqs[s][j] | seqs[s][..j])`,
/// `None` for j = 0. Their common prefix is decoded once. `progress(done, total)` counts
/// sequences. `None` when cancelled.
pub fn sequence_logprobs(
    batch: &mut crate::model::Session<'_>,
    seqs: &[Vec<u32>],
    temp: f32,
    cancel: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Option<Vec<Vec<Option<f64>>>>, ModelError> {
    if seqs.iter().any(Vec::is_empty) {
        return Err(ModelError::Empty);
    }
    let Some(first) = seqs.first() else {
        return Ok(Some(Vec::new()));
    };
    let shared = seqs
        .iter()
        .map(|s| crate::model::common_prefix(first, s).min(s.len() - 1))
        .min()
        .unwrap_or(0);
    let prefix = &first[..shared];
    let Some((mut slots, rows)) = batch.open_slots(prefix, temp, cancel)? else {
        return Ok(None);
    };
    let facts = PrefixFacts {
        tokens: prefix,
        token_logprobs: rows.token_logprobs,
        next: &rows.next,
    };
    let mut cands: Vec<Candidate> = seqs
        .iter()
        .map(|s| {
            let mut c = Candidate {
                text: String::new(),
                source: "",
                logprobs: vec![None; s.len()],
                tokens: s.clone(),
                shared,
                known: 0,
                complete: false,
            };
            facts.seed(&mut c);
            c
        })
        .collect();
    let all: Vec<usize> = (0..cands.len()).collect();
    let n = cands.len();
    let mut top = TopK::new(1);
    if !score_all(
        &mut slots,
        &mut cands,
        &all,
        &mut top,
        cancel,
        &mut |done, _| progress(done, n),
    )? {
        return Ok(None);
    }
    Ok(Some(cands.into_iter().map(|c| c.logprobs).collect()))
}

/// Score the candidates `which` to the end, in waves of equal [`wave_key`];
/// `on_wave(done, cands)` after each wave. Returns false when cancelled.
pub fn score_all(
    slots: &mut Slots<'_, '_>,
    cands: &mut [Candidate],
    which: &[usize],
    top: &mut TopK,
    cancel: &dyn Fn() -> bool,
    on_wave: &mut dyn FnMut(usize, &[Candidate]),
) -> Result<bool, ModelError> {
    let waves = slots.count().max(1);
    let mut groups: std::collections::BTreeMap<(usize, usize), Vec<usize>> = Default::default();
    for &i in which {
        groups
            .entry(wave_key(&cands[i], waves))
            .or_default()
            .push(i);
    }
    let mut done = 0;
    for group in groups.values() {
        for wave in group.chunks(waves) {
            if !score_wave(slots, cands, wave, top, false, cancel)? {
                return Ok(false);
            }
            done += wave.len();
            on_wave(done, cands);
        }
    }
    Ok(true)
}

/// Where a wave's decode starts: at the first target not yet known, earlier when its members'
/// remaining tokens would make the step tiny, never past what they share with the prefix.
fn wave_start(c: &Candidate, members: usize) -> usize {
    let len = c.tokens.len();
    c.known
        .min(c.shared)
        .min(len.saturating_sub(step_size(members)))
        .min(len - 1)
}

/// The key of the waves a candidate can share: same length, same start.
pub fn wave_key(c: &Candidate, wave: usize) -> (usize, usize) {
    (c.tokens.len(), wave_start(c, wave))
}

/// Score `wave` (indices into `cands`, all with the same [`wave_key`]) on the slots. With
/// `prune`, members that `top` rules out are dropped between steps. Every completed score is
/// entered into `top`. Returns false when cancelled.
pub fn score_wave(
    slots: &mut Slots<'_, '_>,
    cands: &mut [Candidate],
    wave: &[usize],
    top: &mut TopK,
    prune: bool,
    cancel: &dyn Fn() -> bool,
) -> Result<bool, ModelError> {
    let Some(&first) = wave.first() else {
        return Ok(true);
    };
    if slots.one_at_a_time() {
        // The model failed its layout self-check: each candidate's whole text alone, every
        // number its own (none from the prefix's decode).
        for &i in wave {
            if cancel() {
                return Ok(false);
            }
            let c = &mut cands[i];
            c.logprobs = slots.alone(&c.tokens)?.unwrap_or_default();
            c.known = c.tokens.len().saturating_sub(1);
            c.complete = true;
            top.insert(c.bound());
        }
        return Ok(true);
    }
    let len = cands[first].tokens.len();
    let mut pos = wave_start(&cands[first], wave.len());
    // Members and their slots: member k on slot k for the whole wave.
    let mut alive: Vec<(usize, usize)> = wave.iter().copied().enumerate().collect();
    let mut start = Start::Fresh;
    while !alive.is_empty() && pos < len {
        if cancel() {
            return Ok(false);
        }
        let n = alive.len();
        // With pruning, short steps (a bound after each); without, as long as the batch allows.
        let chunk = if prune {
            step_size(n)
        } else {
            (slots.max_step_tokens() / n).max(step_size(n))
        };
        let to = (pos + chunk).min(len);
        // A short last step starts earlier (its members re-decode tokens they hold).
        let from = if start == Start::Continue && to - pos < step_size(n) {
            to.saturating_sub(step_size(n)).min(pos)
        } else {
            pos
        };
        let members: Vec<(usize, &[u32])> = alive
            .iter()
            .map(|&(slot, i)| (slot, cands[i].tokens.as_slice()))
            .collect();
        let lps = slots.step(&members, from, to, start)?;
        for (&(_, i), row) in alive.iter().zip(lps) {
            let c = &mut cands[i];
            for (j, lp) in (from..to).zip(row) {
                if j + 1 > c.known && j + 1 < len {
                    c.logprobs[j + 1] = lp;
                }
            }
            c.known = c.known.max(to.min(len - 1));
        }
        pos = to;
        start = Start::Continue;
        if prune && pos < len {
            alive.retain(|&(_, i)| !top.rules_out(cands[i].bound()));
        }
    }
    for &(_, i) in &alive {
        let c = &mut cands[i];
        c.complete = true;
        top.insert(c.bound());
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(tokens: &[u32], shared: usize) -> Candidate {
        Candidate {
            text: String::new(),
            source: "search",
            tokens: tokens.to_vec(),
            logprobs: vec![None; tokens.len()],
            shared,
            known: 0,
            complete: false,
        }
    }

    #[test]
    fn the_prefix_seeds_what_it_knows() {
        let next = [-1.0, -2.0, -3.0, -4.0];
        let facts = PrefixFacts {
            tokens: &[0, 1],
            token_logprobs: vec![None, Some(-0.5)],
            next: &next,
        };
        let mut c = cand(&[0, 1, 3, 2], 2);
        facts.seed(&mut c);
        assert_eq!(c.logprobs, [None, Some(-0.5), Some(-4.0), None]);
        assert_eq!(c.known, 2);
        assert_eq!(c.bound(), -4.5);
        // A candidate that shares less of the prefix knows less.
        let mut odd = cand(&[0, 3, 3], 1);
        facts.seed(&mut odd);
        assert_eq!(odd.logprobs, [None, None, None]);
        assert_eq!(odd.known, 0);
    }

    #[test]
    fn waves_start_where_the_unknown_begins_but_never_tiny() {
        let mut c = cand(&[0; 20], 8);
        c.known = 8;
        assert_eq!(wave_start(&c, 8), 8);
        let mut short = cand(&[0; 10], 8);
        short.known = 8;
        // 1 member must decode 16 tokens: the whole text from 0.
        assert_eq!(wave_start(&short, 1), 0);
        // 8 members decode at least 3 tokens each.
        assert_eq!(wave_start(&short, 8), 7);
    }
}
