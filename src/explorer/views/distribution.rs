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
    let scored = app.scored()?;
    let i = app.selected_token().checked_sub(1)?;
    scored.rows.get(i).map(|r| (i, r))
}

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let Some(scored) = app.scored() else {
        frame.render_widget(Block::bordered().title(" distribution "), area);
        return;
    };
    let Some(vocab) = app.vocab() else {
        return;
    };
    let n = scored.tokens.len();
    let selected = app.selected_token();
    let word = app
        .word_mode
        .then(|| app.words().get(app.selected).cloned())
        .flatten();
    let title = match &word {
        _ if selected >= n => " what comes next ".to_owned(),
        Some(w) => format!(
            " word {} {} (tokens {}–{}) ",
            app.selected,
            chip_label(w.text.as_bytes()),
            w.start,
            w.end - 1
        ),
        None => format!(
            " token {} {} ",
            selected,
            chip_label(vocab.bytes(scored.tokens[selected]))
        ),
    };
    let title = match (&scored.compare, app.intervention()) {
        (Some(_), Some(label)) => format!("{title}· A {label} vs B intact "),
        (Some(_), None) => format!("{title}· A vs B "),
        (None, _) => title,
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
    if let Some(w) = &word {
        lines.push(
            Line::from(match (w.prob, w.surprisal_bits) {
                (Some(p), Some(s)) => format!(
                    "whole word: p {p:.3e}, surprisal {s:.2} bits{}",
                    if w.partial {
                        " (its first token unscored)"
                    } else {
                        ""
                    }
                ),
                _ => "whole word: nothing predicts it".to_owned(),
            })
            .bold(),
        );
    }
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
    let watched = watch_lines(app, i, row, vocab);
    let rows_fit = (inner.height as usize).saturating_sub(3 + lines.len() - 1 + watched.len());
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
    lines.extend(watched);
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The watched words pinned under the top tokens: their probability and rank here (words of
/// several tokens once the engine has decoded them at this position).
fn watch_lines<'a>(
    app: &App,
    position: usize,
    row: &RowSummary,
    vocab: &crate::analysis::vocab::Vocab,
) -> Vec<Line<'a>> {
    if app.watch.is_empty() {
        return Vec::new();
    }
    let here = app
        .sentence()
        .watch_at
        .as_ref()
        .filter(|(g, p, _)| *g == app.sentence().shown_generation && *p == position)
        .map(|(_, _, v)| v.as_slice());
    let mut out = vec![Line::from("watched").bold()];
    for word in &app.watch {
        let label = pad_to_width(&truncate_to_width(&format!("␣{word}"), 14), 14);
        let from_engine = here.and_then(|v| v.iter().find(|x| &x.word == word));
        let text = match from_engine {
            Some(v) => format!(
                "  {label} {:>9.3e}  {}",
                v.prob,
                v.rank
                    .map_or_else(|| format!("{} tokens", v.tokens), |r| format!("rank {r}"))
            ),
            // One-token words are in every row (shown before the engine answers).
            None => match row
                .watched
                .iter()
                .find(|t| vocab.bytes(t.id) == format!(" {word}").as_bytes())
            {
                Some(t) => format!("  {label} {:>9.3e}  rank {}", t.prob, t.rank),
                None => format!("  {label}  …"),
            },
        };
        out.push(Line::from(text));
    }
    out
}
