//! The statistics of one logit row: stable log-softmax at temperature T, entropy, top-k and the
//! rank of the token that actually followed.
//!
//! Pure Rust over `&[f32]`, with no model anywhere near it, so every number the program shows can
//! be tested here. One row is read in three streaming passes and never copied:
//!
//! 1. the maximum logit (and, when a target is given, how many logits beat it: its rank);
//! 2. `S = Σ exp(y)` and `Σ exp(y)·y` together, with `y = (z - max) / T`, which gives
//!    `log Z = max/T + ln S` and the entropy `H = ln S - Σ exp(y)·y / S` in one go;
//! 3. the top-k by selection: blocks whose maximum cannot enter the current top-k are skipped.
//!
//! Passes 1 and 2 are written as fixed-width lane loops so the compiler vectorises them; the
//! exponential is a polynomial (accurate to a few ulp of f32) because `f32::exp` is a libm call
//! that does not vectorise. Sums are accumulated in f64 lanes. No allocation happens beyond the
//! top-k vector handed back.

/// Width of the lane loops. Eight f32 lanes fill one AVX register and two SSE registers.
const LANES: usize = 8;

/// Inputs below this (in units of the scaled logit `y`) contribute exactly zero: exp(-104) is
/// below the smallest f32 subnormal. Clamping there also turns `-inf` logits into harmless
/// finite numbers, so `0 · y` never becomes `0 · -inf = NaN` in the entropy sum.
const Y_FLOOR: f32 = -104.0;

/// How each row is summarised: the temperature of the softmax and the top-k kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewOptions {
    pub temp: f32,
    pub n_probs: usize,
}

impl Default for ViewOptions {
    fn default() -> Self {
        Self {
            temp: 1.0,
            n_probs: 10,
        }
    }
}

/// One entry of a top-k list: a token id and its log-probability (natural log).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopEntry {
    pub id: u32,
    pub logprob: f64,
}

/// What the row says about the token that actually came next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetStats {
    pub id: u32,
    /// Natural log of its probability.
    pub logprob: f64,
    pub prob: f64,
    /// 1 = the model's top choice. Ties are broken by token id, as in the top-k list.
    pub rank: u32,
}

/// The summary of one distribution p_i; everything the program keeps of a logit row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowSummary {
    /// Entropy in bits.
    pub entropy_bits: f64,
    /// The row's largest logit.
    pub max_logit: f32,
    /// ln Σ exp((z - max) / T): with `max_logit`, the normaliser of the row.
    pub ln_sum: f64,
    /// 1 / T as used for this row.
    pub inv_temp: f64,
    /// Best first; ties by ascending id.
    pub top: Vec<TopEntry>,
    pub target: Option<TargetStats>,
    /// The watched tokens' statistics (see [`watch_stats`]), in the order asked.
    pub watched: Vec<TargetStats>,
}

impl RowSummary {
    /// The log-probability of a logit value `z` taken from the same row.
    pub fn logprob_of(&self, z: f32) -> f64 {
        scaled_logprob(z, self.max_logit, self.inv_temp, self.ln_sum)
    }

    /// Probability mass covered by the top-k entries.
    pub fn top_mass(&self) -> f64 {
        self.top.iter().map(|e| e.logprob.exp()).sum()
    }
}

/// Why a row could not be summarised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("the model returned an empty logit row")]
    Empty,
    #[error("the model returned NaN logits")]
    NaN,
    #[error("every logit is -inf: no token is possible")]
    AllNegInfinite,
    #[error("target token {0} is outside the vocabulary")]
    TargetOutOfRange(u32),
}

