//! `logitscope serve`: bind, load the model, serve until Ctrl-C.

use std::process::ExitCode;

use super::fatal::Fatal;
use super::settings::Settings;

pub fn run(
    settings: &Settings,
    host: &str,
    port: u16,
    parallel: usize,
    default_max_tokens: usize,
) -> Result<ExitCode, Fatal> {
    if settings.vs.is_some() || !settings.watch.is_empty() {
        return Err(Fatal::other(
            "serve takes one model and no --watch (they are for score and the explorer)",
        ));
    }
    let listener = crate::serve::bind(host, port).map_err(Fatal::other)?;
    let model = settings.load_model()?;
    let name = model.info().file_name;
    let options = crate::serve::Options {
        parallel,
        view: settings.view,
        default_max_tokens,
    };
    crate::serve::run(listener, model, options, |addr| {
        eprintln!(
            "logitscope: serving {name} on http://{addr} (POST /v1/completions, /tokenize, /detokenize; GET /v1/models, /tokenizer_info, /health; Ctrl-C stops)"
        );
    })
    .map_err(Fatal::other)?;
    Ok(ExitCode::SUCCESS)
}
