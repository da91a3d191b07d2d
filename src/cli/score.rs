//! `logitscope score`: every token's probability, rank and entropy, as JSON Lines or a table.

use std::process::ExitCode;

use super::args::Format;
use super::fatal::Fatal;
use super::lines::{for_each_text, json_line, ErrorStyle};
use super::settings::Settings;
use crate::analysis::report::table;
use crate::engine::score::score_text;

pub fn run(settings: &Settings, texts: Vec<String>, format: Format) -> Result<ExitCode, Fatal> {
    let model = settings.load_model()?;
    let mut session = model.session().map_err(|e| Fatal::other(e.to_string()))?;
    let errors = match format {
        Format::Json => ErrorStyle::Json,
        Format::Table => ErrorStyle::Plain,
    };
    for_each_text(texts, errors, |text| {
        let report = score_text(&mut session, text, settings.view).map_err(|e| e.to_string())?;
        Ok(match format {
            Format::Json => json_line(&report),
            Format::Table => table(&report),
        })
    })
}
