//! The corpus report panel (Ctrl-R): the listed positions, the selected one marked, and under
//! the list the selected entry's figures in the corpus beside the same figures for the
//! excerpt in the line (its own numbers: a shorter context than the chunk's).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use super::style::truncate_to_width;
use crate::analysis::vocab::sanitize_for_terminal;
use crate::analysis::worst::{Place, Ranking};
use crate::explorer::report::ReportPanel;
use crate::explorer::state::App;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let Some(panel) = app.report.as_ref() else {
        return;
    };
    let entries = &panel.report.entries;
    let ranking = entries.get(panel.selected).map(|(r, _)| r.title());
    let title = format!(
        " corpus report {}/{}: {} ",
        panel.selected + 1,
        entries.len(),
        ranking.unwrap_or("")
    );
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let details = details(app, panel);
    // The details wrapped to the panel's width, under a list of at least half the panel.
    let w = inner.width.max(1) as usize;
    let wrapped: usize = details.iter().map(|l| l.width().div_ceil(w).max(1)).sum();
    let detail_h = (wrapped as u16).min(inner.height / 2).max(1);
    let [list_area, detail_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(detail_h)]).areas(inner);
    let width = list_area.width as usize;
    let rows = list_area.height as usize;
    // Keep the selected entry in view.
    let first = panel.selected.saturating_sub(rows.saturating_sub(1));
    let lines: Vec<Line> = entries
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(i, (ranking, place))| {
            let line = row(i, *ranking, place, width);
            if i == panel.selected {
                Line::from(line).style(Style::default().add_modifier(Modifier::REVERSED))
            } else {
                Line::from(line)
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list_area);
    frame.render_widget(
        Paragraph::new(details).wrap(Wrap { trim: true }),
        detail_area,
    );
}

/// One entry on one line: its number, the list's figure, p, and the text around the token.
fn row(i: usize, ranking: Ranking, p: &Place, width: usize) -> String {
    let figures = match (ranking, p.kld, p.p_base) {
        (Ranking::Kld, Some(kld), Some(pb)) => format!("KLD {kld:>6.3} p {:.3}←{pb:.3}", p.p),
        (_, _, Some(pb)) => format!("Δp {:>+6.3} p {:.3}←{pb:.3}", p.p - pb, p.p),
        _ => format!("p {:.5}", p.p),
    };
    let head = format!("{:>3} {figures}  ", i + 1);
    let room = width.saturating_sub(head.width());
    format!("{head}{}", context(p, room))
}

/// The text around the token in `width` columns: the end of the text before, ⟦token⟧, then
/// what follows while it fits.
fn context(p: &Place, width: usize) -> String {
    let (before, token, after) = (
        sanitize_for_terminal(&p.before),
        sanitize_for_terminal(&p.token),
        sanitize_for_terminal(&p.after),
    );
    let marked = format!("⟦{token}⟧");
    let keep = (width.saturating_sub(marked.width()) * 2 / 3).max(1);
    let tail: String = {
        let rev: String = before.chars().rev().collect();
        truncate_to_width(&rev, keep).chars().rev().collect()
    };
    truncate_to_width(&format!("{tail}{marked}{after}"), width)
}

/// The selected entry as the corpus measured it, and the same figures for the excerpt.
fn details(app: &App, panel: &ReportPanel) -> Vec<Line<'static>> {
    let Some((_, place)) = panel.report.entries.get(panel.selected) else {
        return Vec::new();
    };
    let mut lines = vec![Line::from(vec![
        Span::from("corpus").bold(),
        Span::from(format!(
            " chunk {} pos {} ({} tokens before): {}",
            place.chunk,
            place.pos,
            place.pos + 1,
            figures(place.p, place.p_base, place.kld)
        )),
    ])];
    lines.push(Line::from(vec![
        Span::from("here").bold(),
        Span::from(format!(" {}", here(app, panel, place))),
    ]));
    lines
}

fn figures(p: f64, p_base: Option<f64>, kld: Option<f64>) -> String {
    let mut s = format!("p {p:.4}");
    if let Some(pb) = p_base {
        s.push_str(&format!(", base {pb:.4}"));
    }
    if let Some(k) = kld {
        s.push_str(&format!(", KLD {k:.4} nats"));
    }
    s
}

/// The excerpt's own figures at the token, once it is scored.
fn here(app: &App, panel: &ReportPanel, place: &Place) -> String {
    let Some(opened) = panel.shown() else {
        return "(not opened)".into();
    };
    let Some(scored) = app.scored().filter(|s| s.text == opened.text) else {
        return if app.editor().text() == opened.text {
            "scoring the excerpt…".into()
        } else {
            "the line no longer holds the excerpt (Alt-↑↓ opens an entry again)".into()
        };
    };
    let Some((j, same)) = opened.found else {
        return "the excerpt has no token at this place".into();
    };
    let Some(i) = j.checked_sub(1) else {
        return "the token is the excerpt's first: nothing predicts it".into();
    };
    let temp = if scored.view.temp == 1.0 {
        String::new()
    } else {
        format!(" at T {}", scored.view.temp)
    };
    let differs = if same {
        String::new()
    } else {
        let vocab = app.vocab();
        let t = vocab.map_or_else(String::new, |v| v.display(scored.tokens[j]));
        format!(" (the excerpt tokenizes it as ⟦{t}⟧)")
    };
    let target = |r: &crate::analysis::stats::RowSummary| r.target.map_or(f64::NAN, |t| t.prob);
    let text = match &scored.compare {
        // The explorer's A is -m (the base) and B is --vs (the model measured), as in
        // `perplexity -m BASE --vs MODEL`.
        Some(c) => figures(
            target(&c.b_rows[i]),
            Some(target(&scored.rows[i])),
            Some(c.rows[i].kl_bits * std::f64::consts::LN_2),
        ),
        None => {
            let mut s = figures(target(&scored.rows[i]), None, None);
            if place.p_base.is_some() {
                s.push_str(" (no base here: -m BASE --vs MODEL shows both)");
            }
            s
        }
    };
    format!(
        "(this excerpt, {j} tokens before){temp}: {text}{differs} · a shorter context, its own numbers"
    )
}
