//! Score one text: every position's distribution, as the `score` report — with the extras
//! asked for: a watch-list, words.

use crate::analysis::report::{score_report, ScoreReport};
use crate::analysis::stats::{RowSummary, ViewOptions};
use crate::analysis::watch::Watched;
use crate::model::{Evaluation, Model, ModelError, Session};

/// What a report carries besides the ordinary fields.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub watch: Vec<Watched>,
    pub words: bool,
}

/// Evaluate `text` on `session` (reusing its cached prefix): the report and the evaluation
/// it was built from.
pub fn score_text(
    session: &mut Session<'_>,
    text: &str,
    view: ViewOptions,
) -> Result<(ScoreReport, Evaluation), ModelError> {
    let model = session.model();
    let tokens = model.tokenize(text);
    let ev = session.evaluate(&tokens, view, &|| false)?;
    let report = score_report(
        text,
        &model.info().file_name,
        model.vocab(),
        view.temp,
        &ev.tokens,
        &ev.rows,
        ev.n_tokens_total,
    );
    Ok((report, ev))
}

/// Add the extras to a report of `tokens` whose rows are `rows` (made by a session watching
/// the one-token words, see `engine::watch::single_ids`). Words of several tokens are decoded
/// after every position on `batch` (a multi-stream session, made on first use).
pub fn add_extras<'m>(
    model: &'m Model,
    report: &mut ScoreReport,
    tokens: &[u32],
    rows: &[RowSummary],
    extras: &Extras,
    view: ViewOptions,
    batch: &mut Option<Session<'m>>,
) -> Result<(), ModelError> {
    if extras.words {
        report.words = Some(crate::analysis::words::words(model.vocab(), tokens, rows));
    }
    if extras.watch.is_empty() || tokens.is_empty() {
        return Ok(());
    }
    let mut multi = Vec::new();
    let positions: Vec<usize> = (0..rows.len()).collect();
    for (w, word) in extras.watch.iter().enumerate() {
        if word.single().is_some() {
            continue;
        }
        let longest = tokens.len() + word.tokens.len();
        let limit = model.options().ctx_size as usize;
        if batch.as_ref().is_none_or(|s| s.n_ctx() < longest) {
            let (streams, per_seq) = super::fill::batch_shape(longest, limit)?;
            // Free the old context before making the larger one.
            *batch = None;
            *batch = Some(model.batch_session(streams as u32, per_seq as u32)?);
        }
        let Some(session) = batch.as_mut() else {
            continue;
        };
        let lps = super::watch::continuation_logprobs(
            session,
            tokens,
            word,
            &positions,
            view.temp,
            &|| false,
        )?
        .unwrap_or_default();
        multi.push((w, lps));
    }
    super::watch::attach(report, &extras.watch, rows, &multi);
    Ok(())
}
