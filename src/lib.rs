//! logitscope: what a language model believes at every position of a sentence.
//!
//! ```text
//! keystroke ─> tui (input thread) ─Msg─> app::update (pure) ─Command─> worker (engine thread)
//!                                          ▲                                   │
//!                                          └──────── Msg::Evaluated ───────────┘
//! score / fill ─────────────────────────────> engine ─> stats ─> report (JSON)
//! ```
//! - [`engine`] is the only module that talks to llama.cpp.
//! - [`stats`] is the math of one logit row, pure and tested without a model.
//! - [`report`] and [`fill`] turn evaluations into what is printed or drawn.

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod editor;
pub mod engine;
pub mod fetch;
pub mod fill;
pub mod gguf;
pub mod logging;
pub mod paths;
pub mod report;
pub mod stats;
pub mod tui;
pub mod view;
pub mod vocab;
pub mod worker;
