//! The one place a validated configuration, and what Azure discovery found,
//! become what the server runs on: the [`Snapshot`] queries read (data
//! only), the forwarder's settings, and what only a restart changes. The
//! server's start, every reload and the CLI's `check`, `records` and
//! `explain` all build here, so that what they show is what is served.

use std::net::SocketAddr;
use std::time::Duration;

use crate::azure::{self, Discovered};
use crate::config::{
    self, AzureConfig, Config, ConfigError, MetricsConfig, UpstreamConfig, Warning,
};
use crate::resolve::{self, Policy};
use crate::zone::ZoneTable;

/// Everything a query reads, swapped as one piece so that a query sees one
/// consistent configuration.
pub struct Snapshot {
    pub table: ZoneTable,
    pub policy: Policy,
    /// `[server] tcp_connections` and `tcp_idle_timeout_ms`: a new
    /// connection is admitted and timed by the snapshot in force.
    pub tcp: TcpLimits,
    /// `[log] queries`: one line per query.
    pub log_queries: bool,
}

/// The TCP limits set in `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub connections: usize,
    pub idle_timeout: Duration,
}

/// What the sockets, threads and the HTTP listener were made from: a reload
/// that changes it says that it takes effect at the next restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartOnly {
    pub listen: Vec<SocketAddr>,
    pub threads: usize,
    pub metrics: Option<MetricsConfig>,
}

impl RestartOnly {
    /// The settings of `next` that differ from these, as written in the file.
    pub fn changed_in(&self, next: &RestartOnly) -> Vec<&'static str> {
        let RestartOnly {
            listen,
            threads,
            metrics,
        } = self;
        [
            (*listen != next.listen, "[server] listen"),
            (*threads != next.threads, "[server] threads"),
            (*metrics != next.metrics, "[metrics]"),
        ]
        .into_iter()
        .filter_map(|(changed, what)| changed.then_some(what))
        .collect()
    }
}

/// A configuration, built.
pub struct Built {
    pub snapshot: Snapshot,
    /// `[upstream]`, for the long-lived forwarder ([`crate::forward::Service`]).
    pub upstream: UpstreamConfig,
    pub restart: RestartOnly,
    /// `[azure]`, for the discovery rounds.
    pub azure: Option<AzureConfig>,
    /// The file's warnings, then those of merging the discovery in.
    pub warnings: Vec<Warning>,
    /// [`Config::fingerprint`]: equal fingerprints, equal files.
    pub fingerprint: u64,
    /// [`Config::sha256`].
    pub sha256: String,
}

/// The table `config` alone gives (no discovery, generation 1): what `check`
/// and `records` show, and what tests and benchmarks look at.
pub fn table(config: &Config) -> Result<ZoneTable, ConfigError> {
    build(config, &Discovered::default(), 1).map(|b| b.snapshot.table)
}

/// Builds `config` with `found` merged in, its table numbered `generation`.
/// Every field of the configuration is named here, so that a new one cannot
/// be forgotten: each is read into the snapshot (live), the forwarder's
/// settings (live), or what needs a restart.
pub fn build(config: &Config, found: &Discovered, generation: u64) -> Result<Built, ConfigError> {
    let (files, file_warnings) = azure::imported(config);
    let (discovered, merge_warnings) = azure::merge(config, found, &files);
    let table = ZoneTable::compile(config.sources().chain(discovered), config.zone, generation)?;
    let Config {
        // Read by the reload that watches it.
        path: _,
        server,
        metrics,
        upstream,
        // The table's: compiled above.
        zone: _,
        workspaces: _,
        records: _,
        imports: _,
        discoveries: _,
        log,
        azure,
        warnings,
        fingerprint,
        sha256,
    } = config;
    let config::ServerConfig {
        listen,
        allow,
        tcp_connections,
        tcp_idle_timeout,
        identity,
        threads,
        doh_canary,
    } = server;
    let config::LogConfig { queries } = log;
    Ok(Built {
        snapshot: Snapshot {
            table,
            policy: Policy {
                allow: allow.clone(),
                ns_addrs: resolve::ns_addrs(listen),
                identity: identity.as_str().into(),
                doh_canary: *doh_canary,
            },
            tcp: TcpLimits {
                connections: *tcp_connections,
                idle_timeout: *tcp_idle_timeout,
            },
            log_queries: *queries,
        },
        upstream: upstream.clone(),
        restart: RestartOnly {
            listen: listen.clone(),
            threads: *threads,
            metrics: metrics.clone(),
        },
        azure: azure.clone(),
        warnings: (warnings.iter().cloned())
            .chain(file_warnings)
            .chain(merge_warnings)
            .collect(),
        fingerprint: *fingerprint,
        sha256: sha256.clone(),
    })
}
