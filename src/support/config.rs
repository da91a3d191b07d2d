//! Optional defaults from `config.toml` in the config directory. Flags always win.
//!
//! A config file that cannot be read or parsed is reported as a warning and ignored: a typo in
//! a settings file must never stop the program, and it is never rewritten by us.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Every key is optional; unknown keys are an error (so typos are noticed, as a warning).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub model: Option<PathBuf>,
    pub n_gpu_layers: Option<u32>,
    pub ctx_size: Option<u32>,
    pub threads: Option<u32>,
    pub temp: Option<f32>,
    pub n_probs: Option<usize>,
    pub flash_attn: Option<bool>,
    /// Fill-in search budget: a number of words or "all".
    pub search: Option<String>,
}

/// Load the config at `path`. Returns the config (default when missing or broken) and a
/// warning to show when the file exists but is unusable.
pub fn load(path: Option<&Path>) -> (Config, Option<String>) {
    let Some(path) = path else {
        return (Config::default(), None);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Config::default(), None),
        Err(e) => {
            return (
                Config::default(),
                Some(format!(
                    "ignoring config file {}: {e}; using defaults",
                    path.display()
                )),
            )
        }
    };
    match toml::from_str::<Config>(&text) {
        Ok(c) => (c, None),
        Err(e) => (
            Config::default(),
            Some(format!(
                "ignoring config file {}: {}; using defaults",
                path.display(),
                e.message()
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_known_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "temp = 0.5\nn-probs = 5\nctx-size = 1024\n").unwrap();
        let (c, w) = load(Some(&p));
        assert_eq!(w, None);
        assert_eq!(c.temp, Some(0.5));
        assert_eq!(c.n_probs, Some(5));
        assert_eq!(c.ctx_size, Some(1024));
    }

    #[test]
    fn corrupt_config_warns_uses_defaults_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        for junk in [
            &b"temp = = 3"[..],
            b"tmep = 1.0",
            b"\xff\xfe\x00garbage",
            b"temp = \"hot\"",
        ] {
            std::fs::write(&p, junk).unwrap();
            let (c, w) = load(Some(&p));
            assert_eq!(c, Config::default());
            assert!(w.unwrap().contains("ignoring config file"));
            assert_eq!(std::fs::read(&p).unwrap(), junk);
        }
    }

    #[test]
    fn missing_config_is_silent() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            load(Some(&dir.path().join("nope.toml"))),
            (Config::default(), None)
        );
    }
}
