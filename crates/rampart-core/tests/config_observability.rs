//! `[[alerts.opsgenie]]` and `[telemetry]`: parsed into typed config, mistakes reported with
//! their key paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_core::config::{AlertSink, Config, SecretSource};

fn config(extra: &str) -> String {
    format!(
        r#"
[providers.sim]
type = "mock"
[providers.sim.models.old]
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "old"
{extra}
"#
    )
}

fn errors(extra: &str) -> Vec<String> {
    match Config::from_toml_str(&config(extra)) {
        Ok(_) => panic!("config should be invalid"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn opsgenie_regions_pick_the_api_base() {
    let c = Config::from_toml_str(&config(
        r#"
[[alerts.opsgenie]]
api_key_env = "OPSGENIE_KEY"
[[alerts.opsgenie]]
api_key_env = "OPSGENIE_KEY"
region = "eu"
"#,
    ))
    .unwrap();
    assert_eq!(
        c.alerts.sinks,
        vec![
            AlertSink::Opsgenie {
                url: "https://api.opsgenie.com".into(),
                api_key: SecretSource::Env("OPSGENIE_KEY".into()),
            },
            AlertSink::Opsgenie {
                url: "https://api.eu.opsgenie.com".into(),
                api_key: SecretSource::Env("OPSGENIE_KEY".into()),
            },
        ]
    );
}

#[test]
fn opsgenie_mistakes_name_their_keys() {
    let errs = errors(
        r#"
[[alerts.opsgenie]]
region = "apac"
"#,
    );
    assert!(
        errs.contains(&"alerts.opsgenie[0].region: must be `us` or `eu` (got `apac`)".to_string()),
        "{errs:?}"
    );
    assert!(
        errs.contains(
            &"alerts.opsgenie[0].api_key: `api_key` or `api_key_env` is required".to_string()
        ),
        "{errs:?}"
    );
}

#[test]
fn telemetry_defaults_and_mistakes() {
    let c = Config::from_toml_str(&config(
        r#"
[telemetry]
otlp_endpoint = "http://collector:4318/"
"#,
    ))
    .unwrap();
    assert_eq!(
        c.telemetry.otlp_endpoint.as_deref(),
        Some("http://collector:4318")
    );
    assert_eq!(c.telemetry.service_name, "rampart");
    assert_eq!(c.telemetry.queue_capacity, 2048);
    assert!(
        Config::from_toml_str(&config(""))
            .unwrap()
            .telemetry
            .otlp_endpoint
            .is_none()
    );
    let errs = errors(
        r#"
[telemetry]
otlp_endpoint = "collector:4317"
queue_capacity = 0
"#,
    );
    assert!(
        errs.contains(
            &"telemetry.otlp_endpoint: must be an http:// or https:// URL (OTLP over HTTP) (got `collector:4317`)"
                .to_string()
        ),
        "{errs:?}"
    );
    assert!(
        errs.contains(
            &"telemetry.queue_capacity: must be between 1 and 1048576 (got `0`)".to_string()
        ),
        "{errs:?}"
    );
}
