//! The model's vocabulary as plain data: each token's bytes and whether it is a control token.
//!
//! Read once from llama.cpp at load time (see `engine`), then shared (`Arc`) with whoever draws
//! or prints tokens, so nothing outside the engine needs the model to name a token.

/// One vocabulary entry.
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

/// See [`Vocab::display`].
pub fn display_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => out.push_str(&format!("<0x{:02X}>", u32::from(c))),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("<0x{b:02X}>"));
        }
    }
    out
}

/// Escape control characters of user text before it reaches a terminal.
pub fn sanitize_for_terminal(s: &str) -> String {
    display_bytes(s.as_bytes())
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
    fn wordlike() {
        assert!(is_wordlike(b" salt"));
        assert!(is_wordlike("日本".as_bytes()));
        assert!(!is_wordlike(b" ,"));
        assert!(!is_wordlike(b"  "));
        assert!(!is_wordlike(&[0xE3]));
    }
}
