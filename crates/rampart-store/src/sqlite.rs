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
use rampart_core::compare::judge::Verdict;
use rampart_core::record::{
    EditOutcome, Feedback, Outcome, Pair, PairJudgment, PairSide, RequestEvent, Thumbs,
};
use rampart_core::routing::Cohort;
use rusqlite::types::Type;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Transaction, params};

use crate::error::{Result, StoreError};
use crate::{AuditEntry, EventStore, FeedbackStore, PairFilter, PairStore, RolloutStore, Store};

pub(crate) mod features;
mod outcomes;

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
];

/// How long a connection waits for a lock held by another connection before SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 4;
/// Rows per page when walking all pairs of a rollout, and all their features.
const PAIR_PAGE: usize = 1000;
const FEATURE_PAGE: usize = 4096;

pub(crate) const EVENT_COLUMNS: &str = "request_id, ts_ms, route, rollout, stage, variant, cohort, key_hash, \
     tenant, class, status, outcome, latency_ms, ttft_ms, prompt_tokens, completion_tokens, \
     cost_usd, refusal, streamed, finish_reason, output_text";

pub(crate) const PAIR_COLUMNS: &str = "request_id, ts_ms, route, rollout, stage, key_hash, tenant, class, \
     prompt, prompt_hash, \
     b_variant, b_model, b_prompt_version, b_text, b_tool_calls, b_finish_reason, \
     b_prompt_tokens, b_completion_tokens, b_latency_ms, b_ttft_ms, b_cost_usd, b_refusal, \
     b_error, b_cached, \
     c_variant, c_model, c_prompt_version, c_text, c_tool_calls, c_finish_reason, \
     c_prompt_tokens, c_completion_tokens, c_latency_ms, c_ttft_ms, c_cost_usd, c_refusal, \
     c_error, c_cached, tools, response_format, embedding_similarity, \
     judge_model, judge_first, judge_second, judge_cost_usd, judge_error";
/// Columns before the first side in [`PAIR_COLUMNS`], and columns per side.
pub(crate) const PAIR_HEAD: usize = 10;
pub(crate) const PAIR_SIDE: usize = 14;

pub(crate) const FEEDBACK_COLUMNS: &str = "request_id, ts_ms, thumbs, outcome, final_text";
/// [`EVENT_COLUMNS`] of `e` then [`FEEDBACK_COLUMNS`] of `f`, for the events–feedback join.
pub(crate) const EVENT_FEEDBACK_COLUMNS: &str = "e.request_id, e.ts_ms, e.route, e.rollout, e.stage, \
     e.variant, e.cohort, e.key_hash, e.tenant, e.class, e.status, e.outcome, e.latency_ms, \
     e.ttft_ms, e.prompt_tokens, e.completion_tokens, e.cost_usd, e.refusal, e.streamed, \
     e.finish_reason, e.output_text, \
     f.request_id, f.ts_ms, f.thumbs, f.outcome, f.final_text";
/// Columns of an event in [`EVENT_FEEDBACK_COLUMNS`].
pub(crate) const EVENT_COLUMN_COUNT: usize = 21;

pub(crate) const AUDIT_COLUMNS: &str =
    "rollout, ts_ms, actor, action, from_state, to_state, reason, details";

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

pub(crate) fn thumbs_str(t: Thumbs) -> &'static str {
    match t {
        Thumbs::Up => "up",
        Thumbs::Down => "down",
    }
}

pub(crate) fn edit_outcome_str(o: EditOutcome) -> &'static str {
    match o {
        EditOutcome::SentUnchanged => "sent_unchanged",
        EditOutcome::Edited => "edited",
        EditOutcome::Rejected => "rejected",
    }
}

/// A decoding failure inside a row-mapping closure (which must return `rusqlite::Error`).
fn bad_value(idx: usize, column: &'static str, value: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        Type::Text,
        Box::new(StoreError::Corrupt { column, value }),
    )
}

