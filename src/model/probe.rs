//! The self-check behind every multi-sequence decode: before a model scores texts side by
//! side (or fill-in candidates on slots), a few probe texts are scored both ways, and only a
//! model whose numbers agree bit for bit gets several sequences per decode. Otherwise it is
//! scored one sequence at a time, and the reports say so. [`super::kernels`] is why the
//! check passes on llama.cpp's CPU backend; a GPU or RPC backend, or `LOGITSCOPE_REPACK=1`,
//! may choose kernels by batch size, and the check is what keeps that from showing a number
//! that is not the model's.

use super::loader::{Model, ModelError};
use super::session::Session;
use super::slots::Start;
use crate::analysis::stats::ViewOptions;

/// Texts of several lengths (token counts around 4, 8 and 16, where ggml's kernels switch),
/// with shared prefixes for the slot check.
const PROBES: [&str; 4] = [
    "The cat sat",
    "The cat sat on the mat, and the dog slept by the door.",
    "Paris is the capital of France; Berlin is the capital of Germany, and Rome of Italy.",
    "The cat sat on the warm stone steps while the children played in the garden below.",
];

/// What the probe found: may several sequences share a decode?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batching {
    /// Side by side equals one at a time, bit for bit.
    Exact,
    /// They differ (what differed): one sequence at a time.
    OneAtATime(String),
}

impl Batching {
    pub fn is_exact(&self) -> bool {
        matches!(self, Self::Exact)
    }

    /// For reports and the status bar: `None` when nothing needs saying.
    pub fn note(&self) -> Option<String> {
        match self {
            Self::Exact => None,
            Self::OneAtATime(why) => Some(format!(
                "one sequence at a time: on this model and backend {why}, so no texts share a decode"
            )),
        }
    }
}

impl Model {
    /// Whether this model may decode several sequences at once (probed on first use, once).
    pub fn batching(&self) -> &Batching {
        self.batching.get_or_init(|| {
            let found = probe(self).unwrap_or_else(|e| {
                Batching::OneAtATime(format!("the self-check could not run ({e})"))
            });
            if let Batching::OneAtATime(why) = &found {
                tracing::warn!("side-by-side self-check failed: {why}");
            }
            found
        })
    }
}

fn probe(model: &Model) -> Result<Batching, ModelError> {
    let view = ViewOptions {
        temp: 1.0,
        n_probs: 5,
    };
    let texts: Vec<Vec<u32>> = PROBES.iter().map(|t| model.tokenize(t)).collect();
    let mut alone = model.session()?;
    let mut rows = Vec::new();
    let mut logprobs = Vec::new();
    for t in &texts {
        alone.reset();
        rows.push(alone.evaluate(t, view, &|| false)?.rows);
        logprobs.push(alone.token_logprobs(t, view.temp)?);
    }
    drop(alone);
    let longest = texts.iter().map(Vec::len).max().unwrap_or(1);
    let mut batch = model.batch_session(texts.len() as u32 + 1, longest as u32 + 1)?;
    let refs: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
    let side = batch.evaluate_side_by_side_raw(&refs, view)?;
    for (i, ev) in side.iter().enumerate() {
        if ev.rows != rows[i] {
            return Ok(Batching::OneAtATime(format!(
                "texts scored side by side got other numbers than alone (probe {})",
                i + 1
            )));
        }
    }
    if let Some(why) = slot_check(&mut batch, &texts, &logprobs)? {
        return Ok(Batching::OneAtATime(why));
    }
    Ok(Batching::Exact)
}

/// Texts 1 and 3 share "The cat sat on the": decode it once, the two tails on two slots in
/// one step each of the same length, and compare with the texts alone.
fn slot_check(
    batch: &mut Session<'_>,
    texts: &[Vec<u32>],
    alone: &[Vec<Option<f64>>],
) -> Result<Option<String>, ModelError> {
    let (a, b) = (&texts[1], &texts[3]);
    let shared = super::session::common_prefix(a, b)
        .min(a.len() - 1)
        .min(b.len() - 1);
    let to = a.len().min(b.len());
    if shared == 0 || to <= shared {
        return Ok(None);
    }
    let Some((mut slots, _)) = batch.open_slots_raw(&a[..shared], 1.0, &|| false)? else {
        return Ok(None);
    };
    let got = slots.step_raw(
        &[(0, a.as_slice()), (1, b.as_slice())],
        shared,
        to,
        Start::Fresh,
    )?;
    for (lps, want) in got.iter().zip([&alone[1], &alone[3]]) {
        for (k, lp) in lps.iter().enumerate() {
            // `lps[k]` is the log-probability of token shared + k + 1.
            if want.get(shared + k + 1).is_some_and(|w| w != lp) {
                return Ok(Some(
                    "candidates scored on slots side by side got other numbers than alone".into(),
                ));
            }
        }
    }
    Ok(None)
}
