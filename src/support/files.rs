//! Writing a file so that readers see the old content or the new, never half of either: a
//! temporary file beside the target, synced, then renamed over it.

use std::io::Write;
use std::path::Path;

/// Replace `path` with `bytes` atomically (creating its directory when needed).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically_with(path, |f| f.write_all(bytes))
}

/// Replace `path` with what `write` puts into the temporary file. If `write` (or anything after
/// it) fails, the old file is untouched and the temporary file is removed.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}-"))
        .tempfile_in(dir)?;
    write(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map(|_| ()).map_err(|e| e.error)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn names(dir: &Path) -> Vec<std::ffi::OsString> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_file_is_replaced_atomically_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/history.txt");
        write_atomically(&path, b"first\nsecond\n").unwrap();
        write_atomically(&path, b"third\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "third\n");
        assert_eq!(names(path.parent().unwrap()), vec!["history.txt"]);
    }

    /// The write fails half-way through, on the very file that is checked: the old content
    /// stays and the partial temporary file is gone.
    #[test]
    fn a_write_that_fails_half_way_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.txt");
        write_atomically(&path, b"kept\n").unwrap();
        let err = write_atomically_with(&path, |f| {
            f.write_all(b"partial new cont")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept\n");
        assert_eq!(names(dir.path()), vec!["history.txt"]);
    }

    /// A rename that cannot happen (a directory stands where the file should go) fails too,
    /// and leaves nothing behind.
    #[test]
    fn a_failed_rename_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomically(&blocked, b"new").is_err());
        assert_eq!(names(dir.path()), vec!["blocked"]);
    }
}
