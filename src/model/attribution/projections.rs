//! The output projections attribution splits each attention layer's share through: every
//! layer's `attn_output.weight` dequantized from the GGUF (and Gemma's norm after it).

use crate::analysis::intervention::Components;
use crate::model::lens::{read_f32, read_matrix};

/// A layer's output projection, for its heads' shares.
pub(super) struct Projection {
    /// n_embd rows of `width` (= n_head · d).
    pub wo: Vec<f32>,
    /// Gemma's norm after the projection (`attn_post_norm`): its weight and epsilon.
    pub post: Option<(Vec<f32>, f32)>,
}

/// Every layer's `attn_output.weight` (and Gemma's post-attention norm), checked against the
/// heads' width the graph showed.
pub(super) fn read_projections(
    path: &std::path::Path,
    c: &Components,
    n_embd: usize,
) -> Result<Vec<Projection>, String> {
    let info = crate::model::gguf::inspect(path).map_err(|e| e.to_string())?;
    let eps = info
        .arch_value("attention.layer_norm_rms_epsilon")
        .and_then(crate::model::gguf::Value::as_float)
        .map(|v| v as f32);
    let mut out = Vec::with_capacity(c.layers.len());
    for (l, layer) in c.layers.iter().enumerate() {
        let Some((heads_name, width)) = &layer.heads else {
            return Err(format!(
                "llama.cpp's graph names no heads' output (kqv_out-{l}) for layer {l}"
            ));
        };
        let name = format!("blk.{l}.attn_output.weight");
        let t = info
            .tensor(&name)
            .ok_or_else(|| format!("the model has no {name} (the output projection)"))?;
        if t.dims.first().copied() != Some(*width as u64)
            || t.dims.get(1).copied() != Some(n_embd as u64)
        {
            return Err(format!(
                "{name} is {:?}, not {width} × {n_embd} ({heads_name} is {width} wide)",
                t.dims
            ));
        }
        let wo = read_matrix(path, t)?;
        let kind = layer.attn.rsplit_once('-').map_or("", |(k, _)| k);
        let post = match kind {
            "attn_out" => None,
            "attn_post_norm" => {
                let wname = format!("blk.{l}.post_attention_norm.weight");
                let w = info
                    .tensor(&wname)
                    .ok_or_else(|| format!("the model has no {wname}"))?;
                let eps = eps.ok_or("no RMS norm epsilon for the post-attention norm")?;
                Some((read_f32(path, w)?, eps))
            }
            other => {
                return Err(format!(
                    "layer {l}'s attention reaches the stream as '{other}', not through the \
                     output projection alone"
                ))
            }
        };
        out.push(Projection { wo, post });
    }
    Ok(out)
}
