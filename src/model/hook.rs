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
use std::sync::Arc;

use llama_cpp_sys_2 as sys;

use super::edits::{Edits, Writable};
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

/// A source of a node, as the graph probe records it.
pub(super) struct Source {
    pub ptr: usize,
    pub name: String,
    pub op: u32,
    pub ne: [usize; 4],
}

impl Tensor<'_> {
    /// The tensor's address: its identity within one graph.
    pub(super) fn ptr(&self) -> usize {
        std::ptr::from_ref(self.raw) as usize
    }

    /// For ggml's setters, which write the tensor's data (in its backend buffer), never the
    /// tensor struct this borrows.
    fn mut_ptr(&self) -> *mut sys::ggml_tensor {
        std::ptr::from_ref(self.raw).cast_mut()
    }

    /// ggml's operation code.
    pub(super) fn op(&self) -> u32 {
        self.raw.op
    }

    /// The node's inputs.
    pub(super) fn sources(&self) -> Vec<Source> {
        self.raw
            .src
            .iter()
            .filter(|s| !s.is_null())
            .map(|&s| {
                // SAFETY: ggml's sources of a node in the graph being computed are valid
                // tensors with NUL-terminated names.
                let s = unsafe { &*s };
                // SAFETY: as above: the name is NUL-terminated within its 64 bytes.
                let name = unsafe { CStr::from_ptr(s.name.as_ptr()) };
                Source {
                    ptr: std::ptr::from_ref(s) as usize,
                    name: name.to_string_lossy().into_owned(),
                    op: s.op,
                    ne: s.ne.map(|n| usize::try_from(n).unwrap_or(0)),
                }
            })
            .collect()
    }

    /// Offsets (bytes) of every row: ne[1] × ne[2] × ne[3] of them.
    fn row_offsets(&self) -> impl Iterator<Item = usize> + '_ {
        let [_, n1, n2, n3] = self.shape();
        let nb = self.raw.nb;
        (0..n3).flat_map(move |i3| {
            (0..n2).flat_map(move |i2| (0..n1).map(move |i1| i1 * nb[1] + i2 * nb[2] + i3 * nb[3]))
        })
    }
}

impl Writable for Tensor<'_> {
    /// Set every element to zero (any type: zero bytes are zero in f32 and f16).
    fn zero(&self) -> Result<(), String> {
        // SAFETY: the tensor is computed and allocated; the ranges lie within it.
        unsafe {
            if sys::ggml_is_contiguous(self.raw) {
                sys::ggml_backend_tensor_memset(self.mut_ptr(), 0, 0, sys::ggml_nbytes(self.raw));
            } else {
                let row = self.shape()[0] * self.raw.nb[0];
                for off in self.row_offsets() {
                    sys::ggml_backend_tensor_memset(self.mut_ptr(), 0, off, row);
                }
            }
        }
        Ok(())
    }

    /// Zero elements `start..start + len` of every row (f32 rows only).
    fn zero_columns(&self, start: usize, len: usize) -> Result<(), String> {
        let n0 = self.shape()[0];
        if !self.is_f32_rows() || start + len > n0 {
            return Err(format!(
                "expected f32 rows of at least {} values, found type {} rows of {n0}",
                start + len,
                self.raw.type_
            ));
        }
        for off in self.row_offsets() {
            // SAFETY: within one f32 row of the computed tensor.
            unsafe { sys::ggml_backend_tensor_memset(self.mut_ptr(), 0, off + start * 4, len * 4) };
        }
        Ok(())
    }

    /// Add `v` to every row, in f32 (as ggml_add does).
    fn add_to_rows(&self, v: &[f32]) -> Result<(), String> {
        let n0 = self.shape()[0];
        if !self.is_f32_rows() || n0 != v.len() {
            return Err(format!(
                "expected f32 rows of {} values, found type {} rows of {n0}",
                v.len(),
                self.raw.type_
            ));
        }
        let mut row = vec![0f32; n0];
        for off in self.row_offsets() {
            // SAFETY: one whole f32 row of the computed tensor, read and written back.
            unsafe {
                sys::ggml_backend_tensor_get(self.raw, row.as_mut_ptr().cast(), off, n0 * 4);
                for (x, d) in row.iter_mut().zip(v) {
                    *x += d;
                }
                sys::ggml_backend_tensor_set(self.mut_ptr(), row.as_ptr().cast(), off, n0 * 4);
            }
        }
        Ok(())
    }

    fn rows(&self) -> usize {
        self.shape()[1]
    }

    /// Replace one row (f32 rows of a 2-D tensor: one per token of the decode).
    fn set_row(&self, row: usize, v: &[f32]) -> Result<(), String> {
        let [n0, n1, n2, n3] = self.shape();
        if !self.is_f32_rows() || n0 != v.len() || row >= n1 || n2 != 1 || n3 != 1 {
            return Err(format!(
                "expected f32 rows of {} values, at least {} of them, found type {} of shape {n0}×{n1}×{n2}×{n3}",
                v.len(),
                row + 1,
                self.raw.type_
            ));
        }
        // SAFETY: one whole f32 row of the computed tensor, in range (checked).
        unsafe {
            sys::ggml_backend_tensor_set(
                self.mut_ptr(),
                v.as_ptr().cast(),
                row * self.raw.nb[1],
                n0 * 4,
            )
        };
        Ok(())
    }
}

