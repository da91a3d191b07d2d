//! The only module that touches llama.cpp (through `llama-cpp-2`).
//!
//! Everything above it sees plain Rust: token ids, byte pieces and [`RowSummary`]s. A
//! [`Model`] is loaded once; a [`Session`] owns one llama.cpp context plus the tokens and row
//! summaries of the last text it evaluated, so the next text only decodes what changed.
//!
//! Two facts about llama.cpp shape this file (see `tests/fixtures/README.md`):
//! - flash attention changes results, so it is off unless asked for;
//! - how a text is split into decodes changes results when a decode is tiny (1–2 tokens on
//!   this model, < 16 on K-quants). Every decode here is therefore at least [`MIN_DECODE`]
//!   tokens long whenever the text is, and chunks are balanced, so the numbers of a text never
//!   depend on how it was typed.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token_type::LlamaTokenAttr;

use crate::stats::{summarize_row, RowError, RowSummary};
use crate::vocab::{Piece, Vocab};

/// The smallest decode the engine issues (unless the whole text is shorter): llama.cpp's
/// results for 1- and 2-token decodes differ from a whole-text decode; 4 and more matched on
/// this model, 16 and more on K-quants (tests/fixtures/README.md). 16 keeps a keystroke cheap
/// and is proven bit-exact by tests/engine.rs.
pub const MIN_DECODE: usize = 16;
/// The largest decode. Bounds llama.cpp's logits buffer (chunk × |V| floats: 12.6 MB for the
/// default model) and lets a long evaluation notice a newer request between chunks.
pub const MAX_DECODE: usize = 64;
/// The most tokens of one multi-sequence decode when scoring fill-in candidates: 7 tails of
/// [`MIN_DECODE`] tokens side by side fit; on two CPU cores ≈ 0.6 s, the longest a cancel waits.
pub const MAX_WAVE: usize = 128;

/// How a model is loaded and its context made; llama.cpp's own flag names in the CLI.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    pub path: PathBuf,
    pub n_gpu_layers: u32,
    pub ctx_size: u32,
    pub threads: u32,
    pub flash_attn: bool,
}

/// How each row is summarised: the temperature of the softmax and the top-k kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewOptions {
    pub temp: f32,
    pub n_probs: usize,
}

impl Default for ViewOptions {
    fn default() -> Self {
        Self {
            temp: 1.0,
            n_probs: 10,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("llama.cpp could not initialise its backend: {0}")]
    Backend(String),
    #[error("llama.cpp could not load the model{}", suffix(.0))]
    Load(Option<String>),
    #[error("llama.cpp could not create a context (n_ctx {n_ctx}){}", suffix(.detail))]
    Context { n_ctx: u32, detail: Option<String> },
    #[error("llama.cpp failed to decode: {0}")]
    Decode(String),
    #[error("{0}")]
    Row(#[from] RowError),
    #[error("text is empty: there is nothing to score")]
    Empty,
    #[error(
        "text has {n_tokens} tokens, more than the context holds ({n_ctx}); use -c to enlarge it"
    )]
    TooLong { n_tokens: usize, n_ctx: usize },
}

fn suffix(d: &Option<String>) -> String {
    d.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
}

/// llama.cpp's backend may be initialised once per process; it lives as long as the process.
fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| LlamaBackend::init().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| EngineError::Backend(e.clone()))
}

/// A loaded model and its vocabulary.
pub struct Model {
    model: LlamaModel,
    vocab: std::sync::Arc<Vocab>,
    options: ModelOptions,
}

/// Facts about a loaded model shown to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub file_name: String,
    pub n_vocab: usize,
    pub n_ctx_train: u32,
    pub n_params: u64,
    pub gpu_layers: u32,
    pub gpu_available: bool,
}

