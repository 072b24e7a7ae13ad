//! Prometheus metrics, in a registry of our own so that several
//! servers can live in one test process. Names follow Prometheus conventions
//! (`amldns_` prefix, `_total` counters, `_seconds` histograms) and are public
//! constants, so tests read the same names. Every label value comes from a
//! bounded set: a client cannot add series by sending odd types or names.
//!
//! Each subsystem has its struct, in its file, declaring its series: the
//! queries, the upstreams, the cache, TCP, table loads, Azure discovery and
//! the process.

mod azure;
mod cache;
mod labels;
mod process;
mod queries;
mod register;
mod reload;
mod tally;
mod tcp;
mod upstream;

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{Registry, TextEncoder};

pub use azure::{
    AZURE_LAST_SUCCESS, AZURE_READS_SLOWED_TOTAL, AZURE_RETRIES_TOTAL, AZURE_SKIPPED,
    AZURE_SYNC_TOTAL, AZURE_WORKSPACES, AzureMetrics, AzureResult,
};
pub use cache::{CACHE_BYTES, CACHE_ENTRIES, CACHE_HITS_TOTAL, CACHE_MISSES_TOTAL, CacheMetrics};
pub use labels::{qtype_label, qtype_number, rcode_label};
pub use process::{BUILD_INFO, DEGRADED, PANICS_TOTAL, ProcessMetrics};
pub use queries::{
    DROPPED_TOTAL, QUERIES_TOTAL, QUERY_DURATION_SECONDS, QueryMetrics, RESPONSES_TOTAL,
    WORKSPACE_MISSING_TOTAL,
};
pub use reload::{
    CONFIG_INFO, LAST_RELOAD_SUCCESS, LAST_RELOAD_SUCCESSFUL, RELOADS_TOTAL, ReloadMetrics,
    ReloadResult, TABLE_GENERATION, TABLE_NAMES,
};
pub use tally::Tally;
pub use tcp::{TCP_CONNECTIONS, TcpMetrics};
pub use upstream::{
    Limit, UPSTREAM_DURATION_SECONDS, UPSTREAM_ERRORS_TOTAL, UPSTREAM_IN_FLIGHT,
    UPSTREAM_LIMITED_TOTAL, UPSTREAM_REQUESTS_TOTAL, UPSTREAM_SOCKETS, UpstreamMetrics,
};

use register::Register;

/// Every metric amldns exports, by subsystem.
pub struct Metrics {
    registry: Registry,
    pub queries: QueryMetrics,
    pub upstream: UpstreamMetrics,
    pub cache: CacheMetrics,
    pub tcp: TcpMetrics,
    pub reload: ReloadMetrics,
    pub azure: AzureMetrics,
    pub process: ProcessMetrics,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = Register(&registry);
        Metrics {
            queries: QueryMetrics::new(&r),
            upstream: UpstreamMetrics::new(&r),
            cache: CacheMetrics::new(&r),
            tcp: TcpMetrics::new(&r),
            reload: ReloadMetrics::new(&r),
            azure: AzureMetrics::new(&r),
            process: ProcessMetrics::new(&r),
            registry,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Now in Unix seconds: the unit of the `_timestamp_seconds` gauges, and of
/// the times in the reload status, which sets them.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Source;
    use crate::resolve::{Outcome, Transport};

    #[test]
    fn renders_every_family() {
        let m = Metrics::new();
        m.queries
            .count(Transport::Udp, 1, Outcome::Local, 0, 0.0001);
        m.queries
            .count(Transport::Udp, 1, Outcome::Local, 0, 0.0001);
        m.queries
            .count(Transport::Tcp, 9999, Outcome::Error, 2, 0.5);
        m.upstream.requests("127.0.0.1:53").inc();
        m.upstream.error("127.0.0.1:53", "timeout").inc();
        m.upstream.duration("127.0.0.1:53").observe(0.01);
        m.reload.count(ReloadResult::Success);
        m.process.set_degraded([Source::Reload]);
        m.reload.set_config("00aa");
        m.reload.set_config("11bb");
        let text = m.render();
        for name in [
            QUERIES_TOTAL,
            RESPONSES_TOTAL,
            QUERY_DURATION_SECONDS,
            UPSTREAM_REQUESTS_TOTAL,
            UPSTREAM_ERRORS_TOTAL,
            UPSTREAM_DURATION_SECONDS,
            CACHE_HITS_TOTAL,
            CACHE_MISSES_TOTAL,
            CACHE_ENTRIES,
            CACHE_BYTES,
            TABLE_NAMES,
            TABLE_GENERATION,
            RELOADS_TOTAL,
            LAST_RELOAD_SUCCESS,
            LAST_RELOAD_SUCCESSFUL,
            WORKSPACE_MISSING_TOTAL,
            BUILD_INFO,
            CONFIG_INFO,
            DEGRADED,
            PANICS_TOTAL,
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing:\n{text}"
            );
        }
        assert!(text.contains("amldns_build_info{version=\""));
        assert!(
            text.contains("amldns_queries_total{outcome=\"local\",protocol=\"udp\",qtype=\"A\"} 2")
        );
        assert!(text.contains(
            "amldns_queries_total{outcome=\"error\",protocol=\"tcp\",qtype=\"other\"} 1"
        ));
        assert!(text.contains("amldns_responses_total{rcode=\"SERVFAIL\"} 1"));
        assert!(text.contains("amldns_reloads_total{result=\"failure\"} 0"));
        // One config at a time.
        assert!(
            text.contains("amldns_config_info{sha256=\"11bb\"} 1"),
            "{text}"
        );
        assert!(!text.contains("00aa"), "{text}");
        assert!(
            text.contains("amldns_degraded{source=\"reload\"} 1"),
            "{text}"
        );
    }
}
