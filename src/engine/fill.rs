//! Fill-in-the-blank on a model. For each blank, left to right: the left context's
//! distribution from the main session (exactly as `score` computes it); the proposed
//! candidates (the left context's best words, the user's, and — on a chat model — the words the
//! model itself answers when asked); optionally the vocabulary search (`engine::search`). Every
//! candidate is written into the blank and its whole text scored; the ranking is
//! `analysis::blanks::rank_candidates`.

use std::time::{Duration, Instant};

use crate::analysis::blanks::{
    find_blanks, frame, left_candidates, rank_candidates, BlankReport, FillReport, Frame,
    ScoredCandidate,
};
use crate::analysis::report::{tidy_temp, top_logprobs};
use crate::analysis::search::{Budget, SearchCoverage};
use crate::analysis::stats::ViewOptions;
use crate::analysis::vocab::is_wordlike;
use crate::model::fanout::{Fanout, FANOUT_WIDTH};
use crate::model::{Model, ModelError, Session};

use super::candidates::{Candidate, PrefixFacts};
use super::search::{score_blank, BlankProgress};

/// At most this many blanks in one text; more is a per-line error, not an hour of work.
pub const MAX_BLANKS: usize = 16;
/// At most this many candidates per blank (left-context ones plus the user's).
pub const MAX_CANDIDATES: usize = 1000;
/// Candidates taken from the left context by default.
pub const DEFAULT_CANDIDATES: usize = 50;
/// Words the model's own answer may propose.
pub const ASKED: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum FillError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("too many blanks ({0}); at most {MAX_BLANKS} per text")]
    TooManyBlanks(usize),
    #[error("blank {} has no candidates: nothing proposes any (no left context, no search); give some with --candidates or --search", .0 + 1)]
    NoCandidates(usize),
    #[error("cancelled")]
    Cancelled,
}

/// What to fill: the text, the user's own candidates, how many the left context proposes, the
/// view (temperature; the top-k of the left-context lists), how much of the vocabulary to
/// search, and whether to ask the model (chat template) for its own words.
#[derive(Debug, Clone, PartialEq)]
pub struct FillRequest {
    pub text: String,
    pub user_candidates: Vec<String>,
    pub n_candidates: usize,
    pub view: ViewOptions,
    pub search: Budget,
    pub ask: bool,
    /// Search only these words instead of the vocabulary's whole-word tokens.
    pub word_list: Option<std::sync::Arc<Vec<String>>>,
    /// Drop search words by their bound (always, but for the benchmark that measures what
    /// the pruning saves).
    pub prune: bool,
    /// Score the words of a blank at the end of its text in fan-outs, many words a decode over
    /// the prefix decoded once (always, but for the benchmark that measures what it saves).
    pub shared_prefix: bool,
}

/// Where a fill stands: the blank being worked on, candidates settled of those planned, and
/// (every so often) the ranking so far.
#[derive(Debug, Clone)]
pub struct FillUpdate {
    pub blank: usize,
    pub progress: BlankProgress,
    /// The report as it would be if the fill ended now (blanks after this one not yet done).
    pub partial: Option<FillReport>,
}

/// How often a partial report is built for the caller.
const PARTIAL_EVERY: Duration = Duration::from_millis(400);

/// The sessions fill-in works with: `main` computes left contexts (and keeps its KV cache for
/// the next text); `batch` is the multi-stream context for the candidates, made (or remade
/// larger) on demand and kept for the next call.
pub struct Filler<'m> {
    pub model: &'m Model,
    pub batch: Option<Session<'m>>,
    /// The search's fan-out context (`model::fanout`), made on demand and kept.
    fanout: Option<Fanout<'m>>,
    /// The intervention of the main session of the last fill: the batch follows it.
    edits: Option<std::sync::Arc<crate::model::Edits>>,
}

impl<'m> Filler<'m> {
    pub fn new(model: &'m Model) -> Self {
        Self {
            model,
            batch: None,
            fanout: None,
            edits: model.default_edits(),
        }
    }