impl Model {
    /// Load a model. `progress` gets values in 0..=1 and may return false to cancel the load.
    /// The caller is expected to have checked the file first (see `gguf::inspect`): llama.cpp
    /// aborts the process on some malformed files.
    pub fn load(
        options: &ModelOptions,
        progress: impl FnMut(f32) -> bool + 'static,
    ) -> Result<Self, EngineError> {
        let backend = backend()?;
        let params = LlamaModelParams::default()
            .with_n_gpu_layers(options.n_gpu_layers)
            .with_progress_callback(progress);
        crate::logging::clear_last_llama_error();
        let model = LlamaModel::load_from_file(backend, &options.path, &params)
            .map_err(|_| EngineError::Load(crate::logging::last_llama_error()))?;
        let vocab = std::sync::Arc::new(read_vocab(&model));
        Ok(Self {
            model,
            vocab,
            options: options.clone(),
        })
    }

    pub fn vocab(&self) -> &std::sync::Arc<Vocab> {
        &self.vocab
    }

    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            file_name: self
                .options
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            n_vocab: self.vocab.len(),
            n_ctx_train: self.model.n_ctx_train(),
            n_params: self.model.n_params(),
            gpu_layers: if llama_cpp_2::max_devices() > 0 && gpu_built() {
                self.options.n_gpu_layers.min(self.model.n_layer() + 1)
            } else {
                0
            },
            gpu_available: gpu_built(),
        }
    }

    /// Tokenize with the model's own BOS rule. Text that looks like a special token
    /// (`<|im_start|>`) is tokenized as plain text: user input never smuggles in control tokens.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let vocab = self.model.vocab();
        vocab
            .tokenize(text.as_bytes(), true, false)
            .into_iter()
            .map(|t| u32::try_from(t.0).unwrap_or(0))
            .collect()
    }

    /// A new evaluation session with its own llama.cpp context (one sequence).
    pub fn session(&self) -> Result<Session<'_>, EngineError> {
        self.make_session(self.options.ctx_size.max(16), 1)
    }

    /// A session for scoring several texts side by side: `n_seq` llama.cpp sequences, each in
    /// its own KV-cache stream of `per_seq_ctx` tokens (used by fill-in).
    ///
    /// Separate streams, not one unified cache: with llama-cpp-2 0.1.160, sequences that share
    /// prefix cells in a unified cache changed each other's numbers (up to 0.25 in logprob on
    /// the default model); with a stream per sequence and the prefix copied, every sequence
    /// gets exactly the numbers of a single-sequence decode.
    pub fn batch_session(&self, n_seq: u32, per_seq_ctx: u32) -> Result<Session<'_>, EngineError> {
        let n_seq = n_seq.clamp(1, 64);
        self.make_session(per_seq_ctx.max(16).saturating_mul(n_seq), n_seq)
    }

    fn make_session(&self, n_ctx: u32, n_seq: u32) -> Result<Session<'_>, EngineError> {
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_seq_max(n_seq)
            .with_kv_unified(n_seq == 1)
            .with_n_batch(512)
            .with_n_ubatch(512)
            .with_n_threads(self.options.threads as i32)
            .with_n_threads_batch(self.options.threads as i32)
            .with_flash_attention_policy(i32::from(self.options.flash_attn));
        crate::logging::clear_last_llama_error();
        let ctx = self
            .model
            .new_context(backend()?, params)
            .map_err(|_| EngineError::Context {
                n_ctx,
                detail: crate::logging::last_llama_error(),
            })?;
        // Tokens one sequence may hold.
        let n_ctx = ctx.n_ctx() as usize / n_seq as usize;
        // llama.cpp aborts (GGML_ASSERT) on a decode larger than n_batch, which it clamps to
        // n_ctx: every decode below stays within it.
        let batch_capacity = (ctx.n_batch() as usize).clamp(1, 512);
        Ok(Session {
            model: self,
            ctx,
            batch: LlamaBatch::new(batch_capacity, n_seq as i32),
            batch_capacity,
            n_seq: n_seq as usize,
            n_ctx,
            cached_tokens: Vec::new(),
            cached_rows: Vec::new(),
            cached_view: None,
        })
    }
}

fn gpu_built() -> bool {
    cfg!(any(feature = "cuda", feature = "vulkan", feature = "metal"))
}

fn read_vocab(model: &LlamaModel) -> Vocab {
    let vocab = model.vocab();
    let n = vocab.n_tokens().max(0);
    let pieces = (0..n)
        .map(|i| {
            let token = LlamaToken(i);
            let attrs = vocab.attr(token);
            let special = attrs.contains(LlamaTokenAttr::Control)
                || attrs.contains(LlamaTokenAttr::UserDefined) && vocab.is_eog(token);
            Piece {
                bytes: vocab.token_to_piece(token, true, None),
                special,
            }
        })
        .collect();
    Vocab::new(pieces)
}

