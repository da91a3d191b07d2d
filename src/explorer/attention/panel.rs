//! The attention panel's state: what it shows and what it has asked for (kept apart from its
//! `update`, which needs the whole [`App`](crate::explorer::state::App)).

use crate::analysis::attention::AttentionView;

/// What the panel shows and what it has asked for.
#[derive(Debug, Clone, Default)]
pub struct AttentionPanel {
    /// Names the text below; answers for another epoch are dropped.
    pub epoch: u64,
    pub text: String,
    /// The answer for a position: the panel's data, or why there is none.
    pub answer: Option<(usize, Result<Box<AttentionView>, String>)>,
    /// The position asked for and not yet answered.
    pub asked: Option<usize>,
    pub requests: u64,
    /// The layer and head selected in the grid.
    pub layer: usize,
    pub head: usize,
}

impl AttentionPanel {
    /// The view of `position`, when it has arrived.
    pub fn view_at(&self, position: usize) -> Option<&AttentionView> {
        match &self.answer {
            Some((p, Ok(v))) if *p == position => Some(v),
            _ => None,
        }
    }

    /// Why there is nothing to show, when attention is unavailable.
    pub fn unavailable(&self) -> Option<&str> {
        match &self.answer {
            Some((_, Err(why))) => Some(why),
            _ => None,
        }
    }
}
