//! From an evaluation to what people read: the scripting JSON (a contract, see DESIGN.md and
//! the README) and the human table. Pure: built from token ids, row summaries and the
//! vocabulary, so the explorer and `score` show the same numbers from the same code.

use serde::Serialize;

pub use crate::analysis::stats::totals;
use crate::analysis::stats::{perplexity, RowSummary};
pub use crate::analysis::top::{top_logprobs, TopLogprob};
use crate::analysis::vocab::{display_bytes, pad_to_width, Vocab};

/// One token, carrying the statistics of the distribution that predicted it (p_{j-1}), as
/// OpenAI and vLLM prompt logprobs do.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenReport {
    pub index: usize,
    pub id: u32,
    pub token: String,
    pub bytes: Vec<u8>,
    pub special: bool,
    pub logprob: Option<f64>,
    pub prob: Option<f64>,
    pub rank: Option<u32>,
    pub entropy_bits: Option<f64>,
    pub top_logprobs: Vec<TopLogprob>,
    #[serde(flatten)]
    pub extras: Extras,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NextReport {
    pub entropy_bits: f64,
    pub top_logprobs: Vec<TopLogprob>,
    #[serde(flatten)]
    pub extras: Extras,
}

/// What the options add to a distribution (a token's, or the one after the text); absent
/// from the JSON when not asked for.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Extras {
    /// With a second model (`--vs`): how its distribution here differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<TokenCompare>,
    /// With a watch-list (`--watch`): each watched word's probability here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<Vec<crate::analysis::watch::WatchValue>>,
    /// With `--layers`: the logit lens of this distribution, one entry per layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<crate::analysis::lens::LayerReport>>,
    /// With `--attention`: what each layer's heads read at the position that made this
    /// distribution (positions are token indices of the text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention: Option<Vec<crate::analysis::attention::LayerAttention>>,
    /// With `--attribution`: the logit of this token (of the most likely token at `next`)
    /// split into the embedding's, each layer's attention and MLP's shares, at the position
    /// that made this distribution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<crate::analysis::attribution::Attribution>,
}

/// Model A's distribution at one position against model B's (`--vs`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenCompare {
    pub kl_bits: f64,
    pub kl_reverse_bits: f64,
    pub js_bits: f64,
    /// The token's log-probability and rank under B (null where nothing predicts it).
    pub logprob_b: Option<f64>,
    pub rank_b: Option<u32>,
    /// logprob_b minus the token's logprob under A.
    pub delta_logprob: Option<f64>,
    /// The two models' most likely tokens differ.
    pub top1_changed: bool,
}

/// One line of `logitscope score`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScoreReport {
    pub text: String,
    pub model: String,
    pub n_vocab: usize,
    pub temperature: f64,
    pub tokens: Vec<TokenReport>,
    pub next: Option<NextReport>,
    pub total_logprob: f64,
    pub n_scored: usize,
    pub perplexity: Option<f64>,
    /// True when the text had more tokens than the context holds: only the first
    /// `tokens.len()` of `n_tokens_total` were scored.
    pub truncated: bool,
    pub n_tokens_total: usize,
    /// With a second model (`--vs`): the text's comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<crate::analysis::compare::CompareSummary>,
    /// With `--words`: the tokens grouped into words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words: Option<Vec<crate::analysis::words::WordReport>>,
    /// Where the model's layers ran (llama.cpp's devices: `CPU`, an RPC server, a GPU).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceUse>,
    /// Present when the model failed the side-by-side self-check: the texts were scored one
    /// sequence at a time, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batching: Option<String>,
    /// With `--layers`: whether the logit lens is available and its self-check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lens: Option<crate::analysis::lens::LensStatus>,
    /// With `--attention`: whether attention could be read, and what it covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention: Option<crate::analysis::attention::AttentionStatus>,
    /// With `--attribution`: whether it could be made, and what it covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<crate::analysis::attribution::AttributionStatus>,
    /// With `--ablate` or a control vector: what was changed in the model (its numbers are
    /// those of the changed model; `compare` is against the intact one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intervention: Option<String>,
}

/// A device the model uses: llama.cpp's name for it (`CPU`, `RPC0`, `CUDA0`), what it is (an
/// RPC server's endpoint), and how many of the model's layers it holds (the output layer counts
/// as one, as llama.cpp counts it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceUse {
    pub name: String,
    pub description: String,
    pub layers: usize,
}

