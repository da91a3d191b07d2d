//! Attention probabilities as llama.cpp computes them: `kq_soft_max-ℓ`, the softmax of KQ of
//! layer ℓ (flash attention off; with it on there is no such tensor), read through the
//! [`hook`](super::hook) while a text is decoded at once into an empty cache.
//!
//! The tensor is `[n_kv, n_tokens, n_head]`: per query head and query position one weight per
//! KV cell; cell j holds position j, cells past the text are padding the mask hides.
//! Grouped-query models have `n_head` rows per position all the same (each query head has its
//! own row over its KV group's keys). Each row is digested as it is read; whole rows are kept
//! only for the positions asked for.

use std::collections::BTreeMap;

use llama_cpp_sys_2 as sys;

use super::gguf::GgufInfo;
use super::hook::{NodeName, Tap, Tensor};
use super::loader::{Model, ModelError};
use super::readers::{Reader, Shared, Which};
use crate::analysis::attention::{digest, AttentionFacts, AttentionMap, HeadRow};

/// The tokens of a text the attention view covers: one decode of at most this many.
pub const MAX_TOKENS: usize = 1024;

/// Which positions keep their whole rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    All,
    Positions(Vec<usize>),
}

impl Keep {
    fn wants(&self, position: usize) -> bool {
        match self {
            Keep::All => true,
            Keep::Positions(p) => p.contains(&position),
        }
    }
}

/// The tap: every `kq_soft_max-ℓ` of the decode, digested.
pub(super) struct Digest {
    tokens: Vec<u32>,
    windows: Vec<Option<u32>>,
    k: usize,
    keep: Keep,
    n_head: Option<usize>,
    /// `rows[ℓ][position * n_head + head]`.
    rows: Vec<Vec<HeadRow>>,
    full: BTreeMap<usize, Vec<f32>>,
    scratch: Vec<f32>,
    /// What was wrong with a tensor read, if anything.
    fault: Option<String>,
}

impl Reader for Digest {
    fn prepare(&mut self, tokens: &[u32]) {
        self.tokens = tokens.to_vec();
        self.n_head = None;
        self.full.clear();
        self.fault = None;
        for r in &mut self.rows {
            r.clear();
        }
    }
}

impl Tap for Digest {
    fn wants(&mut self, node: NodeName<'_>) -> bool {
        node.kind == "kq_soft_max" && node.layer < self.rows.len()
    }

    fn read(&mut self, node: NodeName<'_>, t: &Tensor<'_>) {
        let [n_kv, n_tokens, n_head, n_stream] = t.shape();
        let n = self.tokens.len();
        if n_tokens < n || n_kv < n || n_stream != 1 || !t.is_f32_rows() {
            self.fault.get_or_insert(format!(
                "kq_soft_max-{} is {n_kv}×{n_tokens}×{n_head}×{n_stream}, not the f32 rows of \
                 {n} positions over the text's cells",
                node.layer
            ));
            return;
        }
        if *self.n_head.get_or_insert(n_head) != n_head {
            self.fault
                .get_or_insert("layers with different head counts are not supported".into());
            return;
        }
        let window = self.windows.get(node.layer).copied().flatten();
        let mut rows = vec![None; n * n_head];
        for head in 0..n_head {
            self.scratch.clear();
            if !t.read_rows(0, n, head, 0, &mut self.scratch) {
                self.fault.get_or_insert("a row could not be read".into());
                return;
            }
            for p in 0..n {
                let cells = &self.scratch[p * n_kv..(p + 1) * n_kv];
                rows[p * n_head + head] = Some(digest(cells, p, &self.tokens, window, self.k));
                if self.keep.wants(p) {
                    let layers = self.windows.len();
                    let full = self
                        .full
                        .entry(p)
                        .or_insert_with(|| vec![0.0; layers * n_head * n]);
                    let at = (node.layer * n_head + head) * n;
                    full[at..at + n].copy_from_slice(&cells[..n]);
                }
            }
        }
        self.rows[node.layer] = rows.into_iter().flatten().collect();
    }
}

/// Why attention cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum AttentionError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("attention unavailable: {0}")]
    Unavailable(String),
}

/// Attention on a loaded model, read from a shared hooked decode.
pub struct Attention<'m> {
    probe: Shared<'m>,
    n_head_kv: Option<usize>,
    /// Tokens one run covers.
    limit: usize,
}

impl<'m> Attention<'m> {
    /// Attention with a decode of its own.
    pub fn new(model: &'m Model) -> Result<Self, String> {
        Self::on(&Shared::new(model))
    }

