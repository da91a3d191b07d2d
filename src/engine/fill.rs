//! Fill-in-the-blank on a model: the left context's distribution from the main session, then
//! every candidate written into the blank and its whole text scored, in batches that decode the
//! shared prefix once (`Session::sequence_logprobs`). The ranking itself is
//! `analysis::blanks::rank_candidates`.

use crate::analysis::blanks::{
    find_blanks, frame, left_candidates, rank_candidates, BlankReport, FillReport, ScoredCandidate,
};
use crate::analysis::report::{tidy_temp, top_logprobs};
use crate::analysis::stats::ViewOptions;
use crate::model::{Model, ModelError, Session};

/// At most this many blanks in one text; more is a per-line error, not an hour of work.
pub const MAX_BLANKS: usize = 16;
/// At most this many candidates per blank (left-context ones plus the user's).
pub const MAX_CANDIDATES: usize = 1000;
/// Candidates taken from the left context by default.
pub const DEFAULT_CANDIDATES: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum FillError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("too many blanks ({0}); at most {MAX_BLANKS} per text")]
    TooManyBlanks(usize),
    #[error("blank {} has no candidates: it has no left context to propose any; give some with --candidates", .0 + 1)]
    NoLeftContext(usize),
    #[error("blank {} has no candidates: its left context proposes no word-like token; give some with --candidates", .0 + 1)]
    NoWordlike(usize),
    #[error("cancelled")]
    Cancelled,
}

/// What to fill: the text, the user's own candidates, how many the left context proposes, and
/// the view (temperature; the top-k of the left-context lists).
#[derive(Debug, Clone, PartialEq)]
pub struct FillRequest {
    pub text: String,
    pub user_candidates: Vec<String>,
    pub n_candidates: usize,
    pub view: ViewOptions,
}

/// The sessions fill-in works with: `main` computes left contexts (and keeps its KV cache for
/// the next text), `batch` is the multi-sequence context for the candidates, made (or remade
/// larger) on demand and kept for the next call.
pub struct Filler<'m> {
    pub model: &'m Model,
    pub batch: Option<Session<'m>>,
}

impl<'m> Filler<'m> {
    pub fn new(model: &'m Model) -> Self {
        Self { model, batch: None }
    }

    /// Fill every blank of the request's text. `cancel` and `progress(blank, done, total)` come
    /// from the caller (the explorer cancels on typing and shows progress).
    pub fn fill(
        &mut self,
        main: &mut Session<'m>,
        req: &FillRequest,
        cancel: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(usize, usize, usize),
    ) -> Result<FillReport, FillError> {
        let model = self.model;
        let vocab = model.vocab().clone();
        let text = req.text.as_str();
        let view = req.view;
        let blanks = find_blanks(text);
        if blanks.len() > MAX_BLANKS {
            return Err(FillError::TooManyBlanks(blanks.len()));
        }
        let n_frames = blanks.len().max(1);
        let mut fills: Vec<String> = Vec::new();
        let mut reports = Vec::new();
        for index in 0..n_frames {
            let fr = frame(text, &blanks, index, &fills);
            // Left context: p at the blank, exactly as `score` computes it.
            let left_tokens = model.tokenize(&fr.left);
            let left_row = if left_tokens.is_empty() {
                None
            } else {
                let wide = ViewOptions {
                    temp: view.temp,
                    // Room to skip punctuation and whitespace pieces.
                    n_probs: (req.n_candidates * 4).max(view.n_probs).max(200),
                };
                let ev = main.evaluate(&left_tokens, wide, cancel)?;
                if ev.cancelled {
                    return Err(FillError::Cancelled);
                }
                ev.rows.last().cloned()
            };
            let mut candidates: Vec<(String, &'static str)> = left_row
                .as_ref()
                .map(|r| left_candidates(&vocab, r, req.n_candidates))
                .unwrap_or_default()
                .into_iter()
                .map(|c| (c, "left"))
                .collect();
            for c in &req.user_candidates {
                let c = c.trim();
                if !c.is_empty() && !candidates.iter().any(|(x, _)| x == c) {
                    candidates.push((c.to_owned(), "user"));
                }
            }
            candidates.truncate(MAX_CANDIDATES);
            if candidates.is_empty() {
                return Err(if left_tokens.is_empty() {
                    FillError::NoLeftContext(index)
                } else {
                    FillError::NoWordlike(index)
                });
            }

            let seqs: Vec<Vec<u32>> = candidates
                .iter()
                .map(|(c, _)| model.tokenize(&fr.filled(c)))
                .collect();
            let max_len = seqs.iter().map(Vec::len).max().unwrap_or(1);
            let batch = self.batch_session(max_len, main.n_ctx())?;
            let lps = batch
                .sequence_logprobs(&seqs, view.temp, cancel, &mut |d, t| progress(index, d, t))?
                .ok_or(FillError::Cancelled)?;
            let scored: Vec<ScoredCandidate<'_>> = candidates
                .iter()
                .zip(&seqs)
                .zip(&lps)
                .map(|(((text, source), tokens), logprobs)| ScoredCandidate {
                    text,
                    source,
                    tokens,
                    logprobs,
                })
                .collect();
            let ranked = rank_candidates(&vocab, &fr, &scored);
            let best = ranked[0].text.clone();
            reports.push(BlankReport {
                index,
                byte_offset: blanks.get(index).map_or(text.len(), |b| b.start),
                left_top_logprobs: left_row
                    .as_ref()
                    .map(|r| {
                        let k = view.n_probs.min(r.top.len());
                        top_logprobs(&vocab, &r.top[..k])
                    })
                    .unwrap_or_default(),
                left_entropy_bits: left_row.as_ref().map(|r| r.entropy_bits),
                candidates: ranked,
                scored_text: fr.filled(&best),
            });
            fills.push(best);
        }
        let filled_text = if blanks.is_empty() {
            frame(text, &blanks, 0, &[]).filled(fills.first().map_or("", String::as_str))
        } else {
            let rest = frame(text, &blanks, blanks.len(), &fills);
            format!("{}{}{}", rest.left, rest.gap, rest.right)
        };
        Ok(FillReport {
            text: text.to_owned(),
            model: model.info().file_name,
            temperature: tidy_temp(view.temp),
            order: "left to right; each blank is scored with earlier blanks holding their best candidate, up to the next blank",
            blanks: reports,
            filled_text,
        })
    }

    /// The multi-sequence session for texts of up to `max_len` tokens: the one kept when it is
    /// large enough, else a new one (the old context is freed first).
    fn batch_session(
        &mut self,
        max_len: usize,
        limit: usize,
    ) -> Result<&mut Session<'m>, ModelError> {
        let (streams, per_seq) = batch_shape(max_len, limit)?;
        let fits = |s: &Session<'_>| s.n_ctx() >= max_len && s.n_seq() >= streams;
        let session = match self.batch.take() {
            Some(s) if fits(&s) => s,
            old => {
                // Free the old context before making the larger one.
                drop(old);
                self.model.batch_session(streams as u32, per_seq as u32)?
            }
        };
        Ok(self.batch.insert(session))
    }
}

