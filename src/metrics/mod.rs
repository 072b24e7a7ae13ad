//! Prometheus metrics (SPEC §6), in a registry of our own so that several
//! servers can live in one test process. Names follow Prometheus conventions
//! (`amldns_` prefix, `_total` counters, `_seconds` histograms) and are public
//! constants, so tests read the same names. Every label value comes from a
//! bounded set: a client cannot add series by sending odd types or names.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::resolve::{Outcome, Transport};
use prometheus::local::LocalHistogram;
use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
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
pub const LAST_RELOAD_SUCCESSFUL: &str = "amldns_last_reload_successful";
pub const WORKSPACE_MISSING_TOTAL: &str = "amldns_workspace_missing_total";
pub const BUILD_INFO: &str = "amldns_build_info";
pub const CONFIG_INFO: &str = "amldns_config_info";
pub const DEGRADED: &str = "amldns_degraded";
pub const PANICS_TOTAL: &str = "amldns_panics_total";
pub const UPSTREAM_LIMITED_TOTAL: &str = "amldns_upstream_limited_total";
pub const UPSTREAM_IN_FLIGHT: &str = "amldns_upstream_in_flight";
pub const UPSTREAM_SOCKETS: &str = "amldns_upstream_sockets";
pub const TCP_CONNECTIONS: &str = "amldns_tcp_connections";
pub const DROPPED_TOTAL: &str = "amldns_queries_dropped_total";
pub const AZURE_SYNC_TOTAL: &str = "amldns_azure_sync_total";
pub const AZURE_LAST_SUCCESS: &str = "amldns_azure_last_success_timestamp_seconds";
pub const AZURE_WORKSPACES: &str = "amldns_azure_workspaces";

/// The `result`s of an Azure discovery round (SPEC §8): it worked and
/// changed the table or not, it was held (it would drop more than half the
/// workspaces), the table refused its names, or how it failed.
pub const AZURE_RESULTS: [&str; 11] = [
    "success",
    "unchanged",
    "held",
    "rejected",
    "token",
    "denied",
    "throttled",
    "unavailable",
    "timeout",
    "network",
    "malformed",
];

/// Which upstream limit turned a question away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_in_flight` questions were being asked already.
    InFlight,
    /// `max_qps` was reached.
    Rate,
}

impl Limit {
    const ALL: [Limit; 2] = [Limit::InFlight, Limit::Rate];

    pub fn as_str(self) -> &'static str {
        match self {
            Limit::InFlight => "in_flight",
            Limit::Rate => "rate",
        }
    }
}

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

/// Where `n` stands in a table of (number, label), or the table's length for `other`.
fn index_in(table: &[(u16, &str)], n: u16) -> usize {
    table
        .iter()
        .position(|(x, _)| *x == n)
        .unwrap_or(table.len())
}

/// The label of `n` in a table of (number, label), or `other`.
fn label_in(table: &'static [(u16, &'static str)], n: u16) -> &'static str {
    label_at(table, index_in(table, n))
}

/// The label of an [`index_in`] index: past the table's end, `other`.
fn label_at(table: &'static [(u16, &'static str)], i: usize) -> &'static str {
    table.get(i).map_or("other", |(_, l)| l)
}

/// The label for a query type number.
pub fn qtype_label(qtype: u16) -> &'static str {
    label_in(&QTYPES, qtype)
}

/// The number of a query type with a label of its own (`AAAA` → 28), any case.
pub fn qtype_number(label: &str) -> Option<u16> {
    QTYPES
        .iter()
        .find(|(_, l)| l.eq_ignore_ascii_case(label))
        .map(|(n, _)| *n)
}

/// Response codes with a label of their own (RFC 6895 §2.3); the rest are `other`.
const RCODES: [(u16, &str); 7] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (16, "BADVERS"),
];

/// The label for a response code number.
pub fn rcode_label(rcode: u16) -> &'static str {
    label_in(&RCODES, rcode)
}

/// Where a query is counted: its `amldns_queries_total` series (transport
/// × qtype × outcome), its `amldns_responses_total` series (rcode), and its
/// outcome's latency histogram.
fn slots(transport: Transport, qtype: u16, outcome: Outcome, rcode: u16) -> (usize, usize, usize) {
    let t = Transport::ALL
        .iter()
        .position(|x| *x == transport)
        .unwrap_or(0);
    let o = Outcome::ALL.iter().position(|x| *x == outcome).unwrap_or(0);
    let q = index_in(&QTYPES, qtype);
    let slot = (t * (QTYPES.len() + 1) + q) * Outcome::ALL.len() + o;
    (slot, index_in(&RCODES, rcode), o)
}

