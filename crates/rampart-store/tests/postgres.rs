//! PgStore against a scratch database per test on the PostgreSQL server of `common::pg`: the
//! shared suite (`suite/`), then what only PostgreSQL has (migrations under a lock, day
//! partitions and retention, rollout versions, connection errors, the batch writer).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod suite;

use std::sync::Arc;
use std::time::Duration;

use common::pg::{PgFixture, options, scratch};
use common::{event, pair};
use rampart_core::record::{Feedback, Thumbs};
use rampart_store::{
    EventStore, FeedbackStore, PairFilter, PairStore, PgOptions, PgStore, Record, RolloutStore,
    Store, StoreError, Writer, WriterConfig,
};

impl suite::Fixture for PgFixture {
    fn store(&self) -> &dyn Store {
        &self.store
    }
}

store_suite!(PgFixture::open());

const DAY: i64 = 86_400_000;
/// 2026-12-02 12:00 UTC.
const NOW: i64 = 20_789 * DAY + DAY / 2;

#[test]
fn replicas_starting_together_migrate_once() {
    let db = scratch();
    let url = db.url().to_string();
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgStore::connect(&url, options()))
        })
        .collect();
    let stores: Vec<PgStore> = opened
        .into_iter()
        .map(|h| h.join().unwrap().expect("every replica opens"))
        .collect();
    for s in &stores {
        assert_eq!(
            s.schema_version().unwrap(),
            PgStore::latest_schema_version()
        );
    }
    // They share one schema: a write through one is read through another.
    stores[0].insert_events(&[event("r1", "ro", NOW)]).unwrap();
    assert!(stores[3].event_exists("r1").unwrap());
}

