//! The layout self-check's findings kept on disk, so a process that scores side by side does
//! not decode the probe texts again (≈ 0.6 s on two CPU cores, about a tenth of scoring twenty
//! 84-token texts) when nothing that decides ggml's kernels has changed.
//!
//! A finding is reused only for the same executable (version, size and modification time: a
//! rebuild is another llama.cpp), the same CPU (model name and feature flags), the same model
//! file (path, size, modification time), the same threads and flash-attention setting and the
//! same `GGML_*` / `LLAMA_*` / `LOGITSCOPE_REPACK` environment. It is never kept for a model
//! on a GPU or RPC servers (their kernels are the driver's and the servers'), for a
//! `dynamic-link` build (its libraries can change beside the executable), with an
//! intervention, or where `LOGITSCOPE_SELF_CHECK_CACHE=0`. The file is
//! `self-check.json` in the state directory.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::layout::Layout;
use super::loader::Model;

/// Findings kept: the most recent ones, for as many model files and settings.
const KEPT: usize = 32;
const FILE: &str = "self-check.json";

/// Everything a finding depends on, as plain strings (the file can be read by a person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    executable: String,
    cpu: String,
    model: String,
    threads: u32,
    flash_attn: bool,
    env: Vec<(String, String)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    key: Key,
    side_by_side: Option<String>,
    incremental: Option<String>,
}

