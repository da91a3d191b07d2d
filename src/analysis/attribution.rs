//! Direct logit attribution as plain data and pure arithmetic: a token's logit at a position
//! split into what each component wrote into the residual stream there.
//!
//! The residual stream the final norm reads is a sum: the embedding, plus each layer's
//! attention output, plus each layer's MLP output (and whatever else was added, such as a
//! control vector: the `rest`). With the norm's scale *frozen* at its value for the actual
//! residual, the logit is linear in the stream, so every component gets its share:
//! `part = c · g`, where `g = scale · norm_weight ⊙ W[token]` (times a linear post-scale the
//! architecture applies). A layer norm also centres: `part = (c − mean c) · g`, and its bias
//! adds a part of its own. Everything is in f64; the parts sum to the f64 logit of H·W up to
//! the rounding of the normed state to f32. A soft-cap after H·W is not linear: the parts are
//! then of the logit before it (`post` says so).

use serde::Serialize;

/// What a part of the residual stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The token embedding (scaled, where the architecture scales it).
    Embed,
    /// A layer's attention output, as added to the stream.
    Attn,
    /// A layer's MLP output, as added to the stream.
    Ffn,
    /// The residual the norm reads minus the named parts: a control vector where one is
    /// applied, else f32 rounding of the stream's additions.
    Rest,
    /// The final layer norm's bias (layer norms only).
    Bias,
}

/// One component's share of the logit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    /// `embed`, `attn:ℓ`, `ffn:ℓ`, `rest` or `bias`.
    pub part: String,
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    pub value: f64,
}

impl Part {
    pub fn new(kind: Kind, layer: Option<usize>, value: f64) -> Self {
        Self {
            part: label(kind, layer),
            kind,
            layer,
            value,
        }
    }
}

/// How `--ablate` spells a part (`attn:3`), so a part can be switched off by its label.
pub fn label(kind: Kind, layer: Option<usize>) -> String {
    let name = match kind {
        Kind::Embed => "embed",
        Kind::Attn => "attn",
        Kind::Ffn => "ffn",
        Kind::Rest => "rest",
        Kind::Bias => "bias",
    };
    match layer {
        Some(l) => format!("{name}:{l}"),
        None => name.to_owned(),
    }
}

/// A layer's attention part split over its heads: head h's output slice through its columns
/// of the output projection (dequantized). `rest` is the layer's part minus the heads' sum:
/// the projection's bias where it has one, and the rounding of the activations llama.cpp's
/// matrix product makes (the heads are computed here from the dequantized projection).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerHeads {
    pub layer: usize,
    pub heads: Vec<f64>,
    pub rest: f64,
}

/// A token's logit at a position, split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribution {
    /// The position whose distribution holds the logit (token index; it predicts the next).
    pub position: usize,
    /// The token whose logit is split.
    pub target: u32,
    pub target_text: String,
    /// Every part, in the model's order: embed, attn:0, ffn:0, …, rest (and bias).
    pub parts: Vec<Part>,
    /// The parts' sum, in f64.
    pub sum: f64,
    /// H·W in f64 (the H·W panel's exact product) after the architecture's post-processing.
    pub logit_f64: f64,
    /// llama.cpp's own logit.
    pub llama: f32,
    /// The H·W panel's stated rounding at this position: the largest |f64 − llama.cpp| over
    /// the vocabulary.
    pub rounding: f64,
    /// What llama.cpp applies after H·W that the parts do not include (a soft-cap: the parts
    /// are then of the logit before it), if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post: Option<String>,
    /// Per attention layer, the heads' shares (when the graph names the heads' outputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heads: Option<Vec<LayerHeads>>,
    /// Why there are no per-head shares, when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heads_unavailable: Option<String>,
}

impl Attribution {
    /// The parts, largest |value| first (the panel's order).
    pub fn ranked(&self) -> Vec<&Part> {
        let mut v: Vec<&Part> = self.parts.iter().collect();
        v.sort_by(|a, b| b.value.abs().total_cmp(&a.value.abs()));
        v
    }

    /// The heads of `layer`, largest |share| first: (head, share).
    pub fn top_heads(&self, layer: usize, n: usize) -> Vec<(usize, f64)> {
        let Some(l) = self.heads.iter().flatten().find(|h| h.layer == layer) else {
            return Vec::new();
        };
        let mut v: Vec<(usize, f64)> = l.heads.iter().copied().enumerate().collect();
        v.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        v.truncate(n);
        v
    }
}

/// Whether attribution could be made for a text: the `attribution` object of
/// `score --attribution`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributionStatus {
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Positions covered (the first tokens of a long text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positions: Option<usize>,
}