#[test]
fn reconnecting_keeps_data_and_a_newer_schema_is_refused() {
    let db = scratch();
    {
        let store = PgStore::connect(db.url(), options()).unwrap();
        store.insert_events(&[event("r1", "ro", NOW)]).unwrap();
        store.save_rollout_state("ro", "{}", 1).unwrap();
    }
    let store = PgStore::connect(db.url(), options()).unwrap();
    assert!(store.event_exists("r1").unwrap());
    assert_eq!(
        store.load_rollout_state("ro").unwrap().as_deref(),
        Some("{}")
    );
    drop(store);

    // A migration this build does not know: refused, not touched.
    common::pg::execute(
        db.url(),
        "INSERT INTO schema_migrations (version, name) VALUES (999, 'future')",
    );
    match PgStore::connect(db.url(), options()) {
        Err(StoreError::SchemaTooNew { found: 999, .. }) => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn rollout_state_versions_grow_with_each_save() {
    let Some(fx) = PgFixture::open() else { return };
    let store = &fx.store;
    assert_eq!(store.rollout_version("ro").unwrap(), None);
    store.save_rollout_state("ro", r#"{"stage":0}"#, 1).unwrap();
    assert_eq!(store.rollout_version("ro").unwrap(), Some(1));
    store.save_rollout_state("ro", r#"{"stage":1}"#, 2).unwrap();
    store.save_rollout_state("ro", r#"{"stage":2}"#, 3).unwrap();
    assert_eq!(store.rollout_version("ro").unwrap(), Some(3));
    store.save_rollout_state("other", "{}", 3).unwrap();
    assert_eq!(store.rollout_version("other").unwrap(), Some(1));
}

#[test]
fn rows_land_in_day_partitions_and_retention_drops_whole_days() {
    let db = scratch();
    let store = PgStore::connect(
        db.url(),
        PgOptions {
            retention: Duration::from_secs(30 * 86_400),
            ..options()
        },
    )
    .unwrap();
    let days_ago = |d: i64| NOW - d * DAY;
    let events: Vec<_> = [40, 31, 29, 0]
        .iter()
        .map(|d| event(&format!("e{d}"), "ro", days_ago(*d)))
        .collect();
    let pairs: Vec<_> = [40, 0]
        .iter()
        .map(|d| pair(&format!("p{d}"), "ro", days_ago(*d), None))
        .collect();
    store.write_batch(&events, &pairs).unwrap();
    let fb = Feedback {
        request_id: "e40".into(),
        ts_ms: days_ago(40) + 1,
        thumbs: Some(Thumbs::Up),
        outcome: None,
        final_text: None,
    };
    assert!(store.insert_feedback(&fb).unwrap());
    assert_eq!(
        store.partitions("events").unwrap(),
        [
            "events_p20261023",
            "events_p20261101",
            "events_p20261103",
            "events_p20261202"
        ]
    );

    let done = store.maintain(NOW).unwrap();
    // Dropped: every partition whose whole day is older than 30 days (day -31 ended 30.5
    // days ago; day -29 has rows younger than 30 days and stays).
    assert_eq!(
        done.dropped,
        [
            "events_p20261023",
            "events_p20261101",
            "feedback_p20261023",
            "pairs_p20261023",
            "pair_features_p20261023"
        ]
    );
    // Created ahead: tomorrow and the day after, for every table.
    assert!(done.created.contains(&"events_p20261203".to_string()));
    assert!(
        done.created
            .contains(&"pair_features_p20261204".to_string())
    );
    assert_eq!(
        store.partitions("events").unwrap(),
        [
            "events_p20261103",
            "events_p20261202",
            "events_p20261203",
            "events_p20261204"
        ]
    );
    assert_eq!(store.count_events().unwrap(), 2);
    assert!(!store.event_exists("e40").unwrap() && !store.event_exists("e31").unwrap());
    assert!(store.event_exists("e29").unwrap() && store.event_exists("e0").unwrap());
    assert_eq!(store.count_pairs("ro").unwrap(), 1);
    assert!(store.feedback_for("e40").unwrap().is_empty());
    let mut features = Vec::new();
    store
        .for_each_pair_features("ro", &PairFilter::default(), &mut |f| {
            features.push(f.request_id)
        })
        .unwrap();
    assert_eq!(features, ["p0"]);
    // A late row for a dropped day recreates its partition (until the next maintenance).
    store
        .insert_events(&[event("late", "ro", days_ago(40))])
        .unwrap();
    assert!(store.event_exists("late").unwrap());
    // Maintenance again: nothing new to create, the late day dropped again.
    let again = store.maintain(NOW).unwrap();
    assert!(again.created.is_empty());
    assert_eq!(again.dropped, ["events_p20261023"]);
}

#[test]
fn an_unset_variable_and_an_unreachable_server_are_clear_errors() {
    let err = PgStore::open_env("RAMPART_TEST_SURELY_UNSET_VAR", options()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("store.url_env") && msg.contains("RAMPART_TEST_SURELY_UNSET_VAR"),
        "{msg}"
    );
    // Nothing listens on port 1.
    let err =
        PgStore::connect("postgres://rampart:secret@127.0.0.1:1/rampart", options()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cannot connect to PostgreSQL at 127.0.0.1:1/rampart"),
        "{msg}"
    );
    assert!(!msg.contains("secret"), "the password leaked: {msg}");
    let err = PgStore::connect("postgres://[bad", options()).unwrap_err();
    assert!(err.to_string().contains("URL is invalid"), "{err}");
}

#[tokio::test]
async fn the_batch_writer_writes_to_postgres() {
    let db = scratch();
    let store = Arc::new(PgStore::connect(db.url(), options()).unwrap());
    let writer = Writer::spawn(
        store.clone() as Arc<dyn Store>,
        WriterConfig {
            capacity: 10_000,
            batch_size: 500,
            flush_interval: Duration::from_millis(20),
        },
    );
    for i in 0..2_000 {
        writer
            .try_send(Record::Event(event(&format!("e{i}"), "ro", NOW + i)))
            .unwrap();
        if i % 10 == 0 {
            writer
                .try_send(Record::Pair(pair(&format!("p{i}"), "ro", NOW + i, None)))
                .unwrap();
        }
    }
    let fb = Feedback {
        request_id: "e1999".into(),
        ts_ms: NOW + 5_000,
        thumbs: Some(Thumbs::Down),
        outcome: None,
        final_text: None,
    };
    // Feedback goes through the writer after every record enqueued before it.
    assert!(writer.feedback(fb.clone()).await.unwrap());
    writer.close().await.unwrap();
    assert_eq!(store.count_events().unwrap(), 2_000);
    assert_eq!(store.count_pairs("ro").unwrap(), 200);
    assert_eq!(store.feedback_for("e1999").unwrap(), vec![fb]);
    let first: Vec<_> = store.events_since("ro", 0, 3).unwrap();
    assert_eq!(
        first
            .iter()
            .map(|e| e.request_id.as_str())
            .collect::<Vec<_>>(),
        ["e0", "e1", "e2"]
    );
}
