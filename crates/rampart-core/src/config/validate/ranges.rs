//! The range of every numeric config key, in one table ([`RANGES`]).
//!
//! Every number and duration the loader reads is checked against its row here, by its key path
//! (`*` stands for a name, `[]` for a list index), and an out-of-range value is reported as
//! ``path: must be between MIN and MAX (got `value`)``. The bounds keep every value the gateway
//! accepts one it can run with: no allocation sized by a huge count, no deadline past what a
//! clock can represent, no zero timeout that fails every call.
//!
//! Invariants (checked by the tests at the bottom):
//! - every numeric key the loader reads has a row (a key without one is still bounded by a
//!   generous fallback, so `serve` cannot be crashed by it, but the table test fails);
//! - every row is read by the loader (no stale rows);
//! - `docs/config-ranges.md` is [`markdown`] of this table.

use std::time::Duration;

/// What a numeric key may hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// A whole number in `min..=max` (`max = u64::MAX`: no upper bound).
    Int { min: u64, max: u64 },
    /// A duration (written with its unit) in `min..=max`.
    Duration { min: Duration, max: Duration },
    /// A finite real number between `min` and `max`, each end open or closed
    /// (`max = f64::INFINITY`: no upper bound).
    Real {
        min: f64,
        max: f64,
        min_open: bool,
        max_open: bool,
    },
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyRange {
    /// Key path pattern: `*` is one name (of a provider, route, …), `[]` one list index.
    pub key: &'static str,
    pub bound: Bound,
    /// Why the bound is where it is, or what the ends mean.
    pub note: &'static str,
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
const fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}
const fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}
const fn int(min: u64, max: u64) -> Bound {
    Bound::Int { min, max }
}
const fn dur(min: Duration, max: Duration) -> Bound {
    Bound::Duration { min, max }
}
/// `[0, 1]`.
pub(super) const RATE: Bound = Bound::Real {
    min: 0.0,
    max: 1.0,
    min_open: false,
    max_open: false,
};
/// `(0, 1)`.
pub(super) const OPEN_UNIT: Bound = Bound::Real {
    min: 0.0,
    max: 1.0,
    min_open: true,
    max_open: true,
};
/// `[0, 100]`.
pub(super) const PERCENT: Bound = Bound::Real {
    min: 0.0,
    max: 100.0,
    min_open: false,
    max_open: false,
};
/// `(0, max]`.
const fn above_zero(max: f64) -> Bound {
    Bound::Real {
        min: 0.0,
        max,
        min_open: true,
        max_open: false,
    }
}
/// `[0, max]`.
const fn at_least_zero(max: f64) -> Bound {
    Bound::Real {
        min: 0.0,
        max,
        min_open: false,
        max_open: false,
    }
}

/// Ten years: the longest duration any key takes (rollout stages, retention). Far below what
/// `Instant` arithmetic can hold, so no deadline computed from a config value overflows.
pub const MAX_DURATION: Duration = days(3650);
/// Largest sum of money per day a budget may name.
const MAX_USD: f64 = 1e9;
/// Largest price per million tokens.
const MAX_PRICE: f64 = 1e6;
/// Largest count of requests or samples a threshold may name.
const MAX_SAMPLES: u64 = 1_000_000_000;

/// Bound of a key the table does not list: wide enough for any sane value, tight enough that
/// nothing overflows. The table test keeps this unused.
pub(super) const FALLBACK_DURATION: Bound = dur(Duration::ZERO, MAX_DURATION);
pub(super) const FALLBACK_COUNT: Bound = int(1, MAX_SAMPLES);

