//! One blank, scored exactly: the proposed candidates (the left context's shortlist, the
//! user's, the model's own answer when asked), then — within a budget — the vocabulary's
//! whole-word tokens in order of their left-context probability, with branch and bound
//! (`analysis::search`). The ranking is always the exact best of what was scored, and the
//! coverage says how much of the vocabulary that is.

use std::collections::HashMap;

use crate::analysis::blanks::Frame;
use crate::analysis::search::{
    search_order, whole_words, Budget, Interleave, SearchCoverage, Stream, TopK, Word,
};
use crate::model::slots::Slots;
use crate::model::{common_prefix, Model, ModelError};

use super::candidates::{score_all, score_wave, wave_key, Candidate, PrefixFacts};

/// How many of the best scores the search keeps exact (the rest are only bounded).
pub const KEEP: usize = 10;

/// Words searched when no budget is given: on a CPU what fits in a few seconds on the
/// default model (README, "Benchmarks"); with a GPU the whole vocabulary.
pub const DEFAULT_CPU_WORDS: usize = 200;

/// The default search budget: the whole vocabulary when llama.cpp's backend registry has a
/// GPU (asked at run time), else [`DEFAULT_CPU_WORDS`].
pub fn default_budget() -> Budget {
    if crate::model::gpu_available() {
        Budget::All
    } else {
        Budget::Words(DEFAULT_CPU_WORDS)
    }
}

/// Progress of one blank: candidates settled of those planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlankProgress {
    pub settled: usize,
    pub planned: usize,
    /// Vocabulary words settled so far (scored or ruled out).
    pub searched: usize,
}

/// The outcome for one blank: every candidate scored to the end, and the search's coverage
/// (`None` when no search was asked for).
pub struct BlankOutcome {
    pub scored: Vec<Candidate>,
    pub coverage: Option<SearchCoverage>,
}

/// A user's word list as search words: each word once, identified by its first token after
/// the blank (what orders it).
fn words_from_list(model: &Model, list: &[String], spaced: bool) -> Vec<Word> {
    let mut seen = std::collections::HashSet::new();
    list.iter()
        .map(|w| w.trim())
        .filter(|w| !w.is_empty() && seen.insert(w.to_string()))
        .filter_map(|w| {
            let probe = if spaced {
                format!(" {w}")
            } else {
                w.to_owned()
            };
            let id = *model.tokenize_continuation(&probe).first()?;
            Some(Word {
                id,
                text: w.to_owned(),
            })
        })
        .collect()
}