/// Summarise one logit row at temperature `temp` (> 0; smaller values are treated as the limit
/// T → 0, a one-hot argmax). `k` is the number of top entries kept (capped at the row length),
/// `target` the id of the token that followed, if any.
pub fn summarize_row(
    logits: &[f32],
    temp: f32,
    k: usize,
    target: Option<u32>,
) -> Result<RowSummary, RowError> {
    if logits.is_empty() {
        return Err(RowError::Empty);
    }
    let target_logit = match target {
        Some(t) => Some(
            *logits
                .get(t as usize)
                .ok_or(RowError::TargetOutOfRange(t))?,
        ),
        None => None,
    };

    // Pass 1 also ranks the target: logits before it that are >= its logit (ties are broken by
    // id) plus logits after it that are > it. x >= z is x > next_down(z).
    let (max, rank_ahead, nan) = match (target, target_logit) {
        (Some(id), Some(z)) => max_and_ahead(logits, id as usize, z),
        _ => max_and_count(logits, f32::INFINITY),
    };
    let Normaliser {
        inv_temp,
        ln_s,
        sum,
        sum_ey,
    } = normalise(logits, temp, max, nan)?;
    // H = ln S - Σ e·y / S (nats); clamp tiny negative rounding to 0.
    let entropy_nats = (ln_s - sum_ey / sum).max(0.0);
    let summary_logprob = |z: f32| scaled_logprob(z, max, inv_temp, ln_s);

    let top = top_k(logits, k)
        .into_iter()
        .map(|id| TopEntry {
            id,
            logprob: summary_logprob(logits[id as usize]),
        })
        .collect();

    let target = match (target, target_logit) {
        (Some(id), Some(z)) => {
            let logprob = summary_logprob(z);
            Some(TargetStats {
                id,
                logprob,
                prob: logprob.exp(),
                rank: u32::try_from(1 + rank_ahead).unwrap_or(u32::MAX),
            })
        }
        _ => None,
    };

    Ok(RowSummary {
        entropy_bits: entropy_nats / std::f64::consts::LN_2,
        max_logit: max,
        ln_sum: ln_s,
        inv_temp,
        top,
        target,
        watched: Vec::new(),
    })
}

/// The row's maximum, how many entries rank ahead of entry `id` (logit `z`): those before it
/// that are >= z (ties are broken by id) and those after it that are > z, and whether a NaN
/// was seen. x >= z is x > next_down(z).
fn max_and_ahead(logits: &[f32], id: usize, z: f32) -> (f32, usize, bool) {
    if z > f32::NEG_INFINITY {
        let (before, after) = logits.split_at(id);
        let (m1, c1, n1) = max_and_count(before, z.next_down());
        let (m2, c2, n2) = max_and_count(after, z);
        (m1.max(m2), c1 + c2, n1 || n2)
    } else {
        // An impossible entry (-inf): count the finite ones and the -inf ties before it.
        let (m, c, n) = max_and_count(logits, z);
        let ties = logits[..id].iter().filter(|&&x| x == z).count();
        (m, c + ties, n)
    }
}

/// The probability and rank of each of `ids` in the row `logits` that `summary` summarises
/// (ranks break ties by id, as everywhere). One counting pass per id.
pub fn watch_stats(
    logits: &[f32],
    summary: &RowSummary,
    ids: &[u32],
) -> Result<Vec<TargetStats>, RowError> {
    ids.iter()
        .map(|&id| {
            let z = *logits
                .get(id as usize)
                .ok_or(RowError::TargetOutOfRange(id))?;
            let logprob = summary.logprob_of(z);
            let ahead = max_and_ahead(logits, id as usize, z).1;
            Ok(TargetStats {
                id,
                logprob,
                prob: logprob.exp(),
                rank: u32::try_from(1 + ahead).unwrap_or(u32::MAX),
            })
        })
        .collect()
}

/// The log-probabilities of a few tokens of one row, without the entropy or top-k: one pass
/// for the maximum and one for the sum.
pub fn logprobs_of(logits: &[f32], temp: f32, targets: &[u32]) -> Result<Vec<f64>, RowError> {
    if logits.is_empty() {
        return Err(RowError::Empty);
    }
    let (max, _, nan) = max_and_count(logits, f32::INFINITY);
    let Normaliser { inv_temp, ln_s, .. } = normalise(logits, temp, max, nan)?;
    targets
        .iter()
        .map(|&t| {
            let z = *logits
                .get(t as usize)
                .ok_or(RowError::TargetOutOfRange(t))?;
            Ok(scaled_logprob(z, max, inv_temp, ln_s))
        })
        .collect()
}

