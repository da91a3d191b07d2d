//! The logit lens and the H·W product as plain data: what `score --layers` writes and what the
//! explorer's lens and H·W panels draw. The numbers come from `model::lens`; here they are
//! only shaped, summarised and attached to reports.
//!
//! Layer ℓ (0-based) is the residual stream after transformer block ℓ — llama.cpp's tensor
//! `l_out-ℓ` — read out through the model's final norm and W. The last layer is the model's
//! own output, which the self-check proves for every text before a lens is shown.

use serde::Serialize;

use crate::analysis::stats::RowSummary;
use crate::analysis::top::{top_logprobs, TopLogprob};
use crate::analysis::vocab::Vocab;

/// What the lens multiplies with: W and the final norm, as the GGUF describes them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LensFacts {
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_vocab: usize,
    /// The GGUF tensor used as W (`output.weight`, or `token_embd.weight` when tied).
    pub w: String,
    pub w_type: String,
    /// W is the token embedding matrix itself.
    pub tied: bool,
    /// The final norm: kind and epsilon.
    pub norm: String,
    /// What llama.cpp applies to the logits after H·W on this architecture, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post: Option<String>,
}

/// Whether a lens could be made for a text, and the self-check's result. The `lens` object of
/// `score --layers`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LensStatus {
    pub available: bool,
    /// Why not, when unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The self-check: the largest |Δp| between the last layer's lens and llama.cpp's own
    /// distribution, over every position and token of the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_abs_dp: Option<f64>,
    /// The same against the distributions actually shown (the report's own rows, from the
    /// session that scored the text): the lens is shown only when its last layer is them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_abs_dp_shown: Option<f64>,
    /// Positions the lens covers (the first tokens of a long text; see `model::lens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positions: Option<usize>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub facts: Option<LensFacts>,
}

impl LensStatus {
    pub fn unavailable(reason: impl Into<String>, facts: Option<LensFacts>) -> Self {
        Self {
            available: false,
            reason: Some(reason.into()),
            max_abs_dp: None,
            max_abs_dp_shown: None,
            positions: None,
            facts,
        }
    }
}

/// The largest |Δp| between a lens row and the row shown for the same position: over the
/// tokens both top lists hold and the token that followed. Two summaries of one distribution
/// give 0.
pub fn shown_gap(lens: &RowSummary, shown: &RowSummary) -> f64 {
    let dp = |a: f64, b: f64| (a.exp() - b.exp()).abs();
    let mut worst = 0f64;
    for e in &shown.top {
        if let Some(l) = lens.top.iter().find(|l| l.id == e.id) {
            worst = worst.max(dp(l.logprob, e.logprob));
        }
    }
    // A top-1 the other list lacks is a difference of at least its probability.
    if let (Some(a), Some(b)) = (lens.top.first(), shown.top.first()) {
        if a.id != b.id && !lens.top.iter().any(|l| l.id == b.id) {
            worst = worst.max(b.logprob.exp());
        }
    }
    if let (Some(a), Some(b)) = (lens.target, shown.target) {
        worst = worst.max(dp(a.logprob, b.logprob));
    }
    worst
}

/// One layer of the lens at one position: its distribution summarised, and the token that
/// actually came next.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerReport {
    pub layer: usize,
    pub entropy_bits: f64,
    /// ln p of the token that followed (absent after the last token).
    pub logprob: Option<f64>,
    pub rank: Option<u32>,
    pub top_logprobs: Vec<TopLogprob>,
}

/// The lens rows of one position (`rows[ℓ]` = layer ℓ) as report entries.
pub fn layer_reports(vocab: &Vocab, rows: &[RowSummary]) -> Vec<LayerReport> {
    rows.iter()
        .enumerate()
        .map(|(layer, r)| LayerReport {
            layer,
            entropy_bits: r.entropy_bits,
            logprob: r.target.map(|t| t.logprob),
            rank: r.target.map(|t| t.rank),
            top_logprobs: top_logprobs(vocab, &r.top),
        })
        .collect()
}

/// The first layer whose top token is `id` (`rows[ℓ]` = layer ℓ at one position).
pub fn first_top_layer(rows: &[RowSummary], id: u32) -> Option<usize> {
    rows.iter()
        .position(|r| r.top.first().is_some_and(|e| e.id == id))
}