/// Every numeric key, its range and why.
#[rustfmt::skip]
pub const RANGES: &[KeyRange] = &[
    // [server]
    KeyRange { key: "server.max_body_bytes", bound: int(1, 1 << 30), note: "bytes; larger bodies get 413. At most 1 GiB: a body is held in memory whole" },
    KeyRange { key: "server.shutdown_grace", bound: dur(Duration::ZERO, hours(1)), note: "0s cuts in-flight requests at once on SIGTERM" },
    KeyRange { key: "server.request_timeout", bound: dur(secs(1), hours(1)), note: "accepted for compatibility; provider timeouts bound requests" },
    KeyRange { key: "server.max_messages", bound: int(1, 1_000_000), note: "messages in one chat request (400 past it)" },
    KeyRange { key: "server.max_json_depth", bound: int(2, crate::request::Limits::MAX_DEPTH_CEILING as u64), note: "nesting of the request JSON (400 past it)" },
    KeyRange { key: "server.header_read_timeout", bound: dur(ms(100), hours(1)), note: "also the idle keep-alive timeout" },
    KeyRange { key: "server.body_read_timeout", bound: dur(ms(100), hours(1)), note: "408 past it" },
    KeyRange { key: "server.max_connections", bound: int(1, 1_000_000), note: "open client connections; also bounded by the process's file descriptors" },
    // [store]
    KeyRange { key: "store.pool_size", bound: int(1, 1000), note: "PostgreSQL connections per replica" },
    KeyRange { key: "store.retention", bound: dur(days(1), MAX_DURATION), note: "PostgreSQL drops events and pairs a day at a time" },
    KeyRange { key: "store.queue_capacity", bound: int(1, 1 << 20), note: "records waiting for the writer; each slot is allocated up front" },
    KeyRange { key: "store.batch_size", bound: int(1, 100_000), note: "records per transaction" },
    KeyRange { key: "store.flush_interval", bound: dur(ms(1), secs(60)), note: "a partial batch waits this long; also the kill -9 loss window" },
    // [shadow]
    KeyRange { key: "shadow.max_in_flight", bound: int(1, 100_000), note: "concurrent shadow calls; more are dropped and counted" },
    KeyRange { key: "shadow.timeout", bound: dur(ms(10), hours(1)), note: "a shadow call past it is recorded as an error" },
    KeyRange { key: "shadow.max_cost_usd_per_day", bound: above_zero(MAX_USD), note: "USD" },
    KeyRange { key: "shadow.max_tokens_per_day", bound: int(1, u64::MAX), note: "tokens" },
    KeyRange { key: "shadow.cache_ttl", bound: dur(Duration::ZERO, days(365)), note: "0s: no cache" },
    // [alerts], [outcomes], [telemetry]
    KeyRange { key: "alerts.max_attempts", bound: int(1, 20), note: "per alert and sink, with backoff" },
    KeyRange { key: "alerts.timeout", bound: dur(ms(10), secs(300)), note: "per delivery attempt" },
    KeyRange { key: "outcomes.max_age", bound: dur(secs(1), MAX_DURATION), note: "outcomes about older requests are refused" },
    KeyRange { key: "telemetry.queue_capacity", bound: int(1, 1 << 20), note: "finished spans waiting for export" },
    KeyRange { key: "telemetry.export_timeout", bound: dur(ms(10), secs(300)), note: "per OTLP export" },
    // [providers.NAME]
    KeyRange { key: "providers.*.timeout", bound: dur(ms(10), hours(1)), note: "a whole non-streamed answer" },
    KeyRange { key: "providers.*.connect_timeout", bound: dur(ms(10), secs(300)), note: "TCP and TLS connect" },
    KeyRange { key: "providers.*.first_byte_timeout", bound: dur(ms(10), hours(1)), note: "a stream's first byte; default: timeout" },
    KeyRange { key: "providers.*.idle_timeout", bound: dur(ms(10), hours(1)), note: "between two chunks of a stream" },
    KeyRange { key: "providers.*.max_idle_per_host", bound: int(0, 10_000), note: "pooled idle connections; 0 disables pooling" },
    KeyRange { key: "providers.*.retries", bound: int(0, 10), note: "more only multiplies load on a failing provider" },
    KeyRange { key: "providers.*.seed", bound: int(0, u64::MAX), note: "mock provider's random seed" },
    KeyRange { key: "providers.*.models.*.latency_ms.median", bound: above_zero(3_600_000.0), note: "milliseconds" },
    KeyRange { key: "providers.*.models.*.latency_ms.p95", bound: above_zero(3_600_000.0), note: "milliseconds, at least the median" },
    KeyRange { key: "providers.*.models.*.error_rate", bound: RATE, note: "" },
    KeyRange { key: "providers.*.models.*.refusal_rate", bound: RATE, note: "" },
    KeyRange { key: "providers.*.models.*.length_factor", bound: above_zero(100.0), note: "answer length relative to the style's" },
    KeyRange { key: "providers.*.models.*.position_bias", bound: RATE, note: "as a judge" },
    KeyRange { key: "providers.*.models.*.hang_rate", bound: RATE, note: "calls that never answer (fault drills)" },
    KeyRange { key: "providers.*.models.*.overrides[].latency_ms.median", bound: above_zero(3_600_000.0), note: "milliseconds" },
    KeyRange { key: "providers.*.models.*.overrides[].latency_ms.p95", bound: above_zero(3_600_000.0), note: "milliseconds, at least the median" },
    KeyRange { key: "providers.*.models.*.overrides[].error_rate", bound: RATE, note: "" },
    KeyRange { key: "providers.*.models.*.overrides[].refusal_rate", bound: RATE, note: "" },
    KeyRange { key: "providers.*.models.*.overrides[].length_factor", bound: above_zero(100.0), note: "" },
    // [routes.NAME.variants.NAME]
    KeyRange { key: "routes.*.variants.*.input_usd_per_mtok", bound: at_least_zero(MAX_PRICE), note: "USD per million tokens" },
    KeyRange { key: "routes.*.variants.*.output_usd_per_mtok", bound: at_least_zero(MAX_PRICE), note: "USD per million tokens" },
    // [rollouts.NAME]
    KeyRange { key: "rollouts.*.keep_baseline_warm", bound: dur(Duration::ZERO, MAX_DURATION), note: "" },
    KeyRange { key: "rollouts.*.cooldown", bound: dur(Duration::ZERO, days(365)), note: "after a rollback, before a resume may advance" },
    KeyRange { key: "rollouts.*.stages[].percent", bound: PERCENT, note: "canary share of keyed traffic" },
    KeyRange { key: "rollouts.*.stages[].shadow_percent", bound: PERCENT, note: "" },
    KeyRange { key: "rollouts.*.stages[].min_duration", bound: dur(Duration::ZERO, MAX_DURATION), note: "" },
    KeyRange { key: "rollouts.*.stages[].max_duration", bound: dur(Duration::ZERO, MAX_DURATION), note: "at least min_duration" },
    KeyRange { key: "rollouts.*.gates.mde", bound: OPEN_UNIT, note: "absolute change in a guarded rate" },
    KeyRange { key: "rollouts.*.gates.alpha", bound: OPEN_UNIT, note: "" },
    KeyRange { key: "rollouts.*.gates.power", bound: OPEN_UNIT, note: "" },
    KeyRange { key: "rollouts.*.gates.min_equivalence", bound: RATE, note: "" },
    KeyRange { key: "rollouts.*.gates.min_win_rate", bound: RATE, note: "needs a judge" },
    KeyRange { key: "rollouts.*.gates.min_class_pairs", bound: int(2, 1_000_000), note: "pairs a class or tenant needs before the report tests it (an interval needs two)" },
    KeyRange { key: "rollouts.*.stages[].gates.mde", bound: OPEN_UNIT, note: "" },
    KeyRange { key: "rollouts.*.stages[].gates.alpha", bound: OPEN_UNIT, note: "" },
    KeyRange { key: "rollouts.*.stages[].gates.power", bound: OPEN_UNIT, note: "" },
    KeyRange { key: "rollouts.*.stages[].gates.min_equivalence", bound: RATE, note: "" },
    KeyRange { key: "rollouts.*.stages[].gates.min_win_rate", bound: RATE, note: "" },
    KeyRange { key: "rollouts.*.stages[].gates.min_class_pairs", bound: int(2, 1_000_000), note: "" },
    KeyRange { key: "rollouts.*.guardrails.window", bound: dur(secs(1), days(30)), note: "" },
    KeyRange { key: "rollouts.*.guardrails.check_interval", bound: dur(ms(10), days(1)), note: "" },
    KeyRange { key: "rollouts.*.guardrails.error_rate_max", bound: RATE, note: "" },
    KeyRange { key: "rollouts.*.guardrails.p95_latency_max_ratio", bound: above_zero(1000.0), note: "candidate p95 / baseline p95" },
    KeyRange { key: "rollouts.*.guardrails.refusal_rate_max_increase", bound: RATE, note: "absolute" },
    KeyRange { key: "rollouts.*.guardrails.thumbs_down_max_ratio", bound: above_zero(1000.0), note: "" },
    KeyRange { key: "rollouts.*.guardrails.alpha", bound: OPEN_UNIT, note: "" },
    KeyRange { key: "rollouts.*.guardrails.min_exposure", bound: int(0, MAX_SAMPLES), note: "requests per cohort before a guardrail is tested" },
    KeyRange { key: "rollouts.*.guardrails.catastrophic_error_rate", bound: RATE, note: "" },
    KeyRange { key: "rollouts.*.guardrails.catastrophic_min_requests", bound: int(0, MAX_SAMPLES), note: "" },
    KeyRange { key: "rollouts.*.guardrails.custom[].max_increase", bound: at_least_zero(1e12), note: "in the metric's units" },
    KeyRange { key: "rollouts.*.guardrails.custom[].max_ratio", bound: above_zero(1000.0), note: "" },
    KeyRange { key: "rollouts.*.tenants.*.max_percent", bound: PERCENT, note: "" },
    KeyRange { key: "rollouts.*.judge.sample_percent", bound: PERCENT, note: "" },
    KeyRange { key: "rollouts.*.judge.max_cost_usd_per_day", bound: above_zero(MAX_USD), note: "USD" },
    KeyRange { key: "rollouts.*.judge.max_in_flight", bound: int(1, 10_000), note: "" },
    KeyRange { key: "rollouts.*.judge.timeout", bound: dur(ms(10), hours(1)), note: "" },
    KeyRange { key: "rollouts.*.slow_signals[].max_decrease", bound: at_least_zero(1e12), note: "in the outcome's units" },
    KeyRange { key: "rollouts.*.slow_signals[].max_relative_decrease", bound: RATE, note: "" },
    KeyRange { key: "rollouts.*.slow_signals[].sustain", bound: dur(Duration::ZERO, days(365)), note: "" },
    KeyRange { key: "rollouts.*.slow_signals[].check_interval", bound: dur(secs(1), days(30)), note: "" },
    KeyRange { key: "rollouts.*.slow_signals[].min_samples", bound: int(2, MAX_SAMPLES), note: "per cohort" },
    KeyRange { key: "rollouts.*.slow_signals[].alpha", bound: OPEN_UNIT, note: "" },
];

