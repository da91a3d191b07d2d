//! `logitscope pairs`: minimal pairs read as tab-separated lines `good<TAB>bad[<TAB>label…]`,
//! one JSON object (or CSV row) per pair, then a summary with the accuracy overall and per
//! label. Both sentences are scored as `score` scores them (side by side, the same bits).

use std::cell::RefCell;
use std::process::ExitCode;

use super::args::Format;
use super::fatal::Fatal;
use super::lines::{for_each_group, json_line, ErrorStyle};
use super::settings::Settings;
use crate::analysis::pairs::{compare, PairReport, Reduction, Side, Summary};
use crate::analysis::report::csv_line;
use crate::engine::score::Batcher;
use crate::model::{Evaluation, ModelError};

/// The subcommand's own flags.
pub struct Options {
    pub file: Option<std::path::PathBuf>,
    pub format: Format,
    pub summary_only: bool,
    pub reduction: Reduction,
    pub bos: bool,
    pub threshold: f64,
    pub parallel: usize,
    pub header: bool,
}

/// Column names of a header line: a first line whose first two columns are one of these is
/// taken for a header (or any first line with `--header`).
const HEADERS: [(&str, &str); 6] = [
    ("good", "bad"),
    ("sentence_good", "sentence_bad"),
    ("a", "b"),
    ("grammatical", "ungrammatical"),
    ("text_a", "text_b"),
    ("clean", "corrupt"),
];

const CSV_COLUMNS: [&str; 13] = [
    "line",
    "a",
    "b",
    "total_a",
    "total_b",
    "n_tokens_a",
    "n_tokens_b",
    "delta",
    "prefers",
    "ratio",
    "deciding_a",
    "deciding_b",
    "labels",
];

pub fn run(settings: &Settings, opts: Options) -> Result<ExitCode, Fatal> {
    if opts.format == Format::Table {
        return Err(Fatal::other("pairs writes JSON or CSV (--format json|csv)"));
    }
    let lines: Vec<String> = match &opts.file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Fatal::other(format!("cannot read '{}': {e}", path.display())))?
            .lines()
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    let model = settings.load_model()?;
    let bos = if opts.bos {
        match model.bos() {
            Some((id, false)) => Some(id),
            Some((_, true)) => None, // the tokenizer adds it already
            None => {
                return Err(Fatal::other(
                    "--bos: the model's vocabulary has no BOS token",
                ))
            }
        }
    } else {
        None
    };
    let mut batcher =
        Batcher::new(&model, opts.parallel).map_err(|e| Fatal::other(e.to_string()))?;
    let csv = opts.format == Format::Csv;
    let errors = if csv {
        ErrorStyle::Csv(CSV_COLUMNS.len())
    } else {
        ErrorStyle::Json
    };
    if csv && !opts.summary_only {
        print!("{}", csv_line(&CSV_COLUMNS.map(str::to_owned)));
    }
    let summary = RefCell::new(Summary::new(opts.reduction));
    let mut line_no = 0usize;
    let mut first = true;
    let view = settings.view;
    let empty_file = opts.file.is_some() && lines.is_empty();
    let code = if empty_file {
        ExitCode::SUCCESS
    } else {
        for_each_group(lines, errors, opts.parallel, |group| {
            // Each line: its pair, or why not; a header or blank line: nothing.
            let mut parsed: Vec<Result<Option<Line>, String>> = Vec::new();
            for line in group {
                line_no += 1;
                let is_first = std::mem::take(&mut first);
                let cols: Vec<&str> = line.split('\t').collect();
                if line.trim().is_empty() {
                    parsed.push(Ok(None));
                } else if cols.len() < 2 {
                    parsed.push(Err(
                        "a pair is two sentences separated by a tab (good<TAB>bad)".into(),
                    ));
                } else if is_first && (opts.header || is_header(cols[0], cols[1])) {
                    parsed.push(Ok(None));
                } else if cols[0].is_empty() || cols[1].is_empty() {
                    parsed.push(Err("a pair needs two non-empty sentences".into()));
                } else {
                    let labels = cols[2..].iter().map(|s| (*s).to_owned()).collect();
                    parsed.push(Ok(Some((cols[0].to_owned(), cols[1].to_owned(), labels))));
                }
            }
            let mut texts = Vec::new();
            for (a, b, _) in parsed.iter().flatten().flatten() {
                texts.push(tokens(&model, a, bos));
                texts.push(tokens(&model, b, bos));
            }
            let mut evaluations = batcher.evaluate_all(&texts, view).into_iter();
            let start = line_no - group.len();
            parsed
                .into_iter()
                .enumerate()
                .map(|(k, p)| {
                    let result = match p {
                        Ok(None) => return Ok(String::new()),
                        Ok(Some((a, b, labels))) => {
                            let ev_a = evaluations.next();
                            let ev_b = evaluations.next();
                            pair_report(&model, (&a, ev_a), (&b, ev_b), &opts, labels)
                        }
                        Err(e) => Err(e),
                    };
                    let report = match result {
                        Ok(r) => r,
                        Err(e) => {
                            summary.borrow_mut().failed += 1;
                            return Err(e);
                        }
                    };
                    summary.borrow_mut().add(&report);
                    Ok(match (opts.summary_only, csv) {
                        (true, _) => String::new(),
                        (false, false) => json_line(&report),
                        (false, true) => csv_row(start + k + 1, &report),
                    })
                })
                .collect()
        })?
    };
    let summary = summary.into_inner();
    if csv {
        if opts.summary_only {
            print!("{}", summary_csv(&summary));
        }
    } else {
        print!("{}", json_line(&summary));
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
    Ok(code)
}

