//! A llama.cpp context and what it remembers of the last text: the tokens in its KV cache and
//! their row summaries, so the next text decodes only what changed.

use std::num::NonZeroU32;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use std::mem::ManuallyDrop;

use super::edits::Edits;
use super::hook::{with_callback, Hook, NoTap};
use super::loader::{backend, cause, Model, ModelError};
use crate::analysis::stats::{logprobs_of, summarize_row, watch_stats, RowSummary, ViewOptions};
use std::sync::Arc;

pub use super::plan::{common_prefix, plan_chunks, plan_start, MAX_DECODE, MAX_WAVE, MIN_DECODE};

impl Model {
    /// A new evaluation session with its own llama.cpp context (one sequence).
    pub fn session(&self) -> Result<Session<'_>, ModelError> {
        self.make_session(self.options.ctx_size.max(16), 1)
    }

    /// A session for scoring several texts side by side: `n_seq` llama.cpp sequences, each in
    /// its own KV-cache stream of `per_seq_ctx` tokens (used by fill-in).
    ///
    /// Separate streams, not one unified cache: with llama-cpp-2 0.1.160, sequences that share
    /// prefix cells in a unified cache changed each other's numbers (up to 0.25 in logprob on
    /// the default model); with a stream per sequence and the prefix copied, every sequence
    /// gets exactly the numbers of a single-sequence decode.
    pub fn batch_session(&self, n_seq: u32, per_seq_ctx: u32) -> Result<Session<'_>, ModelError> {
        let n_seq = n_seq.clamp(1, 64);
        self.make_session(per_seq_ctx.max(16).saturating_mul(n_seq), n_seq)
    }

    /// A session that trusts every layout, for the self-check itself ([`Model::layout`]).
    pub(super) fn raw_session(
        &self,
        per_seq_ctx: u32,
        n_seq: u32,
    ) -> Result<Session<'_>, ModelError> {
        let mut s = self.make_session(per_seq_ctx.max(16).saturating_mul(n_seq), n_seq)?;
        s.checked = false;
        Ok(s)
    }

    fn make_session(&self, n_ctx: u32, n_seq: u32) -> Result<Session<'_>, ModelError> {
        self.make_session_with(n_ctx, n_seq, n_seq == 1)
    }

    /// A context of `n_ctx` cells for `n_seq` sequences: one KV-cache stream they all share
    /// (`unified`), or a stream each of `n_ctx / n_seq` cells.
    pub(super) fn make_session_with(
        &self,
        n_ctx: u32,
        n_seq: u32,
        unified: bool,
    ) -> Result<Session<'_>, ModelError> {
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_seq_max(n_seq)
            .with_kv_unified(unified)
            .with_n_batch(512)
            .with_n_ubatch(512)
            .with_n_threads(self.options.threads as i32)
            .with_n_threads_batch(self.options.threads as i32)
            .with_flash_attention_policy(i32::from(self.options.flash_attn));
        // Every session carries the tensor hook: with no edits it asks for no node and the
        // graph is computed as without one; with edits (ablation, steering) it writes them.
        let mut hook = Hook::new(NoTap);
        hook.set_edits(self.default_edits());
        let hook = Box::into_raw(Box::new(hook));
        let params = with_callback(params, hook);
        let backend = backend()?;
        // Making a context allocates and clears its KV cache on the devices: on RPC servers,
        // round trips the watchdog must cover.
        let busy = super::rpc::Busy::start();
        let (ctx, errors) =
            crate::support::logging::capture_errors(|| self.model.new_context(backend, params));
        drop(busy);
        let ctx = match ctx {
            Ok(ctx) => ctx,
            Err(_) => {
                // SAFETY: made above by Box::into_raw; no context points to it.
                drop(unsafe { Box::from_raw(hook) });
                return Err(ModelError::Context {
                    n_ctx,
                    detail: cause(&errors),
                });
            }
        };
        // Tokens one sequence may hold (in a unified cache, all of them: they share it).
        let n_ctx = ctx.n_ctx() as usize / if unified { 1 } else { n_seq as usize };
        // llama.cpp aborts (GGML_ASSERT) on a decode larger than n_batch, which it clamps to
        // n_ctx: every decode below stays within it.
        let batch_capacity = (ctx.n_batch() as usize).clamp(1, 512);
        Ok(Session {
            model: self,
            ctx: ManuallyDrop::new(ctx),
            hook,
            batch: LlamaBatch::new(batch_capacity, n_seq as i32),
            batch_capacity,
            n_seq: n_seq as usize,
            n_ctx,
            cached_tokens: Vec::new(),
            cached_rows: Vec::new(),
            cached_view: None,
            last_decode_rows: 0,
            total_tokens: 0,
            watch: Vec::new(),
            checked: true,
            drafted: 0,
            decodes: 0,
        })
    }
}

