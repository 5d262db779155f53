//! rampart-store: where rampart keeps what it observed and decided.
//!
//! - [`EventStore`], [`FeedbackStore`], [`PairStore`], [`RolloutStore`]: one trait per domain;
//!   [`Store`] is all of them, what a backend provides. [`OutcomeStore`] (slow business
//!   outcomes) is optional: [`Store::outcomes`] says whether a backend has it.
//! - [`sqlite`]: [`SqliteStore`], the embedded default (WAL, one write connection, a small pool of
//!   read connections, numbered migrations).
//! - [`postgres`]: [`PgStore`], for several replicas sharing one database (day-partitioned
//!   events and pairs, batch writes through `COPY`, migrations under an advisory lock).
//! - [`writer`]: [`Writer`], the bounded batch writer between the request path and the store. The
//!   request path only ever calls [`Writer::try_send`], which never blocks: when the queue is full
//!   the record is refused and the caller counts the drop.
//! - [`pair_query`]: a filtered, keyset-paged page of a rollout's pairs ([`PairQuery`],
//!   [`PairPage`]), what the dashboard's pairs page shows.
//! - [`aggregates`]: [`AggregateStore`], per-second window aggregates of each replica of a
//!   cluster, which the leading controller merges into the fleet's guardrail window.
//! - [`error`]: the error type, [`StoreError`], and which failures are worth retrying.
//!
//! All store methods are blocking; call them from a dedicated thread (the writer's) or from
//! `tokio::task::spawn_blocking`, never directly on an async worker.
#![forbid(unsafe_code)]

pub mod aggregates;
mod columns;
pub mod error;
pub mod pair_query;
pub mod postgres;
pub mod sqlite;
pub mod writer;

use std::collections::BTreeMap;

use rampart_core::compare::PairFeatures;
use rampart_core::outcomes::OutcomeRecord;
use rampart_core::record::{Feedback, Pair, RequestEvent};
use serde::{Deserialize, Serialize};

pub use aggregates::{AggregateRow, AggregateSide, AggregateStore, AggregateTotal};
pub use error::{Result, StoreError};
pub use pair_query::{FlaggedPair, PairCursor, PairFlag, PairPage, PairQuery};
pub use postgres::{PgOptions, PgStore};
pub use sqlite::SqliteStore;
pub use writer::{Record, TrySendError, Writer, WriterConfig, WriterStats};

/// Per-request metadata.
pub trait EventStore: Send + Sync {
    /// Insert events. An event whose `request_id` is already stored is skipped (so a retried
    /// batch is harmless).
    fn insert_events(&self, events: &[RequestEvent]) -> Result<()>;
    fn event_exists(&self, request_id: &str) -> Result<bool>;
    fn get_event(&self, request_id: &str) -> Result<Option<RequestEvent>>;
    fn count_events(&self) -> Result<u64>;
    /// Events since ts_ms (inclusive) for a rollout, oldest first, at most `limit`.
    fn events_since(&self, rollout: &str, since_ms: i64, limit: usize)
    -> Result<Vec<RequestEvent>>;
    /// A rollout's newest `limit` events, returned oldest first, without their output text
    /// (`output_text` is `None`): what an aggregate view over a long rollout reads, so it
    /// describes the recent traffic and its memory stays bounded by `limit` short rows.
    fn latest_events(&self, rollout: &str, limit: usize) -> Result<Vec<RequestEvent>>;
}

