//! The command line: flags named as llama.cpp names them, settings resolved from flags, the
//! config file and defaults, and one small file per subcommand. Nothing imports this layer
//! but `main`.

mod args;
mod bench;
mod cvector;
mod fatal;
mod fetch;
mod fill;
mod lines;
mod pairs;
mod perplexity;
mod quantize;
mod rpc_server;
mod score;
mod serve;
mod settings;
mod trace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use args::{normalize_args, Cli, Cmd};
use fatal::Fatal;
use settings::Settings;

/// The program. `main` only calls this.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse_from(normalize_args(std::env::args_os())) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    // Before any other thread starts: llama.cpp's aborts end in one line and exit status 2.
    crate::model::abort::install();
    let (config, warning) =
        crate::support::config::load(crate::support::paths::config_file().as_deref());
    let log =
        crate::support::logging::init(crate::support::paths::state_dir().as_deref(), cli.verbose);
    if let Some(w) = &warning {
        tracing::warn!("{w}");
    }
    let settings = settings::resolve(&cli.model, &config);
    if !settings.rpc.is_empty() {
        crate::model::rpc::set_timeout(std::time::Duration::from_secs(cli.model.rpc_timeout));
    }
    let result = match cli.command {
        None => explore(&settings, warning, log.file.clone(), cli.report.as_deref()),
        Some(Cmd::Fetch { name }) => fetch::run(&name).map(|()| ExitCode::SUCCESS),
        Some(Cmd::RpcServer { host, port, cache }) => {
            rpc_server::run(&crate::model::rpc::ServeOptions {
                host,
                port,
                threads: settings.threads as usize,
                cache,
            })
        }
        Some(cmd) => {
            if let Some(w) = &warning {
                eprintln!("logitscope: warning: {w}");
            }
            match cmd {
                Cmd::Score {
                    texts,
                    format,
                    words,
                    layers,
                    attention,
                    attention_k,
                    attention_full,
                    attribution,
                    attribution_at,
                    attribution_token,
                    parallel,
                } => score::run(
                    &settings,
                    texts,
                    format,
                    score::Additions {
                        words,
                        layers,
                        attention: (attention || attention_full).then_some(score::AttentionAsked {
                            k: attention_k,
                            full: attention_full,
                        }),
                        attribution: (attribution
                            || attribution_at.is_some()
                            || attribution_token.is_some())
                        .then_some(score::AttributionAsked {
                            at: attribution_at,
                            token: attribution_token,
                        }),
                    },
                    parallel as usize,
                ),
                Cmd::Fill {
                    texts,
                    candidates,
                    n_candidates,
                    no_ask,
                    word_list,
                } => fill::run(
                    &settings,
                    texts,
                    fill::Options {
                        candidates,
                        n_candidates: n_candidates as usize,
                        ask: !no_ask,
                        word_list,
                    },
                ),
                Cmd::Bench {
                    only,
                    full_vocabulary,
                } => bench::run(&settings, only, full_vocabulary),
                Cmd::Pairs {
                    file,
                    format,
                    summary,
                    reduce,
                    bos,
                    threshold,
                    parallel,
                    header,
                } => pairs::run(
                    &settings,
                    pairs::Options {
                        file,
                        format,
                        summary_only: summary,
                        reduction: match reduce {
                            args::Reduce::Sum => crate::analysis::pairs::Reduction::Sum,
                            args::Reduce::Mean => crate::analysis::pairs::Reduction::Mean,
                        },
                        bos,
                        threshold,
                        parallel: parallel as usize,
                        header,
                    },
                ),
                Cmd::Perplexity {
                    file,
                    chunks,
                    batch_size,
                    format,
                    kl_divergence_base,
                    kl_divergence,
                    worst,
                } => perplexity::run(
                    &settings,
                    perplexity::Options {
                        file,
                        chunks: chunks.map(|c| c as usize),
                        batch_size: batch_size as usize,
                        json: format == args::CorpusFormat::Json,
                        kl_base: kl_divergence_base,
                        kl_divergence,
                        worst,
                    },
                ),
                Cmd::Serve {
                    host,
                    port,
                    parallel,
                    n_predict,
                } => serve::run(
                    &settings,
                    &host,
                    port,
                    parallel as usize,
                    n_predict as usize,
                ),
                Cmd::Quantize {
                    input,
                    output,
                    type_name,
                } => quantize::run(&settings, input, &output, &type_name),
                Cmd::Cvector {
                    positive,
                    negative,
                    output,
                    method: _,
                } => cvector::run(&settings, &positive, &negative, &output),
                Cmd::Trace(args) => trace::run(&settings, args),
                Cmd::Fetch { .. } | Cmd::RpcServer { .. } => unreachable!("handled above"),
            }
        }
    };
    let (code, status) = match result {
        Ok(code) => (code, 0),
        Err(f) => {
            eprintln!("logitscope: error: {}", f.message);
            (ExitCode::from(f.status), i32::from(f.status))
        }
    };
    // The log's last lines are flushed when its guard is dropped, here, before exit.
    drop(log);
    if QUICK_EXIT.load(std::sync::atomic::Ordering::SeqCst) {
        // A llama.cpp call is still running on another thread: end without the static
        // destructors it may be using.
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: _exit ends the process at once; nothing after it runs.
        unsafe { libc::_exit(status) }
    }
    code
}

