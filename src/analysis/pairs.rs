//! Minimal pairs: two sentences, which one the model prefers, and where the preference is
//! made. The tokens are aligned by a diff (shared tokens side by side, the differing stretch
//! marked); each aligned row carries Δ = logprob under B − logprob under A of its tokens, so
//! the rows sum to the difference of the totals. Pure: built from token ids, logprobs and
//! the vocabulary.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analysis::stats::{perplexity, totals, RowSummary};
use crate::analysis::vocab::Vocab;

/// One row of the alignment: a token of A, of B, or of both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aligned {
    pub a: Option<usize>,
    pub b: Option<usize>,
    /// The row is in a stretch where the two sentences differ.
    pub differs: bool,
}

/// Align two token sequences by a diff (Myers): equal runs side by side; in a replaced stretch
/// tokens are paired in order, the longer side's rest alone.
pub fn align(a: &[u32], b: &[u32]) -> Vec<Aligned> {
    use similar::{capture_diff_slices, Algorithm, DiffOp};
    let mut out = Vec::new();
    for op in capture_diff_slices(Algorithm::Myers, a, b) {
        match op {
            DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => out.extend((0..len).map(|k| Aligned {
                a: Some(old_index + k),
                b: Some(new_index + k),
                differs: false,
            })),
            DiffOp::Delete {
                old_index, old_len, ..
            } => out.extend((0..old_len).map(|k| Aligned {
                a: Some(old_index + k),
                b: None,
                differs: true,
            })),
            DiffOp::Insert {
                new_index, new_len, ..
            } => out.extend((0..new_len).map(|k| Aligned {
                a: None,
                b: Some(new_index + k),
                differs: true,
            })),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => out.extend((0..old_len.max(new_len)).map(|k| Aligned {
                a: (k < old_len).then_some(old_index + k),
                b: (k < new_len).then_some(new_index + k),
                differs: true,
            })),
        }
    }
    out
}

/// How a sentence's score is reduced (minicons' two reductions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reduction {
    /// The total log-probability (default).
    #[default]
    Sum,
    /// The mean log-probability per scored token.
    Mean,
}

/// One sentence of a pair, as scored.
#[derive(Debug, Clone, PartialEq)]
pub struct Side<'a> {
    pub text: &'a str,
    pub tokens: &'a [u32],
    /// `rows[i]` is p_i (row j − 1 scores token j).
    pub rows: &'a [RowSummary],
}

impl Side<'_> {
    /// ln p of token j (`None` for a token nothing predicts).
    pub fn logprob(&self, j: usize) -> Option<f64> {
        j.checked_sub(1)
            .and_then(|i| self.rows.get(i))
            .and_then(|r| r.target)
            .map(|t| t.logprob)
    }
}

/// One aligned row as the JSON writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlignedReport {
    pub a: Option<usize>,
    pub b: Option<usize>,
    pub token_a: Option<String>,
    pub token_b: Option<String>,
    pub logprob_a: Option<f64>,
    pub logprob_b: Option<f64>,
    /// logprob_b − logprob_a, a token missing or unscored counting 0: the rows sum to
    /// total_b − total_a.
    pub delta: f64,
    pub differs: bool,
}

/// Where the preference is made: the first aligned row whose |Δ| exceeds the threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deciding {
    pub row: usize,
    pub a: Option<usize>,
    pub b: Option<usize>,
    pub delta: f64,
    pub threshold: f64,
}

/// One line of `logitscope pairs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairReport {
    pub a: String,
    pub b: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    pub total_a: f64,
    pub total_b: f64,
    pub n_tokens_a: usize,
    pub n_tokens_b: usize,
    pub n_scored_a: usize,
    pub n_scored_b: usize,
    pub mean_a: Option<f64>,
    pub mean_b: Option<f64>,
    pub perplexity_a: Option<f64>,
    pub perplexity_b: Option<f64>,
    pub reduction: Reduction,
    /// B − A in the reduction: negative when A is preferred.
    pub delta: f64,
    /// `"a"`, `"b"` or `"tie"`.
    pub prefers: &'static str,
    /// How many times likelier the preferred sentence is (exp |Δ| with the sum; per token
    /// with the mean).
    pub ratio: f64,
    pub deciding: Option<Deciding>,
    pub aligned: Vec<AlignedReport>,
}

