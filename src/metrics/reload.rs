//! Table loads: how each ended, and what the served table is (its size,
//! generation, time and config file).

use prometheus::{Gauge, IntCounter, IntGauge, IntGaugeVec};

use super::register::{Register, label_set};

pub const TABLE_NAMES: &str = "amldns_table_names";
pub const TABLE_GENERATION: &str = "amldns_table_generation";
pub const RELOADS_TOTAL: &str = "amldns_reloads_total";
pub const LAST_RELOAD_SUCCESS: &str = "amldns_last_reload_success_timestamp_seconds";
pub const LAST_RELOAD_SUCCESSFUL: &str = "amldns_last_reload_successful";
pub const CONFIG_INFO: &str = "amldns_config_info";

label_set! {
    /// How a table load ended.
    pub enum ReloadResult {
        Success => "success",
        Failure => "failure",
    }
}

/// The series of table loads.
pub struct ReloadMetrics {
    /// Loads by [`ReloadResult`].
    reloads: [IntCounter; ReloadResult::ALL.len()],
    pub table_names: IntGauge,
    pub table_generation: IntGauge,
    pub last_success: Gauge,
    /// 1 when the last reload succeeded, 0 when the config on disk fails to
    /// load (the table served is older than it).
    pub last_successful: IntGauge,
    /// 1 for the `sha256` of the config file being served; one series.
    config_info: IntGaugeVec,
}

impl ReloadMetrics {
    pub(super) fn new(r: &Register<'_>) -> Self {
        ReloadMetrics {
            reloads: r.counter_each(
                RELOADS_TOTAL,
                "Table loads by result.",
                "result",
                ReloadResult::ALL,
                ReloadResult::as_str,
            ),
            table_names: r.gauge(TABLE_NAMES, "Names in the zone table being served."),
            table_generation: r.gauge(
                TABLE_GENERATION,
                "Generation of the zone table being served (the SOA serial).",
            ),
            last_success: r.float_gauge(
                LAST_RELOAD_SUCCESS,
                "Unix time of the last successful table load.",
            ),
            last_successful: r.gauge(
                LAST_RELOAD_SUCCESSFUL,
                "1 if the last table load succeeded, 0 if the config on disk does not load.",
            ),
            config_info: r.gauge_vec(
                CONFIG_INFO,
                "Always 1; the SHA-256 of the config file the served table was loaded from.",
                &["sha256"],
            ),
        }
    }

    /// Counts a load that ended as `result`.
    pub fn count(&self, result: ReloadResult) {
        self.reloads[result as usize].inc();
    }

    /// The served table now comes from the config file whose hash is
    /// `sha256`: that series alone is 1 (the old one goes, so that a
    /// dashboard sees one value per replica).
    pub fn set_config(&self, sha256: &str) {
        self.config_info.reset();
        self.config_info.with_label_values(&[sha256]).set(1);
    }
}
