//! From the raw [`Spec`] to a [`Config`]: every value checked and located
//! (SPEC §2), defaults filled in, imports read, and the warnings gathered.

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use toml::Spanned;

use super::spec::{AnswerSpec, AuthSpec, AzureSpec, ImportSpec, RecordSpec, Spec, WorkspaceSpec};
use super::{
    AZURE_RESOLVER, AzureAuth, AzureConfig, Config, Located, LogConfig, MetricsConfig, Record,
    RecordAnswer, ServerConfig, UpstreamConfig,
};
use crate::diagnostics::{ConfigError, Lines, Location, Warning};
use crate::import::{self, ImportedName};
use crate::names::{self, AnswerMode, Cloud, Project, Workspace, domain_name};
use crate::zone::ZoneSettings;

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
/// More answering threads than this is a typo, not a machine.
const MAX_THREADS: u64 = 1024;
/// RFC 7766 §6.2.3 leaves it to the server; Unbound and BIND use 30 s,
/// dnsdist 5 s. Ten seconds keeps a pipelining client's connection up.
const DEFAULT_TCP_IDLE_TIMEOUT_MS: u64 = 10_000;
/// SPEC §8's example: five minutes costs a few reads per workspace per
/// round, far under ARM's read limits (README, "Discovery from Azure").
const DEFAULT_AZURE_INTERVAL_S: u64 = 300;
/// ARM answers reads in well under a second; ten allow a slow page of a
/// large list without letting one request hold a round.
const DEFAULT_AZURE_TIMEOUT_MS: u64 = 10_000;
/// ARM refills a subscription's read bucket at 25 per second (Microsoft
/// Learn, "Understand how Azure Resource Manager throttles requests"):
/// below that a round of any size is never throttled, and leaves the bucket's
/// burst to whoever else reads the subscription.
const DEFAULT_AZURE_READS_PER_SECOND: u64 = 20;

/// Checks `spec`, read from `path` whose text `lines` holds, and reads its imports.
pub(super) fn validate(path: &Path, lines: &Lines<'_>, spec: Spec) -> Result<Config, ConfigError> {
    let cx = Cx {
        path,
        lines,
        warnings: RefCell::default(),
        said: RefCell::default(),
    };
    cx.validate(spec)
}

/// The file being validated, for locating values, and what it is warned about.
struct Cx<'a> {
    path: &'a Path,
    lines: &'a Lines<'a>,
    warnings: RefCell<Vec<Warning>>,
    /// What [`Cx::warn_once`] has said: a mistake repeated over many
    /// workspaces or imported names (one public address, one unknown
    /// region) is said once, where it is first met.
    said: RefCell<HashSet<String>>,
}

