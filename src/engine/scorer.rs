//! `score`'s work as one engine call: texts scored on one model or two compared (another
//! model, or the intervened model with its intact self), side by side when nothing else is
//! asked, with the extras (words, watched words) and the lens, attention and attribution read
//! from one hooked decode of each text. A front end hands it groups of texts and writes the
//! reports out; the decoding, batching and wiring are all here.

use crate::analysis::report::{attach_attention, attach_attribution, attach_lens, ScoreReport};
use crate::analysis::stats::ViewOptions;
use crate::model::readers::Shared;
use crate::model::{Evaluation, Model, Session};

use super::attention::{attention_layers, Attentions};
use super::attribution::{Attributions, Target};
use super::compare::{score_pair, Pair};
use super::error::EngineError;
use super::lens::{lens_columns, Lenses};
use super::score::{add_extras, report_of, Batcher, Extras};
use super::watch::{resolve, single_ids};

/// `--attention`: the top `k` attended positions per head, with `full` whole rows too.
#[derive(Debug, Clone, Copy)]
pub struct AttentionAsked {
    pub k: usize,
    pub full: bool,
}

/// `--attribution`: at token index `at` only, of `token` instead of the actual one.
#[derive(Debug, Clone)]
pub struct AttributionAsked {
    pub at: Option<usize>,
    pub token: Option<String>,
}

/// What each text's report holds besides its distributions.
#[derive(Debug, Clone, Default)]
pub struct ScoreAsk {
    /// Words whose probability every position reports.
    pub watch: Vec<String>,
    pub words: bool,
    pub layers: bool,
    pub attention: Option<AttentionAsked>,
    pub attribution: Option<AttributionAsked>,
    /// Texts side by side at most (one model, nothing read from the hooked decode).
    pub parallel: usize,
    pub view: ViewOptions,
}

/// What scores the texts: one model (alone or side by side), or two compared.
#[allow(clippy::large_enum_variant)]
enum Scoring<'m> {
    One(Batcher<'m>),
    Two(Pair<'m, 'm>),
}

/// The attribution asked for, resolved.
struct Attributing<'m> {
    attributions: Attributions<'m>,
    at: Option<usize>,
    target: Target,
}

/// `score` on a model: [`Scorer::score_group`] for each group of texts.
pub struct Scorer<'m> {
    model: &'m Model,
    scoring: Scoring<'m>,
    /// Model B's name in the reports.
    b_name: String,
    extras: Extras,
    singles: Vec<u32>,
    view: ViewOptions,
    /// Texts side by side at most.
    parallel: usize,
    /// The watched words' continuation batch (made on first use).
    batch: Option<Session<'m>>,
    /// The hooked decode the readers share.
    probe: Shared<'m>,
    lenses: Option<Lenses<'m>>,
    attentions: Option<(Attentions<'m>, AttentionAsked)>,
    attributing: Option<Attributing<'m>>,
}

impl<'m> Scorer<'m> {
    /// Ready to score on `model` (compared with `second`, or with its intact self when the
    /// model carries an intervention). A context that cannot be made, a watched or target
    /// token that is not one token, or a comparison that cannot be made fails here, before
    /// the first text.
    pub fn new(
        model: &'m Model,
        second: Option<&'m Model>,
        ask: &ScoreAsk,
    ) -> Result<Self, EngineError> {
        let intervened = model.default_edits().is_some();
        if intervened && second.is_some() {
            return Err(EngineError::Refused(
                "--ablate and control vectors compare with the intact model: leave out --vs".into(),
            ));
        }
        let extras = Extras {
            watch: resolve(model, &ask.watch),
            words: ask.words,
        };
        let singles = single_ids(&extras.watch);
        let readers = ask.layers || ask.attention.is_some() || ask.attribution.is_some();
        // Side by side only for one model with nothing read from the hooked decode: with
        // readers, each text is scored from their decode (one decode of it for everything).
        let parallel = if second.is_some() || intervened || readers {
            1
        } else {
            ask.parallel.max(1)
        };
        let mut scoring = match second {
            Some(b) => Scoring::Two(Pair::new(model.session()?, b.session()?)),
            None if intervened => {
                let mut intact = model.session()?;
                intact.set_edits(None);
                Scoring::Two(Pair::new(model.session()?, intact))
            }
            // Side by side, the session for texts alone made when one is first scored alone;
            // one at a time, now, so a context that cannot be made stops before the first line.
            None if parallel > 1 => Scoring::One(Batcher::deferred(model, parallel)),
            None => Scoring::One(Batcher::new(model, parallel)?),
        };
        match &mut scoring {
            Scoring::One(b) => b.set_watch(&singles),
            Scoring::Two(p) => p.a.set_watch(&singles),
        }
        let b_name = match second {
            Some(b) => b.info().file_name,
            None => format!("{} (intact)", model.info().file_name),
        };
        // One hooked decode of each text serves the lens, attention and attribution: each
        // joins it now, so the first text's decode reads for all of them.
        let probe = Shared::new(model);
        let lenses = ask.layers.then(|| {
            let mut l = Lenses::on(&probe);
            l.join();
            l
        });
        let attentions = ask.attention.map(|asked| {
            let mut a = Attentions::on(&probe);
            a.join(asked.k);
            (a, asked)
        });
        let attributing = match &ask.attribution {
            None => None,
            Some(asked) => {
                let target = match asked.token.as_deref() {
                    None => Target::Actual,
                    Some(t) => match model.tokenize_continuation(t)[..] {
                        [id] => Target::Token(id),
                        ref ids => {
                            return Err(EngineError::Refused(format!(
                                "--attribution-token {t:?} is {} tokens, not one: attribution splits one token's logit",
                                ids.len()
                            )))
                        }
                    },
                };
                let mut attributions = Attributions::on(&probe);
                attributions.join();
                Some(Attributing {
                    attributions,
                    at: asked.at,
                    target,
                })
            }
        };
        Ok(Self {
            model,
            scoring,
            b_name,
            extras,
            singles,
            view: ask.view,
            parallel,
            batch: None,
            probe,
            lenses,
            attentions,
            attributing,
        })
    }

