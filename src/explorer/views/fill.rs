//! The fill-in panel: the left context's guesses beside the candidates ranked by the whole
//! sentence, and the line where the user adds candidates.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use super::style::truncate_to_width;
use crate::analysis::vocab::{display_bytes, pad_to_width};
use crate::explorer::layout::chip_label;
use crate::explorer::state::{App, Focus};
pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
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
        lines.push(Line::from(crate::analysis::vocab::sanitize_for_terminal(err)).red());
    }
    if let Some(report) = &app.fill.report {
        let Some(vocab) = app.vocab() else {
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
                            "{} {:.3}",
                            pad_to_width(&truncate_to_width(&chip_label(vocab.bytes(e.id)), 9), 9),
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
                            "{}{} {:.3} {:>3}",
                            if c.source == "user" { "*" } else { " " },
                            pad_to_width(
                                &truncate_to_width(&display_bytes(c.text.as_bytes()), 9),
                                9
                            ),
                            c.posterior,
                            mv,
                        )
                    })
                    .unwrap_or_default();
                if left.is_empty() && right.is_empty() {
                    break;
                }
                lines.push(Line::from(format!(
                    "{i:>2} {} {right}",
                    pad_to_width(&left, 15),
                    i = i + 1
                )));
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
    spans.push(Span::from(crate::analysis::vocab::sanitize_for_terminal(
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
