//! `logitscope score`: every token's probability, rank and entropy, as JSON Lines or a table.

use std::process::ExitCode;

use super::args::Format;
use super::fatal::Fatal;
use super::lines::{for_each_text, json_line, ErrorStyle};
use super::settings::Settings;
use crate::analysis::report::table;
use crate::engine::compare::{score_pair, Pair};
use crate::engine::score::score_text;

pub fn run(settings: &Settings, texts: Vec<String>, format: Format) -> Result<ExitCode, Fatal> {
    let model = settings.load_model()?;
    let second = settings.load_second(&model)?;
    let fatal = |e: crate::model::ModelError| Fatal::other(e.to_string());
    // One session, or a pair when comparing.
    let mut scorer = match &second {
        Some(b) => Scorer::Two(Pair::new(
            model.session().map_err(fatal)?,
            b.session().map_err(fatal)?,
        )),
        None => Scorer::One(model.session().map_err(fatal)?),
    };
    let errors = match format {
        Format::Json => ErrorStyle::Json,
        Format::Table => ErrorStyle::Plain,
    };
    for_each_text(texts, errors, |text| {
        let report = match &mut scorer {
            Scorer::One(session) => score_text(session, text, settings.view),
            Scorer::Two(pair) => score_pair(pair, text, settings.view),
        }
        .map_err(|e| e.to_string())?;
        Ok(match format {
            Format::Json => json_line(&report),
            Format::Table => table(&report),
        })
    })
}

/// What scores the texts: one model, or two compared. (One value per process: its size
/// does not matter.)
#[allow(clippy::large_enum_variant)]
enum Scorer<'a, 'b> {
    One(crate::model::Session<'a>),
    Two(Pair<'a, 'b>),
}
