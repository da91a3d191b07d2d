//! The wire shapes of OpenAI's legacy completions endpoint, as clients send and read them,
//! and its error shape. A request is checked here into [`Params`] before it reaches the
//! engine; every refusal is an [`ApiError`] with the status code OpenAI would give.

use serde::{Deserialize, Serialize};

use crate::analysis::sample::Choice;

/// `POST /v1/completions`. Every field may be absent or `null`; fields this server does not
/// use (`user`, `presence_penalty`, …) are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: Option<PromptInput>,
    pub max_tokens: Option<i64>,
    pub echo: Option<bool>,
    pub logprobs: Option<i64>,
    /// vLLM's extension: the prompt's own log-probabilities, with this many top tokens.
    pub prompt_logprobs: Option<i64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Option<StopInput>,
    pub n: Option<i64>,
    pub best_of: Option<i64>,
    pub seed: Option<u64>,
    pub stream: Option<bool>,
}

/// A prompt as OpenAI takes it: a string, several, or token ids.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PromptInput {
    One(String),
    Many(Vec<String>),
    Tokens(Vec<u32>),
    ManyTokens(Vec<Vec<u32>>),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum StopInput {
    One(String),
    Many(Vec<String>),
}

/// One prompt to complete: its text, or the token ids the client gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Text(String),
    Tokens(Vec<u32>),
}

/// A checked request.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub prompts: Vec<Prompt>,
    pub max_tokens: usize,
    /// The request named `max_tokens` (a prompt it does not fit with is refused); otherwise
    /// the server's default applies, cut to what the context holds.
    pub max_tokens_asked: bool,
    pub echo: bool,
    /// `None`: no `logprobs` object; `Some(n)`: the n most likely tokens at each position.
    pub logprobs: Option<usize>,
    /// vLLM's `prompt_logprobs`: `Some(n)` lists each prompt token with the n most likely.
    pub prompt_logprobs: Option<usize>,
    pub choice: Choice,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
}

/// OpenAI's default `max_tokens` for completions (the server's `-n` changes it).
pub const DEFAULT_MAX_TOKENS: usize = 16;
/// The most top tokens a position may list.
pub const MAX_LOGPROBS: usize = 1000;
/// The most prompts one request may carry.
pub const MAX_PROMPTS: usize = 2048;

