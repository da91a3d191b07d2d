//! The one table from keys to actions: `update` looks keys up here, and the help overlay is
//! drawn from the same rows, so the two cannot drift apart; a test holds the README's key
//! table to them too.
//!
//! A key is looked up scope by scope ([`scopes`]: global keys, then the help overlay or the
//! failure screen, then view controls, then the focused line), and within a scope a named key
//! before a wildcard, else in table order; the first binding whose action applies wins. An action may decline (`?` opens help
//! only on an empty line) and the lookup goes on.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Always, before anything else.
    Global,
    /// While the help overlay is open (nothing below it sees the key).
    Help,
    /// After the model failed to load.
    Failed,
    /// View controls, whichever line has the focus.
    View,
    /// The sentence line has the focus.
    Text,
    /// The fill panel's candidate line has the focus.
    Candidates,
    /// The watch-list line has the focus.
    Watch,
}

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    ToggleHelp,
    CloseHelp,
    /// Open help, but only when the sentence is empty (else `?` is text).
    HelpOnEmptyLine,
    Ignore,
    TempDown,
    TempUp,
    FewerRows,
    MoreRows,
    ToggleColor,
    SelectPrev,
    SelectNext,
    SelectFirst,
    SelectLast,
    SwitchFocus,
    /// Type the key's character into the focused line.
    Type,
    DeleteWord,
    ClearLine,
    Backspace,
    Delete,
    Left,
    Right,
    WordLeft,
    WordRight,
    Home,
    End,
    HistoryPrev,
    HistoryNext,
    SaveToHistory,
    LeaveCandidates,
    AddCandidates,
    /// Clear the candidate line; on an empty line, forget the user's candidates.
    ClearCandidates,
    /// Open the watch-list line (with the current list in it).
    EditWatch,
    /// Apply the watch-list line and close it.
    ApplyWatch,
    /// Close the watch-list line unchanged.
    LeaveWatch,
    /// Group the strip's tokens into words, or back.
    ToggleWords,
    /// Write what is shown to a JSON file.
    Export,
    /// Open a second sentence line (a minimal pair), or close it.
    TogglePair,
    /// Edit the other sentence of the pair.
    SwitchSentence,
    /// Open or close the logit lens view.
    ToggleLens,
    /// Open or close the attention panel.
    ToggleAttention,
    /// The attention grid's previous / next layer, previous / next head (decline while the
    /// panel is closed).
    AttentionLayerUp,
    AttentionLayerDown,
    AttentionHeadLeft,
    AttentionHeadRight,
    /// Open or close the H·W panel.
    ToggleHw,
    /// Edit what is switched off in the model.
    EditAblation,
    /// Open or close the attribution panel.
    ToggleAttribution,
    /// The trace view of a minimal pair.
    ToggleTrace,
    TraceLayerUp,
    TraceLayerDown,
    /// The attribution panel's previous / next logit to split (decline while it is closed).
    AttributionTargetUp,
    AttributionTargetDown,
    /// Open or close the corpus report (declines without one).
    ToggleReport,
    /// The corpus report's previous / next position, opened (decline while it is closed).
    ReportUp,
    ReportDown,
}

/// Which keys a binding takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Code(KeyCode),
    /// Any character key (the action uses the character).
    AnyChar,
    /// Any key at all.
    Any,
}

/// Which modifiers a binding accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mods {
    Any,
    Ctrl,
    AltOrShift,
    CtrlOrAlt,
    NoCtrl,
    NoCtrlNoAlt,
}

