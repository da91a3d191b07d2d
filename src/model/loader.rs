//! Loading a model: the pre-flight check of the file, llama.cpp's load with its error lines
//! captured, the vocabulary read once. Also the process-wide llama.cpp backend.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token_type::LlamaTokenAttr;

use crate::analysis::stats::RowError;
use crate::analysis::vocab::{Piece, Vocab};

use super::{abort, gguf, logs};

/// How a model is loaded and its context made; llama.cpp's own flag names in the CLI.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    pub path: PathBuf,
    pub n_gpu_layers: u32,
    pub ctx_size: u32,
    pub threads: u32,
    pub flash_attn: bool,
    /// RPC servers to offload layers to (`--rpc`), added before the model loads.
    pub rpc: Vec<super::rpc::Endpoint>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("llama.cpp could not initialise its backend: {0}")]
    Backend(String),
    /// The CPU lacks instructions the build's kernels use ([`super::kernels::cpu_error`]).
    #[error("{0}")]
    Cpu(String),
    #[error(transparent)]
    Rpc(#[from] super::rpc::RpcError),
    #[error("llama.cpp could not load the model{}", suffix(.0))]
    Load(Option<String>),
    #[error("llama.cpp could not create a context (n_ctx {n_ctx}){}", suffix(.detail))]
    Context { n_ctx: u32, detail: Option<String> },
    #[error("llama.cpp failed to decode: {0}")]
    Decode(String),
    /// An intervention (ablation, steering) that cannot be applied to this model.
    #[error("{0}")]
    Intervention(String),
    #[error("llama.cpp could not update its KV cache: {0}")]
    KvCache(String),
    #[error("{0}")]
    Row(#[from] RowError),
    #[error("text is empty: there is nothing to score")]
    Empty,
    #[error(
        "text has {n_tokens} tokens, more than the context holds ({n_ctx}); use -c to enlarge it"
    )]
    TooLong { n_tokens: usize, n_ctx: usize },
}

fn suffix(d: &Option<String>) -> String {
    d.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
}

/// The cause of a failed llama.cpp call, from the error lines it logged on this thread:
/// llama.cpp logs the cause first ("error loading model: unknown model architecture: 'x'") and
/// generic lines after it ("failed to load model").
pub(super) fn cause(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("error loading model: "))
        .or_else(|| lines.first().map(String::as_str))
        .map(|s| s.trim().to_owned())
}

/// A model that cannot be loaded: the file (the phrase follows `model file '<path>' `), or
/// not the file's fault (an RPC server to load it on is not there).
#[derive(Debug)]
pub struct LoadError {
    pub path: PathBuf,
    pub problem: String,
    /// The problem is the file's.
    pub about_file: bool,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.about_file {
            write!(f, "model file '{}' {}", self.path.display(), self.problem)
        } else {
            f.write_str(&self.problem)
        }
    }
}

impl std::error::Error for LoadError {}

/// llama.cpp's backend may be initialised once per process; it lives as long as the process.
pub(super) fn backend() -> Result<&'static LlamaBackend, ModelError> {
    // The failure: whether it is the CPU's, and what it is.
    static BACKEND: OnceLock<Result<LlamaBackend, (bool, String)>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // Before anything of ggml runs: on a CPU without the kernels' instructions the
            // process would end in an illegal instruction.
            let missing = super::kernels::missing_cpu_features();
            if !missing.is_empty() {
                return Err((true, super::kernels::cpu_error(&missing)));
            }
            super::kernels::pin();
            logs::route_to_tracing();
            // A dynamic-link build finds GPU backends built as loadable modules (beside the
            // executable, or in GGML_BACKEND_PATH) at run time.
            #[cfg(feature = "dynamic-link")]
            // SAFETY: a plain llama.cpp call before the backend starts.
            unsafe {
                llama_cpp_sys_2::ggml_backend_load_all()
            };
            LlamaBackend::init().map_err(|e| (false, e.to_string()))
        })
        .as_ref()
        .map_err(|(cpu, e)| {
            if *cpu {
                ModelError::Cpu(e.clone())
            } else {
                ModelError::Backend(e.clone())
            }
        })
}

/// Whether llama.cpp's backend registry holds a GPU (a discrete or integrated one): asked at
/// run time, so a GPU backend loaded at run time (a `dynamic-link` build) counts with no
/// rebuild, and a GPU build on a host without one does not.
pub fn gpu_available() -> bool {
    if backend().is_err() {
        return false;
    }
    // SAFETY: plain registry queries after the backend is initialised; indices in range.
    unsafe {
        (0..llama_cpp_sys_2::ggml_backend_dev_count()).any(|i| {
            let dev = llama_cpp_sys_2::ggml_backend_dev_get(i);
            !dev.is_null()
                && matches!(
                    llama_cpp_sys_2::ggml_backend_dev_type(dev),
                    llama_cpp_sys_2::GGML_BACKEND_DEVICE_TYPE_GPU
                        | llama_cpp_sys_2::GGML_BACKEND_DEVICE_TYPE_IGPU
                )
        })
    }
}

