//! Alert delivery: Slack-compatible webhooks, PagerDuty Events API v2, Opsgenie Alert API v2,
//! generic JSON webhooks.
//!
//! The controller hands alerts to a bounded queue and moves on; a fan-out task hands each to
//! every sink's own queue and delivery task (so a dead sink never delays another), retrying
//! with exponential backoff (250 ms, doubling) up to `alerts.max_attempts`.
//! Failures are logged and counted (`rampart_alerts_total{sink,outcome}`), never block the
//! controller, and a full queue drops the alert with a count and an error log.
//!
//! PagerDuty: a trip or hold triggers an incident with the dedup key `rampart/<rollout>`; a
//! resolve (resume, reset, or completion) resolves it. Opsgenie: the same, with the alias
//! `rampart/<rollout>` (see [`opsgenie`]).

pub mod opsgenie;

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rampart_core::config::{AlertSink, AlertsConfig};
use rampart_core::rollout::{Alert, AlertKind, Severity};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::metrics::AlertLabels;

const QUEUE: usize = 256;

/// Resolved sink (secrets read from the environment at start-up).
#[derive(Debug, Clone)]
enum Sink {
    Slack { url: String },
    PagerDuty { url: String, routing_key: String },
    Webhook { url: String },
    Opsgenie { url: String, api_key: String },
}

impl Sink {
    fn name(&self) -> &'static str {
        match self {
            Sink::Slack { .. } => "slack",
            Sink::PagerDuty { .. } => "pagerduty",
            Sink::Webhook { .. } => "webhook",
            Sink::Opsgenie { .. } => "opsgenie",
        }
    }
}

/// Handle the controller uses.
#[derive(Clone)]
pub struct Alerts {
    tx: Option<mpsc::Sender<Alert>>,
    counts: Family<AlertLabels, Counter>,
}

/// Why the alert sinks could not be built at start-up.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    /// A sink's secret names an environment variable that is not set.
    #[error("alerts: sink {index} ({what}): its environment variable is not set")]
    MissingSecret { index: usize, what: &'static str },
    /// The HTTP client (TLS backend) could not be built.
    #[error("alerts: cannot build HTTP client: {0}")]
    Client(reqwest::Error),
}

