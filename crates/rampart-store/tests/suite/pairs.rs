//! Shadow pairs: every field round-trips, reads newest first or page by page under class,
//! tenant and flag filters, and each pair's features are stored beside it.

use rampart_core::compare::judge::Verdict;
use rampart_core::record::{Pair, PairJudgment};
use rampart_store::{PairFilter, PairFlag, PairQuery, Store};

use crate::common::pair;

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
