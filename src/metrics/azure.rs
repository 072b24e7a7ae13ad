//! Azure discovery rounds: how each ended, when one last worked, and the
//! workspaces it found.

use prometheus::{Gauge, IntCounter, IntGauge};

use super::register::{Register, label_set};

pub const AZURE_SYNC_TOTAL: &str = "amldns_azure_sync_total";
pub const AZURE_LAST_SUCCESS: &str = "amldns_azure_last_success_timestamp_seconds";
pub const AZURE_WORKSPACES: &str = "amldns_azure_workspaces";
pub const AZURE_RETRIES_TOTAL: &str = "amldns_azure_retries_total";
pub const AZURE_READS_SLOWED_TOTAL: &str = "amldns_azure_reads_slowed_total";
pub const AZURE_SKIPPED: &str = "amldns_azure_skipped";

label_set! {
    /// How an Azure discovery round ended: it worked and changed the table
    /// or not, it was held (it would remove more than half the discovered names),
    /// the table refused its names, or how it failed.
    pub enum AzureResult {
        Success => "success",
        Unchanged => "unchanged",
        Held => "held",
        Rejected => "rejected",
        Token => "token",
        Denied => "denied",
        NotFound => "not_found",
        Throttled => "throttled",
        Unavailable => "unavailable",
        Timeout => "timeout",
        Network => "network",
        Malformed => "malformed",
    }
}

/// The series of Azure discovery.
pub struct AzureMetrics {
    /// Rounds by [`AzureResult`].
    rounds: [IntCounter; AzureResult::ALL.len()],
    pub last_success: Gauge,
    /// Workspaces the last good discovery found.
    pub workspaces: IntGauge,
    /// Requests to ARM, Entra ID or IMDS sent again after a failure that
    /// may pass (throttled, a server error, a connection lost).
    pub retries: IntCounter,
    /// ARM reads spaced further than `max_reads_per_second` because ARM
    /// said the identity's read budget runs low.
    pub reads_slowed: IntCounter,
    /// Resources the last round left out (`/status` lists them).
    pub skipped: IntGauge,
}

impl AzureMetrics {
    pub(super) fn new(r: &Register<'_>) -> Self {
        AzureMetrics {
            rounds: r.counter_each(
                AZURE_SYNC_TOTAL,
                "Azure discovery rounds by result.",
                "result",
                AzureResult::ALL,
                AzureResult::as_str,
            ),
            last_success: r.float_gauge(
                AZURE_LAST_SUCCESS,
                "Unix time of the last Azure discovery round that worked.",
            ),
            workspaces: r.gauge(
                AZURE_WORKSPACES,
                "Workspaces found by the last good Azure discovery.",
            ),
            retries: r.counter(
                AZURE_RETRIES_TOTAL,
                "Requests to ARM, Entra ID or IMDS sent again after a throttle, a server \
                 error or a failed connection.",
            ),
            reads_slowed: r.counter(
                AZURE_READS_SLOWED_TOTAL,
                "ARM reads spaced further than max_reads_per_second because ARM said the \
                 read budget runs low.",
            ),
            skipped: r.gauge(
                AZURE_SKIPPED,
                "Resources the last Azure discovery round left out: refused, gone, or not servable.",
            ),
        }
    }

    /// Counts a round that ended as `result`.
    pub fn count(&self, result: AzureResult) {
        self.rounds[result as usize].inc();
    }
}
