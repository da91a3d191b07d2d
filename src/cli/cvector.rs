//! `logitscope cvector`: a control vector made from two sets of texts (llama.cpp's
//! cvector-generator, mean method), written for `--control-vector`.

use std::path::Path;
use std::process::ExitCode;

use super::fatal::Fatal;
use super::settings::Settings;

/// The texts of a file, one per line (`\n` written in a line is a newline, as
/// cvector-generator reads its prompt files); blank lines are skipped.
fn texts(path: &Path, which: &str) -> Result<Vec<String>, Fatal> {
    let raw = std::fs::read_to_string(path)
        .map_err(|e| Fatal::other(format!("--{which}-file '{}': {e}", path.display())))?;
    Ok(raw
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.replace("\\n", "\n"))
        .collect())
}

pub fn run(
    settings: &Settings,
    positive: &Path,
    negative: &Path,
    output: &Path,
) -> Result<ExitCode, Fatal> {
    let (pos, neg) = (texts(positive, "positive")?, texts(negative, "negative")?);
    if pos.is_empty() || pos.len() != neg.len() {
        return Err(Fatal::other(format!(
            "cvector needs as many positive texts as negative ones, at least one: {} has {}, {} has {}",
            positive.display(),
            pos.len(),
            negative.display(),
            neg.len()
        )));
    }
    if settings.ablate.is_some() || !settings.steer.is_empty() {
        return Err(Fatal::other(
            "cvector reads the intact model: leave out --ablate and --control-vector",
        ));
    }
    let model = settings.load_model()?;
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = pos
        .iter()
        .zip(&neg)
        .map(|(p, n)| (model.tokenize(p), model.tokenize(n)))
        .collect();
    let mut progress = |done: usize, total: usize| {
        eprint!("\rlogitscope: cvector: {done}/{total} pairs");
        if done == total {
            eprintln!();
        }
    };
    let directions = crate::model::cvector::mean_directions(&model, &pairs, &mut progress)
        .map_err(|e| Fatal::other(e.to_string()))?;
    let hint = crate::model::gguf::inspect(&model.options().path)
        .ok()
        .and_then(|i| i.architecture)
        .unwrap_or_default();
    crate::model::cvector::write(output, &hint, &directions).map_err(Fatal::other)?;
    eprintln!(
        "logitscope: wrote {} ({} directions of {} values, from {} pairs; use --control-vector-scaled {} S)",
        output.display(),
        directions.len(),
        directions.first().map_or(0, Vec::len),
        pairs.len(),
        output.display()
    );
    Ok(ExitCode::SUCCESS)
}
