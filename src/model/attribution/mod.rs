//! Direct logit attribution on a loaded model: one hooked decode reads, at every position,
//! what each component wrote into the residual stream (the nodes [`Model::components`] found
//! in the graph: the embedding, each layer's attention and MLP outputs as added, the heads
//! before the output projection) and the stream the final norm reads. The split itself is
//! pure arithmetic (`analysis::attribution`); here the rows are read and the model's final
//! norm, W and output projections are brought to it.
//!
//! The context reads the model as the sessions do: with the run's intervention in force (an
//! ablated part then reads, and contributes, zero; a control vector shows up in `rest`).

use std::collections::HashMap;
use std::sync::Arc;

use std::cell::Ref;

mod projections;

use super::hook::{NodeName, Tap, Tensor};
use super::lens::{max_abs_dp, parallel, Readout, Unavailable, CHECK_TOLERANCE, MAX_TOKENS};
use super::loader::{Model, ModelError};
use super::readers::{Probe, Reader, Shared, Which};
use crate::analysis::attribution::{
    direction, head_shares_many, remainder, share, Attribution, HeadsAsk, Kind, LayerHeads, Part,
};
use crate::analysis::intervention::Components;
use crate::analysis::lens::max_abs_delta;
use projections::{read_projections, Projection};

/// Why attribution cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum AttributionError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("attribution unavailable: {0}")]
    Unavailable(String),
}

/// The rows of every named node of one decode, by slot.
pub(super) struct Rows {
    slots: HashMap<String, usize>,
    widths: Vec<usize>,
    rows: Vec<Vec<f32>>,
    /// Positions read (the first of the decode).
    limit: usize,
}

impl Reader for Rows {
    fn prepare(&mut self, tokens: &[u32]) {
        self.limit = tokens.len();
        for r in &mut self.rows {
            r.clear();
        }
    }
}

impl Tap for Rows {
    fn wants(&mut self, _node: NodeName<'_>) -> bool {
        false
    }

    fn read(&mut self, _node: NodeName<'_>, _t: &Tensor<'_>) {}

    fn wants_named(&mut self, name: &str) -> bool {
        self.slots.contains_key(name)
    }

    fn read_named(&mut self, name: &str, t: &Tensor<'_>) {
        let Some(&i) = self.slots.get(name) else {
            return;
        };
        let [width, rows, ..] = t.shape();
        if width == self.widths[i] {
            t.read_rows(0, rows.min(self.limit), 0, 0, &mut self.rows[i]);
        }
    }
}

/// Where each part's rows are.
struct Plan {
    names: Vec<String>,
    embedding: usize,
    /// Per layer: attention and MLP slots, and the heads' slot if any.
    layers: Vec<(usize, usize, Option<usize>)>,
    last: usize,
}

impl Plan {
    fn new(c: &Components, n_embd: usize) -> (Self, Vec<usize>) {
        let mut names = Vec::new();
        let mut widths = Vec::new();
        let mut slot = |name: &str, width: usize| {
            names.push(name.to_owned());
            widths.push(width);
            names.len() - 1
        };
        let embedding = slot(&c.embedding, n_embd);
        let layers = c
            .layers
            .iter()
            .map(|l| {
                let a = slot(&l.attn, n_embd);
                let f = slot(&l.ffn, n_embd);
                let h = l.heads.as_ref().map(|(name, w)| slot(name, *w));
                (a, f, h)
            })
            .collect();
        let last = slot(&c.last, n_embd);
        (
            Self {
                names,
                embedding,
                layers,
                last,
            },
            widths,
        )
    }
}

/// Attribution on a loaded model: the parts read from a shared hooked decode, the final norm
/// and W.
pub struct Attributor<'m> {
    probe: Shared<'m>,
    /// Tokens one run covers.
    limit: usize,
    readout: Arc<Readout>,
    plan: Plan,
    components: Components,
    n_head: usize,
    /// Threads for the pass over W (the model's `-t`).
    threads: usize,
    /// The output projections, read on first need, or why heads cannot be split.
    projections: Option<Result<Vec<Projection>, String>>,
    path: std::path::PathBuf,
    /// The text last run, as asked, and the tokens of it covered.
    asked: Vec<u32>,
    tokens: Vec<u32>,
    /// Per position, once made: the H·W panel's rounding (largest |f64 − llama.cpp| over W)
    /// and the self-check (largest |Δp| of our final norm and W, with llama.cpp's dot
    /// product, against llama.cpp's own distribution; or the lens's bound on it, when the
    /// lens checked the same rows).
    rounding: HashMap<usize, (f64, f64)>,
}

impl<'m> Attributor<'m> {
    /// Attribution with a decode of its own.
    pub fn new(model: &'m Model) -> Result<Self, AttributionError> {
        Self::on(&Shared::new(model))
    }

