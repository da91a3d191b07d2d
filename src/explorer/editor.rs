//! Pure state of a single-line text input: text, cursor, horizontal scrolling
//! and input history.
//!
//! Nothing here touches the terminal, so every key binding can be tested
//! without a TTY; the caller maps key events onto these methods and draws
//! `&editor.text()[viewport.start..viewport.end]`.
//!
//! Positions are byte offsets into the UTF-8 text, but every method keeps the
//! cursor on a grapheme-cluster boundary: a user perceives 👩‍👩‍👧‍👦, `e` +
//! U+0301 or 🇯🇵 as one character, so one key press must move over or delete
//! the whole cluster, never leave half of it behind.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// Terminal columns taken by one grapheme cluster.
///
/// Measured on the whole cluster (not summed per `char`) so a ZWJ family or a
/// flag counts as the single two-column glyph the terminal draws.
fn cluster_width(g: &str) -> usize {
    g.width()
}

/// Characters that would break a one-line display: control characters move
/// the terminal cursor or start escape sequences, and the Unicode line and
/// paragraph separators are newlines in disguise.
fn is_breaking(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// Makes pasted or programmatic text safe for a single line: each breaking
/// character becomes one space, and a CR LF pair (a Windows newline) becomes
/// a single space, so a pasted multi-line snippet keeps its word separation.
fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            chars.next();
        }
        out.push(if is_breaking(c) { ' ' } else { c });
    }
    out
}

/// Characters that word motions skip over, like readline skips non-word
/// characters: whitespace, punctuation (ASCII, Latin-1, General/Supplemental
/// Punctuation, CJK and full-width punctuation) and invisible format
/// characters. Everything else, including emoji, forms a word, so Ctrl-W
/// after an emoji deletes the emoji rather than the word before it.
fn is_separator(c: char) -> bool {
    // Full-width forms U+FF01..=U+FF5E mirror ASCII at an offset of 0xFEE0.
    let full_width_ascii = char::from_u32(u32::from(c).wrapping_sub(0xfee0));
    c.is_whitespace()
        || c.is_ascii_punctuation()
        || full_width_ascii.is_some_and(|a| a.is_ascii_punctuation())
        || matches!(c, '¡' | '§' | '«' | '¶' | '·' | '»' | '¿' | '\u{feff}')
        || matches!(c, '\u{200b}'..='\u{2027}' | '\u{2030}'..='\u{206f}')
        || matches!(c, '\u{2e00}'..='\u{2e7f}' | '\u{3001}'..='\u{3003}' | '\u{3008}'..='\u{301f}')
}

/// A Unicode word-bound segment is a word when it has anything but separators.
fn is_word(segment: &str) -> bool {
    segment.chars().any(|c| !is_separator(c))
}

/// What to draw of a [`LineEditor`] in a window of a given width.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Viewport {
    /// Byte offset of the first visible grapheme cluster.
    pub start: usize,
    /// Byte offset just past the last cluster that fits entirely; a wide
    /// character that would be cut at the right edge is left out.
    pub end: usize,
    /// Window column to place the terminal cursor at (`< width` when
    /// `width > 0`).
    pub cursor_col: usize,
    /// Display column of `start` within the whole text. Pass it back as the
    /// next `scroll_hint` so the view only scrolls when the cursor would
    /// leave it, instead of re-centring on every keystroke.
    pub scroll: usize,
}

/// Single-line input state. Invariants: `cursor <= text.len()`, `cursor` is
/// on a grapheme-cluster boundary, and `text` holds no breaking characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineEditor {
    text: String,
    /// Byte offset, always on a grapheme-cluster boundary.
    cursor: usize,
}