fn json_text(v: &Option<serde_json::Value>) -> Result<Option<String>> {
    Ok(match v {
        Some(v) => Some(serde_json::to_string(v)?),
        None => None,
    })
}

fn parse_json(idx: usize, text: &str) -> rusqlite::Result<serde_json::Value> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

fn event_from_row(r: &Row<'_>) -> rusqlite::Result<RequestEvent> {
    let cohort: String = r.get(6)?;
    let outcome: String = r.get(11)?;
    Ok(RequestEvent {
        request_id: r.get(0)?,
        ts_ms: r.get(1)?,
        route: r.get(2)?,
        rollout: r.get(3)?,
        stage: r.get(4)?,
        variant: r.get(5)?,
        cohort: Cohort::parse(&cohort).ok_or_else(|| bad_value(6, "cohort", cohort.clone()))?,
        key_hash: r.get(7)?,
        tenant: r.get(8)?,
        class: r.get(9)?,
        status: r.get(10)?,
        outcome: Outcome::parse(&outcome)
            .ok_or_else(|| bad_value(11, "outcome", outcome.clone()))?,
        latency_ms: r.get(12)?,
        ttft_ms: r.get(13)?,
        prompt_tokens: r.get(14)?,
        completion_tokens: r.get(15)?,
        cost_usd: r.get(16)?,
        refusal: r.get(17)?,
        streamed: r.get(18)?,
        finish_reason: r.get(19)?,
        output_text: r.get(20)?,
    })
}

/// The judge columns starting at `at`: `None` when the pair was not judged.
fn judgment_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Option<PairJudgment>> {
    let Some(model) = r.get::<_, Option<String>>(at)? else {
        return Ok(None);
    };
    Ok(Some(PairJudgment {
        model,
        first: verdict_column(r, at + 1)?,
        second: verdict_column(r, at + 2)?,
        cost_usd: r.get(at + 3)?,
        error: r.get(at + 4)?,
    }))
}

pub(crate) fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::A => "a",
        Verdict::B => "b",
        Verdict::Tie => "tie",
    }
}

/// A nullable verdict column (`a`, `b`, `tie`).
fn verdict_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Verdict>> {
    let Some(text) = r.get::<_, Option<String>>(idx)? else {
        return Ok(None);
    };
    Ok(Some(match text.as_str() {
        "a" => Verdict::A,
        "b" => Verdict::B,
        "tie" => Verdict::Tie,
        _ => return Err(bad_value(idx, "verdict", text)),
    }))
}

/// A nullable JSON text column.
fn json_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    let text: Option<String> = r.get(idx)?;
    text.map(|t| parse_json(idx, &t)).transpose()
}

fn side_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<PairSide> {
    Ok(PairSide {
        variant: r.get(at)?,
        model: r.get(at + 1)?,
        prompt_version: r.get(at + 2)?,
        text: r.get(at + 3)?,
        tool_calls: json_column(r, at + 4)?,
        finish_reason: r.get(at + 5)?,
        prompt_tokens: r.get(at + 6)?,
        completion_tokens: r.get(at + 7)?,
        latency_ms: r.get(at + 8)?,
        ttft_ms: r.get(at + 9)?,
        cost_usd: r.get(at + 10)?,
        refusal: r.get(at + 11)?,
        error: r.get(at + 12)?,
        cached: r.get(at + 13)?,
    })
}

/// Reads [`PAIR_COLUMNS`] starting at column `at`.
fn pair_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Pair> {
    let tail = at + PAIR_HEAD + 2 * PAIR_SIDE;
    Ok(Pair {
        request_id: r.get(at)?,
        ts_ms: r.get(at + 1)?,
        route: r.get(at + 2)?,
        rollout: r.get(at + 3)?,
        stage: r.get(at + 4)?,
        key_hash: r.get(at + 5)?,
        tenant: r.get(at + 6)?,
        class: r.get(at + 7)?,
        prompt: r.get(at + 8)?,
        prompt_hash: r.get(at + 9)?,
        baseline: side_from_row(r, at + PAIR_HEAD)?,
        candidate: side_from_row(r, at + PAIR_HEAD + PAIR_SIDE)?,
        tools: json_column(r, tail)?,
        response_format: json_column(r, tail + 1)?,
        embedding_similarity: r.get(tail + 2)?,
        judge: judgment_from_row(r, tail + 3)?,
        features: None,
    })
}

