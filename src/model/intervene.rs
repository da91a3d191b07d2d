//! Interventions written into llama.cpp's graph through the tensor hook: ablations (a part's
//! output set to zero) and steering with llama.cpp's control vectors (a direction added to
//! the residual stream after a layer), resolved once per model against its recorded graph.
//!
//! Steering is applied as llama.cpp applies a control vector (`llama_set_adapter_cvec`): the
//! file's `direction.k` (k ≥ 1) summed over files with their scales in f32, added in f32 to
//! the output of layer k for k in the layer range (default 1 to n_layer, layer 0 never) — the
//! same addition llama.cpp's `build_cvec` makes before it names the tensor `l_out-k`, so the
//! numbers are llama.cpp's (tests/intervene.rs compares with llama.cpp's own on a context of
//! ours). The scoring sessions come from llama-cpp-2, which exposes neither the eval callback
//! nor the context pointer `llama_set_adapter_cvec` needs; the hook reaches both.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use llama_cpp_sys_2 as sys;

use super::edits::{Action, Edits};
use super::hook::{Hooked, NodeName, Tap, Tensor};
use super::loader::{Model, ModelError};
use crate::analysis::intervention::{
    check_parts, describe, residual_components, Components, GraphNode, Op, Part,
};

/// What an evaluation changes in the model. The default changes nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Intervention {
    pub ablate: Vec<Part>,
    pub steer: Vec<ControlVector>,
    /// `--control-vector-layer-range A B` (inclusive; llama.cpp's default 1 to n_layer).
    pub layer_range: Option<(i32, i32)>,
}

/// One `--control-vector[-scaled] FILE [S]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlVector {
    pub path: PathBuf,
    pub scale: f32,
}

impl Intervention {
    pub fn is_empty(&self) -> bool {
        self.ablate.is_empty() && self.steer.is_empty()
    }

    /// What it does, in one line (the status bar, the JSON): `ablate attn:3 · steer f.gguf×2`.
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if !self.ablate.is_empty() {
            parts.push(format!("ablate {}", describe(&self.ablate)));
        }
        if !self.steer.is_empty() {
            let files: Vec<String> = self
                .steer
                .iter()
                .map(|c| {
                    let name = c.path.file_name().map_or_else(
                        || c.path.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    );
                    format!("{name}×{}", c.scale)
                })
                .collect();
            let range = self
                .layer_range
                .map(|(a, b)| format!(" layers {a}-{b}"))
                .unwrap_or_default();
            parts.push(format!("steer {}{range}", files.join("+")));
        }
        parts.join(" · ")
    }
}

impl Model {
    /// What each layer adds to the residual stream in this model's graph (recorded once from
    /// a decode of two tokens), or why that cannot be said.
    pub fn components(&self) -> Result<&Components, ModelError> {
        self.graph
            .get_or_init(|| probe_graph(self))
            .as_ref()
            .map_err(|e| ModelError::Intervention(format!("unavailable for this model: {e}")))
    }

    /// Make every session made from now on start with `edits` (`--ablate`, `--control-vector`
    /// for a whole run); a session can still be given others ([`super::Session::set_edits`]).
    pub fn set_edits(&self, edits: Option<Arc<Edits>>) {
        *self
            .edits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = edits;
    }

    /// What new sessions start with.
    pub fn default_edits(&self) -> Option<Arc<Edits>> {
        self.edits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Layers and heads per layer.
    pub fn shape(&self) -> (usize, usize) {
        // SAFETY: the model is loaded; the calls read hyperparameters.
        unsafe {
            (
                usize::try_from(sys::llama_model_n_layer(self.raw())).unwrap_or(0),
                usize::try_from(sys::llama_model_n_head(self.raw())).unwrap_or(0),
            )
        }
    }

    /// `intervention` as writes into this model's graph; `None` when it changes nothing.
    pub fn edits(&self, intervention: &Intervention) -> Result<Option<Arc<Edits>>, ModelError> {
        if intervention.is_empty() {
            return Ok(None);
        }
        let (n_layer, n_head) = self.shape();
        check_parts(&intervention.ablate, n_layer, n_head).map_err(ModelError::Intervention)?;
        let mut targets: Vec<(String, Vec<Action>)> = Vec::new();
        let mut push = |name: &str, a: Action| match targets.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(a),
            None => targets.push((name.to_owned(), vec![a])),
        };
        if !intervention.ablate.is_empty() {
            let c = self.components()?;
            for &p in &intervention.ablate {
                let layer = &c.layers[p.layer()];
                match p {
                    Part::Attn(_) => push(&layer.attn, Action::Zero),
                    Part::Ffn(_) => push(&layer.ffn, Action::Zero),
                    Part::Head(l, h) => {
                        let (name, width) = layer.heads.as_ref().ok_or_else(|| {
                            ModelError::Intervention(format!(
                                "head ablation is unavailable for this model: its graph has no \
                                 kqv_out-{l} (the heads before the output projection)"
                            ))
                        })?;
                        if n_head == 0 || width % n_head != 0 {
                            return Err(ModelError::Intervention(format!(
                                "head ablation is unavailable: kqv_out-{l} is {width} wide, not \
                                 a multiple of {n_head} heads"
                            )));
                        }
                        let d = width / n_head;
                        push(
                            name,
                            Action::ZeroColumns {
                                start: h * d,
                                len: d,
                            },
                        );
                    }
                }
            }
        }
        if !intervention.steer.is_empty() {
            let n_embd = self.n_embd();
            let data = load_control_vectors(&intervention.steer, n_embd)?;
            let (start, end) = intervention.layer_range.unwrap_or((0, 0));
            let start = if start <= 0 { 1 } else { start };
            let end = if end <= 0 { n_layer as i32 } else { end };
            // llama.cpp's apply: layer il (1 ≤ il < n_layer) gets data[(il − 1)·n_embd..],
            // when the file has it and il lies in the range.
            for il in 1..n_layer {
                let off = n_embd * (il - 1);
                if (il as i32) < start || (il as i32) > end || off + n_embd > data.len() {
                    continue;
                }
                push(
                    &format!("l_out-{il}"),
                    Action::Add(data[off..off + n_embd].into()),
                );
            }
        }
        Ok(Some(Arc::new(Edits::new(intervention.label(), targets))))
    }

