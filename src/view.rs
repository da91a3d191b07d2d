//! Drawing: a pure function of [`App`]. The layout functions are shared with `update` so a
//! mouse click maps to exactly the chip that was drawn under it.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Clear, Dataset, Gauge, GraphType, Paragraph, Wrap,
};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use crate::app::{App, ColorMode, Focus, Phase};
use crate::stats::max_entropy_bits;
use crate::vocab::display_bytes;

/// Below this the screen only says it is too small.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 12;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub input: Rect,
    pub strip: Rect,
    pub dist: Rect,
    pub side: Rect,
    pub status: Rect,
}

pub fn areas(area: Rect) -> Areas {
    let [input, strip, body, status] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(if area.height >= 30 { 6 } else { 4 }),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    let [dist, side] = if area.width >= 90 {
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body)
    } else {
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(body)
    };
    Areas {
        input,
        strip,
        dist,
        side,
        status,
    }
}

/// One chip of the token strip as placed on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chip {
    pub index: usize,
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub label: String,
}

/// How a token is written on its chip: a leading space as `␣`, bytes that are not UTF-8 as
/// `<0xE3>`, control characters escaped.
pub fn chip_label(bytes: &[u8]) -> String {
    let s = display_bytes(bytes);
    match s.strip_prefix(' ') {
        Some(rest) => format!("␣{rest}"),
        None => s,
    }
}

/// The chips laid out in `inner` (the strip without its border), scrolled so the selected
/// chip is visible. Chips wider than the strip are cut.
pub fn chip_layout(app: &App, inner: Rect) -> Vec<Chip> {
    let (Some(scored), Some((_, vocab, _))) = (&app.scored, &app.model) else {
        return Vec::new();
    };
    if inner.width < 2 || inner.height == 0 {
        return Vec::new();
    }
    let labels = scored
        .tokens
        .iter()
        .map(|&t| chip_label(vocab.bytes(t)))
        .chain(std::iter::once("▸next".to_owned()));
    // Lay out on unbounded lines first.
    let mut placed = Vec::new();
    let (mut x, mut line) = (0u16, 0u16);
    for (index, label) in labels.enumerate() {
        // One column for the probability glyph, the label, one column of gap.
        let w = (label.width() as u16).saturating_add(1).min(inner.width);
        if x > 0 && x + w > inner.width {
            x = 0;
            line += 1;
        }
        placed.push((index, x, line, w, label));
        x = x.saturating_add(w + 1);
    }
    let sel_line = placed
        .iter()
        .find(|c| c.0 == app.selected)
        .map_or(0, |c| c.2);
    let first = sel_line.saturating_sub(inner.height - 1);
    placed
        .into_iter()
        .filter(|c| c.2 >= first && c.2 < first + inner.height)
        .map(|(index, x, line, width, label)| Chip {
            index,
            x: inner.x + x,
            y: inner.y + line - first,
            width,
            label,
        })
        .collect()
}

fn strip_inner(app: &App) -> Rect {
    let area = Rect::new(0, 0, app.size.0, app.size.1);
    Block::default()
        .borders(Borders::ALL)
        .inner(areas(area).strip)
}

/// The chip under a screen cell, for mouse clicks.
pub fn chip_at(app: &App, col: u16, row: u16) -> Option<usize> {
    if app.size.0 < MIN_WIDTH || app.size.1 < MIN_HEIGHT {
        return None;
    }
    chip_layout(app, strip_inner(app))
        .into_iter()
        .find(|c| c.y == row && col >= c.x && col < c.x + c.width)
        .map(|c| c.index)
}

/// GLTR's buckets of the rank the model gave a token.
pub fn bucket(rank: u32) -> usize {
    match rank {
        1 => 0,
        2..=10 => 1,
        11..=100 => 2,
        _ => 3,
    }
}

/// A cue that reads without colour: taller bar = likelier token.
pub const BUCKET_GLYPHS: [&str; 4] = ["█", "▆", "▃", "▁"];
const BUCKET_COLORS: [Color; 4] = [Color::Green, Color::Yellow, Color::Red, Color::Magenta];

