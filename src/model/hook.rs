//! One mechanism for reading llama.cpp's intermediate tensors: a context of our own whose
//! eval callback (`cb_eval`; llama-cpp-2 wraps none, so the context is made with
//! llama-cpp-sys-2) asks a [`Tap`] which named tensors it wants and hands it each one once
//! computed, through ggml's backend tensor get, so a GPU or RPC backend reads as the CPU does.
//!
//! llama.cpp names graph nodes `kind-ℓ` (`l_out-3`, `kq_soft_max-3`, `attn_out-3`…). ggml
//! calls the callback twice per node: first to ask whether it is wanted (that call may
//! schedule the graph so the node is materialised), then with its data. The logit lens taps
//! `l_out-ℓ`, the attention view `kq_soft_max-ℓ`.

use std::ffi::{c_void, CStr};

use llama_cpp_sys_2 as sys;

use super::loader::{Model, ModelError};

/// A graph node's name, split as llama.cpp writes it: `kind-layer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeName<'a> {
    pub kind: &'a str,
    pub layer: usize,
}

impl<'a> NodeName<'a> {
    /// `kq_soft_max-12` → kind `kq_soft_max`, layer 12; names without a layer are `None`.
    pub fn parse(name: &'a str) -> Option<Self> {
        let (kind, layer) = name.rsplit_once('-')?;
        Some(Self {
            kind,
            layer: layer.parse().ok()?,
        })
    }
}

/// A computed tensor handed to a tap: its shape, and its f32 contents read on request.
pub struct Tensor<'a> {
    raw: &'a sys::ggml_tensor,
}

impl Tensor<'_> {
    /// Elements along each of ggml's four dimensions (ne[0] is the fastest).
    pub fn shape(&self) -> [usize; 4] {
        self.raw.ne.map(|n| usize::try_from(n).unwrap_or(0))
    }

    /// Whether it is f32 with rows of contiguous elements.
    pub fn is_f32_rows(&self) -> bool {
        self.raw.type_ == sys::GGML_TYPE_F32 && self.raw.nb[0] == 4
    }

    /// The row at `(i1, i2, i3)` (ne[0] floats) appended to `out`; false if it is not an
    /// f32 row tensor or the index is out of range.
    pub fn read_row(&self, i1: usize, i2: usize, i3: usize, out: &mut Vec<f32>) -> bool {
        self.read_rows(i1, 1, i2, i3, out)
    }

    /// `count` consecutive rows from `(i1, i2, i3)` along dimension 1, appended to `out`.
    pub fn read_rows(
        &self,
        i1: usize,
        count: usize,
        i2: usize,
        i3: usize,
        out: &mut Vec<f32>,
    ) -> bool {
        let ne = self.shape();
        if !self.is_f32_rows() || i1 + count > ne[1] || i2 >= ne[2] || i3 >= ne[3] {
            return false;
        }
        let nb = self.raw.nb;
        let start = out.len();
        out.resize(start + count * ne[0], 0.0);
        let contiguous = nb[1] == ne[0] * 4;
        let offset = |r: usize| (i1 + r) * nb[1] + i2 * nb[2] + i3 * nb[3];
        // SAFETY: the tensor is f32 with ne[0] contiguous floats per row (checked), the rows
        // are in range, and `out` has room for every float written.
        unsafe {
            if contiguous {
                sys::ggml_backend_tensor_get(
                    self.raw,
                    out.as_mut_ptr().add(start).cast(),
                    offset(0),
                    count * ne[0] * 4,
                );
            } else {
                for r in 0..count {
                    sys::ggml_backend_tensor_get(
                        self.raw,
                        out.as_mut_ptr().add(start + r * ne[0]).cast(),
                        offset(r),
                        ne[0] * 4,
                    );
                }
            }
        }
        true
    }
}

/// What a hooked context reads: which nodes it wants, and what it does with each.
pub trait Tap {
    fn wants(&mut self, node: NodeName<'_>) -> bool;
    fn read(&mut self, node: NodeName<'_>, tensor: &Tensor<'_>);
}

/// `cb_eval` for a tap of type `T`.
extern "C" fn callback<T: Tap>(t: *mut sys::ggml_tensor, ask: bool, user: *mut c_void) -> bool {
    if t.is_null() || user.is_null() {
        return !ask;
    }
    // SAFETY: ggml passes a valid tensor; `user` is the boxed tap the context owns for as
    // long as it lives, used only on the thread that decodes.
    let (t, tap) = unsafe { (&*t, &mut *user.cast::<T>()) };
    // SAFETY: tensor names are NUL-terminated within their 64 bytes.
    let name = unsafe { CStr::from_ptr(t.name.as_ptr()) };
    let Some(node) = name.to_str().ok().and_then(NodeName::parse) else {
        return !ask;
    };
    if ask {
        return tap.wants(node);
    }
    tap.read(node, &Tensor { raw: t });
    // Always true: false here would silently skip the rest of the graph.
    true
}

/// A llama.cpp context of one sequence whose decodes feed a [`Tap`].
pub struct Hooked<'m, T: Tap> {
    /// The context borrows the model: it must not outlive it.
    _model: std::marker::PhantomData<&'m Model>,
    ctx: *mut sys::llama_context,
    tap: Box<T>,
    n_ctx: usize,
    n_vocab: usize,
}

