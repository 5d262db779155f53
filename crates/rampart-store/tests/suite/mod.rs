//! The store's behaviour, whatever the backend: each case takes a fresh, empty store.
//! `store_suite!` turns every case into a `#[test]` of the including file, over the store its
//! `open` expression gives.
#![allow(dead_code)]

use rampart_core::outcomes::OutcomeRecord;
use rampart_core::record::{EditOutcome, Feedback, Outcome, RequestEvent, Thumbs};
use rampart_core::routing::Cohort;
use rampart_store::{AuditEntry, OutcomeMoments, PairFilter, Store};

use crate::common::{event, pair};

mod aggregates;
mod cas;
mod pairs;
pub use aggregates::*;
pub use cas::*;
pub use pairs::*;

/// What a test holds while it runs: the store and whatever keeps it alive (a temp dir, a
/// scratch database).
pub trait Fixture {
    fn store(&self) -> &dyn Store;
}

/// One `#[test]` per case, each on the fixture `$open` returns.
#[macro_export]
macro_rules! store_suite {
    ($open:expr) => {
        $crate::store_suite!(@cases $open;
            events_round_trip_and_duplicates_are_skipped,
            events_since_is_inclusive_oldest_first_limited_and_per_rollout,
            latest_events_are_the_newest_oldest_first_without_text,
            feedback_with_events_joins_per_rollout_in_event_order,
            feedback_needs_a_known_request,
            pairs_round_trip_every_field,
            recent_pairs_newest_first_with_filters,
            pairs_page_filters_by_class_tenant_and_flag_and_pages_by_cursor,
            for_each_pair_and_its_features_visit_all_in_id_order_across_pages,
            rollout_state_upserts,
            audit_log_keeps_the_latest_entries_oldest_first,
            pair_features_are_stored_with_the_pair_and_read_back_without_texts,
            tenant_caps_upsert_per_rollout,
            features_a_pair_carries_are_stored_as_given,
            a_batch_writes_events_and_pairs_together_and_skips_repeats_inside_it,
            a_large_batch_stores_every_event_field_for_field_and_skips_its_repeats,
            text_with_every_special_character_round_trips,
            outcomes_are_summed_per_name_and_cohort_and_repeats_skipped,
            a_change_is_a_compare_and_set_with_its_audit_rows,
            racing_changes_on_one_version_apply_once,
            window_aggregates_are_written_once_read_in_order_summed_and_pruned,
        );
    };
    (@cases $open:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let Some(fixture) = $open else { return };
                $crate::suite::$case($crate::suite::Fixture::store(&fixture));
            }
        )*
    };
}

pub fn a_batch_writes_events_and_pairs_together_and_skips_repeats_inside_it(store: &dyn Store) {
    let mut again = event("e1", "ro", 2);
    again.variant = "second copy".into();
    let events = [event("e1", "ro", 1), event("e2", "ro", 3), again];
    let mut pair_again = pair("p1", "ro", 9, Some("refunds"));
    pair_again.stage = "second copy".into();
    let pairs = [
        pair("p1", "ro", 5, Some("refunds")),
        pair_again,
        pair("p2", "ro", 6, None),
    ];
    store.write_batch(&events, &pairs).unwrap();
    assert_eq!(store.count_events().unwrap(), 2);
    assert_eq!(store.get_event("e1").unwrap().unwrap(), events[0]);
    assert_eq!(store.count_pairs("ro").unwrap(), 2);
    assert_eq!(store.get_pair("ro", "p1").unwrap().unwrap(), pairs[0]);
    let mut features = Vec::new();
    store
        .for_each_pair_features("ro", &PairFilter::default(), &mut |f| {
            features.push(f.request_id)
        })
        .unwrap();
    assert_eq!(features, ["p1", "p2"]);
    // The same batch again (a retry) changes nothing.
    store.write_batch(&events, &pairs).unwrap();
    assert_eq!(store.count_events().unwrap(), 2);
    assert_eq!(store.count_pairs("ro").unwrap(), 2);
    // An empty batch is a no-op.
    store.write_batch(&[], &[]).unwrap();
}