/// A loaded model and its vocabulary.
pub struct Model {
    pub(super) model: LlamaModel,
    vocab: Arc<Vocab>,
    pub(super) options: ModelOptions,
    devices: Vec<DeviceUse>,
    /// The layout self-check's finding, made on first need ([`Model::layout`]).
    pub(super) layout: OnceLock<super::layout::Layout>,
    /// What each layer adds to the residual stream, from the graph ([`Model::components`]).
    pub(super) graph: OnceLock<Result<crate::analysis::intervention::Components, String>>,
    /// The final norm and W read from the GGUF, shared by the lens and attribution
    /// ([`Model::readout`]).
    pub(super) readout:
        OnceLock<Result<Arc<super::lens::readout::Readout>, super::lens::readout::Unavailable>>,
    /// The intervention every new session starts with ([`Model::set_edits`]).
    pub(super) edits: std::sync::Mutex<Option<Arc<super::edits::Edits>>>,
}

/// Where the layers went, from llama.cpp's "layer 12 assigned to device RPC0" lines (its
/// debug report of the split), in the order the devices first appear.
fn device_use(lines: &[String], remote: &[super::rpc::RemoteDevice]) -> Vec<DeviceUse> {
    let mut out: Vec<DeviceUse> = Vec::new();
    for l in lines {
        let Some(rest) = l.split("assigned to device ").nth(1) else {
            continue;
        };
        let name = rest.split([',', ' ']).next().unwrap_or_default().to_owned();
        match out.iter_mut().find(|d| d.name == name) {
            Some(d) => d.layers += 1,
            None => out.push(DeviceUse {
                description: remote
                    .iter()
                    .find(|r| r.name == name)
                    .map_or_else(|| name.clone(), |r| r.endpoint.clone()),
                name,
                layers: 1,
            }),
        }
    }
    out
}

/// Facts about a loaded model shown to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub file_name: String,
    pub n_vocab: usize,
    pub n_ctx_train: u32,
    pub n_params: u64,
    pub gpu_layers: u32,
    pub gpu_available: bool,
    /// Where the model's layers went, from llama.cpp's load report (empty when it did not
    /// report them).
    pub devices: Vec<DeviceUse>,
    /// Set when the layout self-check failed: what is done instead and why
    /// ([`Model::layout`]); `None` when it passed or has not run.
    pub batching: Option<String>,
    /// What the intervention new sessions start with changes ([`Model::set_edits`]).
    pub intervention: Option<String>,
}

pub use crate::analysis::report::DeviceUse;

impl ModelInfo {
    /// What a report says about this model.
    pub fn facts(&self) -> crate::analysis::report::ModelFacts {
        crate::analysis::report::ModelFacts {
            file_name: self.file_name.clone(),
            devices: self.devices.clone(),
            batching: self.batching.clone(),
            intervention: self.intervention.clone(),
        }
    }
}

/// Check a model file, then load it. Every failure names the file and says what is wrong in
/// one line. `progress` gets values in 0..=1 and may return false to cancel the load.
pub fn load(
    options: &ModelOptions,
    progress: impl FnMut(f32) -> bool + 'static,
) -> Result<Model, LoadError> {
    preflight(&options.path)?;
    Model::load(options, progress).map_err(|e| LoadError {
        path: options.path.clone(),
        about_file: !matches!(e, ModelError::Rpc(_) | ModelError::Cpu(_)),
        problem: match e {
            ModelError::Load(Some(detail)) => format!("was rejected by llama.cpp: {detail}"),
            ModelError::Load(None) => "was rejected by llama.cpp".into(),
            other => other.to_string(),
        },
    })
}

/// Check a model file before llama.cpp sees it ([`gguf::inspect`]): structure, extent and the
/// hyperparameters llama.cpp would abort on.
pub fn preflight(path: &std::path::Path) -> Result<(), LoadError> {
    if preflight_disabled_for_tests() {
        return Ok(());
    }
    gguf::inspect(path).map(|_| ()).map_err(|e| LoadError {
        path: path.to_owned(),
        problem: e.to_string(),
        about_file: true,
    })
}

/// Test hook: hand the file to llama.cpp unchecked, so that a test can prove the last line of
/// defence (the abort handler) on a file the pre-flight would refuse.
fn preflight_disabled_for_tests() -> bool {
    std::env::var_os("LOGITSCOPE_TEST_SKIP_PREFLIGHT").is_some_and(|v| v == "1")
}