/// One position's row summary from its logits, with the watched tokens' statistics: how
/// every evaluation summarises a row.
pub(super) fn summarize_logits(
    logits: &[f32],
    view: ViewOptions,
    target: Option<u32>,
    watch: &[u32],
) -> Result<RowSummary, ModelError> {
    let mut row = summarize_row(logits, view.temp, view.n_probs, target)?;
    if !watch.is_empty() {
        row.watched = watch_stats(logits, &row, watch)?;
    }
    Ok(row)
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
    pub(super) model: &'m Model,
    /// Freed in `Drop`, under the RPC watchdog (freeing talks to the servers).
    pub(super) ctx: ManuallyDrop<LlamaContext<'m>>,
    /// The context's eval-callback data (`Box::into_raw`), freed in `Drop` after it.
    hook: *mut Hook<NoTap>,
    pub(super) batch: LlamaBatch<'static>,
    /// Tokens the batch (and one decode) holds at most.
    pub(super) batch_capacity: usize,
    /// Sequences (KV-cache streams) of the context; 1 except for fill-in batches.
    pub(super) n_seq: usize,
    pub(super) n_ctx: usize,
    /// Tokens whose keys and values are in the KV cache of sequence 0, in order.
    pub(super) cached_tokens: Vec<u32>,
    /// `cached_rows[i]` summarises p_i for the cached tokens; its target is the cached token
    /// i + 1, so the last cached row has no target and is always decoded again.
    pub(super) cached_rows: Vec<RowSummary>,
    pub(super) cached_view: Option<ViewOptions>,
    /// Rows (tokens) of the last decode: its logits are still in llama.cpp's buffer.
    pub(super) last_decode_rows: usize,
    /// Tokens of the text being evaluated, before truncation to the context.
    pub(super) total_tokens: usize,
    /// Tokens whose probability and rank every row summary also keeps (a watch-list).
    pub(super) watch: Vec<u32>,
    /// Whether layout-dependent work (prefix reuse, sequences side by side) asks the model's
    /// self-check first; false only in the self-check's own sessions.
    pub(super) checked: bool,
    /// Draft tokens ([`Session::draft`]) whose cells follow the cached tokens in the KV
    /// cache: never part of an evaluation, removed before the next one.
    pub(super) drafted: usize,
    /// llama.cpp decodes made so far.
    pub(super) decodes: usize,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _busy = super::rpc::Busy::start();
        // SAFETY: `ctx` is dropped here once and never used again: `self` is being dropped.
        // The hook it pointed to is freed after it.
        unsafe {
            ManuallyDrop::drop(&mut self.ctx);
            drop(Box::from_raw(self.hook));
        }
    }
}

impl<'m> Session<'m> {
    /// The summary of row `i` of the last decode (`target` the token that followed), with the
    /// watched tokens' statistics when there is a watch-list.
    pub(super) fn summarize(
        &self,
        i: usize,
        view: ViewOptions,
        target: Option<u32>,
    ) -> Result<RowSummary, ModelError> {
        summarize_logits(self.ctx.get_logits_ith(i as i32), view, target, &self.watch)
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// How many decodes this session has made.
    pub fn decodes(&self) -> usize {
        self.decodes
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
    pub(super) fn max_decode(&self) -> usize {
        MAX_DECODE.min(self.batch_capacity)
    }

    /// Watch these tokens at every position from now on (their probability and rank join
    /// each row summary). Cached summaries made with another watch-list are not reused.
    pub fn set_watch(&mut self, ids: &[u32]) {
        if self.watch != ids {
            self.watch = ids.to_vec();
            self.cached_rows.clear();
            self.cached_view = None;
        }
    }

    fn hook_mut(&mut self) -> &mut Hook<NoTap> {
        // SAFETY: the hook lives as long as the session; llama.cpp uses it only inside a
        // decode, which takes `&mut self`, so this is the only reference.
        unsafe { &mut *self.hook }
    }

    /// The intervention written into every decode, if any.
    pub fn edits(&self) -> Option<&Arc<Edits>> {
        // SAFETY: as in `hook_mut`.
        unsafe { (*self.hook).edits() }
    }

    /// Write `edits` into every later decode (`None`: the model as it is). The cache knows
    /// what it was made with: a change forgets it, so no number of an intervened text is ever
    /// reused for another intervention or for none, and back.
    pub fn set_edits(&mut self, edits: Option<Arc<Edits>>) {
        let same = match (self.edits(), &edits) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, Some(b)) => b.is_empty(),
            (Some(_), None) => false,
        };
        if !same {
            self.reset();
            self.cached_view = None;
            self.hook_mut().set_edits(edits);
        }
    }

