//! Causal tracing (activation patching) as data: which activations of the clean text are put
//! into the corrupt text's run, how the patched runs are grouped into decodes, and the grid
//! of results with the literature's normalisation
//! (p_patched − p_corrupt) / (p_clean − p_corrupt).
//!
//! Patching position i leaves every position before i as the corrupt run computed it, so a
//! patched run only needs decoding from i on (its KV cache up to i is the corrupt run's):
//! [`plan_steps`] groups the runs by where their decode starts, under the rules that keep a
//! decode's numbers those of the whole text: every member of a decode decodes the same number
//! of tokens, at least a few, and a decode is never tiny — the model layer's rules, passed in
//! as [`Limits`]).

use serde::Serialize;

use crate::analysis::top::TopLogprob;

/// How runs may share decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most runs in one decode.
    pub width: usize,
    /// Most rows of a decode shared by several runs (one run may have more).
    pub max_tokens: usize,
    /// Fewest tokens one run decodes when it shares a decode.
    pub min_member: usize,
    /// Fewest rows of a shared decode.
    pub min_decode: usize,
}

/// Which activation is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum What {
    /// The residual stream after the layer (`l_out-ℓ`).
    Resid,
    /// What the layer's attention adds to the stream.
    Attn,
    /// What the layer's MLP adds.
    Mlp,
}

impl What {
    pub const ALL: [What; 3] = [What::Resid, What::Attn, What::Mlp];

    pub fn name(self) -> &'static str {
        match self {
            What::Resid => "resid",
            What::Attn => "attn",
            What::Mlp => "mlp",
        }
    }

    /// `resid`, `attn` or `mlp` (also `residual`, `ffn`).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "resid" | "residual" | "l_out" => Ok(What::Resid),
            "attn" | "attention" => Ok(What::Attn),
            "mlp" | "ffn" => Ok(What::Mlp),
            other => Err(format!(
                "'{other}' is not something to patch: resid, attn or mlp"
            )),
        }
    }
}

/// `--layers`: `3`, `0-5`, `0-5,20,28-29` (inclusive ranges), each below `n_layer`; sorted,
/// without repeats.
pub fn parse_layers(spec: &str, n_layer: usize) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("'{part}' is not a layer or a range of layers (0-5)"))
        };
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if a > b || b >= n_layer {
            return Err(format!(
                "'{part}': the model's layers are 0 to {}",
                n_layer.saturating_sub(1)
            ));
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        return Err("no layers named".into());
    }
    Ok(out)
}

/// How the corrupt text's positions meet the clean text's: their common first tokens (the
/// BOS, a shared opening) position for position, the rest aligned from the ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Alignment {
    /// Tokens of the clean and the corrupt text.
    pub n_clean: usize,
    pub n_corrupt: usize,
    /// Tokens the two texts begin with in common.
    pub prefix: usize,
}

impl Alignment {
    pub fn of(clean: &[u32], corrupt: &[u32]) -> Self {
        Self {
            n_clean: clean.len(),
            n_corrupt: corrupt.len(),
            prefix: clean
                .iter()
                .zip(corrupt)
                .take_while(|(a, b)| a == b)
                .count(),
        }
    }

    /// The clean position patched into corrupt position `i`: the same position within the
    /// common prefix (and everywhere when the lengths agree), else counted from the end;
    /// `None` where the corrupt text is longer and the clean one has nothing there.
    pub fn clean_position(&self, i: usize) -> Option<usize> {
        if i >= self.n_corrupt {
            return None;
        }
        if i < self.prefix || self.same_length() {
            return Some(i);
        }
        let j = self.n_clean.checked_sub(self.n_corrupt - i)?;
        (j >= self.prefix).then_some(j)
    }

    pub fn same_length(&self) -> bool {
        self.n_clean == self.n_corrupt
    }

