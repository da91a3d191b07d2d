//! A distribution's top tokens as the scripting JSON writes them: id, text, bytes, ln p.

use serde::Serialize;

use crate::analysis::stats::TopEntry;
use crate::analysis::vocab::Vocab;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TopLogprob {
    pub id: u32,
    pub token: String,
    pub bytes: Vec<u8>,
    pub logprob: f64,
}

pub fn top_logprobs(vocab: &Vocab, top: &[TopEntry]) -> Vec<TopLogprob> {
    top.iter()
        .map(|e| TopLogprob {
            id: e.id,
            token: vocab.text(e.id),
            bytes: vocab.bytes(e.id).to_vec(),
            logprob: e.logprob,
        })
        .collect()
}
