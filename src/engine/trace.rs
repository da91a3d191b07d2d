//! Causal tracing between two texts, for `logitscope trace` and the explorer's trace view: the
//! corrupt text run with one activation of the clean text put back at (layer, position), for
//! every layer and position, and how much of the clean answer returns.
//!
//! The clean and corrupt texts are each decoded once with every activation a grid patches
//! read; the patched runs then go through the model's [`Tracer`] (side by side, each decoded
//! from the position it patches on) or, where the model's self-check found side by side
//! inexact, one at a time from the start. A run whose patch is provably the corrupt run — the
//! clean activation equal to the corrupt one bit for bit (positions before the texts differ),
//! or a last-layer position before the last, which feeds no later position — takes the
//! corrupt run's numbers without a decode.

use std::sync::Arc;

use crate::analysis::stats::{logprobs_of, top_k, TopEntry};
use crate::analysis::top::top_logprobs;
use crate::analysis::trace::{
    differing, plan_steps, Alignment, Baselines, Cell, Grid, Limits, Outcome, RunId, TokenRef,
    TraceReport, What, Work,
};
use crate::model::slots::MIN_MEMBER_STEP;
use crate::model::trace::{Keep, Patch, Tracer};
use crate::model::{Model, ModelError, MAX_WAVE, MIN_DECODE};

/// The most tokens a trace's text may have (one decode of each run).
pub const MAX_TRACE_TOKENS: usize = 512;

/// What to trace and how.
#[derive(Debug, Clone)]
pub struct TraceOptions {
    /// The token whose probability is watched; `None`: the clean text's most likely next
    /// token.
    pub answer: Option<u32>,
    /// A second token: the logit difference answer − against is recorded too.
    pub against: Option<u32>,
    pub what: Vec<What>,
    /// The layers traced (`None`: every layer).
    pub layers: Option<Vec<usize>>,
    /// Decode each patched run from its position on (the corrupt run's cache before it).
    pub reuse: bool,
    /// Patched runs side by side in one decode (1: one at a time, from the start).
    pub width: usize,
    /// Top tokens kept per run.
    pub top_k: usize,
    pub temp: f32,
}