impl LineEditor {
    /// An empty line.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts with `s` (sanitised like a paste), cursor at the end, where a
    /// user continues typing a pre-filled value.
    pub fn with_text(s: &str) -> Self {
        let mut editor = Self::new();
        editor.set_text(s);
        editor
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Cursor as a byte offset into [`Self::text`].
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Replaces the whole line (e.g. with a history entry), cursor at the end.
    /// Sanitised so the no-control-characters invariant holds on every path.
    pub fn set_text(&mut self, s: &str) {
        self.text = sanitize(s);
        self.cursor = self.text.len();
    }

    /// Types one character; a control character (Tab, Enter leaking through)
    /// becomes a space for the same reason as in [`Self::insert_str`].
    pub fn insert_char(&mut self, c: char) {
        let mut buf = [0; 4];
        self.insert_str(c.encode_utf8(&mut buf));
    }

    /// Inserts a paste at the cursor. Newlines, tabs and other control
    /// characters become single spaces (CR LF counts once) because the line
    /// cannot show them and escape sequences would garble the terminal.
    ///
    /// Inserted text can merge with the cluster after it (a combining accent
    /// typed before a lone mark, a regional indicator before another), so the
    /// cursor moves to the end of the cluster it lands in.
    pub fn insert_str(&mut self, s: &str) {
        let clean = sanitize(s);
        self.text.insert_str(self.cursor, &clean);
        self.cursor = self.ceil_boundary(self.cursor + clean.len());
    }

    /// Backspace: removes the whole grapheme cluster before the cursor.
    /// Returns whether the text changed, so the caller can skip a redraw.
    pub fn backspace(&mut self) -> bool {
        let start = self.floor_boundary(self.cursor.saturating_sub(1));
        self.remove(start, self.cursor)
    }

    /// Delete: removes the whole grapheme cluster after the cursor.
    pub fn delete(&mut self) -> bool {
        let end = self.ceil_boundary(self.cursor + 1);
        self.remove(self.cursor, end)
    }

    pub fn left(&mut self) {
        self.cursor = self.floor_boundary(self.cursor.saturating_sub(1));
    }

    pub fn right(&mut self) {
        self.cursor = self.ceil_boundary(self.cursor + 1);
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.text.len();
    }

    /// Ctrl-←: skips separators, then moves to the start of the word before
    /// the cursor (Unicode word boundaries, so `can't` is one word).
    pub fn word_left(&mut self) {
        self.cursor = self.word_left_target();
    }

    /// Ctrl-→: skips separators, then moves to the end of the next word, like
    /// readline's `forward-word`, mirroring [`Self::word_left`].
    pub fn word_right(&mut self) {
        let target = self.text[self.cursor..]
            .split_word_bound_indices()
            .find(|(_, seg)| is_word(seg))
            .map_or(self.text.len(), |(i, seg)| self.cursor + i + seg.len());
        self.cursor = self.ceil_boundary(target);
    }

    /// Ctrl-W: deletes the separators before the cursor, then the word before
    /// them, i.e. exactly the span [`Self::word_left`] would move over, so
    /// motion and deletion agree.
    pub fn delete_word_before(&mut self) -> bool {
        let start = self.word_left_target();
        self.remove(start, self.cursor)
    }

    /// Ctrl-U: clears the whole line.
    pub fn clear(&mut self) -> bool {
        let changed = !self.text.is_empty();
        self.text.clear();
        self.cursor = 0;
        changed
    }

    /// Terminal columns between the line start and the cursor.
    pub fn display_width_before_cursor(&self) -> usize {
        self.text[..self.cursor]
            .graphemes(true)
            .map(cluster_width)
            .sum()
    }

    /// Which part of the line to draw in a window `width` columns wide.
    ///
    /// The view keeps `scroll_hint` (normally the previous [`Viewport::scroll`])
    /// unless the cursor would fall outside, then scrolls just enough; it also
    /// scrolls back when the text shrinks so no window space is wasted. The
    /// start never falls inside a wide cluster (it moves to the next one), and
    /// a cluster that does not fit at the right edge is left out, so nothing
    /// is ever drawn half. With `width == 0` nothing is visible: the range is
    /// empty at the cursor and `cursor_col` is 0.
    pub fn viewport(&self, width: usize, scroll_hint: usize) -> Viewport {
        let cursor_x = self.display_width_before_cursor();
        if width == 0 {
            return Viewport {
                start: self.cursor,
                end: self.cursor,
                cursor_col: 0,
                scroll: cursor_x,
            };
        }
        let total: usize = self.text.graphemes(true).map(cluster_width).sum();
        let mut scroll = scroll_hint.min(cursor_x);
        if cursor_x >= scroll + width {
            scroll = cursor_x + 1 - width;
        }
        // The cursor after the last cluster needs one cell of its own.
        scroll = scroll.min((total + 1).saturating_sub(width));

        let mut col = 0;
        let mut start = None;
        let mut end = self.text.len();
        for (i, g) in self.text.grapheme_indices(true) {
            if start.is_none() && col >= scroll {
                start = Some((i, col));
            }
            let w = cluster_width(g);
            if let Some((_, start_col)) = start {
                if col + w > start_col + width {
                    end = i;
                    break;
                }
            }
            col += w;
        }
        let (start, start_col) = start.unwrap_or((self.text.len(), col));
        Viewport {
            start,
            end,
            cursor_col: cursor_x.saturating_sub(start_col),
            scroll: start_col,
        }
    }

    /// Grapheme boundaries of the whole text, including `0` and `len`.
    /// Always computed on the full text because boundaries depend on context
    /// (regional-indicator pairing, ZWJ sequences).
    fn boundaries(&self) -> impl Iterator<Item = usize> + '_ {
        self.text
            .grapheme_indices(true)
            .map(|(i, _)| i)
            .chain(std::iter::once(self.text.len()))
    }

