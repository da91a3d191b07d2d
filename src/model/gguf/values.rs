//! Reading and skipping metadata values. Values are kept when they are small (scalars, short
//! strings, short numeric arrays: what the hyperparameter checks need); the token list is read
//! only to find duplicates.

use std::collections::HashSet;

use super::format::{
    GgufError, Value, MAX_ARRAY_DEPTH, MAX_ARRAY_LEN, MAX_INFO_STRING_LEN, MAX_KEPT_ARRAY,
    MAX_STRING_LEN, T_ARRAY, T_STRING,
};
use super::reader::{bail, scalar_size, show, value_type_name, Reader};

/// Reads one metadata value, keeping it when it is a scalar, a short string or a short numeric
/// array; anything else is skipped (and recorded by kind and length when it is an array).
pub(super) fn read_value(r: &mut Reader, value_type: u32) -> Result<Option<Value>, GgufError> {
    let mut b = [0u8; 8];
    let value = match value_type {
        0 | 1 | 7 => {
            r.fill(&mut b[..1])?;
            match value_type {
                0 => Value::Int(i128::from(b[0])),
                1 => Value::Int(i128::from(b[0] as i8)),
                _ => Value::Bool(b[0] != 0),
            }
        }
        2 | 3 => {
            r.fill(&mut b[..2])?;
            let v = u16::from_le_bytes([b[0], b[1]]);
            Value::Int(if value_type == 2 {
                i128::from(v)
            } else {
                i128::from(v as i16)
            })
        }
        4..=6 => {
            let v = r.u32()?;
            match value_type {
                4 => Value::Int(i128::from(v)),
                5 => Value::Int(i128::from(v as i32)),
                _ => Value::Float(f64::from(f32::from_bits(v))),
            }
        }
        10..=12 => {
            let v = r.u64()?;
            match value_type {
                10 => Value::Int(i128::from(v)),
                11 => Value::Int(i128::from(v as i64)),
                _ => Value::Float(f64::from_bits(v)),
            }
        }
        T_STRING => {
            let len = r.string_len(MAX_STRING_LEN, "a string value")?;
            if len > MAX_INFO_STRING_LEN {
                r.skip(Some(len), String::new)?;
                return Ok(Some(Value::Other("string", len)));
            }
            let mut buf = vec![0; len as usize];
            r.fill(&mut buf)?;
            Value::Str(String::from_utf8_lossy(&buf).into_owned())
        }
        T_ARRAY => {
            let elem_type = r.u32()?;
            let count = r.u64()?;
            let numeric = matches!(elem_type, 0..=7 | 10..=12) && elem_type != 6;
            if !numeric || count > MAX_KEPT_ARRAY {
                skip_array(r, elem_type, count, 0)?;
                return Ok(Some(Value::Other("array", count)));
            }
            let mut items = Vec::with_capacity(count as usize);
            for _ in 0..count {
                match read_value(r, elem_type)? {
                    Some(v) => items.push(v.as_int().unwrap_or(0)),
                    None => items.push(0),
                }
            }
            Value::IntArray(items)
        }
        t => bail!(r, "it has unknown value type {t}"),
    };
    Ok(Some(value))
}

/// Reads `tokenizer.ggml.tokens` (after its value type): checks that no two tokens are equal
/// once empty ones are renamed as llama.cpp renames them (`[EMPTY_<i>]`); llama.cpp asserts on
/// duplicates. Returns the number of tokens.
pub(super) fn read_tokens(r: &mut Reader) -> Result<u64, GgufError> {
    let elem_type = r.u32()?;
    let count = r.u64()?;
    if elem_type != T_STRING {
        skip_array(r, elem_type, count, 0)?;
        return Ok(count);
    }
    if count > MAX_ARRAY_LEN {
        bail!(
            r,
            "it has an array of {count} elements (the limit is {MAX_ARRAY_LEN})"
        );
    }
    r.ensure(count.checked_mul(8), || {
        format!("an array of {count} string values")
    })?;
    let mut seen: HashSet<Vec<u8>> = HashSet::with_capacity(count.min(1 << 20) as usize);
    for i in 0..count {
        let mut token = r.string(MAX_STRING_LEN, "a token")?;
        if token.is_empty() {
            token = format!("[EMPTY_{i}]").into_bytes();
        }
        if !seen.insert(token.clone()) {
            return Err(GgufError::Hyperparameter(format!(
                "tokenizer.ggml.tokens lists the token {} twice (llama.cpp aborts on that)",
                show(&String::from_utf8_lossy(&token))
            )));
        }
    }
    Ok(count)
}

/// Skips one metadata value of `value_type`; `depth` counts the arrays around it.
pub(super) fn skip_value(r: &mut Reader, value_type: u32, depth: u32) -> Result<(), GgufError> {
    if let Some(size) = scalar_size(value_type) {
        return r.skip(Some(size), String::new);
    }
    match value_type {
        T_STRING => {
            let len = r.string_len(MAX_STRING_LEN, "a string value")?;
            r.skip(Some(len), String::new)
        }
        T_ARRAY => {
            let elem_type = r.u32()?;
            let count = r.u64()?;
            skip_array(r, elem_type, count, depth)
        }
        t => bail!(r, "it has unknown value type {t}"),
    }
}

/// Skips the elements of an array (its element type and count already read).
pub(super) fn skip_array(
    r: &mut Reader,
    elem_type: u32,
    count: u64,
    depth: u32,
) -> Result<(), GgufError> {
    if depth >= MAX_ARRAY_DEPTH {
        bail!(
            r,
            "its arrays are nested more than {MAX_ARRAY_DEPTH} levels deep"
        );
    }
    if count > MAX_ARRAY_LEN {
        bail!(
            r,
            "it has an array of {count} elements (the limit is {MAX_ARRAY_LEN})"
        );
    }
    let claim = || format!("an array of {count} {} values", value_type_name(elem_type));
    if let Some(size) = scalar_size(elem_type) {
        return r.skip(count.checked_mul(size), claim);
    }
    let min_size = match elem_type {
        T_STRING => 8,
        T_ARRAY => 12,
        t => bail!(r, "it has an array of unknown value type {t}"),
    };
    // Bounds the loop below by the bytes that remain.
    r.ensure(count.checked_mul(min_size), claim)?;
    for _ in 0..count {
        skip_value(r, elem_type, depth + 1)?;
    }
    Ok(())
}
