//! The pure half of the vocabulary search for a blank (`engine::search` drives the model):
//! which words are candidates, in what order they are tried, and the exact top-k kept so far.
//!
//! The honest answer to "which word does the model put in this blank" is, for every word w of
//! the vocabulary, log P(text with w in the blank) — Bayes on the seed's p_i:
//! P(w | left, right) ∝ P(w | left) · P(right | left, w). Every log-probability is ≤ 0, so
//! the sum over the tokens scored so far bounds a candidate's final score from above: once
//! that bound is below the k-th best complete score, the candidate cannot enter the top k and
//! is dropped unscored (branch and bound). Tried in order of P(w | left), a candidate whose
//! left-context log-probability alone is below the k-th best ends the search: no word after it
//! can enter either, and the search is complete.

use serde::Serialize;

use crate::analysis::vocab::Vocab;

/// A vocabulary word: a whole-word token and the text written into the blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub id: u32,
    pub text: String,
}

/// The vocabulary's whole-word tokens. After a space (`spaced`): tokens that are a space and
/// letters (` sun` → `sun`); where the word follows the text before it directly (the first word
/// of the text, or after an opening bracket or quote): tokens of letters only. Letters are
/// Unicode alphabetic characters; control tokens never count.
pub fn whole_words(vocab: &Vocab, spaced: bool) -> Vec<Word> {
    (0..vocab.len() as u32)
        .filter(|&id| !vocab.is_special(id))
        .filter_map(|id| {
            let text = std::str::from_utf8(vocab.bytes(id)).ok()?;
            let word = if spaced {
                text.strip_prefix(' ')?
            } else {
                text
            };
            (!word.is_empty() && word.chars().all(char::is_alphabetic)).then(|| Word {
                id,
                text: word.to_owned(),
            })
        })
        .collect()
}

/// The order words are tried in: best first by their log-probability at the blank given the
/// left context (ties by id); without a left context (a blank at the very start of a text on a
/// model that adds no BOS), by token id — the BPE merge order, in which more frequent pieces
/// come first.
pub fn search_order(words: &[Word], left_logprobs: Option<&[f64]>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..words.len()).collect();
    match left_logprobs {
        Some(lp) => {
            order.sort_by(|&a, &b| lp[b].total_cmp(&lp[a]).then(words[a].id.cmp(&words[b].id)))
        }
        None => order.sort_by_key(|&i| words[i].id),
    }
    order
}

/// Which order a word was taken from (see [`Interleave`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The proxy: the distribution after the whole sentence (blank shown), a newline and the
    /// text before the blank — the model has read the words after the blank.
    Primed,
    /// The left-context probability (or, without a left context, token id) order.
    Left,
}

/// Two orders of the same words taken in turn, each word once: the primed proxy finds good
/// words early (so the bound prunes more), the left-context order makes the search complete —
/// once its next word is ruled out, so is every word after it, whichever order took it.
#[derive(Debug, Clone)]
pub struct Interleave {
    orders: [Vec<usize>; 2],
    pos: [usize; 2],
    taken: Vec<bool>,
    turn: usize,
    remaining: usize,
}

impl Interleave {
    /// `primed` and `left` are both orders of `0..n`; `primed` may be empty (no proxy).
    pub fn new(primed: Vec<usize>, left: Vec<usize>) -> Self {
        let n = left.len();
        Self {
            orders: [primed, left],
            pos: [0, 0],
            taken: vec![false; n],
            turn: 0,
            remaining: n,
        }
    }

    /// Words not taken yet.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Take every remaining word (the search ended: they are all ruled out).
    pub fn take_rest(&mut self) -> usize {
        let n = self.remaining;
        self.taken.iter_mut().for_each(|t| *t = true);
        self.remaining = 0;
        n
    }
}

impl Iterator for Interleave {
    type Item = (usize, Stream);

    /// The next word not taken yet, and the order it came from.
    fn next(&mut self) -> Option<(usize, Stream)> {
        for _ in 0..2 {
            let k = self.turn;
            self.turn = 1 - self.turn;
            while let Some(&w) = self.orders[k].get(self.pos[k]) {
                self.pos[k] += 1;
                if !self.taken[w] {
                    self.taken[w] = true;
                    self.remaining -= 1;
                    return Some((w, if k == 0 { Stream::Primed } else { Stream::Left }));
                }
            }
        }
        None
    }
}

/// How much of the vocabulary to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// At most this many words (0: no search, the shortlist only).
    Words(usize),
    /// Every word.
    All,
    /// Until complete or this many milliseconds have passed (the words waiting then are
    /// finished): the same words on every run only on the same machine.
    Millis(u64),
}

impl Budget {
    /// The most words the budget allows.
    pub fn limit(self, words: usize) -> usize {
        match self {
            Budget::Words(n) => n.min(words),
            Budget::All | Budget::Millis(_) => words,
        }
    }

    /// The time the budget allows, if it is one of time.
    pub fn seconds(self) -> Option<std::time::Duration> {
        match self {
            Budget::Millis(ms) => Some(std::time::Duration::from_millis(ms)),
            _ => None,
        }
    }
}

impl std::str::FromStr for Budget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("all") {
            return Ok(Budget::All);
        }
        if let Some(secs) = t.strip_suffix(['s', 'S']) {
            return match secs.trim().parse::<f64>() {
                Ok(x) if x.is_finite() && x > 0.0 && x <= 86_400.0 => {
                    Ok(Budget::Millis((x * 1000.0).round().max(1.0) as u64))
                }
                _ => Err(format!(
                    "{s:?}: a time budget is seconds above 0 and at most a day, as in \"20s\""
                )),
            };
        }
        t.replace(['_', ','], "")
            .parse::<usize>()
            .map(Budget::Words)
            .map_err(|_| {
                format!("{s:?} is neither a number of words, \"all\" nor seconds (\"20s\")")
            })
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Words(n) => write!(f, "{n}"),
            Budget::All => write!(f, "all"),
            Budget::Millis(ms) if ms % 1000 == 0 => write!(f, "{}s", ms / 1000),
            Budget::Millis(ms) => write!(f, "{}s", *ms as f64 / 1000.0),
        }
    }
}