/// The log-probability of every token of one row (the whole distribution, ln p).
pub fn log_softmax(logits: &[f32], temp: f32) -> Result<Vec<f64>, RowError> {
    if logits.is_empty() {
        return Err(RowError::Empty);
    }
    let (max, _, nan) = max_and_count(logits, f32::INFINITY);
    let Normaliser { inv_temp, ln_s, .. } = normalise(logits, temp, max, nan)?;
    Ok(logits
        .iter()
        .map(|&z| scaled_logprob(z, max, inv_temp, ln_s))
        .collect())
}

/// Pass 2's results: what turns a logit into a log-probability.
struct Normaliser {
    inv_temp: f64,
    ln_s: f64,
    sum: f64,
    sum_ey: f64,
}

/// Check pass 1's findings, then run pass 2.
fn normalise(logits: &[f32], temp: f32, max: f32, nan: bool) -> Result<Normaliser, RowError> {
    if nan {
        return Err(RowError::NaN);
    }
    if max == f32::NEG_INFINITY {
        return Err(RowError::AllNegInfinite);
    }
    // 1/T, kept finite so that (z - max) * inv_t is 0 for the maximum even as T → 0.
    let inv_t = if temp > 0.0 {
        (1.0 / temp).min(f32::MAX)
    } else {
        f32::MAX
    };
    let (sum, sum_ey) = exp_sums(logits, max, inv_t);
    Ok(Normaliser {
        inv_temp: f64::from(inv_t),
        ln_s: sum.ln(),
        sum,
        sum_ey,
    })
}

/// `(z - max) / T - ln S`, relative to the maximum so that no large numbers cancel as T → 0.
fn scaled_logprob(z: f32, max: f32, inv_temp: f64, ln_sum: f64) -> f64 {
    if z == f32::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    (f64::from(z) - f64::from(max)) * inv_temp - ln_sum
}

/// Pass 1: the maximum, how many logits are strictly greater than `threshold`, and whether any
/// NaN was seen.
fn max_and_count(logits: &[f32], threshold: f32) -> (f32, usize, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the features the function was compiled for.
            return unsafe { max_and_count_avx2(logits, threshold) };
        }
    }
    max_and_count_generic(logits, threshold)
}

/// # Safety
/// The CPU must support AVX2 (checked with `is_x86_feature_detected!` by the caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn max_and_count_avx2(logits: &[f32], threshold: f32) -> (f32, usize, bool) {
    use std::arch::x86_64::*;
    let mut vmax = _mm256_set1_ps(f32::NEG_INFINITY);
    let mut vcount = _mm256_setzero_si256();
    let mut vnan = _mm256_setzero_ps();
    let vthr = _mm256_set1_ps(threshold);
    let chunks = logits.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        // SAFETY: `chunk` holds exactly 8 f32; unaligned loads are allowed.
        let x = unsafe { _mm256_loadu_ps(chunk.as_ptr()) };
        vmax = _mm256_max_ps(x, vmax);
        // A true comparison is all ones (-1): subtracting it counts.
        vcount = _mm256_sub_epi32(
            vcount,
            _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(x, vthr)),
        );
        vnan = _mm256_or_ps(vnan, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x));
    }
    let mut m = [0f32; 8];
    let mut cnt = [0i32; 8];
    // SAFETY: the arrays hold 8 lanes each.
    unsafe {
        _mm256_storeu_ps(m.as_mut_ptr(), vmax);
        _mm256_storeu_si256(cnt.as_mut_ptr().cast(), vcount);
    }
    let (rm, rc, rn) = max_and_count_generic(rest, threshold);
    let max = m.iter().fold(rm, |a, &b| if b > a { b } else { a });
    let count = rc + cnt.iter().map(|&c| c as usize).sum::<usize>();
    (max, count, rn || _mm256_movemask_ps(vnan) != 0)
}

