//! ggml's tensor types as GGUF stores them: name, block size, bytes per block.

/// What a tensor type id means: (name, values per block, bytes per block), a type llama.cpp
/// no longer loads, or unknown.
pub enum TensorType {
    Known(&'static str, u64, u64),
    Removed(&'static str),
    Unknown,
}

/// ggml type id, name, block size, bytes per block; as in the llama.cpp of llama-cpp-sys-2
/// 0.1.161 (ggml/include/ggml.h, ggml/src/ggml-common.h).
#[rustfmt::skip]
const TYPES: [(u32, &str, u64, u64); 35] = [
    (0, "F32", 1, 4), (1, "F16", 1, 2), (2, "Q4_0", 32, 18), (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22), (7, "Q5_1", 32, 24), (8, "Q8_0", 32, 34), (9, "Q8_1", 32, 36),
    (10, "Q2_K", 256, 84), (11, "Q3_K", 256, 110), (12, "Q4_K", 256, 144), (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210), (15, "Q8_K", 256, 292), (16, "IQ2_XXS", 256, 66), (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98), (19, "IQ1_S", 256, 50), (20, "IQ4_NL", 32, 18), (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82), (23, "IQ4_XS", 256, 136), (24, "I8", 1, 1), (25, "I16", 1, 2),
    (26, "I32", 1, 4), (27, "I64", 1, 8), (28, "F64", 1, 8), (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2), (34, "TQ1_0", 256, 54), (35, "TQ2_0", 256, 66), (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36), (41, "Q1_0", 128, 18), (42, "Q2_0", 64, 18),
];

/// Types that ggml once had and that llama.cpp now refuses to load.
#[rustfmt::skip]
const REMOVED_TYPES: [(u32, &str); 8] = [
    (4, "Q4_2"), (5, "Q4_3"), (31, "Q4_0_4_4"), (32, "Q4_0_4_8"), (33, "Q4_0_8_8"),
    (36, "IQ4_NL_4_4"), (37, "IQ4_NL_4_8"), (38, "IQ4_NL_8_8"),
];

pub fn tensor_type(id: u32) -> TensorType {
    if let Some(&(_, name, block, size)) = TYPES.iter().find(|t| t.0 == id) {
        TensorType::Known(name, block, size)
    } else if let Some(&(_, name)) = REMOVED_TYPES.iter().find(|t| t.0 == id) {
        TensorType::Removed(name)
    } else {
        TensorType::Unknown
    }
}

/// ggml row size: (ne0 / block) * type_size * product of the other dimensions. Like ggml,
/// treats a tensor with no dimensions as having one element.
pub fn tensor_bytes(block: u64, type_size: u64, dims: &[u64]) -> Option<u64> {
    let (first, rest) = dims.split_first().unwrap_or((&1, &[]));
    rest.iter()
        .try_fold((first / block).checked_mul(type_size)?, |n, &d| {
            n.checked_mul(d)
        })
}

/// Bytes of a tensor of type `type_id` and shape `dims`; `None` for an unknown or removed type
/// or an impossible size.
pub fn tensor_size(type_id: u32, dims: &[u64]) -> Option<u64> {
    match tensor_type(type_id) {
        TensorType::Known(_, block, size) => tensor_bytes(block, size, dims),
        _ => None,
    }
}

/// The name of a tensor type ("Q4_1"), or "type N" for one this table does not know.
pub fn type_name(type_id: u32) -> String {
    match tensor_type(type_id) {
        TensorType::Known(name, ..) | TensorType::Removed(name) => name.to_owned(),
        TensorType::Unknown => format!("type {type_id}"),
    }
}
