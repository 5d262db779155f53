//! Table-driven tests of the rollout state machine: every `step` transition, every command,
//! commands racing the controller, and recovery after a restart (JSON round trip).
#![allow(clippy::unwrap_used, clippy::type_complexity)]

#[path = "rollout_common.rs"]
mod common;

use rampart_core::config::{GuardrailMode, RolloutConfig};
use rampart_core::rollout::{
    Action, AlertKind, CohortCounts, Command, CommandError, CommandKind, HoldReason, Observations,
    PairedCounts, Phase, RolloutState, ShadowGateInput, Trigger, WindowCounts, apply, plan, step,
};

const S: i64 = 1000;

fn cfg() -> RolloutConfig {
    common::standard(GuardrailMode::Sequential)
}

fn cohort(requests: u64, errors: u64, refusals: u64) -> CohortCounts {
    CohortCounts {
        requests,
        errors,
        refusals,
        ..CohortCounts::default()
    }
}

fn at(index: usize, epoch: i64) -> RolloutState {
    RolloutState {
        phase: Phase::Stage { index },
        stage_epoch_ms: epoch,
        started_ms: 0,
        transitions: 0,
        ..RolloutState::new(0)
    }
}

/// Healthy traffic split as stage `percent` plans it, enough for every gate.
fn healthy(state: &RolloutState, percent: f64) -> Observations {
    let total = 400_000u64;
    let canary = (total as f64 * percent / 100.0) as u64;
    let control = total - canary;
    let c = cohort(control, control / 200, control / 100);
    let t = cohort(canary, canary / 200, canary / 100);
    let pairs = PairedCounts {
        pairs: 5_000,
        baseline_errors: 25,
        candidate_errors: 25,
        baseline_refusals: 50,
        candidate_refusals: 50,
        latency: None,
    };
    Observations {
        window: WindowCounts {
            control: c,
            canary: t,
            latency: None,
            custom: Vec::new(),
        },
        stage_since_ms: state.stage_epoch_ms,
        stage_control: c,
        stage_canary: t,
        paired_window: Some(pairs),
        paired_stage: Some(pairs),
        shadow_gate: None,
    }
}

/// Like `healthy` but the canary refuses 30 % of the time in the window (and in pairs).
fn refusing(state: &RolloutState, percent: f64) -> Observations {
    let mut o = healthy(state, percent);
    o.window.canary = cohort(2_000, 10, 600);
    if let Some(p) = o.paired_window.as_mut() {
        p.candidate_refusals = 1_500;
    }
    o
}

fn kinds(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .map(|a| match a {
            Action::SetView { .. } => "set_view",
            Action::PersistState => "persist",
            Action::Audit { .. } => "audit",
            Action::Alert(_) => "alert",
        })
        .collect()
}

fn alert_kind(actions: &[Action]) -> Option<AlertKind> {
    actions.iter().find_map(|a| match a {
        Action::Alert(al) => Some(al.kind),
        _ => None,
    })
}

fn view_percent(actions: &[Action]) -> Option<(f64, f64, String)> {
    actions.iter().find_map(|a| match a {
        Action::SetView { view } => Some((view.percent, view.shadow_percent, view.stage.clone())),
        _ => None,
    })
}

