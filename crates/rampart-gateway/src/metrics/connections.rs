//! Client connections: how many are open, and why they were closed early.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::add;

/// Client connections: `rampart_connections_*` (see `server.max_connections` and the
/// `server.*_timeout` keys).
pub struct ConnectionMetrics {
    /// `rampart_connections_accepted_total`.
    pub accepted: Counter,
    /// `rampart_connections_open`: connections open now.
    pub open: Gauge,
    /// `rampart_connections_header_timeouts_total`: closed for not sending a request's headers
    /// within `server.header_read_timeout` (slow or idle clients).
    pub header_timeouts: Counter,
    /// `rampart_connections_body_timeouts_total`: answered 408 and closed for not sending the
    /// body within `server.body_read_timeout`.
    pub body_timeouts: Counter,
    /// `rampart_connections_waited_at_cap_total`: times accepting waited because
    /// `server.max_connections` were open.
    pub waited_at_cap: Counter,
    /// `rampart_connections_accept_errors_total`: failed accepts (e.g. out of file descriptors).
    pub accept_errors: Counter,
    /// `rampart_connections_cut_at_shutdown_total`: dropped at the end of the shutdown grace.
    pub killed: Counter,
}

impl ConnectionMetrics {
    pub(super) fn register(reg: &mut Registry) -> ConnectionMetrics {
        let counter =
            |reg: &mut Registry, name: &str, help: &str| add(reg, name, help, Counter::default());
        ConnectionMetrics {
            accepted: counter(reg, "connections_accepted", "Client connections accepted"),
            open: add(
                reg,
                "connections_open",
                "Client connections open now",
                Gauge::default(),
            ),
            header_timeouts: counter(
                reg,
                "connections_header_timeouts",
                "Connections closed for not sending request headers within server.header_read_timeout",
            ),
            body_timeouts: counter(
                reg,
                "connections_body_timeouts",
                "Requests answered 408 for not sending the body within server.body_read_timeout",
            ),
            waited_at_cap: counter(
                reg,
                "connections_waited_at_cap",
                "Times accepting waited because server.max_connections were open",
            ),
            accept_errors: counter(reg, "connections_accept_errors", "Failed accepts"),
            killed: counter(
                reg,
                "connections_cut_at_shutdown",
                "Connections dropped at the end of the shutdown grace",
            ),
        }
    }
}