/// The H·W product at one position, as the H·W panel shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HwReport {
    pub position: usize,
    pub facts: LensFacts,
    /// ‖residual stream after the last layer‖₂, before the final norm.
    pub residual_norm: f64,
    /// ‖h‖₂ of the normed state that multiplies W.
    pub h_norm: f64,
    /// h's components of largest magnitude: (index, value), largest first.
    pub h_top: Vec<(usize, f32)>,
    /// h itself (for a picture of it).
    #[serde(skip)]
    pub h: Vec<f32>,
    /// The top tokens by llama.cpp's logit, with ours beside it.
    pub tokens: Vec<HwToken>,
    /// max over the whole vocabulary of |our f64 logit − llama.cpp's|.
    pub max_abs_delta: f64,
    /// The same with h first rounded to `dot_type` as llama.cpp's CPU product does (`None`
    /// when it multiplies in f32 and there is nothing to round).
    pub max_abs_delta_rounded: Option<f64>,
    /// The type llama.cpp's CPU dot product rounds h to for this W.
    pub dot_type: String,
}

/// One token's logit, ours (f64, from the dequantized W, after `post`) and llama.cpp's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HwToken {
    pub id: u32,
    pub exact: f64,
    pub llama: f32,
}

/// The `n` components of `h` of largest magnitude, largest first (ties by index).
pub fn largest_components(h: &[f32], n: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<usize> = (0..h.len()).collect();
    idx.sort_by(|&a, &b| h[b].abs().total_cmp(&h[a].abs()).then(a.cmp(&b)));
    idx.into_iter().take(n).map(|i| (i, h[i])).collect()
}

/// ‖x‖₂ in f64.
pub fn l2_norm(x: &[f32]) -> f64 {
    x.iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}

/// max |a − b| over two rows of logits.
pub fn max_abs_delta(ours: &[f64], theirs: &[f32]) -> f64 {
    ours.iter()
        .zip(theirs)
        .map(|(a, &b)| (a - f64::from(b)).abs())
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::analysis::stats::summarize_row;

    #[test]
    fn the_shown_gap_is_zero_for_one_distribution_and_grows_with_a_difference() {
        let a = summarize_row(&[1.0, 2.0, 0.5, -1.0], 1.0, 3, Some(2)).unwrap();
        assert_eq!(shown_gap(&a, &a.clone()), 0.0);
        let b = summarize_row(&[1.0, 2.1, 0.5, -1.0], 1.0, 3, Some(2)).unwrap();
        assert!(shown_gap(&a, &b) > 1e-3);
        // Another top-1 the other list lacks counts its whole probability.
        let c = summarize_row(&[9.0, 0.0, 0.0, 0.0], 1.0, 1, None).unwrap();
        let d = summarize_row(&[0.0, 9.0, 0.0, 0.0], 1.0, 1, None).unwrap();
        assert!(shown_gap(&c, &d) > 0.99);
    }

    #[test]
    fn largest_components_by_magnitude() {
        let h = [0.5, -3.0, 2.0, 3.0, 0.0];
        assert_eq!(
            largest_components(&h, 3),
            vec![(1, -3.0), (3, 3.0), (2, 2.0)]
        );
        assert_eq!(largest_components(&h, 9).len(), 5);
    }

    #[test]
    fn first_top_layer_finds_where_a_token_rises() {
        let rows: Vec<RowSummary> = [[0.0f32, 5.0, 1.0], [3.0, 2.0, 1.0], [0.0, 5.0, 1.0]]
            .iter()
            .map(|z| summarize_row(z, 1.0, 2, None).unwrap())
            .collect();
        assert_eq!(first_top_layer(&rows, 0), Some(1));
        assert_eq!(first_top_layer(&rows, 1), Some(0));
        assert_eq!(first_top_layer(&rows, 2), None);
    }

    #[test]
    fn unavailable_status_says_why_in_json() {
        let s = LensStatus::unavailable("no l_out tensors", None);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["available"], false);
        assert_eq!(v["reason"], "no l_out tensors");
        assert!(v.get("max_abs_dp").is_none() && v.get("n_layer").is_none());
    }

    #[test]
    fn norms_and_deltas() {
        assert!((l2_norm(&[3.0, 4.0]) - 5.0).abs() < 1e-12);
        assert_eq!(max_abs_delta(&[1.0, 2.5], &[1.5, 2.0]), 0.5);
    }
}