    pub fn n_embd(&self) -> usize {
        // SAFETY: the model is loaded; the call reads a hyperparameter.
        usize::try_from(unsafe { sys::llama_model_n_embd(self.raw()) }).unwrap_or(0)
    }
}

/// llama.cpp's `common_control_vector_load`: per file, `direction.k` × scale accumulated in
/// f32 at `(k − 1)·n_embd`; files summed in order.
fn load_control_vectors(files: &[ControlVector], n_embd: usize) -> Result<Vec<f32>, ModelError> {
    let mut total: Option<Vec<f32>> = None;
    for cv in files {
        let data = load_one(&cv.path, cv.scale, n_embd).map_err(|e| {
            ModelError::Intervention(format!("control vector '{}': {e}", cv.path.display()))
        })?;
        match &mut total {
            None => total = Some(data),
            Some(t) => {
                if t.len() < data.len() {
                    t.resize(data.len(), 0.0);
                }
                for (x, y) in t.iter_mut().zip(&data) {
                    *x += y;
                }
            }
        }
    }
    Ok(total.unwrap_or_default())
}

fn load_one(path: &Path, scale: f32, n_embd: usize) -> Result<Vec<f32>, String> {
    let info = super::gguf::inspect(path).map_err(|e| e.to_string())?;
    if info.tensors.is_empty() {
        return Err("it has no direction tensors".into());
    }
    let mut data: Vec<f32> = Vec::new();
    for t in &info.tensors {
        let layer = t
            .name
            .strip_prefix("direction.")
            .and_then(|k| k.parse::<usize>().ok())
            .ok_or_else(|| format!("tensor '{}' is not direction.<layer>", t.name))?;
        if layer == 0 {
            return Err("direction.0: layer indices start at 1".into());
        }
        if t.type_id != 0 || t.dims.len() != 1 {
            return Err(format!("{} is not a 1-D F32 tensor", t.name));
        }
        let values = super::lens::read_f32(path, t)?;
        if values.len() != n_embd {
            return Err(format!(
                "{} has {} values, the model's n_embd is {n_embd}",
                t.name,
                values.len()
            ));
        }
        if data.len() < n_embd * layer {
            data.resize(n_embd * layer, 0.0);
        }
        let dst = &mut data[n_embd * (layer - 1)..n_embd * layer];
        for (d, v) in dst.iter_mut().zip(values) {
            *d += v * scale;
        }
    }
    Ok(data)
}

/// Records every node of one decode's graph: names, operations, sources, shapes.
#[derive(Default)]
struct Recorder {
    nodes: Vec<GraphNode>,
    seen: HashMap<usize, usize>,
}

impl Recorder {
    fn index(
        &mut self,
        ptr: usize,
        name: String,
        op: Op,
        srcs: Vec<usize>,
        ne: [usize; 4],
    ) -> usize {
        if let Some(&i) = self.seen.get(&ptr) {
            return i;
        }
        self.nodes.push(GraphNode { name, op, srcs, ne });
        self.seen.insert(ptr, self.nodes.len() - 1);
        self.nodes.len() - 1
    }
}

impl Tap for Recorder {
    fn wants(&mut self, _node: NodeName<'_>) -> bool {
        false
    }

    fn read(&mut self, _node: NodeName<'_>, _t: &Tensor<'_>) {}

    fn sees(&mut self, name: &str, t: &Tensor<'_>) {
        let srcs = t
            .sources()
            .into_iter()
            .map(|s| self.index(s.ptr, s.name, op_of(s.op), Vec::new(), s.ne))
            .collect();
        let ptr = t.ptr();
        // A source seen before as a leaf is a node after all: keep its index, add its inputs.
        if let Some(&i) = self.seen.get(&ptr) {
            self.nodes[i].srcs = srcs;
            return;
        }
        self.index(ptr, name.to_owned(), op_of(t.op()), srcs, t.shape());
    }
}

fn op_of(op: u32) -> Op {
    match op {
        sys::GGML_OP_ADD => Op::Add,
        sys::GGML_OP_MUL => Op::Mul,
        sys::GGML_OP_RMS_NORM => Op::RmsNorm,
        sys::GGML_OP_NORM => Op::Norm,
        sys::GGML_OP_GET_ROWS => Op::GetRows,
        _ => Op::Other,
    }
}

/// Decode two tokens in a context of ours and walk its graph.
fn probe_graph(model: &Model) -> Result<Components, String> {
    let (n_layer, _) = model.shape();
    let mut ctx = Hooked::new(model, 16, Recorder::default())?;
    ctx.set_edits(None);
    ctx.decode(&[0, 0]).map_err(|e| e.to_string())?;
    residual_components(&ctx.tap().nodes, n_layer)
}
