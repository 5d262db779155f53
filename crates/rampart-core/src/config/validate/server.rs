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
    let max_body_bytes = c.count(
        "server.max_body_bytes",
        raw.max_body_bytes,
        16 * 1024 * 1024,
    );
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
        ),
        max_depth: in_range(
            c,
            "server.max_json_depth",
            raw.max_json_depth,
            Limits::DEFAULT_MAX_DEPTH,
        ),
    };
    let admin_token_env = raw.admin_token_env.filter(|s| !s.is_empty());
    let admin_allow_unauthenticated = raw.admin_allow_unauthenticated.unwrap_or(false);
    check_admin_exposure(
        c,
        listen,
        admin_token_env.as_deref(),
        admin_allow_unauthenticated,
    );
    ServerConfig {
        listen,
        admin_token_env,
        admin_allow_unauthenticated,
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

/// A `listen` beyond loopback needs an admin token, unless the operator says otherwise: with no
/// token the admin API trusts every loopback peer, and a reverse proxy on the same host makes
/// every caller one.
fn check_admin_exposure(
    c: &mut Collector,
    listen: SocketAddr,
    token_env: Option<&str>,
    allow_unauthenticated: bool,
) {
    if let Some(var) = token_env
        && !is_env_name(var)
    {
        c.push(
            "server.admin_token_env",
            "must be an environment variable name (letters, digits, `_`; not starting with a \
             digit)",
            Some(var.to_string()),
        );
    }
    if !listen.ip().is_loopback() && token_env.is_none() && !allow_unauthenticated {
        c.push(
            "server.listen",
            "listens beyond loopback with no admin token: set server.admin_token_env (and the \
             variable it names), or set server.admin_allow_unauthenticated = true to accept an \
             admin API that trusts every loopback peer (such as a proxy on this host)",
            Some(listen.to_string()),
        );
    }
}

fn validate_connections(c: &mut Collector, raw: &RawServer) -> ConnectionLimits {
    let d = ConnectionLimits::default();
    let timeout = |c: &mut Collector, key: &str, v: Option<&str>, default: Duration| {
        let path = format!("server.{key}");
        c.duration(&path, v, default)
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
        max_connections: in_range(
            c,
            "server.max_connections",
            raw.max_connections,
            d.max_connections,
        ),
    }
}

/// A whole number within its range in [`super::ranges::RANGES`], or the default (with the
/// error collected).
fn in_range(c: &mut Collector, path: &str, v: Option<u64>, default: usize) -> usize {
    c.count(path, v, default)
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
            for (key, set) in [
                ("store.url", raw.url.is_some()),
                ("store.url_env", raw.url_env.is_some()),
                ("store.pool_size", raw.pool_size.is_some()),
                ("store.retention", raw.retention.is_some()),
            ] {
                if set {
                    c.push(key, "only for type = \"postgres\"", None);
                }
            }
            StoreKind::Sqlite {
                path: PathBuf::from(raw.path.as_deref().unwrap_or("rampart.db")),
            }
        }
        "postgres" => validate_postgres(c, &raw),
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
        queue_capacity: c.count(
            "store.queue_capacity",
            raw.queue_capacity,
            StoreConfig::DEFAULT_QUEUE_CAPACITY,
        ),
        batch_size: c.count(
            "store.batch_size",
            raw.batch_size,
            StoreConfig::DEFAULT_BATCH_SIZE,
        ),
        flush_interval: c.duration(
            "store.flush_interval",
            raw.flush_interval.as_deref(),
            StoreConfig::DEFAULT_FLUSH_INTERVAL,
        ),
        redact: validate_redact(c, raw.redact),
    }
}

/// `type = "postgres"`: the URL comes from the environment variable `url_env` names, read when
/// the store is opened (so a config validates without it).
fn validate_postgres(c: &mut Collector, raw: &RawStore) -> StoreKind {
    if raw.url.is_some() {
        // The URL carries the password: never echo it.
        c.push(
            "store.url",
            "the URL never sits in the file: put it in an environment variable and name that \
             variable in store.url_env",
            None,
        );
    }
    if raw.path.is_some() {
        c.push("store.path", "only for type = \"sqlite\"", raw.path.clone());
    }
    let url_env = match raw.url_env.as_deref() {
        None => {
            c.push(
                "store.url_env",
                "required for type = \"postgres\": the name of the environment variable that \
                 holds the connection URL (e.g. \"RAMPART_DATABASE_URL\")",
                None,
            );
            String::new()
        }
        Some(v) if !is_env_name(v) => {
            c.push(
                "store.url_env",
                "must be an environment variable name (letters, digits, `_`; not starting \
                 with a digit)",
                Some(v.to_string()),
            );
            String::new()
        }
        Some(v) => v.to_string(),
    };
    let pool_size = c.count("store.pool_size", raw.pool_size, 16);
    let day = Duration::from_secs(86_400);
    let retention = c.duration("store.retention", raw.retention.as_deref(), 30 * day);
    StoreKind::Postgres {
        url_env,
        pool_size,
        retention,
    }
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn validate_shadow(c: &mut Collector, raw: RawShadow) -> ShadowConfig {
    let max_tokens_per_day = raw
        .max_tokens_per_day
        .map(|n| c.int("shadow.max_tokens_per_day", Some(n), 0))
        .filter(|n| *n > 0);
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
