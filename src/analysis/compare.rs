//! Two models' distributions at one position, compared over the whole vocabulary in f64:
//! KL(A‖B), KL(B‖A) and the Jensen–Shannon divergence, in bits. Computed from the two logit
//! rows as they are read; nothing of the rows is kept but these numbers and a few
//! probabilities for the tokens on screen.

use serde::Serialize;

use crate::analysis::stats::{log_softmax, RowError, RowSummary};
use crate::analysis::vocab::{display_bytes, Vocab};

/// How two distributions at one position differ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowCompare {
    /// KL(p_A ‖ p_B) in bits.
    pub kl_bits: f64,
    /// KL(p_B ‖ p_A) in bits.
    pub kl_reverse_bits: f64,
    /// Jensen–Shannon divergence in bits (0 ≤ JS ≤ 1).
    pub js_bits: f64,
    /// ln p_B of each of A's top tokens (the ids of the A row summary, in its order).
    #[serde(skip)]
    pub a_top_in_b: Vec<f64>,
}

/// Compare the rows `a` and `b` (logits over the same vocabulary) at temperature `temp`;
/// `k` of A's top tokens get their B probability (for the screen).
pub fn compare_rows(a: &[f32], b: &[f32], temp: f32, k: usize) -> Result<RowCompare, RowError> {
    if a.len() != b.len() {
        return Err(RowError::Empty);
    }
    let la = log_softmax(a, temp)?;
    let lb = log_softmax(b, temp)?;
    let (kl, kl_rev, js) = divergences(&la, &lb);
    Ok(RowCompare {
        kl_bits: kl,
        kl_reverse_bits: kl_rev,
        js_bits: js,
        a_top_in_b: crate::analysis::stats::top_k(a, k)
            .iter()
            .map(|&id| lb.get(id as usize).copied().unwrap_or(f64::NEG_INFINITY))
            .collect(),
    })
}

/// Why two vocabularies are not the same (size, then the first piece or control flag that
/// differs); `None` when they are.
pub fn vocab_difference(a: &Vocab, b: &Vocab) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!(
            "their vocabularies differ: {} tokens against {}",
            a.len(),
            b.len()
        ));
    }
    (0..a.len() as u32).find_map(|id| {
        let (pa, pb) = (a.piece(id)?, b.piece(id)?);
        (pa != pb).then(|| {
            format!(
                "their vocabularies differ at token {id}: {:?}{} against {:?}{}",
                display_bytes(&pa.bytes),
                if pa.special { " (control)" } else { "" },
                display_bytes(&pb.bytes),
                if pb.special { " (control)" } else { "" },
            )
        })
    })
}

/// (KL(A‖B), KL(B‖A), JS) in bits from two log-probability rows (natural logs).
pub fn divergences(la: &[f64], lb: &[f64]) -> (f64, f64, f64) {
    let ln2 = std::f64::consts::LN_2;
    let (mut kl, mut kl_rev, mut js) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in la.iter().zip(lb) {
        let (p, q) = (x.exp(), y.exp());
        if p > 0.0 {
            kl += p * (x - y);
        }
        if q > 0.0 {
            kl_rev += q * (y - x);
        }
        // ln m with m = (p + q) / 2, computed from the logs so tiny values keep their meaning;
        // where p = q the term is exactly 0.
        let hi = x.max(y);
        if x != y && hi > f64::NEG_INFINITY {
            let ln_m = hi + ((x - hi).exp() + (y - hi).exp()).ln() - ln2;
            if p > 0.0 {
                js += 0.5 * p * (x - ln_m);
            }
            if q > 0.0 {
                js += 0.5 * q * (y - ln_m);
            }
        }
    }
    // Rounding can leave a tiny negative where the true value is 0.
    (kl.max(0.0) / ln2, kl_rev.max(0.0) / ln2, js.max(0.0) / ln2)
}

/// What a whole text's comparison comes to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareSummary {
    pub model_b: String,
    /// Mean and largest KL(A‖B) over the text's distributions (every position, `next` too).
    pub mean_kl_bits: f64,
    pub max_kl_bits: f64,
    pub mean_js_bits: f64,
    pub total_logprob_b: f64,
    /// total_logprob of B minus that of A.
    pub delta_total_logprob: f64,
    pub perplexity_b: Option<f64>,
    /// perplexity of B minus that of A.
    pub delta_perplexity: Option<f64>,
    /// Positions where the two models' most likely tokens differ.
    pub top1_changes: usize,
}

/// The top-1 of two summaries differ.
pub fn top1_changed(a: &RowSummary, b: &RowSummary) -> bool {
    a.top.first().map(|e| e.id) != b.top.first().map(|e| e.id)
}

