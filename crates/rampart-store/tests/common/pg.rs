//! The PostgreSQL server the tests use, and a scratch database per test.
//!
//! The server is `RAMPART_TEST_PG_URL` (a URL of a database from which `CREATE DATABASE` works),
//! or `postgres://postgres@127.0.0.1:5432/postgres` when unset. The tests never skip: an
//! unreachable server fails them.

use rampart_store::postgres::scratch::ScratchDatabase;
use rampart_store::{PgOptions, PgStore};

/// A new empty database.
pub fn scratch() -> ScratchDatabase {
    ScratchDatabase::for_tests("rampart_test")
        .unwrap_or_else(|e| panic!("PostgreSQL is required (set RAMPART_TEST_PG_URL): {e}"))
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
        let db = scratch();
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
