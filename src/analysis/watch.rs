//! A watch-list: words whose probability the user follows at every position ("how likely is
//! ` she` versus ` he` here?", as ecco's rankings_watch and fill-mask `targets` do).
//!
//! A word is watched as it would follow a space (` she`), the way words appear inside a
//! sentence. A word that is one token is read exactly from every row (probability and rank);
//! a word of several tokens is the probability of the whole word as the continuation, the
//! product of its tokens' conditional probabilities (the engine decodes it after the text).

use serde::Serialize;

/// A watched word and its tokens (as it follows a space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub word: String,
    pub tokens: Vec<u32>,
}

impl Watched {
    /// One token: read from every row, with its rank.
    pub fn single(&self) -> Option<u32> {
        match self.tokens.as_slice() {
            [t] => Some(*t),
            _ => None,
        }
    }
}

/// A watched word at one position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchValue {
    pub word: String,
    /// ln p of the whole word as the continuation here.
    pub logprob: f64,
    pub prob: f64,
    /// 1 = the model's top choice (one-token words only; a word of several tokens has no rank
    /// among tokens).
    pub rank: Option<u32>,
    /// How many tokens the word is.
    pub tokens: usize,
}

impl WatchValue {
    pub fn new(w: &Watched, logprob: f64, rank: Option<u32>) -> Self {
        Self {
            word: w.word.clone(),
            logprob,
            prob: logprob.exp(),
            rank,
            tokens: w.tokens.len(),
        }
    }
}

/// The words of a `--watch a,b,c` list: trimmed, non-empty, each once.
pub fn parse_list(words: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words {
        let w = w.trim();
        if !w.is_empty() && !out.iter().any(|x| x == w) {
            out.push(w.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_trimmed_and_deduplicated() {
        let l = parse_list(&[" he".into(), "she".into(), "".into(), "he ".into()]);
        assert_eq!(l, ["he", "she"]);
    }
}
