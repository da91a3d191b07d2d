//! What the lens multiplies with: the model's final norm and its output matrix W, read from
//! the GGUF, and the product computed as llama.cpp's CPU backend computes it (the activation
//! rounded to W's dot-product type, ggml's own dot product) — or exactly, in f64, for the H·W
//! panel.

use super::dot::{dot_f64, dot_f64_2x2, Wide};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use llama_cpp_sys_2 as sys;

use crate::analysis::lens::LensFacts;
use crate::model::gguf::{types::type_name, GgufInfo, TensorInfo, Value};

/// Why a lens cannot be shown for a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The final norm's scale at a state, and the mean it takes out (layer norms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frozen {
    pub scale: f32,
    pub mean: Option<f32>,
}

/// How a model's final norm works.
#[derive(Debug, Clone, PartialEq)]
pub enum Norm {
    /// x / sqrt(mean(x²) + eps) · w
    Rms { eps: f32 },
    /// (x − mean) / sqrt(var + eps) · w + b
    Layer { eps: f32, bias: Vec<f32> },
}

/// What llama.cpp does to the logits after H·W, per architecture.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Post {
    /// Logits multiplied by this (command-r, cohere, grok: `logit_scale`).
    pub scale: Option<f32>,
    /// Logits divided by this (granite, minicpm: `logit_scale`).
    pub divide: Option<f32>,
    /// cap · tanh(logits / cap) (gemma 2 and later, grok: `final_logit_softcapping`).
    pub softcap: Option<f32>,
}

impl Post {
    pub fn apply(&self, z: &mut [f32]) {
        for x in z.iter_mut() {
            if let Some(s) = self.scale {
                *x *= s;
            }
            if let Some(d) = self.divide {
                *x /= d;
            }
            if let Some(c) = self.softcap {
                *x = c * (*x / c).tanh();
            }
        }
    }

    /// The same in f64, for one logit.
    pub fn apply_f64(&self, mut x: f64) -> f64 {
        if let Some(s) = self.scale {
            x *= f64::from(s);
        }
        if let Some(d) = self.divide {
            x /= f64::from(d);
        }
        if let Some(c) = self.softcap {
            let c = f64::from(c);
            x = c * (x / c).tanh();
        }
        x
    }

    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(s) = self.scale {
            parts.push(format!("× {s} (logit_scale)"));
        }
        if let Some(d) = self.divide {
            parts.push(format!("÷ {d} (logit_scale)"));
        }
        if let Some(c) = self.softcap {
            parts.push(format!("{c}·tanh(z/{c}) (final_logit_softcapping)"));
        }
        (!parts.is_empty()).then(|| parts.join(", then "))
    }
}

/// The final norm and W of a model, with the facts the H·W panel shows.
pub struct Readout {
    pub facts: LensFacts,
    norm: Norm,
    norm_weight: Vec<f32>,
    post: Post,
    /// W's raw bytes: n_vocab rows of `row_bytes`, of type `w_type`.
    w: Vec<u8>,
    w_type: sys::ggml_type,
    row_bytes: usize,
}

