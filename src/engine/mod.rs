//! What both front ends ask of a model, built from model sessions and the pure analysis: score
//! a text into a report, fill blanks. The explorer's worker thread and the scripting commands
//! call the same functions, so the screen and the JSON show the same numbers.

pub mod attention;
pub mod attribution;
mod candidates;
pub mod compare;
pub mod complete;
pub mod corpus;
mod error;

pub use error::EngineError;

pub use candidates::sequence_logprobs;
pub mod fill;
pub mod lens;
pub mod score;
pub mod scorer;
pub mod search;
pub mod trace;
pub mod watch;
pub mod workbench;
