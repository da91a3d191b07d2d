//! Choosing a continuation token from a distribution: greedy, or sampled with nucleus
//! (top-p) truncation. Pure: the uniform draw comes from the caller.

/// How a continuation token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Choice {
    /// The most likely token (ties to the smallest id), as `temperature: 0` asks.
    Greedy,
    /// Sampled from the distribution at this temperature (> 0), keeping the smallest set of
    /// most likely tokens whose mass reaches `top_p` (1 keeps every token).
    Sample { temperature: f32, top_p: f64 },
}

/// The token that a uniform draw `u` in [0, 1) selects from `logprobs` (ln p of every token,
/// summing to 1 in p), restricted to the nucleus of mass `top_p` and renormalised.
pub fn sample(logprobs: &[f64], top_p: f64, u: f64) -> u32 {
    let mut order: Vec<u32> = (0..logprobs.len() as u32)
        .filter(|&i| logprobs[i as usize] > f64::NEG_INFINITY)
        .collect();
    // Best first, ties by id: the nucleus is the same on every run.
    order.sort_by(|&a, &b| {
        logprobs[b as usize]
            .total_cmp(&logprobs[a as usize])
            .then(a.cmp(&b))
    });
    let Some(&first) = order.first() else {
        return 0;
    };
    let mut kept = 0;
    let mut mass = 0.0;
    for &id in &order {
        mass += logprobs[id as usize].exp();
        kept += 1;
        if mass >= top_p {
            break;
        }
    }
    let target = u.clamp(0.0, 1.0) * mass;
    let mut acc = 0.0;
    for &id in &order[..kept] {
        acc += logprobs[id as usize].exp();
        if target < acc {
            return id;
        }
    }
    // Rounding left `target` at the very top: the last kept token.
    order.get(kept - 1).copied().unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ln(ps: &[f64]) -> Vec<f64> {
        ps.iter().map(|p| p.ln()).collect()
    }

    #[test]
    fn a_draw_picks_the_token_whose_interval_holds_it() {
        let lp = ln(&[0.1, 0.6, 0.3]);
        // Best first: 1 (0.6), 2 (0.3), 0 (0.1).
        assert_eq!(sample(&lp, 1.0, 0.0), 1);
        assert_eq!(sample(&lp, 1.0, 0.59), 1);
        assert_eq!(sample(&lp, 1.0, 0.61), 2);
        assert_eq!(sample(&lp, 1.0, 0.95), 0);
        assert_eq!(sample(&lp, 1.0, 1.0), 0);
    }

    #[test]
    fn the_nucleus_keeps_only_the_most_likely_mass() {
        let lp = ln(&[0.1, 0.6, 0.3]);
        // top_p 0.5: only token 1 remains, whatever the draw.
        for u in [0.0, 0.5, 0.999] {
            assert_eq!(sample(&lp, 0.5, u), 1);
        }
        // top_p 0.8: tokens 1 and 2, renormalised over 0.9.
        assert_eq!(sample(&lp, 0.8, 0.6), 1);
        assert_eq!(sample(&lp, 0.8, 0.7), 2);
    }

    #[test]
    fn impossible_tokens_are_never_drawn() {
        let lp = vec![f64::NEG_INFINITY, 0.0, f64::NEG_INFINITY];
        for u in [0.0, 0.3, 0.99] {
            assert_eq!(sample(&lp, 1.0, u), 1);
        }
    }
}