/// A line that could not be scored.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorReport {
    pub text: String,
    pub error: String,
}

/// The temperature as the user wrote it (0.7, not 0.699999988).
pub fn tidy_temp(t: f32) -> f64 {
    format!("{t}").parse().unwrap_or(f64::from(t))
}

/// Attach the lens to a report: `lens` at the top, and at every token the layers of the
/// distribution that predicted it (`columns[i]` = the layers of p_i, `None` where the lens
/// does not reach).
pub fn attach_lens(
    report: &mut ScoreReport,
    vocab: &Vocab,
    status: crate::analysis::lens::LensStatus,
    columns: &[Option<Vec<RowSummary>>],
) {
    report.lens = Some(status);
    let column = |i: usize| {
        columns
            .get(i)
            .and_then(Option::as_ref)
            .map(|rows| crate::analysis::lens::layer_reports(vocab, rows))
    };
    for t in &mut report.tokens {
        t.extras.layers = t.index.checked_sub(1).and_then(column);
    }
    if let (Some(next), Some(i)) = (&mut report.next, report.tokens.len().checked_sub(1)) {
        next.extras.layers = column(i);
    }
}

/// Put each position's attention into `report`: token j gets what was read at position j−1
/// (the position that predicted it), as `--layers` does; `next` gets the last position's.
pub fn attach_attention(
    report: &mut ScoreReport,
    status: crate::analysis::attention::AttentionStatus,
    mut layers: crate::analysis::attention::PositionLayers,
) {
    report.attention = Some(status);
    let mut take = |i: usize| layers.get_mut(i).and_then(Option::take);
    let last = report.tokens.len().checked_sub(1);
    for t in &mut report.tokens {
        t.extras.attention = t.index.checked_sub(1).and_then(&mut take);
    }
    if let (Some(next), Some(i)) = (&mut report.next, last) {
        next.extras.attention = take(i);
    }
}

/// Put each position's attribution into `report` as [`attach_attention`] does: token j gets
/// the split made at position j−1 (`parts[i]` is position `positions[i]`'s).
pub fn attach_attribution(
    report: &mut ScoreReport,
    status: crate::analysis::attribution::AttributionStatus,
    positions: &[usize],
    parts: Vec<Option<crate::analysis::attribution::Attribution>>,
) {
    report.attribution = Some(status);
    let last = report.tokens.len().checked_sub(1);
    for (&p, a) in positions.iter().zip(parts) {
        if Some(p) == last {
            if let Some(next) = &mut report.next {
                next.extras.attribution = a;
            }
        } else if let Some(t) = report.tokens.get_mut(p + 1) {
            t.extras.attribution = a;
        }
    }
}

/// Build the report. `rows[i]` is p_i for `tokens[i]`; row j-1 predicted token j.
#[allow(clippy::too_many_arguments)]
pub fn score_report(
    text: &str,
    model: &ModelFacts,
    vocab: &Vocab,
    temp: f32,
    tokens: &[u32],
    rows: &[RowSummary],
    n_tokens_total: usize,
) -> ScoreReport {
    let token_reports = tokens
        .iter()
        .enumerate()
        .map(|(j, &id)| {
            let prev = j.checked_sub(1).and_then(|i| rows.get(i));
            let target = prev.and_then(|r| r.target);
            TokenReport {
                index: j,
                id,
                token: vocab.text(id),
                bytes: vocab.bytes(id).to_vec(),
                special: vocab.is_special(id),
                logprob: target.map(|t| t.logprob),
                prob: target.map(|t| t.prob),
                rank: target.map(|t| t.rank),
                entropy_bits: prev.map(|r| r.entropy_bits),
                top_logprobs: prev.map_or_else(Vec::new, |r| top_logprobs(vocab, &r.top)),
                extras: Extras::default(),
            }
        })
        .collect();
    let next = rows.last().map(|r| NextReport {
        entropy_bits: r.entropy_bits,
        top_logprobs: top_logprobs(vocab, &r.top),
        extras: Extras::default(),
    });
    let (total, n_scored) = totals(rows);
    ScoreReport {
        text: text.to_owned(),
        model: model.file_name.clone(),
        n_vocab: vocab.len(),
        temperature: tidy_temp(temp),
        tokens: token_reports,
        next,
        total_logprob: total,
        n_scored,
        perplexity: perplexity(total, n_scored),
        truncated: tokens.len() < n_tokens_total,
        n_tokens_total,
        compare: None,
        words: None,
        devices: model.devices.clone(),
        batching: model.batching.clone(),
        lens: None,
        attention: None,
        attribution: None,
        intervention: model.intervention.clone(),
    }
}

