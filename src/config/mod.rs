//! The configuration file (docs/configuration.md): read by `read`, parsed by `spec` (the
//! raw TOML shape, serde only), checked by `validate` into the [`Config`]
//! the rest of amldns works from, whose [`Config::sources`] the zone table
//! is compiled from.
//!
//! Every error names the file, line and column of the value at fault. Simple
//! value checks happen in `validate`; checks across the whole table (two
//! answers for one name) happen when the zone table is compiled, with the
//! same locations.

// The config types are what an operator's file becomes: each says what it is.
#![warn(missing_docs)]

mod addr;
mod read;
mod spec;
#[cfg(test)]
mod tests;
mod validate;
mod watch;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

// The error and warning types are the configuration's words; they live in
// `diagnostics` so that `import` and `zone` can use them without `config`.
use crate::azure::discovery::Discovery;
pub use crate::diagnostics::{ConfigError, Location, Warning};
use crate::import::ImportedName;
use crate::names::{Cloud, Workspace};
use crate::zone::{Given, Source, ZoneSettings};
pub use addr::{dns_server, is_private};
pub use read::{load, parse};
pub use watch::watch_dirs;

/// Where the config file lives when neither `--config` nor `AMLDNS_CONFIG` says.
pub const DEFAULT_PATH: &str = "/etc/amldns/amldns.toml";

/// Azure's recursive resolver, reachable from every VM in a VNet.
pub const AZURE_RESOLVER: &str = "168.63.129.16:53";

/// A validated configuration: what `serve`, `check` and `records` work from.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from; imports are relative to its folder.
    pub path: PathBuf,
    /// `[server]`: the DNS listeners and who may ask them.
    pub server: ServerConfig,
    /// `[metrics]`: the HTTP listener; `None` starts none.
    pub metrics: Option<MetricsConfig>,
    /// `[upstream]`: where the names not answered here are asked.
    pub upstream: UpstreamConfig,
    /// `[zone]`: how local names are answered.
    pub zone: ZoneSettings,
    /// `[log]`: what is logged besides events.
    pub log: LogConfig,
    /// The `[[workspace]]` tables, in the order written; none by default.
    pub workspaces: Vec<Located<Workspace>>,
    /// The `[[record]]` tables, in the order written; none by default.
    pub records: Vec<Located<Record>>,
    /// The names read from the `[[import]]` files.
    pub imports: Vec<ImportedName>,
    /// The discovery files read through `[[import]]` (another amldns's
    /// `discover --watch --out`): merged as discovery is, below the
    /// file's own names.
    pub discoveries: Vec<Located<Discovery>>,
    /// `[azure]`: discovery from Azure Resource Manager; `None` (the
    /// default) discovers nothing.
    pub azure: Option<AzureConfig>,
    /// What was accepted but looks wrong, for the operator to read.
    pub warnings: Vec<Warning>,
    /// A hash of the text of the config and of every import file, exactly
    /// as read and parsed: equal fingerprints, equal configurations.
    pub fingerprint: u64,
    /// SHA-256 of the config file's text (imports not included), in hex:
    /// what `sha256sum` prints for the file, exported as
    /// `amldns_config_info{sha256}` and in `/status` so that an operator can tell
    /// which file a replica serves.
    pub sha256: String,
}

/// A value and where it was written.
#[derive(Debug, Clone)]
pub struct Located<T> {
    /// Where it was written.
    pub at: Location,
    /// The value.
    pub value: T,
}

/// `[server]`, checked.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Addresses answered on, over UDP and TCP; default `0.0.0.0:53`.
    pub listen: Vec<SocketAddr>,
    /// Clients that may query, others are refused; default the private
    /// ranges, shared address space, loopback and link-local.
    pub allow: Vec<IpNet>,
    /// TCP connections open at once; past it the longest idle is closed.
    /// Default 1024.
    pub tcp_connections: usize,
    /// A TCP connection with no query for this long is closed (RFC 7766
    /// §6.2.3); default 10 s.
    pub tcp_idle_timeout: Duration,
    /// The server's name for `id.server`/`hostname.bind` CH TXT and NSID,
    /// so that an operator behind a load balancer knows who answered;
    /// default this host's name.
    pub identity: String,
    /// Threads answering queries, each with a UDP socket of its own on every
    /// listen address (SO_REUSEPORT), so that every core answers; default
    /// the cores this process may use.
    pub threads: usize,
    /// `use-application-dns.net` is answered NXDOMAIN here instead of
    /// forwarded: browsers that turn DNS-over-HTTPS on by default take that
    /// as the network's word to keep using it, and so keep reaching the
    /// private endpoints its table points to. Default true.
    pub doh_canary: bool,
}

/// `[metrics]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// The HTTP listener's address; `[metrics] listen` has no default.
    pub listen: SocketAddr,
    /// Clients that may change state through the listener (every POST:
    /// `/reload`, `/cache/flush`); anyone who reaches it may read. Default
    /// loopback only.
    pub control_allow: Vec<IpNet>,
}

/// `[upstream]`, checked: the forwarder's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Resolvers asked, in order; default Azure's, 168.63.129.16:53.
    pub servers: Vec<SocketAddr>,
    /// How long one upstream gets before the next is tried; default 2 s.
    pub timeout: Duration,
    /// Forwarded answers kept, 0 turns the cache off; default 10,000.
    pub cache_entries: u64,
    /// The memory those answers may hold, 0 turns the cache off; default
    /// 64 MiB.
    pub cache_bytes: u64,
    /// Questions asked upstream at once; default 150, below the 200 in
    /// flight per VM past which Azure's resolver drops queries.
    pub max_in_flight: usize,
    /// Upstream queries per second; default 900, below the 1000 per VM
    /// past which Azure's resolver drops queries.
    pub max_qps: u32,
}

