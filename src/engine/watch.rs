//! The watch-list on a model: each word's tokens (as it follows a space), and — for words of
//! several tokens — the probability of the whole word as the continuation at a position,
//! decoded after the text (one sequence per position, side by side).

use crate::analysis::report::ScoreReport;
use crate::analysis::stats::RowSummary;
use crate::analysis::watch::{WatchValue, Watched};
use crate::model::{Model, ModelError, Session};

/// The words as the model tokenizes them after a space.
pub fn resolve(model: &Model, words: &[String]) -> Vec<Watched> {
    words
        .iter()
        .map(|w| Watched {
            word: w.clone(),
            tokens: model.tokenize_continuation(&format!(" {w}")),
        })
        .filter(|w| !w.tokens.is_empty())
        .collect()
}

/// The one-token words' ids, in list order (what the main session watches in every row).
pub fn single_ids(list: &[Watched]) -> Vec<u32> {
    list.iter().filter_map(Watched::single).collect()
}

/// ln p of `word` as the continuation after `tokens[..=i]`, for each `i` of `positions`.
/// `batch` is a session with several streams. `None` when cancelled.
pub fn continuation_logprobs(
    batch: &mut Session<'_>,
    tokens: &[u32],
    word: &Watched,
    positions: &[usize],
    temp: f32,
    cancel: &dyn Fn() -> bool,
) -> Result<Option<Vec<f64>>, ModelError> {
    let k = word.tokens.len();
    let seqs: Vec<Vec<u32>> = positions
        .iter()
        .map(|&i| {
            let mut s = tokens[..=i.min(tokens.len() - 1)].to_vec();
            s.extend_from_slice(&word.tokens);
            s
        })
        .collect();
    let Some(lps) = super::sequence_logprobs(batch, &seqs, temp, cancel, &mut |_, _| {})? else {
        return Ok(None);
    };
    Ok(Some(
        lps.iter()
            .map(|l| l[l.len() - k..].iter().map(|x| x.unwrap_or(f64::NAN)).sum())
            .collect(),
    ))
}

/// The watch values of row `i` (p_i): one-token words from the row itself, the others from
/// `multi[w][i]` (computed with [`continuation_logprobs`]).
pub fn values_at(
    list: &[Watched],
    row: &RowSummary,
    multi: &[(usize, Vec<f64>)],
    i: usize,
) -> Vec<WatchValue> {
    let here: Vec<(usize, f64)> = multi
        .iter()
        .filter_map(|(w, v)| v.get(i).map(|&lp| (*w, lp)))
        .collect();
    values(list, row, &here)
}

/// The watch values of one row: one-token words from the row, the others from `multi`
/// (word index, ln p of the word as the continuation here).
pub fn values(list: &[Watched], row: &RowSummary, multi: &[(usize, f64)]) -> Vec<WatchValue> {
    let mut singles = row.watched.iter();
    list.iter()
        .enumerate()
        .filter_map(|(w, word)| match word.single() {
            Some(_) => singles
                .next()
                .map(|t| WatchValue::new(word, t.logprob, Some(t.rank))),
            None => multi
                .iter()
                .find(|(m, _)| *m == w)
                .map(|&(_, lp)| WatchValue::new(word, lp, None)),
        })
        .collect()
}

/// Attach the watch values to every token (the distribution that predicted it) and to `next`.
pub fn attach(
    report: &mut ScoreReport,
    list: &[Watched],
    rows: &[RowSummary],
    multi: &[(usize, Vec<f64>)],
) {
    if list.is_empty() {
        return;
    }
    for t in &mut report.tokens {
        t.extras.watch = t
            .index
            .checked_sub(1)
            .and_then(|i| rows.get(i).map(|r| values_at(list, r, multi, i)));
    }
    if let (Some(next), Some(i)) = (&mut report.next, rows.len().checked_sub(1)) {
        next.extras.watch = Some(values_at(list, &rows[i], multi, i));
    }
}
