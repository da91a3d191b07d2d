//! The logit lens: the residual stream after every layer, read out through the model's own
//! final norm and output matrix W.
//!
//! llama.cpp names the residual stream after layer ℓ `l_out-ℓ` in its graph; a context of our
//! own (llama-cpp-2 has no eval callback, so it is made with llama-cpp-sys-2) copies those
//! tensors out through `cb_eval` while it decodes. The final norm (RMS or layer norm, its
//! weight and epsilon from the GGUF) and W are applied here: the activation is quantized to
//! W's dot-product type and multiplied with ggml's own CPU dot product, exactly as llama.cpp
//! computes its logits, so the last layer's lens reproduces llama.cpp's distribution (checked
//! on every text before a lens is shown). Separately, [`Readout::exact_logits`] computes h·W in
//! f64 from the dequantized W, for the H·W panel.
//!
//! Nothing here keeps positions × layers × |V| numbers: each lens row is summarised as it is
//! made. The lens covers the first [`MAX_TOKENS`] tokens of a text, decoded at once, so that
//! llama.cpp's own logits of every covered position stay readable for the H·W panel.

mod dot;
pub(super) mod readout;

use super::hook::{NodeName, Tap, Tensor};
use super::loader::{Model, ModelError};
use super::readers::{Checked, Reader, Shared, Which};
use crate::analysis::lens::{
    l2_norm, largest_components, max_abs_delta, HwReport, HwToken, LensFacts,
};
use crate::analysis::stats::{summarize_row, RowSummary};
pub(super) use readout::{read_f32, read_matrix};
pub use readout::{Frozen, Norm, Post, Readout, Unavailable};

/// The tokens of a text the lens covers: one decode of at most this many.
pub const MAX_TOKENS: usize = 512;

/// The residual stream of every layer at every position of the last text decoded.
pub(in crate::model) struct Capture {
    n_embd: usize,
    /// Positions read (the first of the decode).
    limit: usize,
    /// `layers[ℓ]` = rows of `l_out-ℓ`, n_embd floats per position, in position order.
    pub(in crate::model) layers: Vec<Vec<f32>>,
}

impl Capture {
    pub(in crate::model) fn new(n_layer: usize, n_embd: usize) -> Self {
        Self {
            n_embd,
            limit: usize::MAX,
            layers: vec![Vec::new(); n_layer],
        }
    }
}

impl Reader for Capture {
    fn prepare(&mut self, tokens: &[u32]) {
        self.limit = tokens.len();
        for l in &mut self.layers {
            l.clear();
        }
    }
}

/// The lens taps every `l_out-ℓ`.
impl Tap for Capture {
    fn wants(&mut self, node: NodeName<'_>) -> bool {
        node.kind == "l_out" && node.layer < self.layers.len()
    }

    fn read(&mut self, node: NodeName<'_>, t: &Tensor<'_>) {
        let [n_embd, rows, ..] = t.shape();
        if n_embd != self.n_embd {
            return;
        }
        t.read_rows(0, rows.min(self.limit), 0, 0, &mut self.layers[node.layer]);
    }
}

/// A lens on a loaded model: W, and the residual streams of a shared hooked decode.
pub struct Lens<'m> {
    probe: Shared<'m>,
    readout: std::sync::Arc<Readout>,
    /// Threads for the lens rows (the model's `-t`).
    threads: usize,
    /// The text last run, as asked.
    asked: Vec<u32>,
    /// Its tokens the lens covers, whose residuals the decode holds (llama.cpp's logits of
    /// each are still in its buffer: the text is one decode).
    tokens: Vec<u32>,
    /// The temperature the check was made at.
    temp: f32,
    /// The largest |Δp| between the last layer's lens and llama.cpp's row, over the text.
    check: Option<f64>,
}

/// The largest |Δp| the last layer's lens may differ from llama.cpp's own distribution.
pub const CHECK_TOLERANCE: f64 = 1e-4;

impl<'m> Lens<'m> {
    /// Set up a lens for `model` with a decode of its own: read the final norm and W from
    /// its GGUF.
    pub fn new(model: &'m Model) -> Result<Self, Unavailable> {
        Self::on(&Shared::new(model))
    }

    /// A lens reading from the shared decode `probe` (it joins every later decode there).
    pub fn on(probe: &Shared<'m>) -> Result<Self, Unavailable> {
        let model = probe.model();
        let readout = model.readout()?;
        let (n_layer, n_embd) = (readout.facts.n_layer, readout.facts.n_embd);
        let limit = model.options().ctx_size.clamp(16, MAX_TOKENS as u32) as usize;
        let capture = Box::new(Capture::new(n_layer, n_embd));
        probe.get_mut().join(Which::Lens, capture, limit);
        Ok(Self {
            probe: probe.clone(),
            readout,
            threads: model.options().threads.max(1) as usize,
            asked: Vec::new(),
            tokens: Vec::new(),
            temp: 1.0,
            check: None,
        })
    }

