//! A model measured against a base over a corpus, as llama-perplexity's `--kl-divergence`
//! measures it: per scored position the two negative log-likelihoods of the actual token, the
//! KL divergence KL(base ‖ model) in nats, Δp (the model's probability of the actual token
//! minus the base's) and whether the two most likely tokens agree; over the corpus the same
//! sums, statistics and three blocks of text (labels and number formats as it prints them).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt::Write as _;

/// One scored position compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// −ln p of the actual token under the model and under the base.
    pub nll: f64,
    pub nll_base: f64,
    /// KL(base ‖ model), nats.
    pub kld: f64,
    /// The two distributions' most likely tokens.
    pub top: u32,
    pub top_base: u32,
}

impl Position {
    /// p(actual token) under the model minus under the base.
    pub fn p_diff(&self) -> f64 {
        (-self.nll).exp() - (-self.nll_base).exp()
    }
}

/// KL(base ‖ model) in nats against a stored base row (`base(i)`: its ln p of token `i`, as
/// llama-perplexity dequantizes it), terms where the stored ln p is −16 nats or more (the
/// file holds nothing finer below), and the base's most likely token (the first of equal
/// ones).
pub fn kld_against_stored(model: &[f64], base: impl Fn(usize) -> f32) -> (f64, u32) {
    let (mut sum, mut top, mut best) = (0.0f64, 0u32, f32::NEG_INFINITY);
    for (i, &l) in model.iter().enumerate() {
        let b = base(i);
        if i == 0 || b > best {
            best = b;
            top = i as u32;
        }
        if b > -16.0 {
            let b = b as f64;
            sum += b.exp() * (b - l);
        }
    }
    (sum, top)
}

/// The first most likely token of a row of log-probabilities.
pub fn argmax(row: &[f64]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// The running sums of llama-perplexity's `kl_divergence_result`, and every position's KL
/// divergence and Δp for the percentiles.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    sum_nll: f64,
    sum_nll2: f64,
    sum_nll_base: f64,
    sum_nll_base2: f64,
    sum_nll_nll_base: f64,
    sum_kld: f64,
    sum_kld2: f64,
    sum_p_diff: f64,
    sum_p_diff2: f64,
    sum_p_diff4: f64,
    n_same_top: usize,
    pub count: usize,
    klds: Vec<f64>,
    p_diffs: Vec<f64>,
}

/// A mean and its standard error as llama-perplexity computes them (no error below 11 values).
fn mean_and_uncertainty(sum: f64, sum2: f64, count: usize) -> (f64, f64) {
    if count < 1 {
        return (0.0, 0.0);
    }
    let f = sum / count as f64;
    let df = sum2 / count as f64 - f * f;
    let df = if df > 0.0 && count > 10 {
        (df / (count - 1) as f64).sqrt()
    } else {
        0.0
    };
    (f, df)
}

fn covariance(a: f64, b: f64, ab: f64, count: usize) -> f64 {
    if count < 10 {
        return 0.0;
    }
    let n = count as f64;
    (ab / n - (a / n) * (b / n)) / (n - 1.0)
}

/// Linear interpolation between the sorted values around `fraction`.
fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if fraction <= 0.0 {
        return sorted[0];
    }
    if fraction >= 1.0 {
        return sorted[sorted.len() - 1];
    }
    let p = fraction * (sorted.len() - 1) as f64;
    let ip = p as usize;
    let p = p - ip as f64;
    (1.0 - p) * sorted[ip] + p * sorted[(ip + 1).min(sorted.len() - 1)]
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n.is_multiple_of(2) {
        0.5 * (sorted[n / 2] + sorted[n / 2 - 1])
    } else {
        sorted[n / 2]
    }
}

/// The figures of [`Totals`] (as the text blocks print them, and for JSON).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    pub count: usize,
    pub ppl: (f64, f64),
    pub ppl_base: (f64, f64),
    pub ln_ppl_ratio: (f64, f64),
    pub ppl_ratio: (f64, f64),
    pub ppl_diff: (f64, f64),
    pub ln_ppl_correlation: f64,
    pub kld: (f64, f64),
    pub kld_percentiles: Vec<(String, f64)>,
    pub p_diff: (f64, f64),
    pub p_diff_percentiles: Vec<(String, f64)>,
    pub rms_p_diff: (f64, f64),
    pub same_top: (f64, f64),
}

