//! SqliteStore against a database file in a temp dir: the shared suite (`suite/`), then what
//! only SQLite has (reopening the file, its migrations).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod suite;

use common::event;
use rampart_store::{EventStore, PairFilter, PairStore, RolloutStore, SqliteStore, StoreError};
use suite::{expected_features, varied_pairs};

struct Sqlite {
    _dir: tempfile::TempDir,
    store: SqliteStore,
}

impl suite::Fixture for Sqlite {
    fn store(&self) -> &dyn rampart_store::Store {
        &self.store
    }
}

fn open() -> Option<Sqlite> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("nested/rampart.db")).unwrap();
    Some(Sqlite { _dir: dir, store })
}

store_suite!(open());

#[test]
fn reopening_keeps_data_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.insert_events(&[event("r1", "ro", 1)]).unwrap();
        store.save_rollout_state("ro", "{}", 1).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        SqliteStore::latest_schema_version()
    );
    assert!(store.event_exists("r1").unwrap());
    assert_eq!(
        store.load_rollout_state("ro").unwrap().as_deref(),
        Some("{}")
    );
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    match SqliteStore::open(&path) {
        Err(StoreError::SchemaTooNew { found: 999, .. }) => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn the_migration_computes_the_features_of_pairs_stored_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let pairs = varied_pairs();
    {
        // A database as schema version 1 left it, with pairs in it.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../src/sqlite/migrations/0001_init.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        for p in &pairs {
            let (b, c) = (&p.baseline, &p.candidate);
            let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
            conn.execute(
                "INSERT INTO pairs (request_id, ts_ms, route, rollout, stage, key_hash, tenant, \
                 class, prompt, prompt_hash, b_variant, b_model, b_text, b_tool_calls, \
                 b_finish_reason, b_prompt_tokens, b_completion_tokens, b_latency_ms, \
                 b_cost_usd, b_refusal, b_error, b_cached, c_variant, c_model, c_text, \
                 c_tool_calls, c_finish_reason, c_prompt_tokens, c_completion_tokens, \
                 c_latency_ms, c_cost_usd, c_refusal, c_error, c_cached) VALUES (?1, ?2, ?3, \
                 ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, \
                 ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34)",
                rusqlite::params![
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
                    b.text,
                    json(&b.tool_calls),
                    b.finish_reason,
                    b.prompt_tokens,
                    b.completion_tokens,
                    b.latency_ms,
                    b.cost_usd,
                    b.refusal,
                    b.error,
                    b.cached,
                    c.variant,
                    c.model,
                    c.text,
                    json(&c.tool_calls),
                    c.finish_reason,
                    c.prompt_tokens,
                    c.completion_tokens,
                    c.latency_ms,
                    c.cost_usd,
                    c.refusal,
                    c.error,
                    c.cached,
                ],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        SqliteStore::latest_schema_version()
    );
    // Version 1 kept no tools, response_format or embedding: the features are those of the
    // pairs as stored.
    let stored: Vec<_> = pairs
        .iter()
        .map(|p| store.get_pair("ro", &p.request_id).unwrap().unwrap())
        .collect();
    assert!(stored.iter().all(|p| p.tools.is_none()));
    let mut seen = Vec::new();
    store
        .for_each_pair_features("ro", &PairFilter::default(), &mut |f| seen.push(f))
        .unwrap();
    assert_eq!(seen.len(), pairs.len());
    assert_eq!(
        seen,
        stored.iter().map(expected_features).collect::<Vec<_>>()
    );
}

#[test]
fn the_migration_moves_tenant_caps_out_of_the_rollout_state_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    {
        // Schema version 2 kept a rollout's caps as JSON under '<rollout>#tenant-caps'.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../src/sqlite/migrations/0001_init.sql"))
            .unwrap();
        conn.execute_batch(include_str!(
            "../src/sqlite/migrations/0002_pair_features.sql"
        ))
        .unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(
            "INSERT INTO rollout_state VALUES ('support-v2#tenant-caps', \
             '{\"enterprise\": 0, \"acme\": 12.5}', 7); \
             INSERT INTO rollout_state VALUES ('support-v2', '{\"phase\": \"x\"}', 8);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let caps = store.tenant_caps("support-v2").unwrap();
    assert_eq!(
        caps.into_iter().collect::<Vec<_>>(),
        [("acme".to_string(), 12.5), ("enterprise".to_string(), 0.0)]
    );
    assert_eq!(
        store.load_rollout_state("support-v2#tenant-caps").unwrap(),
        None
    );
    assert_eq!(
        store.load_rollout_state("support-v2").unwrap().as_deref(),
        Some("{\"phase\": \"x\"}")
    );
}
