//! The token strip: every token as a chip, marked by how likely the model found it.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::style::{
    bucket, bucket_style, divergence_bucket, divergence_style, heat_style, BUCKET_GLYPHS,
};
use crate::explorer::layout::chip_layout;
use crate::explorer::state::{App, ColorMode};

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let mut title = vec![Span::from(" tokens ")];
    if let Some(s) = app.scored().filter(|s| s.tokens.len() < s.n_tokens_total) {
        title.push(
            Span::from(format!(
                "· first {} of {} (context full, -c to enlarge) ",
                s.tokens.len(),
                s.n_tokens_total
            ))
            .bold(),
        );
    }
    if !app.fill_spans().is_empty() {
        title.push(Span::from("· blanks hold their best fill (underlined) ").italic());
    }
    if app.stale() {
        title.push(Span::from("evaluating… ").italic());
    }
    let title = Line::from(title);
    let block = Block::bordered().title(title).title_bottom(
        Line::from(match app.color {
            _ if app.word_mode => {
                " words: █ p≥0.5  ▆ ≥0.05  ▃ ≥0.001  ▁ below (p of the whole word) "
            }
            ColorMode::Buckets => " █ top-1  ▆ top-10  ▃ top-100  ▁ beyond ",
            ColorMode::Heat => " █ p≥0.5  ▆ ≥0.05  ▃ ≥0.001  ▁ below (heat colour = log p) ",
            ColorMode::Divergence => {
                " A vs B: █ KL≥1 bit  ▆ ≥0.1  ▃ ≥0.01  ▁ below (taller = they disagree more) "
            }
        })
        .dim(),
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(err) = &app.sentence().eval_error {
        frame.render_widget(
            Paragraph::new(crate::analysis::vocab::sanitize_for_terminal(
                &err.to_string(),
            ))
            .red(),
            inner,
        );
        return;
    }
    let Some(scored) = app.scored() else {
        let hint = if app.editor().text().is_empty() {
            "Start typing: every token appears here, marked by how likely the model found it."
        } else {
            ""
        };
        frame.render_widget(Paragraph::new(hint).dim().wrap(Wrap { trim: true }), inner);
        return;
    };
    // Tokens of the fills (the best candidate written into each blank) are underlined.
    let spans = app.fill_spans();
    let filled: Vec<bool> = match app.vocab() {
        Some(vocab) if !spans.is_empty() && scored.text == app.display_text() => {
            crate::analysis::blanks::token_offsets(vocab, &scored.tokens)
                .iter()
                .map(|&(s, e)| spans.iter().any(|&(fs, fe)| s < fe && e > fs))
                .collect()
        }
        _ => Vec::new(),
    };
    let words = if app.word_mode {
        app.words()
    } else {
        Vec::new()
    };
    let buf = frame.buffer_mut();
    for chip in chip_layout(app, inner) {
        let (glyph, style) = if app.word_mode {
            match words.get(chip.index) {
                Some(w) => match w.prob.filter(|_| !w.partial) {
                    Some(p) => (
                        BUCKET_GLYPHS[match p {
                            p if p >= 0.5 => 0,
                            p if p >= 0.05 => 1,
                            p if p >= 0.001 => 2,
                            _ => 3,
                        }],
                        heat_style(app, p),
                    ),
                    None => ("·", bucket_style(app, None, None)),
                },
                None => (" ", Style::default().fg(Color::Cyan)),
            }
        } else if chip.index < scored.tokens.len() {
            let row = chip.index.checked_sub(1);
            let target = row.and_then(|i| scored.rows.get(i)).and_then(|r| r.target);
            let kl = row
                .and_then(|i| scored.compare.as_ref()?.rows.get(i))
                .map(|c| c.kl_bits);
            match (app.color, target, kl) {
                (_, None, _) => ("·", bucket_style(app, None, None)),
                (ColorMode::Divergence, _, Some(kl)) => {
                    let b = divergence_bucket(kl);
                    (BUCKET_GLYPHS[3 - b], divergence_style(app, b))
                }
                (ColorMode::Heat, Some(t), _) => (
                    BUCKET_GLYPHS[match t.prob {
                        p if p >= 0.5 => 0,
                        p if p >= 0.05 => 1,
                        p if p >= 0.001 => 2,
                        _ => 3,
                    }],
                    bucket_style(app, Some(t.rank), Some(t.prob)),
                ),
                (_, Some(t), _) => (
                    BUCKET_GLYPHS[bucket(t.rank)],
                    bucket_style(app, Some(t.rank), Some(t.prob)),
                ),
            }
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
        let style = if !app.word_mode && filled.get(chip.index).copied().unwrap_or(false) {
            style.add_modifier(Modifier::UNDERLINED | Modifier::ITALIC)
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