/// A continuous colour for p: red (p ≤ 1e-6) through yellow to green (p = 1), on log p.
pub fn heat(p: f64) -> Color {
    let x = ((p.max(1e-6).log10() + 6.0) / 6.0).clamp(0.0, 1.0);
    let (r, g) = if x < 0.5 {
        (230.0, 60.0 + 340.0 * x)
    } else {
        (230.0 - 380.0 * (x - 0.5), 230.0)
    };
    Color::Rgb(r as u8, g as u8, 70)
}

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small: {}×{} (need {}×{})",
            area.width, area.height, MIN_WIDTH, MIN_HEIGHT
        );
        frame.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    match &app.phase {
        Phase::Loading { progress } => {
            draw_loading(frame, app, *progress);
            return;
        }
        Phase::Failed(msg) => {
            let p = Paragraph::new(vec![
                Line::from("The model could not be loaded:".bold()),
                Line::from(crate::vocab::sanitize_for_terminal(msg)),
                Line::from(""),
                Line::from("Press Esc to quit."),
            ])
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" logitscope "));
            frame.render_widget(p, area);
            return;
        }
        Phase::Ready => {}
    }
    let a = areas(area);
    draw_input(frame, app, a.input);
    draw_strip(frame, app, a.strip);
    draw_distribution(frame, app, a.dist);
    if app.has_blank() {
        draw_fill(frame, app, a.side);
    } else {
        draw_sentence(frame, app, a.side);
    }
    draw_status(frame, app, a.status);
    if app.help {
        draw_help(frame, area);
    }
}

fn draw_loading(frame: &mut Frame, app: &App, progress: f32) {
    let [_, mid, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(5),
        Constraint::Fill(1),
    ])
    .areas(frame.area());
    let [_, mid, _] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Percentage(70),
        Constraint::Fill(1),
    ])
    .areas(mid);
    let gauge = Gauge::default()
        .block(Block::bordered().title(format!(
            " loading {} ",
            crate::vocab::sanitize_for_terminal(&app.model_name)
        )))
        .ratio(f64::from(progress.clamp(0.0, 1.0)))
        .label(format!("{:.0}%", progress * 100.0));
    let gauge = if app.no_color {
        gauge
    } else {
        gauge.gauge_style(Style::default().fg(Color::Cyan))
    };
    frame.render_widget(gauge, mid);
    if !app.editor.text().is_empty() {
        let [_, below] = Layout::vertical([Constraint::Length(5), Constraint::Length(1)])
            .areas(Rect::new(mid.x, mid.y, mid.width, mid.height + 1));
        frame.render_widget(
            Paragraph::new("your text will be scored as soon as the model is ready").dim(),
            below,
        );
    }
}

fn draw_input(frame: &mut Frame, app: &App, area: Rect) {
    let focused = app.focus == Focus::Text;
    let block = Block::bordered().title(Line::from(vec![
        " type a sentence ".into(),
        Span::from("(____ or [MASK] makes a blank) ").dim(),
    ]));
    let inner = block.inner(area);
    let width = inner.width.saturating_sub(2) as usize;
    let vp = app.editor.viewport(width, app.input_scroll);
    let shown = &app.editor.text()[vp.start..vp.end];
    let line = Line::from(vec![
        Span::from("› ").dim(),
        Span::from(crate::vocab::sanitize_for_terminal(shown)),
    ]);
    frame.render_widget(Paragraph::new(line).block(block), area);
    if focused && !app.help {
        frame.set_cursor_position((inner.x + 2 + vp.cursor_col as u16, inner.y));
    }
}

fn bucket_style(app: &App, rank: Option<u32>, prob: Option<f64>) -> Style {
    if app.no_color {
        return Style::default();
    }
    match (app.color, rank, prob) {
        (ColorMode::Buckets, Some(r), _) => Style::default().fg(BUCKET_COLORS[bucket(r)]),
        (ColorMode::Heat, _, Some(p)) => Style::default().fg(heat(p)),
        _ => Style::default().fg(Color::Gray),
    }
}

