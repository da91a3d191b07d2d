//! `logitscope score`: every token's probability, rank and entropy, as JSON Lines, a table or
//! CSV; with `--vs` the comparison with a second model, with `--watch` the watched words, with
//! `--words` the words, with `--layers` the logit lens, with `--attention` what each head reads,
//! with `--attribution` each component's share of a logit.

use std::process::ExitCode;

use super::args::Format;
use super::fatal::Fatal;
use super::lines::{for_each_group, json_line, ErrorStyle};
use super::settings::Settings;
use crate::analysis::report::{csv_columns, csv_header, csv_rows, table};
pub use crate::engine::scorer::{AttentionAsked, AttributionAsked};
use crate::engine::scorer::{ScoreAsk, Scorer};

/// What `score` adds to each text's report.
pub struct Additions {
    pub words: bool,
    pub layers: bool,
    pub attention: Option<AttentionAsked>,
    pub attribution: Option<AttributionAsked>,
}

pub fn run(
    settings: &Settings,
    texts: Vec<String>,
    format: Format,
    additions: Additions,
    parallel: usize,
) -> Result<ExitCode, Fatal> {
    let Additions {
        words,
        layers,
        attention,
        attribution,
    } = additions;
    for (asked, flag) in [
        (layers, "--layers"),
        (attention.is_some(), "--attention"),
        (attribution.is_some(), "--attribution"),
    ] {
        if asked && format != Format::Json {
            return Err(Fatal::other(format!(
                "{flag} is written in JSON only (leave out --format, or use --format json)"
            )));
        }
    }
    let model = settings.load_model()?;
    let second = settings.load_second(&model)?;
    let ask = ScoreAsk {
        watch: settings.watch.clone(),
        words,
        layers,
        attention,
        attribution,
        parallel,
        view: settings.view,
    };
    let mut scorer =
        Scorer::new(&model, second.as_ref(), &ask).map_err(|e| Fatal::other(e.to_string()))?;
    let watch = &scorer.extras().watch;
    let errors = match format {
        Format::Json => ErrorStyle::Json,
        Format::Table => ErrorStyle::Plain,
        Format::Csv => ErrorStyle::Csv(csv_columns(watch).len()),
    };
    if format == Format::Csv {
        print!("{}", csv_header(watch));
    }
    let mut line = 0;
    for_each_group(texts, errors, scorer.parallel(), |group| {
        scorer
            .score_group(group)
            .into_iter()
            .map(|report| {
                line += 1;
                let report = report.map_err(|e| e.to_string())?;
                Ok(match format {
                    Format::Json => json_line(&report),
                    Format::Table => table(&report),
                    Format::Csv => csv_rows(line, &report),
                })
            })
            .collect()
    })
}
