//! The attention panel (F11). Left: a grid of layers × heads at the selected position, each
//! cell the most attended earlier token (clipped) with a glyph as tall as its weight (the
//! non-colour cue) and shaded by it; sliding-window layers are marked `w`. Right: the selected
//! head's row over the sentence, a bar per earlier token, beside the layer's mean over heads;
//! under it the heads with a habit over the whole text (attention sinks, previous-token and
//! induction-like heads) with their share.
//!
//! The position is the one that predicted the selected token (chip j reads at position j−1).

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::lens::{glyph, shown_layers};
use super::style::{heat_style, truncate_to_width};
use crate::analysis::attention::{AttentionView, Habit};
use crate::analysis::vocab::pad_to_width;
use crate::explorer::attention::shown_position;
use crate::explorer::layout::chip_label;
use crate::explorer::state::App;

/// Columns of one grid cell: the token (5), the weight glyph, a gap.
const CELL: u16 = 7;
/// Columns of the layer labels on the left (`17w `).
const GUTTER: u16 = 4;
/// Bar width of a weight in the row list.
const BAR: usize = 8;

/// The label of the token at position `j` of the text shown.
fn token_at(app: &App, j: usize) -> String {
    match (app.scored(), app.vocab()) {
        (Some(s), Some(v)) => s
            .tokens
            .get(j)
            .map_or_else(String::new, |&t| chip_label(v.bytes(t))),
        _ => String::new(),
    }
}

/// The view to draw, or the message to show instead (and whether it is an error).
fn shown(app: &App) -> Result<(usize, &AttentionView), (String, bool)> {
    let Some(position) = shown_position(app) else {
        return Err(("Type a sentence to see what each head reads.".into(), false));
    };
    if let Some(why) = app.attention.unavailable() {
        return Err((format!("Attention unavailable: {why}"), true));
    }
    match app.attention.view_at(position) {
        Some(v) => Ok((position, v)),
        None => Err((
            format!("Reading every head's attention at position {position}…"),
            false,
        )),
    }
}

use super::style::panel_message as message;

/// A bar of `w` (0..=1) in `BAR` cells of eighths.
fn bar(w: f32) -> String {
    pad_to_width(&super::style::eighths_bar(f64::from(w), BAR), BAR)
}

