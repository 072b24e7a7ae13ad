//! The Azure clouds and every fact amldns knows of each: its name in the
//! config, the DNS suffixes of its Azure ML zones and which zone owns a name,
//! its regions, and the endpoints discovery talks to.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::syntax::{is_at_or_below, label_start};

/// The Azure cloud a workspace lives in; it picks the DNS suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Cloud {
    #[default]
    Public,
    China,
    UsGov,
}

/// The config spellings of [`Cloud::ALL`], in its order.
const NAMES: [&str; 3] = [PUBLIC.name, CHINA.name, USGOV.name];

/// A cloud name that is none of [`Cloud::ALL`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a cloud ({list})", list = NAMES.join(", "))]
pub struct UnknownCloud(String);

/// The one reader of a cloud's name, wherever it is written: the config
/// file, `--cloud`, a discovery state file.
impl FromStr for Cloud {
    type Err = UnknownCloud;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cloud::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCloud(s.to_string()))
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Read with [`Cloud::from_str`]; an unknown name is an unknown variant, as
/// for any other enum of the config, so the config error offers the closest
/// known name.
impl<'de> Deserialize<'de> for Cloud {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Cloud;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "one of {}", NAMES.join(", "))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Cloud, E> {
                s.parse().map_err(|_| E::unknown_variant(s, &NAMES))
            }
        }
        deserializer.deserialize_str(Name)
    }
}

/// Everything amldns knows of one cloud, in one place.
struct Facts {
    /// The config spelling (`cloud = "..."`, `--cloud`).
    name: &'static str,
    suffixes: Suffixes,
    /// Region short names, in the form `az account list-locations --query
    /// "[].name"` prints them in that cloud: the physical regions, not the
    /// `*stage`/`*euap` or geography names. Azure adds regions every year,
    /// so a region missing here is only a warning, never an error.
    regions: &'static [&'static str],
    /// Azure Resource Manager (Microsoft Learn, "Azure China 21Vianet
    /// developer guide" and "Azure Government developer guide").
    arm_endpoint: &'static str,
    /// The audience of an ARM token, whatever endpoint is used.
    arm_audience: &'static str,
    /// Entra ID, when `AZURE_AUTHORITY_HOST` does not say.
    authority: &'static str,
}

/// The DNS suffixes of one cloud.
pub(super) struct Suffixes {
    pub(super) api: &'static str,
    pub(super) privatelink_api: &'static str,
    pub(super) notebooks: &'static str,
    pub(super) privatelink_notebooks: &'static str,
    /// Microsoft's docs name both spellings, so both are served.
    pub(super) instances: [&'static str; 2],
    pub(super) inference: &'static str,
}

const PUBLIC: Facts = Facts {
    name: "public",
    suffixes: Suffixes {
        api: "api.azureml.ms",
        privatelink_api: "privatelink.api.azureml.ms",
        notebooks: "notebooks.azure.net",
        privatelink_notebooks: "privatelink.notebooks.azure.net",
        instances: ["instances.azureml.ms", "instances.ml.azure.ms"],
        inference: "inference.ml.azure.com",
    },
    regions: &[
        "eastus",
        "eastus2",
        "westus",
        "westus2",
        "westus3",
        "centralus",
        "northcentralus",
        "southcentralus",
        "westcentralus",
        "canadacentral",
        "canadaeast",
        "brazilsouth",
        "brazilsoutheast",
        "northeurope",
        "westeurope",
        "uksouth",
        "ukwest",
        "francecentral",
        "francesouth",
        "germanywestcentral",
        "germanynorth",
        "norwayeast",
        "norwaywest",
        "switzerlandnorth",
        "switzerlandwest",
        "swedencentral",
        "swedensouth",
        "polandcentral",
        "italynorth",
        "spaincentral",
        "israelcentral",
        "qatarcentral",
        "uaenorth",
        "uaecentral",
        "southafricanorth",
        "southafricawest",
        "centralindia",
        "southindia",
        "westindia",
        "jioindiawest",
        "jioindiacentral",
        "eastasia",
        "southeastasia",
        "japaneast",
        "japanwest",
        "koreacentral",
        "koreasouth",
        "australiaeast",
        "australiasoutheast",
        "australiacentral",
        "australiacentral2",
        "mexicocentral",
        "newzealandnorth",
        "indonesiacentral",
        "malaysiawest",
        "chilecentral",
        "austriaeast",
        "belgiumcentral",
        "denmarkeast",
    ],
    arm_endpoint: "https://management.azure.com",
    arm_audience: "https://management.azure.com/",
    authority: "https://login.microsoftonline.com",
};

const CHINA: Facts = Facts {
    name: "china",
    suffixes: Suffixes {
        api: "api.ml.azure.cn",
        privatelink_api: "privatelink.api.ml.azure.cn",
        notebooks: "notebooks.chinacloudapi.cn",
        privatelink_notebooks: "privatelink.notebooks.chinacloudapi.cn",
        instances: ["instances.azureml.cn", "instances.ml.azure.cn"],
        inference: "inference.ml.azure.cn",
    },
    regions: &[
        "chinaeast",
        "chinaeast2",
        "chinaeast3",
        "chinanorth",
        "chinanorth2",
        "chinanorth3",
    ],
    arm_endpoint: "https://management.chinacloudapi.cn",
    arm_audience: "https://management.chinacloudapi.cn/",
    authority: "https://login.chinacloudapi.cn",
};

const USGOV: Facts = Facts {
    name: "usgov",
    suffixes: Suffixes {
        api: "api.ml.azure.us",
        privatelink_api: "privatelink.api.ml.azure.us",
        notebooks: "notebooks.usgovcloudapi.net",
        privatelink_notebooks: "privatelink.notebooks.usgovcloudapi.net",
        instances: ["instances.azureml.us", "instances.ml.azure.us"],
        inference: "inference.ml.azure.us",
    },
    regions: &[
        "usgovvirginia",
        "usgovarizona",
        "usgovtexas",
        "usdodeast",
        "usdodcentral",
    ],
    arm_endpoint: "https://management.usgovcloudapi.net",
    arm_audience: "https://management.usgovcloudapi.net/",
    authority: "https://login.microsoftonline.us",
};

/// Notebook content, shared by the three clouds (SPEC §1).
pub(super) const NOTEBOOK_CONTENT_ZONE: &str = "aznbcontent.net";

/// The zones of [`Cloud::forwarder_zones`] for every cloud, each once, in
/// cloud order: what `amldns forwarders` configures.
pub fn forwarder_zones() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for zone in Cloud::ALL.into_iter().flat_map(Cloud::forwarder_zones) {
        if !out.contains(&zone) {
            out.push(zone);
        }
    }
    out
}

