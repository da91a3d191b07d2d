//! Pure computations over logit rows and token ids: row statistics, the vocabulary as data,
//! the report shapes that `score` prints and the explorer draws, and blanks with their
//! candidate ranking. No terminal, no clap, no llama.cpp types: all of it is tested without a
//! model.

pub mod attention;
pub mod attribution;
pub mod blanks;
pub mod compare;
pub mod intervention;
pub mod kld;
pub mod lens;
pub mod logits_file;
pub mod pairs;
pub mod perplexity;
pub mod report;
pub mod sample;
pub mod search;
pub mod stats;
pub mod top;
pub mod trace;
pub mod vocab;
pub mod watch;
pub mod words;
pub mod worst;

pub use stats::ViewOptions;
