//! [`SqliteStore`]: the embedded default backend.
//!
//! Invariants:
//! - One write connection behind a mutex, so writes are serialised in-process; reads use a small
//!   pool of separate connections, so the admin API never waits behind a long write batch (WAL
//!   lets readers proceed during a write).
//! - `PRAGMA user_version` is the schema version; `MIGRATIONS[i]` moves it from `i` to `i + 1`,
//!   each in its own transaction. A database newer than this build is refused, not touched.
//! - Every query is parameterised; the only formatted SQL is the `user_version` integer.
//! - Inserts of events and pairs skip rows already stored (same request id, or same rollout and
//!   request id for pairs), so a retried batch is harmless.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use features::FEATURE_COLUMNS;
use rampart_core::compare::PairFeatures;
use rampart_core::record::{Feedback, Pair, RequestEvent};
use rows::{
    audit_from_row, event_from_row, feedback_from_row, flagged_pair_from_row, pair_from_row,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use write::{insert_events_tx, insert_pairs_tx};

use crate::columns::*;
use crate::error::{Result, StoreError};
use crate::pair_query::{Param, page_sql};
use crate::{
    AuditEntry, CasOutcome, EventStore, FeedbackStore, PairFilter, PairPage, PairQuery, PairStore,
    RolloutChange, RolloutStore, Store, StoredRollout,
};

mod aggregates;
pub(crate) mod features;
mod outcomes;
mod rows;
mod versioned;
mod write;

/// A migration's data step, run after its SQL in the same transaction.
type DataStep = fn(&Transaction<'_>) -> Result<()>;

/// Numbered migrations, applied in order; the schema version is the number of applied ones.
const MIGRATIONS: &[(&str, &str, Option<DataStep>)] = &[
    (
        "0001_init",
        include_str!("sqlite/migrations/0001_init.sql"),
        None,
    ),
    (
        "0002_pair_features",
        include_str!("sqlite/migrations/0002_pair_features.sql"),
        Some(features::backfill),
    ),
    (
        "0003_tenant_caps",
        include_str!("sqlite/migrations/0003_tenant_caps.sql"),
        None,
    ),
    (
        "0004_outcomes",
        include_str!("sqlite/migrations/0004_outcomes.sql"),
        None,
    ),
    (
        "0005_pair_filters",
        include_str!("sqlite/migrations/0005_pair_filters.sql"),
        None,
    ),
    (
        "0006_rollout_version",
        include_str!("sqlite/migrations/0006_rollout_version.sql"),
        None,
    ),
    (
        "0007_pair_flag_groups",
        include_str!("sqlite/migrations/0007_pair_flag_groups.sql"),
        None,
    ),
    (
        "0008_window_aggregates",
        include_str!("sqlite/migrations/0008_window_aggregates.sql"),
        None,
    ),
];

/// How long a connection waits for a lock held by another connection before SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 4;
/// Rows per page when walking all pairs of a rollout, and all their features.
const PAIR_PAGE: usize = 1000;
const FEATURE_PAGE: usize = 4096;

/// SQLite storage for everything rampart keeps. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Open (creating it and its directory if needed) the database at `path`, switch it to WAL
    /// with `synchronous=NORMAL`, and bring its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), %mode, "sqlite did not switch to WAL");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database (the number of applied migrations).
    pub fn schema_version(&self) -> Result<i64> {
        self.read(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
    }

    /// The schema version this build migrates to.
    pub fn latest_schema_version() -> i64 {
        MIGRATIONS.len() as i64
    }

    fn write_conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: an open transaction is
        // rolled back when its `Transaction` is dropped during unwinding.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run `f` on a read connection from the pool (opening one when none is idle).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(BUSY_TIMEOUT)?;
                c
            }
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        out
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let latest = MIGRATIONS.len() as i64;
    if current > latest {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: latest,
        });
    }
    for (i, (name, sql, data)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if let Some(data) = data {
            data(&tx)?;
        }
        // PRAGMA takes no bound parameters; `version` is an integer we computed.
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))?;
        tx.commit()?;
        tracing::info!(migration = name, version, "applied sqlite migration");
    }
    Ok(())
}

// ---- encoding -----------------------------------------------------------------------------

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

