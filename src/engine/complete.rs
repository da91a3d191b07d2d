//! Completions as evaluation harnesses ask for them: every prompt token scored (the numbers
//! `score` prints, bit for bit: the same sessions, side by side as `score` does), then an
//! optional continuation, greedy or sampled, ended by a stop string, an end-of-generation
//! token or the token limit. The HTTP front end (`serve`) shapes the result.

use crate::analysis::sample::{sample, Choice};
use crate::analysis::stats::RowSummary;
use crate::analysis::stats::{logprobs_of, TopEntry, ViewOptions};
use crate::model::{common_prefix, Evaluation, Model, ModelError};

use super::score::Batcher;

/// What to generate after a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// At most this many tokens (0: score the prompt only).
    pub max_tokens: usize,
    pub choice: Choice,
    /// Generation ends before the first of these strings; the string is not part of the text.
    pub stop: Vec<String>,
}

/// One generated token, with the distribution it was chosen from (at the view's
/// temperature, as every other number).
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub id: u32,
    pub logprob: f64,
    pub top: Vec<TopEntry>,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// `max_tokens` were generated.
    Length,
    /// A stop string or an end-of-generation token.
    Stop,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Continuation {
    /// The tokens that begin before the stop string (an end-of-generation token is `end`).
    pub tokens: Vec<Generated>,
    /// The generated text's bytes, cut before the stop string.
    pub text: Vec<u8>,
    pub finish: Finish,
    /// The end-of-generation token that ended it, if one did: a generated token like the
    /// others (listed with its logprob, counted in the usage), whose text is not part of
    /// `text`. Clients that take the last listed token for the generated one (lm-eval's `gguf`
    /// client, with `max_tokens: 1`) would otherwise drop a prompt token instead.
    pub end: Option<Generated>,
}

impl Continuation {
    /// Nothing generated (`max_tokens` 0).
    pub fn none() -> Self {
        Self {
            tokens: Vec::new(),
            text: Vec::new(),
            finish: Finish::Length,
            end: None,
        }
    }

    /// Tokens generated, the end-of-generation token included.
    pub fn n_generated(&self) -> usize {
        self.tokens.len() + usize::from(self.end.is_some())
    }
}

/// A model's sessions for completions: the prompts are evaluated as `score` evaluates many
/// texts ([`Batcher`]), continuations on its session for texts alone.
pub struct Completer<'m> {
    batcher: Batcher<'m>,
}

impl<'m> Completer<'m> {
    /// `parallel` prompts at most are evaluated side by side (1: one at a time).
    pub fn new(model: &'m Model, parallel: usize) -> Result<Self, ModelError> {
        Ok(Self {
            batcher: Batcher::new(model, parallel)?,
        })
    }

