//! llama.cpp's RPC backend: a model's layers on other hosts.
//!
//! Every build has ggml's RPC backend (`GGML_RPC=ON` in `.cargo/config.toml`). Its two entry
//! points are reached through the backend registry, as llama.cpp's own tools do:
//! `ggml_backend_rpc_start_server` runs a worker ([`serve`], `logitscope rpc-server`), and
//! `ggml_backend_rpc_add_server` adds a worker's devices ([`connect`], `--rpc`). A registered
//! device is used by every model loaded afterwards, for the layers `-ngl` offloads.
//!
//! ggml's client has no timeouts and ends the process on any network fault. So before a
//! server is added, [`probe`] checks it from here with timeouts (a TCP connection and the
//! protocol's HELLO), which turns "not there", "refused", "not an RPC server", "another
//! version" and "busy with another client" into one clear error. A server lost during a run
//! still ends in ggml's abort, which `model::abort` turns into one line (or, in the explorer,
//! a message); a server that stops answering without closing its connection is caught by
//! [`Watchdog`], which gives up after the time set with [`set_timeout`].

use std::ffi::{c_char, c_void, CString};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use llama_cpp_sys_2 as sys;

/// The RPC protocol version of the llama.cpp this program is built with (ggml-rpc.h).
pub const PROTO_MAJOR: u8 = 7;
/// How long [`probe`] waits for a connection and for each answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a decode on RPC devices may take before the server is taken for lost.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

const CMD_HELLO: u8 = 14;
const CMD_DEVICE_COUNT: u8 = 15;
/// `rpc_msg_hello_req`: the connection capabilities (none: plain TCP).
const HELLO_REQ_BYTES: u64 = 24;
/// `rpc_msg_hello_rsp`: major, minor, patch, a pad byte, the capabilities.
const HELLO_RSP_BYTES: u64 = 28;

/// `host:port` of an RPC server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    /// As ggml parses it: the host before the first `:`, a port after it.
    fn from_str(s: &str) -> Result<Self, String> {
        let (host, port) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not HOST:PORT"))?;
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("{s:?} has no host"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("{s:?}: the port must be a number from 1 to 65535"))?;
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

/// Why an RPC server cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("this build of llama.cpp has no RPC backend")]
    NotBuilt,
    #[error("RPC server {endpoint}: {why}")]
    Server { endpoint: String, why: String },
    #[error("RPC server: {0}")]
    Other(String),
}

fn server_error(endpoint: &Endpoint, why: impl Into<String>) -> RpcError {
    RpcError::Server {
        endpoint: endpoint.to_string(),
        why: why.into(),
    }
}

/// A device an RPC server offers, as llama.cpp names it (`RPC0`) and describes it (its
/// endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDevice {
    pub name: String,
    pub endpoint: String,
}

