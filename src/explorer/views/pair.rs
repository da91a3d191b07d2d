//! The minimal-pair view (Ctrl-P): two sentence lines, their tokens aligned by a diff (A's token
//! over B's over Δ logprob B − A, the differing stretch marked ≠ and underlined, the sign of Δ
//! as ▲/▼ as well as colour), a summary of which sentence the model prefers and where it
//! decides, and the selected position's two distributions side by side.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::style::{style_fg, truncate_to_width};
use crate::analysis::pairs::PairReport;
use crate::analysis::stats::RowSummary;
use crate::analysis::vocab::{pad_to_width, sanitize_for_terminal, Vocab};
use crate::explorer::layout::{chip_label, pair_columns_area, pair_layout};
use crate::explorer::state::{App, Focus};

const NAMES: [&str; 2] = ["A", "B"];

/// The two sentence lines, the active one with the cursor.
pub fn draw_input(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(Line::from(vec![
        " minimal pair ".into(),
        Span::from("(Ctrl-O other line, Ctrl-P closes) ").dim(),
    ]));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = inner.width.saturating_sub(4) as usize;
    for (n, s) in app.sentences.iter().enumerate().take(2) {
        let vp = s.editor.viewport(width, s.input_scroll);
        let shown = &s.editor.text()[vp.start..vp.end];
        let active = n == app.active;
        let prompt = Span::from(format!("{} › ", NAMES[n]));
        let line = Line::from(vec![
            if active { prompt.bold() } else { prompt.dim() },
            Span::from(sanitize_for_terminal(shown)),
        ]);
        let y = inner.y + n as u16;
        if y < inner.y + inner.height {
            frame.render_widget(Paragraph::new(line), Rect::new(inner.x, y, inner.width, 1));
            if active && app.focus == Focus::Text && !app.help {
                frame.set_cursor_position((inner.x + 4 + vp.cursor_col as u16, y));
            }
        }
    }
}

/// The summary of the pair: both totals, Δ, which sentence is preferred and by how much, both
/// perplexities and means, and where the difference first exceeds the threshold.
pub fn summary(report: &PairReport, deciding: &str) -> [String; 2] {
    let preferred = match report.prefers {
        "a" => format!("prefers A, ×{:.3} likelier", report.ratio),
        "b" => format!("prefers B, ×{:.3} likelier", report.ratio),
        _ => "a tie".to_owned(),
    };
    let opt = |v: Option<f64>, d: usize| v.map_or_else(|| "-".into(), |x| format!("{x:.d$}"));
    [
        format!(
            "A {:.3}  B {:.3}  Δ(B−A) {:+.3} nats · {preferred}",
            report.total_a, report.total_b, report.delta
        ),
        format!(
            "ppl {} / {} · mean {} / {} · {}",
            opt(report.perplexity_a, 2),
            opt(report.perplexity_b, 2),
            opt(report.mean_a, 3),
            opt(report.mean_b, 3),
            deciding
        ),
    ]
}

/// The aligned strip with the summary above it.
pub fn draw_strip(frame: &mut Frame, app: &App, area: Rect) {
    let stale = (0..app.sentences.len()).any(|n| app.stale_at(n));
    let mut title = vec![Span::from(" aligned tokens: A over B over Δ logprob ")];
    if stale {
        title.push(Span::from("evaluating… ").italic());
    }
    let block = Block::bordered()
        .title(Line::from(title))
        .title_bottom(Line::from(" ▲ B likelier  ▼ A likelier  ≠ where they differ ").dim());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let errors: Vec<String> = app
        .sentences
        .iter()
        .zip(NAMES)
        .filter_map(|(s, n)| s.eval_error.as_ref().map(|e| format!("{n}: {e}")))
        .collect();
    if !errors.is_empty() {
        let text = sanitize_for_terminal(&errors.join("  "));
        frame.render_widget(Paragraph::new(text).red(), inner);
        return;
    }
    let (Some(report), Some(vocab)) = (app.pair_report(), app.vocab()) else {
        let hint = "Type the second sentence of the pair: both are scored as you type.";
        frame.render_widget(Paragraph::new(hint).dim().wrap(Wrap { trim: true }), inner);
        return;
    };
    let deciding = |r: &PairReport| match &r.deciding {
        Some(d) => {
            let token = match (d.a, d.b) {
                (_, Some(j)) if r.aligned[d.row].token_b.is_some() => label_of(app, 1, j, vocab),
                (Some(j), _) => label_of(app, 0, j, vocab),
                _ => "?".into(),
            };
            format!(
                "decides at {token} (Δ {:+.3}, |Δ| > {})",
                d.delta, d.threshold
            )
        }
        None => format!(
            "no position with |Δ| > {}",
            crate::explorer::state::PAIR_THRESHOLD
        ),
    };
    let [first, second] = summary(&report, &deciding(&report));
    let top = inner.height.min(2);
    let text: Vec<Line> = [first, second]
        .into_iter()
        .take(top as usize)
        .map(Line::from)
        .collect();
    frame.render_widget(
        Paragraph::new(text).bold(),
        Rect::new(inner.x, inner.y, inner.width, top),
    );
    let selected = app.selected_token();
    let buf = frame.buffer_mut();
    for col in pair_layout(app, &report, pair_columns_area(inner)) {
        let row = &report.aligned[col.row];
        let side = if app.active == 0 { row.a } else { row.b };
        let mut label_style = Style::default();
        if row.differs {
            label_style = label_style.add_modifier(Modifier::UNDERLINED | Modifier::BOLD);
        }
        if side == Some(selected) {
            label_style = label_style.add_modifier(Modifier::REVERSED);
        }
        let delta_style = match row.delta {
            d if d > 0.0 => style_fg(app, Color::Green),
            d if d < 0.0 => style_fg(app, Color::Red),
            _ => Style::default().add_modifier(Modifier::DIM),
        };
        let w = col.width as usize;
        buf.set_string(col.x, col.y, truncate_to_width(&col.a, w), label_style);
        buf.set_string(col.x, col.y + 1, truncate_to_width(&col.b, w), label_style);
        buf.set_string(
            col.x,
            col.y + 2,
            truncate_to_width(&col.delta, w),
            delta_style,
        );
    }
}