impl Mods {
    fn accepts(self, m: KeyModifiers) -> bool {
        let ctrl = m.contains(KeyModifiers::CONTROL);
        let alt = m.contains(KeyModifiers::ALT);
        let shift = m.contains(KeyModifiers::SHIFT);
        match self {
            Mods::Any => true,
            Mods::Ctrl => ctrl,
            Mods::AltOrShift => alt || shift,
            Mods::CtrlOrAlt => ctrl || alt,
            Mods::NoCtrl => !ctrl,
            Mods::NoCtrlNoAlt => !ctrl && !alt,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub scope: Scope,
    pub key: Key,
    pub mods: Mods,
    pub action: Action,
}

impl Binding {
    fn matches(&self, key: &KeyEvent) -> bool {
        let key_ok = match self.key {
            Key::Code(c) => c == key.code,
            Key::AnyChar => matches!(key.code, KeyCode::Char(_)),
            Key::Any => true,
        };
        key_ok && self.mods.accepts(key.modifiers)
    }
}

/// A row of the help overlay and the bindings it stands for. Rows with empty `keys` are not
/// shown (the help overlay's own keys, the failure screen, aliases of the candidate line).
pub struct Row {
    /// The keys as the help shows them.
    pub keys: &'static str,
    pub what: &'static str,
    pub bindings: &'static [Binding],
}

const fn b(scope: Scope, key: Key, mods: Mods, action: Action) -> Binding {
    Binding {
        scope,
        key,
        mods,
        action,
    }
}

use Action as A;
use KeyCode as C;
use Mods as M;
use Scope as S;

const fn k(c: KeyCode) -> Key {
    Key::Code(c)
}

/// Every key. Order matters within a scope (first match wins).
pub static KEYMAP: &[Row] = &[
    Row {
        keys: "",
        what: "",
        bindings: &[
            b(S::Global, k(C::Char('c')), M::Ctrl, A::Quit),
            b(S::Global, k(C::F(1)), M::Any, A::ToggleHelp),
            b(S::Help, k(C::Char('q')), M::Any, A::Quit),
            b(S::Help, Key::Any, M::Any, A::CloseHelp),
            b(S::Failed, k(C::Esc), M::Any, A::Quit),
            b(S::Failed, k(C::Char('q')), M::Any, A::Quit),
            b(S::Failed, k(C::Enter), M::Any, A::Quit),
            b(S::Failed, Key::Any, M::Any, A::Ignore),
        ],
    },
    Row {
        keys: "type, paste",
        what: "edit the sentence; re-scored as you type",
        bindings: &[b(S::Text, Key::AnyChar, M::NoCtrlNoAlt, A::Type)],
    },
    Row {
        keys: "← → Home End Ctrl-←→",
        what: "move the cursor: grapheme cluster / word",
        bindings: &[
            b(S::Text, k(C::Left), M::Ctrl, A::WordLeft),
            b(S::Text, k(C::Right), M::Ctrl, A::WordRight),
            b(S::Text, k(C::Left), M::NoCtrl, A::Left),
            b(S::Text, k(C::Right), M::NoCtrl, A::Right),
            b(S::Text, k(C::Home), M::Any, A::Home),
            b(S::Text, k(C::End), M::Any, A::End),
            // Aliases, as in readline.
            b(S::Text, k(C::Char('a')), M::Ctrl, A::Home),
            b(S::Text, k(C::Char('e')), M::Ctrl, A::End),
        ],
    },
    Row {
        keys: "Backspace Delete",
        what: "delete one grapheme cluster",
        bindings: &[
            b(S::Text, k(C::Backspace), M::NoCtrlNoAlt, A::Backspace),
            b(S::Text, k(C::Delete), M::Any, A::Delete),
            b(S::Text, k(C::Char('h')), M::Ctrl, A::Backspace),
        ],
    },
    Row {
        keys: "Ctrl-W  Ctrl-U",
        what: "delete a word / the whole line",
        bindings: &[
            b(S::Text, k(C::Char('w')), M::Ctrl, A::DeleteWord),
            b(S::Text, k(C::Char('u')), M::Ctrl, A::ClearLine),
            b(S::Text, k(C::Backspace), M::CtrlOrAlt, A::DeleteWord),
        ],
    },
    Row {
        keys: "↑ ↓   Enter",
        what: "sentence history / save to history",
        bindings: &[
            b(S::Text, k(C::Up), M::Any, A::HistoryPrev),
            b(S::Text, k(C::Down), M::Any, A::HistoryNext),
            b(S::Text, k(C::Enter), M::Any, A::SaveToHistory),
        ],
    },
    Row {
        keys: "Shift-← →  PgUp PgDn",
        what: "select previous / next token",
        bindings: &[
            b(S::View, k(C::Left), M::AltOrShift, A::SelectPrev),
            b(S::View, k(C::Right), M::AltOrShift, A::SelectNext),
            b(S::View, k(C::PageUp), M::Any, A::SelectPrev),
            b(S::View, k(C::PageDown), M::Any, A::SelectNext),
        ],
    },
    Row {
        keys: "Shift-Home End",
        what: "select first token / what comes next",
        bindings: &[
            b(S::View, k(C::Home), M::AltOrShift, A::SelectFirst),
            b(S::View, k(C::End), M::AltOrShift, A::SelectLast),
        ],
    },
    Row {
        keys: "click, wheel",
        what: "select a token",
        bindings: &[],
    },
    Row {
        keys: "F2 F3",
        what: "temperature down / up",
        bindings: &[
            b(S::View, k(C::F(2)), M::Any, A::TempDown),
            b(S::View, k(C::F(3)), M::Any, A::TempUp),
        ],
    },
    Row {
        keys: "F4 F5",
        what: "fewer / more top-k rows",
        bindings: &[
            b(S::View, k(C::F(4)), M::Any, A::FewerRows),
            b(S::View, k(C::F(5)), M::Any, A::MoreRows),
        ],
    },
    Row {
        keys: "F6",
        what: "colour: GLTR buckets / heat scale",
        bindings: &[b(S::View, k(C::F(6)), M::Any, A::ToggleColor)],
    },
    Row {
        keys: "F7",
        what: "watch-list: words followed everywhere",
        bindings: &[
            b(S::View, k(C::F(7)), M::Any, A::EditWatch),
            b(S::Watch, k(C::F(7)), M::Any, A::LeaveWatch),
        ],
    },
    Row {
        keys: "F8",
        what: "tokens / words (surprisal per word)",
        bindings: &[b(S::View, k(C::F(8)), M::Any, A::ToggleWords)],
    },
    Row {
        keys: "F9 F10",
        what: "logit lens by layer / H·W redone in f64",
        bindings: &[
            b(S::View, k(C::F(9)), M::Any, A::ToggleLens),
            b(S::View, k(C::F(10)), M::Any, A::ToggleHw),
        ],
    },
    Row {
        keys: "F11  Ctrl-T",
        what: "attention: layers × heads at the position",
        bindings: &[
            b(S::View, k(C::F(11)), M::Any, A::ToggleAttention),
            b(S::View, k(C::Char('t')), M::Ctrl, A::ToggleAttention),
        ],
    },
    Row {
        keys: "Alt-↑↓  Ctrl-↑↓",
        what: "attention: Alt-↑↓ layer · Ctrl-↑↓ head",
        bindings: &[
            b(S::View, k(C::Up), M::AltOrShift, A::AttentionLayerUp),
            b(S::View, k(C::Down), M::AltOrShift, A::AttentionLayerDown),
            b(S::View, k(C::Up), M::Ctrl, A::AttentionHeadLeft),
            b(S::View, k(C::Down), M::Ctrl, A::AttentionHeadRight),
        ],
    },
    Row {
        keys: "F12  Ctrl-G  Alt-↑↓",
        what: "attribution of a logit (Alt: which)",
        bindings: &[
            b(S::View, k(C::F(12)), M::Any, A::ToggleAttribution),
            b(S::View, k(C::Char('g')), M::Ctrl, A::ToggleAttribution),
            b(S::View, k(C::Up), M::AltOrShift, A::AttributionTargetUp),
            b(S::View, k(C::Down), M::AltOrShift, A::AttributionTargetDown),
        ],
    },
    Row {
        keys: "Ctrl-Y  Alt-↑↓",
        what: "trace of a pair: A's activations into B",
        bindings: &[
            b(S::View, k(C::Char('y')), M::Ctrl, A::ToggleTrace),
            b(S::View, k(C::Up), M::AltOrShift, A::TraceLayerUp),
            b(S::View, k(C::Down), M::AltOrShift, A::TraceLayerDown),
        ],
    },
    Row {
        keys: "Ctrl-R  Alt-↑↓",
        what: "corpus report: walk the --report list",
        bindings: &[
            b(S::View, k(C::Char('r')), M::Ctrl, A::ToggleReport),
            b(S::View, k(C::Up), M::AltOrShift, A::ReportUp),
            b(S::View, k(C::Down), M::AltOrShift, A::ReportDown),
        ],
    },
    Row {
        keys: "Ctrl-K",
        what: "ablation: switch parts off (attn:3,ffn:5)",
        bindings: &[b(S::View, k(C::Char('k')), M::Ctrl, A::EditAblation)],
    },
    Row {
        keys: "Ctrl-S",
        what: "export what is shown (JSON file)",
        bindings: &[b(S::View, k(C::Char('s')), M::Ctrl, A::Export)],
    },
    Row {
        keys: "Ctrl-P  Ctrl-O",
        what: "minimal pair: second line on/off, switch",
        bindings: &[
            b(S::View, k(C::Char('p')), M::Ctrl, A::TogglePair),
            b(S::View, k(C::Char('o')), M::Ctrl, A::SwitchSentence),
        ],
    },
    Row {
        keys: "",
        what: "",
        bindings: &[
            b(S::Watch, k(C::Enter), M::Any, A::ApplyWatch),
            b(S::Watch, k(C::Esc), M::Any, A::LeaveWatch),
            b(S::Watch, k(C::Char('u')), M::Ctrl, A::ClearLine),
            b(S::Watch, k(C::Char('w')), M::Ctrl, A::DeleteWord),
            b(S::Watch, Key::AnyChar, M::NoCtrl, A::Type),
            b(S::Watch, k(C::Backspace), M::Any, A::Backspace),
            b(S::Watch, k(C::Delete), M::Any, A::Delete),
            b(S::Watch, k(C::Left), M::Any, A::Left),
            b(S::Watch, k(C::Right), M::Any, A::Right),
            b(S::Watch, k(C::Home), M::Any, A::Home),
            b(S::Watch, k(C::End), M::Any, A::End),
        ],
    },
    Row {
        keys: "Tab, Enter",
        what: "blank: type candidates (a,b), add them",
        bindings: &[
            b(S::View, k(C::Tab), M::Any, A::SwitchFocus),
            b(S::View, k(C::BackTab), M::Any, A::SwitchFocus),
            b(S::Candidates, k(C::Enter), M::Any, A::AddCandidates),
        ],
    },
    Row {
        keys: "",
        what: "",
        bindings: &[
            b(S::Candidates, k(C::Esc), M::Any, A::LeaveCandidates),
            b(S::Candidates, k(C::Char('u')), M::Ctrl, A::ClearCandidates),
            b(S::Candidates, k(C::Char('w')), M::Ctrl, A::DeleteWord),
            b(S::Candidates, Key::AnyChar, M::NoCtrl, A::Type),
            b(S::Candidates, k(C::Backspace), M::Any, A::Backspace),
            b(S::Candidates, k(C::Delete), M::Any, A::Delete),
            b(S::Candidates, k(C::Left), M::Any, A::Left),
            b(S::Candidates, k(C::Right), M::Any, A::Right),
            b(S::Candidates, k(C::Home), M::Any, A::Home),
            b(S::Candidates, k(C::End), M::Any, A::End),
        ],
    },
    Row {
        keys: "F1, ? on empty line",
        what: "this help",
        bindings: &[b(S::Text, k(C::Char('?')), M::Any, A::HelpOnEmptyLine)],
    },
    Row {
        keys: "Esc  Ctrl-C  (q here)",
        what: "quit",
        bindings: &[b(S::Text, k(C::Esc), M::Any, A::Quit)],
    },
];

/// The scopes a key goes through, in order, for the given state; `line` is the focused
/// line's scope ([`Scope::Text`], [`Scope::Candidates`] or [`Scope::Watch`]). The watch-list
/// line takes every key but the global ones.
pub fn scopes(help_open: bool, failed: bool, line: Scope) -> Vec<Scope> {
    if help_open {
        vec![S::Global, S::Help]
    } else if failed {
        vec![S::Global, S::Failed]
    } else if line == S::Watch {
        vec![S::Global, S::Watch]
    } else {
        vec![S::Global, S::View, line]
    }
}

/// The bindings that match `key` in `scopes`, in the order they are tried.
pub fn candidates(scopes: &[Scope], key: &KeyEvent) -> Vec<Action> {
    let mut out = Vec::new();
    for &scope in scopes {
        let mut in_scope: Vec<&Binding> = KEYMAP
            .iter()
            .flat_map(|r| r.bindings)
            .filter(|b| b.scope == scope && b.matches(key))
            .collect();
        // A named key before a wildcard (`?` before typing any character); otherwise the
        // table's order.
        in_scope.sort_by_key(|b| match b.key {
            Key::Code(_) => 0,
            Key::AnyChar => 1,
            Key::Any => 2,
        });
        out.extend(in_scope.into_iter().map(|b| b.action));
    }
    out
}

/// The rows the help overlay shows.
pub fn help_rows() -> impl Iterator<Item = &'static Row> {
    KEYMAP.iter().filter(|r| !r.keys.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    #[test]
    fn the_help_shows_every_row_in_the_readme_order() {
        let keys: Vec<&str> = help_rows().map(|r| r.keys).collect();
        assert_eq!(keys.len(), 25);
        assert_eq!(keys[0], "type, paste");
        assert_eq!(keys[24], "Esc  Ctrl-C  (q here)");
    }

    /// The README's key table is the help's rows, in order.
    #[test]
    fn the_readme_lists_every_key_row() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let table: Vec<&str> = readme
            .split("## Keys")
            .nth(1)
            .unwrap_or_default()
            .split("\n## ")
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("| `"))
            .collect();
        let rows: Vec<String> = help_rows()
            .map(|r| format!("| `{}` | {} |", r.keys, r.what))
            .collect();
        assert_eq!(table, rows);
    }

