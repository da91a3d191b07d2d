//! The logit lens view (F9): a grid with a row per layer and a column per position, each cell
//! the top token at that layer shaded by its probability; and the selected position by layer:
//! the top token, the rank and probability of the token that actually came next, the entropy.
//!
//! A column is labelled with the token it predicts, as the strip's chip is: the column of
//! chip j is p_{j-1}. A cell whose top token is that token is underlined. When the panel has
//! fewer rows than the model has layers, evenly spaced layers are shown (always the first and
//! the last), each row labelled with its layer, and the title says how many.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::style::{heat, truncate_to_width};
use crate::analysis::lens::first_top_layer;
use crate::analysis::stats::RowSummary;
use crate::analysis::vocab::pad_to_width;
use crate::explorer::layout::chip_label;
use crate::explorer::state::App;

/// Columns of one grid cell: the token (5), a probability glyph, a gap.
const CELL: u16 = 7;
/// Columns of the layer numbers on the left.
const GUTTER: u16 = 4;

/// The layers shown in `rows` rows: all of them, or evenly spaced ones from the first to
/// the last.
pub fn shown_layers(n_layer: usize, rows: usize) -> Vec<usize> {
    if rows >= n_layer {
        return (0..n_layer).collect();
    }
    match rows {
        0 => Vec::new(),
        1 => vec![n_layer - 1],
        _ => (0..rows)
            .map(|i| (i * (n_layer - 1) + (rows - 1) / 2) / (rows - 1))
            .collect(),
    }
}

/// A glyph for a probability: taller = likelier.
pub(super) fn glyph(p: f64) -> &'static str {
    match p {
        p if p >= 0.8 => "█",
        p if p >= 0.5 => "▆",
        p if p >= 0.2 => "▄",
        p if p >= 0.05 => "▂",
        _ => "▁",
    }
}

/// Why there is no lens to draw, or `None` when there is one.
fn blocked(app: &App) -> Option<(String, bool)> {
    let lens = &app.lens;
    if let Some(e) = lens.error() {
        return Some((format!("The lens failed: {e}"), true));
    }
    match lens.status() {
        Some(s) if !s.available => Some((
            format!(
                "Logit lens unavailable for this model: {}",
                s.reason.as_deref().unwrap_or("no reason given")
            ),
            true,
        )),
        Some(_) => None,
        None if app.scored().is_none() => Some(("Type a sentence to see its lens.".into(), false)),
        None => Some((
            "Computing the lens: every layer's residual stream, checked against the model's \
             own output…"
                .into(),
            false,
        )),
    }
}

fn message(frame: &mut Frame, inner: Rect, text: String, loud: bool) {
    let p = Paragraph::new(text).wrap(Wrap { trim: true });
    frame.render_widget(if loud { p.bold() } else { p.dim() }, inner);
}

/// The grid: layers × positions.
pub fn draw_grid(frame: &mut Frame, app: &App, area: Rect) {
    let n_layer = app
        .lens
        .status()
        .and_then(|s| s.facts.as_ref())
        .map(|f| f.n_layer);
    // The same rows as the by-layer list beside it (a header line, a legend line).
    let inner_rows = area.height.saturating_sub(4) as usize;
    let layers = n_layer
        .map(|n| shown_layers(n, inner_rows))
        .unwrap_or_default();
    let title = match n_layer {
        Some(n) if layers.len() < n => {
            format!(" logit lens · top token · {} of {n} layers ", layers.len())
        }
        Some(n) => format!(" logit lens · top token · {n} layers "),
        None => " logit lens ".to_owned(),
    };
    let mut block = Block::bordered().title(title);
    if let Some(dp) = app.lens.status().and_then(|s| s.max_abs_dp) {
        block = block.title_bottom(
            Line::from(format!(" last layer = output: max |Δp| {dp:.1e} ")).right_aligned(),
        );
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some((text, loud)) = blocked(app) {
        return message(frame, inner, text, loud);
    }
    let (Some(scored), Some(vocab)) = (app.scored(), app.vocab()) else {
        return;
    };
    let n = scored.tokens.len();
    let covered = app.lens.covered(n);
    let selected = app.selected_position();
    let visible = (inner.width.saturating_sub(GUTTER) / CELL).max(1) as usize;
    let start = selected
        .unwrap_or(0)
        .saturating_sub(visible / 2)
        .min(n.saturating_sub(visible));
    let positions: Vec<usize> = (start..n).take(visible).collect();
    let label_of = |p: usize| match scored.tokens.get(p + 1) {
        Some(&t) => chip_label(vocab.bytes(t)),
        None => "▸next".to_owned(),
    };
    let mut lines = Vec::new();
    let mut header = vec![Span::from(" ".repeat(GUTTER as usize))];
    for &p in &positions {
        let text = pad_to_width(&truncate_to_width(&label_of(p), 6), CELL as usize);
        let style = if Some(p) == selected {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        };
        header.push(Span::styled(text, style));
    }
    lines.push(Line::from(header));
    for &l in &layers {
        let mut spans = vec![Span::from(format!("{l:>3} ")).dim()];
        for &p in &positions {
            spans.extend(cell(app, vocab, p, l, covered, Some(p) == selected));
        }
        lines.push(Line::from(spans));
    }
    lines.push(
        Line::from(if covered < n {
            format!("the lens covers the first {covered} tokens")
        } else {
            "↑ token predicted · underlined: on top".to_owned()
        })
        .dim(),
    );
    frame.render_widget(Paragraph::new(lines), inner);
}

fn cell<'a>(
    app: &App,
    vocab: &crate::analysis::vocab::Vocab,
    p: usize,
    layer: usize,
    covered: usize,
    selected: bool,
) -> [Span<'a>; 2] {
    let blank = |s: &str| {
        [
            Span::from(pad_to_width(s, CELL as usize)).dim(),
            Span::from(""),
        ]
    };
    if p >= covered {
        return blank("");
    }
    let Some(row) = app.lens.columns().get(&p).and_then(|c| c.get(layer)) else {
        return blank("  ·");
    };
    let Some(top) = row.top.first() else {
        return blank("");
    };
    let prob = top.logprob.exp();
    let text = format!(
        "{}{}",
        pad_to_width(&truncate_to_width(&chip_label(vocab.bytes(top.id)), 5), 5),
        glyph(prob)
    );
    let hit = row.target.is_some_and(|t| t.id == top.id);
    let mut style = if app.no_color {
        Style::default()
    } else {
        Style::default().fg(Color::Black).bg(heat(prob))
    };
    if hit {
        style = style.add_modifier(Modifier::UNDERLINED);
    }
    if selected {
        style = style.add_modifier(Modifier::BOLD);
    }
    [Span::styled(text, style), Span::from(" ")]
}

