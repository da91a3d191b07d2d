//! Fill-in-the-blank for a causal model.
//!
//! The distribution at a blank from its left context is p at that position, exactly as `score`
//! computes it. A causal model cannot see the words after the blank, so candidates are
//! re-scored: each is written into the blank and the whole text is scored; candidates are
//! ranked by that sentence log-probability, with a posterior normalised over the candidates.
//! The engine scores all candidates in batches with their shared prefix decoded once.
//!
//! Several blanks are filled left to right, each with the earlier ones replaced by their best
//! candidate; the text scored for a blank ends where the next blank begins.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::cli::{Fatal, Settings};
use crate::engine::{EngineError, Model, Session, ViewOptions};
use crate::report::{top_logprobs, TopLogprob};
use crate::stats::RowSummary;
use crate::vocab::{is_wordlike, Vocab};

/// At most this many blanks in one text; more is a per-line error, not an hour of work.
pub const MAX_BLANKS: usize = 16;
/// At most this many candidates per blank (left-context ones plus the user's).
pub const MAX_CANDIDATES: usize = 1000;

/// A blank in a text: a run of two or more underscores, or `[MASK]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blank {
    pub start: usize,
    pub end: usize,
}

/// Find the blanks of a text, left to right. Without any, the blank is after the text.
pub fn find_blanks(text: &str) -> Vec<Blank> {
    let bytes = text.as_bytes();
    let mut blanks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let start = i;
            while i < bytes.len() && bytes[i] == b'_' {
                i += 1;
            }
            if i - start >= 2 {
                blanks.push(Blank { start, end: i });
            }
        } else if bytes[i..].starts_with(b"[MASK]") {
            blanks.push(Blank {
                start: i,
                end: i + 6,
            });
            i += 6;
        } else {
            i += 1;
        }
    }
    blanks
}

/// The pieces of a text around one blank, once earlier blanks are filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Text before the blank, without trailing whitespace: the left context.
    pub left: String,
    /// The whitespace between the left context and the blank.
    pub gap: String,
    /// Text after the blank, up to the next blank (trailing whitespace removed there).
    pub right: String,
}

impl Frame {
    pub fn filled(&self, candidate: &str) -> String {
        format!("{}{}{}{}", self.left, self.gap, candidate, self.right)
    }
    /// Byte range of the candidate inside [`Frame::filled`].
    pub fn candidate_span(&self, candidate: &str) -> (usize, usize) {
        let start = self.left.len() + self.gap.len();
        (start, start + candidate.len())
    }
}

/// The frame of blank `index` of `text`, earlier blanks replaced by `fills`.
pub fn frame(text: &str, blanks: &[Blank], index: usize, fills: &[String]) -> Frame {
    let mut before = String::new();
    let mut at = 0;
    for (b, fill) in blanks[..index].iter().zip(fills) {
        before.push_str(&text[at..b.start]);
        before.push_str(fill);
        at = b.end;
    }
    let (blank_start, blank_end) = match blanks.get(index) {
        Some(b) => (b.start, b.end),
        None => (text.len(), text.len()),
    };
    before.push_str(&text[at..blank_start]);
    let left = before.trim_end().to_owned();
    let mut gap = before[left.len()..].to_owned();
    if blanks.is_empty() && gap.is_empty() && !left.is_empty() {
        // No blank written: the blank is the next word.
        gap.push(' ');
    }
    let right_end = blanks.get(index + 1).map_or(text.len(), |b| b.start);
    let mut right = text[blank_end..right_end].to_owned();
    if index + 1 < blanks.len() {
        right.truncate(right.trim_end().len());
    }
    Frame { left, gap, right }
}

