//! The error every engine call a front end makes answers with: what failed, as a value a
//! front end can match on, keep and send across threads (cheap to clone), never a bare string.

use std::sync::Arc;

use crate::model::{LoadError, ModelError};

use super::fill::FillError;
use super::trace::TraceError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// llama.cpp or the model failed: a load, a context, a decode, a file.
    #[error("{0}")]
    Model(Arc<ModelError>),
    /// The model could not be loaded (its file, or llama.cpp).
    #[error("{0}")]
    Load(Arc<LoadError>),
    /// A fill that could not run (too many blanks, no candidates, a failed decode).
    #[error("{0}")]
    Fill(Arc<FillError>),
    /// The engine refuses what was asked: an ablation spec it cannot parse, a comparison
    /// that cannot be made, two models of different vocabularies.
    #[error("{0}")]
    Refused(String),
    /// What was asked does not exist for this model or text (attention in a graph that
    /// names no attention weights, attribution past what one decode covers): why.
    #[error("{0}")]
    Unavailable(String),
}

impl From<ModelError> for EngineError {
    fn from(e: ModelError) -> Self {
        Self::Model(Arc::new(e))
    }
}

impl From<LoadError> for EngineError {
    fn from(e: LoadError) -> Self {
        Self::Load(Arc::new(e))
    }
}

impl From<FillError> for EngineError {
    fn from(e: FillError) -> Self {
        match e {
            FillError::Model(e) => e.into(),
            e => Self::Fill(Arc::new(e)),
        }
    }
}

impl From<TraceError> for EngineError {
    fn from(e: TraceError) -> Self {
        match e {
            TraceError::Model(e) => e.into(),
            TraceError::Refused(why) => Self::Refused(why),
        }
    }
}

impl EngineError {
    /// Whether it is a fill that was cancelled (not a failure to show).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Fill(e) if matches!(**e, FillError::Cancelled))
    }
}
