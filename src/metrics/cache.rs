//! The forwarder's answer cache: hits, misses and its size.

use prometheus::{IntCounter, IntGauge};

use super::register::Register;

pub const CACHE_HITS_TOTAL: &str = "amldns_cache_hits_total";
pub const CACHE_MISSES_TOTAL: &str = "amldns_cache_misses_total";
pub const CACHE_ENTRIES: &str = "amldns_cache_entries";
pub const CACHE_BYTES: &str = "amldns_cache_bytes";

/// The series of the answer cache.
pub struct CacheMetrics {
    pub hits: IntCounter,
    pub misses: IntCounter,
    /// Set when scraped.
    pub entries: IntGauge,
    /// The memory the answers hold, as the cache weighs them against
    /// `cache_bytes`; set when scraped.
    pub bytes: IntGauge,
}

impl CacheMetrics {
    pub(super) fn new(r: &Register<'_>) -> Self {
        CacheMetrics {
            hits: r.counter(
                CACHE_HITS_TOTAL,
                "Forwarded questions answered from the cache.",
            ),
            misses: r.counter(CACHE_MISSES_TOTAL, "Forwarded questions not in the cache."),
            entries: r.gauge(CACHE_ENTRIES, "Answers held in the cache."),
            bytes: r.gauge(
                CACHE_BYTES,
                "Memory the cached answers hold, in bytes, as weighed against cache_bytes.",
            ),
        }
    }
}
