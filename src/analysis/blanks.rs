//! Blanks in a text and the ranking of what fills them, for a causal model.
//!
//! The distribution at a blank from its left context is p at that position, exactly as `score`
//! computes it. A causal model cannot see the words after the blank, so candidates are
//! re-scored: each is written into the blank and the whole text is scored; candidates are
//! ranked by that sentence log-probability, with a posterior normalised over the candidates.
//! This module is the pure part: finding blanks, framing the text around one, proposing
//! candidates from a row, and ranking scored candidates. `engine::fill` drives the model.
//!
//! Several blanks are filled left to right, each with the earlier ones replaced by their best
//! candidate; the text scored for a blank ends where the next blank begins.

use serde::Serialize;

use crate::analysis::stats::RowSummary;
use crate::analysis::top::TopLogprob;
use crate::analysis::vocab::{is_wordlike, Vocab};

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
    /// Where it came from: "left" (the left context's top tokens), "user", "asked" (the
    /// model's own answer to a chat prompt) or "search" (the vocabulary search).
    pub source: &'static str,
    /// With a second model (`--vs`): its log-probability of the same scored text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentence_logprob_b: Option<f64>,
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
    /// How much of the vocabulary was searched (absent when no search was asked for).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<crate::analysis::search::SearchCoverage>,
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
    /// Present when the model failed the side-by-side self-check: candidates were scored one
    /// sequence at a time, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batching: Option<String>,
}

/// `text` with its first blanks replaced by `fills` (in order), and the byte range of each fill
/// in the result.
pub fn fill_in(text: &str, fills: &[&str]) -> (String, Vec<(usize, usize)>) {
    let mut out = String::with_capacity(text.len());
    let mut spans = Vec::new();
    let mut at = 0;
    for (b, fill) in find_blanks(text).iter().zip(fills) {
        out.push_str(&text[at..b.start]);
        spans.push((out.len(), out.len() + fill.len()));
        out.push_str(fill);
        at = b.end;
    }
    out.push_str(&text[at..]);
    (out, spans)
}

/// Byte offsets of each token's start in the detokenized text (special tokens are empty).
pub fn token_offsets(vocab: &Vocab, tokens: &[u32]) -> Vec<(usize, usize)> {
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

/// A candidate as scored by the model: its text, where it came from, the tokens of the filled
/// text and the log-probability of each (`None` where nothing predicted the token).
pub struct ScoredCandidate<'a> {
    pub text: &'a str,
    pub source: &'static str,
    pub tokens: &'a [u32],
    pub logprobs: &'a [Option<f64>],
}

/// Rank scored candidates of the blank framed by `frame`: the sentence log-probability is the
/// sum of every scored token; the left log-probability sums the tokens that overlap the
/// candidate's bytes (a leading-space token included); best first by sentence, ties keeping
/// the given order.
pub fn rank_candidates(
    vocab: &Vocab,
    frame: &Frame,
    scored: &[ScoredCandidate<'_>],
) -> Vec<CandidateReport> {
    let mut out: Vec<CandidateReport> = scored
        .iter()
        .map(|c| {
            let sentence: f64 = c.logprobs.iter().flatten().sum();
            let (cs, ce) = frame.candidate_span(c.text);
            let left: f64 = token_offsets(vocab, c.tokens)
                .iter()
                .zip(c.logprobs)
                .filter(|((s, e), _)| *s < ce && *e > cs)
                .filter_map(|(_, l)| *l)
                .sum();
            CandidateReport {
                text: c.text.to_owned(),
                left_logprob: left,
                sentence_logprob: sentence,
                posterior: 0.0,
                left_rank: 0,
                source: c.source,
                sentence_logprob_b: None,
            }
        })
        .collect();
    let mut by_left: Vec<usize> = (0..out.len()).collect();
    by_left.sort_by(|&a, &b| out[b].left_logprob.total_cmp(&out[a].left_logprob));
    for (rank, &i) in by_left.iter().enumerate() {
        out[i].left_rank = rank + 1;
    }
    normalise_posterior(&mut out);
    out.sort_by(|a, b| b.sentence_logprob.total_cmp(&a.sentence_logprob));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn fills_replace_blanks_in_order_and_say_where() {
        let (t, spans) = fill_in("The ____ barked at [MASK] today.", &["dog", "the mailman"]);
        assert_eq!(t, "The dog barked at the mailman today.");
        assert_eq!(spans, [(4, 7), (18, 29)]);
        let (t, spans) = fill_in("a ____ b ____", &["x"]);
        assert_eq!((t.as_str(), spans), ("a x b ____", vec![(2, 3)]));
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
                sentence_logprob_b: None,
            })
            .collect();
        normalise_posterior(&mut c);
        let total: f64 = c.iter().map(|x| x.posterior).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!(c[1].posterior > c[2].posterior && c[2].posterior > c[0].posterior);
    }

    #[test]
    fn ranking_sums_sentence_and_candidate_tokens() {
        let vocab = Vocab::from_bytes(["The", " dog", " cat", " barked"].map(str::as_bytes));
        let t = "The ____ barked";
        let fr = frame(t, &find_blanks(t), 0, &[]);
        let (dog, cat) = ([0, 1, 3], [0, 2, 3]);
        let (lp_dog, lp_cat) = (
            [None, Some(-3.0), Some(-1.0)],
            [None, Some(-2.0), Some(-4.0)],
        );
        let ranked = rank_candidates(
            &vocab,
            &fr,
            &[
                ScoredCandidate {
                    text: "cat",
                    source: "left",
                    tokens: &cat,
                    logprobs: &lp_cat,
                },
                ScoredCandidate {
                    text: "dog",
                    source: "user",
                    tokens: &dog,
                    logprobs: &lp_dog,
                },
            ],
        );
        assert_eq!(ranked[0].text, "dog");
        assert_eq!(ranked[0].sentence_logprob, -4.0);
        assert_eq!(ranked[0].left_logprob, -3.0);
        assert_eq!((ranked[0].left_rank, ranked[1].left_rank), (2, 1));
        assert!((ranked[0].posterior + ranked[1].posterior - 1.0).abs() < 1e-12);
    }
}
