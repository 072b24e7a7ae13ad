//! `[azure]`: which subscriptions and management groups
//! discovery reads, how it gets its token, and how hard it may read Azure
//! Resource Manager.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::cx::Cx;
use crate::config::spec::{AuthSpec, AzureSpec, InventorySpec, PrivateEndpointsSpec};
use crate::config::{AzureAuth, AzureConfig, AzureInventory, PrivateEndpoints};
use crate::diagnostics::ConfigError;
use crate::names;

/// Five minutes costs a few reads per workspace per round, far under
/// ARM's read limits (docs/azure.md), and a new private endpoint is
/// answered within minutes.
const DEFAULT_AZURE_INTERVAL_S: u64 = 300;
/// ARM answers reads in well under a second; ten allow a slow page of a
/// large list without letting one request hold a round.
const DEFAULT_AZURE_TIMEOUT_MS: u64 = 10_000;
/// ARM refills a subscription's read bucket at 25 per second (Microsoft
/// Learn, "Understand how Azure Resource Manager throttles requests"):
/// below that a round of any size is never throttled, and leaves the bucket's
/// burst to whoever else reads the subscription.
const DEFAULT_AZURE_READS_PER_SECOND: u64 = 20;
/// IMDS, reachable from every Azure VM (and only there).
const IMDS_ENDPOINT: &str = "http://169.254.169.254";

