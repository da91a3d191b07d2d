//! What the explorer asks of a model, in one place: the sessions it keeps (the main text's,
//! the candidate batch's, the second model's with its comparison cache) and the lens, and one
//! call per kind of work. The explorer's worker only maps a job to one of these calls and the
//! answer to a message; the numbers come from the same engine code `score` and `fill` use.

use crate::analysis::attention::AttentionView;
use crate::analysis::blanks::FillReport;
use crate::analysis::compare::RowCompare;
use crate::analysis::lens::{shown_gap, HwReport, LensStatus};
use crate::analysis::stats::{RowSummary, ViewOptions};
use crate::analysis::watch::WatchValue;
use crate::model::lens::CHECK_TOLERANCE;
use crate::model::{Evaluation, Intervention, Model, ModelError, Session};

use super::attention::Attentions;
use super::attribution::{Attributions, Target};
use super::compare::{evaluate_compared, PairCache};
use super::error::EngineError;
use super::fill::{FillError, FillRequest, FillUpdate, Filler};
use super::lens::Lenses;
use super::watch::{resolve, single_ids};
use crate::model::readers::Shared;

/// A piece of the lens of one text, in the order it is computed.
#[derive(Debug, Clone)]
pub enum LensUpdate {
    /// Available (with the self-check's result) or why not; comes first.
    Status(LensStatus),
    /// Every layer at one position (`rows[ℓ]` = layer ℓ).
    Column {
        position: usize,
        rows: Vec<RowSummary>,
    },
    Hw(Box<HwReport>),
    /// The lens could not be computed (a failed decode).
    Failed(EngineError),
    /// The engine left the rest for more urgent work; ask again for what is missing.
    Paused,
}

/// What a lens request asks for: the column of `first` (and its H·W panel when `hw`), then
/// every other column not in `skip`, nearest first.
pub struct LensAsk<'a> {
    pub first: usize,
    pub hw: bool,
    pub skip: &'a [usize],
}

/// A text evaluated, with the second model's side when comparing.
pub struct Evaluated {
    pub ev: Evaluation,
    /// Model B's rows and every position compared.
    pub compare: Option<(Vec<RowSummary>, Vec<RowCompare>)>,
}

/// Top tokens kept per layer for the explorer's lens.
const LENS_TOP: usize = 3;
/// Tokens the H·W panel lists.
const HW_TOKENS: usize = 8;

/// The explorer's sessions on one model (and a second, with `--vs`): one per sentence, each
/// with its own prefix reuse.
pub struct Workbench<'m> {
    model: &'m Model,
    sentences: Vec<Session<'m>>,
    filler: Filler<'m>,
    second: Option<(Session<'m>, PairCache)>,
    /// The one hooked decode the lens, attention and attribution read (and, while one of
    /// their panels is open, the text's distributions: one decode a keystroke).
    probe: Shared<'m>,
    lenses: Lenses<'m>,
    attentions: Attentions<'m>,
    attributions: Attributions<'m>,
    /// `second` is the intact model itself (an ablation or steering is on), not `--vs`.
    intact: bool,
    /// The steering of the run's flags, kept under every ablation the explorer sets.
    steering: Intervention,
}

impl<'m> Workbench<'m> {
    pub fn new(model: &'m Model, second: Option<&'m Model>) -> Result<Self, ModelError> {
        let sentences = vec![model.session()?];
        // The lens, attention and attribution read from one hooked decode of a text.
        let probe = Shared::new(model);
        let second = second
            .map(|b| b.session().map(|s| (s, PairCache::default())))
            .transpose()?;
        Ok(Self {
            model,
            sentences,
            filler: Filler::new(model),
            second,
            lenses: Lenses::on(&probe),
            attentions: Attentions::on(&probe),
            attributions: Attributions::on(&probe),
            probe,
            intact: false,
            steering: Intervention::default(),
        })
    }