    /// Attention read from the shared decode `probe` (it joins every later decode there),
    /// each row digested to its largest weight until [`Attention::expect`] says otherwise.
    pub fn on(probe: &Shared<'m>) -> Result<Self, String> {
        let model = probe.model();
        if model.options().flash_attn {
            return Err(
                "flash attention (-fa) fuses KQ's softmax into one kernel, so llama.cpp \
                        never forms the attention probabilities: run without -fa to see them"
                    .into(),
            );
        }
        let info = super::gguf::inspect(&model.options().path).map_err(|e| e.to_string())?;
        let n_layer = info
            .arch_value("block_count")
            .and_then(|v| v.as_int())
            .and_then(|v| usize::try_from(v).ok())
            .ok_or("the GGUF has no block_count")?;
        // SAFETY: the model is loaded; the call only reads a hyperparameter.
        let n_swa = unsafe { sys::llama_model_n_swa(model.raw()) };
        let windows = windows(&info, n_layer, u32::try_from(n_swa).unwrap_or(0))?;
        let n_head_kv = info
            .arch_value("attention.head_count_kv")
            .and_then(|v| v.ints().first().copied())
            .and_then(|v| usize::try_from(v).ok());
        let reader = Digest {
            tokens: Vec::new(),
            rows: vec![Vec::new(); n_layer],
            windows,
            k: 1,
            keep: Keep::All,
            n_head: None,
            full: BTreeMap::new(),
            scratch: Vec::new(),
            fault: None,
        };
        let limit = model.options().ctx_size.clamp(16, MAX_TOKENS as u32) as usize;
        {
            probe
                .get_mut()
                .join(Which::Attention, Box::new(reader), limit);
        }
        Ok(Self {
            probe: probe.clone(),
            n_head_kv,
            limit,
        })
    }

    /// Tokens one run covers.
    pub fn max_tokens(&self) -> usize {
        self.limit
    }

    /// Digest each row to its `k` largest weights and keep the whole rows of `keep` in the
    /// shared decodes to come (those another reader asks for, too), until asked otherwise.
    pub fn expect(&mut self, k: usize, keep: Keep) {
        let mut p = self.probe.get_mut();
        if let Some(r) = p.readers_mut().get_mut::<Digest>(Which::Attention) {
            if r.k != k || r.keep != keep {
                r.k = k;
                r.keep = keep;
                p.spend(Which::Attention);
            }
        }
    }

    /// Decode the first [`Self::max_tokens`] of `tokens` and digest every attention row
    /// (its `k` largest weights), keeping the whole rows of `keep`: taken from the shared
    /// decode when it already read them so.
    pub fn run(
        &mut self,
        tokens: &[u32],
        k: usize,
        keep: Keep,
    ) -> Result<AttentionMap, AttentionError> {
        self.expect(k, keep);
        let mut p = self.probe.get_mut();
        p.serve(Which::Attention, tokens)?;
        // The map is taken: the next run of these tokens decodes again.
        p.spend(Which::Attention);
        let reader = p
            .readers_mut()
            .get_mut::<Digest>(Which::Attention)
            .ok_or(ModelError::Empty)?;
        if let Some(fault) = reader.fault.take() {
            return Err(AttentionError::Unavailable(fault));
        }
        let n_layer = reader.rows.len();
        if let Some(missing) = reader.rows.iter().position(Vec::is_empty) {
            return Err(AttentionError::Unavailable(format!(
                "llama.cpp's graph for this architecture names no kq_soft_max-{missing} (of \
                 layers 0–{}), so its attention probabilities cannot be read",
                n_layer - 1
            )));
        }
        let n_head = reader.n_head.unwrap_or(1);
        let facts = AttentionFacts {
            n_layer,
            n_head,
            n_head_kv: self.n_head_kv.unwrap_or(n_head).clamp(1, n_head),
            windows: reader.windows.clone(),
        };
        Ok(AttentionMap {
            facts,
            tokens: std::mem::take(&mut reader.tokens),
            rows: reader.rows.iter_mut().flat_map(std::mem::take).collect(),
            full: std::mem::take(&mut reader.full),
        })
    }
}

/// Each layer's sliding window, as llama.cpp sets it: the window size `n_swa`, on the layers
/// `{arch}.attention.sliding_window_pattern` names (per layer, or every n-th layer dense),
/// or by the architecture's default pattern.
fn windows(info: &GgufInfo, n_layer: usize, n_swa: u32) -> Result<Vec<Option<u32>>, String> {
    if n_swa == 0 {
        return Ok(vec![None; n_layer]);
    }
    let arch = info.architecture.as_deref().unwrap_or("");
    let swa = |layer: usize| -> Result<bool, String> {
        match info.arch_value("attention.sliding_window_pattern") {
            Some(v) if v.ints().len() == n_layer => Ok(v.ints()[layer] != 0),
            Some(v) => match v.as_int() {
                Some(n) => Ok(every_nth_dense(layer, n as usize)),
                None => Err("its sliding_window_pattern is not one llama.cpp reads".to_string()),
            },
            None => match arch {
                "gemma3" => Ok(every_nth_dense(layer, 6)),
                "gemma2" => Ok(every_nth_dense(layer, 2)),
                "cohere2" => Ok(every_nth_dense(layer, 4)),
                _ => Err(format!(
                    "a {arch} model has a sliding window of {n_swa} on some layers, and which \
                     ones is not known here"
                )),
            },
        }
    };
    (0..n_layer).map(|l| Ok(swa(l)?.then_some(n_swa))).collect()
}

/// llama.cpp's `set_swa_pattern(n)`: every n-th layer dense, the others sliding.
fn every_nth_dense(layer: usize, n: usize) -> bool {
    n == 0 || layer % n < n - 1
}

#[cfg(test)]
mod tests {
    use super::every_nth_dense;

    #[test]
    fn gemma3s_pattern_has_every_sixth_layer_dense() {
        let dense: Vec<usize> = (0..18).filter(|&l| !every_nth_dense(l, 6)).collect();
        assert_eq!(dense, vec![5, 11, 17]);
        assert!(every_nth_dense(3, 0));
    }
}