/// The result of evaluating one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The tokens evaluated (at most n_ctx of them).
    pub tokens: Vec<u32>,
    /// `rows[i]` summarises p_i, the distribution after token i (which predicts token i + 1).
    pub rows: Vec<RowSummary>,
    /// Tokens of the text before truncation to the context size.
    pub n_tokens_total: usize,
    /// How many tokens this call decoded (the rest came from the cache).
    pub decoded: usize,
    /// The call stopped early because `cancel` said so; `rows` covers a prefix only.
    pub cancelled: bool,
}

impl Evaluation {
    pub fn truncated(&self) -> bool {
        self.tokens.len() < self.n_tokens_total
    }
}

/// A llama.cpp context and what it remembers of the last text.
pub struct Session<'m> {
    model: &'m Model,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    /// Tokens the batch (and one decode) holds at most.
    batch_capacity: usize,
    /// Sequences (KV-cache streams) of the context; 1 except for fill-in batches.
    n_seq: usize,
    n_ctx: usize,
    /// Tokens whose keys and values are in the KV cache of sequence 0, in order.
    cached_tokens: Vec<u32>,
    /// `cached_rows[i]` summarises p_i for the cached tokens; its target is the cached token
    /// i + 1, so the last cached row has no target and is always decoded again.
    cached_rows: Vec<RowSummary>,
    cached_view: Option<ViewOptions>,
}

impl<'m> Session<'m> {
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Tokens one sequence may hold.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Sequences (KV-cache streams) the session scores side by side.
    pub fn n_seq(&self) -> usize {
        self.n_seq
    }

    /// The largest single decode: [`MAX_DECODE`], or less when the context is tiny.
    fn max_decode(&self) -> usize {
        MAX_DECODE.min(self.batch_capacity)
    }

    /// The most tokens one wave of [`Session::sequence_logprobs`] decodes: [`MAX_WAVE`], or
    /// less when the batch is smaller.
    fn max_wave(&self) -> usize {
        MAX_WAVE.min(self.batch_capacity)
    }

    /// Forget the cached text (the next evaluation decodes from scratch).
    pub fn reset(&mut self) {
        self.ctx.clear_kv_cache();
        self.cached_tokens.clear();
        self.cached_rows.clear();
    }

