//! `logitscope quantize`: a second quantization of a model, to compare with `--vs`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::fatal::Fatal;
use super::settings::Settings;

pub fn run(
    settings: &Settings,
    input: Option<PathBuf>,
    output: &Path,
    type_name: &str,
) -> Result<ExitCode, Fatal> {
    let input = match input {
        Some(p) => p,
        None => settings.model_path()?,
    };
    crate::model::quantize::quantize(&input, output, type_name, settings.threads)
        .map_err(Fatal::other)?;
    eprintln!(
        "logitscope: wrote {} ({type_name} of {})",
        output.display(),
        input.display()
    );
    Ok(ExitCode::SUCCESS)
}
