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