impl Cloud {
    pub const ALL: [Cloud; 3] = [Cloud::Public, Cloud::China, Cloud::UsGov];

    fn facts(self) -> &'static Facts {
        match self {
            Cloud::Public => &PUBLIC,
            Cloud::China => &CHINA,
            Cloud::UsGov => &USGOV,
        }
    }

    pub(super) fn suffixes(self) -> &'static Suffixes {
        &self.facts().suffixes
    }

    /// The public zone of a workspace's API names (`api.azureml.ms`): its
    /// `<region>.` names are every workspace's of a region, and public.
    pub fn api_zone(self) -> &'static str {
        self.suffixes().api
    }

    /// The public zone of online endpoints' names (`inference.ml.azure.com`),
    /// under the studio's own name (`ml.azure.com`).
    pub fn inference_zone(self) -> &'static str {
        self.suffixes().inference
    }

    /// The config spelling (`cloud = "..."`), which [`Cloud::from_str`] reads.
    pub fn as_str(self) -> &'static str {
        self.facts().name
    }

    /// The region short names of this cloud known when amldns was built.
    pub fn regions(self) -> &'static [&'static str] {
        self.facts().regions
    }

    /// The cloud `region` (lower-case) is a known region of.
    pub fn of_region(region: &str) -> Option<Cloud> {
        Cloud::ALL
            .into_iter()
            .find(|c| c.regions().contains(&region))
    }

    /// Azure Resource Manager of this cloud, without a final `/`: the
    /// default `arm_endpoint`.
    pub fn arm_endpoint(self) -> &'static str {
        self.facts().arm_endpoint
    }

    /// The audience (resource) of an ARM token of this cloud, whatever
    /// endpoint is used.
    pub fn arm_audience(self) -> &'static str {
        self.facts().arm_audience
    }

    /// Entra ID of this cloud, when `AZURE_AUTHORITY_HOST` does not say.
    pub fn authority(self) -> &'static str {
        self.facts().authority
    }

    /// The zones an on-premises DNS server conditionally forwards to amldns
    /// (SPEC §1): the public parents of every name a workspace of this cloud
    /// gets. The `privatelink.` zones sit under them (`privatelink.api.azureml.ms`
    /// under `api.azureml.ms`), so they are not listed: forwarding the parent
    /// covers them. `aznbcontent.net` (notebook content) is the same in every
    /// cloud.
    pub fn forwarder_zones(self) -> [&'static str; 6] {
        let s = self.suffixes();
        [
            s.api,
            s.notebooks,
            s.instances[0],
            s.instances[1],
            s.inference,
            NOTEBOOK_CONTENT_ZONE,
        ]
    }

    /// Every zone apex a derived name of this cloud can sit in, longest first so
    /// that a `privatelink.` zone wins over its parent.
    fn zones(self) -> [&'static str; 7] {
        let s = self.suffixes();
        [
            s.privatelink_notebooks,
            s.privatelink_api,
            s.notebooks,
            s.inference,
            s.instances[0],
            s.instances[1],
            s.api,
        ]
    }
}