/// The status bar's warning when the explorer's models are not the report's: the model
/// measured should be --vs's (or -m's alone), and a report against a base is best opened with
/// the base as -m.
fn report_mismatch(
    r: &crate::analysis::worst::Report,
    model: &std::path::Path,
    vs: Option<&std::path::Path>,
) -> Option<String> {
    let name = |p: &std::path::Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let measured = name(vs.unwrap_or(model));
    if measured != r.model {
        Some(format!(
            "the report measured {}, the explorer shows {measured}: its live numbers are of another model",
            r.model
        ))
    } else if r.base.is_some() && vs.is_none() {
        Some("the report compares with a base: -m BASE --vs MODEL shows both".into())
    } else {
        None
    }
}

/// Set when the process must end with `_exit` (see `explorer::Ended::engine_stopped`).
static QUICK_EXIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Open the explorer on the model the settings name.
fn explore(
    settings: &Settings,
    warning: Option<String>,
    log_file: Option<PathBuf>,
    report: Option<&std::path::Path>,
) -> Result<ExitCode, Fatal> {
    if (settings.ablate.is_some() || !settings.steer.is_empty()) && settings.vs.is_some() {
        return Err(Fatal::other(
            "--ablate and control vectors compare with the intact model: leave out --vs",
        ));
    }
    let path = settings.model_path()?;
    let report = report
        .map(crate::analysis::worst::Report::load)
        .transpose()
        .map_err(|e| Fatal::other(e.to_string()))?;
    let warning = match (&report, warning) {
        (_, Some(w)) => Some(w),
        (Some(r), None) => report_mismatch(r, &path, settings.vs.as_deref()),
        (None, None) => None,
    };
    let config = crate::explorer::Config {
        model: settings.model_options(path),
        second: settings.vs.clone().map(|p| settings.model_options(p)),
        view: settings.view,
        search: settings
            .search
            .unwrap_or_else(crate::engine::search::explorer_budget),
        watch: settings.watch.clone(),
        start: crate::explorer::worker::Start {
            ablate: settings.ablate.clone().unwrap_or_default(),
            steering: crate::model::Intervention {
                ablate: Vec::new(),
                steer: settings.steer.clone(),
                layer_range: settings.layer_range,
            },
        },
        warning,
        log_file,
        report,
    };
    let ended = crate::explorer::run(config).map_err(Fatal::other)?;
    if !ended.engine_stopped {
        QUICK_EXIT.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    match ended.outcome {
        crate::explorer::Outcome::Quit => Ok(ExitCode::SUCCESS),
        crate::explorer::Outcome::Failed(msg) => Err(Fatal::other(msg)),
    }
}
