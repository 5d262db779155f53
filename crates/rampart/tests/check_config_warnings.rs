//! `rampart check-config` warnings: each printed with its key path (exit 0), `--strict` makes
//! them errors (exit 64), and every file in `examples/` passes `--strict`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rampart");

const UNDISCIPLINED: &str = r#"
[providers.openai]
type = "openai"
base_url = "http://127.0.0.1:9/v1"
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "openai"
model = "gpt-4o-2024-08-06"
prompt_version = "p1"
[routes.support.variants.v2]
provider = "openai"
model = "gpt-4o-mini"
prompt_version = "p2"
[rollouts.support-v2]
route = "support"
candidate = "v2"
stages = [ { name = "canary-5", percent = 5 } ]
[rollouts.support-v2.guardrails]
window = "10s"
check_interval = "30s"
"#;

fn run(args: &[&str], path: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .arg("check-config")
        .args(args)
        .arg("--config")
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn warnings_name_their_key_path_and_strict_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("undisciplined.toml");
    std::fs::write(&path, UNDISCIPLINED).unwrap();
    let (code, stdout) = run(&[], &path);
    assert_eq!(code, Some(0), "{stdout}");
    for expected in [
        "warning: routes.support.variants.v2.model: model name has no pinned version or date; the provider may change it under you (got `gpt-4o-mini`)",
        "warning: rollouts.support-v2.candidate: changes both the model (`gpt-4o-2024-08-06` → `gpt-4o-mini`) and the prompt against baseline `v1`; change one at a time (got `v2`)",
        "warning: rollouts.support-v2.stages: no shadow stage: the candidate meets users before its answers were compared",
        "warning: rollouts.support-v2.guardrails.window: shorter than check_interval (30s); requests between windows are never checked (got `10s`)",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(stdout.contains("4 warning(s)"), "{stdout}");
    assert!(
        !stdout.contains("variants.v1.model"),
        "a dated model is pinned: {stdout}"
    );
    let (code, stdout) = run(&["--strict"], &path);
    assert_eq!(code, Some(64), "{stdout}");
    assert!(
        stdout.contains("warning: rollouts.support-v2.stages"),
        "{stdout}"
    );
}

#[test]
fn every_example_passes_strict_and_the_quickstart_starts_with_shadow() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let (code, stdout) = run(&["--strict"], &path);
            assert_eq!(code, Some(0), "{}:\n{stdout}", path.display());
            assert!(stdout.contains("0 warning(s)"), "{stdout}");
            n += 1;
        }
    }
    assert!(n >= 2);
    let quickstart = rampart_core::config::Config::from_path(&dir.join("quickstart.toml")).unwrap();
    let first = &quickstart.rollouts["support-v2"].stages[0];
    assert!(rampart_core::rollout::gates::is_shadow(first), "{first:?}");
}
