//! The command line: flags named as llama.cpp names them, settings resolved from flags, the
//! config file and defaults, and one small file per subcommand. Nothing imports this layer
//! but `main`.

mod args;
mod bench;
mod fatal;
mod fetch;
mod fill;
mod lines;
mod score;
mod settings;

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
    let result = match cli.command {
        None => explore(&settings, warning, log.file.clone()),
        Some(Cmd::Fetch) => fetch::run().map(|()| ExitCode::SUCCESS),
        Some(cmd) => {
            if let Some(w) = &warning {
                eprintln!("logitscope: warning: {w}");
            }
            match cmd {
                Cmd::Score { texts, format } => score::run(&settings, texts, format),
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
                    stats_only,
                    fill_only,
                } => bench::run(&settings, stats_only, fill_only),
                Cmd::Fetch => unreachable!("handled above"),
            }
        }
    };
    let code = match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("logitscope: error: {}", f.message);
            ExitCode::from(f.status)
        }
    };
    // The log's last lines are flushed when its guard is dropped, here, before exit.
    drop(log);
    code
}

/// Open the explorer on the model the settings name.
fn explore(
    settings: &Settings,
    warning: Option<String>,
    log_file: Option<PathBuf>,
) -> Result<ExitCode, Fatal> {
    let path = settings.model_path()?;
    let config = crate::explorer::Config {
        model: settings.model_options(path),
        view: settings.view,
        search: settings.search,
        warning,
        log_file,
    };
    match crate::explorer::run(config).map_err(Fatal::other)? {
        crate::explorer::Outcome::Quit => Ok(ExitCode::SUCCESS),
        crate::explorer::Outcome::Failed(msg) => Err(Fatal::other(msg)),
    }
}
