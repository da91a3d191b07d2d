//! Where each part of the screen goes. Shared by the views (which draw there) and by `update`
//! (which maps a mouse click to the chip drawn under it, and keeps the input line scrolled):
//! one layout, so a click always lands on what the user sees.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Block, Borders};
use unicode_width::UnicodeWidthStr;

use crate::analysis::vocab::display_bytes;
use crate::explorer::state::App;

/// Below this the screen only says it is too small.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 12;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub input: Rect,
    pub strip: Rect,
    pub dist: Rect,
    pub side: Rect,
    pub status: Rect,
}

pub fn areas(area: Rect) -> Areas {
    areas_for(area, false)
}

/// The areas of the app's screen: with a minimal pair, two input lines and the aligned strip
/// (three lines a row, and the summary).
pub fn app_areas(app: &App) -> Areas {
    areas_for(
        Rect::new(0, 0, app.size.0, app.size.1),
        app.pair().is_some(),
    )
}

pub fn areas_for(area: Rect, pair: bool) -> Areas {
    let strip = match (pair, area.height >= 30) {
        (false, true) => 6,
        (false, false) => 4,
        (true, true) => 10,
        (true, false) => 7,
    };
    let [input, strip, body, status] = Layout::vertical([
        Constraint::Length(if pair { 4 } else { 3 }),
        Constraint::Length(strip),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    let [dist, side] = if area.width >= 90 {
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body)
    } else {
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(body)
    };
    Areas {
        input,
        strip,
        dist,
        side,
        status,
    }
}

/// Columns of text an input line shows (inside its border, after the `› ` prompt, or the
/// `A › ` of a pair).
pub fn input_text_width(app: &App) -> usize {
    let prompt = if app.pair().is_some() { 4 } else { 2 };
    Block::default()
        .borders(Borders::ALL)
        .inner(app_areas(app).input)
        .width
        .saturating_sub(prompt) as usize
}

/// One chip of the token strip as placed on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chip {
    pub index: usize,
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub label: String,
}

/// How a token is written on its chip: a leading space as `␣`, bytes that are not UTF-8 as
/// `<0xE3>`, control characters escaped, invisible pieces as `<U+FE0F>` (see
/// [`display_bytes`]).
pub fn chip_label(bytes: &[u8]) -> String {
    match bytes.strip_prefix(b" ") {
        Some(rest) => format!("␣{}", display_bytes(rest)),
        None => display_bytes(bytes),
    }
}

/// The chips laid out in `inner` (the strip without its border), scrolled so the selected
/// chip is visible. Chips wider than the strip are cut.
pub fn chip_layout(app: &App, inner: Rect) -> Vec<Chip> {
    let (Some(scored), Some(vocab)) = (app.scored(), app.vocab()) else {
        return Vec::new();
    };
    if inner.width < 2 || inner.height == 0 {
        return Vec::new();
    }
    let labels: Vec<String> = if app.word_mode {
        app.words()
            .iter()
            .map(|w| chip_label(w.text.as_bytes()))
            .collect()
    } else {
        scored
            .tokens
            .iter()
            .map(|&t| chip_label(vocab.bytes(t)))
            .collect()
    };
    let labels = labels
        .into_iter()
        .chain(std::iter::once("▸next".to_owned()));
    // Lay out on unbounded lines first.
    let mut placed = Vec::new();
    let (mut x, mut line) = (0u16, 0u16);
    for (index, label) in labels.enumerate() {
        // One column for the probability glyph, the label, one column of gap.
        let w = (label.width() as u16).saturating_add(1).min(inner.width);
        if x > 0 && x + w > inner.width {
            x = 0;
            line += 1;
        }
        placed.push((index, x, line, w, label));
        x = x.saturating_add(w + 1);
    }
    let sel_line = placed
        .iter()
        .find(|c| c.0 == app.selected)
        .map_or(0, |c| c.2);
    let first = sel_line.saturating_sub(inner.height - 1);
    placed
        .into_iter()
        .filter(|c| c.2 >= first && c.2 < first + inner.height)
        .map(|(index, x, line, width, label)| Chip {
            index,
            x: inner.x + x,
            y: inner.y + line - first,
            width,
            label,
        })
        .collect()
}