    fn floor_boundary(&self, pos: usize) -> usize {
        self.boundaries()
            .take_while(|&b| b <= pos)
            .last()
            .unwrap_or(0)
    }

    fn ceil_boundary(&self, pos: usize) -> usize {
        self.boundaries()
            .find(|&b| b >= pos)
            .unwrap_or(self.text.len())
    }

    /// Word boundaries do not always coincide with grapheme boundaries
    /// (e.g. after a prepended format character), hence the final snap.
    fn word_left_target(&self) -> usize {
        let target = self.text[..self.cursor]
            .split_word_bound_indices()
            .rev()
            .find(|(_, seg)| is_word(seg))
            .map_or(0, |(i, _)| i);
        self.floor_boundary(target)
    }

    /// Removes `start..end` and leaves the cursor at `start`. The text on
    /// both sides can join into one cluster (🇦 x 🇧 minus x is the flag 🇦🇧),
    /// so the cursor snaps back to that cluster's start.
    fn remove(&mut self, start: usize, end: usize) -> bool {
        if start >= end {
            return false;
        }
        self.text.replace_range(start..end, "");
        self.cursor = self.floor_boundary(start);
        true
    }
}

/// Input history with shell-like ↑/↓ navigation; entries oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    entries: Vec<String>,
    /// Index of the entry being shown; `None` while editing the draft.
    pos: Option<usize>,
    /// The unsent line saved on the first ↑, so ↓ past the newest entry
    /// gives the user back what they were typing.
    draft: String,
    /// Most entries kept; 0 disables history.
    max: usize,
}

impl History {
    /// Loads saved entries (oldest first), keeping only the newest `max`.
    pub fn new(mut entries: Vec<String>, max: usize) -> Self {
        let excess = entries.len().saturating_sub(max);
        entries.drain(..excess);
        Self {
            entries,
            pos: None,
            draft: String::new(),
            max,
        }
    }

    /// Records a submitted line. Blank lines and an immediate repeat are
    /// skipped because recalling them is useless; the oldest entries are
    /// dropped beyond `max`. Ends any navigation.
    pub fn push(&mut self, s: &str) {
        self.reset_navigation();
        if s.trim().is_empty() || self.entries.last().is_some_and(|last| last == s) {
            return;
        }
        self.entries.push(s.to_owned());
        let excess = self.entries.len().saturating_sub(self.max);
        self.entries.drain(..excess);
    }

