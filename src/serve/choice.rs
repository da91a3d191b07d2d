//! One choice of a completions answer, built from the prompt's evaluation and its
//! continuation: the numbers are the evaluation's own (those `score` prints), offsets are in
//! characters of the prompt followed by the generated text, as OpenAI gives them.

use super::api::{ChoiceOut, LogprobsOut, PromptLogprob, PromptTop, TopMap};
use crate::analysis::stats::{RowSummary, TopEntry};
use crate::analysis::vocab::Vocab;
use crate::engine::complete::{Continuation, Finish};

/// What one prompt was: its text (as sent, or the pieces of the token ids sent) and its
/// evaluated tokens, with which of them the answer lists.
pub struct Evaluated<'a> {
    pub text: &'a str,
    pub tokens: &'a [u32],
    /// `rows[i]` is the distribution after token i.
    pub rows: &'a [RowSummary],
    /// Whether token i is listed: a BOS the tokenizer added has no text in the prompt.
    pub listed: &'a dyn Fn(usize) -> bool,
}

/// Build choice `index`: with `echo` the prompt's tokens come first; `logprobs` (the top-N
/// size) asks for the logprobs object, `prompt_logprobs` for vLLM's list of the prompt's.
pub fn build(
    index: usize,
    vocab: &Vocab,
    prompt: &Evaluated<'_>,
    continuation: &Continuation,
    echo: bool,
    logprobs: Option<usize>,
    prompt_logprobs: Option<usize>,
) -> ChoiceOut {
    let generated = String::from_utf8_lossy(&continuation.text).into_owned();
    let text = if echo {
        format!("{}{generated}", prompt.text)
    } else {
        generated
    };
    let logprobs = logprobs.map(|n| {
        let mut out = LogprobsOut::default();
        let top = |entries: &[TopEntry]| {
            TopMap(
                entries
                    .iter()
                    .take(n)
                    .map(|e| (vocab.text(e.id), e.logprob))
                    .collect(),
            )
        };
        if echo {
            let listed: Vec<usize> = (0..prompt.tokens.len())
                .filter(|&j| (prompt.listed)(j))
                .collect();
            let pieces: Vec<&[u8]> = listed
                .iter()
                .map(|&j| vocab.bytes(prompt.tokens[j]))
                .collect();
            let offsets = char_offsets(prompt.text, &pieces);
            for (&j, offset) in listed.iter().zip(offsets) {
                let id = prompt.tokens[j];
                let prev = j.checked_sub(1).and_then(|i| prompt.rows.get(i));
                out.tokens.push(vocab.text(id));
                out.token_logprobs
                    .push(prev.and_then(|r| r.target).map(|t| t.logprob));
                out.top_logprobs.push(prev.map(|r| top(&r.top)));
                out.text_offset.push(offset);
            }
        }
        let base = prompt.text.chars().count();
        let mut at = 0;
        for t in &continuation.tokens {
            out.tokens.push(vocab.text(t.id));
            out.token_logprobs.push(Some(t.logprob));
            out.top_logprobs.push(Some(top(&t.top)));
            out.text_offset
                .push(base + chars_before(&continuation.text, at));
            at += vocab.bytes(t.id).len();
        }
        // The end-of-generation token, after the text (it adds none to it).
        if let Some(e) = &continuation.end {
            out.tokens.push(vocab.text(e.id));
            out.token_logprobs.push(Some(e.logprob));
            out.top_logprobs.push(Some(top(&e.top)));
            out.text_offset
                .push(base + chars_before(&continuation.text, continuation.text.len()));
        }
        out
    });
    ChoiceOut {
        text,
        index,
        logprobs,
        finish_reason: match continuation.finish {
            Finish::Length => "length",
            Finish::Stop => "stop",
        },
        prompt_logprobs: prompt_logprobs.map(|n| prompt_tops(vocab, prompt, n)),
    }
}

/// vLLM's `prompt_logprobs`: one entry per prompt token (a BOS the tokenizer added included,
/// as vLLM lists it), `None` for the first, which nothing predicts; then the token itself with
/// its logprob and rank in the whole vocabulary, and the `n` most likely tokens of the same
/// distribution (ranks 1..=n).
fn prompt_tops(vocab: &Vocab, prompt: &Evaluated<'_>, n: usize) -> Vec<Option<PromptTop>> {
    let entry = |id: u32, logprob: f64, rank: usize| {
        (
            id,
            PromptLogprob {
                logprob,
                rank,
                decoded_token: vocab.text(id),
            },
        )
    };
    (0..prompt.tokens.len())
        .map(|j| {
            let row = prompt.rows.get(j.checked_sub(1)?)?;
            let target = row.target?;
            let mut out = vec![entry(target.id, target.logprob, target.rank as usize)];
            out.extend(
                row.top
                    .iter()
                    .take(n)
                    .enumerate()
                    .map(|(i, e)| entry(e.id, e.logprob, i + 1)),
            );
            Some(PromptTop(out))
        })
        .collect()
}

