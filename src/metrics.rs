//! Prometheus metrics (SPEC §6), in a registry of our own so that several
//! servers can live in one test process. Names follow Prometheus conventions
//! (`amldns_` prefix, `_total` counters, `_seconds` histograms) and are public
//! constants, so tests read the same names. Every label value comes from a
//! bounded set: a client cannot add series by sending odd types or names.

use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub const QUERIES_TOTAL: &str = "amldns_queries_total";
pub const RESPONSES_TOTAL: &str = "amldns_responses_total";
pub const QUERY_DURATION_SECONDS: &str = "amldns_query_duration_seconds";
pub const UPSTREAM_REQUESTS_TOTAL: &str = "amldns_upstream_requests_total";
pub const UPSTREAM_ERRORS_TOTAL: &str = "amldns_upstream_errors_total";
pub const UPSTREAM_DURATION_SECONDS: &str = "amldns_upstream_duration_seconds";
pub const CACHE_HITS_TOTAL: &str = "amldns_cache_hits_total";
pub const CACHE_MISSES_TOTAL: &str = "amldns_cache_misses_total";
pub const CACHE_ENTRIES: &str = "amldns_cache_entries";
pub const TABLE_NAMES: &str = "amldns_table_names";
pub const TABLE_GENERATION: &str = "amldns_table_generation";
pub const RELOADS_TOTAL: &str = "amldns_reloads_total";
pub const LAST_RELOAD_SUCCESS: &str = "amldns_last_reload_success_timestamp_seconds";
pub const WORKSPACE_MISSING_TOTAL: &str = "amldns_workspace_missing_total";
pub const BUILD_INFO: &str = "amldns_build_info";

/// Query types with a label of their own; every other type counts as `other`.
const QTYPES: [(u16, &str); 16] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (43, "DS"),
    (48, "DNSKEY"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (252, "AXFR"),
    (255, "ANY"),
    (257, "CAA"),
];

/// The label for a query type number.
pub fn qtype_label(qtype: u16) -> &'static str {
    QTYPES
        .iter()
        .find(|(n, _)| *n == qtype)
        .map_or("other", |(_, l)| l)
}

/// The label for a response code number (RFC 6895 §2.3).
pub fn rcode_label(rcode: u16) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        16 => "BADVERS",
        _ => "other",
    }
}

/// Buckets from 50 µs (a local answer) to the 2.5 s query deadline.
const LATENCY_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
];

/// Every metric amldns exports.
pub struct Metrics {
    registry: Registry,
    /// By `protocol` (udp, tcp), `qtype`, `outcome`.
    pub queries: IntCounterVec,
    /// By `rcode`.
    pub responses: IntCounterVec,
    /// By `outcome`.
    pub query_duration: HistogramVec,
    /// By `upstream` (its address, from the config).
    pub upstream_requests: IntCounterVec,
    /// By `upstream` and `error` (timeout, network, servfail, refused, rcode).
    pub upstream_errors: IntCounterVec,
    pub upstream_duration: HistogramVec,
    pub cache_hits: IntCounter,
    pub cache_misses: IntCounter,
    /// Set when scraped.
    pub cache_entries: IntGauge,
    pub table_names: IntGauge,
    pub table_generation: IntGauge,
    /// By `result` (success, failure).
    pub reloads: IntCounterVec,
    pub last_reload_success: Gauge,
    pub workspace_missing: IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let histogram_vec = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                labels,
            )
            .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("registered once");
            h
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("registered once");
            g
        };
        let last_reload_success = Gauge::new(
            LAST_RELOAD_SUCCESS,
            "Unix time of the last successful table load.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(last_reload_success.clone()))
            .expect("registered once");
        let build_info = IntGaugeVec::new(
            Opts::new(BUILD_INFO, "Always 1; the version amldns was built from."),
            &["version"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(build_info.clone()))
            .expect("registered once");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        Metrics {
            queries: counter_vec(
                QUERIES_TOTAL,
                "DNS queries by protocol, query type and outcome.",
                &["protocol", "qtype", "outcome"],
            ),
            responses: counter_vec(RESPONSES_TOTAL, "DNS responses by rcode.", &["rcode"]),
            query_duration: histogram_vec(
                QUERY_DURATION_SECONDS,
                "Time from receiving a query to sending its answer.",
                &["outcome"],
            ),
            upstream_requests: counter_vec(
                UPSTREAM_REQUESTS_TOTAL,
                "Questions sent to each upstream.",
                &["upstream"],
            ),
            upstream_errors: counter_vec(
                UPSTREAM_ERRORS_TOTAL,
                "Upstream questions that got no usable answer, by kind.",
                &["upstream", "error"],
            ),
            upstream_duration: histogram_vec(
                UPSTREAM_DURATION_SECONDS,
                "Time each upstream took to answer.",
                &["upstream"],
            ),
            cache_hits: counter(
                CACHE_HITS_TOTAL,
                "Forwarded questions answered from the cache.",
            ),
            cache_misses: counter(CACHE_MISSES_TOTAL, "Forwarded questions not in the cache."),
            cache_entries: gauge(CACHE_ENTRIES, "Answers held in the cache."),
            table_names: gauge(TABLE_NAMES, "Names in the zone table being served."),
            table_generation: gauge(
                TABLE_GENERATION,
                "Generation of the zone table being served (the SOA serial).",
            ),
            reloads: counter_vec(RELOADS_TOTAL, "Table loads by result.", &["result"]),
            last_reload_success,
            workspace_missing: counter(
                WORKSPACE_MISSING_TOTAL,
                "Forwarded queries for workspace-shaped names the table does not hold.",
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_bounded_sets() {
        assert_eq!(qtype_label(1), "A");
        assert_eq!(qtype_label(65), "HTTPS");
        let others: std::collections::HashSet<_> = (0..=u16::MAX).map(qtype_label).collect();
        assert_eq!(others.len(), QTYPES.len() + 1);
        assert_eq!(rcode_label(3), "NXDOMAIN");
        assert_eq!(rcode_label(4095), "other");
    }

    #[test]
    fn renders_every_family() {
        let m = Metrics::new();
        m.queries.with_label_values(&["udp", "A", "local"]).inc();
        m.responses.with_label_values(&["NOERROR"]).inc();
        m.query_duration
            .with_label_values(&["local"])
            .observe(0.0001);
        m.upstream_requests
            .with_label_values(&["127.0.0.1:53"])
            .inc();
        m.upstream_errors
            .with_label_values(&["127.0.0.1:53", "timeout"])
            .inc();
        m.upstream_duration
            .with_label_values(&["127.0.0.1:53"])
            .observe(0.01);
        m.reloads.with_label_values(&["success"]).inc();
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
            TABLE_NAMES,
            TABLE_GENERATION,
            RELOADS_TOTAL,
            LAST_RELOAD_SUCCESS,
            WORKSPACE_MISSING_TOTAL,
            BUILD_INFO,
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing:\n{text}"
            );
        }
        assert!(text.contains("amldns_build_info{version=\""));
    }
}