/// Score `proposals` (all of them, in full) and then search the vocabulary (or `word_list`)
/// within `budget`;
/// `primed` is the proxy distribution (over the vocabulary, ln p; empty for none).
/// `on_progress` is called after every wave, with the candidates scored so far. `None` when
/// cancelled.
#[allow(clippy::too_many_arguments)]
pub fn score_blank(
    model: &Model,
    slots: &mut Slots<'_, '_>,
    frame: &Frame,
    facts: &PrefixFacts<'_>,
    primed: &[f64],
    proposals: Vec<(String, &'static str)>,
    word_list: Option<&[String]>,
    budget: Budget,
    prune: bool,
    cancel: &dyn Fn() -> bool,
    on_progress: &mut dyn FnMut(BlankProgress, &[Candidate]),
) -> Result<Option<BlankOutcome>, ModelError> {
    let vocab = model.vocab();
    let make = |text: String, source: &'static str| {
        let tokens = model.tokenize(&frame.filled(&text));
        let shared = common_prefix(facts.tokens, &tokens).min(tokens.len().saturating_sub(1));
        let mut c = Candidate {
            text,
            source,
            logprobs: vec![None; tokens.len()],
            tokens,
            shared,
            known: 0,
            complete: false,
        };
        facts.seed(&mut c);
        c
    };
    let mut cands: Vec<Candidate> = proposals
        .into_iter()
        .map(|(t, s)| make(t, s))
        .filter(|c| !c.tokens.is_empty())
        .collect();
    if let Some(long) = cands.iter().find(|c| c.tokens.len() > slots.n_ctx()) {
        return Err(ModelError::TooLong {
            n_tokens: long.tokens.len(),
            n_ctx: slots.n_ctx(),
        });
    }
    let n_proposals = cands.len();
    let mut top = TopK::new(KEEP);
    let waves = slots.count().max(1);

    // 1. The proposals, all of them to the end.
    let all: Vec<usize> = (0..n_proposals).collect();
    let mut settled = 0;
    if !score_all(
        slots,
        &mut cands,
        &all,
        &mut top,
        cancel,
        &mut |done, cands| {
            settled = done;
            on_progress(
                BlankProgress {
                    settled: done,
                    planned: n_proposals,
                    searched: 0,
                },
                cands,
            );
        },
    )? {
        return Ok(None);
    }
    // The shortlist is ranked: worth showing at once.
    on_progress(
        BlankProgress {
            settled,
            planned: n_proposals,
            searched: 0,
        },
        &cands,
    );
    if budget == Budget::Words(0) {
        return Ok(Some(BlankOutcome {
            scored: cands,
            coverage: None,
        }));
    }

    // 2. The vocabulary: two orders in turn (`Interleave`): the primed proxy, and the
    //    left-context probability, whose next word, once ruled out, rules out all the rest.
    let spaced = !frame.gap.is_empty() && !frame.left.is_empty();
    let words = match word_list {
        Some(list) => words_from_list(model, list, spaced),
        None => whole_words(vocab, spaced),
    };
    let listed: std::collections::HashSet<String> = cands.iter().map(|c| c.text.clone()).collect();
    let by_row = |row: &[f64]| -> Vec<f64> {
        words
            .iter()
            .map(|w| row.get(w.id as usize).copied().unwrap_or(f64::NEG_INFINITY))
            .collect()
    };
    let left = (!facts.next.is_empty()).then(|| by_row(facts.next));
    let left_order = search_order(&words, left.as_deref());
    let primed_order = if primed.is_empty() {
        Vec::new()
    } else {
        search_order(&words, Some(&by_row(primed)))
    };
    let mut order = Interleave::new(primed_order, left_order);
    // Ending the search at the first left-order word its left-context probability rules out is
    // exact only if every later word's first own token is the word itself, right after the
    // prefix: true when the word is a pre-token of its own (letters between a space or
    // punctuation and a non-letter), as in "The ____ rises".
    let letter = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let clean = !facts.next.is_empty()
        && !letter(frame.right.chars().next())
        && (spaced || !letter(frame.left.chars().last()))
        && words
            .iter()
            .all(|w| w.text.chars().all(char::is_alphabetic));
    let limit = budget.limit(words.len());
    let planned = n_proposals + limit;
    let mut searched = 0;
    let mut scored_words = 0;
    let mut ended = false;
    // Words wait in buckets of one wave key until a wave is full.
    let mut buckets: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    loop {
        // Fill buckets until one is full, the budget or the words run out, or the rest is
        // ruled out.
        let mut full = None;
        while full.is_none() && !ended {
            let waiting: usize = buckets.values().map(Vec::len).sum();
            if searched + waiting >= limit {
                break;
            }
            let Some((w, stream)) = order.next() else {
                break;
            };
            let word = &words[w];
            if listed.contains(&word.text) {
                searched += 1;
                continue;
            }
            let c = make(word.text.clone(), "search");
            if c.tokens.len() > slots.n_ctx() {
                searched += 1;
                continue;
            }
            if prune && top.rules_out(c.bound()) {
                searched += 1;
                if clean && stream == Stream::Left && c.known == facts.tokens.len() {
                    // Every word not taken yet comes later in the left order: its bound is at
                    // most this one's.
                    searched += order.take_rest();
                    ended = true;
                }
                continue;
            }
            cands.push(c);
            let i = cands.len() - 1;
            let key = wave_key(&cands[i], waves);
            let bucket = buckets.entry(key).or_default();
            bucket.push(i);
            if bucket.len() == waves {
                full = Some(key);
            }
        }
        let key = match full {
            Some(k) => k,
            // No full bucket: flush the largest one, or stop when all are empty.
            None => match buckets.iter().max_by_key(|(_, v)| v.len()) {
                Some((k, v)) if !v.is_empty() => *k,
                _ => break,
            },
        };
        let wave = buckets.remove(&key).unwrap_or_default();
        // Members the threshold now rules out need no decode at all.
        let (wave, ruled_out): (Vec<usize>, Vec<usize>) = wave
            .into_iter()
            .partition(|&i| !prune || !top.rules_out(cands[i].bound()));
        searched += ruled_out.len();
        if !wave.is_empty() {
            if !score_wave(slots, &mut cands, &wave, &mut top, prune, cancel)? {
                return Ok(None);
            }
            searched += wave.len();
            scored_words += wave.iter().filter(|&&i| cands[i].complete).count();
        }
        on_progress(
            BlankProgress {
                settled: n_proposals + searched.min(limit),
                planned,
                searched,
            },
            &cands,
        );
    }
    let searched = searched.min(words.len());
    let complete = order.remaining() == 0;
    cands.retain(|c| c.complete);
    Ok(Some(BlankOutcome {
        scored: cands,
        coverage: Some(SearchCoverage {
            searched,
            vocabulary_words: words.len(),
            budget,
            complete,
            scored: scored_words,
        }),
    }))
}
