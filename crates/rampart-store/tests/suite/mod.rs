//! The store's behaviour, whatever the backend: each case takes a fresh, empty store.
//! `store_suite!` turns every case into a `#[test]` of the including file, over the store its
//! `open` expression gives.
#![allow(dead_code)]

use rampart_core::compare::judge::Verdict;
use rampart_core::outcomes::OutcomeRecord;
use rampart_core::record::{
    EditOutcome, Feedback, Outcome, Pair, PairJudgment, RequestEvent, Thumbs,
};
use rampart_core::routing::Cohort;
use rampart_store::{AuditEntry, OutcomeMoments, PairFilter, PairFlag, PairQuery, Store};

use crate::common::{event, pair};

mod aggregates;
mod cas;
pub use aggregates::*;
pub use cas::*;

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

pub fn pairs_round_trip_every_field(store: &dyn Store) {
    let p = pair("r1", "ro", 7, Some("refunds"));
    let mut bare = pair("r2", "ro", 8, None);
    bare.prompt = None;
    bare.baseline.text = None;
    bare.key_hash = None;
    store.insert_pairs(&[p.clone(), bare.clone()]).unwrap();
    let got = store.recent_pairs("ro", 10, None, None).unwrap();
    assert_eq!(got, vec![bare, p.clone()]);
    // The JSON, the cached flag and the None text survive.
    assert_eq!(got[1].candidate.tool_calls, p.candidate.tool_calls);
    assert!(got[1].candidate.cached && !got[1].baseline.cached);
    assert_eq!(got[1].candidate.text, None);
    assert_eq!(store.count_pairs("ro").unwrap(), 2);
    assert_eq!(store.count_pairs("other").unwrap(), 0);

    // Same (rollout, request id) again: skipped. Another rollout: kept.
    store.insert_pairs(std::slice::from_ref(&p)).unwrap();
    assert_eq!(store.count_pairs("ro").unwrap(), 2);
    store.insert_pairs(&[pair("r1", "other", 7, None)]).unwrap();
    assert_eq!(store.count_pairs("other").unwrap(), 1);
}

pub fn recent_pairs_newest_first_with_filters(store: &dyn Store) {
    let pairs: Vec<_> = (0..20)
        .map(|i| {
            let class = if i % 2 == 0 { "refunds" } else { "billing" };
            pair(&format!("p{i}"), "ro", i * 10, Some(class))
        })
        .chain([pair("x", "other", 500, Some("refunds"))])
        .collect();
    store.insert_pairs(&pairs).unwrap();
    let ids = |v: Vec<rampart_core::record::Pair>| {
        v.into_iter().map(|p| p.request_id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.recent_pairs("ro", 3, None, None).unwrap()),
        ["p19", "p18", "p17"]
    );
    assert_eq!(
        ids(store.recent_pairs("ro", 3, Some("refunds"), None).unwrap()),
        ["p18", "p16", "p14"]
    );
    assert_eq!(
        ids(store.recent_pairs("ro", 100, None, Some(170)).unwrap()),
        ["p19", "p18", "p17"]
    );
    assert_eq!(
        ids(store
            .recent_pairs("ro", 100, Some("billing"), Some(150))
            .unwrap()),
        ["p19", "p17", "p15"]
    );
    assert!(
        store
            .recent_pairs("ro", 10, Some("none"), None)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.recent_pairs("ro", 100, None, None).unwrap().len(), 20);
}

/// Pairs whose flags are known by construction: both sides answer, and the candidate either
/// says the same (no flag), refuses with the same words (`refusal` only: the texts still
/// match), says the same without the baseline's bullets (`format_change` only), or says
/// something else (`low_similarity` only).
fn kind_pair(id: &str, rollout: &str, ts_ms: i64, class: &str, tenant: &str, kind: usize) -> Pair {
    let mut p = pair(id, rollout, ts_ms, Some(class));
    p.tenant = Some(tenant.into());
    p.tools = None;
    p.embedding_similarity = None;
    let same = "Your refund is on its way and should arrive within five days.";
    p.baseline.text = Some(same.into());
    p.candidate = p.baseline.clone();
    p.candidate.variant = "v2".into();
    match kind {
        0 => {}
        1 => p.candidate.refusal = true,
        2 => {
            p.baseline.text = Some("- your refund\n- is on its way".into());
            p.candidate.text = Some("your refund is on its way".into());
        }
        _ => {
            p.candidate.text =
                Some("Please contact the exchange desk about today's currency rates.".into())
        }
    }
    p
}

