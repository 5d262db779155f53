//! OutcomeStore on SQLite on disk: moments per name and cohort since a time, duplicates per
//! request skipped, outcomes kept across a reopen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_core::outcomes::OutcomeRecord;
use rampart_core::routing::Cohort;
use rampart_store::{OutcomeMoments, SqliteStore, Store};

fn outcome(
    request: Option<&str>,
    name: &str,
    cohort: Cohort,
    value: f64,
    served_ms: i64,
) -> OutcomeRecord {
    OutcomeRecord {
        rollout: "ro".into(),
        name: name.into(),
        value,
        cohort,
        variant: if cohort == Cohort::Canary { "v2" } else { "v1" }.into(),
        stage: Some("canary-5".into()),
        request_id: request.map(str::to_string),
        key_hash: None,
        served_ms,
        at_ms: served_ms + 10,
        received_ms: served_ms + 20,
    }
}

#[test]
fn outcomes_are_summed_per_name_and_cohort_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        let os = store.outcomes().expect("sqlite stores outcomes");
        let batch = vec![
            outcome(Some("r1"), "csat", Cohort::Control, 80.0, 100),
            outcome(Some("r2"), "csat", Cohort::Control, 60.0, 200),
            outcome(Some("r3"), "csat", Cohort::Canary, 50.0, 300),
            outcome(None, "csat", Cohort::Canary, 40.0, 400),
            outcome(None, "csat", Cohort::Canary, 40.0, 400),
            outcome(Some("r1"), "refund", Cohort::Control, 1.0, 100),
            outcome(Some("old"), "csat", Cohort::Canary, 0.0, 10),
        ];
        assert_eq!(os.insert_outcomes(&batch).unwrap(), 7);
        // Retrying the batch adds only the key-only outcomes (they carry no request id).
        assert_eq!(os.insert_outcomes(&batch).unwrap(), 2);
    }
    let store = SqliteStore::open(&path).unwrap();
    let m = store
        .outcomes()
        .unwrap()
        .outcome_moments("ro", 100)
        .unwrap();
    assert_eq!(
        m,
        vec![
            OutcomeMoments {
                name: "csat".into(),
                cohort: Cohort::Canary,
                n: 5,
                sum: 210.0,
                sum_sq: 2500.0 + 4.0 * 1600.0
            },
            OutcomeMoments {
                name: "csat".into(),
                cohort: Cohort::Control,
                n: 2,
                sum: 140.0,
                sum_sq: 6400.0 + 3600.0
            },
            OutcomeMoments {
                name: "refund".into(),
                cohort: Cohort::Control,
                n: 1,
                sum: 1.0,
                sum_sq: 1.0
            },
        ]
    );
    assert!(
        store
            .outcomes()
            .unwrap()
            .outcome_moments("other", 0)
            .unwrap()
            .is_empty()
    );
}
