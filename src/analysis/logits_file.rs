//! llama-perplexity's base-log-probability file (`--kl-divergence-base`), read and written in
//! its own binary layout (tools/perplexity/perplexity.cpp), so that either program reads the
//! other's files:
//!
//! - the 8 bytes `_logits_`, then `n_ctx` (u32), `n_vocab` (i32) and `n_chunk` (i32), little
//!   endian;
//! - the corpus's tokens, `n_chunk · n_ctx` i32 (as tokenized: each chunk's first token is the
//!   text's own, not the BOS that replaces it in the decode);
//! - for each chunk, for each scored position (`n_ctx/2 .. n_ctx − 2`), one row of
//!   [`row_len`] u16: the first four hold two f32, `scale` and `min_log_prob`, the next
//!   `n_vocab` each token's log-probability as `min_log_prob + scale · q` (a token below the
//!   row's top log-probability minus 16 nats is stored as 0), padded to an even count.
//!
//! The stored log-probabilities are quantized to 16 bits over at most 16 nats: each is off by
//! at most `scale / 2` (1.2e-4 nats), and the tail below `min_log_prob` is cut.

use std::io::{Read, Write};

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"_logits_";

/// u16 per stored row: the two f32 and the vocabulary, padded to an even count.
pub fn row_len(n_vocab: usize) -> usize {
    2 * n_vocab.div_ceil(2) + 4
}

/// Positions scored per chunk of `n_ctx` tokens (`n_ctx/2 .. n_ctx − 2`).
pub fn scored_per_chunk(n_ctx: usize) -> usize {
    n_ctx - 1 - n_ctx / 2
}

/// Why a file cannot be read as a base-log-probability file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("it does not start with `_logits_`: not a file of log-probabilities written by llama-perplexity --kl-divergence-base")]
    Magic,
    #[error("its header says n_ctx = {n_ctx}, n_vocab = {n_vocab}, n_chunk = {n_chunk}, which no llama-perplexity run writes")]
    Header {
        n_ctx: u32,
        n_vocab: i32,
        n_chunk: i32,
    },
    #[error("it is {actual} bytes, but its header (n_ctx {n_ctx}, n_vocab {n_vocab}, {n_chunk} chunks) needs {expected}: {}",
        if actual < expected { "truncated (an interrupted run?)" } else { "there is more after the last chunk" })]
    Size {
        actual: u64,
        expected: u64,
        n_ctx: usize,
        n_vocab: usize,
        n_chunk: usize,
    },
    #[error("token {index} of the file is {id}, outside the vocabulary of {n_vocab}")]
    Token {
        index: usize,
        id: i32,
        n_vocab: usize,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The header and tokens of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub n_ctx: usize,
    pub n_vocab: usize,
    pub n_chunk: usize,
    /// `n_chunk · n_ctx` tokens.
    pub tokens: Vec<u32>,
}

impl Header {
    /// The file's size in bytes, header to last row.
    pub fn file_size(&self) -> u64 {
        20 + 4 * (self.n_chunk * self.n_ctx) as u64 + self.n_chunk as u64 * self.chunk_bytes()
    }

    /// Bytes of one chunk's rows.
    pub fn chunk_bytes(&self) -> u64 {
        2 * (scored_per_chunk(self.n_ctx) * row_len(self.n_vocab)) as u64
    }

    /// Write the header and tokens.
    pub fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(MAGIC)?;
        w.write_all(&(self.n_ctx as u32).to_le_bytes())?;
        w.write_all(&(self.n_vocab as i32).to_le_bytes())?;
        w.write_all(&(self.n_chunk as i32).to_le_bytes())?;
        let mut bytes = Vec::with_capacity(4 * self.tokens.len());
        for &t in &self.tokens {
            bytes.extend_from_slice(&(t as i32).to_le_bytes());
        }
        w.write_all(&bytes)
    }

    /// Read the header and tokens of a file of `size` bytes, checking that the size is what
    /// the header says and that every token is in the vocabulary.
    pub fn read(r: &mut impl Read, size: u64) -> Result<Self, FileError> {
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic).map_err(|_| FileError::Magic)?;
        if &magic != MAGIC {
            return Err(FileError::Magic);
        }
        let mut word = [0u8; 4];
        let mut next = |r: &mut dyn Read| -> Result<[u8; 4], FileError> {
            r.read_exact(&mut word)?;
            Ok(word)
        };
        let n_ctx = u32::from_le_bytes(next(r)?);
        let n_vocab = i32::from_le_bytes(next(r)?);
        let n_chunk = i32::from_le_bytes(next(r)?);
        if !(4..=1 << 24).contains(&n_ctx) || n_vocab < 1 || n_chunk < 1 {
            return Err(FileError::Header {
                n_ctx,
                n_vocab,
                n_chunk,
            });
        }
        let (n_ctx, n_vocab, n_chunk) = (n_ctx as usize, n_vocab as usize, n_chunk as usize);
        let mut header = Self {
            n_ctx,
            n_vocab,
            n_chunk,
            tokens: Vec::new(),
        };
        let expected = header.file_size();
        if size != expected {
            return Err(FileError::Size {
                actual: size,
                expected,
                n_ctx,
                n_vocab,
                n_chunk,
            });
        }
        let mut bytes = vec![0u8; 4 * n_chunk * n_ctx];
        r.read_exact(&mut bytes)?;
        header.tokens = bytes
            .chunks_exact(4)
            .enumerate()
            .map(|(index, b)| {
                let id = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                if id < 0 || id as usize >= n_vocab {
                    Err(FileError::Token { index, id, n_vocab })
                } else {
                    Ok(id as u32)
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(header)
    }
}

/// One stored row: the log-probabilities of a position, quantized.
#[derive(Debug, Clone, Copy)]
pub struct StoredRow<'a> {
    pub scale: f32,
    pub min_log_prob: f32,
    pub q: &'a [u16],
}