/// Users' verdicts on served answers.
pub trait FeedbackStore: Send + Sync {
    /// Ok(false) when no request with that id exists (nothing is written).
    fn insert_feedback(&self, fb: &Feedback) -> Result<bool>;
    /// Oldest first.
    fn feedback_for(&self, request_id: &str) -> Result<Vec<Feedback>>;
    /// A rollout's feedback on requests at or after `since_ms` (inclusive), each with the
    /// request event it is about, in one join: in the events' order (oldest first, as
    /// [`EventStore::events_since`]), a request's feedback in the order it came; at most
    /// `limit` rows.
    fn feedback_with_events(
        &self,
        rollout: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<(RequestEvent, Feedback)>>;
}

/// Shadow pairs: the baseline's and the candidate's answers side by side.
pub trait PairStore: Send + Sync {
    /// Insert pairs. A pair whose (`rollout`, `request_id`) is already stored is skipped.
    fn insert_pairs(&self, pairs: &[Pair]) -> Result<()>;
    /// Newest first. Filters: optional class, optional since_ms. (The first page of
    /// [`PairStore::pairs_page`], without the flags.)
    fn recent_pairs(
        &self,
        rollout: &str,
        limit: usize,
        class: Option<&str>,
        since_ms: Option<i64>,
    ) -> Result<Vec<Pair>> {
        let q = PairQuery {
            class: class.map(str::to_string),
            since_ms,
            ..PairQuery::default()
        };
        let page = self.pairs_page(rollout, &q, limit)?;
        Ok(page.pairs.into_iter().map(|p| p.pair).collect())
    }
    /// The newest `limit` pairs that `query` keeps (after its cursor, when it has one), each
    /// with its flags, and where the next page starts. A bounded read whatever the number of
    /// pairs: each filter has an index (see [`pair_query`]).
    fn pairs_page(&self, rollout: &str, query: &PairQuery, limit: usize) -> Result<PairPage>;
    fn count_pairs(&self, rollout: &str) -> Result<u64>;
    /// Visit every pair of a rollout in id (insertion) order without loading all in memory.
    fn for_each_pair(&self, rollout: &str, f: &mut dyn FnMut(Pair)) -> Result<()>;
    /// One pair, by its request id.
    fn get_pair(&self, rollout: &str, request_id: &str) -> Result<Option<Pair>>;
    /// Visit the features of a rollout's pairs that `filter` keeps, in id (insertion) order,
    /// without loading all in memory and without reading the texts (for reports over millions
    /// of pairs). The features are those [`rampart_core::compare::pair_features`] computed when
    /// the pair was stored, with empty excerpts.
    fn for_each_pair_features(
        &self,
        rollout: &str,
        filter: &PairFilter,
        f: &mut dyn FnMut(PairFeatures),
    ) -> Result<()>;
    /// The features of the newest `limit` pairs that `filter` keeps, newest first.
    fn recent_pair_features(
        &self,
        rollout: &str,
        filter: &PairFilter,
        limit: usize,
    ) -> Result<Vec<PairFeatures>>;
}

/// Which of a rollout's pairs a query covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairFilter {
    /// Only pairs recorded in this stage (by name).
    pub stage: Option<String>,
    /// Only pairs at or after this time (unix ms).
    pub since_ms: Option<i64>,
}

/// Rollout controller state and the audit log of its transitions.
pub trait RolloutStore: Send + Sync {
    /// Persisted controller state of a rollout, as opaque JSON text (the controller defines the shape).
    fn load_rollout_state(&self, rollout: &str) -> Result<Option<String>>;
    /// Insert or replace the state of a rollout.
    fn save_rollout_state(&self, rollout: &str, state_json: &str, updated_ms: i64) -> Result<()>;
    /// Insert or replace a rollout's runtime cap for one tenant (set through the admin API).
    fn save_tenant_cap(
        &self,
        rollout: &str,
        tenant: &str,
        max_percent: f64,
        updated_ms: i64,
    ) -> Result<()>;
    /// A rollout's runtime tenant caps.
    fn tenant_caps(&self, rollout: &str) -> Result<BTreeMap<String, f64>>;
    fn append_audit(&self, entry: &AuditEntry) -> Result<()>;
    /// The latest `limit` entries of a rollout, oldest first.
    fn audit_log(&self, rollout: &str, limit: usize) -> Result<Vec<AuditEntry>>;
    /// A rollout's stored state, version and tenant caps, read together (one snapshot).
    fn load_rollout(&self, rollout: &str) -> Result<Option<StoredRollout>>;
    /// The version of every stored rollout (what replicas poll to see a change).
    fn rollout_versions(&self) -> Result<BTreeMap<String, i64>>;
    /// Store a control change as a compare-and-set on the rollout's version: in one
    /// transaction, when the stored version is `change.expected_version` (0: no row yet), the
    /// state and tenant cap are written, the version grows by one and the audit rows are
    /// appended (on PostgreSQL a `NOTIFY` on [`NOTIFY_CHANNEL`] is sent at commit); otherwise
    /// nothing is written and the answer carries the stored row as it is.
    fn apply_change(&self, change: &RolloutChange) -> Result<CasOutcome>;
}