/// `[log]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// One log line per query: client, name, type, outcome, rcode, time.
    /// Default false.
    pub queries: bool,
}

/// `[azure]`, checked: discovery from Azure Resource Manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureConfig {
    /// Lower-case subscription ids; default none (this or
    /// `management_groups` is needed).
    pub subscriptions: Vec<String>,
    /// Management group ids, as written: their subscriptions are read
    /// through Resource Graph. Default none.
    pub management_groups: Vec<String>,
    /// Lower-case; empty means every resource group.
    pub resource_groups: Vec<String>,
    /// Lower-case VNet resource ids: only private endpoints whose subnet is
    /// in one of them count; empty means every endpoint.
    pub virtual_networks: Vec<String>,
    /// Where the ARM token comes from; default a managed identity.
    pub auth: AzureAuth,
    /// Where the list of resources comes from; default Resource Graph.
    pub inventory: AzureInventory,
    /// Which private endpoints give names; default the workspaces'.
    pub private_endpoints: PrivateEndpoints,
    /// A user-assigned managed identity (or the workload identity's client,
    /// instead of `AZURE_CLIENT_ID`); default the system-assigned one.
    pub client_id: Option<String>,
    /// The Entra tenant (id or domain) whose token `az` is asked for (its
    /// default tenant may not be the subscriptions'), and workload
    /// identity's instead of `AZURE_TENANT_ID`. Default theirs.
    pub tenant_id: Option<String>,
    /// Time from the end of one round to the start of the next; default
    /// five minutes.
    pub interval: Duration,
    /// The cloud whose ARM endpoint and token resource are used; default
    /// the public one.
    pub cloud: Cloud,
    /// Azure Resource Manager, `scheme://host[:port][/path]`, no final
    /// `/`; default the cloud's (`https://management.azure.com`).
    pub arm_endpoint: String,
    /// Where IMDS is asked for a managed identity's token, no final `/`;
    /// default `http://169.254.169.254`.
    pub imds_endpoint: String,
    /// CA certificates (PEM) trusted for ARM and Entra ID besides the
    /// built-in roots and the system's store (a TLS-inspecting proxy's);
    /// default none.
    pub ca_file: Option<PathBuf>,
    /// Each ARM or token request gives up after this; default 10 s.
    pub timeout: Duration,
    /// ARM reads per second at most; default 20, under the 25 a second
    /// ARM refills a subscription's read bucket with.
    pub max_reads_per_second: u32,
    /// The last good discovery, written after each change and read at
    /// start; default none.
    pub state_file: Option<PathBuf>,
}

/// Where the ARM token comes from (`[azure] auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureAuth {
    /// IMDS: a VM's or VM scale set's identity.
    ManagedIdentity,
    /// AKS: the federated token file and the `AZURE_*` variables.
    WorkloadIdentity,
    /// `az account get-access-token`: a person's login, for `discover`.
    Cli,
}

/// Where a round's list of resources comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureInventory {
    /// Azure Resource Graph: a few queries per resource type, 1,000 rows
    /// a page, for every subscription at once.
    ResourceGraph,
    /// Per-resource ARM reads: for clouds or identities without Resource Graph.
    Arm,
}

/// Which private endpoints a round serves the names of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivateEndpoints {
    /// The workspaces' own, and those of the storage account, key vault and
    /// container registry each workspace names.
    Workspaces,
    /// Besides those, every other approved private endpoint in scope
    /// (subscriptions, resource groups, `virtual_networks`): Azure AI
    /// Foundry accounts, ML registries, search services, Cosmos DB…, for
    /// the names it lists under a zone of the private-link catalogue.
    All,
}

/// A `[[record]]`: any other private-endpoint name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Lower-case, no final dot; `*.` first for a one-label wildcard.
    pub name: String,
    /// What it answers.
    pub answer: RecordAnswer,
    /// Its TTL; `None` for the `[zone]` one.
    pub ttl: Option<u32>,
}

/// What a `[[record]]` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordAnswer {
    /// `a` or `aaaa`: these addresses.
    Addrs(Vec<IpAddr>),
    /// `cname`: this name, lower-case, no final dot.
    Cname(String),
}

/// The hex SHA-256 of `text`, as `sha256sum` prints it.
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Config {
    /// Every source of local names, in the order written: workspaces,
    /// records, then imported names.
    pub fn sources(&self) -> impl Iterator<Item = Source<'_>> {
        let workspaces = self.workspaces.iter().map(|w| Source::Workspace {
            workspace: &w.value,
            at: &w.at,
        });
        let records = self.records.iter().map(|r| Source::Record {
            name: &r.value.name,
            data: match &r.value.answer {
                RecordAnswer::Addrs(a) => Given::Addrs(a),
                RecordAnswer::Cname(t) => Given::Alias(t),
            },
            ttl: r.value.ttl,
            at: &r.at,
        });
        let imports = self.imports.iter().map(|i| Source::Import {
            name: &i.name,
            addrs: &i.addrs,
            at: &i.at,
        });
        workspaces.chain(records).chain(imports)
    }
}