    /// Attribution read from the shared decode `probe` (it joins every later decode there).
    pub fn on(probe: &Shared<'m>) -> Result<Self, AttributionError> {
        let model = probe.model();
        let un = |s: String| AttributionError::Unavailable(s);
        let readout = model.readout().map_err(|Unavailable(s)| un(s))?;
        let components = model.components().map_err(|e| un(e.to_string()))?.clone();
        let n_embd = readout.facts.n_embd;
        let (plan, widths) = Plan::new(&components, n_embd);
        let slots = plan
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect::<HashMap<_, _>>();
        if slots.len() != plan.names.len() {
            return Err(un(
                "two of the parts the residual stream adds share a name in llama.cpp's graph"
                    .into(),
            ));
        }
        let rows = Rows {
            rows: vec![Vec::new(); widths.len()],
            slots,
            widths,
            limit: usize::MAX,
        };
        let limit = model.options().ctx_size.clamp(16, MAX_TOKENS as u32) as usize;
        {
            probe
                .get_mut()
                .join(Which::Attribution, Box::new(rows), limit);
        }
        Ok(Self {
            probe: probe.clone(),
            limit,
            readout,
            plan,
            components,
            n_head: model.shape().1,
            threads: model.options().threads.max(1) as usize,
            projections: None,
            path: model.options().path.clone(),
            asked: Vec::new(),
            tokens: Vec::new(),
            rounding: HashMap::new(),
        })
    }

    /// Tokens one run covers.
    pub fn max_tokens(&self) -> usize {
        self.limit
    }

    /// The tokens of the last run.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Decode `tokens` (the first [`Self::max_tokens`]) and keep every part's rows at every
    /// position (the shared decode is made once for all its readers). Returns the positions
    /// covered.
    pub fn run(&mut self, tokens: &[u32]) -> Result<usize, AttributionError> {
        if tokens.is_empty() {
            return Err(ModelError::Empty.into());
        }
        if self.asked == tokens && self.held().is_ok() {
            return Ok(self.tokens.len());
        }
        self.asked.clear();
        self.tokens.clear();
        self.rounding.clear();
        self.probe.get_mut().serve(Which::Attribution, tokens)?;
        let n = self.probe.get().covers(Which::Attribution, tokens);
        self.asked = tokens.to_vec();
        let held = self.held()?;
        let tap = held.rows();
        for (i, r) in tap.rows.iter().enumerate() {
            if r.len() != n * tap.widths[i] {
                return Err(AttributionError::Unavailable(format!(
                    "llama.cpp's graph did not compute '{}' once for every token ({} values \
                     read, {} expected)",
                    self.plan.names[i],
                    r.len(),
                    n * tap.widths[i]
                )));
            }
        }
        drop(held);
        self.tokens = tokens[..n].to_vec();
        Ok(n)
    }

    /// The shared decode, while it holds the parts of the text last run.
    fn held(&self) -> Result<Held<'_, 'm>, AttributionError> {
        held_of(&self.probe, &self.asked)
    }

    /// The output projections of every layer, dequantized, or why heads cannot be split.
    fn projections(&mut self) -> Result<&[Projection], String> {
        if self.projections.is_none() {
            self.projections = Some(read_projections(
                &self.path,
                &self.components,
                self.readout.facts.n_embd,
            ));
        }
        match self.projections.as_ref().expect("just read") {
            Ok(p) => Ok(p),
            Err(e) => Err(e.clone()),
        }
    }

    /// The logit of `target` at `position` (of the last run) split into its parts. The
    /// target's text is `text`. Computes the H·W rounding of `position` when not yet known.
    pub fn at(
        &mut self,
        position: usize,
        target: u32,
        text: String,
    ) -> Result<Attribution, AttributionError> {
        let mut one = self.at_many(vec![(position, target, text)])?;
        Ok(one.pop().expect("one split asked, one made"))
    }

    /// [`Self::at`] for each of `asks` (position, target, its text), `[i]` for `asks[i]`:
    /// the rounding and the self-check in one pass over W for all, and the heads' shares of
    /// every layer with its projection read once for all, on the model's threads. The first
    /// ask that cannot be split (in order) is the error.
    pub fn at_many(
        &mut self,
        asks: Vec<(usize, u32, String)>,
    ) -> Result<Vec<Attribution>, AttributionError> {
        let positions: Vec<usize> = asks.iter().map(|a| a.0).collect();
        self.rounding_of(&positions);
        let mut pending = Vec::with_capacity(asks.len());
        for (position, target, text) in asks {
            pending.push(self.split(position, target, text)?);
        }
        self.heads(pending)
    }

