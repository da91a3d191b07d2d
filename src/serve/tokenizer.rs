//! The tokenizer endpoints vLLM serves and lm-evaluation-harness's remote tokenizer reads
//! (`RemoteTokenizer` in `lm_eval/utils.py`): `POST /tokenize`, `POST /detokenize` and
//! `GET /tokenizer_info`, so that `--model local-completions` sends token-id prompts made by
//! the model's own tokenizer, with no Hugging Face tokenizer. Answered on the HTTP threads:
//! tokenizing reads the vocabulary only, never the engine's contexts.

use serde::{Deserialize, Serialize};

use super::api::ApiError;
use crate::model::Model;

/// `POST /tokenize` (vLLM's shape; llama-server's `content` and `add_special` are read too).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenizeRequest {
    pub prompt: Option<String>,
    pub content: Option<String>,
    pub add_special_tokens: Option<bool>,
    pub add_special: Option<bool>,
    pub return_token_strs: Option<bool>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenizeResponse {
    pub count: usize,
    pub max_model_len: usize,
    pub tokens: Vec<u32>,
    pub token_strs: Option<Vec<String>>,
}

/// `POST /detokenize`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DetokenizeRequest {
    pub tokens: Option<Vec<i64>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DetokenizeResponse {
    pub prompt: String,
}

/// `GET /tokenizer_info`: what a client needs to tokenize as the server does.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenizerInfo {
    pub tokenizer_class: &'static str,
    pub eos_token: Option<String>,
    pub bos_token: Option<String>,
    pub pad_token: Option<String>,
    /// Whether `/tokenize` with `add_special_tokens` (and a text prompt to
    /// `/v1/completions`) puts BOS first: the model file's rule.
    pub add_bos_token: bool,
    pub chat_template: Option<String>,
    pub model_max_length: usize,
    pub vocab_size: usize,
}

pub fn tokenize(
    model: &Model,
    n_ctx: usize,
    request: TokenizeRequest,
) -> Result<TokenizeResponse, ApiError> {
    let text = request
        .prompt
        .or(request.content)
        .ok_or_else(|| ApiError::invalid("prompt is required (a string)".into(), Some("prompt")))?;
    let add_special = request
        .add_special_tokens
        .or(request.add_special)
        .unwrap_or(true);
    let tokens = model.tokenize_parsing_special(&text, add_special);
    let vocab = model.vocab();
    let token_strs = request
        .return_token_strs
        .unwrap_or(false)
        .then(|| tokens.iter().map(|&t| vocab.text(t)).collect());
    Ok(TokenizeResponse {
        count: tokens.len(),
        max_model_len: n_ctx,
        tokens,
        token_strs,
    })
}

pub fn detokenize(
    model: &Model,
    request: DetokenizeRequest,
) -> Result<DetokenizeResponse, ApiError> {
    let ids = request.tokens.ok_or_else(|| {
        ApiError::invalid(
            "tokens is required (a list of token ids)".into(),
            Some("tokens"),
        )
    })?;
    let vocab = model.vocab();
    let mut bytes = Vec::new();
    for id in ids {
        match u32::try_from(id) {
            Ok(t) if (t as usize) < vocab.len() => bytes.extend_from_slice(vocab.bytes(t)),
            _ => {
                return Err(ApiError::invalid(
                    format!(
                        "token id {id} is outside the vocabulary ({} tokens)",
                        vocab.len()
                    ),
                    Some("tokens"),
                ))
            }
        }
    }
    Ok(DetokenizeResponse {
        prompt: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// `n_ctx`: the most tokens a prompt and its continuation may have (the engine's context).
pub fn info(model: &Model, n_ctx: usize) -> TokenizerInfo {
    let vocab = model.vocab();
    let bos = model.bos();
    TokenizerInfo {
        tokenizer_class: "llama.cpp",
        eos_token: model.eos().map(|t| vocab.text(t)),
        bos_token: bos.map(|(t, _)| vocab.text(t)),
        pad_token: None,
        add_bos_token: bos.is_some_and(|(_, added)| added),
        chat_template: model.chat_template_source(),
        model_max_length: n_ctx,
        vocab_size: vocab.len(),
    }
}
