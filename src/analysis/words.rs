//! Tokens grouped into words, for reading surprisal per word as psycholinguists do (minicons,
//! the `surprisal` package): a word's log-probability is the sum over its tokens.
//!
//! The rule: Unicode word boundaries (UAX #29) of the text the tokens spell. A token starts a
//! new word when its first byte sits on such a boundary; a token that starts inside a word —
//! a piece without a leading space ("ing"), or bytes that are not a whole character — joins
//! the word before it. So `" carefully"` is one word even when it is two tokens, `"."` is a
//! word of its own, whitespace between words belongs to the word it precedes (" the"), and
//! every byte of the text belongs to exactly one word.

use serde::Serialize;
use unicode_segmentation::UnicodeSegmentation;

use crate::analysis::stats::RowSummary;
use crate::analysis::vocab::Vocab;

/// One word of a scored text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WordReport {
    /// The word's bytes as text (leading whitespace included).
    pub text: String,
    /// Its tokens: `start..end` (token indices, end exclusive).
    pub start: usize,
    pub end: usize,
    /// Byte range in the text the tokens spell.
    pub byte_start: usize,
    pub byte_end: usize,
    /// Sum of its tokens' log-probabilities (natural log); `None` when none of them is scored
    /// (the first word of a text without BOS).
    pub logprob: Option<f64>,
    pub prob: Option<f64>,
    pub surprisal_bits: Option<f64>,
    /// Some of its tokens had no prediction (the first token without BOS): the sum is over
    /// the others.
    pub partial: bool,
}

/// Group `tokens` into words. `rows[i]` is p_i (its target is token i + 1).
pub fn words(vocab: &Vocab, tokens: &[u32], rows: &[RowSummary]) -> Vec<WordReport> {
    let bytes: Vec<u8> = tokens
        .iter()
        .flat_map(|&t| vocab.bytes(t).iter().copied())
        .collect();
    let mut spans = Vec::with_capacity(tokens.len());
    let mut at = 0;
    for &t in tokens {
        let len = vocab.bytes(t).len();
        spans.push((at, at + len));
        at += len;
    }
    let starts = word_starts(&bytes);
    let lp = |j: usize| {
        j.checked_sub(1)
            .and_then(|i| rows.get(i))
            .and_then(|r| r.target)
            .map(|t| t.logprob)
    };
    let mut out: Vec<WordReport> = Vec::new();
    for (j, &(s, e)) in spans.iter().enumerate() {
        // Empty pieces (BOS, control tokens) join whatever word is open.
        let new_word = out.is_empty() || (s < e && starts.binary_search(&s).is_ok());
        if new_word {
            out.push(WordReport {
                text: String::new(),
                start: j,
                end: j + 1,
                byte_start: s,
                byte_end: e,
                logprob: None,
                prob: None,
                surprisal_bits: None,
                partial: false,
            });
        }
        let Some(w) = out.last_mut() else {
            continue;
        };
        w.end = j + 1;
        w.byte_end = e;
        match lp(j) {
            Some(l) => w.logprob = Some(w.logprob.unwrap_or(0.0) + l),
            None => w.partial = true,
        }
    }
    for w in &mut out {
        w.text = String::from_utf8_lossy(&bytes[w.byte_start..w.byte_end]).into_owned();
        w.prob = w.logprob.map(f64::exp);
        w.surprisal_bits = w.logprob.map(|l| -l / std::f64::consts::LN_2);
    }
    out
}