/// Check that an RPC server of our protocol version answers at `endpoint`, within
/// [`PROBE_TIMEOUT`] per step. Returns how many devices it offers.
pub fn probe(endpoint: &Endpoint) -> Result<u32, RpcError> {
    let err = |why: String| server_error(endpoint, why);
    let addrs: Vec<_> = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|e| err(format!("cannot resolve the host: {e}")))?
        // ggml's client connects over IPv4 only.
        .filter(|a| a.is_ipv4())
        .collect();
    let addr = addrs
        .first()
        .ok_or_else(|| err("the host has no IPv4 address (ggml's RPC client needs one)".into()))?;
    let mut s = TcpStream::connect_timeout(addr, PROBE_TIMEOUT).map_err(|e| {
        err(match e.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "connection refused (is `logitscope rpc-server` running there?)".into()
            }
            std::io::ErrorKind::TimedOut => format!(
                "no answer within {} s (host down or port filtered)",
                PROBE_TIMEOUT.as_secs()
            ),
            _ => format!("cannot connect: {e}"),
        })
    })?;
    s.set_read_timeout(Some(PROBE_TIMEOUT)).ok();
    s.set_write_timeout(Some(PROBE_TIMEOUT)).ok();
    let silent = |e: std::io::Error| {
        err(match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => format!(
                "connected, but no RPC answer within {} s (not an RPC server, or one busy \
                 with another client: it serves one at a time)",
                PROBE_TIMEOUT.as_secs()
            ),
            std::io::ErrorKind::UnexpectedEof => {
                "the connection was closed during the RPC handshake".into()
            }
            _ => format!("RPC handshake failed: {e}"),
        })
    };
    let mut hello = vec![CMD_HELLO];
    hello.extend_from_slice(&HELLO_REQ_BYTES.to_le_bytes());
    hello.extend_from_slice(&[0; HELLO_REQ_BYTES as usize]);
    s.write_all(&hello).map_err(silent)?;
    let mut size = [0u8; 8];
    s.read_exact(&mut size).map_err(silent)?;
    if u64::from_le_bytes(size) != HELLO_RSP_BYTES {
        return Err(err(
            "it answered, but not as an RPC server of this llama.cpp".into(),
        ));
    }
    let mut rsp = [0u8; HELLO_RSP_BYTES as usize];
    s.read_exact(&mut rsp).map_err(silent)?;
    if rsp[0] != PROTO_MAJOR {
        return Err(err(format!(
            "it speaks RPC protocol {}.{}.{}, this build speaks {PROTO_MAJOR}.x: run the same \
             logitscope (or llama.cpp) version on both hosts",
            rsp[0], rsp[1], rsp[2]
        )));
    }
    let mut count = vec![CMD_DEVICE_COUNT];
    count.extend_from_slice(&0u64.to_le_bytes());
    s.write_all(&count).map_err(silent)?;
    s.read_exact(&mut size).map_err(silent)?;
    let mut n = [0u8; 4];
    s.read_exact(&mut n).map_err(silent)?;
    Ok(u32::from_le_bytes(n))
}

fn rpc_reg() -> Result<sys::ggml_backend_reg_t, RpcError> {
    // SAFETY: a lookup in ggml's backend registry by a NUL-terminated name.
    let reg = unsafe { sys::ggml_backend_reg_by_name(c"RPC".as_ptr()) };
    if reg.is_null() {
        Err(RpcError::NotBuilt)
    } else {
        Ok(reg)
    }
}

fn proc_address(name: &std::ffi::CStr) -> Result<*mut c_void, RpcError> {
    let reg = rpc_reg()?;
    // SAFETY: the registry returns a function pointer for a known name, or NULL.
    let f = unsafe { sys::ggml_backend_reg_get_proc_address(reg, name.as_ptr()) };
    if f.is_null() {
        Err(RpcError::NotBuilt)
    } else {
        Ok(f)
    }
}

/// The endpoints already added in this process, and their devices.
static ADDED: Mutex<Vec<(String, Vec<RemoteDevice>)>> = Mutex::new(Vec::new());

