//! Rewrite the metadata of a real GGUF file: set, add or remove keys, leaving the tensor index
//! and data as they are. Tests use it to make hostile variants of the default model.
#![allow(dead_code)]

/// A metadata value to write.
#[derive(Debug, Clone)]
pub enum V {
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    StrArray(Vec<Vec<u8>>),
}

impl V {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            V::U32(v) => {
                out.extend(4u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            V::I32(v) => {
                out.extend(5u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            V::F32(v) => {
                out.extend(6u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            V::Bool(v) => {
                out.extend(7u32.to_le_bytes());
                out.push(u8::from(*v));
            }
            V::Str(s) => {
                out.extend(8u32.to_le_bytes());
                put_str(out, s.as_bytes());
            }
            V::StrArray(items) => {
                out.extend(9u32.to_le_bytes());
                out.extend(8u32.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                for s in items {
                    put_str(out, s);
                }
            }
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        s
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().unwrap())
    }
    fn string(&mut self) -> Vec<u8> {
        let n = self.u64() as usize;
        self.take(n).to_vec()
    }
    fn skip_value(&mut self, t: u32) {
        match t {
            0 | 1 | 7 => {
                self.take(1);
            }
            2 | 3 => {
                self.take(2);
            }
            4..=6 => {
                self.take(4);
            }
            10..=12 => {
                self.take(8);
            }
            8 => {
                self.string();
            }
            9 => {
                let et = self.u32();
                let n = self.u64();
                for _ in 0..n {
                    self.skip_value(et);
                }
            }
            _ => panic!("unknown GGUF value type {t}"),
        }
    }
}

/// The strings of a string-array key (e.g. `tokenizer.ggml.tokens`).
pub fn read_str_array(src: &[u8], key: &str) -> Vec<Vec<u8>> {
    let mut c = Cursor { b: src, at: 8 };
    c.u64();
    let n_kv = c.u64();
    for _ in 0..n_kv {
        let k = c.string();
        let t = c.u32();
        if k == key.as_bytes() && t == 9 {
            let et = c.u32();
            assert_eq!(et, 8, "{key} is not a string array");
            let n = c.u64();
            return (0..n).map(|_| c.string()).collect();
        }
        c.skip_value(t);
    }
    panic!("{key} not found");
}

/// `src` with each `(key, Some(value))` set (added when missing) and each `(key, None)`
/// removed.
pub fn edit(src: &[u8], edits: &[(&str, Option<V>)]) -> Vec<u8> {
    assert_eq!(&src[..4], b"GGUF");
    let mut c = Cursor { b: src, at: 4 };
    let version = c.u32();
    let n_tensors = c.u64();
    let n_kv = c.u64();
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut alignment = 32u64;
    for _ in 0..n_kv {
        let key = c.string();
        let start = c.at;
        let t = c.u32();
        if key == b"general.alignment" && t == 4 {
            alignment = u64::from(u32::from_le_bytes(src[c.at..c.at + 4].try_into().unwrap()));
        }
        c.skip_value(t);
        entries.push((key, src[start..c.at].to_vec()));
    }
    let index_start = c.at;
    for _ in 0..n_tensors {
        c.string();
        let n_dims = c.u32();
        for _ in 0..n_dims {
            c.u64();
        }
        c.u32();
        c.u64();
    }
    let index = &src[index_start..c.at];
    let data_start = (c.at as u64).div_ceil(alignment) * alignment;
    let data = &src[data_start as usize..];

    for (key, value) in edits {
        let pos = entries.iter().position(|(k, _)| k == key.as_bytes());
        match (pos, value) {
            (Some(i), Some(v)) => {
                let mut enc = Vec::new();
                v.encode(&mut enc);
                entries[i].1 = enc;
            }
            (None, Some(v)) => {
                let mut enc = Vec::new();
                v.encode(&mut enc);
                entries.push((key.as_bytes().to_vec(), enc));
            }
            (Some(i), None) => {
                entries.remove(i);
            }
            (None, None) => {}
        }
    }
    let mut out = Vec::with_capacity(src.len() + 4096);
    out.extend_from_slice(b"GGUF");
    out.extend(version.to_le_bytes());
    out.extend(n_tensors.to_le_bytes());
    out.extend((entries.len() as u64).to_le_bytes());
    for (k, v) in &entries {
        put_str(&mut out, k);
        out.extend_from_slice(v);
    }
    out.extend_from_slice(index);
    let padded = (out.len() as u64).div_ceil(alignment) * alignment;
    out.resize(padded as usize, 0);
    out.extend_from_slice(data);
    out
}