/// The character offset in `text` where each of `pieces` begins, the pieces being the
/// tokens of `text` in order. A tokenizer that added a leading space (SentencePiece's dummy
/// prefix) is allowed for: the pieces are aligned on the end of the text. A piece that begins
/// inside a character is placed at that character.
pub fn char_offsets(text: &str, pieces: &[&[u8]]) -> Vec<usize> {
    let joined: usize = pieces.iter().map(|p| p.len()).sum();
    let bytes = text.as_bytes();
    let ends_with_text = {
        let mut tail = Vec::with_capacity(joined);
        for p in pieces {
            tail.extend_from_slice(p);
        }
        tail.ends_with(bytes)
    };
    let shift = if ends_with_text {
        joined - bytes.len()
    } else {
        0
    };
    let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    let n_chars = starts.len();
    let mut at = 0usize;
    pieces
        .iter()
        .map(|p| {
            let b = at.saturating_sub(shift);
            at += p.len();
            if b >= bytes.len() {
                n_chars
            } else {
                starts.partition_point(|&s| s <= b) - 1
            }
        })
        .collect()
}

/// Characters of `bytes` (UTF-8, possibly cut) before byte `b`; a `b` inside a character
/// counts as that character's start.
fn chars_before(bytes: &[u8], b: usize) -> usize {
    let b = b.min(bytes.len());
    let continuation = |x: u8| x & 0xC0 == 0x80;
    let leads = bytes[..b].iter().filter(|&&x| !continuation(x)).count();
    let inside = bytes.get(b).is_some_and(|&x| continuation(x)) && leads > 0;
    leads - usize::from(inside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::stats::TargetStats;
    use crate::engine::complete::Generated;

    #[test]
    fn offsets_are_in_characters_not_bytes() {
        let text = "Café ☕ ok";
        let pieces: [&[u8]; 4] = [b"Caf", "é".as_bytes(), " ☕".as_bytes(), b" ok"];
        assert_eq!(char_offsets(text, &pieces), vec![0, 3, 4, 6]);
        // A character split over two byte-level pieces: both sit at that character.
        let cup = "☕".as_bytes();
        let pieces: [&[u8]; 3] = [b"a", &cup[..2], &cup[2..]];
        assert_eq!(char_offsets("a☕", &pieces), vec![0, 1, 1]);
    }

    #[test]
    fn a_dummy_prefix_space_is_aligned_away() {
        let pieces: [&[u8]; 2] = [b" Hello", b" world"];
        assert_eq!(char_offsets("Hello world", &pieces), vec![0, 5]);
    }

    #[test]
    fn generated_offsets_continue_after_the_prompt() {
        assert_eq!(chars_before("é!".as_bytes(), 0), 0);
        assert_eq!(chars_before("é!".as_bytes(), 1), 0);
        assert_eq!(chars_before("é!".as_bytes(), 2), 1);
        assert_eq!(chars_before("é!".as_bytes(), 3), 2);
    }

    fn row(target: Option<(u32, f64)>, top: &[(u32, f64)]) -> RowSummary {
        RowSummary {
            entropy_bits: 1.0,
            max_logit: 0.0,
            ln_sum: 0.0,
            inv_temp: 1.0,
            top: top
                .iter()
                .map(|&(id, logprob)| TopEntry { id, logprob })
                .collect(),
            target: target.map(|(id, logprob)| TargetStats {
                id,
                logprob,
                prob: logprob.exp(),
                rank: 1,
            }),
            watched: Vec::new(),
        }
    }

    #[test]
    fn prompt_logprobs_list_each_token_with_the_most_likely_once() {
        let vocab = Vocab::from_bytes([&b"<s>"[..], b"The", b" cat", b"!"]);
        let tokens = [0, 1, 2];
        let rows = [
            row(Some((1, -2.0)), &[(1, -2.0), (3, -2.5)]),
            row(Some((2, -3.0)), &[(3, -1.0), (2, -3.0)]),
            row(None, &[(3, -0.5)]),
        ];
        let listed = |j: usize| j > 0;
        let prompt = Evaluated {
            text: "The cat",
            tokens: &tokens,
            rows: &rows,
            listed: &listed,
        };
        let c = build(
            0,
            &vocab,
            &prompt,
            &Continuation::none(),
            false,
            None,
            Some(2),
        );
        let json = serde_json::to_value(&c).expect("serializes");
        assert!(json["logprobs"].is_null());
        let p = &json["prompt_logprobs"];
        assert_eq!(p.as_array().map(Vec::len), Some(3), "BOS included: {p}");
        assert!(p[0].is_null());
        // "The" is its row's most likely: listed once, as itself.
        assert_eq!(
            p[1],
            serde_json::json!({
                "1": {"logprob": -2.0, "rank": 1, "decoded_token": "The"},
                "3": {"logprob": -2.5, "rank": 2, "decoded_token": "!"},
            })
        );
        assert_eq!(p[2]["2"]["decoded_token"], " cat");
        assert_eq!(p[2]["3"]["rank"], 1);
        let none = build(0, &vocab, &prompt, &Continuation::none(), false, None, None);
        let json = serde_json::to_value(&none).expect("serializes");
        assert!(
            json.get("prompt_logprobs").is_none(),
            "absent unless asked: {json}"
        );
    }

    #[test]
    fn an_echoed_prompt_lists_its_tokens_then_the_generated_one() {
        let vocab = Vocab::from_bytes([&b"<s>"[..], b"The", " café".as_bytes(), b"!"]);
        // BOS (not listed), "The", " café"; then "!" generated.
        let tokens = [0, 1, 2];
        let rows = [
            row(Some((1, -2.0)), &[(1, -2.0), (3, -2.5)]),
            row(Some((2, -3.0)), &[(3, -1.0), (2, -3.0)]),
            row(None, &[(3, -0.5)]),
        ];
        let listed = |j: usize| j > 0;
        let prompt = Evaluated {
            text: "The café",
            tokens: &tokens,
            rows: &rows,
            listed: &listed,
        };
        let cont = Continuation {
            tokens: vec![Generated {
                id: 3,
                logprob: -0.5,
                top: rows[2].top.clone(),
            }],
            text: b"!".to_vec(),
            finish: Finish::Length,
            end: None,
        };
        let c = build(0, &vocab, &prompt, &cont, true, Some(1), None);
        assert_eq!(c.text, "The café!");
        let lp = c.logprobs.expect("asked for");
        assert_eq!(lp.tokens, vec!["The", " café", "!"]);
        assert_eq!(lp.token_logprobs, vec![Some(-2.0), Some(-3.0), Some(-0.5)]);
        assert_eq!(lp.text_offset, vec![0, 3, 8]);
        assert_eq!(lp.top_logprobs[1], Some(TopMap(vec![("!".into(), -1.0)])));
        assert_eq!(c.finish_reason, "length");
        // Without BOS the first token has nothing before it: null.
        let all = |_: usize| true;
        let prompt = Evaluated {
            listed: &all,
            ..prompt
        };
        let c = build(0, &vocab, &prompt, &cont, true, Some(1), None);
        let lp = c.logprobs.expect("asked for");
        assert_eq!(lp.token_logprobs[0], None);
        assert_eq!(lp.top_logprobs[0], None);
        // Without echo only the continuation, offsets still counted from the prompt's start.
        let c = build(0, &vocab, &prompt, &cont, false, Some(1), None);
        assert_eq!(c.text, "!");
        assert_eq!(c.logprobs.expect("asked for").text_offset, vec![8]);
        // An end-of-generation token is listed after the text, adding nothing to it (here
        // after BOS, "The", " café" and "!").
        let ended = Continuation {
            end: Some(Generated {
                id: 2,
                logprob: -0.25,
                top: rows[2].top.clone(),
            }),
            finish: Finish::Stop,
            ..cont.clone()
        };
        let c = build(0, &vocab, &prompt, &ended, true, Some(1), None);
        assert_eq!(c.text, "The café!");
        assert_eq!(c.finish_reason, "stop");
        let lp = c.logprobs.expect("asked for");
        assert_eq!(lp.tokens.len(), 5);
        assert_eq!(lp.tokens[4], vocab.text(2));
        assert_eq!(lp.token_logprobs[4], Some(-0.25));
        assert_eq!(lp.text_offset[4], 9);
        assert_eq!(ended.n_generated(), 2);
    }
}