impl<'a> StoredRow<'a> {
    /// A row of [`row_len`] u16 (its vocabulary: `n_vocab`).
    pub fn parse(row: &'a [u16], n_vocab: usize) -> Self {
        let f = |a: u16, b: u16| {
            let [a0, a1] = a.to_le_bytes();
            let [b0, b1] = b.to_le_bytes();
            f32::from_le_bytes([a0, a1, b0, b1])
        };
        Self {
            scale: f(row[0], row[1]),
            min_log_prob: f(row[2], row[3]),
            q: &row[4..4 + n_vocab],
        }
    }

    /// The stored ln p of token `i`, computed as llama-perplexity computes it (in f32).
    pub fn logprob(&self, i: usize) -> f32 {
        self.scale * self.q[i] as f32 + self.min_log_prob
    }
}

/// u16 words of little-endian bytes.
pub fn words(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Quantize one row of logits into `out` ([`row_len`] u16) as llama-perplexity does (its
/// `log_softmax` that fills the file: f32 arithmetic, a 16-nat range below the top, rounding
/// to nearest).
pub fn quantize_row(logits: &[f32], out: &mut [u16]) {
    let n_vocab = logits.len();
    let (mut max, mut min) = (logits[0], logits[0]);
    for &l in &logits[1..] {
        max = max.max(l);
        min = min.min(l);
    }
    let min = min.max(max - 16.0);
    let sum: f64 = logits.iter().map(|&l| (l - max).exp() as f64).sum();
    let log_sum_exp = sum.ln() as f32;
    let min_log_prob = min - max - log_sum_exp;
    let scale = (max - min) / 65535.0;
    let put = |out: &mut [u16], at: usize, v: f32| {
        let b = v.to_le_bytes();
        out[at] = u16::from_le_bytes([b[0], b[1]]);
        out[at + 1] = u16::from_le_bytes([b[2], b[3]]);
    };
    put(out, 0, scale);
    put(out, 2, min_log_prob);
    let q = &mut out[4..];
    if scale != 0.0 {
        let inv = 1.0 / scale;
        for (qi, &l) in q.iter_mut().zip(logits) {
            *qi = if l > min {
                (inv * (l - min)).round_ties_even() as u16
            } else {
                0
            };
        }
    } else {
        q[..n_vocab].fill(0);
    }
    q[n_vocab..].fill(0);
}

/// Bytes of u16 words, little endian.
pub fn bytes_of(words: &[u16]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            n_ctx: 8,
            n_vocab: 5,
            n_chunk: 2,
            tokens: (0..16).map(|i| i % 5).collect(),
        }
    }

    fn file(h: &Header) -> Vec<u8> {
        let mut out = Vec::new();
        h.write(&mut out).expect("test data");
        let mut row = vec![0u16; row_len(h.n_vocab)];
        for c in 0..h.n_chunk {
            for p in 0..scored_per_chunk(h.n_ctx) {
                let logits: Vec<f32> = (0..h.n_vocab).map(|i| (i + c + p) as f32 * 0.7).collect();
                quantize_row(&logits, &mut row);
                out.extend(bytes_of(&row));
            }
        }
        out
    }

    #[test]
    fn a_written_file_reads_back() {
        let h = header();
        let bytes = file(&h);
        assert_eq!(bytes.len() as u64, h.file_size());
        assert_eq!(row_len(5), 10);
        assert_eq!(row_len(4), 8);
        let back = Header::read(&mut bytes.as_slice(), bytes.len() as u64).expect("test data");
        assert_eq!(back, h);
    }

    #[test]
    fn stored_logprobs_are_within_half_a_step() {
        let logits = [3.0f32, 1.5, -2.0, 0.25, -30.0];
        let mut row = vec![0u16; row_len(5)];
        quantize_row(&logits, &mut row);
        let stored = StoredRow::parse(&row, 5);
        let exact = crate::analysis::stats::log_softmax(&logits, 1.0).expect("test data");
        for (i, &e) in exact.iter().enumerate().take(4) {
            let d = (stored.logprob(i) as f64 - e).abs();
            assert!(d <= stored.scale as f64, "token {i}: off by {d}");
        }
        // Below the 16-nat range: the row's floor.
        assert_eq!(stored.q[4], 0);
        assert!((stored.logprob(4) as f64 - (exact[0] - 16.0)).abs() < 1e-4);
        assert_eq!(stored.q[0], 65535);
    }

    #[test]
    fn bad_files_are_named_errors() {
        let h = header();
        let bytes = file(&h);
        let read = |b: &[u8]| Header::read(&mut &b[..], b.len() as u64);
        assert!(matches!(
            read(b"_logitz_xxxxxxxxxxxx"),
            Err(FileError::Magic)
        ));
        assert!(matches!(read(&bytes[..3]), Err(FileError::Magic)));
        let cut = &bytes[..bytes.len() - 7];
        let e = read(cut).expect_err("an error");
        assert!(matches!(e, FileError::Size { .. }), "{e}");
        assert!(e.to_string().contains("truncated"), "{e}");
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read(&longer)
            .expect_err("an error")
            .to_string()
            .contains("more after"));
        let mut zero = bytes.clone();
        zero[16..20].copy_from_slice(&0i32.to_le_bytes());
        assert!(matches!(read(&zero), Err(FileError::Header { .. })));
        let mut bad = bytes.clone();
        bad[20..24].copy_from_slice(&7i32.to_le_bytes());
        assert!(matches!(
            read(&bad),
            Err(FileError::Token {
                index: 0,
                id: 7,
                ..
            })
        ));
    }
}
