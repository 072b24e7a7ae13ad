//! Azure's private-link catalogue, the one list of DNS zones amldns knows:
//! per cloud, each public zone whose names a private endpoint takes over, the
//! `privatelink.` zone those names go through, the service, and where the
//! entry was read. Every question of the form "which zone is this?" is
//! answered here: the suffixes of the names a workspace derives, the zones an
//! on-premises server forwards, which names must stay public, the SOA owner
//! of a name, and whether a name an endpoint lists may be served.
//!
//! Microsoft adds services and zones every year (`instances.ml.azure.ms`
//! arrived in 2026): a new entry goes here, with its source, and nowhere else.

use serde::Serialize;

use super::cloud::Cloud;
use super::syntax::{is_at_or_below, label_start};

/// Where an entry was read, and the date of the version read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Source {
    pub title: &'static str,
    pub url: &'static str,
    /// The date the page shows (`ms.date`) in the version read.
    pub dated: &'static str,
}

/// Microsoft Learn's table of private DNS zones per service and cloud (read
/// in its version of 2026-05-04, MicrosoftDocs/azure-docs
/// `articles/private-link/private-endpoint-dns.md`).
const PRIVATE_ENDPOINT_DNS: Source = Source {
    title: "Azure Private Endpoint private DNS zone values",
    url: "https://learn.microsoft.com/azure/private-link/private-endpoint-dns",
    dated: "2026-05-04",
};

/// The same page in its version of 2021-01-14 (MicrosoftDocs/azure-docs
/// commit 0095ac36), for the services beyond the ones this catalogue
/// checked in the newer version. Each of their private-link zones is still
/// in the list Azure Verified Modules maintain
/// (Azure/terraform-azurerm-avm-ptn-network-private-link-private-dns-zones,
/// `variables.tf` at commit 09c0ae6).
const PRIVATE_ENDPOINT_DNS_2021: Source = Source {
    title: "Azure Private Endpoint DNS configuration",
    url: "https://learn.microsoft.com/azure/private-link/private-endpoint-dns",
    dated: "2021-01-14",
};

/// The Azure China docs' earlier version of that page, for the services its
/// current China table does not list.
const CHINA_2020: Source = Source {
    title: "Azure Private Endpoint DNS configuration (Azure China, earlier version)",
    url: "https://docs.azure.cn/private-link/private-endpoint-dns",
    dated: "2020-09-07",
};

/// Azure ML's own list of a workspace's names per cloud, which has the
/// names the private-endpoint table leaves out (the second instances zone,
/// the inference zone).
const ML_CUSTOM_DNS: Source = Source {
    title: "How to use your workspace with a custom DNS server",
    url: "https://learn.microsoft.com/azure/machine-learning/how-to-custom-dns",
    dated: "2026-03-26",
};