    /// Evaluate `tokens`: every position's distribution. Reuses the cached prefix: only the
    /// tokens from `start` on are decoded, where `start` is below the common prefix and far
    /// enough back that the first decode has at least [`MIN_DECODE`] tokens. `cancel` is asked
    /// between chunks; a cancelled evaluation still leaves a consistent cache behind.
    pub fn evaluate(
        &mut self,
        tokens: &[u32],
        view: ViewOptions,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Evaluation, EngineError> {
        if tokens.is_empty() {
            return Err(EngineError::Empty);
        }
        let n_tokens_total = tokens.len();
        let tokens = &tokens[..tokens.len().min(self.n_ctx)];
        let n = tokens.len();

        if self.cached_view != Some(view) {
            // Cached summaries were made at another temperature or k: they cannot be reused.
            self.cached_rows.clear();
            self.cached_view = Some(view);
        }
        let reusable_rows = self.cached_rows.len().min(self.cached_tokens.len());
        let common = common_prefix(&self.cached_tokens, tokens).min(reusable_rows);
        let start = plan_start(common, n);

        if self.cached_tokens.len() > start {
            self.ctx
                .kv_cache_seq_rm(0, Some(start as u32), None)
                .map_err(|e| EngineError::Decode(e.to_string()))?;
            self.cached_tokens.truncate(start);
        }
        self.cached_rows.truncate(start);

        let mut cancelled = false;
        let mut pos = start;
        for len in plan_chunks(n - start, self.max_decode()) {
            if pos > start && cancel() {
                cancelled = true;
                break;
            }
            self.decode_chunk(tokens, pos, len, view)?;
            pos += len;
        }

        Ok(Evaluation {
            tokens: self.cached_tokens.clone(),
            rows: self.cached_rows.clone(),
            n_tokens_total,
            decoded: pos - start,
            cancelled,
        })
    }

    /// Decode `tokens[pos..pos + len]` with logits for every position and summarise each row
    /// as soon as it is read.
    fn decode_chunk(
        &mut self,
        tokens: &[u32],
        pos: usize,
        len: usize,
        view: ViewOptions,
    ) -> Result<(), EngineError> {
        self.decode_tokens(&tokens[pos..pos + len], pos, 0)?;
        for i in 0..len {
            let logits = self.ctx.get_logits_ith(i as i32);
            let target = tokens.get(pos + i + 1).copied();
            let row = summarize_row(logits, view.temp, view.n_probs, target)?;
            self.cached_rows.push(row);
        }
        self.cached_tokens
            .extend_from_slice(&tokens[pos..pos + len]);
        Ok(())
    }

    /// The log-probability of every token of several token sequences that share a prefix:
    /// `out[s][j] = ln p(seqs[s][j] | seqs[s][..j])` for j ≥ 1 (`None` for j = 0, which nothing
    /// predicts). Returns `None` when cancelled. The cached text is forgotten.
    ///
    /// The shared prefix is decoded once, on sequence 0. In a session with several KV-cache
    /// streams ([`Model::batch_session`]) the tails are then decoded side by side in waves,
    /// one sequence per stream on a copy of the prefix; with one stream, one tail at a time on
    /// top of the prefix. Every decode holds at least [`MIN_DECODE`] tokens (a short tail
    /// re-decodes the end of the prefix), so every sequence gets the numbers `evaluate` gives
    /// it (llama.cpp's numbers depend on decode sizes: tests/engine.rs).
    pub fn sequence_logprobs(
        &mut self,
        seqs: &[Vec<u32>],
        temp: f32,
        cancel: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Option<Vec<Vec<Option<f64>>>>, EngineError> {
        if seqs.iter().any(Vec::is_empty) {
            return Err(EngineError::Empty);
        }
        if let Some(long) = seqs.iter().find(|s| s.len() > self.n_ctx) {
            return Err(EngineError::TooLong {
                n_tokens: long.len(),
                n_ctx: self.n_ctx,
            });
        }
        self.reset();
        let mut out: Vec<Vec<Option<f64>>> = seqs.iter().map(|s| vec![None; s.len()]).collect();
        let Some(first) = seqs.first() else {
            return Ok(Some(out));
        };
        // With spare streams the tails go to streams 1.., sequence 0 keeping the whole shared
        // prefix; with one stream the tails replace each other on sequence 0, so the prefix
        // stops MIN_DECODE tokens before the shortest sequence ends.
        let spare = self.n_seq > 1;
        let (first_slot, slots) = if spare { (1, self.n_seq - 1) } else { (0, 1) };
        let margin = if spare { 1 } else { MIN_DECODE };
        // Every sequence keeps at least one token of its own.
        let base = seqs
            .iter()
            .map(|s| {
                common_prefix(first, s)
                    .min(s.len() - 1)
                    .min(s.len().saturating_sub(margin))
            })
            .min()
            .unwrap_or(0);
        let total: usize = base + seqs.iter().map(|s| s.len() - base).sum::<usize>();
        let mut done = 0;

        // 1. The shared prefix. Its last row predicts each sequence's first own token.
        let mut pos = 0;
        for len in plan_chunks(base, self.max_decode()) {
            if cancel() {
                self.reset();
                return Ok(None);
            }
            self.decode_tokens(&first[pos..pos + len], pos, 0)?;
            for i in 0..len {
                let j = pos + i + 1;
                let row = self.ctx.get_logits_ith(i as i32);
                let targets: Vec<u32> = seqs.iter().map(|s| s[j]).collect();
                let lps = crate::stats::logprobs_of(row, temp, &targets)?;
                for (o, lp) in out.iter_mut().zip(lps) {
                    o[j] = Some(lp);
                }
            }
            pos += len;
            done += len;
            progress(done, total);
        }

        // 2. The tails, in waves: sequences of the same length (llama.cpp then keeps a wave in
        //    one micro-batch instead of splitting it into tiny ones), at most MAX_WAVE tokens
        //    (a cancel waits for one wave at most).
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&s| seqs[s].len());
        for group in order.chunk_by(|&a, &b| seqs[a].len() == seqs[b].len()) {
            let len = seqs[group[0]].len();
            let per_wave = slots.min(self.max_wave() / (len - base)).max(1);
            for wave in group.chunks(per_wave) {
                // Short tails start earlier so that the wave's decode is not tiny.
                let start = base.min(len.saturating_sub(MIN_DECODE.div_ceil(wave.len())));
                let tails = Wave {
                    seqs,
                    members: wave,
                    first_slot,
                    start,
                    base,
                };
                let mut step = |wave_done: usize| progress(done + wave_done, total);
                if !self.decode_wave(&tails, temp, cancel, &mut step, &mut out)? {
                    self.reset();
                    return Ok(None);
                }
                done += (len - base) * wave.len();
            }
        }
        self.reset();
        Ok(Some(out))
    }

    /// Decode the tails of one wave, member k on sequence (and stream) `first_slot + k`, and
    /// write the log-probability of each token after `base` into `out`. A lone member is
    /// decoded in chunks (it may be long), asking `cancel` between them; several members in
    /// one batch. Returns false when cancelled.
    fn decode_wave(
        &mut self,
        w: &Wave<'_>,
        temp: f32,
        cancel: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(usize),
        out: &mut [Vec<Option<f64>>],
    ) -> Result<bool, EngineError> {
        let err = |e: &dyn std::fmt::Display| EngineError::Decode(e.to_string());
        // Each member's sequence: the prefix up to `start`, nothing else.
        for slot in w.slots() {
            if slot == 0 {
                self.ctx
                    .kv_cache_seq_rm(0, Some(w.start as u32), None)
                    .map_err(|e| err(&e))?;
            } else {
                self.ctx
                    .clear_kv_cache_seq(Some(slot as u32), None, None)
                    .map_err(|e| err(&e))?;
                if w.start > 0 {
                    self.ctx
                        .copy_kv_cache_seq(0, slot as i32, None, None)
                        .map_err(|e| err(&e))?;
                    self.ctx
                        .kv_cache_seq_rm(slot as i32, Some(w.start as u32), None)
                        .map_err(|e| err(&e))?;
                }
            }
        }
        if let ([s], Some(slot)) = (w.members, w.slots().next()) {
            let seq = &w.seqs[*s];
            let mut pos = w.start;
            for len in plan_chunks(seq.len() - w.start, self.max_decode()) {
                if cancel() {
                    return Ok(false);
                }
                self.decode_tokens(&seq[pos..pos + len], pos, slot as i32)?;
                for i in 0..len {
                    w.record(&self.ctx, i as i32, *s, pos + i, temp, out)?;
                }
                pos += len;
                progress(pos.saturating_sub(w.base));
            }
            return Ok(true);
        }
        if cancel() {
            return Ok(false);
        }
        self.batch.clear();
        for (&s, slot) in w.members.iter().zip(w.slots()) {
            for (j, &t) in w.seqs[s].iter().enumerate().skip(w.start) {
                self.batch
                    .add(LlamaToken(t as i32), j as i32, &[slot as i32], true)
                    .map_err(|e| err(&e))?;
            }
        }
        self.ctx.decode(&mut self.batch).map_err(|e| err(&e))?;
        let mut i = 0;
        for &s in w.members {
            for j in w.start..w.seqs[s].len() {
                w.record(&self.ctx, i, s, j, temp, out)?;
                i += 1;
            }
        }
        progress(w.members.len() * (w.seqs[w.members[0]].len() - w.base));
        Ok(true)
    }

    /// One decode of `tokens` at positions `pos..` on sequence `seq`, logits for every row.
    fn decode_tokens(&mut self, tokens: &[u32], pos: usize, seq: i32) -> Result<(), EngineError> {
        self.batch.clear();
        for (i, &t) in tokens.iter().enumerate() {
            self.batch
                .add(LlamaToken(t as i32), (pos + i) as i32, &[seq], true)
                .map_err(|e| EngineError::Decode(e.to_string()))?;
        }
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| EngineError::Decode(e.to_string()))
    }

