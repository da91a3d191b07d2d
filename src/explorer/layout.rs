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
    let [input, strip, body, status] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(if area.height >= 30 { 6 } else { 4 }),
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

/// Columns of text the input line shows for a screen of `size` (inside its border, after the
/// `› ` prompt).
pub fn input_text_width(size: (u16, u16)) -> usize {
    let input = areas(Rect::new(0, 0, size.0, size.1)).input;
    Block::default()
        .borders(Borders::ALL)
        .inner(input)
        .width
        .saturating_sub(2) as usize
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
    let area = Rect::new(0, 0, app.size.0, app.size.1);
    Block::default()
        .borders(Borders::ALL)
        .inner(areas(area).strip)
}

/// The chip under a screen cell, for mouse clicks.
pub fn chip_at(app: &App, col: u16, row: u16) -> Option<usize> {
    if app.size.0 < MIN_WIDTH || app.size.1 < MIN_HEIGHT {
        return None;
    }
    chip_layout(app, strip_inner(app))
        .into_iter()
        .find(|c| c.y == row && col >= c.x && col < c.x + c.width)
        .map(|c| c.index)
}