    /// In words, for the report: `None` when the lengths agree.
    pub fn note(&self) -> Option<String> {
        (!self.same_length()).then(|| {
            let patched = (0..self.n_corrupt)
                .filter(|&i| self.clean_position(i).is_some())
                .count();
            format!(
                "the texts have {} and {} tokens: their first {} tokens are aligned position for position, the rest from their ends (corrupt position i takes clean position i {} {}); {} of the corrupt text's {} positions are patched",
                self.n_clean,
                self.n_corrupt,
                self.prefix,
                if self.n_clean >= self.n_corrupt { "+" } else { "−" },
                self.n_clean.abs_diff(self.n_corrupt),
                patched,
                self.n_corrupt
            )
        })
    }
}

/// Corrupt positions whose token differs from the clean token aligned with it (or that have
/// none).
pub fn differing(clean: &[u32], corrupt: &[u32]) -> Vec<usize> {
    let a = Alignment::of(clean, corrupt);
    (0..corrupt.len())
        .filter(|&i| a.clean_position(i).is_none_or(|j| clean[j] != corrupt[i]))
        .collect()
}

/// (p − p_corrupt) / (p_clean − p_corrupt): 0 is the corrupt run, 1 the clean answer fully
/// back. `None` when the two baselines are equal (nothing to restore).
pub fn restored(value: f64, clean: f64, corrupt: f64) -> Option<f64> {
    let span = clean - corrupt;
    (span != 0.0 && span.is_finite() && value.is_finite()).then(|| (value - corrupt) / span)
}

/// The answer's figures in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub p: f64,
    pub logprob: f64,
    /// ln p(answer) − ln p(against), when `--against` names a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logit_diff: Option<f64>,
    pub top_logprobs: Vec<TopLogprob>,
}

/// One patched run: corrupt text, one activation of the clean text put back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub layer: usize,
    /// Position in the corrupt text.
    pub position: usize,
    pub p: f64,
    pub logprob: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logit_diff: Option<f64>,
    /// (p − p_corrupt) / (p_clean − p_corrupt); null when the baselines are equal.
    pub restored: Option<f64>,
    /// The logit difference normalised the same way (with `--against`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_logit_diff: Option<f64>,
    pub top_logprobs: Vec<TopLogprob>,
    /// False where the clean activation equals the corrupt run's own, bit for bit: the
    /// patched run is the corrupt run, so it was not decoded again.
    pub decoded: bool,
}

impl Cell {
    pub fn new(layer: usize, position: usize, o: Outcome, base: &Baselines, decoded: bool) -> Self {
        let restored_logit_diff =
            match (o.logit_diff, base.clean.logit_diff, base.corrupt.logit_diff) {
                (Some(v), Some(c), Some(k)) => restored(v, c, k),
                _ => None,
            };
        Self {
            layer,
            position,
            restored: restored(o.p, base.clean.p, base.corrupt.p),
            p: o.p,
            logprob: o.logprob,
            logit_diff: o.logit_diff,
            restored_logit_diff,
            top_logprobs: o.top_logprobs,
            decoded,
        }
    }
}

/// The answer in the clean and the corrupt run, unpatched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baselines {
    pub clean: Outcome,
    pub corrupt: Outcome,
}

/// One grid: every (layer, position) of one kind of activation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grid {
    pub what: What,
    /// The graph nodes patched, `{layer}` standing for the layer (`l_out-{layer}`).
    pub node: String,
    /// Layer-major: layer 0's positions first.
    pub cells: Vec<Cell>,
}

impl Grid {
    /// The `k` cells that restore most, best first (ties by layer, then position).
    pub fn strongest(&self, k: usize) -> Vec<&Cell> {
        let mut c: Vec<&Cell> = self.cells.iter().filter(|c| c.restored.is_some()).collect();
        c.sort_by(|a, b| {
            b.restored
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&a.restored.unwrap_or(f64::NEG_INFINITY))
                .then(a.layer.cmp(&b.layer))
                .then(a.position.cmp(&b.position))
        });
        c.truncate(k);
        c
    }

    pub fn cell(&self, layer: usize, position: usize) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.layer == layer && c.position == position)
    }
}

/// A token as the report writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenRef {
    pub id: u32,
    pub token: String,
    pub bytes: Vec<u8>,
}