/// Compare two scored sentences.
pub fn compare(
    vocab: &Vocab,
    a: &Side<'_>,
    b: &Side<'_>,
    reduction: Reduction,
    threshold: f64,
    labels: Vec<String>,
) -> PairReport {
    let (total_a, n_scored_a) = totals(a.rows);
    let (total_b, n_scored_b) = totals(b.rows);
    let mean = |t: f64, n: usize| (n > 0).then(|| t / n as f64);
    let (mean_a, mean_b) = (mean(total_a, n_scored_a), mean(total_b, n_scored_b));
    let (score_a, score_b) = match reduction {
        Reduction::Sum => (total_a, total_b),
        Reduction::Mean => (mean_a.unwrap_or(0.0), mean_b.unwrap_or(0.0)),
    };
    let delta = score_b - score_a;
    let prefers = if score_a > score_b {
        "a"
    } else if score_b > score_a {
        "b"
    } else {
        "tie"
    };
    let aligned: Vec<AlignedReport> = align(a.tokens, b.tokens)
        .into_iter()
        .map(|row| {
            let la = row.a.and_then(|j| a.logprob(j));
            let lb = row.b.and_then(|j| b.logprob(j));
            AlignedReport {
                a: row.a,
                b: row.b,
                token_a: row.a.map(|j| vocab.text(a.tokens[j])),
                token_b: row.b.map(|j| vocab.text(b.tokens[j])),
                logprob_a: la,
                logprob_b: lb,
                delta: lb.unwrap_or(0.0) - la.unwrap_or(0.0),
                differs: row.differs,
            }
        })
        .collect();
    let deciding = aligned
        .iter()
        .position(|r| r.delta.abs() > threshold)
        .map(|row| Deciding {
            row,
            a: aligned[row].a,
            b: aligned[row].b,
            delta: aligned[row].delta,
            threshold,
        });
    PairReport {
        a: a.text.to_owned(),
        b: b.text.to_owned(),
        labels,
        total_a,
        total_b,
        n_tokens_a: a.tokens.len(),
        n_tokens_b: b.tokens.len(),
        n_scored_a,
        n_scored_b,
        mean_a,
        mean_b,
        perplexity_a: perplexity(total_a, n_scored_a),
        perplexity_b: perplexity(total_b, n_scored_b),
        reduction,
        delta,
        prefers,
        ratio: delta.abs().exp(),
        deciding,
        aligned,
    }
}

/// Accuracy over pairs: how often A (the good sentence) is preferred.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Accuracy {
    pub pairs: usize,
    pub correct: usize,
    pub ties: usize,
    pub accuracy: Option<f64>,
}

impl Accuracy {
    fn add(&mut self, prefers: &str) {
        self.pairs += 1;
        self.correct += usize::from(prefers == "a");
        self.ties += usize::from(prefers == "tie");
        self.accuracy = Some(self.correct as f64 / self.pairs as f64);
    }
}

/// The final line of `logitscope pairs`: accuracy overall and per label (the first label
/// column), as BLiMP's table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub summary: bool,
    pub reduction: Reduction,
    #[serde(flatten)]
    pub overall: Accuracy,
    /// Lines that could not be scored (not counted above).
    pub failed: usize,
    pub by_label: BTreeMap<String, Accuracy>,
}

impl Summary {
    pub fn new(reduction: Reduction) -> Self {
        Self {
            summary: true,
            reduction,
            ..Self::default()
        }
    }

