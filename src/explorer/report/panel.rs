//! The corpus report panel's state (apart from its logic in `report`, which the state
//! module must not import).

use std::ops::Range;
use std::sync::Arc;

use crate::analysis::worst::Report;

/// The report and where the walk through it is.
#[derive(Debug, Clone)]
pub struct ReportPanel {
    pub report: Arc<Report>,
    /// The entry the list's cursor is on.
    pub selected: usize,
    /// The entry whose excerpt was put in the line.
    pub opened: Option<Opened>,
}

/// An entry opened: its excerpt, the token's bytes in it, and (once the excerpt is scored)
/// the chip the token is.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    pub entry: usize,
    pub text: String,
    pub token: Range<usize>,
    /// The excerpt's token at the entry's token: its index, and whether it is the same token
    /// (same bytes and id) or the excerpt tokenized that place otherwise.
    pub found: Option<(usize, bool)>,
}

impl ReportPanel {
    pub fn new(report: Report) -> Self {
        Self {
            report: Arc::new(report),
            selected: 0,
            opened: None,
        }
    }

    /// The opened entry when it is the one selected.
    pub fn shown(&self) -> Option<&Opened> {
        self.opened.as_ref().filter(|o| o.entry == self.selected)
    }
}
