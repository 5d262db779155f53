//! Versioned rollout state: every control change is a compare-and-set on the row's version with
//! its tenant cap and audit rows in the same transaction.

use rampart_store::{AuditEntry, CasOutcome, RolloutChange, Store};

fn audit(rollout: &str, action: &str) -> AuditEntry {
    AuditEntry {
        rollout: rollout.into(),
        ts_ms: 7,
        actor: "test".into(),
        action: action.into(),
        from_state: "a".into(),
        to_state: "b".into(),
        reason: format!("{action} for a test"),
        details: serde_json::json!({"action": action}),
    }
}

fn change(rollout: &str, expected: i64, state: Option<&str>, action: &str) -> RolloutChange {
    RolloutChange {
        rollout: rollout.into(),
        expected_version: expected,
        state_json: state.map(str::to_string),
        tenant_cap: None,
        audit: vec![audit(rollout, action)],
        at_ms: 10 + expected,
    }
}

fn actions(store: &dyn Store, rollout: &str) -> Vec<String> {
    store
        .audit_log(rollout, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

pub fn a_change_is_a_compare_and_set_with_its_audit_rows(store: &dyn Store) {
    assert_eq!(store.load_rollout("ro").unwrap(), None);
    // A cap alone cannot create the row.
    let mut cap = change("ro", 0, None, "tenant_cap");
    cap.tenant_cap = Some(("acme".into(), 5.0));
    assert_eq!(
        store.apply_change(&cap).unwrap(),
        CasOutcome::Conflict { current: None }
    );
    let first = change("ro", 0, Some("{\"s\":1}"), "init");
    assert_eq!(
        store.apply_change(&first).unwrap(),
        CasOutcome::Applied { version: 1 }
    );
    // A second creation loses and sees the first.
    let CasOutcome::Conflict { current: Some(cur) } = store
        .apply_change(&change("ro", 0, Some("{\"s\":9}"), "init"))
        .unwrap()
    else {
        panic!("a second creation must conflict")
    };
    assert_eq!((cur.state_json.as_str(), cur.version), ("{\"s\":1}", 1));
    assert_eq!(
        store
            .apply_change(&change("ro", 1, Some("{\"s\":2}"), "pause"))
            .unwrap(),
        CasOutcome::Applied { version: 2 }
    );
    // Made on version 1, which is gone: nothing written, not even its audit row.
    let stale = store
        .apply_change(&change("ro", 1, Some("{\"s\":3}"), "promote"))
        .unwrap();
    let CasOutcome::Conflict { current: Some(cur) } = stale else {
        panic!("a stale change must conflict: {stale:?}")
    };
    assert_eq!((cur.state_json.as_str(), cur.version), ("{\"s\":2}", 2));
    assert_eq!(actions(store, "ro"), ["init", "pause"]);
    // A tenant cap keeps the state, bumps the version, and is read back with it.
    let mut cap = change("ro", 2, None, "tenant_cap");
    cap.tenant_cap = Some(("acme".into(), 5.0));
    assert_eq!(
        store.apply_change(&cap).unwrap(),
        CasOutcome::Applied { version: 3 }
    );
    let row = store.load_rollout("ro").unwrap().unwrap();
    assert_eq!(row.state_json, "{\"s\":2}");
    assert_eq!(row.version, 3);
    assert_eq!(row.tenant_caps.get("acme"), Some(&5.0));
    assert_eq!(
        store.load_rollout_state("ro").unwrap().unwrap(),
        "{\"s\":2}"
    );
    assert_eq!(actions(store, "ro"), ["init", "pause", "tenant_cap"]);
    store
        .apply_change(&change("other", 0, Some("{}"), "init"))
        .unwrap();
    let versions = store.rollout_versions().unwrap();
    assert_eq!(versions.get("ro"), Some(&3));
    assert_eq!(versions.get("other"), Some(&1));
    // The legacy save also moves the version on, so pollers see it.
    store.save_rollout_state("other", "{\"s\":5}", 20).unwrap();
    assert_eq!(store.rollout_versions().unwrap().get("other"), Some(&2));
}

pub fn racing_changes_on_one_version_apply_once(store: &dyn Store) {
    store
        .apply_change(&change("ro", 0, Some("{}"), "init"))
        .unwrap();
    let outcomes: Vec<CasOutcome> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..6)
            .map(|i| {
                s.spawn(move || {
                    let json = format!("{{\"by\":{i}}}");
                    store
                        .apply_change(&change("ro", 1, Some(&json), &format!("racer{i}")))
                        .unwrap()
                })
            })
            .collect();
        racers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<usize> = (0..6)
        .filter(|i| outcomes[*i] == CasOutcome::Applied { version: 2 })
        .collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    let row = store.load_rollout("ro").unwrap().unwrap();
    assert_eq!(row.version, 2);
    assert_eq!(row.state_json, format!("{{\"by\":{}}}", won[0]));
    assert_eq!(
        actions(store, "ro"),
        ["init".to_string(), format!("racer{}", won[0])]
    );
}