/// What was decoded, for the benchmark and the curious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Work {
    /// Patched runs decoded (cells whose clean activation equals the corrupt one are not).
    pub runs: usize,
    /// Tokens decoded for them, in all.
    pub tokens: usize,
    /// Decodes they took.
    pub decodes: usize,
    /// Whether a patched run reused the corrupt run's cache up to its position.
    pub prefix_reuse: bool,
    /// Most runs in one decode.
    pub side_by_side: usize,
}

/// A whole trace, as `trace` writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceReport {
    pub clean: String,
    pub corrupt: String,
    pub model: String,
    pub n_layer: usize,
    /// The layers traced (every layer unless `--layers` chose).
    pub layers: Vec<usize>,
    pub clean_tokens: Vec<TokenRef>,
    pub corrupt_tokens: Vec<TokenRef>,
    /// Corrupt positions whose token differs from the clean one aligned with it.
    pub differing: Vec<usize>,
    /// Said when the texts' lengths differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alignment: Option<String>,
    pub answer: TokenRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub against: Option<TokenRef>,
    pub baselines: Baselines,
    pub grids: Vec<Grid>,
    pub work: Work,
    /// The model's own intervention in force, if any (`ablate ffn:3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intervention: Option<String>,
}

/// One patched run to decode: which grid, layer and corrupt position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunId {
    pub what: What,
    pub layer: usize,
    pub position: usize,
}

/// One decode: runs of the corrupt text side by side, each decoded from `from` to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub from: usize,
    pub runs: Vec<RunId>,
}