/// The PostgreSQL channel control changes are announced on; the payload is the rollout's name.
pub const NOTIFY_CHANNEL: &str = "rampart_rollouts";

/// A rollout's stored row: its state as JSON, its version, and its runtime tenant caps.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRollout {
    pub state_json: String,
    /// 1 after the first write, one more with every change.
    pub version: i64,
    pub tenant_caps: BTreeMap<String, f64>,
}

/// One control change to a rollout, stored whole or not at all
/// ([`RolloutStore::apply_change`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutChange {
    pub rollout: String,
    /// The version the change was decided on; 0 when the rollout has no stored row yet.
    pub expected_version: i64,
    /// The new state; `None` keeps the stored one (a tenant cap alone).
    pub state_json: Option<String>,
    /// A tenant cap to set: (tenant, max percent).
    pub tenant_cap: Option<(String, f64)>,
    /// Audit rows, appended in this order in the same transaction.
    pub audit: Vec<AuditEntry>,
    pub at_ms: i64,
}

/// What a compare-and-set did.
#[derive(Debug, Clone, PartialEq)]
pub enum CasOutcome {
    /// Stored; the rollout's version is now `version`.
    Applied { version: i64 },
    /// Another change came first (or the row is missing for a change that needs one); nothing
    /// was written. `current` is the stored row as it was seen in the same transaction.
    Conflict { current: Option<StoredRollout> },
}

/// One line of a rollout's audit log: who changed what, from which state to which, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub rollout: String,
    pub ts_ms: i64,
    /// `controller`, `kill_switch`, or the operator (`admin`, a token name).
    pub actor: String,
    /// `advance`, `pause`, `resume`, `promote`, `rollback`, `trip`, …
    pub action: String,
    pub from_state: String,
    pub to_state: String,
    pub reason: String,
    pub details: serde_json::Value,
}

/// Slow business outcomes, attributed to the cohort their request was served in.
pub trait OutcomeStore: Send + Sync {
    /// Stores outcomes in one transaction; an outcome of a name for a request that already has
    /// one of that name is skipped (a retried batch is harmless). Returns how many were new.
    fn insert_outcomes(&self, outcomes: &[OutcomeRecord]) -> Result<usize>;
    /// A rollout's outcomes for requests served at or after `since_ms`, as moments per
    /// (name, cohort), ordered by name then cohort.
    fn outcome_moments(&self, rollout: &str, since_ms: i64) -> Result<Vec<OutcomeMoments>>;
}

/// Count, sum and sum of squares of one outcome name in one cohort (defined in core, where
/// [`rampart_core::outcomes::summarize`] reads it).
pub use rampart_core::outcomes::OutcomeMoments;

/// Everything a backend provides.
pub trait Store: EventStore + FeedbackStore + PairStore + RolloutStore {
    /// The backend's outcome store, `None` when it has none (outcomes are then refused).
    fn outcomes(&self) -> Option<&dyn OutcomeStore> {
        None
    }

    /// The backend's per-second window aggregates, `None` when it keeps none.
    fn aggregates(&self) -> Option<&dyn AggregateStore> {
        None
    }

    /// Write one batch from the [`Writer`]: events and pairs together. Backends override this to
    /// use a single transaction; the default inserts events, then pairs. Must be idempotent (a
    /// failed batch is retried whole), which the skip-duplicates rule of the inserts provides.
    fn write_batch(&self, events: &[RequestEvent], pairs: &[Pair]) -> Result<()> {
        if !events.is_empty() {
            self.insert_events(events)?;
        }
        if !pairs.is_empty() {
            self.insert_pairs(pairs)?;
        }
        Ok(())
    }
}
