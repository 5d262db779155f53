//! Retries: which failures are retried, how long to wait, and the loop that does it.
//!
//! Retried: connect errors and the statuses a provider uses for "try again" (429, 500, 502,
//! 503, 529). Not retried: timeouts (the attempt already used the time), client errors, and
//! anything after a stream's first chunk (the attempt returns only once that chunk is in, and
//! later failures travel inside the stream). The wait is `Retry-After` when the provider sends
//! one in seconds, else exponential backoff with jitter: `base · 2^attempt`, capped, scaled by a
//! uniform factor in [0.5, 1) ("equal jitter", AWS Architecture Blog, *Exponential Backoff And
//! Jitter*, 2015). No retry starts when its wait would end past the call's deadline.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::ProviderError;

/// First backoff step.
pub const BASE: Duration = Duration::from_millis(100);
/// Longest computed backoff (a longer `Retry-After` is honoured as long as the deadline allows).
pub const CAP: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabels {
    pub provider: String,
    pub reason: String,
}

/// `rampart_provider_retries_total{provider, reason}`.
pub type RetryCounter = Family<RetryLabels, Counter>;

/// The metric label of a retryable failure; `None` when it must not be retried.
pub fn reason(e: &ProviderError) -> Option<&'static str> {
    match e {
        ProviderError::Connect(_) => Some("connect"),
        ProviderError::Status { status, .. } => match status {
            429 => Some("429"),
            500 => Some("500"),
            502 => Some("502"),
            503 => Some("503"),
            529 => Some("529"),
            _ => None,
        },
        ProviderError::Timeout(_) | ProviderError::Invalid(_) => None,
    }
}

/// `Retry-After` in seconds (integer or decimal). An HTTP date is not used: clocks differ.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    (0.0..=86_400.0)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

/// The wait before retry number `attempt + 1` (`attempt` counts from 0); `unit` in [0, 1)
/// draws the jitter.
pub fn backoff(attempt: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
    if let Some(d) = retry_after {
        return d;
    }
    let exp = BASE.saturating_mul(1u32 << attempt.min(16)).min(CAP);
    exp.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

/// A uniform draw in [0, 1) from the standard library's randomly keyed hasher.
fn jitter_unit(attempt: u32) -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// What a retry loop needs to know about its provider.
pub struct Policy<'a> {
    pub provider: &'a str,
    pub retries: u32,
    pub counter: &'a RetryCounter,
}

/// Runs `attempt(deadline)` until it succeeds, fails in a way that is not retried, runs out of
/// retries, or the next wait would end past `deadline`.
pub async fn run<T, F, Fut>(
    policy: Policy<'_>,
    deadline: Instant,
    mut attempt: F,
) -> Result<T, ProviderError>
where
    F: FnMut(Instant) -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    let mut n = 0u32;
    loop {
        let err = match attempt(deadline).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let Some(reason) = reason(&err).filter(|_| n < policy.retries) else {
            return Err(err);
        };
        let retry_after = match &err {
            ProviderError::Status {
                retry_after: Some(v),
                ..
            } => parse_retry_after(v),
            _ => None,
        };
        let wait = backoff(n, retry_after, jitter_unit(n));
        if Instant::now() + wait >= deadline {
            return Err(err);
        }
        policy
            .counter
            .get_or_create(&RetryLabels {
                provider: policy.provider.to_string(),
                reason: reason.to_string(),
            })
            .inc();
        tracing::debug!(
            provider = policy.provider,
            reason,
            ?wait,
            "retrying provider call"
        );
        tokio::time::sleep(wait).await;
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        assert_eq!(backoff(0, None, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(1, None, 0.0), Duration::from_millis(100));
        assert!(backoff(1, None, 0.999) < Duration::from_millis(200));
        assert_eq!(backoff(30, None, 0.0), CAP / 2);
        assert_eq!(
            backoff(0, Some(Duration::from_secs(3)), 0.5),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn retry_after_in_seconds_only() {
        assert_eq!(parse_retry_after("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let status = |s| ProviderError::Status {
            status: s,
            body: serde_json::Value::Null,
            retry_after: None,
        };
        for s in [429, 500, 502, 503, 529] {
            assert!(reason(&status(s)).is_some(), "{s}");
        }
        for s in [400, 401, 404, 501, 504] {
            assert!(reason(&status(s)).is_none(), "{s}");
        }
        assert_eq!(reason(&ProviderError::Connect("x".into())), Some("connect"));
        assert!(reason(&ProviderError::Timeout(Duration::from_secs(1))).is_none());
        assert!(reason(&ProviderError::Invalid("x".into())).is_none());
    }
}