    /// Fill every blank of the request's text. `cancel` and `on_update` come from the caller
    /// (the explorer cancels on typing and shows progress).
    pub fn fill(
        &mut self,
        main: &mut Session<'m>,
        req: &FillRequest,
        cancel: &dyn Fn() -> bool,
        on_update: &mut dyn FnMut(FillUpdate),
    ) -> Result<FillReport, FillError> {
        let text = req.text.as_str();
        if text.is_empty() {
            return Err(FillError::Model(ModelError::Empty));
        }
        // Candidates are scored on the model the main session evaluates (ablated or not).
        self.edits = main.edits().cloned();
        let blanks = find_blanks(text);
        if blanks.len() > MAX_BLANKS {
            return Err(FillError::TooManyBlanks(blanks.len()));
        }
        let model_name = self.model.info().file_name;
        let mut fills: Vec<String> = Vec::new();
        let mut reports: Vec<BlankReport> = Vec::new();
        for index in 0..blanks.len().max(1) {
            let fr = frame(text, &blanks, index, &fills);
            let byte_offset = blanks.get(index).map_or(text.len(), |b| b.start);
            let report = self.fill_blank(
                main,
                req,
                &fr,
                index,
                byte_offset,
                cancel,
                &mut |progress, partial: Option<BlankReport>| {
                    let partial = partial.map(|b| {
                        let mut blanks_so_far = reports.clone();
                        blanks_so_far.push(b);
                        fill_report(text, model_name.clone(), req.view, blanks_so_far, &[])
                    });
                    on_update(FillUpdate {
                        blank: index,
                        progress,
                        partial,
                    })
                },
            )?;
            fills.push(report.candidates[0].text.clone());
            reports.push(report);
        }
        let mut report = fill_report(text, model_name, req.view, reports, &fills);
        report.batching = self.model.info().batching;
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    fn fill_blank(
        &mut self,
        main: &mut Session<'m>,
        req: &FillRequest,
        fr: &Frame,
        index: usize,
        byte_offset: usize,
        cancel: &dyn Fn() -> bool,
        on_update: &mut dyn FnMut(BlankProgress, Option<BlankReport>),
    ) -> Result<BlankReport, FillError> {
        let model = self.model;
        let vocab = model.vocab().clone();
        let view = req.view;
        // Left context: p at the blank, exactly as `score` computes it, over the whole
        // vocabulary (the search orders words by it).
        let left_tokens = model.tokenize(&fr.left);
        let all_ids: Vec<u32> = (0..vocab.len() as u32).collect();
        let (left_row, token_logprobs, next) = if left_tokens.is_empty() {
            (None, Vec::new(), Vec::new())
        } else {
            let wide = ViewOptions {
                temp: view.temp,
                // Room to skip punctuation and whitespace pieces.
                n_probs: (req.n_candidates * 4).max(view.n_probs).max(200),
            };
            let (ev, next) = main
                .next_logprobs(&left_tokens, wide, &all_ids, cancel)?
                .ok_or(FillError::Cancelled)?;
            let token_logprobs = std::iter::once(None)
                .chain(ev.rows.iter().map(|r| r.target.map(|t| t.logprob)))
                .take(left_tokens.len())
                .collect();
            (ev.rows.last().cloned(), token_logprobs, next)
        };

        // Proposals: the left context's best words, the user's, the model's own answer.
        let mut proposals: Vec<(String, &'static str)> = Vec::new();
        let mut propose = |text: &str, source: &'static str| {
            let text = text.trim();
            if !text.is_empty()
                && !proposals.iter().any(|(x, _)| x == text)
                && proposals.len() < MAX_CANDIDATES
            {
                proposals.push((text.to_owned(), source));
            }
        };
        if let Some(r) = &left_row {
            for c in left_candidates(&vocab, r, req.n_candidates) {
                propose(&c, "left");
            }
        }
        for c in &req.user_candidates {
            propose(c, "user");
        }
        if req.ask {
            for c in self.ask_model(&fr.filled("____"), view.temp, cancel)? {
                propose(&c, "asked");
            }
        }
        if proposals.is_empty() && req.search == Budget::Words(0) {
            return Err(FillError::NoCandidates(index));
        }

        let n_proposals = proposals.len();
        let facts = PrefixFacts {
            tokens: &left_tokens,
            token_logprobs,
            next: &next,
        };
        let longest = proposals
            .iter()
            .map(|(c, _)| fr.filled(c).len())
            .max()
            .unwrap_or(0);
        // A generous bound of the longest candidate text in tokens (a byte per token at most;
        // search words are single tokens, so the right context dominates).
        let max_tokens = model
            .tokenize(&fr.filled("____"))
            .len()
            .max(model.tokenize(&fr.filled("")).len() + 8)
            .max(longest.min(main.n_ctx()));
        let max_tokens = max_tokens.min(main.n_ctx());
        // The search's proxy order: the next-token distribution after the sentence (blank
        // shown), a newline and the text before the blank — the model has read what follows.
        let primed = if req.search == Budget::Words(0) {
            Vec::new()
        } else {
            let text = format!("{}\n{}", fr.filled("____"), fr.left);
            let tokens = model.tokenize(&text);
            let batch = self.batch_session(tokens.len() + 1, main.n_ctx())?;
            let (_, row) = batch
                .next_logprobs(&tokens, view, &all_ids, cancel)?
                .ok_or(FillError::Cancelled)?;
            row
        };
        // The fan-out context, made (or remade larger) when a search is asked for.
        let fanout = if req.search != Budget::Words(0) && req.shared_prefix {
            ensure_fanout(self.model, &mut self.fanout, left_tokens.len())?
        } else {
            None
        };
        let limit = main.n_ctx().min(self.model.options().ctx_size as usize);
        let batch = ensure_batch(self.model, &mut self.batch, max_tokens, limit)?;
        batch.set_edits(self.edits.clone());
        let (mut slots, _) = batch
            .open_slots(&left_tokens, view.temp, cancel)?
            .ok_or(FillError::Cancelled)?;
        // The first partial report goes out as soon as the shortlist is ranked.
        let mut last_partial: Option<Instant> = None;
        let outcome = score_blank(
            model,
            &mut slots,
            fr,
            &facts,
            &primed,
            proposals,
            req.word_list.as_deref().map(Vec::as_slice),
            req.search,
            req.prune,
            fanout,
            cancel,
            &mut |progress, cands| {
                let due = progress.settled >= progress.planned.min(n_proposals)
                    && last_partial.is_none_or(|t| t.elapsed() >= PARTIAL_EVERY);
                let partial = due.then(|| {
                    last_partial = Some(Instant::now());
                    blank_report(&vocab, fr, index, byte_offset, &left_row, view, cands, None)
                });
                on_update(progress, partial.flatten());
            },
        )?
        .ok_or(FillError::Cancelled)?;
        drop(slots);
        blank_report(
            &vocab,
            fr,
            index,
            byte_offset,
            &left_row,
            view,
            &outcome.scored,
            outcome.coverage,
        )
        .ok_or(FillError::NoCandidates(index))
    }

    /// The model's own words for the blank: a chat prompt asking which word fills it, and the
    /// word-like tokens it would answer with first. Nothing for a model without a template.
    fn ask_model(
        &mut self,
        text: &str,
        temp: f32,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Vec<String>, FillError> {
        let model = self.model;
        let question = format!(
            "Which single word fills the blank (____) in this sentence? Answer with that word only.\n\n{text}"
        );
        let Some(prompt) = model.chat_prompt(&question) else {
            return Ok(Vec::new());
        };
        let tokens = model.tokenize_prompt(&prompt);
        let batch = self.batch_session(tokens.len() + 1, usize::MAX)?;
        if tokens.len() >= batch.n_ctx() {
            return Ok(Vec::new());
        }
        let view = ViewOptions { temp, n_probs: 50 };
        let Some(ev) = batch
            .evaluate(&tokens, view, cancel)
            .map(|ev| (!ev.cancelled).then_some(ev))?
        else {
            return Err(FillError::Cancelled);
        };
        batch.reset();
        let vocab = model.vocab();
        let mut words: Vec<String> = Vec::new();
        for e in ev.rows.last().map(|r| r.top.as_slice()).unwrap_or_default() {
            let bytes = vocab.bytes(e.id);
            if vocab.is_special(e.id) || !is_wordlike(bytes) {
                continue;
            }
            let w = String::from_utf8_lossy(bytes).trim().to_owned();
            if w.chars().all(char::is_alphabetic) && !words.contains(&w) {
                words.push(w);
            }
            if words.len() == ASKED {
                break;
            }
        }
        Ok(words)
    }

    /// The multi-stream session, large enough for texts of `max_len` tokens (for other work
    /// that scores sequences side by side, such as watched words).
    pub fn batch_for(&mut self, max_len: usize) -> Result<&mut Session<'m>, ModelError> {
        self.batch_session(max_len, usize::MAX)
    }

    /// The multi-stream session for texts of up to `max_len` tokens: the one kept when it is
    /// large enough, else a new one (the old context is freed first).
    fn batch_session(
        &mut self,
        max_len: usize,
        limit: usize,
    ) -> Result<&mut Session<'m>, ModelError> {
        let limit = limit.min(self.model.options().ctx_size as usize);
        let batch = ensure_batch(self.model, &mut self.batch, max_len, limit)?;
        batch.set_edits(self.edits.clone());
        Ok(batch)
    }
}

