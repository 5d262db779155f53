//! `[store]`: SQLite (the default) and PostgreSQL, parsed into typed config, and every mistake
//! reported with its key path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use rampart_core::config::{Config, StoreKind};

fn config(store: &str) -> String {
    format!(
        r#"
[store]
{store}

[providers.sim]
type = "mock"
[providers.sim.models.old]

[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "old"
"#
    )
}

fn errors(store: &str) -> Vec<String> {
    match Config::from_toml_str(&config(store)) {
        Ok(_) => panic!("config should be invalid"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn postgres_takes_the_name_of_a_variable_and_defaults() {
    let c = Config::from_toml_str(&config(
        "type = \"postgres\"\nurl_env = \"RAMPART_DATABASE_URL\"",
    ))
    .unwrap();
    match c.store.kind {
        StoreKind::Postgres {
            url_env,
            pool_size,
            retention,
        } => {
            assert_eq!(url_env, "RAMPART_DATABASE_URL");
            assert_eq!(pool_size, 16);
            assert_eq!(retention, Duration::from_secs(30 * 86_400));
        }
        other => panic!("expected postgres, got {other:?}"),
    }
    let c = Config::from_toml_str(&config(
        "type = \"postgres\"\nurl_env = \"DB\"\npool_size = 4\nretention = \"7d\"",
    ))
    .unwrap();
    assert!(matches!(
        c.store.kind,
        StoreKind::Postgres { pool_size: 4, retention, .. } if retention == Duration::from_secs(7 * 86_400)
    ));
}

#[test]
fn postgres_mistakes_are_reported_with_their_key() {
    let got = errors(
        "type = \"postgres\"\nurl = \"postgres://u:hunter2@db/rampart\"\npath = \"x.db\"\n\
         pool_size = 0\nretention = \"2h\"",
    );
    let joined = got.join("\n");
    assert!(
        joined.contains("store.url: the URL never sits in the file"),
        "{joined}"
    );
    assert!(!joined.contains("hunter2"), "the URL was echoed: {joined}");
    assert!(joined.contains("store.url_env: required"), "{joined}");
    assert!(
        joined.contains("store.path: only for type = \"sqlite\""),
        "{joined}"
    );
    assert!(
        joined.contains("store.pool_size: must be between 1 and 1000"),
        "{joined}"
    );
    assert!(
        joined.contains("store.retention: must be between 1d and 3650d (got `2h`)"),
        "{joined}"
    );
    assert_eq!(got.len(), 5, "{joined}");

    let got = errors("type = \"postgres\"\nurl_env = \"postgres://x\"");
    assert!(
        got[0].starts_with("store.url_env: must be an environment variable name"),
        "{got:?}"
    );
    let got = errors("type = \"postgres\"\nurl_env = \"DB\"\nretention = \"forever\"");
    assert!(got[0].starts_with("store.retention:"), "{got:?}");
}

#[test]
fn postgres_keys_are_refused_for_sqlite() {
    let got = errors("type = \"sqlite\"\nurl_env = \"DB\"\npool_size = 4\nretention = \"7d\"");
    assert_eq!(
        got,
        [
            "store.url_env: only for type = \"postgres\"",
            "store.pool_size: only for type = \"postgres\"",
            "store.retention: only for type = \"postgres\"",
        ]
    );
    let got = errors("type = \"mysql\"");
    assert_eq!(
        got,
        ["store.type: must be \"sqlite\" or \"postgres\" (got `mysql`)"]
    );
}
