//! The decode floor that `logitscope bench --only overhead` measures `score` against: a plain
//! llama-cpp-2 program that loads the model, decodes each line of stdin in one decode and
//! touches every logit row — what scoring costs without logitscope's analysis and output.
//!
//! `decode_floor MODEL THREADS N_CTX < texts` prints the number of rows read and a checksum.
//! Same llama.cpp settings as logitscope: flash attention off, n_batch 512, the model's own
//! BOS rule, a fresh KV cache for every text.

use std::io::BufRead;
use std::num::NonZeroU32;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, threads, n_ctx] = args.as_slice() else {
        return Err("usage: decode_floor MODEL THREADS N_CTX < texts".into());
    };
    let threads: i32 = threads.parse()?;
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default().with_logs_enabled(false));
    let backend = LlamaBackend::init()?;
    let model = LlamaModel::load_from_file(&backend, model, &LlamaModelParams::default())?;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx.parse()?))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_flash_attention_policy(0);
    let mut ctx = model.new_context(&backend, params)?;
    let mut batch = LlamaBatch::new(512, 1);
    let (mut rows, mut checksum) = (0usize, 0f64);
    for line in std::io::stdin().lock().lines() {
        // The model's own BOS rule, special-looking text as plain text: as logitscope does.
        let tokens = model.vocab().tokenize(line?.as_bytes(), true, false);
        let tokens = &tokens[..tokens.len().min(512)];
        ctx.clear_kv_cache();
        batch.clear();
        for (i, &t) in tokens.iter().enumerate() {
            batch.add(t, i as i32, &[0], true)?;
        }
        ctx.decode(&mut batch)?;
        for i in 0..tokens.len() {
            let row = ctx.get_logits_ith(i as i32);
            checksum += row.iter().map(|&x| f64::from(x)).sum::<f64>();
            rows += 1;
        }
    }
    println!("{rows} rows, checksum {checksum:.3}");
    Ok(())
}