    /// Decode only: llama.cpp's work plus touching every logit row, with no statistics. The
    /// benchmark's floor. Returns a checksum so the reads are not optimised away.
    pub fn decode_only(&mut self, tokens: &[u32]) -> Result<f32, EngineError> {
        self.reset();
        let tokens = &tokens[..tokens.len().min(self.n_ctx)];
        let mut checksum = 0f32;
        let mut pos = 0;
        for len in plan_chunks(tokens.len(), self.max_decode()) {
            self.decode_tokens(&tokens[pos..pos + len], pos, 0)?;
            for i in 0..len {
                checksum += self.ctx.get_logits_ith(i as i32)[0];
            }
            pos += len;
        }
        self.reset();
        Ok(checksum)
    }
}

/// One wave of [`Session::sequence_logprobs`]: the sequences `members` (indices into `seqs`,
/// all of one length) decoded from position `start`, member k on sequence `first_slot + k`.
/// Rows up to `base` came from the shared prefix already.
struct Wave<'a> {
    seqs: &'a [Vec<u32>],
    members: &'a [usize],
    first_slot: usize,
    start: usize,
    base: usize,
}

impl Wave<'_> {
    fn slots(&self) -> std::ops::Range<usize> {
        self.first_slot..self.first_slot + self.members.len()
    }

    /// Batch row `i` holds member `s`'s token at position `j`: its logits predict token j + 1.
    fn record(
        &self,
        ctx: &LlamaContext<'_>,
        i: i32,
        s: usize,
        j: usize,
        temp: f32,
        out: &mut [Vec<Option<f64>>],
    ) -> Result<(), EngineError> {
        match self.seqs[s].get(j + 1) {
            Some(&next) if j >= self.base => {
                let row = ctx.get_logits_ith(i);
                out[s][j + 1] = Some(crate::stats::logprobs_of(row, temp, &[next])?[0]);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Length of the common prefix of two token sequences.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Where decoding must start for a text of `n` tokens whose first `common` tokens are cached.
/// At most `common - 1`: the last reused row must get its new target, which needs its logits.
/// At most `n - MIN_DECODE`: the first decode is never tiny.
pub fn plan_start(common: usize, n: usize) -> usize {
    common
        .saturating_sub(1)
        .min(n.saturating_sub(MIN_DECODE))
        .min(n.saturating_sub(1))
}

/// Split `n` tokens into balanced decodes of at most `max` (normally [`MAX_DECODE`]), none
/// shorter than [`MIN_DECODE`] unless `n` or `max` itself is.
pub fn plan_chunks(n: usize, max: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let parts = n.div_ceil(max.max(1));
    let base = n / parts;
    let extra = n % parts;
    (0..parts).map(|i| base + usize::from(i < extra)).collect()
}

/// Check the path before llama.cpp sees it (see `crate::gguf`).
pub fn check_model_path(path: &Path) -> Result<crate::gguf::GgufInfo, crate::gguf::GgufError> {
    crate::gguf::inspect(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn start_leaves_a_decode_of_min_size_and_refreshes_the_last_target() {
        assert_eq!(plan_start(0, 10), 0);
        assert_eq!(plan_start(10, 10), 0);
        assert_eq!(plan_start(100, 101), 101 - MIN_DECODE);
        assert_eq!(plan_start(50, 200), 49);
        assert_eq!(plan_start(200, 200), 200 - MIN_DECODE);
    }

    proptest! {
        #[test]
        fn chunks_cover_and_are_balanced(n in 0usize..5000, max in prop_oneof![Just(MAX_DECODE), 1usize..600]) {
            let c = plan_chunks(n, max);
            prop_assert_eq!(c.iter().sum::<usize>(), n);
            for &len in &c {
                prop_assert!(len <= max);
                prop_assert!(len >= MIN_DECODE.min(n).min(max / 2));
            }
        }

        #[test]
        fn start_is_safe(common in 0usize..700, n in 1usize..700) {
            let common = common.min(n);
            let s = plan_start(common, n);
            prop_assert!(s < n);
            prop_assert!(s < common.max(1));
            prop_assert!(n - s >= MIN_DECODE.min(n));
        }
    }
}
