//! Corpus mode: a long text measured in chunks as llama.cpp's `llama-perplexity` measures it
//! ([`crate::analysis::perplexity`]), alone, against a base-log-probability file in its format
//! ([`crate::analysis::logits_file`]), or against a base model decoded beside it. Chunks are
//! decoded side by side in `score`'s decodes ([`Scan`]), each row read once, as it comes, and
//! only rows that are scored: every position's number is `score`'s for that chunk's tokens,
//! and nothing of a row is kept past its position's figures.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::analysis::compare::divergences;
use crate::analysis::kld::{argmax, kld_against_stored, Position};
use crate::analysis::logits_file::{
    bytes_of, quantize_row, row_len, scored_per_chunk, words, FileError, Header, StoredRow,
};
use crate::analysis::perplexity::Plan;
use crate::analysis::stats::{log_softmax, logprobs_of, RowError};
use crate::model::side_by_side::group_size;
use crate::model::{Model, ModelError, Scan, Session};

/// What can go wrong measuring a corpus.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Row(#[from] RowError),
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: FileError,
    },
    #[error("the two models' decodes went out of step at chunk {0}")]
    OutOfStep(usize),
}

fn file_error(path: &Path) -> impl Fn(std::io::Error) -> CorpusError + '_ {
    move |e| CorpusError::File {
        path: path.to_owned(),
        source: FileError::Io(e),
    }
}

/// The tokens of chunk `i` as they are decoded: the text's own, the first replaced by BOS on
/// a model whose tokenizer adds one (as llama-perplexity does, so every chunk starts as a
/// text does).
pub fn chunk_tokens(model: &Model, tokens: &[u32], plan: &Plan, i: usize) -> Vec<u32> {
    let mut chunk = tokens[plan.chunk(i)].to_vec();
    if let Some((bos, true)) = model.bos() {
        chunk[0] = bos;
    }
    chunk
}

/// What a scan hands over for each scored row: chunk (in the group), scored position, logits,
/// the token that follows.
type OnRow<'c> = dyn FnMut(usize, usize, &[f32], u32) -> Result<(), CorpusError> + 'c;

/// A model's session for a corpus: chunks of `n_ctx` tokens, as many side by side as the
/// model's self-check and one decode allow.
pub struct Corpus<'m> {
    model: &'m Model,
    session: Session<'m>,
    n_seq: usize,
}

