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
    let check_url = |c: &mut Collector, path: &str, s: &Option<SecretSource>| {
        if let Some(SecretSource::Value(u)) = s
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            c.push(
                format!("{path}.url"),
                "must be an http:// or https:// URL",
                Some(u.clone()),
            );
        }
    };
    for (i, s) in raw.slack.into_iter().enumerate() {
        let path = format!("alerts.slack[{i}]");
        let url = secret(c, &path, "url", s.url, s.url_env);
        check_url(c, &path, &url);
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
    for (i, s) in raw.pagerduty.into_iter().enumerate() {
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
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            c.push(
                format!("{path}.url"),
                "must be an http:// or https:// URL",
                Some(url.clone()),
            );
        }
        if let Some(routing_key) = secret(c, &path, "routing_key", s.routing_key, s.routing_key_env)
        {
            sinks.push(AlertSink::PagerDuty { url, routing_key });
        }
    }
    for (i, s) in raw.webhook.into_iter().enumerate() {
        let path = format!("alerts.webhook[{i}]");
        let url = secret(c, &path, "url", s.url, s.url_env);
        check_url(c, &path, &url);
        if let Some(url) = url {
            sinks.push(AlertSink::Webhook { url });
        }
    }
    for (i, s) in raw.opsgenie.into_iter().enumerate() {
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
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            c.push(
                format!("{path}.url"),
                "must be an http:// or https:// URL",
                Some(url.clone()),
            );
        }
        if let Some(api_key) = secret(c, &path, "api_key", s.api_key, s.api_key_env) {
            sinks.push(AlertSink::Opsgenie { url, api_key });
        }
    }
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
