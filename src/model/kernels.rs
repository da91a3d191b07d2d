//! Which CPU matrix-multiplication kernels llama.cpp may use, chosen so that every row of a
//! decode gets the same numbers whatever else shares the decode.
//!
//! ggml's CPU backend picks a kernel per matrix product by the number of activation rows, and
//! two of its fast paths make a row's result depend on its neighbours:
//! - **weight repacking** (the `CPU_REPACK` buffer type: Q4_0, Q4_K and IQ4_NL on AVX2) runs
//!   rows in groups of four through a gemm and the last `n % 4` rows of a decode through a
//!   gemv, which round differently;
//! - the **tiled K-quant kernel** (Q2_K…Q6_K, IQ types; AVX and later) takes decodes of 8 rows
//!   or more, with a narrow path for windows of at most 16 rows and another above, again with
//!   other rounding than the per-row dot product below 8 rows.
//!
//! So on a Q4_K_M file a token scored beside other texts, or in a 16-token keystroke decode,
//! took another path than in a whole-text decode, and its probability changed (by up to 0.06
//! in p on Gemma 3). With both paths off, every quantized product is ggml's per-row dot
//! product (or llamafile's sgemm, whose per-element sums do not depend on the tile), and a
//! row's numbers depend on that row alone. `Model::layout` (the self-check in `probe`) checks
//! this on every model.

/// Keep ggml's tiled K-quant kernel off for this process, unless the user chose with
/// `GGML_CPU_TILED_MM` (ggml reads it once, at its first matrix product). Called before
/// llama.cpp's backend starts.
pub(super) fn pin() {
    if std::env::var_os("GGML_CPU_TILED_MM").is_none() {
        // ggml reads the variable on its first matrix product, which comes after this (the
        // backend is not initialised yet) and no other thread reads the environment here.
        std::env::set_var("GGML_CPU_TILED_MM", "0");
    }
}

/// Why this process's CPU kernels are known to depend on the layout of a decode (ggml's
/// source: the repacked and tiled kernels are chosen by row count), if they are.
pub fn known_layout_dependence() -> Option<&'static str> {
    if repack_allowed() {
        Some("weights repacked (LOGITSCOPE_REPACK=1): ggml runs rows through a 4-row gemm or a gemv by their place in a decode")
    } else if std::env::var("GGML_CPU_TILED_MM")
        .is_ok_and(|v| v.trim().parse::<i64>().is_ok_and(|n| n != 0))
    {
        Some("ggml's tiled K-quant kernel is on (GGML_CPU_TILED_MM): it takes decodes of 8 rows or more, smaller ones another path")
    } else {
        None
    }
}

/// Whether weights may be repacked for faster CPU kernels (llama.cpp's `use_extra_bufts`):
/// off, unless `LOGITSCOPE_REPACK=1` asks for speed over layout-independent numbers (the
/// model is then scored one sequence at a time and every text from scratch, see
/// [`known_layout_dependence`]).
pub(super) fn repack_allowed() -> bool {
    std::env::var_os("LOGITSCOPE_REPACK").is_some_and(|v| v == "1")
}

/// The x86 instruction-set extensions this build's CPU kernels were compiled for and this
/// CPU lacks (ggml asked what it was compiled with; the CPU asked what it has). Empty on other
/// architectures and where nothing is missing. ggml's own CMake defaults compile its CPU
/// kernels for AVX2, FMA, F16C and BMI2 even on the plain x86-64 baseline, so on an older CPU
/// the first matrix product would end the process with an illegal instruction.
pub fn missing_cpu_features() -> Vec<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        // SAFETY: these ggml functions only return constants fixed when ggml was compiled
        // (`#if defined(__AVX2__)` …); they run no vector instruction.
        let features = unsafe {
            use llama_cpp_sys_2 as sys;
            [
                ("SSE3", sys::ggml_cpu_has_sse3() != 0, has!("sse3")),
                ("SSSE3", sys::ggml_cpu_has_ssse3() != 0, has!("ssse3")),
                ("AVX", sys::ggml_cpu_has_avx() != 0, has!("avx")),
                ("AVX2", sys::ggml_cpu_has_avx2() != 0, has!("avx2")),
                ("FMA", sys::ggml_cpu_has_fma() != 0, has!("fma")),
                ("F16C", sys::ggml_cpu_has_f16c() != 0, has!("f16c")),
                ("BMI2", sys::ggml_cpu_has_bmi2() != 0, has!("bmi2")),
                (
                    "AVX-VNNI",
                    sys::ggml_cpu_has_avx_vnni() != 0,
                    has!("avxvnni"),
                ),
                ("AVX-512", sys::ggml_cpu_has_avx512() != 0, has!("avx512f")),
                (
                    "AVX-512 VBMI",
                    sys::ggml_cpu_has_avx512_vbmi() != 0,
                    has!("avx512vbmi"),
                ),
                (
                    "AVX-512 VNNI",
                    sys::ggml_cpu_has_avx512_vnni() != 0,
                    has!("avx512vnni"),
                ),
                (
                    "AVX-512 BF16",
                    sys::ggml_cpu_has_avx512_bf16() != 0,
                    has!("avx512bf16"),
                ),
            ]
        };
        missing(&features)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}

/// Of (name, the build uses it, the CPU has it): what the build uses and the CPU lacks.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn missing(features: &[(&'static str, bool, bool)]) -> Vec<&'static str> {
    features
        .iter()
        .filter(|(_, used, has)| *used && !*has)
        .map(|(name, _, _)| *name)
        .collect()
}

/// The error for a CPU that lacks `missing`: what, why, and how to build for it.
pub fn cpu_error(missing: &[&str]) -> String {
    format!(
        "this CPU lacks {}, which this build of llama.cpp's CPU kernels uses (running on would \
         end in an illegal instruction). Build logitscope for this CPU: \
         RUSTFLAGS=\"-C target-cpu=native\" cargo build --release (README, \"CPU kernels\")",
        missing.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_build_uses_and_the_cpu_lacks_is_missing() {
        let old = [
            ("AVX", true, true),
            ("AVX2", true, false),
            ("FMA", true, false),
            ("AVX-512", false, false),
        ];
        assert_eq!(missing(&old), ["AVX2", "FMA"]);
        let new = [
            ("AVX", true, true),
            ("AVX2", true, true),
            ("FMA", true, true),
            ("AVX-512", false, true),
        ];
        assert!(missing(&new).is_empty());
        assert!(cpu_error(&["AVX2", "FMA"]).starts_with("this CPU lacks AVX2, FMA, which"));
    }

    #[test]
    fn this_machine_runs_this_build() {
        // The tests run on the machine they were built for: nothing may be missing here.
        assert_eq!(missing_cpu_features(), Vec::<&str>::new());
    }
}