/// Lane-parallel so that it vectorises where AVX2 is not available.
fn max_and_count_generic(logits: &[f32], threshold: f32) -> (f32, usize, bool) {
    let mut maxes = [f32::NEG_INFINITY; LANES];
    let mut counts = [0u32; LANES];
    let mut nan = [false; LANES];
    let chunks = logits.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for l in 0..LANES {
            let x = chunk[l];
            maxes[l] = if x > maxes[l] { x } else { maxes[l] };
            counts[l] += u32::from(x > threshold);
            nan[l] |= x.is_nan();
        }
    }
    let mut max = f32::NEG_INFINITY;
    let mut count = 0usize;
    let mut any_nan = false;
    for l in 0..LANES {
        max = max.max(maxes[l]);
        count += counts[l] as usize;
        any_nan |= nan[l];
    }
    for &x in rest {
        max = if x > max { x } else { max };
        count += usize::from(x > threshold);
        any_nan |= x.is_nan();
    }
    (max, count, any_nan)
}

/// Pass 2: `(Σ exp(y), Σ exp(y)·y)` with `y = max((z - max)·inv_t, Y_FLOOR)`, accumulated in f64.
fn exp_sums(logits: &[f32], max: f32, inv_t: f32) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features the function was compiled for.
            return unsafe { exp_sums_avx2(logits, max, inv_t) };
        }
    }
    exp_sums_generic(logits, max, inv_t)
}

/// Pass 2 with AVX2 + FMA intrinsics: the autovectoriser does not manage the exponential, and
/// this loop is the whole cost of a row (≈ 0.25 ns per logit instead of ≈ 7).
///
/// # Safety
/// The CPU must support AVX2 and FMA (checked with `is_x86_feature_detected!` by the caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_sums_avx2(logits: &[f32], max: f32, inv_t: f32) -> (f64, f64) {
    use std::arch::x86_64::*;
    let vmax = _mm256_set1_ps(max);
    let vinv = _mm256_set1_ps(inv_t);
    let floor = _mm256_set1_ps(Y_FLOOR);
    let log2e = _mm256_set1_ps(std::f32::consts::LOG2_E);
    let ln2_hi = _mm256_set1_ps(0.693_145_75);
    let ln2_lo = _mm256_set1_ps(1.428_606_8e-6);
    let c = [
        _mm256_set1_ps(1.0 / 720.0),
        _mm256_set1_ps(1.0 / 120.0),
        _mm256_set1_ps(1.0 / 24.0),
        _mm256_set1_ps(1.0 / 6.0),
        _mm256_set1_ps(0.5),
        _mm256_set1_ps(1.0),
        _mm256_set1_ps(1.0),
    ];
    let bias = _mm256_set1_epi32(127);
    let zero_i = _mm256_setzero_si256();
    let (mut s0, mut s1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let (mut t0, mut t1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let chunks = logits.chunks_exact(8);
    let rest = chunks.remainder();
    // f32 lane sums over blocks of 32 × 8 logits, then folded into f64: the f64 conversion
    // per element cost as much as the exponential itself.
    let mut in_block = 0;
    let (mut es, mut eys) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for chunk in chunks {
        // SAFETY: `chunk` holds exactly 8 f32; unaligned loads are allowed.
        let z = unsafe { _mm256_loadu_ps(chunk.as_ptr()) };
        let y = _mm256_max_ps(_mm256_mul_ps(_mm256_sub_ps(z, vmax), vinv), floor);
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(y, log2e),
        );
        let r = _mm256_fnmadd_ps(n, ln2_lo, _mm256_fnmadd_ps(n, ln2_hi, y));
        let mut p = c[0];
        for k in &c[1..] {
            p = _mm256_fmadd_ps(p, r, *k);
        }
        // 2^n; below 2^-126 the clamped exponent field is 0, so the weight is exactly 0.
        let ni = _mm256_max_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), bias), zero_i);
        let e = _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32::<23>(ni)));
        es = _mm256_add_ps(es, e);
        eys = _mm256_fmadd_ps(e, y, eys);
        in_block += 1;
        if in_block == 32 {
            s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(es)));
            s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(es)));
            t0 = _mm256_add_pd(t0, _mm256_cvtps_pd(_mm256_castps256_ps128(eys)));
            t1 = _mm256_add_pd(t1, _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(eys)));
            es = _mm256_setzero_ps();
            eys = _mm256_setzero_ps();
            in_block = 0;
        }
    }
    s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(es)));
    s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(es)));
    t0 = _mm256_add_pd(t0, _mm256_cvtps_pd(_mm256_castps256_ps128(eys)));
    t1 = _mm256_add_pd(t1, _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(eys)));
    let mut out = [0f64; 4];
    let mut lanes = [0f64; 4];
    // SAFETY: `lanes` holds 4 f64.
    unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), _mm256_add_pd(s0, s1)) };
    out[0] = lanes.iter().sum();
    // SAFETY: as above.
    unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), _mm256_add_pd(t0, t1)) };
    out[1] = lanes.iter().sum();
    let (rs, rt) = exp_sums_generic(rest, max, inv_t);
    (out[0] + rs, out[1] + rt)
}

