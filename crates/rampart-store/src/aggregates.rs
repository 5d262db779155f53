//! Per-second window aggregates: what each replica of a cluster measured in one second, per
//! rollout and side, for the leading controller to merge into the fleet's guardrail window
//! without ever reading raw events ([`AggregateStore`]).
//!
//! Invariants:
//! - A row is keyed by (rollout, second, replica, side) and written once: a replica seals a
//!   second before flushing it, so an insert of a key already stored is skipped (a retried
//!   flush is harmless).
//! - A row's size does not depend on the traffic: six counters, the latency sketch in its
//!   compact encoding ([`rampart_stats::sketch::DdSketch::to_bytes`], about 3 bytes per
//!   non-empty bucket) and 24 bytes per custom guardrail ([`encode_moments`]).
//! - Shadow pairs are whole in the replica that made both calls, so their counts are
//!   aggregated like the cohorts': the [`AggregateSide::PairBaseline`] row carries the number
//!   of pairs, the baseline's errors, refusals and latency sketch; the
//!   [`AggregateSide::PairCandidate`] row the same number and the candidate's.

use rampart_core::rollout::{CohortCounts, MetricMoments};

use crate::error::{Result, StoreError};

/// Which counters a row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AggregateSide {
    Control,
    Canary,
    PairBaseline,
    PairCandidate,
}

impl AggregateSide {
    pub const ALL: [AggregateSide; 4] = [
        AggregateSide::Control,
        AggregateSide::Canary,
        AggregateSide::PairBaseline,
        AggregateSide::PairCandidate,
    ];

    /// The name stored in the `side` column.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateSide::Control => "control",
            AggregateSide::Canary => "canary",
            AggregateSide::PairBaseline => "pair_baseline",
            AggregateSide::PairCandidate => "pair_candidate",
        }
    }

    pub fn parse(s: &str) -> Option<AggregateSide> {
        AggregateSide::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// [`AggregateSide::parse`], a stored name it does not know being corrupt.
    pub(crate) fn from_column(s: String) -> Result<AggregateSide> {
        AggregateSide::parse(&s).ok_or(StoreError::Corrupt {
            column: "side",
            value: s,
        })
    }
}

/// What one replica measured for one rollout and side in one second.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateRow {
    pub rollout: String,
    /// Unix second (`ts_ms` div 1000) the row covers.
    pub second: i64,
    /// `cluster.replica_id` of the replica that measured it.
    pub replica: String,
    pub side: AggregateSide,
    /// For pair sides: `requests` is the number of pairs, `errors` and `refusals` that side's;
    /// no feedback.
    pub counts: CohortCounts,
    /// The latency sketch of the side's successful requests, encoded; `None` without any.
    pub latency: Option<Vec<u8>>,
    /// Moments of each custom guardrail's metric, in `guardrails.custom` order.
    pub custom: Vec<MetricMoments>,
}

/// Summed counters of one side over a span of seconds ([`AggregateStore::aggregate_totals`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregateTotal {
    pub side: AggregateSide,
    pub counts: CohortCounts,
}

/// Per-second aggregates of the replicas of a cluster.
pub trait AggregateStore: Send + Sync {
    /// Store rows in one transaction; a row whose key is stored already is skipped.
    fn insert_aggregates(&self, rows: &[AggregateRow]) -> Result<()>;
    /// Every row of `rollouts` at or after `since_second`, ordered by rollout, second, replica
    /// and the side's stored name (byte order).
    fn aggregates_since(&self, rollouts: &[String], since_second: i64)
    -> Result<Vec<AggregateRow>>;
    /// A rollout's counters summed per side over seconds in `[from_second, to_second)`, in
    /// [`AggregateSide`] order (sides without rows left out). One aggregate query: what a new
    /// leader reads for the part of a long stage that is older than the guardrail window.
    fn aggregate_totals(
        &self,
        rollout: &str,
        from_second: i64,
        to_second: i64,
    ) -> Result<Vec<AggregateTotal>>;
    /// Delete every row older than `before_second`; how many were deleted.
    fn prune_aggregates(&self, before_second: i64) -> Result<u64>;
}

const MOMENT_BYTES: usize = 24;

/// Custom guardrails' moments as bytes: per guardrail `n` (u64), `sum`, `sum_sq` (f64), little
/// endian. Exact: floats keep their bits.
pub fn encode_moments(moments: &[MetricMoments]) -> Vec<u8> {
    let mut out = Vec::with_capacity(moments.len() * MOMENT_BYTES);
    for m in moments {
        out.extend_from_slice(&m.n.to_le_bytes());
        out.extend_from_slice(&m.sum.to_le_bytes());
        out.extend_from_slice(&m.sum_sq.to_le_bytes());
    }
    out
}

/// Decodes [`encode_moments`].
pub fn decode_moments(bytes: &[u8]) -> Result<Vec<MetricMoments>> {
    if !bytes.len().is_multiple_of(MOMENT_BYTES) {
        return Err(StoreError::Corrupt {
            column: "custom",
            value: format!("{} bytes", bytes.len()),
        });
    }
    let word = |c: &[u8], i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&c[i * 8..i * 8 + 8]);
        b
    };
    Ok(bytes
        .chunks_exact(MOMENT_BYTES)
        .map(|c| MetricMoments {
            n: u64::from_le_bytes(word(c, 0)),
            sum: f64::from_le_bytes(word(c, 1)),
            sum_sq: f64::from_le_bytes(word(c, 2)),
        })
        .collect())
}

/// A stored counter (a signed 64-bit column) as a count; a negative value is corrupt.
pub(crate) fn count(column: &'static str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        column,
        value: v.to_string(),
    })
}

/// A count as a signed 64-bit column (saturating: no count reaches 2^63).
pub(crate) fn column(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn moments_round_trip_exactly() {
        let mut a = MetricMoments::default();
        for x in [0.1, 2.5e-9, 1e300, 7.0] {
            a.push(x);
        }
        let b = MetricMoments {
            n: u64::MAX,
            sum: -0.0,
            sum_sq: f64::MIN_POSITIVE,
        };
        let bytes = encode_moments(&[a, MetricMoments::default(), b]);
        assert_eq!(bytes.len(), 72);
        let back = decode_moments(&bytes).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0], a);
        assert_eq!(back[2].sum.to_bits(), b.sum.to_bits());
        assert_eq!(back[2], b);
        assert!(decode_moments(&bytes[..10]).is_err());
        assert!(decode_moments(&[]).unwrap().is_empty());
    }

    #[test]
    fn sides_parse_their_names() {
        for s in AggregateSide::ALL {
            assert_eq!(AggregateSide::parse(s.as_str()), Some(s));
        }
        assert!(AggregateSide::from_column("both".into()).is_err());
    }
}
