//! The corpus report (`--report FILE`, Ctrl-R): the positions `perplexity --worst N --format
//! json` listed, walked with Alt-↑↓. Each entry opens in the sentence line as the text around
//! it, scored live by the model (and the base, with `--vs`), with the token selected; the
//! panel sets the corpus's figures beside the live ones, which differ because the excerpt is
//! a shorter context than the chunk's. Pure; the drawing is `views::report`.

pub mod panel;

pub use panel::{Opened, ReportPanel};

use crate::analysis::blanks::token_offsets;
use crate::explorer::state::{App, Inspect};

/// Ctrl-R: open the panel (and the selected entry, the first time), or close it. `None` (the
/// key goes on) without a report; `Some(text)` is an excerpt to put in the line.
pub fn toggle(app: &mut App) -> Option<Option<String>> {
    let first = app.report.as_ref()?.opened.is_none();
    crate::explorer::inspect::toggle(app, Inspect::Report);
    Some(
        (app.inspect == Inspect::Report && first)
            .then(|| open(app))
            .flatten(),
    )
}

/// Alt-↑↓: the previous or next entry, opened (`Some(Some(text))`; `Some(None)` at either
/// end of the list); `None` (the key goes on) while the panel is closed.
pub fn step(app: &mut App, d: isize) -> Option<Option<String>> {
    if app.inspect != Inspect::Report {
        return None;
    }
    let panel = app.report.as_mut()?;
    let last = panel.report.entries.len().saturating_sub(1);
    let to = panel.selected.saturating_add_signed(d).min(last);
    if to == panel.selected && panel.opened.is_some() {
        return Some(None);
    }
    panel.selected = to;
    Some(open(app))
}

/// Open the selected entry: its excerpt, to be put in the active line.
pub fn open(app: &mut App) -> Option<String> {
    let panel = app.report.as_mut()?;
    let (_, place) = panel.report.entries.get(panel.selected)?;
    let (text, token) = place.excerpt();
    panel.opened = Some(Opened {
        entry: panel.selected,
        text: text.clone(),
        token,
        found: None,
    });
    app.follow_end = false;
    Some(text)
}

/// An evaluation landed: when it is of the opened excerpt, select the entry's token.
pub fn place_selection(app: &mut App) {
    let (Some(scored), Some(vocab)) = (app.scored(), app.vocab()) else {
        return;
    };
    let Some(panel) = app.report.as_ref() else {
        return;
    };
    let Some(o) = panel.opened.as_ref() else {
        return;
    };
    if o.found.is_some() || scored.text != o.text {
        return;
    }
    let (_, place) = &panel.report.entries[o.entry];
    let offsets = token_offsets(vocab, &scored.tokens);
    // The token holding the entry's token's first byte.
    let found = offsets
        .iter()
        .position(|&(a, b)| a <= o.token.start && o.token.start < b)
        .map(|j| {
            let same =
                offsets[j] == (o.token.start, o.token.end) && scored.tokens[j] == place.token_id;
            (j, same)
        });
    let Some((j, same)) = found else {
        return;
    };
    let words = app.word_mode.then(|| app.words());
    if let Some(o) = app.report.as_mut().and_then(|p| p.opened.as_mut()) {
        o.found = Some((j, same));
    }
    app.selected = match words {
        Some(w) => w
            .iter()
            .position(|w| (w.start..w.end).contains(&j))
            .unwrap_or(w.len()),
        None => j,
    };
    app.follow_end = false;
}
