//! Score one text: every position's distribution, as the `score` report.

use crate::analysis::report::{score_report, ScoreReport};
use crate::analysis::stats::ViewOptions;
use crate::model::{ModelError, Session};

/// Evaluate `text` on `session` (reusing its cached prefix) and build the report.
pub fn score_text(
    session: &mut Session<'_>,
    text: &str,
    view: ViewOptions,
) -> Result<ScoreReport, ModelError> {
    let model = session.model();
    let tokens = model.tokenize(text);
    let ev = session.evaluate(&tokens, view, &|| false)?;
    Ok(score_report(
        text,
        &model.info().file_name,
        model.vocab(),
        view.temp,
        &ev.tokens,
        &ev.rows,
        ev.n_tokens_total,
    ))
}