impl<'m, T: Tap> Hooked<'m, T> {
    /// A context of `n_ctx` tokens (decoded at once: batch and micro-batch as large), the
    /// model's threads and flash-attention setting, feeding `tap`.
    pub fn new(model: &'m Model, n_ctx: u32, tap: T) -> Result<Self, String> {
        let mut tap = Box::new(tap);
        let n_ctx = n_ctx.max(16);
        // SAFETY: default parameters from llama.cpp with plain fields set; the callback's
        // user data is the boxed tap, which outlives the context (freed first, see Drop).
        let ctx = unsafe {
            let mut p = sys::llama_context_default_params();
            p.n_ctx = n_ctx;
            p.n_batch = n_ctx;
            p.n_ubatch = n_ctx;
            p.n_seq_max = 1;
            p.n_threads = model.options().threads as i32;
            p.n_threads_batch = model.options().threads as i32;
            p.flash_attn_type = if model.options().flash_attn {
                sys::LLAMA_FLASH_ATTN_TYPE_ENABLED
            } else {
                sys::LLAMA_FLASH_ATTN_TYPE_DISABLED
            };
            p.cb_eval = Some(callback::<T>);
            p.cb_eval_user_data = (&mut *tap as *mut T).cast();
            sys::llama_init_from_model(model.raw(), p)
        };
        if ctx.is_null() {
            return Err("llama.cpp could not make a context with an eval callback".into());
        }
        Ok(Self {
            _model: std::marker::PhantomData,
            ctx,
            tap,
            n_ctx: n_ctx as usize,
            n_vocab: model.vocab().len(),
        })
    }

    /// Tokens one decode takes.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    pub fn tap(&self) -> &T {
        &self.tap
    }

    pub fn tap_mut(&mut self) -> &mut T {
        &mut self.tap
    }

    /// Decode `tokens` (at most [`Self::n_ctx`]) as one sequence from position 0 into an
    /// empty cache, in one decode, every position's logits kept. Cell j of the cache then
    /// holds position j.
    pub fn decode(&mut self, tokens: &[u32]) -> Result<(), ModelError> {
        let n = tokens.len();
        if n == 0 {
            return Err(ModelError::Empty);
        }
        if n > self.n_ctx {
            return Err(ModelError::Decode(format!(
                "{n} tokens do not fit the hooked context's {}",
                self.n_ctx
            )));
        }
        // SAFETY: the context is valid; clearing its memory has no preconditions. The batch
        // holds `n` tokens of one sequence, is filled in full and freed after the decode.
        let status = unsafe {
            sys::llama_memory_clear(sys::llama_get_memory(self.ctx), true);
            let mut batch = sys::llama_batch_init(n as i32, 0, 1);
            for (i, &t) in tokens.iter().enumerate() {
                *batch.token.add(i) = t as sys::llama_token;
                *batch.pos.add(i) = i as sys::llama_pos;
                *batch.n_seq_id.add(i) = 1;
                *(*batch.seq_id.add(i)) = 0;
                *batch.logits.add(i) = 1;
            }
            batch.n_tokens = n as i32;
            let busy = crate::model::rpc::Busy::start();
            let s = sys::llama_decode(self.ctx, batch);
            sys::llama_synchronize(self.ctx);
            drop(busy);
            sys::llama_batch_free(batch);
            s
        };
        if status != 0 {
            return Err(ModelError::Decode(format!(
                "the hooked context's decode returned {status}"
            )));
        }
        Ok(())
    }

    /// llama.cpp's logits of `position` of the last decode (every position kept them).
    /// The caller passes a position of that decode.
    pub fn logits(&self, position: usize) -> &[f32] {
        // SAFETY: every token of the last decode asked for logits and the row has n_vocab
        // floats; it lives until the next decode, which needs `&mut`.
        unsafe {
            std::slice::from_raw_parts(
                sys::llama_get_logits_ith(self.ctx, position as i32),
                self.n_vocab,
            )
        }
    }
}

impl<T: Tap> Drop for Hooked<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the context was made by llama_init_from_model and is freed once, before
        // the tap it points to (a field dropped after this).
        unsafe { sys::llama_free(self.ctx) };
    }
}

#[cfg(test)]
mod tests {
    use super::NodeName;

    #[test]
    fn node_names_split_at_the_last_dash() {
        assert_eq!(
            NodeName::parse("kq_soft_max-12"),
            Some(NodeName {
                kind: "kq_soft_max",
                layer: 12
            })
        );
        assert_eq!(
            NodeName::parse("l_out-0").map(|n| (n.kind, n.layer)),
            Some(("l_out", 0))
        );
        assert_eq!(NodeName::parse("result_output"), None);
        assert_eq!(NodeName::parse("inp_embd"), None);
        assert_eq!(NodeName::parse("norm-x"), None);
    }
}
