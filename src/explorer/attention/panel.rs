//! The attention panel's state: what it shows and what it has asked for (kept apart from its
//! `update`, which needs the whole [`App`](crate::explorer::state::App)).

use crate::analysis::attention::AttentionView;
use crate::engine::EngineError;
use crate::explorer::slot::Slot;

/// A position's answer: the panel's data, or why there is none.
pub type Answer = Result<Box<AttentionView>, EngineError>;

/// What the panel shows and what it has asked for.
#[derive(Debug, Clone, Default)]
pub struct AttentionPanel {
    /// The question (a position of the text shown) and its answer.
    pub slot: Slot<usize, Answer>,
    /// The layer and head selected in the grid.
    pub layer: usize,
    pub head: usize,
}

impl AttentionPanel {
    /// The view of `position`, when it has arrived.
    pub fn view_at(&self, position: usize) -> Option<&AttentionView> {
        match self.slot.answer() {
            Some((p, Ok(v))) if *p == position => Some(v),
            _ => None,
        }
    }

    /// Why there is nothing to show, when attention is unavailable.
    pub fn unavailable(&self) -> Option<&EngineError> {
        match self.slot.answer() {
            Some((_, Err(why))) => Some(why),
            _ => None,
        }
    }
}