impl Model {
    /// Load a model without the pre-flight check (see [`load`]).
    fn load(
        options: &ModelOptions,
        progress: impl FnMut(f32) -> bool + 'static,
    ) -> Result<Self, ModelError> {
        backend()?;
        abort::install();
        let remote = if options.rpc.is_empty() {
            Vec::new()
        } else {
            super::rpc::connect(&options.rpc)?
        };
        let (model, lines) = crate::support::logging::capture_lines(
            |level, line| *level == tracing::Level::ERROR || line.contains("assigned to device"),
            || load_raw(options, progress),
        );
        let errors: Vec<String> = lines
            .iter()
            .filter(|l| !l.contains("assigned to device"))
            .cloned()
            .collect();
        let model = model.ok_or_else(|| ModelError::Load(cause(&errors)))?;
        let vocab = Arc::new(read_vocab(&model));
        Ok(Self {
            model,
            vocab,
            options: options.clone(),
            devices: device_use(&lines, &remote),
            layout: OnceLock::new(),
            graph: OnceLock::new(),
            readout: OnceLock::new(),
            edits: std::sync::Mutex::new(None),
        })
    }

    /// The raw llama.cpp model, for the parts llama-cpp-2 does not wrap (the lens's eval
    /// callback). Only the model layer sees it.
    pub(super) fn raw(&self) -> *mut llama_cpp_sys_2::llama_model {
        // SAFETY: `LlamaModel` is `#[repr(transparent)]` over `Ptr<llama_model>`, itself
        // `#[repr(transparent)]` over `NonNull<llama_model>`: its bits are the pointer (the
        // sizes are checked at compile time, [`LAYOUT_CHECK`]).
        unsafe { *(&self.model as *const LlamaModel).cast::<*mut llama_cpp_sys_2::llama_model>() }
    }

    pub fn vocab(&self) -> &Arc<Vocab> {
        &self.vocab
    }

    pub fn options(&self) -> &ModelOptions {
        &self.options
    }

    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            file_name: self
                .options
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            n_vocab: self.vocab.len(),
            n_ctx_train: self.model.n_ctx_train(),
            n_params: self.model.n_params(),
            gpu_layers: if gpu_built() {
                self.options.n_gpu_layers.min(self.model.n_layer() + 1)
            } else {
                0
            },
            gpu_available: gpu_built(),
            devices: self.devices.clone(),
            batching: self.layout.get().and_then(super::layout::Layout::note),
            intervention: self.default_edits().map(|e| e.label().to_owned()),
        }
    }

    /// A prompt for the model as its chat template writes a one-message conversation, ready
    /// for the assistant's answer; `None` when the file carries no chat template.
    pub fn chat_prompt(&self, user_message: &str) -> Option<String> {
        let template = self.model.chat_template(None).ok()?;
        let message =
            llama_cpp_2::model::LlamaChatMessage::new("user".into(), user_message.into()).ok()?;
        self.model
            .apply_chat_template(&template, &[message], true)
            .ok()
    }

    /// llama.cpp's tokenizer: BOS by the model's rule when `add_bos`, control-token
    /// spellings as control tokens when `special`.
    fn token_ids(&self, text: &str, add_bos: bool, special: bool) -> Vec<u32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), add_bos, special)
            .into_iter()
            .map(|t| u32::try_from(t.0).unwrap_or(0))
            .collect()
    }

    /// Tokenize a prompt the program wrote itself (a chat template's output): control tokens
    /// written in it (`<|im_start|>`) become control tokens. Never for user text.
    pub fn tokenize_prompt(&self, prompt: &str) -> Vec<u32> {
        self.token_ids(prompt, true, true)
    }

    /// Tokenize a piece of text as it would continue another (no BOS), as plain text.
    pub fn tokenize_continuation(&self, text: &str) -> Vec<u32> {
        self.token_ids(text, false, false)
    }

    /// Whether generation ends at token `id` (EOS, EOT and the other end-of-generation tokens
    /// llama.cpp knows for this vocabulary).
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        i32::try_from(id)
            .is_ok_and(|t| self.model.vocab().is_eog(llama_cpp_2::token::LlamaToken(t)))
    }

    /// The BOS token, and whether tokenizing adds it (`pairs --bos` puts it before a text of
    /// a model that does not). `None` when the vocabulary has none.
    pub fn bos(&self) -> Option<(u32, bool)> {
        let vocab = self.model.vocab();
        let id = u32::try_from(vocab.bos().0).ok()?;
        ((id as usize) < self.vocab.len()).then(|| (id, vocab.should_add_bos()))
    }

    /// Tokenize as a tokenizer endpoint does (vLLM's and llama-server's `/tokenize`): text
    /// that spells a control token (`<|im_end|>`) becomes that token, and BOS is put first
    /// by the model's rule when `add_special`. Not how user text is scored ([`Model::tokenize`]).
    pub fn tokenize_parsing_special(&self, text: &str, add_special: bool) -> Vec<u32> {
        self.token_ids(text, add_special, true)
    }

    /// The end-of-sequence token (EOS; EOT where the vocabulary has no EOS), if any.
    pub fn eos(&self) -> Option<u32> {
        let vocab = self.model.vocab();
        [vocab.eos(), vocab.eot()]
            .into_iter()
            .filter_map(|t| u32::try_from(t.0).ok())
            .find(|&id| (id as usize) < self.vocab.len())
    }

    /// The chat template the file carries (Jinja source), if any.
    pub fn chat_template_source(&self) -> Option<String> {
        self.model.chat_template(None).ok()?.to_string().ok()
    }

    /// Tokenize with the model's own BOS rule. Text that looks like a special token
    /// (`<|im_start|>`) is tokenized as plain text: user input never smuggles in control tokens.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        self.token_ids(text, true, false)
    }
}

