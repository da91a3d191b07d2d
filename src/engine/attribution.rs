//! Direct logit attribution of a text, for `score --attribution` and the explorer's panel: the
//! attributor made on first use (or the reason there is none), the last text's parts reused
//! while the tokens stay the same.

use crate::analysis::attribution::{Attribution, AttributionStatus};
use crate::model::attribution::{AttributionError, Attributor};
use crate::model::readers::Shared;
use crate::model::{Model, ModelError};

/// Which logit to split at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The token that follows (at the last position: the most likely next token).
    Actual,
    /// This token.
    Token(u32),
}

/// A model's attributor, made when first asked for.
pub struct Attributions<'m> {
    probe: Shared<'m>,
    attributor: Option<Result<Attributor<'m>, String>>,
}

impl<'m> Attributions<'m> {
    /// Attribution on `model`, with a decode of its own.
    pub fn new(model: &'m Model) -> Self {
        Self::on(&Shared::new(model))
    }

    /// Attribution read from the shared decode `probe`.
    pub fn on(probe: &Shared<'m>) -> Self {
        Self {
            probe: probe.clone(),
            attributor: None,
        }
    }

    /// Make the attributor now, so that the shared decode reads for it from the first text
    /// on.
    pub fn join(&mut self) {
        let probe = &self.probe;
        self.attributor
            .get_or_insert_with(|| Attributor::on(probe).map_err(reason));
    }

    /// The split at each of `positions` of `tokens` (`[i]` for `positions[i]`; `None` beyond
    /// the positions covered), and the text's status. `top1[p]` is the most likely token at
    /// p, the target at the last position when the target is the actual token.
    pub fn split(
        &mut self,
        tokens: &[u32],
        positions: &[usize],
        target: Target,
        top1: &dyn Fn(usize) -> Option<u32>,
    ) -> Result<(AttributionStatus, Vec<Option<Attribution>>), ModelError> {
        let none = vec![None; positions.len()];
        let unavailable = |why: String| AttributionStatus {
            available: false,
            reason: Some(why),
            positions: None,
        };
        let probe = &self.probe;
        let model = probe.model();
        let a = match self
            .attributor
            .get_or_insert_with(|| Attributor::on(probe).map_err(reason))
        {
            Ok(a) => a,
            Err(why) => return Ok((unavailable(why.clone()), none)),
        };
        let covered = match a.run(tokens) {
            Ok(n) => n,
            Err(AttributionError::Model(e)) => return Err(e),
            Err(e) => return Ok((unavailable(reason(e)), none)),
        };
        let vocab = model.vocab();
        let mut out = vec![None; positions.len()];
        let mut asks = Vec::new();
        let mut slots = Vec::new();
        for (i, &p) in positions.iter().enumerate() {
            let id = match target {
                Target::Token(t) => Some(t),
                Target::Actual => tokens.get(p + 1).copied().or_else(|| top1(p)),
            };
            if let (Some(id), true) = (id, p < covered) {
                asks.push((p, id, vocab.text(id)));
                slots.push(i);
            }
        }
        match a.at_many(asks) {
            Ok(splits) => {
                for (i, x) in slots.into_iter().zip(splits) {
                    out[i] = Some(x);
                }
            }
            Err(AttributionError::Model(e)) => return Err(e),
            Err(e) => return Ok((unavailable(reason(e)), none)),
        }
        let status = AttributionStatus {
            available: true,
            reason: None,
            positions: Some(covered),
        };
        Ok((status, out))
    }
}

/// Why there is no split, without the "attribution unavailable" the JSON's `available` and
/// the panel already say.
fn reason(e: AttributionError) -> String {
    match e {
        AttributionError::Unavailable(why) => why,
        other => other.to_string(),
    }
}