/// Summarise a text's comparison from the per-position numbers and both models' rows.
pub fn summarize(
    model_b: &str,
    rows: &[RowCompare],
    a: &[RowSummary],
    b: &[RowSummary],
) -> CompareSummary {
    let n = rows.len().max(1) as f64;
    let total = |r: &[RowSummary]| crate::analysis::stats::totals(r);
    let (ta, na) = total(a);
    let (tb, nb) = total(b);
    let ppl_a = crate::analysis::stats::perplexity(ta, na);
    let ppl_b = crate::analysis::stats::perplexity(tb, nb);
    CompareSummary {
        model_b: model_b.to_owned(),
        mean_kl_bits: rows.iter().map(|r| r.kl_bits).sum::<f64>() / n,
        max_kl_bits: rows.iter().map(|r| r.kl_bits).fold(0.0, f64::max),
        mean_js_bits: rows.iter().map(|r| r.js_bits).sum::<f64>() / n,
        total_logprob_b: tb,
        delta_total_logprob: tb - ta,
        perplexity_b: ppl_b,
        delta_perplexity: ppl_a.zip(ppl_b).map(|(pa, pb)| pb - pa),
        top1_changes: a.iter().zip(b).filter(|(x, y)| top1_changed(x, y)).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lsm(z: &[f32]) -> Vec<f64> {
        log_softmax(z, 1.0).unwrap_or_default()
    }

    #[test]
    fn identical_rows_diverge_by_exactly_nothing() {
        let z = [1.0f32, 2.0, -3.0, f32::NEG_INFINITY, 0.5];
        let c = compare_rows(&z, &z, 1.0, 5).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.kl_bits, c.kl_reverse_bits, c.js_bits), (0.0, 0.0, 0.0));
        assert_eq!(c.a_top_in_b[4], f64::NEG_INFINITY);
    }

    #[test]
    fn known_values() {
        // p = (1/2, 1/2), q = (1/4, 3/4): KL(p‖q) = 0.5 log2(2) + 0.5 log2(2/3).
        let la = [0.5f64.ln(), 0.5f64.ln()];
        let lb = [0.25f64.ln(), 0.75f64.ln()];
        let (kl, rev, js) = divergences(&la, &lb);
        let want = 0.5 * 2f64.log2() + 0.5 * (2.0f64 / 3.0).log2();
        assert!((kl - want).abs() < 1e-12);
        let want_rev = 0.25 * 0.5f64.log2() + 0.75 * 1.5f64.log2();
        assert!((rev - want_rev).abs() < 1e-12);
        // JS with m = (3/8, 5/8).
        let m = [0.375f64, 0.625];
        let kl_pm = 0.5 * (0.5 / m[0]).log2() + 0.5 * (0.5 / m[1]).log2();
        let kl_qm = 0.25 * (0.25 / m[0]).log2() + 0.75 * (0.75 / m[1]).log2();
        assert!((js - 0.5 * (kl_pm + kl_qm)).abs() < 1e-12);
    }

    #[test]
    fn vocabularies_are_compared_by_size_then_piece() {
        let v = |p: &[&str]| Vocab::from_bytes(p.iter().map(|s| s.as_bytes()));
        assert_eq!(vocab_difference(&v(&["a", " b"]), &v(&["a", " b"])), None);
        assert_eq!(
            vocab_difference(&v(&["a"]), &v(&["a", "b"])).as_deref(),
            Some("their vocabularies differ: 1 tokens against 2")
        );
        assert_eq!(
            vocab_difference(&v(&["a", " b"]), &v(&["a", " c"])).as_deref(),
            Some("their vocabularies differ at token 1: \" b\" against \" c\"")
        );
    }

    proptest! {
        #[test]
        fn divergences_are_bounded_and_js_symmetric(
            a in prop::collection::vec(-20.0f32..20.0, 2..60),
            shift in prop::collection::vec(-5.0f32..5.0, 60),
        ) {
            let b: Vec<f32> = a.iter().zip(&shift).map(|(x, s)| x + s).collect();
            let (la, lb) = (lsm(&a), lsm(&b));
            let (kl, rev, js) = divergences(&la, &lb);
            let (kl2, rev2, js2) = divergences(&lb, &la);
            prop_assert!(kl >= 0.0 && rev >= 0.0);
            prop_assert!((0.0..=1.0 + 1e-12).contains(&js));
            prop_assert!((kl - rev2).abs() <= 1e-9 * kl.max(1.0));
            prop_assert!((rev - kl2).abs() <= 1e-9 * rev.max(1.0));
            prop_assert!((js - js2).abs() <= 1e-12);
            prop_assert!(js <= 0.5 * (kl + rev) + 1e-12);
        }
    }
}
