//! Reading GGUF without trusting it: every length is checked against the bytes that remain.

use std::fs::File;
use std::io::{self, BufReader, Read};

use super::format::{GgufError, PLAUSIBLE_META_BYTES};

pub(super) fn scalar_size(value_type: u32) -> Option<u64> {
    match value_type {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

pub(super) fn value_type_name(value_type: u32) -> &'static str {
    const NAMES: [&str; 13] = [
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64",
        "f64",
    ];
    NAMES.get(value_type as usize).copied().unwrap_or("unknown")
}

pub(super) fn align_up(x: u64, alignment: u64) -> Option<u64> {
    Some(x.checked_add(alignment - 1)? / alignment * alignment)
}

/// Quotes a key or tensor name for a message, escaping control characters and cutting it short.
pub(super) fn show(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{:?}...", s.chars().take(80).collect::<String>())
    } else {
        format!("{s:?}")
    }
}

pub(super) fn describe(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::PermissionDenied {
        return "permission denied".to_string();
    }
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or_default();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "unknown error".to_string(),
    }
}

pub(super) fn open_error(e: io::Error) -> GgufError {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => GgufError::NotFound,
        io::ErrorKind::IsADirectory => GgufError::IsDirectory,
        _ => GgufError::Unreadable(describe(&e)),
    }
}

/// Printable ASCII, common whitespace, or bytes of multi-byte UTF-8 characters only.
pub(super) fn looks_like_text(head: &[u8]) -> bool {
    head.iter()
        .all(|&b| (b >= 0x20 && b != 0x7f) || matches!(b, b'\n' | b'\r' | b'\t' | 0x0c))
}

/// Says what a file without the GGUF magic most likely is.
pub(super) fn sniff(head: &[u8]) -> String {
    let lower: Vec<u8> = head.iter().take(64).map(u8::to_ascii_lowercase).collect();
    let lower = lower.trim_ascii_start();
    let reason = if head.starts_with(b"version https://git-lfs") {
        "it is a Git LFS pointer, not the model itself; fetch the real file with `git lfs pull`"
    } else if lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html") {
        "it is an HTML page, probably saved by a failed download"
    } else if head.starts_with(b"PK\x03\x04") {
        "it is a ZIP archive, such as a PyTorch checkpoint; convert it to GGUF first"
    } else if head.get(4..10) == Some(b"\0\0\0\0{\"".as_slice()) {
        "it looks like a safetensors file; convert it to GGUF first"
    } else if [b"lmgg", b"fmgg", b"tjgg"]
        .iter()
        .any(|m| head.starts_with(*m))
    {
        "it is a model in the old GGML format; convert it to GGUF first"
    } else if looks_like_text(head) {
        "it is a text file"
    } else {
        "it does not start with the GGUF magic bytes"
    };
    reason.to_string()
}

/// Returns a corruption error for the reader's current section.
macro_rules! bail {
    ($r:expr, $($fmt:tt)+) => {
        return Err($r.corrupt(format!($($fmt)+)))
    };
}
pub(super) use bail;

#[derive(Clone, Copy)]
pub(super) enum Section {
    Header,
    Metadata(u64, u64),
    TensorIndex(u64, u64),
}

/// Reads from the file while tracking the position, so that no length is ever trusted beyond
/// the bytes that actually remain.
pub(super) struct Reader {
    pub(super) inner: BufReader<File>,
    pub(super) pos: u64,
    pub(super) size: u64,
    pub(super) section: Section,
}

impl Reader {
    pub(super) fn remaining(&self) -> u64 {
        self.size.saturating_sub(self.pos)
    }

    pub(super) fn truncated(&self) -> GgufError {
        match self.section {
            Section::Header => GgufError::TruncatedHeader,
            Section::Metadata(index, count) => GgufError::TruncatedMetadata { index, count },
            Section::TensorIndex(index, count) => GgufError::TruncatedTensorIndex { index, count },
        }
    }

    pub(super) fn corrupt(&self, detail: String) -> GgufError {
        match self.section {
            Section::Header => GgufError::CorruptHeader(detail),
            Section::Metadata(index, count) => GgufError::CorruptMetadata {
                index,
                count,
                detail,
            },
            Section::TensorIndex(index, count) => GgufError::CorruptTensorIndex {
                index,
                count,
                detail,
            },
        }
    }

    /// Checks that `need` more bytes exist (`None` means the size overflowed). A plausible
    /// shortfall is truncation; an absurd one is corruption described by `claim`.
    pub(super) fn ensure(
        &self,
        need: Option<u64>,
        claim: impl FnOnce() -> String,
    ) -> Result<u64, GgufError> {
        match need {
            Some(n) if n <= self.remaining() => Ok(n),
            Some(n) if n <= PLAUSIBLE_META_BYTES => Err(self.truncated()),
            _ => Err(self.corrupt(format!(
                "it claims {}, more than the {} bytes left in the file",
                claim(),
                self.remaining()
            ))),
        }
    }

    pub(super) fn fill(&mut self, buf: &mut [u8]) -> Result<(), GgufError> {
        let len = buf.len() as u64;
        if len > self.remaining() {
            return Err(self.truncated());
        }
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.pos += len;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(self.truncated()),
            Err(e) => Err(GgufError::Unreadable(describe(&e))),
        }
    }

    pub(super) fn u32(&mut self) -> Result<u32, GgufError> {
        let mut b = [0; 4];
        self.fill(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    pub(super) fn u64(&mut self) -> Result<u64, GgufError> {
        let mut b = [0; 8];
        self.fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub(super) fn skip(
        &mut self,
        n: Option<u64>,
        claim: impl FnOnce() -> String,
    ) -> Result<(), GgufError> {
        let n = self.ensure(n, claim)?;
        let step = i64::try_from(n).map_err(|_| self.corrupt(format!("it skips {n} bytes")))?;
        self.inner
            .seek_relative(step)
            .map_err(|e| GgufError::Unreadable(describe(&e)))?;
        self.pos += n;
        Ok(())
    }

    /// Reads the length of a GGUF string of at most `max` bytes and checks that the bytes exist.
    pub(super) fn string_len(&mut self, max: u64, what: &str) -> Result<u64, GgufError> {
        let len = self.u64()?;
        if len > max {
            bail!(self, "{what} is {len} bytes long (the limit is {max})");
        }
        self.ensure(Some(len), || format!("a string of {len} bytes"))
    }

    /// Reads a GGUF string (u64 length + bytes) of at most `max` bytes.
    pub(super) fn string(&mut self, max: u64, what: &str) -> Result<Vec<u8>, GgufError> {
        let len = self.string_len(max, what)?;
        let len = usize::try_from(len).map_err(|_| self.corrupt(format!("{what} is too long")))?;
        let mut buf = vec![0; len];
        self.fill(&mut buf)?;
        Ok(buf)
    }
}