    /// Every function key and named key a shown row binds appears in its label.
    #[test]
    fn labels_name_their_keys() {
        for row in help_rows() {
            for b in row.bindings {
                let name = match b.key {
                    Key::Code(C::F(n)) => format!("F{n}"),
                    Key::Code(C::PageUp) => "PgUp".into(),
                    Key::Code(C::PageDown) => "PgDn".into(),
                    Key::Code(C::Enter) => "Enter".into(),
                    Key::Code(C::Esc) => "Esc".into(),
                    Key::Code(C::Tab) => "Tab".into(),
                    Key::Code(C::Delete) => "Delete".into(),
                    Key::Code(C::Up) => "↑".into(),
                    Key::Code(C::Down) => "↓".into(),
                    Key::Code(C::Left) => "←".into(),
                    Key::Code(C::Right) => "→".into(),
                    Key::Code(C::Home) => "Home".into(),
                    Key::Code(C::End) => "End".into(),
                    Key::Code(C::Char('?')) => "?".into(),
                    Key::Code(C::Char(c)) if b.mods == M::Ctrl => {
                        format!("Ctrl-{}", c.to_ascii_uppercase())
                    }
                    _ => continue,
                };
                let alias = matches!(b.key, Key::Code(C::Char('a' | 'e' | 'h')))
                    || (b.key == Key::Code(C::BackTab))
                    || (b.key == Key::Code(C::Backspace));
                assert!(
                    alias || row.keys.contains(&name),
                    "{:?} is bound in the row {:?} but not named",
                    b.key,
                    row.keys
                );
            }
        }
    }

    #[test]
    fn lookups_follow_scope_and_table_order() {
        let text = scopes(false, false, S::Text);
        let ctrl = KeyModifiers::CONTROL;
        let none = KeyModifiers::NONE;
        assert_eq!(
            candidates(&text, &key(C::Left, ctrl)),
            vec![A::WordLeft],
            "Ctrl-← moves by word"
        );
        assert_eq!(
            candidates(&text, &key(C::Left, KeyModifiers::SHIFT)),
            vec![A::SelectPrev, A::Left]
        );
        assert_eq!(
            candidates(&text, &key(C::Char('?'), KeyModifiers::SHIFT)),
            vec![A::HelpOnEmptyLine, A::Type]
        );
        assert_eq!(candidates(&text, &key(C::Char('c'), ctrl)), vec![A::Quit]);
        let help = scopes(true, false, S::Text);
        assert_eq!(
            candidates(&help, &key(C::Char('x'), none)),
            vec![A::CloseHelp]
        );
        let cand = scopes(false, false, S::Candidates);
        assert_eq!(
            candidates(&cand, &key(C::Esc, none)),
            vec![A::LeaveCandidates]
        );
    }
}
