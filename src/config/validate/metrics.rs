//! `[metrics]`: the HTTP listener, and who may change state through it.

use super::cx::Cx;
use crate::config::MetricsConfig;
use crate::config::spec::MetricsSpec;
use crate::diagnostics::ConfigError;

/// Who may POST (`/reload`, `/cache/flush`) by default: loopback, since a
/// metrics listener on 0.0.0.0 (for Kubernetes probes and Prometheus) must
/// not let whoever reaches it change what is served.
const DEFAULT_CONTROL_ALLOW: [&str; 2] = ["127.0.0.0/8", "::1/128"];

impl Cx<'_> {
    pub(super) fn metrics(&self, m: &MetricsSpec) -> Result<MetricsConfig, ConfigError> {
        Ok(MetricsConfig {
            listen: self.parse(&m.listen, "an address:port such as \"127.0.0.1:9153\"")?,
            control_allow: match &m.control_allow {
                Some(list) => list
                    .iter()
                    .map(|n| self.parse_net(n))
                    .collect::<Result<_, _>>()?,
                None => DEFAULT_CONTROL_ALLOW
                    .iter()
                    .map(|n| n.parse().expect("valid default"))
                    .collect(),
            },
        })
    }
}
