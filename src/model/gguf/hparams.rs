//! Hyperparameters llama.cpp asserts on. A `GGML_ASSERT` ends the process, so a file whose
//! values would trip one is refused here, with a sentence, before llama.cpp sees it.
//!
//! Found by reading the llama.cpp that llama-cpp-sys-2 0.1.161 vendors: `load_hparams`
//! (src/llama-model.cpp, for every architecture), the vocabulary loader (src/llama-vocab.cpp)
//! and the compute kernels that check their parameters (ggml-cpu/ops.cpp). Values llama.cpp
//! rejects cleanly (a missing key, a wrong type, a tensor of the wrong shape) are left to it:
//! its own message is then shown.

use super::format::{GgufInfo, Value};

/// `LLAMA_MAX_LAYERS` (src/llama-hparams.h).
pub const MAX_LAYERS: i128 = 512;
/// `LLAMA_MAX_EXPERTS` (src/llama-hparams.h).
pub const MAX_EXPERTS: i128 = 1024;
/// The rope scaling types llama.cpp knows; any other string is an assertion failure.
const ROPE_SCALING_TYPES: [&str; 4] = ["none", "linear", "yarn", "longrope"];

/// The first value that would make llama.cpp abort, described; `Ok` when there is none.
pub fn check(info: &GgufInfo) -> Result<(), String> {
    let Some(arch) = info.architecture.as_deref() else {
        return Ok(()); // llama.cpp refuses a file without an architecture cleanly
    };
    let key = |k: &str| format!("{arch}.{k}");
    let int = |k: &str| info.arch_value(k).and_then(Value::as_int);
    let max_of = |k: &str| {
        info.arch_value(k)
            .map(|v| v.ints().into_iter().max().unwrap_or(0))
    };

    // llama-model.cpp:1330 `n_layer_all > 0 && n_layer_all <= LLAMA_MAX_LAYERS`
    let n_layer = int("block_count");
    if let Some(n) = n_layer {
        if !(1..=MAX_LAYERS).contains(&n) {
            return Err(format!(
                "{} is {n}; llama.cpp needs 1 to {MAX_LAYERS} layers",
                key("block_count")
            ));
        }
    }
    // :1332 `n_layer_nextn <= n_layer_all`
    if let (Some(nextn), Some(n)) = (int("nextn_predict_layers"), n_layer) {
        if nextn > n {
            return Err(format!(
                "{} is {nextn}, more than its {n} layers",
                key("nextn_predict_layers")
            ));
        }
    }
    check_experts(info, &key)?;
    // :1422 an unknown rope scaling type is an assertion failure
    if let Some(v) = info.arch_value("rope.scaling.type") {
        let ok = v.as_str().is_some_and(|s| ROPE_SCALING_TYPES.contains(&s));
        if !ok {
            return Err(format!(
                "{} is {}; llama.cpp knows only {}",
                key("rope.scaling.type"),
                shown(v),
                ROPE_SCALING_TYPES.join(", ")
            ));
        }
    }
    // ggml-cpu/ops.cpp:4132 `eps >= 0.0f` in the norms, asserted at the first decode
    for k in [
        "attention.layer_norm_rms_epsilon",
        "attention.layer_norm_epsilon",
    ] {
        if let Some(eps) = info.arch_value(k).and_then(Value::as_float) {
            if eps.is_nan() || eps < 0.0 {
                return Err(format!("{} is {eps}; it must be a number ≥ 0", key(k)));
            }
        }
    }
    // ggml.c:5515 / :3354: attention broadcasts the KV heads over the query heads, layer by layer
    if let (Some(heads), Some(kv)) = (
        info.arch_value("attention.head_count").map(Value::ints),
        info.arch_value("attention.head_count_kv").map(Value::ints),
    ) {
        let at = |v: &[i128], i: usize| {
            if v.len() == 1 {
                v[0]
            } else {
                v.get(i).copied().unwrap_or(0)
            }
        };
        for i in 0..heads.len().max(kv.len()) {
            let (h, k) = (at(&heads, i), at(&kv, i));
            if h > 0 && k > 0 && h % k != 0 {
                return Err(format!(
                    "{} ({k}) does not divide {} ({h})",
                    key("attention.head_count_kv"),
                    key("attention.head_count")
                ));
            }
        }
    }
    // models/llama.cpp:102 `n_embd_head == n_embd_head_k` (the value head size is the key's)
    if arch == "llama" {
        if let (Some(k), Some(v)) = (
            max_of("attention.key_length"),
            max_of("attention.value_length"),
        ) {
            if k != v {
                return Err(format!(
                    "{} ({k}) differs from {} ({v}), which this architecture cannot do",
                    key("attention.key_length"),
                    key("attention.value_length")
                ));
            }
        }
    }
    check_tokenizer(info)
}

