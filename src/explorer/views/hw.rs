//! The H·W panel (F10): the selected position's final hidden state h (its size, norm and
//! largest components), the output matrix W (shape, GGUF tensor, type, tied or not), and the
//! top tokens' logits computed here as h · W[:, token] in f64 from the dequantized tensor,
//! beside llama.cpp's own, with the largest difference over the whole row.

use ratatui::layout::Rect;
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::style::truncate_to_width;
use crate::analysis::lens::HwReport;
use crate::analysis::vocab::{pad_to_width, Vocab};
use crate::explorer::layout::chip_label;
use crate::explorer::state::App;

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let predicts = app.scored().zip(app.vocab()).and_then(|(s, v)| {
        let p = app.selected_position()?;
        Some(match s.tokens.get(p + 1) {
            Some(&t) => format!(
                " H·W at position {p} · predicts {} ",
                chip_label(v.bytes(t))
            ),
            None => format!(" H·W at position {p} · what comes next "),
        })
    });
    let block = Block::bordered().title(predicts.unwrap_or_else(|| " H·W ".to_owned()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let say = |frame: &mut Frame, text: String| {
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner)
    };
    if let Some(e) = app.lens.error() {
        return say(frame, format!("H·W failed: {e}"));
    }
    if let Some(s) = app.lens.status().filter(|s| !s.available) {
        return say(
            frame,
            format!(
                "H·W unavailable for this model: {}",
                s.reason.as_deref().unwrap_or("no reason given")
            ),
        );
    }
    let Some(position) = app.selected_position() else {
        return say(
            frame,
            "Nothing predicts the first token: select a later one.".into(),
        );
    };
    let (Some(hw), Some(vocab)) = (
        app.lens.hw().filter(|h| h.position == position),
        app.vocab(),
    ) else {
        return say(frame, "Computing h · W for this position…".into());
    };
    let lines = lines(hw, vocab, inner.width as usize);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// A one-line picture of |h| over its dimensions: each character the largest |h_j| of its
/// share of the dimensions, on a scale to the largest of all.
pub fn sparkline(h: &[f32], width: usize) -> String {
    let width = width.clamp(1, h.len().max(1));
    let max = h.iter().fold(0f32, |m, x| m.max(x.abs()));
    (0..width)
        .map(|c| {
            let (a, b) = (
                c * h.len() / width,
                ((c + 1) * h.len() / width).max(c * h.len() / width + 1),
            );
            let m = h[a..b.min(h.len())]
                .iter()
                .fold(0f32, |m, x| m.max(x.abs()));
            let level = if max > 0.0 {
                (m / max * 7.0).round() as usize
            } else {
                0
            };
            SPARK[level.min(7)]
        })
        .collect()
}

fn lines<'a>(hw: &HwReport, vocab: &Vocab, width: usize) -> Vec<Line<'a>> {
    let f = &hw.facts;
    let mut out = vec![
        Line::from(vec![
            Span::from("h").bold(),
            Span::from(format!(
                " = final norm of layer {}: {} dims, ‖h‖ {:.2} (residual ‖x‖ {:.2})",
                f.n_layer - 1,
                f.n_embd,
                hw.h_norm,
                hw.residual_norm
            )),
        ]),
        Line::from(format!(
            "  largest: {}",
            hw.h_top
                .iter()
                .take(5)
                .map(|(i, v)| format!("[{i}] {v:+.2}"))
                .collect::<Vec<_>>()
                .join("  ")
        )),
    ];
    if !hw.h.is_empty() {
        let picture = sparkline(&hw.h, width.saturating_sub(6));
        out.push(Line::from(format!("  |h| {picture}")).dim());
    }
    out.push(Line::from(vec![
        Span::from("W").bold(),
        Span::from(format!(
            " = {}: {} × {}, {}{}",
            f.w,
            f.n_embd,
            f.n_vocab,
            f.w_type,
            if f.tied {
                ", tied to the token embeddings"
            } else {
                ""
            }
        )),
    ]));
    out.push(Line::from(format!(
        "  final norm: {}; after H·W: {}",
        f.norm,
        f.post.as_deref().unwrap_or("nothing")
    )));
    out.push(
        Line::from(format!(
            "{}  {:>12} {:>12} {:>9}",
            pad_to_width("token", 14),
            "ours (f64)",
            "llama.cpp",
            "Δ"
        ))
        .dim(),
    );
    for t in &hw.tokens {
        let label = pad_to_width(&truncate_to_width(&chip_label(vocab.bytes(t.id)), 14), 14);
        out.push(Line::from(format!(
            "{label}  {:>12.5} {:>12.5} {:>+9.1e}",
            t.exact,
            t.llama,
            t.exact - f64::from(t.llama)
        )));
    }
    out.push(Line::from(format!(
        "max |Δ| over all {} logits: {:.2e}",
        f.n_vocab, hw.max_abs_delta
    )));
    if let Some(r) = hw.max_abs_delta_rounded {
        out.push(
            Line::from(format!(
                "llama.cpp rounds h to {} before the product; with h rounded so: {r:.1e}",
                hw.dot_type
            ))
            .dim(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_pools_magnitudes() {
        let h = [0.0, -4.0, 1.0, 2.0];
        assert_eq!(sparkline(&h, 2), "█▅");
        assert_eq!(sparkline(&h, 4).chars().count(), 4);
        assert_eq!(sparkline(&h, 99).chars().count(), 4);
        assert_eq!(sparkline(&[0.0; 3], 3), "▁▁▁");
    }
}
