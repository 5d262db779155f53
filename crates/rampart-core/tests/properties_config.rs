//! Property tests of the config loader: any text gives a config or a list of errors, each
//! naming its key path, never a panic; and whatever validates is a config `serve` can run with
//! (every count and duration inside the documented ranges of `docs/config-ranges.md`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rampart_core::config::Config;

const BASE: &str = r#"
[providers.sim]
type = "mock"
[providers.sim.models.m]
style = "casual"
[providers.up]
type = "openai"
base_url = "http://127.0.0.1:9/v1"
#providers.up#
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "m"
[routes.support.variants.v2]
provider = "up"
model = "x"
[rollouts.r]
route = "support"
candidate = "v2"
stages = [{ name = "s", shadow_percent = 10 }]
[rollouts.r.guardrails]
#rollouts.r.guardrails#
"#;

/// Numeric keys, as (table, key, takes a duration).
const KEYS: &[(&str, &str, bool)] = &[
    ("server", "max_body_bytes", false),
    ("server", "shutdown_grace", true),
    ("server", "max_messages", false),
    ("server", "max_json_depth", false),
    ("server", "header_read_timeout", true),
    ("server", "body_read_timeout", true),
    ("server", "max_connections", false),
    ("store", "queue_capacity", false),
    ("store", "batch_size", false),
    ("store", "flush_interval", true),
    ("shadow", "max_in_flight", false),
    ("shadow", "timeout", true),
    ("shadow", "max_tokens_per_day", false),
    ("shadow", "cache_ttl", true),
    ("alerts", "max_attempts", false),
    ("alerts", "timeout", true),
    ("telemetry", "queue_capacity", false),
    ("telemetry", "export_timeout", true),
    ("outcomes", "max_age", true),
    ("providers.up", "timeout", true),
    ("providers.up", "connect_timeout", true),
    ("providers.up", "idle_timeout", true),
    ("providers.up", "retries", false),
    ("providers.up", "max_idle_per_host", false),
    ("rollouts.r.guardrails", "window", true),
    ("rollouts.r.guardrails", "check_interval", true),
    ("rollouts.r.guardrails", "min_exposure", false),
];

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        // TOML integers are i64: anything larger is a TOML error, tested by the loader's tests.
        (0u64..2_000_000).prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("9223372036854775807".to_string()),
        Just("0".to_string()),
        any::<f64>()
            .prop_filter("TOML floats", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        Just("\"12\"".to_string()),
    ]
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            0u64..100_000,
            prop_oneof![
                Just("ms"),
                Just("s"),
                Just("m"),
                Just("h"),
                Just("d"),
                Just("y")
            ]
        )
            .prop_map(|(n, u)| format!("\"{n}{u}\"")),
        Just("\"500000000000y\"".to_string()),
        Just("\"0s\"".to_string()),
        Just("\"18446744073709551615s\"".to_string()),
        "\"[0-9a-z ]{0,12}\"",
        any::<u32>().prop_map(|n| n.to_string()),
    ]
}

/// BASE with `key = value` in `table` (inside it when BASE has the table, else appended).
fn with_key(table: &str, key: &str, value: &str) -> String {
    let marker = format!("#{table}#");
    if BASE.contains(&marker) {
        BASE.replace(&marker, &format!("{key} = {value}"))
    } else {
        format!("{BASE}\n[{table}]\n{key} = {value}\n")
    }
}

