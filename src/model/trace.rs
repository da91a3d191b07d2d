//! Causal tracing's decodes. A text decoded whole in a hooked context with the activations a
//! trace patches read at every position ([`Model::capture`], also the reference path that
//! decodes a patched run from the start), and a [`Tracer`]: patched runs of the corrupt text
//! decoded side by side, each on its own KV-cache stream that starts as a copy of the corrupt
//! text's cache up to the position it patches (everything before a patched position is the
//! corrupt run's), with one clean activation written over one row of a node by the tensor
//! hook ([`RowWrite`]).
//!
//! A patched run asks llama.cpp for the logits of its last position only. In the last layer
//! llama.cpp then computes only that row, so a patch there at an earlier position writes
//! nothing — the row it would write feeds no output, and the answer is the corrupt run's.

use std::sync::Arc;

use llama_cpp_2::token::LlamaToken;

use super::edits::{Edits, RowWrite};
use super::hook::{Hooked, NodeName, Tap, Tensor};
use super::loader::{Model, ModelError};
use super::session::Session;

/// One activation put back: `values` written over position `position` of node `node`.
#[derive(Debug, Clone)]
pub struct Patch {
    pub node: String,
    pub position: usize,
    pub values: Arc<[f32]>,
}

/// Which logits a capture keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Last,
    All,
}

/// A text decoded whole: per node asked for, its rows (position-major, `widths[k]` floats
/// each), and the logits kept (the last position's, or every position's).
#[derive(Debug, Clone)]
pub struct Capture {
    pub rows: Vec<Vec<f32>>,
    pub widths: Vec<usize>,
    pub logits: Vec<Vec<f32>>,
}

impl Capture {
    /// Row `position` of node `k`.
    pub fn row(&self, k: usize, position: usize) -> &[f32] {
        let w = self.widths[k];
        &self.rows[k][position * w..(position + 1) * w]
    }
}

/// Reads whole nodes by name at every position of one decode.
struct Reader {
    names: Vec<String>,
    rows: Vec<Vec<f32>>,
    widths: Vec<usize>,
    n: usize,
    fault: Option<String>,
}

impl Tap for Reader {
    fn wants(&mut self, _node: NodeName<'_>) -> bool {
        false
    }
    fn read(&mut self, _node: NodeName<'_>, _tensor: &Tensor<'_>) {}
    fn wants_named(&mut self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
    fn read_named(&mut self, name: &str, t: &Tensor<'_>) {
        let Some(k) = self.names.iter().position(|n| n == name) else {
            return;
        };
        let [w, rows, ..] = t.shape();
        self.rows[k].clear();
        if rows != self.n || !t.read_rows(0, self.n, 0, 0, &mut self.rows[k]) {
            self.fault = Some(format!(
                "node '{name}' is not {} rows of f32 (shape {:?})",
                self.n,
                t.shape()
            ));
            return;
        }
        self.widths[k] = w;
    }
}

/// A text decoded whole, again and again, each time with other patches: one hooked context
/// reused (the one-at-a-time path, and the reference the side-by-side decodes are tested
/// against).
pub struct Replayer<'m> {
    ctx: Hooked<'m, Reader>,
    tokens: Vec<u32>,
    base: Option<Arc<Edits>>,
}

impl Replayer<'_> {
    /// One decode of the text with `patches` written (none: the text as the model computes
    /// it), the nodes asked for read at every position.
    pub fn run(&mut self, patches: &[Patch], keep: Keep) -> Result<Capture, ModelError> {
        let n = self.tokens.len();
        // Nodes are read at every position, the last layer's too: then every row is an
        // output. Otherwise only the last (llama.cpp computes less of the last layer).
        let all = keep == Keep::All || !self.ctx.tap().names.is_empty();
        let edits = if patches.is_empty() {
            self.base.clone()
        } else {
            let writes = patches.iter().map(|p| RowWrite {
                node: p.node.clone(),
                row: p.position,
                out_row: if all {
                    Some(p.position)
                } else {
                    (p.position + 1 == n).then_some(0)
                },
                n_tokens: n,
                values: p.values.clone(),
            });
            Some(Arc::new(Edits::with_rows(self.base.as_deref(), writes)))
        };
        self.ctx.set_edits(edits);
        let tap = self.ctx.tap_mut();
        tap.fault = None;
        tap.widths.iter_mut().for_each(|w| *w = 0);
        self.ctx.decode_keeping(&self.tokens, all)?;
        let tap = self.ctx.tap();
        if let Some(f) = &tap.fault {
            return Err(ModelError::Intervention(format!(
                "cannot read activations: {f}"
            )));
        }
        if let Some(k) = tap.widths.iter().position(|&w| w == 0) {
            return Err(ModelError::Intervention(format!(
                "unavailable for this model: its graph computed no node '{}' to read",
                tap.names[k]
            )));
        }
        let logits = match keep {
            Keep::Last => vec![self.ctx.logits(n - 1).to_vec()],
            Keep::All => (0..n).map(|i| self.ctx.logits(i).to_vec()).collect(),
        };
        let tap = self.ctx.tap_mut();
        Ok(Capture {
            rows: std::mem::replace(&mut tap.rows, vec![Vec::new(); tap.names.len()]),
            widths: tap.widths.clone(),
            logits,
        })
    }
}

