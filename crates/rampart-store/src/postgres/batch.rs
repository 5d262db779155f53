//! Batch writes of events and pairs: `COPY` into session temp tables, then one `INSERT … SELECT`
//! per table, in one transaction.
//!
//! Invariants:
//! - A batch is encoded before any database work ([`Encoded::new`]): duplicates inside it are
//!   dropped there (first copy kept), and a pair's features are computed there when it carries
//!   none, so the transaction only moves bytes.
//! - The inserts skip rows already stored (an event with the same request id, a pair with the
//!   same rollout and request id) and keep the batch's order in the ids they assign; a pair's
//!   features are inserted only with the pair itself. A retried batch is harmless.
//! - The staging tables are temporary (`ON COMMIT DELETE ROWS`): each pooled connection has its
//!   own, empty outside a batch.

use std::collections::{BTreeSet, HashSet};

use futures_util::SinkExt;
use rampart_core::compare::pair_features;
use rampart_core::record::{Pair, RequestEvent};

use super::Shared;
use super::copy::{self, CopyText};
use super::partitions::day_of;
use crate::columns::{EVENT_COLUMNS, PAIR_COLUMNS};
use crate::error::{Result, StoreError};

/// The `pair_features` columns besides `pair_id`, as staged and copied.
pub(super) const FEATURE_STAGE_COLUMNS: &str = "rollout, stage, request_id, ts_ms, class, \
     tenant, b_flags, b_chars, b_tokens, b_completion_tokens, b_opening, b_latency_ms, \
     b_cost_usd, c_flags, c_chars, c_tokens, c_completion_tokens, c_opening, c_latency_ms, \
     c_cost_usd, exact_match, normalized_match, similarity, embedding_similarity, equivalence, \
     length_ratio, judge_first, judge_second, judge_failed";

/// A batch, ready for `COPY`.
#[derive(Debug)]
pub(super) struct Encoded {
    events: CopyText,
    pairs: CopyText,
    features: CopyText,
    /// Days each table's rows fall on.
    event_days: BTreeSet<i64>,
    pair_days: BTreeSet<i64>,
    feature_days: BTreeSet<i64>,
    /// Rows the batch held, duplicates included (for the log of skipped rows).
    given: (usize, usize),
}

impl Encoded {
    pub(super) fn new(events: &[RequestEvent], pairs: &[Pair]) -> Result<Encoded> {
        let mut out = Encoded {
            events: CopyText::default(),
            pairs: CopyText::default(),
            features: CopyText::default(),
            event_days: BTreeSet::new(),
            pair_days: BTreeSet::new(),
            feature_days: BTreeSet::new(),
            given: (events.len(), pairs.len()),
        };
        let mut seen = HashSet::new();
        for (ord, e) in events.iter().enumerate() {
            if seen.insert(e.request_id.as_str()) {
                copy::event_row(&mut out.events, ord, e);
                out.event_days.insert(day_of(e.ts_ms));
            }
        }
        let mut seen = HashSet::new();
        for (ord, p) in pairs.iter().enumerate() {
            if !seen.insert((p.rollout.as_str(), p.request_id.as_str())) {
                continue;
            }
            copy::pair_row(&mut out.pairs, ord, p)?;
            out.pair_days.insert(day_of(p.ts_ms));
            let computed;
            let f = match &p.features {
                Some(f) => f.as_ref(),
                None => {
                    computed = pair_features(p);
                    &computed
                }
            };
            copy::features_row(&mut out.features, p, f);
            out.feature_days.insert(day_of(f.ts_ms));
        }
        Ok(out)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.events.rows() == 0 && self.pairs.rows() == 0
    }
}

fn stage_ddl() -> String {
    format!(
        "CREATE TEMP TABLE IF NOT EXISTS stage_events ON COMMIT DELETE ROWS AS \
         SELECT 0::integer AS ord, {EVENT_COLUMNS} FROM events WITH NO DATA; \
         CREATE TEMP TABLE IF NOT EXISTS stage_pairs ON COMMIT DELETE ROWS AS \
         SELECT 0::integer AS ord, {PAIR_COLUMNS} FROM pairs WITH NO DATA; \
         CREATE TEMP TABLE IF NOT EXISTS stage_features ON COMMIT DELETE ROWS AS \
         SELECT {FEATURE_STAGE_COLUMNS} FROM pair_features WITH NO DATA"
    )
}

