//! One token after a shared prefix, for many words at once: the first bound of the vocabulary
//! search (`engine::search`), P(first token after the word | prefix, word) for every word,
//! from wide decodes of one token per word over a prefix decoded once.
//!
//! Why this gives each word the numbers of its text decoded alone, bit for bit. Every matrix
//! product of a row depends on that row alone (`kernels`: no repacking, no tiled kernel) as
//! long as a decode has two rows or more. What remains is attention, where a row reads the KV
//! cells it may see: ggml's softmax sums a row's exponentials eight cells at a time (in f32,
//! then the groups in f64), and the product with V sums each output over the cells in eight
//! lanes (cell c into lane c mod 8, in cell order). A row's result is therefore the same as
//! alone exactly when the cells it sees sit in the same places modulo the groups of eight as in
//! the text alone: cells it does not see contribute exact zeros wherever they are.
//!
//! So the cache is one stream (unified) laid out in blocks of eight cells: the prefix's whole
//! groups (cells `0..8g`) once, shared by every word's sequence; then a block per word slot:
//! a copy of the prefix's last `r = p − 8g` tokens (its own sequence), the word at lane `r`,
//! and fillers (a sequence no word sees) up to the block's end. Each word then sees the prefix
//! groups and its block, which hold what its text alone holds in the same lanes. Between waves
//! only the words' cells are removed; llama.cpp puts the next wave's tokens in the first free
//! cells in batch order, which are exactly the word lanes, block by block.
//!
//! The layout is llama.cpp's and ggml's behaviour today, not a promise of theirs: the search
//! checks the first words of each blank against the word decoded alone and stops using this
//! where they differ (`engine::search`), and tests/search.rs proves it on every test model.

use std::sync::Arc;

use llama_cpp_2::token::LlamaToken;

use super::edits::Edits;

use super::loader::{Model, ModelError};
use super::session::{plan_chunks, Session, MIN_DECODE};
use crate::analysis::stats::logprobs_of;

/// Cells per group: ggml's AVX2 group width in the softmax and in the f16 product with V.
const GROUP: usize = 8;

/// Word slots per context (words a wave). 32 keeps the attention of a wave over at most 512
/// cells: wider waves cost more per word here (README, "Benchmarks").
pub const FANOUT_WIDTH: usize = 32;

/// The most tokens one word decodes in a wave (its first bounds: that many targets).
pub const MAX_DEPTH: usize = 4;

/// A context for fan-outs over a prefix (see the module's note).
pub struct Fanout<'m> {
    session: Session<'m>,
    width: usize,
    /// The prefix laid out in the cache and the tokens a word decodes in it; `None` before
    /// the first wave.
    laid: Option<(Vec<u32>, usize)>,
    /// Cells of the context.
    cells: usize,
}

impl Model {
    /// A fan-out context for prefixes of up to `max_prefix` tokens, `width` words a wave
    /// (clamped to 4..=[`FANOUT_WIDTH`]).
    pub fn fanout(&self, max_prefix: usize, width: usize) -> Result<Fanout<'_>, ModelError> {
        let width = width.clamp(4, FANOUT_WIDTH);
        // Room for the longest prefix with the longest block (its last group almost full).
        let cells =
            (max_prefix / GROUP) * GROUP + width * (GROUP - 1 + MAX_DEPTH).next_multiple_of(GROUP);
        // Slots 1..=width, the fillers' sequence after them.
        let session = self.make_session_with(cells as u32, width as u32 + 2, true)?;
        Ok(Fanout {
            session,
            width,
            laid: None,
            cells,
        })
    }
}

/// Cells a block takes: the prefix's last tokens after its whole groups, then `depth` tokens
/// of the word, rounded up to whole groups.
fn block_len(prefix: usize, depth: usize) -> usize {
    (prefix % GROUP + depth).next_multiple_of(GROUP)
}

/// Cells a layout of `prefix` tokens, `depth` tokens a word and `width` slots takes.
fn cells_for(prefix: usize, depth: usize, width: usize) -> usize {
    (prefix / GROUP) * GROUP + width * block_len(prefix, depth)
}

/// One token of a decode: id, position, sequences, whether its row is read.
type Entry = (u32, usize, Vec<i32>, bool);