/// Candidate texts from a left-context distribution: the best `n` word-like pieces, without
/// their leading whitespace (the text around the blank has its own), no duplicates.
pub fn left_candidates(vocab: &Vocab, row: &RowSummary, n: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in &row.top {
        if out.len() >= n {
            break;
        }
        let bytes = vocab.bytes(e.id);
        if vocab.is_special(e.id) || !is_wordlike(bytes) {
            continue;
        }
        let text = String::from_utf8_lossy(bytes).trim().to_owned();
        if !text.is_empty() && !out.contains(&text) {
            out.push(text);
        }
    }
    out
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CandidateReport {
    pub text: String,
    /// Log-probability of the candidate's tokens given the left context only.
    pub left_logprob: f64,
    /// Log-probability of the whole scored text with the candidate in the blank.
    pub sentence_logprob: f64,
    /// exp(sentence_logprob) normalised over the candidates.
    pub posterior: f64,
    /// 1-based rank by left_logprob among the candidates (how far it moved: left_rank vs
    /// its place in this list).
    pub left_rank: usize,
    /// Where it came from: "left" (the left context's top tokens) or "user".
    pub source: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BlankReport {
    pub index: usize,
    pub byte_offset: usize,
    /// p at the blank from the left context alone (empty when the blank has no left context).
    pub left_top_logprobs: Vec<TopLogprob>,
    pub left_entropy_bits: Option<f64>,
    /// Best first, by sentence_logprob.
    pub candidates: Vec<CandidateReport>,
    /// The text whose log-probability ranks the candidates, with the best candidate in it.
    /// Earlier blanks hold their best fill; it ends where the next blank begins.
    pub scored_text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FillReport {
    pub text: String,
    pub model: String,
    pub temperature: f64,
    /// How several blanks are filled.
    pub order: &'static str,
    pub blanks: Vec<BlankReport>,
    /// The text with every blank replaced by its best candidate.
    pub filled_text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FillError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("too many blanks ({0}); at most {MAX_BLANKS} per text")]
    TooManyBlanks(usize),
    #[error("blank {} has no candidates: it has no left context to propose any; give some with --candidates", .0 + 1)]
    NoLeftContext(usize),
    #[error("blank {} has no candidates: its left context proposes no word-like token; give some with --candidates", .0 + 1)]
    NoWordlike(usize),
    #[error("cancelled")]
    Cancelled,
}

/// Byte offsets of each token's start in the detokenized text (special tokens are empty).
fn token_offsets(vocab: &Vocab, tokens: &[u32]) -> Vec<(usize, usize)> {
    let mut at = 0;
    tokens
        .iter()
        .map(|&t| {
            let len = if vocab.is_special(t) {
                0
            } else {
                vocab.bytes(t).len()
            };
            let span = (at, at + len);
            at += len;
            span
        })
        .collect()
}

/// Fill every blank of `text`. `main` computes the left context; `batch` holds the
/// multi-sequence context for the candidates, made (or remade larger) on demand and kept for
/// the next call. `cancel` and `progress(blank, done, total)` come from the caller (the
/// explorer cancels on typing and shows progress).
#[allow(clippy::too_many_arguments)]
pub fn fill_text<'m>(
    model: &'m Model,
    main: &mut Session<'m>,
    batch: &mut Option<Session<'m>>,
    text: &str,
    user_candidates: &[String],
    n_candidates: usize,
    view: ViewOptions,
    cancel: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(usize, usize, usize),
) -> Result<FillReport, FillError> {
    let vocab = model.vocab().clone();
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
                n_probs: (n_candidates * 4).max(view.n_probs).max(200),
            };
            let ev = main.evaluate(&left_tokens, wide, cancel)?;
            if ev.cancelled {
                return Err(FillError::Cancelled);
            }
            ev.rows.last().cloned()
        };
        let mut candidates: Vec<(String, &'static str)> = left_row
            .as_ref()
            .map(|r| left_candidates(&vocab, r, n_candidates))
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c, "left"))
            .collect();
        for c in user_candidates {
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
        let batch = batch_session(model, batch, max_len, main.n_ctx())?;
        let lps = batch
            .sequence_logprobs(&seqs, view.temp, cancel, &mut |d, t| progress(index, d, t))?
            .ok_or(FillError::Cancelled)?;

        let mut scored: Vec<CandidateReport> = candidates
            .iter()
            .zip(&seqs)
            .zip(&lps)
            .map(|(((c, source), toks), lp)| {
                let sentence: f64 = lp.iter().flatten().sum();
                let (cs, ce) = fr.candidate_span(c);
                // Tokens that overlap the candidate's bytes (a leading-space token included).
                let left_lp: f64 = token_offsets(&vocab, toks)
                    .iter()
                    .zip(lp)
                    .filter(|((s, e), _)| *s < ce && *e > cs)
                    .filter_map(|(_, l)| *l)
                    .sum();
                CandidateReport {
                    text: c.clone(),
                    left_logprob: left_lp,
                    sentence_logprob: sentence,
                    posterior: 0.0,
                    left_rank: 0,
                    source,
                }
            })
            .collect();
        let mut by_left: Vec<usize> = (0..scored.len()).collect();
        by_left.sort_by(|&a, &b| scored[b].left_logprob.total_cmp(&scored[a].left_logprob));
        for (rank, &i) in by_left.iter().enumerate() {
            scored[i].left_rank = rank + 1;
        }
        normalise_posterior(&mut scored);
        // Best first; ties keep the left-context order.
        scored.sort_by(|a, b| b.sentence_logprob.total_cmp(&a.sentence_logprob));
        let best = scored[0].text.clone();
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
            candidates: scored,
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
        temperature: crate::report::tidy_temp(view.temp),
        order: "left to right; each blank is scored with earlier blanks holding their best candidate, up to the next blank",
        blanks: reports,
        filled_text,
    })
}

/// KV-cache cells the candidate-scoring context holds in all (≈ 94 MB for the default model at
/// f16): up to [`MAX_STREAMS`] short texts side by side, fewer long ones.
const BATCH_CELLS: usize = 4096;
/// Sequences scored side by side at most.
const MAX_STREAMS: usize = 8;