fn insert_events_sql() -> String {
    format!(
        "INSERT INTO events ({EVENT_COLUMNS}) SELECT {EVENT_COLUMNS} FROM stage_events s \
         WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.request_id = s.request_id) \
         ORDER BY ord"
    )
}

fn insert_pairs_sql() -> String {
    format!(
        "WITH ins AS (INSERT INTO pairs ({PAIR_COLUMNS}) SELECT {PAIR_COLUMNS} FROM stage_pairs s \
         WHERE NOT EXISTS (SELECT 1 FROM pairs p \
         WHERE p.rollout = s.rollout AND p.request_id = s.request_id) \
         ORDER BY ord RETURNING id, rollout, request_id) \
         INSERT INTO pair_features (pair_id, {FEATURE_STAGE_COLUMNS}) \
         SELECT ins.id, f.* FROM ins JOIN stage_features f \
         ON f.rollout = ins.rollout AND f.request_id = ins.request_id ORDER BY ins.id"
    )
}

async fn copy_in(tx: &deadpool_postgres::Transaction<'_>, sql: &str, data: CopyText) -> Result<()> {
    let sink = tx.copy_in::<_, bytes::Bytes>(sql).await?;
    let mut sink = std::pin::pin!(sink);
    sink.send(data.into_bytes()).await?;
    sink.as_mut().finish().await?;
    Ok(())
}

/// Write an encoded batch in one transaction.
pub(super) async fn write(s: &Shared, batch: Encoded) -> Result<()> {
    let mut client = s.client().await?;
    for (table, days) in [
        ("events", &batch.event_days),
        ("pairs", &batch.pair_days),
        ("pair_features", &batch.feature_days),
    ] {
        s.partitions.ensure(&mut client, table, days).await?;
    }
    let result = write_tx(&mut client, batch).await;
    if let Err(StoreError::Postgres(e)) = &result
        && e.code() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION)
    {
        // "no partition of relation found for row": another replica dropped a partition this
        // one believed in. The retry recreates it.
        s.partitions.forget();
    }
    result
}

async fn write_tx(client: &mut deadpool_postgres::Object, batch: Encoded) -> Result<()> {
    let (given_events, given_pairs) = batch.given;
    let tx = client.transaction().await?;
    tx.batch_execute(&stage_ddl()).await?;
    let mut inserted = (0, 0);
    if batch.events.rows() > 0 {
        copy_in(
            &tx,
            &format!("COPY stage_events (ord, {EVENT_COLUMNS}) FROM STDIN"),
            batch.events,
        )
        .await?;
        inserted.0 = tx.execute(&insert_events_sql(), &[]).await?;
    }
    if batch.pairs.rows() > 0 {
        copy_in(
            &tx,
            &format!("COPY stage_pairs (ord, {PAIR_COLUMNS}) FROM STDIN"),
            batch.pairs,
        )
        .await?;
        copy_in(
            &tx,
            &format!("COPY stage_features ({FEATURE_STAGE_COLUMNS}) FROM STDIN"),
            batch.features,
        )
        .await?;
        inserted.1 = tx.execute(&insert_pairs_sql(), &[]).await?;
    }
    tx.commit().await?;
    let skipped_events = given_events.saturating_sub(usize::try_from(inserted.0).unwrap_or(0));
    let skipped_pairs = given_pairs.saturating_sub(usize::try_from(inserted.1).unwrap_or(0));
    if skipped_events > 0 {
        tracing::warn!(
            skipped = skipped_events,
            "events with an already stored request id were skipped"
        );
    }
    if skipped_pairs > 0 {
        tracing::warn!(
            skipped = skipped_pairs,
            "pairs already stored for their rollout were skipped"
        );
    }
    Ok(())
}
