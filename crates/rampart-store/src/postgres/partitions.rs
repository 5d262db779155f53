//! Day partitions of `events`, `feedback`, `pairs` and `pair_features`.
//!
//! Invariants:
//! - A partition covers one UTC day of `ts_ms`, `[day * 86_400_000, (day + 1) * 86_400_000)`, and
//!   is named `<table>_pYYYYMMDD`; its name is the only record of its day that this code reads
//!   back.
//! - Before a write, every day it touches has its partition ([`Partitions::ensure`]); creation
//!   runs in its own short transaction under an advisory lock ([`PARTITION_LOCK`]) so replicas
//!   never race on the DDL, and `IF NOT EXISTS` makes a repeat harmless. Days known to exist are
//!   cached per process; a write that finds no partition for its row (another replica dropped
//!   it) clears the cache, and the retry recreates it.
//! - [`maintain`] creates today's and the next [`DAYS_AHEAD`] days' partitions, and drops every
//!   partition whose whole day is older than the retention (so up to a day more than the
//!   retention is kept). Rows are never `DELETE`d.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use deadpool_postgres::GenericClient;

use super::Shared;
use crate::error::Result;

pub(crate) const DAY_MS: i64 = 86_400_000;
/// Partitions created ahead of today.
const DAYS_AHEAD: i64 = 2;
/// The partitioned tables.
pub(crate) const TABLES: [&str; 4] = ["events", "feedback", "pairs", "pair_features"];
/// The advisory lock key partition DDL holds (`ramppart` in ASCII).
const PARTITION_LOCK: i64 = 0x7261_6d70_7061_7274;

/// What one [`maintain`] run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Partitions created (ahead of need).
    pub created: Vec<String>,
    /// Partitions dropped (past the retention).
    pub dropped: Vec<String>,
}

/// The partitions known to exist, per table and day.
#[derive(Debug, Default)]
pub(crate) struct Partitions {
    known: Mutex<HashSet<(&'static str, i64)>>,
}

/// The UTC day of a unix-ms time.
pub(crate) fn day_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(DAY_MS)
}

/// (year, month, day) of a day number (days since 1970-01-01), after Howard Hinnant's
/// `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The day number of a (year, month, day), Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `<table>_pYYYYMMDD`.
pub(crate) fn name(table: &str, day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{table}_p{y:04}{m:02}{d:02}")
}

/// The day of a partition name made by [`name`] for `table`; `None` for any other name.
fn parse_day(table: &str, partition: &str) -> Option<i64> {
    let digits = partition.strip_prefix(table)?.strip_prefix("_p")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits.get(r)?.parse::<i64>().ok();
    let day = days_from_civil(num(0..4)?, num(4..6)?, num(6..8)?);
    (name(table, day) == partition).then_some(day)
}

/// The DDL creating one partition: identifiers and bounds come from integers computed here.
fn create_sql(table: &str, day: i64) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS \"{}\" PARTITION OF \"{table}\" FOR VALUES FROM ({}) TO ({})",
        name(table, day),
        day * DAY_MS,
        (day + 1) * DAY_MS
    )
}

impl Partitions {
    /// Make sure `table` has a partition for each of `days`.
    pub(crate) async fn ensure(
        &self,
        client: &mut deadpool_postgres::Object,
        table: &'static str,
        days: &BTreeSet<i64>,
    ) -> Result<Vec<String>> {
        let missing: Vec<i64> = {
            let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
            days.iter()
                .copied()
                .filter(|d| !known.contains(&(table, *d)))
                .collect()
        };
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
            .await?;
        let existing: HashSet<String> = list(&tx, table).await?.into_iter().collect();
        let mut created = Vec::new();
        for day in &missing {
            let partition = name(table, *day);
            if !existing.contains(&partition) {
                tx.batch_execute(&create_sql(table, *day)).await?;
                created.push(partition);
            }
        }
        tx.commit().await?;
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known.extend(missing.into_iter().map(|d| (table, d)));
        Ok(created)
    }

    /// Forget every partition known to exist (one may have been dropped by another replica).
    pub(crate) fn forget(&self) {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// The partitions of `table`, by name, oldest first (the names sort by day).
pub(crate) async fn list(client: &impl GenericClient, table: &str) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = $1::text::regclass ORDER BY 1",
            &[&table],
        )
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<_, String>(0)?))
        .collect()
}

/// Create the partitions of today and the next [`DAYS_AHEAD`] days; drop those whose day ended
/// more than the retention before `now_ms`.
pub(crate) async fn maintain(s: &Shared, now_ms: i64) -> Result<Maintenance> {
    let mut client = s.client().await?;
    let today = day_of(now_ms);
    let ahead: BTreeSet<i64> = (today..=today + DAYS_AHEAD).collect();
    let mut report = Maintenance::default();
    for table in TABLES {
        report
            .created
            .extend(s.partitions.ensure(&mut client, table, &ahead).await?);
    }
    let retention_ms = i64::try_from(s.retention.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms.saturating_sub(retention_ms);
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
        .await?;
    for table in TABLES {
        for partition in list(&tx, table).await? {
            let Some(day) = parse_day(table, &partition) else {
                continue;
            };
            if (day + 1) * DAY_MS <= cutoff {
                tx.batch_execute(&format!("DROP TABLE IF EXISTS \"{partition}\""))
                    .await?;
                report.dropped.push(partition);
            }
        }
    }
    tx.commit().await?;
    if !report.dropped.is_empty() {
        s.partitions.forget();
        tracing::info!(dropped = ?report.dropped, "dropped partitions past the retention");
    }
    Ok(report)
}

/// Run [`maintain`] every `every`, for as long as the store's runtime runs.
pub(crate) async fn keep_maintained(s: Arc<Shared>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is now: open already ran it
    loop {
        tick.tick().await;
        if let Err(e) = maintain(&s, super::now_ms()).await {
            tracing::warn!(error = %e, "postgres partition maintenance failed; retrying later");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_names_round_trip() {
        assert_eq!(name("events", 0), "events_p19700101");
        assert_eq!(name("events", day_of(-1)), "events_p19691231");
        // 2026-12-02 is day 20_789.
        assert_eq!(days_from_civil(2026, 12, 2), 20_789);
        assert_eq!(name("pairs", 20_789), "pairs_p20261202");
        for day in [-1, 0, 59, 60, 11_016, 20_789, 2_932_896] {
            let n = name("pairs", day);
            assert_eq!(parse_day("pairs", &n), Some(day), "{n}");
        }
        assert_eq!(parse_day("pairs", "pair_features_p20261202"), None);
        assert_eq!(parse_day("pairs", "pairs_p20261302"), None);
        assert_eq!(parse_day("pairs", "pairs_default"), None);
    }

    #[test]
    fn partition_bounds_are_the_day() {
        assert_eq!(
            create_sql("events", 1),
            "CREATE TABLE IF NOT EXISTS \"events_p19700102\" PARTITION OF \"events\" \
             FOR VALUES FROM (86400000) TO (172800000)"
        );
    }
}
