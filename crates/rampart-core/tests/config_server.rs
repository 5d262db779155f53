//! `[server]` request limits and connection hygiene, and `store.redact`: defaults, ranges, and
//! each mistake reported with its key path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use rampart_core::config::{Config, ConnectionLimits};
use rampart_core::request::Limits;

fn config(server: &str, store: &str) -> String {
    format!(
        r#"
[server]
{server}
[store]
{store}
[providers.sim]
type = "mock"
[providers.sim.models.old]
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "old"
"#
    )
}

fn errors(server: &str, store: &str) -> Vec<String> {
    match Config::from_toml_str(&config(server, store)) {
        Ok(_) => panic!("config should be invalid"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn defaults_are_safe_and_keys_are_read() {
    let c = Config::from_toml_str(&config("", "")).unwrap();
    assert_eq!(c.server.limits, Limits::default());
    assert_eq!(c.server.connections, ConnectionLimits::default());
    assert!(c.store.redact.is_empty());

    let c = Config::from_toml_str(&config(
        "max_messages = 10\nmax_json_depth = 5\nheader_read_timeout = \"2s\"\nbody_read_timeout = \"3s\"\nmax_connections = 7",
        r#"redact = ["\\d+"]"#,
    ))
    .unwrap();
    assert_eq!(
        c.server.limits,
        Limits {
            max_messages: 10,
            max_depth: 5
        }
    );
    let conn = c.server.connections;
    assert_eq!(conn.header_read_timeout, Duration::from_secs(2));
    assert_eq!(conn.body_read_timeout, Duration::from_secs(3));
    assert_eq!(conn.max_connections, 7);
    assert_eq!(c.store.redact[0].replace_all("card 1234", "#"), "card #");
}

#[test]
fn out_of_range_values_name_their_key() {
    let errs = errors(
        "max_messages = 0\nmax_json_depth = 500\nheader_read_timeout = \"0s\"\nbody_read_timeout = \"2h\"\nmax_connections = 0",
        r#"redact = ["(", "a*"]"#,
    );
    let joined = errs.join("\n");
    for want in [
        "server.max_messages: must be between 1 and 1000000 (got `0`)",
        "server.max_json_depth: must be between 2 and 127 (got `500`)",
        "server.header_read_timeout: must be between 100ms and 1h (got `0s`)",
        "server.body_read_timeout: must be between 100ms and 1h (got `2h`)",
        "server.max_connections: must be between 1 and 1000000 (got `0`)",
        "store.redact[0]: is not a valid regular expression",
        "store.redact[1]: must not match the empty string (got `a*`)",
    ] {
        assert!(joined.contains(want), "missing {want:?} in:\n{joined}");
    }
}

/// Issue 10 item 11: a `listen` beyond loopback needs an admin token, or the operator's explicit
/// `admin_allow_unauthenticated = true`.
#[test]
fn a_public_listen_needs_an_admin_token_or_an_explicit_opt_out() {
    let errs = errors(r#"listen = "0.0.0.0:8080""#, "");
    assert!(
        errs.iter().any(|e| e.starts_with(
            "server.listen: listens beyond loopback with no admin token: set server.admin_token_env"
        ) && e.ends_with("(got `0.0.0.0:8080`)")),
        "{errs:?}"
    );
    for ok in [
        "listen = \"0.0.0.0:8080\"\nadmin_token_env = \"RAMPART_ADMIN_TOKEN\"",
        "listen = \"0.0.0.0:8080\"\nadmin_allow_unauthenticated = true",
        "listen = \"127.0.0.1:8080\"",
        "listen = \"[::1]:8080\"",
    ] {
        let c = Config::from_toml_str(&config(ok, "")).unwrap();
        assert_eq!(
            c.server.admin_allow_unauthenticated,
            ok.contains("allow_unauthenticated")
        );
    }
    let errs = errors("admin_token_env = \"NOT A NAME\"", "");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("server.admin_token_env: must be an environment variable name")),
        "{errs:?}"
    );
}
