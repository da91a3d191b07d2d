//! Making a control vector as llama.cpp's `cvector-generator` does with `--method mean`, and
//! writing it in the GGUF format `--control-vector` reads.
//!
//! For each pair of texts (one positive, one negative) both are decoded in a hooked context
//! and the residual stream `l_out-ℓ` is read at every position; the difference positive −
//! negative of each position both texts have is one row (rows that are exactly zero, such as
//! a shared BOS, are left out, as cvector-generator filters them). `direction.(ℓ+1)` is the
//! mean of layer ℓ's rows over all pairs, scaled to unit length, for ℓ = 0 … n_layer − 2
//! (cvector-generator's indexing: llama.cpp adds `direction.k` to the output of layer k).
//! One difference from cvector-generator: it pads the shorter text of a pair with spaces to
//! the longer one's length; here only the positions both texts have are compared.

use std::ffi::CString;
use std::path::Path;

use llama_cpp_sys_2 as sys;

use super::hook::{Hooked, NoTap};
use super::lens::Capture;
use super::loader::{Model, ModelError};

/// The directions of a control vector: `[k − 1]` is `direction.k`, n_embd floats each.
pub type Directions = Vec<Vec<f32>>;

/// The mean method over `pairs` of token sequences (positive, negative), with the intact
/// model (no ablation or steering). `progress(done, total)` after each pair.
pub fn mean_directions(
    model: &Model,
    pairs: &[(Vec<u32>, Vec<u32>)],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Directions, ModelError> {
    let (n_layer, _) = model.shape();
    let n_embd = model.n_embd();
    if n_layer < 2 {
        return Err(ModelError::Intervention(
            "a control vector needs a model of at least two layers".into(),
        ));
    }
    let longest = pairs
        .iter()
        .flat_map(|(a, b)| [a.len(), b.len()])
        .max()
        .unwrap_or(0);
    if longest == 0 {
        return Err(ModelError::Empty);
    }
    let mut ctx = Hooked::new(model, longest as u32, Capture::new(n_layer, n_embd))
        .map_err(ModelError::Decode)?;
    ctx.set_edits(None);
    let mut sums = vec![vec![0f64; n_embd]; n_layer - 1];
    let mut rows = vec![0usize; n_layer - 1];
    let read = |ctx: &mut Hooked<'_, Capture>, tokens: &[u32]| {
        for l in &mut ctx.tap_mut().layers {
            l.clear();
        }
        ctx.decode(tokens)?;
        let layers = std::mem::take(&mut ctx.tap_mut().layers);
        ctx.tap_mut().layers = vec![Vec::new(); n_layer];
        if layers[..n_layer - 1]
            .iter()
            .any(|l| l.len() != tokens.len() * n_embd)
        {
            return Err(ModelError::Intervention(format!(
                "unavailable for this model: its graph does not name the residual stream \
                 l_out-0 … l_out-{} for every token",
                n_layer - 2
            )));
        }
        Ok(layers)
    };
    for (done, (pos, neg)) in pairs.iter().enumerate() {
        if pos.is_empty() || neg.is_empty() {
            return Err(ModelError::Empty);
        }
        let a = read(&mut ctx, pos)?;
        let b = read(&mut ctx, neg)?;
        let n = pos.len().min(neg.len());
        for l in 0..n_layer - 1 {
            for i in 0..n {
                let (x, y) = (
                    &a[l][i * n_embd..(i + 1) * n_embd],
                    &b[l][i * n_embd..(i + 1) * n_embd],
                );
                if x == y {
                    continue;
                }
                rows[l] += 1;
                for ((s, &x), &y) in sums[l].iter_mut().zip(x).zip(y) {
                    *s += f64::from(x - y);
                }
            }
        }
        progress(done + 1, pairs.len());
    }
    sums.into_iter()
        .zip(rows)
        .enumerate()
        .map(|(l, (sum, n))| {
            let mean: Vec<f64> = sum.iter().map(|s| s / n.max(1) as f64).collect();
            let norm = mean.iter().map(|x| x * x).sum::<f64>().sqrt();
            if n == 0 || norm == 0.0 || !norm.is_finite() {
                return Err(ModelError::Intervention(format!(
                    "the positive and negative texts give the same residual stream at layer \
                     {l}: there is no direction to take"
                )));
            }
            Ok(mean.iter().map(|x| (x / norm) as f32).collect())
        })
        .collect()
}

