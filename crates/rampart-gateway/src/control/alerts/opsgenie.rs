//! Opsgenie Alert API v2 (<https://docs.opsgenie.com/docs/alert-api>).
//!
//! A trip or hold creates an alert whose alias is `rampart/<rollout>`, so Opsgenie keeps one
//! open alert per rollout however often it pages; a resume, reset or completion closes the
//! alert with that alias. The key goes in `Authorization: GenieKey <key>`.

use rampart_core::rollout::{Alert, AlertKind, Severity};
use serde_json::{Value, json};

/// The alias of a rollout's alert.
pub fn alias(rollout: &str) -> String {
    format!("rampart/{rollout}")
}

/// Where to POST and what, for `alert` (`None`: Opsgenie is not told about this kind).
/// `base` is the API base URL (`https://api.opsgenie.com`, `https://api.eu.opsgenie.com`).
pub fn request(base: &str, a: &Alert, summary: &str, details: &Value) -> Option<(String, Value)> {
    // Rollout names are letters, digits, '-', '_' and '.': only the alias's '/' needs escaping.
    let escaped = alias(&a.rollout).replace('/', "%2F");
    match a.kind {
        AlertKind::Trip | AlertKind::Hold => {
            let message: String = summary.chars().take(130).collect();
            Some((
                format!("{base}/v2/alerts"),
                json!({
                    "message": message,
                    "alias": alias(&a.rollout),
                    "description": summary,
                    "source": "rampart",
                    "entity": a.rollout,
                    "priority": priority(a.severity),
                    "tags": ["rampart", kind_tag(a.kind)],
                    "details": flat_details(details),
                }),
            ))
        }
        AlertKind::Resolve | AlertKind::Completed => Some((
            format!("{base}/v2/alerts/{escaped}/close?identifierType=alias"),
            json!({
                "source": "rampart",
                "user": "rampart",
                "note": format!("{} — {} → {}", a.reason, a.stage, a.action_taken),
            }),
        )),
        AlertKind::Advance => None,
    }
}

fn priority(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "P1",
        Severity::Warning => "P3",
        Severity::Info => "P5",
    }
}

fn kind_tag(k: AlertKind) -> &'static str {
    match k {
        AlertKind::Trip => "kill_switch",
        AlertKind::Hold => "hold",
        AlertKind::Resolve => "resolve",
        AlertKind::Advance => "advance",
        AlertKind::Completed => "completed",
    }
}

/// Opsgenie's `details` is a map of strings: nested values (samples, guardrails) as JSON text.
fn flat_details(details: &Value) -> Value {
    let Some(map) = details.as_object() else {
        return json!({});
    };
    Value::Object(
        map.iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), Value::String(s))
            })
            .collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn alert(kind: AlertKind) -> Alert {
        Alert {
            severity: Severity::Critical,
            kind,
            rollout: "support-v2".into(),
            reason: "error_rate".into(),
            stage: "canary-5".into(),
            action_taken: "rolled_back".into(),
            control_samples: 10,
            canary_samples: 12,
            at_ms: 0,
            guardrails: Vec::new(),
        }
    }

    #[test]
    fn create_and_close_share_the_alias() {
        let details = json!({"samples": {"control": 10}, "stage": "canary-5"});
        let (url, body) =
            request("https://og", &alert(AlertKind::Trip), "summary", &details).unwrap();
        assert_eq!(url, "https://og/v2/alerts");
        assert_eq!(body["alias"], "rampart/support-v2");
        assert_eq!(body["priority"], "P1");
        assert_eq!(body["details"]["samples"], "{\"control\":10}");
        let (url, _) = request("https://og", &alert(AlertKind::Resolve), "s", &details).unwrap();
        assert_eq!(
            url,
            "https://og/v2/alerts/rampart%2Fsupport-v2/close?identifierType=alias"
        );
        assert!(request("https://og", &alert(AlertKind::Advance), "s", &details).is_none());
    }
}
