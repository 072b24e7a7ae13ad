//! The configuration file (SPEC §2): the raw TOML shape (`Spec`, serde only)
//! and the validated [`Config`] the rest of amldns works from.
//!
//! Every error names the file, line and column of the value at fault. Simple
//! value checks happen here; checks across the whole table (two answers for
//! one name) happen when the zone table is compiled, with the same locations.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::import::{self, ImportedName};
use crate::names::{self, AnswerMode, Cloud, Project, Workspace};

/// Where the config file lives when neither `--config` nor `AMLDNS_CONFIG` says.
pub const DEFAULT_PATH: &str = "/etc/amldns/amldns.toml";

/// Azure's recursive resolver, reachable from every VM in a VNet.
pub const AZURE_RESOLVER: &str = "168.63.129.16:53";

/// A place in a file: what every error and warning points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
}

/// Turns byte offsets of one file's text into locations. Built once per
/// file: a config of 10,000 workspaces locates tens of thousands of values.
pub struct Lines<'a> {
    file: &'a Path,
    text: &'a str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines { file, text, starts }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The location of byte `offset`.
    pub fn locate(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        Location {
            file: self.file.to_path_buf(),
            line,
            col: self
                .text
                .get(start..offset)
                .map_or(0, |s| s.chars().count())
                + 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{at}: {message}")]
    Invalid { at: Location, message: String },
}

/// Something legal but probably not what was meant; logged and printed by `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub at: Location,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: warning: {}", self.at, self.message)
    }
}

