//! Pre-flight checks for GGUF model files.
//!
//! llama.cpp aborts or prints unhelpful errors on malformed files, so [`inspect`] walks the whole
//! GGUF structure (header, metadata, tensor index, extent of the tensor data) without trusting
//! any length stored in it, and reports the first problem as one short phrase. The phrase is
//! meant to follow `model file '<path>' `, so it never contains the path itself.

mod format;
mod hparams;
mod reader;
pub mod types;
mod values;

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

pub use format::{GgufError, GgufInfo, TensorInfo, Value, MAX_KEPT_ARRAY};
use format::{
    DEFAULT_ALIGNMENT, MAGIC, MAX_INFO_STRING_LEN, MAX_KEY_LEN, MAX_TENSOR_BYTES,
    MAX_TENSOR_NAME_LEN, MIN_KV_BYTES, MIN_TENSOR_INFO_BYTES, PLAUSIBLE_META_BYTES, T_ARRAY,
    T_STRING, T_U32,
};
use reader::{align_up, bail, describe, open_error, show, sniff, value_type_name};
use reader::{Reader, Section};
use types::{tensor_bytes, tensor_type, TensorType};
use values::{read_tokens, read_value};

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
    let mut tensors = Vec::new();
    let data_len = read_tensor_index(&mut r, n_tensors, meta.alignment, &mut tensors)?;
    if n_tensors == 0 {
        return Err(GgufError::NoTensors);
    }
    let data_start = align_up(r.pos, meta.alignment)
        .ok_or_else(|| r.corrupt("its tensor data would end beyond 2^64 bytes".into()))?;
    let data_end = data_start
        .checked_add(data_len)
        .ok_or_else(|| r.corrupt("its tensor data would end beyond 2^64 bytes".into()))?;
    if data_end > size {
        return Err(GgufError::TruncatedData {
            needed: data_end,
            actual: size,
        });
    }
    for t in &mut tensors {
        // Overflow is impossible: every tensor ends before `data_end`.
        t.offset += data_start;
    }
    let info = GgufInfo {
        version,
        n_tensors,
        n_kv,
        architecture: meta.architecture,
        name: meta.name,
        file_size: size,
        data_end,
        metadata: meta.values,
        tensors,
        n_tokens: meta.n_tokens,
    };
    hparams::check(&info).map_err(GgufError::Hyperparameter)?;
    Ok(info)
}

struct Meta {
    alignment: u64,
    architecture: Option<String>,
    name: Option<String>,
    values: BTreeMap<String, Value>,
    n_tokens: u64,
}

fn read_metadata(r: &mut Reader, count: u64) -> Result<Meta, GgufError> {
    let mut meta = Meta {
        alignment: DEFAULT_ALIGNMENT,
        architecture: None,
        name: None,
        values: BTreeMap::new(),
        n_tokens: 0,
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
                meta.values.insert(key.clone(), Value::Str(value.clone()));
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
                meta.values.insert(key, Value::Int(i128::from(alignment)));
            }
            // llama.cpp needs these types and aborts on an alignment that is not a u32.
            ("general.architecture", _) => {
                bail!(r, "{key} should be a string but is a {type_name}")
            }
            ("general.alignment", _) => bail!(r, "{key} should be a u32 but is a {type_name}"),
            ("tokenizer.ggml.tokens", T_ARRAY) => {
                meta.n_tokens = read_tokens(r)?;
                meta.values
                    .insert(key, Value::Other("array", meta.n_tokens));
            }
            _ => {
                if let Some(value) = read_value(r, value_type)? {
                    meta.values.insert(key, value);
                }
            }
        }
    }
    Ok(meta)
}

/// Reads the tensor index and returns where the last tensor's data ends, relative to the start
/// of the data section. Like llama.cpp, requires the tensors to lie in order, each at the
/// aligned end of the one before.
fn read_tensor_index(
    r: &mut Reader,
    count: u64,
    alignment: u64,
    tensors: &mut Vec<TensorInfo>,
) -> Result<u64, GgufError> {
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
        tensors.push(TensorInfo {
            name,
            type_id,
            dims,
            offset,
            bytes,
        });
    }
    Ok(end)
}

#[cfg(test)]
#[path = "../../../tests/common/synth.rs"]
mod synth;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::synth::*;
    use super::types::{tensor_type, TensorType};
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
    // A file this user may not read: tests/cli.rs runs the real binary as uid 65534 on a mode-000
    // file (root reads anything, so an in-process test could not fail here).
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