/// Write `directions` as llama.cpp's control-vector GGUF (cvector-generator's `export_gguf`):
/// `general.architecture` = "controlvector", `controlvector.model_hint`,
/// `controlvector.layer_count`, and one F32 tensor `direction.k` per layer.
pub fn write(path: &Path, model_hint: &str, directions: &Directions) -> Result<(), String> {
    let n_embd = directions.first().map_or(0, Vec::len);
    if n_embd == 0 || directions.iter().any(|d| d.len() != n_embd) {
        return Err("a control vector needs directions of one length".into());
    }
    let cstr = |s: &str| CString::new(s).map_err(|_| format!("'{s}' holds a NUL byte"));
    let file = cstr(&path.to_string_lossy())?;
    let (arch, hint_key, count_key) = (
        cstr("controlvector")?,
        cstr("controlvector.model_hint")?,
        cstr("controlvector.layer_count")?,
    );
    let hint = cstr(model_hint)?;
    let names = (1..=directions.len())
        .map(|k| cstr(&format!("direction.{k}")))
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = directions.len() * (n_embd * 4 + 1024) + 4096;
    // SAFETY: a ggml context large enough for the tensors (each n_embd f32 plus its header);
    // every tensor's data is filled before it is added; the gguf context copies what it
    // writes and both are freed before returning.
    unsafe {
        let ggml = sys::ggml_init(sys::ggml_init_params {
            mem_size: bytes,
            mem_buffer: std::ptr::null_mut(),
            no_alloc: false,
        });
        if ggml.is_null() {
            return Err("ggml could not allocate the control vector".into());
        }
        let gguf = sys::gguf_init_empty();
        sys::gguf_set_val_str(gguf, c"general.architecture".as_ptr(), arch.as_ptr());
        sys::gguf_set_val_str(gguf, hint_key.as_ptr(), hint.as_ptr());
        sys::gguf_set_val_i32(gguf, count_key.as_ptr(), directions.len() as i32);
        for (d, name) in directions.iter().zip(&names) {
            let t = sys::ggml_new_tensor_1d(ggml, sys::GGML_TYPE_F32, n_embd as i64);
            sys::ggml_set_name(t, name.as_ptr());
            std::ptr::copy_nonoverlapping(d.as_ptr(), (*t).data.cast::<f32>(), n_embd);
            sys::gguf_add_tensor(gguf, t);
        }
        let ok = sys::gguf_write_to_file(gguf, file.as_ptr(), false);
        sys::gguf_free(gguf);
        sys::ggml_free(ggml);
        if ok {
            Ok(())
        } else {
            Err(format!("could not write {}", path.display()))
        }
    }
}

/// llama.cpp's own control-vector path, for tests: `tokens` decoded at once in a context of
/// ours with no edit of ours, after `llama_set_adapter_cvec(data, il_start, il_end)`; every
/// position's logits.
#[doc(hidden)]
pub fn llama_cvec_logits(
    model: &Model,
    tokens: &[u32],
    data: &[f32],
    il_start: i32,
    il_end: i32,
) -> Result<Vec<Vec<f32>>, ModelError> {
    let mut ctx = Hooked::new(model, tokens.len() as u32, NoTap).map_err(ModelError::Decode)?;
    ctx.set_edits(None);
    // SAFETY: the context is valid; `data` holds `data.len()` floats, n_embd per layer from
    // layer 1, as llama.cpp's API asks; llama.cpp copies them.
    let status = unsafe {
        sys::llama_set_adapter_cvec(
            ctx.raw(),
            data.as_ptr(),
            data.len(),
            model.n_embd() as i32,
            il_start,
            il_end,
        )
    };
    if status != 0 {
        return Err(ModelError::Intervention(format!(
            "llama_set_adapter_cvec returned {status}"
        )));
    }
    ctx.decode(tokens)?;
    Ok((0..tokens.len()).map(|i| ctx.logits(i).to_vec()).collect())
}

/// The same through our own path, for tests: `tokens` decoded at once in a context of ours
/// with the model's intervention (what `--control-vector` set); every position's logits.
#[doc(hidden)]
pub fn edited_logits(model: &Model, tokens: &[u32]) -> Result<Vec<Vec<f32>>, ModelError> {
    let mut ctx = Hooked::new(model, tokens.len() as u32, NoTap).map_err(ModelError::Decode)?;
    ctx.decode(tokens)?;
    Ok((0..tokens.len()).map(|i| ctx.logits(i).to_vec()).collect())
}
