//! One blank, scored exactly: the proposed candidates (the left context's shortlist, the
//! user's, the model's own answer when asked), then — within a budget — the vocabulary's
//! whole-word tokens in order of their left-context probability, with branch and bound
//! (`analysis::search`). The ranking is always the exact best of what was scored, and the
//! coverage says how much of the vocabulary that is.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use crate::analysis::blanks::Frame;
use crate::analysis::search::{
    search_order, whole_words, Budget, Interleave, SearchCoverage, Stream, TopK, Word,
};
use crate::model::fanout::{Fanout, MAX_DEPTH};
use crate::model::slots::Slots;
use crate::model::{common_prefix, Model, ModelError};

use super::candidates::{score_all, score_wave, wave_key, Candidate, PrefixFacts};
use crate::analysis::search::FirstBoundsUsed;

/// How many of the best scores the search keeps exact (the rest are only bounded).
pub const KEEP: usize = 10;

/// Words `fill` searches when no budget is given on a CPU: about what settles in
/// [`EXPLORER_CPU_MILLIS`] on the default model here (README, "Benchmarks"). A count, not a
/// time, so that a script gets the same output on every machine.
pub const DEFAULT_CPU_WORDS: usize = 500;

/// The explorer's search budget on a CPU: until complete or 20 s, refining as it goes.
pub const EXPLORER_CPU_MILLIS: u64 = 20_000;

/// `fill`'s default search budget: the whole vocabulary when llama.cpp's backend registry has
/// a GPU (asked at run time), else [`DEFAULT_CPU_WORDS`].
pub fn default_budget() -> Budget {
    if crate::model::gpu_available() {
        Budget::All
    } else {
        Budget::Words(DEFAULT_CPU_WORDS)
    }
}

/// The explorer's default search budget: the whole vocabulary with a GPU, else
/// [`EXPLORER_CPU_MILLIS`] of searching (the panel says how far it got).
pub fn explorer_budget() -> Budget {
    if crate::model::gpu_available() {
        Budget::All
    } else {
        Budget::Millis(EXPLORER_CPU_MILLIS)
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
    fanout: Option<&mut Fanout<'_>>,
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
    let deadline = budget.seconds().map(|secs| Instant::now() + secs);
    let planned = n_proposals + limit;
    let at = |searched: usize| BlankProgress {
        settled: n_proposals + searched.min(limit),
        planned,
        searched,
    };
    let mut searched = 0;
    let mut scored_words = 0;
    let mut ended = false;
    // Words wait in buckets of one wave key until a wave is full.
    let mut buckets: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    // The first bound of many words at once: words waiting for it, words that have it.
    let p = facts.tokens.len();
    let mut fan = fanout.filter(|f| !slots.one_at_a_time() && f.fits(p));
    if let Some(f) = fan.as_deref_mut() {
        f.set_edits(slots.edits());
    }
    let mut first_bounds = FirstBounds::default();
    // Words waiting for their first bounds, by the tokens they decode for them.
    let mut pending: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut ready: VecDeque<usize> = VecDeque::new();
    loop {
        // Fill buckets until one is full, the budget or the words run out, or the rest is
        // ruled out.
        let mut full = None;
        while full.is_none() {
            let i = if let Some(i) = ready.pop_front() {
                i
            } else {
                let waiting: usize = buckets.values().chain(pending.values()).map(Vec::len).sum();
                if ended
                    || searched + waiting >= limit
                    || deadline.is_some_and(|d| Instant::now() >= d)
                {
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
                        // Every word not taken yet comes later in the left order: its bound is
                        // at most this one's.
                        searched += order.take_rest();
                        ended = true;
                    }
                    continue;
                }
                cands.push(c);
                let i = cands.len() - 1;
                if let Some(width) = fan
                    .as_deref()
                    .filter(|_| fans_out(&cands[i], p))
                    .map(Fanout::width)
                {
                    let group = pending.entry(depth_of(&cands[i], p)).or_default();
                    group.push(i);
                    if group.len() < width {
                        continue;
                    }
                    let wave = std::mem::take(group);
                    let tally = (&mut searched, &mut scored_words);
                    if !first_bounds.wave(
                        &mut fan, slots, &mut cands, wave, &mut top, prune, cancel, tally,
                        &mut ready,
                    )? {
                        return Ok(None);
                    }
                    on_progress(at(searched), &cands);
                    continue;
                }
                i
            };
            let key = wave_key(&cands[i], waves);
            let bucket = buckets.entry(key).or_default();
            bucket.push(i);
            if bucket.len() == waves {
                full = Some(key);
            }
        }
        let key = match full {
            Some(k) => k,
            // No full bucket: the words waiting for their first bound, then the largest
            // bucket, or stop when all are empty.
            None if !pending.is_empty() => {
                let Some((_, wave)) = pending.pop_first() else {
                    continue;
                };
                let tally = (&mut searched, &mut scored_words);
                if !first_bounds.wave(
                    &mut fan, slots, &mut cands, wave, &mut top, prune, cancel, tally, &mut ready,
                )? {
                    return Ok(None);
                }
                continue;
            }
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
        on_progress(at(searched), &cands);
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
            first_bounds: first_bounds.used(),
        }),
    }))
}