/// The fan-out context for a prefix of `prefix` tokens: the one kept if it fits, else a new one
/// (room for prefixes in steps of 128 tokens). `None` when the prefix is longer than a
/// sequence may be (the search then goes word by word).
fn ensure_fanout<'a, 'm>(
    model: &'m Model,
    kept: &'a mut Option<Fanout<'m>>,
    prefix: usize,
) -> Result<Option<&'a mut Fanout<'m>>, ModelError> {
    if prefix >= model.options().ctx_size as usize {
        return Ok(None);
    }
    if !kept.as_ref().is_some_and(|f| f.fits(prefix)) {
        *kept = None;
        *kept = Some(model.fanout((prefix + 1).next_multiple_of(128), FANOUT_WIDTH)?);
    }
    Ok(kept.as_mut())
}

/// The report of a text, from the blank reports so far; `fills` are the chosen words (the
/// filled text is left out while blanks remain).
fn fill_report(
    text: &str,
    model: String,
    view: ViewOptions,
    blanks: Vec<BlankReport>,
    fills: &[String],
) -> FillReport {
    let all = find_blanks(text);
    let filled_text = if fills.len() < all.len().max(1) {
        String::new()
    } else if all.is_empty() {
        frame(text, &all, 0, &[]).filled(fills.first().map_or("", String::as_str))
    } else {
        let rest = frame(text, &all, all.len(), fills);
        format!("{}{}{}", rest.left, rest.gap, rest.right)
    };
    FillReport {
        text: text.to_owned(),
        model,
        temperature: tidy_temp(view.temp),
        order: "left to right; each blank is scored with earlier blanks holding their best candidate, up to the next blank",
        blanks,
        filled_text,
        batching: None,
    }
}

