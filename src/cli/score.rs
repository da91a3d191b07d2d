//! `logitscope score`: every token's probability, rank and entropy, as JSON Lines, a table or
//! CSV; with `--vs` the comparison with a second model, with `--watch` the watched words, with
//! `--words` the words, with `--layers` the logit lens, with `--attention` what each head reads,
//! with `--attribution` each component's share of a logit.

use std::process::ExitCode;

use super::args::Format;
use super::fatal::Fatal;
use super::lines::{for_each_group, json_line, ErrorStyle};
use super::settings::Settings;
use crate::analysis::report::{csv_columns, csv_header, csv_rows, table, ScoreReport};
use crate::engine::attention::{attention_layers, Attentions};
use crate::engine::attribution::{Attributions, Target};
use crate::engine::compare::{score_pair, Pair};
use crate::engine::lens::{lens_columns, Lenses};
use crate::engine::score::{
    add_extras, score_on_readers, score_side_by_side, score_text, Extras, SIDE_BY_SIDE_TOKENS,
};
use crate::engine::watch::{resolve, single_ids};
use crate::model::readers::Shared;
use crate::model::{Evaluation, Session};

/// What `score` adds to each text's report.
pub struct Additions {
    pub words: bool,
    pub layers: bool,
    pub attention: Option<AttentionAsked>,
    pub attribution: Option<AttributionAsked>,
}

/// `--attribution`: at token index `at` only, of `token` instead of the actual one.
#[derive(Debug, Clone)]
pub struct AttributionAsked {
    pub at: Option<usize>,
    pub token: Option<String>,
}