impl Totals {
    pub fn add(&mut self, p: &Position) {
        self.sum_nll += p.nll;
        self.sum_nll2 += p.nll * p.nll;
        self.sum_nll_base += p.nll_base;
        self.sum_nll_base2 += p.nll_base * p.nll_base;
        self.sum_nll_nll_base += p.nll * p.nll_base;
        self.sum_kld += p.kld;
        self.sum_kld2 += p.kld * p.kld;
        let d = p.p_diff();
        self.sum_p_diff += d;
        self.sum_p_diff2 += d * d;
        self.sum_p_diff4 += d * d * d * d;
        self.n_same_top += usize::from(p.top == p.top_base);
        self.count += 1;
        self.klds.push(p.kld);
        self.p_diffs.push(d);
    }

    fn ln_ppl(&self) -> ((f64, f64), (f64, f64), f64) {
        let q = mean_and_uncertainty(self.sum_nll, self.sum_nll2, self.count);
        let b = mean_and_uncertainty(self.sum_nll_base, self.sum_nll_base2, self.count);
        let cov = covariance(
            self.sum_nll,
            self.sum_nll_base,
            self.sum_nll_nll_base,
            self.count,
        );
        (q, b, cov)
    }

    fn rms_p_diff(&self) -> (f64, f64) {
        let mse = mean_and_uncertainty(self.sum_p_diff2, self.sum_p_diff4, self.count);
        let rms = mse.0.sqrt();
        (rms, 0.5 / rms * mse.1)
    }

    fn same_top(&self) -> (f64, f64) {
        let p = self.n_same_top as f64 / self.count as f64;
        (p, (p * (1.0 - p) / (self.count as f64 - 1.0)).sqrt())
    }

    /// llama-perplexity's line for a chunk (the running figures so far).
    pub fn chunk_line(&self, chunk: usize) -> String {
        let (q, b, cov) = self.ln_ppl();
        let ppl = q.0.exp();
        let ratio = (q.0 - b.0, (q.1 * q.1 + b.1 * b.1 - 2.0 * cov).sqrt());
        let kld = mean_and_uncertainty(self.sum_kld, self.sum_kld2, self.count);
        let rms = self.rms_p_diff();
        let top = self.same_top();
        format!(
            "{chunk:4}    {:9.4} ± {:9.4}    {:10.5} ± {:10.5}    {:10.5} ± {:10.5}    {:6.3} ± {:6.3} %    {:6.3} ± {:6.3} %",
            ppl,
            ppl * q.1,
            ratio.0,
            ratio.1,
            kld.0,
            kld.1,
            100.0 * rms.0,
            100.0 * rms.1,
            100.0 * top.0,
            100.0 * top.1
        )
    }

    /// The corpus's figures; `None` below 100 positions (llama-perplexity prints no
    /// statistics on so few).
    pub fn summary(&self) -> Option<Summary> {
        if self.count < 100 {
            return None;
        }
        let mut klds = self.klds.clone();
        let mut p_diffs = self.p_diffs.clone();
        klds.sort_by(f64::total_cmp);
        p_diffs.sort_by(f64::total_cmp);
        let (q, b, cov) = self.ln_ppl();
        let ppl = (q.0.exp(), q.0.exp() * q.1);
        let ppl_base = (b.0.exp(), b.0.exp() * b.1);
        let ln_ratio = (q.0 - b.0, (q.1 * q.1 + b.1 * b.1 - 2.0 * cov).sqrt());
        let ratio = ln_ratio.0.exp();
        let ppl_cov = ppl.0 * ppl_base.0 * cov;
        let named = |sorted: &[f64], points: &[(&str, f64)], med: &str| {
            let mut out = vec![("Maximum".to_owned(), sorted[sorted.len() - 1])];
            for &(name, f) in points {
                if name == med {
                    out.push(("Median".to_owned(), median(sorted)));
                } else {
                    out.push((name.to_owned(), percentile(sorted, f)));
                }
            }
            out.push(("Minimum".to_owned(), sorted[0]));
            out
        };
        let kld_points = [
            ("99.9%", 0.999),
            ("99.0%", 0.99),
            ("95.0%", 0.95),
            ("90.0%", 0.9),
            ("Median", 0.5),
            ("10.0%", 0.1),
            (" 5.0%", 0.05),
            (" 1.0%", 0.01),
            (" 0.1%", 0.001),
        ];
        let p_points = [
            ("99.9%", 0.999),
            ("99.0%", 0.99),
            ("95.0%", 0.95),
            ("90.0%", 0.9),
            ("75.0%", 0.75),
            ("Median", 0.5),
            ("25.0%", 0.25),
            ("10.0%", 0.1),
            (" 5.0%", 0.05),
            (" 1.0%", 0.01),
            (" 0.1%", 0.001),
        ];
        Some(Summary {
            count: self.count,
            ppl,
            ppl_base,
            ln_ppl_ratio: ln_ratio,
            ppl_ratio: (ratio, ratio * ln_ratio.1),
            ppl_diff: (
                ppl.0 - ppl_base.0,
                (ppl.1 * ppl.1 + ppl_base.1 * ppl_base.1 - 2.0 * ppl_cov).sqrt(),
            ),
            ln_ppl_correlation: cov / (q.1 * b.1),
            kld: mean_and_uncertainty(self.sum_kld, self.sum_kld2, self.count),
            kld_percentiles: named(&klds, &kld_points, "Median"),
            p_diff: mean_and_uncertainty(self.sum_p_diff, self.sum_p_diff2, self.count),
            p_diff_percentiles: named(&p_diffs, &p_points, "Median"),
            rms_p_diff: self.rms_p_diff(),
            same_top: self.same_top(),
        })
    }
}