/// The row whose pattern matches `path`, if any.
pub fn lookup(path: &str) -> Option<&'static KeyRange> {
    RANGES
        .iter()
        .find(|r| matches(r.key.as_bytes(), path.as_bytes()))
}

/// Whether `path` fits `pattern`: `*` takes one or more characters a name may hold (letters,
/// digits, `-`, `_`, and `.`, so never a list index), `[]` takes `[` digits `]`, everything
/// else matches itself.
fn matches(pattern: &[u8], path: &[u8]) -> bool {
    match pattern {
        [] => path.is_empty(),
        [b'*', rest @ ..] => {
            let name = path
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
                .count();
            (1..=name).any(|n| matches(rest, &path[n..]))
        }
        [b'[', b']', rest @ ..] => {
            let Some(after) = path.strip_prefix(b"[") else {
                return false;
            };
            let digits = after.iter().take_while(|c| c.is_ascii_digit()).count();
            digits > 0 && after.get(digits) == Some(&b']') && matches(rest, &after[digits + 1..])
        }
        [c, rest @ ..] => path.first() == Some(c) && matches(rest, &path[1..]),
    }
}

impl Bound {
    /// The range as the error message says it: `must be between 1 and 1000`.
    pub fn requirement(&self) -> String {
        match *self {
            Bound::Int { min, max: u64::MAX } => format!("must be at least {min}"),
            Bound::Int { min, max } => format!("must be between {min} and {max}"),
            Bound::Duration { min, max } => {
                format!("must be between {} and {}", show(min), show(max))
            }
            Bound::Real {
                min,
                max,
                min_open,
                max_open,
            } => match (min_open, max_open) {
                (true, true) => format!("must be strictly between {min} and {max}"),
                (false, false) => format!("must be between {min} and {max}"),
                (true, false) if min == 0.0 => format!("must be a positive number, at most {max}"),
                (true, false) => format!("must be above {min} and at most {max}"),
                (false, true) => format!("must be at least {min} and below {max}"),
            },
        }
    }

