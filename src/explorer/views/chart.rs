//! The sentence chart: entropy, surprisal (and KL between two models, and the watched words)
//! across the text, its positions labelled with their tokens under the plot, the selected one
//! marked; the legend is a line of its own below, never over the data; totals at the bottom.
//!
//! Position x is the token index j: the entropy of the distribution that predicted token j
//! (p_{j-1}), the surprisal of token j; the last position is the prediction after the text.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Wrap};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use super::style::{style_fg, truncate_to_width};
use crate::explorer::layout::chip_label;
use crate::explorer::state::App;

/// Colours of watched words' lines, in list order.
const WATCH_COLORS: [Color; 4] = [
    Color::Green,
    Color::LightBlue,
    Color::LightRed,
    Color::White,
];

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(" sentence: entropy and surprisal (bits) ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let (Some(scored), Some(vocab)) = (app.scored(), app.vocab()) else {
        return;
    };
    let (total, n_scored) = crate::analysis::report::totals(&scored.rows);
    let ppl = crate::analysis::stats::perplexity(total, n_scored);
    let [chart_area, labels_area, legend_area, text_area] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(2),
    ])
    .areas(inner);
    let bits = |lp: f64| (-lp / std::f64::consts::LN_2).min(40.0);
    let entropy: Vec<(f64, f64)> = scored
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| ((i + 1) as f64, r.entropy_bits))
        .collect();
    let surprisal: Vec<(f64, f64)> = scored
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.target.map(|t| ((i + 1) as f64, bits(t.logprob))))
        .collect();
    // With a second model: KL(A‖B) of each distribution, at the token it predicted.
    let kl: Vec<(f64, f64)> = scored
        .compare
        .as_ref()
        .map(|c| {
            c.rows
                .iter()
                .enumerate()
                .map(|(i, r)| ((i + 1) as f64, r.kl_bits.min(40.0)))
                .collect()
        })
        .unwrap_or_default();
    // Watched one-token words: their surprisal at every position.
    let watched: Vec<(String, Vec<(f64, f64)>)> = app
        .watch
        .iter()
        .filter_map(|word| {
            let piece = format!(" {word}");
            let points: Vec<(f64, f64)> = scored
                .rows
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    r.watched
                        .iter()
                        .find(|t| vocab.bytes(t.id) == piece.as_bytes())
                        .map(|t| ((i + 1) as f64, bits(t.logprob)))
                })
                .collect();
            (!points.is_empty()).then(|| (word.clone(), points))
        })
        .take(WATCH_COLORS.len())
        .collect();
    let y_max = entropy
        .iter()
        .chain(&surprisal)
        .chain(&kl)
        .chain(watched.iter().flat_map(|w| &w.1))
        .map(|p| p.1)
        .fold(1.0f64, f64::max)
        .ceil();
    let x_max = scored.tokens.len().max(1) as f64;
    let sel = app.selected_token() as f64;
    let marker = vec![(sel, 0.0), (sel, y_max)];
    let mut datasets = vec![
        Dataset::default()
            .marker(symbols::Marker::Braille)
            .graph_type(GraphType::Line)
            .style(style_fg(app, Color::Cyan))
            .data(&entropy),
        Dataset::default()
            .marker(symbols::Marker::Bar)
            .graph_type(GraphType::Scatter)
            .style(style_fg(app, Color::Yellow))
            .data(&surprisal),
        Dataset::default()
            .marker(symbols::Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(style_fg(app, Color::Magenta))
            .data(&kl),
    ];
    for (k, (_, points)) in watched.iter().enumerate() {
        datasets.push(
            Dataset::default()
                .marker(symbols::Marker::HalfBlock)
                .graph_type(GraphType::Line)
                .style(style_fg(app, WATCH_COLORS[k]))
                .data(points),
        );
    }
    datasets.push(
        Dataset::default()
            .marker(symbols::Marker::Block)
            .graph_type(GraphType::Line)
            .style(style_fg(app, Color::White))
            .data(&marker),
    );
    let y_labels = vec![Line::from("0"), Line::from(format!("{y_max:.0}"))];
    let label_w = y_labels.iter().map(Line::width).max().unwrap_or(1) as u16;
    // No dataset has a name: the chart then draws no legend over the data (ours is below).
    let chart = Chart::new(datasets)
        .x_axis(Axis::default().bounds([0.0, x_max]))
        .y_axis(Axis::default().bounds([0.0, y_max]).labels(y_labels));
    frame.render_widget(chart, chart_area);

    // Where the plot's columns are: right of the y labels and the axis (as ratatui lays it out).
    let left = chart_area.x + label_w.min(chart_area.width / 3) + 1;
    let width = chart_area.right().saturating_sub(left);
    let labels: Vec<String> = scored
        .tokens
        .iter()
        .map(|&t| chip_label(vocab.bytes(t)))
        .chain(std::iter::once("next".to_owned()))
        .collect();
    draw_x_labels(
        frame.buffer_mut(),
        labels_area,
        left,
        width,
        x_max,
        &labels,
        app.selected_token(),
    );

    let mut legend = vec![
        Span::styled("⠉⠒ entropy", style_fg(app, Color::Cyan)),
        Span::from("  "),
        Span::styled("▄ surprisal", style_fg(app, Color::Yellow)),
    ];
    if !kl.is_empty() {
        legend.push(Span::from("  "));
        legend.push(Span::styled("• KL(A‖B)", style_fg(app, Color::Magenta)));
    }
    for (k, (word, _)) in watched.iter().enumerate() {
        legend.push(Span::from("  "));
        legend.push(Span::styled(
            format!("▀ {word}"),
            style_fg(app, WATCH_COLORS[k]),
        ));
    }
    legend.push(Span::from("  █ selected").dim());
    frame.render_widget(Paragraph::new(Line::from(legend)), legend_area);

    let truncated = if scored.tokens.len() < scored.n_tokens_total {
        format!(
            "  (first {} of {} tokens: context full)",
            scored.tokens.len(),
            scored.n_tokens_total
        )
    } else {
        String::new()
    };
    frame.render_widget(
        Paragraph::new(vec![Line::from(format!(
            "total logprob {total:.3}   perplexity {}   scored {n_scored}{truncated}",
            ppl.map_or_else(|| "-".into(), |p| format!("{p:.2}"))
        ))])
        .wrap(Wrap { trim: true }),
        text_area,
    );
}