/// The direction in the residual stream whose dot product with a state is the token's logit,
/// with the norm's scale frozen: `g[i] = factor · scale · weight[i] · w_row[i]`.
pub fn direction(factor: f64, scale: f64, weight: &[f32], w_row: &[f32]) -> Vec<f64> {
    weight
        .iter()
        .zip(w_row)
        .map(|(&w, &r)| factor * scale * f64::from(w) * f64::from(r))
        .collect()
}

/// A component's share along `g`; `centred` for a layer norm (its mean is taken out first,
/// as the norm takes out the stream's).
pub fn share<T: Copy + Into<f64>>(c: &[T], g: &[f64], centred: bool) -> f64 {
    let dot: f64 = c.iter().zip(g).map(|(&x, &y)| x.into() * y).sum();
    if !centred || c.is_empty() {
        return dot;
    }
    let mean = c.iter().map(|&x| x.into()).sum::<f64>() / c.len() as f64;
    dot - mean * g.iter().sum::<f64>()
}

/// `residual − Σ parts`, element by element in f64: what the named parts do not explain.
pub fn remainder(residual: &[f32], parts: &[&[f32]]) -> Vec<f64> {
    residual
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            f64::from(r)
                - parts
                    .iter()
                    .map(|p| p.get(i).copied().map_or(0.0, f64::from))
                    .sum::<f64>()
        })
        .collect()
}

/// Heads' shares of one attention layer. `heads_out` is the heads' outputs before the output
/// projection (`n_head · d` values, head h at `h·d..`); `wo` the projection, `n_embd` rows of
/// `n_head · d`; `g` the logit's direction where the layer's output meets the stream. With a
/// norm after the projection (Gemma's `attn_post_norm`), `post` is its weight and epsilon:
/// its scale is frozen at the projection's output computed here.
pub fn head_shares(
    heads_out: &[f32],
    wo: &[f32],
    n_head: usize,
    g: &[f64],
    post: Option<(&[f32], f32)>,
) -> Vec<f64> {
    head_shares_many(&[(heads_out, g)], wo, n_head, post)
        .pop()
        .unwrap_or_default()
}

/// One position's ask of [`head_shares_many`]: its heads' outputs and its direction g.
pub type HeadsAsk<'a> = (&'a [f32], &'a [f64]);

/// [`head_shares`] of one layer at several positions (`[i]` for `asks[i]`: its heads'
/// outputs and its direction), each with the bits `head_shares` gives it alone: every sum
/// runs in the same order, but each row of `wo` is read once for all of them, not once per
/// position (the layer's projection no longer streams from memory for every position).
pub fn head_shares_many(
    asks: &[HeadsAsk<'_>],
    wo: &[f32],
    n_head: usize,
    post: Option<(&[f32], f32)>,
) -> Vec<Vec<f64>> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { head_shares_avx2(asks, wo, n_head, post) };
        }
    }
    head_shares_body(asks, wo, n_head, post)
}

/// [`head_shares_body`] compiled for AVX2 (four f64 lanes; no fused multiply-add, which would
/// round differently: each product is rounded, then added, as in the portable build).
///
/// # Safety
/// The CPU must support AVX2 (checked with `is_x86_feature_detected!` by the caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn head_shares_avx2(
    asks: &[HeadsAsk<'_>],
    wo: &[f32],
    n_head: usize,
    post: Option<(&[f32], f32)>,
) -> Vec<Vec<f64>> {
    head_shares_body(asks, wo, n_head, post)
}

