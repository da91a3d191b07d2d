//! Attention of a text, for `score --attention` and the explorer's panel: the reader made on
//! first use (or the reason there is none), the last text's map reused while it covers what
//! is asked, and whole rows kept only within a memory budget.

use crate::analysis::attention::{AttentionMap, AttentionStatus, AttentionView, PositionLayers};
use crate::model::attention::{Attention, AttentionError, Keep};
use crate::model::readers::Shared;
use crate::model::{Model, ModelError};

/// Whole rows kept at once, in floats (64 MiB): layers × heads × positions kept × n.
pub const FULL_BUDGET: usize = 16 << 20;

/// Heads that mostly (this share or more) attend to one thing are listed as suspects.
pub const SUSPECT_SHARE: f64 = 0.5;

/// A model's attention reader, made when first asked for, and its last map.
pub struct Attentions<'m> {
    probe: Shared<'m>,
    reader: Option<Result<Attention<'m>, String>>,
    last: Option<(usize, AttentionMap)>,
}

impl<'m> Attentions<'m> {
    /// Attention of `model`, with a decode of its own.
    pub fn new(model: &'m Model) -> Self {
        Self::on(&Shared::new(model))
    }

    /// Attention read from the shared decode `probe`.
    pub fn on(probe: &Shared<'m>) -> Self {
        Self {
            probe: probe.clone(),
            reader: None,
            last: None,
        }
    }

    /// Make the reader now, digesting each row to its `k` largest weights, so that the
    /// shared decode reads for it from the first text on.
    pub fn join(&mut self, k: usize) {
        let probe = &self.probe;
        if let Ok(r) = self.reader.get_or_insert_with(|| Attention::on(probe)) {
            r.expect(k, Keep::Positions(Vec::new()));
        }
    }

    /// The map of `tokens` with each row's `k` largest weights and the whole rows of `keep`:
    /// the last one if it is of the same tokens, at least `k`, and kept them. `Ok(Err(why))`
    /// when attention is unavailable for this model or text.
    pub fn map(
        &mut self,
        tokens: &[u32],
        k: usize,
        keep: Keep,
    ) -> Result<Result<&AttentionMap, String>, ModelError> {
        let probe = &self.probe;
        let reader = match self.reader.get_or_insert_with(|| Attention::on(probe)) {
            Ok(r) => r,
            Err(why) => return Ok(Err(why.clone())),
        };
        let covered = &tokens[..tokens.len().min(reader.max_tokens())];
        let reusable = self.last.as_ref().is_some_and(|(last_k, m)| {
            m.tokens == covered
                && *last_k >= k
                && match &keep {
                    Keep::All => (0..m.len()).all(|p| m.full.contains_key(&p)),
                    Keep::Positions(ps) => ps.iter().all(|p| m.full.contains_key(p)),
                }
        });
        if !reusable {
            self.last = None;
            match reader.run(covered, k, keep) {
                Ok(map) => self.last = Some((k, map)),
                Err(AttentionError::Unavailable(why)) => return Ok(Err(why)),
                Err(AttentionError::Model(e)) => return Err(e),
            }
        }
        Ok(Ok(&self.last.as_ref().expect("just made").1))
    }

    /// The panel's data for `position` of `tokens`: whole rows of every position when they
    /// fit the budget (moving the selection is then free), else of as many positions around
    /// this one as fit (one decode per move out of them).
    pub fn view(
        &mut self,
        tokens: &[u32],
        position: usize,
    ) -> Result<Result<AttentionView, String>, ModelError> {
        let n = tokens.len().max(1);
        let per_position = self
            .last
            .as_ref()
            .map_or(64 * 16, |(_, m)| m.facts.n_layer * m.facts.n_head)
            * n;
        let fit = (FULL_BUDGET / per_position).max(1);
        let keep =
            if fit >= n {
                Keep::All
            } else if self.last.as_ref().is_some_and(|(_, m)| {
                tokens.starts_with(&m.tokens) && m.full.contains_key(&position)
            }) {
                // Kept by the last run of these tokens (`map` checks that they are).
                Keep::Positions(vec![position])
            } else {
                let start = position.saturating_sub(fit / 2).min(n - fit);
                Keep::Positions((start..start + fit).collect())
            };
        Ok(match self.map(tokens, 1, keep)? {
            Ok(map) => map.view(position, SUSPECT_SHARE).ok_or_else(|| {
                format!(
                    "attention covers the first {} tokens of the text (one decode)",
                    map.len()
                )
            }),
            Err(why) => Err(why),
        })
    }
}

/// Every position's layers for a report (`[i]` = what position i attends to; `None` beyond
/// the positions covered), each head's `k` largest weights and, with `full`, whole rows.
pub fn attention_layers(
    attentions: &mut Attentions<'_>,
    tokens: &[u32],
    k: usize,
    full: bool,
) -> Result<(AttentionStatus, PositionLayers), ModelError> {
    if tokens.is_empty() {
        return Ok((
            AttentionStatus::unavailable("the text has no tokens"),
            Vec::new(),
        ));
    }
    let map = match attentions.map(tokens, k, Keep::Positions(Vec::new()))? {
        Ok(m) => m,
        Err(why) => return Ok((AttentionStatus::unavailable(why), vec![None; tokens.len()])),
    };
    let status = AttentionStatus {
        available: true,
        reason: None,
        positions: Some(map.len()),
        facts: Some(map.facts.clone()),
    };
    let n = map.len();
    let mut layers: PositionLayers = (0..tokens.len()).map(|p| map.layers_at(p)).collect();
    if full {
        // Whole rows in chunks of positions that fit the budget, one decode per chunk.
        let per_position = (map.facts.n_layer * map.facts.n_head * n).max(1);
        let chunk = (FULL_BUDGET / per_position).max(1);
        for start in (0..n).step_by(chunk) {
            let wanted: Vec<usize> = (start..(start + chunk).min(n)).collect();
            let map = match attentions.map(tokens, k, Keep::Positions(wanted.clone()))? {
                Ok(m) => m,
                Err(why) => {
                    return Ok((AttentionStatus::unavailable(why), vec![None; tokens.len()]))
                }
            };
            for p in wanted {
                layers[p] = map.layers_at(p);
            }
        }
    }
    Ok((status, layers))
}