    pub fn model(&self) -> &'m Model {
        self.batcher.model()
    }

    /// The most tokens a prompt and its continuation may have together.
    pub fn n_ctx(&self) -> usize {
        self.batcher.n_ctx()
    }

    /// Evaluate each prompt (non-empty, at most [`Completer::n_ctx`] tokens).
    pub fn evaluate_prompts(
        &mut self,
        prompts: &[Vec<u32>],
        view: ViewOptions,
    ) -> Vec<Result<Evaluation, ModelError>> {
        self.batcher.evaluate_all(prompts, view)
    }

    /// Continue the evaluated `prompt`. `draw` gives uniform numbers in [0, 1) for sampling;
    /// `None` when `cancel` said so.
    pub fn generate(
        &mut self,
        prompt: &Evaluation,
        generation: &Generation,
        view: ViewOptions,
        draw: &mut dyn FnMut() -> f64,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Option<Continuation>, ModelError> {
        let view = ViewOptions {
            n_probs: view.n_probs.max(1),
            ..view
        };
        match generation.choice {
            Choice::Greedy => self.greedy(prompt, generation, view, cancel),
            Choice::Sample { .. } => self.sampled(prompt, generation, view, draw, cancel),
        }
    }

    /// Greedy generation at a one-token decode's cost, with `score`'s numbers: up to
    /// [`DRAFT_BLOCK`] tokens are drafted ahead with one-token decodes ([`Session::draft`]),
    /// then the prompt and the drafts are evaluated as `score` evaluates a text (the cached
    /// prompt reused, the drafts decoded again in one decode). A draft is kept while it is the
    /// most likely token of its exact row; at the first that is not, the exact row's choice
    /// is taken and drafting goes on from there. So every token is the one greedy decoding
    /// with `score`'s numbers chooses, with `score`'s logprob and top tokens.
    ///
    /// [`Session::draft`]: crate::model::Session::draft
    fn greedy(
        &mut self,
        prompt: &Evaluation,
        generation: &Generation,
        view: ViewOptions,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Option<Continuation>, ModelError> {
        let mut g = Growing::new(self.model(), prompt, self.n_ctx());
        // The exact distribution after `g.all`.
        let Some(mut row) = prompt.rows.last().cloned() else {
            return Ok(Some(g.out));
        };
        'generate: while let Some(id) = g.take_best(row, generation) {
            let room = generation
                .max_tokens
                .saturating_sub(g.out.tokens.len())
                .min(self.n_ctx().saturating_sub(g.all.len()));
            if room == 0 {
                break;
            }
            // Drafts decode after the text's cached keys and values; a prompt scored side by
            // side with others is not in this session yet.
            let head = g.all.len() - 1;
            if common_prefix(self.batcher.main()?.cached(), &g.all[..head]) < head {
                let ev = self
                    .batcher
                    .main()?
                    .evaluate(&g.all[..head], view, cancel)?;
                if ev.cancelled {
                    return Ok(None);
                }
            }
            let mut drafts: Vec<u32> = Vec::with_capacity(DRAFT_BLOCK.min(room));
            let mut token = id;
            while drafts.len() < DRAFT_BLOCK.min(room) {
                if cancel() {
                    return Ok(None);
                }
                let pos = head + drafts.len();
                token = argmax(self.batcher.main()?.draft(token, pos)?);
                drafts.push(token);
                if self.model().is_end_of_generation(token) {
                    break;
                }
            }
            let mut text = g.all.clone();
            text.extend_from_slice(&drafts);
            let ev = self.batcher.main()?.evaluate(&text, view, cancel)?;
            if ev.cancelled {
                return Ok(None);
            }
            if ev.rows.len() < text.len() {
                return Err(ModelError::TooLong {
                    n_tokens: text.len(),
                    n_ctx: self.n_ctx(),
                });
            }
            let base = g.all.len();
            row = ev.rows[base - 1].clone();
            for (k, &draft) in drafts.iter().enumerate() {
                if row.top.first().map(|e| e.id) != Some(draft) {
                    // The exact row chooses otherwise: take its choice, draft on from there.
                    continue 'generate;
                }
                if g.take_best(row, generation).is_none() {
                    break 'generate;
                }
                row = ev.rows[base + k].clone();
            }
        }
        Ok(Some(g.out))
    }

    /// Sampled generation: each step's distribution from an evaluation of the text so far,
    /// as `score` evaluates it (the cached prefix reused), the token drawn from its logits.
    fn sampled(
        &mut self,
        prompt: &Evaluation,
        generation: &Generation,
        view: ViewOptions,
        draw: &mut dyn FnMut() -> f64,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Option<Continuation>, ModelError> {
        let Choice::Sample { temperature, top_p } = generation.choice else {
            return self.greedy(prompt, generation, view, cancel);
        };
        let mut g = Growing::new(self.model(), prompt, self.n_ctx());
        loop {
            let Some((ev, logits)) = self.batcher.main()?.next_logits(&g.all, view, cancel)? else {
                return Ok(None);
            };
            let Some(row) = ev.rows.last().cloned() else {
                break;
            };
            if cancel() {
                return Ok(None);
            }
            let lps = crate::analysis::stats::log_softmax(&logits, temperature)?;
            let id = sample(&lps, top_p, draw());
            let logprob = match row.top.iter().find(|e| e.id == id) {
                Some(e) => e.logprob,
                None => logprobs_of(&logits, view.temp, &[id])?[0],
            };
            if !g.take(id, logprob, row.top, generation) {
                break;
            }
        }
        Ok(Some(g.out))
    }
}

/// Tokens one exact decode checks in greedy generation, drafted ahead with one-token decodes.
/// A longer block spreads the exact decode's fixed cost over more tokens, but drafts drift
/// from the exact rows as the block grows (their keys and values are one-token decodes'), and
/// a draft the exact row does not choose wastes the rest of its block. Measured on SmolLM2
/// (128 greedy tokens, 2 threads, docs/benchmarks.md): blocks of 16, 24, 32, 48, 64 took
/// 2.15, 2.08, 2.77, 3.24, 4.07 s.
pub const DRAFT_BLOCK: usize = 24;

/// The index of the largest logit (the first of equals).
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// A continuation as it grows, one exact row at a time.
struct Growing<'m> {
    model: &'m Model,
    n_ctx: usize,
    /// The prompt and the tokens taken so far.
    all: Vec<u32>,
    out: Continuation,
}

