//! A `logitscope rpc-server` for the tests that split a model across "hosts" (loopback ports).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logitscope::model::rpc::{probe, Endpoint};

/// A `logitscope rpc-server` on a free loopback port, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub stdout: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let stdout = dir.path().join("stdout");
        let child = Command::new(super::bin())
            .args(["rpc-server", "--port", &port.to_string(), "-t", "1"])
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            port,
            stdout,
            _dir: dir,
        };
        let t = Instant::now();
        while probe(&server.endpoint()).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "server on {port} never answered"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            host: "127.0.0.1".into(),
            port: self.port,
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A stopped server must be continued to die of SIGKILL's cleanup promptly.
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        self.kill();
    }
}
