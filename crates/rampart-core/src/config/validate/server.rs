//! `[server]`, `[store]` and `[shadow]`: where the gateway listens, where it stores, how it mirrors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Collector;
use crate::config::raw::*;
use crate::config::*;
use crate::request::Limits;

pub(super) fn validate_server(c: &mut Collector, raw: RawServer) -> ServerConfig {
    let connections = validate_connections(c, &raw);
    let listen_raw = raw.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
    let listen = match listen_raw.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            c.push(
                "server.listen",
                "must be an IP address and port, like \"127.0.0.1:8080\"",
                Some(listen_raw),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        }
    };
    let max_body_bytes = match raw.max_body_bytes {
        None => 16 * 1024 * 1024,
        Some(0) => {
            c.push(
                "server.max_body_bytes",
                "must be at least 1",
                Some("0".into()),
            );
            16 * 1024 * 1024
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    if raw.request_timeout.is_some() {
        // Accepted for forward compatibility; provider timeouts bound requests today.
        c.duration(
            "server.request_timeout",
            raw.request_timeout.as_deref(),
            Duration::ZERO,
        );
    }
    let limits = Limits {
        max_messages: in_range(
            c,
            "server.max_messages",
            raw.max_messages,
            Limits::DEFAULT_MAX_MESSAGES,
            1..=1_000_000,
        ),
        max_depth: in_range(
            c,
            "server.max_json_depth",
            raw.max_json_depth,
            Limits::DEFAULT_MAX_DEPTH,
            2..=Limits::MAX_DEPTH_CEILING,
        ),
    };
    ServerConfig {
        listen,
        admin_token_env: raw.admin_token_env.filter(|s| !s.is_empty()),
        max_body_bytes,
        shutdown_grace: c.duration(
            "server.shutdown_grace",
            raw.shutdown_grace.as_deref(),
            Duration::from_secs(30),
        ),
        limits,
        connections,
    }
}

fn validate_connections(c: &mut Collector, raw: &RawServer) -> ConnectionLimits {
    let d = ConnectionLimits::default();
    let timeout = |c: &mut Collector, key: &str, v: Option<&str>, default: Duration| {
        let path = format!("server.{key}");
        let got = c.duration(&path, v, default);
        if got < Duration::from_millis(100) || got > Duration::from_secs(3_600) {
            c.push(path, "must be between 100ms and 1h", v.map(str::to_string));
            return default;
        }
        got
    };
    ConnectionLimits {
        header_read_timeout: timeout(
            c,
            "header_read_timeout",
            raw.header_read_timeout.as_deref(),
            d.header_read_timeout,
        ),
        body_read_timeout: timeout(
            c,
            "body_read_timeout",
            raw.body_read_timeout.as_deref(),
            d.body_read_timeout,
        ),
        idle_timeout: timeout(
            c,
            "idle_timeout",
            raw.idle_timeout.as_deref(),
            d.idle_timeout,
        ),
        max_connections: in_range(
            c,
            "server.max_connections",
            raw.max_connections,
            d.max_connections,
            1..=1_000_000,
        ),
    }
}

/// A whole number within `range`, or the default (with the error collected).
fn in_range(
    c: &mut Collector,
    path: &str,
    v: Option<u64>,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> usize {
    match v {
        None => default,
        Some(n) => match usize::try_from(n) {
            Ok(n) if range.contains(&n) => n,
            _ => {
                c.push(
                    path,
                    format!("must be between {} and {}", range.start(), range.end()),
                    Some(n.to_string()),
                );
                default
            }
        },
    }
}

/// Redaction patterns, each compiled (and its error reported with its index).
fn validate_redact(c: &mut Collector, raw: Option<Vec<String>>) -> Vec<regex::Regex> {
    let mut out = Vec::new();
    for (i, pattern) in raw.unwrap_or_default().into_iter().enumerate() {
        let built = regex::RegexBuilder::new(&pattern)
            .size_limit(1 << 20)
            .build();
        match built {
            Ok(r) if pattern.is_empty() || r.is_match("") => c.push(
                format!("store.redact[{i}]"),
                "must not match the empty string",
                Some(pattern),
            ),
            Ok(r) => out.push(r),
            Err(e) => c.push(
                format!("store.redact[{i}]"),
                format!(
                    "is not a valid regular expression: {}",
                    first_line(&e.to_string())
                ),
                Some(pattern),
            ),
        }
    }
    out
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or_default().trim().to_string()
}

pub(super) fn validate_store(c: &mut Collector, raw: RawStore) -> StoreConfig {
    let kind = match raw.kind.as_deref().unwrap_or("sqlite") {
        "sqlite" => {
            if raw.url.is_some() {
                c.push("store.url", "only for type = \"postgres\"", raw.url.clone());
            }
            StoreKind::Sqlite {
                path: PathBuf::from(raw.path.unwrap_or_else(|| "rampart.db".into())),
            }
        }
        "postgres" => {
            c.push(
                "store.type",
                "the postgres store is not available in this build yet; use \"sqlite\"",
                Some("postgres".into()),
            );
            StoreKind::Postgres {
                url: raw.url.unwrap_or_default(),
            }
        }
        other => {
            c.push(
                "store.type",
                "must be \"sqlite\" or \"postgres\"",
                Some(other.to_string()),
            );
            StoreKind::Sqlite {
                path: PathBuf::from("rampart.db"),
            }
        }
    };
    StoreConfig {
        kind,
        capture_text: raw.capture_text.unwrap_or(true),
        queue_capacity: c.count("store.queue_capacity", raw.queue_capacity, 65_536),
        batch_size: c.count("store.batch_size", raw.batch_size, 512),
        flush_interval: c.duration(
            "store.flush_interval",
            raw.flush_interval.as_deref(),
            Duration::from_millis(200),
        ),
        redact: validate_redact(c, raw.redact),
    }
}

pub(super) fn validate_shadow(c: &mut Collector, raw: RawShadow) -> ShadowConfig {
    let max_tokens_per_day = match raw.max_tokens_per_day {
        Some(0) => {
            c.push(
                "shadow.max_tokens_per_day",
                "must be at least 1",
                Some("0".into()),
            );
            None
        }
        v => v,
    };
    ShadowConfig {
        max_in_flight: c.count("shadow.max_in_flight", raw.max_in_flight, 32),
        timeout: c.duration(
            "shadow.timeout",
            raw.timeout.as_deref(),
            Duration::from_secs(30),
        ),
        max_cost_usd_per_day: c.positive("shadow.max_cost_usd_per_day", raw.max_cost_usd_per_day),
        max_tokens_per_day,
        cache_ttl: raw
            .cache_ttl
            .as_deref()
            .map(|s| c.duration("shadow.cache_ttl", Some(s), Duration::ZERO)),
    }
}
