//! Slow business outcomes (`POST /v1/outcomes`, `rampart outcomes import`): the item as posted,
//! its checks, and its attribution to the cohort and variant its request had when served.
//!
//! Attribution. An item naming a `request_id` takes the cohort, variant, stage and time of that
//! request's stored event, however late the outcome arrives (up to `outcomes.max_age` after the
//! request). An item naming only a `routing_key` and a `rollout` is attributed through the
//! rollout's percent history ([`RolloutState::percent_at`]) and the sticky bucket
//! ([`crate::routing::bucket`]): the key was in the canary at time `at` iff its bucket was under
//! the canary percent then. No per-user assignment table is needed because the bucket is
//! deterministic. (Tenant caps are not applied to key-only items: the tenant is not known.)
//!
//! Pure: the caller looks up the event or the rollout's state and passes the time.
//!
//! [`summary`]: what users read of the stored outcomes (per name and cohort: n, mean,
//! interval), shared by status, report and dashboard.

pub mod summary;

pub use summary::{OutcomeMoments, OutcomeSummary, summarize};

use serde::{Deserialize, Serialize};

use crate::config::RolloutConfig;
use crate::record::RequestEvent;
use crate::rollout::RolloutState;
use crate::routing::{Cohort, bucket, key_hash, under_percent};

/// Longest outcome name.
pub const MAX_NAME_LEN: usize = 64;
/// An `at` this far in the future is refused (clock skew allowance).
pub const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;

/// One outcome as posted. Every field optional here so that a wrong item gets a precise
/// message instead of a generic deserialization error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeItem {
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub routing_key: Option<String>,
    #[serde(default)]
    pub rollout: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    /// RFC 3339; when the outcome happened (default: when it is received).
    #[serde(default)]
    pub at: Option<String>,
}

/// Whom an item is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Request(String),
    Key {
        routing_key: String,
        rollout: String,
    },
}

/// An item whose own fields are valid (lookups still to do).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub target: Target,
    pub name: String,
    pub value: f64,
    pub at_ms: i64,
}

/// An outcome attributed to a cohort: what the store keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    pub rollout: String,
    pub name: String,
    pub value: f64,
    pub cohort: Cohort,
    pub variant: String,
    /// The stage the request was served in (`None` for key-only items).
    pub stage: Option<String>,
    pub request_id: Option<String>,
    pub key_hash: Option<String>,
    /// When the request was served (key-only: `at`). The slow gate counts outcomes by this.
    pub served_ms: i64,
    pub at_ms: i64,
    pub received_ms: i64,
}

/// Why an item was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutcomeError {
    #[error("`name` is required (letters, digits, '-', '_', '.'; at most 64 characters)")]
    BadName,
    #[error("`value` must be a finite number")]
    BadValue,
    #[error("`at` must be an RFC 3339 time (got `{0}`)")]
    BadAt(String),
    #[error("`at` is in the future (got `{0}`)")]
    FutureAt(String),
    #[error("give `request_id`, or `routing_key` with `rollout`")]
    NoTarget,
    #[error("unknown request_id `{0}`")]
    UnknownRequest(String),
    #[error("request `{0}` was not served in a rollout")]
    NotInRollout(String),
    #[error("unknown rollout `{0}`")]
    UnknownRollout(String),
    #[error("too old: served {age_hours} h ago, outcomes.max_age is {max_hours} h")]
    TooOld { age_hours: i64, max_hours: i64 },
}

