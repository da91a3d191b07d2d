//! The generation floor that `serve`'s greedy generation is measured against
//! (docs/benchmarks.md): a plain llama-cpp-2 greedy loop — the prompt in one decode, then one
//! one-token decode per generated token, the argmax of its logits — what generation costs
//! without logitscope's exact numbers.
//!
//! `greedy_floor MODEL THREADS N_TOKENS PROMPT` prints the tokens generated and tokens per
//! second (the prompt's decode not counted). Same llama.cpp settings as logitscope: flash
//! attention off, n_batch 512, the model's own BOS rule; it stops at N_TOKENS only (an
//! end-of-generation token is generated past, as `serve` is benchmarked with a prompt that
//! does not end).

use std::num::NonZeroU32;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, threads, n_tokens, prompt] = args.as_slice() else {
        return Err("usage: greedy_floor MODEL THREADS N_TOKENS PROMPT".into());
    };
    let threads: i32 = threads.parse()?;
    let n_tokens: usize = n_tokens.parse()?;
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default().with_logs_enabled(false));
    let backend = LlamaBackend::init()?;
    let model = LlamaModel::load_from_file(&backend, model, &LlamaModelParams::default())?;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(2048))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_flash_attention_policy(0);
    let mut ctx = model.new_context(&backend, params)?;
    let mut batch = LlamaBatch::new(512, 1);
    let tokens = model.vocab().tokenize(prompt.as_bytes(), true, false);
    for (i, &t) in tokens.iter().enumerate() {
        batch.add(t, i as i32, &[0], i + 1 == tokens.len())?;
    }
    ctx.decode(&mut batch)?;
    let mut last = batch.n_tokens() - 1;
    let start = Instant::now();
    let mut generated = Vec::with_capacity(n_tokens);
    for pos in tokens.len()..tokens.len() + n_tokens {
        let row = ctx.get_logits_ith(last);
        let mut best = 0;
        for (i, &x) in row.iter().enumerate() {
            if x > row[best] {
                best = i;
            }
        }
        let token = LlamaToken(best as i32);
        generated.push(token);
        batch.clear();
        batch.add(token, pos as i32, &[0], true)?;
        ctx.decode(&mut batch)?;
        last = 0;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} tokens in {secs:.3} s: {:.1} tokens/s",
        generated.len(),
        generated.len() as f64 / secs
    );
    Ok(())
}