fn draw_strip(frame: &mut Frame, app: &App, area: Rect) {
    let mut title = vec![Span::from(" tokens ")];
    if let Some(s) = app
        .scored
        .as_ref()
        .filter(|s| s.tokens.len() < s.n_tokens_total)
    {
        title.push(
            Span::from(format!(
                "· first {} of {} (context full, -c to enlarge) ",
                s.tokens.len(),
                s.n_tokens_total
            ))
            .bold(),
        );
    }
    if app.stale() {
        title.push(Span::from("evaluating… ").italic());
    }
    let title = Line::from(title);
    let block = Block::bordered().title(title).title_bottom(
        Line::from(match app.color {
            ColorMode::Buckets => " █ top-1  ▆ top-10  ▃ top-100  ▁ beyond ",
            ColorMode::Heat => " █ p≥0.5  ▆ ≥0.05  ▃ ≥0.001  ▁ below (heat colour = log p) ",
        })
        .dim(),
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(err) = &app.eval_error {
        frame.render_widget(
            Paragraph::new(crate::vocab::sanitize_for_terminal(err)).red(),
            inner,
        );
        return;
    }
    let Some(scored) = &app.scored else {
        let hint = if app.editor.text().is_empty() {
            "Start typing: every token appears here, marked by how likely the model found it."
        } else {
            ""
        };
        frame.render_widget(Paragraph::new(hint).dim().wrap(Wrap { trim: true }), inner);
        return;
    };
    let buf = frame.buffer_mut();
    for chip in chip_layout(app, inner) {
        let (glyph, style) = if chip.index < scored.tokens.len() {
            let target = chip
                .index
                .checked_sub(1)
                .and_then(|i| scored.rows.get(i))
                .and_then(|r| r.target);
            let glyph = match (app.color, target) {
                (_, None) => "·",
                (ColorMode::Buckets, Some(t)) => BUCKET_GLYPHS[bucket(t.rank)],
                (ColorMode::Heat, Some(t)) => {
                    BUCKET_GLYPHS[match t.prob {
                        p if p >= 0.5 => 0,
                        p if p >= 0.05 => 1,
                        p if p >= 0.001 => 2,
                        _ => 3,
                    }]
                }
            };
            (
                glyph,
                bucket_style(app, target.map(|t| t.rank), target.map(|t| t.prob)),
            )
        } else {
            (" ", Style::default().fg(Color::Cyan))
        };
        let style = if app.no_color {
            Style::default()
        } else {
            style
        };
        let style = if chip.index == app.selected {
            style.add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            style
        };
        let max = chip.width.min(inner.x + inner.width - chip.x);
        buf.set_stringn(chip.x, chip.y, glyph, 1, style);
        buf.set_stringn(
            chip.x + 1,
            chip.y,
            &chip.label,
            max.saturating_sub(1) as usize,
            style,
        );
    }
}

/// The distribution a chip shows: for token j, p_{j-1}; for the "next" chip, p_{n-1}.
fn selected_row(app: &App) -> Option<(usize, &crate::stats::RowSummary)> {
    let scored = app.scored.as_ref()?;
    let i = app.selected.checked_sub(1)?;
    scored.rows.get(i).map(|r| (i, r))
}

fn draw_distribution(frame: &mut Frame, app: &App, area: Rect) {
    let Some(scored) = &app.scored else {
        frame.render_widget(Block::bordered().title(" distribution "), area);
        return;
    };
    let Some((_, vocab, _)) = &app.model else {
        return;
    };
    let n = scored.tokens.len();
    let title = if app.selected >= n {
        " what comes next ".to_owned()
    } else {
        format!(
            " token {} {} ",
            app.selected,
            chip_label(vocab.bytes(scored.tokens[app.selected]))
        )
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some((_, row)) = selected_row(app) else {
        frame.render_widget(
            Paragraph::new("Nothing predicts the first token: this model adds no BOS token.")
                .dim()
                .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    };
    let actual = row.target;
    let mut lines = Vec::new();
    lines.push(Line::from(vec![
        Span::from(format!(
            "H {:.2} of {:.2} bits",
            row.entropy_bits,
            max_entropy_bits(vocab.len())
        )),
        Span::from(format!(
            "   top-{} mass {:.3}",
            row.top.len(),
            row.top_mass()
        ))
        .dim(),
    ]));
    let label_w = 14usize;
    // rank (4) + label + bar + p (8) + logprob (9) + " ◂ actual" (9)
    let bar_w = inner
        .width
        .saturating_sub(label_w as u16 + 4 + 8 + 9 + 9 + 2)
        .clamp(3, 30) as usize;
    let rows_fit = inner.height.saturating_sub(3) as usize;
    for (rank0, e) in row.top.iter().enumerate().take(rows_fit) {
        let p = e.logprob.exp();
        let is_actual = actual.is_some_and(|t| t.id == e.id);
        let label = truncate_to_width(&chip_label(vocab.bytes(e.id)), label_w);
        let filled = (p * bar_w as f64).round() as usize;
        let bar = format!(
            "{}{}",
            "█".repeat(filled),
            "·".repeat(bar_w - filled.min(bar_w))
        );
        let style = if is_actual {
            Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            Style::default()
        };
        lines.push(Line::styled(
            format!(
                "{:>3} {:<lw$} {} {:>7.4} {:>8.3}{}",
                rank0 + 1,
                label,
                bar,
                p,
                e.logprob,
                if is_actual { " ◂ actual" } else { "" },
                lw = label_w - (label.width() - label.chars().count()).min(label_w)
            ),
            style,
        ));
    }
    match actual {
        Some(t) if t.rank as usize > row.top.len().min(rows_fit) => {
            lines.push(Line::styled(
                format!(
                    "{:>3} {} … actual, p {:.3e}, logprob {:.3}",
                    t.rank,
                    chip_label(vocab.bytes(t.id)),
                    t.prob,
                    t.logprob
                ),
                Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED),
            ));
        }
        None => lines.push(Line::from("(prediction for the token after the text)").dim()),
        _ => {}
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn truncate_to_width(s: &str, w: usize) -> String {
    let mut out = String::new();
    for g in unicode_segmentation::UnicodeSegmentation::graphemes(s, true) {
        if out.width() + g.width() > w {
            break;
        }
        out.push_str(g);
    }
    out
}

fn draw_sentence(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(" sentence: entropy and surprisal (bits) ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(scored) = &app.scored else {
        return;
    };
    let (total, n_scored) = crate::report::totals(&scored.rows);
    let ppl = crate::stats::perplexity(total, n_scored);
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
    let y_max = entropy
        .iter()
        .chain(&surprisal)
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

fn style_fg(app: &App, c: Color) -> Style {
    if app.no_color {
        Style::default()
    } else {
        Style::default().fg(c)
    }
}

fn draw_fill(frame: &mut Frame, app: &App, area: Rect) {
    let title = match app.fill.progress {
        Some((b, d, t)) if t > 0 => format!(" fill-in: re-scoring blank {} … {d}/{t} ", b + 1),
        Some(_) => " fill-in: scoring… ".to_owned(),
        None => " fill-in: left context vs whole sentence ".to_owned(),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [body, input] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    let mut lines = Vec::new();
    if let Some(err) = &app.fill.error {
        lines.push(Line::from(crate::vocab::sanitize_for_terminal(err)).red());
    }
    if let Some(report) = &app.fill.report {
        let Some((_, vocab, _)) = &app.model else {
            return;
        };
        if report.blanks.len() > 1 {
            lines.push(
                Line::from(format!(
                    "{} blanks, filled left to right with the best of each",
                    report.blanks.len()
                ))
                .dim(),
            );
        }
        let per_blank = (body.height as usize / report.blanks.len().max(1)).max(3);
        for b in &report.blanks {
            if report.blanks.len() > 1 {
                lines.push(Line::from(format!("blank {}", b.index + 1)).bold());
            }
            lines.push(
                Line::from(format!(
                    "{:>2} {:<9} {:>5}  {:<9} {:>5} {:>3}",
                    "#", "left only", "p", "sentence", "post.", "mv"
                ))
                .bold(),
            );
            let n = per_blank.saturating_sub(1);
            for i in 0..n {
                let left = b
                    .left_top_logprobs
                    .get(i)
                    .map(|e| {
                        format!(
                            "{:<9} {:.3}",
                            truncate_to_width(&chip_label(vocab.bytes(e.id)), 9),
                            e.logprob.exp()
                        )
                    })
                    .unwrap_or_default();
                let right = b
                    .candidates
                    .get(i)
                    .map(|c| {
                        let moved = c.left_rank as i64 - (i as i64 + 1);
                        let mv = match moved {
                            0 => "=".to_owned(),
                            m if m > 0 => format!("↑{m}"),
                            m => format!("↓{}", -m),
                        };
                        format!(
                            "{}{:<9} {:.3} {:>3}",
                            if c.source == "user" { "*" } else { " " },
                            truncate_to_width(&crate::vocab::sanitize_for_terminal(&c.text), 9),
                            c.posterior,
                            mv,
                        )
                    })
                    .unwrap_or_default();
                if left.is_empty() && right.is_empty() {
                    break;
                }
                lines.push(Line::from(format!("{i:>2} {left:<15} {right}", i = i + 1)));
            }
        }
    } else if app.fill.error.is_none() {
        lines.push(Line::from("scoring candidates with the words after the blank…").dim());
    }
    frame.render_widget(Paragraph::new(lines), body);
    let focused = app.focus == Focus::Candidates;
    let prefix = if focused {
        "+ "
    } else {
        "Tab: add candidates "
    };
    let w = body.width.saturating_sub(prefix.width() as u16) as usize;
    let vp = app.fill.input.viewport(w, app.fill.input_scroll);
    let mut spans = vec![Span::from(prefix).dim()];
    spans.push(Span::from(crate::vocab::sanitize_for_terminal(
        &app.fill.input.text()[vp.start..vp.end],
    )));
    if !app.fill.candidates.is_empty() && !focused {
        spans.push(Span::from(format!("(yours: {})", app.fill.candidates.join(", "))).dim());
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), input);
    if focused && !app.help {
        frame.set_cursor_position((
            input.x + prefix.width() as u16 + vp.cursor_col as u16,
            input.y,
        ));
    }
}

fn draw_status(frame: &mut Frame, app: &App, area: Rect) {
    let mut parts = vec!["F1 help".to_owned()];
    parts.push(format!("T {}", crate::report::tidy_temp(app.view.temp)));
    parts.push(format!("k {}", app.view.n_probs));
    if let Some(s) = &app.scored {
        parts.push(format!("{} tokens", s.tokens.len()));
        parts.push(format!(
            "{:.0} ms ({} decoded)",
            s.elapsed.as_secs_f64() * 1000.0,
            s.decoded
        ));
    }
    if let Some((info, vocab, n_ctx)) = &app.model {
        parts.push(info.file_name.clone());
        parts.push(format!("|V| {}", vocab.len()));
        parts.push(format!("n_ctx {n_ctx}"));
        parts.push(if info.gpu_layers > 0 {
            format!("GPU layers {}", info.gpu_layers)
        } else {
            "CPU".into()
        });
    }
    let mut line = parts.join(" │ ");
    if let Some(w) = &app.warning {
        line = format!("⚠ {} │ {line}", crate::vocab::sanitize_for_terminal(w));
    }
    let style = if app.no_color {
        Style::default().add_modifier(Modifier::REVERSED)
    } else {
        Style::default().bg(Color::DarkGray).fg(Color::White)
    };
    frame.render_widget(Paragraph::new(line).style(style), area);
}

/// Every key, for the help overlay and the README.
pub const KEYS: &[(&str, &str)] = &[
    ("type, paste", "edit the sentence; re-scored as you type"),
    ("← → Home End", "move the cursor by grapheme cluster"),
    ("Ctrl-← Ctrl-→", "move by word"),
    ("Backspace Delete", "delete one grapheme cluster"),
    ("Ctrl-W  Ctrl-U", "delete a word / the whole line"),
    ("↑ ↓   Enter", "sentence history / save to history"),
    ("Shift-← →  PgUp PgDn", "select previous / next token"),
    ("Shift-Home End", "select first token / what comes next"),
    ("click, wheel", "select a token"),
    ("F2 F3", "temperature down / up"),
    ("F4 F5", "fewer / more top-k rows"),
    ("F6", "colour: GLTR buckets / heat scale"),
    ("Tab, Enter", "blank: type candidates (a,b), add them"),
    ("F1, ? on empty line", "this help"),
    ("Esc  Ctrl-C  (q here)", "quit"),
];

fn draw_help(frame: &mut Frame, area: Rect) {
    let w = area.width.saturating_sub(2).min(66);
    let h = (KEYS.len() as u16 + 4).min(area.height.saturating_sub(2));
    let rect = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, d)| Line::from(vec![Span::from(format!("{k:<22}")).bold(), Span::from(*d)]))
        .collect();
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(
                Block::bordered().title(" keys ").title_bottom(
                    Line::from(" any key closes · q quits ").alignment(Alignment::Right),
                ),
            )
            .wrap(Wrap { trim: false }),
        rect,
    );
}