impl Readout {
    /// Read the final norm and W of the model at `path` (`n_vocab`: its vocabulary size).
    pub fn read(path: &Path, n_vocab: usize) -> Result<Self, Unavailable> {
        let un = |s: String| Unavailable(s);
        let info = crate::model::gguf::inspect(path).map_err(|e| un(format!("the file: {e}")))?;
        let arch = info.architecture.clone().unwrap_or_default();
        let n_embd = int(&info, "embedding_length")
            .ok_or_else(|| un(format!("{arch}.embedding_length is missing")))?;
        let n_layer = int(&info, "block_count")
            .ok_or_else(|| un(format!("{arch}.block_count is missing")))?;
        let (w_info, tied) = match info.tensor("output.weight") {
            Some(t) => (t, false),
            None => (
                info.tensor("token_embd.weight").ok_or_else(|| {
                    un("the model has neither output.weight nor token_embd.weight".into())
                })?,
                true,
            ),
        };
        if w_info.dims.first().copied() != Some(n_embd as u64)
            || w_info.dims.get(1).copied() != Some(n_vocab as u64)
        {
            return Err(un(format!(
                "{} has shape {:?}, not {n_embd} × {n_vocab}",
                w_info.name, w_info.dims
            )));
        }
        let norm_t = info
            .tensor("output_norm.weight")
            .ok_or_else(|| un("the model has no output_norm.weight (final norm)".into()))?;
        let norm_weight = read_f32(path, norm_t).map_err(un)?;
        let float = |k: &str| {
            info.arch_value(k)
                .and_then(Value::as_float)
                .map(|v| v as f32)
        };
        let norm = match (
            float("attention.layer_norm_rms_epsilon"),
            float("attention.layer_norm_epsilon"),
        ) {
            (Some(eps), _) => Norm::Rms { eps },
            (None, Some(eps)) => Norm::Layer {
                eps,
                bias: match info.tensor("output_norm.bias") {
                    Some(b) => read_f32(path, b).map_err(un)?,
                    None => vec![0.0; n_embd],
                },
            },
            _ => return Err(un(format!("no final-norm epsilon for architecture {arch}"))),
        };
        let post = post_for(&arch, &info);
        let mut w = vec![0u8; usize::try_from(w_info.bytes).unwrap_or(0)];
        read_at(path, w_info.offset, &mut w).map_err(un)?;
        let w_type = w_info.type_id as sys::ggml_type;
        // SAFETY: plain lookups of ggml's type tables.
        let row_bytes = unsafe { sys::ggml_row_size(w_type, n_embd as i64) };
        // SAFETY: ggml's static table of CPU type traits; `as_ref` checks for null.
        let cpu = unsafe { sys::ggml_get_type_traits_cpu(w_type).as_ref() };
        if cpu.is_none_or(|c| c.vec_dot.is_none()) || row_bytes * n_vocab != w.len() {
            return Err(un(format!(
                "W's type {} has no CPU dot product",
                type_name(w_info.type_id)
            )));
        }
        let facts = LensFacts {
            n_layer,
            n_embd,
            n_vocab,
            w: w_info.name.clone(),
            w_type: type_name(w_info.type_id),
            tied,
            norm: match &norm {
                Norm::Rms { eps } => format!("RMS norm, eps {eps:e}"),
                Norm::Layer { eps, .. } => format!("layer norm, eps {eps:e}"),
            },
            post: post.describe(),
        };
        Ok(Self {
            facts,
            norm,
            norm_weight,
            post,
            w,
            w_type,
            row_bytes,
        })
    }

    /// The final norm's scale at `h` (and the mean it takes out, for a layer norm), computed
    /// as llama.cpp computes them on the CPU: the sums in f64, the scale in f32.
    pub fn frozen(&self, h: &[f32]) -> Frozen {
        let n = h.len() as f64;
        match &self.norm {
            Norm::Rms { eps } => {
                let sum: f64 = h.iter().map(|&x| f64::from(x * x)).sum();
                let mean = (sum / n) as f32;
                Frozen {
                    scale: 1.0f32 / (mean + eps).sqrt(),
                    mean: None,
                }
            }
            Norm::Layer { eps, .. } => {
                let mean = (h.iter().map(|&x| f64::from(x)).sum::<f64>() / n) as f32;
                let var: f64 = h.iter().map(|&x| f64::from((x - mean) * (x - mean))).sum();
                let var = (var / n) as f32;
                Frozen {
                    scale: 1.0f32 / (var + eps).sqrt(),
                    mean: Some(mean),
                }
            }
        }
    }

    /// The final norm applied to `h`, computed as llama.cpp computes it on the CPU.
    pub fn normed(&self, h: &[f32]) -> Vec<f32> {
        let w = &self.norm_weight;
        let Frozen { scale, mean } = self.frozen(h);
        match (&self.norm, mean) {
            (Norm::Layer { bias, .. }, Some(mean)) => h
                .iter()
                .zip(w)
                .zip(bias)
                .map(|((&x, &w), &b)| ((x - mean) * scale) * w + b)
                .collect(),
            _ => h.iter().zip(w).map(|(&x, &w)| (x * scale) * w).collect(),
        }
    }

    /// The final norm's weight.
    pub fn norm_weight(&self) -> &[f32] {
        &self.norm_weight
    }

    /// The final norm's bias (layer norms; zeros when the GGUF has none).
    pub fn norm_bias(&self) -> Option<&[f32]> {
        match &self.norm {
            Norm::Layer { bias, .. } => Some(bias),
            Norm::Rms { .. } => None,
        }
    }

    /// What llama.cpp applies after H·W.
    pub fn post(&self) -> Post {
        self.post
    }

    /// W's row of `token`, dequantized.
    pub fn w_row(&self, token: usize) -> Vec<f32> {
        let row = &self.w[token * self.row_bytes..(token + 1) * self.row_bytes];
        dequantize(self.w_type, row, self.facts.n_embd)
    }

