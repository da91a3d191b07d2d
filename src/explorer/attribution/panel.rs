//! The attribution panel's state: what it shows and what it has asked for (kept apart from
//! its `update`, which needs the whole [`App`](crate::explorer::state::App)).

use crate::analysis::attribution::Attribution;
use crate::engine::EngineError;
use crate::explorer::slot::Slot;

/// What the panel shows and what it has asked for.
#[derive(Debug, Clone, Default)]
pub struct AttributionPanel {
    /// The question (a position and target of the text shown) and its split, or why there
    /// is none.
    pub slot: Slot<(usize, Option<u32>), Result<Box<Attribution>, EngineError>>,
    /// Which logit: 0 is the token that follows (at the last position, the most likely
    /// one), i the position's i-th most likely token.
    pub choice: usize,
}

impl AttributionPanel {
    /// The split of `target` at `position`, when it has arrived.
    pub fn at(&self, position: usize, target: Option<u32>) -> Option<&Attribution> {
        match self.slot.answer() {
            Some(((p, t), Ok(a))) if *p == position && *t == target => Some(a),
            _ => None,
        }
    }

    /// Why there is nothing to show, when attribution is unavailable.
    pub fn unavailable(&self) -> Option<&EngineError> {
        match self.slot.answer() {
            Some((_, Err(why))) => Some(why),
            _ => None,
        }
    }
}
