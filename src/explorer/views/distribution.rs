//! The distribution panel: the top tokens of the selected position, the actual token marked.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::style::truncate_to_width;
use crate::analysis::stats::{max_entropy_bits, RowSummary};
use crate::analysis::vocab::pad_to_width;
use crate::explorer::layout::chip_label;
use crate::explorer::state::App;
/// The distribution a chip shows: for token j, p_{j-1}; for the "next" chip, p_{n-1}.
fn selected_row(app: &App) -> Option<(usize, &RowSummary)> {
    let scored = app.scored.as_ref()?;
    let i = app.selected.checked_sub(1)?;
    scored.rows.get(i).map(|r| (i, r))
}

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let Some(scored) = &app.scored else {
        frame.render_widget(Block::bordered().title(" distribution "), area);
        return;
    };
    let Some(vocab) = app.vocab() else {
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
    let title = if scored.compare.is_some() {
        format!("{title}· A vs B ")
    } else {
        title
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some((i, row)) = selected_row(app) else {
        frame.render_widget(
            Paragraph::new("Nothing predicts the first token: this model adds no BOS token.")
                .dim()
                .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    };
    if let Some(c) = &scored.compare {
        if let (Some(b), Some(cmp)) = (c.b_rows.get(i), c.rows.get(i)) {
            super::compare::draw(frame, inner, vocab, row, b, cmp);
            return;
        }
    }
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
                "{:>3} {} {} {:>7.4} {:>8.3}{}",
                rank0 + 1,
                pad_to_width(&label, label_w),
                bar,
                p,
                e.logprob,
                if is_actual { " ◂ actual" } else { "" },
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