/// Enough events that a store writing several per statement (SQLite: 16) fills whole
/// statements and a partial one, every field different from row to row, so a parameter bound to
/// the wrong row or column shows; repeats inside a statement, across statements and in the
/// partial one are skipped, the first copy kept.
pub fn a_large_batch_stores_every_event_field_for_field_and_skips_its_repeats(store: &dyn Store) {
    let varied = |i: usize| {
        let n = i as i64;
        let some = |s: String| (!i.is_multiple_of(3)).then_some(s);
        RequestEvent {
            request_id: format!("many-{i}"),
            ts_ms: 1_000 + n,
            route: format!("route-{i}"),
            rollout: some(format!("ro-{}", i % 4)),
            stage: some(format!("stage-{i}")),
            variant: format!("v-{i}"),
            cohort: [Cohort::Control, Cohort::Canary, Cohort::Unkeyed][i % 3],
            key_hash: i.is_multiple_of(2).then(|| format!("key-{i}")),
            tenant: (!i.is_multiple_of(5)).then(|| format!("tenant-{i}")),
            class: (i % 4 != 1).then(|| format!("class-{i}")),
            status: 200 + i as u16,
            outcome: Outcome::ALL[i % Outcome::ALL.len()],
            latency_ms: 10.0 + n as f64 / 4.0,
            ttft_ms: (i % 2 == 1).then_some(n as f64 / 8.0),
            prompt_tokens: 3 * i as u64,
            completion_tokens: 7 * i as u64,
            cost_usd: n as f64 / 1e4,
            refusal: i.is_multiple_of(7),
            streamed: i.is_multiple_of(2),
            finish_reason: some(format!("reason-{i}")),
            output_text: (i % 6 != 5).then(|| format!("answer {i}, with \"quotes\" and ünï")),
        }
    };
    let originals: Vec<RequestEvent> = (0..45).map(varied).collect();
    let repeat = |of: usize| {
        let mut repeat = varied(of);
        repeat.variant = "a later copy".into();
        repeat.ts_ms = -1;
        repeat
    };
    // Each repeat comes after its original in the batch: the first copy is the one kept.
    let mut batch = originals.clone();
    for (at, of) in [(5, 2), (20, 3), (40, 17)] {
        batch.insert(at, repeat(of));
    }
    batch.push(repeat(43));
    store.write_batch(&batch, &[]).unwrap();
    assert_eq!(store.count_events().unwrap(), originals.len() as u64);
    for e in &originals {
        assert_eq!(store.get_event(&e.request_id).unwrap().as_ref(), Some(e));
    }
    // The whole batch again (a retry) changes nothing.
    store.write_batch(&batch, &[]).unwrap();
    assert_eq!(store.count_events().unwrap(), originals.len() as u64);
    assert_eq!(
        store.get_event("many-17").unwrap().as_ref(),
        Some(&originals[17])
    );
}

pub fn text_with_every_special_character_round_trips(store: &dyn Store) {
    let tricky = "tab\there\nnot a newline\\N\n\r\nreal: \t\n\r\\ end \\. quote' \" ünï 🦀";
    let mut e = event("tricky", "ro", 1);
    e.output_text = Some(tricky.into());
    e.finish_reason = Some(String::new());
    let mut p = pair("tricky", "ro", 1, Some(tricky));
    p.baseline.text = Some(tricky.into());
    p.prompt = Some(String::new());
    p.candidate.tool_calls = Some(serde_json::json!({"s": tricky}));
    store.write_batch(&[e.clone()], &[p.clone()]).unwrap();
    assert_eq!(store.get_event("tricky").unwrap().unwrap(), e);
    assert_eq!(store.get_pair("ro", "tricky").unwrap().unwrap(), p);
    let fb = Feedback {
        request_id: "tricky".into(),
        ts_ms: 2,
        thumbs: None,
        outcome: Some(EditOutcome::Edited),
        final_text: Some(tricky.into()),
    };
    assert!(store.insert_feedback(&fb).unwrap());
    assert_eq!(store.feedback_for("tricky").unwrap(), vec![fb]);
}

