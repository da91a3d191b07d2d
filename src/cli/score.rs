//! `logitscope score`: every token's probability, rank and entropy, as JSON Lines, a table or
//! CSV; with `--vs` the comparison with a second model, with `--watch` the watched words, with
//! `--words` the words, with `--layers` the logit lens.

use std::process::ExitCode;

use super::args::Format;
use super::fatal::Fatal;
use super::lines::{for_each_text, json_line, ErrorStyle};
use super::settings::Settings;
use crate::analysis::report::{csv_header, csv_rows, table};
use crate::engine::compare::{score_pair, Pair};
use crate::engine::lens::{lens_columns, Lenses};
use crate::engine::score::{add_extras, score_text, Extras};
use crate::engine::watch::{resolve, single_ids};

pub fn run(
    settings: &Settings,
    texts: Vec<String>,
    format: Format,
    words: bool,
    layers: bool,
) -> Result<ExitCode, Fatal> {
    if layers && format != Format::Json {
        return Err(Fatal::other(
            "--layers is written in JSON only (leave out --format, or use --format json)",
        ));
    }
    let model = settings.load_model()?;
    let second = settings.load_second(&model)?;
    let fatal = |e: crate::model::ModelError| Fatal::other(e.to_string());
    let extras = Extras {
        watch: resolve(&model, &settings.watch),
        words,
    };
    let singles = single_ids(&extras.watch);
    // One session, or a pair when comparing.
    let mut scorer = match &second {
        Some(b) => Scorer::Two(Pair::new(
            model.session().map_err(fatal)?,
            b.session().map_err(fatal)?,
        )),
        None => Scorer::One(model.session().map_err(fatal)?),
    };
    match &mut scorer {
        Scorer::One(s) => s.set_watch(&singles),
        Scorer::Two(p) => p.a.set_watch(&singles),
    }
    let mut batch = None;
    let mut lenses = layers.then(|| Lenses::new(&model));
    let errors = match format {
        Format::Json => ErrorStyle::Json,
        Format::Table => ErrorStyle::Plain,
        Format::Csv => ErrorStyle::Csv(12 + extras.watch.len()),
    };
    if format == Format::Csv {
        print!("{}", csv_header(&extras.watch));
    }
    let mut line = 0;
    for_each_text(texts, errors, |text| {
        line += 1;
        let (mut report, ev) = match &mut scorer {
            Scorer::One(session) => score_text(session, text, settings.view),
            Scorer::Two(pair) => score_pair(pair, text, settings.view),
        }
        .map_err(|e| e.to_string())?;
        add_extras(
            &model,
            &mut report,
            &ev.tokens,
            &ev.rows,
            &extras,
            settings.view,
            &mut batch,
        )
        .map_err(|e| e.to_string())?;
        if let Some(lenses) = &mut lenses {
            let view = settings.view;
            let (status, columns) = lens_columns(lenses, &ev.tokens, view.temp, view.n_probs)
                .map_err(|e| e.to_string())?;
            crate::analysis::report::attach_lens(&mut report, model.vocab(), status, &columns);
        }
        Ok(match format {
            Format::Json => json_line(&report),
            Format::Table => table(&report),
            Format::Csv => csv_rows(line, &report),
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