#[inline(always)]
fn exp_sums_generic(logits: &[f32], max: f32, inv_t: f32) -> (f64, f64) {
    let mut s = [0f64; LANES];
    let mut sy = [0f64; LANES];
    let chunks = logits.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        let mut e = [0f32; LANES];
        let mut y = [0f32; LANES];
        for l in 0..LANES {
            y[l] = ((chunk[l] - max) * inv_t).max(Y_FLOOR);
            e[l] = fast_exp(y[l]);
        }
        for l in 0..LANES {
            s[l] += f64::from(e[l]);
            sy[l] += f64::from(e[l] * y[l]);
        }
    }
    let mut sum = 0f64;
    let mut sum_ey = 0f64;
    for l in 0..LANES {
        sum += s[l];
        sum_ey += sy[l];
    }
    for &z in rest {
        let y = ((z - max) * inv_t).max(Y_FLOOR);
        let e = fast_exp(y);
        sum += f64::from(e);
        sum_ey += f64::from(e * y);
    }
    (sum, sum_ey)
}

/// exp(x) for x in [Y_FLOOR, 0], branch-free so it vectorises: x = n·ln2 + r with |r| ≤ ln2/2,
/// a degree-6 polynomial for e^r and 2^n built in the exponent bits. Relative error ≈ 2e-7.
/// Results below the normal range flush to 0 (they are < 1e-37 of the maximum's weight).
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Round to nearest with the 1.5·2^23 trick: `f32::round` is a libm call that blocks
    // vectorisation. |x·log2 e| < 151 here, far inside the trick's range.
    const ROUND: f32 = 12_582_912.0;
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // 2^n for n in [-151, 0]; below -126 the exponent field would underflow: flush to zero.
    let ni = n as i32;
    let bits = ((ni + 127).max(0) as u32) << 23;
    let scale = f32::from_bits(bits);
    if ni < -126 {
        0.0
    } else {
        p * scale
    }
}

/// Pass 3: the ids of the `k` largest logits, best first, ties by ascending id. Selection with
/// a running threshold: a block of 64 is looked at element by element only when its maximum
/// could enter the current top-k, which after the first few blocks is rare.
pub fn top_k(logits: &[f32], k: usize) -> Vec<u32> {
    let k = k.min(logits.len());
    if k == 0 {
        return Vec::new();
    }
    // Kept sorted best-first: (logit, id).
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
    let mut threshold = f32::NEG_INFINITY;
    const BLOCK: usize = 64;
    for (b, block) in logits.chunks(BLOCK).enumerate() {
        if best.len() == k && block_max(block) <= threshold {
            continue;
        }
        for (j, &x) in block.iter().enumerate() {
            if x.is_nan() || (best.len() == k && x <= threshold) {
                continue;
            }
            let id = (b * BLOCK + j) as u32;
            // Insert after every entry that is >= x (earlier ids win ties).
            let at = best.partition_point(|&(v, _)| v >= x);
            best.insert(at, (x, id));
            if best.len() > k {
                best.pop();
            }
            if best.len() == k {
                threshold = best[k - 1].0;
            }
        }
    }
    best.into_iter().map(|(_, id)| id).collect()
}

