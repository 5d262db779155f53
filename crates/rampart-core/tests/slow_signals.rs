//! The slow gate's decisions, table by table: when a signal breaches, how a breach must be
//! sustained at every check, what `pin` and `rollback` do, and how a pinned rollout resumes.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "rollout_common.rs"]
mod common;

use std::time::Duration;

use rampart_core::config::{
    GuardrailMode, RolloutConfig, SlowAction, SlowSignalConfig, SlowThreshold,
};
use rampart_core::rollout::slow_signals::{SlowStatus, evaluate_signal};
use rampart_core::rollout::{
    Action, AlertKind, Command, CommandKind, OutcomeObservations, Phase, RolloutState,
    SignalOutcomes, apply, step_slow,
};

const H: i64 = 3_600_000;

fn signal(action: SlowAction) -> SlowSignalConfig {
    SlowSignalConfig {
        name: "csat".into(),
        higher_is_better: true,
        threshold: SlowThreshold::Absolute(1.0),
        sustain: Duration::from_secs(2 * 3600),
        check_interval: Duration::from_secs(3600),
        min_samples: 20,
        action,
        alpha: 0.05,
    }
}

fn cfg(action: SlowAction) -> RolloutConfig {
    let mut c = common::rollout(
        vec![
            common::stage("canary-5", 5.0, 10.0, 3600 * 1000, None),
            common::stage("full", 100.0, 0.0, 0, None),
        ],
        GuardrailMode::Sequential,
    );
    c.slow_signals = vec![signal(action)];
    c
}

/// `n` outcomes per cohort alternating around each mean (sd ≈ 10).
fn outcomes(n: u64, control: f64, canary: f64) -> OutcomeObservations {
    let mut o = SignalOutcomes::default();
    for i in 0..n {
        let d = if i % 2 == 0 { 10.0 } else { -10.0 };
        o.control.push(control + d);
        o.canary.push(canary + d);
    }
    [("csat".to_string(), o)].into_iter().collect()
}

#[test]
fn the_test_needs_samples_and_an_interval_beyond_the_tolerated_drop() {
    let s = signal(SlowAction::Pin);
    let cases: [(u64, f64, f64, SlowStatus); 5] = [
        (10, 70.0, 40.0, SlowStatus::InsufficientSamples),
        (400, 70.0, 70.0, SlowStatus::Ok),
        (400, 70.0, 69.5, SlowStatus::Ok), // inside the tolerated 1-point drop
        (400, 70.0, 65.0, SlowStatus::Breached),
        (400, 70.0, 75.0, SlowStatus::Ok), // better is never a breach
    ];
    for (n, c, t, want) in cases {
        let obs = outcomes(n, c, t);
        let r = evaluate_signal(&s, &obs["csat"]);
        assert_eq!(r.status, want, "n {n}, control {c}, canary {t}: {r:?}");
        if want == SlowStatus::Breached {
            assert!(r.upper.unwrap() < -1.0 && r.lower.unwrap() < r.upper.unwrap());
            assert_eq!(r.limit, -1.0);
        }
    }
    // Lower is better: an increase breaches.
    let refunds = SlowSignalConfig {
        higher_is_better: false,
        ..signal(SlowAction::Pin)
    };
    let up = evaluate_signal(&refunds, &outcomes(400, 10.0, 15.0)["csat"]);
    assert_eq!(up.status, SlowStatus::Breached);
    let down = evaluate_signal(&refunds, &outcomes(400, 10.0, 5.0)["csat"]);
    assert_eq!(down.status, SlowStatus::Ok);
    // Relative: 10 % of a control mean of 70 = 7 points tolerated.
    let rel = SlowSignalConfig {
        threshold: SlowThreshold::Relative(0.10),
        ..signal(SlowAction::Pin)
    };
    assert_eq!(
        evaluate_signal(&rel, &outcomes(400, 70.0, 65.0)["csat"]).status,
        SlowStatus::Ok
    );
    assert_eq!(
        evaluate_signal(&rel, &outcomes(400, 70.0, 55.0)["csat"]).status,
        SlowStatus::Breached
    );
    // Constant arms: not computable, never a breach.
    let mut flat = SignalOutcomes::default();
    (0..50).for_each(|_| {
        flat.control.push(1.0);
        flat.canary.push(0.0)
    });
    assert_eq!(evaluate_signal(&s, &flat).status, SlowStatus::NotComputable);
}