impl Default for TraceOptions {
    fn default() -> Self {
        Self {
            answer: None,
            against: None,
            what: vec![What::Resid],
            layers: None,
            reuse: true,
            width: 32,
            top_k: 5,
            temp: 1.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{0}")]
    Model(#[from] ModelError),
    #[error("{0}")]
    Refused(String),
}

/// How far a trace has come: runs done of all, after each decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// The node each grid patches at `layer`.
fn node(model: &Model, what: What, layer: usize) -> Result<String, TraceError> {
    let c = model
        .components()
        .map_err(|e| TraceError::Refused(e.to_string()))?;
    let l = c
        .layers
        .get(layer)
        .ok_or_else(|| TraceError::Refused(format!("layer {layer} is not in the model's graph")))?;
    match what {
        What::Resid => l.out.clone().ok_or_else(|| {
            TraceError::Refused(format!(
                "tracing the residual stream is unavailable for this model: its graph names no stream after layer {layer} (l_out-{layer})"
            ))
        }),
        What::Attn => Ok(l.attn.clone()),
        What::Mlp => Ok(l.ffn.clone()),
    }
}

/// The answer's figures in logits `z`.
fn outcome(
    model: &Model,
    z: &[f32],
    answer: u32,
    against: Option<u32>,
    opts: &TraceOptions,
) -> Result<Outcome, TraceError> {
    let top = top_k(z, opts.top_k);
    let mut ids = vec![answer];
    ids.extend(against);
    ids.extend(&top);
    let lps = logprobs_of(z, opts.temp, &ids).map_err(ModelError::from)?;
    let skip = 1 + usize::from(against.is_some());
    let entries: Vec<TopEntry> = top
        .iter()
        .zip(&lps[skip..])
        .map(|(&id, &logprob)| TopEntry { id, logprob })
        .collect();
    Ok(Outcome {
        p: lps[0].exp(),
        logprob: lps[0],
        logit_diff: against.map(|_| lps[0] - lps[1]),
        top_logprobs: top_logprobs(model.vocab(), &entries),
    })
}

fn token_ref(model: &Model, id: u32) -> TokenRef {
    let v = model.vocab();
    TokenRef {
        id,
        token: v.text(id),
        bytes: v.bytes(id).to_vec(),
    }
}

/// Trace `clean` against `corrupt`. `progress` is told after each decode and may look at the
/// cells so far (`report.grids`, in the order computed); `cancel` is asked before each
/// decode (`Ok(None)` when it said stop).
pub fn trace(
    model: &Model,
    clean: &str,
    corrupt: &str,
    opts: &TraceOptions,
    progress: &mut dyn FnMut(&TraceReport, Progress),
    cancel: &dyn Fn() -> bool,
) -> Result<Option<TraceReport>, TraceError> {
    let (ct, kt) = (model.tokenize(clean), model.tokenize(corrupt));
    for (name, t) in [("clean", &ct), ("corrupt", &kt)] {
        if t.is_empty() {
            return Err(TraceError::Refused(format!(
                "the {name} text has no tokens"
            )));
        }
        if t.len() > MAX_TRACE_TOKENS {
            return Err(TraceError::Refused(format!(
                "the {name} text has {} tokens; a trace takes at most {MAX_TRACE_TOKENS}",
                t.len()
            )));
        }
    }
    let (n_layer, _) = model.shape();
    let layers: Vec<usize> = match &opts.layers {
        Some(l) if l.iter().any(|&x| x >= n_layer) => {
            return Err(TraceError::Refused(format!(
                "the model's layers are 0 to {}",
                n_layer.saturating_sub(1)
            )))
        }
        Some(l) => l.clone(),
        None => (0..n_layer).collect(),
    };
    let mut what = opts.what.clone();
    what.sort();
    what.dedup();
    if what.is_empty() {
        what.push(What::Resid);
    }
    // Every node patched, grid by grid, layer by layer (the layers traced only).
    let mut nodes = Vec::with_capacity(what.len() * n_layer);
    for &w in &what {
        for &l in &layers {
            nodes.push(node(model, w, l)?);
        }
    }
    let clean_run = model.capture(&ct, &nodes, &[], Keep::Last)?;
    let corrupt_run = model.capture(&kt, &nodes, &[], Keep::Last)?;
    let answer = match opts.answer {
        Some(a) => a,
        None => *top_k(&clean_run.logits[0], 1)
            .first()
            .ok_or_else(|| TraceError::Refused("the model has no vocabulary".into()))?,
    };
    let baselines = Baselines {
        clean: outcome(model, &clean_run.logits[0], answer, opts.against, opts)?,
        corrupt: outcome(model, &corrupt_run.logits[0], answer, opts.against, opts)?,
    };
    let align = Alignment::of(&ct, &kt);
    let mut report = TraceReport {
        clean: clean.to_owned(),
        corrupt: corrupt.to_owned(),
        model: model.info().file_name,
        n_layer,
        layers: layers.clone(),
        clean_tokens: ct.iter().map(|&t| token_ref(model, t)).collect(),
        corrupt_tokens: kt.iter().map(|&t| token_ref(model, t)).collect(),
        differing: differing(&ct, &kt),
        alignment: align.note(),
        answer: token_ref(model, answer),
        against: opts.against.map(|t| token_ref(model, t)),
        grids: what
            .iter()
            .map(|&w| Grid {
                what: w,
                node: node(model, w, 0)
                    .ok()
                    .and_then(|n| {
                        n.rsplit_once('-')
                            .map(|(kind, _)| format!("{kind}-{{layer}}"))
                    })
                    .unwrap_or_default(),
                cells: Vec::new(),
            })
            .collect(),
        baselines,
        work: Work::default(),
        intervention: model.default_edits().map(|e| e.label().to_owned()),
    };
    let n = kt.len();
    // The runs to decode; the rest are the corrupt run itself.
    let mut runs = Vec::new();
    let mut total = 0;
    for (g, &w) in what.iter().enumerate() {
        for (li, &layer) in layers.iter().enumerate() {
            let k = g * layers.len() + li;
            for position in 0..n {
                let Some(j) = align.clean_position(position) else {
                    continue;
                };
                total += 1;
                let same = clean_run.row(k, j) == corrupt_run.row(k, position);
                let unread = layer + 1 == n_layer && position + 1 < n;
                if same || unread {
                    let base = &report.baselines;
                    let cell = Cell::new(layer, position, base.corrupt.clone(), base, false);
                    report.grids[g].cells.push(cell);
                } else {
                    runs.push(RunId {
                        what: w,
                        layer,
                        position,
                    });
                }
            }
        }
    }
    let patch = |r: &RunId| -> Patch {
        let g = what.iter().position(|&w| w == r.what).unwrap_or(0);
        let li = layers.iter().position(|&l| l == r.layer).unwrap_or(0);
        let k = g * layers.len() + li;
        let j = align.clean_position(r.position).unwrap_or(r.position);
        Patch {
            node: nodes[k].clone(),
            position: r.position,
            values: Arc::from(clean_run.row(k, j)),
        }
    };
    let layout = model.layout();
    // Each run side by side has a KV-cache stream of the text's length: at most 8,192 cells
    // in all (a 512-token pair: 15 streams).
    let width = if layout.side_by_side_exact() {
        opts.width.clamp(1, (8192 / (n + 1)).max(1))
    } else {
        1
    };
    let reuse = opts.reuse && layout.incremental_exact() && width > 1;
    let (mut tracer, mut replayer) = if runs.is_empty() {
        (None, None)
    } else if width > 1 {
        (Some(model.tracer(&kt, width)?), None)
    } else {
        (None, Some(model.replayer(&kt, &[])?))
    };
    let limits = Limits {
        width,
        max_tokens: MAX_WAVE.min(tracer.as_ref().map_or(MAX_WAVE, Tracer::capacity)),
        min_member: MIN_MEMBER_STEP,
        min_decode: MIN_DECODE,
    };
    let steps = plan_steps(n, &runs, limits, reuse);
    report.work.prefix_reuse = reuse;
    let mut done = total - runs.len();
    progress(&report, Progress { done, total });
    for step in &steps {
        if cancel() {
            return Ok(None);
        }
        let patches: Vec<Vec<Patch>> = step.runs.iter().map(|r| vec![patch(r)]).collect();
        let mut cells = Vec::with_capacity(step.runs.len());
        match &mut tracer {
            Some(t) => t.step(step.from, &patches, &mut |k, z| cells.push((k, z.to_vec())))?,
            None => {
                if let Some(r) = &mut replayer {
                    for (k, p) in patches.iter().enumerate() {
                        let c = r.run(p, Keep::Last)?;
                        cells.push((k, c.logits.into_iter().next().unwrap_or_default()));
                    }
                }
            }
        }
        for (k, z) in cells {
            let r = step.runs[k];
            let o = outcome(model, &z, answer, opts.against, opts)?;
            let g = what.iter().position(|&w| w == r.what).unwrap_or(0);
            let cell = Cell::new(r.layer, r.position, o, &report.baselines, true);
            report.grids[g].cells.push(cell);
        }
        report.work.runs += step.runs.len();
        report.work.tokens += step.runs.len() * (n - step.from);
        report.work.decodes += if tracer.is_some() { 1 } else { step.runs.len() };
        report.work.side_by_side = report.work.side_by_side.max(step.runs.len());
        done += step.runs.len();
        progress(&report, Progress { done, total });
    }
    for g in &mut report.grids {
        g.cells.sort_by_key(|c| (c.layer, c.position));
    }
    Ok(Some(report))
}