    /// ↑: the next older entry, or `None` when there is none (leave the line
    /// alone). The first call saves `current` as the draft. Edits made to a
    /// recalled entry are not kept when moving on.
    pub fn prev(&mut self, current: &str) -> Option<&str> {
        let pos = match self.pos {
            None => {
                let newest = self.entries.len().checked_sub(1)?;
                self.draft = current.to_owned();
                newest
            }
            Some(0) => return None,
            Some(p) => p - 1,
        };
        self.pos = Some(pos);
        self.entries.get(pos).map(String::as_str)
    }

    /// ↓: the next newer entry; past the newest, the saved draft (and
    /// navigation ends). `None` when not navigating.
    // Not `Iterator::next`: the result borrows `self` and ↓ is not iteration.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<&str> {
        let p = self.pos?;
        if p + 1 < self.entries.len() {
            self.pos = Some(p + 1);
            self.entries.get(p + 1).map(String::as_str)
        } else {
            self.pos = None;
            Some(&self.draft)
        }
    }

    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Forgets the navigation position and draft, e.g. when the line is
    /// submitted or cleared, so the next ↑ starts from the newest entry.
    pub fn reset_navigation(&mut self) {
        self.pos = None;
        self.draft.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    const FAMILY: &str = "👩\u{200d}👩\u{200d}👧\u{200d}👦";
    const E_ACUTE: &str = "e\u{301}";
    const FLAG: &str = "🇯🇵";

    fn is_boundary(t: &str, i: usize) -> bool {
        i == t.len() || t.grapheme_indices(true).any(|(b, _)| b == i)
    }

    fn cols(s: &str) -> usize {
        s.graphemes(true).map(cluster_width).sum()
    }

    /// Checks every viewport invariant and returns the viewport.
    fn check_viewport(ed: &LineEditor, width: usize, hint: usize) -> Viewport {
        let (t, c) = (ed.text(), ed.cursor());
        let vp = ed.viewport(width, hint);
        assert!(vp.start <= c && c <= vp.end && vp.end <= t.len(), "{vp:?}");
        assert!(is_boundary(t, vp.start) && is_boundary(t, vp.end), "{vp:?}");
        assert_eq!(vp.scroll, cols(&t[..vp.start]));
        assert_eq!(vp.cursor_col, cols(&t[vp.start..c]));
        assert!(cols(&t[vp.start..vp.end]) <= width);
        if width > 0 {
            assert!(vp.cursor_col < width, "{vp:?} width {width}");
            // Maximal: the next cluster really would not fit.
            if let Some(next) = t[vp.end..].graphemes(true).next() {
                assert!(cols(&t[vp.start..vp.end]) + cluster_width(next) > width);
            }
        }
        vp
    }

    #[test]
    fn backspace_and_delete_remove_whole_clusters() {
        for g in [FAMILY, E_ACUTE, FLAG, "日", "a"] {
            let mut ed = LineEditor::with_text(&format!("x{g}y"));
            ed.left();
            assert!(ed.backspace(), "{g}");
            assert_eq!((ed.text(), ed.cursor()), ("xy", 1));
            let mut ed = LineEditor::with_text(&format!("x{g}y"));
            ed.home();
            ed.right();
            assert!(ed.delete(), "{g}");
            assert_eq!((ed.text(), ed.cursor()), ("xy", 1));
        }
        let mut ed = LineEditor::with_text("ab");
        assert!(!ed.delete());
        ed.home();
        assert!(!ed.backspace());
        assert_eq!(ed.text(), "ab");
    }

    #[test]
    fn left_right_step_over_clusters() {
        let text = format!("a{FAMILY}{E_ACUTE}{FLAG}日本b");
        let expected: Vec<usize> = {
            let ed = LineEditor::with_text(&text);
            ed.boundaries().collect()
        };
        assert_eq!(expected.len(), 8);
        let mut ed = LineEditor::with_text(&text);
        ed.home();
        let mut seen = vec![ed.cursor()];
        for _ in 0..8 {
            ed.right();
            seen.push(ed.cursor());
        }
        assert_eq!(&seen[..8], &expected[..]);
        assert_eq!(seen[8], text.len(), "right at end is a no-op");
        let mut back = vec![];
        for _ in 0..7 {
            back.push(ed.cursor());
            ed.left();
        }
        assert_eq!(ed.cursor(), 0);
        ed.left();
        assert_eq!(ed.cursor(), 0, "left at home is a no-op");
        back.reverse();
        assert_eq!(back, expected[1..]);
    }

    #[test]
    fn widths_count_clusters() {
        for (t, w) in [
            (FAMILY, 2),
            (E_ACUTE, 1),
            (FLAG, 2),
            ("日本", 4),
            ("ab日", 4),
        ] {
            assert_eq!(
                LineEditor::with_text(t).display_width_before_cursor(),
                w,
                "{t}"
            );
        }
    }

    #[test]
    fn inserted_text_merging_with_next_cluster_keeps_cursor_on_boundary() {
        let mut ed = LineEditor::with_text("\u{301}x");
        ed.home();
        ed.insert_char('e');
        assert_eq!((ed.text(), ed.cursor()), ("e\u{301}x", 3));
        let mut ed = LineEditor::with_text("🇵");
        ed.home();
        ed.insert_char('🇯');
        assert_eq!((ed.text(), ed.cursor()), (FLAG, 8));
        let mut ed = LineEditor::with_text("🇦x🇧");
        ed.left();
        assert!(ed.backspace());
        assert_eq!((ed.text(), ed.cursor()), ("🇦🇧", 0));
    }

    const CHEF: &str = "The chef  carefully, seasoned";

    #[test]
    fn word_motions_skip_separators() {
        let mut ed = LineEditor::with_text(CHEF);
        let mut stops = vec![];
        for _ in 0..5 {
            ed.word_left();
            stops.push(ed.cursor());
        }
        assert_eq!(stops, [21, 10, 4, 0, 0]);
        stops.clear();
        for _ in 0..5 {
            ed.word_right();
            stops.push(ed.cursor());
        }
        assert_eq!(stops, [3, 8, 19, 29, 29]);
    }

    #[test]
    fn ctrl_w_deletes_separators_then_word() {
        let mut ed = LineEditor::with_text(CHEF);
        let mut states = vec![];
        while ed.delete_word_before() {
            states.push(ed.text().to_owned());
        }
        assert_eq!(states, ["The chef  carefully, ", "The chef  ", "The ", ""]);
        let mut ed = LineEditor::with_text(CHEF);
        ed.left();
        ed.left();
        assert!(ed.delete_word_before());
        assert_eq!((ed.text(), ed.cursor()), ("The chef  carefully, ed", 21));
    }

    #[test]
    fn word_motions_treat_emoji_as_words() {
        let text = format!("hi {FAMILY}  {FLAG}!");
        let mut ed = LineEditor::with_text(&text);
        ed.word_left();
        assert_eq!(&ed.text()[ed.cursor()..], format!("{FLAG}!"));
        ed.word_left();
        assert_eq!(ed.cursor(), 3);
        ed.word_right();
        assert_eq!(ed.cursor(), 3 + FAMILY.len());
        ed.end();
        assert!(ed.delete_word_before());
        assert_eq!(ed.text(), format!("hi {FAMILY}  "));
        assert!(ed.delete_word_before());
        assert_eq!(ed.text(), "hi ");
        let mut ed = LineEditor::with_text("ab 日本");
        ed.word_left();
        assert!(ed.cursor() < 9 && is_boundary(ed.text(), ed.cursor()));
    }

    #[test]
    fn paste_is_normalised_to_one_line() {
        let mut ed = LineEditor::with_text("<>");
        ed.left();
        ed.insert_str("a\r\nb\nc\td\re\u{1b}[0m\u{7f}\u{2028}\r\n\r\n");
        assert_eq!(ed.text(), "<a b c d e [0m    >");
        assert_eq!(ed.cursor(), ed.text().len() - 1);
        ed.insert_char('\n');
        assert_eq!(ed.text(), "<a b c d e [0m     >");
        assert_eq!(LineEditor::with_text("x\ny").text(), "x y");
        assert!(ed.clear());
        assert!(!ed.clear());
        assert_eq!((ed.text(), ed.cursor()), ("", 0));
    }

    #[test]
    fn viewport_invariants_over_every_cursor_position() {
        let unit = format!("ab {FAMILY}日本{E_ACUTE}{FLAG}, x");
        let text = unit.repeat(12);
        for width in [0, 1, 2, 3, 4, 5, 80] {
            let mut ed = LineEditor::with_text(&text);
            let mut scroll = 0;
            loop {
                scroll = check_viewport(&ed, width, scroll).scroll;
                check_viewport(&ed, width, 0);
                check_viewport(&ed, width, usize::MAX / 2);
                if ed.cursor() == 0 {
                    break;
                }
                ed.left();
            }
        }
    }

    #[test]
    fn viewport_never_cuts_wide_chars() {
        let ed = LineEditor::with_text("日本語");
        let vp = check_viewport(&ed, 3, 0);
        assert_eq!((&ed.text()[vp.start..vp.end], vp.cursor_col), ("語", 2));
        let vp = check_viewport(&ed, 1, 0);
        assert_eq!((vp.start, vp.end, vp.cursor_col), (9, 9, 0));
        // Hint column 1 is inside 日: start at the next whole cluster instead.
        let ed = LineEditor::with_text("日本a");
        let vp = check_viewport(&ed, 5, 1);
        assert_eq!((vp.start, vp.scroll, vp.cursor_col), (3, 2, 3));
        let mut ed = LineEditor::with_text("a日本");
        ed.home();
        let vp = check_viewport(&ed, 4, 0);
        assert_eq!((vp.start, vp.end), (0, 4), "本 would be cut: left out");
        let vp = check_viewport(&LineEditor::new(), 0, 5);
        assert_eq!((vp.start, vp.end, vp.cursor_col), (0, 0, 0));
    }

    #[test]
    fn viewport_scroll_is_stable() {
        let mut ed = LineEditor::with_text(&"a".repeat(100));
        let vp = check_viewport(&ed, 10, 0);
        assert_eq!((vp.scroll, vp.cursor_col, vp.end), (91, 9, 100));
        let mut scroll = vp.scroll;
        for step in 1..=9 {
            ed.left();
            let vp = check_viewport(&ed, 10, scroll);
            assert_eq!((vp.scroll, vp.cursor_col), (91, 9 - step));
            scroll = vp.scroll;
        }
        ed.left();
        scroll = check_viewport(&ed, 10, scroll).scroll;
        assert_eq!(scroll, 90, "scrolls by one at the left edge");
        ed.insert_char('b');
        assert_eq!(check_viewport(&ed, 10, scroll).scroll, 90);
        ed.set_text("short");
        let vp = check_viewport(&ed, 10, scroll);
        assert_eq!(
            (vp.scroll, vp.cursor_col),
            (0, 5),
            "shrinking text scrolls back"
        );
    }

    #[test]
    fn history_navigation() {
        let mut h = History::new(vec!["a".into(), "b".into(), "c".into()], 3);
        assert_eq!(h.next(), None, "not navigating");
        assert_eq!(h.prev("draft"), Some("c"));
        assert_eq!(h.prev("c edited"), Some("b"));
        assert_eq!(h.prev("b"), Some("a"));
        assert_eq!(h.prev("a"), None, "oldest: stay");
        assert_eq!(h.next(), Some("b"));
        assert_eq!(h.next(), Some("c"));
        assert_eq!(h.next(), Some("draft"));
        assert_eq!(h.next(), None);
        assert_eq!(h.prev("new draft"), Some("c"));
        h.reset_navigation();
        assert_eq!(h.prev("x"), Some("c"), "reset starts from newest");
        h.push("d");
        assert_eq!(h.prev(""), Some("d"), "push ends navigation");
        assert_eq!(h.entries(), ["b", "c", "d"], "capped, oldest dropped");
        assert_eq!(History::new(vec![], 3).prev("x"), None);
    }

    #[test]
    fn history_push_skips_blank_and_repeats() {
        let mut h = History::new(vec!["1".into(), "2".into(), "3".into()], 2);
        assert_eq!(h.entries(), ["2", "3"]);
        for s in ["", "  \t", "3", "4", "4", "3"] {
            h.push(s);
        }
        assert_eq!(h.entries(), ["4", "3"]);
        let mut off = History::new(vec!["x".into()], 0);
        off.push("y");
        assert!(off.entries().is_empty());
    }

    fn fragment() -> impl Strategy<Value = String> {
        let pool = vec![
            "a", "Z", " ", ",", ".", "'", "日", "本", "é", E_ACUTE, "\u{301}", FAMILY, "\u{200d}",
            "🇯", "🇵", FLAG, "👍🏽", "\u{fe0f}", "\u{200b}", "\u{600}", "\u{e33}", "\u{1100}",
            "\u{1161}", "\t", "\n", "\r\n", "\r", "\u{1b}", "\u{7f}", "\u{85}", "\u{2028}",
        ];
        prop_oneof![
            4 => proptest::sample::select(pool).prop_map(String::from),
            1 => any::<char>().prop_map(String::from),
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        vec(fragment(), 0..12).prop_map(|v| v.concat())
    }

    type Edit = fn(&mut LineEditor) -> bool;
    const EDITS: [Edit; 4] = [
        LineEditor::backspace,
        LineEditor::delete,
        LineEditor::delete_word_before,
        LineEditor::clear,
    ];
    const MOVES: [fn(&mut LineEditor); 6] = [
        LineEditor::left,
        LineEditor::right,
        LineEditor::home,
        LineEditor::end,
        LineEditor::word_left,
        LineEditor::word_right,
    ];

    #[derive(Debug, Clone)]
    enum Op {
        Char(char),
        Paste(String),
        Set(String),
        Edit(usize),
        Move(usize),
        View(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => fragment().prop_map(|s| Op::Char(s.chars().next().unwrap_or('x'))),
            2 => text().prop_map(Op::Paste),
            1 => text().prop_map(Op::Set),
            6 => (0..EDITS.len()).prop_map(Op::Edit),
            8 => (0..MOVES.len()).prop_map(Op::Move),
            2 => (0usize..40).prop_map(Op::View),
        ]
    }

    proptest! {
        #[test]
        fn random_edits_keep_invariants(init in text(), ops in vec(op(), 0..40)) {
            let mut ed = LineEditor::with_text(&init);
            let mut scroll = 0;
            for op in ops {
                let (before, at) = (ed.text().to_owned(), ed.cursor());
                let changed = match &op {
                    Op::Char(c) => { ed.insert_char(*c); true }
                    Op::Paste(s) => { ed.insert_str(s); !s.is_empty() }
                    Op::Set(s) => { ed.set_text(s); before != ed.text() }
                    Op::Edit(i) => EDITS[*i](&mut ed),
                    Op::Move(i) => { MOVES[*i](&mut ed); false }
                    Op::View(w) => { scroll = check_viewport(&ed, *w, scroll).scroll; false }
                };
                match op {
                    Op::Move(0) => prop_assert!(ed.cursor() < at || at == 0),
                    Op::Move(1) => prop_assert!(ed.cursor() > at || at == before.len()),
                    _ => {}
                }
                prop_assert_eq!(changed, before != ed.text());
                prop_assert!(ed.cursor() <= ed.text().len());
                prop_assert!(is_boundary(ed.text(), ed.cursor()));
                prop_assert!(!ed.text().chars().any(is_breaking));
                for w in [0, 1, 2, 3, 80] {
                    check_viewport(&ed, w, scroll);
                }
            }
        }
    }
}
