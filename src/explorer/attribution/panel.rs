//! The attribution panel's state: what it shows and what it has asked for (kept apart from
//! its `update`, which needs the whole [`App`](crate::explorer::state::App)).

use crate::analysis::attribution::Attribution;

/// A (position, target) and its split, or why there is none.
pub type Answer = (usize, Option<u32>, Result<Box<Attribution>, String>);

/// What the panel shows and what it has asked for.
#[derive(Debug, Clone, Default)]
pub struct AttributionPanel {
    /// Names the text below; answers for another epoch are dropped.
    pub epoch: u64,
    pub text: String,
    /// The answer for a (position, target): the split, or why there is none.
    pub answer: Option<Answer>,
    /// The (position, target) asked for and not yet answered.
    pub asked: Option<(usize, Option<u32>)>,
    pub requests: u64,
    /// Which logit: 0 is the token that follows (at the last position, the most likely
    /// one), i the position's i-th most likely token.
    pub choice: usize,
}

impl AttributionPanel {
    /// The split of `target` at `position`, when it has arrived.
    pub fn at(&self, position: usize, target: Option<u32>) -> Option<&Attribution> {
        match &self.answer {
            Some((p, t, Ok(a))) if *p == position && *t == target => Some(a),
            _ => None,
        }
    }

    /// Why there is nothing to show, when attribution is unavailable.
    pub fn unavailable(&self) -> Option<&str> {
        match &self.answer {
            Some((_, _, Err(why))) => Some(why),
            _ => None,
        }
    }
}