    /// Texts a group should hold at most (1: one at a time).
    pub fn parallel(&self) -> usize {
        self.parallel
    }

    /// The watched words, resolved to the model's tokens.
    pub fn extras(&self) -> &Extras {
        &self.extras
    }

    /// Each text's report (or why there is none): from the readers' decode when they are
    /// asked and the text is one decode, else side by side when the group has several and
    /// the model allows it, else alone; each with everything asked attached.
    pub fn score_group(&mut self, texts: &[String]) -> Vec<Result<ScoreReport, EngineError>> {
        let (model, view) = (self.model, self.view);
        let readers =
            self.lenses.is_some() || self.attentions.is_some() || self.attributing.is_some();
        let evaluated: Vec<Result<(ScoreReport, Evaluation), EngineError>> = match &mut self.scoring
        {
            Scoring::Two(pair) => texts
                .iter()
                .map(|t| Ok(score_pair(pair, &self.b_name, t, view)?))
                .collect(),
            Scoring::One(batcher) => {
                let tokens: Vec<Vec<u32>> = texts.iter().map(|t| model.tokenize(t)).collect();
                // With readers, a text of one decode is evaluated by their decode.
                let from_readers: Vec<Option<Result<Evaluation, EngineError>>> = tokens
                    .iter()
                    .map(|t| match readers {
                        true => self.probe.evaluate(t, view, &self.singles).transpose(),
                        false => None,
                    })
                    .map(|ev| ev.map(|ev| ev.map_err(EngineError::from)))
                    .collect();
                let rest: Vec<Vec<u32>> = tokens
                    .iter()
                    .zip(&from_readers)
                    .filter(|(_, r)| r.is_none())
                    .map(|(t, _)| t.clone())
                    .collect();
                let mut rest = batcher.evaluate_all(&rest, view).into_iter();
                texts
                    .iter()
                    .zip(from_readers)
                    .map(|(text, ev)| {
                        let ev = match ev {
                            Some(ev) => ev?,
                            // evaluate_all answers every text it is given, in order.
                            None => rest.next().ok_or(crate::model::ModelError::Empty)??,
                        };
                        Ok((report_of(model, text, view, &ev), ev))
                    })
                    .collect()
            }
        };
        evaluated
            .into_iter()
            .map(|done| {
                let (report, ev) = done?;
                self.finish(report, &ev)
            })
            .collect()
    }

    /// The extras, the lens, attention and attribution of one evaluated text.
    fn finish(
        &mut self,
        mut report: ScoreReport,
        ev: &Evaluation,
    ) -> Result<ScoreReport, EngineError> {
        let (model, view) = (self.model, self.view);
        add_extras(
            model,
            &mut report,
            &ev.tokens,
            &ev.rows,
            &self.extras,
            view,
            &mut self.batch,
        )?;
        if let Some(lenses) = &mut self.lenses {
            let (status, columns) =
                lens_columns(lenses, &ev.tokens, &ev.rows, view.temp, view.n_probs)?;
            attach_lens(&mut report, model.vocab(), status, &columns);
        }
        if let Some((attentions, asked)) = &mut self.attentions {
            let (status, layers) = attention_layers(attentions, &ev.tokens, asked.k, asked.full)?;
            attach_attention(&mut report, status, layers);
        }
        if let Some(a) = &mut self.attributing {
            let n = ev.tokens.len();
            let positions: Vec<usize> = match a.at {
                None => (0..n).collect(),
                Some(j) if (1..=n).contains(&j) => vec![j - 1],
                Some(j) => {
                    return Err(EngineError::Refused(format!(
                        "--attribution-at {j}: the text's tokens with a position before \
                         them are 1 to {} ({n}: the next-token prediction)",
                        n - 1
                    )))
                }
            };
            let top1 = |p: usize| ev.rows.get(p).and_then(|r| r.top.first()).map(|t| t.id);
            let (status, parts) = a
                .attributions
                .split(&ev.tokens, &positions, a.target, &top1)?;
            attach_attribution(&mut report, status, &positions, parts);
        }
        Ok(report)
    }
}