/// Probe each server, then add its devices to llama.cpp's registry, so the models loaded
/// afterwards offload layers to them (`-ngl`). Adding a server twice adds it once.
pub fn connect(endpoints: &[Endpoint]) -> Result<Vec<RemoteDevice>, RpcError> {
    type AddServer = unsafe extern "C" fn(*const c_char) -> sys::ggml_backend_reg_t;
    // Every server is checked before any is added: a bad one in the list changes nothing.
    for e in endpoints {
        if ADDED
            .lock()
            .is_ok_and(|a| a.iter().any(|(k, _)| *k == e.to_string()))
        {
            continue;
        }
        if probe(e)? == 0 {
            return Err(server_error(e, "it offers no devices"));
        }
    }
    let add = proc_address(c"ggml_backend_rpc_add_server")?;
    if TIMEOUT_MS.load(Ordering::Relaxed) == 0 {
        set_timeout(DEFAULT_TIMEOUT);
    }
    // SAFETY: the registry's entry for this name has this signature (ggml-rpc.h).
    let add: AddServer = unsafe { std::mem::transmute::<*mut c_void, AddServer>(add) };
    let mut devices = Vec::new();
    for e in endpoints {
        let key = e.to_string();
        let mut added = ADDED
            .lock()
            .map_err(|_| RpcError::Other("lock poisoned".into()))?;
        if let Some((_, d)) = added.iter().find(|(k, _)| *k == key) {
            devices.extend(d.iter().cloned());
            continue;
        }
        let c = CString::new(key.clone()).map_err(|_| server_error(e, "bad endpoint"))?;
        // SAFETY: `c` is a valid endpoint the probe just reached; the returned registry entry
        // lives for the process and is registered once (guarded by ADDED).
        let mine = unsafe {
            let reg = add(c.as_ptr());
            if reg.is_null() {
                return Err(server_error(e, "llama.cpp could not add it"));
            }
            sys::ggml_backend_register(reg);
            (0..sys::ggml_backend_reg_dev_count(reg))
                .map(|i| {
                    let dev = sys::ggml_backend_reg_dev_get(reg, i);
                    RemoteDevice {
                        name: cstr(sys::ggml_backend_dev_name(dev)),
                        endpoint: cstr(sys::ggml_backend_dev_description(dev)),
                    }
                })
                .collect::<Vec<_>>()
        };
        devices.extend(mine.iter().cloned());
        added.push((key, mine));
        let names: Vec<&str> = added.iter().map(|(k, _)| k.as_str()).collect();
        super::abort::set_servers(&names.join(", "));
    }
    Ok(devices)
}

fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: ggml returns NUL-terminated strings that live as long as the device.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// The endpoints added so far (for messages about a lost server).
pub fn added_endpoints() -> Vec<String> {
    ADDED
        .try_lock()
        .map(|a| a.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default()
}

/// How `logitscope rpc-server` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub host: String,
    pub port: u16,
    pub threads: usize,
    /// Where the server keeps large tensors it was sent, to skip sending them again.
    pub cache: Option<std::path::PathBuf>,
}

/// Run an RPC server on this host's CPU until the process is stopped. Returns only when it
/// cannot run.
pub fn serve(o: &ServeOptions) -> Result<(), RpcError> {
    type StartServer = unsafe extern "C" fn(
        *const c_char,
        *const c_char,
        usize,
        usize,
        *mut sys::ggml_backend_dev_t,
    );
    if o.host.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(RpcError::Other(format!(
            "--host must be a numeric IPv4 address (ggml's server binds IPv4 only), not {:?}",
            o.host
        )));
    }
    // ggml reports a busy port only as "Failed to create server socket": say which.
    TcpListener::bind((o.host.as_str(), o.port))
        .map_err(|e| RpcError::Other(format!("cannot listen on {}:{}: {e}", o.host, o.port)))?;
    let start = proc_address(c"ggml_backend_rpc_start_server")?;
    // SAFETY: the registry's entry for this name has this signature (ggml-rpc.h).
    let start: StartServer = unsafe { std::mem::transmute::<*mut c_void, StartServer>(start) };
    let endpoint = CString::new(format!("{}:{}", o.host, o.port))
        .map_err(|_| RpcError::Other("bad host".into()))?;
    let cache = match &o.cache {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                RpcError::Other(format!("cannot create the cache {}: {e}", dir.display()))
            })?;
            Some(
                CString::new(format!("{}/", dir.display()))
                    .map_err(|_| RpcError::Other("bad cache path".into()))?,
            )
        }
        None => None,
    };
    // SAFETY: the CPU device exists in every build; start_server gets valid C strings and a
    // one-device array that outlive the call (it blocks while serving).
    unsafe {
        let mut cpu = sys::ggml_backend_dev_by_type(sys::GGML_BACKEND_DEVICE_TYPE_CPU);
        if cpu.is_null() {
            return Err(RpcError::Other("no CPU device".into()));
        }
        start(
            endpoint.as_ptr(),
            cache.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            o.threads.max(1),
            1,
            &mut cpu,
        );
    }
    Err(RpcError::Other(
        "the server stopped (see the line above from ggml)".into(),
    ))
}