impl Fanout<'_> {
    /// Words one wave takes.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The intervention written into every decode (the search's session's); a change forgets
    /// the layout.
    pub fn set_edits(&mut self, edits: Option<Arc<Edits>>) {
        let same = match (self.session.edits(), &edits) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same {
            self.session.set_edits(edits);
            self.session.reset();
            self.laid = None;
        }
    }

    /// Whether prefixes of `n` tokens fit the context.
    pub fn fits(&self, n: usize) -> bool {
        cells_for(n, MAX_DEPTH, self.width) <= self.cells
    }

    /// For each word's tokens `seq` (the word at position `prefix.len()`, then the tokens
    /// after it; all of one length, 2..=[`MAX_DEPTH`] + 1): ln p(seq[j] | prefix, seq[..j]) for
    /// j ≥ 1, at temperature `temp`. At most [`Fanout::width`] words a call.
    pub fn logprobs(
        &mut self,
        prefix: &[u32],
        seqs: &[&[u32]],
        temp: f32,
    ) -> Result<Vec<Vec<f64>>, ModelError> {
        let Some(first) = seqs.first() else {
            return Ok(Vec::new());
        };
        let depth = first.len().saturating_sub(1);
        if !(1..=MAX_DEPTH).contains(&depth) || seqs.iter().any(|s| s.len() != depth + 1) {
            return Err(ModelError::Decode(format!(
                "a fan-out takes words of one length, 2 to {} tokens",
                MAX_DEPTH + 1
            )));
        }
        if seqs.len() > self.width {
            return Err(ModelError::Decode(format!(
                "{} words in one fan-out of {}",
                seqs.len(),
                self.width
            )));
        }
        if !self.fits(prefix.len()) {
            return Err(ModelError::TooLong {
                n_tokens: prefix.len(),
                n_ctx: self.cells,
            });
        }
        // Pad to a decode that is never tiny: copies of the last word on the next slots.
        let words = seqs.len().max(MIN_DECODE.div_ceil(depth)).min(self.width);
        let last = seqs[seqs.len() - 1];
        let padded: Vec<&[u32]> = (0..words).map(|k| *seqs.get(k).unwrap_or(&last)).collect();
        let p = prefix.len();
        let laid = self
            .laid
            .as_ref()
            .is_some_and(|(pre, d)| pre.as_slice() == prefix && *d == depth);
        let mut out = if laid {
            self.wave(p, &padded, temp)?
        } else {
            self.lay_out(prefix, &padded, temp)?
        };
        out.truncate(seqs.len());
        Ok(out)
    }

    /// A new layout: the prefix's whole groups, then a block per slot with the words of the
    /// first wave in place (unused slots get a copy of a word).
    fn lay_out(
        &mut self,
        prefix: &[u32],
        seqs: &[&[u32]],
        temp: f32,
    ) -> Result<Vec<Vec<f64>>, ModelError> {
        self.session.reset();
        self.laid = None;
        let p = prefix.len();
        let depth = seqs[0].len() - 1;
        let whole = (p / GROUP) * GROUP;
        let width = self.width;
        let slots: Vec<i32> = (1..=width as i32).collect();
        let filler = vec![width as i32 + 1];
        let mut entries: Vec<Entry> = Vec::new();
        // The shared groups: decoded on their own when long, else with the blocks.
        for (j, &t) in prefix.iter().enumerate().take(whole) {
            entries.push((t, j, slots.clone(), false));
        }
        if whole >= MIN_DECODE {
            self.decode_entries(&entries, &mut |_, _| Ok(()))?;
            entries.clear();
        }
        let block = block_len(p, depth);
        for k in 0..width {
            let seq = vec![k as i32 + 1];
            let start = entries.len();
            for (j, &t) in prefix.iter().enumerate().skip(whole) {
                entries.push((t, j, seq.clone(), false));
            }
            let tokens = seqs.get(k).unwrap_or(&seqs[seqs.len() - 1]);
            for (d, &t) in tokens.iter().take(depth).enumerate() {
                entries.push((t, p + d, seq.clone(), k < seqs.len()));
            }
            // Fillers: all at one position of a sequence no word sees.
            while entries.len() - start < block {
                entries.push((tokens[0], 0, filler.clone(), false));
            }
        }
        let mut out = vec![Vec::with_capacity(depth); seqs.len()];
        let mut next = 0;
        self.decode_entries(&entries, &mut |session, i| {
            // Rows read come in word order, `depth` a word.
            let (k, d) = (next / depth, next % depth);
            next += 1;
            let row = session.ctx.get_logits_ith(i as i32);
            out[k].push(logprobs_of(row, temp, &[seqs[k][d + 1]])?[0]);
            Ok(())
        })?;
        self.laid = Some((prefix.to_vec(), depth));
        Ok(out)
    }

    /// The next wave on the laid-out prefix: the words' cells emptied and refilled in order.
    fn wave(&mut self, p: usize, seqs: &[&[u32]], temp: f32) -> Result<Vec<Vec<f64>>, ModelError> {
        let depth = seqs[0].len() - 1;
        let kv = |e: &dyn std::fmt::Display| ModelError::KvCache(e.to_string());
        for k in 0..seqs.len() {
            self.session
                .ctx
                .kv_cache_seq_rm(k as i32 + 1, Some(p as u32), None)
                .map_err(|e| kv(&e))?;
        }
        let entries: Vec<Entry> = seqs
            .iter()
            .enumerate()
            .flat_map(|(k, s)| {
                s.iter()
                    .take(depth)
                    .enumerate()
                    .map(move |(d, &t)| (t, p + d, vec![k as i32 + 1], true))
            })
            .collect();
        let mut out = vec![Vec::with_capacity(depth); seqs.len()];
        let mut next = 0;
        let done = self.decode_entries(&entries, &mut |session, i| {
            let (k, d) = (next / depth, next % depth);
            next += 1;
            let row = session.ctx.get_logits_ith(i as i32);
            out[k].push(logprobs_of(row, temp, &[seqs[k][d + 1]])?[0]);
            Ok(())
        });
        if let Err(e) = done {
            self.laid = None;
            return Err(e);
        }
        Ok(out)
    }

    /// Decode `entries` in order, in chunks the batch holds (none tiny); `read(session, i)`
    /// for every entry whose row is read, `i` its index in its chunk, in entry order.
    fn decode_entries(
        &mut self,
        entries: &[Entry],
        read: &mut dyn FnMut(&Session<'_>, usize) -> Result<(), ModelError>,
    ) -> Result<(), ModelError> {
        let s = &mut self.session;
        let mut at = 0;
        for len in plan_chunks(entries.len(), s.batch_capacity) {
            s.batch.clear();
            for (t, pos, seqs, logits) in &entries[at..at + len] {
                s.batch
                    .add(LlamaToken(*t as i32), *pos as i32, seqs, *logits)
                    .map_err(|e| ModelError::Decode(e.to_string()))?;
            }
            s.decode_batch()?;
            for (i, e) in entries[at..at + len].iter().enumerate() {
                if e.3 {
                    read(s, i)?;
                }
            }
            at += len;
        }
        Ok(())
    }
}
