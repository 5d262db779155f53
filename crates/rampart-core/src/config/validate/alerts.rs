//! `[alerts]`: the paging sinks (Slack, PagerDuty, Opsgenie, webhooks) and their delivery.

use std::time::Duration;

use super::Collector;
use crate::config::raw::*;
use crate::config::*;

pub(super) fn secret(
    c: &mut Collector,
    path: &str,
    key: &str,
    value: Option<String>,
    env: Option<String>,
) -> Option<SecretSource> {
    match (value, env) {
        (Some(_), Some(_)) => {
            c.push(
                format!("{path}.{key}"),
                format!("set either `{key}` or `{key}_env`, not both"),
                None,
            );
            None
        }
        (Some(v), None) => Some(SecretSource::Value(v)),
        (None, Some(e)) => Some(SecretSource::Env(e)),
        (None, None) => {
            c.push(
                format!("{path}.{key}"),
                format!("`{key}` or `{key}_env` is required"),
                None,
            );
            None
        }
    }
}

pub(super) fn validate_alerts(c: &mut Collector, raw: RawAlerts) -> AlertsConfig {
    let mut sinks = Vec::new();
    slack_sinks(c, raw.slack, &mut sinks);
    pagerduty_sinks(c, raw.pagerduty, &mut sinks);
    webhook_sinks(c, raw.webhook, &mut sinks);
    opsgenie_sinks(c, raw.opsgenie, &mut sinks);
    let max_attempts = c.int("alerts.max_attempts", raw.max_attempts.map(u64::from), 4);
    let max_attempts = u32::try_from(max_attempts).unwrap_or(4);
    AlertsConfig {
        sinks,
        max_attempts,
        timeout: c.duration(
            "alerts.timeout",
            raw.timeout.as_deref(),
            Duration::from_secs(10),
        ),
    }
}

/// Reports `{path}.url` unless it is an http(s) URL.
fn check_url(c: &mut Collector, path: &str, url: &str) {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        c.push(
            format!("{path}.url"),
            "must be an http:// or https:// URL",
            Some(url.to_string()),
        );
    }
}

/// [`check_url`] for a URL given inline (one read from the environment is checked at use).
fn check_secret_url(c: &mut Collector, path: &str, url: &Option<SecretSource>) {
    if let Some(SecretSource::Value(u)) = url {
        check_url(c, path, u);
    }
}

/// `[[alerts.slack]]`: an incoming-webhook URL (a secret), no routing key.
fn slack_sinks(c: &mut Collector, raw: Vec<RawAlertSink>, sinks: &mut Vec<AlertSink>) {
    for (i, s) in raw.into_iter().enumerate() {
        let path = format!("alerts.slack[{i}]");
        let url = secret(c, &path, "url", s.url, s.url_env);
        check_secret_url(c, &path, &url);
        if s.routing_key.is_some() || s.routing_key_env.is_some() {
            c.push(
                format!("{path}.routing_key"),
                "only for [[alerts.pagerduty]]",
                None,
            );
        }
        if let Some(url) = url {
            sinks.push(AlertSink::Slack { url });
        }
    }
}

/// `[[alerts.pagerduty]]`: the Events API URL (inline, with a default) and a routing key.
fn pagerduty_sinks(c: &mut Collector, raw: Vec<RawAlertSink>, sinks: &mut Vec<AlertSink>) {
    for (i, s) in raw.into_iter().enumerate() {
        let path = format!("alerts.pagerduty[{i}]");
        if s.url_env.is_some() {
            c.push(
                format!("{path}.url_env"),
                "not supported for PagerDuty; set `url`",
                None,
            );
        }
        let url = s
            .url
            .unwrap_or_else(|| "https://events.pagerduty.com/v2/enqueue".to_string());
        check_url(c, &path, &url);
        if let Some(routing_key) = secret(c, &path, "routing_key", s.routing_key, s.routing_key_env)
        {
            sinks.push(AlertSink::PagerDuty { url, routing_key });
        }
    }
}

/// `[[alerts.webhook]]`: a URL (a secret) that receives the alert as JSON.
fn webhook_sinks(c: &mut Collector, raw: Vec<RawAlertSink>, sinks: &mut Vec<AlertSink>) {
    for (i, s) in raw.into_iter().enumerate() {
        let path = format!("alerts.webhook[{i}]");
        let url = secret(c, &path, "url", s.url, s.url_env);
        check_secret_url(c, &path, &url);
        if let Some(url) = url {
            sinks.push(AlertSink::Webhook { url });
        }
    }
}

/// `[[alerts.opsgenie]]`: the region's API URL (or `url`) and an API key.
fn opsgenie_sinks(c: &mut Collector, raw: Vec<RawOpsgenie>, sinks: &mut Vec<AlertSink>) {
    for (i, s) in raw.into_iter().enumerate() {
        let path = format!("alerts.opsgenie[{i}]");
        let region_url = match s.region.as_deref() {
            None | Some("us") => "https://api.opsgenie.com",
            Some("eu") => "https://api.eu.opsgenie.com",
            Some(other) => {
                c.push(
                    format!("{path}.region"),
                    "must be `us` or `eu`",
                    Some(other.to_string()),
                );
                "https://api.opsgenie.com"
            }
        };
        let url = s
            .url
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| region_url.to_string());
        check_url(c, &path, &url);
        if let Some(api_key) = secret(c, &path, "api_key", s.api_key, s.api_key_env) {
            sinks.push(AlertSink::Opsgenie { url, api_key });
        }
    }
}
