//! What every layer may reach: where files live, the optional config file, logging, fetching
//! the default model, and writing files atomically. Nothing here knows about llama.cpp, the
//! terminal or the command line.

pub mod config;
pub mod fetch;
pub mod files;
pub mod logging;
pub mod paths;