/// Catches a server that stops answering without closing its connection, which ggml would
/// wait on forever: work on RPC devices is marked busy, and a thread checks that no such
/// work runs longer than the timeout. Then the process ends as it does when a server is lost.
pub struct Watchdog;

/// When the running decode started (ms since `EPOCH`), or 0.
static BUSY_SINCE: AtomicU64 = AtomicU64::new(0);
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(0);
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn now_ms() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Set how long a decode on RPC devices may take, and start watching (once).
pub fn set_timeout(timeout: Duration) {
    TIMEOUT_MS.store(timeout.as_millis().max(1) as u64, Ordering::Relaxed);
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("rpc-watchdog".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_millis(250));
                let since = BUSY_SINCE.load(Ordering::Relaxed);
                let limit = TIMEOUT_MS.load(Ordering::Relaxed);
                if since != 0 && now_ms().saturating_sub(since) > limit {
                    super::abort::lost_server(&format!(
                        "{} did not answer for {} s (--rpc-timeout)",
                        added_endpoints().join(", "),
                        limit / 1000
                    ));
                }
            });
    });
}

/// How many [`Busy`] guards are alive (they nest: a context dropped inside a decode's guard).
static BUSY_DEPTH: AtomicU64 = AtomicU64::new(0);

/// Marks a llama.cpp call that may wait on the RPC servers (a decode, a context made or
/// freed, a KV cache cleared: each is a round trip to the servers) until dropped. Guards
/// nest; the clock runs from the outermost one.
pub struct Busy(bool);

impl Busy {
    pub fn start() -> Self {
        let watching = TIMEOUT_MS.load(Ordering::Relaxed) > 0;
        if watching && BUSY_DEPTH.fetch_add(1, Ordering::SeqCst) == 0 {
            BUSY_SINCE.store(now_ms(), Ordering::SeqCst);
        }
        Busy(watching)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0 && BUSY_DEPTH.fetch_sub(1, Ordering::SeqCst) == 1 {
            BUSY_SINCE.store(0, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn endpoints_parse_as_ggml_reads_them() {
        let e: Endpoint = "10.0.0.2:50052".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((e.host.as_str(), e.port), ("10.0.0.2", 50052));
        assert_eq!(e.to_string(), "10.0.0.2:50052");
        for bad in ["10.0.0.2", ":50052", "h:0", "h:70000", "h:x", "h :1"] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_closed_port_is_refused_at_once() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or(1);
        drop(l);
        let t = Instant::now();
        let e = probe(&Endpoint {
            host: "127.0.0.1".into(),
            port,
        })
        .unwrap_err();
        assert!(e.to_string().contains("connection refused"), "{e}");
        assert!(t.elapsed() < PROBE_TIMEOUT);
    }

    #[test]
    fn a_silent_listener_is_not_taken_for_a_server() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or(1);
        // Accepts (the kernel does), never answers.
        let e = probe(&Endpoint {
            host: "127.0.0.1".into(),
            port,
        })
        .unwrap_err();
        assert!(e.to_string().contains("no RPC answer within 5 s"), "{e}");
        drop(l);
    }

    #[test]
    fn a_server_of_another_protocol_is_refused() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or(1);
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap_or_else(|e| panic!("{e}"));
            let mut req = [0u8; 1 + 8 + 24];
            s.read_exact(&mut req).ok();
            let mut rsp = HELLO_RSP_BYTES.to_le_bytes().to_vec();
            rsp.extend_from_slice(&[6, 1, 0, 0]);
            rsp.extend_from_slice(&[0; 24]);
            s.write_all(&rsp).ok();
        });
        let e = probe(&Endpoint {
            host: "127.0.0.1".into(),
            port,
        })
        .unwrap_err();
        assert!(e.to_string().contains("protocol 6.1.0"), "{e}");
        server.join().ok();
    }
}
