//! The trace view's state: the pair it traces, the grid so far, progress, the selected cell
//! (kept apart from its `update`, which needs the whole [`App`](crate::explorer::state::App)).

use crate::analysis::trace::{Cell, TraceReport};
use crate::engine::EngineError;
use crate::explorer::worker::protocol::{Epoch, LensRequest};

#[derive(Debug, Clone, Default)]
pub struct TracePanel {
    /// Names the pair below; answers for another epoch are dropped.
    pub epoch: Epoch,
    /// The clean (A) and corrupt (B) texts traced.
    pub texts: Option<(String, String)>,
    /// The grid so far (cells in the order computed), or complete when `done`.
    pub report: Option<Box<TraceReport>>,
    /// Patched runs done of all.
    pub progress: (usize, usize),
    pub done: bool,
    pub error: Option<EngineError>,
    /// A trace is asked for and has not finished (nor been stopped).
    pub running: bool,
    pub requests: LensRequest,
    /// The selected layer (the position is the selected chip's).
    pub layer: usize,
}

impl TracePanel {
    /// The cell at (layer, position), when computed.
    pub fn cell(&self, layer: usize, position: usize) -> Option<&Cell> {
        self.report.as_ref()?.grids.first()?.cell(layer, position)
    }
}