impl CompletionRequest {
    /// Check the request; `default_max_tokens` applies when it names no `max_tokens`.
    pub fn check(self, default_max_tokens: usize) -> Result<Params, ApiError> {
        let bad = |param: &'static str, message: String| ApiError::invalid(message, Some(param));
        if self.stream == Some(true) {
            return Err(bad("stream", "streaming is not supported".into()));
        }
        if self.n.is_some_and(|n| n != 1) || self.best_of.is_some_and(|n| n != 1) {
            return Err(bad(
                "n",
                "only one choice per prompt is supported (n = best_of = 1)".into(),
            ));
        }
        let prompts = match self.prompt {
            None => return Err(bad("prompt", "prompt is required".into())),
            Some(PromptInput::One(s)) => vec![Prompt::Text(s)],
            Some(PromptInput::Many(v)) => v.into_iter().map(Prompt::Text).collect(),
            Some(PromptInput::Tokens(t)) => vec![Prompt::Tokens(t)],
            Some(PromptInput::ManyTokens(v)) => v.into_iter().map(Prompt::Tokens).collect(),
        };
        if prompts.is_empty() {
            return Err(bad("prompt", "prompt is an empty list".into()));
        }
        if prompts.len() > MAX_PROMPTS {
            return Err(bad(
                "prompt",
                format!(
                    "{} prompts in one request; at most {MAX_PROMPTS}",
                    prompts.len()
                ),
            ));
        }
        let empty = |p: &Prompt| match p {
            Prompt::Text(s) => s.is_empty(),
            Prompt::Tokens(t) => t.is_empty(),
        };
        if let Some(i) = prompts.iter().position(empty) {
            let which = if prompts.len() > 1 {
                format!("prompt {i} is empty")
            } else {
                "prompt is empty".into()
            };
            return Err(bad("prompt", format!("{which}: there is nothing to score")));
        }
        let max_tokens = match self.max_tokens {
            None => default_max_tokens,
            Some(n) if n >= 0 => n as usize,
            Some(n) => {
                return Err(bad(
                    "max_tokens",
                    format!("max_tokens is {n}; it must be >= 0"),
                ))
            }
        };
        let top_n = |param: &'static str, v: Option<i64>| match v {
            None => Ok(None),
            Some(n) if (0..=MAX_LOGPROBS as i64).contains(&n) => Ok(Some(n as usize)),
            Some(n) => Err(bad(
                param,
                format!("{param} is {n}; it must be between 0 and {MAX_LOGPROBS}"),
            )),
        };
        let logprobs = top_n("logprobs", self.logprobs)?;
        let prompt_logprobs = top_n("prompt_logprobs", self.prompt_logprobs)?;
        let temperature = self.temperature.unwrap_or(1.0);
        if !(temperature.is_finite() && (0.0..=1000.0).contains(&temperature)) {
            return Err(bad(
                "temperature",
                format!("temperature is {temperature}; it must be between 0 and 1000"),
            ));
        }
        let top_p = self.top_p.unwrap_or(1.0);
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(bad(
                "top_p",
                format!("top_p is {top_p}; it must be in (0, 1]"),
            ));
        }
        let choice = if temperature == 0.0 {
            Choice::Greedy
        } else {
            Choice::Sample {
                temperature: temperature as f32,
                top_p,
            }
        };
        let stop = match self.stop {
            None => Vec::new(),
            Some(StopInput::One(s)) => vec![s],
            Some(StopInput::Many(v)) => v,
        };
        Ok(Params {
            prompts,
            max_tokens,
            max_tokens_asked: self.max_tokens.is_some(),
            echo: self.echo.unwrap_or(false),
            logprobs,
            prompt_logprobs,
            choice,
            stop: stop.into_iter().filter(|s| !s.is_empty()).collect(),
            seed: self.seed,
        })
    }
}

/// The answer to a completions request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CompletionResponse {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChoiceOut>,
    pub usage: Usage,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChoiceOut {
    pub text: String,
    pub index: usize,
    pub logprobs: Option<LogprobsOut>,
    pub finish_reason: &'static str,
    /// vLLM's shape: one entry per prompt token, `null` for the first (nothing predicts it),
    /// then token id → {logprob, rank, decoded_token}: the prompt's token first, then the
    /// most likely.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_logprobs: Option<Vec<Option<PromptTop>>>,
}

/// One prompt position of `prompt_logprobs`: (token id, its entry), the prompt's own token
/// first; a JSON object keyed by the id (each id once).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptTop(pub Vec<(u32, PromptLogprob)>);

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PromptLogprob {
    pub logprob: f64,
    /// 1 for the most likely token.
    pub rank: usize,
    pub decoded_token: String,
}

impl Serialize for PromptTop {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut seen = std::collections::HashSet::new();
        let mut map = s.serialize_map(None)?;
        for (id, entry) in &self.0 {
            if seen.insert(*id) {
                map.serialize_entry(&id.to_string(), entry)?;
            }
        }
        map.end()
    }
}

/// `choices[i].logprobs`: one entry per token of the echoed prompt and of the continuation.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LogprobsOut {
    pub tokens: Vec<String>,
    /// `null` where nothing predicts the token (the first token of a model without BOS).
    pub token_logprobs: Vec<Option<f64>>,
    pub top_logprobs: Vec<Option<TopMap>>,
    /// Where each token begins in the prompt followed by the text, in characters.
    pub text_offset: Vec<usize>,
}

/// Token text → logprob, most likely first (a JSON object; of tokens with the same text, the
/// most likely).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopMap(pub Vec<(String, f64)>);

impl Serialize for TopMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut seen = std::collections::HashSet::new();
        let mut map = s.serialize_map(None)?;
        for (token, logprob) in &self.0 {
            if seen.insert(token.as_str()) {
                map.serialize_entry(token, logprob)?;
            }
        }
        map.end()
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