/// llama-cpp-2 wraps a model as one pointer (`#[repr(transparent)]` down to `NonNull`), which
/// [`Model::raw`] and [`load_raw`] rely on: a version that changed it fails to compile here.
const LAYOUT_CHECK: () = assert!(
    std::mem::size_of::<LlamaModel>()
        == std::mem::size_of::<std::ptr::NonNull<llama_cpp_sys_2::llama_model>>()
        && std::mem::align_of::<LlamaModel>()
            == std::mem::align_of::<*mut llama_cpp_sys_2::llama_model>()
);

/// Load the model with llama.cpp's parameters set directly: llama-cpp-2 0.1.160 offers no
/// setter for `use_extra_bufts`, which must be off for layout-independent numbers
/// ([`super::kernels`]). `None` when llama.cpp refused the file (its error lines say why) or
/// `progress` cancelled.
fn load_raw(
    options: &ModelOptions,
    progress: impl FnMut(f32) -> bool + 'static,
) -> Option<LlamaModel> {
    /// # Safety
    /// `user_data` must point to a live `F`.
    unsafe extern "C" fn trampoline<F: FnMut(f32) -> bool>(
        p: f32,
        user_data: *mut std::ffi::c_void,
    ) -> bool {
        // SAFETY: `user_data` is the `F` boxed below, alive until the load returns.
        let callback = unsafe { &mut *user_data.cast::<F>() };
        callback(p)
    }
    fn typed<F: FnMut(f32) -> bool>(
        _: &F,
    ) -> unsafe extern "C" fn(f32, *mut std::ffi::c_void) -> bool {
        trampoline::<F>
    }
    let () = LAYOUT_CHECK;
    let path = std::ffi::CString::new(options.path.as_os_str().as_encoded_bytes()).ok()?;
    let mut callback = Box::new(progress);
    // SAFETY: llama.cpp's default parameters with plain fields changed; the path is
    // NUL-terminated and the callback outlives the call.
    let ptr = unsafe {
        let mut params = llama_cpp_sys_2::llama_model_default_params();
        params.n_gpu_layers = i32::try_from(options.n_gpu_layers).unwrap_or(i32::MAX);
        params.use_extra_bufts = super::kernels::repack_allowed();
        params.progress_callback = Some(typed(&*callback));
        params.progress_callback_user_data = std::ptr::from_mut(&mut *callback).cast();
        llama_cpp_sys_2::llama_model_load_from_file(path.as_ptr(), params)
    };
    let ptr = std::ptr::NonNull::new(ptr)?;
    // SAFETY: a model llama.cpp just made, owned by nobody else; `LlamaModel` is this pointer
    // (LAYOUT_CHECK) and frees it on drop, as a model it had loaded itself.
    Some(unsafe {
        std::mem::transmute::<std::ptr::NonNull<llama_cpp_sys_2::llama_model>, LlamaModel>(ptr)
    })
}

fn gpu_built() -> bool {
    gpu_available()
}

fn read_vocab(model: &LlamaModel) -> Vocab {
    let vocab = model.vocab();
    let n = vocab.n_tokens().max(0);
    let pieces = (0..n)
        .map(|i| {
            let token = LlamaToken(i);
            let attrs = vocab.attr(token);
            let special = attrs.contains(LlamaTokenAttr::Control)
                || attrs.contains(LlamaTokenAttr::UserDefined) && vocab.is_eog(token);
            Piece {
                bytes: vocab.token_to_piece(token, true, None),
                special,
            }
        })
        .collect();
    Vocab::new(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_the_first_specific_error_line() {
        let lines = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            cause(&lines(&[
                "llama_model_load: error loading model: x",
                "error loading model: unknown model architecture: 'y'",
                "failed to load model"
            ])),
            Some("unknown model architecture: 'y'".into())
        );
        assert_eq!(
            cause(&lines(&["failed to load model"])),
            Some("failed to load model".into())
        );
        assert_eq!(cause(&[]), None);
    }
}