impl Cx<'_> {
    fn warn(&self, at: Location, message: impl Into<String>) {
        self.warnings.borrow_mut().push(Warning {
            at,
            message: message.into(),
        });
    }

    fn warn_once(&self, at: impl FnOnce() -> Location, message: String) {
        if self.said.borrow_mut().insert(message.clone()) {
            self.warn(at(), message);
        }
    }

    /// Warns when `addr`, an answer, is not a private address (SPEC §2): a
    /// private endpoint's address is, so a public one is most likely a
    /// copy of the public answer, which the private endpoint exists to
    /// avoid. Loopback is not private either: clients would ask themselves.
    fn answer_address(&self, addr: IpAddr, at: impl FnOnce() -> Location) {
        if !is_private(addr) {
            self.warn_once(
                at,
                format!(
                    "answer address {addr} is not private (RFC 1918, 100.64.0.0/10 or fc00::/7): \
                     a private endpoint's addresses are, so this is likely a public answer copied by mistake"
                ),
            );
        }
    }

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
            azure,
        } = spec;
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
                    self.warn(
                        self.at_span(&list),
                        "allow is empty: every client will be REFUSED",
                    );
                }
                let mut nets = Vec::new();
                for a in list.get_ref() {
                    let net = self.parse_net(a)?;
                    if net.prefix_len() == 0 {
                        self.warn(
                            self.at_span(a),
                            format!(
                                "allow {net} lets anyone query: amldns is then an open resolver"
                            ),
                        );
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
                .map(|s| self.parse_upstream(s, &listen))
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
        let mut ids: HashMap<String, Location> = HashMap::new();
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
        let mut described = Vec::new();
        let mut fingerprint = DefaultHasher::new();
        self.lines.text().hash(&mut fingerprint);
        for i in &import {
            let loaded = import::load(self.path, i.path.get_ref()).map_err(|e| match e {
                import::ImportError::Pattern(message) => self.err(&i.path, message),
                import::ImportError::At { at, message } => ConfigError::Invalid { at, message },
            })?;
            if loaded.files == 0 {
                self.warn(
                    self.at_span(&i.path),
                    format!("import {:?} matches no file yet", i.path.get_ref()),
                );
            }
            for file in loaded.empty {
                self.warn(
                    Location::start_of(&file),
                    "no names in this file: Azure empties customDnsConfigs once a private DNS \
                     zone group is attached; import the NIC instead (az network nic show)",
                );
            }
            for name in &loaded.names {
                self.imported(name)?;
            }
            imports.extend(loaded.names);
            described.extend(loaded.workspaces);
            loaded.digest.hash(&mut fingerprint);
        }
        for d in described {
            // The file's [[workspace]] with that id wins.
            if ids.contains_key(&d.id) {
                continue;
            }
            if let Some(ws) = self.imported_workspace(&d, &imports) {
                ids.insert(ws.id.clone(), d.at.clone());
                workspaces.push(Located {
                    at: d.at,
                    value: ws,
                });
            }
        }
        let azure = azure.map(|a| self.azure(&a)).transpose()?;
        self.gives_local_names(&workspaces, &records, &imports, &import, azure.is_some())?;
        let mut warnings = self.warnings.take();
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
                identity: self.identity(&server.identity)?,
                threads: self.within(&server.threads, 1..=MAX_THREADS, cores(), "threads")?
                    as usize,
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
            zone: ZoneSettings { ttl, answer },
            log: LogConfig {
                queries: log.queries,
            },
            workspaces,
            records,
            imports,
            azure,
            warnings,
            fingerprint: fingerprint.finish(),
            sha256: super::sha256_hex(self.lines.text()),
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
    /// Not one of amldns's own `listen` addresses (SPEC §2): it would ask itself.
    fn parse_upstream(
        &self,
        v: &Spanned<String>,
        listen: &[SocketAddr],
    ) -> Result<SocketAddr, ConfigError> {
        let s = v.get_ref().trim();
        let upstream = s
            .parse::<SocketAddr>()
            .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .map_err(|_| {
                self.err(
                    v,
                    format!("{s:?} is not a resolver address: expected \"ip\" or \"ip:port\""),
                )
            })?;
        if let Some(own) = listen.iter().find(|l| is_own(upstream, **l)) {
            return Err(self.err(
                v,
                format!(
                    "upstream {upstream} is amldns itself (it listens on {own}): every forwarded \
                     query would come back to it; name the resolver it forwards to, e.g. \"{}\"",
                    AZURE_RESOLVER.trim_end_matches(":53")
                ),
            ));
        }
        Ok(upstream)
    }

    /// `[server] identity`, or this host's name: one TXT string (RFC 1035
    /// §3.3.14: at most 255 bytes) of printable ASCII, as `dig +nsid`
    /// shows it.
    fn identity(&self, v: &Option<Spanned<String>>) -> Result<String, ConfigError> {
        let Some(v) = v else {
            return Ok(host_name());
        };
        let id = v.get_ref();
        if id.is_empty() || id.len() > 255 || !id.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        {
            return Err(self.err(
                v,
                "identity must be 1 to 255 printable ASCII characters (it is sent as a TXT \
                 string and as NSID)",
            ));
        }
        Ok(id.clone())
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

    /// A workspace or project name: an error when it cannot make a notebooks
    /// label, a warning when Azure would not accept it.
    fn workspace_name(&self, v: &Spanned<String>, what: &str) -> Result<String, ConfigError> {
        let name = v.get_ref().trim();
        if !names::is_workspace_name(name) {
            return Err(self.err(
                v,
                format!(
                    "{what} name {name:?} is not valid: expected letters, digits, hyphens and \
                     underscores"
                ),
            ));
        }
        if let Some(why) = names::workspace_name_issue(name) {
            self.warn(
                self.at_span(v),
                format!("{what} name {name:?} {why}: Azure would not accept it"),
            );
        }
        Ok(name.to_string())
    }

    /// Warns when `region` (at `v`) is not a region of `cloud` that amldns
    /// knows. Only a warning: Azure adds regions.
    fn region_of(&self, cloud: Cloud, region: &str, v: &Spanned<String>) {
        if cloud.regions().contains(&region) {
            return;
        }
        let hint = match Cloud::of_region(region) {
            Some(other) => format!(
                "it is a region of the {} cloud: set cloud = \"{}\", or use a region of the \
                 {} cloud",
                other.as_str(),
                other.as_str(),
                cloud.as_str()
            ),
            None => match crate::diagnostics::closest(region, cloud.regions().iter().copied()) {
                Some(near) => format!("did you mean \"{near}\"?"),
                None => "check the spelling; if Azure has opened it since, ignore this".into(),
            },
        };
        self.warn_once(
            || self.at_span(v),
            format!(
                "region \"{region}\" is not an Azure region of the {} cloud: {hint}",
                cloud.as_str()
            ),
        );
    }

    /// An address a local name answers with, of type `T` (`expected` says which).
    fn answer<T: Into<IpAddr> + FromStr>(
        &self,
        v: &Spanned<String>,
        expected: &str,
    ) -> Result<IpAddr, ConfigError> {
        let addr: IpAddr = self.parse::<T>(v, expected)?.into();
        self.answer_address(addr, || self.at_span(v));
        Ok(addr)
    }

    fn workspace(&self, w: &WorkspaceSpec) -> Result<Workspace, ConfigError> {
        let name = self.workspace_name(&w.name, "workspace")?;
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
        let cloud = w.cloud;
        self.region_of(cloud, &region, &w.region);
        let ip = self.answer::<IpAddr>(&w.ip, "an IP address")?;
        let notebook_ip = match &w.notebook_ip {
            Some(v) => self.answer::<IpAddr>(v, "an IP address")?,
            None => ip,
        };
        let inference_ip = match &w.inference_ip {
            Some(v) => self.answer::<IpAddr>(v, "an IP address")?,
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
            projects.push(Project {
                name: self.workspace_name(&p.name, "project")?,
                id: self.uuid(&p.id)?,
            });
        }
        Ok(Workspace {
            name,
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
        if let Some(why) = names::captures_public(&name) {
            return Err(self.err(&r.name, captures_public_message("record", &name, why)));
        }
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
                    addrs.push(self.answer::<Ipv4Addr>(a, "an IPv4 address")?);
                }
                for a in &r.aaaa {
                    addrs.push(self.answer::<Ipv6Addr>(a, "an IPv6 address")?);
                }
                RecordAnswer::Addrs(addrs)
            }
        };
        Ok(Record { name, answer, ttl })
    }

    /// An imported name: its addresses are answers, and an imported wildcard
    /// must not capture public names. Imported exact names are Azure's own
    /// list for a private endpoint, so they are taken as given.
    fn imported(&self, name: &ImportedName) -> Result<(), ConfigError> {
        if name.name.starts_with("*.")
            && let Some(why) = names::captures_public(&name.name)
        {
            return Err(ConfigError::Invalid {
                at: name.at.clone(),
                message: captures_public_message("imported wildcard", &name.name, why),
            });
        }
        for addr in &name.addrs {
            self.answer_address(*addr, || name.at.clone());
        }
        Ok(())
    }

    /// The workspace an imported workspace object describes, its addresses
    /// read off the names imported beside it as discovery reads them off a
    /// private endpoint (SPEC §8 step 2); a warning when they give none.
    fn imported_workspace(
        &self,
        d: &import::ImportedWorkspace,
        imports: &[ImportedName],
    ) -> Option<Workspace> {
        let pairs: Vec<(String, Vec<IpAddr>)> = imports
            .iter()
            .map(|n| (n.name.clone(), n.addrs.clone()))
            .collect();
        let valid = names::is_uuid(&d.id)
            && names::is_workspace_name(&d.name)
            && names::is_host_label(&d.region)
            && d.region.len() <= names::MAX_REGION;
        let found = valid
            .then(|| {
                import::workspace_from_endpoint(
                    &d.name,
                    &d.id,
                    &d.region,
                    d.notebook_fqdn.as_deref(),
                    &pairs,
                    Cloud::Public,
                )
            })
            .flatten();
        let why = match found {
            Some(ws) => return Some(ws),
            None if !valid => "its name, id or region cannot make DNS names".to_string(),
            None => format!(
                "no imported name gives its API address ({}.workspace.{}.<api zone>): import \
                 its private endpoint, NIC or DNS zone group beside it",
                d.id, d.region
            ),
        };
        self.warn(
            d.at.clone(),
            format!("workspace {} ({}) is not served: {why}", d.name, d.id),
        );
        None
    }

    /// SPEC §2: a configuration must give something to answer locally, so
    /// that a truncated or emptied file can never empty a running table; a
    /// reload refuses it like any broken config. Every source of local names
    /// counts here, and only here: an `[azure]` section is one, since its
    /// discovery survives restarts in `state_file` and a failed round keeps
    /// the last good one.
    fn gives_local_names(
        &self,
        workspaces: &[Located<Workspace>],
        records: &[Located<Record>],
        imported: &[ImportedName],
        imports: &[ImportSpec],
        azure: bool,
    ) -> Result<(), ConfigError> {
        if azure || !workspaces.is_empty() || !records.is_empty() || !imported.is_empty() {
            return Ok(());
        }
        let (at, imports_say) = match imports.first() {
            Some(i) => (
                self.at_span(&i.path),
                "; the [[import]]s match no file that lists a name",
            ),
            None => (Location::start_of(self.path), ""),
        };
        Err(ConfigError::Invalid {
            at,
            message: format!(
                "the config gives nothing to answer locally: no [[workspace]], [[record]] or \
                 [[import]] match{imports_say}; a truncated or emptied file would empty the table"
            ),
        })
    }
}

impl Cx<'_> {
    /// `[azure]` (SPEC §8). Endpoints may be plain `http://` (a stand-in on
    /// loopback in tests, a proxy): only the defaults are fixed to https.
    fn azure(&self, a: &Spanned<AzureSpec>) -> Result<AzureConfig, ConfigError> {
        let a = a.get_ref();
        if a.subscriptions.get_ref().is_empty() {
            return Err(self.err(
                &a.subscriptions,
                "subscriptions is empty: list the subscription ids to scan",
            ));
        }
        let subscriptions = a
            .subscriptions
            .get_ref()
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
        let cloud = a.cloud;
        let endpoint = |v: &Option<Spanned<String>>, default: &str, key: &str| match v {
            None => Ok(default.to_string()),
            Some(v) => self.endpoint(v, key),
        };
        Ok(AzureConfig {
            subscriptions,
            resource_groups: a
                .resource_groups
                .iter()
                .map(|g| g.get_ref().trim().to_ascii_lowercase())
                .collect(),
            auth: match a.auth {
                AuthSpec::ManagedIdentity => AzureAuth::ManagedIdentity,
                AuthSpec::WorkloadIdentity => AzureAuth::WorkloadIdentity,
                AuthSpec::Cli => AzureAuth::Cli,
            },
            client_id: a.client_id.as_ref().map(|c| c.get_ref().trim().to_string()),
            interval: Duration::from_secs(self.within(
                &a.interval_s,
                1..=86_400,
                DEFAULT_AZURE_INTERVAL_S,
                "interval_s",
            )?),
            cloud,
            arm_endpoint: endpoint(&a.arm_endpoint, cloud.arm_endpoint(), "arm_endpoint")?,
            imds_endpoint: endpoint(&a.imds_endpoint, IMDS_ENDPOINT, "imds_endpoint")?,
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
            state_file: a.state_file.as_ref().map(|f| {
                self.path
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join(f.get_ref().trim())
            }),
        })
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

/// IMDS, reachable from every Azure VM (and only there).
const IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// Whether amldns listening on `listen` would receive what it sends to
/// `upstream`: the same address and port, or the same port on the wildcard
/// address of the upstream's family (`0.0.0.0`, `::`) when the upstream is a
/// loopback or wildcard address, which always reach this host. IPv6 sockets
/// are bound IPv6-only (RFC 3493 §5.3), so `::` does not take 127.0.0.1.
/// Another address of this host on a wildcard listener is not caught:
/// telling that needs the host's interfaces, which a config check does not read.
fn is_own(upstream: SocketAddr, listen: SocketAddr) -> bool {
    let (up, own) = (upstream.ip().to_canonical(), listen.ip().to_canonical());
    upstream.port() == listen.port()
        && (up == own
            || (own.is_unspecified()
                && own.is_ipv4() == up.is_ipv4()
                && (up.is_loopback() || up.is_unspecified())))
}

/// SPEC §2's private answer addresses: RFC 1918, shared address space
/// (RFC 6598, 100.64.0.0/10) and unique local IPv6 (RFC 4193, fc00::/7).
fn is_private(addr: IpAddr) -> bool {
    match addr.to_canonical() {
        IpAddr::V4(a) => a.is_private() || (a.octets()[0] == 100 && a.octets()[1] & 0xc0 == 64),
        IpAddr::V6(a) => a.segments()[0] & 0xfe00 == 0xfc00,
    }
}

fn captures_public_message(what: &str, name: &str, why: names::Captured) -> String {
    format!(
        "{what} {name} would capture names that must keep resolving publicly (SPEC §1): {why}; \
         give the workspace's exact names instead"
    )
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

/// This host's name (`[server] identity`'s default), or "amldns" when it
/// has none that reads as printable ASCII.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "amldns".into())
}

/// `[server] threads`' default: the cores this process may run on (its CPU
/// affinity and cgroup quota, as `nproc` counts them), at most
/// [`MAX_THREADS`].
fn cores() -> u64 {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get() as u64)
        .min(MAX_THREADS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use std::path::PathBuf;

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

    /// One local name, for configs about something else: appended, it
    /// moves no line of what comes before it.
    const LOCAL: &str = "\n[[record]]\nname = \"probe.privatelink.blob.core.windows.net\"\n\
                         a = [\"10.9.9.9\"]\n";

    /// The warnings `text` (which must be valid) gets: (line, col, message).
    fn warnings(text: &str) -> Vec<(usize, usize, String)> {
        let c = parse_str(text).unwrap_or_else(|e| panic!("{e} in:\n{text}"));
        c.warnings
            .into_iter()
            .map(|w| (w.at.line, w.at.col, w.message))
            .collect()
    }

    #[test]
    fn a_workspace_object_beside_its_endpoint_gives_every_name() {
        let g = crate::fixtures::GUID;
        let dir = tempfile::tempdir().unwrap();
        // The 4 names a private endpoint lists...
        std::fs::write(
            dir.path().join("pe.json"),
            format!(
                r#"{{"customDnsConfigs": [
                {{"fqdn": "{g}.workspace.eastus.api.azureml.ms", "ipAddresses": ["10.1.0.5"]}},
                {{"fqdn": "{g}.workspace.eastus.cert.api.azureml.ms", "ipAddresses": ["10.1.0.5"]}},
                {{"fqdn": "ml-mlw-eastus-{g}.eastus.notebooks.azure.net", "ipAddresses": ["10.1.0.6"]}},
                {{"fqdn": "*.{g}.inference.eastus.api.azureml.ms", "ipAddresses": ["10.1.0.7"]}}]}}"#
            ),
        )
        .unwrap();
        let path = dir.path().join("amldns.toml");
        let config = "[[import]]\npath = \"*.json\"\n";
        let names = |c: &Config| {
            let t = c.table(1).unwrap();
            t.nodes().map(|n| n.name.to_string()).collect::<Vec<_>>()
        };
        let alone = names(&parse(&path, config).unwrap());
        assert_eq!(alone.len(), 4, "{alone:?}");
        // ...and, with `az ml workspace show` beside them, the workspace's whole set.
        std::fs::write(
            dir.path().join("ws.json"),
            format!(
                r#"{{"name": "mlw", "location": "eastus", "properties": {{"workspaceId": "{g}"}}}}"#
            ),
        )
        .unwrap();
        let c = parse(&path, config).unwrap();
        assert_eq!(c.workspaces.len(), 1);
        assert_eq!(
            c.workspaces[0].value.notebook_ip,
            "10.1.0.6".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            c.workspaces[0].value.inference_ip,
            "10.1.0.7".parse::<IpAddr>().unwrap()
        );
        let all = names(&c);
        for want in [
            format!("{g}.workspace.eastus.privatelink.api.azureml.ms"),
            format!("{g}.workspace.eastus.cert.privatelink.api.azureml.ms"),
            format!("ml-mlw-eastus-{g}.notebooks.azure.net"),
            format!("ml-mlw-eastus-{g}.eastus.privatelink.notebooks.azure.net"),
        ] {
            assert!(all.contains(&want), "{want} in {all:?}");
        }
        // Without its endpoint's names: a warning, not an error.
        std::fs::remove_file(dir.path().join("pe.json")).unwrap();
        let c = parse(&path, &format!("{config}{LOCAL}")).unwrap();
        assert!(c.workspaces.is_empty());
        assert!(
            c.warnings
                .iter()
                .any(|w| w.message.contains("no imported name gives its API address")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn azure_section_defaults_and_overrides() {
        const SUB: &str = "0B1F6471-1BF0-4DDA-AEC3-111122223333";
        // [azure] alone gives something local: its discovery (SPEC §2).
        let c = parse_str(&format!("[azure]\nsubscriptions = [\"{SUB}\"]\n")).unwrap();
        let a = c.azure.unwrap();
        assert_eq!(a.subscriptions, [SUB.to_ascii_lowercase()]);
        assert_eq!(a.auth, AzureAuth::ManagedIdentity);
        assert_eq!(a.arm_endpoint, "https://management.azure.com");
        assert_eq!(a.imds_endpoint, "http://169.254.169.254");
        assert_eq!(a.interval, Duration::from_secs(300));
        assert_eq!(a.state_file, None);

        let c = parse_str(&format!(
            "[azure]\nsubscriptions = [\"{SUB}\"]\nresource_groups = [\"RG-ML\"]\n\
             auth = \"workload-identity\"\ncloud = \"china\"\ninterval_s = 5\n\
             imds_endpoint = \"http://127.0.0.1:8080/\"\nstate_file = \"state/azure.json\"\n"
        ))
        .unwrap();
        let a = c.azure.unwrap();
        assert_eq!(a.resource_groups, ["rg-ml"]);
        assert_eq!(a.auth, AzureAuth::WorkloadIdentity);
        assert_eq!(a.arm_endpoint, "https://management.chinacloudapi.cn");
        assert_eq!(a.imds_endpoint, "http://127.0.0.1:8080");
        assert_eq!(a.interval, Duration::from_secs(5));
        assert_eq!(a.state_file, Some(PathBuf::from("state/azure.json")));
    }

    #[test]
    fn azure_section_errors_are_located() {
        const SUB: &str = "0b1f6471-1bf0-4dda-aec3-111122223333";
        fails_at(
            "[azure]\nsubscriptions = []\n",
            2,
            17,
            "subscriptions is empty",
        );
        fails_at(
            "[azure]\nsubscriptions = [\"prod\"]\n",
            2,
            18,
            "not a subscription id",
        );
        let head = format!("[azure]\nsubscriptions = [\"{SUB}\"]\n");
        fails_at(
            &format!("{head}interval_s = 0\n"),
            3,
            14,
            "interval_s 0 is out of range",
        );
        fails_at(
            &format!("{head}arm_endpoint = \"management.azure.com\"\n"),
            3,
            16,
            "not an http(s) URL",
        );
        fails_at(
            &format!("{head}auth = \"managed-identiy\"\n"),
            3,
            8,
            "did you mean `managed-identity`?",
        );
        fails_at(
            &format!("{head}intervall_s = 5\n"),
            3,
            1,
            "did you mean `interval_s`?",
        );
    }

    #[test]
    fn defaults() {
        let c = parse_str(LOCAL).unwrap();
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
        assert_eq!(w.id, crate::fixtures::GUID);
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
                "unknown key `bogus`: expected one of `listen`",
            ),
            (
                "[zone]\nttl = 5\nanswr = \"a\"".into(),
                3,
                1,
                "unknown key `answr`: did you mean `answer`?",
            ),
            (
                format!("{WS}colour = \"blue\""),
                7,
                1,
                "unknown key `colour`",
            ),
            (
                "[frobnicate]\nx = 1".into(),
                1,
                2,
                "unknown key `frobnicate`",
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
            (
                "[zone]\nanswer = \"aaaa\"".into(),
                2,
                10,
                "unknown value `aaaa`: expected one of `a`, `cname`",
            ),
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
            (
                format!("{WS}cloud = \"mars\""),
                7,
                9,
                "unknown value `mars`",
            ),
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
        let g = crate::fixtures::GUID;
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
    fn identity_is_one_printable_txt_string() {
        let c = parse_str(&format!("[server]\nidentity = \"dns-vm-1\"\n{LOCAL}")).unwrap();
        assert_eq!(c.server.identity, "dns-vm-1");
        // The default is the host's name, never empty.
        assert!(!parse_str(LOCAL).unwrap().server.identity.is_empty());
        let long = "x".repeat(256);
        for bad in ["", "tab\there", "é", long.as_str()] {
            fails_at(
                &format!("[server]\nidentity = {bad:?}\n{LOCAL}"),
                2,
                12,
                "identity must be 1 to 255 printable ASCII",
            );
        }
    }

    /// Threads default to the cores this process may use; 0 or a
    /// thousands-of-cores typo is an error where it was written.
    #[test]
    fn threads_default_to_the_cores_and_are_bounded() {
        let c = parse_str(&format!("[server]\nthreads = 3\n{LOCAL}")).unwrap();
        assert_eq!(c.server.threads, 3);
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(parse_str(LOCAL).unwrap().server.threads, cores);
        for bad in ["0", "1025"] {
            fails_at(
                &format!("[server]\nthreads = {bad}\n{LOCAL}"),
                2,
                11,
                &format!("threads {bad} is out of range: expected 1..=1024"),
            );
        }
    }

    #[test]
    fn empty_allow_is_a_warning() {
        let c = parse_str(&format!("[server]\nallow = []{LOCAL}")).unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0]
                .message
                .contains("every client will be REFUSED")
        );
    }

    #[test]
    fn open_allow_is_a_warning() {
        let c = parse_str(&format!("[server]\nallow = [\"0.0.0.0/0\"]{LOCAL}")).unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert_eq!((c.warnings[0].at.line, c.warnings[0].at.col), (2, 10));
        assert!(c.warnings[0].message.contains("open resolver"));
    }

    #[test]
    fn a_config_that_gives_nothing_local_is_refused() {
        let nothing = "the config gives nothing to answer locally";
        // An empty file, a truncated one, one with only settings.
        for text in [
            "",
            "\n\n",
            "# amldns\n",
            "[server]\nlisten = [\"127.0.0.1:5353\"]\n[upstream]\nservers = [\"127.0.0.1:5300\"]\n",
        ] {
            fails_at(text, 1, 1, nothing);
        }
        fails_at(
            "",
            1,
            1,
            "no [[workspace]], [[record]] or [[import]] match; a truncated or emptied file would \
             empty the table",
        );
        // Imports that give no name are blamed at the first import's path.
        fails_at(
            "[[import]]\npath = \"pe/*.json\"\n",
            2,
            8,
            "nothing to answer locally: no [[workspace]], [[record]] or [[import]] match; the \
             [[import]]s match no file that lists a name",
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pe.json"), r#"{"customDnsConfigs": []}"#).unwrap();
        let path = dir.path().join("amldns.toml");
        match parse(&path, "[[import]]\npath = \"pe.json\"\n") {
            Err(ConfigError::Invalid { at, message }) => {
                assert_eq!((at.line, at.col), (2, 8));
                assert_eq!(at.file, path);
                assert!(message.contains(nothing), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // One source of any kind is enough.
        for text in [WS, LOCAL] {
            parse_str(text).unwrap();
        }
        std::fs::write(
            dir.path().join("pe.json"),
            r#"[{"fqdn": "st.privatelink.blob.core.windows.net", "ipAddresses": ["10.1.0.9"]}]"#,
        )
        .unwrap();
        parse(&path, "[[import]]\npath = \"pe.json\"\n").unwrap();
    }

    #[test]
    fn public_names_cannot_be_captured() {
        let record = |name: &str| format!("[[record]]\nname = \"{name}\"\na = [\"10.1.0.9\"]\n");
        let cases = [
            (
                "eastus.api.azureml.ms",
                "names at that level of api.azureml.ms are shared",
            ),
            ("*.api.azureml.ms", "it is the Azure ML zone api.azureml.ms"),
            (
                "ML.Azure.com.",
                "it is the Azure ML zone inference.ml.azure.com, or above it",
            ),
            (
                "*.tundra.eastus.api.azureml.ms",
                "shared by every workspace of a region",
            ),
            (
                "*.eastus.notebooks.azure.net",
                "names at that level of notebooks.azure.net",
            ),
        ];
        for (name, why) in cases {
            fails_at(
                &record(name),
                2,
                8,
                "would capture names that must keep resolving publicly",
            );
            fails_at(&record(name), 2, 8, why);
        }
        // What a user may ask for: exact names and the opt-in regional wildcards.
        for name in [
            "*.eastus.instances.azureml.ms",
            "*.eastus.inference.ml.azure.com",
            "fb7e20a0-8891-458b-b969-55ddb3382f51.workspace.eastus.api.azureml.ms",
        ] {
            parse_str(&record(name)).unwrap();
        }
        // An imported wildcard too; Azure's exact names are taken as given.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("amldns.toml");
        let import = format!("[[import]]\npath = \"pe.json\"\n{LOCAL}");
        std::fs::write(
            dir.path().join("pe.json"),
            "[{\"fqdn\": \"st.privatelink.blob.core.windows.net\", \"ipAddresses\": [\"10.1.0.9\"]},\n\
             {\"fqdn\": \"*.api.azureml.ms\", \"ipAddresses\": [\"10.1.0.9\"]}]",
        )
        .unwrap();
        match parse(&path, &import) {
            Err(ConfigError::Invalid { at, message }) => {
                assert_eq!(
                    (at.file, at.line, at.col),
                    (dir.path().join("pe.json"), 2, 10)
                );
                assert!(
                    message.starts_with("imported wildcard *.api.azureml.ms would capture"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(
            dir.path().join("pe.json"),
            r#"[{"fqdn": "*.eastus.inference.ml.azure.com", "ipAddresses": ["10.1.0.7"]}]"#,
        )
        .unwrap();
        parse(&path, &import).unwrap();
    }

    #[test]
    fn an_upstream_cannot_be_amldns_itself() {
        let cases = [
            // The default listen address, 0.0.0.0:53, takes loopback.
            ("", "\"127.0.0.1\"", Some("it listens on 0.0.0.0:53")),
            ("", "\"127.0.0.53:53\"", Some("it listens on 0.0.0.0:53")),
            ("", "\"0.0.0.0\"", Some("it listens on 0.0.0.0:53")),
            ("", "\"127.0.0.1:5353\"", None),
            ("", "\"10.0.0.4\"", None),
            ("\"[::]:53\"", "\"[::1]:53\"", Some("it listens on [::]:53")),
            ("\"[::]:53\"", "\"[::]:53\"", Some("it listens on [::]:53")),
            // IPv6 sockets are IPv6-only: `::` does not take IPv4 loopback.
            ("\"[::]:53\"", "\"127.0.0.1\"", None),
            ("\"0.0.0.0:53\"", "\"[::1]:53\"", None),
            ("\"[::1]:53\"", "\"[::ffff:127.0.0.1]:53\"", None),
            (
                "\"127.0.0.1:53\"",
                "\"[::ffff:127.0.0.1]:53\"",
                Some("it listens on 127.0.0.1:53"),
            ),
            (
                "\"127.0.0.1:5353\"",
                "\"127.0.0.1:5353\"",
                Some("it listens on 127.0.0.1:5353"),
            ),
            ("\"127.0.0.1:5353\"", "\"127.0.0.2:5353\"", None),
            (
                "\"10.0.0.4:53\"",
                "\"10.0.0.4\"",
                Some("it listens on 10.0.0.4:53"),
            ),
            ("\"10.0.0.4:53\"", "\"127.0.0.1\"", None),
            // Port 0 is "any free port": never the upstream's.
            ("\"127.0.0.1:0\"", "\"127.0.0.1:5300\"", None),
        ];
        for (listen, upstream, want) in cases {
            let server = if listen.is_empty() {
                String::new()
            } else {
                format!("[server]\nlisten = [{listen}]\n")
            };
            let text = format!("[upstream]\nservers = [\"10.0.0.9\", {upstream}]\n{server}{LOCAL}");
            match want {
                Some(own) => {
                    fails_at(&text, 2, 24, "is amldns itself");
                    fails_at(&text, 2, 24, own);
                }
                None => {
                    parse_str(&text).unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
    }

    #[test]
    fn mistakes_that_are_warnings() {
        let ws = |extra: &str| format!("{WS}{extra}\n");
        let record = |values: &str| format!("[[record]]\nname = \"a.corp.example\"\n{values}\n");
        let not_private = "is not private (RFC 1918, 100.64.0.0/10 or fc00::/7)";
        // (config, its warnings: line, column, words of the message)
        type Expected<'a> = Vec<(usize, usize, &'a str)>;
        let cases: Vec<(String, Expected<'_>)> = vec![
            // Quiet: private addresses, names Azure takes, known regions.
            (ws(""), vec![]),
            (WS.replace("mlw-contoso-prod", "mlw_contoso_prod"), vec![]),
            (
                ws("notebook_ip = \"100.64.1.6\"\ninference_ip = \"fd00::7\""),
                vec![],
            ),
            (record("a = [\"192.168.1.1\", \"172.31.0.1\"]"), vec![]),
            (
                WS.replace("eastus", "chinanorth3") + "cloud = \"china\"\n",
                vec![],
            ),
            // Answer addresses that are not private, each once.
            (
                WS.replace("10.1.0.5", "20.1.0.5"),
                vec![(6, 6, "answer address 20.1.0.5 is not private")],
            ),
            (
                ws("notebook_ip = \"100.128.0.1\""),
                vec![(7, 15, "answer address 100.128.0.1 ")],
            ),
            (
                record("a = [\"127.0.0.1\", \"127.0.0.1\"]\naaaa = [\"2001:db8::1\"]"),
                vec![(3, 6, "127.0.0.1 "), (4, 9, "2001:db8::1 ")],
            ),
            (record("a = [\"8.8.8.8\"]"), vec![(3, 6, not_private)]),
            // Workspace and project names Azure would not take.
            (
                WS.replace("mlw-contoso-prod", "ab"),
                vec![(
                    3,
                    8,
                    "workspace name \"ab\" has 2 characters; Azure accepts 3 to 33",
                )],
            ),
            (
                WS.replace("mlw-contoso-prod", &"m".repeat(56)),
                vec![(
                    3,
                    8,
                    "has 56 characters; Azure accepts 3 to 33: Azure would not accept it",
                )],
            ),
            (
                WS.replace("mlw-contoso-prod", "_mlw"),
                vec![(3, 8, "starts with neither a letter nor a digit")],
            ),
            (
                ws("projects = [{ name = \"p\", id = \"0d5c2f4e-1111-2222-3333-444455556666\" }]"),
                vec![(7, 22, "project name \"p\" has 1 characters")],
            ),
            // Regions of no cloud, or of another one.
            (
                WS.replace("\"eastus\"", "\"eastuss\""),
                vec![(
                    5,
                    10,
                    "region \"eastuss\" is not an Azure region of the public cloud: did you mean \"eastus\"?",
                )],
            ),
            (
                ws("cloud = \"china\""),
                vec![(
                    5,
                    10,
                    "region \"eastus\" is not an Azure region of the china cloud: it is a region of the public cloud: set cloud = \"public\"",
                )],
            ),
            // Said once, where first met, however many workspaces repeat it.
            (
                WS.replace("\"eastus\"", "\"eastuss\"")
                    + &WS
                        .replace("\"eastus\"", "\"eastuss\"")
                        .replace("fb7e20a0", "0d5c2f4e"),
                vec![(5, 10, "region \"eastuss\"")],
            ),
            (
                WS.replace("\"eastus\"", "\"marsnorth\""),
                vec![(
                    5,
                    10,
                    "check the spelling; if Azure has opened it since, ignore this",
                )],
            ),
        ];
        for (text, want) in cases {
            let got = warnings(&text);
            assert_eq!(got.len(), want.len(), "{got:?} in:\n{text}");
            for ((line, col, message), (wl, wc, needle)) in got.iter().zip(&want) {
                assert_eq!((*line, *col), (*wl, *wc), "{message} in:\n{text}");
                assert!(message.contains(needle), "{message:?} lacks {needle:?}");
            }
        }
    }

    #[test]
    fn shape_mistakes_say_what_to_write() {
        fails_at(
            &format!("[server]\nlisten = \"0.0.0.0:53\"{LOCAL}"),
            2,
            10,
            "write listen = [\"0.0.0.0:53\"] (a list)",
        );
        fails_at(
            &format!("[metrics]\nlisten = [\"127.0.0.1:9153\"]{LOCAL}"),
            2,
            10,
            "listen takes one value, not a list",
        );
        fails_at(
            &format!("{WS}notebok_ip = \"10.1.0.6\""),
            7,
            1,
            "unknown key `notebok_ip`: did you mean `notebook_ip`?",
        );
        fails_at(
            &format!("[workspace]\nname = \"mlw\"{LOCAL}"),
            1,
            1,
            "[workspace] is a list of tables: write [[workspace]], once for each",
        );
        fails_at(
            &format!("{WS}cloud = \"pubilc\""),
            7,
            9,
            "unknown value `pubilc`: did you mean `public`?",
        );
    }
}
