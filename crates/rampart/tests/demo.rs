//! `rampart demo --json` ends as each scenario says it must.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use serde_json::Value;

fn run_demo(scenario: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["demo", "--scenario", scenario, "--json"])
        .env("RAMPART_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "no output; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

#[test]
fn regression_is_rolled_back_by_the_kill_switch() {
    let s = run_demo("regression");
    assert_eq!(s["final_state"], "rolled_back", "{s}");
    let reason = s["reason"].as_str().unwrap();
    assert!(reason.contains("refusal_rate"), "reason: {reason}");
    let trip = s["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["to"] == "rolled_back")
        .unwrap();
    assert_eq!(trip["action"], "kill_switch");
    assert!(s["cohorts"]["control"].as_u64().unwrap() > 0);
    assert!(
        s["pairs"].as_u64().unwrap() > 0,
        "the shadow stage stored pairs"
    );
}

#[test]
fn healthy_is_promoted_to_full() {
    let s = run_demo("healthy");
    assert_eq!(s["final_state"], "completed", "{s}");
    let to: Vec<&str> = s["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["canary-5", "canary-25", "completed"], "{s}");
    assert!(s["cohorts"]["canary"].as_u64().unwrap() > 0);
    assert_eq!(s["failed_requests"], 0);
}

#[test]
fn latency_and_errors_trip_their_own_guardrails() {
    for (scenario, guardrail) in [("latency", "p95_latency"), ("errors", "error_rate")] {
        let s = run_demo(scenario);
        assert_eq!(s["final_state"], "rolled_back", "{s}");
        assert!(
            s["reason"].as_str().unwrap().contains(guardrail),
            "{scenario}: {s}"
        );
    }
}