/// The key of `model`'s finding in this process, or `None` where findings are not kept.
pub fn key(model: &Model) -> Option<Key> {
    if cfg!(feature = "dynamic-link")
        || std::env::var_os("LOGITSCOPE_SELF_CHECK_CACHE").is_some_and(|v| v == "0")
    {
        return None;
    }
    let options = model.options();
    if !options.rpc.is_empty() || super::gpu_available() || model.default_edits().is_some() {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    Some(Key {
        executable: format!("{} {}", env!("CARGO_PKG_VERSION"), file_identity(&exe)?),
        cpu: cpu_identity()?,
        model: file_identity(&options.path)?,
        threads: options.threads,
        flash_attn: options.flash_attn,
        env: kernel_env(std::env::vars()),
    })
}

/// The finding kept for `key`, if any.
pub fn lookup(key: &Key) -> Option<Layout> {
    lookup_in(&file()?, key)
}

/// Keep `layout` as the finding for `key` (failures only logged: the check runs again next
/// time).
pub fn store(key: &Key, layout: &Layout) {
    if let Some(path) = file() {
        if let Err(e) = store_in(&path, key, layout) {
            tracing::debug!("self-check finding not kept in {}: {e}", path.display());
        }
    }
}

fn file() -> Option<PathBuf> {
    crate::support::paths::state_dir().map(|d| d.join(FILE))
}

fn read(path: &Path) -> Vec<Entry> {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn lookup_in(path: &Path, key: &Key) -> Option<Layout> {
    read(path)
        .into_iter()
        .find(|e| &e.key == key)
        .map(|e| Layout {
            side_by_side: e.side_by_side,
            incremental: e.incremental,
        })
}

fn store_in(path: &Path, key: &Key, layout: &Layout) -> std::io::Result<()> {
    let mut entries = read(path);
    entries.retain(|e| &e.key != key);
    entries.push(Entry {
        key: key.clone(),
        side_by_side: layout.side_by_side.clone(),
        incremental: layout.incremental.clone(),
    });
    let drop = entries.len().saturating_sub(KEPT);
    entries.drain(..drop);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // Written beside the file and renamed over it: a reader never sees half a file.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, &entries)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A file's canonical path, size and modification time (nanoseconds since the epoch).
fn file_identity(path: &Path) -> Option<String> {
    let path = std::fs::canonicalize(path).ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some(format!(
        "{} {} bytes, modified {}",
        path.display(),
        meta.len(),
        modified.as_nanos()
    ))
}

/// The CPU's model name and feature flags (Linux's /proc/cpuinfo, first processor); `None`
/// elsewhere, where findings are then not kept.
fn cpu_identity() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpu_identity_of(&info)
}

fn cpu_identity_of(info: &str) -> Option<String> {
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    // x86 names its features "flags", Arm "Features".
    let features = field("flags").or_else(|| field("Features"))?;
    let name = field("model name").or_else(|| field("CPU part"))?;
    Some(format!("{name}; {features}"))
}

/// The environment ggml and llama.cpp read for their kernels (and logitscope's repacking
/// switch), sorted.
fn kernel_env(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vars
        .filter(|(k, _)| {
            k.starts_with("GGML_") || k.starts_with("LLAMA_") || k == "LOGITSCOPE_REPACK"
        })
        .collect();
    env.sort();
    env
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(model: &str) -> Key {
        Key {
            executable: "0.1.0 /bin/x 10 bytes, modified 1".into(),
            cpu: "Some CPU; avx2 fma".into(),
            model: model.into(),
            threads: 2,
            flash_attn: false,
            env: vec![("GGML_CPU_TILED_MM".into(), "0".into())],
        }
    }

    #[test]
    fn a_finding_is_found_for_its_own_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(FILE);
        assert_eq!(lookup_in(&path, &key("a")), None);
        let inexact = Layout {
            side_by_side: Some("differs".into()),
            incremental: None,
        };
        store_in(&path, &key("a"), &Layout::default()).unwrap();
        store_in(&path, &key("b"), &inexact).unwrap();
        assert_eq!(lookup_in(&path, &key("a")), Some(Layout::default()));
        assert_eq!(lookup_in(&path, &key("b")), Some(inexact.clone()));
        let mut other = key("a");
        other.threads = 4;
        assert_eq!(lookup_in(&path, &other), None);
        other = key("a");
        other.env.clear();
        assert_eq!(lookup_in(&path, &other), None);
        // A newer finding replaces the old one for the same key.
        store_in(&path, &key("a"), &inexact).unwrap();
        assert_eq!(lookup_in(&path, &key("a")), Some(inexact));
        assert_eq!(read(&path).len(), 2);
    }

    #[test]
    fn a_damaged_file_is_no_finding_and_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, "{ not json").unwrap();
        assert_eq!(lookup_in(&path, &key("a")), None);
        store_in(&path, &key("a"), &Layout::default()).unwrap();
        assert_eq!(lookup_in(&path, &key("a")), Some(Layout::default()));
    }

    #[test]
    fn only_the_latest_findings_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        for i in 0..KEPT + 3 {
            store_in(&path, &key(&i.to_string()), &Layout::default()).unwrap();
        }
        assert_eq!(read(&path).len(), KEPT);
        assert_eq!(lookup_in(&path, &key("0")), None);
        assert!(lookup_in(&path, &key(&(KEPT + 2).to_string())).is_some());
    }

    #[test]
    fn a_model_file_rewritten_is_another_key() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, "one").unwrap();
        let before = file_identity(&model).unwrap();
        std::fs::write(&model, "two!").unwrap();
        assert_ne!(file_identity(&model).unwrap(), before);
        assert_eq!(file_identity(&dir.path().join("missing")), None);
    }

    #[test]
    fn the_cpu_is_named_by_its_model_and_flags() {
        let info = "processor\t: 0\nmodel name\t: Example CPU @ 2GHz\nflags\t\t: fpu sse avx2\n\n\
                    processor\t: 1\nmodel name\t: Example CPU @ 2GHz\nflags\t\t: fpu sse avx2\n";
        assert_eq!(
            cpu_identity_of(info).as_deref(),
            Some("Example CPU @ 2GHz; fpu sse avx2")
        );
        assert_eq!(cpu_identity_of("processor : 0\n"), None);
    }

    #[test]
    fn the_kernel_environment_is_ggml_and_llama_variables_sorted() {
        let vars = [
            ("PATH", "/bin"),
            ("LLAMA_ARG_X", "1"),
            ("GGML_CPU_TILED_MM", "0"),
            ("LOGITSCOPE_REPACK", "1"),
            ("LOGITSCOPE_LOG", "debug"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let env = kernel_env(vars.into_iter());
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["GGML_CPU_TILED_MM", "LLAMA_ARG_X", "LOGITSCOPE_REPACK"]
        );
    }
}
