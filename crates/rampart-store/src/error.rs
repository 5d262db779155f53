//! The store's error type, and which failures are worth retrying.
//!
//! [`StoreError::is_transient`] is what the batch writer uses to tell an outage (disk full, I/O
//! error, database locked: keep the batch and retry) from a record SQLite will never accept
//! (constraint, too big: isolate it, log it, count it as lost). PostgreSQL errors are sorted by
//! their SQLSTATE class the same way: connection, resource and lock failures are transient, data
//! and integrity errors are not.

use rusqlite::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {}", postgres_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had from the pool (server down, pool exhausted).
    #[error("postgres connection pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The PostgreSQL store cannot be set up as configured (variable unset, bad URL, server
    /// unreachable at start). The message names the config key.
    #[error("{0}")]
    PostgresSetup(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Serde(#[from] serde_json::Error),
    /// The writer no longer accepts work: `close()` was called, or its thread is gone.
    #[error("the store writer is closed")]
    Closed,
    /// The writer is retrying a failed batch; flush/feedback give up rather than hang.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// `close()` gave up on records it could not write.
    #[error("{lost} records could not be written: {source}")]
    Lost {
        lost: u64,
        #[source]
        source: Box<StoreError>,
    },
    /// The database was written by a newer rampart (its schema version is unknown here).
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    /// A stored value could not be decoded (e.g. an unknown enum name).
    #[error("corrupt value in column `{column}`: {value}")]
    Corrupt { column: &'static str, value: String },
    /// A store implementation panicked; the writer caught it.
    #[error("store panicked: {0}")]
    Panicked(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// Whether trying the same write again later may succeed.
    ///
    /// Outages are transient (busy/locked database, disk full, I/O errors, out of memory, a
    /// panicking backend); data SQLite rejects (constraints, type mismatches, oversized values,
    /// unencodable numbers) is not.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Io(_) | StoreError::Unavailable(_) | StoreError::Panicked(_) => true,
            StoreError::Sqlite(e) => match e.sqlite_error_code() {
                Some(code) => matches!(
                    code,
                    ErrorCode::DatabaseBusy
                        | ErrorCode::DatabaseLocked
                        | ErrorCode::DiskFull
                        | ErrorCode::SystemIoFailure
                        | ErrorCode::CannotOpen
                        | ErrorCode::OutOfMemory
                        | ErrorCode::FileLockingProtocolFailed
                        | ErrorCode::SchemaChanged
                        | ErrorCode::OperationInterrupted
                        | ErrorCode::ReadOnly
                        | ErrorCode::PermissionDenied
                ),
                // Conversion failures (ToSql/FromSql) and API misuse: retrying won't help.
                None => false,
            },
            StoreError::Postgres(e) => postgres_transient(e),
            StoreError::Pool(_) => true,
            StoreError::Serde(_)
            | StoreError::PostgresSetup(_)
            | StoreError::Closed
            | StoreError::Lost { .. }
            | StoreError::SchemaTooNew { .. }
            | StoreError::Corrupt { .. } => false,
        }
    }
}

/// The server's message (and detail) when there is one: `tokio_postgres::Error`'s own text is
/// just "db error".
pub(crate) fn postgres_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({}): {detail}", db.message(), db.code().code()),
            None => format!("{} ({})", db.message(), db.code().code()),
        },
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// By SQLSTATE class: 08 connection, 40 rollback (serialization, deadlock), 53 insufficient
/// resources, 55 object not in prerequisite state (lock not available), 57 operator intervention
/// (shutdown), 58 system error (I/O). Errors without a server code are the connection's own
/// (closed, I/O, timeout): transient too.
fn postgres_transient(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            let class = code.code().get(..2).unwrap_or("");
            matches!(class, "08" | "40" | "53" | "55" | "57" | "58")
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_and_busy_are_transient_constraints_are_not() {
        let full = StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        ));
        let busy = StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        ));
        let constraint = StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            None,
        ));
        assert!(full.is_transient());
        assert!(busy.is_transient());
        assert!(!constraint.is_transient());
        assert!(StoreError::Io(std::io::Error::other("disk")).is_transient());
        assert!(!StoreError::Closed.is_transient());
    }
}