pub fn events_round_trip_and_duplicates_are_skipped(store: &dyn Store) {
    let mut unkeyed = event("r2", "ro", 2);
    unkeyed.rollout = None;
    unkeyed.stage = None;
    unkeyed.key_hash = None;
    unkeyed.tenant = None;
    unkeyed.class = None;
    unkeyed.ttft_ms = None;
    unkeyed.finish_reason = None;
    unkeyed.output_text = None;
    unkeyed.cohort = rampart_core::routing::Cohort::Unkeyed;
    unkeyed.outcome = rampart_core::record::Outcome::Timeout;
    unkeyed.status = 504;
    let events = vec![event("r1", "ro", 1), unkeyed, event("r3", "ro", 3)];
    store.insert_events(&events).unwrap();
    for e in &events {
        assert_eq!(store.get_event(&e.request_id).unwrap().as_ref(), Some(e));
        assert!(store.event_exists(&e.request_id).unwrap());
    }
    assert_eq!(store.get_event("nope").unwrap(), None);
    assert!(!store.event_exists("nope").unwrap());
    assert_eq!(store.count_events().unwrap(), 3);

    // Same ids again (a retried batch): skipped, the first copy stays.
    let mut again = event("r1", "ro", 99);
    again.variant = "other".into();
    store.insert_events(&[again]).unwrap();
    assert_eq!(store.count_events().unwrap(), 3);
    assert_eq!(store.get_event("r1").unwrap().unwrap().ts_ms, 1);
}

pub fn events_since_is_inclusive_oldest_first_limited_and_per_rollout(store: &dyn Store) {
    let events = vec![
        event("a", "ro", 30),
        event("b", "ro", 10),
        event("c", "other", 20),
        event("d", "ro", 20),
        event("e", "ro", 20),
    ];
    store.insert_events(&events).unwrap();
    let ids = |v: Vec<rampart_core::record::RequestEvent>| {
        v.into_iter().map(|e| e.request_id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.events_since("ro", 20, 10).unwrap()),
        ["d", "e", "a"]
    );
    assert_eq!(ids(store.events_since("ro", 0, 2).unwrap()), ["b", "d"]);
    assert_eq!(ids(store.events_since("other", 0, 10).unwrap()), ["c"]);
    assert!(store.events_since("ro", 31, 10).unwrap().is_empty());
}

pub fn latest_events_are_the_newest_oldest_first_without_text(store: &dyn Store) {
    let mut events: Vec<_> = (0..10)
        .map(|i| {
            let mut e = event(&format!("e{i}"), "ro", 100 + i);
            e.output_text = Some(format!("answer {i}"));
            e
        })
        .collect();
    // Two at the same instant: ties go by insertion order.
    events.push(event("tie", "ro", 109));
    events.push(event("x", "other", 500));
    store.insert_events(&events).unwrap();
    let latest = store.latest_events("ro", 3).unwrap();
    let ids: Vec<&str> = latest.iter().map(|e| e.request_id.as_str()).collect();
    assert_eq!(ids, ["e8", "e9", "tie"]);
    assert!(latest.iter().all(|e| e.output_text.is_none()));
    assert_eq!(latest[0].ts_ms, 108);
    assert_eq!(store.latest_events("ro", 100).unwrap().len(), 11);
    assert!(store.latest_events("none", 10).unwrap().is_empty());
}

