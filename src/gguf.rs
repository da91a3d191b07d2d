//! Pre-flight checks for GGUF model files.
//!
//! llama.cpp aborts or prints unhelpful errors on malformed files, so [`inspect`] walks the whole
//! GGUF structure (header, metadata, tensor index, extent of the tensor data) without trusting
//! any length stored in it, and reports the first problem as one short phrase. The phrase is
//! meant to follow `model file '<path>' `, so it never contains the path itself.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

const MAGIC: [u8; 4] = *b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
const MAX_ARRAY_DEPTH: u32 = 8;
/// The GGUF specification limits keys to 65535 bytes.
const MAX_KEY_LEN: u64 = 65_535;
/// llama.cpp's `GGML_MAX_NAME` is 64 bytes including the terminating NUL.
const MAX_TENSOR_NAME_LEN: u64 = 63;
/// llama.cpp's `GGUF_MAX_STRING_LENGTH` and `GGUF_MAX_ARRAY_ELEMENTS`.
const MAX_STRING_LEN: u64 = 1 << 30;
const MAX_ARRAY_LEN: u64 = 1 << 30;
const MAX_INFO_STRING_LEN: u64 = 1 << 16;
/// A stored size that runs past the end of the file is reported as truncation up to this many
/// bytes and as corruption beyond it: no real metadata section or tensor index is this large.
const PLAUSIBLE_META_BYTES: u64 = 1 << 32;
const MAX_TENSOR_BYTES: u64 = 1 << 50;
/// Smallest possible metadata entry: key length, value type, one-byte value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// Smallest possible tensor index entry: name length, n_dims, type, offset.
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;
const T_U32: u32 = 4;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;

/// What [`inspect`] learned about a structurally valid GGUF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufInfo {
    pub version: u32,
    pub n_tensors: u64,
    pub n_kv: u64,
    pub architecture: Option<String>,
    pub name: Option<String>,
    pub file_size: u64,
    /// Offset where the last tensor's data ends.
    pub data_end: u64,
}

/// Why a file cannot be handed to llama.cpp. `Display` is a phrase meant to follow
/// `model file '<path>' `.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("no such file")]
    NotFound,
    #[error("is a directory, not a file")]
    IsDirectory,
    #[error("is not a regular file")]
    NotRegularFile,
    #[error("cannot be read: {0}")]
    Unreadable(String),
    #[error("is empty")]
    Empty,
    /// The payload says why, e.g. "it does not start with the GGUF magic bytes".
    #[error("is not a GGUF file ({0})")]
    NotGguf(String),
    #[error("is a big-endian GGUF file (only little-endian GGUF files are supported)")]
    BigEndian,
    #[error("has unsupported GGUF version {0} (supported: 2 and 3)")]
    UnsupportedVersion(u32),
    #[error("is truncated in its header")]
    TruncatedHeader,
    #[error("is truncated in its metadata (key/value {index} of {count})")]
    TruncatedMetadata { index: u64, count: u64 },
    #[error("is truncated in its tensor index (tensor {index} of {count})")]
    TruncatedTensorIndex { index: u64, count: u64 },
    #[error("is truncated in its tensor data: it needs {needed} bytes but has {actual}")]
    TruncatedData { needed: u64, actual: u64 },
    #[error("has no tensors (a vocabulary-only GGUF cannot be evaluated)")]
    NoTensors,
    #[error("has a corrupt header: {0}")]
    CorruptHeader(String),
    #[error("has a corrupt metadata entry (key/value {index} of {count}): {detail}")]
    CorruptMetadata {
        index: u64,
        count: u64,
        detail: String,
    },
    #[error("has a corrupt tensor index entry (tensor {index} of {count}): {detail}")]
    CorruptTensorIndex {
        index: u64,
        count: u64,
        detail: String,
    },
    #[error("uses tensor type {type_id}, which this version does not know (tensor {tensor:?})")]
    UnknownTensorType { tensor: String, type_id: u32 },
    #[error(
        "uses tensor type {type_id} ({type_name}), which llama.cpp no longer supports \
         (tensor {tensor:?}); download or quantize the model again"
    )]
    RemovedTensorType {
        tensor: String,
        type_id: u32,
        type_name: &'static str,
    },
}

