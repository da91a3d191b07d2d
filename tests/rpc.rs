//! Models split across hosts with llama.cpp's RPC backend, on this host: two
//! `logitscope rpc-server` processes on loopback ports hold the layers. The numbers must be the
//! local CPU's (the same kernels run in the servers), the layers must really be on the servers,
//! and every fault must end in one clear line within a bounded time.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::rpc_server::Server;
use serde_json::Value;

use common::sentences_file as sentences;

fn without_devices(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("devices");
    v
}

#[test]
fn two_servers_hold_every_layer_and_give_the_local_numbers_bit_for_bit() {
    let (a, b) = (Server::start(), Server::start());
    let rpc = format!("127.0.0.1:{},127.0.0.1:{}", a.port, b.port);
    let model = common::model_arg();
    let input = sentences();
    let remote = common::run(
        &["score", "-m", &model, "--rpc", &rpc, "-ngl", "99"],
        Some(input.as_bytes()),
    );
    assert!(
        remote.status.success(),
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
    let local = common::run(&["score", "-m", &model], Some(input.as_bytes()));
    let (remote, local) = (common::json_lines(&remote), common::json_lines(&local));
    assert_eq!(remote.len(), 8);
    for (r, l) in remote.iter().zip(&local) {
        // The layers ran on the two servers, none on the local CPU (30 layers and the output
        // layer, split by the servers' free memory).
        let devices = r["devices"].as_array().unwrap();
        let names: Vec<&str> = devices
            .iter()
            .map(|d| d["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["RPC0", "RPC1"], "{devices:?}");
        assert_eq!(devices[0]["description"], format!("127.0.0.1:{}", a.port));
        assert_eq!(devices[1]["description"], format!("127.0.0.1:{}", b.port));
        let layers: u64 = devices.iter().map(|d| d["layers"].as_u64().unwrap()).sum();
        assert_eq!(layers, 31);
        assert!(devices.iter().all(|d| d["layers"].as_u64().unwrap() > 0));
        assert_eq!(l["devices"][0]["name"], "CPU");
        // Measured: bit-identical (the servers run the same CPU kernels on the same splits).
        assert_eq!(without_devices(r.clone()), without_devices(l.clone()));
    }
    // Each server saw its client (ggml prints this when it accepts one).
    for s in [&a, &b] {
        let out = std::fs::read_to_string(&s.stdout).unwrap();
        assert!(out.contains("Accepted client connection"), "{out}");
    }
}

#[test]
fn a_closed_port_is_one_line_and_status_2() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rpc = format!("127.0.0.1:{port}");
    let out = common::run(
        &["score", "-m", &common::model_arg(), "--rpc", &rpc, "x"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "logitscope: error: RPC server {rpc}: connection refused"
        )),
        "{err}"
    );
}

/// Run `score` over many long lines through `server` and do `fault` to it once the first
/// result is out; the run must end by itself (status 2) within `limit`. With
/// `between_inputs`, only the first line is written before the fault and the rest after it:
/// the fault then meets `score` waiting for input, and the next line's first call to the
/// server (clearing the KV cache, not a decode) is where it shows.
fn run_with_fault(
    server: &mut Server,
    extra: &[&str],
    fault: &str,
    between_inputs: bool,
    limit: Duration,
) -> (String, String) {
    use std::io::{BufRead, BufReader, Write};
    let line = "the chef seasoned the soup with salt and the cat sat on the mat ".repeat(12);
    let input: String = (0..300).map(|i| format!("{i} {line}\n")).collect();
    let rpc = format!("127.0.0.1:{}", server.port);
    let model = common::model_arg();
    let mut args = vec!["score", "-m", &model, "--rpc", &rpc];
    args.extend_from_slice(extra);
    let mut child = Command::new(common::bin())
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (faulted_tx, faulted_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if between_inputs {
            let (first, rest) = input.split_at(input.find('\n').unwrap() + 1);
            let _ = stdin.write_all(first.as_bytes());
            let _ = stdin.flush();
            let _ = faulted_rx.recv();
            let _ = stdin.write_all(rest.as_bytes());
        } else {
            let _ = stdin.write_all(input.as_bytes());
        }
    });
    // Read stdout as a consumer would, all along: a reader that stops reading fills the pipe
    // and `score` then waits on its write, not on the server.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in stdout.lines() {
            let line = line.unwrap();
            if lines.is_empty() {
                let _ = first_tx.send(line.clone());
            }
            lines.push(line);
        }
        lines
    });
    let first = first_rx.recv().expect("a first result before the fault");
    assert!(first.contains("\"tokens\""), "{first}");
    let t = Instant::now();
    match fault {
        "kill" => server.kill(),
        "stop" => {
            Command::new("kill")
                .args(["-STOP", &server.child.id().to_string()])
                .status()
                .unwrap();
        }
        _ => unreachable!(),
    }
    let _ = faulted_tx.send(());
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("score did not end within {limit:?} of the fault");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    println!("ended {:?} after the fault", t.elapsed());
    assert_eq!(status.code(), Some(2));
    let rest = reader.join().unwrap().join("\n");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (rest, err)
}