impl<'m> Corpus<'m> {
    /// At most `n_seq` chunks side by side (fewer where a decode cannot hold a wave of each,
    /// one where the self-check found side by side inexact).
    pub fn new(model: &'m Model, n_ctx: usize, n_seq: usize) -> Result<Self, ModelError> {
        let n_seq = if n_seq > 1 && model.layout().side_by_side_exact() {
            group_size(n_seq, 512, n_ctx)
        } else {
            1
        };
        let session = model.batch_session(n_seq as u32, n_ctx as u32)?;
        if session.n_ctx() < n_ctx {
            return Err(ModelError::TooLong {
                n_tokens: n_ctx,
                n_ctx: session.n_ctx(),
            });
        }
        Ok(Self {
            model,
            session,
            n_seq,
        })
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Chunks decoded side by side.
    pub fn n_seq(&self) -> usize {
        self.n_seq
    }
}

/// Decode chunks `group` (at most `corpus.n_seq()` of them) and hand every scored row to
/// `on_row(k, j, logits, target)`: chunk `group.start + k`, scored position `plan.first() + j`.
fn scan(
    corpus: &mut Corpus<'_>,
    tokens: &[u32],
    plan: &Plan,
    group: Range<usize>,
    on_row: &mut OnRow<'_>,
) -> Result<(), CorpusError> {
    let chunks: Vec<Vec<u32>> = group
        .map(|i| chunk_tokens(corpus.model, tokens, plan, i))
        .collect();
    let refs: Vec<&[u32]> = chunks.iter().map(Vec::as_slice).collect();
    let mut scan = Scan::new(&mut corpus.session, &refs, plan.first())?;
    while let Some(wave) = scan.next_wave()? {
        for r in wave {
            if let Some(&target) = chunks[r.text].get(r.pos + 1) {
                on_row(r.text, r.pos - plan.first(), scan.row(r), target)?;
            }
        }
    }
    Ok(())
}

/// Chunks `group` as [`scan`] hands them over, `corpus.n_seq()` at a time.
fn scan_all(
    corpus: &mut Corpus<'_>,
    tokens: &[u32],
    plan: &Plan,
    group: Range<usize>,
    on_row: &mut OnRow<'_>,
) -> Result<(), CorpusError> {
    let mut at = group.start;
    while at < group.end {
        let end = (at + corpus.n_seq).min(group.end);
        let offset = at - group.start;
        scan(corpus, tokens, plan, at..end, &mut |k, j, row, t| {
            on_row(offset + k, j, row, t)
        })?;
        at = end;
    }
    Ok(())
}

/// One result per scored position of each chunk of a group.
fn per_chunk<T: Clone>(plan: &Plan, group: &Range<usize>, empty: T) -> Vec<Vec<T>> {
    vec![vec![empty; plan.scored_per_chunk()]; group.len()]
}

/// The scored negative log-likelihoods (nats) of chunks `group`: for each, positions
/// `plan.first() .. n_ctx - 1`, each the −ln p of the token after it at temperature `temp`;
/// with `base`, every scored row is also written to that file.
pub fn chunk_nlls(
    corpus: &mut Corpus<'_>,
    tokens: &[u32],
    plan: &Plan,
    group: Range<usize>,
    temp: f32,
    mut base: Option<&mut BaseWriter>,
) -> Result<Vec<Vec<f64>>, CorpusError> {
    let mut out = per_chunk(plan, &group, f64::NAN);
    let first = group.start;
    scan_all(corpus, tokens, plan, group, &mut |k, j, row, target| {
        out[k][j] = -logprobs_of(row, temp, &[target])?[0];
        if let Some(w) = base.as_deref_mut() {
            w.write_row(first + k, j, row)?;
        }
        Ok(())
    })?;
    Ok(out)
}

/// Chunks `group` measured against the rows of a base file.
pub fn against_file(
    corpus: &mut Corpus<'_>,
    base: &BaseReader,
    plan: &Plan,
    group: Range<usize>,
    temp: f32,
) -> Result<Vec<Vec<Position>>, CorpusError> {
    let mut out = per_chunk(plan, &group, None);
    let first = group.start;
    let mut buf = Vec::new();
    let tokens = &base.header.tokens;
    scan_all(corpus, tokens, plan, group, &mut |k, j, row, target| {
        let stored = base.read_row(first + k, j, &mut buf)?;
        let lq = log_softmax(row, temp)?;
        let (kld, top_base) = kld_against_stored(&lq, |i| stored.logprob(i));
        out[k][j] = Some(Position {
            nll: -lq[target as usize],
            nll_base: -(stored.logprob(target as usize) as f64),
            kld,
            top: argmax(&lq),
            top_base,
        });
        Ok(())
    })?;
    Ok(unwrap_all(out))
}

/// Chunks `group` decoded by a base model and by the model, in lockstep, every position
/// compared over the whole vocabulary in f64 as `score --vs` compares them (`base` as A, the
/// model as B: the KL divergence is `score`'s `kl_bits`, in nats).
pub fn against_model(
    base: &mut Corpus<'_>,
    corpus: &mut Corpus<'_>,
    tokens: &[u32],
    plan: &Plan,
    group: Range<usize>,
    temp: f32,
) -> Result<Vec<Vec<Position>>, CorpusError> {
    let mut out = per_chunk(plan, &group, None);
    let n_seq = base.n_seq.min(corpus.n_seq);
    let mut at = group.start;
    while at < group.end {
        let end = (at + n_seq).min(group.end);
        let chunks: Vec<Vec<u32>> = (at..end)
            .map(|i| chunk_tokens(corpus.model, tokens, plan, i))
            .collect();
        let refs: Vec<&[u32]> = chunks.iter().map(Vec::as_slice).collect();
        let mut a = Scan::new(&mut base.session, &refs, plan.first())?;
        let mut b = Scan::new(&mut corpus.session, &refs, plan.first())?;
        loop {
            let (wa, wb) = (a.next_wave()?, b.next_wave()?);
            let (wa, wb) = match (wa, wb) {
                (None, None) => break,
                (Some(wa), Some(wb)) if wa.len() == wb.len() => (wa, wb),
                _ => return Err(CorpusError::OutOfStep(at + 1)),
            };
            for (ra, rb) in wa.into_iter().zip(wb) {
                if (ra.text, ra.pos) != (rb.text, rb.pos) {
                    return Err(CorpusError::OutOfStep(at + 1));
                }
                let Some(&target) = chunks[ra.text].get(ra.pos + 1) else {
                    continue;
                };
                let la = log_softmax(a.row(ra), temp)?;
                let lb = log_softmax(b.row(rb), temp)?;
                let (kl_bits, _, _) = divergences(&la, &lb);
                out[at - group.start + ra.text][ra.pos - plan.first()] = Some(Position {
                    nll: -lb[target as usize],
                    nll_base: -la[target as usize],
                    kld: kl_bits * std::f64::consts::LN_2,
                    top: argmax(&lb),
                    top_base: argmax(&la),
                });
            }
        }
        at = end;
    }
    Ok(unwrap_all(out))
}

fn unwrap_all(rows: Vec<Vec<Option<Position>>>) -> Vec<Vec<Position>> {
    // Every scored position is handed over once by the scan: none is missing.
    rows.into_iter()
        .map(|c| {
            c.into_iter()
                .map(|p| p.expect("every scored row was read"))
                .collect()
        })
        .collect()
}

/// Byte offset of chunk `chunk`'s scored row `j` in a file with this header.
fn row_offset(h: &Header, chunk: usize, j: usize) -> u64 {
    let rows = (chunk * scored_per_chunk(h.n_ctx) + j) as u64;
    20 + 4 * h.tokens.len() as u64 + rows * 2 * row_len(h.n_vocab) as u64
}

/// A base file being written: to a temporary file beside it, each row at its place, renamed
/// when every chunk is in (or rewritten with the chunks done when the run stops early), so
/// no half-written file is ever left under the name asked for.
pub struct BaseWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: File,
    header: Header,
    row: Vec<u16>,
}

