//! The questions forwarded upstream: per upstream, its requests, errors and
//! latency; across them, the limits that turn questions away, the questions
//! out now and the sockets open for them.

use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge};

use super::register::{Register, label_set};

pub const UPSTREAM_REQUESTS_TOTAL: &str = "amldns_upstream_requests_total";
pub const UPSTREAM_ERRORS_TOTAL: &str = "amldns_upstream_errors_total";
pub const UPSTREAM_DURATION_SECONDS: &str = "amldns_upstream_duration_seconds";
pub const UPSTREAM_LIMITED_TOTAL: &str = "amldns_upstream_limited_total";
pub const UPSTREAM_IN_FLIGHT: &str = "amldns_upstream_in_flight";
pub const UPSTREAM_SOCKETS: &str = "amldns_upstream_sockets";

label_set! {
    /// Which upstream limit turned a question away.
    pub enum Limit {
        /// `max_in_flight` questions were being asked already.
        InFlight => "in_flight",
        /// `max_qps` was reached.
        Rate => "rate",
        /// Every place in flight was taken: the question, already asked,
        /// gave its place to another client's, its client holding the most.
        Displaced => "displaced",
    }
}

/// The series of the forwarding side. The per-upstream series are labelled
/// by `upstream`, its address as the config gives it.
pub struct UpstreamMetrics {
    requests: IntCounterVec,
    /// By `upstream` and `error` (the forwarder's bounded set of kinds).
    errors: IntCounterVec,
    duration: HistogramVec,
    /// Questions turned away, by [`Limit`].
    limited: [IntCounter; Limit::ALL.len()],
    /// Questions being asked upstream now.
    pub in_flight: IntGauge,
    /// UDP sockets open now for questions to the upstreams, one per
    /// question being asked.
    pub sockets: IntGauge,
}

impl UpstreamMetrics {
    pub(super) fn new(r: &Register<'_>) -> Self {
        UpstreamMetrics {
            requests: r.counter_vec(
                UPSTREAM_REQUESTS_TOTAL,
                "Questions sent to each upstream.",
                &["upstream"],
            ),
            errors: r.counter_vec(
                UPSTREAM_ERRORS_TOTAL,
                "Upstream questions that got no usable answer, by kind.",
                &["upstream", "error"],
            ),
            duration: r.histogram_vec(
                UPSTREAM_DURATION_SECONDS,
                "Time each upstream took to answer.",
                &["upstream"],
            ),
            limited: r.counter_each(
                UPSTREAM_LIMITED_TOTAL,
                "Questions turned away at an upstream limit (answered SERVFAIL or stale): not sent, or (displaced) given up for another client's.",
                "limit",
                Limit::ALL,
                Limit::as_str,
            ),
            in_flight: r.gauge(UPSTREAM_IN_FLIGHT, "Questions being asked upstream now."),
            sockets: r.gauge(
                UPSTREAM_SOCKETS,
                "UDP sockets open now for questions to the upstreams, one per question being asked, each on a random port.",
            ),
        }
    }

    /// One upstream's request counter.
    pub fn requests(&self, upstream: &str) -> IntCounter {
        self.requests.with_label_values(&[upstream])
    }

    /// One upstream's latency histogram.
    pub fn duration(&self, upstream: &str) -> Histogram {
        self.duration.with_label_values(&[upstream])
    }

    /// One upstream's error counter of `kind` (the forwarder's bounded set
    /// of kinds); it exists, at zero, from when it is asked for.
    pub fn error(&self, upstream: &str, kind: &str) -> IntCounter {
        self.errors.with_label_values(&[upstream, kind])
    }

    /// Counts a question an upstream limit turned away.
    pub fn limited(&self, limit: Limit) {
        self.limited[limit as usize].inc();
    }

    /// Drops the series of an upstream no longer configured, its errors of
    /// each of `error_kinds`.
    pub fn forget(&self, upstream: &str, error_kinds: &[&str]) {
        let _ = self.requests.remove_label_values(&[upstream]);
        let _ = self.duration.remove_label_values(&[upstream]);
        for kind in error_kinds {
            let _ = self.errors.remove_label_values(&[upstream, kind]);
        }
    }
}
