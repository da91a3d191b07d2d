//! Settings resolved from flags, the config file and defaults (flags win).

use std::path::PathBuf;

use super::args::ModelArgs;
use super::fatal::Fatal;
use crate::analysis::search::Budget;
use crate::analysis::stats::ViewOptions;
use crate::model::ModelOptions;
use crate::support::config::Config;

/// Everything resolved: flags over config over defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub model: Option<PathBuf>,
    pub n_gpu_layers: u32,
    pub ctx_size: u32,
    pub threads: u32,
    pub view: ViewOptions,
    pub flash_attn: bool,
    pub search: Budget,
    /// A second model to compare with.
    pub vs: Option<PathBuf>,
    /// Words to watch.
    pub watch: Vec<String>,
    pub rpc: Vec<crate::model::rpc::Endpoint>,
}

pub const DEFAULT_CTX: u32 = 4096;

pub fn resolve(args: &ModelArgs, config: &Config) -> Settings {
    // Offload by default where llama.cpp's backend registry has a GPU (asked at run time) or
    // RPC servers are named.
    let default_ngl = if !args.rpc.is_empty() || crate::model::gpu_available() {
        999
    } else {
        0
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(4);
    Settings {
        model: args.model.clone().or_else(|| config.model.clone()),
        n_gpu_layers: args
            .n_gpu_layers
            .or(config.n_gpu_layers)
            .unwrap_or(default_ngl),
        ctx_size: args.ctx_size.or(config.ctx_size).unwrap_or(DEFAULT_CTX),
        threads: args.threads.or(config.threads).unwrap_or(threads),
        view: ViewOptions {
            temp: args
                .temp
                .or(config.temp.filter(|t| t.is_finite() && *t > 0.0))
                .unwrap_or(1.0),
            n_probs: args
                .n_probs
                .map(|k| k as usize)
                .or(config.n_probs.filter(|&k| k >= 1))
                .unwrap_or(10),
        },
        flash_attn: args.flash_attn || config.flash_attn.unwrap_or(false),
        search: args
            .search
            .or_else(|| config.search.as_deref().and_then(|s| s.parse().ok()))
            .unwrap_or_else(crate::engine::search::default_budget),
        vs: args.vs.clone(),
        watch: crate::analysis::watch::parse_list(&args.watch),
        rpc: args.rpc.clone(),
    }
}

impl Settings {
    /// The model path to use: the one given, or the default model (fetched when missing).
    pub fn model_path(&self) -> Result<PathBuf, Fatal> {
        match &self.model {
            Some(p) => Ok(p.clone()),
            None => {
                let mut progress = crate::support::fetch::stderr_progress();
                crate::support::fetch::ensure_default_model(&mut progress)
                    .map_err(|e| Fatal::other(format!("cannot fetch the default model: {e}")))
            }
        }
    }

    pub fn model_options(&self, path: PathBuf) -> ModelOptions {
        ModelOptions {
            path,
            n_gpu_layers: self.n_gpu_layers,
            ctx_size: self.ctx_size,
            threads: self.threads,
            flash_attn: self.flash_attn,
            rpc: self.rpc.clone(),
        }
    }

    /// Resolve the model path, check the file and load it. Every failure is one line naming
    /// the file.
    pub fn load_model(&self) -> Result<crate::model::Model, Fatal> {
        let options = self.model_options(self.model_path()?);
        crate::model::load(&options, |_| true).map_err(|e| Fatal::other(e.to_string()))
    }

    /// The second model (`--vs`), checked against the first: same vocabulary.
    pub fn load_second(
        &self,
        first: &crate::model::Model,
    ) -> Result<Option<crate::model::Model>, Fatal> {
        let Some(path) = &self.vs else {
            return Ok(None);
        };
        let b = crate::model::load(&self.model_options(path.clone()), |_| true)
            .map_err(|e| Fatal::other(e.to_string()))?;
        crate::engine::compare::check_same_vocabulary(first, &b).map_err(Fatal::other)?;
        Ok(Some(b))
    }
}
