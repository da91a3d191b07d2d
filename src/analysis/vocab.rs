//! The model's vocabulary as plain data: each token's bytes and whether it is a control token.
//!
//! Read once from llama.cpp at load time (see `engine`), then shared (`Arc`) with whoever draws
//! or prints tokens, so nothing outside the engine needs the model to name a token.

/// One vocabulary entry.
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The bytes the token stands for. Byte-level BPE pieces can be a fragment of a UTF-8
    /// character, so this is not always valid UTF-8.
    pub bytes: Vec<u8>,
    /// A control token (BOS, EOS, `<|im_start|>` …), never produced by tokenizing user text.
    pub special: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocab {
    pieces: Vec<Piece>,
}

impl Vocab {
    pub fn new(pieces: Vec<Piece>) -> Self {
        Self { pieces }
    }

    /// A vocabulary of plain (non-control) pieces, id = position.
    pub fn from_bytes<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Self {
        Self::new(
            pieces
                .into_iter()
                .map(|b| Piece {
                    bytes: b.to_vec(),
                    special: false,
                })
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    pub fn piece(&self, id: u32) -> Option<&Piece> {
        self.pieces.get(id as usize)
    }

    pub fn bytes(&self, id: u32) -> &[u8] {
        self.piece(id).map(|p| p.bytes.as_slice()).unwrap_or(&[])
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.piece(id).is_some_and(|p| p.special)
    }

    /// The token as text, with invalid UTF-8 replaced by U+FFFD (the JSON `token` field).
    pub fn text(&self, id: u32) -> String {
        String::from_utf8_lossy(self.bytes(id)).into_owned()
    }

    /// The token for a screen or a table: visible, one line, and safe to print. Bytes that are
    /// not valid UTF-8 on their own show as `<0xE3>`, control characters as their escapes
    /// (`\n`, `\t`, `<0x1B>`), so nothing a token holds can move the cursor or colour the
    /// terminal. A leading space is kept: callers decide how to mark it.
    pub fn display(&self, id: u32) -> String {
        display_bytes(self.bytes(id))
    }
}

/// See [`Vocab::display`]. Also: a character of zero display width (a variation selector, a
/// zero-width space, a combining mark) that has no visible character before it to attach to
/// would be invisible, or would change the glyph in front of the label; it is shown as its code
/// point, `<U+FE0F>`, so that every piece takes at least one column and means what it shows.
pub fn display_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    // Whether the last thing written is a visible character a zero-width one can attach to.
    let mut base = false;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let width = c.width().unwrap_or(0);
            if c.is_control() {
                out.push_str(&escape_control(c));
                base = false;
            } else if width == 0 && !base {
                out.push_str(&format!("<U+{:04X}>", u32::from(c)));
            } else {
                out.push(c);
                // A zero-width character attached to a base keeps it a base.
                base = width == 0 || !c.is_whitespace();
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("<0x{b:02X}>"));
            base = false;
        }
    }
    out
}

/// Escape control characters of user text before it reaches a terminal (the text is drawn as
/// typed otherwise: the editor's cursor arithmetic counts its real widths).
pub fn sanitize_for_terminal(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                escape_control(c)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `\n`, `\r`, `\t`, or `<0x1B>` for other control characters.
fn escape_control(c: char) -> String {
    match c {
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        c => format!("<0x{:02X}>", u32::from(c)),
    }
}

/// Pad `s` with spaces to `width` terminal columns (nothing when it is already as wide).
pub fn pad_to_width(s: &str, width: usize) -> String {
    let w = s.width();
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

/// True when a piece is word-like: it has at least one alphanumeric character. Fill-in
/// candidates skip punctuation-only and whitespace-only pieces.
pub fn is_wordlike(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| s.chars().any(char::is_alphanumeric))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_safe_and_visible() {
        assert_eq!(display_bytes(b" salt"), " salt");
        assert_eq!(display_bytes(b"\n"), "\\n");
        assert_eq!(display_bytes(b"\x1b[31m"), "<0x1B>[31m");
        assert_eq!(display_bytes(&[0xE3, 0x81]), "<0xE3><0x81>");
        assert_eq!(display_bytes("日本".as_bytes()), "日本");
    }

    #[test]
    fn invisible_pieces_are_shown_by_code_point() {
        assert_eq!(display_bytes("\u{fe0f}".as_bytes()), "<U+FE0F>");
        assert_eq!(display_bytes(" \u{200b}".as_bytes()), " <U+200B>");
        assert_eq!(display_bytes("\u{301}e".as_bytes()), "<U+0301>e");
        // Attached to a visible character, they stay what they are.
        assert_eq!(display_bytes("❤\u{fe0f}".as_bytes()), "❤\u{fe0f}");
        assert_eq!(
            display_bytes("e\u{301}\u{302}".as_bytes()),
            "e\u{301}\u{302}"
        );
        assert_eq!(display_bytes("👩\u{200d}👩".as_bytes()), "👩\u{200d}👩");
        assert_eq!(display_bytes(&[0xE3, 0xCC, 0x81]), "<0xE3><U+0301>");
        assert_eq!(pad_to_width("日本", 6), "日本  ");
        assert_eq!(pad_to_width("e\u{301}", 3), "e\u{301}  ");
        assert_eq!(pad_to_width("toolong", 3), "toolong");
    }

    #[test]
    fn wordlike() {
        assert!(is_wordlike(b" salt"));
        assert!(is_wordlike("日本".as_bytes()));
        assert!(!is_wordlike(b" ,"));
        assert!(!is_wordlike(b"  "));
        assert!(!is_wordlike(&[0xE3]));
    }
}