/// The shape of the candidate-scoring context for texts of up to `max_len` tokens, when one
/// sequence may hold `limit` tokens (the `-c` of the main context): `(streams, cells per
/// stream)`. Texts longer than `limit` are refused, as `score` would truncate them.
pub fn batch_shape(max_len: usize, limit: usize) -> Result<(usize, usize), EngineError> {
    if max_len > limit {
        return Err(EngineError::TooLong {
            n_tokens: max_len,
            n_ctx: limit,
        });
    }
    let per_seq = (max_len.max(1).div_ceil(256) * 256).min(limit);
    let streams = (BATCH_CELLS / per_seq).clamp(1, MAX_STREAMS);
    Ok((streams, per_seq))
}

/// The multi-sequence session for texts of up to `max_len` tokens: the one in `slot` when it
/// is large enough, else a new one (the old context is freed first).
fn batch_session<'a, 'm>(
    model: &'m Model,
    slot: &'a mut Option<Session<'m>>,
    max_len: usize,
    limit: usize,
) -> Result<&'a mut Session<'m>, EngineError> {
    let (streams, per_seq) = batch_shape(max_len, limit)?;
    if slot
        .as_ref()
        .is_none_or(|s| s.n_ctx() < max_len || s.n_seq() < streams)
    {
        *slot = None;
        *slot = Some(model.batch_session(streams as u32, per_seq as u32)?);
    }
    slot.as_mut().ok_or(EngineError::Empty)
}

/// posterior_i = exp(s_i - max) / Σ exp(s_j - max).
pub fn normalise_posterior(c: &mut [CandidateReport]) {
    let max = c
        .iter()
        .map(|x| x.sentence_logprob)
        .fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = c.iter().map(|x| (x.sentence_logprob - max).exp()).sum();
    for x in c.iter_mut() {
        x.posterior = (x.sentence_logprob - max).exp() / sum;
    }
}

pub fn fill_command(
    settings: &Settings,
    texts: Vec<String>,
    candidates: Vec<String>,
    n_candidates: usize,
) -> Result<ExitCode, Fatal> {
    let path = crate::cli::resolve_model_path(settings)?;
    let options = crate::cli::model_options(settings, path);
    let model = crate::cli::load_model(&options, |_| true)?;
    let mut main = model.session().map_err(|e| Fatal::other(e.to_string()))?;
    let mut batch = None;
    let mut stdout = std::io::stdout().lock();
    let mut failed = false;
    for text in crate::cli::input_texts(texts) {
        let written = match text {
            Err(lossy) => {
                failed = true;
                crate::cli::print_json_line(
                    &mut stdout,
                    &crate::report::ErrorReport {
                        text: lossy,
                        error: "the line is not valid UTF-8".into(),
                    },
                )
            }
            Ok(text) => match fill_text(
                &model,
                &mut main,
                &mut batch,
                &text,
                &candidates,
                n_candidates,
                settings.view,
                &|| false,
                &mut |_, _, _| {},
            ) {
                Ok(report) => crate::cli::print_json_line(&mut stdout, &report),
                Err(e) => {
                    failed = true;
                    crate::cli::print_json_line(
                        &mut stdout,
                        &crate::report::ErrorReport {
                            text,
                            error: e.to_string(),
                        },
                    )
                }
            },
        };
        if let Err(e) = written {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(Fatal::other(format!("cannot write output: {e}")));
        }
    }
    let _ = stdout.flush();
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Candidates taken from the left context by default.
pub const DEFAULT_CANDIDATES: usize = 50;

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
            Err(EngineError::TooLong {
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

    #[test]
    fn blanks_are_runs_of_underscores_or_mask() {
        let t = "The ____ barked at [MASK] and _ x __";
        let b = find_blanks(t);
        assert_eq!(b.len(), 3);
        assert_eq!(&t[b[0].start..b[0].end], "____");
        assert_eq!(&t[b[1].start..b[1].end], "[MASK]");
        assert_eq!(&t[b[2].start..b[2].end], "__");
        assert!(find_blanks("no blank_here").is_empty());
    }

    #[test]
    fn frames_split_left_gap_and_right() {
        let t = "The ____ barked at the ____ all morning.";
        let b = find_blanks(t);
        let f0 = frame(t, &b, 0, &[]);
        assert_eq!((f0.left.as_str(), f0.gap.as_str()), ("The", " "));
        assert_eq!(f0.right, " barked at the");
        assert_eq!(f0.filled("dog"), "The dog barked at the");
        let f1 = frame(t, &b, 1, &["dog".into()]);
        assert_eq!(f1.left, "The dog barked at the");
        assert_eq!(
            f1.filled("mailman"),
            "The dog barked at the mailman all morning."
        );
        let end = frame("pinch of", &[], 0, &[]);
        assert_eq!(end.filled("salt"), "pinch of salt");
    }

    #[test]
    fn posterior_sums_to_one() {
        let mut c: Vec<CandidateReport> = [-3.0, -1.0, -2.0]
            .iter()
            .map(|&s| CandidateReport {
                text: String::new(),
                left_logprob: 0.0,
                sentence_logprob: s,
                posterior: 0.0,
                left_rank: 0,
                source: "user",
            })
            .collect();
        normalise_posterior(&mut c);
        let total: f64 = c.iter().map(|x| x.posterior).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!(c[1].posterior > c[2].posterior && c[2].posterior > c[0].posterior);
    }
}