/// An error as OpenAI shapes it: `{"error": {"message", "type", "param", "code"}}`, with its
/// HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn invalid(message: String, param: Option<&'static str>) -> Self {
        Self {
            status: 400,
            message,
            kind: "invalid_request_error",
            param,
            code: None,
        }
    }

    pub fn too_long(message: String) -> Self {
        Self {
            code: Some("context_length_exceeded"),
            ..Self::invalid(message, Some("prompt"))
        }
    }

    pub fn server(status: u16, message: String) -> Self {
        Self {
            status,
            message,
            kind: "server_error",
            param: None,
            code: None,
        }
    }

    /// The JSON body, fields in OpenAI's order.
    pub fn json(&self) -> String {
        serde_json::to_string(&ErrorBody {
            error: ErrorFields {
                message: &self.message,
                kind: self.kind,
                param: self.param,
                code: self.code,
            },
        })
        .unwrap_or_default()
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::from_str(&self.json()).unwrap_or_default()
    }
}

/// The error's JSON, fields in OpenAI's order.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Params, ApiError> {
        serde_json::from_str::<CompletionRequest>(json)
            .expect("valid JSON")
            .check(DEFAULT_MAX_TOKENS)
    }

    #[test]
    fn what_lm_evaluation_harness_sends_is_understood() {
        let p = parse(
            r#"{"prompt": "Q: 2+2?\nA: 4", "logprobs": 10, "temperature": 0.0,
                "max_tokens": 1, "echo": true}"#,
        )
        .expect("accepted");
        assert_eq!(p.prompts, vec![Prompt::Text("Q: 2+2?\nA: 4".into())]);
        assert_eq!((p.max_tokens, p.echo, p.logprobs), (1, true, Some(10)));
        assert_eq!(p.choice, Choice::Greedy);
        let p =
            parse(r#"{"prompt": "Q:", "stop": ["\n\n", ""], "temperature": 0}"#).expect("accepted");
        assert_eq!(p.max_tokens, DEFAULT_MAX_TOKENS);
        assert_eq!(p.stop, vec!["\n\n".to_owned()]);
    }

    #[test]
    fn prompts_come_as_strings_lists_or_token_ids() {
        let p = parse(r#"{"prompt": ["a", "b"], "echo": null, "logprobs": null}"#).expect("ok");
        assert_eq!(p.prompts.len(), 2);
        assert_eq!((p.echo, p.logprobs), (false, None));
        let p = parse(r#"{"prompt": [1, 2, 3]}"#).expect("ok");
        assert_eq!(p.prompts, vec![Prompt::Tokens(vec![1, 2, 3])]);
        let p = parse(r#"{"prompt": [[1], [2, 3]]}"#).expect("ok");
        assert_eq!(p.prompts.len(), 2);
    }

    #[test]
    fn bad_requests_say_which_parameter_is_wrong() {
        let cases = [
            (r#"{}"#, "prompt"),
            (r#"{"prompt": ""}"#, "prompt"),
            (r#"{"prompt": []}"#, "prompt"),
            (r#"{"prompt": ["a", ""]}"#, "prompt"),
            (r#"{"prompt": "a", "max_tokens": -1}"#, "max_tokens"),
            (r#"{"prompt": "a", "logprobs": 5000}"#, "logprobs"),
            (r#"{"prompt": "a", "temperature": -1}"#, "temperature"),
            (r#"{"prompt": "a", "top_p": 0}"#, "top_p"),
            (r#"{"prompt": "a", "n": 2}"#, "n"),
            (r#"{"prompt": "a", "stream": true}"#, "stream"),
        ];
        for (json, param) in cases {
            let e = parse(json).expect_err(json);
            assert_eq!((e.status, e.param), (400, Some(param)), "{json}: {e:?}");
            assert_eq!(e.body()["error"]["type"], "invalid_request_error");
        }
    }

    #[test]
    fn top_logprobs_keep_their_order_and_the_likelier_of_equal_texts() {
        let m = TopMap(vec![
            ("b".into(), -0.1),
            ("a".into(), -1.0),
            ("b".into(), -2.0),
        ]);
        assert_eq!(
            serde_json::to_string(&m).expect("serialises"),
            r#"{"b":-0.1,"a":-1.0}"#
        );
    }
}
