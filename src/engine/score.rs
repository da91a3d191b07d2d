//! Score one text: every position's distribution, as the `score` report — with the extras
//! asked for: a watch-list, words.

use crate::analysis::report::{score_report, ScoreReport};
use crate::analysis::stats::{RowSummary, ViewOptions};
use crate::analysis::watch::Watched;
use crate::model::readers::Shared;
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
    Ok((report_of(model, text, view, &ev), ev))
}

/// Score `text` from the hooked decode its readers (lens, attention, attribution) read, when
/// that decode is the one a session would make (see [`Shared::evaluate`]): the same report,
/// bit for bit, with one decode of the text for everything. `None`: score it on a session.
pub fn score_on_readers(
    probe: &Shared<'_>,
    text: &str,
    view: ViewOptions,
    watch: &[u32],
) -> Result<Option<(ScoreReport, Evaluation)>, ModelError> {
    let model = probe.model();
    let tokens = model.tokenize(text);
    Ok(probe
        .evaluate(&tokens, view, watch)?
        .map(|ev| (report_of(model, text, view, &ev), ev)))
}

/// The `score` report of `text`, evaluated by `model` as `ev`.
pub(super) fn report_of(
    model: &Model,
    text: &str,
    view: ViewOptions,
    ev: &Evaluation,
) -> ScoreReport {
    score_report(
        text,
        &model.info().facts(),
        model.vocab(),
        view.temp,
        &ev.tokens,
        &ev.rows,
        ev.n_tokens_total,
    )
}

/// Texts longer than this are scored one at a time (each stream of a side-by-side session
/// holds this many tokens).
pub const SIDE_BY_SIDE_TOKENS: usize = 512;

/// Score `texts` side by side on `batch` (a session of several streams, each of at least
/// [`SIDE_BY_SIDE_TOKENS`]), as many at once as fit: the same reports as [`score_text`] on
/// each alone, bit for bit. Texts with no tokens or more than [`SIDE_BY_SIDE_TOKENS`] get
/// `None`: score them alone.
pub fn score_side_by_side(
    batch: &mut Session<'_>,
    texts: &[&str],
    view: ViewOptions,
) -> Result<Vec<Option<(ScoreReport, Evaluation)>>, ModelError> {
    let model = batch.model();
    let tokens: Vec<Vec<u32>> = texts.iter().map(|t| model.tokenize(t)).collect();
    let evaluations = evaluate_side_by_side(batch, &tokens, view)?;
    Ok(texts
        .iter()
        .zip(evaluations)
        .map(|(text, ev)| ev.map(|ev| (report_of(model, text, view, &ev), ev)))
        .collect())
}

/// Evaluate token sequences side by side on `batch`, as many at once as fit (see
/// [`score_side_by_side`]): `None` for a sequence that is empty or longer than
/// [`SIDE_BY_SIDE_TOKENS`] (evaluate it alone).
pub fn evaluate_side_by_side(
    batch: &mut Session<'_>,
    tokens: &[Vec<u32>],
    view: ViewOptions,
) -> Result<Vec<Option<Evaluation>>, ModelError> {
    let fits = |t: &Vec<u32>| !t.is_empty() && t.len() <= SIDE_BY_SIDE_TOKENS.min(batch.n_ctx());
    let mut out: Vec<Option<Evaluation>> = tokens.iter().map(|_| None).collect();
    let todo: Vec<usize> = (0..tokens.len()).filter(|&i| fits(&tokens[i])).collect();
    let mut at = 0;
    while at < todo.len() {
        let longest = todo[at..]
            .iter()
            .map(|&i| tokens[i].len())
            .max()
            .unwrap_or(1);
        let n = crate::model::side_by_side::group_size(batch.n_seq(), 512, longest);
        let group = &todo[at..(at + n).min(todo.len())];
        let refs: Vec<&[u32]> = group.iter().map(|&i| tokens[i].as_slice()).collect();
        for (&i, ev) in group.iter().zip(batch.evaluate_side_by_side(&refs, view)?) {
            out[i] = Some(ev);
        }
        at += group.len();
    }
    Ok(out)
}