fn check(text: &str, key: &str) -> Result<(), TestCaseError> {
    match Config::from_toml_str(text) {
        Ok(c) => {
            // What validates is servable: nothing sized or timed beyond the ranges.
            prop_assert!(c.store.queue_capacity <= 1 << 20);
            prop_assert!(c.store.batch_size <= 100_000);
            prop_assert!(c.shadow.max_in_flight <= 100_000);
            prop_assert!(c.telemetry.queue_capacity <= 1 << 20);
            prop_assert!(c.server.max_body_bytes <= 1 << 30);
            prop_assert!(c.server.connections.max_connections <= 1_000_000);
            prop_assert!(c.server.shutdown_grace <= std::time::Duration::from_secs(3600));
            prop_assert!(!c.shadow.timeout.is_zero());
            prop_assert!(!c.alerts.timeout.is_zero());
            prop_assert!(c.alerts.max_attempts >= 1 && c.alerts.max_attempts <= 20);
            for p in c.providers.values() {
                if let rampart_core::config::ProviderKind::OpenAi(o) = &p.kind {
                    prop_assert!(!o.http.timeout.is_zero());
                    prop_assert!(!o.http.connect_timeout.is_zero());
                    prop_assert!(!o.http.idle_timeout.is_zero());
                    prop_assert!(o.http.retries <= 10);
                }
            }
            for r in c.rollouts.values() {
                prop_assert!(!r.guardrails.check_interval.is_zero());
            }
        }
        Err(errors) => {
            prop_assert!(!errors.0.is_empty());
            for e in &errors.0 {
                prop_assert!(!e.path.is_empty() && !e.message.is_empty(), "{e}");
            }
            prop_assert!(
                errors.0.iter().any(|e| e.path.ends_with(key)),
                "no error names `{key}`: {errors}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_value_of_any_numeric_key_is_a_servable_config_or_an_error_naming_the_key(
        i in 0..KEYS.len(),
        n in number(),
        d in duration(),
    ) {
        let (table, key, is_duration) = KEYS[i];
        let value = if is_duration { d } else { n };
        check(&with_key(table, key, &value), key)?;
    }

    #[test]
    fn any_text_is_a_config_or_a_list_of_errors(text in "(\\PC|\n|\\[|\\]|=|\"){0,200}") {
        match Config::from_toml_str(&text) {
            Ok(_) => {}
            Err(errors) => {
                prop_assert!(!errors.0.is_empty());
                for e in &errors.0 {
                    prop_assert!(!e.path.is_empty() && !e.message.is_empty(), "{e}");
                }
            }
        }
    }

    /// A valid config with one line of it changed to anything.
    #[test]
    fn a_valid_config_with_one_line_changed_never_panics(line in 0usize..24, text in "\\PC{0,40}") {
        let mut lines: Vec<&str> = BASE.lines().collect();
        let i = line % lines.len();
        lines[i] = &text;
        let _ = Config::from_toml_str(&lines.join("\n"));
    }
}

#[test]
fn an_empty_or_blank_file_is_an_error() {
    for text in ["", "\n\n", "# only a comment\n"] {
        let errors = Config::from_toml_str(text).unwrap_err();
        assert!(
            errors.to_string().contains("the config is empty"),
            "{errors}"
        );
    }
}

#[test]
fn the_configs_of_issue_10_are_clear_errors() {
    for (table, key, value, path) in [
        (
            "store",
            "queue_capacity",
            "99999999999999",
            "store.queue_capacity",
        ),
        (
            "shadow",
            "max_in_flight",
            "9223372036854775807",
            "shadow.max_in_flight",
        ),
        (
            "server",
            "shutdown_grace",
            "\"500000000000y\"",
            "server.shutdown_grace",
        ),
        ("shadow", "timeout", "\"0s\"", "shadow.timeout"),
        ("providers.up", "timeout", "\"0s\"", "providers.up.timeout"),
        ("alerts", "timeout", "\"0s\"", "alerts.timeout"),
        (
            "rollouts.r.judge",
            "timeout",
            "\"0s\"",
            "rollouts.r.judge.timeout",
        ),
    ] {
        let text = if table == "rollouts.r.judge" {
            format!("{BASE}\n[{table}]\nvariant = \"v1\"\n{key} = {value}\n")
        } else {
            with_key(table, key, value)
        };
        let errors = Config::from_toml_str(&text).unwrap_err();
        let e = errors
            .0
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("no error at {path}: {errors}"));
        assert!(e.message.starts_with("must be "), "{e}");
        assert!(e.got.is_some(), "{e}");
    }
}