/// The DNS zones of one cloud's Azure ML names, which [`super::derive`]
/// builds names in.
pub(super) struct Suffixes {
    pub(super) api: &'static str,
    pub(super) privatelink_api: &'static str,
    pub(super) notebooks: &'static str,
    pub(super) privatelink_notebooks: &'static str,
    /// Microsoft's docs name both spellings, so both are served.
    pub(super) instances: [&'static str; 2],
    pub(super) inference: &'static str,
}

const ML_PUBLIC: Suffixes = Suffixes {
    api: "api.azureml.ms",
    privatelink_api: "privatelink.api.azureml.ms",
    notebooks: "notebooks.azure.net",
    privatelink_notebooks: "privatelink.notebooks.azure.net",
    instances: ["instances.azureml.ms", "instances.ml.azure.ms"],
    inference: "inference.ml.azure.com",
};

const ML_CHINA: Suffixes = Suffixes {
    api: "api.ml.azure.cn",
    privatelink_api: "privatelink.api.ml.azure.cn",
    notebooks: "notebooks.chinacloudapi.cn",
    privatelink_notebooks: "privatelink.notebooks.chinacloudapi.cn",
    instances: ["instances.azureml.cn", "instances.ml.azure.cn"],
    inference: "inference.ml.azure.cn",
};

const ML_USGOV: Suffixes = Suffixes {
    api: "api.ml.azure.us",
    privatelink_api: "privatelink.api.ml.azure.us",
    notebooks: "notebooks.usgovcloudapi.net",
    privatelink_notebooks: "privatelink.notebooks.usgovcloudapi.net",
    instances: ["instances.azureml.us", "instances.ml.azure.us"],
    inference: "inference.ml.azure.us",
};

/// Notebook content, the same zone in the three clouds.
const NOTEBOOK_CONTENT_ZONE: &str = "aznbcontent.net";

/// Workspaces, and registries (their names are in the api zone too).
const ML: &str = "Azure Machine Learning";

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Zone {
    pub cloud: Cloud,
    /// The service whose private endpoints list names here.
    pub service: &'static str,
    /// The zone the public DNS serves, which clients ask in and on-premises
    /// servers forward.
    pub public: &'static str,
    /// The `privatelink.` zone the public names are CNAMEs into, each
    /// `<x>.<public>` to `<x>.<private>`; none where Azure's names stay in
    /// the public zone (compute instances, notebook content) or take
    /// another shape (online endpoints).
    pub private: Option<&'static str>,
    pub source: Source,
}

/// The entries of services other than Azure ML (whose entries come from
/// [`Suffixes`]): cloud, public zone, private-link zone, service, source.
/// Zones whose names carry a region (`<region>.batch.azure.com`,
/// `privatelink.<region>.azmk8s.io`) are left out: this table holds fixed
/// zones only.
/// Where the current China table has no row for a service, the entry is
/// the older China page's.
#[rustfmt::skip]
const SERVICES: &[(Cloud, &str, &str, &str, Source)] = &[
    (Cloud::Public, "blob.core.windows.net", "privatelink.blob.core.windows.net", "Storage (blob)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "table.core.windows.net", "privatelink.table.core.windows.net", "Storage (table)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "queue.core.windows.net", "privatelink.queue.core.windows.net", "Storage (queue)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "file.core.windows.net", "privatelink.file.core.windows.net", "Storage (file)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "web.core.windows.net", "privatelink.web.core.windows.net", "Storage (static website)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "dfs.core.windows.net", "privatelink.dfs.core.windows.net", "Storage (Data Lake Gen2)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "vault.azure.net", "privatelink.vaultcore.azure.net", "Key Vault", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "vaultcore.azure.net", "privatelink.vaultcore.azure.net", "Key Vault", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "azurecr.io", "privatelink.azurecr.io", "Container Registry (with <region>.data names)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "cognitiveservices.azure.com", "privatelink.cognitiveservices.azure.com", "AI Foundry / Azure AI services (account)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "openai.azure.com", "privatelink.openai.azure.com", "AI Foundry / Azure OpenAI (account)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "services.ai.azure.com", "privatelink.services.ai.azure.com", "AI Foundry (account)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "search.windows.net", "privatelink.search.windows.net", "Azure AI Search", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "documents.azure.com", "privatelink.documents.azure.com", "Cosmos DB (NoSQL)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "mongo.cosmos.azure.com", "privatelink.mongo.cosmos.azure.com", "Cosmos DB (MongoDB)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "cassandra.cosmos.azure.com", "privatelink.cassandra.cosmos.azure.com", "Cosmos DB (Cassandra)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "gremlin.cosmos.azure.com", "privatelink.gremlin.cosmos.azure.com", "Cosmos DB (Gremlin)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "table.cosmos.azure.com", "privatelink.table.cosmos.azure.com", "Cosmos DB (Table)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "analytics.cosmos.azure.com", "privatelink.analytics.cosmos.azure.com", "Cosmos DB (analytical store)", PRIVATE_ENDPOINT_DNS),
    (Cloud::Public, "azure-automation.net", "privatelink.azure-automation.net", "Automation", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "database.windows.net", "privatelink.database.windows.net", "Azure SQL Database", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "sql.azuresynapse.net", "privatelink.sql.azuresynapse.net", "Synapse Analytics (SQL)", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "dev.azuresynapse.net", "privatelink.dev.azuresynapse.net", "Synapse Analytics (dev)", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "postgres.database.azure.com", "privatelink.postgres.database.azure.com", "Database for PostgreSQL", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "mysql.database.azure.com", "privatelink.mysql.database.azure.com", "Database for MySQL", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "mariadb.database.azure.com", "privatelink.mariadb.database.azure.com", "Database for MariaDB", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "azconfig.io", "privatelink.azconfig.io", "App Configuration", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "servicebus.windows.net", "privatelink.servicebus.windows.net", "Event Hubs, Service Bus, Relay", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "azure-devices.net", "privatelink.azure-devices.net", "IoT Hub", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "eventgrid.azure.net", "privatelink.eventgrid.azure.net", "Event Grid", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "azurewebsites.net", "privatelink.azurewebsites.net", "App Service (sites)", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "service.signalr.net", "privatelink.service.signalr.net", "SignalR", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "monitor.azure.com", "privatelink.monitor.azure.com", "Azure Monitor", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "oms.opinsights.azure.com", "privatelink.oms.opinsights.azure.com", "Azure Monitor (Log Analytics)", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "ods.opinsights.azure.com", "privatelink.ods.opinsights.azure.com", "Azure Monitor (Log Analytics)", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "agentsvc.azure-automation.net", "privatelink.agentsvc.azure-automation.net", "Azure Monitor (agents)", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "afs.azure.net", "privatelink.afs.azure.net", "File Sync", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "datafactory.azure.net", "privatelink.datafactory.azure.net", "Data Factory", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "adf.azure.com", "privatelink.adf.azure.com", "Data Factory (portal)", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "redis.cache.windows.net", "privatelink.redis.cache.windows.net", "Cache for Redis", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "redisenterprise.cache.azure.net", "privatelink.redisenterprise.cache.azure.net", "Cache for Redis Enterprise", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "purview.azure.com", "privatelink.purview.azure.com", "Purview", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::Public, "digitaltwins.azure.net", "privatelink.digitaltwins.azure.net", "Digital Twins", PRIVATE_ENDPOINT_DNS_2021),
    (Cloud::China, "blob.core.chinacloudapi.cn", "privatelink.blob.core.chinacloudapi.cn", "Storage (blob)", PRIVATE_ENDPOINT_DNS),
    (Cloud::China, "table.core.chinacloudapi.cn", "privatelink.table.core.chinacloudapi.cn", "Storage (table)", PRIVATE_ENDPOINT_DNS),
    (Cloud::China, "queue.core.chinacloudapi.cn", "privatelink.queue.core.chinacloudapi.cn", "Storage (queue)", PRIVATE_ENDPOINT_DNS),
    (Cloud::China, "file.core.chinacloudapi.cn", "privatelink.file.core.chinacloudapi.cn", "Storage (file)", PRIVATE_ENDPOINT_DNS),
    (Cloud::China, "web.core.chinacloudapi.cn", "privatelink.web.core.chinacloudapi.cn", "Storage (static website)", PRIVATE_ENDPOINT_DNS),
    (Cloud::China, "dfs.core.chinacloudapi.cn", "privatelink.dfs.core.chinacloudapi.cn", "Storage (Data Lake Gen2)", PRIVATE_ENDPOINT_DNS),
    (Cloud::China, "vaultcore.azure.cn", "privatelink.vaultcore.azure.cn", "Key Vault", PRIVATE_ENDPOINT_DNS),
    (Cloud::China, "vault.azure.cn", "privatelink.vaultcore.azure.cn", "Key Vault", CHINA_2020),
    (Cloud::China, "azurecr.cn", "privatelink.azurecr.cn", "Container Registry", CHINA_2020),
    (Cloud::China, "cognitiveservices.azure.cn", "privatelink.cognitiveservices.azure.cn", "Azure AI services (account)", CHINA_2020),
    (Cloud::China, "search.azure.cn", "privatelink.search.azure.cn", "Azure AI Search", CHINA_2020),
    (Cloud::China, "documents.azure.cn", "privatelink.documents.azure.cn", "Cosmos DB (NoSQL)", PRIVATE_ENDPOINT_DNS),
    (Cloud::China, "mongo.cosmos.azure.cn", "privatelink.mongo.cosmos.azure.cn", "Cosmos DB (MongoDB)", PRIVATE_ENDPOINT_DNS),
    (Cloud::China, "cassandra.cosmos.azure.cn", "privatelink.cassandra.cosmos.azure.cn", "Cosmos DB (Cassandra)", PRIVATE_ENDPOINT_DNS),
    (Cloud::China, "gremlin.cosmos.azure.cn", "privatelink.gremlin.cosmos.azure.cn", "Cosmos DB (Gremlin)", PRIVATE_ENDPOINT_DNS),
    (Cloud::China, "table.cosmos.azure.cn", "privatelink.table.cosmos.azure.cn", "Cosmos DB (Table)", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "blob.core.usgovcloudapi.net", "privatelink.blob.core.usgovcloudapi.net", "Storage (blob)", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "table.core.usgovcloudapi.net", "privatelink.table.core.usgovcloudapi.net", "Storage (table)", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "queue.core.usgovcloudapi.net", "privatelink.queue.core.usgovcloudapi.net", "Storage (queue)", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "file.core.usgovcloudapi.net", "privatelink.file.core.usgovcloudapi.net", "Storage (file)", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "web.core.usgovcloudapi.net", "privatelink.web.core.usgovcloudapi.net", "Storage (static website)", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "dfs.core.usgovcloudapi.net", "privatelink.dfs.core.usgovcloudapi.net", "Storage (Data Lake Gen2)", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "vault.usgovcloudapi.net", "privatelink.vaultcore.usgovcloudapi.net", "Key Vault", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "vaultcore.usgovcloudapi.net", "privatelink.vaultcore.usgovcloudapi.net", "Key Vault", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "azurecr.us", "privatelink.azurecr.us", "Container Registry (with <region> names)", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "cognitiveservices.azure.us", "privatelink.cognitiveservices.azure.us", "Azure AI services (account)", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "search.azure.us", "privatelink.search.azure.us", "Azure AI Search", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "documents.azure.us", "privatelink.documents.azure.us", "Cosmos DB (NoSQL)", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "mongo.cosmos.azure.us", "privatelink.mongo.cosmos.azure.us", "Cosmos DB (MongoDB)", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "cassandra.cosmos.azure.us", "privatelink.cassandra.cosmos.azure.us", "Cosmos DB (Cassandra)", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "gremlin.cosmos.azure.us", "privatelink.gremlin.cosmos.azure.us", "Cosmos DB (Gremlin)", PRIVATE_ENDPOINT_DNS),
    (Cloud::UsGov, "table.cosmos.azure.us", "privatelink.table.cosmos.azure.us", "Cosmos DB (Table)", PRIVATE_ENDPOINT_DNS),
];

impl Cloud {
    pub(super) fn suffixes(self) -> &'static Suffixes {
        match self {
            Cloud::Public => &ML_PUBLIC,
            Cloud::China => &ML_CHINA,
            Cloud::UsGov => &ML_USGOV,
        }
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

    /// The Azure ML zones an on-premises DNS server conditionally forwards
    /// to amldns: the public parents of every name a workspace of this cloud
    /// gets. The `privatelink.` zones sit under them (`privatelink.api.azureml.ms`
    /// under `api.azureml.ms`), so forwarding the parent covers them.
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
    fn ml_zones(self) -> [&'static str; 7] {
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

    /// This cloud's entries: Azure ML's first, then the other services'.
    fn catalogue(self) -> impl Iterator<Item = Zone> {
        let s = self.suffixes();
        let ml = |public, private, source| Zone {
            cloud: self,
            service: ML,
            public,
            private,
            source,
        };
        [
            ml(s.api, Some(s.privatelink_api), PRIVATE_ENDPOINT_DNS),
            ml(
                s.notebooks,
                Some(s.privatelink_notebooks),
                PRIVATE_ENDPOINT_DNS,
            ),
            ml(s.instances[0], None, PRIVATE_ENDPOINT_DNS),
            ml(s.instances[1], None, ML_CUSTOM_DNS),
            // An endpoint's name is a CNAME into the api zone's private-link
            // zone, but in another shape (`<endpoint>.<guid>.inference.<region>`
            // there): no private-link zone of its own.
            ml(s.inference, None, ML_CUSTOM_DNS),
            ml(NOTEBOOK_CONTENT_ZONE, None, PRIVATE_ENDPOINT_DNS),
        ]
        .into_iter()
        .chain(SERVICES.iter().filter(move |(c, ..)| *c == self).map(
            |&(cloud, public, private, service, source)| Zone {
                cloud,
                service,
                public,
                private: Some(private),
                source,
            },
        ))
    }
}

/// The catalogue, for `cloud` or for every cloud, in cloud order.
pub fn catalogue(cloud: Option<Cloud>) -> Vec<Zone> {
    Cloud::ALL
        .into_iter()
        .filter(|c| cloud.is_none_or(|want| want == *c))
        .flat_map(Cloud::catalogue)
        .collect()
}

/// The entry whose public or private-link zone `name` lies in (a wildcard:
/// its parent), the deepest zone winning (`privatelink.api.azureml.ms` over
/// `api.azureml.ms`); `None` for a name outside the catalogue.
pub fn zone_of(name: &str) -> Option<Zone> {
    let name = name.strip_prefix("*.").unwrap_or(name);
    let mut best: Option<(usize, Zone)> = None;
    for z in Cloud::ALL.into_iter().flat_map(Cloud::catalogue) {
        for apex in [Some(z.public), z.private].into_iter().flatten() {
            if is_at_or_below(name, apex) && best.is_none_or(|(len, _)| apex.len() > len) {
                best = Some((apex.len(), z));
            }
        }
    }
    best.map(|(_, z)| z)
}

/// The public zones whose names a client asks for to reach `name`: its
/// entry's public zone, and where `name` is in a private-link zone, every
/// public zone whose names are CNAMEs into it (`vault.azure.net` and
/// `vaultcore.azure.net` for `privatelink.vaultcore.azure.net`).
pub fn public_zones_of(name: &str) -> Vec<&'static str> {
    let Some(z) = zone_of(name) else {
        return Vec::new();
    };
    let body = name.strip_prefix("*.").unwrap_or(name);
    if !z.private.is_some_and(|p| is_at_or_below(body, p)) {
        return vec![z.public];
    }
    z.cloud
        .catalogue()
        .filter(|other| other.private == z.private)
        .map(|other| other.public)
        .collect()
}

/// The private-link name Azure's public DNS makes `name` a CNAME to:
/// `<x>.<private>` for `<x>.<public>` of an entry with a private-link zone
/// (`st.privatelink.blob.core.windows.net` for `st.blob.core.windows.net`,
/// `kv.privatelink.vaultcore.azure.net` for `kv.vault.azure.net`); `None`
/// for a name already private, outside the catalogue, or in a zone whose
/// names have no such twin.
pub fn private_twin(name: &str) -> Option<String> {
    let z = zone_of(name)?;
    let private = z.private?;
    if is_at_or_below(name.strip_prefix("*.").unwrap_or(name), private) {
        return None;
    }
    let rel = name.strip_suffix(z.public)?.strip_suffix('.')?;
    Some(format!("{rel}.{private}"))
}

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

/// The public zones of every cloud and service, with the layout of the
/// names under each, for [`super::captures_public`].
pub(super) fn public_zones() -> impl Iterator<Item = (&'static str, Layout)> {
    Cloud::ALL.into_iter().flat_map(|cloud| {
        let s = cloud.suffixes();
        cloud.catalogue().map(move |z| {
            let layout = match z.public {
                p if p == s.api => Layout::Api,
                p if p == s.notebooks => Layout::Notebooks,
                p if p == s.inference || s.instances.contains(&p) => Layout::Regional,
                _ => Layout::ApexOnly,
            };
            (z.public, layout)
        })
    })
}

/// How a public zone's own names are laid out under its apex: which names
/// under it many resources share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// `<guid>.workspace.<region>.api…` and `<guid>.workspace.<region>.cert.api…`:
    /// the two levels under the apex (`<region>`, `workspace.<region>`,
    /// `tundra.<region>`, `<region>.cert`) are every workspace's parents.
    Api,
    /// `ml-…-<guid>.<region>.notebooks…`, and the older `ml-…-<guid>.notebooks…`:
    /// one level under the apex is a region, unless it is a notebooks label.
    Notebooks,
    /// `<instance>.<region>.instances…`, `<endpoint>.<region>.inference…`: one
    /// level under the apex is a region, and a wildcard under a region is
    /// the opt-in one (`instances_wildcard`, `inference_wildcard`).
    Regional,
    /// `aznbcontent.net`, `blob.core.windows.net`…: only the apex (and a
    /// wildcard under it) is known shared; a name under it is one resource's.
    ApexOnly,
}

/// The zone apex that owns `name` for SOA purposes: negative answers carry
/// the SOA of the zone apex. Azure ML zones of every cloud are known; any
/// other name belongs to the zone starting at its `privatelink` label, or
/// failing that, to a zone of its own (wildcards: their parent). Other
/// services' public zones are not claimed: amldns serves single names in
/// them (`st.blob.core.windows.net`), not the zone.
pub fn apex_of(name: &str) -> String {
    let name = name.strip_prefix("*.").unwrap_or(name);
    for cloud in Cloud::ALL {
        for zone in cloud.ml_zones() {
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
        .any(|c| c.ml_zones().contains(&apex) && !apex.starts_with("privatelink."))
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

    /// The zones an on-premises server forwards, per cloud: those Microsoft
    /// Learn's "How to use your workspace with a custom DNS server" lists.
    #[test]
    fn forwarder_zones_are_each_clouds_workspace_zones() {
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
    fn every_name_finds_its_entry() {
        let cases = [
            (
                "x.workspace.eastus.api.azureml.ms",
                Some(("api.azureml.ms", ML)),
            ),
            (
                "x.workspace.eastus.privatelink.api.azureml.ms",
                Some(("api.azureml.ms", ML)),
            ),
            (
                "ep.eastus.inference.ml.azure.com",
                Some(("inference.ml.azure.com", ML)),
            ),
            (
                "st.blob.core.windows.net",
                Some(("blob.core.windows.net", "Storage (blob)")),
            ),
            (
                "st.privatelink.blob.core.windows.net",
                Some(("blob.core.windows.net", "Storage (blob)")),
            ),
            ("kv.vault.azure.net", Some(("vault.azure.net", "Key Vault"))),
            (
                "reg.eastus.data.privatelink.azurecr.io",
                Some((
                    "azurecr.io",
                    "Container Registry (with <region>.data names)",
                )),
            ),
            (
                "acct.services.ai.azure.com",
                Some(("services.ai.azure.com", "AI Foundry (account)")),
            ),
            (
                "kv.vault.usgovcloudapi.net",
                Some(("vault.usgovcloudapi.net", "Key Vault")),
            ),
            (
                "sql1.privatelink.database.windows.net",
                Some(("database.windows.net", "Azure SQL Database")),
            ),
            ("*.apps.corp.example", None),
            ("core.windows.net", None),
            ("xblob.core.windows.net", None),
        ];
        for (name, want) in cases {
            let got = zone_of(name).map(|z| (z.public, z.service));
            // A private-link name's entry is one whose private zone holds it.
            let got = match (got, want) {
                (Some((_, service)), Some((public, _)))
                    if public_zones_of(name).contains(&public) =>
                {
                    Some((public, service))
                }
                _ => got,
            };
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(
            public_zones_of("kv.privatelink.vaultcore.azure.net"),
            ["vault.azure.net", "vaultcore.azure.net"]
        );
        assert_eq!(
            public_zones_of("ep.g.inference.eastus.privatelink.api.azureml.ms"),
            ["api.azureml.ms"]
        );
    }

    #[test]
    fn private_twins() {
        let cases = [
            (
                "st.blob.core.windows.net",
                Some("st.privatelink.blob.core.windows.net"),
            ),
            (
                "kv.vault.azure.net",
                Some("kv.privatelink.vaultcore.azure.net"),
            ),
            (
                "kv.vaultcore.azure.net",
                Some("kv.privatelink.vaultcore.azure.net"),
            ),
            (
                "reg.eastus.data.azurecr.io",
                Some("reg.eastus.data.privatelink.azurecr.io"),
            ),
            (
                "g.workspace.eastus.cert.api.azureml.ms",
                Some("g.workspace.eastus.cert.privatelink.api.azureml.ms"),
            ),
            (
                "*.x.blob.core.windows.net",
                Some("*.x.privatelink.blob.core.windows.net"),
            ),
            (
                "app.scm.azurewebsites.net",
                Some("app.scm.privatelink.azurewebsites.net"),
            ),
            ("st.privatelink.blob.core.windows.net", None),
            ("ep.eastus.inference.ml.azure.com", None),
            ("ci.eastus.instances.azureml.ms", None),
            ("blob.core.windows.net", None),
            ("git.corp.example", None),
        ];
        for (name, want) in cases {
            assert_eq!(private_twin(name).as_deref(), want, "{name}");
        }
    }

    #[test]
    fn each_zone_is_listed_once_per_cloud_and_is_a_domain_name() {
        for cloud in Cloud::ALL {
            let zones = catalogue(Some(cloud));
            for (i, z) in zones.iter().enumerate() {
                assert_eq!(z.cloud, cloud);
                assert_eq!(super::super::domain_name(z.public).as_deref(), Ok(z.public));
                assert!(
                    !zones[..i].iter().any(|o| o.public == z.public),
                    "{} twice in {cloud}",
                    z.public
                );
                if let Some(p) = z.private {
                    assert!(p.starts_with("privatelink."), "{p}");
                }
            }
        }
    }
}
