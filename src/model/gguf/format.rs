//! What a GGUF file holds, as the pre-flight check reports it: the limits it enforces, the
//! metadata values it keeps, the tensor index, and the ways a file can be unusable.

use std::collections::BTreeMap;

pub(super) const MAGIC: [u8; 4] = *b"GGUF";
pub(super) const DEFAULT_ALIGNMENT: u64 = 32;
pub(super) const MAX_ARRAY_DEPTH: u32 = 8;
/// The GGUF specification limits keys to 65535 bytes.
pub(super) const MAX_KEY_LEN: u64 = 65_535;
/// llama.cpp's `GGML_MAX_NAME` is 64 bytes including the terminating NUL.
pub(super) const MAX_TENSOR_NAME_LEN: u64 = 63;
/// llama.cpp's `GGUF_MAX_STRING_LENGTH` and `GGUF_MAX_ARRAY_ELEMENTS`.
pub(super) const MAX_STRING_LEN: u64 = 1 << 30;
pub(super) const MAX_ARRAY_LEN: u64 = 1 << 30;
pub(super) const MAX_INFO_STRING_LEN: u64 = 1 << 16;
/// A stored size that runs past the end of the file is reported as truncation up to this many
/// bytes and as corruption beyond it: no real metadata section or tensor index is this large.
pub(super) const PLAUSIBLE_META_BYTES: u64 = 1 << 32;
pub(super) const MAX_TENSOR_BYTES: u64 = 1 << 50;
/// Smallest possible metadata entry: key length, value type, one-byte value.
pub(super) const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// Smallest possible tensor index entry: name length, n_dims, type, offset.
pub(super) const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;
pub(super) const T_U32: u32 = 4;
pub(super) const T_STRING: u32 = 8;
pub(super) const T_ARRAY: u32 = 9;

/// A metadata value as [`inspect`] keeps it: scalars, short strings, and the elements of
/// short numeric arrays (per-layer hyperparameters); other values only by their kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i128),
    Float(f64),
    Bool(bool),
    Str(String),
    /// A numeric or boolean array of at most [`MAX_KEPT_ARRAY`] elements, as integers.
    IntArray(Vec<i128>),
    /// Anything else (long strings and arrays, string arrays): its type name and length.
    Other(&'static str, u64),
}

impl Value {
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(v) => Some(*v),
            Value::Bool(b) => Some(i128::from(*b)),
            _ => None,
        }
    }
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Int(v) => Some(*v as f64),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    /// A scalar as one value, an array as its elements.
    pub fn ints(&self) -> Vec<i128> {
        match self {
            Value::IntArray(v) => v.clone(),
            other => other.as_int().into_iter().collect(),
        }
    }
}

/// Numeric arrays up to this length are kept (per-layer values; llama.cpp allows 512 layers).
pub const MAX_KEPT_ARRAY: u64 = 4096;

/// One tensor of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub type_id: u32,
    /// ggml order: `dims[0]` is the row length.
    pub dims: Vec<u64>,
    /// Offset of its data from the start of the file.
    pub offset: u64,
    pub bytes: u64,
}

/// What [`inspect`] learned about a structurally valid GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufInfo {
    pub version: u32,
    pub n_tensors: u64,
    pub n_kv: u64,
    pub architecture: Option<String>,
    pub name: Option<String>,
    pub file_size: u64,
    /// Offset where the last tensor's data ends.
    pub data_end: u64,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    /// How many entries `tokenizer.ggml.tokens` has (0 without one).
    pub n_tokens: u64,
}

impl GgufInfo {
    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }
    /// An architecture-specific value: `{arch}.{key}`.
    pub fn arch_value(&self, key: &str) -> Option<&Value> {
        let arch = self.architecture.as_deref()?;
        self.metadata.get(&format!("{arch}.{key}"))
    }
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
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
    /// A value llama.cpp asserts on (and would abort the process over).
    #[error("has a hyperparameter llama.cpp cannot use: {0}")]
    Hyperparameter(String),
}
