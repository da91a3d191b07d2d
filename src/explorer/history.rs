//! The sentence history: one line per sentence in the data directory, written atomically.

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
