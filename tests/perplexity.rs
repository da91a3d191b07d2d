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
}