impl Cx<'_> {
    /// `[azure]`, checked. Endpoints may be plain `http://` (a stand-in on
    /// loopback in tests, a proxy): only the defaults are fixed to https.
    pub(super) fn azure(&self, a: &Spanned<AzureSpec>) -> Result<AzureConfig, ConfigError> {
        let section = a;
        let a = a.get_ref();
        fn listed(v: &Option<Spanned<Vec<Spanned<String>>>>) -> &[Spanned<String>] {
            v.as_ref().map_or(&[], |v| v.get_ref().as_slice())
        }
        if listed(&a.subscriptions).is_empty() && listed(&a.management_groups).is_empty() {
            let message = "neither subscriptions nor management_groups lists anything: list \
                           the subscription ids or the management groups to scan";
            return Err(match (&a.subscriptions, &a.management_groups) {
                (Some(v), _) | (None, Some(v)) => self.err(v, message),
                (None, None) => self.err(section, message),
            });
        }
        let subscriptions = listed(&a.subscriptions)
            .iter()
            .map(|s| {
                if names::is_uuid(s.get_ref().trim()) {
                    Ok(s.get_ref().trim().to_ascii_lowercase())
                } else {
                    Err(self.err(
                        s,
                        format!(
                            "{:?} is not a subscription id: expected a UUID such as \
                             \"0b1f6471-1bf0-4dda-aec3-111122223333\"",
                            s.get_ref()
                        ),
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let (Some(groups), InventorySpec::Arm) = (&a.management_groups, a.inventory)
            && !groups.get_ref().is_empty()
        {
            return Err(self.err(
                groups,
                "management_groups needs inventory = \"resource-graph\": ARM lists \
                 workspaces one subscription at a time, and only Resource Graph reads \
                 the subscriptions under a management group",
            ));
        }
        let management_groups = listed(&a.management_groups)
            .iter()
            .map(|g| self.management_group(g))
            .collect::<Result<Vec<_>, _>>()?;
        let virtual_networks = a
            .virtual_networks
            .iter()
            .map(|v| {
                let id = v.get_ref().trim().trim_end_matches('/').to_ascii_lowercase();
                let (head, name) = id.rsplit_once('/').unwrap_or_default();
                if id.starts_with("/subscriptions/")
                    && head.ends_with("/providers/microsoft.network/virtualnetworks")
                    && !name.is_empty()
                {
                    Ok(id)
                } else {
                    Err(self.err(
                        v,
                        format!(
                            "{:?} is not a VNet's resource id: expected                              \"/subscriptions/<id>/resourceGroups/<group>/providers/\
                             Microsoft.Network/virtualNetworks/<name>\"",
                            v.get_ref()
                        ),
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cloud = a.cloud;
        let endpoint = |v: &Option<Spanned<String>>, default: &str, key: &str| match v {
            None => Ok(default.to_string()),
            Some(v) => self.endpoint(v, key),
        };
        Ok(AzureConfig {
            subscriptions,
            management_groups,
            resource_groups: a
                .resource_groups
                .iter()
                .map(|g| g.get_ref().trim().to_ascii_lowercase())
                .collect(),
            virtual_networks,
            auth: match a.auth {
                AuthSpec::ManagedIdentity => AzureAuth::ManagedIdentity,
                AuthSpec::WorkloadIdentity => AzureAuth::WorkloadIdentity,
                AuthSpec::Cli => AzureAuth::Cli,
            },
            inventory: match a.inventory {
                InventorySpec::ResourceGraph => AzureInventory::ResourceGraph,
                InventorySpec::Arm => AzureInventory::Arm,
            },
            private_endpoints: match a.private_endpoints {
                PrivateEndpointsSpec::Workspaces => PrivateEndpoints::Workspaces,
                PrivateEndpointsSpec::All => PrivateEndpoints::All,
            },
            client_id: a.client_id.as_ref().map(|c| c.get_ref().trim().to_string()),
            tenant_id: match &a.tenant_id {
                None => None,
                Some(t) => Some(self.tenant(t)?),
            },
            interval: Duration::from_secs(self.within(
                &a.interval_s,
                1..=86_400,
                DEFAULT_AZURE_INTERVAL_S,
                "interval_s",
            )?),
            cloud,
            arm_endpoint: endpoint(&a.arm_endpoint, cloud.arm_endpoint(), "arm_endpoint")?,
            imds_endpoint: endpoint(&a.imds_endpoint, IMDS_ENDPOINT, "imds_endpoint")?,
            ca_file: a.ca_file.as_ref().map(|f| self.relative(f)),
            timeout: Duration::from_millis(self.within(
                &a.timeout_ms,
                100..=120_000,
                DEFAULT_AZURE_TIMEOUT_MS,
                "timeout_ms",
            )?),
            max_reads_per_second: self.within(
                &a.max_reads_per_second,
                1..=10_000,
                DEFAULT_AZURE_READS_PER_SECOND,
                "max_reads_per_second",
            )? as u32,
            state_file: a.state_file.as_ref().map(|f| self.relative(f)),
        })
    }

    /// A path as written, relative to the config's folder.
    fn relative(&self, f: &Spanned<String>) -> PathBuf {
        self.path
            .parent()
            .unwrap_or(Path::new("."))
            .join(f.get_ref().trim())
    }

    /// A management group's id (not its display name), or its resource id
    /// (`/providers/Microsoft.Management/managementGroups/<id>`), as
    /// Resource Graph's `managementGroups` takes it: Azure's naming rules
    /// for them (Microsoft Learn, "Naming rules and restrictions for Azure
    /// resources"): 1 to 90 letters, digits, `-`, `_`, `.`, `(`, `)`, not
    /// ending in `.`.
    fn management_group(&self, v: &Spanned<String>) -> Result<String, ConfigError> {
        const PREFIX: &str = "/providers/microsoft.management/managementgroups/";
        let written = v.get_ref().trim();
        let id = match written.get(..PREFIX.len()) {
            Some(head) if head.eq_ignore_ascii_case(PREFIX) => &written[PREFIX.len()..],
            _ => written,
        };
        let ok = (1..=90).contains(&id.len())
            && !id.ends_with('.')
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.()".contains(c));
        if ok {
            Ok(id.to_string())
        } else {
            Err(self.err(
                v,
                format!(
                    "{written:?} is not a management group id: expected its id (not its \
                     display name), such as \"mg-landing-zones\""
                ),
            ))
        }
    }

    /// A tenant as `az --tenant` takes it: its id, or a domain of it
    /// (`contoso.onmicrosoft.com`).
    fn tenant(&self, v: &Spanned<String>) -> Result<String, ConfigError> {
        let t = v.get_ref().trim();
        if names::is_uuid(t) || (t.contains('.') && names::domain_name(t).is_ok()) {
            Ok(t.to_ascii_lowercase())
        } else {
            Err(self.err(
                v,
                format!("{t:?} is not a tenant: expected its id (a UUID) or a domain of it"),
            ))
        }
    }

    /// An `http(s)://host[:port][/path]` URL, without a final `/`.
    fn endpoint(&self, v: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
        let s = v.get_ref().trim().trim_end_matches('/');
        let ok = s.parse::<hyper::Uri>().is_ok_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https"))
                && u.authority().is_some()
                && u.query().is_none()
        });
        if !ok {
            return Err(self.err(
                v,
                format!(
                    "{key} {s:?} is not an http(s) URL such as \"https://management.azure.com\""
                ),
            ));
        }
        Ok(s.to_string())
    }
}