pub fn feedback_with_events_joins_per_rollout_in_event_order(store: &dyn Store) {
    store
        .insert_events(&[
            event("late", "ro", 30),
            event("early", "ro", 10),
            event("elsewhere", "other", 20),
            event("quiet", "ro", 20),
        ])
        .unwrap();
    let fb = |id: &str, ts: i64, thumbs: Option<Thumbs>, text: Option<&str>| Feedback {
        request_id: id.into(),
        ts_ms: ts,
        thumbs,
        outcome: text.map(|_| EditOutcome::Edited),
        final_text: text.map(str::to_string),
    };
    let late_1 = fb("late", 100, Some(Thumbs::Down), Some("better"));
    let late_2 = fb("late", 101, Some(Thumbs::Up), None);
    let early = fb("early", 102, None, Some("fixed"));
    let elsewhere = fb("elsewhere", 103, Some(Thumbs::Up), None);
    for f in [&late_1, &late_2, &early, &elsewhere] {
        assert!(store.insert_feedback(f).unwrap());
    }
    let got = store.feedback_with_events("ro", 0, 10).unwrap();
    let seen: Vec<_> = got
        .iter()
        .map(|(e, f)| (e.request_id.as_str(), f.clone()))
        .collect();
    assert_eq!(
        seen,
        vec![("early", early), ("late", late_1.clone()), ("late", late_2)]
    );
    // The event is the whole stored event, served text included.
    assert_eq!(got[0].0, store.get_event("early").unwrap().unwrap());
    // Since and limit apply to the events' time and the joined rows.
    let got = store.feedback_with_events("ro", 20, 1).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0.request_id.as_str(), &got[0].1), ("late", &late_1));
    assert!(
        store
            .feedback_with_events("none", 0, 10)
            .unwrap()
            .is_empty()
    );
}

pub fn feedback_needs_a_known_request(store: &dyn Store) {
    let fb = Feedback {
        request_id: "r1".into(),
        ts_ms: 5,
        thumbs: Some(Thumbs::Down),
        outcome: Some(EditOutcome::Edited),
        final_text: Some("fixed text".into()),
    };
    assert!(!store.insert_feedback(&fb).unwrap());
    assert!(store.feedback_for("r1").unwrap().is_empty());

    store.insert_events(&[event("r1", "ro", 1)]).unwrap();
    assert!(store.insert_feedback(&fb).unwrap());
    let second = Feedback {
        request_id: "r1".into(),
        ts_ms: 6,
        thumbs: Some(Thumbs::Up),
        outcome: None,
        final_text: None,
    };
    assert!(store.insert_feedback(&second).unwrap());
    let third = Feedback {
        outcome: Some(EditOutcome::SentUnchanged),
        ..second.clone()
    };
    let fourth = Feedback {
        thumbs: None,
        outcome: Some(EditOutcome::Rejected),
        ..second.clone()
    };
    assert!(store.insert_feedback(&third).unwrap());
    assert!(store.insert_feedback(&fourth).unwrap());
    assert_eq!(
        store.feedback_for("r1").unwrap(),
        vec![fb, second, third, fourth]
    );
}

