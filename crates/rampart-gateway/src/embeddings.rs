//! Embedding similarity of shadow pairs, for rollouts with `[rollouts.R.embeddings]`: both
//! answers embedded in one call to the configured OpenAI-compatible embeddings model, and the
//! cosine of the two vectors stored as the pair's `embedding_similarity` (the comparison engine
//! then calls a pair `equivalent` at a cosine of 0.90 or more; see
//! `rampart_core::compare::features`).
//!
//! Invariants: runs in the shadow task (never on the request path), under the shadow call's
//! permit and timeout; a failed or malformed call leaves the similarity unset, is counted in
//! `rampart_embeddings_total{rollout, outcome="error"}` and logged, and never loses the pair.

use rampart_core::compare::features::cosine;
use rampart_core::record::Pair;
use serde_json::{Value, json};

use crate::metrics::rollout_outcome_labels;
use crate::plane::DataPlane;

/// The cosine similarity of the pair's two answers, when the rollout has an embeddings model
/// and both sides answered with text.
pub async fn similarity(gw: &DataPlane, pair: &Pair) -> Option<f64> {
    let cfg = gw.config.rollouts.get(&pair.rollout)?.embeddings.as_ref()?;
    let (b, c) = (
        pair.baseline.answered_text()?,
        pair.candidate.answered_text()?,
    );
    let provider = gw.providers.get(&cfg.provider)?;
    let body = json!({"model": cfg.model, "input": [b, c]});
    let result =
        match tokio::time::timeout(gw.config.shadow.timeout, provider.embeddings(&body)).await {
            Ok(Ok(v)) => cosine_of(&v).ok_or_else(|| "no two embeddings in the answer".to_string()),
            Ok(Err(e)) => Err(e.describe()),
            Err(_) => Err("timeout".to_string()),
        };
    let outcome = if result.is_ok() { "ok" } else { "error" };
    gw.metrics
        .embeddings
        .calls
        .get_or_create(&rollout_outcome_labels(&pair.rollout, outcome))
        .inc();
    result
        .inspect_err(
            |e| tracing::warn!(rollout = %pair.rollout, error = %e, "embeddings call failed"),
        )
        .ok()
}

/// The cosine of the embeddings at `index` 0 and 1 of an OpenAI embeddings response.
fn cosine_of(response: &Value) -> Option<f64> {
    let data = response.get("data")?.as_array()?;
    let vector = |i: u64| -> Option<Vec<f64>> {
        let item = data
            .iter()
            .find(|d| d.get("index").and_then(Value::as_u64) == Some(i))?;
        item.get("embedding")?
            .as_array()?
            .iter()
            .map(Value::as_f64)
            .collect()
    };
    cosine(&vector(0)?, &vector(1)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_reads_by_index_and_refuses_malformed_answers() {
        let v = json!({"data": [
            {"index": 1, "embedding": [0.0, 1.0]},
            {"index": 0, "embedding": [1.0, 1.0]},
        ]});
        let c = cosine_of(&v).unwrap_or(f64::NAN);
        assert!((c - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12, "{c}");
        assert_eq!(
            cosine_of(&json!({"data": [{"index": 0, "embedding": [1.0]}]})),
            None
        );
        assert_eq!(
            cosine_of(&json!({"data": [{"index": 0, "embedding": "x"},
            {"index": 1, "embedding": [1.0]}]})),
            None
        );
        assert_eq!(cosine_of(&json!({"error": {"message": "no"}})), None);
    }
}
