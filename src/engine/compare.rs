//! Two models on the same text: both evaluate the same token ids (model A's tokenization; the
//! vocabularies must be the same), in lockstep, each reusing its cached prefix, and every
//! position's distributions are compared over the whole vocabulary as the rows are read.

use crate::analysis::compare::{compare_rows, vocab_difference, RowCompare};
use crate::analysis::report::{attach_compare, ScoreReport};
use crate::analysis::stats::ViewOptions;
use crate::model::pair::evaluate_pair;
use crate::model::{Evaluation, Model, ModelError, Session};

/// How many of A's top tokens get their B probability computed (the screen's rows).
const SHOWN: usize = 50;

/// Refuse two models whose vocabularies differ: token ids would mean different pieces.
pub fn check_same_vocabulary(a: &Model, b: &Model) -> Result<(), String> {
    match vocab_difference(a.vocab(), b.vocab()) {
        Some(why) => Err(format!(
            "cannot compare '{}' with '{}': {why}",
            a.info().file_name,
            b.info().file_name
        )),
        None => Ok(()),
    }
}

/// The comparisons of what a pair of sessions has cached (positions below the next start).
#[derive(Debug, Clone, Default)]
pub struct PairCache {
    rows: Vec<RowCompare>,
}

/// A text evaluated by both models, and every position compared (a prefix of them when
/// `a.cancelled`).
#[derive(Debug, Clone)]
pub struct Compared {
    pub a: Evaluation,
    pub b: Evaluation,
    pub rows: Vec<RowCompare>,
}

/// Evaluate `tokens` on `a` and `b` (stopping early, `a.cancelled`, when `cancel` says so),
/// comparing every position; `cache` keeps the comparisons of the reused prefix.
pub fn evaluate_compared(
    a: &mut Session<'_>,
    b: &mut Session<'_>,
    cache: &mut PairCache,
    tokens: &[u32],
    view: ViewOptions,
    cancel: &dyn Fn() -> bool,
) -> Result<Compared, ModelError> {
    let mut fresh: Vec<(usize, RowCompare)> = Vec::new();
    let (ea, eb, start) = evaluate_pair(a, b, tokens, view, cancel, &mut |i, ra, rb| {
        fresh.push((i, compare_rows(ra, rb, view.temp, SHOWN)?));
        Ok(())
    })?;
    cache.rows.truncate(start);
    for (i, c) in fresh {
        if i == cache.rows.len() {
            cache.rows.push(c);
        }
    }
    Ok(Compared {
        a: ea,
        b: eb,
        rows: cache.rows.clone(),
    })
}

/// Two sessions that evaluate every text together (the scripting mode's `--vs`).
pub struct Pair<'a, 'b> {
    pub a: Session<'a>,
    pub b: Session<'b>,
    cache: PairCache,
}

impl<'a, 'b> Pair<'a, 'b> {
    pub fn new(a: Session<'a>, b: Session<'b>) -> Self {
        Self {
            a,
            b,
            cache: PairCache::default(),
        }
    }

    pub fn evaluate(
        &mut self,
        tokens: &[u32],
        view: ViewOptions,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Compared, ModelError> {
        evaluate_compared(
            &mut self.a,
            &mut self.b,
            &mut self.cache,
            tokens,
            view,
            cancel,
        )
    }
}

/// Score one text on both models: the `score` report of A with B's comparison attached, B
/// named `b_name` (its file, or the intact model when A is intervened).
pub fn score_pair(
    pair: &mut Pair<'_, '_>,
    b_name: &str,
    text: &str,
    view: ViewOptions,
) -> Result<(ScoreReport, Evaluation), ModelError> {
    let model = pair.a.model();
    let tokens = model.tokenize(text);
    let c = pair.evaluate(&tokens, view, &|| false)?;
    let mut report = crate::analysis::report::score_report(
        text,
        &model.info().facts(),
        model.vocab(),
        view.temp,
        &c.a.tokens,
        &c.a.rows,
        c.a.n_tokens_total,
    );
    attach_compare(&mut report, b_name, &c.a.rows, &c.b.rows, &c.rows);
    Ok((report, c.a))
}

/// Add model B's log-probability of every candidate's scored text to a fill report (each text
/// as model A scored it: earlier blanks holding A's best fills, up to the next blank).
pub fn fill_compare(
    b: &mut Session<'_>,
    report: &mut crate::analysis::blanks::FillReport,
    view: ViewOptions,
) -> Result<(), ModelError> {
    use crate::analysis::blanks::{find_blanks, frame};
    let text = report.text.clone();
    let blanks = find_blanks(&text);
    let mut fills: Vec<String> = Vec::new();
    for blank in &mut report.blanks {
        let fr = frame(&text, &blanks, blank.index, &fills);
        for c in &mut blank.candidates {
            let tokens = b.model().tokenize(&fr.filled(&c.text));
            let ev = b.evaluate(&tokens, view, &|| false)?;
            c.sentence_logprob_b = Some(crate::analysis::report::totals(&ev.rows).0);
        }
        if let Some(best) = blank.candidates.first() {
            fills.push(best.text.clone());
        }
    }
    Ok(())
}
