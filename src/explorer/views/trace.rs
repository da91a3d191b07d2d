//! The trace view (Ctrl-Y in a minimal pair): causal tracing of sentence A (clean) against B
//! (corrupt). Left: a heat map, sentence B's tokens down (the ones that differ from A marked
//! `*`), layers across, each cell the share of A's answer that patching A's residual stream
//! there brings back — a shade glyph as the non-colour cue, the selected cell reversed. It
//! fills in as the engine computes it, with a progress bar. Right: the selected cell's
//! patched distribution, the two baselines and the strongest cells.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::style::{heat_style, panel_message as message, truncate_to_width};
use crate::analysis::trace::{Cell, TraceReport};
use crate::analysis::vocab::{display_bytes, pad_to_width};
use crate::explorer::layout::chip_label;
use crate::explorer::state::App;
use crate::explorer::trace::shown_position;

/// Shades of restoration, 0 to 1 (the non-colour cue).
const SHADES: [&str; 5] = ["·", "░", "▒", "▓", "█"];
/// Columns of a token label.
const LABEL: usize = 9;

fn shade(restored: Option<f64>) -> &'static str {
    match restored {
        None => " ",
        Some(r) => SHADES[((r.clamp(0.0, 1.0) * 4.0).round() as usize).min(4)],
    }
}

/// The report so far, or the message to show instead (and whether it is an error).
fn shown(app: &App) -> Result<&TraceReport, (String, bool)> {
    if app.pair().is_none() {
        return Err((
            "Tracing needs a minimal pair: Ctrl-P opens a second line. A is the clean text, B the corrupt one; the grid shows how much of A's answer each of A's activations brings back into B.".into(),
            false,
        ));
    }
    if let Some(e) = app.trace.error() {
        return Err((format!("Trace unavailable: {e}"), true));
    }
    match app.trace.report() {
        Some(r) => Ok(r),
        None => Err((
            "Tracing A into B: reading both sentences' activations…".into(),
            false,
        )),
    }
}

/// The whole body: the grid, and beside (or under) it the selected cell.
pub fn draw(frame: &mut Frame, app: &App, body: Rect) {
    let [grid, detail] = if body.width >= 90 {
        Layout::horizontal([Constraint::Min(44), Constraint::Length(40)]).areas(body)
    } else {
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(body)
    };
    draw_grid(frame, app, grid);
    draw_detail(frame, app, detail);
}

fn progress_line(app: &App, width: usize) -> Line<'static> {
    let (done, total) = app.trace.progress();
    if app.trace.done() {
        return Line::from(format!("all {total} patched runs")).dim();
    }
    let bar = (width.saturating_sub(24)).clamp(4, 30);
    let f = if total == 0 {
        0.0
    } else {
        done as f64 / total as f64
    };
    let status = if app.trace.running() {
        "tracing"
    } else {
        "paused"
    };
    Line::from(format!(
        "{status} {done}/{total} ▕{}▏",
        pad_to_width(&super::style::eighths_bar(f, bar), bar)
    ))
}