fn assert_error_line_for_the_input(rest: &str, err: &str, cause: &str) {
    // Results before the fault, then one error line for the input it hit, then nothing.
    let last: Value = serde_json::from_str(rest.lines().last().unwrap()).unwrap();
    assert!(last["text"].as_str().unwrap().contains("the chef seasoned"));
    let error = last["error"].as_str().unwrap();
    assert!(error.starts_with("lost the RPC server"), "{error}");
    assert!(error.contains(cause), "{error}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("logitscope: error: lost the RPC server"),
        "{err}"
    );
}

#[test]
fn a_server_killed_during_a_long_score_ends_it_with_an_error_line() {
    let mut server = Server::start();
    let (rest, err) = run_with_fault(&mut server, &[], "kill", false, Duration::from_secs(30));
    assert_error_line_for_the_input(&rest, &err, "Remote RPC server crashed");
}

#[test]
fn a_server_killed_while_score_waits_for_input_ends_it_with_an_error_line() {
    let mut server = Server::start();
    let (rest, err) = run_with_fault(&mut server, &[], "kill", true, Duration::from_secs(30));
    assert_error_line_for_the_input(&rest, &err, "Remote RPC server crashed");
}

#[test]
fn a_server_that_stops_answering_is_given_up_after_the_timeout() {
    let mut server = Server::start();
    let (rest, err) = run_with_fault(
        &mut server,
        // One text per decode (≈ 0.3 s): a side-by-side decode of 5 long lines could itself
        // near 3 s on a busy 2-core machine.
        &["--rpc-timeout", "3", "--parallel", "1"],
        "stop",
        false,
        Duration::from_secs(30),
    );
    assert_error_line_for_the_input(&rest, &err, "did not answer for 3 s");
}

/// The server stops while `score` waits for its next line: the next line's first round trip
/// (clearing the KV cache) must be under the watchdog too, or `score` waits forever.
#[test]
fn a_server_that_stops_between_inputs_is_given_up_after_the_timeout() {
    let mut server = Server::start();
    let (rest, err) = run_with_fault(
        &mut server,
        &["--rpc-timeout", "3"],
        "stop",
        true,
        Duration::from_secs(30),
    );
    assert_error_line_for_the_input(&rest, &err, "did not answer for 3 s");
}

/// `perplexity` across hosts, as every command: alone and against a base model beside it
/// (`--vs`), two servers holding the layers give the local figures bit for bit, every chunk and
/// every listed position.
#[test]
fn perplexity_on_two_servers_gives_the_local_figures_bit_for_bit() {
    let (a, b) = (Server::start(), Server::start());
    let rpc = format!("127.0.0.1:{},127.0.0.1:{}", a.port, b.port);
    let model = common::model_arg();
    let quant = common::models::quant("q4_k_m");
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.txt");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    std::fs::write(&corpus, readme).unwrap();
    let corpus = corpus.to_str().unwrap();
    let base = [
        "perplexity",
        "-m",
        &model,
        "-f",
        corpus,
        "-c",
        "128",
        "--chunks",
        "3",
        "--worst",
        "4",
        "--format",
        "json",
    ];
    let vs = [&base[..], &["--vs", quant.to_str().unwrap()]].concat();
    for args in [&base[..], &vs[..]] {
        let remote = common::run(&[args, &["--rpc", &rpc, "-ngl", "99"]].concat(), None);
        assert!(
            remote.status.success(),
            "{}",
            String::from_utf8_lossy(&remote.stderr)
        );
        let local = common::run(args, None);
        assert!(local.status.success());
        let (remote, local): (Value, Value) = (
            serde_json::from_slice(&remote.stdout).unwrap(),
            serde_json::from_slice(&local.stdout).unwrap(),
        );
        assert_eq!(remote, local, "{args:?}");
        assert!(remote["n_chunk_done"] == 3, "{remote}");
    }
    for s in [&a, &b] {
        let out = std::fs::read_to_string(&s.stdout).unwrap();
        assert!(out.contains("Accepted client connection"), "{out}");
    }
}