#[test]
fn a_breach_must_hold_at_every_check_for_sustain_then_pins() {
    let c = cfg(SlowAction::Pin);
    let bad = outcomes(400, 70.0, 60.0);
    let good = outcomes(400, 70.0, 70.0);
    let s0 = RolloutState::new(0);
    // First check breaches: the streak starts, only the state is persisted.
    let a = step_slow(&c, &s0, &bad, H);
    assert_eq!(a.actions, vec![Action::PersistState]);
    assert_eq!(a.state.slow.tracks["csat"].breach_since_ms, Some(H));
    // Not due again before check_interval: nothing changes.
    let b = step_slow(&c, &a.state, &good, H + H / 2);
    assert!(b.actions.is_empty());
    assert_eq!(b.state, a.state);
    // A clean check breaks the streak.
    let broken = step_slow(&c, &a.state, &good, 2 * H);
    assert_eq!(broken.state.slow.tracks["csat"].breach_since_ms, None);
    // Breached at every check for 2 h: pinned.
    let s2 = step_slow(&c, &a.state, &bad, 2 * H).state;
    assert!(matches!(s2.phase, Phase::Stage { .. }));
    let pin = step_slow(&c, &s2, &bad, 3 * H);
    let Phase::Pinned { index, signals, .. } = &pin.state.phase else {
        panic!("expected pinned, got {:?}", pin.state.phase);
    };
    assert_eq!(
        (*index, signals.as_slice()),
        (0, ["csat".to_string()].as_slice())
    );
    let view = pin.state.view(&c);
    assert_eq!(
        (view.percent, view.shadow_percent, view.stage.as_str()),
        (0.0, 10.0, "pinned")
    );
    assert!(matches!(&pin.actions[0], Action::SetView { view } if view.percent == 0.0));
    let audit = pin.actions.iter().find_map(|a| match a {
        Action::Audit {
            action,
            details,
            reason,
            ..
        } => Some((action, details, reason)),
        _ => None,
    });
    let (action, details, reason) = audit.unwrap();
    assert_eq!(action, "pin");
    assert!(
        reason.contains("csat") && reason.contains("limit -1.00"),
        "{reason}"
    );
    assert_eq!(details["slow_signals"][0]["status"], "breached");
    assert!(details["slow_signals"][0]["upper"].as_f64().unwrap() < -1.0);
    assert!(
        pin.actions
            .iter()
            .any(|a| matches!(a, Action::Alert(al) if al.kind == AlertKind::Hold))
    );
    // The percent history records the pin, for key-only attribution.
    assert_eq!(pin.state.percent_at(&c, 3 * H - 1), 5.0);
    assert_eq!(pin.state.percent_at(&c, 3 * H), 0.0);
    // Pinned: no more checks, nothing but a human moves it.
    assert!(step_slow(&c, &pin.state, &bad, 10 * H).actions.is_empty());
    // A restart (JSON round trip) stays pinned, with its evidence.
    let json = serde_json::to_string(&pin.state).unwrap();
    let back: RolloutState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, pin.state);
}

#[test]
fn rollback_action_rolls_back() {
    let c = cfg(SlowAction::Rollback);
    let bad = outcomes(400, 70.0, 60.0);
    let mut s = RolloutState::new(0);
    for h in 1..=3 {
        s = step_slow(&c, &s, &bad, h * H).state;
    }
    assert!(matches!(s.phase, Phase::RolledBack { .. }), "{:?}", s.phase);
    assert_eq!(s.view(&c).percent, 0.0);
}

#[test]
fn only_a_human_resumes_a_pin_and_the_evidence_starts_afresh() {
    let c = cfg(SlowAction::Pin);
    let bad = outcomes(400, 70.0, 60.0);
    let mut s = RolloutState::new(0);
    for h in 1..=3 {
        s = step_slow(&c, &s, &bad, h * H).state;
    }
    assert_eq!(s.phase_name(), "pinned");
    let cmd = |kind| Command {
        kind,
        actor: "ana".into(),
        reason: "checked the tickets".into(),
        expected_stage: None,
    };
    assert!(apply(&c, &s, &cmd(CommandKind::Promote), 4 * H).is_err());
    assert!(apply(&c, &s, &cmd(CommandKind::Pause), 4 * H).is_err());
    let (resumed, actions) = apply(&c, &s, &cmd(CommandKind::Resume), 4 * H).unwrap();
    assert_eq!(resumed.phase, Phase::Stage { index: 0 });
    assert_eq!(resumed.stage_epoch_ms, 4 * H);
    assert_eq!(resumed.slow.since_ms, 4 * H);
    assert!(resumed.slow.tracks.is_empty());
    assert!(matches!(&actions[0], Action::SetView { view } if view.percent == 5.0));
    // A rollback from pinned is allowed too.
    let (rb, _) = apply(&c, &s, &cmd(CommandKind::Rollback), 4 * H).unwrap();
    assert_eq!(rb.phase_name(), "rolled_back");
}

#[test]
fn shadow_stages_and_rolled_back_rollouts_are_not_checked() {
    let mut c = cfg(SlowAction::Pin);
    c.stages[0].percent = 0.0;
    let bad = outcomes(400, 70.0, 60.0);
    let out = step_slow(&c, &RolloutState::new(0), &bad, H);
    assert!(out.actions.is_empty());
    assert_eq!(
        out.reports[0].status,
        SlowStatus::Breached,
        "reported, not acted on"
    );
}