impl<'m> Growing<'m> {
    fn new(model: &'m Model, prompt: &Evaluation, n_ctx: usize) -> Self {
        Self {
            model,
            n_ctx,
            all: prompt.tokens.clone(),
            out: Continuation::none(),
        }
    }

    /// Take the most likely token of `row` (the exact distribution after `all`) as the next
    /// one; `None` when the continuation is over.
    fn take_best(&mut self, row: RowSummary, generation: &Generation) -> Option<u32> {
        let best = *row.top.first()?;
        self.take(best.id, best.logprob, row.top, generation)
            .then_some(best.id)
    }

    /// Take `id` (drawn from the distribution whose top tokens are `top`) as the next token;
    /// false when the continuation is over (the token limit, the context, an end-of-generation
    /// token, a stop string), the token then kept only if it ended generation.
    fn take(&mut self, id: u32, logprob: f64, top: Vec<TopEntry>, generation: &Generation) -> bool {
        if self.out.tokens.len() >= generation.max_tokens || self.all.len() >= self.n_ctx {
            return false;
        }
        let generated = Generated { id, logprob, top };
        if self.model.is_end_of_generation(id) {
            self.out.end = Some(generated);
            self.out.finish = Finish::Stop;
            return false;
        }
        let vocab = self.model.vocab();
        self.all.push(id);
        self.out.tokens.push(generated);
        self.out.text.extend_from_slice(vocab.bytes(id));
        if let Some(at) = first_stop(&self.out.text, &generation.stop) {
            self.out.text.truncate(at);
            // Keep the tokens that begin before the stop string.
            let mut start = 0;
            self.out.tokens.retain(|t| {
                let begins = start;
                start += vocab.bytes(t.id).len();
                begins < at
            });
            self.out.finish = Finish::Stop;
            return false;
        }
        true
    }
}

/// Where the first of `stops` begins in `text` (the earliest occurrence of any).
pub fn first_stop(text: &[u8], stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.windows(s.len()).position(|w| w == s.as_bytes()))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_stop_string_wins() {
        let stops = vec!["\n\n".to_owned(), "Q:".to_owned(), String::new()];
        assert_eq!(first_stop(b"yes.\n\nQ: next", &stops), Some(4));
        assert_eq!(first_stop(b"Q: yes.\n\n", &stops), Some(0));
        assert_eq!(first_stop(b"yes.\n", &stops), None);
        assert_eq!(first_stop(b"", &stops), None);
    }
}
