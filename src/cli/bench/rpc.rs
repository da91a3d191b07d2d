//! Table 9: a model split across two RPC servers on this host (loopback) against the same
//! model on the local CPU: load time and scoring speed. Loopback has no network latency worth
//! the name, so this shows the protocol's own overhead; real hosts add their network's.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::super::fatal::Fatal;
use super::super::settings::Settings;
use super::timing::{ms, text_of, time};
use crate::model::rpc::{probe, Endpoint};

/// Two `logitscope rpc-server` processes, stopped when dropped.
struct Servers(Vec<Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_servers(threads: u32) -> Result<(Servers, Vec<Endpoint>), Fatal> {
    let exe = std::env::current_exe().map_err(|e| Fatal::other(e.to_string()))?;
    let mut servers = Servers(Vec::new());
    let mut endpoints = Vec::new();
    for _ in 0..2 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Fatal::other(e.to_string()))?
            .port();
        let child = Command::new(&exe)
            .args(["rpc-server", "--port", &port.to_string()])
            .args(["-t", &threads.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Fatal::other(format!("cannot start an RPC server: {e}")))?;
        servers.0.push(child);
        let e = Endpoint {
            host: "127.0.0.1".into(),
            port,
        };
        let t = Instant::now();
        while probe(&e).is_err() {
            if t.elapsed() > Duration::from_secs(30) {
                return Err(Fatal::other(format!(
                    "the RPC server on {e} never answered"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        endpoints.push(e);
    }
    Ok((servers, endpoints))
}

pub fn table(settings: &Settings) -> Result<(), Fatal> {
    let fatal = |e: String| Fatal::other(e);
    // Each server gets every core: with layers split, the servers compute one after the other.
    let (_servers, endpoints) = start_servers(settings.threads)?;
    let path = settings.model_path()?;
    let local_options = settings.model_options(path.clone());
    let remote_options = crate::model::ModelOptions {
        rpc: endpoints.clone(),
        n_gpu_layers: 999,
        ..local_options.clone()
    };
    let t = Instant::now();
    let local = crate::model::load(&local_options, |_| true).map_err(|e| fatal(e.to_string()))?;
    let local_load = t.elapsed();
    let t = Instant::now();
    let remote = crate::model::load(&remote_options, |_| true).map_err(|e| fatal(e.to_string()))?;
    let remote_load = t.elapsed();
    let split: Vec<String> = remote
        .info()
        .devices
        .iter()
        .map(|d| format!("{} ({}) {} layers", d.name, d.description, d.layers))
        .collect();
    println!(
        "9. two RPC servers on this host (loopback: the protocol's overhead, no real network): {}",
        split.join(", ")
    );
    println!(
        "load: local {:.0} ms, over RPC {:.0} ms",
        ms(local_load),
        ms(remote_load)
    );
    println!("tokens  local ms  tokens/s   RPC ms  tokens/s  ratio");
    let view = settings.view;
    let mut a = local.session().map_err(|e| fatal(e.to_string()))?;
    let mut b = remote.session().map_err(|e| fatal(e.to_string()))?;
    for n in [16usize, 64, 256] {
        let (_, tokens) = text_of(&local, n);
        let run = |s: &mut crate::model::Session<'_>| {
            time(3, || {
                s.reset();
                s.evaluate(&tokens, view, &|| false).is_ok()
            })
        };
        let (l, r) = (run(&mut a), run(&mut b));
        println!(
            "{n:<7} {:>8.1} {:>9.0} {:>8.1} {:>9.0} {:>6.2}",
            ms(l),
            n as f64 / l.as_secs_f64(),
            ms(r),
            n as f64 / r.as_secs_f64(),
            r.as_secs_f64() / l.as_secs_f64()
        );
    }
    Ok(())
}
