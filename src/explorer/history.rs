//! The explorer's files in the data directory, written atomically: the sentence history (one
//! line per sentence) and exports.

use crate::support::files::write_atomically;

pub fn load() -> Vec<String> {
    crate::support::paths::history_file()
        .and_then(|p| std::fs::read(p).ok())
        .map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Write the history atomically: a temporary file beside it, then a rename.
pub fn save(entries: &[String]) -> std::io::Result<()> {
    let Some(path) = crate::support::paths::history_file() else {
        return Ok(());
    };
    let mut text = entries.join("\n");
    text.push('\n');
    write_atomically(&path, text.as_bytes())
}

/// Write an export (Ctrl-S) as pretty JSON into `exports/` in the data directory; its path.
pub fn export(export: &crate::analysis::report::Export) -> std::io::Result<std::path::PathBuf> {
    let dir = crate::support::paths::data_dir()
        .ok_or_else(|| std::io::Error::other("no data directory"))?
        .join("exports");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let path = dir.join(format!("logitscope-{stamp}.json"));
    let json = serde_json::to_vec_pretty(export).map_err(std::io::Error::other)?;
    write_atomically(&path, &json)?;
    Ok(path)
}