    /// Stream `seq` made a copy of stream 0's first `from` positions (empty for 0).
    pub(super) fn fresh_stream(&mut self, seq: i32, from: usize) -> Result<(), ModelError> {
        let kv = |e: &dyn std::fmt::Display| ModelError::KvCache(e.to_string());
        self.ctx
            .clear_kv_cache_seq(Some(seq as u32), None, None)
            .map_err(|e| kv(&e))?;
        if from > 0 {
            self.ctx
                .copy_kv_cache_seq(0, seq, None, None)
                .map_err(|e| kv(&e))?;
            self.ctx
                .kv_cache_seq_rm(seq, Some(from as u32), None)
                .map_err(|e| kv(&e))?;
        }
        Ok(())
    }

    /// Write `edits` into the next decodes without forgetting the cache: for callers that
    /// manage the streams themselves and reset the session when done (a trace's patches).
    pub(super) fn set_edits_keeping_cache(&mut self, edits: Option<Arc<Edits>>) {
        self.hook_mut().set_edits(edits);
    }

    /// Forget the cached text (the next evaluation decodes from scratch).
    pub fn reset(&mut self) {
        let busy = super::rpc::Busy::start();
        self.ctx.clear_kv_cache();
        drop(busy);
        self.cached_tokens.clear();
        self.cached_rows.clear();
        self.drafted = 0;
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
    ) -> Result<Evaluation, ModelError> {
        let start = self.plan(tokens, view)?;
        self.evaluate_from(tokens, view, start, cancel, &mut |_, _, _| Ok(()))
    }