pub fn rollout_state_upserts(store: &dyn Store) {
    assert_eq!(store.load_rollout_state("ro").unwrap(), None);
    store.save_rollout_state("ro", r#"{"stage":0}"#, 1).unwrap();
    store
        .save_rollout_state("other", r#"{"stage":4}"#, 1)
        .unwrap();
    store.save_rollout_state("ro", r#"{"stage":1}"#, 2).unwrap();
    assert_eq!(
        store.load_rollout_state("ro").unwrap().as_deref(),
        Some(r#"{"stage":1}"#)
    );
    assert_eq!(
        store.load_rollout_state("other").unwrap().as_deref(),
        Some(r#"{"stage":4}"#)
    );
}

pub fn audit_log_keeps_the_latest_entries_oldest_first(store: &dyn Store) {
    let entry = |i: i64, rollout: &str| AuditEntry {
        rollout: rollout.into(),
        ts_ms: 1000 + i,
        actor: "controller".into(),
        action: format!("step{i}"),
        from_state: format!("s{i}"),
        to_state: format!("s{}", i + 1),
        reason: "gates passed".into(),
        details: serde_json::json!({"n": i, "ok": true}),
    };
    for i in 0..5 {
        store.append_audit(&entry(i, "ro")).unwrap();
        store.append_audit(&entry(i, "other")).unwrap();
    }
    assert_eq!(
        store.audit_log("ro", 100).unwrap(),
        (0..5).map(|i| entry(i, "ro")).collect::<Vec<_>>()
    );
    assert_eq!(
        store.audit_log("ro", 2).unwrap(),
        vec![entry(3, "ro"), entry(4, "ro")]
    );
    assert!(store.audit_log("missing", 10).unwrap().is_empty());
}

pub fn tenant_caps_upsert_per_rollout(store: &dyn Store) {
    store.save_tenant_cap("ro", "enterprise", 0.0, 1).unwrap();
    store.save_tenant_cap("ro", "acme", 5.0, 2).unwrap();
    store.save_tenant_cap("ro", "acme", 25.0, 3).unwrap();
    store.save_tenant_cap("other", "acme", 1.0, 4).unwrap();
    let caps = store.tenant_caps("ro").unwrap();
    assert_eq!(
        caps.into_iter().collect::<Vec<_>>(),
        [("acme".to_string(), 25.0), ("enterprise".to_string(), 0.0)]
    );
    assert!(store.tenant_caps("none").unwrap().is_empty());
}

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

pub fn outcomes_are_summed_per_name_and_cohort_and_repeats_skipped(store: &dyn Store) {
    let os = store.outcomes().expect("the backend stores outcomes");
    let batch = vec![
        outcome(Some("r1"), "csat", Cohort::Control, 80.0, 100),
        outcome(Some("r2"), "csat", Cohort::Control, 60.0, 200),
        outcome(Some("r3"), "csat", Cohort::Canary, 50.0, 300),
        outcome(None, "csat", Cohort::Canary, 40.0, 400),
        outcome(None, "csat", Cohort::Canary, 40.0, 400),
        outcome(Some("r1"), "refund", Cohort::Control, 1.0, 100),
        outcome(Some("old"), "csat", Cohort::Canary, 0.0, 10),
        // Names in byte order: upper case before lower case, whatever the collation.
        outcome(Some("r1"), "Zeta", Cohort::Control, 2.0, 100),
    ];
    assert_eq!(os.insert_outcomes(&batch).unwrap(), 8);
    // Retrying the batch adds only the key-only outcomes (they carry no request id).
    assert_eq!(os.insert_outcomes(&batch).unwrap(), 2);
    // A repeat inside one batch is skipped too.
    let twice = [
        outcome(Some("r9"), "csat", Cohort::Control, 1.0, 100),
        outcome(Some("r9"), "csat", Cohort::Control, 1.0, 100),
    ];
    assert_eq!(os.insert_outcomes(&twice).unwrap(), 1);
    assert_eq!(os.insert_outcomes(&[]).unwrap(), 0);
    let m = os.outcome_moments("ro", 100).unwrap();
    let moments = |name: &str, cohort, n, sum, sum_sq| OutcomeMoments {
        name: name.into(),
        cohort,
        n,
        sum,
        sum_sq,
    };
    assert_eq!(
        m,
        vec![
            moments("Zeta", Cohort::Control, 1, 2.0, 4.0),
            moments("csat", Cohort::Canary, 5, 210.0, 2500.0 + 4.0 * 1600.0),
            moments("csat", Cohort::Control, 3, 141.0, 6400.0 + 3600.0 + 1.0),
            moments("refund", Cohort::Control, 1, 1.0, 1.0),
        ]
    );
    assert!(os.outcome_moments("other", 0).unwrap().is_empty());
}
