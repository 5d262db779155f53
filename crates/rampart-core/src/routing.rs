//! Sticky routing: which cohort a routing key falls in.
//!
//! `bucket = u64_be(sha256("{salt}.{routing_key}")[0..8]) % 10000`, and a key is in the canary
//! when `bucket < percent × 100`. Because the threshold only grows as the ramp grows, a key in
//! the canary at 1% stays in it at 5%, 25% and 100%. Shadow sampling uses the same function with
//! the salt suffixed `.shadow`, so a user's conversations are shadowed whole and independently
//! of the canary split.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Number of buckets; a percent maps to `percent × 100` of them.
pub const BUCKETS: u64 = 10_000;

/// Which population a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cohort {
    Control,
    Canary,
    Unkeyed,
}

impl Cohort {
    pub const ALL: [Cohort; 3] = [Cohort::Control, Cohort::Canary, Cohort::Unkeyed];

    pub fn as_str(self) -> &'static str {
        match self {
            Cohort::Control => "control",
            Cohort::Canary => "canary",
            Cohort::Unkeyed => "unkeyed",
        }
    }

    pub fn parse(s: &str) -> Option<Cohort> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The sticky bucket of a routing key under a salt, in `0..10000`.
pub fn bucket(salt: &str, routing_key: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b".");
    h.update(routing_key.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % BUCKETS
}

/// The bucket used to pick shadowed users: the rollout's salt suffixed `.shadow`.
pub fn shadow_bucket(salt: &str, routing_key: &str) -> u64 {
    bucket(&format!("{salt}.shadow"), routing_key)
}

/// Whether a bucket falls under `percent` (0–100, fractional allowed, e.g. 0.5).
pub fn under_percent(bucket: u64, percent: f64) -> bool {
    // percent × 100 buckets; rounding guards against 5.0 × 100 = 499.99999….
    let threshold = (percent.clamp(0.0, 100.0) * 100.0).round() as u64;
    bucket < threshold
}

/// A short, stable, non-reversible id for a routing key, for storage and logs.
pub fn key_hash(routing_key: &str) -> String {
    let digest = Sha256::digest(routing_key.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percent_thresholds() {
        assert!(under_percent(0, 0.01));
        assert!(!under_percent(0, 0.0));
        assert!(under_percent(499, 5.0));
        assert!(!under_percent(500, 5.0));
        assert!(under_percent(9_999, 100.0));
    }

    #[test]
    fn bucket_is_in_range_and_salted() {
        let a = bucket("r1", "user-1");
        let b = bucket("r2", "user-1");
        assert!(a < BUCKETS && b < BUCKETS);
        assert_eq!(a, bucket("r1", "user-1"));
        // Different salts decorrelate; these two differ for this key.
        assert_ne!(a, b);
    }
}