/// Build the sinks; fails when a named env var is unset.
pub fn build(
    cfg: &AlertsConfig,
    counts: Family<AlertLabels, Counter>,
) -> Result<(Alerts, Option<AlertTask>), AlertsError> {
    let mut sinks = Vec::new();
    for (i, s) in cfg.sinks.iter().enumerate() {
        let missing = |what: &'static str| AlertsError::MissingSecret { index: i, what };
        sinks.push(match s {
            AlertSink::Slack { url } => Sink::Slack {
                url: url.resolve().ok_or_else(|| missing("slack url"))?,
            },
            AlertSink::PagerDuty { url, routing_key } => Sink::PagerDuty {
                url: url.clone(),
                routing_key: routing_key
                    .resolve()
                    .ok_or_else(|| missing("pagerduty routing key"))?,
            },
            AlertSink::Webhook { url } => Sink::Webhook {
                url: url.resolve().ok_or_else(|| missing("webhook url"))?,
            },
            AlertSink::Opsgenie { url, api_key } => Sink::Opsgenie {
                url: url.clone(),
                api_key: api_key
                    .resolve()
                    .ok_or_else(|| missing("opsgenie api key"))?,
            },
        });
    }
    if sinks.is_empty() {
        return Ok((Alerts { tx: None, counts }, None));
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    let client = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .build()
        .map_err(AlertsError::Client)?;
    Ok((
        Alerts {
            tx: Some(tx),
            counts: counts.clone(),
        },
        Some(AlertTask {
            rx,
            sinks,
            client,
            max_attempts: cfg.max_attempts,
            counts,
        }),
    ))
}

impl Alerts {
    /// Queue an alert; never waits.
    pub fn send(&self, alert: Alert) {
        tracing::warn!(
            rollout = %alert.rollout, kind = ?alert.kind, reason = %alert.reason,
            stage = %alert.stage, action = %alert.action_taken, "rollout alert"
        );
        let Some(tx) = &self.tx else { return };
        if tx.try_send(alert).is_err() {
            tracing::error!("alert queue full or closed; alert dropped");
            self.counts
                .get_or_create(&AlertLabels {
                    sink: "queue".into(),
                    outcome: "dropped".into(),
                })
                .inc();
        }
    }
}

fn summary(a: &Alert) -> String {
    format!(
        "[rampart] {} {}: {} — stage {} → {} (control {} / canary {} samples) at {}",
        match a.severity {
            Severity::Critical => "CRITICAL",
            Severity::Warning => "WARNING",
            Severity::Info => "info",
        },
        a.rollout,
        a.reason,
        a.stage,
        a.action_taken,
        a.control_samples,
        a.canary_samples,
        rfc3339(a.at_ms),
    )
}

/// RFC 3339 UTC time from Unix milliseconds (civil-from-days, Howard Hinnant's algorithm).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

/// Where a sink receives an alert and the JSON body (`None`: this sink ignores this alert).
fn payload(sink: &Sink, a: &Alert) -> Option<(String, Value)> {
    let details = json!({
        "rollout": a.rollout,
        "kind": a.kind,
        "severity": a.severity,
        "reason": a.reason,
        "stage": a.stage,
        "action_taken": a.action_taken,
        "samples": {"control": a.control_samples, "canary": a.canary_samples},
        "time": rfc3339(a.at_ms),
        "guardrails": a.guardrails,
    });
    match sink {
        Sink::Slack { url } => Some((
            url.clone(),
            json!({ "text": summary(a), "rampart": details }),
        )),
        Sink::Webhook { url } => Some((url.clone(), details)),
        Sink::Opsgenie { url, .. } => opsgenie::request(url, a, &summary(a), &details),
        Sink::PagerDuty { routing_key, url } => {
            let action = match a.kind {
                AlertKind::Trip | AlertKind::Hold => "trigger",
                AlertKind::Resolve | AlertKind::Completed => "resolve",
                AlertKind::Advance => return None,
            };
            let mut body = json!({
                "routing_key": routing_key,
                "event_action": action,
                "dedup_key": format!("rampart/{}", a.rollout),
            });
            if action == "trigger" {
                body["payload"] = json!({
                    "summary": summary(a),
                    "source": "rampart",
                    "severity": match a.severity { Severity::Critical => "critical", Severity::Warning => "warning", Severity::Info => "info" },
                    "timestamp": rfc3339(a.at_ms),
                    "component": a.rollout,
                    "group": "rollouts",
                    "class": match a.kind { AlertKind::Trip => "kill_switch", _ => "hold" },
                    "custom_details": details,
                });
            }
            Some((url.clone(), body))
        }
    }
}

pub struct AlertTask {
    rx: mpsc::Receiver<Alert>,
    sinks: Vec<Sink>,
    client: reqwest::Client,
    max_attempts: u32,
    counts: Family<AlertLabels, Counter>,
}

impl AlertTask {
    /// Deliver alerts until the queue closes or `shutdown` fires (then deliver what is queued).
    ///
    /// Each sink has its own queue and delivery task, so a dead or slow sink (a Slack webhook
    /// timing out on every retry) never delays another (the PagerDuty page).
    pub async fn run(mut self, shutdown: tokio_util::sync::CancellationToken) {
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        for sink in std::mem::take(&mut self.sinks) {
            let (tx, rx) = mpsc::channel(QUEUE);
            queues.push((sink.name(), tx));
            let worker = SinkWorker {
                sink,
                rx,
                client: self.client.clone(),
                max_attempts: self.max_attempts,
                counts: self.counts.clone(),
            };
            workers.push(tokio::spawn(worker.run()));
        }
        loop {
            let alert = tokio::select! {
                a = self.rx.recv() => a,
                _ = shutdown.cancelled() => { self.rx.close(); self.rx.recv().await }
            };
            let Some(alert) = alert else { break };
            for (name, tx) in &queues {
                if tx.try_send(alert.clone()).is_err() {
                    tracing::error!(sink = name, "alert sink queue full; alert dropped");
                    self.counts
                        .get_or_create(&AlertLabels {
                            sink: (*name).into(),
                            outcome: "dropped".into(),
                        })
                        .inc();
                }
            }
        }
        drop(queues);
        for w in workers {
            let _ = w.await;
        }
    }
}

/// Delivers one sink's alerts, in order, each with retries.
struct SinkWorker {
    sink: Sink,
    rx: mpsc::Receiver<Alert>,
    client: reqwest::Client,
    max_attempts: u32,
    counts: Family<AlertLabels, Counter>,
}

impl SinkWorker {
    async fn run(mut self) {
        while let Some(alert) = self.rx.recv().await {
            let Some((url, body)) = payload(&self.sink, &alert) else {
                continue;
            };
            let auth = match &self.sink {
                Sink::Opsgenie { api_key, .. } => Some(format!("GenieKey {api_key}")),
                _ => None,
            };
            let ok = self.deliver(&url, auth.as_deref(), &body).await;
            self.counts
                .get_or_create(&AlertLabels {
                    sink: self.sink.name().into(),
                    outcome: if ok { "sent" } else { "failed" }.into(),
                })
                .inc();
            if !ok {
                tracing::error!(sink = self.sink.name(), rollout = %alert.rollout, "alert delivery failed after retries");
            }
        }
    }

    async fn deliver(&self, url: &str, auth: Option<&str>, body: &Value) -> bool {
        let mut backoff = Duration::from_millis(250);
        for attempt in 1..=self.max_attempts {
            let mut req = self.client.post(url).json(body);
            if let Some(a) = auth {
                req = req.header(reqwest::header::AUTHORIZATION, a);
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => return true,
                Ok(r) => {
                    tracing::warn!(status = %r.status(), attempt, "alert sink answered with an error")
                }
                Err(e) => tracing::warn!(error = %e, attempt, "alert sink unreachable"),
            }
            if attempt < self.max_attempts {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_305_600_123), "2026-11-22T00:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