/// One pair's report from its two evaluations.
fn pair_report(
    model: &crate::model::Model,
    (a, ev_a): (&str, Option<Result<Evaluation, ModelError>>),
    (b, ev_b): (&str, Option<Result<Evaluation, ModelError>>),
    opts: &Options,
    labels: Vec<String>,
) -> Result<PairReport, String> {
    let get = |ev: Option<Result<Evaluation, ModelError>>, text: &str| {
        let ev = ev.ok_or("no result")?.map_err(|e| e.to_string())?;
        if ev.truncated() {
            return Err(format!(
                "{text:?} has {} tokens, more than the context holds ({}); use -c to enlarge it",
                ev.n_tokens_total,
                ev.tokens.len()
            ));
        }
        Ok(ev)
    };
    let (ev_a, ev_b) = (get(ev_a, a)?, get(ev_b, b)?);
    Ok(compare(
        model.vocab(),
        &Side {
            text: a,
            tokens: &ev_a.tokens,
            rows: &ev_a.rows,
        },
        &Side {
            text: b,
            tokens: &ev_b.tokens,
            rows: &ev_b.rows,
        },
        opts.reduction,
        opts.threshold,
        labels,
    ))
}

/// A pair line: sentence A, sentence B, the labels.
type Line = (String, String, Vec<String>);

fn is_header(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim().to_lowercase(), b.trim().to_lowercase());
    HEADERS.iter().any(|(x, y)| a == *x && b == *y)
}

/// A sentence's tokens, with `bos` before them when given.
fn tokens(model: &crate::model::Model, text: &str, bos: Option<u32>) -> Vec<u32> {
    let mut t = model.tokenize(text);
    if let Some(id) = bos {
        t.insert(0, id);
    }
    t
}

fn csv_row(line: usize, r: &PairReport) -> String {
    let opt = |v: Option<usize>| v.map(|x| x.to_string()).unwrap_or_default();
    csv_line(&[
        line.to_string(),
        r.a.clone(),
        r.b.clone(),
        r.total_a.to_string(),
        r.total_b.to_string(),
        r.n_tokens_a.to_string(),
        r.n_tokens_b.to_string(),
        r.delta.to_string(),
        r.prefers.to_owned(),
        r.ratio.to_string(),
        opt(r.deciding.as_ref().and_then(|d| d.a)),
        opt(r.deciding.as_ref().and_then(|d| d.b)),
        r.labels.join(";"),
    ])
}

/// `--summary --format csv`: one row per label, then the overall row.
fn summary_csv(s: &Summary) -> String {
    let row = |label: &str, a: &crate::analysis::pairs::Accuracy| {
        csv_line(&[
            label.to_owned(),
            a.pairs.to_string(),
            a.correct.to_string(),
            a.ties.to_string(),
            a.accuracy.map(|x| x.to_string()).unwrap_or_default(),
        ])
    };
    let mut out = csv_line(&["label", "pairs", "correct", "ties", "accuracy"].map(str::to_owned));
    for (label, a) in &s.by_label {
        out.push_str(&row(label, a));
    }
    out.push_str(&row("(all)", &s.overall));
    out
}