/// Group `runs` of a corrupt text of `n` tokens into decodes within `limits`. With `reuse`, a
/// run at position i decodes from i, or from far enough back that it decodes `min_member`
/// tokens and its decode has `min_decode` rows; without, every run decodes the whole text. A
/// text shorter than `min_member` tokens gets one run per decode, from the start.
pub fn plan_steps(n: usize, runs: &[RunId], limits: Limits, reuse: bool) -> Vec<Step> {
    let Limits {
        width,
        max_tokens,
        min_member,
        min_decode,
    } = limits;
    let width = width.max(1);
    if n < min_member || width == 1 {
        return runs
            .iter()
            .map(|&r| Step {
                from: 0,
                runs: vec![r],
            })
            .collect();
    }
    let start = |p: usize| {
        if reuse {
            p.min(n - min_member)
        } else {
            0
        }
    };
    let mut sorted: Vec<RunId> = runs.to_vec();
    sorted.sort_by_key(|r| (start(r.position), r.what, r.layer, r.position));
    let mut steps = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let from = start(sorted[i].position);
        let mut j = i;
        while j < sorted.len() && start(sorted[j].position) == from {
            j += 1;
        }
        let per = (max_tokens / (n - from)).clamp(1, width);
        for chunk in sorted[i..j].chunks(per) {
            // A decode of few runs starts earlier, so that it is not tiny.
            let need = min_decode.div_ceil(chunk.len()).max(min_member);
            let from = from.min(n.saturating_sub(need));
            steps.push(Step {
                from,
                runs: chunk.to_vec(),
            });
        }
        i = j;
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN_MEMBER_STEP: usize = 3;
    const MIN_DECODE: usize = 16;

    fn limits(width: usize) -> Limits {
        Limits {
            width,
            max_tokens: 128,
            min_member: MIN_MEMBER_STEP,
            min_decode: MIN_DECODE,
        }
    }

    fn runs(n: usize, layers: usize) -> Vec<RunId> {
        (0..layers)
            .flat_map(|layer| {
                (0..n).map(move |position| RunId {
                    what: What::Resid,
                    layer,
                    position,
                })
            })
            .collect()
    }

    #[test]
    fn the_plan_covers_every_run_once_within_the_rules() {
        for n in 1..40 {
            for layers in [1, 2, 5, 30] {
                for reuse in [true, false] {
                    for width in [1, 4, 32] {
                        let all = runs(n, layers);
                        let steps = plan_steps(n, &all, limits(width), reuse);
                        let mut seen: Vec<RunId> =
                            steps.iter().flat_map(|s| s.runs.clone()).collect();
                        seen.sort_by_key(|r| (r.layer, r.position));
                        assert_eq!(seen, all, "n {n} layers {layers}");
                        for s in &steps {
                            assert!(s.runs.len() <= width);
                            assert!(s.runs.iter().all(|r| r.position >= s.from));
                            let t = n - s.from;
                            if s.runs.len() > 1 {
                                assert!(t >= MIN_MEMBER_STEP, "n {n}: {s:?}");
                                assert!(
                                    s.runs.len() * t >= MIN_DECODE || s.from == 0,
                                    "n {n}: {s:?}"
                                );
                                assert!(s.runs.len() * t <= 128 || s.runs.len() == 1);
                            }
                            if !reuse {
                                assert_eq!(s.from, 0);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn reuse_decodes_fewer_tokens() {
        let all = runs(12, 30);
        let tokens =
            |steps: &[Step]| -> usize { steps.iter().map(|s| s.runs.len() * (12 - s.from)).sum() };
        let with = tokens(&plan_steps(12, &all, limits(32), true));
        let without = tokens(&plan_steps(12, &all, limits(32), false));
        assert_eq!(without, 360 * 12);
        assert!(with * 3 < without * 2, "{with} vs {without}");
    }

    #[test]
    fn texts_align_their_common_start_then_from_their_ends() {
        let same = Alignment::of(&[1, 2, 3, 4, 5], &[1, 9, 3, 4, 5]);
        assert_eq!(same.clean_position(3), Some(3));
        assert!(same.note().is_none());
        // BOS + "The" shared; the corrupt text two tokens longer.
        let longer_corrupt = Alignment::of(&[0, 1, 7, 8], &[0, 1, 5, 6, 7, 8]);
        assert_eq!(longer_corrupt.prefix, 2);
        assert_eq!(longer_corrupt.clean_position(0), Some(0));
        assert_eq!(longer_corrupt.clean_position(1), Some(1));
        assert_eq!(longer_corrupt.clean_position(2), None);
        assert_eq!(longer_corrupt.clean_position(3), None);
        assert_eq!(longer_corrupt.clean_position(4), Some(2));
        assert_eq!(longer_corrupt.clean_position(5), Some(3));
        assert!(longer_corrupt.note().is_some_and(|n| n.contains("4 of")));
        let longer_clean = Alignment::of(&[0, 1, 2, 3, 4, 5, 6], &[0, 9, 5, 6]);
        assert_eq!(longer_clean.clean_position(0), Some(0));
        assert_eq!(longer_clean.clean_position(1), Some(4));
        assert_eq!(longer_clean.clean_position(3), Some(6));
        assert_eq!(differing(&[1, 2, 3], &[1, 9, 3]), vec![1]);
        // "The Eiffel Tower is in" / "The big tower is in": only the changed words differ.
        assert_eq!(differing(&[1, 2, 3, 4, 5, 6], &[1, 7, 8, 5, 6]), vec![1, 2]);
        assert_eq!(differing(&[2, 3], &[1, 2, 3]), vec![0]);
    }

    #[test]
    fn restoration_is_zero_at_corrupt_one_at_clean() {
        assert_eq!(restored(0.2, 0.8, 0.2), Some(0.0));
        assert_eq!(restored(0.8, 0.8, 0.2), Some(1.0));
        assert_eq!(restored(0.5, 0.5, 0.5), None);
        assert!((restored(0.5, 0.8, 0.2).unwrap_or(0.0) - 0.5).abs() < 1e-12);
        assert_eq!(What::parse("ffn"), Ok(What::Mlp));
        assert_eq!(parse_layers("0-2, 5,1", 30), Ok(vec![0, 1, 2, 5]));
        assert!(parse_layers("28-30", 30).is_err());
        assert!(parse_layers("3-1", 30).is_err());
        assert!(parse_layers("x", 30).is_err());
        assert!(What::parse("kqv").is_err());
    }
}