    /// The logits of a residual-stream state `h`: final norm, W with ggml's dot product, and
    /// what the architecture applies after it.
    pub fn logits(&self, h: &[f32]) -> Vec<f32> {
        let y = self.normed(h);
        let (_, q) = self.to_dot_type(&y);
        let mut z = vec![0f32; self.facts.n_vocab];
        // SAFETY: the traits of W's type have a vec_dot (checked in `new`); `q` is `y` in
        // that dot product's type; every W row is `row_bytes` long.
        unsafe {
            let Some(dot) = (*sys::ggml_get_type_traits_cpu(self.w_type)).vec_dot else {
                return z;
            };
            for (t, out) in z.iter_mut().enumerate() {
                let row = self.w.as_ptr().add(t * self.row_bytes);
                dot(
                    y.len() as i32,
                    out,
                    0,
                    row.cast(),
                    0,
                    q.as_ptr().cast(),
                    0,
                    1,
                );
            }
        }
        self.post.apply(&mut z);
        z
    }

    /// `y` as ggml's CPU dot product with W takes it: rounded to W's `vec_dot_type` (Q8_0
    /// for most quantized W, f32 or f16 for float W). Returns that type and the bytes.
    fn to_dot_type(&self, y: &[f32]) -> (sys::ggml_type, Vec<u8>) {
        // SAFETY: plain lookups of ggml's type tables; `q` has the row size of the dot type
        // for `y.len()` values, which is what from_float writes.
        unsafe {
            let dot_type = (*sys::ggml_get_type_traits_cpu(self.w_type)).vec_dot_type;
            let mut q = vec![0u8; sys::ggml_row_size(dot_type, y.len() as i64)];
            match (*sys::ggml_get_type_traits_cpu(dot_type)).from_float {
                Some(from) if dot_type != sys::GGML_TYPE_F32 => {
                    from(y.as_ptr(), q.as_mut_ptr().cast(), y.len() as i64)
                }
                _ => q.copy_from_slice(std::slice::from_raw_parts(
                    y.as_ptr().cast::<u8>(),
                    y.len() * 4,
                )),
            }
            (dot_type, q)
        }
    }

    /// `y` rounded as the dot product rounds it, back in f32; `None` when it is not rounded.
    pub fn rounded(&self, y: &[f32]) -> Option<Vec<f32>> {
        let (dot_type, q) = self.to_dot_type(y);
        if dot_type == sys::GGML_TYPE_F32 {
            return None;
        }
        Some(dequantize(dot_type, &q, y.len()))
    }