    pub fn facts(&self) -> &LensFacts {
        &self.readout.facts
    }

    /// Decode `tokens` (the first [`MAX_TOKENS`] of them, at most the context) and keep every
    /// layer's residual stream at every position; check the last layer against llama.cpp's
    /// own rows at temperature `temp`. Returns the positions covered, or why the lens is
    /// unavailable for this text. The shared decode is made once for all its readers.
    pub fn run(&mut self, tokens: &[u32], temp: f32) -> Result<usize, LensError> {
        if tokens.is_empty() {
            return Err(LensError::Model(ModelError::Empty));
        }
        let n = self.probe.get().covers(Which::Lens, tokens);
        if self.asked == tokens && self.temp == temp && self.held().is_ok() {
            return match self.check {
                Some(worst) if worst <= CHECK_TOLERANCE => Ok(n),
                Some(worst) => Err(LensError::Unavailable(mismatch(worst))),
                None => Err(LensError::Unavailable(self.missing_layers())),
            };
        }
        self.asked.clear();
        self.tokens.clear();
        self.check = None;
        self.probe
            .get_mut()
            .serve(Which::Lens, tokens)
            .map_err(LensError::Model)?;
        self.asked = tokens.to_vec();
        self.tokens = tokens[..n].to_vec();
        self.temp = temp;
        let held = self.held()?;
        let want = n * self.readout.facts.n_embd;
        if held.capture().layers.iter().any(|l| l.len() != want) {
            return Err(LensError::Unavailable(self.missing_layers()));
        }
        // The check: the last layer through our norm and W against llama.cpp's own row.
        let last = self.readout.facts.n_layer - 1;
        let rows: Vec<(&[f32], &[f32])> = (0..n)
            .map(|i| (held.hidden(last, i).unwrap_or_default(), held.logits(i)))
            .collect();
        let readout = &self.readout;
        let worst = parallel(self.threads, &rows, |(h, theirs)| {
            max_abs_dp(&readout.logits(h), theirs, temp)
        })
        .into_iter()
        .fold(0f64, f64::max);
        drop(rows);
        drop(held);
        self.check = Some(worst);
        self.probe.get_mut().note_check(Checked {
            node: format!("l_out-{last}"),
            temp,
            covered: n,
            worst,
        });
        if worst > CHECK_TOLERANCE {
            return Err(LensError::Unavailable(mismatch(worst)));
        }
        Ok(n)
    }

    fn missing_layers(&self) -> Unavailable {
        let last = self.readout.facts.n_layer - 1;
        Unavailable(format!(
            "llama.cpp's graph for this architecture does not name its residual stream \
             l_out-0 … l_out-{last} for every token, so there is nothing to read out"
        ))
    }

    /// The shared decode, while it holds the residuals of the text last run.
    fn held(&self) -> Result<Held<'_, 'm>, LensError> {
        let probe = self.probe.get();
        if self.asked.is_empty() || !probe.holds(Which::Lens, &self.asked) {
            return Err(LensError::Model(ModelError::Decode(
                "the lens's decode holds another text now: run the lens on this one again".into(),
            )));
        }
        Ok(Held {
            probe,
            n_embd: self.readout.facts.n_embd,
        })
    }

    /// The largest |Δp| of the self-check over the last text run.
    pub fn check(&self) -> Option<f64> {
        self.check
    }

    /// The residual stream after `layer` at `position` (of the last text run).
    pub fn hidden(&self, layer: usize, position: usize) -> Option<Vec<f32>> {
        self.held()
            .ok()?
            .hidden(layer, position)
            .map(<[f32]>::to_vec)
    }

    /// The lens logits of `layer` at `position` (see [`Readout::logits`]).
    pub fn logits(&self, layer: usize, position: usize) -> Result<Vec<f32>, LensError> {
        let held = self.held()?;
        let h = held
            .hidden(layer, position)
            .ok_or(LensError::Model(ModelError::Empty))?;
        Ok(self.readout.logits(h))
    }

    /// The lens distribution of `layer` at `position`, summarised (top-k, entropy, the token
    /// that followed) at the temperature of the run.
    pub fn row(&self, layer: usize, position: usize, k: usize) -> Result<RowSummary, LensError> {
        let z = self.logits(layer, position)?;
        let target = self.tokens.get(position + 1).copied();
        summarize_row(&z, self.temp, k, target).map_err(|e| LensError::Model(e.into()))
    }