/// The report of one blank from its scored candidates (complete ones only); `None` when no
/// candidate is complete yet.
#[allow(clippy::too_many_arguments)]
fn blank_report(
    vocab: &crate::analysis::vocab::Vocab,
    fr: &Frame,
    index: usize,
    byte_offset: usize,
    left_row: &Option<crate::analysis::stats::RowSummary>,
    view: ViewOptions,
    cands: &[Candidate],
    coverage: Option<SearchCoverage>,
) -> Option<BlankReport> {
    let scored: Vec<ScoredCandidate<'_>> = cands
        .iter()
        .filter(|c| c.complete)
        .map(|c| ScoredCandidate {
            text: &c.text,
            source: c.source,
            tokens: &c.tokens,
            logprobs: &c.logprobs,
        })
        .collect();
    if scored.is_empty() {
        return None;
    }
    let ranked = rank_candidates(vocab, fr, &scored);
    Some(BlankReport {
        index,
        byte_offset,
        left_top_logprobs: left_row
            .as_ref()
            .map(|r| {
                let k = view.n_probs.min(r.top.len());
                top_logprobs(vocab, &r.top[..k])
            })
            .unwrap_or_default(),
        left_entropy_bits: left_row.as_ref().map(|r| r.entropy_bits),
        scored_text: fr.filled(&ranked[0].text),
        candidates: ranked,
        coverage,
    })
}

/// KV-cache cells the candidate-scoring context holds in all (≈ 94 MB for the default model at
/// f16): up to [`MAX_STREAMS`] short texts side by side, fewer long ones.
const BATCH_CELLS: usize = 4096;
/// Streams of the candidate context at most (one keeps the prefix, the rest are slots).
const MAX_STREAMS: usize = 16;

/// The multi-stream session in `slot` when it holds texts of `max_len` tokens, else a new one
/// shaped by [`batch_shape`] (the old context is freed first).
pub fn ensure_batch<'s, 'm>(
    model: &'m Model,
    slot: &'s mut Option<Session<'m>>,
    max_len: usize,
    limit: usize,
) -> Result<&'s mut Session<'m>, ModelError> {
    let (streams, per_seq) = batch_shape(max_len, limit)?;
    let fits = |s: &Session<'_>| s.n_ctx() >= max_len && s.n_seq() >= streams;
    let session = match slot.take() {
        Some(s) if fits(&s) => s,
        old => {
            // Free the old context before making the larger one.
            drop(old);
            model.batch_session(streams as u32, per_seq as u32)?
        }
    };
    Ok(slot.insert(session))
}

/// The shape of the candidate-scoring context for texts of up to `max_len` tokens, when one
/// sequence may hold `limit` tokens (the `-c` of the main context): `(streams, cells per
/// stream)`, at least two streams (the prefix and one slot). Texts longer than `limit` are
/// refused, as `score` would truncate them.
pub fn batch_shape(max_len: usize, limit: usize) -> Result<(usize, usize), ModelError> {
    if max_len > limit {
        return Err(ModelError::TooLong {
            n_tokens: max_len,
            n_ctx: limit,
        });
    }
    let per_seq = (max_len.max(1).div_ceil(256) * 256).min(limit);
    let streams = (BATCH_CELLS / per_seq).clamp(2, MAX_STREAMS);
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
        assert_eq!(batch_shape(4000, 4096).ok(), Some((2, 4096)));
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
                    prop_assert!((2..=MAX_STREAMS).contains(&streams));
                    prop_assert!(streams == 2 || streams * per_seq <= BATCH_CELLS);
                }
                Err(_) => prop_assert!(max_len > limit),
            }
        }
    }
}