    /// Switch the parts of `ablate` off (an `--ablate` spec; empty: none), on top of the
    /// flags' `steering`, for every later evaluation: the sessions forget what they cached,
    /// the lens, attention and attribution readers are made anew, and the intact model
    /// becomes the one compared with (gone again with the intervention). Returns the
    /// intervention's label (`None`: the model is intact) and the compared model's info.
    pub fn intervene(
        &mut self,
        ablate: &str,
        steering: Option<&Intervention>,
    ) -> Result<(Option<String>, Option<crate::model::ModelInfo>), EngineError> {
        let model = self.model;
        if let Some(s) = steering {
            self.steering = Intervention {
                ablate: Vec::new(),
                ..s.clone()
            };
        }
        let (_, n_head) = model.shape();
        let parts = if ablate.trim().is_empty() {
            Vec::new()
        } else {
            crate::analysis::intervention::parse_ablation(ablate.trim(), n_head)
                .map_err(EngineError::Refused)?
        };
        let intervention = Intervention {
            ablate: parts,
            ..self.steering.clone()
        };
        if !intervention.is_empty() && self.second.is_some() && !self.intact {
            return Err(EngineError::Refused(
                "an ablation or control vector is compared with the intact model: leave out --vs"
                    .into(),
            ));
        }
        let edits = model.edits(&intervention)?;
        model.set_edits(edits.clone());
        for s in &mut self.sentences {
            s.set_edits(edits.clone());
        }
        self.filler = Filler::new(model);
        let probe = Shared::new(model);
        self.lenses = Lenses::on(&probe);
        self.attentions = Attentions::on(&probe);
        self.attributions = Attributions::on(&probe);
        self.probe = probe;
        if edits.is_some() {
            if !self.intact {
                let mut s = model.session()?;
                s.set_edits(None);
                self.second = Some((s, PairCache::default()));
                self.intact = true;
            }
        } else if self.intact {
            self.second = None;
            self.intact = false;
        }
        let label = edits.is_some().then(|| intervention.label());
        let info = self.intact.then(|| {
            let mut info = model.info();
            info.file_name = format!("{} (intact)", info.file_name);
            info.intervention = None;
            info
        });
        Ok((label, info))
    }

    /// Tokens one text may have.
    pub fn n_ctx(&self) -> usize {
        self.sentences[0].n_ctx()
    }