/// The column of position `x` in a plot of `width` columns starting at `left` (ratatui's
/// canvas mapping for one-cell markers).
pub fn column(left: u16, width: u16, x: f64, x_max: f64) -> u16 {
    if x_max <= 0.0 || width == 0 {
        return left;
    }
    left + ((x / x_max) * f64::from(width - 1)).round() as u16
}

/// Token labels under the plot, each starting at its position's column: the selected one
/// first (marked ▲, bold), then the others left to right wherever they fit.
fn draw_x_labels(
    buf: &mut Buffer,
    area: Rect,
    left: u16,
    width: u16,
    x_max: f64,
    labels: &[String],
    selected: usize,
) {
    if area.height == 0 || width == 0 {
        return;
    }
    let right = area.right();
    // (start, end) of each placed label, in columns.
    let mut placed: Vec<(u16, u16)> = Vec::new();
    if let Some(l) = labels.get(selected) {
        // The ▲ sits in the selection's column: the name to its right, or to its left when
        // it would run past the edge.
        let name = l.trim_start_matches('␣');
        let col = column(left, width, selected as f64, x_max);
        let style = Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED);
        let w = name.width() as u16 + 1;
        let (text, at) = if col + w <= right {
            (format!("▲{name}"), col)
        } else {
            let room = col.saturating_sub(area.x) as usize;
            let name = truncate_to_width(name, room);
            let at = col - name.width() as u16;
            (format!("{name}▲"), at)
        };
        let w = text.width() as u16;
        placed.push((at, at + w));
        buf.set_stringn(at, area.y, &text, w as usize, style);
    }
    let mut place = |buf: &mut Buffer, j: usize, text: &str, style: Style| {
        let col = column(left, width, j as f64, x_max);
        // A label that would run past the edge ends at the edge instead.
        let w_full = (text.width() as u16).min(right.saturating_sub(left));
        let at = col.min(right.saturating_sub(w_full));
        let room = right.saturating_sub(at) as usize;
        let text = truncate_to_width(text, room);
        let w = text.width() as u16;
        if w == 0 {
            return;
        }
        let (s, e) = (at, at + w);
        if placed.iter().any(|&(ps, pe)| s <= pe && e + 1 > ps) {
            return;
        }
        placed.push((s, e));
        buf.set_stringn(at, area.y, &text, w as usize, style);
    };
    for (j, l) in labels.iter().enumerate() {
        if j != selected {
            place(buf, j, l, Style::default().dim());
        }
    }
}
