//! The self-check behind every decode that could depend on its layout: before a model scores
//! texts side by side (or fill-in candidates on slots), or reuses a cached prefix, a few probe
//! texts are scored both ways, and only what agrees bit for bit is used. Otherwise texts are
//! scored one sequence at a time, or from scratch, and the reports say so.
//! [`super::kernels`] is why the checks pass on llama.cpp's CPU backend; a GPU or RPC backend,
//! or `LOGITSCOPE_REPACK=1`, may choose kernels by batch size, and the check is what keeps
//! that from showing a number that is not the model's.

use super::layout::Layout;
use super::loader::{Model, ModelError};
use super::session::Session;
use super::slots::Start;
use crate::analysis::stats::{logprobs_of, RowSummary, ViewOptions};

/// Texts of several lengths (token counts on both sides of 4, 8 and 16, where ggml's CPU
/// kernels switch), the last two with a shared prefix for the slot check.
const PROBES: [&str; 3] = [
    "The cat sat",
    "The cat sat on the mat, and the dog slept by the door.",
    "The cat sat on the warm stone steps while the children played in the garden below.",
];

impl Model {
    /// What this model's decodes may share (probed on first need, once per process, or the
    /// finding kept on disk for the same build, CPU and model file: [`super::probe_cache`]).
    pub fn layout(&self) -> &Layout {
        self.layout.get_or_init(|| {
            if let Some(why) = super::kernels::known_layout_dependence() {
                return Layout {
                    side_by_side: Some(why.into()),
                    incremental: Some(why.into()),
                };
            }
            let key = super::probe_cache::key(self);
            let found = match key.as_ref().and_then(super::probe_cache::lookup) {
                Some(kept) => {
                    tracing::debug!(
                        "layout self-check: the finding kept for this build, CPU and model file"
                    );
                    kept
                }
                None => {
                    let probed = self.probe_layout();
                    if let (Ok(found), Some(key)) = (&probed, &key) {
                        super::probe_cache::store(key, found);
                    }
                    probed.unwrap_or_else(|e| {
                        let why = format!("the self-check could not run: {e}");
                        Layout {
                            side_by_side: Some(why.clone()),
                            incremental: Some(why),
                        }
                    })
                }
            };
            if let Some(note) = found.note() {
                tracing::warn!("{note}");
            }
            found
        })
    }

    /// Run the probe now (whatever the kernels are known to do): for tests of the probe.
    pub fn probe_layout(&self) -> Result<Layout, ModelError> {
        probe(self)
    }

    /// The probe's finding if it has run.
    pub fn layout_if_probed(&self) -> Option<&Layout> {
        self.layout.get()
    }
}

/// Rows and token log-probabilities of `tokens` decoded from scratch.
type Alone = (Vec<RowSummary>, Vec<Option<f64>>);

fn alone(
    session: &mut Session<'_>,
    tokens: &[u32],
    view: ViewOptions,
) -> Result<Alone, ModelError> {
    session.reset();
    let mut lps = vec![None; tokens.len()];
    let ev = session.evaluate_from(tokens, view, 0, &|| false, &mut |pos, len, s| {
        for i in 0..len {
            if let Some(&t) = tokens.get(pos + i + 1) {
                lps[pos + i + 1] = Some(logprobs_of(s.row(i), view.temp, &[t])?[0]);
            }
        }
        Ok(())
    })?;
    Ok((ev.rows, lps))
}

fn probe(model: &Model) -> Result<Layout, ModelError> {
    let view = ViewOptions {
        temp: 1.0,
        n_probs: 5,
    };
    let texts: Vec<Vec<u32>> = PROBES.iter().map(|t| model.tokenize(t)).collect();
    let longest = texts.iter().map(Vec::len).max().unwrap_or(1);
    // Small contexts: the context size changes no number (tests/fixtures/README.md).
    let mut one = model.raw_session(longest as u32 + 1, 1)?;
    let mut found = Vec::new();
    for t in &texts {
        found.push(alone(&mut one, t, view)?);
    }
    let mut layout = Layout::default();
    // The longest text again, its last MIN_DECODE tokens after its cached head.
    let (i, long) = texts
        .iter()
        .enumerate()
        .max_by_key(|(_, t)| t.len())
        .unwrap_or((0, &texts[0]));
    one.reset();
    let head = long.len().saturating_sub(super::MIN_DECODE + 1).max(1);
    one.evaluate(&long[..head], view, &|| false)?;
    if one.evaluate(long, view, &|| false)?.rows != found[i].0 {
        layout.incremental =
            Some("a text's tail decoded after its cached head got other numbers than the text decoded whole".into());
    }
    drop(one);
    let mut batch = model.raw_session(longest as u32 + 1, texts.len() as u32 + 1)?;
    let refs: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
    let side = batch.evaluate_side_by_side(&refs, view)?;
    if let Some(k) = side.iter().zip(&found).position(|(ev, a)| ev.rows != a.0) {
        layout.side_by_side = Some(format!(
            "texts scored side by side got other numbers than alone (probe text {})",
            k + 1
        ));
    } else if !slots_agree(&mut batch, &texts, &found)? {
        layout.side_by_side =
            Some("candidates scored on slots side by side got other numbers than alone".into());
    }
    Ok(layout)
}

/// Texts 2 and 3 share "The cat sat on the": decode it once, the two tails on two slots in
/// one step each of the same length, and compare with the texts alone.
fn slots_agree(
    batch: &mut Session<'_>,
    texts: &[Vec<u32>],
    found: &[Alone],
) -> Result<bool, ModelError> {
    let (a, b) = (&texts[1], &texts[2]);
    let shared = super::session::common_prefix(a, b)
        .min(a.len() - 1)
        .min(b.len() - 1);
    let to = a.len().min(b.len());
    if shared == 0 || to <= shared {
        return Ok(true);
    }
    let Some((mut slots, _)) = batch.open_slots(&a[..shared], 1.0, &|| false)? else {
        return Ok(true);
    };
    let got = slots.step(
        &[(0, a.as_slice()), (1, b.as_slice())],
        shared,
        to,
        Start::Fresh,
    )?;
    Ok(got
        .iter()
        .zip([&found[1].1, &found[2].1])
        .all(|(lps, want)| {
            // `lps[k]` is the log-probability of token shared + k + 1.
            lps.iter()
                .enumerate()
                .all(|(k, lp)| want.get(shared + k + 1).is_none_or(|w| w == lp))
        }))
}