/// (request id, ts_ms, class, tenant, kind) of a [`kind_pair`].
type Spec = (String, i64, &'static str, &'static str, usize);

const KIND_FLAGS: [&[PairFlag]; 4] = [
    &[],
    &[PairFlag::Refusal],
    &[PairFlag::FormatChange],
    &[PairFlag::LowSimilarity],
];

pub fn pairs_page_filters_by_class_tenant_and_flag_and_pages_by_cursor(store: &dyn Store) {
    let classes = ["refunds", "billing"];
    let tenants = ["acme", "globex", "initech"];
    // Two pairs per timestamp, so the cursor has ties to break; another rollout's pairs
    // interleaved.
    let spec: Vec<Spec> = (0..48)
        .map(|i: usize| {
            let kind = (i * 7 / 3) % 4;
            (
                format!("p{i:02}"),
                (i / 2) as i64 * 10,
                classes[i % 2],
                tenants[i % 3],
                kind,
            )
        })
        .collect();
    let mut pairs = Vec::new();
    for (id, ts, class, tenant, kind) in &spec {
        pairs.push(kind_pair(id, "ro", *ts, class, tenant, *kind));
        pairs.push(kind_pair(id, "other", *ts, class, tenant, (*kind + 1) % 4));
    }
    store.insert_pairs(&pairs).unwrap();

    // Expected: those `keep` keeps, newest first (later inserted first on a tie).
    let expect = |keep: &dyn Fn(&Spec) -> bool| -> Vec<String> {
        spec.iter()
            .rev()
            .filter(|s| keep(s))
            .map(|s| s.0.clone())
            .collect()
    };
    // Every page of `q` with `limit`, following the cursor.
    let walk = |q: &PairQuery, limit: usize| -> Vec<String> {
        let mut q = q.clone();
        let mut seen = Vec::new();
        loop {
            let page = store.pairs_page("ro", &q, limit).unwrap();
            assert!(page.pairs.len() <= limit);
            for p in &page.pairs {
                let s = spec.iter().find(|s| s.0 == p.pair.request_id).unwrap();
                assert_eq!(p.pair.rollout, "ro");
                assert_eq!(p.flags, KIND_FLAGS[s.4], "{}", s.0);
                seen.push(p.pair.request_id.clone());
            }
            match page.next {
                Some(next) => {
                    assert_eq!(page.pairs.len(), limit);
                    q.before = Some(next);
                }
                None => return seen,
            }
        }
    };
    let all = PairQuery::default();
    assert_eq!(walk(&all, 5), expect(&|_| true));
    assert_eq!(walk(&all, 48), expect(&|_| true));
    for tenant in tenants {
        let q = PairQuery {
            tenant: Some(tenant.into()),
            ..PairQuery::default()
        };
        assert_eq!(walk(&q, 3), expect(&|s| s.3 == tenant), "{tenant}");
    }
    for (kind, flags) in KIND_FLAGS.iter().enumerate().skip(1) {
        let flag = flags[0];
        let q = PairQuery {
            flag: Some(flag),
            ..PairQuery::default()
        };
        let want = expect(&|s| s.4 == kind);
        assert!(!want.is_empty());
        assert_eq!(walk(&q, 4), want, "{flag:?}");
        // Every filter at once, and a time bound.
        let q = PairQuery {
            flag: Some(flag),
            class: Some("billing".into()),
            tenant: Some("globex".into()),
            since_ms: Some(60),
            before: None,
        };
        let want = expect(&|s| s.4 == kind && s.2 == "billing" && s.3 == "globex" && s.1 >= 60);
        assert_eq!(walk(&q, 2), want, "{flag:?} with every filter");
    }
    let q = PairQuery {
        class: Some("refunds".into()),
        tenant: Some("initech".into()),
        ..PairQuery::default()
    };
    assert_eq!(
        walk(&q, 2),
        expect(&|s| s.2 == "refunds" && s.3 == "initech")
    );
    let none = PairQuery {
        tenant: Some("nobody".into()),
        ..PairQuery::default()
    };
    let page = store.pairs_page("ro", &none, 10).unwrap();
    assert!(page.pairs.is_empty() && page.next.is_none());
}

