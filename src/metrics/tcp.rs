//! Client TCP connections.

use prometheus::IntGauge;

use super::register::Register;

pub const TCP_CONNECTIONS: &str = "amldns_tcp_connections";

/// The series of the TCP listener.
pub struct TcpMetrics {
    /// Client TCP connections open now.
    pub connections: IntGauge,
}

impl TcpMetrics {
    pub(super) fn new(r: &Register<'_>) -> Self {
        TcpMetrics {
            connections: r.gauge(TCP_CONNECTIONS, "Client TCP connections open now."),
        }
    }
}