impl Serialize for Budget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Budget::Words(n) => s.serialize_u64(*n as u64),
            Budget::All => s.serialize_str("all"),
            Budget::Millis(_) => s.serialize_str(&self.to_string()),
        }
    }
}

/// The best `k` complete scores found so far (sentence log-probabilities), as a threshold.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    /// Best first.
    scores: Vec<f64>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self {
            k: k.max(1),
            scores: Vec::new(),
        }
    }

    pub fn insert(&mut self, score: f64) {
        let at = self.scores.partition_point(|&s| s >= score);
        self.scores.insert(at, score);
        self.scores.truncate(self.k);
    }

    /// A candidate whose score cannot exceed `bound` can be dropped: k others are at least as
    /// good. Ties are kept (the bound is not below the k-th best).
    pub fn rules_out(&self, bound: f64) -> bool {
        self.scores.len() == self.k && self.scores.last().is_some_and(|&kth| bound < kth)
    }
}

/// How far the search of one blank went, for the JSON and the screen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SearchCoverage {
    /// Words settled: scored exactly, or ruled out by their bound.
    pub searched: usize,
    /// Whole-word tokens of the vocabulary for this blank.
    pub vocabulary_words: usize,
    /// The budget asked for.
    #[serde(rename = "search_budget")]
    pub budget: Budget,
    /// Every word was settled: the ranking is the exact top of the whole vocabulary.
    #[serde(rename = "search_complete")]
    pub complete: bool,
    /// Words whose full score was computed (the rest of `searched` was ruled out early).
    #[serde(rename = "search_scored")]
    pub scored: usize,
    /// How the words' first bounds were computed.
    #[serde(rename = "search_first_bounds")]
    pub first_bounds: FirstBoundsUsed,
}

/// How a search computed each word's first bound, P(the token after the word | the text
/// before the blank, the word). Either way the numbers are the word's text decoded alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FirstBoundsUsed {
    /// Many words a decode, one token each, over the prefix decoded once (checked against
    /// words decoded alone).
    #[serde(rename = "shared prefix")]
    SharedPrefix,
    /// Each word's own tokens decoded on a copy of the prefix.
    #[serde(rename = "per word")]
    PerWord,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vocab() -> Vocab {
        Vocab::from_bytes(
            [
                " sun", "sun", " 42", " x1", "Moon", " ", " Éclair", "ing", " a-b",
            ]
            .map(str::as_bytes),
        )
    }

    #[test]
    fn whole_words_are_letters_with_or_without_the_space() {
        let spaced: Vec<String> = whole_words(&vocab(), true)
            .into_iter()
            .map(|w| w.text)
            .collect();
        assert_eq!(spaced, ["sun", "Éclair"]);
        let first: Vec<String> = whole_words(&vocab(), false)
            .into_iter()
            .map(|w| w.text)
            .collect();
        assert_eq!(first, ["sun", "Moon", "ing"]);
    }

    #[test]
    fn order_follows_the_left_context_then_the_ids() {
        let words = whole_words(&vocab(), false);
        assert_eq!(search_order(&words, Some(&[-3.0, -1.0, -3.0])), [1, 0, 2]);
        assert_eq!(search_order(&words, None), [0, 1, 2]);
    }

    #[test]
    fn interleave_takes_each_word_once_alternating() {
        let it = Interleave::new(vec![2, 0, 1, 3], vec![0, 1, 2, 3]);
        let got: Vec<_> = it.collect();
        assert_eq!(
            got,
            [
                (2, Stream::Primed),
                (0, Stream::Left),
                (1, Stream::Primed),
                (3, Stream::Left)
            ]
        );
        let mut it = Interleave::new(vec![], vec![1, 0]);
        assert_eq!(it.next(), Some((1, Stream::Left)));
        assert_eq!(it.take_rest(), 1);
        assert_eq!(it.next(), None);
    }

    #[test]
    fn budgets_parse() {
        assert_eq!("all".parse::<Budget>(), Ok(Budget::All));
        assert_eq!("1,200".parse::<Budget>(), Ok(Budget::Words(1200)));
        assert!("many".parse::<Budget>().is_err());
        assert_eq!("20s".parse::<Budget>(), Ok(Budget::Millis(20_000)));
        assert_eq!("1.5s".parse::<Budget>(), Ok(Budget::Millis(1500)));
        assert!("0s".parse::<Budget>().is_err());
        assert!("-3s".parse::<Budget>().is_err());
        assert_eq!(Budget::Millis(20_000).to_string(), "20s");
        assert_eq!(Budget::Millis(1500).to_string(), "1.5s");
        assert_eq!(Budget::Millis(1500).limit(10), 10);
        assert_eq!(Budget::Words(50).limit(10), 10);
        assert_eq!(Budget::All.limit(10), 10);
    }

    proptest! {
        /// The threshold never rules out a score that belongs in the top k.
        #[test]
        fn top_k_rules_out_only_what_cannot_enter(scores in prop::collection::vec(-100.0f64..0.0, 0..40), k in 1usize..12, probe in -100.0f64..0.0) {
            let mut t = TopK::new(k);
            for &s in &scores {
                t.insert(s);
            }
            let mut sorted = scores.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let would_enter = sorted.len() < k || probe >= sorted[k - 1];
            prop_assert_eq!(t.rules_out(probe), !would_enter);
        }
    }
}