    /// The H·W panel's rounding and the self-check at each of `positions` (one pass over W
    /// for all).
    pub fn rounding_of(&mut self, positions: &[usize]) {
        let todo: Vec<usize> = positions
            .iter()
            .copied()
            .filter(|p| *p < self.tokens.len() && !self.rounding.contains_key(p))
            .collect();
        if todo.is_empty() {
            return;
        }
        let Ok(held) = held_of(&self.probe, &self.asked) else {
            return; // The split says why.
        };
        let ys: Vec<Vec<f32>> = todo
            .iter()
            .map(|&p| self.readout.normed(held.row(self.plan.last, p)))
            .collect();
        let refs: Vec<&[f32]> = ys.iter().map(Vec::as_slice).collect();
        let exact = self.readout.exact_logits(&refs, self.threads);
        // The self-check: our norm and W with llama.cpp's dot product, position by position
        // on the model's threads, unless the lens has just made it of these very rows (the
        // same node of the same decode, at temperature 1) and found them all within the
        // tolerance: its largest |Δp| then bounds each position's.
        let lens = held.probe.checked().filter(|c| {
            c.node == self.plan.names[self.plan.last]
                && c.temp == 1.0
                && c.worst <= CHECK_TOLERANCE
                && todo.iter().all(|&p| p < c.covered)
        });
        let checks = match lens {
            Some(c) => {
                tracing::debug!("attribution's self-check: the lens's of the same rows");
                vec![c.worst; todo.len()]
            }
            None => {
                let rows: Vec<(&[f32], &[f32])> = todo
                    .iter()
                    .map(|&p| (held.row(self.plan.last, p), held.logits(p)))
                    .collect();
                let readout = &self.readout;
                parallel(self.threads, &rows, |(h, theirs)| {
                    max_abs_dp(&readout.logits(h), theirs, 1.0)
                })
            }
        };
        for ((&p, z), dp) in todo.iter().zip(exact).zip(checks) {
            let d = max_abs_delta(&z, held.logits(p));
            self.rounding.insert(p, (d, dp));
        }
    }

    /// The split of `target`'s logit at `position`, but for the heads.
    fn split(
        &self,
        position: usize,
        target: u32,
        text: String,
    ) -> Result<Pending, AttributionError> {
        let n_vocab = self.readout.facts.n_vocab;
        if position >= self.tokens.len() || target as usize >= n_vocab {
            return Err(AttributionError::Unavailable(format!(
                "position {position} or token {target} is outside the text or vocabulary"
            )));
        }
        let r = Arc::clone(&self.readout);
        let held = self.held()?;
        let residual = held.row(self.plan.last, position).to_vec();
        let frozen = r.frozen(&residual);
        let post = r.post();
        let factor = f64::from(post.scale.unwrap_or(1.0)) / f64::from(post.divide.unwrap_or(1.0));
        let w_row = r.w_row(target as usize);
        let g = direction(factor, f64::from(frozen.scale), r.norm_weight(), &w_row);
        let centred = frozen.mean.is_some();
        let mut parts = vec![Part::new(
            Kind::Embed,
            None,
            share(held.row(self.plan.embedding, position), &g, centred),
        )];
        let mut named: Vec<&[f32]> = vec![held.row(self.plan.embedding, position)];
        for (l, &(a, f, _)) in self.plan.layers.iter().enumerate() {
            parts.push(Part::new(
                Kind::Attn,
                Some(l),
                share(held.row(a, position), &g, centred),
            ));
            parts.push(Part::new(
                Kind::Ffn,
                Some(l),
                share(held.row(f, position), &g, centred),
            ));
            named.push(held.row(a, position));
            named.push(held.row(f, position));
        }
        let rest = remainder(&residual, &named);
        parts.push(Part::new(Kind::Rest, None, share(&rest, &g, centred)));
        if let Some(bias) = r.norm_bias() {
            let b: f64 = bias
                .iter()
                .zip(&w_row)
                .map(|(&b, &w)| f64::from(b) * f64::from(w))
                .sum();
            parts.push(Part::new(Kind::Bias, None, factor * b));
        }
        let sum: f64 = parts.iter().map(|p| p.value).sum();
        let y = r.normed(&residual);
        let exact: f64 = y
            .iter()
            .zip(&w_row)
            .map(|(&y, &w)| f64::from(y) * f64::from(w))
            .sum();
        let logit_f64 = post.apply_f64(exact);
        let llama = held.logits(position)[target as usize];
        let (rounding, dp) = self
            .rounding
            .get(&position)
            .copied()
            .unwrap_or((f64::NAN, 0.0));
        if dp > CHECK_TOLERANCE {
            return Err(AttributionError::Unavailable(format!(
                "the final norm and W read from the GGUF do not reproduce llama.cpp's \
                 distribution at position {position} (|Δp| up to {dp:.2e}, more than \
                 {CHECK_TOLERANCE:e}): llama.cpp's output for this model is not the one the \
                 split assumes"
            )));
        }
        let post_note = post.softcap.map(|c| {
            format!(
                "the parts are of the logit before llama.cpp's soft-cap {c}·tanh(z/{c}) \
                 (final_logit_softcapping)"
            )
        });
        // Heads: each layer's heads' outputs and the attention's whole share, for the step
        // that splits them through the output projections (`Self::heads`).
        let layers = self
            .plan
            .layers
            .iter()
            .enumerate()
            .map(|(l, &(_, _, h))| {
                (
                    h.map(|h| held.row(h, position).to_vec()),
                    parts[1 + 2 * l].value,
                )
            })
            .collect();
        let attribution = Attribution {
            position,
            target,
            target_text: text,
            parts,
            sum,
            logit_f64,
            llama,
            rounding,
            post: post_note,
            heads: None,
            heads_unavailable: None,
        };
        Ok(Pending {
            attribution,
            g,
            layers,
            centred,
        })
    }

