//! Attention probabilities as data: each (layer, head, position) row digested as it is read
//! (its largest weights, its sum, its weight on future and out-of-window positions, and the
//! three shares that find the usual heads), the whole rows of the positions asked for, and
//! the summary of attention sinks, previous-token and induction-like heads.
//!
//! A row is llama.cpp's softmax of KQ for one query position: one weight per KV cell. The
//! cells of a text decoded at once into an empty cache are its positions in order; cells
//! past the text are padding the mask hides. Nothing here keeps layers × heads × n × n
//! numbers: whole rows exist only for the positions asked for.

use serde::Serialize;

/// The shape of a model's attention as llama.cpp computes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttentionFacts {
    pub n_layer: usize,
    /// Query heads per layer (each a row); grouped-query heads share a KV head.
    pub n_head: usize,
    /// KV heads: query head h reads KV head h / (n_head / n_head_kv).
    pub n_head_kv: usize,
    /// Per layer, the sliding window (how many positions a query sees, itself included);
    /// `None` where the layer sees every earlier position.
    pub windows: Vec<Option<u32>>,
}

impl AttentionFacts {
    /// The KV head query head `head` reads.
    pub fn kv_head(&self, head: usize) -> usize {
        let group = (self.n_head / self.n_head_kv.max(1)).max(1);
        head / group
    }

    pub fn window(&self, layer: usize) -> Option<u32> {
        self.windows.get(layer).copied().flatten()
    }

    /// The first position a query at `position` may see on `layer`.
    pub fn first_visible(&self, layer: usize, position: usize) -> usize {
        match self.window(layer) {
            Some(w) => (position + 1).saturating_sub(w as usize),
            None => 0,
        }
    }
}

/// One attention row, digested.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadRow {
    /// The largest weights over positions 0..=p, best first: (position, weight).
    pub top: Vec<(u32, f32)>,
    /// The sum of every cell's weight (1 up to rounding).
    pub sum: f64,
    /// Weight on cells after the query (later positions and padding cells): 0 when masked.
    pub future: f64,
    /// Weight on positions the layer's sliding window hides: 0 when masked.
    pub outside_window: f64,
    /// Weight on position 0.
    pub first: f32,
    /// Weight on the previous position (0 at position 0).
    pub previous: f32,
    /// Weight on positions right after an earlier occurrence of the query's own token (what
    /// an induction head reads: the token that followed last time); `None` when the token
    /// did not occur before.
    pub induction: Option<f32>,
}

/// Digest the row of the query at `position` (`cells[j]` = weight on cell j). `tokens` are
/// the text's tokens (cell j holds position j); `window` the layer's sliding window.
pub fn digest(
    cells: &[f32],
    position: usize,
    tokens: &[u32],
    window: Option<u32>,
    k: usize,
) -> HeadRow {
    let visible = &cells[..cells.len().min(position + 1)];
    let sum = cells.iter().map(|&w| f64::from(w)).sum();
    let future = cells.iter().skip(position + 1).map(|&w| f64::from(w)).sum();
    let first_seen = window.map_or(0, |w| (position + 1).saturating_sub(w as usize));
    let outside_window = visible[..first_seen.min(visible.len())]
        .iter()
        .map(|&w| f64::from(w))
        .sum();
    let at = |j: usize| visible.get(j).copied().unwrap_or(0.0);
    let own = tokens.get(position).copied();
    let mut after_earlier = (1..=position.min(visible.len().saturating_sub(1)))
        .filter(|&j| j - 1 < position && tokens.get(j - 1).copied() == own && own.is_some())
        .peekable();
    let induction = after_earlier
        .peek()
        .is_some()
        .then(|| after_earlier.map(at).sum());
    HeadRow {
        top: top_positions(visible, k),
        sum,
        future,
        outside_window,
        first: at(0),
        previous: position.checked_sub(1).map_or(0.0, at),
        induction,
    }
}

/// The `k` largest weights of `row` with their positions, best first (ties: earlier first).
/// One pass keeping the best `k` so far: rows are digested by the hundred thousand.
pub fn top_positions(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let better = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if k == 0 {
        return Vec::new();
    }
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (j, &w) in row.iter().enumerate() {
        let item = (j as u32, w);
        if best.len() == k && better(&item, &best[k - 1]).is_ge() {
            continue;
        }
        let at = best.partition_point(|b| better(b, &item).is_lt());
        best.insert(at, item);
        best.truncate(k);
    }
    best
}

