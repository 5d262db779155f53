//! The PostgreSQL server the tests use, and a scratch database per test.
//!
//! The server is `RAMPART_TEST_PG_URL` (a URL of a database from which `CREATE DATABASE` works),
//! or `postgres://postgres@127.0.0.1:5432/postgres` when unset. A test skips (passes, saying so)
//! only when that variable is unset, `CI` is unset and the default server is unreachable; when
//! either is set, an unreachable server fails the test.

use rampart_store::postgres::scratch::ScratchDatabase;
use rampart_store::{PgOptions, PgStore};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn must_run() -> bool {
    let set = |v: &str| std::env::var(v).is_ok_and(|s| !s.is_empty() && s != "false");
    set("RAMPART_TEST_PG_URL") || set("CI")
}

/// A new empty database, or `None` when PostgreSQL tests are to be skipped here.
pub fn scratch() -> Option<ScratchDatabase> {
    let url = std::env::var("RAMPART_TEST_PG_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    match ScratchDatabase::create(&url, "rampart_test") {
        Ok(db) => Some(db),
        Err(e) if must_run() => {
            panic!("PostgreSQL is required here (CI or RAMPART_TEST_PG_URL set) but: {e}")
        }
        Err(e) => {
            eprintln!("skipping: no PostgreSQL at {DEFAULT_URL} ({e}); set RAMPART_TEST_PG_URL");
            None
        }
    }
}

/// Options for tests: a small pool, maintenance only when the test calls it.
pub fn options() -> PgOptions {
    PgOptions {
        pool_size: 4,
        maintenance_interval: None,
        ..PgOptions::default()
    }
}

/// A store on its own scratch database; the store is closed before the database is dropped.
pub struct PgFixture {
    pub store: PgStore,
    pub db: ScratchDatabase,
}

impl PgFixture {
    pub fn open() -> Option<PgFixture> {
        let db = scratch()?;
        let store = PgStore::connect(db.url(), options()).unwrap();
        Some(PgFixture { store, db })
    }
}

/// Run `sql` on the database at `url` (test set-up that the store's API does not offer).
pub fn execute(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        client.batch_execute(sql).await.unwrap();
        drop(client);
        let _ = driver.await;
    });
}