/// What a hooked context reads: which nodes it wants, and what it does with each. `wants`
/// must answer the same for a node each time it is asked.
pub trait Tap {
    fn wants(&mut self, node: NodeName<'_>) -> bool;
    fn read(&mut self, node: NodeName<'_>, tensor: &Tensor<'_>);
    /// By the node's whole name, with or without a layer (`inp_embd`): by default the
    /// layered names through [`Tap::wants`].
    fn wants_named(&mut self, name: &str) -> bool {
        NodeName::parse(name).is_some_and(|n| self.wants(n))
    }
    /// The data of a node [`Tap::wants_named`] wanted.
    fn read_named(&mut self, name: &str, tensor: &Tensor<'_>) {
        if let Some(n) = NodeName::parse(name) {
            self.read(n, tensor);
        }
    }
    /// Every node of the graph, named or not, as it is about to be computed (the graph
    /// probe records them); nothing by default.
    fn sees(&mut self, _name: &str, _tensor: &Tensor<'_>) {}
}

/// A tap that reads nothing: a context that only writes (interventions) or is plain.
pub struct NoTap;

impl Tap for NoTap {
    fn wants(&mut self, _node: NodeName<'_>) -> bool {
        false
    }
    fn read(&mut self, _node: NodeName<'_>, _tensor: &Tensor<'_>) {}
}

/// What the eval callback owns: the tap, and the edits written into the graph before the
/// tap reads (so a tap sees the intervened values).
pub struct Hook<T> {
    pub tap: T,
    edits: Option<Arc<Edits>>,
    /// Per edit target, how often the last decodes wrote it.
    hits: Vec<u32>,
    /// A write that failed (an unexpected tensor type or shape), said after the decode.
    fault: Option<String>,
}

impl<T: Tap> Hook<T> {
    pub fn new(tap: T) -> Self {
        Self {
            tap,
            edits: None,
            hits: Vec::new(),
            fault: None,
        }
    }

    pub fn edits(&self) -> Option<&Arc<Edits>> {
        self.edits.as_ref()
    }

    /// Write `edits` into every later decode (`None`: decode the model as it is).
    pub fn set_edits(&mut self, edits: Option<Arc<Edits>>) {
        self.hits = vec![0; edits.as_ref().map_or(0, |e| e.len())];
        self.edits = edits.filter(|e| !e.is_empty());
    }

    /// Before a decode: forget the last one's hits.
    pub fn arm(&mut self) {
        self.hits.iter_mut().for_each(|h| *h = 0);
        self.fault = None;
    }

    /// After a decode: every edit target was written, or why not.
    pub fn check(&self) -> Result<(), ModelError> {
        if let Some(f) = &self.fault {
            return Err(ModelError::Intervention(f.clone()));
        }
        let Some(edits) = &self.edits else {
            return Ok(());
        };
        match edits.missing(&self.hits) {
            Some(name) => Err(ModelError::Intervention(format!(
                "unavailable for this model: its graph computed no node '{name}' to write"
            ))),
            None => Ok(()),
        }
    }

    fn ask(&mut self, name: &str, t: &Tensor<'_>) -> bool {
        self.tap.sees(name, t);
        let edit = self
            .edits
            .as_ref()
            .is_some_and(|e| e.target(name).is_some());
        let read = self.tap.wants_named(name);
        edit || read
    }

    fn data(&mut self, name: &str, t: &Tensor<'_>) {
        if let Some(edits) = &self.edits {
            if let Some(i) = edits.target(name) {
                match edits.apply(i, t) {
                    Ok(()) => self.hits[i] += 1,
                    Err(e) => self.fault = Some(format!("cannot write '{name}': {e}")),
                }
            }
        }
        if self.tap.wants_named(name) {
            self.tap.read_named(name, t);
        }
    }
}

/// `cb_eval` for a hook with a tap of type `T`.
pub(super) extern "C" fn callback<T: Tap>(
    t: *mut sys::ggml_tensor,
    ask: bool,
    user: *mut c_void,
) -> bool {
    if t.is_null() || user.is_null() {
        return !ask;
    }
    // SAFETY: ggml passes a valid tensor; `user` is the hook the context owns for as long as
    // it lives, used only on the thread that decodes.
    let (t, hook) = unsafe { (&*t, &mut *user.cast::<Hook<T>>()) };
    // SAFETY: tensor names are NUL-terminated within their 64 bytes.
    let name = unsafe { CStr::from_ptr(t.name.as_ptr()) };
    let Ok(name) = name.to_str() else {
        return !ask;
    };
    let tensor = Tensor { raw: t };
    if ask {
        return hook.ask(name, &tensor);
    }
    hook.data(name, &tensor);
    // Always true: false here would silently skip the rest of the graph.
    true
}

/// `params` with the eval callback of `hook` installed. llama-cpp-2 0.1.160 (pinned) has no
/// setter for it: its `LlamaContextParams` is a struct of one field, llama.cpp's own
/// `llama_context_params`, and `transmute` checks at compile time that the two have the same
/// size, so the bytes are those of the field.
pub(super) fn with_callback<T: Tap>(
    params: llama_cpp_2::context::params::LlamaContextParams,
    hook: *mut Hook<T>,
) -> llama_cpp_2::context::params::LlamaContextParams {
    // SAFETY: see above: the wrapper holds nothing but the raw parameters.
    let mut raw: sys::llama_context_params = unsafe { std::mem::transmute(params) };
    raw.cb_eval = Some(callback::<T>);
    raw.cb_eval_user_data = hook.cast();
    // SAFETY: the same bytes back into the wrapper.
    unsafe { std::mem::transmute(raw) }
}

/// A llama.cpp context of one sequence whose decodes feed a [`Tap`].
pub struct Hooked<'m, T: Tap> {
    /// The context borrows the model: it must not outlive it.
    _model: std::marker::PhantomData<&'m Model>,
    ctx: *mut sys::llama_context,
    /// The callback's user data: made by `Box::into_raw`, freed in `Drop` after the context.
    hook: *mut Hook<T>,
    n_ctx: usize,
    n_vocab: usize,
    /// Tokens of the last decode, and whether every position's logits were kept (else the
    /// last position's only).
    last: (usize, bool),
}

impl<'m, T: Tap> Hooked<'m, T> {
    /// A context of `n_ctx` tokens (decoded at once: batch and micro-batch as large), the
    /// model's threads and flash-attention setting, feeding `tap`.
    pub fn new(model: &'m Model, n_ctx: u32, tap: T) -> Result<Self, String> {
        // It reads the model as the sessions do: with the intervention in force, if any.
        let mut hook = Hook::new(tap);
        hook.set_edits(model.default_edits());
        let hook = Box::into_raw(Box::new(hook));
        let n_ctx = n_ctx.max(16);
        // SAFETY: default parameters from llama.cpp with plain fields set; the callback's
        // user data is the hook, which outlives the context (freed after it, see Drop).
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
            p.cb_eval_user_data = hook.cast();
            sys::llama_init_from_model(model.raw(), p)
        };
        if ctx.is_null() {
            // SAFETY: made above by Box::into_raw; no context points to it.
            drop(unsafe { Box::from_raw(hook) });
            return Err("llama.cpp could not make a context with an eval callback".into());
        }
        Ok(Self {
            _model: std::marker::PhantomData,
            ctx,
            hook,
            n_ctx: n_ctx as usize,
            n_vocab: model.vocab().len(),
            last: (0, false),
        })
    }