impl OutcomeError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            OutcomeError::BadName => "invalid_name",
            OutcomeError::BadValue => "invalid_value",
            OutcomeError::BadAt(_) | OutcomeError::FutureAt(_) => "invalid_at",
            OutcomeError::NoTarget => "missing_target",
            OutcomeError::UnknownRequest(_) => "unknown_request_id",
            OutcomeError::NotInRollout(_) => "request_not_in_rollout",
            OutcomeError::UnknownRollout(_) => "unknown_rollout",
            OutcomeError::TooOld { .. } => "outcome_too_old",
        }
    }

    /// Whether the item names something that does not exist (404) rather than being malformed.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            OutcomeError::UnknownRequest(_) | OutcomeError::UnknownRollout(_)
        )
    }
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Checks an item's own fields (no lookups).
pub fn parse_item(item: &OutcomeItem, now_ms: i64) -> Result<Parsed, OutcomeError> {
    let name = non_empty(&item.name)
        .filter(|n| name_ok(n))
        .ok_or(OutcomeError::BadName)?;
    let value = match &item.value {
        Some(serde_json::Value::Number(n)) => n.as_f64().filter(|v| v.is_finite()),
        _ => None,
    }
    .ok_or(OutcomeError::BadValue)?;
    let at_ms = match &item.at {
        None => now_ms,
        Some(s) => {
            let t = humantime::parse_rfc3339_weak(s.trim())
                .map_err(|_| OutcomeError::BadAt(s.clone()))?;
            let ms = match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
                Err(_) => return Err(OutcomeError::BadAt(s.clone())),
            };
            if ms > now_ms.saturating_add(MAX_FUTURE_MS) {
                return Err(OutcomeError::FutureAt(s.clone()));
            }
            ms
        }
    };
    let target = match (non_empty(&item.request_id), non_empty(&item.routing_key)) {
        (Some(id), _) => Target::Request(id),
        (None, Some(routing_key)) => match non_empty(&item.rollout) {
            Some(rollout) => Target::Key {
                routing_key,
                rollout,
            },
            None => return Err(OutcomeError::NoTarget),
        },
        (None, None) => return Err(OutcomeError::NoTarget),
    };
    Ok(Parsed {
        target,
        name,
        value,
        at_ms,
    })
}

fn check_age(served_ms: i64, now_ms: i64, max_age_ms: i64) -> Result<(), OutcomeError> {
    let age = now_ms.saturating_sub(served_ms);
    if age > max_age_ms {
        return Err(OutcomeError::TooOld {
            age_hours: age / 3_600_000,
            max_hours: max_age_ms / 3_600_000,
        });
    }
    Ok(())
}

/// Attributes an item to its request's stored event.
pub fn attribute_to_event(
    p: &Parsed,
    ev: &RequestEvent,
    max_age_ms: i64,
    now_ms: i64,
) -> Result<OutcomeRecord, OutcomeError> {
    let rollout = ev
        .rollout
        .clone()
        .ok_or_else(|| OutcomeError::NotInRollout(ev.request_id.clone()))?;
    check_age(ev.ts_ms, now_ms, max_age_ms)?;
    Ok(OutcomeRecord {
        rollout,
        name: p.name.clone(),
        value: p.value,
        cohort: ev.cohort,
        variant: ev.variant.clone(),
        stage: ev.stage.clone(),
        request_id: Some(ev.request_id.clone()),
        key_hash: ev.key_hash.clone(),
        served_ms: ev.ts_ms,
        at_ms: p.at_ms,
        received_ms: now_ms,
    })
}

/// Attributes a key-only item through the rollout's percent history and the sticky bucket
/// (module docs). `baseline` is the route's baseline variant.
pub fn attribute_to_key(
    p: &Parsed,
    routing_key: &str,
    cfg: &RolloutConfig,
    state: &RolloutState,
    baseline: &str,
    max_age_ms: i64,
    now_ms: i64,
) -> Result<OutcomeRecord, OutcomeError> {
    check_age(p.at_ms, now_ms, max_age_ms)?;
    let canary = under_percent(
        bucket(&cfg.salt, routing_key),
        state.percent_at(cfg, p.at_ms),
    );
    let (cohort, variant) = if canary {
        (Cohort::Canary, cfg.candidate.clone())
    } else {
        (Cohort::Control, baseline.to_string())
    };
    Ok(OutcomeRecord {
        rollout: cfg.name.clone(),
        name: p.name.clone(),
        value: p.value,
        cohort,
        variant,
        stage: None,
        request_id: None,
        key_hash: Some(key_hash(routing_key)),
        served_ms: p.at_ms,
        at_ms: p.at_ms,
        received_ms: now_ms,
    })
}