// ---- the traits ----------------------------------------------------------------------------

impl EventStore for SqliteStore {
    fn insert_events(&self, events: &[RequestEvent]) -> Result<()> {
        let mut conn = self.write_conn();
        let tx = conn.transaction()?;
        insert_events_tx(&tx, events)?;
        tx.commit()?;
        Ok(())
    }

    fn event_exists(&self, request_id: &str) -> Result<bool> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT 1 FROM events WHERE request_id = ?1")?;
            Ok(stmt.exists([request_id])?)
        })
    }

    fn get_event(&self, request_id: &str) -> Result<Option<RequestEvent>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE request_id = ?1"
            ))?;
            Ok(stmt.query_row([request_id], event_from_row).optional()?)
        })
    }

    fn count_events(&self) -> Result<u64> {
        self.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?))
    }

    fn events_since(
        &self,
        rollout: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<RequestEvent>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE rollout = ?1 AND ts_ms >= ?2 \
                 ORDER BY ts_ms, id LIMIT ?3"
            ))?;
            let rows = stmt.query_map(
                params![rollout, since_ms, limit_param(limit)],
                event_from_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn latest_events(&self, rollout: &str, limit: usize) -> Result<Vec<RequestEvent>> {
        self.read(|c| {
            // The (rollout, ts_ms) index read backwards for the newest, then put oldest first.
            let mut stmt = c.prepare_cached(&format!(
                "SELECT * FROM (SELECT {EVENT_COLUMNS_NO_TEXT}, id FROM events WHERE rollout = ?1 \
                 ORDER BY ts_ms DESC, id DESC LIMIT ?2) ORDER BY ts_ms, id"
            ))?;
            let rows = stmt.query_map(params![rollout, limit_param(limit)], event_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

impl FeedbackStore for SqliteStore {
    fn insert_feedback(&self, fb: &Feedback) -> Result<bool> {
        let conn = self.write_conn();
        // One statement: the existence check and the insert are atomic.
        let mut stmt = conn.prepare_cached(
            "INSERT INTO feedback (request_id, ts_ms, thumbs, outcome, final_text) \
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM events WHERE request_id = ?1)",
        )?;
        let n = stmt.execute(params![
            fb.request_id,
            fb.ts_ms,
            fb.thumbs.map(thumbs_str),
            fb.outcome.map(edit_outcome_str),
            fb.final_text,
        ])?;
        Ok(n == 1)
    }

    fn feedback_for(&self, request_id: &str) -> Result<Vec<Feedback>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE request_id = ?1 ORDER BY id"
            ))?;
            let rows = stmt.query_map([request_id], |r| feedback_from_row(r, 0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn feedback_with_events(
        &self,
        rollout: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<(RequestEvent, Feedback)>> {
        self.read(|c| {
            // The events' (rollout, ts_ms) index drives the join; each event's feedback comes
            // from the feedback (request_id) index, in id order.
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {EVENT_FEEDBACK_COLUMNS} FROM events e \
                 JOIN feedback f ON f.request_id = e.request_id \
                 WHERE e.rollout = ?1 AND e.ts_ms >= ?2 ORDER BY e.ts_ms, e.id, f.id LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![rollout, since_ms, limit_param(limit)], |r| {
                Ok((
                    event_from_row(r)?,
                    feedback_from_row(r, EVENT_COLUMN_COUNT)?,
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

impl PairStore for SqliteStore {
    fn insert_pairs(&self, pairs: &[Pair]) -> Result<()> {
        let mut conn = self.write_conn();
        let tx = conn.transaction()?;
        insert_pairs_tx(&tx, pairs)?;
        tx.commit()?;
        Ok(())
    }

    fn pairs_page(&self, rollout: &str, query: &PairQuery, limit: usize) -> Result<PairPage> {
        let q = page_sql(rollout, query, limit, |n| format!("?{n}"), false);
        let rows = self.read(|c| {
            let mut stmt = c.prepare_cached(&q.sql)?;
            let params = q.params.iter().map(|p| match p {
                Param::Int(i) => rusqlite::types::Value::Integer(*i),
                Param::Text(t) => rusqlite::types::Value::Text((*t).to_string()),
            });
            let rows = stmt.query_map(rusqlite::params_from_iter(params), flagged_pair_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        Ok(PairPage::from_rows(rows, limit))
    }

    fn count_pairs(&self, rollout: &str) -> Result<u64> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT COUNT(*) FROM pairs WHERE rollout = ?1")?;
            Ok(stmt.query_row([rollout], |r| r.get(0))?)
        })
    }

    fn for_each_pair(&self, rollout: &str, f: &mut dyn FnMut(Pair)) -> Result<()> {
        // Keyset pagination: each page is its own short read, so a slow visitor holds neither a
        // pooled connection nor an old WAL snapshot, and memory stays at one page.
        let mut after: i64 = i64::MIN;
        loop {
            let page: Vec<(i64, Pair)> = self.read(|c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT id, {PAIR_COLUMNS} FROM pairs WHERE rollout = ?1 AND id > ?2 \
                     ORDER BY id LIMIT ?3"
                ))?;
                let rows = stmt
                    .query_map(params![rollout, after, limit_param(PAIR_PAGE)], |r| {
                        Ok((r.get(0)?, pair_from_row(r, 1)?))
                    })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })?;
            let full = page.len() == PAIR_PAGE;
            for (id, pair) in page {
                after = id;
                f(pair);
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn get_pair(&self, rollout: &str, request_id: &str) -> Result<Option<Pair>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {PAIR_COLUMNS} FROM pairs WHERE rollout = ?1 AND request_id = ?2"
            ))?;
            Ok(stmt
                .query_row([rollout, request_id], |r| pair_from_row(r, 0))
                .optional()?)
        })
    }

    fn for_each_pair_features(
        &self,
        rollout: &str,
        filter: &PairFilter,
        f: &mut dyn FnMut(PairFeatures),
    ) -> Result<()> {
        // Keyset pagination, as in `for_each_pair`.
        let since = filter.since_ms.unwrap_or(i64::MIN);
        let mut after: i64 = i64::MIN;
        loop {
            let page: Vec<(i64, PairFeatures)> = self.read(|c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT pair_id, {FEATURE_COLUMNS} FROM pair_features \
                     WHERE rollout = ?1 AND pair_id > ?2 AND (?3 IS NULL OR stage = ?3) \
                     AND ts_ms >= ?4 ORDER BY pair_id LIMIT ?5"
                ))?;
                let rows = stmt.query_map(
                    params![
                        rollout,
                        after,
                        filter.stage,
                        since,
                        limit_param(FEATURE_PAGE)
                    ],
                    |r| Ok((r.get(0)?, features::features_from_row(r, 1)?)),
                )?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })?;
            let full = page.len() == FEATURE_PAGE;
            for (id, features) in page {
                after = id;
                f(features);
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn recent_pair_features(
        &self,
        rollout: &str,
        filter: &PairFilter,
        limit: usize,
    ) -> Result<Vec<PairFeatures>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {FEATURE_COLUMNS} FROM pair_features \
                 WHERE rollout = ?1 AND (?2 IS NULL OR stage = ?2) AND ts_ms >= ?3 \
                 ORDER BY pair_id DESC LIMIT ?4"
            ))?;
            let since = filter.since_ms.unwrap_or(i64::MIN);
            let rows = stmt.query_map(
                params![rollout, filter.stage, since, limit_param(limit)],
                |r| features::features_from_row(r, 0),
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

impl RolloutStore for SqliteStore {
    fn load_rollout_state(&self, rollout: &str) -> Result<Option<String>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT state_json FROM rollout_state WHERE rollout = ?1")?;
            Ok(stmt.query_row([rollout], |r| r.get(0)).optional()?)
        })
    }

    fn save_rollout_state(&self, rollout: &str, state_json: &str, updated_ms: i64) -> Result<()> {
        let conn = self.write_conn();
        let mut stmt = conn.prepare_cached(
            "INSERT INTO rollout_state (rollout, state_json, updated_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT (rollout) DO UPDATE SET state_json = excluded.state_json, \
             updated_ms = excluded.updated_ms, version = rollout_state.version + 1",
        )?;
        stmt.execute(params![rollout, state_json, updated_ms])?;
        Ok(())
    }

    fn save_tenant_cap(
        &self,
        rollout: &str,
        tenant: &str,
        max_percent: f64,
        updated_ms: i64,
    ) -> Result<()> {
        let conn = self.write_conn();
        conn.prepare_cached(
            "INSERT INTO tenant_caps (rollout, tenant, max_percent, updated_ms) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (rollout, tenant) DO UPDATE SET \
             max_percent = excluded.max_percent, updated_ms = excluded.updated_ms",
        )?
        .execute(params![rollout, tenant, max_percent, updated_ms])?;
        Ok(())
    }

    fn tenant_caps(&self, rollout: &str) -> Result<BTreeMap<String, f64>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT tenant, max_percent FROM tenant_caps WHERE rollout = ?1 ORDER BY tenant",
            )?;
            let rows = stmt.query_map([rollout], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let details = serde_json::to_string(&entry.details)?;
        let conn = self.write_conn();
        let mut stmt = conn.prepare_cached(&format!(
            "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))?;
        stmt.execute(params![
            entry.rollout,
            entry.ts_ms,
            entry.actor,
            entry.action,
            entry.from_state,
            entry.to_state,
            entry.reason,
            details,
        ])?;
        Ok(())
    }

    fn audit_log(&self, rollout: &str, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(|c| {
            // Newest first through the index, then reversed: no sort.
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE rollout = ?1 ORDER BY id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![rollout, limit_param(limit)], audit_from_row)?;
            let mut entries = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            entries.reverse();
            Ok(entries)
        })
    }

    fn load_rollout(&self, rollout: &str) -> Result<Option<StoredRollout>> {
        self.read(|c| {
            let tx = c.unchecked_transaction()?;
            versioned::load(&tx, rollout)
        })
    }

    fn rollout_versions(&self) -> Result<BTreeMap<String, i64>> {
        self.read(versioned::versions)
    }

    fn apply_change(&self, change: &RolloutChange) -> Result<CasOutcome> {
        let mut conn = self.write_conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = versioned::apply(&tx, change)?;
        if matches!(out, CasOutcome::Applied { .. }) {
            tx.commit()?;
        }
        Ok(out)
    }
}

impl Store for SqliteStore {
    fn outcomes(&self) -> Option<&dyn crate::OutcomeStore> {
        Some(self)
    }

    fn aggregates(&self) -> Option<&dyn crate::AggregateStore> {
        Some(self)
    }

    /// Events and pairs of a batch in one transaction.
    fn write_batch(&self, events: &[RequestEvent], pairs: &[Pair]) -> Result<()> {
        let mut conn = self.write_conn();
        let tx = conn.transaction()?;
        if !events.is_empty() {
            insert_events_tx(&tx, events)?;
        }
        if !pairs.is_empty() {
            insert_pairs_tx(&tx, pairs)?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pair_query::flag_sql;

    /// The pages of pairs the dashboard asks for: each filter alone and all at once, first
    /// pages and later ones.
    fn page_queries() -> Vec<String> {
        let cursor = Some(crate::PairCursor { ts_ms: 5, id: 9 });
        let mut queries = vec![
            PairQuery::default(),
            PairQuery {
                class: Some("c".into()),
                ..PairQuery::default()
            },
            PairQuery {
                tenant: Some("t".into()),
                before: cursor,
                ..PairQuery::default()
            },
            PairQuery {
                class: Some("c".into()),
                tenant: Some("t".into()),
                since_ms: Some(1),
                before: cursor,
                ..PairQuery::default()
            },
        ];
        for flag in crate::PairFlag::ALL {
            queries.push(PairQuery {
                flag: Some(flag),
                ..PairQuery::default()
            });
            queries.push(PairQuery {
                flag: Some(flag),
                tenant: Some("t".into()),
                ..PairQuery::default()
            });
            queries.push(PairQuery {
                flag: Some(flag),
                class: Some("c".into()),
                before: cursor,
                ..PairQuery::default()
            });
            queries.push(PairQuery {
                flag: Some(flag),
                class: Some("c".into()),
                tenant: Some("t".into()),
                since_ms: Some(1),
                before: cursor,
            });
        }
        queries
            .iter()
            .map(|q| page_sql("ro", q, 20, |n| format!("?{n}"), false).sql)
            .collect()
    }

    /// The read queries, with the statement text the store runs.
    fn read_queries() -> Vec<String> {
        let mut queries = page_queries();
        queries.extend([
            format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE rollout = ?1 AND ts_ms >= ?2 \
                 ORDER BY ts_ms, id LIMIT ?3"
            ),
            format!(
                "SELECT id, {PAIR_COLUMNS} FROM pairs WHERE rollout = ?1 AND id > ?2 \
                 ORDER BY id LIMIT ?3"
            ),
            "SELECT COUNT(*) FROM pairs WHERE rollout = ?1".to_owned(),
            format!("SELECT {PAIR_COLUMNS} FROM pairs WHERE rollout = ?1 AND request_id = ?2"),
            format!(
                "SELECT pair_id, {FEATURE_COLUMNS} FROM pair_features \
                 WHERE rollout = ?1 AND pair_id > ?2 AND (?3 IS NULL OR stage = ?3) \
                 AND ts_ms >= ?4 ORDER BY pair_id LIMIT ?5"
            ),
            format!(
                "SELECT {FEATURE_COLUMNS} FROM pair_features \
                 WHERE rollout = ?1 AND (?2 IS NULL OR stage = ?2) AND ts_ms >= ?3 \
                 ORDER BY pair_id DESC LIMIT ?4"
            ),
            "SELECT request_id FROM feedback WHERE request_id = ?1 ORDER BY id".to_owned(),
            format!(
                "SELECT {EVENT_FEEDBACK_COLUMNS} FROM events e \
                 JOIN feedback f ON f.request_id = e.request_id \
                 WHERE e.rollout = ?1 AND e.ts_ms >= ?2 ORDER BY e.ts_ms, e.id, f.id LIMIT ?3"
            ),
            format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE rollout = ?1 ORDER BY id DESC LIMIT ?2"
            ),
        ]);
        queries
    }

    #[test]
    fn read_queries_use_indexes_without_sorting() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("r.db")).unwrap();
        let conn = store.write_conn();
        for sql in read_queries() {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let plan = plan.join(" | ");
            if sql.contains("pair_features f JOIN") {
                // A page with a flag walks that flag's partial index, the tenant's or the
                // class's part of it when it has one of those filters.
                // With both, either part will do.
                let groups: &[&str] = match (sql.contains("f.tenant ="), sql.contains("f.class ="))
                {
                    (true, true) => &["_tenant ", "_class "],
                    (true, false) => &["_tenant "],
                    (false, true) => &["_class "],
                    (false, false) => &[" "],
                };
                let flag = crate::PairFlag::ALL
                    .into_iter()
                    .find(|f| {
                        let cond = crate::pair_query::qualified(&flag_sql(*f), "f");
                        sql.contains(&format!("{cond} ORDER BY"))
                    })
                    .map_or("?", |f| f.as_str());
                let want: Vec<String> = groups
                    .iter()
                    .map(|g| format!("USING INDEX pair_features_{flag}{g}"))
                    .collect();
                assert!(
                    want.iter().any(|w| plan.contains(w)),
                    "{sql}\n wants {want:?}: {plan}"
                );
            }
            assert!(!plan.contains("TEMP B-TREE"), "{sql}\n sorts: {plan}");
            // Tables are named or aliased (`p`, `f`, `e`); every step must be a search.
            assert!(
                !plan.split(" | ").any(|step| step.starts_with("SCAN ")),
                "{sql}\n scans: {plan}"
            );
        }
    }

    #[test]
    fn readers_do_not_wait_for_an_open_write_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("r.db")).unwrap();
        store.save_rollout_state("ro", "old", 1).unwrap();
        let mut conn = store.write_conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        tx.execute(
            "UPDATE rollout_state SET state_json = 'new' WHERE rollout = 'ro'",
            [],
        )
        .unwrap();
        // The write is open and uncommitted (and holds the write mutex): reads see the last
        // committed state at once.
        assert_eq!(
            store.load_rollout_state("ro").unwrap().as_deref(),
            Some("old")
        );
        tx.commit().unwrap();
        drop(conn);
        assert_eq!(
            store.load_rollout_state("ro").unwrap().as_deref(),
            Some("new")
        );
    }
}
