//! The f64 dot products behind the H·W panel and attribution's rounding: W's rows and the
//! normed states as f32 widened to f64, summed over eight running sums in a fixed order, so
//! a logit has the same bits wherever (and on whichever CPU) it is computed.

/// f32 values widened to f64. A product of two is exact in f64 (24 + 24 significant bits fit
/// in 53, and no f32 product leaves f64's range), which is what lets [`dot_f64`] fuse its
/// multiply-adds and still round as a separate product and sum would.
pub(in crate::model) struct Wide(Vec<f64>);

impl Wide {
    pub(in crate::model) fn of(x: &[f32]) -> Self {
        Self(x.iter().map(|&v| f64::from(v)).collect())
    }

    pub(in crate::model) fn len(&self) -> usize {
        self.0.len()
    }

    pub(in crate::model) fn zeros(n: usize) -> Self {
        Self(vec![0.0; n])
    }

    /// `x` widened into this buffer (of the same length).
    pub(in crate::model) fn set(&mut self, x: &[f32]) {
        for (o, &v) in self.0.iter_mut().zip(x) {
            *o = f64::from(v);
        }
    }
}

/// [`dot_f64`] of two rows against two states, bit for bit (`[w0·y0, w0·y1, w1·y0, w1·y1]`):
/// each value loaded serves two products, so the fused multiply-adds, not the loads, set the
/// pace.
pub(in crate::model) fn dot_f64_2x2(w: [&Wide; 2], y: [&Wide; 2]) -> [f64; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        let n = w[0].len();
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && [w[1].len(), y[0].len(), y[1].len()] == [n; 3]
        {
            // SAFETY: the CPU has AVX2 and FMA (checked just above); all four are n long.
            return unsafe { dot_f64_2x2_fma([&w[0].0, &w[1].0], [&y[0].0, &y[1].0]) };
        }
    }
    [
        dot_f64(w[0], y[0]),
        dot_f64(w[0], y[1]),
        dot_f64(w[1], y[0]),
        dot_f64(w[1], y[1]),
    ]
}

/// The eight running sums of [`dot_f64_lanes`] for four products at once: lanes 0–3 and 4–7
/// of each product in two registers, element i into lane i mod 8, the same fused
/// multiply-add per lane, and the same final additions.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and all four slices must have the same length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_f64_2x2_fma(w: [&[f64]; 2], y: [&[f64]; 2]) -> [f64; 4] {
    use std::arch::x86_64::{
        __m256d, _mm256_fmadd_pd, _mm256_loadu_pd, _mm256_setzero_pd, _mm256_storeu_pd,
    };
    let n = w[0].len();
    let chunks = n / 8;
    let mut acc: [[__m256d; 2]; 4] = [[_mm256_setzero_pd(); 2]; 4];
    for c in 0..chunks {
        let i = 8 * c;
        // SAFETY: i + 8 <= n for every slice (same length, checked by the caller).
        let (w0, w1, y0, y1) = unsafe {
            (
                [
                    _mm256_loadu_pd(w[0].as_ptr().add(i)),
                    _mm256_loadu_pd(w[0].as_ptr().add(i + 4)),
                ],
                [
                    _mm256_loadu_pd(w[1].as_ptr().add(i)),
                    _mm256_loadu_pd(w[1].as_ptr().add(i + 4)),
                ],
                [
                    _mm256_loadu_pd(y[0].as_ptr().add(i)),
                    _mm256_loadu_pd(y[0].as_ptr().add(i + 4)),
                ],
                [
                    _mm256_loadu_pd(y[1].as_ptr().add(i)),
                    _mm256_loadu_pd(y[1].as_ptr().add(i + 4)),
                ],
            )
        };
        for h in 0..2 {
            acc[0][h] = _mm256_fmadd_pd(w0[h], y0[h], acc[0][h]);
            acc[1][h] = _mm256_fmadd_pd(w0[h], y1[h], acc[1][h]);
            acc[2][h] = _mm256_fmadd_pd(w1[h], y0[h], acc[2][h]);
            acc[3][h] = _mm256_fmadd_pd(w1[h], y1[h], acc[3][h]);
        }
    }
    let pairs = [(0, 0), (0, 1), (1, 0), (1, 1)];
    let mut out = [0f64; 4];
    for (k, &(r, p)) in pairs.iter().enumerate() {
        let mut lanes = [0f64; 8];
        // SAFETY: eight f64 of room for two registers of four.
        unsafe {
            _mm256_storeu_pd(lanes.as_mut_ptr(), acc[k][0]);
            _mm256_storeu_pd(lanes.as_mut_ptr().add(4), acc[k][1]);
        }
        for i in 8 * chunks..n {
            let l = &mut lanes[i % 8];
            *l = w[r][i].mul_add(y[p][i], *l);
        }
        let [a, b, c, d, e, f, g, h] = lanes;
        out[k] = ((a + b) + (c + d)) + ((e + f) + (g + h));
    }
    out
}