/// One UDP socket loop's counts, added to the shared series once per batch
/// of datagrams ([`Tally::flush`]) rather than once per query. With a loop
/// on every core, a shared counter written per query is a cache line moved
/// between cores per query; written per batch, up to 32 times less often,
/// and not at all while the batch is answered.
pub struct Tally {
    /// By [`slots`]' first index.
    queries: Vec<u64>,
    /// The slots of `queries` counted since the last flush.
    touched: Vec<usize>,
    responses: [u64; RCODES.len() + 1],
    /// Queries answered since the last flush, by outcome: each takes the
    /// batch's time.
    timed: Vec<u64>,
    /// By outcome.
    durations: Vec<LocalHistogram>,
    cache_hits: u64,
    dropped: u64,
}

impl Tally {
    /// As [`Metrics::query`], until the next flush, which gives its time.
    pub fn query(&mut self, transport: Transport, qtype: u16, outcome: Outcome, rcode: u16) {
        let (q, r, o) = slots(transport, qtype, outcome, rcode);
        if self.queries[q] == 0 {
            self.touched.push(q);
        }
        self.queries[q] += 1;
        self.responses[r] += 1;
        self.timed[o] += 1;
    }

    /// A forwarded question answered from the cache (`amldns_cache_hits_total`).
    pub fn cache_hit(&mut self) {
        self.cache_hits += 1;
    }

    /// A datagram dropped unanswered (`amldns_dropped_total`).
    pub fn dropped(&mut self) {
        self.dropped += 1;
    }

    /// Adds what was counted to `metrics`' series, each query taking
    /// `took` (its batch's time), and starts again from 0.
    pub fn flush(&mut self, metrics: &Metrics, took: Duration) {
        for q in self.touched.drain(..) {
            metrics
                .query_series(q)
                .inc_by(std::mem::take(&mut self.queries[q]));
        }
        for (r, n) in self.responses.iter_mut().enumerate() {
            if *n > 0 {
                metrics.response_series(r).inc_by(std::mem::take(n));
            }
        }
        let seconds = took.as_secs_f64();
        for (d, n) in self.durations.iter().zip(&mut self.timed) {
            for _ in 0..std::mem::take(n) {
                d.observe(seconds);
            }
            d.flush();
        }
        if self.cache_hits > 0 {
            metrics
                .cache_hits
                .inc_by(std::mem::take(&mut self.cache_hits));
        }
        if self.dropped > 0 {
            metrics.dropped.inc_by(std::mem::take(&mut self.dropped));
        }
    }
}