/// The attention of a text: every row digested, and the whole rows of some positions.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionMap {
    pub facts: AttentionFacts,
    /// The text's tokens the map covers (its first `tokens.len()`).
    pub tokens: Vec<u32>,
    /// `rows[(layer * n + position) * n_head + head]`.
    pub rows: Vec<HeadRow>,
    /// Whole rows over the text's positions, `[(layer * n_head + head) * n + j]`, of the
    /// positions asked for.
    pub full: std::collections::BTreeMap<usize, Vec<f32>>,
}

impl AttentionMap {
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn row(&self, layer: usize, position: usize, head: usize) -> Option<&HeadRow> {
        let (n, h) = (self.len(), self.facts.n_head);
        (layer < self.facts.n_layer && position < n && head < h)
            .then(|| &self.rows[(layer * n + position) * h + head])
    }

    /// The whole row of (`layer`, `head`) at `position` over positions 0..n, if kept.
    pub fn full_row(&self, layer: usize, position: usize, head: usize) -> Option<&[f32]> {
        let n = self.len();
        let rows = self.full.get(&position)?;
        let at = (layer * self.facts.n_head + head) * n;
        rows.get(at..at + n)
    }

    /// The usual suspects over the whole text (see [`suspects`]).
    pub fn suspects(&self, min_share: f64) -> Vec<Suspect> {
        suspects(self, min_share)
    }
}

/// What a head mostly attends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Habit {
    /// The first token (an attention sink).
    First,
    /// The previous token.
    Previous,
    /// The token after an earlier occurrence of the current one (induction-like).
    Induction,
}

impl Habit {
    /// A word for a narrow panel.
    pub fn short(self) -> &'static str {
        match self {
            Habit::First => "sink",
            Habit::Previous => "previous",
            Habit::Induction => "induction",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Habit::First => "first token",
            Habit::Previous => "previous token",
            Habit::Induction => "induction-like",
        }
    }
}

/// A head with a habit: its mean share of attention on what the habit names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suspect {
    pub habit: Habit,
    pub layer: usize,
    pub head: usize,
    /// Mean weight over the positions the habit is measured on.
    pub share: f64,
    /// How many positions that is.
    pub positions: usize,
}

/// Heads whose mean share on the first token (over positions ≥ 1), the previous token
/// (positions ≥ 2, so it is not the first) or induction targets (positions whose token
/// occurred before) is at least `min_share`; strongest first within each habit.
pub fn suspects(map: &AttentionMap, min_share: f64) -> Vec<Suspect> {
    let n = map.len();
    let mut out = Vec::new();
    for habit in [Habit::First, Habit::Previous, Habit::Induction] {
        let mut found = Vec::new();
        for layer in 0..map.facts.n_layer {
            for head in 0..map.facts.n_head {
                let values: Vec<f64> = (0..n)
                    .filter_map(|p| {
                        let r = map.row(layer, p, head)?;
                        match habit {
                            Habit::First => (p >= 1).then_some(r.first),
                            Habit::Previous => (p >= 2).then_some(r.previous),
                            Habit::Induction => r.induction,
                        }
                    })
                    .map(f64::from)
                    .collect();
                if values.is_empty() {
                    continue;
                }
                let share = values.iter().sum::<f64>() / values.len() as f64;
                if share >= min_share {
                    found.push(Suspect {
                        habit,
                        layer,
                        head,
                        share,
                        positions: values.len(),
                    });
                }
            }
        }
        found.sort_by(|a, b| b.share.total_cmp(&a.share));
        out.extend(found);
    }
    out
}

/// Whether a text's attention could be read, and what it covers (`score --attention`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttentionStatus {
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The first this many positions have attention (one decode of at most that many).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positions: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facts: Option<AttentionFacts>,
}

impl AttentionStatus {
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            available: false,
            reason: Some(reason.into()),
            positions: None,
            facts: None,
        }
    }
}

/// Each position's layers for a report (`None` where attention does not reach).
pub type PositionLayers = Vec<Option<Vec<LayerAttention>>>;