/// The selected position by layer, in the distribution panel's place.
pub fn draw_layers(frame: &mut Frame, app: &App, area: Rect) {
    let (Some(scored), Some(vocab)) = (app.scored(), app.vocab()) else {
        frame.render_widget(Block::bordered().title(" by layer "), area);
        return;
    };
    let position = app.selected_position();
    let next = position.and_then(|p| scored.tokens.get(p + 1).copied());
    let title = match (position, next) {
        (Some(_), Some(t)) => format!(
            " token {} {} · by layer ",
            app.selected_token(),
            chip_label(vocab.bytes(t))
        ),
        (Some(_), None) => " what comes next · by layer ".to_owned(),
        (None, _) => " by layer ".to_owned(),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some((text, loud)) = blocked(app) {
        return message(frame, inner, text, loud);
    }
    let Some(position) = position else {
        return message(
            frame,
            inner,
            "Nothing predicts the first token: select a later one.".into(),
            false,
        );
    };
    if position >= app.lens.covered(scored.tokens.len()) {
        return message(
            frame,
            inner,
            format!(
                "The lens covers the first {} tokens of a text.",
                app.lens.covered(scored.tokens.len())
            ),
            false,
        );
    }
    let Some(column) = app.lens.columns().get(&position) else {
        return message(
            frame,
            inner,
            "Computing this position's layers…".into(),
            false,
        );
    };
    let mut lines = vec![summary(column, next, vocab)];
    lines.push(
        Line::from(if next.is_some() {
            "  ℓ top token          p    rank   p next H bits"
        } else {
            "  ℓ top token          p H bits"
        })
        .dim(),
    );
    let rows = (inner.height as usize).saturating_sub(2);
    for l in shown_layers(column.len(), rows) {
        lines.push(layer_line(app, vocab, l, &column[l]));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Where the token that came next first becomes the top token.
fn summary<'a>(
    column: &[RowSummary],
    next: Option<u32>,
    vocab: &crate::analysis::vocab::Vocab,
) -> Line<'a> {
    let Some(id) = next else {
        return Line::from("the prediction after the text, layer by layer").bold();
    };
    let label = chip_label(vocab.bytes(id));
    match first_top_layer(column, id) {
        Some(l) => Line::from(format!(
            "{label} is the top token from layer {l} (of 0–{}) on",
            column.len() - 1
        ))
        .bold(),
        None => Line::from(format!("{label} is never the top token")).bold(),
    }
}

fn layer_line<'a>(
    app: &App,
    vocab: &crate::analysis::vocab::Vocab,
    layer: usize,
    row: &RowSummary,
) -> Line<'a> {
    let top = row.top.first();
    let label = top.map_or_else(String::new, |e| chip_label(vocab.bytes(e.id)));
    let p = top.map_or(0.0, |e| e.logprob.exp());
    let mut spans = vec![
        Span::from(format!("{layer:>3} ")),
        Span::from(pad_to_width(&truncate_to_width(&label, 12), 12)),
        Span::from(format!(" {p:>6.3}")),
    ];
    if let Some(t) = row.target {
        let style = super::style::bucket_style(app, Some(t.rank), Some(t.prob));
        spans.push(Span::styled(
            format!("  {:>6} {:>8.2e}", t.rank, t.prob),
            style,
        ));
    }
    spans.push(Span::from(format!(" {:>5.2}", row.entropy_bits)));
    let hit = matches!((top, row.target), (Some(e), Some(t)) if e.id == t.id);
    let line = Line::from(spans);
    if hit {
        line.add_modifier(Modifier::BOLD)
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_layers_keep_the_first_and_the_last() {
        assert_eq!(shown_layers(4, 10), vec![0, 1, 2, 3]);
        assert_eq!(shown_layers(30, 1), vec![29]);
        let s = shown_layers(30, 7);
        assert_eq!(s.len(), 7);
        assert_eq!((s[0], s[6]), (0, 29));
        assert!(s.windows(2).all(|w| w[0] < w[1]), "{s:?}");
        assert!(shown_layers(30, 0).is_empty());
    }
}
