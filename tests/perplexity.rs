//! `logitscope perplexity`: llama-perplexity's chunking, BOS rule and lines, with every
//! scored position's number `score`'s for that chunk's tokens (through `serve`, which lists a
//! token-id prompt's logprobs with `score`'s numbers: tests/serve.rs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::server::Server;
use serde_json::{json, Value};

/// A long text no test wrote for this: the project's own README, with the control tokens it
/// spells out (`<|im_end|>`) unspelled, so that `/tokenize` (which parses them, as vLLM's does)
/// and perplexity (which reads them as text, as llama-perplexity does) agree.
fn corpus(dir: &std::path::Path) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let path = dir.join("corpus.txt");
    std::fs::write(
        &path,
        readme
            .replace("<|", "< |")
            .replace("<start_of", "< start_of")
            .replace("<end_of", "< end_of")
            .replace("<bos>", "< bos>")
            .replace("<eos>", "< eos>"),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

const N_CTX: usize = 128;

#[test]
fn each_chunk_is_scores_second_half_and_the_lines_are_llama_perplexitys() {
    let dir = tempfile::tempdir().unwrap();
    let file = corpus(dir.path());
    let text = std::fs::read_to_string(&file).unwrap();
    for (name, path) in common::models::both() {
        let m = path.to_string_lossy().into_owned();
        let c = N_CTX.to_string();
        let args = [
            "perplexity",
            "-m",
            &m,
            "-c",
            &c,
            "-f",
            &file,
            "--chunks",
            "3",
        ];
        let json_out = common::run(
            &[&args[..], &["--format", "json", "-b", "256"]].concat(),
            None,
        );
        assert!(
            json_out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&json_out.stderr)
        );
        let report: Value = serde_json::from_slice(&json_out.stdout).unwrap();
        assert_eq!(report["n_chunk"], 3, "{name}");
        assert_eq!(report["n_ctx"], N_CTX);
        let first = N_CTX / 2;
        assert_eq!(report["scored_per_chunk"], N_CTX - 1 - first);

        // The same tokens as the server's tokenizer gives (no control tokens in the text).
        let server = Server::start(&path, &[]);
        let (status, tok) = server.post("/tokenize", &json!({"prompt": text}));
        assert_eq!(status, 200, "{tok}");
        let tokens: Vec<u64> = tok["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap())
            .collect();
        assert_eq!(report["n_tokens"], tokens.len(), "{name}");
        let (status, info) = server.get("/tokenizer_info");
        assert_eq!(status, 200);
        let bos = info["add_bos_token"].as_bool().unwrap_or(false);
        let mut all = Vec::new();
        for (i, chunk) in report["chunks"].as_array().unwrap().iter().enumerate() {
            let mut ids = tokens[i * N_CTX..(i + 1) * N_CTX].to_vec();
            if bos {
                // The tokenizer put BOS first: every chunk starts with it, as llama-perplexity's.
                ids[0] = tokens[0];
            }
            let choice = &server.echo(json!(ids), 0)[0];
            let lps = choice["logprobs"]["token_logprobs"].as_array().unwrap();
            assert_eq!(lps.len(), N_CTX, "{name}: every id listed");
            let mut nll = 0.0;
            for lp in &lps[first + 1..N_CTX] {
                let v = -lp.as_f64().unwrap();
                nll += v;
                all.push(v);
            }
            assert_eq!(
                chunk["nll"].as_f64().unwrap().to_bits(),
                nll.to_bits(),
                "{name}: chunk {}",
                i + 1
            );
            assert_eq!(chunk["count"], N_CTX - 1 - first);
        }
        let n = all.len() as f64;
        let mean = all.iter().sum::<f64>() / n;
        let want = mean.exp();
        let ppl = report["ppl"].as_f64().unwrap();
        assert!(
            (ppl - want).abs() <= 1e-12 * want,
            "{name}: {ppl} vs {want}"
        );
        let var = all.iter().map(|v| v * v).sum::<f64>() / n - mean * mean;
        let err = report["ppl_uncertainty"].as_f64().unwrap();
        assert!(
            (err - (var / (n - 1.0)).sqrt() * want).abs() <= 1e-9 * err,
            "{name}"
        );

        // llama-perplexity's text: the running estimates, then the final one; side by side
        // (the default batch) or one chunk at a time, the same figures.
        for batch in ["2048", "128"] {
            let out = common::run(&[&args[..], &["-b", batch]].concat(), None);
            assert!(out.status.success(), "{name}");
            let stdout = String::from_utf8(out.stdout).unwrap();
            let lines: Vec<&str> = stdout.lines().collect();
            assert_eq!(lines.len(), 2, "{name}: {stdout}");
            let so_far: Vec<f64> = report["chunks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["ppl_so_far"].as_f64().unwrap())
                .collect();
            let want_line: String = so_far
                .iter()
                .enumerate()
                .map(|(i, p)| format!("[{}]{p:.4},", i + 1))
                .collect();
            assert_eq!(lines[0], want_line, "{name}, -b {batch}");
            assert_eq!(
                lines[1],
                format!("Final estimate: PPL = {ppl:.4} +/- {err:.5}"),
                "{name}"
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("seconds per pass - ETA"),
                "{name}: progress on stderr: {stderr}"
            );
        }
    }
}

#[test]
fn a_text_too_short_for_two_chunks_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "Only a few words here.").unwrap();
    let m = common::model_path().to_string_lossy().into_owned();
    let out = common::run(
        &[
            "perplexity",
            "-m",
            &m,
            "-c",
            "128",
            "-f",
            short.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("you need at least 256 tokens"), "{stderr}");
    assert!(out.stdout.is_empty());
    let missing = dir.path().join("absent.txt");
    let out = common::run(
        &["perplexity", "-m", &m, "-f", missing.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

/// Ctrl-C in the middle: the chunks done so far are reported (their line and an estimate over
/// them), the process exits with 130, and stderr says how many were done.
#[test]
fn ctrl_c_reports_the_chunks_done_so_far() {
    use std::io::{BufReader, Read};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let file = corpus(dir.path());
    let m = common::model_path().to_string_lossy().into_owned();
    let base = dir.path().join("base.kld");
    let mut child = Command::new(common::bin())
        .args([
            "perplexity",
            "-m",
            &m,
            "-c",
            "128",
            "-b",
            "128",
            "-f",
            &file,
            "--kl-divergence-base",
            base.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // The line grows a chunk at a time (flushed each): wait for the second figure.
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while seen.iter().filter(|&&b| b == b',').count() < 2 {
        assert_eq!(stdout.read(&mut byte).unwrap(), 1, "the output ended early");
        seen.push(byte[0]);
    }
    // SAFETY: a signal to our own child, still running (its output is open).
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    let out = String::from_utf8(seen).unwrap() + &rest;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let n_done = lines[0].matches(',').count();
    assert!(n_done >= 2, "{out}");
    assert!(
        stderr.contains(&format!("interrupted: {n_done} of ")),
        "{stderr}"
    );
    let last: f64 = lines[0]
        .trim_end_matches(',')
        .rsplit(']')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        lines[1].starts_with(&format!("Final estimate: PPL = {last:.4} +/- ")),
        "the estimate is over the chunks done: {out}"
    );
    // The base file holds the chunks done, whole: its header says so and its size agrees.
    let bytes = std::fs::read(&base).unwrap();
    let word = |at: usize| i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(word(16), n_done as i32, "{stderr}");
    let n_vocab = word(12) as usize;
    let rows = n_done * (128 - 1 - 64) * (2 * n_vocab.div_ceil(2) + 4);
    assert_eq!(bytes.len(), 20 + 4 * n_done * 128 + 2 * rows);
    assert!(!dir.path().join("base.kld.partial").exists());
}

/// Every listed position of a `--worst` report (all of them when N is large), keyed by
/// (chunk from 1, position in the chunk).
fn positions(report: &Value, key: &str) -> std::collections::BTreeMap<(u64, u64), Value> {
    report[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                (p["chunk"].as_u64().unwrap(), p["pos"].as_u64().unwrap()),
                p.clone(),
            )
        })
        .collect()
}

/// Each model with a second quantization of itself: the default model and its Q4_K_M, Gemma 3
/// and its Q8_0 (made here from its Q4_K_M).
fn base_and_measured(
    dir: &std::path::Path,
) -> Vec<(String, std::path::PathBuf, std::path::PathBuf)> {
    let gemma = common::models::gemma3();
    let gemma_q8 = dir.join("gemma-q8_0.gguf");
    let out = common::run(
        &[
            "-m",
            gemma.to_str().unwrap(),
            "quantize",
            gemma_q8.to_str().unwrap(),
            "--type",
            "q8_0",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    vec![
        (
            "SmolLM2 Q4_1 vs Q4_K_M".into(),
            common::model_path(),
            common::models::quant("q4_k_m"),
        ),
        ("Gemma 3 Q4_K_M vs Q8_0".into(), gemma, gemma_q8),
    ]
}

/// `perplexity -m BASE --vs MODEL`: every scored position's KL divergence and both
/// log-likelihoods are those of `score -m BASE --vs MODEL` on that chunk's tokens (the same
/// engine call, bit for bit), one chunk at a time or several side by side; the statistics
/// blocks are llama-perplexity's.
#[test]
fn against_a_base_model_every_position_is_score_vs() {
    use logitscope::analysis::perplexity::Plan;
    use logitscope::analysis::ViewOptions;
    let dir = tempfile::tempdir().unwrap();
    let file = corpus(dir.path());
    let text = std::fs::read_to_string(&file).unwrap();
    let c = N_CTX.to_string();
    for (name, base, measured) in base_and_measured(dir.path()) {
        let args = |batch: &str, format: &str| {
            let out = common::run(
                &[
                    "perplexity",
                    "-m",
                    base.to_str().unwrap(),
                    "--vs",
                    measured.to_str().unwrap(),
                    "-c",
                    &c,
                    "-f",
                    &file,
                    "--chunks",
                    "2",
                    "-b",
                    batch,
                    "--worst",
                    "100000",
                    "--format",
                    format,
                ],
                None,
            );
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        let side: Value = serde_json::from_slice(&args("512", "json")).unwrap();
        let alone: Value = serde_json::from_slice(&args("128", "json")).unwrap();
        let got = positions(&side, "worst_kld");
        assert_eq!(
            got.len(),
            2 * (N_CTX - 1 - N_CTX / 2),
            "{name}: every position"
        );
        assert_eq!(
            got,
            positions(&alone, "worst_kld"),
            "{name}: -b 512 = -b 128"
        );

        let a = common::models::load(&base, N_CTX as u32);
        let b = common::models::load(&measured, N_CTX as u32);
        let tokens = a.tokenize(&text);
        let plan = Plan {
            n_ctx: N_CTX,
            n_chunk: 2,
        };
        let mut pair =
            logitscope::engine::compare::Pair::new(a.session().unwrap(), b.session().unwrap());
        let view = ViewOptions {
            temp: 1.0,
            n_probs: 1,
        };
        let mut same_top = 0;
        for k in 0..2 {
            let chunk = logitscope::engine::corpus::chunk_tokens(&a, &tokens, &plan, k);
            let c = pair.evaluate(&chunk, view, &|| false).unwrap();
            for pos in N_CTX / 2..N_CTX - 1 {
                let p = &got[&(k as u64 + 1, pos as u64)];
                let want_kld = c.rows[pos].kl_bits * std::f64::consts::LN_2;
                assert_eq!(
                    p["kld"].as_f64().unwrap().to_bits(),
                    want_kld.to_bits(),
                    "{name}: {k} {pos}"
                );
                let lp = |ev: &logitscope::model::Evaluation| -ev.rows[pos].target.unwrap().logprob;
                assert_eq!(
                    p["nll"].as_f64().unwrap().to_bits(),
                    lp(&c.b).to_bits(),
                    "{name}"
                );
                assert_eq!(
                    p["nll_base"].as_f64().unwrap().to_bits(),
                    lp(&c.a).to_bits(),
                    "{name}"
                );
                assert_eq!(p["token_id"], chunk[pos + 1]);
                same_top += usize::from(c.a.rows[pos].top[0].id == c.b.rows[pos].top[0].id);
            }
        }
        let summary = &side["summary"];
        let n = got.len() as f64;
        let mean = got
            .values()
            .map(|p| p["kld"].as_f64().unwrap())
            .sum::<f64>()
            / n;
        assert!(
            (summary["kld"][0].as_f64().unwrap() - mean).abs() < 1e-12,
            "{name}"
        );
        assert_eq!(
            summary["same_top"][0].as_f64().unwrap(),
            same_top as f64 / n,
            "{name}"
        );
        assert!(mean > 0.0, "{name}: the two quantizations differ");

        let text_out = String::from_utf8(args("2048", "text")).unwrap();
        for label in [
            "chunk             PPL               ln(PPL(Q)/PPL(base))",
            "====== Perplexity statistics ======",
            "====== KL divergence statistics ======",
            "====== Token probability statistics ======",
            "Mean    KLD:",
            "Same top p:",
        ] {
            assert!(text_out.contains(label), "{name}: {label} in {text_out}");
        }
        assert!(
            text_out.contains(&format!("Mean    KLD: {:10.6} ± ", mean)),
            "{name}: {text_out}"
        );
    }
}

/// The base file: written in llama-perplexity's layout (its size and header as its reader
/// expects), read back against a second model with that model's own numbers at every position
/// and the base's as the file stores them (within half a quantization step); a truncated file,
/// another vocabulary or another tokenization is a named error.
#[test]
fn base_files_are_llama_perplexitys_and_bad_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = corpus(dir.path());
    let text = std::fs::read_to_string(&file).unwrap();
    let c = N_CTX.to_string();
    let base = common::model_path();
    let measured = common::models::quant("q4_k_m");
    let kld = dir.path().join("base.kld");
    let kld_s = kld.to_str().unwrap();
    let write = common::run(
        &[
            "perplexity",
            "-m",
            base.to_str().unwrap(),
            "-c",
            &c,
            "-f",
            &file,
            "--chunks",
            "2",
            "--kl-divergence-base",
            kld_s,
        ],
        None,
    );
    assert!(
        write.status.success(),
        "{}",
        String::from_utf8_lossy(&write.stderr)
    );
    assert!(String::from_utf8_lossy(&write.stdout).contains("Final estimate: PPL = "));
    let bytes = std::fs::read(&kld).unwrap();
    let a = common::models::load(&base, N_CTX as u32);
    let n_vocab = a.vocab().len();
    let tokens = a.tokenize(&text);
    let row = 2 * n_vocab.div_ceil(2) + 4;
    let scored = N_CTX - 1 - N_CTX / 2;
    assert_eq!(&bytes[..8], b"_logits_");
    let word = |at: usize| i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(
        (word(8), word(12), word(16)),
        (N_CTX as i32, n_vocab as i32, 2)
    );
    for (i, &t) in tokens[..2 * N_CTX].iter().enumerate() {
        assert_eq!(
            word(20 + 4 * i),
            t as i32,
            "the text's own tokens, BOS not put in"
        );
    }
    assert_eq!(bytes.len(), 20 + 4 * 2 * N_CTX + 2 * 2 * scored * row);
    assert!(!dir.path().join("base.kld.partial").exists());

    let read = |args: &[&str]| {
        common::run(
            &[
                &[
                    "perplexity",
                    "-m",
                    measured.to_str().unwrap(),
                    "--kl-divergence-base",
                    kld_s,
                    "--kl-divergence",
                ][..],
                args,
            ]
            .concat(),
            None,
        )
    };
    let out = read(&["--worst", "100000", "--format", "json", "-f", &file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let got = positions(&report, "worst_kld");
    assert_eq!(got.len(), 2 * scored);
    let b = common::models::load(&measured, N_CTX as u32);
    let plan = logitscope::analysis::perplexity::Plan {
        n_ctx: N_CTX,
        n_chunk: 2,
    };
    let view = logitscope::analysis::ViewOptions {
        temp: 1.0,
        n_probs: 1,
    };
    let mut pair =
        logitscope::engine::compare::Pair::new(a.session().unwrap(), b.session().unwrap());
    for k in 0..2 {
        let chunk = logitscope::engine::corpus::chunk_tokens(&a, &tokens, &plan, k);
        let c = pair.evaluate(&chunk, view, &|| false).unwrap();
        for pos in N_CTX / 2..N_CTX - 1 {
            let p = &got[&(k as u64 + 1, pos as u64)];
            let lp = |ev: &logitscope::model::Evaluation| -ev.rows[pos].target.unwrap().logprob;
            assert_eq!(p["nll"].as_f64().unwrap().to_bits(), lp(&c.b).to_bits());
            let stored = p["nll_base"].as_f64().unwrap();
            assert!(
                (stored - lp(&c.a)).abs() <= 1.3e-4,
                "{k} {pos}: {stored} vs {}",
                lp(&c.a)
            );
            let exact = c.rows[pos].kl_bits * std::f64::consts::LN_2;
            let kl = p["kld"].as_f64().unwrap();
            assert!(
                (kl - exact).abs() <= 2e-3 + 0.02 * exact,
                "{k} {pos}: {kl} vs {exact}"
            );
        }
    }
    // The text given with the file must be what it was written from.
    let other = dir.path().join("other.txt");
    std::fs::write(&other, text.replace("logitscope", "something else")).unwrap();
    let out = read(&["-f", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another tokenization"));
    // A cut file (an interrupted copy) and one of another vocabulary.
    let cut = dir.path().join("cut.kld");
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();
    let out = common::run(
        &[
            "perplexity",
            "-m",
            measured.to_str().unwrap(),
            "--kl-divergence-base",
            cut.to_str().unwrap(),
            "--kl-divergence",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("truncated"), "{stderr}");
    let gemma = common::models::gemma3();
    let out = common::run(
        &[
            "perplexity",
            "-m",
            gemma.to_str().unwrap(),
            "--kl-divergence-base",
            kld_s,
            "--kl-divergence",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("vocabulary of 49152 tokens"), "{stderr}");
    let out = common::run(
        &[
            "perplexity",
            "-m",
            gemma.to_str().unwrap(),
            "--kl-divergence",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kl-divergence-base FILE"));
}