/// `--attention`: the top `k` attended positions per head, with `full` whole rows too.
#[derive(Debug, Clone, Copy)]
pub struct AttentionAsked {
    pub k: usize,
    pub full: bool,
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
    let intervened = model.default_edits().is_some();
    if intervened && second.is_some() {
        return Err(Fatal::other(
            "--ablate and control vectors compare with the intact model: leave out --vs",
        ));
    }
    let fatal = |e: crate::model::ModelError| Fatal::other(e.to_string());
    let extras = Extras {
        watch: resolve(&model, &settings.watch),
        words,
    };
    let singles = single_ids(&extras.watch);
    // One session, or a pair when comparing: with another model, or the intervened model
    // (A) with the intact one (B).
    let mut scorer = match &second {
        Some(b) => Scorer::Two(Pair::new(
            model.session().map_err(fatal)?,
            b.session().map_err(fatal)?,
        )),
        None if intervened => {
            let mut intact = model.session().map_err(fatal)?;
            intact.set_edits(None);
            Scorer::Two(Pair::new(model.session().map_err(fatal)?, intact))
        }
        // Side by side, made when a text is first scored alone (side by side needs none);
        // one at a time, now, so a context that cannot be made stops before the first line.
        None if parallel > 1 => Scorer::One(None),
        None => Scorer::One(Some(model.session().map_err(fatal)?)),
    };
    let b_name = match &second {
        Some(b) => b.info().file_name,
        None => format!("{} (intact)", model.info().file_name),
    };
    match &mut scorer {
        Scorer::One(Some(s)) => s.set_watch(&singles),
        Scorer::One(None) => {}
        Scorer::Two(p) => p.a.set_watch(&singles),
    }
    let mut batch = None;
    // One hooked decode of each text serves the lens, attention and attribution: each joins
    // it now, so the first text's decode reads for all of them.
    let probe = Shared::new(&model);
    let mut lenses = layers.then(|| {
        let mut l = Lenses::on(&probe);
        l.join();
        l
    });
    let mut attentions = attention.map(|asked| {
        let mut a = Attentions::on(&probe);
        a.join(asked.k);
        a
    });
    let target = match attribution.as_ref().and_then(|a| a.token.as_deref()) {
        None => Target::Actual,
        Some(t) => match model.tokenize_continuation(t)[..] {
            [id] => Target::Token(id),
            ref ids => {
                return Err(Fatal::other(format!(
                    "--attribution-token {t:?} is {} tokens, not one: attribution splits one token's logit",
                    ids.len()
                )))
            }
        },
    };
    let mut attributions = attribution.as_ref().map(|_| {
        let mut a = Attributions::on(&probe);
        a.join();
        a
    });
    let attribution_at = attribution.as_ref().and_then(|a| a.at);
    let errors = match format {
        Format::Json => ErrorStyle::Json,
        Format::Table => ErrorStyle::Plain,
        Format::Csv => ErrorStyle::Csv(csv_columns(&extras.watch).len()),
    };
    if format == Format::Csv {
        print!("{}", csv_header(&extras.watch));
    }
    let view = settings.view;
    // The extras, the lens and the output format of one evaluated text.
    let mut finish = |mut report: ScoreReport, ev: &Evaluation, line: usize| {
        add_extras(
            &model,
            &mut report,
            &ev.tokens,
            &ev.rows,
            &extras,
            view,
            &mut batch,
        )
        .map_err(|e| e.to_string())?;
        if let Some(lenses) = &mut lenses {
            let (status, columns) =
                lens_columns(lenses, &ev.tokens, &ev.rows, view.temp, view.n_probs)
                    .map_err(|e| e.to_string())?;
            crate::analysis::report::attach_lens(&mut report, model.vocab(), status, &columns);
        }
        if let (Some(attentions), Some(asked)) = (&mut attentions, attention) {
            let (status, layers) = attention_layers(attentions, &ev.tokens, asked.k, asked.full)
                .map_err(|e| e.to_string())?;
            crate::analysis::report::attach_attention(&mut report, status, layers);
        }
        if let Some(attributions) = &mut attributions {
            let n = ev.tokens.len();
            let positions: Vec<usize> = match attribution_at {
                None => (0..n).collect(),
                Some(j) if (1..=n).contains(&j) => vec![j - 1],
                Some(j) => {
                    return Err(format!(
                        "--attribution-at {j}: the text's tokens with a position before \
                         them are 1 to {} ({n}: the next-token prediction)",
                        n - 1
                    ))
                }
            };
            let top1 = |p: usize| ev.rows.get(p).and_then(|r| r.top.first()).map(|t| t.id);
            let (status, parts) = attributions
                .split(&ev.tokens, &positions, target, &top1)
                .map_err(|e| e.to_string())?;
            crate::analysis::report::attach_attribution(&mut report, status, &positions, parts);
        }
        Ok(match format {
            Format::Json => json_line(&report),
            Format::Table => table(&report),
            Format::Csv => csv_rows(line, &report),
        })
    };
    // Texts side by side (one model only): a session of `parallel` streams, made when a group
    // of several texts first arrives.
    // With readers, each text is scored from their decode (one decode of it for everything).
    let readers = layers || attention.is_some() || attribution.is_some();
    let parallel = if second.is_some() || intervened || readers {
        1
    } else {
        parallel.max(1)
    };
    let mut side: Option<Session<'_>> = None;
    let mut line = 0;
    for_each_group(texts, errors, parallel, |group| {
        let mut ready: Vec<Option<(ScoreReport, Evaluation)>> =
            group.iter().map(|_| None).collect();
        if group.len() > 1 {
            if side.is_none() {
                side = model
                    .batch_session(parallel as u32, SIDE_BY_SIDE_TOKENS as u32)
                    .map_err(|e| tracing::warn!("scoring one text at a time: {e}"))
                    .ok();
                if let Some(s) = &mut side {
                    s.set_watch(&singles);
                }
            }
            if let Some(s) = &mut side {
                let refs: Vec<&str> = group.iter().map(String::as_str).collect();
                match score_side_by_side(s, &refs, view) {
                    Ok(r) => ready = r,
                    // Each text then gets its own result (or error) alone.
                    Err(e) => tracing::warn!("side by side failed, one at a time: {e}"),
                }
            }
        }
        group
            .iter()
            .zip(ready)
            .map(|(text, ready)| {
                line += 1;
                let (report, ev) = match ready {
                    Some(done) => done,
                    None => match &mut scorer {
                        Scorer::One(_) if readers => {
                            match score_on_readers(&probe, text, view, &singles)
                                .map_err(|e| e.to_string())?
                            {
                                Some(done) => Ok(done),
                                None => score_alone(&mut scorer, &model, &singles, text, view),
                            }
                        }
                        Scorer::One(_) => score_alone(&mut scorer, &model, &singles, text, view),
                        Scorer::Two(pair) => score_pair(pair, &b_name, text, view),
                    }
                    .map_err(|e| e.to_string())?,
                };
                finish(report, &ev, line)
            })
            .collect()
    })
}

/// `text` scored on the one-model scorer's session (made on first use).
fn score_alone<'m>(
    scorer: &mut Scorer<'m, '_>,
    model: &'m crate::model::Model,
    singles: &[u32],
    text: &str,
    view: crate::analysis::stats::ViewOptions,
) -> Result<(ScoreReport, Evaluation), crate::model::ModelError> {
    let Scorer::One(alone) = scorer else {
        unreachable!("called for one model only")
    };
    let session = match alone {
        Some(s) => s,
        None => {
            let mut s = model.session()?;
            s.set_watch(singles);
            alone.insert(s)
        }
    };
    score_text(session, text, view)
}

/// What scores the texts: one model, or two compared. (One value per process: its size
/// does not matter.)
#[allow(clippy::large_enum_variant)]
enum Scorer<'a, 'b> {
    One(Option<Session<'a>>),
    Two(Pair<'a, 'b>),
}