    /// Sentence `n`'s session (made on first use).
    fn session(&mut self, n: usize) -> Result<&mut Session<'m>, ModelError> {
        while self.sentences.len() <= n {
            self.sentences.push(self.model.session()?);
        }
        Ok(&mut self.sentences[n])
    }

    /// Decodes made so far, by the sessions and the readers' shared decode together.
    pub fn decodes(&self) -> usize {
        let sessions: usize = self.sentences.iter().map(Session::decodes).sum();
        sessions + self.probe.decodes() + self.second.as_ref().map_or(0, |(s, _)| s.decodes())
    }

    /// Every position's distribution of `text`, sentence `sentence` of the explorer (and
    /// model B's, compared), watching the one-token words of `watch`. `None` when cancelled.
    /// With `readers` (a lens, attention or attribution panel will ask about this text), a
    /// text of one decode is evaluated by the readers' decode, which then answers the panel
    /// too: one decode a keystroke instead of the session's and the readers' (the same
    /// numbers, bit for bit: `tests/readers.rs`).
    pub fn evaluate(
        &mut self,
        sentence: usize,
        text: &str,
        view: ViewOptions,
        watch: &[String],
        readers: bool,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Option<Evaluated>, ModelError> {
        let ids = single_ids(&resolve(self.model, watch));
        let tokens = self.model.tokenize(text);
        if readers && self.second.is_none() {
            if let Some(ev) = self.probe.evaluate(&tokens, view, &ids)? {
                return Ok(Some(Evaluated { ev, compare: None }));
            }
        }
        self.session(sentence)?;
        let main = &mut self.sentences[sentence];
        main.set_watch(&ids);
        let done = match &mut self.second {
            Some((b, cache)) => {
                let c = evaluate_compared(main, b, cache, &tokens, view, cancel)?;
                Evaluated {
                    ev: c.a,
                    compare: Some((c.b.rows, c.rows)),
                }
            }
            None => Evaluated {
                ev: main.evaluate(&tokens, view, cancel)?,
                compare: None,
            },
        };
        Ok((!done.ev.cancelled).then_some(done))
    }

    /// The watched words at one position: one-token words from the main session's row (the
    /// text is cached, so this costs no decode), words of several tokens decoded after it.
    /// `None` when cancelled or the position is past the text.
    pub fn watch_at(
        &mut self,
        sentence: usize,
        text: &str,
        position: usize,
        words: &[String],
        view: ViewOptions,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Option<Vec<WatchValue>>, ModelError> {
        let list = resolve(self.model, words);
        let tokens = self.model.tokenize(text);
        let ids = single_ids(&list);
        let ev = match self.probe.evaluate_held(&tokens, view, &ids)? {
            // The text was evaluated by the readers' decode: its logits are still there.
            Some(ev) if self.second.is_none() => ev,
            _ => {
                let main = self.session(sentence)?;
                main.set_watch(&ids);
                main.evaluate(&tokens, view, cancel)?
            }
        };
        if ev.cancelled {
            return Ok(None);
        }
        let Some(row) = ev.rows.get(position) else {
            return Ok(None);
        };
        let mut multi = Vec::new();
        for (w, word) in list.iter().enumerate() {
            if word.single().is_some() {
                continue;
            }
            let batch = self.filler.batch_for(ev.tokens.len() + word.tokens.len())?;
            match super::watch::continuation_logprobs(
                batch,
                &ev.tokens,
                word,
                &[position],
                view.temp,
                cancel,
            )? {
                Some(lps) => multi.extend(lps.first().map(|&lp| (w, lp))),
                None => return Ok(None),
            }
        }
        Ok(Some(super::watch::values(&list, row, &multi)))
    }

    /// Fill the blanks of a text (see [`Filler::fill`]).
    pub fn fill(
        &mut self,
        request: &FillRequest,
        cancel: &dyn Fn() -> bool,
        on_update: &mut dyn FnMut(FillUpdate),
    ) -> Result<FillReport, FillError> {
        let tokens = self.model.tokenize(&request.text);
        let held = holding(&self.sentences, &tokens);
        self.filler
            .fill(&mut self.sentences[held], request, cancel, on_update)
    }

    /// The attention panel's data at `position` of `text` (one decode of the text, reused
    /// while the text stays), or why there is none.
    pub fn attention(&mut self, text: &str, position: usize) -> Result<AttentionView, EngineError> {
        let tokens = self.model.tokenize(text);
        self.attentions
            .view(&tokens, position)?
            .map_err(EngineError::Unavailable)
    }

    /// The logit of `target` (the token that follows when `None`) at `position` of `text`
    /// split into its parts (one decode of the text, reused while the text stays), or why
    /// there is none.
    pub fn attribution(
        &mut self,
        text: &str,
        position: usize,
        target: Option<u32>,
    ) -> Result<crate::analysis::attribution::Attribution, EngineError> {
        let tokens = self.model.tokenize(text);
        let target = target.map_or(Target::Actual, Target::Token);
        // At the last position there is no token that follows: the panel names its target.
        match self
            .attributions
            .split(&tokens, &[position], target, &|_| None)
        {
            Ok((status, mut parts)) => match parts.pop().flatten() {
                Some(a) => Ok(a),
                None => Err(EngineError::Unavailable(status.reason.unwrap_or_else(
                    || {
                        format!(
                            "attribution covers the first {} tokens of the text (one decode)",
                            status.positions.unwrap_or(0)
                        )
                    },
                ))),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Causal tracing of `clean` against `corrupt` at temperature `temp` (the residual
    /// stream, the defaults of `trace`); `progress(report so far, runs done, runs in all)`
    /// after each decode. `None`
    /// when `stop` said so.
    pub fn trace(
        &mut self,
        clean: &str,
        corrupt: &str,
        temp: f32,
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(&crate::analysis::trace::TraceReport, usize, usize),
    ) -> Result<Option<crate::analysis::trace::TraceReport>, EngineError> {
        let opts = crate::engine::trace::TraceOptions {
            temp,
            ..Default::default()
        };
        crate::engine::trace::trace(
            self.model,
            clean,
            corrupt,
            &opts,
            &mut |r, p| progress(r, p.done, p.total),
            stop,
        )
        .map_err(EngineError::from)
    }

    /// The lens of `text`: its status, the column asked for first (with its H·W panel), then
    /// the other columns nearest first, each through `say`. A column whose last layer is not
    /// the distribution shown for the text turns the lens unavailable. Stops when `cancel`
    /// says so, and pauses (saying so) when `pause` does: each column costs a pass over W
    /// per layer.
    pub fn lens(
        &mut self,
        text: &str,
        view: ViewOptions,
        ask: &LensAsk<'_>,
        cancel: &dyn Fn() -> bool,
        pause: &dyn Fn() -> bool,
        say: &mut dyn FnMut(LensUpdate),
    ) {
        let tokens = self.model.tokenize(text);
        if tokens.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let run = match self.lenses.run(&tokens, view.temp) {
            Ok(run) => run,
            Err(e) => return say(LensUpdate::Failed(e.into())),
        };
        if !run.status.available {
            return say(LensUpdate::Status(run.status.clone()));
        }
        // The rows shown for this text: from the readers' decode when it evaluated the text,
        // else the session that has them cached.
        let shown = match self.probe.evaluate_held(&tokens, view, &[]) {
            Ok(Some(ev)) => Ok(ev),
            Ok(None) => {
                let held = holding(&self.sentences, &tokens);
                self.sentences[held].evaluate(&tokens, view, cancel)
            }
            Err(e) => Err(e),
        };
        let shown = match shown {
            Ok(ev) if !ev.cancelled => ev.rows,
            Ok(_) => return,
            Err(e) => return say(LensUpdate::Failed(e.into())),
        };
        say(LensUpdate::Status(run.status.clone()));
        let mut order: Vec<usize> = (0..tokens.len())
            .filter(|p| !ask.skip.contains(p) || *p == ask.first)
            .collect();
        order.sort_by_key(|&p| p.abs_diff(ask.first));
        for p in order {
            if cancel() {
                return;
            }
            if pause() {
                return say(LensUpdate::Paused);
            }
            let asked_first = p == ask.first;
            if !asked_first || !ask.skip.contains(&p) {
                match run.column(p, LENS_TOP) {
                    Ok(Some(rows)) => {
                        let gap = rows
                            .last()
                            .zip(shown.get(p))
                            .map_or(0.0, |(l, s)| shown_gap(l, s));
                        if gap > CHECK_TOLERANCE {
                            let mut status = run.status.clone();
                            status.available = false;
                            status.max_abs_dp_shown = Some(gap);
                            status.reason = Some(format!(
                                "the lens's last layer differs from the distribution shown at position {p} (|Δp| {gap:.2e})"
                            ));
                            return say(LensUpdate::Status(status));
                        }
                        say(LensUpdate::Column { position: p, rows })
                    }
                    Ok(None) => {}
                    Err(e) => return say(LensUpdate::Failed(e.into())),
                }
            }
            if asked_first && ask.hw {
                match run.hw(p, HW_TOKENS) {
                    Ok(Some(hw)) => say(LensUpdate::Hw(Box::new(hw))),
                    Ok(None) => {}
                    Err(e) => return say(LensUpdate::Failed(e.into())),
                }
            }
            if asked_first {
                tracing::debug!(
                    "lens of position {p} ready {} ms after the request",
                    started.elapsed().as_millis()
                );
            }
        }
    }
}

/// The session that holds most of `tokens` already (for work on the text shown, whichever
/// sentence it is).
fn holding(sentences: &[Session<'_>], tokens: &[u32]) -> usize {
    (0..sentences.len())
        .max_by_key(|&i| {
            let held = crate::model::common_prefix(sentences[i].cached(), tokens);
            (held, std::cmp::Reverse(i))
        })
        .unwrap_or(0)
}
