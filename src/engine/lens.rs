//! The logit lens of a text, for `score --layers` and the explorer: a lens made on first use
//! (or the reason there is none), run on the text, its status, and each position's column of
//! layers summarised.

use crate::analysis::lens::{shown_gap, HwReport, LensStatus};
use crate::analysis::stats::RowSummary;
use crate::model::lens::{Lens, LensError, Unavailable, CHECK_TOLERANCE};
use crate::model::readers::Shared;
use crate::model::{Model, ModelError};

/// A model's lens, made when first asked for (or [joined](Lenses::join) ahead).
pub struct Lenses<'m> {
    probe: Shared<'m>,
    lens: Option<Result<Lens<'m>, Unavailable>>,
}

/// A text the lens has run on.
pub struct LensRun<'a, 'm> {
    pub status: LensStatus,
    /// The lens, when available for this text.
    pub lens: Option<&'a Lens<'m>>,
}

impl LensRun<'_, '_> {
    /// Every layer at `position` with the top `k` tokens, or `None` where the lens does not
    /// reach (unavailable, or beyond the positions it covers).
    pub fn column(&self, position: usize, k: usize) -> Result<Option<Vec<RowSummary>>, ModelError> {
        let Some(lens) = self
            .lens
            .filter(|_| position < self.status.positions.unwrap_or(0))
        else {
            return Ok(None);
        };
        lens.column(position, k).map(Some).map_err(model_error)
    }

    /// The H·W panel of `position`, when the lens reaches it.
    pub fn hw(&self, position: usize, k: usize) -> Result<Option<HwReport>, ModelError> {
        let Some(lens) = self
            .lens
            .filter(|_| position < self.status.positions.unwrap_or(0))
        else {
            return Ok(None);
        };
        lens.hw(position, k).map(Some).map_err(model_error)
    }
}

fn model_error(e: LensError) -> ModelError {
    match e {
        LensError::Model(m) => m,
        LensError::Unavailable(u) => ModelError::Decode(u.0),
    }
}

impl<'m> Lenses<'m> {
    /// The lens of `model`, with a decode of its own.
    pub fn new(model: &'m Model) -> Self {
        Self::on(&Shared::new(model))
    }

    /// The lens read from the shared decode `probe`.
    pub fn on(probe: &Shared<'m>) -> Self {
        Self {
            probe: probe.clone(),
            lens: None,
        }
    }

    /// Make the lens now, so that the shared decode reads for it from the first text on.
    pub fn join(&mut self) {
        let probe = &self.probe;
        self.lens.get_or_insert_with(|| Lens::on(probe));
    }

    /// Run the lens on `tokens` at temperature `temp`: its status (available, with the
    /// self-check's result, or why not) and the lens to read columns from. A failed decode
    /// is an error of the text, as it would be for `score`.
    pub fn run(&mut self, tokens: &[u32], temp: f32) -> Result<LensRun<'_, 'm>, ModelError> {
        let probe = &self.probe;
        let made = self.lens.get_or_insert_with(|| Lens::on(probe));
        let lens = match made {
            Ok(lens) => lens,
            Err(why) => {
                return Ok(LensRun {
                    status: LensStatus::unavailable(why.0.clone(), None),
                    lens: None,
                })
            }
        };
        let outcome = lens.run(tokens, temp);
        let facts = Some(lens.facts().clone());
        match outcome {
            Ok(positions) => Ok(LensRun {
                status: LensStatus {
                    available: true,
                    reason: None,
                    max_abs_dp: lens.check(),
                    max_abs_dp_shown: None,
                    positions: Some(positions),
                    facts,
                },
                lens: Some(lens),
            }),
            Err(LensError::Unavailable(why)) => Ok(LensRun {
                status: LensStatus {
                    max_abs_dp: lens.check(),
                    max_abs_dp_shown: None,
                    ..LensStatus::unavailable(why.0, facts)
                },
                lens: None,
            }),
            Err(LensError::Model(e)) => Err(e),
        }
    }
}

/// Every position's lens column (`[i]` = the layers of p_i; `None` where the lens does not
/// reach).
pub type Columns = Vec<Option<Vec<RowSummary>>>;

/// The lens of a whole text for a report: its status and every covered position's column
/// with the top `k` tokens per layer.
/// `shown` are the rows the report shows for the same tokens: the lens's last layer must be
/// them (within the self-check's tolerance), or the lens is reported unavailable.
pub fn lens_columns(
    lenses: &mut Lenses<'_>,
    tokens: &[u32],
    shown: &[RowSummary],
    temp: f32,
    k: usize,
) -> Result<(LensStatus, Columns), ModelError> {
    if tokens.is_empty() {
        return Ok((
            LensStatus::unavailable("the text has no tokens", None),
            Vec::new(),
        ));
    }
    let run = lenses.run(tokens, temp)?;
    let columns: Columns = (0..tokens.len())
        .map(|i| run.column(i, k))
        .collect::<Result<_, _>>()?;
    let mut status = run.status;
    let gap = columns
        .iter()
        .zip(shown)
        .filter_map(|(c, s)| Some(shown_gap(c.as_ref()?.last()?, s)))
        .fold(None, |w: Option<f64>, g| Some(w.map_or(g, |w| w.max(g))));
    status.max_abs_dp_shown = gap;
    if gap.is_some_and(|g| g > CHECK_TOLERANCE) {
        let reason = format!(
            "the lens's last layer differs from the distributions shown (max |Δp| {:.2e} > {CHECK_TOLERANCE:.0e})",
            gap.unwrap_or(0.0)
        );
        status.available = false;
        status.reason = Some(reason);
        return Ok((status, vec![None; tokens.len()]));
    }
    Ok((status, columns))
}