// ---- the raw file shape ----------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Spec {
    #[serde(default)]
    server: ServerSpec,
    metrics: Option<MetricsSpec>,
    #[serde(default)]
    upstream: UpstreamSpec,
    #[serde(default)]
    zone: ZoneSpec,
    #[serde(default)]
    log: LogSpec,
    #[serde(default)]
    workspace: Vec<WorkspaceSpec>,
    #[serde(default)]
    record: Vec<RecordSpec>,
    #[serde(default)]
    import: Vec<ImportSpec>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServerSpec {
    /// UDP and TCP on each address.
    listen: Option<Spanned<Vec<Spanned<String>>>>,
    /// Client networks that may query; everyone else gets REFUSED.
    allow: Option<Spanned<Vec<Spanned<String>>>>,
    tcp_connections: Option<Spanned<u64>>,
    tcp_idle_timeout_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSpec {
    listen: Spanned<String>,
    /// Who may POST /reload (SPEC §4); default loopback only.
    control_allow: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UpstreamSpec {
    servers: Option<Spanned<Vec<Spanned<String>>>>,
    timeout_ms: Option<Spanned<u64>>,
    cache_entries: Option<u64>,
    max_in_flight: Option<Spanned<u64>>,
    max_qps: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ZoneSpec {
    ttl: Option<Spanned<u32>>,
    answer: Option<AnswerSpec>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LogSpec {
    /// One line per query: client, name, type, outcome, rcode, latency.
    #[serde(default)]
    queries: bool,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum AnswerSpec {
    A,
    Cname,
}

#[derive(Debug, Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
enum CloudSpec {
    #[default]
    Public,
    China,
    Usgov,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkspaceSpec {
    name: Spanned<String>,
    id: Spanned<String>,
    region: Spanned<String>,
    #[serde(default)]
    cloud: CloudSpec,
    ip: Spanned<String>,
    notebook_ip: Option<Spanned<String>>,
    inference_ip: Option<Spanned<String>>,
    notebook_fqdn: Option<Spanned<String>>,
    #[serde(default)]
    instances: Vec<Spanned<String>>,
    #[serde(default)]
    instances_wildcard: bool,
    #[serde(default)]
    online_endpoints: Vec<Spanned<String>>,
    #[serde(default)]
    inference_wildcard: bool,
    #[serde(default)]
    projects: Vec<ProjectSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectSpec {
    name: Spanned<String>,
    id: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordSpec {
    name: Spanned<String>,
    #[serde(default)]
    a: Vec<Spanned<String>>,
    #[serde(default)]
    aaaa: Vec<Spanned<String>>,
    cname: Option<Spanned<String>>,
    ttl: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportSpec {
    path: Spanned<String>,
}

// ---- the validated configuration -------------------------------------------

/// A validated configuration: what `serve`, `check` and `records` work from.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from; imports are relative to its folder.
    pub path: PathBuf,
    pub server: ServerConfig,
    pub metrics: Option<MetricsConfig>,
    pub upstream: UpstreamConfig,
    pub zone: ZoneConfig,
    pub log: LogConfig,
    pub workspaces: Vec<Located<Workspace>>,
    pub records: Vec<Located<Record>>,
    pub imports: Vec<ImportedName>,
    pub warnings: Vec<Warning>,
    /// A hash of the text of the config and of every import file, exactly
    /// as read and parsed: equal fingerprints, equal configurations.
    pub fingerprint: u64,
}

/// A value and where it was written.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub at: Location,
    pub value: T,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    pub allow: Vec<IpNet>,
    /// TCP connections open at once; past it the longest idle is closed.
    pub tcp_connections: usize,
    /// A TCP connection with no query for this long is closed (RFC 7766 §6.2.3).
    pub tcp_idle_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
    /// Clients that may change state through the listener (`POST /reload`);
    /// anyone who reaches it may read.
    pub control_allow: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    pub servers: Vec<SocketAddr>,
    /// How long one upstream gets before the next is tried.
    pub timeout: Duration,
    /// Forwarded answers kept; 0 turns the cache off.
    pub cache_entries: u64,
    /// Questions asked upstream at once (SPEC §1: Azure allows 200 per VM).
    pub max_in_flight: usize,
    /// Upstream queries per second (SPEC §1: Azure allows 1000 per VM).
    pub max_qps: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub queries: bool,
}

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    pub ttl: u32,
    pub answer: AnswerMode,
}

/// A `[[record]]`: any other private-endpoint name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Lower-case, no final dot; `*.` first for a one-label wildcard.
    pub name: String,
    pub answer: RecordAnswer,
    pub ttl: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordAnswer {
    Addrs(Vec<IpAddr>),
    Cname(String),
}

/// Who may POST /reload by default (SPEC §4): loopback, since a metrics
/// listener on 0.0.0.0 (for Kubernetes probes and Prometheus) must not let
/// whoever reaches it reload.
const DEFAULT_CONTROL_ALLOW: [&str; 2] = ["127.0.0.0/8", "::1/128"];

/// Default client networks (SPEC §2): private ranges, CGNAT, loopback and
/// link-local, so that amldns is never an open resolver by default.
const DEFAULT_ALLOW: [&str; 9] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
];

const DEFAULT_LISTEN: &str = "0.0.0.0:53";
const DEFAULT_TIMEOUT_MS: u64 = 2000;
const DEFAULT_CACHE_ENTRIES: u64 = 10_000;
/// TTL of local answers; Azure's own private DNS records use 10 s, but the
/// table only changes on reload, so a minute spares clients' lookups.
const DEFAULT_TTL: u32 = 60;
/// RFC 2181 §8: TTLs are 31-bit; a week is already far more than useful here.
const MAX_TTL: u32 = 7 * 24 * 3600;
/// One try can take at most the whole query deadline.
const TIMEOUT_MS_RANGE: Range<u64> = 50..2_501;
/// Below Azure's 200 in flight per VM, with room for other software on it.
const DEFAULT_MAX_IN_FLIGHT: u64 = 150;
/// Below Azure's 1000 queries/s per VM, with the same room.
const DEFAULT_MAX_QPS: u64 = 900;
const DEFAULT_TCP_CONNECTIONS: u64 = 1024;
/// RFC 7766 §6.2.3 leaves it to the server; Unbound and BIND use 30 s,
/// dnsdist 5 s. Ten seconds keeps a pipelining client's connection up.
const DEFAULT_TCP_IDLE_TIMEOUT_MS: u64 = 10_000;

/// Reads, parses and validates the config at `path`, and its imports.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses and validates `text`, read from `path` (imports are read relative to it).
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let cx = Cx {
        path,
        lines: Lines::new(path, text),
    };
    let spec: Spec = toml::from_str(text).map_err(|e| {
        let at = cx.at(e.span().map_or(0, |s| s.start));
        ConfigError::Invalid {
            at,
            message: e.message().trim().to_string(),
        }
    })?;
    cx.validate(spec)
}

/// The file being validated, for locating values.
struct Cx<'a> {
    path: &'a Path,
    lines: Lines<'a>,
}

impl Cx<'_> {
    fn at(&self, offset: usize) -> Location {
        self.lines.locate(offset)
    }

    fn at_span<T>(&self, v: &Spanned<T>) -> Location {
        self.at(v.span().start)
    }

    fn err<T>(&self, v: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            at: self.at_span(v),
            message: message.into(),
        }
    }

    /// Parses a string value, or says what was expected where it stands.
    fn parse<T: FromStr>(&self, v: &Spanned<String>, expected: &str) -> Result<T, ConfigError> {
        v.get_ref()
            .trim()
            .parse()
            .map_err(|_| self.err(v, format!("{:?} is not {expected}", v.get_ref())))
    }

    fn validate(&self, spec: Spec) -> Result<Config, ConfigError> {
        let Spec {
            server,
            metrics,
            upstream,
            zone,
            log,
            workspace,
            record,
            import,
        } = spec;
        let mut warnings = Vec::new();

        let listen = match server.listen {
            Some(list) if list.get_ref().is_empty() => {
                return Err(self.err(
                    &list,
                    "listen is empty: give at least one address:port such as \"0.0.0.0:53\"",
                ));
            }
            Some(list) => list
                .get_ref()
                .iter()
                .map(|l| self.parse(l, "an address:port such as \"0.0.0.0:53\""))
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![DEFAULT_LISTEN.parse().expect("valid default")],
        };
        let allow = match server.allow {
            Some(list) => {
                if list.get_ref().is_empty() {
                    warnings.push(Warning {
                        at: self.at_span(&list),
                        message: "allow is empty: every client will be REFUSED".into(),
                    });
                }
                let mut nets = Vec::new();
                for a in list.get_ref() {
                    let net = self.parse_net(a)?;
                    if net.prefix_len() == 0 {
                        warnings.push(Warning {
                            at: self.at_span(a),
                            message: format!(
                                "allow {net} lets anyone query: amldns is then an open resolver"
                            ),
                        });
                    }
                    nets.push(net);
                }
                nets
            }
            None => DEFAULT_ALLOW
                .iter()
                .map(|n| n.parse().expect("valid default"))
                .collect(),
        };

        let metrics = metrics
            .map(|m| {
                Ok::<_, ConfigError>(MetricsConfig {
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
            })
            .transpose()?;

        let servers = match upstream.servers {
            Some(list) if list.get_ref().is_empty() => {
                return Err(self.err(
                    &list,
                    "upstream servers is empty: list at least one resolver, e.g. \"168.63.129.16\"",
                ));
            }
            Some(list) => list
                .get_ref()
                .iter()
                .map(|s| self.parse_upstream(s))
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![AZURE_RESOLVER.parse().expect("valid default")],
        };
        let timeout_ms = match &upstream.timeout_ms {
            Some(t) if !TIMEOUT_MS_RANGE.contains(t.get_ref()) => {
                return Err(self.err(
                    t,
                    format!(
                        "timeout_ms {} is out of range: expected {}..={} (a client gets \
                         SERVFAIL once {} ms have passed, whatever the upstreams do)",
                        t.get_ref(),
                        TIMEOUT_MS_RANGE.start,
                        TIMEOUT_MS_RANGE.end - 1,
                        crate::forward::QUERY_DEADLINE.as_millis()
                    ),
                ));
            }
            Some(t) => *t.get_ref(),
            None => DEFAULT_TIMEOUT_MS,
        };

        let ttl = match &zone.ttl {
            Some(t) => self.ttl(t)?,
            None => DEFAULT_TTL,
        };
        let answer = match zone.answer {
            Some(AnswerSpec::Cname) => AnswerMode::Cname,
            Some(AnswerSpec::A) | None => AnswerMode::A,
        };

        let mut workspaces: Vec<Located<Workspace>> = Vec::new();
        // Every hub, workspace and project id, with where it was first given.
        let mut ids: std::collections::HashMap<String, Location> = Default::default();
        for w in &workspace {
            let ws = self.workspace(w)?;
            let given = std::iter::once((&ws.id, &w.id)).chain(
                ws.projects
                    .iter()
                    .zip(&w.projects)
                    .map(|(p, s)| (&p.id, &s.id)),
            );
            for (id, span) in given {
                if let Some(prev) = ids.get(id) {
                    return Err(self.err(
                        span,
                        format!(
                            "id {id} is already listed at {prev}: each workspace and project once"
                        ),
                    ));
                }
                ids.insert(id.clone(), self.at_span(span));
            }
            workspaces.push(Located {
                at: self.at_span(&w.id),
                value: ws,
            });
        }

        let records = record
            .iter()
            .map(|r| {
                Ok(Located {
                    at: self.at_span(&r.name),
                    value: self.record(r)?,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;

        let mut imports = Vec::new();
        let mut fingerprint = DefaultHasher::new();
        self.lines.text().hash(&mut fingerprint);
        for i in &import {
            let loaded = import::load(self.path, i.path.get_ref()).map_err(|e| match e {
                import::ImportError::Pattern(message) => self.err(&i.path, message),
                import::ImportError::At { at, message } => ConfigError::Invalid { at, message },
            })?;
            if loaded.files == 0 {
                warnings.push(Warning {
                    at: self.at_span(&i.path),
                    message: format!("import {:?} matches no file yet", i.path.get_ref()),
                });
            }
            for file in loaded.empty {
                warnings.push(Warning {
                    at: Location {
                        file,
                        line: 1,
                        col: 1,
                    },
                    message: "no names in this file: Azure empties customDnsConfigs once a \
                              private DNS zone group is attached; import the NIC instead \
                              (az network nic show)"
                        .into(),
                });
            }
            imports.extend(loaded.names);
            loaded.digest.hash(&mut fingerprint);
        }
        warnings.extend(import_warnings(&imports, &workspaces));

        Ok(Config {
            path: self.path.to_path_buf(),
            server: ServerConfig {
                listen,
                allow,
                tcp_connections: self.within(
                    &server.tcp_connections,
                    1..=1_000_000,
                    DEFAULT_TCP_CONNECTIONS,
                    "tcp_connections",
                )? as usize,
                tcp_idle_timeout: Duration::from_millis(self.within(
                    &server.tcp_idle_timeout_ms,
                    100..=3_600_000,
                    DEFAULT_TCP_IDLE_TIMEOUT_MS,
                    "tcp_idle_timeout_ms",
                )?),
            },
            metrics,
            upstream: UpstreamConfig {
                servers,
                timeout: Duration::from_millis(timeout_ms),
                cache_entries: upstream.cache_entries.unwrap_or(DEFAULT_CACHE_ENTRIES),
                max_in_flight: self.within(
                    &upstream.max_in_flight,
                    1..=100_000,
                    DEFAULT_MAX_IN_FLIGHT,
                    "max_in_flight",
                )? as usize,
                max_qps: self.within(
                    &upstream.max_qps,
                    1..=1_000_000,
                    DEFAULT_MAX_QPS,
                    "max_qps",
                )? as u32,
            },
            zone: ZoneConfig { ttl, answer },
            log: LogConfig {
                queries: log.queries,
            },
            workspaces,
            records,
            imports,
            warnings,
            fingerprint: fingerprint.finish(),
        })
    }

    fn parse_net(&self, v: &Spanned<String>) -> Result<IpNet, ConfigError> {
        let s = v.get_ref().trim();
        // A bare address means just that host.
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                self.err(
                    v,
                    format!("{s:?} is not a network: expected a CIDR such as \"10.0.0.0/8\""),
                )
            })
    }

    /// An upstream resolver: `ip:port`, or a bare IP meaning port 53.
    fn parse_upstream(&self, v: &Spanned<String>) -> Result<SocketAddr, ConfigError> {
        let s = v.get_ref().trim();
        s.parse::<SocketAddr>()
            .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .map_err(|_| {
                self.err(
                    v,
                    format!("{s:?} is not a resolver address: expected \"ip\" or \"ip:port\""),
                )
            })
    }

    /// `v`, `default` when absent; an error at `v` when outside `range`.
    fn within(
        &self,
        v: &Option<Spanned<u64>>,
        range: RangeInclusive<u64>,
        default: u64,
        key: &str,
    ) -> Result<u64, ConfigError> {
        match v {
            None => Ok(default),
            Some(s) if range.contains(s.get_ref()) => Ok(*s.get_ref()),
            Some(s) => Err(self.err(
                s,
                format!(
                    "{key} {} is out of range: expected {}..={}",
                    s.get_ref(),
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    fn ttl(&self, t: &Spanned<u32>) -> Result<u32, ConfigError> {
        let v = *t.get_ref();
        if v == 0 || v > MAX_TTL {
            return Err(self.err(
                t,
                format!("ttl {v} is out of range: expected 1..={MAX_TTL}"),
            ));
        }
        Ok(v)
    }

    fn uuid(&self, v: &Spanned<String>) -> Result<String, ConfigError> {
        let s = v.get_ref().trim();
        if !names::is_uuid(s) {
            return Err(self.err(
                v,
                format!(
                    "{s:?} is not a UUID: expected the workspace id (properties.workspaceId), \
                     e.g. \"fb7e20a0-8891-458b-b969-55ddb3382f51\""
                ),
            ));
        }
        Ok(s.to_ascii_lowercase())
    }

    fn label(&self, v: &Spanned<String>, what: &str) -> Result<String, ConfigError> {
        let s = v.get_ref().trim();
        if !names::is_host_label(s) {
            return Err(self.err(
                v,
                format!(
                    "{what} {s:?} is not a DNS label: expected 1-63 letters, digits and \
                     hyphens, not starting or ending with a hyphen"
                ),
            ));
        }
        Ok(s.to_ascii_lowercase())
    }

    fn workspace(&self, w: &WorkspaceSpec) -> Result<Workspace, ConfigError> {
        let name = w.name.get_ref().trim();
        // Azure allows letters, digits, hyphens and underscores in workspace names.
        if name.is_empty()
            || !name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Err(self.err(
                &w.name,
                format!(
                    "workspace name {name:?} is not valid: expected letters, digits, \
                     hyphens and underscores"
                ),
            ));
        }
        let id = self.uuid(&w.id)?;
        let region = self.label(&w.region, "region")?;
        if region.len() > names::MAX_REGION {
            return Err(self.err(
                &w.region,
                format!(
                    "region {region:?} is longer than any Azure region: the notebooks label \
                     has room for {} characters of it",
                    names::MAX_REGION
                ),
            ));
        }
        let cloud = match w.cloud {
            CloudSpec::Public => Cloud::Public,
            CloudSpec::China => Cloud::China,
            CloudSpec::Usgov => Cloud::UsGov,
        };
        let ip: IpAddr = self.parse(&w.ip, "an IP address")?;
        let notebook_ip = match &w.notebook_ip {
            Some(v) => self.parse(v, "an IP address")?,
            None => ip,
        };
        let inference_ip = match &w.inference_ip {
            Some(v) => self.parse(v, "an IP address")?,
            None => ip,
        };
        let notebook_fqdn = match &w.notebook_fqdn {
            Some(v) => Some(self.notebook_fqdn(v, cloud, &id, &region)?),
            None => None,
        };
        let mut instances = Vec::new();
        for ci in &w.instances {
            let label = self.label(ci, "compute instance")?;
            // The SSH name adds "-22" and must still fit in a label.
            if label.len() + 3 > names::MAX_LABEL {
                return Err(self.err(
                    ci,
                    format!("compute instance {label:?} is too long for its \"-22\" SSH name"),
                ));
            }
            instances.push(label);
        }
        let online_endpoints = w
            .online_endpoints
            .iter()
            .map(|e| self.label(e, "online endpoint"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut projects = Vec::new();
        for p in &w.projects {
            let pname = p.name.get_ref().trim();
            if pname.is_empty()
                || !pname
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            {
                return Err(self.err(&p.name, format!("project name {pname:?} is not valid")));
            }
            let pid = self.uuid(&p.id)?;
            projects.push(Project {
                name: pname.to_string(),
                id: pid,
            });
        }
        Ok(Workspace {
            name: name.to_string(),
            id,
            region,
            cloud,
            ip,
            notebook_ip,
            inference_ip,
            notebook_fqdn,
            instances,
            instances_wildcard: w.instances_wildcard,
            online_endpoints,
            inference_wildcard: w.inference_wildcard,
            projects,
        })
    }

    /// Azure's exact notebooks FQDN: it must sit in the workspace's cloud's
    /// notebooks zone, and its first label becomes the notebooks label.
    fn notebook_fqdn(
        &self,
        v: &Spanned<String>,
        cloud: Cloud,
        id: &str,
        region: &str,
    ) -> Result<String, ConfigError> {
        let fqdn = domain_name(v.get_ref())
            .map_err(|why| self.err(v, format!("notebook_fqdn {:?}: {why}", v.get_ref())))?;
        let (label, rest) = fqdn.split_once('.').unwrap_or((&fqdn, ""));
        let shaped = label.starts_with("ml-") && label.ends_with(id);
        let in_zone = match names::notebooks_zone_of(&fqdn) {
            Some((c, zone)) => {
                c == cloud
                    && (rest == zone || rest.strip_suffix(zone) == Some(&format!("{region}.")))
            }
            None => false,
        };
        if !shaped || !in_zone {
            return Err(self.err(
                v,
                format!(
                    "notebook_fqdn {fqdn:?} is not this workspace's notebooks name: expected \
                     ml-<name>-{region}-{id}.{region}.<notebooks zone of the {} cloud>, as in \
                     properties.notebookInfo.fqdn",
                    cloud.as_str()
                ),
            ));
        }
        Ok(fqdn)
    }

    fn record(&self, r: &RecordSpec) -> Result<Record, ConfigError> {
        let name = domain_name(r.name.get_ref()).map_err(|why| {
            self.err(
                &r.name,
                format!("record name {:?}: {why}", r.name.get_ref()),
            )
        })?;
        let ttl = r.ttl.as_ref().map(|t| self.ttl(t)).transpose()?;
        let answer = match (&r.cname, r.a.is_empty() && r.aaaa.is_empty()) {
            (Some(c), true) => {
                let target = domain_name(c.get_ref())
                    .map_err(|why| self.err(c, format!("cname {:?}: {why}", c.get_ref())))?;
                if target.starts_with("*.") {
                    return Err(self.err(c, "a cname target cannot be a wildcard"));
                }
                if target == name {
                    return Err(self.err(c, "a cname cannot point at itself"));
                }
                RecordAnswer::Cname(target)
            }
            (Some(c), false) => {
                return Err(self.err(c, "a record has either a/aaaa or cname, not both"));
            }
            (None, true) => {
                return Err(self.err(&r.name, "record needs a = [...], aaaa = [...] or cname"));
            }
            (None, false) => {
                let mut addrs = Vec::new();
                for a in &r.a {
                    addrs.push(IpAddr::V4(self.parse::<Ipv4Addr>(a, "an IPv4 address")?));
                }
                for a in &r.aaaa {
                    addrs.push(IpAddr::V6(self.parse::<Ipv6Addr>(a, "an IPv6 address")?));
                }
                RecordAnswer::Addrs(addrs)
            }
        };
        Ok(Record { name, answer, ttl })
    }
}

/// Folders whose changes may change the configuration at `path`: the
/// config's folder (and its real one, through a symlink), each import's base
/// folder, and the folder of every file an import matches now. Read
/// leniently, so that a config that does not load still names its imports
/// and fixing them is noticed.
pub fn watch_dirs(path: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut add = |d: &Path| {
        if !dirs.iter().any(|x| x == d) {
            dirs.push(d.to_path_buf());
        }
    };
    let folder_of = |f: &Path| f.parent().unwrap_or(Path::new(".")).to_path_buf();
    let real_folder_of = |f: &Path| std::fs::canonicalize(f).ok().map(|r| folder_of(&r));
    add(&folder_of(path));
    if let Some(d) = real_folder_of(path) {
        add(&d);
    }
    let table = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok());
    let imports = table
        .as_ref()
        .and_then(|t| t.get("import"))
        .and_then(toml::Value::as_array);
    for pattern in imports
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("path")?.as_str())
    {
        add(&import::base_dir(path, pattern));
        for f in import::files(path, pattern).unwrap_or_default() {
            add(&folder_of(&f));
            if let Some(d) = real_folder_of(&f) {
                add(&d);
            }
        }
    }
    dirs
}

/// Checks a domain name as amldns stores it: lower-case, no final dot, labels
/// of 1–63 letters, digits, hyphens or underscores (RFC 2181 §11 allows more,
/// but private-endpoint names never need it), at most 253 characters, and `*`
/// only as a whole first label.
pub fn domain_name(raw: &str) -> Result<String, String> {
    let s = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    if s.is_empty() {
        return Err("empty name".into());
    }
    if s.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    let body = s.strip_prefix("*.").unwrap_or(&s);
    if !body.contains('.') {
        return Err("expected a fully qualified name with at least two labels".into());
    }
    for label in body.split('.') {
        if label.is_empty() {
            return Err("empty label".into());
        }
        if label.len() > names::MAX_LABEL {
            return Err(format!("label {label:?} is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Err(format!(
                "label {label:?} has a character other than letters, digits, '-' or '_' \
                 ('*' only as the whole first label)"
            ));
        }
    }
    Ok(s)
}

/// SPEC §2 warnings about imported names: a notebooks FQDN that differs from
/// the one derived for the same workspace, and a workspace whose private
/// endpoint lists no notebooks or no cert.api name.
fn import_warnings(imports: &[ImportedName], workspaces: &[Located<Workspace>]) -> Vec<Warning> {
    use std::collections::BTreeMap;
    let mut warnings = Vec::new();
    // workspace id -> (first location, has notebooks, has cert.api)
    let mut seen: BTreeMap<&str, (&Location, bool, bool)> = BTreeMap::new();
    for imp in imports {
        let Some(id) = names::workspace_id_in(&imp.name) else {
            continue;
        };
        let entry = seen.entry(id).or_insert((&imp.at, false, false));
        let is_notebooks = names::notebooks_zone_of(&imp.name).is_some();
        if is_notebooks {
            entry.1 = true;
        } else if imp.name.contains(".cert.") {
            entry.2 = true;
        }
        if !is_notebooks {
            continue;
        }
        if let Some(ws) = workspaces.iter().find(|w| w.value.id == id) {
            let derived: Vec<String> = names::derive(&ws.value, AnswerMode::A)
                .into_iter()
                .filter(|d| d.purpose == names::Purpose::Notebooks)
                .map(|d| d.name)
                .collect();
            if !derived.contains(&imp.name) {
                warnings.push(Warning {
                    at: imp.at.clone(),
                    message: format!(
                        "imported notebooks name {} differs from the one derived for workspace \
                         {} ({}): set notebook_fqdn = \"{}\" on the workspace at {}",
                        imp.name,
                        ws.value.name,
                        derived.first().map_or("", String::as_str),
                        imp.name,
                        ws.at
                    ),
                });
            }
        }
    }
    for (id, (at, notebooks, cert)) in seen {
        for (missing, what) in [(notebooks, "notebooks"), (cert, "cert.api")] {
            if !missing {
                warnings.push(Warning {
                    at: at.clone(),
                    message: format!("workspace {id}: the imported names have no {what} name"),
                });
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("test.toml"), text)
    }

    /// Asserts that `text` fails at `line:col` with a message containing `needle`.
    fn fails_at(text: &str, line: usize, col: usize, needle: &str) {
        match parse_str(text) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(ConfigError::Invalid { at, message }) => {
                assert_eq!(
                    (at.line, at.col),
                    (line, col),
                    "wrong place for {message:?} in:\n{text}"
                );
                assert!(message.contains(needle), "{message:?} lacks {needle:?}");
                assert_eq!(at.file, Path::new("test.toml"));
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    const WS: &str = r#"
[[workspace]]
name = "mlw-contoso-prod"
id = "fb7e20a0-8891-458b-b969-55ddb3382f51"
region = "eastus"
ip = "10.1.0.5"
"#;

    #[test]
    fn defaults() {
        let c = parse_str("").unwrap();
        assert_eq!(c.server.listen, vec!["0.0.0.0:53".parse().unwrap()]);
        assert!(
            c.server
                .allow
                .iter()
                .any(|n| n.contains(&"10.1.2.3".parse::<IpAddr>().unwrap()))
        );
        assert!(
            !c.server
                .allow
                .iter()
                .any(|n| n.contains(&"8.8.8.8".parse::<IpAddr>().unwrap()))
        );
        assert_eq!(
            c.upstream.servers,
            vec!["168.63.129.16:53".parse().unwrap()]
        );
        assert_eq!(c.upstream.timeout, Duration::from_millis(2000));
        assert_eq!(c.upstream.cache_entries, 10_000);
        assert_eq!(c.zone.ttl, 60);
        assert_eq!(c.zone.answer, AnswerMode::A);
        assert!(c.metrics.is_none());
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn full_example() {
        let c = parse_str(
            r#"
[server]
listen = ["127.0.0.1:5353", "[::1]:5353"]
allow = ["10.0.0.0/8", "127.0.0.1"]
[metrics]
listen = "127.0.0.1:9153"
[upstream]
servers = ["127.0.0.1:5301", "127.0.0.2"]
timeout_ms = 500
cache_entries = 5
[zone]
ttl = 30
answer = "cname"
[[workspace]]
name = "MLW-Contoso_prod"
id = "FB7E20A0-8891-458B-B969-55DDB3382F51"
region = "EastUS"
cloud = "usgov"
ip = "10.1.0.5"
notebook_ip = "10.1.0.6"
inference_ip = "10.1.0.7"
instances = ["ci-alice"]
instances_wildcard = true
online_endpoints = ["fraud-score"]
inference_wildcard = true
projects = [ { name = "proj-a", id = "0d5c2f4e-1111-2222-3333-444455556666" } ]
[[record]]
name = "StContoso.blob.core.windows.net."
a = ["10.1.0.9"]
ttl = 10
[[record]]
name = "alias.corp.example"
cname = "stcontoso.blob.core.windows.net"
"#,
        )
        .unwrap();
        assert_eq!(c.server.listen.len(), 2);
        assert_eq!(c.upstream.servers[1], "127.0.0.2:53".parse().unwrap());
        assert_eq!(c.metrics.unwrap().listen, "127.0.0.1:9153".parse().unwrap());
        assert_eq!(c.zone.answer, AnswerMode::Cname);
        let w = &c.workspaces[0].value;
        assert_eq!(w.id, "fb7e20a0-8891-458b-b969-55ddb3382f51");
        assert_eq!(w.region, "eastus");
        assert_eq!(w.cloud, Cloud::UsGov);
        assert_eq!(w.projects.len(), 1);
        assert_eq!(c.workspaces[0].at.line, 16);
        assert_eq!(c.records[0].value.name, "stcontoso.blob.core.windows.net");
        assert_eq!(c.records[0].value.ttl, Some(10));
        assert_eq!(
            c.records[1].value.answer,
            RecordAnswer::Cname("stcontoso.blob.core.windows.net".into())
        );
    }

    #[test]
    fn every_validation_error_is_located() {
        let cases: Vec<(String, usize, usize, &str)> = vec![
            // TOML syntax
            ("[server\nlisten = []".into(), 1, 8, "expected"),
            // unknown keys, at every level
            (
                "[server]\nlisten = []\nbogus = 1".into(),
                3,
                1,
                "unknown field `bogus`",
            ),
            (
                "[zone]\nttl = 5\nanswr = \"a\"".into(),
                3,
                1,
                "unknown field `answr`",
            ),
            (
                format!("{WS}colour = \"blue\""),
                7,
                1,
                "unknown field `colour`",
            ),
            (
                "[frobnicate]\nx = 1".into(),
                1,
                2,
                "unknown field `frobnicate`",
            ),
            // bad IPs and CIDRs and addresses
            (
                WS.replace("\"10.1.0.5\"", "\"10.1.0.x\""),
                6,
                6,
                "not an IP address",
            ),
            (
                format!("{WS}notebook_ip = \"10.1.0\""),
                7,
                15,
                "not an IP address",
            ),
            (
                format!("{WS}inference_ip = \"::g\""),
                7,
                16,
                "not an IP address",
            ),
            (
                "[server]\nallow = [\"10.0.0.0/33\"]".into(),
                2,
                10,
                "not a network",
            ),
            (
                "[server]\nlisten = [\"127.0.0.1\"]".into(),
                2,
                11,
                "address:port",
            ),
            (
                "[upstream]\nservers = [\"dns.example\"]".into(),
                2,
                12,
                "not a resolver address",
            ),
            ("[upstream]\nservers = []".into(), 2, 11, "servers is empty"),
            ("[server]\nlisten = []".into(), 2, 10, "listen is empty"),
            (
                "[upstream]\ntimeout_ms = 5000".into(),
                2,
                14,
                "SERVFAIL once 2500 ms",
            ),
            ("[upstream]\ntimeout_ms = 0".into(), 2, 14, "out of range"),
            (
                "[metrics]\nlisten = \"localhost\"".into(),
                2,
                10,
                "address:port",
            ),
            ("[zone]\nttl = 0".into(), 2, 7, "out of range"),
            ("[zone]\nanswer = \"aaaa\"".into(), 2, 10, "unknown variant"),
            // GUID, region, cloud, names
            (
                WS.replace("55ddb3382f51", "55ddb3382f5"),
                4,
                6,
                "not a UUID",
            ),
            (
                WS.replace("\"eastus\"", "\"east us\""),
                5,
                10,
                "not a DNS label",
            ),
            (format!("{WS}cloud = \"mars\""), 7, 9, "unknown variant"),
            (
                WS.replace("mlw-contoso-prod", "mlw contoso"),
                3,
                8,
                "not valid",
            ),
            (
                format!("{WS}instances = [\"ci_alice\"]"),
                7,
                14,
                "not a DNS label",
            ),
            (
                format!("{WS}instances = [\"{}\"]", "c".repeat(61)),
                7,
                14,
                "too long",
            ),
            (
                format!("{WS}online_endpoints = [\"-ep\"]"),
                7,
                21,
                "not a DNS label",
            ),
            (
                format!("{WS}notebook_fqdn = \"ml-x.blob.core.windows.net\""),
                7,
                17,
                "not this workspace's notebooks name",
            ),
            (
                format!("{WS}projects = [{{ name = \"p\", id = \"nope\" }}]"),
                7,
                32,
                "not a UUID",
            ),
            // duplicate workspaces
            (
                format!("{WS}{WS}"),
                10,
                6,
                "already listed at test.toml:4:6",
            ),
            // records
            (
                "[[record]]\nname = \"a..b\"\na = [\"10.0.0.1\"]".into(),
                2,
                8,
                "empty label",
            ),
            (
                "[[record]]\nname = \"a.b\"\na = [\"::1\"]".into(),
                3,
                6,
                "not an IPv4",
            ),
            (
                "[[record]]\nname = \"a.b\"\naaaa = [\"10.0.0.1\"]".into(),
                3,
                9,
                "not an IPv6",
            ),
            ("[[record]]\nname = \"a.b\"".into(), 2, 8, "needs"),
            (
                "[[record]]\nname = \"a.b\"\na = [\"10.0.0.1\"]\ncname = \"c.d\"".into(),
                4,
                9,
                "not both",
            ),
            (
                "[[record]]\nname = \"x.*.b\"\na = [\"10.0.0.1\"]".into(),
                2,
                8,
                "'*' only",
            ),
            (
                "[[record]]\nname = \"single\"\na = [\"10.0.0.1\"]".into(),
                2,
                8,
                "two labels",
            ),
            // imports
            (
                "[[import]]\npath = \"does-not-exist.json\"".into(),
                2,
                8,
                "does-not-exist.json",
            ),
        ];
        for (text, line, col, needle) in cases {
            fails_at(&text, line, col, needle);
        }
    }

    #[test]
    fn notebook_fqdn_forms_that_fit() {
        for fqdn in [
            "ml-contoso_r-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51.eastus.notebooks.azure.net",
            "ML-contoso-eastus-FB7E20A0-8891-458B-B969-55DDB3382F51.notebooks.azure.net.",
            "ml-x-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51.eastus.privatelink.notebooks.azure.net",
        ] {
            let c = parse_str(&format!("{WS}notebook_fqdn = \"{fqdn}\"")).unwrap();
            assert!(c.workspaces[0].value.notebook_fqdn.is_some(), "{fqdn}");
        }
    }

    #[test]
    fn import_warnings_cover_both_cases() {
        let at = |line| Location {
            file: PathBuf::from("pe.json"),
            line,
            col: 1,
        };
        let g = "fb7e20a0-8891-458b-b969-55ddb3382f51";
        let imp = |name: String, line| ImportedName {
            name,
            addrs: vec!["10.1.0.5".parse().unwrap()],
            at: at(line),
        };
        let c = parse_str(WS).unwrap();
        // Only the API name: both the notebooks and the cert.api name are missing.
        let w = import_warnings(
            &[imp(format!("{g}.workspace.eastus.api.azureml.ms"), 2)],
            &c.workspaces,
        );
        let msgs: Vec<&str> = w.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(w.len(), 2, "{msgs:?}");
        assert!(msgs[0].ends_with("have no notebooks name"), "{msgs:?}");
        assert!(msgs[1].ends_with("have no cert.api name"), "{msgs:?}");
        assert_eq!(w[0].at, at(2));
        // All three, the notebooks one as derived: no warning.
        let all = [
            imp(format!("{g}.workspace.eastus.api.azureml.ms"), 2),
            imp(format!("{g}.workspace.eastus.cert.api.azureml.ms"), 3),
            imp(
                format!("ml-mlw-contoso-prod-eastus-{g}.eastus.notebooks.azure.net"),
                4,
            ),
        ];
        assert!(import_warnings(&all, &c.workspaces).is_empty());
        // A notebooks name that differs from the derived one.
        let mut differs = all.clone();
        differs[2] = imp(
            format!("ml-mlw-contoso-pro-eastus-{g}.eastus.notebooks.azure.net"),
            4,
        );
        let w = import_warnings(&differs, &c.workspaces);
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("differs from the one derived"));
        assert_eq!(w[0].at, at(4));
    }

    #[test]
    fn empty_allow_is_a_warning() {
        let c = parse_str("[server]\nallow = []").unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0]
                .message
                .contains("every client will be REFUSED")
        );
    }

    #[test]
    fn open_allow_is_a_warning() {
        let c = parse_str("[server]\nallow = [\"0.0.0.0/0\"]").unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert_eq!((c.warnings[0].at.line, c.warnings[0].at.col), (2, 10));
        assert!(c.warnings[0].message.contains("open resolver"));
    }

    #[test]
    fn locations_count_characters() {
        let lines = Lines::new(Path::new("f"), "a\né = x\n\nz");
        let at = |o| {
            let l = lines.locate(o);
            (l.line, l.col)
        };
        assert_eq!(lines.locate(6).to_string(), "f:2:4");
        assert_eq!(
            [at(0), at(1), at(2), at(9), at(10), at(99)],
            [(1, 1), (1, 2), (2, 1), (3, 1), (4, 1), (4, 2)]
        );
    }

    #[test]
    fn domain_names() {
        assert_eq!(domain_name("A.B.").unwrap(), "a.b");
        assert_eq!(domain_name("*.x.y").unwrap(), "*.x.y");
        assert_eq!(domain_name("_sip._tcp.x.y").unwrap(), "_sip._tcp.x.y");
        assert!(domain_name("*").is_err());
        assert!(domain_name("a b.c").is_err());
        assert!(domain_name(&format!("{}.x", "a".repeat(64))).is_err());
        assert!(domain_name(&format!("{}x", "a.".repeat(127))).is_err());
    }
}
