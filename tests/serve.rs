//! `logitscope serve` on the real models: prompt logprobs bit for bit those of `score`, offsets
//! in characters, generation after the prompt, and a server that survives bad clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};

use common::server::{score_tokens, Server};
use serde_json::{json, Value};

/// The reference sentences, and texts with multi-byte characters (accents, CJK, an emoji split
/// over byte-level tokens).
fn texts() -> Vec<String> {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sentences.txt");
    let mut v: Vec<String> = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    v.push("Café crème, naïve résumé: 東京は日本の首都です 🙂.".into());
    v.push("Ünïcödé “quotes” — and ☕ after.".into());
    v
}

/// The server's echoed prompt against `score`'s report of the same text: same tokens, the
/// same logprobs as JSON numbers, offsets in characters, the first token null when nothing
/// predicts it.
fn assert_same(choice: &Value, report: &Value, what: &str) {
    let lp = &choice["logprobs"];
    let want = score_tokens(report);
    let tokens: Vec<&str> = lp["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let got_lp = lp["token_logprobs"].as_array().unwrap();
    let offsets: Vec<usize> = lp["text_offset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(tokens.len(), want.len(), "{what}: token count");
    for (i, (token, logprob, offset)) in want.iter().enumerate() {
        assert_eq!(tokens[i], token, "{what}: token {i}");
        // The same f64 prints as the same shortest decimal: compare the JSON text.
        assert_eq!(
            got_lp[i].to_string(),
            logprob.to_string(),
            "{what}: logprob of token {i} ({token:?})"
        );
        assert_eq!(offsets[i], *offset, "{what}: offset of token {i}");
    }
    let bos = report["tokens"][0]["special"].as_bool().unwrap();
    assert_eq!(
        got_lp[0].is_null(),
        !bos,
        "{what}: the first token is null exactly when no BOS predicts it"
    );
    assert_eq!(lp["top_logprobs"][0].is_null(), !bos, "{what}");
    // Every other position lists its top 5, the token's own logprob among them when it ranks.
    for (i, t) in report["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["special"].as_bool().unwrap())
        .enumerate()
    {
        let top = &lp["top_logprobs"][i];
        if top.is_null() {
            continue;
        }
        let want_top: Vec<(String, String)> = t["top_logprobs"]
            .as_array()
            .unwrap()
            .iter()
            .take(5)
            .map(|e| {
                (
                    e["token"].as_str().unwrap().to_owned(),
                    e["logprob"].to_string(),
                )
            })
            .collect();
        for (token, logprob) in &want_top {
            assert!(
                top.get(token).is_some(),
                "{what}: top token {token:?} missing at {i}"
            );
            if want_top.iter().filter(|(t, _)| t == token).count() == 1 {
                assert_eq!(
                    &top[token].to_string(),
                    logprob,
                    "{what}: top {token:?} at {i}"
                );
            }
        }
    }
    // Characters, as Python counts them: each offset points at the token's text.
    let text = report["text"].as_str().unwrap();
    let chars: Vec<char> = text.chars().collect();
    let total = chars.len();
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{what}: offsets");
    assert!(
        offsets.iter().all(|&o| o <= total),
        "{what}: offsets in range"
    );
    assert_eq!(
        choice["text"].as_str().unwrap(),
        text,
        "{what}: echoed text"
    );
}

/// Every test model: the default model, the second test model (Gemma 3, BOS) and a K-quant.
fn models() -> Vec<(String, std::path::PathBuf)> {
    let mut v = common::models::both();
    v.push(("SmolLM2 q4_k_m".into(), common::models::quant("q4_k_m")));
    v
}

#[test]
fn echoed_prompt_logprobs_are_those_of_score_bit_for_bit() {
    let texts = texts();
    for (name, path) in models() {
        let reports = common::models::run_on(
            &path,
            "score",
            &["--n-probs", "5"],
            Some(&(texts.join("\n") + "\n")),
        );
        let server = Server::start(&path, &[]);
        // All prompts in one request (scored side by side), then each alone.
        let together = server.echo(json!(texts), 5);
        assert_eq!(together.len(), texts.len());
        for (i, (choice, report)) in together.iter().zip(&reports).enumerate() {
            assert_eq!(choice["index"], i);
            assert_same(choice, report, &format!("{name}, together, {:?}", texts[i]));
        }
        for (text, report) in texts.iter().zip(&reports) {
            let alone = server.echo(json!(text), 5);
            assert_same(&alone[0], report, &format!("{name}, alone, {text:?}"));
            assert_eq!(alone[0]["finish_reason"], "length");
        }
        // The multi-byte text: offsets point at the characters the tokens begin with.
        let text = &texts[texts.len() - 2];
        let choice = &server.echo(json!(text), 0)[0];
        let lp = &choice["logprobs"];
        let chars: Vec<char> = text.chars().collect();
        let mut rebuilt = String::new();
        for (t, o) in lp["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .zip(lp["text_offset"].as_array().unwrap())
        {
            let o = o.as_u64().unwrap() as usize;
            let t = t.as_str().unwrap();
            if !t.contains('\u{FFFD}') && !rebuilt.contains('\u{FFFD}') {
                let here: String = chars[o..].iter().collect();
                assert!(
                    here.starts_with(t),
                    "{name}: token {t:?} at char {o} of {text:?}"
                );
            }
            rebuilt.push_str(t);
        }
        assert_eq!(
            lp["text_offset"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()
                .as_u64()
                .unwrap() as usize,
            chars.len() - 1,
            "{name}: the last token '.' is the last character, counted in characters"
        );
    }
}

/// vLLM's `prompt_logprobs`: one entry per prompt token (a BOS included, as vLLM lists it),
/// `null` for the first, then a map of token id to logprob, rank and decoded text holding the
/// prompt's own token and the n most likely, every number `score`'s, bit for bit.
#[test]
fn vllm_prompt_logprobs_are_scores_numbers() {
    let texts = texts();
    for (name, path) in common::models::both() {
        let reports = common::models::run_on(
            &path,
            "score",
            &["--n-probs", "3"],
            Some(&(texts.join("\n") + "\n")),
        );
        let server = Server::start(&path, &[]);
        let (status, answer) = server.post(
            "/v1/completions",
            &json!({"prompt": texts, "max_tokens": 0, "prompt_logprobs": 3}),
        );
        assert_eq!(status, 200, "{answer}");
        let choices = answer["choices"].as_array().unwrap();
        assert_eq!(choices.len(), texts.len());
        for (choice, report) in choices.iter().zip(&reports) {
            let what = format!("{name}, {:?}", report["text"]);
            assert!(
                choice["logprobs"].is_null(),
                "{what}: logprobs not asked for"
            );
            let got = choice["prompt_logprobs"].as_array().unwrap();
            let want = report["tokens"].as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{what}: one entry per prompt token");
            assert!(got[0].is_null(), "{what}: nothing predicts the first token");
            for (i, (g, w)) in got.iter().zip(want).enumerate().skip(1) {
                let map = g.as_object().unwrap();
                let own = &map[&w["id"].to_string()];
                assert_eq!(
                    own["logprob"].to_string(),
                    w["logprob"].to_string(),
                    "{what}: {i}"
                );
                assert_eq!(own["rank"], w["rank"], "{what}: rank at {i}");
                assert_eq!(own["decoded_token"], w["token"], "{what}: text at {i}");
                let top = w["top_logprobs"].as_array().unwrap();
                assert_eq!(top.len(), 3, "{what}: {i}");
                let mut ids: Vec<String> = vec![w["id"].to_string()];
                for (r, e) in top.iter().enumerate() {
                    let entry = &map[&e["id"].to_string()];
                    assert_eq!(entry["logprob"].to_string(), e["logprob"].to_string());
                    assert_eq!(entry["rank"], r + 1, "{what}: top {r} at {i}");
                    ids.push(e["id"].to_string());
                }
                ids.sort();
                ids.dedup();
                assert_eq!(
                    map.len(),
                    ids.len(),
                    "{what}: the token and the top 3 at {i}"
                );
            }
        }
        // Out of range, as `logprobs`.
        let (status, answer) = server.post(
            "/v1/completions",
            &json!({"prompt": "Hi", "max_tokens": 0, "prompt_logprobs": -1}),
        );
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["param"], "prompt_logprobs", "{answer}");
    }
}

/// A prompt the model would end (its greedy next token is `<|im_end|>`): with `max_tokens: 1`
/// the end-of-generation token is the generated one, listed with score's logprob for it and
/// counted, adding nothing to the text. lm-eval's `gguf` client drops the last listed token as
/// the generated one; without it listed, it dropped the prompt's own last token instead.
#[test]
fn an_end_of_generation_token_is_listed_as_the_generated_one() {
    let path = common::model_path();
    let prompt = "Hello! How can I help you today?";
    let report = &common::models::run_on(&path, "score", &[], Some(&format!("{prompt}\n")))[0];
    let next = &report["next"]["top_logprobs"][0];
    assert_eq!(
        next["token"], "<|im_end|>",
        "the prompt no longer ends here: {next}"
    );
    let server = Server::start(&path, &[]);
    let (status, answer) = server.post(
        "/v1/completions",
        &json!({"prompt": prompt, "echo": true, "logprobs": 1, "max_tokens": 1, "temperature": 0}),
    );
    assert_eq!(status, 200, "{answer}");
    let choice = &answer["choices"][0];
    assert_eq!(choice["text"], prompt);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(answer["usage"]["completion_tokens"], 1);
    let lp = &choice["logprobs"];
    let want = score_tokens(report);
    let tokens = lp["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), want.len() + 1, "{lp}");
    for (i, (token, logprob, offset)) in want.iter().enumerate() {
        assert_eq!(tokens[i], token.as_str());
        assert_eq!(lp["token_logprobs"][i].to_string(), logprob.to_string());
        assert_eq!(lp["text_offset"][i], *offset);
    }
    let n = want.len();
    assert_eq!(tokens[n], "<|im_end|>");
    assert_eq!(
        lp["token_logprobs"][n].to_string(),
        next["logprob"].to_string()
    );
    assert_eq!(lp["text_offset"][n], prompt.chars().count());
    // As lm-eval's gguf client reads it: everything but the last token sums to score's total.
    let summed = lp["token_logprobs"].as_array().unwrap()[..n]
        .iter()
        .filter_map(Value::as_f64)
        .fold(0.0, |s, x| s + x);
    let total = report["total_logprob"].as_f64().unwrap();
    assert!((summed - total).abs() <= 1e-9, "{summed} vs score {total}");
    // Without echo: the one generated token, and no text.
    let (_, answer) = server.post(
        "/v1/completions",
        &json!({"prompt": prompt, "logprobs": 1, "max_tokens": 8, "temperature": 0}),
    );
    let choice = &answer["choices"][0];
    assert_eq!(choice["text"], "");
    assert_eq!(choice["logprobs"]["tokens"], json!(["<|im_end|>"]));
    assert_eq!(answer["usage"]["completion_tokens"], 1);
}

#[test]
fn a_continuation_follows_the_echoed_prompt() {
    for (name, path) in models() {
        let server = Server::start(&path, &[]);
        let prompt = "The capital of France is";
        let report = &common::models::run_on(
            &path,
            "score",
            &["--n-probs", "3"],
            Some(&format!("{prompt}\n")),
        )[0];
        let (status, answer) = server.post(
            "/v1/completions",
            &json!({"prompt": prompt, "echo": true, "logprobs": 3, "max_tokens": 4, "temperature": 0}),
        );
        assert_eq!(status, 200, "{answer}");
        let choice = &answer["choices"][0];
        let lp = &choice["logprobs"];
        let n_prompt = score_tokens(report).len();
        let tokens = lp["tokens"].as_array().unwrap();
        let generated = tokens.len() - n_prompt;
        assert!(
            (1..=4).contains(&generated),
            "{name}: {generated} tokens generated"
        );
        // Greedy: the first generated token is score's most likely next token, same number.
        let next = &report["next"]["top_logprobs"][0];
        assert_eq!(tokens[n_prompt], next["token"], "{name}");
        assert_eq!(
            lp["token_logprobs"][n_prompt].to_string(),
            next["logprob"].to_string(),
            "{name}"
        );
        assert_eq!(
            lp["text_offset"][n_prompt].as_u64().unwrap() as usize,
            prompt.chars().count(),
            "{name}"
        );
        let text = choice["text"].as_str().unwrap();
        let joined: String = tokens[n_prompt..]
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(text, format!("{prompt}{joined}"), "{name}");
        assert_eq!(answer["usage"]["completion_tokens"], generated, "{name}");
        if generated == 4 {
            assert_eq!(choice["finish_reason"], "length", "{name}");
        }
        // Greedy is deterministic; a stop string cuts the text before it.
        let (_, again) = server.post(
            "/v1/completions",
            &json!({"prompt": prompt, "max_tokens": 4, "temperature": 0}),
        );
        assert_eq!(
            again["choices"][0]["text"].as_str().unwrap(),
            joined,
            "{name}"
        );
        assert!(again["choices"][0]["logprobs"].is_null(), "{name}");
        if generated >= 2 {
            let second = tokens[n_prompt + 1].as_str().unwrap();
            let cut = &joined[..joined.find(second).unwrap()];
            if !cut.is_empty() && !second.trim().is_empty() {
                let (_, stopped) = server.post(
                    "/v1/completions",
                    &json!({"prompt": prompt, "max_tokens": 4, "temperature": 0, "stop": [second]}),
                );
                assert_eq!(
                    stopped["choices"][0]["text"], cut,
                    "{name}: stop {second:?}"
                );
                assert_eq!(stopped["choices"][0]["finish_reason"], "stop", "{name}");
            }
        }
        // Sampling with a seed is reproducible.
        let sampled = |seed: u64| {
            server.post(
                "/v1/completions",
                &json!({"prompt": prompt, "max_tokens": 5, "temperature": 1.0, "seed": seed, "logprobs": 1}),
            )
            .1["choices"][0]
                .clone()
        };
        assert_eq!(sampled(7), sampled(7), "{name}");
    }
}

/// The prompt logprobs of `text` as the server echoes them, as JSON texts.
fn echoed_logprobs(server: &Server, text: &str) -> Vec<String> {
    let choice = &server.echo(json!(text), 2)[0];
    choice["logprobs"]["token_logprobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::to_string)
        .collect()
}

/// The server's answer to a completions request with a body of `size` bytes, written by hand
/// while the answer is read. A server that refuses a body before reading all of it closes the
/// connection with the rest unread, which the client's kernel may answer with a reset that
/// discards the refusal before it is read (HTTP/1.1's well-known race, RFC 9112 section 9.6:
/// a client writing all of its body first, as ureq does, then fails with "broken pipe"
/// under load). So the answer is read while the body is written, and an attempt whose answer
/// a reset lost is made again.
fn too_large(addr: &str, size: usize) -> String {
    let body = format!(r#"{{"prompt": "{}"}}"#, "a".repeat(size));
    let mut last = String::new();
    for _ in 0..5 {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let mut w = s.try_clone().unwrap();
        let head = format!(
            "POST /v1/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let body = body.clone();
        let writer = std::thread::spawn(move || {
            let _ = w.write_all(head.as_bytes());
            let _ = w.write_all(body.as_bytes());
        });
        s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let answer = read_answer(&mut s);
        let _ = writer.join();
        last = String::from_utf8_lossy(&answer).into_owned();
        if !answer.is_empty() {
            return last;
        }
    }
    panic!("no answer to a {size}-byte body in 5 tries: {last:?}")
}

/// An HTTP answer read off `s`: its head and as much of its body as `Content-Length` says, or
/// what came before the connection ended.
fn read_answer(s: &mut std::net::TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|n| answer.len() >= end + 4 + n) {
                return answer;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return answer,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One request written by hand on a socket, the connection closed before the answer.
fn abandon(addr: &str, body: &str) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    drop(s);
}

#[test]
fn a_thousand_requests_from_eight_clients_all_answer_right_and_bad_ones_get_clear_errors() {
    let path = common::model_path();
    let texts: Vec<String> = (0..20)
        .map(|i| {
            format!(
                "Request {i}: the {} sat on the mat.",
                ["cat", "dog", "fox", "owl"][i % 4]
            )
        })
        .collect();
    let reports = common::models::run_on(&path, "score", &[], Some(&(texts.join("\n") + "\n")));
    let want: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            score_tokens(r)
                .into_iter()
                .map(|t| t.1.to_string())
                .collect()
        })
        .collect();
    let mut server = Server::start(&path, &["-c", "256"]);
    let server_ref = &server;
    std::thread::scope(|scope| {
        for client in 0..8 {
            let (texts, want) = (&texts, &want);
            scope.spawn(move || {
                for k in 0..125 {
                    let i = (client * 125 + k) % texts.len();
                    let got = echoed_logprobs(server_ref, &texts[i]);
                    assert_eq!(got, want[i], "client {client}, request {k}: {:?}", texts[i]);
                }
            });
        }
    });
    let still_right = |server: &Server| assert_eq!(echoed_logprobs(server, &texts[3]), want[3]);
    // A client that leaves in the middle of a long generation.
    abandon(
        server.addr(),
        r#"{"prompt": "Once upon a time", "max_tokens": 200, "temperature": 0}"#,
    );
    still_right(&server);
    let error = |(status, answer): (u16, Value)| -> (u16, String) {
        let e = &answer["error"];
        assert!(e["type"].is_string(), "{answer}");
        (status, e["message"].as_str().unwrap().to_owned())
    };
    // A 10 MB body: refused once 8 MiB are read.
    let answer = too_large(server.addr(), 10 << 20);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("larger than"), "{answer}");
    still_right(&server);
    // Malformed JSON, a wrong type, an empty prompt, a prompt longer than the context.
    let (status, message) = error(server.post_raw("/v1/completions", b"{\"prompt\": \"a\""));
    assert_eq!(status, 400, "{message}");
    let (status, message) = error(server.post_raw("/v1/completions", b"{\"prompt\": 3}"));
    assert_eq!(status, 400, "{message}");
    let (status, message) = error(server.post("/v1/completions", &json!({"prompt": ""})));
    assert_eq!(status, 400);
    assert!(message.contains("empty"), "{message}");
    let long = "word ".repeat(400);
    let (status, answer) =
        server.post("/v1/completions", &json!({"prompt": long, "max_tokens": 0}));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "context_length_exceeded");
    assert!(
        answer["error"]["message"].as_str().unwrap().contains("256"),
        "{answer}"
    );
    let (status, _) = error(server.get("/v1/nothing"));
    assert_eq!(status, 404);
    still_right(&server);
    // The other endpoints.
    assert_eq!(server.get("/health"), (200, json!({"status": "ok"})));
    let (status, models) = server.get("/v1/models");
    assert_eq!(status, 200);
    assert_eq!(
        models["data"][0]["id"].as_str().unwrap(),
        path.file_name().unwrap().to_str().unwrap()
    );
    // A half-sent request, then the connection dropped: still serving.
    let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
    s.write_all(b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"pro")
        .unwrap();
    drop(s);
    let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
    s.write_all(b"GARBAGE\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    still_right(&server);
    assert!(server.alive());
}

/// The tokenizer endpoints lm-eval's remote tokenizer reads (`local-completions` with
/// `tokenizer_backend=auto`): `/tokenize` gives `score`'s token ids (BOS by the model's rule
/// with `add_special_tokens`, none without), `/detokenize` gives the text back,
/// `/tokenizer_info` names EOS and BOS as the model file does; a token-id prompt is scored as
/// its text is, every token listed. Bad requests get OpenAI's error shape and the server goes on.
#[test]
fn the_tokenizer_endpoints_tokenize_as_score_does() {
    let texts = texts();
    for (name, path) in common::models::both() {
        let reports =
            common::models::run_on(&path, "score", &[], Some(&(texts[..4].join("\n") + "\n")));
        let mut server = Server::start(&path, &["-c", "384"]);
        let (status, info) = server.get("/tokenizer_info");
        assert_eq!(status, 200, "{name}: {info}");
        // llama.cpp rounds a context up (to 512 here): the length the server takes.
        let max_len = info["model_max_length"].as_u64().unwrap() as usize;
        assert!(max_len >= 384, "{name}: {info}");
        let bos_added = reports[0]["tokens"][0]["special"].as_bool().unwrap();
        assert_eq!(info["add_bos_token"], bos_added, "{name}: {info}");
        // EOS spelled out is one token, one the model ends generation with.
        let eos = info["eos_token"].as_str().unwrap();
        let (_, eos_ids) = server.post(
            "/tokenize",
            &json!({"prompt": eos, "add_special_tokens": false}),
        );
        assert_eq!(eos_ids["count"], 1, "{name}: {eos:?} -> {eos_ids}");
        let eos_id = eos_ids["tokens"][0].as_u64().unwrap() as u32;
        let model = common::models::load(&path, 64);
        assert!(model.is_end_of_generation(eos_id), "{name}: {eos:?}");
        if let Some(bos) = info["bos_token"].as_str() {
            let (_, ids) = server.post(
                "/tokenize",
                &json!({"prompt": bos, "add_special_tokens": false}),
            );
            assert_eq!(
                ids["tokens"],
                json!([model.bos().unwrap().0]),
                "{name}: {bos:?}"
            );
        }
        drop(model);
        for (text, report) in texts.iter().zip(&reports) {
            let want: Vec<u64> = report["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_u64().unwrap())
                .collect();
            let (status, got) = server.post("/tokenize", &json!({"prompt": text}));
            assert_eq!(status, 200, "{name}: {got}");
            assert_eq!(got["tokens"], json!(want), "{name}: {text:?}");
            assert_eq!(got["count"], want.len());
            let plain = &want[usize::from(bos_added)..];
            let (_, got) = server.post(
                "/tokenize",
                &json!({"prompt": text, "add_special_tokens": false, "return_token_strs": true}),
            );
            assert_eq!(got["tokens"], json!(plain), "{name}: {text:?}");
            assert_eq!(got["token_strs"].as_array().unwrap().len(), plain.len());
            let (status, back) = server.post("/detokenize", &json!({"tokens": plain}));
            assert_eq!(status, 200, "{name}: {back}");
            assert_eq!(back["prompt"], text.as_str(), "{name}");
            // The ids as a prompt: score's numbers, every token listed (the first null).
            let choice = &server.echo(json!(want), 1)[0];
            let lps = choice["logprobs"]["token_logprobs"].as_array().unwrap();
            assert_eq!(lps.len(), want.len(), "{name}: {text:?}");
            assert!(lps[0].is_null(), "{name}");
            for (got, t) in lps.iter().zip(report["tokens"].as_array().unwrap()).skip(1) {
                assert_eq!(
                    got.to_string(),
                    t["logprob"].to_string(),
                    "{name}: {text:?}"
                );
            }
        }
        // Bad requests: 400s in OpenAI's shape, then still serving.
        let n_vocab = reports[0]["n_vocab"].as_u64().unwrap();
        let bad: [(&str, Value); 5] = [
            ("/tokenize", json!({"add_special_tokens": false})),
            ("/tokenize", json!({"prompt": 7})),
            ("/detokenize", json!({"tokens": [n_vocab]})),
            ("/detokenize", json!({"tokens": [-1]})),
            ("/detokenize", json!({})),
        ];
        for (endpoint, body) in bad {
            let (status, answer) = server.post(endpoint, &body);
            assert_eq!(status, 400, "{name}: {endpoint} {body}: {answer}");
            assert_eq!(answer["error"]["type"], "invalid_request_error", "{answer}");
        }
        // Token-id prompts the engine cannot take: outside the vocabulary, empty, longer
        // than the context; one that just fits is taken.
        let (status, answer) = server.post(
            "/v1/completions",
            &json!({"prompt": vec![1; max_len], "max_tokens": 0}),
        );
        assert_eq!(status, 200, "{name}: {answer}");
        for prompt in [
            json!([[1, n_vocab]]),
            json!([[]]),
            json!(vec![1; max_len + 1]),
        ] {
            let (status, answer) = server.post(
                "/v1/completions",
                &json!({"prompt": prompt, "max_tokens": 1, "echo": true, "logprobs": 1}),
            );
            assert_eq!(status, 400, "{name}: {answer}");
            assert!(answer["error"]["message"].is_string(), "{answer}");
        }
        assert_eq!(server.get("/health").0, 200);
        assert!(server.alive(), "{name}");
    }
}

/// Greedy generation drafts tokens with one-token decodes and checks them with one exact
/// decode per block (engine/complete.rs): over several blocks, on every model, each generated
/// token is the most likely one of `score`'s distribution at its place, with `score`'s logprob
/// to the bit; two prompts in one request (scored side by side, then continued one after the
/// other) get the continuations each gets alone.
#[test]
fn greedy_generation_is_scores_greedy_continuation_over_several_draft_blocks() {
    let prompts = [
        "The history of the city begins in the twelfth century, when",
        "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    ];
    for (name, path) in models() {
        let server = Server::start(&path, &["-c", "512"]);
        let alone: Vec<Value> = prompts
            .iter()
            .map(|prompt| {
                let (status, answer) = server.post(
                    "/v1/completions",
                    &json!({"prompt": prompt, "max_tokens": 72, "temperature": 0, "logprobs": 1}),
                );
                assert_eq!(status, 200, "{name}: {answer}");
                answer["choices"][0].clone()
            })
            .collect();
        for (prompt, choice) in prompts.iter().zip(&alone) {
            let lp = &choice["logprobs"];
            let tokens: Vec<&str> = lp["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            let text = choice["text"].as_str().unwrap();
            let ended = choice["finish_reason"] == "stop";
            let listed = tokens.len() - usize::from(ended);
            assert!(
                listed > 40 || ended,
                "{name}: {prompt:?}: only {listed} tokens"
            );
            assert_eq!(tokens[..listed].concat(), text, "{name}: {prompt:?}");
            let whole = format!("{prompt}{text}");
            let report = &common::models::run_on(&path, "score", &[whole.as_str()], None)[0];
            let scored = score_tokens(report);
            let n_prompt = scored.len() - listed;
            let got: Vec<&str> = scored[n_prompt..].iter().map(|t| t.0.as_str()).collect();
            assert_eq!(
                got,
                tokens[..listed],
                "{name}: {prompt:?}: the text tokenizes otherwise"
            );
            let rows = report["tokens"].as_array().unwrap();
            let first = rows.len() - listed;
            for i in 0..listed {
                let row = &rows[first + i];
                assert_eq!(row["rank"], 1, "{name}: {prompt:?}: token {i} not greedy");
                assert_eq!(
                    lp["token_logprobs"][i].to_string(),
                    row["logprob"].to_string(),
                    "{name}: {prompt:?}: token {i}"
                );
            }
            if ended {
                let next = &report["next"]["top_logprobs"][0];
                assert_eq!(tokens[listed], next["token"], "{name}: {prompt:?}");
                assert_eq!(
                    lp["token_logprobs"][listed].to_string(),
                    next["logprob"].to_string()
                );
            }
        }
        let (status, both) = server.post(
            "/v1/completions",
            &json!({"prompt": prompts, "max_tokens": 72, "temperature": 0, "logprobs": 1}),
        );
        assert_eq!(status, 200, "{name}: {both}");
        for (i, choice) in alone.iter().enumerate() {
            let mut together = both["choices"][i].clone();
            together["index"] = json!(0);
            assert_eq!(together, *choice, "{name}: prompt {i} beside another");
        }
    }
}
