//! Perplexity over a corpus as llama.cpp's `llama-perplexity` computes it: the text tokenized
//! once and cut into chunks of `n_ctx` tokens (the last partial chunk dropped), each chunk
//! decoded from an empty cache with its first token replaced by BOS on a model that adds one,
//! and only the second half of each chunk scored (positions `n_ctx / 2 .. n_ctx - 1` predicting
//! the token after them), so that every scored token has at least half a chunk of context.
//! The estimate is exp(mean negative log-likelihood), its uncertainty the standard error of
//! that mean carried through the exponential, as `llama-perplexity` prints them.

/// Why a corpus cannot be measured with a chunk length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "you need at least {need} tokens to evaluate perplexity with a context of {n_ctx}: the file tokenizes to only {have} tokens"
    )]
    TooShort {
        need: usize,
        n_ctx: usize,
        have: usize,
    },
    #[error("a chunk of {0} tokens has no second half to score (use -c 4 or more)")]
    ChunkTooSmall(usize),
}

/// How a corpus of `n_tokens` is cut: `n_chunk` chunks of `n_ctx` tokens, chunk i covering
/// tokens `i * n_ctx .. (i + 1) * n_ctx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub n_ctx: usize,
    pub n_chunk: usize,
}

impl Plan {
    /// llama-perplexity's rule: at least two chunks' worth of tokens, as many whole chunks as
    /// the text holds, at most `max_chunks` (`--chunks`; `None`: all).
    pub fn new(
        n_tokens: usize,
        n_ctx: usize,
        max_chunks: Option<usize>,
    ) -> Result<Self, PlanError> {
        if n_ctx < 4 {
            return Err(PlanError::ChunkTooSmall(n_ctx));
        }
        if n_tokens < 2 * n_ctx {
            return Err(PlanError::TooShort {
                need: 2 * n_ctx,
                n_ctx,
                have: n_tokens,
            });
        }
        let max = n_tokens / n_ctx;
        Ok(Self {
            n_ctx,
            n_chunk: max_chunks.map_or(max, |c| c.min(max)),
        })
    }

    /// The first position whose prediction is scored.
    pub fn first(&self) -> usize {
        self.n_ctx / 2
    }

    /// Tokens scored per chunk: positions `first .. n_ctx - 1` each predict the next token.
    pub fn scored_per_chunk(&self) -> usize {
        self.n_ctx - 1 - self.first()
    }

    /// The token range of chunk `i`.
    pub fn chunk(&self, i: usize) -> std::ops::Range<usize> {
        i * self.n_ctx..(i + 1) * self.n_ctx
    }
}

/// The running sums of negative log-likelihoods.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Accumulator {
    pub nll: f64,
    pub nll2: f64,
    pub count: usize,
}

impl Accumulator {
    /// Add one scored token's negative log-likelihood (nats).
    pub fn add(&mut self, nll: f64) {
        self.nll += nll;
        self.nll2 += nll * nll;
        self.count += 1;
    }

    /// exp(mean nll): the perplexity so far (what each `[i]` figure is).
    pub fn ppl(&self) -> f64 {
        (self.nll / self.count as f64).exp()
    }

    /// The final estimate and its uncertainty: PPL · sqrt(var(nll) / (count − 1)). `None`
    /// for the uncertainty when the variance is not positive (llama-perplexity then prints an
    /// error instead of the estimate).
    pub fn estimate(&self) -> (f64, Option<f64>) {
        let n = self.count as f64;
        let mean = self.nll / n;
        let ppl = mean.exp();
        let var = self.nll2 / n - mean * mean;
        let err = (var > 0.0 && self.count > 1).then(|| (var / (n - 1.0)).sqrt() * ppl);
        (ppl, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_whole_and_at_least_two() {
        assert_eq!(
            Plan::new(1023, 512, None),
            Err(PlanError::TooShort {
                need: 1024,
                n_ctx: 512,
                have: 1023
            })
        );
        let p = Plan::new(2600, 512, None).expect("enough");
        assert_eq!(p.n_chunk, 5);
        assert_eq!(Plan::new(2600, 512, Some(3)).map(|p| p.n_chunk), Ok(3));
        assert_eq!(Plan::new(2600, 512, Some(30)).map(|p| p.n_chunk), Ok(5));
        assert_eq!(p.first(), 256);
        assert_eq!(p.scored_per_chunk(), 255);
        assert_eq!(p.chunk(2), 1024..1536);
        assert_eq!(Plan::new(100, 3, None), Err(PlanError::ChunkTooSmall(3)));
    }

    #[test]
    fn the_estimate_is_llama_perplexitys() {
        let mut a = Accumulator::default();
        for v in [1.0, 2.0, 3.0, 4.0] {
            a.add(v);
        }
        assert_eq!(a.count, 4);
        // mean 2.5, population variance 1.25, standard error sqrt(1.25 / 3).
        let (ppl, err) = a.estimate();
        assert!((ppl - 2.5f64.exp()).abs() < 1e-12);
        let want = (1.25f64 / 3.0).sqrt() * 2.5f64.exp();
        assert!((err.expect("positive variance") - want).abs() < 1e-12);
        assert!((a.ppl() - ppl).abs() < 1e-15);
        let mut same = Accumulator::default();
        same.add(2.0);
        same.add(2.0);
        assert_eq!(same.estimate().1, None);
    }
}
