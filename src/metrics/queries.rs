//! The queries clients ask: how each was answered, its rcode and latency,
//! those dropped unanswered, and workspace names the table lacks.

use std::sync::OnceLock;

use prometheus::{Histogram, IntCounter, IntCounterVec};

use super::labels::{QTYPES, RCODES, index_in, label_at};
use super::register::Register;
use crate::resolve::{Outcome, Transport};

pub const QUERIES_TOTAL: &str = "amldns_queries_total";
pub const RESPONSES_TOTAL: &str = "amldns_responses_total";
pub const QUERY_DURATION_SECONDS: &str = "amldns_query_duration_seconds";
pub const DROPPED_TOTAL: &str = "amldns_queries_dropped_total";
pub const WORKSPACE_MISSING_TOTAL: &str = "amldns_workspace_missing_total";

/// The series of queries answered and dropped. Each series of the labelled
/// families is looked up once, so that counting a query is a few atomic adds
/// and no label hashing.
pub struct QueryMetrics {
    /// By `protocol` (udp, tcp), `qtype`, `outcome`.
    queries: IntCounterVec,
    /// By `rcode`.
    responses: IntCounterVec,
    /// The series of `queries`, by [`slots`]' first index.
    query_series: Vec<OnceLock<IntCounter>>,
    /// The series of `responses`, by [`slots`]' second index.
    response_series: Vec<OnceLock<IntCounter>>,
    /// The latency histogram's series, by outcome.
    pub(super) durations: Vec<Histogram>,
    /// UDP queries dropped unanswered because too many were being answered.
    pub(super) dropped: IntCounter,
    pub workspace_missing: IntCounter,
}

impl QueryMetrics {
    pub(super) fn new(r: &Register<'_>) -> Self {
        let durations = r.histogram_vec(
            QUERY_DURATION_SECONDS,
            "Time from receiving a query until its answer is ready to send.",
            &["outcome"],
        );
        QueryMetrics {
            queries: r.counter_vec(
                QUERIES_TOTAL,
                "DNS queries by protocol, query type and outcome.",
                &["protocol", "qtype", "outcome"],
            ),
            responses: r.counter_vec(RESPONSES_TOTAL, "DNS responses by rcode.", &["rcode"]),
            query_series: (0..Transport::ALL.len() * (QTYPES.len() + 1) * Outcome::ALL.len())
                .map(|_| OnceLock::new())
                .collect(),
            response_series: (0..=RCODES.len()).map(|_| OnceLock::new()).collect(),
            durations: Outcome::ALL
                .iter()
                .map(|o| durations.with_label_values(&[o.as_str()]))
                .collect(),
            dropped: r.counter(
                DROPPED_TOTAL,
                "UDP queries dropped unanswered: too many were being answered already.",
            ),
            workspace_missing: r.counter(
                WORKSPACE_MISSING_TOTAL,
                "Forwarded queries for workspace-shaped names the table does not hold.",
            ),
        }
    }

    /// Counts one answered query.
    pub fn count(
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
        self.durations[o].observe(seconds);
    }

    /// How many [`slots`] first indexes there are.
    pub(super) fn query_slots(&self) -> usize {
        self.query_series.len()
    }

    /// The `amldns_queries_total` series of a [`slots`] index.
    pub(super) fn query_series(&self, slot: usize) -> &IntCounter {
        self.query_series[slot].get_or_init(|| {
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
    pub(super) fn response_series(&self, slot: usize) -> &IntCounter {
        self.response_series[slot]
            .get_or_init(|| self.responses.with_label_values(&[label_at(&RCODES, slot)]))
    }
}

/// Where a query is counted: its `amldns_queries_total` series (transport
/// × qtype × outcome), its `amldns_responses_total` series (rcode), and its
/// outcome's latency histogram.
pub(super) fn slots(
    transport: Transport,
    qtype: u16,
    outcome: Outcome,
    rcode: u16,
) -> (usize, usize, usize) {
    let t = Transport::ALL
        .iter()
        .position(|x| *x == transport)
        .unwrap_or(0);
    let o = Outcome::ALL.iter().position(|x| *x == outcome).unwrap_or(0);
    let q = index_in(&QTYPES, qtype);
    let slot = (t * (QTYPES.len() + 1) + q) * Outcome::ALL.len() + o;
    (slot, index_in(&RCODES, rcode), o)
}