/// What a report says about the model that made it: its file, where its layers ran, and the
/// layout self-check's fallback if one is in force. One builder for every report (`score`,
/// `--vs`, the explorer's export).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelFacts {
    pub file_name: String,
    pub devices: Vec<DeviceUse>,
    pub batching: Option<String>,
    /// What an intervention in force changes (`--ablate`, control vectors).
    pub intervention: Option<String>,
}

/// Add a second model's comparison to a report: `cmp[i]` compares p_i of A and B, `b_rows[i]`
/// is B's summary of p_i.
pub fn attach_compare(
    report: &mut ScoreReport,
    model_b: &str,
    a_rows: &[RowSummary],
    b_rows: &[RowSummary],
    cmp: &[crate::analysis::compare::RowCompare],
) {
    use crate::analysis::compare::top1_changed;
    let at = |i: usize| -> Option<TokenCompare> {
        let (c, a, b) = (cmp.get(i)?, a_rows.get(i)?, b_rows.get(i)?);
        let (ta, tb) = (a.target, b.target);
        Some(TokenCompare {
            kl_bits: c.kl_bits,
            kl_reverse_bits: c.kl_reverse_bits,
            js_bits: c.js_bits,
            logprob_b: tb.map(|t| t.logprob),
            rank_b: tb.map(|t| t.rank),
            delta_logprob: ta.zip(tb).map(|(x, y)| y.logprob - x.logprob),
            top1_changed: top1_changed(a, b),
        })
    };
    for t in &mut report.tokens {
        t.extras.compare = t.index.checked_sub(1).and_then(at);
    }
    if let Some(next) = &mut report.next {
        next.extras.compare = a_rows.len().checked_sub(1).and_then(at);
    }
    report.compare = Some(crate::analysis::compare::summarize(
        model_b, cmp, a_rows, b_rows,
    ));
}

/// The `--format table` rendering: one row per token, then the prediction for what follows.
pub fn table(report: &ScoreReport) -> String {
    use std::fmt::Write;
    // Pieces as the explorer shows them (bytes that are not whole characters as <0xE3>,
    // invisible ones as <U+FE0F>), spaces as ␣, padded by display width.
    let shown = |b: &[u8]| display_bytes(b).replace(' ', "␣");
    let col = |b: &[u8]| pad_to_width(&shown(b), 16);
    let top3 = |t: &[TopLogprob]| {
        t.iter()
            .take(3)
            .map(|e| format!("{} {:.3}", shown(&e.bytes), e.logprob.exp()))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        crate::analysis::vocab::sanitize_for_terminal(&report.text)
    );
    let _ = writeln!(
        out,
        "{:>4}  {:<16} {:>9} {:>7} {:>7}  top-3",
        "#", "token", "p", "rank", "H bits"
    );
    for t in &report.tokens {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:>4}  {} {:>9} {:>7} {:>7}  {}",
            t.index,
            col(&t.bytes),
            opt(t.prob.map(|p| format!("{p:.5}"))),
            opt(t.rank.map(|r| r.to_string())),
            opt(t.entropy_bits.map(|h| format!("{h:.3}"))),
            top3(&t.top_logprobs)
        );
    }
    if let Some(next) = &report.next {
        let _ = writeln!(
            out,
            "{:>4}  {} {:>9} {:>7} {:>7.3}  {}",
            "next",
            col(b""),
            "",
            "",
            next.entropy_bits,
            top3(&next.top_logprobs)
        );
    }
    let _ = writeln!(
        out,
        "total logprob {:.4}   scored {}   perplexity {}{}",
        report.total_logprob,
        report.n_scored,
        report
            .perplexity
            .map_or_else(|| "-".into(), |p| format!("{p:.3}")),
        if report.truncated {
            format!(
                "   (truncated: first {} of {} tokens)",
                report.tokens.len(),
                report.n_tokens_total
            )
        } else {
            String::new()
        }
    );
    out
}

/// What the explorer exports (Ctrl-S): the `score` report of the text on screen — words,
/// watched words and the comparison with a second model included — and the fill-in report of
/// its blanks.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Export {
    pub score: ScoreReport,
    pub watch: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fill: Option<crate::analysis::blanks::FillReport>,
}