pub fn for_each_pair_and_its_features_visit_all_in_id_order_across_pages(store: &dyn Store) {
    // More than one page of pairs (1000) and of features (4096), interleaved with another
    // rollout, timestamps not monotonic.
    let pairs: Vec<_> = (0..4_500)
        .flat_map(|i| {
            [
                pair(&format!("p{i}"), "ro", (i * 7919) % 1000, None),
                pair(&format!("q{i}"), "other", i, None),
            ]
        })
        .collect();
    for chunk in pairs.chunks(1000) {
        store.insert_pairs(chunk).unwrap();
    }
    let mut seen = Vec::new();
    store
        .for_each_pair("ro", &mut |p| seen.push(p.request_id))
        .unwrap();
    let expected: Vec<_> = (0..4_500).map(|i| format!("p{i}")).collect();
    assert_eq!(seen, expected);
    let mut seen = Vec::new();
    store
        .for_each_pair_features("ro", &PairFilter::default(), &mut |f| {
            seen.push(f.request_id)
        })
        .unwrap();
    assert_eq!(seen, expected);
    let mut none = 0;
    store.for_each_pair("missing", &mut |_| none += 1).unwrap();
    assert_eq!(none, 0);
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

/// Pairs that exercise every stored feature: formats, JSON and tool schemas, refusal,
/// truncation, the cache, a failed side, non-ASCII text and an embedding similarity.
pub fn varied_pairs() -> Vec<rampart_core::record::Pair> {
    let texts = [
        ("| a | b |\n|---|---|\n| 1 | 2 |", "- one\n- two\n1. first"),
        (
            "```rust\nfn main() {}",
            "See [1] and (Smith, 2020) at https://example.com",
        ),
        ("{\"a\": 1}", "{\"a\": 1,"),
        ("Grüße aus Köln, ça va ?", "Grüße aus Köln — ça va?"),
        ("", "Something"),
    ];
    let mut out = Vec::new();
    for (i, (b, c)) in texts.iter().enumerate() {
        let mut p = pair(&format!("f{i}"), "ro", 100 + i as i64, Some("refunds"));
        p.stage = if i < 3 { "shadow" } else { "shadow-2" }.into();
        p.baseline.text = Some(b.to_string());
        p.candidate.text = Some(c.to_string());
        p.baseline.error = None;
        p.candidate.error = None;
        p.candidate.tool_calls = None;
        p.tools = None;
        p.embedding_similarity = None;
        out.push(p);
    }
    out[2].response_format = Some(serde_json::json!({"type": "json_object"}));
    out[3].embedding_similarity = Some(0.93);
    out[0].candidate.finish_reason = Some("length".into());
    out[1].baseline.refusal = true;
    out[1].candidate.cached = true;
    out[4].candidate.error = Some("timeout".into());
    out[0].judge = Some(PairJudgment {
        model: "judge-model".into(),
        first: Some(Verdict::A),
        second: Some(Verdict::Tie),
        cost_usd: 0.002,
        error: None,
    });
    out[1].judge = Some(PairJudgment {
        model: "judge-model".into(),
        first: None,
        second: Some(Verdict::B),
        cost_usd: 0.001,
        error: Some("timeout".into()),
    });
    // The fixture's tool-call pair: a schema, and arguments that break it on one side.
    let mut t = pair("f5", "ro", 200, None);
    t.stage = "shadow-2".into();
    t.candidate.error = None;
    t.tools = Some(
        serde_json::json!([{"type": "function", "function": {"name": "refund",
        "parameters": {"type": "object", "properties": {"order": {"type": "integer"}},
        "required": ["order"]}}}]),
    );
    t.baseline.tool_calls = Some(serde_json::json!([{"type": "function",
        "function": {"name": "refund", "arguments": "{\"order\": \"x\"}"}}]));
    out.push(t);
    out
}

/// What the store should give back for a pair: its features without the excerpts.
pub fn expected_features(p: &rampart_core::record::Pair) -> rampart_core::compare::PairFeatures {
    let mut f = rampart_core::compare::pair_features(p);
    f.baseline_excerpt.clear();
    f.candidate_excerpt.clear();
    f
}

pub fn pair_features_are_stored_with_the_pair_and_read_back_without_texts(store: &dyn Store) {
    let pairs = varied_pairs();
    store.insert_pairs(&pairs).unwrap();
    // A retried batch neither duplicates pairs nor features.
    store.insert_pairs(&pairs).unwrap();
    store.insert_pairs(&[pair("x", "other", 1, None)]).unwrap();

    let mut seen = Vec::new();
    store
        .for_each_pair_features("ro", &PairFilter::default(), &mut |f| seen.push(f))
        .unwrap();
    let expected: Vec<_> = pairs.iter().map(expected_features).collect();
    assert_eq!(seen, expected);
    // The features really are distinct per pair (the fixture exercises them).
    assert!(seen[0].baseline.markdown.table && seen[0].candidate.truncated);
    assert_eq!(seen[2].candidate.json_valid, Some(false));
    assert_eq!(seen[5].baseline.tool_calls_valid, Some(false));
    assert_eq!(seen[3].embedding_similarity, Some(0.93));
    assert!(seen[4].equivalence.is_none() && seen[1].candidate.cached);
    assert!(
        seen[0]
            .judge
            .is_some_and(|j| !j.failed && j.second == Some(Verdict::Tie))
    );
    assert!(seen[1].judge.is_some_and(|j| j.failed) && seen[2].judge.is_none());

    let ids = |v: &[rampart_core::compare::PairFeatures]| {
        v.iter().map(|f| f.request_id.clone()).collect::<Vec<_>>()
    };
    let mut stage = Vec::new();
    let filter = PairFilter {
        stage: Some("shadow".into()),
        since_ms: Some(101),
    };
    store
        .for_each_pair_features("ro", &filter, &mut |f| stage.push(f))
        .unwrap();
    assert_eq!(ids(&stage), ["f1", "f2"]);
    let recent = store
        .recent_pair_features("ro", &PairFilter::default(), 2)
        .unwrap();
    assert_eq!(ids(&recent), ["f5", "f4"]);
    let recent = store.recent_pair_features("ro", &filter, 10).unwrap();
    assert_eq!(ids(&recent), ["f2", "f1"]);

    // The whole pair, texts included, by request id.
    assert_eq!(
        store.get_pair("ro", "f3").unwrap().as_ref(),
        Some(&pairs[3])
    );
    assert_eq!(store.get_pair("ro", "nope").unwrap(), None);
    assert_eq!(store.get_pair("other", "f3").unwrap(), None);
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

pub fn features_a_pair_carries_are_stored_as_given(store: &dyn Store) {
    let mut p = varied_pairs().remove(3);
    let mut given = expected_features(&p);
    // Distinguishable from what the store would compute itself.
    given.similarity = 0.123;
    given.baseline.opening = Some("given by the caller".into());
    p.features = Some(Box::new(given.clone()));
    store.insert_pairs(&[p]).unwrap();
    let got = store
        .recent_pair_features("ro", &PairFilter::default(), 1)
        .unwrap();
    assert_eq!(got, vec![given]);
    // The pair read back carries none: features live in their own table.
    assert!(
        store
            .get_pair("ro", "f3")
            .unwrap()
            .unwrap()
            .features
            .is_none()
    );
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
