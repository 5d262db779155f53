//! `[server]`, `[store]` and `[shadow]`: where the gateway listens, where it stores, how it mirrors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Collector;
use crate::config::raw::*;
use crate::config::*;

pub(super) fn validate_server(c: &mut Collector, raw: RawServer) -> ServerConfig {
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
    ServerConfig {
        listen,
        admin_token_env: raw.admin_token_env.filter(|s| !s.is_empty()),
        max_body_bytes,
        shutdown_grace: c.duration(
            "server.shutdown_grace",
            raw.shutdown_grace.as_deref(),
            Duration::from_secs(30),
        ),
    }
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
