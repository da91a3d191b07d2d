//! Settings resolved from flags, the config file and defaults (flags win).

use std::path::PathBuf;

use super::args::ModelArgs;
use super::fatal::Fatal;
use crate::analysis::intervention::parse_ablation;
use crate::analysis::search::Budget;
use crate::analysis::stats::ViewOptions;
use crate::model::{ControlVector, Intervention, ModelOptions};
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
    /// `--search` or the config file's; each use has its own default when neither says.
    pub search: Option<Budget>,
    /// A second model to compare with.
    pub vs: Option<PathBuf>,
    /// Words to watch.
    pub watch: Vec<String>,
    pub rpc: Vec<crate::model::rpc::Endpoint>,
    /// `--ablate`, parsed once the model's heads are known.
    pub ablate: Option<String>,
    /// `--control-vector[-scaled]`, in order.
    pub steer: Vec<ControlVector>,
    pub layer_range: Option<(i32, i32)>,
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
            .or_else(|| config.search.as_deref().and_then(|s| s.parse().ok())),
        vs: args.vs.clone(),
        watch: crate::analysis::watch::parse_list(&args.watch),
        rpc: args.rpc.clone(),
        ablate: args.ablate.clone(),
        steer: control_vectors(args),
        layer_range: match args.control_vector_layer_range[..] {
            [a, b] => Some((a, b)),
            _ => None,
        },
    }
}

/// `--control-vector F` (scale 1) and `--control-vector-scaled F S`, in order.
fn control_vectors(args: &ModelArgs) -> Vec<ControlVector> {
    let mut out: Vec<ControlVector> = args
        .control_vector
        .iter()
        .map(|p| ControlVector {
            path: p.clone(),
            scale: 1.0,
        })
        .collect();
    for pair in args.control_vector_scaled.chunks(2) {
        if let [file, scale] = pair {
            out.push(ControlVector {
                path: file.into(),
                scale: scale.parse().unwrap_or(f32::NAN),
            });
        }
    }
    out
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
        let model =
            crate::model::load(&options, |_| true).map_err(|e| Fatal::other(e.to_string()))?;
        let intervention = self.intervention(&model)?;
        let edits = model
            .edits(&intervention)
            .map_err(|e| Fatal::other(e.to_string()))?;
        model.set_edits(edits);
        Ok(model)
    }

    /// `--ablate` and the control vectors, checked against the model.
    pub fn intervention(&self, model: &crate::model::Model) -> Result<Intervention, Fatal> {
        let (_, n_head) = model.shape();
        let ablate = match &self.ablate {
            Some(spec) => parse_ablation(spec, n_head).map_err(Fatal::other)?,
            None => Vec::new(),
        };
        for c in &self.steer {
            if !c.scale.is_finite() {
                return Err(Fatal::other(format!(
                    "--control-vector-scaled '{}': the scale must be a number (--control-vector-scaled FILE S)",
                    c.path.display()
                )));
            }
        }
        Ok(Intervention {
            ablate,
            steer: self.steer.clone(),
            layer_range: self.layer_range,
        })
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
