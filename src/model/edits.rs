//! An intervention resolved to writes into named nodes of llama.cpp's graph: what the tensor
//! hook carries into every decode ([`super::intervene`] makes them, [`super::hook`] writes
//! them through [`Writable`], which its computed tensors implement).

use std::collections::HashMap;
use std::sync::Arc;

/// A computed tensor the hook can write.
pub(super) trait Writable {
    /// Every element zero.
    fn zero(&self) -> Result<(), String>;
    /// Elements `start..start + len` of every row zero.
    fn zero_columns(&self, start: usize, len: usize) -> Result<(), String>;
    /// `v` added to every row, in f32.
    fn add_to_rows(&self, v: &[f32]) -> Result<(), String>;
    /// Row `row` (of a tensor of rows, one per token of the decode) set to `v`.
    fn set_row(&self, row: usize, v: &[f32]) -> Result<(), String>;
    /// Rows (ggml's ne[1]).
    fn rows(&self) -> usize;
}

/// One row of a node replaced: activation patching. In a decode of `n_tokens` rows the node
/// has a row per token, except in the last layer, where llama.cpp keeps only the rows whose
/// logits were asked for: there the row is `out_row` (`None`: the token's row is not
/// computed, so it feeds no output and nothing is written).
#[derive(Debug, Clone)]
pub struct RowWrite {
    pub node: String,
    pub row: usize,
    pub out_row: Option<usize>,
    pub n_tokens: usize,
    pub values: Arc<[f32]>,
}

/// A write into a named node.
#[derive(Debug, Clone)]
pub(super) enum Action {
    /// Every element zero.
    Zero,
    /// Elements `start..start + len` of every row zero (one head's slice).
    ZeroColumns { start: usize, len: usize },
    /// This vector added to every row.
    Add(Arc<[f32]>),
    /// One row (a token of the decode) replaced: activation patching.
    SetRow(RowWrite),
}

/// An intervention resolved to writes into named nodes of the model's graph.
#[derive(Debug)]
pub struct Edits {
    label: String,
    targets: Vec<(String, Vec<Action>)>,
    index: HashMap<String, usize>,
}

impl Edits {
    pub(super) fn new(label: String, targets: Vec<(String, Vec<Action>)>) -> Self {
        let index = targets
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), i))
            .collect();
        Self {
            label,
            targets,
            index,
        }
    }

    /// `base` (the model's intervention, if any) with rows of named nodes replaced after its
    /// own writes. For one decode of a trace.
    pub(super) fn with_rows(
        base: Option<&Edits>,
        rows: impl IntoIterator<Item = RowWrite>,
    ) -> Self {
        let mut targets = base.map(|b| b.targets.clone()).unwrap_or_default();
        for w in rows {
            let name = w.node.clone();
            let a = Action::SetRow(w);
            match targets.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(a),
                None => targets.push((name, vec![a])),
            }
        }
        let label = base.map(|b| b.label.clone()).unwrap_or_default();
        Self::new(label, targets)
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The target named `name`, if it is one.
    pub(super) fn target(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The first target not written according to `hits`.
    pub(super) fn missing(&self, hits: &[u32]) -> Option<&str> {
        self.targets
            .iter()
            .zip(hits)
            .find(|(_, &h)| h == 0)
            .map(|((n, _), _)| n.as_str())
    }

    /// Write target `i`'s actions into its computed tensor.
    pub(super) fn apply(&self, i: usize, t: &dyn Writable) -> Result<(), String> {
        for a in &self.targets[i].1 {
            match a {
                Action::Zero => t.zero(),
                Action::ZeroColumns { start, len } => t.zero_columns(*start, *len),
                Action::Add(v) => t.add_to_rows(v),
                Action::SetRow(w) => match (t.rows(), w.out_row) {
                    (n, _) if n == w.n_tokens => t.set_row(w.row, &w.values),
                    (_, Some(r)) => t.set_row(r, &w.values),
                    (_, None) => Ok(()),
                },
            }?;
        }
        Ok(())
    }
}
