//! The process as a whole: the version it was built from, the panics it
//! caught, and the sources that degrade what it serves.

use prometheus::{IntCounter, IntGaugeVec};

use super::register::Register;
use crate::health;

pub const BUILD_INFO: &str = "amldns_build_info";
pub const DEGRADED: &str = "amldns_degraded";
pub const PANICS_TOTAL: &str = "amldns_panics_total";

/// The series of the process.
pub struct ProcessMetrics {
    /// By `source` ([`health::Source`]): 1 while that source has a problem
    /// (`/healthz` says `degraded`); no series while all is well.
    degraded: IntGaugeVec,
    /// Panics caught in query tasks (see `logging::count_panics`).
    pub panics: IntCounter,
}

impl ProcessMetrics {
    pub(super) fn new(r: &Register<'_>) -> Self {
        // Set once and not kept: the version does not change while it runs.
        r.gauge_vec(
            BUILD_INFO,
            "Always 1; the version amldns was built from.",
            &["version"],
        )
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
        ProcessMetrics {
            degraded: r.gauge_vec(
                DEGRADED,
                "1 while a source (the last reload, an Azure round) has failed: /healthz says \
                 degraded, and the last good table serves.",
                &["source"],
            ),
            panics: r.counter(PANICS_TOTAL, "Panics (bugs) caught; each is also logged."),
        }
    }

    /// The sources that have a problem now (see [`crate::health`]).
    pub fn set_degraded(&self, sources: impl IntoIterator<Item = health::Source>) {
        self.degraded.reset();
        for source in sources {
            self.degraded.with_label_values(&[source.as_str()]).set(1);
        }
    }
}
