//! How a text is cut into decodes: the sizes llama.cpp is given and where a new text starts
//! decoding after the tokens it shares with the cached one. Pure arithmetic, no llama.cpp.

/// The smallest decode the engine issues (unless the whole text is shorter): llama.cpp's
/// results for 1- and 2-token decodes differ from a whole-text decode; 4 and more matched on
/// this model, 16 and more on K-quants (tests/fixtures/README.md). 16 keeps a keystroke cheap
/// and is proven bit-exact by tests/engine.rs.
pub const MIN_DECODE: usize = 16;
/// The largest decode. Bounds llama.cpp's logits buffer (chunk × |V| floats: 19 MB for the
/// default model) and lets a long evaluation notice a newer request between chunks (≈ 0.4 s
/// apart on two CPU cores). 96 rather than 64: a typical line of `score` is then one decode,
/// which measurably narrows the gap to a plain decode (README, benchmark table 8).
pub const MAX_DECODE: usize = 96;
/// The most tokens of one multi-sequence decode when scoring candidates side by side: on two
/// CPU cores ≈ 0.6 s, the longest a cancel waits.
pub const MAX_WAVE: usize = 128;

/// Length of the common prefix of two token sequences.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Where decoding must start for a text of `n` tokens whose first `common` tokens are cached.
/// At most `common - 1`: the last reused row must get its new target, which needs its logits.
/// At most `n - MIN_DECODE`: the first decode is never tiny.
pub fn plan_start(common: usize, n: usize) -> usize {
    common
        .saturating_sub(1)
        .min(n.saturating_sub(MIN_DECODE))
        .min(n.saturating_sub(1))
}

/// Split `n` tokens into balanced decodes of at most `max` (normally [`MAX_DECODE`]), none
/// shorter than [`MIN_DECODE`] unless `n` or `max` itself is.
pub fn plan_chunks(n: usize, max: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let parts = n.div_ceil(max.max(1));
    let base = n / parts;
    let extra = n % parts;
    (0..parts).map(|i| base + usize::from(i < extra)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn start_leaves_a_decode_of_min_size_and_refreshes_the_last_target() {
        assert_eq!(plan_start(0, 10), 0);
        assert_eq!(plan_start(10, 10), 0);
        assert_eq!(plan_start(100, 101), 101 - MIN_DECODE);
        assert_eq!(plan_start(50, 200), 49);
        assert_eq!(plan_start(200, 200), 200 - MIN_DECODE);
    }

    proptest! {
        #[test]
        fn chunks_cover_and_are_balanced(n in 0usize..5000, max in prop_oneof![Just(MAX_DECODE), 1usize..600]) {
            let c = plan_chunks(n, max);
            prop_assert_eq!(c.iter().sum::<usize>(), n);
            for &len in &c {
                prop_assert!(len <= max);
                prop_assert!(len >= MIN_DECODE.min(n).min(max / 2));
            }
        }

        #[test]
        fn start_is_safe(common in 0usize..700, n in 1usize..700) {
            let common = common.min(n);
            let s = plan_start(common, n);
            prop_assert!(s < n);
            prop_assert!(s < common.max(1));
            prop_assert!(n - s >= MIN_DECODE.min(n));
        }
    }
}
