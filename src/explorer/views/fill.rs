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
    let title = match app.fill().progress {
        Some((b, _, t)) if t > 0 && app.fill().searched > 0 => format!(
            " fill-in: searching blank {} … {} words ",
            b + 1,
            thousands(app.fill().searched)
        ),
        Some((b, d, t)) if t > 0 => format!(" fill-in: re-scoring blank {} … {d}/{t} ", b + 1),
        Some(_) => " fill-in: scoring… ".to_owned(),
        None => " fill-in: left context vs whole sentence ".to_owned(),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [body, input] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    let mut lines = Vec::new();
    if let Some(err) = &app.fill().error {
        lines.push(
            Line::from(crate::analysis::vocab::sanitize_for_terminal(
                &err.to_string(),
            ))
            .red(),
        );
    }
    if let Some(report) = &app.fill().report {
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
        // A bar while candidates are scored: done of planned.
        if let Some((_, done, total)) = app.fill().progress.filter(|p| p.2 > 0) {
            let w = body.width.saturating_sub(14).max(4) as usize;
            let filled = (done.min(total) * w).checked_div(total).unwrap_or(0);
            lines.push(Line::from(format!(
                "{}{} {done}/{total}",
                "█".repeat(filled),
                "·".repeat(w - filled)
            )));
        }
        let per_blank = (body.height as usize / report.blanks.len().max(1)).max(3);
        for b in &report.blanks {
            if report.blanks.len() > 1 {
                lines.push(Line::from(format!("blank {}", b.index + 1)).bold());
            }
            if let Some(c) = &b.coverage {
                let what = if c.complete {
                    format!(
                        "searched all {} words: exact",
                        thousands(c.vocabulary_words)
                    )
                } else {
                    let budget = match c.budget {
                        crate::analysis::search::Budget::Millis(_) => {
                            format!(" ({} budget)", c.budget)
                        }
                        _ => String::new(),
                    };
                    format!(
                        "searched {} of {} words{budget}",
                        thousands(c.searched),
                        thousands(c.vocabulary_words)
                    )
                };
                lines.push(Line::from(format!("{what}   + found by search  ? asked")).dim());
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
                let no_left = b.left_top_logprobs.is_empty() && b.left_entropy_bits.is_none();
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
                    .unwrap_or_else(|| {
                        if no_left && i == 0 {
                            "no left context".to_owned()
                        } else {
                            String::new()
                        }
                    });
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
                            match c.source {
                                "user" => "*",
                                "search" => "+",
                                "asked" => "?",
                                _ => " ",
                            },
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
    } else if app.fill().error.is_none() {
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
    let vp = app.fill().input.viewport(w, app.fill().input_scroll);
    let mut spans = vec![Span::from(prefix).dim()];
    spans.push(Span::from(crate::analysis::vocab::sanitize_for_terminal(
        &app.fill().input.text()[vp.start..vp.end],
    )));
    if !app.fill().candidates.is_empty() && !focused {
        spans.push(Span::from(format!("(yours: {})", app.fill().candidates.join(", "))).dim());
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), input);
    if focused && !app.help {
        frame.set_cursor_position((
            input.x + prefix.width() as u16 + vp.cursor_col as u16,
            input.y,
        ));
    }
}

/// 31664 → "31,664".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