/// Reads [`FEEDBACK_COLUMNS`] starting at column `at`.
fn feedback_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Feedback> {
    let thumbs: Option<String> = r.get(at + 2)?;
    let outcome: Option<String> = r.get(at + 3)?;
    let thumbs = match thumbs.as_deref() {
        None => None,
        Some("up") => Some(Thumbs::Up),
        Some("down") => Some(Thumbs::Down),
        Some(other) => return Err(bad_value(at + 2, "thumbs", other.to_owned())),
    };
    let outcome = match outcome.as_deref() {
        None => None,
        Some("sent_unchanged") => Some(EditOutcome::SentUnchanged),
        Some("edited") => Some(EditOutcome::Edited),
        Some("rejected") => Some(EditOutcome::Rejected),
        Some(other) => return Err(bad_value(at + 3, "outcome", other.to_owned())),
    };
    Ok(Feedback {
        request_id: r.get(at)?,
        ts_ms: r.get(at + 1)?,
        thumbs,
        outcome,
        final_text: r.get(at + 4)?,
    })
}

fn audit_from_row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let details: String = r.get(7)?;
    Ok(AuditEntry {
        rollout: r.get(0)?,
        ts_ms: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        from_state: r.get(4)?,
        to_state: r.get(5)?,
        reason: r.get(6)?,
        details: parse_json(7, &details)?,
    })
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

// ---- writes, inside a transaction ----------------------------------------------------------

/// Rows a batch insert writes between offers of the CPU to other threads.
const ROWS_PER_YIELD: usize = 32;

/// Called once per row of a batch: every [`ROWS_PER_YIELD`] rows the writing thread yields,
/// so a large batch never holds a core for the whole of its transaction while the request path
/// waits to run on it (readers are unaffected by the open transaction: WAL).
fn pace(row: usize) {
    if row % ROWS_PER_YIELD == ROWS_PER_YIELD - 1 {
        std::thread::yield_now();
    }
}

fn insert_events_tx(tx: &Transaction<'_>, events: &[RequestEvent]) -> Result<()> {
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT OR IGNORE INTO events ({EVENT_COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"
    ))?;
    let mut skipped = 0usize;
    for (i, e) in events.iter().enumerate() {
        pace(i);
        let n = stmt.execute(params![
            e.request_id,
            e.ts_ms,
            e.route,
            e.rollout,
            e.stage,
            e.variant,
            e.cohort.as_str(),
            e.key_hash,
            e.tenant,
            e.class,
            e.status,
            e.outcome.as_str(),
            e.latency_ms,
            e.ttft_ms,
            e.prompt_tokens,
            e.completion_tokens,
            e.cost_usd,
            e.refusal,
            e.streamed,
            e.finish_reason,
            e.output_text,
        ])?;
        skipped += usize::from(n == 0);
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "events with an already stored request id were skipped"
        );
    }
    Ok(())
}