    /// The range as the docs table shows it.
    fn doc(&self) -> String {
        match *self {
            Bound::Int { min, max: u64::MAX } => format!("≥ {min}"),
            Bound::Int { min, max } => format!("{min} – {max}"),
            Bound::Duration { min, max } => format!("{} – {}", show(min), show(max)),
            Bound::Real {
                min,
                max,
                min_open,
                max_open,
            } => format!(
                "{}{min}, {max}{}",
                if min_open { "(" } else { "[" },
                if max_open { ")" } else { "]" }
            ),
        }
    }

    pub fn contains_u64(&self, v: u64) -> bool {
        matches!(*self, Bound::Int { min, max } if (min..=max).contains(&v))
    }

    pub fn contains_duration(&self, v: Duration) -> bool {
        matches!(*self, Bound::Duration { min, max } if (min..=max).contains(&v))
    }

    pub fn contains_f64(&self, v: f64) -> bool {
        match *self {
            Bound::Real {
                min,
                max,
                min_open,
                max_open,
            } => {
                v.is_finite()
                    && (if min_open { v > min } else { v >= min })
                    && (if max_open { v < max } else { v <= max })
            }
            _ => false,
        }
    }
}

/// A duration as config files write it, in its largest whole unit (`100ms`, `1h`, `3650d`).
fn show(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    if ms == 0 {
        "0s".into()
    } else {
        format!("{ms}ms")
    }
}

/// The table as Markdown, as `docs/config-ranges.md` holds it between its markers.
pub fn markdown() -> String {
    let mut out = String::from("| key | range | note |\n|---|---|---|\n");
    for r in RANGES {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            r.key,
            r.bound.doc(),
            r.note
        ));
    }
    out
}

#[cfg(test)]
mod tests;