fn label_of(app: &App, n: usize, j: usize, vocab: &Vocab) -> String {
    app.sentences
        .get(n)
        .and_then(|s| s.scored.as_ref())
        .and_then(|s| s.tokens.get(j))
        .map_or_else(|| "?".into(), |&t| chip_label(vocab.bytes(t)))
}

/// The selected position's distribution in both sentences: the active sentence's selected
/// token and the token aligned with it in the other (the distributions that predicted them),
/// or both "what comes next".
pub fn draw_distribution(frame: &mut Frame, app: &App, area: Rect) {
    let (Some(report), Some(vocab), Some((sa, sb))) = (app.pair_report(), app.vocab(), app.pair())
    else {
        frame.render_widget(Block::bordered().title(" distribution · A vs B "), area);
        return;
    };
    let (Some(a), Some(b)) = (sa.scored.as_ref(), sb.scored.as_ref()) else {
        return;
    };
    let selected = app.selected_token();
    let active_len = if app.active == 0 {
        a.tokens.len()
    } else {
        b.tokens.len()
    };
    // Token j of each side (None: no aligned token), or both at the end.
    let (ja, jb) = if selected >= active_len {
        (Some(a.tokens.len()), Some(b.tokens.len()))
    } else {
        let row = report
            .aligned
            .iter()
            .find(|r| (if app.active == 0 { r.a } else { r.b }) == Some(selected));
        row.map_or((None, None), |r| (r.a, r.b))
    };
    let title = match (ja, jb) {
        _ if selected >= active_len => " what comes next · A vs B ".to_owned(),
        (Some(j), _) if app.active == 0 => {
            format!(" token {j} {} · A vs B ", label_of(app, 0, j, vocab))
        }
        (_, Some(j)) => format!(" token {j} {} · A vs B ", label_of(app, 1, j, vocab)),
        _ => " A vs B ".to_owned(),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    fn row_of(rows: &[RowSummary], j: Option<usize>) -> Option<&RowSummary> {
        j.and_then(|j| j.checked_sub(1)).and_then(|i| rows.get(i))
    }
    let (ra, rb) = (row_of(&a.rows, ja), row_of(&b.rows, jb));
    let mut lines = Vec::new();
    let actual = |name: &str, r: Option<&RowSummary>, j: Option<usize>| match (
        r.and_then(|r| r.target),
        j,
    ) {
        (Some(t), _) => format!(
            "{name}: {} p {:.4} (rank {})",
            chip_label(vocab.bytes(t.id)),
            t.prob,
            t.rank
        ),
        (None, Some(0)) => format!("{name}: first token, nothing predicts it"),
        (None, None) => format!("{name}: no aligned token"),
        (None, Some(_)) => format!("{name}: what comes next"),
    };
    lines.push(Line::from(format!(
        "{}   {}",
        actual("A", ra, ja),
        actual("B", rb, jb)
    )));
    if let (Some(ta), Some(tb)) = (ra.and_then(|r| r.target), rb.and_then(|r| r.target)) {
        lines.push(Line::from(format!(
            "Δ logprob (B − A) {:+.4}",
            tb.logprob - ta.logprob
        )));
    }
    let label_w = ((inner.width as usize).saturating_sub(4) / 2)
        .saturating_sub(12)
        .clamp(4, 14);
    lines.push(
        Line::from(format!(
            "{:>3} {} {:>7}   {} {:>7}",
            "#",
            pad_to_width("A's top", label_w),
            "p",
            pad_to_width("B's top", label_w),
            "p"
        ))
        .bold(),
    );
    let rows_fit = (inner.height as usize).saturating_sub(lines.len());
    let entry = |r: Option<&RowSummary>, k: usize| -> (String, bool) {
        match r.and_then(|r| r.top.get(k).map(|e| (e, r.target))) {
            Some((e, target)) => (
                format!(
                    "{} {:>7.4}",
                    pad_to_width(
                        &truncate_to_width(&chip_label(vocab.bytes(e.id)), label_w),
                        label_w
                    ),
                    e.logprob.exp()
                ),
                target.is_some_and(|t| t.id == e.id),
            ),
            None => (pad_to_width("", label_w + 8), false),
        }
    };
    let marked = Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED);
    for k in 0..rows_fit.min(
        ra.map_or(0, |r| r.top.len())
            .max(rb.map_or(0, |r| r.top.len())),
    ) {
        let ((ta, ma), (tb, mb)) = (entry(ra, k), entry(rb, k));
        lines.push(Line::from(vec![
            Span::from(format!("{:>3} ", k + 1)),
            Span::styled(ta, if ma { marked } else { Style::default() }),
            Span::from(if ma { "◂  " } else { "   " }),
            Span::styled(tb, if mb { marked } else { Style::default() }),
            Span::from(if mb { "◂" } else { "" }),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
