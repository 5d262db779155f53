//! Versioned migrations, applied at open.
//!
//! Invariants:
//! - `schema_migrations` holds one row per applied migration; `MIGRATIONS[i]` is version `i + 1`.
//! - All pending migrations run in one transaction that first takes a transaction-level advisory
//!   lock ([`MIGRATION_LOCK`]): replicas starting together queue on the lock, and each one after
//!   the first finds nothing left to do. The lock is released at commit or rollback, also when
//!   the process dies.
//! - A database with a version this build does not know is refused, not touched.

use super::Shared;
use crate::error::{Result, StoreError};

/// Numbered migrations, applied in order.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("migrations/0001_init.sql")),
    (
        "0002_outcomes",
        include_str!("migrations/0002_outcomes.sql"),
    ),
    (
        "0003_pair_filters",
        include_str!("migrations/0003_pair_filters.sql"),
    ),
    (
        "0004_pair_flag_groups",
        include_str!("migrations/0004_pair_flag_groups.sql"),
    ),
    (
        "0005_window_aggregates",
        include_str!("migrations/0005_window_aggregates.sql"),
    ),
];

/// The advisory lock key migrations hold (`rampmigr` in ASCII).
const MIGRATION_LOCK: i64 = 0x7261_6d70_6d69_6772;

pub(super) fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version integer PRIMARY KEY, name text NOT NULL, \
     applied_at timestamptz NOT NULL DEFAULT now())";

/// Bring the schema up to date.
pub(super) async fn run(s: &Shared) -> Result<()> {
    let mut client = s.client().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(CREATE_TABLE).await?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::bigint FROM schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    if current > latest() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: latest(),
        });
    }
    let pending = usize::try_from(current).unwrap_or(0);
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(pending) {
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&version, name],
        )
        .await?;
        tracing::info!(migration = name, version, "applied postgres migration");
    }
    tx.commit().await?;
    Ok(())
}

/// The number of applied migrations.
pub(super) async fn current(s: &Shared) -> Result<i64> {
    let client = s.client().await?;
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::bigint FROM schema_migrations",
            &[],
        )
        .await?;
    Ok(row.try_get(0)?)
}
