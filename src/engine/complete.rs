//! Completions as evaluation harnesses ask for them: every prompt token scored (the numbers
//! `score` prints, bit for bit: the same sessions, side by side as `score` does), then an
//! optional continuation, greedy or sampled, ended by a stop string, an end-of-generation
//! token or the token limit. The HTTP front end (`serve`) shapes the result.

use crate::analysis::sample::{sample, Choice};
use crate::analysis::stats::{logprobs_of, TopEntry, ViewOptions};
use crate::model::{Evaluation, Model, ModelError};

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
        let vocab = self.model().vocab().clone();
        let view = ViewOptions {
            n_probs: view.n_probs.max(1),
            ..view
        };
        let mut all = prompt.tokens.clone();
        let mut out = Continuation::none();
        for step in 0..generation.max_tokens {
            if all.len() >= self.n_ctx() {
                break;
            }
            // The distribution after `all`, and its logits when sampling.
            let (row, logits) = match generation.choice {
                Choice::Greedy if step == 0 => match prompt.rows.last() {
                    Some(row) => (row.clone(), None),
                    None => return Ok(Some(out)),
                },
                Choice::Greedy => {
                    let ev = self.batcher.main.evaluate(&all, view, cancel)?;
                    match (ev.cancelled, ev.rows.last()) {
                        (false, Some(row)) => (row.clone(), None),
                        _ => return Ok(None),
                    }
                }
                Choice::Sample { .. } => match self.batcher.main.next_logits(&all, view, cancel)? {
                    Some((ev, logits)) => match ev.rows.last() {
                        Some(row) => (row.clone(), Some(logits)),
                        None => return Ok(Some(out)),
                    },
                    None => return Ok(None),
                },
            };
            if cancel() {
                return Ok(None);
            }
            let (id, logprob) = match (generation.choice, logits) {
                (Choice::Sample { temperature, top_p }, Some(logits)) => {
                    let lps = crate::analysis::stats::log_softmax(&logits, temperature)?;
                    let id = sample(&lps, top_p, draw());
                    let lp = match row.top.iter().find(|e| e.id == id) {
                        Some(e) => e.logprob,
                        None => logprobs_of(&logits, view.temp, &[id])?[0],
                    };
                    (id, lp)
                }
                _ => match row.top.first() {
                    Some(e) => (e.id, e.logprob),
                    None => return Ok(Some(out)),
                },
            };
            if self.model().is_end_of_generation(id) {
                out.end = Some(Generated {
                    id,
                    logprob,
                    top: row.top,
                });
                out.finish = Finish::Stop;
                break;
            }
            all.push(id);
            out.tokens.push(Generated {
                id,
                logprob,
                top: row.top,
            });
            out.text.extend_from_slice(vocab.bytes(id));
            if let Some(at) = first_stop(&out.text, &generation.stop) {
                out.text.truncate(at);
                // Keep the tokens that begin before the stop string.
                let mut start = 0;
                out.tokens.retain(|t| {
                    let begins = start;
                    start += vocab.bytes(t.id).len();
                    begins < at
                });
                out.finish = Finish::Stop;
                break;
            }
        }
        Ok(Some(out))
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