/// The zone apex that owns `name` for SOA purposes (SPEC §3: negative answers
/// carry the SOA of the zone apex). Azure ML zones of every cloud are known;
/// any other name belongs to the zone starting at its `privatelink` label, or
/// failing that, to a zone of its own (wildcards: their parent).
pub fn apex_of(name: &str) -> String {
    let name = name.strip_prefix("*.").unwrap_or(name);
    for cloud in Cloud::ALL {
        for zone in cloud.zones() {
            if is_at_or_below(name, zone) {
                return zone.to_string();
            }
        }
    }
    if let Some(pos) = label_start(name, "privatelink") {
        return name[pos..].to_string();
    }
    name.to_string()
}

/// Whether `apex` is one of the public Azure ML zones (`api.azureml.ms`,
/// `notebooks.azure.net`…) of some cloud: a zone Azure's DNS serves, whose
/// SOA is the upstream's to give, where a `privatelink.` zone is ours.
pub fn is_public_zone(apex: &str) -> bool {
    Cloud::ALL
        .into_iter()
        .any(|c| c.zones().contains(&apex) && !apex.starts_with("privatelink."))
}

/// The notebooks zones of every cloud, public and private-link: an FQDN under
/// one of them is a notebooks name.
pub fn notebooks_zone_of(fqdn: &str) -> Option<(Cloud, &'static str)> {
    Cloud::ALL.into_iter().find_map(|c| {
        let s = c.suffixes();
        [s.privatelink_notebooks, s.notebooks]
            .into_iter()
            .find(|z| is_at_or_below(fqdn, z))
            .map(|z| (c, z))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{MAX_REGION, is_host_label};

    #[test]
    fn cloud_names_read_back() {
        for cloud in Cloud::ALL {
            assert_eq!(cloud.as_str().parse(), Ok(cloud));
            assert_eq!(cloud.to_string(), cloud.as_str());
        }
        assert_eq!(
            "Public".parse::<Cloud>().unwrap_err().to_string(),
            "\"Public\" is not a cloud (public, china, usgov)"
        );
    }

    #[test]
    fn forwarder_zones_are_spec_s_list() {
        let cases = [
            (
                Cloud::Public,
                [
                    "api.azureml.ms",
                    "notebooks.azure.net",
                    "instances.azureml.ms",
                    "instances.ml.azure.ms",
                    "inference.ml.azure.com",
                    "aznbcontent.net",
                ],
            ),
            (
                Cloud::China,
                [
                    "api.ml.azure.cn",
                    "notebooks.chinacloudapi.cn",
                    "instances.azureml.cn",
                    "instances.ml.azure.cn",
                    "inference.ml.azure.cn",
                    "aznbcontent.net",
                ],
            ),
            (
                Cloud::UsGov,
                [
                    "api.ml.azure.us",
                    "notebooks.usgovcloudapi.net",
                    "instances.azureml.us",
                    "instances.ml.azure.us",
                    "inference.ml.azure.us",
                    "aznbcontent.net",
                ],
            ),
        ];
        for (cloud, want) in cases {
            assert_eq!(cloud.forwarder_zones(), want, "{cloud:?}");
        }
        let all = forwarder_zones();
        assert_eq!(all.len(), 16, "aznbcontent.net once: {all:?}");
        assert_eq!(all.iter().filter(|z| **z == "aznbcontent.net").count(), 1);
    }

    #[test]
    fn zone_apexes() {
        let cases = [
            ("x.workspace.eastus.api.azureml.ms", "api.azureml.ms"),
            (
                "x.workspace.eastus.privatelink.api.azureml.ms",
                "privatelink.api.azureml.ms",
            ),
            (
                "ml-a.eastus.privatelink.notebooks.azure.net",
                "privatelink.notebooks.azure.net",
            ),
            ("ci.eastus.instances.ml.azure.cn", "instances.ml.azure.cn"),
            ("*.eastus.inference.ml.azure.us", "inference.ml.azure.us"),
            (
                "st.privatelink.blob.core.windows.net",
                "privatelink.blob.core.windows.net",
            ),
            ("host.corp.example", "host.corp.example"),
            ("*.apps.corp.example", "apps.corp.example"),
        ];
        for (name, apex) in cases {
            assert_eq!(apex_of(name), apex, "{name}");
        }
    }

    #[test]
    fn regions_per_cloud() {
        let cases = [
            ("eastus", Some(Cloud::Public)),
            ("australiacentral2", Some(Cloud::Public)),
            ("chinanorth3", Some(Cloud::China)),
            ("usdodcentral", Some(Cloud::UsGov)),
            ("eastuss", None),
        ];
        for (region, want) in cases {
            assert_eq!(Cloud::of_region(region), want, "{region}");
        }
        // Every region fits the notebooks label, and is a DNS label.
        for r in Cloud::ALL.into_iter().flat_map(Cloud::regions) {
            assert!(r.len() <= MAX_REGION && is_host_label(r), "{r}");
        }
    }
}