#[inline(always)]
fn head_shares_body(
    asks: &[HeadsAsk<'_>],
    wo: &[f32],
    n_head: usize,
    post: Option<(&[f32], f32)>,
) -> Vec<Vec<f64>> {
    let fits = |&(heads_out, g): &HeadsAsk<'_>| {
        let width = heads_out.len();
        n_head != 0 && width.is_multiple_of(n_head) && wo.len() == g.len() * width
    };
    // The asks that fit, with the first one's shape (one layer's positions all have it); one
    // that does not gets nothing rather than a wrong split.
    let Some(first) = asks.iter().find(|a| fits(a)) else {
        return vec![Vec::new(); asks.len()];
    };
    let (width, n_embd) = (first.0.len(), first.1.len());
    let fitting: Vec<usize> = (0..asks.len())
        .filter(|&i| fits(&asks[i]) && asks[i].0.len() == width && asks[i].1.len() == n_embd)
        .collect();
    let d = width / n_head;
    let rows = || (0..n_embd).map(|r| &wo[r * width..(r + 1) * width]);
    // g as the projection's output sees it: through the frozen post-norm, if any.
    let g_out: Vec<Vec<f64>> = match post {
        None => fitting.iter().map(|&i| asks[i].1.to_vec()).collect(),
        Some((weight, eps)) => {
            let mut xs = vec![Vec::with_capacity(n_embd); fitting.len()];
            for row in rows() {
                for (x, &i) in xs.iter_mut().zip(&fitting) {
                    x.push(
                        row.iter()
                            .zip(asks[i].0)
                            .map(|(&w, &h)| f64::from(w) * f64::from(h))
                            .sum::<f64>(),
                    );
                }
            }
            xs.iter()
                .zip(&fitting)
                .map(|(x, &i)| {
                    let mean = x.iter().map(|v| v * v).sum::<f64>() / n_embd as f64;
                    let scale = 1.0 / (mean + f64::from(eps)).sqrt();
                    asks[i]
                        .1
                        .iter()
                        .zip(weight)
                        .map(|(&g, &w)| g * scale * f64::from(w))
                        .collect()
                })
                .collect()
        }
    };
    // u = Woᵀ g_out: what each head dimension is worth.
    // Each row widened once for all positions (exactly: f32 to f64 loses nothing).
    let mut us = vec![vec![0f64; width]; fitting.len()];
    let mut wide = vec![0f64; width];
    for (r, row) in rows().enumerate() {
        for (o, &w) in wide.iter_mut().zip(row) {
            *o = f64::from(w);
        }
        for (u, g) in us.iter_mut().zip(&g_out) {
            let gr = g[r];
            if gr == 0.0 {
                continue;
            }
            for (uj, &w) in u.iter_mut().zip(&wide) {
                *uj += w * gr;
            }
        }
    }
    let mut out = vec![Vec::new(); asks.len()];
    for (u, &i) in us.iter().zip(&fitting) {
        let heads_out = asks[i].0;
        out[i] = (0..n_head)
            .map(|h| {
                (h * d..(h + 1) * d)
                    .map(|j| u[j] * f64::from(heads_out[j]))
                    .sum()
            })
            .collect();
    }
    out
}

