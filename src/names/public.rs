//! Which names must stay public: a local name must not take a public name of
//! a zone of the private-link catalogue away from the public DNS.

use super::catalogue::{Layout, public_zones};
use super::syntax::is_at_or_below;

/// Why a name must not be local: it would take a public name of a public
/// zone of the catalogue (Azure ML's, storage's, Key Vault's…) away from the
/// public DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Captured {
    /// The name is this zone's apex or a name above it (`api.azureml.ms`,
    /// `ml.azure.com`), or a wildcard directly under one of those.
    Zone(&'static str),
    /// A name under this zone that every workspace of a region shares
    /// (`eastus.api.azureml.ms`: discovery, MLflow, registries), or a
    /// wildcard that would also take other workspaces' names
    /// (`*.api.azureml.ms`, `*.tundra.eastus.api.azureml.ms`).
    Shared(&'static str),
}

impl std::fmt::Display for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Captured::Zone(z) => write!(f, "it is the public zone {z}, or above it"),
            Captured::Shared(z) => write!(
                f,
                "names at that level of {z} are shared by every workspace of a region \
                 (discovery, MLflow, registries, other workspaces)"
            ),
        }
    }
}

/// Whether a local `name` (as [`domain_name`](super::domain_name) stores it, `*.` first for a
/// wildcard) would capture a name that must keep resolving publicly, and why.
/// The private-link zones (`privatelink.api.azureml.ms`…) are private: any
/// name under them may be local.
pub fn captures_public(name: &str) -> Option<Captured> {
    let (wildcard, body) = match name.strip_prefix("*.") {
        Some(parent) => (true, parent),
        None => (false, name),
    };
    for (zone, layout) in public_zones() {
        if is_at_or_below(zone, body) {
            return Some(Captured::Zone(zone));
        }
        let Some(below) = body.strip_suffix(zone).and_then(|b| b.strip_suffix('.')) else {
            continue;
        };
        let labels: Vec<&str> = below.split('.').collect();
        if labels.last() == Some(&"privatelink") {
            continue;
        }
        let shared = match layout {
            Layout::Api => labels.len() <= 2,
            Layout::Notebooks => labels.len() == 1 && !labels[0].starts_with("ml-"),
            Layout::Regional => labels.len() == 1 && !wildcard,
            Layout::ApexOnly => false,
        };
        if shared {
            return Some(Captured::Shared(zone));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = crate::fixtures::GUID;

    #[test]
    fn public_names_stay_public() {
        use Captured::{Shared, Zone};
        let api = "api.azureml.ms";
        let cases: Vec<(String, Option<Captured>)> = vec![
            // Zone apexes and the names above them, in every cloud.
            ("api.azureml.ms".into(), Some(Zone(api))),
            (
                "notebooks.azure.net".into(),
                Some(Zone("notebooks.azure.net")),
            ),
            (
                "instances.azureml.ms".into(),
                Some(Zone("instances.azureml.ms")),
            ),
            (
                "instances.ml.azure.ms".into(),
                Some(Zone("instances.ml.azure.ms")),
            ),
            (
                "inference.ml.azure.com".into(),
                Some(Zone("inference.ml.azure.com")),
            ),
            ("ml.azure.com".into(), Some(Zone("inference.ml.azure.com"))),
            ("azureml.ms".into(), Some(Zone(api))),
            ("aznbcontent.net".into(), Some(Zone("aznbcontent.net"))),
            ("api.ml.azure.cn".into(), Some(Zone("api.ml.azure.cn"))),
            ("ml.azure.us".into(), Some(Zone("api.ml.azure.us"))),
            // A wildcard directly under an apex or above one.
            ("*.api.azureml.ms".into(), Some(Zone(api))),
            ("*.azureml.ms".into(), Some(Zone(api))),
            (
                "*.ml.azure.com".into(),
                Some(Zone("inference.ml.azure.com")),
            ),
            ("*.aznbcontent.net".into(), Some(Zone("aznbcontent.net"))),
            (
                "*.inference.ml.azure.cn".into(),
                Some(Zone("inference.ml.azure.cn")),
            ),
            // Names every workspace of a region shares, and wildcards over them.
            ("eastus.api.azureml.ms".into(), Some(Shared(api))),
            ("tundra.eastus.api.azureml.ms".into(), Some(Shared(api))),
            ("*.tundra.eastus.api.azureml.ms".into(), Some(Shared(api))),
            (
                "*.workspace.eastus.api.azureml.ms".into(),
                Some(Shared(api)),
            ),
            ("*.eastus.api.azureml.ms".into(), Some(Shared(api))),
            ("eastus.cert.api.azureml.ms".into(), Some(Shared(api))),
            (
                "chinaeast2.api.ml.azure.cn".into(),
                Some(Shared("api.ml.azure.cn")),
            ),
            (
                "usgovvirginia.api.ml.azure.us".into(),
                Some(Shared("api.ml.azure.us")),
            ),
            (
                "eastus.notebooks.azure.net".into(),
                Some(Shared("notebooks.azure.net")),
            ),
            (
                "*.eastus.notebooks.azure.net".into(),
                Some(Shared("notebooks.azure.net")),
            ),
            (
                "eastus.instances.azureml.ms".into(),
                Some(Shared("instances.azureml.ms")),
            ),
            (
                "eastus.inference.ml.azure.com".into(),
                Some(Shared("inference.ml.azure.com")),
            ),
            // A workspace's own names, and the opt-in regional wildcards.
            (format!("{GUID}.workspace.eastus.api.azureml.ms"), None),
            (format!("{GUID}.workspace.eastus.cert.api.azureml.ms"), None),
            (
                format!("ml-mlw-eastus-{GUID}.eastus.notebooks.azure.net"),
                None,
            ),
            (format!("ml-mlw-eastus-{GUID}.notebooks.azure.net"), None),
            ("ci-1.eastus.instances.azureml.ms".into(), None),
            ("*.eastus.instances.azureml.ms".into(), None),
            ("*.eastus.instances.ml.azure.ms".into(), None),
            ("*.eastus.inference.ml.azure.com".into(), None),
            ("fraud.eastus.inference.ml.azure.com".into(), None),
            // Private-link zones are private, apex and wildcards included.
            ("privatelink.api.azureml.ms".into(), None),
            ("eastus.privatelink.api.azureml.ms".into(), None),
            ("*.privatelink.notebooks.azure.net".into(), None),
            (
                format!("*.{GUID}.inference.eastus.privatelink.api.azureml.ms"),
                None,
            ),
            // Other services' public zones: the apex, above it, a wildcard
            // under it; one resource's name is its own.
            (
                "blob.core.windows.net".into(),
                Some(Zone("blob.core.windows.net")),
            ),
            (
                "*.blob.core.windows.net".into(),
                Some(Zone("blob.core.windows.net")),
            ),
            (
                "core.windows.net".into(),
                Some(Zone("blob.core.windows.net")),
            ),
            (
                "*.services.ai.azure.com".into(),
                Some(Zone("services.ai.azure.com")),
            ),
            (
                "*.vault.usgovcloudapi.net".into(),
                Some(Zone("vault.usgovcloudapi.net")),
            ),
            ("kv.vault.azure.net".into(), None),
            ("*.privatelink.blob.core.windows.net".into(), None),
            // Names outside the catalogue.
            ("stcontoso.blob.core.windows.net".into(), None),
            ("*.apps.corp.example".into(), None),
            ("studio.ml.azure.com".into(), None),
            ("xapi.azureml.ms".into(), None),
        ];
        for (name, want) in cases {
            assert_eq!(captures_public(&name), want, "{name}");
        }
    }
}
