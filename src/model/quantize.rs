//! Re-quantizing a GGUF model with llama.cpp's own quantizer — to make a second quantization
//! of a model to compare against (`--vs`).

use std::ffi::CString;
use std::path::Path;

/// The quantization types offered (llama.cpp's ftype names).
/// The K-quants are the types most GGUF files come in (q4_k_m above all): the exactness tests
/// run on them too.
pub const TYPES: [(&str, u32); 15] = [
    ("q4_0", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_0),
    ("q4_1", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_1),
    ("q5_0", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q5_0),
    ("q5_1", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q5_1),
    ("q8_0", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q8_0),
    ("q2_k", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q2_K),
    ("q3_k_m", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q3_K_M),
    ("q4_k_s", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_K_S),
    ("q4_k_m", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_K_M),
    ("q5_k_s", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q5_K_S),
    ("q5_k_m", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q5_K_M),
    ("q6_k", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q6_K),
    ("iq4_nl", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_IQ4_NL),
    ("iq4_xs", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_IQ4_XS),
    ("f16", llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_F16),
];

/// Write `output`: `input` quantized to `type_name` (one of [`TYPES`]), re-quantizing an
/// already quantized input. The input is checked first (as every model is); the output is
/// written to a temporary name and renamed, so a failure leaves nothing behind.
pub fn quantize(input: &Path, output: &Path, type_name: &str, threads: u32) -> Result<(), String> {
    let ftype = TYPES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(type_name))
        .map(|&(_, f)| f)
        .ok_or_else(|| {
            let names: Vec<&str> = TYPES.iter().map(|t| t.0).collect();
            format!("unknown type {type_name:?}; one of {}", names.join(", "))
        })?;
    super::preflight(input).map_err(|e| e.to_string())?;
    super::loader::backend().map_err(|e| e.to_string())?;
    super::abort::install();
    let dir = output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".quantize-")
        .suffix(".gguf")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("the path {} holds a NUL byte", p.display()))
    };
    let (inp, out) = (c(input)?, c(tmp.path())?);
    // SAFETY: the default parameters from llama.cpp, with plain fields changed; both paths
    // are NUL-terminated and outlive the call.
    let status = unsafe {
        let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
        params.ftype = ftype as _;
        params.allow_requantize = true;
        params.nthread = threads as i32;
        let (status, errors) = crate::support::logging::capture_errors(|| {
            llama_cpp_sys_2::llama_model_quantize(inp.as_ptr(), out.as_ptr(), &params)
        });
        if status != 0 {
            return Err(format!(
                "llama.cpp could not quantize '{}'{}",
                input.display(),
                errors.first().map(|e| format!(": {e}")).unwrap_or_default()
            ));
        }
        status
    };
    debug_assert_eq!(status, 0);
    // A model file, readable as others are (temporary files start private).
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(output)
        .map(|_| ())
        .map_err(|e| format!("cannot write {}: {}", output.display(), e.error))
}