impl BaseWriter {
    /// A file for `plan`'s chunks of `tokens` over a vocabulary of `n_vocab`.
    pub fn create(
        path: &Path,
        tokens: &[u32],
        plan: &Plan,
        n_vocab: usize,
    ) -> Result<Self, CorpusError> {
        let header = Header {
            n_ctx: plan.n_ctx,
            n_vocab,
            n_chunk: plan.n_chunk,
            tokens: tokens[..plan.n_chunk * plan.n_ctx].to_vec(),
        };
        let tmp = tmp_path(path);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(file_error(&tmp))?;
        header.write(&mut file).map_err(file_error(&tmp))?;
        Ok(Self {
            path: path.to_owned(),
            tmp,
            file,
            header,
            row: vec![0; row_len(n_vocab)],
        })
    }

    fn write_row(&mut self, chunk: usize, j: usize, logits: &[f32]) -> Result<(), CorpusError> {
        if logits.len() != self.header.n_vocab {
            return Err(CorpusError::Row(RowError::Empty));
        }
        quantize_row(logits, &mut self.row);
        self.file
            .write_all_at(&bytes_of(&self.row), row_offset(&self.header, chunk, j))
            .map_err(file_error(&self.tmp))
    }

    /// Put the file in place with the first `done` chunks (all of them, or those finished
    /// when the run stopped early).
    pub fn finish(self, done: usize) -> Result<(), CorpusError> {
        let tmp = self.tmp.clone();
        self.put_in_place(done).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    fn put_in_place(self, done: usize) -> Result<(), CorpusError> {
        let err = file_error(&self.tmp);
        if done < self.header.n_chunk {
            let short = Header {
                n_chunk: done,
                tokens: self.header.tokens[..done * self.header.n_ctx].to_vec(),
                ..self.header.clone()
            };
            let mut bytes = Vec::new();
            short.write(&mut bytes).map_err(&err)?;
            let mut rows = vec![0u8; (done as u64 * short.chunk_bytes()) as usize];
            self.file
                .read_exact_at(&mut rows, row_offset(&self.header, 0, 0))
                .map_err(&err)?;
            bytes.extend(rows);
            std::fs::write(&self.tmp, bytes).map_err(&err)?;
        } else {
            self.file.sync_all().map_err(&err)?;
        }
        std::fs::rename(&self.tmp, &self.path).map_err(file_error(&self.path))
    }

    /// Remove the temporary file (nothing was measured).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    path.with_file_name(name)
}

/// A base file being read: its header and tokens checked, its rows read as they are needed.
pub struct BaseReader {
    pub path: PathBuf,
    pub header: Header,
    file: File,
}

impl BaseReader {
    pub fn open(path: &Path) -> Result<Self, CorpusError> {
        let fail = |source| CorpusError::File {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(|e| fail(FileError::Io(e)))?;
        let size = file.metadata().map_err(|e| fail(FileError::Io(e)))?.len();
        let header = Header::read(&mut std::io::BufReader::new(&file), size).map_err(fail)?;
        Ok(Self {
            path: path.to_owned(),
            header,
            file,
        })
    }

    fn read_row<'b>(
        &self,
        chunk: usize,
        j: usize,
        buf: &'b mut Vec<u16>,
    ) -> Result<StoredRow<'b>, CorpusError> {
        let n = row_len(self.header.n_vocab);
        let mut bytes = vec![0u8; 2 * n];
        self.file
            .read_exact_at(&mut bytes, row_offset(&self.header, chunk, j))
            .map_err(file_error(&self.path))?;
        *buf = words(&bytes);
        Ok(StoredRow::parse(buf, self.header.n_vocab))
    }
}