/// The columns of `score --format csv`: one row per token; `watch:<word>` columns hold each
/// watched word's log-probability; `error` is set on a line that could not be scored.
pub fn csv_header(watch: &[crate::analysis::watch::Watched]) -> String {
    csv_line(&csv_columns(watch))
}

/// The CSV columns: the per-token ones, a `watch:WORD` per watched word, then `error`.
pub fn csv_columns(watch: &[crate::analysis::watch::Watched]) -> Vec<String> {
    let mut cols: Vec<String> = [
        "line",
        "index",
        "id",
        "token",
        "special",
        "logprob",
        "prob",
        "rank",
        "entropy_bits",
        "surprisal_bits",
        "kl_bits",
    ]
    .map(str::to_owned)
    .to_vec();
    cols.extend(watch.iter().map(|w| format!("watch:{}", w.word)));
    cols.push("error".into());
    cols
}

/// The rows of one scored text (input line `line`, counted from 1).
pub fn csv_rows(line: usize, report: &ScoreReport) -> String {
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let n_watch = report
        .tokens
        .iter()
        .find_map(|t| t.extras.watch.as_ref().map(Vec::len))
        .unwrap_or(0);
    report
        .tokens
        .iter()
        .map(|t| {
            let mut cols = vec![
                line.to_string(),
                t.index.to_string(),
                t.id.to_string(),
                t.token.clone(),
                t.special.to_string(),
                opt(t.logprob),
                opt(t.prob),
                t.rank.map(|r| r.to_string()).unwrap_or_default(),
                opt(t.entropy_bits),
                opt(t.logprob.map(|l| -l / std::f64::consts::LN_2)),
                opt(t.extras.compare.as_ref().map(|c| c.kl_bits)),
            ];
            match &t.extras.watch {
                Some(w) => cols.extend(w.iter().map(|v| v.logprob.to_string())),
                None => cols.extend(std::iter::repeat_n(String::new(), n_watch)),
            }
            cols.push(String::new());
            csv_line(&cols)
        })
        .collect()
}

/// A row for a line that could not be scored.
pub fn csv_error(line: usize, columns: usize, error: &str) -> String {
    let mut cols = vec![String::new(); columns.max(2)];
    cols[0] = line.to_string();
    if let Some(last) = cols.last_mut() {
        *last = error.to_owned();
    }
    csv_line(&cols)
}

/// One CSV line (RFC 4180 quoting, by the csv crate).
pub fn csv_line(cols: &[String]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(cols);
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::stats::summarize_row;
    use unicode_width::UnicodeWidthStr;

    /// Every row of the table has its probability at the same display column, whatever the
    /// token: invisible (U+FE0F), a byte piece, wide, combining.
    #[test]
    fn table_columns_line_up_for_awkward_tokens() {
        let pieces: [&[u8]; 6] = [
            b"I",
            " \u{2764}".as_bytes(),
            "\u{fe0f}".as_bytes(),
            &[0xE3],
            "\u{65e5}\u{672c}".as_bytes(),
            "\u{301}".as_bytes(),
        ];
        let vocab = Vocab::from_bytes(pieces);
        let tokens = [0u32, 1, 2, 3, 4, 5];
        let logits = [1.0f32, 2.0, 3.0, 0.5, 0.25, 0.1];
        let rows: Vec<_> = (0..tokens.len())
            .map(|i| {
                summarize_row(&logits, 1.0, 3, tokens.get(i + 1).copied())
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        let report = score_report(
            "I ❤",
            &ModelFacts {
                file_name: "m".into(),
                ..ModelFacts::default()
            },
            &vocab,
            1.0,
            &tokens,
            &rows,
            tokens.len(),
        );
        let text = table(&report);
        assert!(
            text.contains("<U+FE0F>") && text.contains("<0xE3>") && text.contains("<U+0301>"),
            "{text}"
        );
        let p_columns: Vec<usize> = text
            .lines()
            .skip(3)
            .take(tokens.len() - 1)
            .map(|l| {
                let at = l.find(" 0.").unwrap_or_else(|| panic!("no p in {l:?}"));
                l[..at].width()
            })
            .collect();
        assert!(
            p_columns.iter().all(|&c| c == p_columns[0]),
            "{p_columns:?}\n{text}"
        );
    }
}
