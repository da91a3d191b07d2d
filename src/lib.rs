//! logitscope: what a language model believes at every position of a sentence.
//!
//! The tree is the architecture. Each folder is a layer; a layer uses only the layers below it
//! (`tests/layers.rs` enforces this, file by file):
//!
//! ```text
//! main ─> cli        argument parsing, settings, one file per subcommand (score, fill, …)
//!          │ ├──────> explorer   the TUI: state + pure update, key map, one view per panel,
//!          │ │           │       the engine worker thread, terminal set-up
//!          │ └──────> serve      the HTTP front end: OpenAI-style completions with prompt
//!          │             │       logprobs, one engine thread scoring requests side by side
//!          ▼             ▼
//!         engine     what both front ends ask of a model: score a text, fill blanks
//!          │
//!          ▼
//!         model      the only code that touches llama.cpp or reads GGUF: loading, sessions,
//!          │         prefix reuse, batched sequences, pre-flight checks, abort handling
//!          ▼
//!         analysis   pure math and report shapes over logit rows and token ids
//!          │
//!          ▼
//!         support    paths, config file, logging, fetching the default model, atomic files
//! ```
//!
//! Nothing imports `cli` but `main`; `analysis` never sees a terminal, clap or llama.cpp; the
//! explorer's state never imports drawing code (hit testing lives in `explorer::layout`, which
//! both use).

extern crate self as logitscope;

pub mod analysis;
pub mod cli;
pub mod engine;
pub mod explorer;
pub mod model;
pub mod serve;
pub mod support;
