//! The Azure clouds and what amldns knows of each besides its DNS zones
//! (those are the private-link catalogue's): its name in the config, its
//! regions, and the endpoints discovery talks to.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// The Azure cloud a workspace lives in; it picks the DNS zones.
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

/// Written as its config spelling.
impl Serialize for Cloud {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Everything amldns knows of one cloud, in one place.
struct Facts {
    /// The config spelling (`cloud = "..."`, `--cloud`).
    name: &'static str,
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

const PUBLIC: Facts = Facts {
    name: "public",
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

impl Cloud {
    pub const ALL: [Cloud; 3] = [Cloud::Public, Cloud::China, Cloud::UsGov];

    fn facts(self) -> &'static Facts {
        match self {
            Cloud::Public => &PUBLIC,
            Cloud::China => &CHINA,
            Cloud::UsGov => &USGOV,
        }
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