/// Σ w·x in f64, over eight running sums (element i into sum i mod 8, then added in a fixed
/// order): the same for a row wherever it is computed, and free of one long chain of
/// dependent additions, so the compiler can vectorise it. Each product is exact ([`Wide`]),
/// so a fused multiply-add gives the same bits as the product then the sum: the FMA build
/// and the portable one agree.
pub(in crate::model) fn dot_f64(w: &Wide, x: &Wide) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { dot_f64_fma(&w.0, &x.0) };
        }
    }
    dot_f64_lanes(&w.0, &x.0, |l, a, b| *l += a * b)
}

/// [`dot_f64_lanes`] with AVX2's fused multiply-add.
///
/// # Safety
/// The CPU must support AVX2 and FMA (checked with `is_x86_feature_detected!` by the caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_f64_fma(w: &[f64], x: &[f64]) -> f64 {
    dot_f64_lanes(w, x, |l, a, b| *l = a.mul_add(b, *l))
}

#[inline(always)]
fn dot_f64_lanes(w: &[f64], x: &[f64], add: impl Fn(&mut f64, f64, f64)) -> f64 {
    let mut lanes = [0f64; 8];
    let (wc, xc) = (w.chunks_exact(8), x.chunks_exact(8));
    let (wr, xr) = (wc.remainder(), xc.remainder());
    for (a, b) in wc.zip(xc) {
        for ((l, &a), &b) in lanes.iter_mut().zip(a).zip(b) {
            add(l, a, b);
        }
    }
    for ((l, &a), &b) in lanes.iter_mut().zip(wr).zip(xr) {
        add(l, a, b);
    }
    let [a, b, c, d, e, f, g, h] = lanes;
    ((a + b) + (c + d)) + ((e + f) + (g + h))
}

#[cfg(test)]
mod tests {
    use super::{dot_f64, dot_f64_2x2, Wide};
    use proptest::prelude::*;

    /// The eight running sums as they were first written: f32 values, each product rounded
    /// to f64 and then added (no fused multiply-add).
    fn eight_lanes_unfused(w: &[f32], x: &[f32]) -> f64 {
        let mut lanes = [0f64; 8];
        for (i, (&a, &b)) in w.iter().zip(x).enumerate() {
            lanes[i % 8] += f64::from(a) * f64::from(b);
        }
        let [a, b, c, d, e, f, g, h] = lanes;
        ((a + b) + (c + d)) + ((e + f) + (g + h))
    }

    proptest! {
        /// Eight running sums give the f64 dot product to within f64 rounding of the
        /// straight sum (both far below the f32 rounding the H·W panel measures).
        #[test]
        fn the_eight_lane_dot_is_the_f64_dot(
            pairs in proptest::collection::vec((-4f32..4.0, -4f32..4.0), 0..700)
        ) {
            let (w, x): (Vec<f32>, Vec<f32>) = pairs.into_iter().unzip();
            let straight: f64 = w.iter().zip(&x).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
            let scale: f64 = w.iter().zip(&x).map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs()).sum();
            prop_assert!((dot_f64(&Wide::of(&w), &Wide::of(&x)) - straight).abs() <= 1e-13 * scale.max(1.0));
        }

        /// Two rows by two states give each product's bits as one dot alone (lengths that
        /// are and are not multiples of eight).
        #[test]
        fn the_blocked_dot_is_four_dots(
            rows in proptest::collection::vec(proptest::collection::vec(-4f32..4.0, 37), 4)
        ) {
            for n in [0usize, 5, 8, 16, 37] {
                let v: Vec<Wide> = rows.iter().map(|r| Wide::of(&r[..n])).collect();
                let got = dot_f64_2x2([&v[0], &v[1]], [&v[2], &v[3]]);
                let each = [
                    dot_f64(&v[0], &v[2]),
                    dot_f64(&v[0], &v[3]),
                    dot_f64(&v[1], &v[2]),
                    dot_f64(&v[1], &v[3]),
                ];
                prop_assert_eq!(got.map(f64::to_bits), each.map(f64::to_bits));
            }
        }

        /// Fused or not, the dot of widened f32 values has the bits of the unfused sums, over
        /// the whole f32 range (tiny and huge values, signs mixed).
        #[test]
        fn the_fused_dot_rounds_as_the_unfused_one(
            pairs in proptest::collection::vec((any::<f32>(), any::<f32>()), 0..700)
        ) {
            let pairs: Vec<(f32, f32)> = pairs.into_iter().filter(|(a, b)| a.is_finite() && b.is_finite()).collect();
            let (w, x): (Vec<f32>, Vec<f32>) = pairs.into_iter().unzip();
            let ours = dot_f64(&Wide::of(&w), &Wide::of(&x));
            let theirs = eight_lanes_unfused(&w, &x);
            prop_assert!(ours.to_bits() == theirs.to_bits() || (ours.is_nan() && theirs.is_nan()), "{ours} vs {theirs}");
        }
    }
}