    /// h·W + post in f64 from the dequantized W, for every token, for each of `ys` (normed
    /// states of the same length): W is dequantized once for all of them, its rows shared out
    /// over `threads` threads (the sums are the same whatever the split: one token's logit is
    /// one thread's).
    pub fn exact_logits(&self, ys: &[&[f32]], threads: usize) -> Vec<Vec<f64>> {
        let n_vocab = self.facts.n_vocab;
        let per = n_vocab.div_ceil(threads.max(1)).max(1);
        let ys: Vec<Wide> = ys.iter().map(|y| Wide::of(y)).collect();
        let ys = &ys;
        let part = |range: std::ops::Range<usize>| {
            let n = ys.first().map_or(0, Wide::len);
            let mut out = vec![Vec::with_capacity(range.len()); ys.len()];
            let (mut row, mut w0, mut w1) = (vec![0f32; n], Wide::zeros(n), Wide::zeros(n));
            let mut widen = |t: usize, w: &mut Wide| {
                let bytes = &self.w[t * self.row_bytes..(t + 1) * self.row_bytes];
                dequantize_into(self.w_type, bytes, &mut row);
                w.set(&row);
            };
            let post = |z: f64| self.post.apply_f64(z);
            // Two rows of W against two states at a time; each logit pushed in token order.
            for t in range.clone().step_by(2) {
                let pair = t + 1 < range.end;
                widen(t, &mut w0);
                if pair {
                    widen(t + 1, &mut w1);
                }
                let mut p = 0;
                while p < ys.len() {
                    if pair && p + 1 < ys.len() {
                        let [a, b, c, d] = dot_f64_2x2([&w0, &w1], [&ys[p], &ys[p + 1]]);
                        out[p].extend([post(a), post(c)]);
                        out[p + 1].extend([post(b), post(d)]);
                        p += 2;
                    } else {
                        out[p].push(post(dot_f64(&w0, &ys[p])));
                        if pair {
                            out[p].push(post(dot_f64(&w1, &ys[p])));
                        }
                        p += 1;
                    }
                }
            }
            out
        };
        let parts: Vec<Vec<Vec<f64>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n_vocab)
                .step_by(per)
                .map(|start| {
                    let part = &part;
                    s.spawn(move || part(start..(start + per).min(n_vocab)))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let mut out = vec![Vec::with_capacity(n_vocab); ys.len()];
        for p in parts {
            for (o, chunk) in out.iter_mut().zip(p) {
                o.extend(chunk);
            }
        }
        out
    }

    /// The type llama.cpp's CPU dot product rounds the activation to, by name.
    pub fn dot_type_name(&self) -> String {
        // SAFETY: a lookup in ggml's tables.
        let t = unsafe { (*sys::ggml_get_type_traits_cpu(self.w_type)).vec_dot_type };
        type_name(t as u32)
    }
}

/// One row of `n` values of type `ty` as f32.
fn dequantize(ty: sys::ggml_type, bytes: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    dequantize_into(ty, bytes, &mut out);
    out
}

/// [`dequantize`] into `out` (its length is the number of values).
fn dequantize_into(ty: sys::ggml_type, bytes: &[u8], out: &mut [f32]) {
    // SAFETY: a lookup in ggml's type tables.
    let to_float = unsafe { (*sys::ggml_get_type_traits(ty)).to_float };
    match to_float {
        // SAFETY: `bytes` holds `out.len()` values of `ty`, `out` has room for them.
        Some(f) if ty != sys::GGML_TYPE_F32 => unsafe {
            f(bytes.as_ptr().cast(), out.as_mut_ptr(), out.len() as i64)
        },
        _ => {
            for (r, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *r = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
    }
}

/// A 2-D tensor of any type with a dequantizer, as f32: `dims[1]` rows of `dims[0]` values.
pub(in crate::model) fn read_matrix(path: &Path, t: &TensorInfo) -> Result<Vec<f32>, String> {
    let (Some(&cols), Some(&rows)) = (t.dims.first(), t.dims.get(1)) else {
        return Err(format!("{} is not a matrix", t.name));
    };
    let (cols, rows) = (cols as usize, rows as usize);
    let ty = t.type_id as sys::ggml_type;
    // SAFETY: plain lookups of ggml's type tables (a type id from a checked GGUF).
    let (row_bytes, to_float) = unsafe {
        (
            sys::ggml_row_size(ty, cols as i64),
            (*sys::ggml_get_type_traits(ty)).to_float,
        )
    };
    if t.dims.len() != 2 || row_bytes * rows != t.bytes as usize {
        return Err(format!("{} has an unexpected size", t.name));
    }
    if to_float.is_none() && ty != sys::GGML_TYPE_F32 {
        return Err(format!(
            "{} is {}: no dequantizer",
            t.name,
            type_name(t.type_id)
        ));
    }
    let mut bytes = vec![0u8; row_bytes * rows];
    read_at(path, t.offset, &mut bytes)?;
    let mut out = Vec::with_capacity(cols * rows);
    for row in bytes.chunks_exact(row_bytes) {
        out.extend(dequantize(ty, row, cols));
    }
    Ok(out)
}

fn int(info: &GgufInfo, key: &str) -> Option<usize> {
    info.arch_value(key)
        .and_then(Value::as_int)
        .and_then(|v| usize::try_from(v).ok())
}

/// What the architecture applies to the logits after H·W (see `research-lens`: command-r,
/// cohere2, grok multiply by logit_scale; granite and minicpm divide; gemma 2+ soft-cap).
fn post_for(arch: &str, info: &GgufInfo) -> Post {
    let float = |k: &str| {
        info.arch_value(k)
            .and_then(Value::as_float)
            .map(|v| v as f32)
    };
    let scale = float("logit_scale").filter(|&s| s != 0.0);
    let softcap = float("final_logit_softcapping").filter(|&c| c > 0.0);
    match arch {
        "command-r" | "cohere2" | "cohere2moe" | "grok" | "talkie" => Post {
            scale: scale.or((arch == "grok").then_some(0.577_350_26)),
            divide: None,
            softcap,
        },
        "granite" | "granitemoe" | "granitehybrid" | "minicpm" => Post {
            scale: None,
            divide: scale,
            softcap: None,
        },
        _ => Post {
            scale: None,
            divide: None,
            softcap,
        },
    }
}

fn read_at(path: &Path, offset: u64, buf: &mut [u8]) -> Result<(), String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot read the model: {e}"))?;
    f.seek(SeekFrom::Start(offset))
        .and_then(|_| f.read_exact(buf))
        .map_err(|e| format!("cannot read the model: {e}"))
}

/// A 1-D f32 (or f16) tensor's values.
pub(in crate::model) fn read_f32(path: &Path, t: &TensorInfo) -> Result<Vec<f32>, String> {
    let mut b = vec![0u8; usize::try_from(t.bytes).unwrap_or(0)];
    read_at(path, t.offset, &mut b)?;
    match t.type_id {
        0 => Ok(b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()),
        // SAFETY: ggml's f16 → f32 conversion of one value.
        1 => Ok(b
            .chunks_exact(2)
            .map(|c| unsafe { sys::ggml_fp16_to_fp32(u16::from_le_bytes([c[0], c[1]])) })
            .collect()),
        other => Err(format!(
            "{} is {}, not F32 or F16",
            t.name,
            type_name(other)
        )),
    }
}