/// llama-model.cpp:1363-1375: the expert counts of mixture-of-experts models.
fn check_experts(info: &GgufInfo, key: &dyn Fn(&str) -> String) -> Result<(), String> {
    let int = |k: &str| info.arch_value(k).and_then(Value::as_int).unwrap_or(0);
    let n_expert = int("expert_count");
    let used = info
        .arch_value("expert_used_count")
        .map_or(0, |v| v.ints().into_iter().max().unwrap_or(0));
    let groups = int("expert_group_count");
    let groups_used = int("expert_group_used_count");
    let problem = if n_expert > MAX_EXPERTS {
        Some(format!(
            "{} is {n_expert}, more than {MAX_EXPERTS}",
            key("expert_count")
        ))
    } else if used > n_expert {
        Some(format!(
            "{} is {used}, more than {} ({n_expert})",
            key("expert_used_count"),
            key("expert_count")
        ))
    } else if n_expert > 0 && used == 0 {
        Some(format!(
            "{} is {n_expert} but no expert is used ({} is 0)",
            key("expert_count"),
            key("expert_used_count")
        ))
    } else if n_expert > 0 && groups >= n_expert {
        Some(format!(
            "{} ({groups}) is not below {} ({n_expert})",
            key("expert_group_count"),
            key("expert_count")
        ))
    } else if n_expert > 0
        && groups > 1
        && (n_expert % groups != 0 || groups_used == 0 || groups_used >= groups)
    {
        Some(format!(
            "the expert groups are inconsistent ({n_expert} experts, {groups} groups, {groups_used} used)"
        ))
    } else if n_expert == 0 && groups != 0 {
        Some(format!(
            "{} is {groups} without experts",
            key("expert_group_count")
        ))
    } else {
        None
    };
    problem.map_or(Ok(()), Err)
}

/// llama-vocab.cpp: a model without a tokenizer aborts when text is tokenized (:3704), and so
/// does one that must add a BOS (or EOS) token it does not have (:595, :3477).
fn check_tokenizer(info: &GgufInfo) -> Result<(), String> {
    if let Some(model) = info.get("tokenizer.ggml.model").and_then(Value::as_str) {
        if model == "none" || model == "no_vocab" {
            return Err(format!(
                "tokenizer.ggml.model is '{model}': the model has no tokenizer, and logitscope needs one to read text"
            ));
        }
    }
    for (add, id) in [
        ("add_bos_token", "bos_token_id"),
        ("add_eos_token", "eos_token_id"),
    ] {
        let adds = info
            .get(&format!("tokenizer.ggml.{add}"))
            .and_then(Value::as_int)
            .is_some_and(|v| v != 0);
        let token = info
            .get(&format!("tokenizer.ggml.{id}"))
            .and_then(Value::as_int);
        if let Some(t) = token
            .filter(|&t| adds && info.n_tokens > 0 && (t < 0 || t >= i128::from(info.n_tokens)))
        {
            return Err(format!(
                "tokenizer.ggml.{id} is {t}, outside the vocabulary of {} tokens, and tokenizer.ggml.{add} is set",
                info.n_tokens
            ));
        }
    }
    Ok(())
}

fn shown(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("{:?}", s.chars().take(40).collect::<String>()),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::IntArray(a) => format!("an array of {}", a.len()),
        Value::Other(kind, len) => format!("a {kind} of {len}"),
    }
}