/// The token strip's inner area on a screen of the app's size.
pub fn strip_inner(app: &App) -> Rect {
    Block::default()
        .borders(Borders::ALL)
        .inner(app_areas(app).strip)
}

/// The chip under a screen cell, for mouse clicks.
pub fn chip_at(app: &App, col: u16, row: u16) -> Option<usize> {
    if app.size.0 < MIN_WIDTH || app.size.1 < MIN_HEIGHT {
        return None;
    }
    if let Some(report) = app.pair_report() {
        let side =
            |r: &crate::analysis::pairs::AlignedReport| if app.active == 0 { r.a } else { r.b };
        return pair_layout(app, &report, pair_columns_area(strip_inner(app)))
            .into_iter()
            .find(|c| row >= c.y && row < c.y + 3 && col >= c.x && col < c.x + c.width)
            .and_then(|c| side(&report.aligned[c.row]));
    }
    chip_layout(app, strip_inner(app))
        .into_iter()
        .find(|c| c.y == row && col >= c.x && col < c.x + c.width)
        .map(|c| c.index)
}

/// One aligned column of the pair strip: A's token over B's over Δ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairColumn {
    /// The aligned row it shows.
    pub row: usize,
    pub x: u16,
    /// The first of its three lines.
    pub y: u16,
    pub width: u16,
    pub a: String,
    pub b: String,
    pub delta: String,
}

/// The part of the pair strip's inner area that holds the columns (the summary takes the first
/// two lines).
pub fn pair_columns_area(inner: Rect) -> Rect {
    let top = inner.height.min(2);
    Rect::new(inner.x, inner.y + top, inner.width, inner.height - top)
}

/// Δ as a column writes it: its sign as an arrow (▲ B likelier, ▼ less likely), two digits.
pub fn delta_label(delta: f64) -> String {
    if delta == 0.0 {
        "·".into()
    } else {
        format!("{}{:.2}", if delta > 0.0 { '▲' } else { '▼' }, delta.abs())
    }
}

/// The aligned columns laid out in `area` (three lines a row of columns), scrolled so that the
/// selected token's column is visible.
pub fn pair_layout(
    app: &App,
    report: &crate::analysis::pairs::PairReport,
    area: Rect,
) -> Vec<PairColumn> {
    let Some(vocab) = app.vocab() else {
        return Vec::new();
    };
    if area.width < 2 || area.height < 3 {
        return Vec::new();
    }
    let (Some((sa, sb)), selected) = (app.pair(), app.selected_token()) else {
        return Vec::new();
    };
    let label = |s: &crate::explorer::state::Sentence, j: Option<usize>| {
        j.and_then(|j| s.scored.as_ref()?.tokens.get(j).copied())
            .map_or_else(|| "·".to_owned(), |t| chip_label(vocab.bytes(t)))
    };
    let mut placed = Vec::new();
    let (mut x, mut line) = (0u16, 0u16);
    for (row, r) in report.aligned.iter().enumerate() {
        let (a, b) = (label(sa, r.a), label(sb, r.b));
        let delta = match (r.differs, delta_label(r.delta)) {
            (true, d) => format!("≠{}", d.trim_start_matches('·')),
            (false, d) => d,
        };
        let w = (a.width().max(b.width()).max(delta.width()) as u16).min(area.width);
        if x > 0 && x + w > area.width {
            x = 0;
            line += 1;
        }
        placed.push((row, x, line, w, a, b, delta));
        x = x.saturating_add(w + 1);
    }
    let side = |r: &crate::analysis::pairs::AlignedReport| if app.active == 0 { r.a } else { r.b };
    let sel_line = placed
        .iter()
        .find(|c| side(&report.aligned[c.0]) == Some(selected))
        .map_or(0, |c| c.2);
    let lines = area.height / 3;
    let first = sel_line.saturating_sub(lines - 1);
    placed
        .into_iter()
        .filter(|c| c.2 >= first && c.2 < first + lines)
        .map(|(row, x, line, width, a, b, delta)| PairColumn {
            row,
            x: area.x + x,
            y: area.y + (line - first) * 3,
            width,
            a,
            b,
            delta,
        })
        .collect()
}