/// The table's header line, as llama-perplexity prints it before the first chunk's line.
pub const TABLE_HEADER: &str = "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p";

impl Summary {
    /// llama-perplexity's three blocks of statistics.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = (|| -> std::fmt::Result {
            writeln!(s, "====== Perplexity statistics ======")?;
            writeln!(
                s,
                "Mean PPL(Q)                   : {:10.6} ± {:10.6}",
                self.ppl.0, self.ppl.1
            )?;
            writeln!(
                s,
                "Mean PPL(base)                : {:10.6} ± {:10.6}",
                self.ppl_base.0, self.ppl_base.1
            )?;
            writeln!(
                s,
                "Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2}%",
                100.0 * self.ln_ppl_correlation
            )?;
            writeln!(
                s,
                "Mean ln(PPL(Q)/PPL(base))     : {:10.6} ± {:10.6}",
                self.ln_ppl_ratio.0, self.ln_ppl_ratio.1
            )?;
            writeln!(
                s,
                "Mean PPL(Q)/PPL(base)         : {:10.6} ± {:10.6}",
                self.ppl_ratio.0, self.ppl_ratio.1
            )?;
            writeln!(
                s,
                "Mean PPL(Q)-PPL(base)         : {:10.6} ± {:10.6}",
                self.ppl_diff.0, self.ppl_diff.1
            )?;
            writeln!(s)?;
            writeln!(s, "====== KL divergence statistics ======")?;
            writeln!(s, "Mean    KLD: {:10.6} ± {:10.6}", self.kld.0, self.kld.1)?;
            for (name, v) in &self.kld_percentiles {
                let label = match name.as_str() {
                    "Maximum" | "Minimum" => format!("{name} KLD"),
                    "Median" => "Median  KLD".to_owned(),
                    _ => format!("{name}   KLD"),
                };
                writeln!(s, "{label}: {v:10.6}")?;
            }
            writeln!(s)?;
            writeln!(s, "====== Token probability statistics ======")?;
            writeln!(
                s,
                "Mean    Δp: {:6.3} ± {:5.3} %",
                100.0 * self.p_diff.0,
                100.0 * self.p_diff.1
            )?;
            for (name, v) in &self.p_diff_percentiles {
                let label = match name.as_str() {
                    "Maximum" | "Minimum" => format!("{name} Δp"),
                    "Median" => "Median  Δp".to_owned(),
                    _ => format!("{name}   Δp"),
                };
                writeln!(s, "{label}: {:6.3}%", 100.0 * v)?;
            }
            writeln!(
                s,
                "RMS Δp    : {:6.3} ± {:5.3} %",
                100.0 * self.rms_p_diff.0,
                100.0 * self.rms_p_diff.1
            )?;
            writeln!(
                s,
                "Same top p: {:6.3} ± {:5.3} %",
                100.0 * self.same_top.0,
                100.0 * self.same_top.1
            )
        })();
        s
    }
}

/// The `n` largest of what is offered, by a key (the earliest offered wins ties), in memory
/// that does not grow with the corpus.
#[derive(Debug, Clone)]
pub struct Largest<T> {
    n: usize,
    seq: usize,
    heap: BinaryHeap<Entry<T>>,
}

#[derive(Debug, Clone)]
struct Entry<T> {
    key: f64,
    seq: usize,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    /// The heap's top is the entry to drop first: the smallest key, the latest offered.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .total_cmp(&self.key)
            .then(self.seq.cmp(&other.seq))
    }
}

impl<T> Largest<T> {
    pub fn new(n: usize) -> Self {
        Self {
            n,
            seq: 0,
            heap: BinaryHeap::new(),
        }
    }