/// The maximum of a block (NaN ignored), in lanes so that it vectorises.
#[inline]
fn block_max(block: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    let chunks = block.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            m[l] = if c[l] > m[l] { c[l] } else { m[l] };
        }
    }
    let mut best = f32::NEG_INFINITY;
    for x in m.iter().chain(rest) {
        best = if *x > best { *x } else { best };
    }
    best
}

/// log2 of the vocabulary size: the ceiling of any entropy shown.
pub fn max_entropy_bits(n_vocab: usize) -> f64 {
    (n_vocab.max(1) as f64).log2()
}

/// Totals over a sequence of scored tokens: total logprob and perplexity exp(-total / n).
/// Totals of a text: (total logprob of the scored tokens, how many were scored).
pub fn totals(rows: &[RowSummary]) -> (f64, usize) {
    rows.iter()
        .filter_map(|r| r.target.map(|t| t.logprob))
        .fold((0.0, 0), |(s, n), l| (s + l, n + 1))
}

pub fn perplexity(total_logprob: f64, n_scored: usize) -> Option<f64> {
    (n_scored > 0).then(|| (-total_logprob / n_scored as f64).exp())
}

/// Logits spread like a real row's (uniform over 20 nats), reproducible without a model: the
/// input of the statistics benchmarks (`bench`, `cargo bench`).
pub fn synthetic_row(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 20.0 - 12.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// The slow, obviously-right reference: f64 softmax with full sort.
    fn reference(logits: &[f32], t: f64) -> (Vec<f64>, f64) {
        let m = logits
            .iter()
            .map(|&z| f64::from(z) / t)
            .fold(f64::NEG_INFINITY, f64::max);
        let ws: Vec<f64> = logits
            .iter()
            .map(|&z| (f64::from(z) / t - m).exp())
            .collect();
        let s: f64 = ws.iter().sum();
        let p: Vec<f64> = ws.iter().map(|w| w / s).collect();
        let h = -p
            .iter()
            .filter(|&&q| q > 0.0)
            .map(|q| q * q.log2())
            .sum::<f64>();
        (p, h)
    }

    fn all_logprobs(s: &RowSummary, logits: &[f32]) -> Vec<f64> {
        logits.iter().map(|&z| s.logprob_of(z)).collect()
    }

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x <= 0.0 {
            let rel = ((f64::from(fast_exp(x)) - f64::from(x).exp()) / f64::from(x).exp()).abs();
            worst = worst.max(rel);
            x += 0.001;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(fast_exp(0.0), 1.0);
        assert_eq!(fast_exp(Y_FLOOR), 0.0);
    }

    #[test]
    fn matches_reference_on_a_known_row() {
        let logits = [1.0f32, 2.0, 3.0, 0.5, -1.0, 3.0];
        let s = summarize_row(&logits, 1.0, 3, Some(1)).unwrap();
        let (p, h) = reference(&logits, 1.0);
        assert!((s.entropy_bits - h).abs() < 1e-6);
        assert_eq!(
            s.top.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![2, 5, 1]
        );
        let t = s.target.unwrap();
        assert_eq!(t.rank, 3);
        assert!((t.prob - p[1]).abs() < 1e-7);
        assert!((t.logprob - p[1].ln()).abs() < 1e-6);
    }

    #[test]
    fn rank_of_top_token_is_one_and_ties_are_stable() {
        let logits = [0.0f32, 5.0, 5.0, 1.0];
        let first = summarize_row(&logits, 1.0, 4, Some(1)).unwrap();
        let second = summarize_row(&logits, 1.0, 4, Some(2)).unwrap();
        assert_eq!(first.target.unwrap().rank, 1);
        assert_eq!(second.target.unwrap().rank, 2);
        assert_eq!(
            first.top.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![1, 2, 3, 0]
        );
    }

    #[test]
    fn neg_infinite_logits_are_impossible_tokens() {
        let logits = [f32::NEG_INFINITY, 1.0, f32::NEG_INFINITY, 1.0];
        let s = summarize_row(&logits, 1.0, 4, Some(0)).unwrap();
        assert!((s.entropy_bits - 1.0).abs() < 1e-9);
        let t = s.target.unwrap();
        assert_eq!(t.prob, 0.0);
        assert_eq!(t.logprob, f64::NEG_INFINITY);
        assert_eq!(t.rank, 3);
        assert!(s.entropy_bits.is_finite());
    }

    #[test]
    fn degenerate_rows_are_errors_not_panics() {
        assert_eq!(summarize_row(&[], 1.0, 3, None), Err(RowError::Empty));
        assert_eq!(
            summarize_row(&[f32::NAN, 1.0], 1.0, 3, None),
            Err(RowError::NaN)
        );
        assert_eq!(
            summarize_row(&[f32::NEG_INFINITY; 3], 1.0, 3, None),
            Err(RowError::AllNegInfinite)
        );
        assert_eq!(
            summarize_row(&[1.0, 2.0], 1.0, 3, Some(2)),
            Err(RowError::TargetOutOfRange(2))
        );
    }

    #[test]
    fn zero_temperature_is_one_hot_argmax() {
        let logits = [0.3f32, 2.5, 2.4999, -7.0];
        for t in [0.0f32, 1e-12, 1e-30] {
            let s = summarize_row(&logits, t, 4, Some(2)).unwrap();
            assert_eq!(s.top[0].id, 1);
            assert!(s.top[0].logprob.abs() < 1e-12, "{t}");
            assert_eq!(s.target.unwrap().prob, 0.0);
            assert!(s.entropy_bits.abs() < 1e-9);
        }
    }

    #[test]
    fn huge_temperature_approaches_uniform() {
        let logits: Vec<f32> = (0..1000).map(|i| (i % 17) as f32 - 8.0).collect();
        let s = summarize_row(&logits, 1e6, 5, Some(3)).unwrap();
        let ceiling = max_entropy_bits(logits.len());
        assert!((ceiling - s.entropy_bits).abs() < 1e-6);
        assert!((s.target.unwrap().prob - 1e-3).abs() < 1e-8);
    }

    #[test]
    fn perplexity_of_nothing_is_none() {
        assert_eq!(perplexity(0.0, 0), None);
        assert!((perplexity(-2.0f64.ln() * 4.0, 4).unwrap() - 2.0).abs() < 1e-12);
    }

    fn row_strategy() -> impl Strategy<Value = Vec<f32>> {
        prop::collection::vec(
            prop_oneof![
                8 => -30.0f32..30.0,
                1 => Just(f32::NEG_INFINITY),
                1 => (-3i32..3).prop_map(|i| i as f32),
            ],
            1..700,
        )
        .prop_filter("at least one finite logit", |v| {
            v.iter().any(|x| x.is_finite())
        })
    }

    #[cfg(target_arch = "x86_64")]
    fn simd_available() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    /// Fails where the SIMD comparison above cannot run, so that a machine without AVX2 + FMA
    /// shows a failing test that names the reason rather than a property that compared the
    /// portable code with itself. Set LOGITSCOPE_NO_SIMD_OK=1 to accept such a machine.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn simd_comparison_runs_here() {
        let accepted = std::env::var_os("LOGITSCOPE_NO_SIMD_OK").is_some_and(|v| v == "1");
        assert!(
            simd_available() || accepted,
            "this CPU has no AVX2 + FMA: the SIMD-vs-portable property compared nothing \
             (set LOGITSCOPE_NO_SIMD_OK=1 to accept)"
        );
    }

    proptest! {
        /// The AVX2 passes, called directly (not through the dispatch), agree with the
        /// portable ones. On a CPU without AVX2 + FMA there is nothing to compare: see
        /// `simd_comparison_runs_here`, which says so instead of passing quietly.
        #[test]
        #[cfg(target_arch = "x86_64")]
        fn simd_and_portable_passes_agree(row in row_strategy(), t in 0.05f32..20.0, thr in -30.0f32..30.0) {
            if simd_available() {
                // SAFETY: the CPU has the features the functions were compiled for.
                let (max, count, nan) = unsafe { max_and_count_avx2(&row, thr) };
                prop_assert_eq!((max, count, nan), max_and_count_generic(&row, thr));
                let inv = 1.0 / t;
                // SAFETY: as above.
                let (a, b) = unsafe { exp_sums_avx2(&row, max, inv) };
                let (c, d) = exp_sums_generic(&row, max, inv);
                prop_assert!((a - c).abs() <= 1e-6 * c, "{} vs {}", a, c);
                prop_assert!((b - d).abs() <= 1e-5 * d.abs().max(1.0), "{} vs {}", b, d);
            }
        }

        #[test]
        fn probabilities_sum_to_one(row in row_strategy(), t in 0.05f32..20.0) {
            let s = summarize_row(&row, t, 10, None).unwrap();
            let total: f64 = all_logprobs(&s, &row).iter().map(|l| l.exp()).sum();
            prop_assert!((total - 1.0).abs() < 1e-6, "sum {}", total);
        }

        #[test]
        fn entropy_is_bounded_and_right(row in row_strategy(), t in 0.05f32..20.0) {
            let s = summarize_row(&row, t, 10, None).unwrap();
            let (_, h) = reference(&row, f64::from(t));
            prop_assert!(s.entropy_bits >= 0.0);
            prop_assert!(s.entropy_bits <= max_entropy_bits(row.len()) + 1e-9);
            prop_assert!((s.entropy_bits - h).abs() < 1e-5, "{} vs {}", s.entropy_bits, h);
        }

        #[test]
        fn top_k_is_sorted_stable_and_complete(row in row_strategy(), k in 0usize..20) {
            let s = summarize_row(&row, 1.0, k, None).unwrap();
            let mut ids: Vec<u32> = (0..row.len() as u32).collect();
            ids.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
            ids.truncate(k);
            prop_assert_eq!(s.top.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
            for w in s.top.windows(2) {
                prop_assert!(w[0].logprob >= w[1].logprob);
            }
        }

        #[test]
        fn rank_agrees_with_top_k(row in row_strategy(), pick in any::<prop::sample::Index>()) {
            let target = pick.index(row.len()) as u32;
            let s = summarize_row(&row, 1.0, row.len(), Some(target)).unwrap();
            let rank = s.target.unwrap().rank as usize;
            prop_assert_eq!(s.top[rank - 1].id, target);
            prop_assert_eq!(summarize_row(&row, 1.0, 1, Some(s.top[0].id)).unwrap().target.unwrap().rank, 1);
        }

        #[test]
        fn watched_tokens_agree_with_the_target_statistics(row in row_strategy(), t in 0.05f32..20.0, pick in any::<prop::sample::Index>()) {
            let id = pick.index(row.len()) as u32;
            let s = summarize_row(&row, t, 5, Some(id)).unwrap();
            let w = watch_stats(&row, &s, &[id]).unwrap();
            prop_assert_eq!(Some(w[0]), s.target);
        }

        #[test]
        fn log_softmax_agrees_with_logprobs_of(row in row_strategy(), t in 0.05f32..20.0) {
            let all = log_softmax(&row, t).unwrap();
            let ids: Vec<u32> = (0..row.len() as u32).collect();
            prop_assert_eq!(all, logprobs_of(&row, t, &ids).unwrap());
        }

        #[test]
        fn logprobs_match_reference(row in row_strategy(), t in 0.05f32..20.0) {
            let s = summarize_row(&row, t, 3, Some(0)).unwrap();
            let (p, _) = reference(&row, f64::from(t));
            let got = s.target.unwrap();
            prop_assert!((got.prob - p[0]).abs() < 1e-7);
            if p[0] > 1e-30 {
                prop_assert!((got.logprob - p[0].ln()).abs() < 1e-5);
            }
        }
    }
}