/// Byte offsets where a word may start: the Unicode word boundaries of the text, counting a
/// run of whitespace as part of the word that follows it. Offsets inside a character (bytes
/// that are not valid UTF-8 on their own) are never starts.
fn word_starts(bytes: &[u8]) -> Vec<usize> {
    let text = String::from_utf8_lossy(bytes);
    if text.len() != bytes.len() {
        // Not valid UTF-8 as a whole (a text cut inside a character): boundaries of the
        // valid prefix only.
        let valid = bytes.utf8_chunks().next().map_or(0, |c| c.valid().len());
        return word_starts(&bytes[..valid]);
    }
    let mut starts = Vec::new();
    let mut prev_space = false;
    for (i, seg) in text.split_word_bound_indices() {
        let space = seg.chars().all(char::is_whitespace);
        if !prev_space {
            starts.push(i);
        }
        prev_space = space;
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::stats::TargetStats;
    use proptest::prelude::*;

    fn rows(lps: &[Option<f64>]) -> Vec<RowSummary> {
        lps.iter()
            .map(|lp| RowSummary {
                entropy_bits: 0.0,
                max_logit: 0.0,
                ln_sum: 0.0,
                inv_temp: 1.0,
                top: Vec::new(),
                target: lp.map(|logprob| TargetStats {
                    id: 0,
                    logprob,
                    prob: logprob.exp(),
                    rank: 1,
                }),
                watched: Vec::new(),
            })
            .collect()
    }

    fn texts(ws: &[WordReport]) -> Vec<&str> {
        ws.iter().map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn pieces_without_a_space_join_the_word_before() {
        let v =
            Vocab::from_bytes(["The", " care", "fully", " sea", "soned", "."].map(str::as_bytes));
        let r = rows(&[
            Some(-1.0),
            Some(-0.5),
            Some(-2.0),
            Some(-0.25),
            Some(-0.125),
            None,
        ]);
        let ws = words(&v, &[0, 1, 2, 3, 4, 5], &r);
        assert_eq!(texts(&ws), ["The", " carefully", " seasoned", "."]);
        assert_eq!((ws[1].start, ws[1].end), (1, 3));
        assert_eq!(ws[1].logprob, Some(-1.5));
        assert_eq!(ws[2].logprob, Some(-2.25));
        assert_eq!(ws[3].logprob, Some(-0.125));
        assert!(ws[0].partial && ws[0].logprob.is_none());
        let bits = ws[1].surprisal_bits.unwrap_or_default();
        assert!((bits - 1.5 / std::f64::consts::LN_2).abs() < 1e-12);
    }

    #[test]
    fn byte_pieces_join_their_character_and_word() {
        // "日本" split into bytes across three tokens, then " x".
        let b = "日本".as_bytes();
        let v = Vocab::from_bytes([&b[..2], &b[2..4], &b[4..], b" x"]);
        let ws = words(&v, &[0, 1, 2, 3], &rows(&[Some(-1.0); 4]));
        assert_eq!(texts(&ws), ["日本", " x"]);
    }

    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "[a-z]{1,4}".prop_map(|s| s.into_bytes()),
            " [a-z]{1,4}".prop_map(|s| s.into_bytes()),
            Just(b".".to_vec()),
            Just(b"  ".to_vec()),
            Just("e\u{301}".as_bytes().to_vec()),
            Just("\u{301}".as_bytes().to_vec()),
            Just("👩‍👩‍👧".as_bytes().to_vec()),
            Just(vec![0xE6]),
            Just(vec![0x97, 0xA5]),
            Just("日".as_bytes().to_vec()),
            Just(Vec::new()),
        ]
    }

    proptest! {
        /// Every byte belongs to exactly one word, words are in order, and the word sums are
        /// the token sums.
        #[test]
        fn words_partition_the_bytes_and_the_sums(pieces in prop::collection::vec(piece(), 1..30)) {
            let v = Vocab::from_bytes(pieces.iter().map(Vec::as_slice));
            let tokens: Vec<u32> = (0..pieces.len() as u32).collect();
            let lps: Vec<Option<f64>> = (0..pieces.len()).map(|i| Some(-(i as f64) - 0.5)).collect();
            let r = rows(&lps);
            let ws = words(&v, &tokens, &r);
            let total: usize = pieces.iter().map(Vec::len).sum();
            let mut at = 0;
            let mut next_token = 0;
            for w in &ws {
                prop_assert_eq!(w.byte_start, at);
                prop_assert_eq!(w.start, next_token);
                prop_assert!(w.end > w.start);
                at = w.byte_end;
                next_token = w.end;
            }
            prop_assert_eq!(at, total);
            prop_assert_eq!(next_token, tokens.len());
            let word_sum: f64 = ws.iter().filter_map(|w| w.logprob).sum();
            let token_sum: f64 = lps[..lps.len() - 1].iter().flatten().sum();
            prop_assert!((word_sum - token_sum).abs() < 1e-9);
        }
    }
}
