//! The attribution panel (F12). Left: the logit of one token at the selected position split
//! into the embedding's, each layer's attention's and MLP's shares, largest first, each a
//! signed bar about a middle axis (negative to the left, and the sign written: the non-colour
//! cue), with the parts' sum beside the f64 product and llama.cpp's logit and the H·W panel's
//! rounding. Right: the attention layers that matter most, each with its heads' largest
//! shares.

use ratatui::layout::Rect;
use ratatui::style::{Color, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::style::{style_fg, truncate_to_width};
use crate::analysis::attribution::{Attribution, Kind};
use crate::analysis::vocab::pad_to_width;
use crate::explorer::attribution::{shown, target_id};
use crate::explorer::layout::chip_label;
use crate::explorer::state::App;

/// Columns of a part's label (`attn:29`).
const LABEL: usize = 8;
/// Columns of a value (`+13.03`).
const VALUE: usize = 8;
/// Heads listed per attention layer.
const HEADS: usize = 3;

/// What to draw, or the message to show instead (and whether it is an error).
fn answer(app: &App) -> Result<&Attribution, (String, bool)> {
    let Some((position, target)) = shown(app) else {
        return Err((
            "Type a sentence to see which layers make each logit.".into(),
            false,
        ));
    };
    if let Some(a) = app.attribution.at(position, target) {
        return Ok(a);
    }
    match app.attribution.slot.answer() {
        Some(((p, t), Err(why))) if (*p, *t) == (position, target) => {
            Err((format!("Attribution unavailable: {why}"), true))
        }
        _ => Err((
            format!("Splitting the logit at position {position} into its parts…"),
            false,
        )),
    }
}

use super::style::panel_message as message;

/// `v` as a bar of `half` cells on its side of a middle axis `│` (eighths at the tip).
fn signed_bar(v: f64, max: f64, half: usize) -> String {
    let bar = super::style::eighths_bar(if max > 0.0 { v.abs() / max } else { 0.0 }, half);
    let blank = " ".repeat(half);
    if v < 0.0 {
        // Grows leftwards from the axis: padded on the left.
        let pad = half.saturating_sub(bar.chars().count());
        format!("{}{bar}│{blank}", " ".repeat(pad))
    } else {
        format!("{blank}│{}", pad_to_width(&bar, half))
    }
}

/// The parts, largest first, as bars about an axis.
pub fn draw_parts(frame: &mut Frame, app: &App, area: Rect) {
    let title = match (shown(app), app.vocab()) {
        (Some((p, t)), Some(v)) => match target_id(app, p, t) {
            Some(id) => format!(
                " attribution at {p} · logit of {} ",
                truncate_to_width(&chip_label(v.bytes(id)), 12)
            ),
            None => format!(" attribution at {p} "),
        },
        _ => " attribution ".to_owned(),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let a = match answer(app) {
        Ok(a) => a,
        Err((text, loud)) => return message(frame, inner, text, loud),
    };
    let width = usize::from(inner.width);
    let mut lines = vec![
        Line::from(format!(
            "Σ parts {:.4} · f64 {:.4} · llama.cpp {:.4}",
            a.sum, a.logit_f64, a.llama
        )),
        Line::from(format!(
            "(the H·W panel's rounding here: ≤ {:.2e})",
            a.rounding
        ))
        .dim(),
    ];
    if let Some(post) = &a.post {
        lines.push(Line::from(post.clone()).dim());
    }
    let half = width.saturating_sub(LABEL + VALUE + 3) / 2;
    let ranked = a.ranked();
    let max = ranked.first().map_or(0.0, |p| p.value.abs());
    let rows = usize::from(inner.height).saturating_sub(lines.len() + 1);
    for p in ranked.iter().take(rows) {
        let colour = if p.value < 0.0 {
            Color::Red
        } else {
            Color::Green
        };
        let label = match p.kind {
            Kind::Rest => "rest".to_owned(),
            _ => p.part.clone(),
        };
        lines.push(Line::from(vec![
            Span::from(pad_to_width(&label, LABEL)),
            Span::styled(signed_bar(p.value, max, half), style_fg(app, colour)),
            Span::from(format!(" {:>+w$.3}", p.value, w = VALUE)),
        ]));
    }
    if ranked.len() > rows {
        lines.push(
            Line::from(format!(
                "… {} smaller parts (their sum is in Σ)",
                ranked.len() - rows
            ))
            .dim(),
        );
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The attention layers with the largest shares, each with its heads' largest.
pub fn draw_heads(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(" heads of the largest attention parts ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let a = match answer(app) {
        Ok(a) => a,
        Err((text, _)) => return message(frame, inner, text, false),
    };
    let Some(heads) = &a.heads else {
        let why = a.heads_unavailable.as_deref().unwrap_or("no heads");
        return message(
            frame,
            inner,
            format!("Per-head shares unavailable: {why}"),
            true,
        );
    };
    let mut lines = Vec::new();
    let attn = a
        .ranked()
        .into_iter()
        .filter(|p| p.kind == Kind::Attn)
        .filter_map(|p| Some((p, heads.iter().find(|h| Some(h.layer) == p.layer)?)));
    let rows = usize::from(inner.height).saturating_sub(2);
    // Heads that fit beside the label and the layer's value (`h12 +0.50  `: 11 columns).
    let fit = (usize::from(inner.width).saturating_sub(LABEL + 9) / 11).clamp(1, HEADS);
    for (p, layer) in attn.take(rows) {
        let tops: Vec<String> = a
            .top_heads(layer.layer, fit)
            .into_iter()
            .map(|(h, v)| format!("h{h} {v:+.2}"))
            .collect();
        lines.push(Line::from(vec![
            Span::from(pad_to_width(&p.part, LABEL)),
            Span::from(format!("{:>+7.2}  ", p.value)).bold(),
            Span::from(tops.join("  ")),
        ]));
    }
    lines.push(
        Line::from("heads: their slice through the output projection; Alt-↑↓ another token").dim(),
    );
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_grow_away_from_the_axis() {
        assert_eq!(signed_bar(1.0, 1.0, 3), "   │███");
        assert_eq!(signed_bar(-1.0, 1.0, 3), "███│   ");
        assert_eq!(signed_bar(-0.5, 1.0, 2), " █│  ");
        assert_eq!(signed_bar(0.0, 0.0, 2), "  │  ");
    }
}
