//! Deterministic bag-of-words embeddings, in OpenAI's embeddings response shape.
//!
//! Each lower-cased word (letters, digits, apostrophes) is hashed with FNV-1a to a coordinate of
//! a [`DEFAULT_DIM`]-dimensional vector and a sign (the "hashing trick"); counts are summed and
//! the vector L2-normalised. Texts sharing words therefore have a high cosine similarity, the
//! same text always gives the same vector, and an empty text gives the zero vector. Any model
//! name is accepted. The request's `dimensions` field picks another size (1..=4096).

use serde_json::{Value, json};

use crate::error::SimError;
use crate::generate::approx_tokens;
use crate::rng::fnv1a;

/// Vector size when the request does not ask for `dimensions`.
pub const DEFAULT_DIM: usize = 256;
const MAX_DIM: usize = 4096;

/// The embedding of one text.
pub fn embed(text: &str, dim: usize) -> Vec<f32> {
    let mut v = vec![0f64; dim.max(1)];
    let words = text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty());
    for w in words {
        let h = fnv1a(w.to_lowercase().as_bytes());
        let idx = (h % v.len() as u64) as usize;
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        if let Some(x) = v.get_mut(idx) {
            *x += sign;
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter().map(|x| (x / norm) as f32).collect()
    } else {
        v.iter().map(|_| 0.0).collect()
    }
}

/// Texts of an embeddings `input`: a string, an array of strings, or token arrays (each token
/// id treated as a word).
fn inputs(input: &Value) -> Option<Vec<String>> {
    let token_text = |toks: &Vec<Value>| -> Option<String> {
        toks.iter()
            .map(|t| t.as_u64().map(|n| format!("tok{n}")))
            .collect::<Option<Vec<_>>>()
            .map(|w| w.join(" "))
    };
    match input {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            token_text(items).map(|t| vec![t])
        }
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Some(s.clone()),
                Value::Array(toks) => token_text(toks),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Answers an OpenAI embeddings request body.
pub fn respond(body: &Value) -> Result<Value, SimError> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| SimError::invalid_request("you must provide a model parameter", "model"))?;
    let texts = body.get("input").and_then(inputs).ok_or_else(|| {
        SimError::invalid_request(
            "'input' must be a string, an array of strings or an array of token arrays",
            "input",
        )
    })?;
    let dim = match body.get("dimensions").filter(|d| !d.is_null()) {
        None => DEFAULT_DIM,
        Some(d) => match d.as_u64() {
            Some(n) if (1..=MAX_DIM as u64).contains(&n) => n as usize,
            _ => {
                return Err(SimError::invalid_request(
                    format!("'dimensions' must be an integer between 1 and {MAX_DIM} (got {d})"),
                    "dimensions",
                ));
            }
        },
    };
    let tokens: u64 = texts.iter().map(|t| approx_tokens(t)).sum();
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": embed(t, dim)}))
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn deterministic_normalised_and_similar_for_shared_words() {
        let a = embed("Where is my new card?", DEFAULT_DIM);
        assert_eq!(a, embed("Where is my new card?", DEFAULT_DIM));
        assert_eq!(a.len(), DEFAULT_DIM);
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5);
        let b = embed("where is my new card", DEFAULT_DIM);
        let c = embed("How do I reset the PIN code", DEFAULT_DIM);
        assert!(cosine(&a, &b) > 0.99);
        assert!(cosine(&a, &c) < 0.5);
        assert!(embed("", 8).iter().all(|x| *x == 0.0));
    }

    #[test]
    fn response_shape_and_errors() {
        let r = respond(&json!({"model": "e", "input": ["a b", "c"], "dimensions": 16}));
        let Ok(r) = r else { panic!("{r:?}") };
        assert_eq!(r["data"].as_array().map(Vec::len), Some(2));
        assert_eq!(r["data"][1]["index"], 1);
        assert_eq!(r["data"][0]["embedding"].as_array().map(Vec::len), Some(16));
        assert!(respond(&json!({"model": "e", "input": [1, 2, 3]})).is_ok());
        assert_eq!(
            respond(&json!({"model": "e"})).err().map(|e| e.status),
            Some(400)
        );
        assert_eq!(
            respond(&json!({"model": "e", "input": "x", "dimensions": 0}))
                .err()
                .map(|e| e.status),
            Some(400)
        );
    }
}