/// A model's sessions for scoring many texts: one for texts alone, one of several streams
/// (made on first use) for texts side by side.
pub struct Batcher<'m> {
    model: &'m Model,
    /// Texts alone (made at once by [`Batcher::new`], on first use by [`Batcher::deferred`]).
    main: Option<Session<'m>>,
    batch: Option<Session<'m>>,
    parallel: usize,
    /// Tokens whose statistics every row keeps (a watch-list), on both sessions.
    watch: Vec<u32>,
}

impl<'m> Batcher<'m> {
    /// `parallel` texts at most are evaluated side by side (1: one at a time).
    pub fn new(model: &'m Model, parallel: usize) -> Result<Self, ModelError> {
        Ok(Self {
            model,
            main: Some(model.session()?),
            batch: None,
            parallel: parallel.max(1),
            watch: Vec::new(),
        })
    }

    /// As [`Batcher::new`], the session for texts alone made only when one is scored alone
    /// (texts that all go side by side need none).
    pub fn deferred(model: &'m Model, parallel: usize) -> Self {
        Self {
            model,
            main: None,
            batch: None,
            parallel: parallel.max(1),
            watch: Vec::new(),
        }
    }

    /// The session for texts alone.
    pub fn main(&mut self) -> Result<&mut Session<'m>, ModelError> {
        let session = match self.main.take() {
            Some(s) => s,
            None => {
                let mut s = self.model.session()?;
                s.set_watch(&self.watch);
                s
            }
        };
        Ok(self.main.insert(session))
    }

    /// Keep the statistics of `ids` in every row from now on (see [`Session::set_watch`]).
    pub fn set_watch(&mut self, ids: &[u32]) {
        self.watch = ids.to_vec();
        if let Some(m) = &mut self.main {
            m.set_watch(ids);
        }
        if let Some(b) = &mut self.batch {
            b.set_watch(ids);
        }
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Tokens one text may have.
    pub fn n_ctx(&self) -> usize {
        self.main.as_ref().map_or_else(
            || self.model.options().ctx_size.max(16) as usize,
            Session::n_ctx,
        )
    }

    /// Evaluate each token sequence: side by side where several fit, alone otherwise; the
    /// same evaluations either way (those of `score`).
    pub fn evaluate_all(
        &mut self,
        texts: &[Vec<u32>],
        view: ViewOptions,
    ) -> Vec<Result<Evaluation, ModelError>> {
        let mut ready: Vec<Option<Evaluation>> = texts.iter().map(|_| None).collect();
        let several = texts
            .iter()
            .filter(|t| !t.is_empty() && t.len() <= SIDE_BY_SIDE_TOKENS)
            .count()
            > 1;
        if several && self.parallel > 1 {
            if self.batch.is_none() {
                self.batch = self
                    .model
                    .batch_session(self.parallel as u32, SIDE_BY_SIDE_TOKENS as u32)
                    .map_err(|e| tracing::warn!("texts one at a time: {e}"))
                    .ok();
                if let Some(b) = &mut self.batch {
                    b.set_watch(&self.watch);
                }
            }
            if let Some(batch) = &mut self.batch {
                match evaluate_side_by_side(batch, texts, view) {
                    Ok(r) => ready = r,
                    Err(e) => tracing::warn!("side by side failed, one at a time: {e}"),
                }
            }
        }
        texts
            .iter()
            .zip(ready)
            .map(|(tokens, ready)| match ready {
                Some(ev) => Ok(ev),
                None => self.main()?.evaluate(tokens, view, &|| false),
            })
            .collect()
    }
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
        let session = super::fill::ensure_batch(model, batch, longest, limit)?;
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