    /// Where an evaluation of `tokens` must start decoding (see [`plan_start`]): the cached
    /// prefix below it is reused. Changes nothing.
    pub fn plan(&mut self, tokens: &[u32], view: ViewOptions) -> Result<usize, ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::Empty);
        }
        let n = tokens.len().min(self.n_ctx);
        let reusable_rows = if self.cached_view == Some(view) {
            self.cached_rows.len().min(self.cached_tokens.len())
        } else {
            // Cached summaries were made at another temperature or k: they cannot be reused.
            0
        };
        let common = common_prefix(&self.cached_tokens, &tokens[..n]).min(reusable_rows);
        let start = plan_start(common, n);
        // Only a start past 0 reuses cells, so only then is the self-check asked (≈ 0.6 s).
        if start > 0 && self.checked && !self.model.layout().incremental_exact() {
            return Ok(0); // It found that a tail decoded after a cached head differs.
        }
        Ok(start)
    }

    /// Evaluate `tokens`, decoding from `start` (at most what [`Session::plan`] says).
    /// `on_chunk(pos, len, session)` runs after each decode, while its rows are readable with
    /// [`Session::row`].
    pub fn evaluate_from(
        &mut self,
        tokens: &[u32],
        view: ViewOptions,
        start: usize,
        cancel: &dyn Fn() -> bool,
        on_chunk: &mut dyn FnMut(usize, usize, &Self) -> Result<(), ModelError>,
    ) -> Result<Evaluation, ModelError> {
        let (tokens, start) = self.begin(tokens, view, start)?;
        let mut cancelled = false;
        let mut pos = start;
        for len in plan_chunks(tokens.len() - start, self.max_decode()) {
            if pos > start && cancel() {
                cancelled = true;
                break;
            }
            self.decode_chunk(tokens, pos, len, view)?;
            on_chunk(pos, len, self)?;
            pos += len;
        }
        Ok(self.evaluation(pos - start, cancelled))
    }

    /// Get ready to evaluate `tokens` from `start` (capped by [`Session::plan`]): the cache
    /// keeps what lies before. Returns the tokens that fit the context and the start.
    pub(super) fn begin<'t>(
        &mut self,
        tokens: &'t [u32],
        view: ViewOptions,
        start: usize,
    ) -> Result<(&'t [u32], usize), ModelError> {
        let start = start.min(self.plan(tokens, view)?);
        self.total_tokens = tokens.len();
        let tokens = &tokens[..tokens.len().min(self.n_ctx)];
        if self.cached_view != Some(view) {
            self.cached_rows.clear();
            self.cached_view = Some(view);
        }
        if self.cached_tokens.len() > start || self.drafted > 0 {
            self.ctx
                .kv_cache_seq_rm(0, Some(start as u32), None)
                .map_err(|e| ModelError::KvCache(e.to_string()))?;
            self.cached_tokens.truncate(start);
            self.drafted = 0;
        }
        self.cached_rows.truncate(start);
        Ok((tokens, start))
    }

    /// The evaluation as it stands after [`Session::begin`] and its chunks.
    pub(super) fn evaluation(&self, decoded: usize, cancelled: bool) -> Evaluation {
        Evaluation {
            tokens: self.cached_tokens.clone(),
            rows: self.cached_rows.clone(),
            n_tokens_total: self.total_tokens,
            decoded,
            cancelled,
        }
    }

    /// The tokens whose rows this session holds (the last text evaluated, or its prefix).
    pub fn cached(&self) -> &[u32] {
        &self.cached_tokens
    }

    /// The logits of row `i` of the last decode (valid until the next decode).
    pub fn row(&self, i: usize) -> &[f32] {
        self.ctx.get_logits_ith(i as i32)
    }

    /// Decode `tokens[pos..pos + len]` with logits for every position and summarise each row
    /// as soon as it is read.
    pub(super) fn decode_chunk(
        &mut self,
        tokens: &[u32],
        pos: usize,
        len: usize,
        view: ViewOptions,
    ) -> Result<(), ModelError> {
        self.decode_tokens(&tokens[pos..pos + len], pos, 0)?;
        for i in 0..len {
            let target = tokens.get(pos + i + 1).copied();
            let row = self.summarize(i, view, target)?;
            self.cached_rows.push(row);
        }
        self.cached_tokens
            .extend_from_slice(&tokens[pos..pos + len]);
        Ok(())
    }

    /// One decode of `tokens` at positions `pos..` on sequence `seq`, logits for every row.
    pub(super) fn decode_tokens(
        &mut self,
        tokens: &[u32],
        pos: usize,
        seq: i32,
    ) -> Result<(), ModelError> {
        self.batch.clear();
        for (i, &t) in tokens.iter().enumerate() {
            self.batch
                .add(LlamaToken(t as i32), (pos + i) as i32, &[seq], true)
                .map_err(|e| ModelError::Decode(e.to_string()))?;
        }
        self.last_decode_rows = 0;
        self.decode_batch()?;
        self.last_decode_rows = tokens.len();
        Ok(())
    }

    /// llama.cpp's decode of the batch as it stands, waited for (on a GPU or RPC servers it
    /// may run on after the call), under the watchdog; the hook's edits are checked after it.
    pub(super) fn decode_batch(&mut self) -> Result<(), ModelError> {
        self.hook_mut().arm();
        self.decodes += 1;
        let busy = super::rpc::Busy::start();
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| ModelError::Decode(e.to_string()))?;
        self.ctx.synchronize();
        drop(busy);
        // SAFETY: as in `hook_mut`; the decode is over.
        if let Err(e) = unsafe { (*self.hook).check() } {
            // The cache holds a text decoded without (all of) the intervention.
            self.reset();
            return Err(e);
        }
        Ok(())
    }

    /// `out[j]` = ln p(tokens[j] | tokens[..j]) (`None` for j = 0), the text decoded from
    /// scratch in [`plan_chunks`] as `score` decodes it (the cache is forgotten).
    pub(super) fn token_logprobs_alone(
        &mut self,
        tokens: &[u32],
        temp: f32,
    ) -> Result<Vec<Option<f64>>, ModelError> {
        if tokens.len() > self.n_ctx {
            return Err(ModelError::TooLong {
                n_tokens: tokens.len(),
                n_ctx: self.n_ctx,
            });
        }
        self.reset();
        let mut out = vec![None; tokens.len()];
        let mut pos = 0;
        for len in plan_chunks(tokens.len(), self.max_decode()) {
            self.decode_tokens(&tokens[pos..pos + len], pos, 0)?;
            for i in 0..len {
                if let Some(&t) = tokens.get(pos + i + 1) {
                    let row = self.ctx.get_logits_ith(i as i32);
                    out[pos + i + 1] = Some(logprobs_of(row, temp, &[t])?[0]);
                }
            }
            pos += len;
        }
        self.reset();
        Ok(out)
    }

    /// Decode only: llama.cpp's work plus touching every logit row, with no statistics. The
    /// benchmark's floor. Returns a checksum so the reads are not optimised away.
    pub fn decode_only(&mut self, tokens: &[u32]) -> Result<f32, ModelError> {
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
