//! `logitscope serve` as the tests run it: a real process on a free port, talked to over HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub struct Server {
    child: Child,
    pub base: String,
    agent: ureq::Agent,
}

impl Server {
    /// Start the server on `model` with extra flags; returns once it answers.
    pub fn start(model: &Path, extra: &[&str]) -> Server {
        let mut cmd = Command::new(super::bin());
        cmd.arg("-m")
            .arg(model)
            .args(extra)
            .args(["serve", "--port", "0"])
            .env("OMP_WAIT_POLICY", "PASSIVE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start logitscope serve");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let base = loop {
            let line = match lines.next() {
                Some(Ok(l)) => l,
                _ => panic!("serve ended before listening:\n{}", seen.join("\n")),
            };
            if let Some(at) = line.find("http://") {
                let url: String = line[at..].split_whitespace().next().unwrap().to_owned();
                break url;
            }
            seen.push(line);
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Server { child, base, agent }
    }

    /// POST a JSON body to `path`: (status, JSON answer).
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().expect("a JSON answer"))
    }

    /// POST raw bytes as JSON: (status, JSON answer).
    pub fn post_raw(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let mut r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().expect("a JSON answer"))
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let mut r = self
            .agent
            .get(&format!("{}{path}", self.base))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().expect("a JSON answer"))
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The server process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A completion with echo and logprobs for `prompt` (a string or a list), `max_tokens` 0:
    /// the choices.
    pub fn echo(&self, prompt: Value, logprobs: usize) -> Vec<Value> {
        let (status, answer) = self.post(
            "/v1/completions",
            &serde_json::json!({
                "prompt": prompt, "echo": true, "logprobs": logprobs, "max_tokens": 0,
            }),
        );
        assert_eq!(status, 200, "{answer}");
        answer["choices"].as_array().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `score`'s tokens as the server lists them (without the BOS a tokenizer adds): (token text,
/// logprob, character offset in the text).
pub fn score_tokens(report: &Value) -> Vec<(String, Value, usize)> {
    let text = report["text"].as_str().unwrap();
    let mut out = Vec::new();
    let mut byte = 0usize;
    for t in report["tokens"].as_array().unwrap() {
        if t["special"].as_bool().unwrap() {
            continue;
        }
        let bytes: Vec<u8> = t["bytes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap() as u8)
            .collect();
        let mut b = byte.min(text.len());
        while !text.is_char_boundary(b) {
            b -= 1;
        }
        out.push((
            t["token"].as_str().unwrap().to_owned(),
            t["logprob"].clone(),
            text[..b].chars().count(),
        ));
        byte += bytes.len();
    }
    out
}