/// The largest relative gap between the parts' sum and a logit: `|sum − z| / max(|z|, 1)`.
pub fn relative_gap(sum: f64, z: f64) -> f64 {
    (sum - z).abs() / z.abs().max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_of_a_sum_add_up_to_the_share_of_the_sum() {
        let a = [0.5f32, -1.0, 2.0, 0.25];
        let b = [1.5f32, 0.5, -0.75, 3.0];
        let total: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let g = direction(1.0, 0.7, &[1.0, 2.0, 0.5, -1.0], &[0.3, -0.2, 0.9, 0.1]);
        for centred in [false, true] {
            let s = share(&a, &g, centred) + share(&b, &g, centred);
            assert!((s - share(&total, &g, centred)).abs() < 1e-12);
        }
    }

    #[test]
    fn a_centred_share_ignores_a_constant() {
        let g = direction(1.0, 1.0, &[1.0; 3], &[1.0, 2.0, 3.0]);
        assert!(share(&[4.0, 4.0, 4.0], &g, true).abs() < 1e-12);
        assert!((share(&[4.0, 4.0, 4.0], &g, false) - 24.0).abs() < 1e-12);
    }

    #[test]
    fn the_remainder_is_what_the_parts_leave() {
        let r = remainder(&[1.0, 2.0], &[&[0.25, 1.0], &[0.25, 0.5]]);
        assert_eq!(r, vec![0.5, 0.5]);
        assert!((share(&r, &[2.0, 4.0], false) - 3.0).abs() < 1e-12);
    }

    /// The heads' shares as they were first written: one position at a time, in plain loops.
    fn head_shares_alone(
        heads_out: &[f32],
        wo: &[f32],
        n_head: usize,
        g: &[f64],
        post: Option<(&[f32], f32)>,
    ) -> Vec<f64> {
        let width = heads_out.len();
        let n_embd = g.len();
        let d = width / n_head;
        let g_out: Vec<f64> = match post {
            None => g.to_vec(),
            Some((weight, eps)) => {
                let x: Vec<f64> = (0..n_embd)
                    .map(|r| {
                        let row = &wo[r * width..(r + 1) * width];
                        row.iter()
                            .zip(heads_out)
                            .map(|(&w, &h)| f64::from(w) * f64::from(h))
                            .sum()
                    })
                    .collect();
                let mean = x.iter().map(|v| v * v).sum::<f64>() / n_embd as f64;
                let scale = 1.0 / (mean + f64::from(eps)).sqrt();
                g.iter()
                    .zip(weight)
                    .map(|(&g, &w)| g * scale * f64::from(w))
                    .collect()
            }
        };
        let mut u = vec![0f64; width];
        for (r, &gr) in g_out.iter().enumerate() {
            if gr == 0.0 {
                continue;
            }
            for (uj, &w) in u.iter_mut().zip(&wo[r * width..(r + 1) * width]) {
                *uj += f64::from(w) * gr;
            }
        }
        (0..n_head)
            .map(|h| {
                (h * d..(h + 1) * d)
                    .map(|j| u[j] * f64::from(heads_out[j]))
                    .sum()
            })
            .collect()
    }

    proptest::proptest! {
        /// Several positions at once give each the bits it gets alone, with and without a
        /// post-norm (3 heads of 4 dimensions, n_embd 5).
        #[test]
        fn heads_of_many_positions_are_each_position_alone(
            wo in proptest::collection::vec(-2f32..2.0, 60),
            asks in proptest::collection::vec(
                (proptest::collection::vec(-3f32..3.0, 12), proptest::collection::vec(-1f64..1.0, 5)),
                1..6,
            ),
            weight in proptest::collection::vec(0.1f32..2.0, 5),
            normed in proptest::bool::ANY,
        ) {
            let post = normed.then_some((weight.as_slice(), 1e-6f32));
            let refs: Vec<(&[f32], &[f64])> =
                asks.iter().map(|(h, g)| (h.as_slice(), g.as_slice())).collect();
            let many = head_shares_many(&refs, &wo, 3, post);
            for ((h, g), got) in asks.iter().zip(&many) {
                let alone = head_shares_alone(h, &wo, 3, g, post);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                proptest::prop_assert_eq!(bits(got), bits(&alone));
            }
        }
    }

    #[test]
    fn heads_sum_to_the_projection_share() {
        // 2 heads of 2, n_embd 3.
        let heads = [1.0f32, -2.0, 0.5, 3.0];
        let wo: Vec<f32> = (0..12).map(|i| (i as f32 - 5.0) / 4.0).collect();
        let g = [0.2, -0.5, 1.0];
        let out: Vec<f32> = (0..3)
            .map(|r| (0..4).map(|j| wo[r * 4 + j] * heads[j]).sum())
            .collect();
        let whole = share(&out, &g, false);
        let split = head_shares(&heads, &wo, 2, &g, None);
        assert_eq!(split.len(), 2);
        assert!((split.iter().sum::<f64>() - whole).abs() < 1e-9);
        // Through a post-norm with a frozen scale: the sum is the normed output's share.
        let w = [1.5f32, 0.5, 2.0];
        let eps = 1e-6f32;
        let mean = out
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            / 3.0;
        let s = 1.0 / (mean + f64::from(eps)).sqrt();
        let normed: Vec<f32> = out
            .iter()
            .zip(&w)
            .map(|(&x, &w)| (f64::from(x) * s * f64::from(w)) as f32)
            .collect();
        let split = head_shares(&heads, &wo, 2, &g, Some((&w, eps)));
        assert!((split.iter().sum::<f64>() - share(&normed, &g, false)).abs() < 1e-6);
        // A shape that does not fit gives nothing rather than a wrong split.
        assert!(head_shares(&heads, &wo, 3, &g, None).is_empty());
    }

    #[test]
    fn parts_rank_by_magnitude_and_heads_by_share() {
        let a = Attribution {
            position: 0,
            target: 1,
            target_text: "x".into(),
            parts: vec![
                Part::new(Kind::Embed, None, 0.5),
                Part::new(Kind::Attn, Some(0), -2.0),
                Part::new(Kind::Ffn, Some(0), 1.0),
            ],
            sum: -0.5,
            logit_f64: -0.5,
            llama: -0.5,
            rounding: 0.0,
            post: None,
            heads: Some(vec![LayerHeads {
                layer: 0,
                heads: vec![0.1, -0.9, 0.4],
                rest: 0.0,
            }]),
            heads_unavailable: None,
        };
        let r: Vec<&str> = a.ranked().iter().map(|p| p.part.as_str()).collect();
        assert_eq!(r, ["attn:0", "ffn:0", "embed"]);
        assert_eq!(a.top_heads(0, 2), vec![(1, -0.9), (2, 0.4)]);
        assert!(a.top_heads(5, 2).is_empty());
        assert!(relative_gap(10.0, 10.0005) < 1e-4);
        assert!(relative_gap(0.0, 0.001) > 1e-4);
    }
}