    pub fn add(&mut self, report: &PairReport) {
        self.overall.add(report.prefers);
        if let Some(label) = report.labels.first() {
            self.by_label
                .entry(label.clone())
                .or_default()
                .add(report.prefers);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::stats::TargetStats;

    /// Rows scoring each token after the first with the given logprobs.
    fn rows(tokens: &[u32], lps: &[f64]) -> Vec<RowSummary> {
        (0..tokens.len())
            .map(|i| RowSummary {
                entropy_bits: 1.0,
                max_logit: 0.0,
                ln_sum: 0.0,
                inv_temp: 1.0,
                top: Vec::new(),
                target: tokens.get(i + 1).map(|&id| TargetStats {
                    id,
                    logprob: lps[i],
                    prob: lps[i].exp(),
                    rank: 1,
                }),
                watched: Vec::new(),
            })
            .collect()
    }

    fn marked(rows: &[Aligned]) -> (Vec<usize>, Vec<usize>) {
        let a = rows
            .iter()
            .filter(|r| r.differs)
            .filter_map(|r| r.a)
            .collect();
        let b = rows
            .iter()
            .filter(|r| r.differs)
            .filter_map(|r| r.b)
            .collect();
        (a, b)
    }

    #[test]
    fn one_word_changed_marks_that_word() {
        // The keys ... are / is on the table
        let rows = align(&[1, 2, 3, 4, 5, 6, 7], &[1, 2, 3, 4, 9, 6, 7]);
        assert_eq!(marked(&rows), (vec![4], vec![4]));
        assert_eq!(rows.len(), 7);
        assert_eq!(
            rows[4],
            Aligned {
                a: Some(4),
                b: Some(4),
                differs: true
            }
        );
    }

    #[test]
    fn an_inserted_word_is_marked_on_its_side_only() {
        let rows = align(&[1, 2, 3, 4], &[1, 2, 8, 3, 4]);
        assert_eq!(marked(&rows), (vec![], vec![2]));
        assert_eq!(
            rows[2],
            Aligned {
                a: None,
                b: Some(2),
                differs: true
            }
        );
        // The shared tail stays side by side.
        assert_eq!(
            rows[3],
            Aligned {
                a: Some(2),
                b: Some(3),
                differs: false
            }
        );
    }

    #[test]
    fn a_reordering_marks_the_moved_tokens() {
        // the cat chased the dog / the dog chased the cat
        let rows = align(&[1, 2, 3, 1, 4], &[1, 4, 3, 1, 2]);
        assert_eq!(marked(&rows), (vec![1, 4], vec![1, 4]));
        // Adjacent words swapped: one of them is the diff's common part, the other moved.
        let rows = align(&[1, 2, 3, 4], &[1, 3, 2, 4]);
        let (a, b) = marked(&rows);
        assert_eq!((a.len(), b.len()), (1, 1));
        assert_eq!(a, b.iter().map(|&j| 3 - j).collect::<Vec<_>>());
    }

    #[test]
    fn row_deltas_sum_to_the_difference_of_the_totals() {
        let vocab = Vocab::from_bytes(
            (0..10u8)
                .map(|i| vec![b'a' + i])
                .collect::<Vec<_>>()
                .iter()
                .map(|v| v.as_slice()),
        );
        let ta = [1, 2, 3, 4, 5];
        let tb = [1, 2, 3, 9, 5];
        let ra = rows(&ta, &[-1.0, -2.0, -0.5, -3.0]);
        let rb = rows(&tb, &[-1.0, -2.0, -4.0, -1.0]);
        let a = Side {
            text: "A",
            tokens: &ta,
            rows: &ra,
        };
        let b = Side {
            text: "B",
            tokens: &tb,
            rows: &rb,
        };
        let r = compare(
            &vocab,
            &a,
            &b,
            Reduction::Sum,
            1.0,
            vec!["agreement".into()],
        );
        assert_eq!((r.total_a, r.total_b), (-6.5, -8.0));
        assert_eq!(r.delta, -1.5);
        assert_eq!(r.prefers, "a");
        assert!((r.ratio - 1.5f64.exp()).abs() < 1e-12);
        let sum: f64 = r.aligned.iter().map(|x| x.delta).sum();
        assert!((sum - r.delta).abs() < 1e-12);
        // The first token is unscored on both sides (Δ 0); the changed token decides.
        let d = r.deciding.clone().expect("decided");
        assert_eq!((d.row, d.a, d.b, d.delta), (3, Some(3), Some(3), -3.5));
        let mean = compare(&vocab, &a, &b, Reduction::Mean, 1.0, Vec::new());
        assert_eq!(mean.delta, -8.0 / 4.0 + 6.5 / 4.0);
        let mut s = Summary::new(Reduction::Sum);
        s.add(&r);
        let mut flipped = r.clone();
        flipped.prefers = "b";
        s.add(&flipped);
        assert_eq!((s.overall.pairs, s.overall.correct), (2, 1));
        assert_eq!(s.by_label["agreement"].accuracy, Some(0.5));
    }
}
