//! One UDP socket loop's counts, added to the shared series once per batch.

use std::time::Duration;

use prometheus::Histogram;
use prometheus::local::LocalHistogram;

use super::Metrics;
use super::labels::RCODES;
use super::queries::slots;
use crate::resolve::{Outcome, Transport};

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

impl Metrics {
    /// Counts for one socket loop, added to these series by [`Tally::flush`].
    pub fn tally(&self) -> Tally {
        Tally {
            queries: vec![0; self.queries.query_slots()],
            touched: Vec::new(),
            responses: [0; RCODES.len() + 1],
            timed: vec![0; Outcome::ALL.len()],
            durations: self
                .queries
                .durations
                .iter()
                .map(Histogram::local)
                .collect(),
            cache_hits: 0,
            dropped: 0,
        }
    }
}

impl Tally {
    /// As [`super::QueryMetrics::count`], until the next flush, which gives its time.
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

    /// A datagram dropped unanswered (`amldns_queries_dropped_total`).
    pub fn dropped(&mut self) {
        self.dropped += 1;
    }

    /// Adds what was counted to `metrics`' series, each query taking
    /// `took` (its batch's time), and starts again from 0.
    pub fn flush(&mut self, metrics: &Metrics, took: Duration) {
        for q in self.touched.drain(..) {
            metrics
                .queries
                .query_series(q)
                .inc_by(std::mem::take(&mut self.queries[q]));
        }
        for (r, n) in self.responses.iter_mut().enumerate() {
            if *n > 0 {
                metrics.queries.response_series(r).inc_by(std::mem::take(n));
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
                .cache
                .hits
                .inc_by(std::mem::take(&mut self.cache_hits));
        }
        if self.dropped > 0 {
            metrics
                .queries
                .dropped
                .inc_by(std::mem::take(&mut self.dropped));
        }
    }
}
