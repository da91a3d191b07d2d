//! `logitscope trace CLEAN CORRUPT`: causal tracing (activation patching). One JSON object
//! (or a text heat map with `--format table`); progress on stderr.

use std::process::ExitCode;

use super::args::{Format, TraceArgs};
use super::fatal::Fatal;
use super::settings::Settings;
use crate::analysis::trace::{parse_layers, Grid, TraceReport, What};
use crate::analysis::vocab::display_bytes;
use crate::engine::trace::{trace, Progress, TraceError, TraceOptions};

/// One token written as the model continues a text, or a one-line refusal.
fn one_token(model: &crate::model::Model, flag: &str, t: &str) -> Result<u32, Fatal> {
    match model.tokenize_continuation(t)[..] {
        [id] => Ok(id),
        ref ids => Err(Fatal::other(format!(
            "{flag} {t:?} is {} tokens, not one (write it as it follows the text, with its leading space: \" Paris\")",
            ids.len()
        ))),
    }
}

pub fn run(settings: &Settings, opts: TraceArgs) -> Result<ExitCode, Fatal> {
    if opts.format == Format::Csv {
        return Err(Fatal::other(
            "trace writes JSON or a table (--format json|table)",
        ));
    }
    let what = opts
        .what
        .iter()
        .map(|w| What::parse(w))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Fatal::other(format!("--what: {e}")))?;
    let model = settings.load_model()?;
    let answer = opts
        .answer
        .as_deref()
        .map(|t| one_token(&model, "--answer", t))
        .transpose()?;
    let against = opts
        .against
        .as_deref()
        .map(|t| one_token(&model, "--against", t))
        .transpose()?;
    let layers = opts
        .layers
        .as_deref()
        .map(|l| parse_layers(l, model.shape().0))
        .transpose()
        .map_err(|e| Fatal::other(format!("--layers: {e}")))?;
    let topts = TraceOptions {
        answer,
        against,
        what,
        layers,
        reuse: !opts.no_reuse,
        width: opts.parallel as usize,
        top_k: opts.top as usize,
        temp: settings.view.temp,
    };
    let started = std::time::Instant::now();
    let mut progress = |_: &TraceReport, p: Progress| {
        eprint!(
            "\rlogitscope: trace: {}/{} patched runs, {:.1} s",
            p.done,
            p.total,
            started.elapsed().as_secs_f64()
        );
    };
    let result = trace(
        &model,
        &opts.clean,
        &opts.corrupt,
        &topts,
        &mut progress,
        &|| false,
    );
    eprintln!();
    let report = match result {
        Ok(Some(r)) => r,
        Ok(None) => return Err(Fatal::other("trace cancelled")),
        Err(TraceError::Model(e)) => return Err(Fatal::other(e.to_string())),
        Err(TraceError::Refused(why)) => return Err(Fatal::other(why)),
    };
    match opts.format {
        Format::Table => print!("{}", table(&report)),
        _ => println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| Fatal::other(e.to_string()))?
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Shades of restoration, 0 to 1.
const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];

/// A cell in four characters: a shade (the non-colour cue) and the share restored in
/// percent (`·` where there is nothing to restore).
fn mark(restored: Option<f64>) -> String {
    match restored {
        None => "   ·".into(),
        Some(r) => {
            let shade = SHADES[((r.clamp(0.0, 1.0) * 4.0).round() as usize).min(4)];
            format!(
                "{shade}{:>3}",
                (r * 100.0).round().clamp(-99.0, 999.0) as i64
            )
        }
    }
}

/// The grids as text: layers down, the corrupt text's positions across (its tokens listed
/// above, differing ones marked `*`), each cell the share of the clean answer restored (a
/// shade and the percentage; blank where the clean text has no position to patch in).
pub fn table(r: &TraceReport) -> String {
    let mut out = String::new();
    let b = &r.baselines;
    out.push_str(&format!(
        "answer {:?}: p clean {:.4}, corrupt {:.4}{}\n",
        r.answer.token,
        b.clean.p,
        b.corrupt.p,
        match (&r.against, b.clean.logit_diff, b.corrupt.logit_diff) {
            (Some(a), Some(c), Some(k)) => format!(
                " · logit diff vs {:?}: clean {c:.3}, corrupt {k:.3}",
                a.token
            ),
            _ => String::new(),
        }
    ));
    if let Some(a) = &r.alignment {
        out.push_str(&format!("note: {a}\n"));
    }
    for g in &r.grids {
        out.push_str(&grid_table(r, g));
    }
    out
}

fn grid_table(r: &TraceReport, g: &Grid) -> String {
    let mut out = format!(
        "\n{} ({}): % restored = (p − p corrupt) / (p clean − p corrupt); shade 0 ░ ▒ ▓ █ 100\n",
        g.what.name(),
        g.node
    );
    let n = r.corrupt_tokens.len();
    for (i, t) in r.corrupt_tokens.iter().enumerate() {
        let star = if r.differing.contains(&i) { "*" } else { " " };
        out.push_str(&format!("  {i:>3}{star} {}\n", display_bytes(&t.bytes)));
    }
    out.push_str("layer ");
    for i in 0..n {
        out.push_str(&format!("{:>5}", i));
    }
    out.push('\n');
    for &layer in &r.layers {
        out.push_str(&format!("{layer:>5} "));
        for i in 0..n {
            out.push(' ');
            // Blank: no clean position there (texts of different lengths).
            match g.cell(layer, i) {
                Some(c) => out.push_str(&mark(c.restored)),
                None => out.push_str("    "),
            }
        }
        out.push('\n');
    }
    let best: Vec<String> = g
        .strongest(3)
        .iter()
        .map(|c| {
            format!(
                "layer {} at {} {:?} restores {:.2} (p {:.4})",
                c.layer,
                c.position,
                display_bytes(&r.corrupt_tokens[c.position].bytes),
                c.restored.unwrap_or(0.0),
                c.p
            )
        })
        .collect();
    out.push_str(&format!("strongest: {}\n", best.join("; ")));
    out
}