    /// Every layer's lens row at `position` (`[ℓ]` = layer ℓ).
    /// The layers' rows are computed on the model's threads side by side.
    pub fn column(&self, position: usize, k: usize) -> Result<Vec<RowSummary>, LensError> {
        let held = self.held()?;
        let layers = (0..self.readout.facts.n_layer)
            .map(|l| held.hidden(l, position))
            .collect::<Option<Vec<&[f32]>>>()
            .ok_or(LensError::Model(ModelError::Empty))?;
        let target = self.tokens.get(position + 1).copied();
        let (readout, temp) = (&self.readout, self.temp);
        parallel(self.threads, &layers, |h| {
            summarize_row(&readout.logits(h), temp, k, target)
        })
        .into_iter()
        .map(|r| r.map_err(|e| LensError::Model(e.into())))
        .collect()
    }

    /// The H·W panel of `position` (of the text last run): h, W, and for the `k` top tokens
    /// our f64 logit beside llama.cpp's.
    pub fn hw(&self, position: usize, k: usize) -> Result<HwReport, LensError> {
        let last = self.readout.facts.n_layer - 1;
        let held = self.held()?;
        let residual = held
            .hidden(last, position)
            .ok_or(LensError::Model(ModelError::Empty))?;
        if position >= self.tokens.len() {
            return Err(LensError::Model(ModelError::Empty));
        }
        let r = &self.readout;
        let y = r.normed(residual);
        let theirs = held.logits(position);
        // Our product of h, and of h rounded as llama.cpp's dot product rounds it.
        let q = r.rounded(&y);
        let ys: Vec<&[f32]> = std::iter::once(y.as_slice()).chain(q.as_deref()).collect();
        let mut products = r.exact_logits(&ys, self.threads).into_iter();
        let exact = products.next().unwrap_or_default();
        let rounded = products.next().map(|p| max_abs_delta(&p, theirs));
        let tokens = crate::analysis::stats::top_k(theirs, k)
            .into_iter()
            .map(|id| HwToken {
                id,
                exact: exact[id as usize],
                llama: theirs[id as usize],
            })
            .collect();
        Ok(HwReport {
            position,
            facts: r.facts.clone(),
            residual_norm: l2_norm(residual),
            h_norm: l2_norm(&y),
            h_top: largest_components(&y, 8),
            h: y,
            tokens,
            max_abs_delta: max_abs_delta(&exact, theirs),
            max_abs_delta_rounded: rounded,
            dot_type: r.dot_type_name(),
        })
    }
}

/// The lens's rows of a shared decode that holds its text.
struct Held<'a, 'm> {
    probe: std::cell::Ref<'a, super::readers::Probe<'m>>,
    n_embd: usize,
}

impl Held<'_, '_> {
    fn capture(&self) -> &Capture {
        static NONE: Capture = Capture {
            n_embd: 0,
            limit: 0,
            layers: Vec::new(),
        };
        self.probe.readers().get(Which::Lens).unwrap_or(&NONE)
    }

    fn hidden(&self, layer: usize, position: usize) -> Option<&[f32]> {
        let n = self.n_embd;
        self.capture()
            .layers
            .get(layer)?
            .get(position * n..(position + 1) * n)
    }

    /// llama.cpp's logits of `position` (one decode of the text: all still there).
    fn logits(&self, position: usize) -> &[f32] {
        self.probe.logits(position)
    }
}

impl Model {
    /// The model's final norm and W, read from its GGUF once (the lens and attribution share
    /// them: W is the largest matrix of a small model).
    pub fn readout(&self) -> Result<std::sync::Arc<Readout>, Unavailable> {
        self.readout
            .get_or_init(|| {
                Readout::read(&self.options().path, self.vocab().len()).map(std::sync::Arc::new)
            })
            .clone()
    }
}

/// Why a lens row could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LensError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("lens unavailable: {0}")]
    Unavailable(Unavailable),
}

/// `f` of every item, in order, on up to `threads` threads.
pub(in crate::model) fn parallel<I: Sync, T: Send>(
    threads: usize,
    items: &[I],
    f: impl Fn(&I) -> T + Sync,
) -> Vec<T> {
    if threads <= 1 || items.len() <= 1 {
        return items.iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let parts: Vec<_> = items
            .chunks(per)
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<T>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

fn mismatch(worst: f64) -> Unavailable {
    Unavailable(format!(
        "the last layer's lens differs from llama.cpp's own distribution by {worst:.2e} in p \
         (more than {CHECK_TOLERANCE:e} allowed): llama.cpp's final norm or output for this \
         model is not the one the lens applies"
    ))
}

/// The largest |p_ours − p_theirs| over the vocabulary.
pub(in crate::model) fn max_abs_dp(ours: &[f32], theirs: &[f32], temp: f32) -> f64 {
    let (Ok(a), Ok(b)) = (
        crate::analysis::stats::log_softmax(ours, temp),
        crate::analysis::stats::log_softmax(theirs, temp),
    ) else {
        return f64::INFINITY;
    };
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x.exp() - y.exp()).abs())
        .fold(0.0, f64::max)
}