#[derive(Debug)]
enum Expect {
    Unchanged,
    Stage(usize),
    Holding(&'static str),
    RolledBack,
    Completed,
    Ready,
}

fn check(name: &str, got: &RolloutState, before: &RolloutState, want: &Expect) {
    let ok = match (want, &got.phase) {
        (Expect::Unchanged, _) => got == before,
        (Expect::Stage(i), Phase::Stage { index }) => index == i,
        (Expect::Holding(kind), Phase::Holding { reason, .. }) => {
            let k = match reason {
                HoldReason::Inconclusive { .. } => "inconclusive",
                HoldReason::SampleRatioMismatch { .. } => "srm",
                HoldReason::ConflictingSignals { .. } => "conflict",
            };
            k == *kind
        }
        (Expect::RolledBack, Phase::RolledBack { .. }) => true,
        (Expect::Completed, Phase::Completed { .. }) => true,
        (Expect::Ready, Phase::ReadyToDecommission { .. }) => true,
        _ => false,
    };
    assert!(ok, "{name}: expected {want:?}, got {:?}", got.phase);
}

#[test]
fn step_transitions() {
    let c = cfg();
    let paused = |i| RolloutState {
        phase: Phase::Paused {
            index: i,
            at_ms: 10 * S,
            actor: "ana".into(),
            reason: "look".into(),
        },
        ..at(i, 0)
    };
    let holding = |i| RolloutState {
        phase: Phase::Holding {
            index: i,
            at_ms: 10 * S,
            reason: HoldReason::Inconclusive { gates: vec![] },
        },
        ..at(i, 0)
    };
    let completed = RolloutState {
        phase: Phase::Completed { since_ms: 0 },
        ..at(0, 0)
    };
    let rolled = RolloutState {
        phase: Phase::RolledBack {
            at_ms: 0,
            from_index: 1,
            reason: "x".into(),
            trigger: Trigger::Controller,
        },
        ..at(1, 0)
    };
    let warm = 7 * 24 * 3600 * S;

    type Case = (
        &'static str,
        RolloutState,
        Box<dyn Fn(&RolloutState) -> Observations>,
        i64,
        Expect,
    );
    let cases: Vec<Case> = vec![
        (
            "shadow passes → canary-1",
            at(0, 0),
            Box::new(|s| healthy(s, 0.0)),
            61 * S,
            Expect::Stage(1),
        ),
        (
            "canary-1 passes → canary-5",
            at(1, 0),
            Box::new(|s| healthy(s, 1.0)),
            61 * S,
            Expect::Stage(2),
        ),
        (
            "canary-25 passes → completed",
            at(3, 0),
            Box::new(|s| healthy(s, 25.0)),
            61 * S,
            Expect::Completed,
        ),
        (
            "before min_duration: wait",
            at(2, 0),
            Box::new(|s| healthy(s, 5.0)),
            30 * S,
            Expect::Unchanged,
        ),
        (
            "too few samples: wait",
            at(2, 0),
            Box::new(|s| {
                let mut o = healthy(s, 5.0);
                o.stage_control = cohort(950, 5, 10);
                o.stage_canary = cohort(50, 0, 0);
                o
            }),
            120 * S,
            Expect::Unchanged,
        ),
        (
            "too few samples at max_duration: hold",
            at(2, 0),
            Box::new(|s| {
                let mut o = healthy(s, 5.0);
                o.stage_control = cohort(950, 5, 10);
                o.stage_canary = cohort(50, 0, 0);
                o
            }),
            3600 * S,
            Expect::Holding("inconclusive"),
        ),
        (
            "sample ratio mismatch: hold",
            at(2, 0),
            Box::new(|s| {
                let mut o = healthy(s, 5.0);
                o.stage_canary = cohort(30_000, 150, 300);
                o
            }),
            61 * S,
            Expect::Holding("srm"),
        ),
        (
            "stale stage counters: wait",
            at(2, 0),
            Box::new(|s| {
                let mut o = healthy(s, 5.0);
                o.stage_since_ms = -5 * S;
                o
            }),
            61 * S,
            Expect::Unchanged,
        ),
        (
            "canary refusals: kill switch",
            at(2, 0),
            Box::new(|s| refusing(s, 5.0)),
            20 * S,
            Expect::RolledBack,
        ),
        (
            "shadow pair refusals: kill switch",
            at(0, 0),
            Box::new(|s| refusing(s, 0.0)),
            20 * S,
            Expect::RolledBack,
        ),
        (
            "catastrophic errors: kill switch",
            at(1, 0),
            Box::new(|s| {
                let mut o = healthy(s, 1.0);
                o.window.canary = cohort(25, 20, 0);
                o
            }),
            5 * S,
            Expect::RolledBack,
        ),
        (
            "shadow: comparison engine sees refusal increase → hold",
            at(0, 0),
            Box::new(|s| {
                let mut o = healthy(s, 0.0);
                o.shadow_gate = Some(ShadowGateInput {
                    equivalence_ci_low: Some(0.9),
                    refusal_increase_significant: Some(true),
                    win_rate_ci_low: None,
                });
                o
            }),
            61 * S,
            Expect::Holding("conflict"),
        ),
        (
            "shadow: equivalence too low → wait",
            at(0, 0),
            Box::new(|s| {
                let mut o = healthy(s, 0.0);
                o.shadow_gate = Some(ShadowGateInput {
                    equivalence_ci_low: Some(0.5),
                    refusal_increase_significant: Some(false),
                    win_rate_ci_low: None,
                });
                o
            }),
            61 * S,
            Expect::Unchanged,
        ),
        (
            "paused + healthy: frozen",
            paused(1),
            Box::new(|s| healthy(s, 1.0)),
            600 * S,
            Expect::Unchanged,
        ),
        (
            "paused + breach: kill switch",
            paused(2),
            Box::new(|s| refusing(s, 5.0)),
            600 * S,
            Expect::RolledBack,
        ),
        (
            "holding + healthy: waits for a human",
            holding(2),
            Box::new(|s| healthy(s, 5.0)),
            600 * S,
            Expect::Unchanged,
        ),
        (
            "holding + breach: kill switch",
            holding(2),
            Box::new(|s| refusing(s, 5.0)),
            600 * S,
            Expect::RolledBack,
        ),
        (
            "completed, warm: stays",
            completed.clone(),
            Box::new(|s| healthy(s, 100.0)),
            warm - S,
            Expect::Unchanged,
        ),
        (
            "completed, warm period over",
            completed.clone(),
            Box::new(|s| healthy(s, 100.0)),
            warm,
            Expect::Ready,
        ),
        (
            "rolled back: terminal",
            rolled.clone(),
            Box::new(|s| refusing(s, 5.0)),
            99 * S,
            Expect::Unchanged,
        ),
    ];
    for (name, state, obs, now, want) in cases {
        let o = obs(&state);
        let (next, actions) = step(&c, &state, &o, now);
        check(name, &next, &state, &want);
        if matches!(want, Expect::Unchanged) {
            assert!(actions.is_empty(), "{name}: {actions:?}");
        } else {
            assert_eq!(next.transitions, state.transitions + 1, "{name}");
            let k = kinds(&actions);
            assert!(
                k.contains(&"persist") && k.contains(&"audit"),
                "{name}: {k:?}"
            );
        }
        // Determinism: the same inputs give the same outputs.
        assert_eq!(
            step(&c, &state, &o, now),
            (next.clone(), actions.clone()),
            "{name}"
        );
        match want {
            Expect::RolledBack => {
                assert_eq!(alert_kind(&actions), Some(AlertKind::Trip), "{name}");
                assert_eq!(
                    view_percent(&actions),
                    Some((0.0, 0.0, "rolled_back".into())),
                    "{name}"
                );
                assert_eq!(
                    kinds(&actions)[0],
                    "set_view",
                    "{name}: routing change first"
                );
            }
            Expect::Holding(_) => assert_eq!(alert_kind(&actions), Some(AlertKind::Hold), "{name}"),
            Expect::Stage(i) => {
                assert_eq!(alert_kind(&actions), Some(AlertKind::Advance), "{name}");
                assert_eq!(next.stage_epoch_ms, now, "{name}: new stage epoch");
                let s = &c.stages[i];
                assert_eq!(
                    view_percent(&actions),
                    Some((s.percent, s.shadow_percent, s.name.clone()))
                );
            }
            Expect::Completed => {
                assert_eq!(alert_kind(&actions), Some(AlertKind::Completed), "{name}");
                assert_eq!(
                    view_percent(&actions),
                    Some((100.0, 0.0, "completed".into()))
                );
            }
            _ => {}
        }
    }
}

fn cmd(kind: CommandKind) -> Command {
    Command::new(kind, "ana", "checking the refunds class")
}

#[test]
fn commands() {
    let c = cfg();
    let s2 = at(2, 0);
    // pause: keeps the split, stops shadowing, label `paused`
    let (p, actions) = apply(&c, &s2, &cmd(CommandKind::Pause), 10 * S).unwrap();
    assert!(matches!(p.phase, Phase::Paused { index: 2, .. }));
    assert_eq!(p.view(&c).percent, 5.0);
    assert_eq!(p.view(&c).stage, "paused");
    assert_eq!(alert_kind(&actions), Some(AlertKind::Hold));
    assert_eq!(
        apply(&c, &p, &cmd(CommandKind::Pause), 11 * S),
        Err(CommandError::AlreadyPaused)
    );
    // resume from pause: same stage, same epoch
    let (r, _) = apply(&c, &p, &cmd(CommandKind::Resume), 20 * S).unwrap();
    assert_eq!(r.phase, Phase::Stage { index: 2 });
    assert_eq!(r.stage_epoch_ms, 0);
    assert_eq!(
        apply(&c, &r, &cmd(CommandKind::Resume), 21 * S),
        Err(CommandError::NotPaused)
    );
    // resume from a hold: fresh epoch
    let held = RolloutState {
        phase: Phase::Holding {
            index: 2,
            at_ms: 5 * S,
            reason: HoldReason::SampleRatioMismatch {
                p_value: "1e-5".into(),
            },
        },
        ..s2.clone()
    };
    let (r2, _) = apply(&c, &held, &cmd(CommandKind::Resume), 30 * S).unwrap();
    assert_eq!(
        (r2.phase.clone(), r2.stage_epoch_ms),
        (Phase::Stage { index: 2 }, 30 * S)
    );
    // promote: next stage; from the last canary stage to completed; from completed to ready
    let (n, _) = apply(&c, &held, &cmd(CommandKind::Promote), 31 * S).unwrap();
    assert_eq!(n.phase, Phase::Stage { index: 3 });
    let (done, _) = apply(&c, &n, &cmd(CommandKind::Promote), 32 * S).unwrap();
    assert!(matches!(done.phase, Phase::Completed { .. }));
    let (ready, _) = apply(&c, &done, &cmd(CommandKind::Promote), 33 * S).unwrap();
    assert!(matches!(ready.phase, Phase::ReadyToDecommission { .. }));
    assert!(matches!(
        apply(&c, &ready, &cmd(CommandKind::Promote), 34 * S),
        Err(CommandError::NotAllowed { .. })
    ));
    // rollback: from anywhere but rolled back
    let (rb, actions) = apply(&c, &n, &cmd(CommandKind::Rollback), 40 * S).unwrap();
    assert!(matches!(
        &rb.phase,
        Phase::RolledBack { from_index: 3, trigger: Trigger::Operator { actor }, .. } if actor == "ana"
    ));
    assert_eq!(
        view_percent(&actions),
        Some((0.0, 0.0, "rolled_back".into()))
    );
    assert!(matches!(
        apply(&c, &rb, &cmd(CommandKind::Rollback), 41 * S),
        Err(CommandError::NotAllowed { .. })
    ));
    assert!(matches!(
        apply(&c, &rb, &cmd(CommandKind::Promote), 41 * S),
        Err(CommandError::NotAllowed { .. })
    ));
    assert_eq!(
        apply(&c, &rb, &cmd(CommandKind::Resume), 41 * S),
        Err(CommandError::NotPaused)
    );
    // reset: only after the cooldown (1 h)
    assert_eq!(
        apply(&c, &rb, &cmd(CommandKind::Reset), 40 * S + 3_599 * S),
        Err(CommandError::CooldownActive { remaining_ms: 1000 })
    );
    let (again, _) = apply(&c, &rb, &cmd(CommandKind::Reset), 40 * S + 3_600 * S).unwrap();
    assert_eq!(again.phase, Phase::Stage { index: 0 });
    assert_eq!(again.started_ms, 3_640 * S);
    assert!(matches!(
        apply(&c, &s2, &cmd(CommandKind::Reset), 0),
        Err(CommandError::NotAllowed { .. })
    ));
    // a command needs a reason
    assert_eq!(
        apply(&c, &s2, &Command::new(CommandKind::Rollback, "ana", " "), 0),
        Err(CommandError::MissingReason)
    );
}

#[test]
fn rollback_racing_an_advance_still_rolls_back() {
    let c = cfg();
    let s1 = at(1, 0);
    // The operator looked at canary-1; the controller advances to canary-5 first.
    let (advanced, _) = step(&c, &s1, &healthy(&s1, 1.0), 61 * S);
    assert_eq!(advanced.phase, Phase::Stage { index: 2 });
    let mut rb = cmd(CommandKind::Rollback);
    rb.expected_stage = Some("canary-1".into());
    let (rolled, actions) = apply(&c, &advanced, &rb, 61 * S).unwrap();
    assert!(matches!(
        rolled.phase,
        Phase::RolledBack { from_index: 2, .. }
    ));
    assert_eq!(view_percent(&actions).map(|v| v.0), Some(0.0));
    // …whereas a promote decided on the stale view is refused.
    let mut pr = cmd(CommandKind::Promote);
    pr.expected_stage = Some("canary-1".into());
    assert_eq!(
        apply(&c, &advanced, &pr, 61 * S),
        Err(CommandError::StaleStage {
            expected: "canary-1".into(),
            actual: "canary-5".into()
        })
    );
}

#[test]
fn trip_and_promote_in_the_same_tick_end_rolled_back_either_way() {
    let c = cfg();
    let s2 = at(2, 0);
    let now = 30 * S;
    // Controller first: the trip wins, the promote is refused.
    let (tripped, _) = step(&c, &s2, &refusing(&s2, 5.0), now);
    assert!(matches!(tripped.phase, Phase::RolledBack { .. }));
    assert!(apply(&c, &tripped, &cmd(CommandKind::Promote), now).is_err());
    // Promote first: the next tick still sees the breach in the window and trips.
    let (promoted, _) = apply(&c, &s2, &cmd(CommandKind::Promote), now).unwrap();
    assert_eq!(promoted.phase, Phase::Stage { index: 3 });
    let (after, actions) = step(&c, &promoted, &refusing(&promoted, 25.0), now);
    assert!(matches!(
        after.phase,
        Phase::RolledBack { from_index: 3, .. }
    ));
    assert_eq!(alert_kind(&actions), Some(AlertKind::Trip));
}

#[test]
fn state_survives_a_restart() {
    let c = cfg();
    let script: Vec<(i64, bool)> = vec![
        (61, false),
        (130, false),
        (140, false),
        (200, false),
        (260, true),
    ];
    let run = |mut s: RolloutState, from: usize, restart_at: Option<usize>| {
        let mut log = Vec::new();
        for (i, (t, bad)) in script.iter().enumerate().skip(from) {
            if restart_at == Some(i) {
                let json = serde_json::to_string(&s).unwrap();
                s = serde_json::from_str(&json).unwrap();
            }
            let pct = s.view(&c).percent;
            let o = if *bad {
                refusing(&s, pct)
            } else {
                healthy(&s, pct)
            };
            let (n, a) = step(&c, &s, &o, t * S);
            log.push((n.clone(), a));
            s = n;
        }
        log
    };
    let straight = run(RolloutState::new(0), 0, None);
    for restart in 0..script.len() {
        assert_eq!(
            run(RolloutState::new(0), 0, Some(restart)),
            straight,
            "restart before tick {restart}"
        );
    }
    // The script walks shadow → canary-1 → canary-5 → canary-25 and trips at the end.
    assert!(matches!(
        straight.last().unwrap().0.phase,
        Phase::RolledBack { .. }
    ));
    // The persisted form is stable, tagged JSON.
    let json = serde_json::to_value(&straight[1].0).unwrap();
    assert_eq!(json["phase"]["phase"], "stage");
}

#[test]
fn plan_sizes_stages() {
    let c = cfg();
    let p = plan(&c, 50.0, &[0.005, 0.01]);
    assert_eq!(p.len(), 5);
    let n = p[1].required_samples_per_cohort.unwrap();
    assert!((760..=770).contains(&n), "{n}");
    // canary-1 at 50 req/s: 0.5 canary req/s → ~1530 s.
    let d = p[1].expected_duration.unwrap().as_secs();
    assert!((1500..=1560).contains(&d), "{d}");
    // shadow at 20 %: 10 pairs/s → 77 s, but min_duration 60 s.
    assert!(p[0].expected_duration.unwrap().as_secs() >= 60);
    assert_eq!(p[4].required_samples_per_cohort, None);
    assert_eq!(p[4].expected_duration.unwrap(), c.keep_baseline_warm);
    assert!(plan(&c, 0.0, &[])[1].expected_duration.is_none());
}
