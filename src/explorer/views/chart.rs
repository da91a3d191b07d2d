//! The sentence chart: entropy and surprisal across the text, totals below.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Wrap};
use ratatui::Frame;

use super::style::style_fg;
use crate::explorer::state::App;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(" sentence: entropy and surprisal (bits) ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(scored) = &app.scored else {
        return;
    };
    let (total, n_scored) = crate::analysis::report::totals(&scored.rows);
    let ppl = crate::analysis::stats::perplexity(total, n_scored);
    let [chart_area, legend_area, text_area] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(2),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("⠉⠒ entropy of p", style_fg(app, Color::Cyan)),
            Span::from("   "),
            Span::styled("• surprisal of the token", style_fg(app, Color::Yellow)),
            Span::from("   █ selected").dim(),
        ])),
        legend_area,
    );
    // x = token index j; entropy of p_{j-1}, surprisal of token j.
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
        .filter_map(|(i, r)| {
            r.target.map(|t| {
                (
                    (i + 1) as f64,
                    (-t.logprob / std::f64::consts::LN_2).min(40.0),
                )
            })
        })
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
    let y_max = entropy
        .iter()
        .chain(&surprisal)
        .chain(&kl)
        .map(|p| p.1)
        .fold(1.0f64, f64::max)
        .ceil();
    let x_max = scored.tokens.len().max(1) as f64;
    let sel = app.selected as f64;
    let marker = vec![(sel, 0.0), (sel, y_max)];
    let style = |c: Color| {
        if app.no_color {
            Style::default()
        } else {
            Style::default().fg(c)
        }
    };
    let datasets = vec![
        Dataset::default()
            .name("entropy")
            .marker(symbols::Marker::Braille)
            .graph_type(GraphType::Line)
            .style(style(Color::Cyan))
            .data(&entropy),
        Dataset::default()
            .name("surprisal")
            .marker(symbols::Marker::Dot)
            .graph_type(GraphType::Line)
            .style(style(Color::Yellow))
            .data(&surprisal),
        Dataset::default()
            .name("KL(A‖B)")
            .marker(symbols::Marker::Bar)
            .graph_type(GraphType::Scatter)
            .style(style(Color::Magenta))
            .data(&kl),
        Dataset::default()
            .name("selected")
            .marker(symbols::Marker::Block)
            .graph_type(GraphType::Line)
            .style(style(Color::White))
            .data(&marker),
    ];
    let chart = Chart::new(datasets)
        .x_axis(Axis::default().bounds([0.0, x_max]))
        .y_axis(
            Axis::default()
                .bounds([0.0, y_max])
                .labels(vec![Line::from("0"), Line::from(format!("{y_max:.0}"))]),
        );
    frame.render_widget(chart, chart_area);
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