/// One layer's attention at one position, for a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerAttention {
    pub layer: usize,
    /// The layer's sliding window, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
    pub heads: Vec<HeadAttention>,
}

/// One head's row at one position: its largest weights, and the whole row when asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadAttention {
    pub top: Vec<Attended>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<Vec<f32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Attended {
    pub position: u32,
    pub weight: f32,
}

impl AttentionMap {
    /// Every layer's heads at `position`: the top weights, and the whole row over positions
    /// 0..=position where kept.
    pub fn layers_at(&self, position: usize) -> Option<Vec<LayerAttention>> {
        (position < self.len()).then(|| {
            (0..self.facts.n_layer)
                .map(|layer| LayerAttention {
                    layer,
                    window: self.facts.window(layer),
                    heads: (0..self.facts.n_head)
                        .map(|head| HeadAttention {
                            top: self
                                .row(layer, position, head)
                                .map(|r| {
                                    r.top
                                        .iter()
                                        .map(|&(position, weight)| Attended { position, weight })
                                        .collect()
                                })
                                .unwrap_or_default(),
                            row: self
                                .full_row(layer, position, head)
                                .map(|r| r[..=position].to_vec()),
                        })
                        .collect(),
                })
                .collect()
        })
    }

    /// What the explorer's panel shows of `position`: the digested rows of every head, the
    /// whole rows (if kept) and the text's suspects.
    pub fn view(&self, position: usize, min_share: f64) -> Option<AttentionView> {
        let h = self.facts.n_head;
        let cells = (0..self.facts.n_layer)
            .flat_map(|l| (0..h).map(move |head| (l, head)))
            .map(|(l, head)| self.row(l, position, head).cloned())
            .collect::<Option<Vec<_>>>()?;
        Some(AttentionView {
            position,
            facts: self.facts.clone(),
            n_tokens: self.len(),
            cells,
            full: self.full.get(&position).cloned(),
            suspects: self.suspects(min_share),
        })
    }
}

/// The attention panel's data for one position.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionView {
    pub position: usize,
    pub facts: AttentionFacts,
    /// Tokens covered (the rows are over positions 0..n_tokens).
    pub n_tokens: usize,
    /// `cells[layer * n_head + head]`.
    pub cells: Vec<HeadRow>,
    /// `full[(layer * n_head + head) * n_tokens + j]`, when kept.
    pub full: Option<Vec<f32>>,
    pub suspects: Vec<Suspect>,
}

impl AttentionView {
    pub fn cell(&self, layer: usize, head: usize) -> Option<&HeadRow> {
        (head < self.facts.n_head)
            .then(|| self.cells.get(layer * self.facts.n_head + head))
            .flatten()
    }

    /// The whole row of one head over positions 0..=position.
    pub fn head_row(&self, layer: usize, head: usize) -> Option<&[f32]> {
        let n = self.n_tokens;
        let at = (layer * self.facts.n_head + head) * n;
        self.full.as_ref()?.get(at..at + self.position + 1)
    }

