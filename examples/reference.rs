//! The independent reference harness behind `tests/fixtures/reference-*-exact.json`: llama.cpp's
//! C API alone (none of logitscope's code), each text in one decode, the softmax in float64.
//!
//! `reference MODEL < sentences.txt > reference.json`
//!
//! Kernel settings as logitscope's (and llama.cpp's `--no-repack` with
//! `GGML_CPU_TILED_MM=0`): weights not repacked, ggml's tiled K-quant kernel off, flash
//! attention off — the configuration whose numbers do not depend on how rows share a decode.
//! Layout: `sentences[s].positions[i]` describes p_i, the distribution after token i:
//! `entropy_bits`, `top` (10 best: id, piece, p) and `next` (the token that follows: id, p,
//! logprob, rank).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::CString;
use std::io::BufRead;

use llama_cpp_sys_2 as sys;
use serde_json::{json, Value};

/// # Safety
/// Called by llama.cpp with its log line; reads nothing.
unsafe extern "C" fn quiet(
    _: sys::ggml_log_level,
    _: *const std::ffi::c_char,
    _: *mut std::ffi::c_void,
) {
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: reference MODEL < sentences");
    if std::env::var_os("GGML_CPU_TILED_MM").is_none() {
        // Read by ggml at its first matrix product, after this.
        std::env::set_var("GGML_CPU_TILED_MM", "0");
    }
    // SAFETY: plain llama.cpp C calls in the documented order; every pointer checked.
    unsafe {
        sys::llama_log_set(Some(quiet), std::ptr::null_mut());
        sys::llama_backend_init();
        let mut mp = sys::llama_model_default_params();
        mp.n_gpu_layers = 0;
        mp.use_extra_bufts = false;
        let cpath = CString::new(path.clone()).unwrap();
        let model = sys::llama_model_load_from_file(cpath.as_ptr(), mp);
        assert!(!model.is_null(), "cannot load {path}");
        let vocab = sys::llama_model_get_vocab(model);
        let n_vocab = sys::llama_vocab_n_tokens(vocab) as usize;
        let mut cp = sys::llama_context_default_params();
        cp.n_ctx = 2048;
        cp.n_batch = 512;
        cp.n_ubatch = 512;
        cp.n_threads = 2;
        cp.n_threads_batch = 2;
        cp.flash_attn_type = sys::LLAMA_FLASH_ATTN_TYPE_DISABLED;
        let ctx = sys::llama_init_from_model(model, cp);
        assert!(!ctx.is_null());
        let piece = |t: i32| -> String {
            let mut buf = vec![0u8; 256];
            let n = sys::llama_token_to_piece(vocab, t, buf.as_mut_ptr().cast(), 256, 0, true);
            buf.truncate(n.max(0) as usize);
            String::from_utf8_lossy(&buf).into_owned()
        };
        let mut sentences = Vec::new();
        for line in std::io::stdin().lock().lines() {
            let text = line.unwrap();
            if text.trim().is_empty() {
                continue;
            }
            let mut toks = vec![0i32; text.len() + 8];
            let n = sys::llama_tokenize(
                vocab,
                text.as_ptr().cast(),
                text.len() as i32,
                toks.as_mut_ptr(),
                toks.len() as i32,
                true,
                false,
            );
            assert!(n > 0, "cannot tokenize {text:?}");
            toks.truncate(n as usize);
            sys::llama_memory_clear(sys::llama_get_memory(ctx), true);
            let mut batch = sys::llama_batch_init(toks.len() as i32, 0, 1);
            for (i, &t) in toks.iter().enumerate() {
                *batch.token.add(i) = t;
                *batch.pos.add(i) = i as i32;
                *batch.n_seq_id.add(i) = 1;
                **batch.seq_id.add(i) = 0;
                *batch.logits.add(i) = 1;
            }
            batch.n_tokens = toks.len() as i32;
            assert_eq!(sys::llama_decode(ctx, batch), 0, "decode failed");
            let mut positions = Vec::new();
            for i in 0..toks.len() {
                let row =
                    std::slice::from_raw_parts(sys::llama_get_logits_ith(ctx, i as i32), n_vocab);
                positions.push(position(i, toks[i], toks.get(i + 1).copied(), row, &piece));
            }
            sys::llama_batch_free(batch);
            sentences.push(json!({"text": text, "tokens": toks, "positions": positions}));
        }
        let name = std::path::Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = json!({
            "generator": "examples/reference.rs: llama.cpp's C API (llama-cpp-sys-2 0.1.161), use_extra_bufts false, GGML_CPU_TILED_MM=0, flash attention disabled, 2 threads, whole text in one decode, float64 softmax",
            "model": name,
            "n_vocab": n_vocab,
            "sentences": sentences,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap());
        sys::llama_free(ctx);
        sys::llama_model_free(model);
    }
}

fn position(
    i: usize,
    token: i32,
    next: Option<i32>,
    row: &[f32],
    piece: &dyn Fn(i32) -> String,
) -> Value {
    let max = row
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, |m, z| m.max(f64::from(z)));
    let z: f64 = row.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    let ln_z = z.ln() + max;
    let lp = |t: usize| f64::from(row[t]) - ln_z;
    let entropy_nats: f64 = row
        .iter()
        .map(|&x| {
            let l = f64::from(x) - ln_z;
            let p = l.exp();
            if p > 0.0 {
                -p * l
            } else {
                0.0
            }
        })
        .sum();
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    let top: Vec<Value> = order[..10]
        .iter()
        .map(|&t| json!({"id": t, "piece": piece(t as i32), "p": lp(t).exp()}))
        .collect();
    let next = next.map(|t| {
        let t = t as usize;
        let rank = 1 + row
            .iter()
            .enumerate()
            .filter(|&(k, &x)| x > row[t] || (x == row[t] && k < t))
            .count();
        json!({"id": t, "p": lp(t).exp(), "logprob": lp(t), "rank": rank})
    });
    json!({
        "pos": i,
        "token": token,
        "piece": piece(token),
        "entropy_bits": entropy_nats / std::f64::consts::LN_2,
        "top": top,
        "next": next,
    })
}