    /// Tokens one decode takes.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    fn hook(&self) -> &Hook<T> {
        // SAFETY: the hook lives as long as `self`; the callback uses it only inside decode,
        // which takes `&mut self`.
        unsafe { &*self.hook }
    }

    fn hook_mut(&mut self) -> &mut Hook<T> {
        // SAFETY: as in `hook`, and `&mut self` makes this the only reference.
        unsafe { &mut *self.hook }
    }

    /// The llama.cpp context, for calls this module does not wrap.
    pub(super) fn raw(&self) -> *mut sys::llama_context {
        self.ctx
    }

    pub fn tap(&self) -> &T {
        &self.hook().tap
    }

    pub fn tap_mut(&mut self) -> &mut T {
        &mut self.hook_mut().tap
    }

    /// Write `edits` into every later decode (`None`: the model as it is).
    pub fn set_edits(&mut self, edits: Option<Arc<Edits>>) {
        self.hook_mut().set_edits(edits);
    }

    /// Decode `tokens` (at most [`Self::n_ctx`]) as one sequence from position 0 into an
    /// empty cache, in one decode, every position's logits kept. Cell j of the cache then
    /// holds position j.
    pub fn decode(&mut self, tokens: &[u32]) -> Result<(), ModelError> {
        self.decode_keeping(tokens, true)
    }

    /// [`Hooked::decode`], with the logits of every position or (`all` false) of the last
    /// only: llama.cpp's last layer then computes that row alone.
    pub fn decode_keeping(&mut self, tokens: &[u32], all: bool) -> Result<(), ModelError> {
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
                *batch.logits.add(i) = i8::from(all || i + 1 == n);
            }
            batch.n_tokens = n as i32;
            (*self.hook).arm();
            let busy = crate::model::rpc::Busy::start();
            let s = sys::llama_decode(self.ctx, batch);
            sys::llama_synchronize(self.ctx);
            drop(busy);
            sys::llama_batch_free(batch);
            s
        };
        if status != 0 {
            self.last = (0, false);
            return Err(ModelError::Decode(format!(
                "the hooked context's decode returned {status}"
            )));
        }
        self.last = (n, all);
        self.hook().check()
    }

    /// llama.cpp's logits of `position` of the last decode. The caller passes a position of
    /// that decode whose logits were kept.
    ///
    /// # Panics
    /// On a position whose logits the last decode did not keep (llama.cpp has no row there).
    pub fn logits(&self, position: usize) -> &[f32] {
        let (n, all) = self.last;
        assert!(
            position < n && (all || position + 1 == n),
            "no logits kept for position {position} of the last decode ({n} tokens)"
        );
        // SAFETY: the last decode kept this position's logits (checked above), a row of
        // n_vocab floats; it lives until the next decode, which needs `&mut`.
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
        // the hook it points to, which Box::into_raw made.
        unsafe {
            sys::llama_free(self.ctx);
            drop(Box::from_raw(self.hook));
        }
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