    /// The mean over a layer's heads, over positions 0..=position.
    pub fn layer_mean(&self, layer: usize) -> Option<Vec<f32>> {
        let h = self.facts.n_head;
        let mut mean = vec![0f64; self.position + 1];
        for head in 0..h {
            for (m, &w) in mean.iter_mut().zip(self.head_row(layer, head)?) {
                *m += f64::from(w);
            }
        }
        Some(mean.into_iter().map(|m| (m / h as f64) as f32).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_row_is_digested_into_its_top_sum_and_masked_mass() {
        // Query at position 2 of 4 tokens, 6 cells (2 padding).
        let cells = [0.5, 0.2, 0.3, 0.0, 0.0, 0.0];
        let r = digest(&cells, 2, &[7, 8, 9, 7], None, 2);
        assert_eq!(r.top, vec![(0, 0.5), (2, 0.3)]);
        assert!((r.sum - 1.0).abs() < 1e-7);
        assert_eq!(r.future, 0.0);
        assert_eq!(r.first, 0.5);
        assert_eq!(r.previous, 0.2);
        assert_eq!(r.induction, None, "token 9 did not occur before");
        // Weight that leaked to the future is counted, not hidden.
        let leaky = digest(&[0.5, 0.25, 0.25, 0.0], 1, &[1, 2, 3], None, 5);
        assert_eq!(leaky.future, 0.25);
        assert_eq!(leaky.top.len(), 2, "only positions up to the query");
    }

    #[test]
    fn the_top_positions_are_those_of_a_full_sort() {
        let row: Vec<f32> = (0..200u32)
            .map(|i| ((i * 7919) % 97) as f32 / 97.0)
            .collect();
        for k in [1, 3, 10, 200, 300] {
            let mut all: Vec<(u32, f32)> = row
                .iter()
                .enumerate()
                .map(|(j, &w)| (j as u32, w))
                .collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(k);
            assert_eq!(top_positions(&row, k), all, "k = {k}");
        }
        assert!(top_positions(&row, 0).is_empty());
    }

    #[test]
    fn induction_reads_the_tokens_after_earlier_occurrences() {
        // A B C A B: the query at 3 (A) reads position 1 (B, after the first A).
        let tokens = [1, 2, 3, 1, 2];
        let cells = [0.1, 0.6, 0.1, 0.2, 0.0];
        let r = digest(&cells, 3, &tokens, None, 1);
        assert_eq!(r.induction, Some(0.6));
        // At position 4 (B): after the earlier B is position 2.
        let r = digest(&[0.1, 0.1, 0.7, 0.05, 0.05], 4, &tokens, None, 1);
        assert_eq!(r.induction, Some(0.7));
    }

    #[test]
    fn the_window_hides_positions_before_it() {
        let cells = [0.1, 0.2, 0.3, 0.4];
        let r = digest(&cells, 3, &[1, 2, 3, 4], Some(2), 4);
        assert!((r.outside_window - 0.3).abs() < 1e-7, "positions 0 and 1");
        let facts = AttentionFacts {
            n_layer: 2,
            n_head: 4,
            n_head_kv: 1,
            windows: vec![Some(2), None],
        };
        assert_eq!(facts.first_visible(0, 3), 2);
        assert_eq!(facts.first_visible(1, 3), 0);
        assert_eq!(facts.kv_head(3), 0);
    }

    fn map_of(rows: &[[f32; 3]]) -> AttentionMap {
        // One layer, one head, 3 tokens; rows[p] the row of position p, all kept.
        let tokens = vec![5, 6, 7];
        let facts = AttentionFacts {
            n_layer: 1,
            n_head: 1,
            n_head_kv: 1,
            windows: vec![None],
        };
        AttentionMap {
            rows: rows
                .iter()
                .enumerate()
                .map(|(p, r)| digest(r, p, &tokens, None, 3))
                .collect(),
            full: rows
                .iter()
                .enumerate()
                .map(|(p, r)| (p, r.to_vec()))
                .collect(),
            tokens,
            facts,
        }
    }

    #[test]
    fn a_sink_head_is_found_and_the_means_are_over_heads() {
        let map = map_of(&[[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.8, 0.1, 0.1]]);
        let s = map.suspects(0.5);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].habit, Habit::First);
        assert!((s[0].share - 0.85).abs() < 1e-6);
        assert_eq!(s[0].positions, 2);
        let view = map.view(2, 0.5).unwrap();
        assert_eq!(view.layer_mean(0), Some(vec![0.8, 0.1, 0.1]));
        assert_eq!(view.head_row(0, 0), Some(&[0.8, 0.1, 0.1][..]));
        assert_eq!(view.suspects, s);
        let layers = map.layers_at(1).unwrap();
        assert_eq!(layers[0].heads[0].row.as_deref(), Some(&[0.9, 0.1][..]));
        assert_eq!(
            layers[0].heads[0].top[0],
            Attended {
                position: 0,
                weight: 0.9
            }
        );
        assert_eq!(map.full_row(0, 1, 0), Some(&[0.9, 0.1, 0.0][..]));
        assert_eq!(map.row(0, 3, 0), None);
    }

    #[test]
    fn a_previous_token_head_is_not_mistaken_for_a_sink() {
        let map = map_of(&[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
        let s = map.suspects(0.9);
        let habits: Vec<_> = s.iter().map(|s| s.habit).collect();
        assert_eq!(habits, vec![Habit::Previous]);
    }
}