fn draw_grid(frame: &mut Frame, app: &App, area: Rect) {
    let r = match shown(app) {
        Ok(r) => r,
        Err((text, loud)) => {
            let block = Block::bordered().title(" trace ");
            let inner = block.inner(area);
            frame.render_widget(block, area);
            return message(frame, inner, text, loud);
        }
    };
    let title = format!(
        " trace · {:?} · A clean {:.3} → B corrupt {:.3} ",
        truncate_to_width(&display_bytes(&r.answer.bytes), 12),
        r.baselines.clean.p,
        r.baselines.corrupt.p
    );
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    let grid = r.grids.first();
    let (sel_pos, sel_layer) = (shown_position(app).unwrap_or(0), app.trace.layer);
    // One or two columns a layer, as the width allows.
    let cell_w = if LABEL + 2 + 2 * r.n_layer <= width {
        2
    } else {
        1
    };
    let fit_layers = (width.saturating_sub(LABEL + 2) / cell_w).max(1);
    let first_layer = sel_layer.saturating_sub(fit_layers.saturating_sub(1));
    let layers = first_layer..(first_layer + fit_layers).min(r.n_layer);
    let mut lines = vec![progress_line(app, width)];
    let mut header = pad_to_width("layer", LABEL + 2);
    for l in layers.clone() {
        header.push_str(&if cell_w == 2 {
            format!(
                "{:<2}",
                if l % 5 == 0 {
                    l.to_string()
                } else {
                    String::new()
                }
            )
        } else if l % 10 == 0 {
            (l / 10).to_string()
        } else {
            " ".into()
        });
    }
    lines.push(Line::from(truncate_to_width(&header, width)).dim());
    let rows = usize::from(inner.height).saturating_sub(lines.len() + 1);
    let n = r.corrupt_tokens.len();
    let first = sel_pos.saturating_sub(rows.saturating_sub(1));
    for i in first..(first + rows).min(n) {
        let star = if r.differing.contains(&i) { "*" } else { " " };
        let label = truncate_to_width(&chip_label(&r.corrupt_tokens[i].bytes), LABEL);
        let mut spans = vec![Span::from(format!(
            "{}{star} ",
            pad_to_width(&label, LABEL)
        ))];
        for l in layers.clone() {
            let c = grid.and_then(|g| g.cell(l, i));
            let restored = c.and_then(|c| c.restored);
            let g = shade(c.map(|c| c.restored.unwrap_or(0.0)));
            let text = if cell_w == 2 {
                format!("{g}{g}")
            } else {
                g.to_owned()
            };
            let mut style = match restored {
                Some(v) => heat_style(app, v.clamp(0.0, 1.0)),
                None => Style::default(),
            };
            if (l, i) == (sel_layer, sel_pos) {
                style = style.add_modifier(Modifier::REVERSED);
            }
            spans.push(Span::styled(text, style));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::from("* differs · ░▒▓█ share of A's answer back · Alt-↑↓ layer").dim());
    frame.render_widget(Paragraph::new(lines), inner);
}

fn cell_line(r: &TraceReport, c: &Cell) -> String {
    format!(
        "layer {} at {} {}: {:.2}",
        c.layer,
        c.position,
        truncate_to_width(&chip_label(&r.corrupt_tokens[c.position].bytes), 10),
        c.restored.unwrap_or(0.0)
    )
}

fn draw_detail(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(" patched cell ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let r = match shown(app) {
        Ok(r) => r,
        Err(_) => return,
    };
    let (pos, layer) = (shown_position(app).unwrap_or(0), app.trace.layer);
    let mut lines = Vec::new();
    let tok = chip_label(r.corrupt_tokens.get(pos).map_or(&[][..], |t| &t.bytes));
    match app.trace.cell(layer, pos) {
        Some(c) => {
            lines.push(Line::from(format!(
                "layer {layer} at {pos} {tok}, patched:"
            )));
            lines.push(Line::from(vec![
                Span::from(format!("p {:.4}", c.p)).bold(),
                Span::from(match c.restored {
                    Some(v) => format!(" · restored {v:.2}"),
                    None => String::new(),
                }),
            ]));
            if !c.decoded {
                lines.push(Line::from("(this patch is B's own run: not decoded again)").dim());
            }
            for t in c.top_logprobs.iter().take(5) {
                lines.push(Line::from(format!(
                    "  {} {:.4}",
                    pad_to_width(&truncate_to_width(&chip_label(&t.bytes), 12), 12),
                    t.logprob.exp()
                )));
            }
        }
        None if app.trace.done() => lines.push(
            Line::from(format!(
                "layer {layer} at {pos}: nothing patched here (no clean position, or a layer not traced)"
            ))
            .dim(),
        ),
        None => lines.push(Line::from(format!("layer {layer} at {pos}: not computed yet")).dim()),
    }
    lines.push(Line::from(format!(
        "answer {:?}: A {:.4} · B {:.4}",
        display_bytes(&r.answer.bytes),
        r.baselines.clean.p,
        r.baselines.corrupt.p
    )));
    if let Some(note) = &r.alignment {
        lines.push(Line::from(note.clone()).dim());
    }
    if let Some(g) = r.grids.first() {
        lines.push(Line::from("strongest:").dim());
        for c in g.strongest(3) {
            lines.push(Line::from(format!("  {}", cell_line(r, c))));
        }
    }
    frame.render_widget(
        Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: true }),
        inner,
    );
}
