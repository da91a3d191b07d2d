//! Builders of small GGUF files: a test double for the pre-flight checks. Shared by the
//! integration tests (`mod common`) and by `model::gguf`'s unit tests (`#[path]`), never part
//! of the library.
#![allow(dead_code)]

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
    logitscope::model::gguf::types::tensor_size(type_id, dims)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
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