/// KV-cache cells the candidate-scoring context holds in all (≈ 94 MB for the default model at
/// f16): up to [`MAX_STREAMS`] short texts side by side, fewer long ones.
const BATCH_CELLS: usize = 4096;
/// Sequences scored side by side at most.
const MAX_STREAMS: usize = 8;

/// The shape of the candidate-scoring context for texts of up to `max_len` tokens, when one
/// sequence may hold `limit` tokens (the `-c` of the main context): `(streams, cells per
/// stream)`. Texts longer than `limit` are refused, as `score` would truncate them.
pub fn batch_shape(max_len: usize, limit: usize) -> Result<(usize, usize), ModelError> {
    if max_len > limit {
        return Err(ModelError::TooLong {
            n_tokens: max_len,
            n_ctx: limit,
        });
    }
    let per_seq = (max_len.max(1).div_ceil(256) * 256).min(limit);
    let streams = (BATCH_CELLS / per_seq).clamp(1, MAX_STREAMS);
    Ok((streams, per_seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn batch_shape_fits_short_texts_side_by_side_and_respects_the_context() {
        assert_eq!(batch_shape(20, 4096).ok(), Some((MAX_STREAMS, 256)));
        assert_eq!(batch_shape(600, 4096).ok(), Some((5, 768)));
        assert_eq!(batch_shape(4000, 4096).ok(), Some((1, 4096)));
        assert_eq!(batch_shape(200, 200).ok(), Some((MAX_STREAMS, 200)));
        assert!(matches!(
            batch_shape(257, 256),
            Err(ModelError::TooLong {
                n_tokens: 257,
                n_ctx: 256
            })
        ));
    }

    proptest! {
        #[test]
        fn batch_shape_holds_every_text_within_budget(max_len in 1usize..20_000, limit in 1usize..20_000) {
            match batch_shape(max_len, limit) {
                Ok((streams, per_seq)) => {
                    prop_assert!(max_len <= limit);
                    prop_assert!(per_seq >= max_len && per_seq <= limit);
                    prop_assert!((1..=MAX_STREAMS).contains(&streams));
                    prop_assert!(streams == 1 || streams * per_seq <= BATCH_CELLS);
                }
                Err(_) => prop_assert!(max_len > limit),
            }
        }
    }
}
