//! The only layer that touches llama.cpp (through `llama-cpp-2` and, where it wraps nothing,
//! `llama-cpp-sys-2`) or reads GGUF files.
//!
//! Everything above it sees plain Rust: token ids, byte pieces, [`RowSummary`]s and f32 rows. A
//! [`Model`] is loaded once, after [`gguf::inspect`] has checked the file; a [`Session`] owns one
//! llama.cpp context plus the tokens and row summaries of the last text it evaluated, so the
//! next text only decodes what changed.
//!
//! Two facts about llama.cpp shape this layer (see `tests/fixtures/README.md`):
//! - flash attention changes results, so it is off unless asked for;
//! - how a text is split into decodes changes results when a decode is tiny (1–2 tokens on
//!   this model, < 16 on K-quants). Every decode is therefore at least [`MIN_DECODE`] tokens
//!   long whenever the text is, and chunks are balanced, so the numbers of a text never depend
//!   on how it was typed.
//!
//! [`RowSummary`]: crate::analysis::stats::RowSummary

pub mod abort;
pub mod attention;
pub mod attribution;
pub mod cvector;
mod edits;
pub mod fanout;
pub mod gguf;
pub mod hook;
pub mod intervene;
pub mod kernels;
pub mod layout;
pub mod lens;
mod loader;
pub mod logs;
mod next;
pub mod pair;
mod plan;
pub mod probe;
pub mod probe_cache;
pub mod quantize;
pub mod readers;
pub mod rpc;
mod session;
pub mod side_by_side;
pub mod slots;
pub mod trace;

pub use edits::{Edits, RowWrite};
pub use intervene::{ControlVector, Intervention};
pub use loader::{
    gpu_available, load, preflight, DeviceUse, LoadError, Model, ModelError, ModelInfo,
    ModelOptions,
};
pub use session::{
    common_prefix, plan_chunks, plan_start, Evaluation, Session, MAX_DECODE, MAX_WAVE, MIN_DECODE,
};
pub use side_by_side::{Scan, ScanRow};
