//! Where logitscope keeps its files, from the `directories` crate, each overridable by an
//! environment variable so tests and CI can point them at a scratch directory.
//!
//! | what | default on Linux | override |
//! |---|---|---|
//! | data: models, history | `~/.local/share/logitscope` | `LOGITSCOPE_DATA_DIR` |
//! | state: the log file | `~/.local/state/logitscope` | `LOGITSCOPE_STATE_DIR` |
//! | config: `config.toml` | `~/.config/logitscope` | `LOGITSCOPE_CONFIG_DIR` |

use std::path::PathBuf;

use directories::ProjectDirs;

fn project() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "logitscope")
}

fn from_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

pub fn data_dir() -> Option<PathBuf> {
    from_env("LOGITSCOPE_DATA_DIR").or_else(|| project().map(|p| p.data_dir().to_path_buf()))
}

pub fn state_dir() -> Option<PathBuf> {
    from_env("LOGITSCOPE_STATE_DIR").or_else(|| {
        project().map(|p| {
            p.state_dir()
                .unwrap_or_else(|| p.data_local_dir())
                .to_path_buf()
        })
    })
}

pub fn config_dir() -> Option<PathBuf> {
    from_env("LOGITSCOPE_CONFIG_DIR").or_else(|| project().map(|p| p.config_dir().to_path_buf()))
}

pub fn models_dir() -> Option<PathBuf> {
    data_dir().map(|d| d.join("models"))
}

pub fn history_file() -> Option<PathBuf> {
    data_dir().map(|d| d.join("history.txt"))
}

pub fn config_file() -> Option<PathBuf> {
    config_dir().map(|d| d.join("config.toml"))
}