enum TensorType {
    Known(&'static str, u64, u64),
    Removed(&'static str),
    Unknown,
}

/// ggml type id, name, block size, bytes per block; as in the llama.cpp of llama-cpp-sys-2
/// 0.1.161 (ggml/include/ggml.h, ggml/src/ggml-common.h).
#[rustfmt::skip]
const TYPES: [(u32, &str, u64, u64); 35] = [
    (0, "F32", 1, 4), (1, "F16", 1, 2), (2, "Q4_0", 32, 18), (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22), (7, "Q5_1", 32, 24), (8, "Q8_0", 32, 34), (9, "Q8_1", 32, 36),
    (10, "Q2_K", 256, 84), (11, "Q3_K", 256, 110), (12, "Q4_K", 256, 144), (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210), (15, "Q8_K", 256, 292), (16, "IQ2_XXS", 256, 66), (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98), (19, "IQ1_S", 256, 50), (20, "IQ4_NL", 32, 18), (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82), (23, "IQ4_XS", 256, 136), (24, "I8", 1, 1), (25, "I16", 1, 2),
    (26, "I32", 1, 4), (27, "I64", 1, 8), (28, "F64", 1, 8), (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2), (34, "TQ1_0", 256, 54), (35, "TQ2_0", 256, 66), (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36), (41, "Q1_0", 128, 18), (42, "Q2_0", 64, 18),
];

/// Types that ggml once had and that llama.cpp now refuses to load.
#[rustfmt::skip]
const REMOVED_TYPES: [(u32, &str); 8] = [
    (4, "Q4_2"), (5, "Q4_3"), (31, "Q4_0_4_4"), (32, "Q4_0_4_8"), (33, "Q4_0_8_8"),
    (36, "IQ4_NL_4_4"), (37, "IQ4_NL_4_8"), (38, "IQ4_NL_8_8"),
];

fn tensor_type(id: u32) -> TensorType {
    if let Some(&(_, name, block, size)) = TYPES.iter().find(|t| t.0 == id) {
        TensorType::Known(name, block, size)
    } else if let Some(&(_, name)) = REMOVED_TYPES.iter().find(|t| t.0 == id) {
        TensorType::Removed(name)
    } else {
        TensorType::Unknown
    }
}

/// ggml row size: (ne0 / block) * type_size * product of the other dimensions. Like ggml,
/// treats a tensor with no dimensions as having one element.
fn tensor_bytes(block: u64, type_size: u64, dims: &[u64]) -> Option<u64> {
    let (first, rest) = dims.split_first().unwrap_or((&1, &[]));
    rest.iter()
        .try_fold((first / block).checked_mul(type_size)?, |n, &d| {
            n.checked_mul(d)
        })
}

fn scalar_size(value_type: u32) -> Option<u64> {
    match value_type {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

fn value_type_name(value_type: u32) -> &'static str {
    const NAMES: [&str; 13] = [
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64",
        "f64",
    ];
    NAMES.get(value_type as usize).copied().unwrap_or("unknown")
}

fn align_up(x: u64, alignment: u64) -> Option<u64> {
    Some(x.checked_add(alignment - 1)? / alignment * alignment)
}

/// Quotes a key or tensor name for a message, escaping control characters and cutting it short.
fn show(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{:?}...", s.chars().take(80).collect::<String>())
    } else {
        format!("{s:?}")
    }
}

fn describe(e: &io::Error) -> String {
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

fn open_error(e: io::Error) -> GgufError {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => GgufError::NotFound,
        io::ErrorKind::IsADirectory => GgufError::IsDirectory,
        _ => GgufError::Unreadable(describe(&e)),
    }
}

/// Printable ASCII, common whitespace, or bytes of multi-byte UTF-8 characters only.
fn looks_like_text(head: &[u8]) -> bool {
    head.iter()
        .all(|&b| (b >= 0x20 && b != 0x7f) || matches!(b, b'\n' | b'\r' | b'\t' | 0x0c))
}

/// Says what a file without the GGUF magic most likely is.
fn sniff(head: &[u8]) -> String {
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

#[derive(Clone, Copy)]
enum Section {
    Header,
    Metadata(u64, u64),
    TensorIndex(u64, u64),
}

/// Reads from the file while tracking the position, so that no length is ever trusted beyond
/// the bytes that actually remain.
struct Reader {
    inner: BufReader<File>,
    pos: u64,
    size: u64,
    section: Section,
}

impl Reader {
    fn remaining(&self) -> u64 {
        self.size.saturating_sub(self.pos)
    }

    fn truncated(&self) -> GgufError {
        match self.section {
            Section::Header => GgufError::TruncatedHeader,
            Section::Metadata(index, count) => GgufError::TruncatedMetadata { index, count },
            Section::TensorIndex(index, count) => GgufError::TruncatedTensorIndex { index, count },
        }
    }

    fn corrupt(&self, detail: String) -> GgufError {
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
    fn ensure(&self, need: Option<u64>, claim: impl FnOnce() -> String) -> Result<u64, GgufError> {
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

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), GgufError> {
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

    fn u32(&mut self) -> Result<u32, GgufError> {
        let mut b = [0; 4];
        self.fill(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        let mut b = [0; 8];
        self.fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn skip(&mut self, n: Option<u64>, claim: impl FnOnce() -> String) -> Result<(), GgufError> {
        let n = self.ensure(n, claim)?;
        let step = i64::try_from(n).map_err(|_| self.corrupt(format!("it skips {n} bytes")))?;
        self.inner
            .seek_relative(step)
            .map_err(|e| GgufError::Unreadable(describe(&e)))?;
        self.pos += n;
        Ok(())
    }

    /// Reads the length of a GGUF string of at most `max` bytes and checks that the bytes exist.
    fn string_len(&mut self, max: u64, what: &str) -> Result<u64, GgufError> {
        let len = self.u64()?;
        if len > max {
            bail!(self, "{what} is {len} bytes long (the limit is {max})");
        }
        self.ensure(Some(len), || format!("a string of {len} bytes"))
    }

    /// Reads a GGUF string (u64 length + bytes) of at most `max` bytes.
    fn string(&mut self, max: u64, what: &str) -> Result<Vec<u8>, GgufError> {
        let len = self.string_len(max, what)?;
        let len = usize::try_from(len).map_err(|_| self.corrupt(format!("{what} is too long")))?;
        let mut buf = vec![0; len];
        self.fill(&mut buf)?;
        Ok(buf)
    }
}

/// Checks the GGUF file at `path` thoroughly enough that llama.cpp will not choke on its
/// structure, without reading the tensor data itself.
pub fn inspect(path: &Path) -> Result<GgufInfo, GgufError> {
    let meta = std::fs::metadata(path).map_err(open_error)?;
    if meta.is_dir() {
        return Err(GgufError::IsDirectory);
    }
    if !meta.is_file() {
        return Err(GgufError::NotRegularFile);
    }
    let file = File::open(path).map_err(open_error)?;
    let size = file.metadata().map_err(open_error)?.len();
    match size {
        0 => return Err(GgufError::Empty),
        1..=3 => {
            let s = if size == 1 { "" } else { "s" };
            return Err(GgufError::NotGguf(format!(
                "it is only {size} byte{s} long"
            )));
        }
        _ => {}
    }
    let inner = BufReader::with_capacity(1 << 16, file);
    let mut r = Reader {
        inner,
        pos: 0,
        size,
        section: Section::Header,
    };
    let mut magic = [0; 4];
    r.fill(&mut magic)?;
    if magic != MAGIC {
        let mut head = magic.to_vec();
        let read = (&mut r.inner).take(508).read_to_end(&mut head);
        read.map_err(|e| GgufError::Unreadable(describe(&e)))?;
        return Err(GgufError::NotGguf(sniff(&head)));
    }
    let version = r.u32()?;
    if version != 2 && version != 3 {
        return Err(match version.swap_bytes() {
            1..=3 => GgufError::BigEndian,
            _ => GgufError::UnsupportedVersion(version),
        });
    }
    let n_tensors = r.u64()?;
    let n_kv = r.u64()?;
    // Only absurd counts are rejected here; a merely too large count in a cut-off file is
    // reported as truncation at the entry where the bytes run out.
    for (count, min, what) in [
        (n_kv, MIN_KV_BYTES, "metadata entries"),
        (n_tensors, MIN_TENSOR_INFO_BYTES, "tensors"),
    ] {
        let fits = |n: u64| n <= r.remaining() || n <= PLAUSIBLE_META_BYTES;
        if !count.checked_mul(min).is_some_and(fits) {
            let detail =
                format!("it claims {count} {what}, more than a file of {size} bytes could hold");
            return Err(GgufError::CorruptHeader(detail));
        }
    }
    let meta = read_metadata(&mut r, n_kv)?;
    let data_len = read_tensor_index(&mut r, n_tensors, meta.alignment)?;
    if n_tensors == 0 {
        return Err(GgufError::NoTensors);
    }
    let data_end = align_up(r.pos, meta.alignment)
        .and_then(|start| start.checked_add(data_len))
        .ok_or_else(|| r.corrupt("its tensor data would end beyond 2^64 bytes".into()))?;
    if data_end > size {
        return Err(GgufError::TruncatedData {
            needed: data_end,
            actual: size,
        });
    }
    let (architecture, name) = (meta.architecture, meta.name);
    Ok(GgufInfo {
        version,
        n_tensors,
        n_kv,
        architecture,
        name,
        file_size: size,
        data_end,
    })
}

struct Meta {
    alignment: u64,
    architecture: Option<String>,
    name: Option<String>,
}

fn read_metadata(r: &mut Reader, count: u64) -> Result<Meta, GgufError> {
    let mut meta = Meta {
        alignment: DEFAULT_ALIGNMENT,
        architecture: None,
        name: None,
    };
    let mut keys = HashSet::new();
    for i in 0..count {
        r.section = Section::Metadata(i + 1, count);
        let key = String::from_utf8(r.string(MAX_KEY_LEN, "a key")?)
            .map_err(|_| r.corrupt("its key is not valid UTF-8".into()))?;
        let value_type = r.u32()?;
        if key.is_empty() {
            bail!(r, "its key is empty");
        }
        if !keys.insert(key.clone()) {
            bail!(r, "key {} appears more than once", show(&key));
        }
        let type_name = value_type_name(value_type);
        match (key.as_str(), value_type) {
            ("general.architecture", T_STRING) => {
                let value = r.string(MAX_INFO_STRING_LEN, "general.architecture")?;
                let value = String::from_utf8(value)
                    .map_err(|_| r.corrupt("general.architecture is not valid UTF-8".into()))?;
                meta.architecture = Some(value);
            }
            ("general.name", T_STRING) => {
                let value = r.string(MAX_INFO_STRING_LEN, "general.name")?;
                meta.name = Some(String::from_utf8_lossy(&value).into_owned());
            }
            ("general.alignment", T_U32) => {
                let alignment = r.u32()?;
                if !alignment.is_power_of_two() {
                    bail!(
                        r,
                        "general.alignment is {alignment}, which is not a power of two"
                    );
                }
                meta.alignment = u64::from(alignment);
            }
            // llama.cpp needs these types and aborts on an alignment that is not a u32.
            ("general.architecture", _) => {
                bail!(r, "{key} should be a string but is a {type_name}")
            }
            ("general.alignment", _) => bail!(r, "{key} should be a u32 but is a {type_name}"),
            _ => skip_value(r, value_type, 0)?,
        }
    }
    Ok(meta)
}

/// Skips one metadata value of `value_type`; `depth` counts the arrays around it.
fn skip_value(r: &mut Reader, value_type: u32, depth: u32) -> Result<(), GgufError> {
    if let Some(size) = scalar_size(value_type) {
        return r.skip(Some(size), String::new);
    }
    match value_type {
        T_STRING => {
            let len = r.string_len(MAX_STRING_LEN, "a string value")?;
            r.skip(Some(len), String::new)
        }
        T_ARRAY => {
            if depth >= MAX_ARRAY_DEPTH {
                bail!(
                    r,
                    "its arrays are nested more than {MAX_ARRAY_DEPTH} levels deep"
                );
            }
            let elem_type = r.u32()?;
            let count = r.u64()?;
            if count > MAX_ARRAY_LEN {
                bail!(
                    r,
                    "it has an array of {count} elements (the limit is {MAX_ARRAY_LEN})"
                );
            }
            let claim = || format!("an array of {count} {} values", value_type_name(elem_type));
            if let Some(size) = scalar_size(elem_type) {
                return r.skip(count.checked_mul(size), claim);
            }
            let min_size = match elem_type {
                T_STRING => 8,
                T_ARRAY => 12,
                t => bail!(r, "it has an array of unknown value type {t}"),
            };
            // Bounds the loop below by the bytes that remain.
            r.ensure(count.checked_mul(min_size), claim)?;
            for _ in 0..count {
                skip_value(r, elem_type, depth + 1)?;
            }
            Ok(())
        }
        t => bail!(r, "it has unknown value type {t}"),
    }
}

/// Reads the tensor index and returns where the last tensor's data ends, relative to the start
/// of the data section. Like llama.cpp, requires the tensors to lie in order, each at the
/// aligned end of the one before.
fn read_tensor_index(r: &mut Reader, count: u64, alignment: u64) -> Result<u64, GgufError> {
    let mut names = HashSet::new();
    let (mut next_offset, mut end) = (0u64, 0u64);
    for i in 0..count {
        r.section = Section::TensorIndex(i + 1, count);
        let name = r.string(MAX_TENSOR_NAME_LEN, "a tensor name")?;
        let name = String::from_utf8_lossy(&name).into_owned();
        let shown = show(&name);
        let n_dims = r.u32()?;
        if n_dims > 4 {
            bail!(r, "tensor {shown} has {n_dims} dimensions (the limit is 4)");
        }
        let mut dims = Vec::with_capacity(4);
        for _ in 0..n_dims {
            dims.push(r.u64()?);
        }
        if dims.is_empty() {
            dims.push(1); // as in ggml: no dimensions means a single element
        }
        let type_id = r.u32()?;
        let offset = r.u64()?;
        if !names.insert(name.clone()) {
            bail!(r, "tensor {shown} appears more than once");
        }
        let (type_name, block, type_size) = match tensor_type(type_id) {
            TensorType::Known(type_name, block, type_size) => (type_name, block, type_size),
            TensorType::Removed(type_name) => {
                return Err(GgufError::RemovedTensorType {
                    tensor: name,
                    type_id,
                    type_name,
                })
            }
            TensorType::Unknown => {
                return Err(GgufError::UnknownTensorType {
                    tensor: name,
                    type_id,
                })
            }
        };
        let elements = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
        let bytes = tensor_bytes(block, type_size, &dims).filter(|&n| n <= MAX_TENSOR_BYTES);
        let (Some(elements), Some(bytes)) = (elements, bytes) else {
            bail!(r, "tensor {shown} has an impossible shape {dims:?}");
        };
        if elements >= 1 << 63 || dims.iter().any(|&d| d >= 1 << 63) {
            bail!(r, "tensor {shown} has an impossible shape {dims:?}");
        }
        if dims[0] % block != 0 {
            let row = dims[0];
            bail!(
                r,
                "tensor {shown} has rows of {row}, not a multiple of {block} as {type_name} needs"
            );
        }
        if offset != next_offset {
            bail!(
                r,
                "tensor {shown} has data offset {offset}, but {next_offset} was expected"
            );
        }
        let overflow = || r.corrupt("its tensor data would end beyond 2^64 bytes".into());
        end = offset.checked_add(bytes).ok_or_else(overflow)?;
        next_offset = align_up(end, alignment).ok_or_else(overflow)?;
    }
    Ok(end)
}

/// Builders of small GGUF files, for tests here and elsewhere.
#[doc(hidden)]
pub mod synth {
    use super::{tensor_bytes, tensor_type, TensorType};

    /// A synthetic GGUF and the offsets where its sections end.
    pub struct SyntheticGguf {
        pub bytes: Vec<u8>,
        pub metadata_end: usize,
        pub index_end: usize,
        pub data_start: usize,
    }

    pub fn put_u32(buf: &mut Vec<u8>, v: u32) {
        buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn put_u64(buf: &mut Vec<u8>, v: u64) {
        buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn put_str(buf: &mut Vec<u8>, s: &str) {
        put_u64(buf, s.len() as u64);
        buf.extend_from_slice(s.as_bytes());
    }

    pub fn put_header(buf: &mut Vec<u8>, version: u32, n_tensors: u64, n_kv: u64) {
        buf.extend_from_slice(b"GGUF");
        put_u32(buf, version);
        put_u64(buf, n_tensors);
        put_u64(buf, n_kv);
    }

    /// Writes a metadata key and its value type; the caller writes the value.
    pub fn put_key(buf: &mut Vec<u8>, key: &str, value_type: u32) {
        put_str(buf, key);
        put_u32(buf, value_type);
    }

    /// Data size of a tensor; 0 for a type the table does not know.
    pub fn tensor_size(type_id: u32, dims: &[u64]) -> usize {
        let TensorType::Known(_, block, size) = tensor_type(type_id) else {
            return 0;
        };
        let bytes = tensor_bytes(block, size, dims);
        bytes.and_then(|n| usize::try_from(n).ok()).unwrap_or(0)
    }

    /// A structurally valid GGUF: version 3, six metadata entries (general.architecture,
    /// general.name, general.alignment = 32, `<arch>.context_length`, a string array and an f32
    /// array), zero-filled tensor data, no padding after the last tensor.
    pub fn synthetic_gguf(arch: &str, tensors: &[(&str, &[u64], u32)]) -> Vec<u8> {
        synthetic_gguf_layout(arch, tensors).bytes
    }

    pub fn synthetic_gguf_layout(arch: &str, tensors: &[(&str, &[u64], u32)]) -> SyntheticGguf {
        const ALIGN: usize = 32;
        let mut b = Vec::new();
        put_header(&mut b, 3, tensors.len() as u64, 6);
        put_key(&mut b, "general.architecture", 8);
        put_str(&mut b, arch);
        put_key(&mut b, "general.name", 8);
        put_str(&mut b, &format!("synthetic {arch} model"));
        put_key(&mut b, "general.alignment", 4);
        put_u32(&mut b, ALIGN as u32);
        put_key(&mut b, &format!("{arch}.context_length"), 4);
        put_u32(&mut b, 128);
        put_key(&mut b, "tokenizer.ggml.tokens", 9);
        put_u32(&mut b, 8);
        put_u64(&mut b, 4);
        for token in ["<unk>", "<s>", "</s>", "hello"] {
            put_str(&mut b, token);
        }
        put_key(&mut b, "tokenizer.ggml.scores", 9);
        put_u32(&mut b, 6);
        put_u64(&mut b, 4);
        b.extend_from_slice(&[0; 16]);
        let metadata_end = b.len();
        let sizes: Vec<usize> = tensors.iter().map(|t| tensor_size(t.2, t.1)).collect();
        let mut offset = 0;
        for (&(name, dims, type_id), size) in tensors.iter().zip(&sizes) {
            put_str(&mut b, name);
            put_u32(&mut b, dims.len() as u32);
            dims.iter().for_each(|&d| put_u64(&mut b, d));
            put_u32(&mut b, type_id);
            put_u64(&mut b, offset as u64);
            offset = (offset + size).next_multiple_of(ALIGN);
        }
        let index_end = b.len();
        let data_start = match tensors {
            [] => index_end,
            _ => index_end.next_multiple_of(ALIGN),
        };
        // Offsets are aligned, so the last tensor starts at `offset` minus its padded size.
        let data_len = sizes
            .last()
            .map_or(0, |last| offset - last.next_multiple_of(ALIGN) + last);
        b.resize(data_start + data_len, 0);
        SyntheticGguf {
            bytes: b,
            metadata_end,
            index_end,
            data_start,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::synth::*;
    use super::*;

    const TENSORS: &[(&str, &[u64], u32)] = &[
        ("token_embd.weight", &[64, 4], 1),
        ("blk.0.attn_q.weight", &[256, 2], 12),
        ("output_norm.weight", &[64], 0),
    ];

    fn check(bytes: &[u8]) -> Result<GgufInfo, GgufError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.gguf");
        std::fs::write(&path, bytes).unwrap();
        inspect(&path)
    }

    fn err(bytes: &[u8]) -> GgufError {
        check(bytes).unwrap_err()
    }

    /// Asserts that inspecting `bytes` fails with a message containing `want`.
    fn says(bytes: &[u8], want: &str) {
        let msg = err(bytes).to_string();
        assert!(msg.contains(want), "{msg:?} does not contain {want:?}");
    }

    /// A header claiming one tensor and one metadata entry `key` of `value_type` with `value`,
    /// then 64 zero bytes.
    fn one_kv(key: &str, value_type: u32, value: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        put_header(&mut b, 3, 1, 1);
        put_key(&mut b, key, value_type);
        b.extend_from_slice(value);
        b.resize(b.len() + 64, 0);
        b
    }

    fn one_tensor(dims: &[u64], type_id: u32) -> Vec<u8> {
        synthetic_gguf("llama", &[("w", dims, type_id)])
    }

    #[test]
    fn valid_files_pass() {
        let bytes = synthetic_gguf("llama", TENSORS);
        let info = check(&bytes).unwrap();
        assert_eq!((info.version, info.n_tensors, info.n_kv), (3, 3, 6));
        assert_eq!(info.architecture.as_deref(), Some("llama"));
        assert_eq!(info.name.as_deref(), Some("synthetic llama model"));
        assert_eq!(info.file_size, bytes.len() as u64);
        assert_eq!(info.data_end, info.file_size);
        let other = check(&synthetic_gguf("notanarch", TENSORS)).unwrap();
        assert_eq!(other.architecture.as_deref(), Some("notanarch"));
        let mut v2 = bytes.clone();
        v2[4] = 2;
        assert_eq!(check(&v2).unwrap().version, 2);
        let mut trailing = bytes;
        trailing.extend_from_slice(&[0; 100]);
        let info = check(&trailing).unwrap();
        assert_eq!(info.data_end + 100, info.file_size);
        let scalar = check(&one_tensor(&[], 0)).unwrap();
        assert_eq!(scalar.data_end, scalar.file_size);
    }

    #[test]
    fn every_known_type_and_sizes() {
        let known = (0..64).filter(|&t| matches!(tensor_type(t), TensorType::Known(..)));
        let ids: Vec<u32> = known.collect();
        assert_eq!(ids.len(), 35);
        let names: Vec<String> = ids.iter().map(|t| format!("t{t}")).collect();
        let dims: &[u64] = &[256, 3];
        let tensors: Vec<_> = ids
            .iter()
            .zip(&names)
            .map(|(&t, n)| (n.as_str(), dims, t))
            .collect();
        let s = synthetic_gguf_layout("llama", &tensors);
        assert_eq!(check(&s.bytes).unwrap().data_end, s.bytes.len() as u64);
        let q4k = synthetic_gguf_layout("llama", &[("w", &[256, 4], 12)]);
        assert_eq!(q4k.bytes.len() - q4k.data_start, 4 * 144);
        let mxfp4 = synthetic_gguf_layout("llama", &[("w", &[64, 2, 3], 39)]);
        assert_eq!(mxfp4.bytes.len() - mxfp4.data_start, 2 * 17 * 2 * 3);
    }

    #[test]
    fn filesystem_problems() {
        let dir = tempfile::tempdir().unwrap();
        let e = inspect(&dir.path().join("nope.gguf")).unwrap_err();
        assert!(matches!(e, GgufError::NotFound));
        assert_eq!(e.to_string(), "no such file");
        let e = inspect(dir.path()).unwrap_err();
        assert_eq!(e.to_string(), "is a directory, not a file");
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locked.gguf");
        std::fs::write(&path, synthetic_gguf("llama", TENSORS)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        if File::open(&path).is_ok() {
            eprintln!("skipping unreadable_file: file modes do not stop this user (root?)");
            return;
        }
        let e = inspect(&path).unwrap_err();
        assert_eq!(e.to_string(), "cannot be read: permission denied");
    }

    #[test]
    fn not_gguf_files() {
        assert_eq!(err(b"").to_string(), "is empty");
        let short = err(b"GGU").to_string();
        assert_eq!(short, "is not a GGUF file (it is only 3 bytes long)");
        let mut state = 0x1234_5678_u32;
        let mut random = Vec::new();
        for _ in 0..4096 {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            random.push((state >> 24) as u8);
        }
        let msg = err(&random).to_string();
        assert_eq!(
            msg,
            "is not a GGUF file (it does not start with the GGUF magic bytes)"
        );
        let text = "Hello, this is not a model. Ünïcödé\n".repeat(40);
        let msg = err(text.as_bytes()).to_string();
        assert_eq!(msg, "is not a GGUF file (it is a text file)");
        says(
            b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\n",
            "Git LFS pointer",
        );
        says(b"\n<!DOCTYPE html><html>nope</html>", "HTML page");
        says(b"PK\x03\x04rest-of-zip", "ZIP archive");
        says(b"\x10\0\0\0\0\0\0\0{\"a\":{}}xxxxxx", "safetensors");
        says(b"tjgg\x01\0\0\0", "old GGML format");
    }

    #[test]
    fn versions() {
        let mut bytes = synthetic_gguf("llama", TENSORS);
        for v in [1, 7, 99] {
            bytes[4..8].copy_from_slice(&u32::to_le_bytes(v));
            assert!(matches!(err(&bytes), GgufError::UnsupportedVersion(x) if x == v));
            says(
                &bytes,
                &format!("has unsupported GGUF version {v} (supported: 2 and 3)"),
            );
        }
        bytes[4..8].copy_from_slice(&3u32.to_be_bytes());
        assert!(matches!(err(&bytes), GgufError::BigEndian));
    }

    #[test]
    fn truncated_at_every_length() {
        let s = synthetic_gguf_layout("llama", TENSORS);
        let full = s.bytes.len();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.gguf");
        let mut last_kv = 0;
        for len in 0..full {
            std::fs::write(&path, &s.bytes[..len]).unwrap();
            let e = inspect(&path).unwrap_err();
            let msg = e.to_string();
            let ok = match e {
                GgufError::Empty => len == 0,
                GgufError::NotGguf(_) => (1..4).contains(&len),
                GgufError::TruncatedHeader => (4..24).contains(&len),
                GgufError::TruncatedMetadata { index, count } => {
                    assert!(index >= last_kv && count == 6, "{msg}");
                    last_kv = index;
                    (24..s.metadata_end).contains(&len)
                }
                GgufError::TruncatedTensorIndex { count, .. } => {
                    count == 3 && (s.metadata_end..s.index_end).contains(&len)
                }
                GgufError::TruncatedData { needed, actual } => {
                    len >= s.index_end && needed == full as u64 && actual == len as u64
                }
                _ => false,
            };
            assert!(ok, "cut at {len} of {full}: {msg}");
        }
        assert_eq!(last_kv, 6);
        let want = format!("is truncated in its tensor data: it needs {full} bytes but has 900");
        assert_eq!(err(&s.bytes[..900]).to_string(), want);
        let msg = err(&s.bytes[..30]).to_string();
        assert_eq!(msg, "is truncated in its metadata (key/value 1 of 6)");
        let msg = err(&s.bytes[..s.metadata_end + 5]).to_string();
        assert_eq!(msg, "is truncated in its tensor index (tensor 1 of 3)");
    }

    #[test]
    fn zero_tensors() {
        let e = err(&synthetic_gguf("llama", &[]));
        assert!(matches!(e, GgufError::NoTensors));
        let msg = e.to_string();
        assert_eq!(
            msg,
            "has no tensors (a vocabulary-only GGUF cannot be evaluated)"
        );
    }

    #[test]
    fn hostile_lengths_and_counts() {
        let huge_string = one_kv("x", 8, &(1u64 << 60).to_le_bytes());
        assert!(matches!(
            err(&huge_string),
            GgufError::CorruptMetadata { index: 1, .. }
        ));
        let want = "a string value is 1152921504606846976 bytes long (the limit is 1073741824)";
        says(&huge_string, want);
        let arch = one_kv("general.architecture", 8, &u64::MAX.to_le_bytes());
        says(
            &arch,
            "general.architecture is 18446744073709551615 bytes long",
        );
        let mut key = Vec::new();
        put_header(&mut key, 3, 1, 1);
        put_u64(&mut key, 1 << 60);
        says(
            &key,
            "a key is 1152921504606846976 bytes long (the limit is 65535)",
        );
        for count in [1u64 << 62, 1 << 40, u64::MAX] {
            let mut array = 4u32.to_le_bytes().to_vec();
            array.extend_from_slice(&count.to_le_bytes());
            let want = format!("it has an array of {count} elements (the limit is 1073741824)");
            says(&one_kv("a", 9, &array), &want);
        }
        let wide = one_kv("a", 9, &[10, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0]);
        says(
            &wide,
            "claims an array of 1073741824 u64 values, more than the 64 bytes left",
        );
        for (n_tensors, n_kv) in [(1, 1u64 << 60), (1 << 60, 1), (u64::MAX, u64::MAX)] {
            let mut b = Vec::new();
            put_header(&mut b, 3, n_tensors, n_kv);
            b.resize(200, 0);
            assert!(matches!(err(&b), GgufError::CorruptHeader(_)));
            says(&b, "more than a file of 200 bytes could hold");
        }
        let mut many = Vec::new();
        put_header(&mut many, 3, 1, 1000);
        many.resize(30, 0);
        assert!(matches!(
            err(&many),
            GgufError::TruncatedMetadata { count: 1000, .. }
        ));
    }

    #[test]
    fn nested_arrays() {
        let nest = |levels: usize| {
            let mut v = Vec::new();
            for _ in 1..levels {
                put_u32(&mut v, 9);
                put_u64(&mut v, 1);
            }
            v.extend_from_slice(&[4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0]);
            v
        };
        let deep = one_kv("deep", 9, &nest(20));
        assert!(matches!(err(&deep), GgufError::CorruptMetadata { .. }));
        says(&deep, "its arrays are nested more than 8 levels deep");
        // Eight levels are fine, and the zeros after them happen to form a valid tensor index
        // (one unnamed F32 scalar at offset 0).
        assert!(check(&one_kv("ok", 9, &nest(8))).is_ok());
    }

    #[test]
    fn bad_metadata_entries() {
        says(&one_kv("x", 13, &[]), "it has unknown value type 13");
        says(
            &one_kv("x", 9, &[13, 0, 0, 0, 1]),
            "array of unknown value type 13",
        );
        says(&one_kv("", 0, &[1]), "(key/value 1 of 1): its key is empty");
        let three = one_kv("general.alignment", 4, &3u32.to_le_bytes());
        says(
            &three,
            "general.alignment is 3, which is not a power of two",
        );
        let wide = one_kv("general.alignment", 10, &32u64.to_le_bytes());
        says(&wide, "general.alignment should be a u32 but is a u64");
        says(
            &one_kv("general.architecture", 4, &[1; 4]),
            "should be a string but is a u32",
        );
        let mut dup = Vec::new();
        put_header(&mut dup, 3, 1, 2);
        for _ in 0..2 {
            put_key(&mut dup, "k", 0);
            dup.push(1);
        }
        says(&dup, "key/value 2 of 2): key \"k\" appears more than once");
        let mut bad_utf8 = Vec::new();
        put_header(&mut bad_utf8, 3, 1, 1);
        put_u64(&mut bad_utf8, 2);
        bad_utf8.extend_from_slice(&[0xff, 0xfe, 0, 0, 0, 0, 1]);
        says(&bad_utf8, "its key is not valid UTF-8");
    }

    #[test]
    fn bad_tensor_entries() {
        let unknown = one_tensor(&[64], 43);
        assert!(matches!(
            err(&unknown),
            GgufError::UnknownTensorType { type_id: 43, .. }
        ));
        let msg = err(&unknown).to_string();
        assert_eq!(
            msg,
            "uses tensor type 43, which this version does not know (tensor \"w\")"
        );
        let removed = one_tensor(&[64], 31);
        says(
            &removed,
            "type 31 (Q4_0_4_4), which llama.cpp no longer supports",
        );
        let row = one_tensor(&[33, 2], 2);
        says(
            &row,
            "tensor \"w\" has rows of 33, not a multiple of 32 as Q4_0 needs",
        );
        says(
            &one_tensor(&[1; 5], 0),
            "tensor \"w\" has 5 dimensions (the limit is 4)",
        );
        says(&one_tensor(&[1 << 40, 1 << 40], 0), "impossible shape");
        says(&one_tensor(&[1 << 63], 0), "impossible shape");
        let long_name = "n".repeat(64);
        let long = synthetic_gguf("llama", &[(long_name.as_str(), &[4], 0)]);
        says(&long, "a tensor name is 64 bytes long (the limit is 63)");
        let twice = synthetic_gguf("llama", &[("w", &[4], 0), ("w", &[4], 0)]);
        says(
            &twice,
            "(tensor 2 of 2): tensor \"w\" appears more than once",
        );
        // The last 8 bytes of the index are the last tensor's offset.
        let mut s = synthetic_gguf_layout("llama", TENSORS);
        s.bytes[s.index_end - 8] += 32;
        assert!(matches!(
            err(&s.bytes),
            GgufError::CorruptTensorIndex { index: 3, .. }
        ));
        says(&s.bytes, "has data offset 832, but 800 was expected");
    }
}