/// Waves of first bounds whose first word is also scored alone and must agree bit for bit.
const CHECKS: usize = 2;

/// Targets after the blank up to which a word is scored by a fan-out: one row a target, where
/// the slots' steps decode at least three tokens a word (`slots::MIN_MEMBER_STEP`) and prune after
/// them. With more targets the fan-out decodes more rows than the pruned steps do (a row costs
/// the same either way on this CPU: README, "Benchmarks").
pub const FANOUT_TARGETS: usize = 2;

/// Whether a candidate is scored by a fan-out: it holds the prefix, then the word's own token
/// at `p`, and at most [`FANOUT_TARGETS`] tokens after it (a blank at the end of its text).
/// The fan-out then scores it to the end in one wave.
fn fans_out(c: &Candidate, p: usize) -> bool {
    c.shared == p
        && c.known == p
        && !c.complete
        && (p + 2..=p + 1 + FANOUT_TARGETS.min(MAX_DEPTH)).contains(&c.tokens.len())
}

/// Targets of a candidate's fan-out: the rest of its text.
fn depth_of(c: &Candidate, p: usize) -> usize {
    c.tokens.len() - 1 - p
}

/// What the first bound left of a candidate.
enum Settled {
    /// Complete (the word was the text's last but one token, or it was scored alone).
    Scored,
    RuledOut,
    Open,
}

fn settle_first(c: &mut Candidate, top: &mut TopK, prune: bool) -> Settled {
    if c.complete || c.known + 1 >= c.tokens.len() {
        c.complete = true;
        top.insert(c.bound());
        Settled::Scored
    } else if prune && top.rules_out(c.bound()) {
        Settled::RuledOut
    } else {
        Settled::Open
    }
}

/// The fan-out's first bounds for one blank, checked against words decoded alone.
#[derive(Debug, Default)]
struct FirstBounds {
    waves: usize,
    failed: bool,
}

impl FirstBounds {
    /// Which way the blank's first bounds came.
    fn used(&self) -> FirstBoundsUsed {
        if self.waves > 0 && !self.failed {
            FirstBoundsUsed::SharedPrefix
        } else {
            FirstBoundsUsed::PerWord
        }
    }

    /// The first bound of every word of `wave` from one fan-out, each then settled: scored,
    /// ruled out (counted in `tally`: searched, scored) or `ready` for its next tokens. The
    /// first word of the first [`CHECKS`] waves is also scored alone on the slots; if that
    /// differs from the fan-out by a bit, the fan-out is dropped for the rest of the blank
    /// (`fan` set to `None`) and the wave's words go on as if it had never run. Without a
    /// fan-out the words are ready as they are. Returns false when cancelled.
    #[allow(clippy::too_many_arguments)]
    fn wave(
        &mut self,
        fan: &mut Option<&mut Fanout<'_>>,
        slots: &mut Slots<'_, '_>,
        cands: &mut [Candidate],
        wave: Vec<usize>,
        top: &mut TopK,
        prune: bool,
        cancel: &dyn Fn() -> bool,
        tally: (&mut usize, &mut usize),
        ready: &mut VecDeque<usize>,
    ) -> Result<bool, ModelError> {
        let (Some(f), Some(&first)) = (fan.as_deref_mut(), wave.first()) else {
            ready.extend(wave);
            return Ok(true);
        };
        if cancel() {
            return Ok(false);
        }
        let p = slots.prefix().len();
        let depth = depth_of(&cands[first], p);
        let seqs: Vec<&[u32]> = wave
            .iter()
            .map(|&i| &cands[i].tokens[p..=p + depth])
            .collect();
        let lps = f.logprobs(slots.prefix(), &seqs, slots.temp())?;
        self.waves += 1;
        if self.waves <= CHECKS {
            let mut probe = [cands[first].clone()];
            if !score_wave(slots, &mut probe, &[0], &mut TopK::new(1), false, cancel)? {
                return Ok(false);
            }
            let [probe] = probe;
            let alone: Vec<Option<u64>> = probe.logprobs[p + 1..=p + depth]
                .iter()
                .map(|l| l.map(f64::to_bits))
                .collect();
            let shared: Vec<Option<u64>> = lps[0].iter().map(|l| Some(l.to_bits())).collect();
            if alone != shared {
                tracing::warn!(
                    "the shared-prefix first bounds of {:?} are {:?} but {:?} alone: bounds per word from here on",
                    probe.text,
                    lps[0],
                    &probe.logprobs[p + 1..=p + depth]
                );
                self.failed = true;
                *fan = None;
                ready.extend(wave);
                return Ok(true);
            }
            // The probe is the word's exact score: keep it.
            cands[first] = probe;
        }
        let (searched, scored) = tally;
        for (&i, lp) in wave.iter().zip(lps) {
            let c = &mut cands[i];
            if !c.complete {
                for (j, l) in lp.into_iter().enumerate() {
                    c.logprobs[p + 1 + j] = Some(l);
                }
                c.known = p + depth;
            }
            match settle_first(c, top, prune) {
                Settled::Scored => {
                    *searched += 1;
                    *scored += 1;
                }
                Settled::RuledOut => *searched += 1,
                Settled::Open => ready.push_back(i),
            }
        }
        Ok(true)
    }
}