/// Inserts the pairs not stored yet, each with its features (see [`features`]).
fn insert_pairs_tx(tx: &Transaction<'_>, pairs: &[Pair]) -> Result<()> {
    let placeholders = (1..=PAIR_HEAD + 2 * PAIR_SIDE + 8)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT OR IGNORE INTO pairs ({PAIR_COLUMNS}) VALUES ({placeholders})"
    ))?;
    let mut skipped = 0usize;
    for (i, p) in pairs.iter().enumerate() {
        pace(i);
        let (b, c) = (&p.baseline, &p.candidate);
        let (b_tools, c_tools) = (json_text(&b.tool_calls)?, json_text(&c.tool_calls)?);
        let (tools, response_format) = (json_text(&p.tools)?, json_text(&p.response_format)?);
        let judge = p.judge.as_ref();
        let n = stmt.execute(params![
            p.request_id,
            p.ts_ms,
            p.route,
            p.rollout,
            p.stage,
            p.key_hash,
            p.tenant,
            p.class,
            p.prompt,
            p.prompt_hash,
            b.variant,
            b.model,
            b.prompt_version,
            b.text,
            b_tools,
            b.finish_reason,
            b.prompt_tokens,
            b.completion_tokens,
            b.latency_ms,
            b.ttft_ms,
            b.cost_usd,
            b.refusal,
            b.error,
            b.cached,
            c.variant,
            c.model,
            c.prompt_version,
            c.text,
            c_tools,
            c.finish_reason,
            c.prompt_tokens,
            c.completion_tokens,
            c.latency_ms,
            c.ttft_ms,
            c.cost_usd,
            c.refusal,
            c.error,
            c.cached,
            tools,
            response_format,
            p.embedding_similarity,
            judge.map(|j| &j.model),
            judge.and_then(|j| j.first).map(verdict_str),
            judge.and_then(|j| j.second).map(verdict_str),
            judge.map(|j| j.cost_usd),
            judge.and_then(|j| j.error.as_ref()),
        ])?;
        if n == 0 {
            skipped += 1;
        } else {
            features::insert(tx, tx.last_insert_rowid(), p)?;
        }
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "pairs already stored for their rollout were skipped"
        );
    }
    Ok(())
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

    fn recent_pairs(
        &self,
        rollout: &str,
        limit: usize,
        class: Option<&str>,
        since_ms: Option<i64>,
    ) -> Result<Vec<Pair>> {
        self.read(|c| {
            // Two fixed statements (rather than optional-parameter tricks) so each uses its index.
            let since = since_ms.unwrap_or(i64::MIN);
            let limit = limit_param(limit);
            let rows = match class {
                Some(class) => {
                    let mut stmt = c.prepare_cached(&format!(
                        "SELECT {PAIR_COLUMNS} FROM pairs \
                         WHERE rollout = ?1 AND class = ?2 AND ts_ms >= ?3 \
                         ORDER BY ts_ms DESC, id DESC LIMIT ?4"
                    ))?;
                    stmt.query_map(params![rollout, class, since, limit], |r| {
                        pair_from_row(r, 0)
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?
                }
                None => {
                    let mut stmt = c.prepare_cached(&format!(
                        "SELECT {PAIR_COLUMNS} FROM pairs WHERE rollout = ?1 AND ts_ms >= ?2 \
                         ORDER BY ts_ms DESC, id DESC LIMIT ?3"
                    ))?;
                    stmt.query_map(params![rollout, since, limit], |r| pair_from_row(r, 0))?
                        .collect::<rusqlite::Result<Vec<_>>>()?
                }
            };
            Ok(rows)
        })
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
             updated_ms = excluded.updated_ms",
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
}

impl Store for SqliteStore {
    fn outcomes(&self) -> Option<&dyn crate::OutcomeStore> {
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

    /// The read queries, with the statement text the store runs.
    fn read_queries() -> Vec<String> {
        vec![
            format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE rollout = ?1 AND ts_ms >= ?2 \
                 ORDER BY ts_ms, id LIMIT ?3"
            ),
            format!(
                "SELECT {PAIR_COLUMNS} FROM pairs WHERE rollout = ?1 AND class = ?2 AND ts_ms >= ?3 \
                 ORDER BY ts_ms DESC, id DESC LIMIT ?4"
            ),
            format!(
                "SELECT {PAIR_COLUMNS} FROM pairs WHERE rollout = ?1 AND ts_ms >= ?2 \
                 ORDER BY ts_ms DESC, id DESC LIMIT ?3"
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
        ]
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
            assert!(!plan.contains("TEMP B-TREE"), "{sql}\n sorts: {plan}");
            assert!(
                !plan.contains("SCAN pairs")
                    && !plan.contains("SCAN events")
                    && !plan.contains("SCAN pair_features"),
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