    /// The heads' shares of each pending split: every layer's heads through its output
    /// projection (and a frozen post-norm), the splits shared out over the model's threads,
    /// each thread reading each projection once for all of its splits.
    fn heads(&mut self, pending: Vec<Pending>) -> Result<Vec<Attribution>, AttributionError> {
        let done = |pending: Vec<Pending>, why: Option<String>| {
            pending
                .into_iter()
                .map(|p| Attribution {
                    heads_unavailable: why.clone(),
                    ..p.attribution
                })
                .collect()
        };
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        if pending.iter().any(|p| p.centred) {
            let why = "per-head shares are not made under a final layer norm";
            return Ok(done(pending, Some(why.to_owned())));
        }
        let (n_head, threads) = (self.n_head, self.threads);
        let projections = match self.projections() {
            Err(why) => return Ok(done(pending, Some(why))),
            Ok(p) => p,
        };
        let per = pending.len().div_ceil(threads.max(1)).max(1);
        let chunks: Vec<&[Pending]> = pending.chunks(per).collect();
        let heads: Vec<Vec<LayerHeads>> = parallel(threads, &chunks, |chunk| {
            let mut out: Vec<Vec<LayerHeads>> = vec![Vec::new(); chunk.len()];
            for (l, p) in projections.iter().enumerate() {
                let (which, asks): (Vec<usize>, Vec<HeadsAsk<'_>>) = chunk
                    .iter()
                    .enumerate()
                    .filter_map(|(k, s)| {
                        let heads = s.layers.get(l)?.0.as_deref()?;
                        Some((k, (heads, s.g.as_slice())))
                    })
                    .unzip();
                let post = p.post.as_ref().map(|(w, eps)| (w.as_slice(), *eps));
                let shares = head_shares_many(&asks, &p.wo, n_head, post);
                for (k, heads) in which.into_iter().zip(shares) {
                    let rest = chunk[k].layers[l].1 - heads.iter().sum::<f64>();
                    out[k].push(LayerHeads {
                        layer: l,
                        heads,
                        rest,
                    });
                }
            }
            out
        })
        .into_iter()
        .flatten()
        .collect();
        Ok(pending
            .into_iter()
            .zip(heads)
            .map(|(p, heads)| Attribution {
                heads: Some(heads),
                ..p.attribution
            })
            .collect())
    }
}

/// A split made but for its heads: the direction g and, per layer, the heads' outputs (when
/// the graph names them) and the attention's whole share.
struct Pending {
    attribution: Attribution,
    g: Vec<f64>,
    layers: Vec<(Option<Vec<f32>>, f64)>,
    /// Under a final layer norm (no per-head shares then).
    centred: bool,
}

/// Attribution's rows of a shared decode that holds its text.
struct Held<'a, 'm> {
    probe: Ref<'a, Probe<'m>>,
}

/// `probe` while it holds the parts of `asked` (the text attribution last ran on).
fn held_of<'a, 'm>(probe: &'a Shared<'m>, asked: &[u32]) -> Result<Held<'a, 'm>, AttributionError> {
    let probe = probe.get();
    if asked.is_empty()
        || !probe.holds(Which::Attribution, asked)
        || probe.readers().get::<Rows>(Which::Attribution).is_none()
    {
        return Err(ModelError::Decode(
            "attribution's decode holds another text now: run it on this one again".into(),
        )
        .into());
    }
    Ok(Held { probe })
}

impl Held<'_, '_> {
    fn rows(&self) -> &Rows {
        self.probe
            .readers()
            .get(Which::Attribution)
            .expect("checked by held_of")
    }

    fn row(&self, slot: usize, position: usize) -> &[f32] {
        let tap = self.rows();
        let w = tap.widths[slot];
        &tap.rows[slot][position * w..(position + 1) * w]
    }

    fn logits(&self, position: usize) -> &[f32] {
        self.probe.logits(position)
    }
}