/// Series handles looked up once, so that counting a query is a few atomic
/// adds and no label hashing.
struct Handles {
    /// By transport × qtype × outcome.
    queries: Vec<OnceLock<IntCounter>>,
    /// By rcode.
    responses: Vec<OnceLock<IntCounter>>,
    /// By outcome.
    durations: Vec<Histogram>,
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
    /// By `limit` (in_flight, rate): questions not sent upstream.
    upstream_limited: [IntCounter; 2],
    /// Questions being asked upstream now.
    pub upstream_in_flight: IntGauge,
    /// Idle UDP sockets kept for questions to the upstreams.
    pub upstream_sockets: IntGauge,
    /// Client TCP connections open now.
    pub tcp_connections: IntGauge,
    /// UDP queries dropped unanswered because too many were being answered.
    pub dropped: IntCounter,
    pub cache_hits: IntCounter,
    pub cache_misses: IntCounter,
    /// Set when scraped.
    pub cache_entries: IntGauge,
    pub table_names: IntGauge,
    pub table_generation: IntGauge,
    /// By `result` (success, failure).
    pub reloads: IntCounterVec,
    pub last_reload_success: Gauge,
    /// 1 when the last reload succeeded, 0 when the config on disk fails to
    /// load (the table served is older than it).
    pub last_reload_successful: IntGauge,
    pub workspace_missing: IntCounter,
    /// 1 for the `sha256` of the config file being served; one series.
    config_info: IntGaugeVec,
    /// By `source` (reload, azure…): 1 while that source has a problem
    /// (`/healthz` says `degraded`); no series while all is well.
    degraded: IntGaugeVec,
    /// Panics caught in query tasks (see `logging::count_panics`).
    pub panics: IntCounter,
    /// Azure discovery rounds by `result` ([`AZURE_RESULTS`]).
    pub azure_sync: IntCounterVec,
    pub azure_last_success: Gauge,
    /// Workspaces the last good discovery found.
    pub azure_workspaces: IntGauge,
    handles: Handles,
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
        let config_info = IntGaugeVec::new(
            Opts::new(
                CONFIG_INFO,
                "Always 1; the SHA-256 of the config file the served table was loaded from.",
            ),
            &["sha256"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(config_info.clone()))
            .expect("registered once");
        let degraded = IntGaugeVec::new(
            Opts::new(
                DEGRADED,
                "1 while a source (the last reload, an Azure round) has failed: /healthz says \
                 degraded, and the last good table serves.",
            ),
            &["source"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(degraded.clone()))
            .expect("registered once");

        let queries = counter_vec(
            QUERIES_TOTAL,
            "DNS queries by protocol, query type and outcome.",
            &["protocol", "qtype", "outcome"],
        );
        let responses = counter_vec(RESPONSES_TOTAL, "DNS responses by rcode.", &["rcode"]);
        let query_duration = histogram_vec(
            QUERY_DURATION_SECONDS,
            "Time from receiving a query until its answer is ready to send.",
            &["outcome"],
        );
        let handles = Handles {
            queries: (0..Transport::ALL.len() * (QTYPES.len() + 1) * Outcome::ALL.len())
                .map(|_| OnceLock::new())
                .collect(),
            responses: (0..=RCODES.len()).map(|_| OnceLock::new()).collect(),
            durations: Outcome::ALL
                .iter()
                .map(|o| query_duration.with_label_values(&[o.as_str()]))
                .collect(),
        };
        let reloads = counter_vec(RELOADS_TOTAL, "Table loads by result.", &["result"]);
        // Both results exist from the start, so that the first failure is an
        // increase that `increase()` and alerts can see.
        for result in ["success", "failure"] {
            reloads.with_label_values(&[result]);
        }
        let azure_sync = counter_vec(
            AZURE_SYNC_TOTAL,
            "Azure discovery rounds by result.",
            &["result"],
        );
        for result in AZURE_RESULTS {
            azure_sync.with_label_values(&[result]);
        }
        let azure_last_success = Gauge::new(
            AZURE_LAST_SUCCESS,
            "Unix time of the last Azure discovery round that worked.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(azure_last_success.clone()))
            .expect("registered once");
        let limited = counter_vec(
            UPSTREAM_LIMITED_TOTAL,
            "Questions not sent upstream because a limit was reached (answered SERVFAIL or stale).",
            &["limit"],
        );
        Metrics {
            upstream_limited: Limit::ALL.map(|l| limited.with_label_values(&[l.as_str()])),
            upstream_in_flight: gauge(UPSTREAM_IN_FLIGHT, "Questions being asked upstream now."),
            upstream_sockets: gauge(
                UPSTREAM_SOCKETS,
                "Idle UDP sockets kept open for questions to the upstreams, each on a random port.",
            ),
            tcp_connections: gauge(TCP_CONNECTIONS, "Client TCP connections open now."),
            dropped: counter(
                DROPPED_TOTAL,
                "UDP queries dropped unanswered: too many were being answered already.",
            ),
            queries,
            responses,
            query_duration,
            handles,
            reloads,
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
            last_reload_success,
            last_reload_successful: gauge(
                LAST_RELOAD_SUCCESSFUL,
                "1 if the last table load succeeded, 0 if the config on disk does not load.",
            ),
            workspace_missing: counter(
                WORKSPACE_MISSING_TOTAL,
                "Forwarded queries for workspace-shaped names the table does not hold.",
            ),
            config_info,
            degraded,
            panics: counter(PANICS_TOTAL, "Panics (bugs) caught; each is also logged."),
            azure_sync,
            azure_last_success,
            azure_workspaces: gauge(
                AZURE_WORKSPACES,
                "Workspaces found by the last good Azure discovery.",
            ),
            registry,
        }
    }

    /// Counts one answered query.
    pub fn query(
        &self,
        transport: Transport,
        qtype: u16,
        outcome: Outcome,
        rcode: u16,
        seconds: f64,
    ) {
        let (q, r, o) = slots(transport, qtype, outcome, rcode);
        self.query_series(q).inc();
        self.response_series(r).inc();
        self.handles.durations[o].observe(seconds);
    }

    /// The `amldns_queries_total` series of a [`slots`] index.
    fn query_series(&self, slot: usize) -> &IntCounter {
        self.handles.queries[slot].get_or_init(|| {
            let (t, q, o) = (
                slot / ((QTYPES.len() + 1) * Outcome::ALL.len()),
                slot / Outcome::ALL.len() % (QTYPES.len() + 1),
                slot % Outcome::ALL.len(),
            );
            self.queries.with_label_values(&[
                Transport::ALL[t].as_str(),
                label_at(&QTYPES, q),
                Outcome::ALL[o].as_str(),
            ])
        })
    }

    /// The `amldns_responses_total` series of a [`slots`] index.
    fn response_series(&self, slot: usize) -> &IntCounter {
        self.handles.responses[slot]
            .get_or_init(|| self.responses.with_label_values(&[label_at(&RCODES, slot)]))
    }

    /// Counts for one socket loop, added to these series by [`Tally::flush`].
    pub fn tally(&self) -> Tally {
        Tally {
            queries: vec![0; self.handles.queries.len()],
            touched: Vec::new(),
            responses: [0; RCODES.len() + 1],
            timed: vec![0; Outcome::ALL.len()],
            durations: self
                .handles
                .durations
                .iter()
                .map(Histogram::local)
                .collect(),
            cache_hits: 0,
            dropped: 0,
        }
    }

    /// The served table now comes from the config file whose hash is
    /// `sha256`: that series alone is 1 (the old one goes, so that a
    /// dashboard sees one value per replica).
    pub fn set_config(&self, sha256: &str) {
        self.config_info.reset();
        self.config_info.with_label_values(&[sha256]).set(1);
    }

    /// The sources that have a problem now (see [`crate::health`]).
    pub fn set_degraded<'a>(&self, sources: impl IntoIterator<Item = &'a str>) {
        self.degraded.reset();
        for source in sources {
            self.degraded.with_label_values(&[source]).set(1);
        }
    }

    /// Counts a question an upstream limit turned away.
    pub fn upstream_limited(&self, limit: Limit) {
        self.upstream_limited[limit as usize].inc();
    }

    /// One upstream's error counter of `kind` (the forwarder's bounded set
    /// of kinds); it exists, at zero, from when it is asked for.
    pub fn upstream_error(&self, upstream: &str, kind: &str) -> IntCounter {
        self.upstream_errors.with_label_values(&[upstream, kind])
    }

    /// Drops the series of an upstream no longer configured, its errors of
    /// each of `error_kinds`.
    pub fn forget_upstream(&self, upstream: &str, error_kinds: &[&str]) {
        let _ = self.upstream_requests.remove_label_values(&[upstream]);
        let _ = self.upstream_duration.remove_label_values(&[upstream]);
        for kind in error_kinds {
            let _ = self.upstream_errors.remove_label_values(&[upstream, kind]);
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

    #[test]
    fn labels_come_from_bounded_sets() {
        assert_eq!(qtype_label(1), "A");
        assert_eq!(qtype_label(65), "HTTPS");
        assert_eq!(qtype_number("https"), Some(65));
        assert_eq!(qtype_number("other"), None);
        let others: std::collections::HashSet<_> = (0..=u16::MAX).map(qtype_label).collect();
        assert_eq!(others.len(), QTYPES.len() + 1);
        assert_eq!(rcode_label(3), "NXDOMAIN");
        assert_eq!(rcode_label(4095), "other");
    }

    #[test]
    fn renders_every_family() {
        let m = Metrics::new();
        m.query(Transport::Udp, 1, Outcome::Local, 0, 0.0001);
        m.query(Transport::Udp, 1, Outcome::Local, 0, 0.0001);
        m.query(Transport::Tcp, 9999, Outcome::Error, 2, 0.5);
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
        m.set_degraded(["reload"]);
        m.set_config("00aa");
        m.set_config("11bb");
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