/// The grid: layers × heads at the selected position.
pub fn draw_grid(frame: &mut Frame, app: &App, area: Rect) {
    let title = match shown(app) {
        Ok((p, v)) => format!(
            " attention at {p} ({}) · {} layers × {} heads ",
            truncate_to_width(&token_at(app, p), 8),
            v.facts.n_layer,
            v.facts.n_head
        ),
        Err(_) => " attention ".to_owned(),
    };
    let inner = Block::bordered().inner(area);
    let view = match shown(app) {
        Ok((_, v)) => v,
        Err((text, loud)) => {
            frame.render_widget(Block::bordered().title(title), area);
            return message(frame, inner, text, loud);
        }
    };
    let f = &view.facts;
    let (sel_layer, sel_head) = (app.attention.layer, app.attention.head);
    let rows = inner.height.saturating_sub(1) as usize;
    let layers = shown_layers(f.n_layer, rows);
    let visible = ((inner.width.saturating_sub(GUTTER)) / CELL).max(1) as usize;
    let first_head = sel_head
        .saturating_sub(visible / 2)
        .min(f.n_head.saturating_sub(visible));
    let heads: Vec<usize> = (first_head..f.n_head).take(visible).collect();
    let shown_heads = match (heads.first(), heads.last()) {
        (Some(a), Some(b)) if heads.len() < f.n_head => format!(" heads {a}–{b} of {} ·", f.n_head),
        _ => String::new(),
    };
    let block = Block::bordered().title(title).title_bottom(
        Line::from(format!(
            "{shown_heads} most attended · ▁…█ weight · w window "
        ))
        .right_aligned(),
    );
    frame.render_widget(block, area);
    let mut header = vec![Span::from(" ".repeat(GUTTER as usize))];
    for &h in &heads {
        let style = if h == sel_head {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        };
        header.push(Span::styled(
            pad_to_width(&format!("h{h}"), CELL as usize),
            style,
        ));
    }
    let mut lines = vec![Line::from(header)];
    for &l in &layers {
        let mark = if f.window(l).is_some() { "w" } else { " " };
        let label = format!("{l:>2}{mark} ");
        let label_style = if l == sel_layer {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default().dim()
        };
        let mut spans = vec![Span::styled(label, label_style)];
        for &h in &heads {
            let Some(cell) = view.cell(l, h) else {
                continue;
            };
            let (j, w) = cell.top.first().copied().unwrap_or((0, 0.0));
            let text = format!(
                "{}{}",
                pad_to_width(&truncate_to_width(&token_at(app, j as usize), 5), 5),
                glyph(f64::from(w))
            );
            let mut style = heat_style(app, f64::from(w));
            if (l, h) == (sel_layer, sel_head) {
                style = style.add_modifier(Modifier::REVERSED);
            }
            spans.push(Span::styled(text, style));
            spans.push(Span::from(" "));
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The selected head's row and the layer's mean, then the suspects.
pub fn draw_rows(frame: &mut Frame, app: &App, area: Rect) {
    let (l, h) = (app.attention.layer, app.attention.head);
    let title = match shown(app) {
        Ok((_, v)) => {
            let kv = v.facts.kv_head(h);
            let window = v
                .facts
                .window(l)
                .map_or(String::new(), |w| format!(" · window {w}"));
            format!(" head {l}.{h} (KV {kv}){window} ")
        }
        Err(_) => " head ".to_owned(),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let (position, view) = match shown(app) {
        Ok(s) => s,
        Err((text, loud)) => return message(frame, inner, text, loud),
    };
    let (Some(row), Some(mean)) = (view.head_row(l, h), view.layer_mean(l)) else {
        return message(
            frame,
            inner,
            "This position's whole rows were not kept.".into(),
            true,
        );
    };
    let suspects: Vec<_> = [Habit::First, Habit::Previous, Habit::Induction]
        .iter()
        .flat_map(|&habit| {
            view.suspects
                .iter()
                .filter(move |s| s.habit == habit)
                .take(2)
        })
        .collect();
    let room = (inner.height as usize)
        .saturating_sub(suspects.len() + 3)
        .max(1);
    // Every earlier position in order when they fit, else the most attended ones.
    let mut shown_positions: Vec<usize> = (0..=position).collect();
    if shown_positions.len() > room {
        shown_positions.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        shown_positions.truncate(room);
        shown_positions.sort_unstable();
    }
    let first_visible = view.facts.first_visible(l, position);
    let mut lines: Vec<Line> = vec![Line::from(format!(
        "pos token    {}  head │ layer mean",
        " ".repeat(BAR)
    ))
    .dim()];
    lines.extend(shown_positions.iter().map(|&j| {
        let hidden = j < first_visible;
        let tok = pad_to_width(&truncate_to_width(&token_at(app, j), 8), 8);
        let w = row[j];
        let drawn = if hidden {
            pad_to_width("masked", BAR)
        } else {
            bar(w)
        };
        let spans = vec![
            Span::from(format!("{j:>3} ")).dim(),
            Span::from(tok),
            Span::from(" "),
            Span::styled(drawn, heat_style(app, f64::from(w))),
            Span::from(format!(" {w:.3}")),
            Span::from(format!(" │ {:.3}", mean[j])).dim(),
        ];
        Line::from(spans)
    }));
    if shown_positions.len() < position + 1 {
        lines.push(
            Line::from(format!(
                "… {} positions of {}, most attended",
                shown_positions.len(),
                position + 1
            ))
            .dim(),
        );
    }
    lines.push(Line::from("heads with a habit, whole text:").bold());
    if suspects.is_empty() {
        lines.push(Line::from("  none with half their weight on one").dim());
    }
    for s in suspects {
        lines.push(Line::from(format!(
            "  {:<9} {:>2}.{:<2} {:.2} ({} pos.)",
            s.habit.short(),
            s.layer,
            s.head,
            s.share,
            s.positions
        )));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    use super::{bar, BAR};

    #[test]
    fn bars_grow_in_eighths() {
        assert_eq!(bar(0.0), " ".repeat(BAR));
        assert_eq!(bar(1.0), "█".repeat(BAR));
        assert_eq!(bar(0.05).trim_end(), "▍");
        assert_eq!(bar(0.5).trim_end(), "████");
    }
}
