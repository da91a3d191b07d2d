//! The models every exactness test runs on: the default model (SmolLM2 Q4_1, llama
//! architecture), the second test model (Gemma 3 270M Q4_K_M: sliding-window attention, BOS,
//! K-quants), and the default model re-quantized to the K-quants GGUF files mostly come in
//! (made by `logitscope quantize` on first use, cached beside the models).

use std::path::PathBuf;
use std::sync::Mutex;

/// The K-quants (and iq4_nl) the default model is re-quantized to for the exactness tests.
pub const QUANTS: [&str; 6] = ["q4_k_m", "q4_k_s", "q5_k_m", "q3_k_m", "q2_k", "iq4_nl"];

/// The second test model, fetched by `./dev test` (`logitscope fetch gemma3`). Its absence is
/// a failure, not a skip.
pub fn gemma3() -> PathBuf {
    let m = logitscope::support::fetch::named("gemma3").unwrap();
    let p = logitscope::support::fetch::model_path(&m).unwrap();
    assert!(
        p.is_file(),
        "the second test model is missing at {}: run `./dev test` (or `logitscope fetch gemma3`) first",
        p.display()
    );
    p
}

/// The default model re-quantized to `ty` (one of [`QUANTS`]), made once and cached.
pub fn quant(ty: &str) -> PathBuf {
    static MAKING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = super::model_path().parent().unwrap().join("test-quants");
    std::fs::create_dir_all(&dir).unwrap();
    // And one process at a time (nextest runs every test in a process of its own): two tests
    // wanting the same file would both make it. Released when `_lock` closes.
    let _lock = lock(&dir.join(".making.lock"));
    let out = dir.join(format!("SmolLM2-135M-Instruct.{ty}.gguf"));
    if !out.is_file() {
        // The quantizer writes a temporary file and renames it: a file here is complete.
        let run = super::run(
            &[
                "-m",
                &super::model_arg(),
                "quantize",
                out.to_str().unwrap(),
                "--type",
                ty,
            ],
            None,
        );
        assert!(
            run.status.success(),
            "quantize {ty}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    out
}

/// An exclusive advisory lock on `path` (made if missing), held until the file is dropped.
fn lock(path: &std::path::Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap();
    // SAFETY: flock on a descriptor `file` owns and keeps open while the lock is needed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "lock {}", path.display());
    file
}

/// (name, path) of the two test models.
pub fn both() -> Vec<(String, PathBuf)> {
    vec![
        ("SmolLM2 Q4_1".into(), super::model_path()),
        ("Gemma 3 Q4_K_M".into(), gemma3()),
    ]
}

/// (name, path) of both test models and the default model in every type of [`QUANTS`].
pub fn all() -> Vec<(String, PathBuf)> {
    let mut v = both();
    v.extend(QUANTS.iter().map(|t| (format!("SmolLM2 {t}"), quant(t))));
    v
}

/// A model loaded in this process (2 threads, CPU).
pub fn load(path: &std::path::Path, ctx_size: u32) -> logitscope::model::Model {
    logitscope::support::logging::init_quiet();
    let options = logitscope::model::ModelOptions {
        path: path.to_owned(),
        n_gpu_layers: 0,
        ctx_size,
        threads: 2,
        flash_attn: false,
        rpc: Vec::new(),
    };
    logitscope::model::load(&options, |_| true).unwrap()
}

/// Run a subcommand on `model` (`logitscope SUB -m MODEL ARGS…`) with optional stdin, which
/// must succeed; its JSON lines.
pub fn run_on(
    model: &std::path::Path,
    subcommand: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Vec<serde_json::Value> {
    super::json_lines(&run_ok_on(model, subcommand, args, stdin))
}

/// The output of `logitscope SUB -m MODEL ARGS…`, which must succeed.
fn run_ok_on(
    model: &std::path::Path,
    subcommand: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    let m = model.to_string_lossy().into_owned();
    let mut all = vec![subcommand, "-m", &m];
    all.extend_from_slice(args);
    let out = super::run(&all, stdin.map(str::as_bytes));
    assert!(
        out.status.success(),
        "{subcommand} on {m}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`run_on`], computed once per build and model file: the JSON lines of a deterministic run
/// (the same executable, model file, subcommand, arguments and stdin give the same bytes),
/// kept under the target directory and read by every later test that asks the same — an
/// oracle several test files compare with (`score --layers` on the reference sentences) is
/// then decoded once per CI run. Keyed as the self-check's cache is: the executable's and the
/// model file's path, size and modification time. A test asking while another computes the
/// same waits for it (a lock), then reads its answer.
pub fn run_on_once(
    model: &std::path::Path,
    subcommand: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Vec<serde_json::Value> {
    use std::hash::{Hash, Hasher};
    let identity = |p: &std::path::Path| {
        let meta = std::fs::metadata(p).unwrap();
        let modified = meta.modified().unwrap();
        format!("{} {} {:?}", p.display(), meta.len(), modified)
    };
    let exe = std::fs::canonicalize(super::bin()).unwrap();
    let key = format!(
        "{}\n{}\n{subcommand} {args:?}\n{stdin:?}",
        identity(&exe),
        identity(&std::fs::canonicalize(model).unwrap())
    );
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("oracle");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{:016x}.jsonl", h.finish()));
    let _lock = lock(&file.with_extension("lock"));
    // The key is the file's first line: a hash collision is a miss, never a wrong answer.
    if let Ok(kept) = std::fs::read_to_string(&file) {
        if let Some(rest) = kept.strip_prefix(&format!("{}\n", serde_json::json!(key))) {
            return rest
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        }
    }
    // The run's own bytes, not the values re-written: a number read back is the number a
    // fresh run's line gives, to the bit.
    let out = run_ok_on(model, subcommand, args, stdin);
    let lines = super::json_lines(&out);
    let text = format!(
        "{}\n{}",
        serde_json::json!(key),
        String::from_utf8(out.stdout).unwrap()
    );
    // Written whole and renamed: a reader never sees half a file.
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    lines
}
