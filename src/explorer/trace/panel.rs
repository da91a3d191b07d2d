//! The trace view's state: the pair it traces and the grid so far in a [`Slot`] (asked while
//! the trace runs; the grid streams in piece by piece), and the selected cell (kept apart
//! from its `update`, which needs the whole [`App`](crate::explorer::state::App)).

use crate::analysis::trace::{Cell, TraceReport};
use crate::engine::EngineError;
use crate::explorer::slot::Slot;
use crate::explorer::worker::protocol::Epoch;

#[derive(Debug, Clone, Default)]
pub struct TracePanel {
    /// The clean (A) and corrupt (B) texts traced, and the grid so far.
    pub slot: Slot<(), TraceAnswer, (String, String)>,
    /// The selected layer (the position is the selected chip's).
    pub layer: usize,
}

/// The trace so far.
#[derive(Debug, Clone, Default)]
pub struct TraceAnswer {
    /// The grid so far (cells in the order computed), or complete when `done`.
    pub report: Option<Box<TraceReport>>,
    /// Patched runs done of all.
    pub progress: (usize, usize),
    pub done: bool,
    pub error: Option<EngineError>,
}

impl TracePanel {
    /// The epoch answers must carry.
    pub fn epoch(&self) -> Epoch {
        self.slot.epoch()
    }

    fn answer(&self) -> Option<&TraceAnswer> {
        self.slot.answer().map(|(_, a)| a)
    }

    /// The grid so far.
    pub fn report(&self) -> Option<&TraceReport> {
        self.answer()?.report.as_deref()
    }

    /// Patched runs done of all.
    pub fn progress(&self) -> (usize, usize) {
        self.answer().map_or((0, 0), |a| a.progress)
    }

    /// The grid is complete.
    pub fn done(&self) -> bool {
        self.answer().is_some_and(|a| a.done)
    }

    /// Why there is no trace.
    pub fn error(&self) -> Option<&EngineError> {
        self.answer()?.error.as_ref()
    }

    /// A trace is asked for and has not finished (nor been stopped).
    pub fn running(&self) -> bool {
        self.slot.is_asked()
    }

    /// The cell at (layer, position), when computed.
    pub fn cell(&self, layer: usize, position: usize) -> Option<&Cell> {
        self.report()?.grids.first()?.cell(layer, position)
    }
}