impl Model {
    /// A [`Replayer`] of `tokens` reading `nodes` at every position.
    pub fn replayer(&self, tokens: &[u32], nodes: &[String]) -> Result<Replayer<'_>, ModelError> {
        let n = tokens.len();
        if n == 0 {
            return Err(ModelError::Empty);
        }
        let reader = Reader {
            names: nodes.to_vec(),
            rows: vec![Vec::new(); nodes.len()],
            widths: vec![0; nodes.len()],
            n,
            fault: None,
        };
        let ctx = Hooked::new(self, n as u32, reader).map_err(ModelError::Decode)?;
        Ok(Replayer {
            ctx,
            tokens: tokens.to_vec(),
            base: self.default_edits(),
        })
    }

    /// `tokens` decoded whole in one decode (the model's intervention in force), `patches`
    /// written, `nodes` read at every position.
    pub fn capture(
        &self,
        tokens: &[u32],
        nodes: &[String],
        patches: &[Patch],
        keep: Keep,
    ) -> Result<Capture, ModelError> {
        self.replayer(tokens, nodes)?.run(patches, keep)
    }

    /// A context for patched runs of `corrupt`, `width` of them side by side (at most 63).
    pub fn tracer(&self, corrupt: &[u32], width: usize) -> Result<Tracer<'_>, ModelError> {
        let width = width.clamp(1, 63);
        let n = corrupt.len();
        let mut session = self.batch_session(width as u32 + 1, n as u32 + 1)?;
        if n == 0 {
            return Err(ModelError::Empty);
        }
        if n > session.batch_capacity {
            return Err(ModelError::TooLong {
                n_tokens: n,
                n_ctx: session.batch_capacity,
            });
        }
        // Stream 0: the corrupt text in one decode, as `capture` decodes it.
        session.decode_tokens(corrupt, 0, 0)?;
        Ok(Tracer {
            base: session.edits().cloned(),
            session,
            corrupt: corrupt.to_vec(),
            width,
        })
    }
}

/// Patched runs of one corrupt text, decoded side by side on copies of its cache.
pub struct Tracer<'m> {
    session: Session<'m>,
    corrupt: Vec<u32>,
    /// The model's own intervention, under every patch.
    base: Option<Arc<Edits>>,
    width: usize,
}

impl Tracer<'_> {
    /// Runs one decode may hold.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Most rows of one decode.
    pub fn capacity(&self) -> usize {
        self.session.batch_capacity
    }

    /// One decode: run k is the corrupt text from position `from` to its end with `runs[k]`
    /// written (every patch at `from` or later). `each(k, logits)` gets run k's logits at the
    /// last position.
    pub fn step(
        &mut self,
        from: usize,
        runs: &[Vec<Patch>],
        each: &mut dyn FnMut(usize, &[f32]),
    ) -> Result<(), ModelError> {
        let n = self.corrupt.len();
        let t = n.saturating_sub(from);
        if runs.is_empty() || t == 0 {
            return Ok(());
        }
        if runs.len() > self.width || runs.len() * t > self.session.batch_capacity {
            return Err(ModelError::Decode(format!(
                "{} runs of {t} tokens do not fit one decode",
                runs.len()
            )));
        }
        if runs
            .iter()
            .flatten()
            .any(|p| p.position < from || p.position >= n)
        {
            return Err(ModelError::Decode(format!(
                "a patch lies outside tokens {from}..{n}"
            )));
        }
        let n_tokens = runs.len() * t;
        let writes: Vec<RowWrite> = runs
            .iter()
            .enumerate()
            .flat_map(|(k, patches)| {
                patches.iter().map(move |p| RowWrite {
                    node: p.node.clone(),
                    row: k * t + (p.position - from),
                    out_row: (p.position == n - 1).then_some(k),
                    n_tokens,
                    values: p.values.clone(),
                })
            })
            .collect();
        for k in 0..runs.len() {
            self.session.fresh_stream(k as i32 + 1, from)?;
        }
        self.session.batch.clear();
        for k in 0..runs.len() {
            for (j, &tok) in self.corrupt.iter().enumerate().skip(from) {
                self.session
                    .batch
                    .add(
                        LlamaToken(tok as i32),
                        j as i32,
                        &[k as i32 + 1],
                        j == n - 1,
                    )
                    .map_err(|e| ModelError::Decode(e.to_string()))?;
            }
        }
        let edits = Arc::new(Edits::with_rows(self.base.as_deref(), writes));
        self.session.set_edits_keeping_cache(Some(edits));
        let decoded = self.session.decode_batch();
        self.session.set_edits_keeping_cache(self.base.clone());
        decoded?;
        for k in 0..runs.len() {
            each(k, self.session.row(k * t + t - 1));
        }
        Ok(())
    }
}