    pub fn offer(&mut self, key: f64, item: impl FnOnce() -> T) {
        if self.n == 0 || key.is_nan() {
            return;
        }
        let seq = self.seq;
        self.seq += 1;
        if self.heap.len() == self.n {
            let worst = self.heap.peek().expect("full");
            if key <= worst.key {
                return;
            }
            self.heap.pop();
        }
        self.heap.push(Entry {
            key,
            seq,
            item: item(),
        });
    }

    /// Largest first.
    pub fn into_sorted(self) -> Vec<(f64, T)> {
        let mut v: Vec<Entry<T>> = self.heap.into_vec();
        v.sort_by(|a, b| b.key.total_cmp(&a.key).then(a.seq.cmp(&b.seq)));
        v.into_iter().map(|e| (e.key, e.item)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::compare::divergences;
    use crate::analysis::stats::log_softmax;
    use proptest::prelude::*;

    fn position(seed: usize) -> Position {
        let a: Vec<f32> = (0..7)
            .map(|i| ((i * 7 + seed * 3) % 11) as f32 * 0.4)
            .collect();
        let b: Vec<f32> = (0..7).map(|i| ((i * 5 + seed) % 9) as f32 * 0.5).collect();
        let (la, lb) = (
            log_softmax(&a, 1.0).expect("test data"),
            log_softmax(&b, 1.0).expect("test data"),
        );
        let t = seed % 7;
        Position {
            nll: -lb[t],
            nll_base: -la[t],
            kld: divergences(&la, &lb).0 * std::f64::consts::LN_2,
            top: argmax(&lb),
            top_base: argmax(&la),
        }
    }

    #[test]
    fn summary_follows_the_definitions() {
        let mut t = Totals::default();
        let ps: Vec<Position> = (0..150).map(position).collect();
        assert!(t.summary().is_none());
        for p in &ps {
            t.add(p);
        }
        let s = t.summary().expect("test data");
        let n = ps.len() as f64;
        let mean_nll = ps.iter().map(|p| p.nll).sum::<f64>() / n;
        let mean_base = ps.iter().map(|p| p.nll_base).sum::<f64>() / n;
        assert!((s.ppl.0 - mean_nll.exp()).abs() < 1e-12);
        assert!((s.ppl_ratio.0 - (mean_nll - mean_base).exp()).abs() < 1e-12);
        let kld = ps.iter().map(|p| p.kld).sum::<f64>() / n;
        assert!((s.kld.0 - kld).abs() < 1e-12);
        let same = ps.iter().filter(|p| p.top == p.top_base).count() as f64 / n;
        assert_eq!(s.same_top.0, same);
        let max = ps.iter().map(|p| p.kld).fold(f64::MIN, f64::max);
        assert_eq!(s.kld_percentiles[0], ("Maximum".into(), max));
        let text = s.text();
        for label in [
            "Mean PPL(Q)                   :",
            "Mean    KLD:",
            "99.9%   KLD:",
            "Median  KLD:",
            " 0.1%   KLD:",
            "Minimum KLD:",
            "RMS Δp    :",
            "Same top p:",
            "75.0%   Δp:",
        ] {
            assert!(text.contains(label), "{label} in\n{text}");
        }
    }

    #[test]
    fn chunk_line_has_llama_perplexitys_columns() {
        let mut t = Totals::default();
        for i in 0..20 {
            t.add(&position(i));
        }
        let line = t.chunk_line(3);
        assert!(line.starts_with("   3    "), "{line:?}");
        assert_eq!(line.matches('±').count(), 5);
        assert_eq!(line.matches('%').count(), 2);
    }

    #[test]
    fn stored_kld_of_a_row_against_itself_is_near_zero() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 23) as f32 * 0.3).collect();
        let exact = log_softmax(&logits, 1.0).expect("test data");
        let mut row = vec![0u16; crate::analysis::logits_file::row_len(50)];
        crate::analysis::logits_file::quantize_row(&logits, &mut row);
        let stored = crate::analysis::logits_file::StoredRow::parse(&row, 50);
        let (kld, top) = kld_against_stored(&exact, |i| stored.logprob(i));
        assert!(kld.abs() < 1e-3, "{kld}");
        assert_eq!(top, argmax(&exact));
    }

    proptest! {
        #[test]
        fn largest_keeps_the_n_largest(keys in proptest::collection::vec(-5.0f64..5.0, 0..60), n in 0usize..8) {
            let mut l = Largest::new(n);
            for (i, &k) in keys.iter().enumerate() {
                l.offer(k, || i);
            }
            let got: Vec<f64> = l.into_sorted().into_iter().map(|(k, _)| k).collect();
            let mut want = keys.clone();
            want.sort_by(|a, b| b.total_cmp(a));
            want.truncate(n);
            prop_assert_eq!(got, want);
        }
    }
}
