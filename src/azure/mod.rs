//! Discovery from Azure (docs/azure.md): with an `[azure]` section amldns asks
//! Azure Resource Manager which workspaces exist, behind which private
//! endpoints, with which compute instances and online endpoints, and serves
//! their names next to the file's.
//!
//! - `round`: one round of ARM reads → a [`Discovery`], what it left out
//!   and the subscriptions it could not read;
//! - `graph`: where a round reads from: Resource Graph's rows, or ARM;
//! - `discovery`: what a round found ([`Discovery`]), as the `state_file`
//!   keeps it, and what it left out ([`Skipped`]);
//! - `arm`: paced reads of Azure Resource Manager;
//! - `http`: the HTTP clients, which failures are tried again, and how a
//!   request fails;
//! - `proxy`: `HTTPS_PROXY`/`NO_PROXY` and the CONNECT tunnel;
//! - `trust`: the CA certificates ARM's and Entra ID's are checked against;
//! - `token`: the ARM token (managed identity, workload identity, `az`);
//! - here: the discovery as served ([`Discovered`]), how it merges with the
//!   file's names ([`merge`]), what the rounds and the reloads share
//!   ([`State`]), the rules that keep a bad round from emptying it
//!   ([`run`]: a subscription that cannot be read keeps what it had; a
//!   round removing more than half of the names holds its removals), and
//!   the `state_file` that survives restarts.

mod arm;
pub mod discovery;
mod graph;
mod http;
mod proxy;
mod round;
mod token;
mod trust;

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::config::{AzureConfig, Config, Located, Warning};
use crate::diagnostics::Location;
use crate::health::{self, Health};
use crate::import::ImportedName;
use crate::metrics::{self, AzureMetrics, AzureResult, Metrics};
use crate::names::{self, Workspace};
use crate::zone::Source;
pub use discovery::{Discovery, DiscoveryFile, Found, FoundName, FoundProject, Skipped};
pub use http::Failure;
use round::Round;

/// A workspace as served: where it came from, what derives its names, and
/// the other names it gives.
#[derive(Debug)]
struct Entry {
    at: Location,
    workspace: Workspace,
    /// The private endpoint its addresses were read from, when known.
    endpoint: Option<String>,
    /// The other names, each with the endpoint that lists it when known.
    names: Vec<(ImportedName, Option<String>)>,
}

/// A name an endpoint lists, as served with the endpoint it came from; none
/// for one that cannot be: outside the private-link catalogue (said in
/// `problems`), a wildcard capturing public names as in an import, or a
/// regional wildcard, which only marked an address.
fn listed(n: &FoundName, problems: &mut Vec<Skipped>) -> Option<(ImportedName, Option<String>)> {
    let name = names::domain_name(&n.name).ok()?;
    // Only what Azure's private-link catalogue says an endpoint may take
    // over: anything else is not an Azure name amldns should answer for.
    if names::zone_of(&name).is_none() {
        problems.push(Skipped::new(
            &n.resource_id,
            format!(
                "its private endpoint lists {name}, which lies in no zone of the private-link \
                 catalogue (amldns zones): not served"
            ),
        ));
        return None;
    }
    if name.starts_with("*.")
        && (names::captures_public(&name).is_some() || names::is_regional_wildcard(&name))
    {
        return None;
    }
    let name = ImportedName {
        name,
        addrs: n.addrs.clone(),
        at: Location::azure(&n.resource_id),
    };
    Some((name, n.endpoint.clone()))
}

/// What [`Discovered::brake`] held back of a round.
struct Held {
    /// The names the round would have removed: the next round removing the
    /// same ones removes them.
    removed: BTreeSet<String>,
    /// Why, for the log and `/healthz`.
    why: String,
}

/// The discovery being served: what a round found, checked.
#[derive(Debug, Default)]
pub struct Discovered {
    found: Discovery,
    /// Equal digests, equal findings: a round that finds the same swaps nothing.
    digest: u64,
    entries: Vec<Entry>,
    /// The names other private endpoints list (`private_endpoints =
    /// "all"`), each with its endpoint.
    others: Vec<(ImportedName, Option<String>)>,
}

impl Discovered {
    /// Checks `found`; an entry that cannot be served (a name Azure allows
    /// and DNS does not) is left out, and said in the second value.
    pub fn new(mut found: Discovery) -> (Self, Vec<Skipped>) {
        let mut problems = Vec::new();
        let mut entries = Vec::new();
        found.workspaces.retain(|f| {
            let at = Location::azure(&f.resource_id);
            let names = (f.names.iter())
                .filter_map(|n| listed(n, &mut problems))
                .collect();
            match f.workspace() {
                Ok(workspace) => {
                    entries.push(Entry {
                        at,
                        workspace,
                        endpoint: f.endpoint.clone(),
                        names,
                    });
                    true
                }
                Err(why) => {
                    problems.push(Skipped::new(&f.resource_id, why));
                    false
                }
            }
        });
        let others = (found.endpoints.iter())
            .filter_map(|n| listed(n, &mut problems))
            .collect();
        let mut h = DefaultHasher::new();
        serde_json::to_string(&found)
            .unwrap_or_default()
            .hash(&mut h);
        let d = Discovered {
            digest: h.finish(),
            found,
            entries,
            others,
        };
        (d, problems)
    }

    /// What `state_file` holds, if anything; a file that cannot be read is
    /// logged and ignored (the first round replaces it).
    pub fn at_start(azure: Option<&AzureConfig>) -> Self {
        let Some(path) = azure.and_then(|a| a.state_file.as_deref()) else {
            return Discovered::default();
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Discovered::default();
            }
            Err(e) => {
                warn!(state_file = %path.display(), "cannot read the last discovery: {e}");
                return Discovered::default();
            }
        };
        match DiscoveryFile::read(&text) {
            Ok(found) => {
                let (d, problems) = Discovered::new(found);
                for p in problems {
                    warn!("azure {}: not served: {}", p.resource, p.reason);
                }
                info!(
                    state_file = %path.display(),
                    workspaces = d.len(),
                    "serving the last Azure discovery until a round succeeds"
                );
                d
            }
            Err(e) => {
                warn!(state_file = %path.display(), "the last discovery is not readable, ignored: {e}");
                Discovered::default()
            }
        }
    }

    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Workspaces served, each once however many private endpoints (in
    /// several VNets) it was found behind.
    pub fn len(&self) -> usize {
        (self.entries.iter())
            .map(|e| e.workspace.id.as_str())
            .collect::<HashSet<_>>()
            .len()
    }

    /// Nothing served: no workspace and no other endpoint's name.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.others.is_empty()
    }

    /// The brake on a round (`self`, the discovery it found): an empty
    /// list or a role removed would otherwise empty the table at once. When
    /// it would remove more than half of `current`'s names, and not the
    /// same names the round before already would (`held_before`), `self`
    /// keeps them: what it adds and changes is served, its removals wait
    /// for the next round to agree. The removals held, and why.
    fn brake(
        &mut self,
        current: &Discovered,
        held_before: Option<&BTreeSet<String>>,
    ) -> Option<Held> {
        let names = current.names();
        let removed: BTreeSet<String> = names.difference(&self.names()).cloned().collect();
        if removed.len() * 2 <= names.len() || held_before == Some(&removed) {
            return None;
        }
        let why = format!(
            "a round would remove {} of the {} discovered names ({}): the removals wait \
             until the next round agrees; what it adds and changes is served",
            removed.len(),
            names.len(),
            first_few(&removed)
        );
        let mut kept = self.found.clone();
        kept.restore(&current.found);
        *self = Discovered::new(kept).0;
        Some(Held { removed, why })
    }

    /// Every name the discovery serves, as it would serve them (what a
    /// round removes is counted in these).
    fn names(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for e in &self.entries {
            out.extend(
                names::derive(&e.workspace, names::AnswerMode::A)
                    .into_iter()
                    .map(|d| d.name),
            );
            out.extend(e.names.iter().map(|(n, _)| n.name.clone()));
        }
        out.extend(self.others.iter().map(|(n, _)| n.name.clone()));
        out
    }

    /// "added 1 (mlw-b), removed 0, changed 1 (mlw-a)": for the reload log.
    fn changes(&self, next: &Discovered) -> String {
        let by_id = |d: &Discovered| -> HashMap<String, Found> {
            d.found
                .workspaces
                .iter()
                .map(|f| (f.resource_id.to_ascii_lowercase(), f.clone()))
                .collect()
        };
        let (old, new) = (by_id(self), by_id(next));
        let mut added: Vec<&str> = Vec::new();
        let mut changed: Vec<&str> = Vec::new();
        for (id, f) in &new {
            match old.get(id) {
                None => added.push(&f.name),
                Some(o) if o != f => changed.push(&f.name),
                Some(_) => {}
            }
        }
        let mut removed: Vec<&str> = old
            .iter()
            .filter(|(id, _)| !new.contains_key(*id))
            .map(|(_, f)| f.name.as_str())
            .collect();
        let list = |v: &mut Vec<&str>| {
            v.sort_unstable();
            let first: Vec<&str> = v.iter().take(5).copied().collect();
            let more = if v.len() > 5 { ", …" } else { "" };
            if v.is_empty() {
                format!("{}", v.len())
            } else {
                format!("{} ({}{more})", v.len(), first.join(", "))
            }
        };
        format!(
            "added {}, removed {}, changed {}",
            list(&mut added),
            list(&mut removed),
            list(&mut changed)
        )
    }

    /// Writes the discovery to `path` atomically: a crash mid-write leaves
    /// the last file whole (write aside, flush, rename over), and a write
    /// that fails (disk full) leaves nothing beside it.
    fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let text = DiscoveryFile::write(&self.found).map_err(std::io::Error::other)?;
        let aside = path.with_extension("json.tmp");
        let written = (|| {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&aside)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&aside, path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&aside);
        }
        written
    }

    /// The discovery as `[[workspace]]` (and `[[record]]`) entries a person
    /// can paste into the config: `amldns discover`.
    ///
    /// What is served only: a name two endpoints answer differently is
    /// left out, said in a comment; a workspace found behind several
    /// endpoints with the same addresses is printed once.
    pub fn to_toml(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let offers: Vec<Offer<'_>> = (self.entries.iter())
            .flat_map(|e| {
                let names =
                    (e.names.iter()).map(move |(n, ep)| Offer::Name(Some(e), n, ep.as_deref()));
                std::iter::once(Offer::Workspace(e)).chain(names)
            })
            .chain((self.others.iter()).map(|(n, ep)| Offer::Name(None, n, ep.as_deref())))
            .collect();
        let (kept, warnings) = settle(&offers, &HashMap::new(), names::AnswerMode::A);
        let mut out = String::new();
        let mut printed: BTreeSet<String> = BTreeSet::new();
        for offer in (offers.iter().zip(kept)).filter_map(|(o, kept)| kept.then_some(*o)) {
            let n = match offer {
                Offer::Name(_, n, _) => n,
                Offer::Workspace(e) => {
                    if printed.insert(format!("workspace {}", e.workspace.id)) {
                        Self::workspace_toml(&mut out, e);
                    }
                    continue;
                }
            };
            if !printed.insert(format!("record {}", n.name)) {
                continue;
            }
            let (v4, v6): (Vec<&IpAddr>, Vec<&IpAddr>) = n.addrs.iter().partition(|a| a.is_ipv4());
            let _ = writeln!(out, "# {}", n.at);
            let _ = writeln!(out, "[[record]]");
            let _ = writeln!(out, "name = {}", q(&n.name));
            for (key, addrs) in [("a", v4), ("aaaa", v6)] {
                if !addrs.is_empty() {
                    let shown: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
                    let _ = writeln!(out, "{key} = [{}]", shown.join(", "));
                }
            }
            out.push('\n');
        }
        for w in warnings {
            let _ = writeln!(out, "# {}", w.message);
        }
        out
    }

    /// One discovered workspace as a `[[workspace]]` table.
    fn workspace_toml(out: &mut String, e: &Entry) {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let list = |v: &[String]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
        let w = &e.workspace;
        let _ = writeln!(out, "# {}", e.at);
        let _ = writeln!(out, "[[workspace]]");
        let _ = writeln!(out, "name = {}", q(&w.name));
        let _ = writeln!(out, "id = {}", q(&w.id));
        let _ = writeln!(out, "region = {}", q(&w.region));
        let _ = writeln!(out, "cloud = {}", q(w.cloud.as_str()));
        let _ = writeln!(out, "ip = \"{}\"", w.ip);
        let _ = writeln!(out, "notebook_ip = \"{}\"", w.notebook_ip);
        let _ = writeln!(out, "inference_ip = \"{}\"", w.inference_ip);
        if let Some(f) = &w.notebook_fqdn {
            let _ = writeln!(out, "notebook_fqdn = {}", q(f));
        }
        let _ = writeln!(out, "instances = [{}]", list(&w.instances));
        let _ = writeln!(out, "online_endpoints = [{}]", list(&w.online_endpoints));
        if !w.projects.is_empty() {
            let projects: Vec<String> = w
                .projects
                .iter()
                .map(|p| match &p.notebook_fqdn {
                    Some(f) => format!(
                        "{{ name = {}, id = {}, notebook_fqdn = {} }}",
                        q(&p.name),
                        q(&p.id),
                        q(f)
                    ),
                    None => format!("{{ name = {}, id = {} }}", q(&p.name), q(&p.id)),
                })
                .collect();
            let _ = writeln!(out, "projects = [{}]", projects.join(", "));
        }
        out.push('\n');
    }
}

/// The discovery files `config` imports, checked as a round's findings
/// are; what cannot be served is said as a warning at the file.
pub fn imported(config: &Config) -> (Vec<Discovered>, Vec<Warning>) {
    let mut warnings = Vec::new();
    let files = (config.discoveries.iter())
        .map(|d| {
            let (found, problems) = Discovered::new(d.value.clone());
            warnings.extend(problems.into_iter().map(|p| Warning {
                at: d.at.clone(),
                message: p.to_string(),
            }));
            found
        })
        .collect();
    (files, warnings)
}

/// One name's answer, to compare what several sources give it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Addrs(Vec<IpAddr>),
    Alias(String),
}

impl Answer {
    fn addrs(addrs: &[IpAddr]) -> Self {
        let mut v = addrs.to_vec();
        v.sort_unstable();
        v.dedup();
        Answer::Addrs(v)
    }

    fn of(target: names::Target) -> Self {
        match target {
            names::Target::Addr(ip) => Answer::Addrs(vec![ip]),
            names::Target::Alias(t) => Answer::Alias(t),
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Addrs(a) => {
                let shown: Vec<String> = a.iter().map(ToString::to_string).collect();
                f.write_str(&shown.join(", "))
            }
            Answer::Alias(t) => write!(f, "CNAME {t}"),
        }
    }
}

/// What one discovered entry offers the table: a workspace (every name it
/// derives), or one name an endpoint lists, with the workspace it was found
/// with (none for another endpoint's) and the endpoint when known.
#[derive(Clone, Copy)]
enum Offer<'a> {
    Workspace(&'a Entry),
    Name(Option<&'a Entry>, &'a ImportedName, Option<&'a str>),
}

impl<'a> Offer<'a> {
    /// Who gives it, for a warning: the private endpoint when known.
    fn who(self) -> String {
        match self {
            Offer::Workspace(e) => e.endpoint.clone().unwrap_or_else(|| e.at.to_string()),
            Offer::Name(e, n, endpoint) => (endpoint.or(e.and_then(|e| e.endpoint.as_deref())))
                .map_or_else(|| n.at.to_string(), str::to_string),
        }
    }

    fn at(self) -> &'a Location {
        match self {
            Offer::Workspace(e) | Offer::Name(Some(e), ..) => &e.at,
            Offer::Name(None, n, _) => &n.at,
        }
    }

    fn source(self) -> Source<'a> {
        match self {
            Offer::Workspace(e) => Source::Workspace {
                workspace: &e.workspace,
                at: &e.at,
            },
            Offer::Name(_, n, _) => Source::Azure {
                name: &n.name,
                addrs: &n.addrs,
                at: &n.at,
            },
        }
    }
}

/// The sources discovery adds to `config`'s: the live one (`found`, only
/// with `[azure]`) and the discovery `files` the config imports, merged per
/// name below the config's own names.
///
/// - A `[[workspace]]` of the file with the id of a discovered one wins;
///   its discovered storage, key vault and registry still come along.
/// - A name the file gives (a `[[workspace]]`'s, a `[[record]]`, an
///   import) is served from the file; a discovered entry that gives it
///   another answer is left out, with a warning.
/// - A name discovery gives two different answers (one resource behind
///   endpoints in two VNets, two resources claiming one name) is served
///   from none of them, with a warning naming both endpoints; everything
///   else is served. A workspace is left out whole, since all its names
///   hang on its addresses.
pub fn merge<'a>(
    config: &'a Config,
    found: &'a Discovered,
    files: &'a [Discovered],
) -> (Vec<Source<'a>>, Vec<Warning>) {
    let live = config.azure.is_some().then_some(found);
    let entries: Vec<&Entry> = (live.into_iter().chain(files))
        .flat_map(|d| &d.entries)
        .collect();
    if entries.is_empty() && (live.into_iter().chain(files)).all(|d| d.others.is_empty()) {
        return (Vec::new(), Vec::new());
    }
    let mode = config.zone.answer;
    let mut in_file: HashMap<&str, &Located<Workspace>> = HashMap::new();
    for w in &config.workspaces {
        in_file.insert(&w.value.id, w);
        for p in &w.value.projects {
            in_file.insert(&p.id, w);
        }
    }
    let mut warnings = Vec::new();
    let mut offers: Vec<Offer<'a>> = Vec::new();
    for e in entries {
        // A workspace the file has is the file's; the rest is offered.
        let ids =
            std::iter::once(&e.workspace.id).chain(e.workspace.projects.iter().map(|p| &p.id));
        let shadowed = ids.filter_map(|id| in_file.get(id.as_str())).next();
        match shadowed {
            None => offers.push(Offer::Workspace(e)),
            Some(file) => warnings.push(Warning {
                at: file.at.clone(),
                message: format!(
                    "workspace {} is also discovered in Azure ({}): the file's [[workspace]] is \
                     served{}",
                    file.value.name,
                    e.at,
                    differences(&file.value, &e.workspace)
                ),
            }),
        }
        // Its storage, key vault and registry come along either way; what
        // its own endpoint lists goes with the workspace served.
        offers.extend(
            (e.names.iter())
                .filter(|(n, _)| shadowed.is_none() || n.at != e.at)
                .map(|(n, endpoint)| Offer::Name(Some(e), n, endpoint.as_deref())),
        );
    }
    let others = (live.into_iter().chain(files)).flat_map(|d| &d.others);
    offers.extend(others.map(|(n, endpoint)| Offer::Name(None, n, endpoint.as_deref())));

    // What the file answers, by name: the first definition (two different
    // ones are the table's error to report).
    let mut given: HashMap<String, (Answer, &Location)> = HashMap::new();
    for source in config.sources() {
        let mut give = |name: String, answer: Answer, at: &'a Location| {
            given.entry(name).or_insert((answer, at));
        };
        match source {
            Source::Workspace { workspace, at } => {
                for d in names::derive(workspace, mode) {
                    give(d.name, Answer::of(d.target), at);
                }
            }
            Source::Record { name, data, at, .. } => {
                let answer = match data {
                    crate::zone::Given::Addrs(a) => Answer::addrs(a),
                    crate::zone::Given::Alias(t) => Answer::Alias(t.to_string()),
                };
                give(name.to_string(), answer, at);
            }
            Source::Import { name, addrs, at } | Source::Azure { name, addrs, at } => {
                give(name.to_string(), Answer::addrs(addrs), at);
            }
        }
    }

    let (kept, settled) = settle(&offers, &given, mode);
    warnings.extend(settled);
    let discovered = (offers.iter().zip(kept))
        .filter(|(_, kept)| *kept)
        .map(|(o, _)| o.source())
        .collect();
    (discovered, warnings)
}

/// Which of `offers` are served: not one giving a name another gives
/// differently, nor one giving a name the file (`given`) answers otherwise
/// (names derived as `mode` says), nor a name a left-out workspace's own
/// endpoint lists. The warnings say why, one per pair of givers.
fn settle(
    offers: &[Offer<'_>],
    given: &HashMap<String, (Answer, &Location)>,
    mode: names::AnswerMode,
) -> (Vec<bool>, Vec<Warning>) {
    // Every name each offer gives, then who gives each name.
    let offered: Vec<Vec<(String, Answer)>> = (offers.iter())
        .map(|o| match o {
            Offer::Workspace(e) => names::derive(&e.workspace, mode)
                .into_iter()
                .map(|d| (d.name, Answer::of(d.target)))
                .collect(),
            Offer::Name(_, n, _) => vec![(n.name.clone(), Answer::addrs(&n.addrs))],
        })
        .collect();
    let mut by_name: BTreeMap<&str, Vec<(usize, &Answer)>> = BTreeMap::new();
    for (i, list) in offered.iter().enumerate() {
        for (name, answer) in list {
            by_name.entry(name).or_default().push((i, answer));
        }
    }
    let mut left_out = vec![false; offers.len()];
    // One warning per pair of givers: where, the first name, how many.
    let mut said: BTreeMap<(String, String), (Location, String, usize)> = BTreeMap::new();
    for (name, givers) in &by_name {
        if let Some((file_answer, file_at)) = given.get(*name) {
            for &(i, answer) in givers.iter().filter(|(_, a)| *a != file_answer) {
                left_out[i] = true;
                let key = (file_at.to_string(), offers[i].who());
                let said = said.entry(key).or_insert_with(|| {
                    let message = format!(
                        "{name} is given by the file ({file_answer}) and by Azure ({answer}, \
                         from {}): the file's is served",
                        offers[i].who()
                    );
                    ((*file_at).clone(), message, 0)
                });
                said.2 += 1;
            }
            continue;
        }
        let (i, first) = givers[0];
        let Some(&(j, other)) = givers.iter().find(|(_, a)| *a != first) else {
            continue;
        };
        for &(k, _) in givers {
            left_out[k] = true;
        }
        let (a, b) = (offers[i].who(), offers[j].who());
        let key = if a <= b { (a, b) } else { (b, a) };
        let said = said.entry(key).or_insert_with(|| {
            let message = format!(
                "{name} is given two different answers by Azure: {first} by {}, {other} by {}: \
                 neither is served; set [azure] virtual_networks to the VNets whose private \
                 endpoints this server's clients use",
                offers[i].who(),
                offers[j].who()
            );
            (offers[i].at().clone(), message, 0)
        });
        said.2 += 1;
    }
    let warnings = (said.into_values())
        .map(|(at, message, count)| {
            let more = match count {
                1 => String::new(),
                n => format!(" ({} more names alike)", n - 1),
            };
            Warning {
                at,
                message: format!("{message}{more}"),
            }
        })
        .collect();
    // What a workspace's own endpoint lists goes with the workspace.
    let dropped: Vec<&Entry> = (offers.iter().zip(&left_out))
        .filter_map(|(o, out)| match (o, out) {
            (Offer::Workspace(e), true) => Some(*e),
            _ => None,
        })
        .collect();
    let kept = (offers.iter().zip(&left_out))
        .map(|(o, out)| {
            !*out
                && !matches!(o, Offer::Name(Some(e), n, _)
                    if n.at == e.at && dropped.iter().any(|d| std::ptr::eq(*d, *e)))
        })
        .collect();
    (kept, warnings)
}

/// ", though they differ in ip (10.1.0.5 here, 10.1.0.9 in Azure)": where
/// the file's workspace and Azure's disagree.
fn differences(file: &Workspace, azure: &Workspace) -> String {
    let mut d = Vec::new();
    let mut cmp = |what: &str, a: String, b: String| {
        if a != b {
            d.push(format!("{what} ({a} in the file, {b} in Azure)"));
        }
    };
    cmp("name", file.name.clone(), azure.name.clone());
    cmp("region", file.region.clone(), azure.region.clone());
    cmp("ip", file.ip.to_string(), azure.ip.to_string());
    cmp(
        "notebook_ip",
        file.notebook_ip.to_string(),
        azure.notebook_ip.to_string(),
    );
    cmp(
        "inference_ip",
        file.inference_ip.to_string(),
        azure.inference_ip.to_string(),
    );
    cmp(
        "instances",
        file.instances.join(","),
        azure.instances.join(","),
    );
    cmp(
        "online_endpoints",
        file.online_endpoints.join(","),
        azure.online_endpoints.join(","),
    );
    if d.is_empty() {
        String::new()
    } else {
        format!(", though they differ in {}", d.join(", "))
    }
}

/// The client for `cfg`'s endpoints and identity, counting into `metrics`.
fn client(cfg: &AzureConfig, metrics: &AzureMetrics) -> arm::Arm {
    arm::Arm::new(
        &cfg.arm_endpoint,
        http::Http::new(cfg, metrics.retries.clone()),
        token::Tokens::new(cfg),
        cfg.max_reads_per_second,
        metrics.reads_slowed.clone(),
    )
}

/// One round, failed only when its requests stop getting answers.
async fn one_round(arm: &arm::Arm, cfg: &AzureConfig) -> Result<Round, Failure> {
    arm.bounded(async { Ok(round::run(arm, cfg).await) }).await
}

/// `amldns discover`: one round, as TOML, and what it left out and why
/// (for standard error); `Err` names each subscription or management group
/// it could not read.
pub async fn discover(cfg: &AzureConfig) -> Result<(String, Vec<String>), String> {
    let round = one_round(&client(cfg, &Metrics::new().azure), cfg)
        .await
        .map_err(|f| f.to_string())?;
    if !round.failed.is_empty() {
        let each: Vec<String> = round
            .failed
            .iter()
            .map(|(scope, f)| format!("{scope}: {f}{}", arm_said(f)))
            .collect();
        return Err(each.join("; "));
    }
    let (d, problems) = Discovered::new(round.found);
    let mut out = format!(
        "# amldns discover: {} workspaces behind approved private endpoints in {} \
         subscriptions\n\n",
        d.len(),
        round.read.len()
    );
    out.push_str(&d.to_toml());
    let skipped = (round.skipped.iter().chain(&problems))
        .map(ToString::to_string)
        .collect();
    Ok((out, skipped))
}

/// " (ARM: code SubscriptionNotFound, correlation id …)": what ARM's
/// answer said of a failure, for the log.
fn arm_said(f: &Failure) -> String {
    let Some(a) = f.arm() else {
        return String::new();
    };
    let parts: Vec<String> = [
        ("code", &a.code),
        ("x-ms-correlation-request-id", &a.correlation_id),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
    .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" (ARM: {})", parts.join(", "))
    }
}

/// `amldns discover --out FILE`: a round written to `out` as the discovery
/// file other replicas `[[import]]`, atomically (a reader never sees half
/// of one); with `watch`, a round every `interval_s` for as long as the
/// process runs, each good one written. A failed round is said on standard
/// error and leaves the file as it was; without `watch` it is the error.
pub async fn publish(cfg: &AzureConfig, out: &Path, watch: bool) -> Result<(), String> {
    let arm = client(cfg, &Metrics::new().azure);
    // What the file holds, which replicas serve: the brake's baseline.
    let mut last = std::fs::read_to_string(out)
        .ok()
        .and_then(|text| DiscoveryFile::read(&text).ok())
        .map(|found| Discovered::new(found).0)
        .unwrap_or_default();
    let mut held: Option<BTreeSet<String>> = None;
    loop {
        match one_round(&arm, cfg).await {
            // A round that could not read every subscription is not a good
            // one: the file keeps the last that was.
            Ok(round) if !round.failed.is_empty() => {
                for (scope, f) in &round.failed {
                    let message = format!("{scope}: {f}{}", arm_said(f));
                    if !watch {
                        return Err(format!("Azure discovery failed: {message}"));
                    }
                    eprintln!(
                        "error: Azure discovery failed, {} stays as it was: {message}",
                        out.display()
                    );
                }
            }
            Ok(round) => {
                for s in &round.skipped {
                    eprintln!("{s}");
                }
                let (mut d, problems) = Discovered::new(round.found);
                for p in problems {
                    eprintln!("{p}");
                }
                // The replicas serve the file: the same brake as a server's.
                let brake = d.brake(&last, held.as_ref());
                if let Some(b) = &brake {
                    eprintln!("warning: {}", b.why);
                }
                held = brake.map(|b| b.removed);
                match d.save(out) {
                    Ok(()) => eprintln!(
                        "amldns discover: {} workspaces written to {}",
                        d.len(),
                        out.display()
                    ),
                    Err(e) if !watch => return Err(format!("cannot write {}: {e}", out.display())),
                    Err(e) => eprintln!("error: cannot write {}: {e}", out.display()),
                }
                last = d;
            }
            Err(e) if !watch => return Err(format!("Azure discovery failed: {e}")),
            Err(e) => eprintln!(
                "error: Azure discovery failed, {} stays as it was: {e}",
                out.display()
            ),
        }
        if !watch {
            return Ok(());
        }
        tokio::time::sleep(cfg.interval).await;
    }
}

/// What the rounds need of the server: the discovery it serves, `[azure]`
/// as last loaded, and a way to serve a new discovery. `reload::Reloader`,
/// the only writer of the table, is it; the rounds never touch the table.
pub trait Served: Send + Sync + 'static {
    fn discovered(&self) -> Arc<Discovered>;
    /// `[azure]` as last loaded; `None` once a reload removed it.
    fn azure(&self) -> Option<AzureConfig>;
    /// Completes when a reload has changed `[azure]`.
    fn azure_changed(&self) -> impl Future<Output = ()> + Send;
    /// Serves `found` from now on (one reload); the generation served, or
    /// why the table refused it (the discovery served before then stays).
    fn apply_discovery(
        &self,
        found: Arc<Discovered>,
    ) -> impl Future<Output = Result<u64, String>> + Send;
    /// What the last round left out, for `/status`.
    fn skipped(&self) -> Arc<Vec<Skipped>>;
    fn set_skipped(&self, skipped: Vec<Skipped>);
}

/// What the discovery rounds and the reloads share: the discovery being
/// served, and `[azure]` as last loaded. The rounds replace the first; a
/// reload, the only writer of the table, reads it and sets the second.
pub struct State {
    discovered: Mutex<Arc<Discovered>>,
    /// What the last round left out.
    skipped: Mutex<Arc<Vec<Skipped>>>,
    config: Mutex<Option<AzureConfig>>,
    /// Told when a reload changes `[azure]`: the rounds start, stop or
    /// change pace at once, not after the interval they were waiting out.
    changed: Notify,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    /// `[azure]` as first loaded, and the last good discovery its
    /// `state_file` holds: served at once, Azure reachable or not.
    pub fn new(config: Option<AzureConfig>) -> Self {
        State {
            discovered: Mutex::new(Arc::new(Discovered::at_start(config.as_ref()))),
            skipped: Mutex::default(),
            config: Mutex::new(config),
            changed: Notify::new(),
        }
    }

    /// The discovery being served.
    pub fn discovered(&self) -> Arc<Discovered> {
        locked(&self.discovered).clone()
    }

    /// Serves `found` from the next reload on; the one it replaces, to put
    /// back if that reload fails.
    pub fn replace(&self, found: Arc<Discovered>) -> Arc<Discovered> {
        std::mem::replace(&mut *locked(&self.discovered), found)
    }

    /// What the last round left out.
    pub fn skipped(&self) -> Arc<Vec<Skipped>> {
        locked(&self.skipped).clone()
    }

    pub fn set_skipped(&self, skipped: Vec<Skipped>) {
        *locked(&self.skipped) = Arc::new(skipped);
    }

    /// `[azure]` as last loaded; `None` once a reload removed it.
    pub fn config(&self) -> Option<AzureConfig> {
        locked(&self.config).clone()
    }

    /// A reload loaded `config`: the rounds are told if it changed.
    pub fn loaded(&self, config: Option<AzureConfig>) {
        let before = std::mem::replace(&mut *locked(&self.config), config);
        if before != *locked(&self.config) {
            self.changed.notify_one();
        }
    }

    /// Completes when a reload has changed `[azure]`.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// Rounds until `stop`, `interval_s` apart, while the config has
/// `[azure]`; a reload that adds, changes or removes it takes effect at once.
/// Failures never empty the table: the last good discovery keeps serving;
/// each change of state (failing, failing differently, working again) is
/// logged once.
pub async fn run<S: Served>(
    reloader: Arc<S>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stop: CancellationToken,
) {
    let mut rounds = Rounds {
        reloader,
        metrics,
        health,
        problems: Vec::new(),
        held: None,
        warned: HashSet::new(),
        saved: None,
    };
    let mut arm: Option<(AzureConfig, arm::Arm)> = None;
    loop {
        // The section as last loaded: a reload may change it.
        let Some(cfg) = rounds.reloader.azure() else {
            rounds.health.clear(health::Source::Azure);
            tokio::select! {
                () = rounds.reloader.azure_changed() => continue,
                () = stop.cancelled() => return,
            }
        };
        if arm.as_ref().is_none_or(|(c, _)| *c != cfg) {
            arm = Some((cfg.clone(), client(&cfg, &rounds.metrics.azure)));
        }
        let Some((_, client)) = &arm else { return };
        let outcome = tokio::select! {
            o = one_round(client, &cfg) => o,
            () = stop.cancelled() => return,
        };
        let wait = rounds.settle(outcome, &cfg).await;
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = rounds.reloader.azure_changed() => {}
            () = stop.cancelled() => return,
        }
    }
}

/// What the rounds remember between them.
struct Rounds<S> {
    reloader: Arc<S>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// The problems of the last round (`/healthz`); each is logged when it
    /// appears, not again while it lasts.
    problems: Vec<String>,
    /// The names a held round would have removed: the next round removing
    /// the same names removes them.
    held: Option<BTreeSet<String>>,
    /// Skipped resources (id, reason) already logged.
    warned: HashSet<(String, String)>,
    /// The digest of the discovery the state file holds, once saved.
    saved: Option<u64>,
}

impl<S: Served> Rounds<S> {
    /// Applies a round's outcome; returns how long to wait for the next.
    async fn settle(&mut self, outcome: Result<Round, Failure>, cfg: &AzureConfig) -> Duration {
        let mut problems = Vec::new();
        let (result, wait) = match outcome {
            Err(f) => {
                let why = f.to_string();
                if self.is_new(&why) {
                    error!(
                        result = f.kind().as_str(),
                        "Azure discovery failed, the last good discovery keeps serving: {why}"
                    );
                }
                problems.push(why);
                (f.kind(), wait_after(&f, cfg))
            }
            Ok(round) => self.apply(round, cfg, &mut problems).await,
        };
        if let Some(why) = self.save(cfg) {
            problems.push(why);
        }
        self.metrics.azure.count(result);
        if matches!(
            result,
            AzureResult::Success | AzureResult::Unchanged | AzureResult::Held
        ) {
            self.metrics.azure.last_success.set(metrics::unix_now());
        }
        if problems.is_empty() {
            self.health.clear(health::Source::Azure);
            if !self.problems.is_empty() {
                info!(
                    workspaces = self.reloader.discovered().len(),
                    "Azure discovery works again"
                );
            }
        } else {
            self.health.set(health::Source::Azure, problems.join("; "));
        }
        self.problems = problems;
        wait
    }

    /// Serves what `round` found, with what the subscriptions it could not
    /// read (or that a failed management group may hold) had before, and
    /// the removals held when they are more than half of the names; the
    /// result it counts as, and the wait for the next.
    async fn apply(
        &mut self,
        round: Round,
        cfg: &AzureConfig,
        problems: &mut Vec<String>,
    ) -> (AzureResult, Duration) {
        let current = self.reloader.discovered();
        let mut wait = cfg.interval;
        for (scope, f) in &round.failed {
            let why = format!("{scope}: {f}");
            if self.is_new(&why) {
                let said = f.arm().cloned().unwrap_or_default();
                error!(
                    result = f.kind().as_str(),
                    %scope,
                    code = %said.code.as_deref().unwrap_or("-"),
                    correlation_id = %said.correlation_id.as_deref().unwrap_or("-"),
                    "Azure discovery failed for {scope}, its last good discovery keeps \
                     serving: {f}"
                );
            }
            problems.push(why);
            wait = wait.max(wait_after(f, cfg));
        }
        let kept = round.kept(&current.found);
        let failed: Vec<&str> = kept.iter().map(String::as_str).collect();
        let mut found = round.found;
        found.carry(&current.found, &failed);
        let (mut next, unservable) = Discovered::new(found);
        let mut skipped = round.skipped;
        skipped.extend(unservable);
        // What a subscription not read left out stays listed.
        let before = self.reloader.skipped();
        skipped.extend(
            before
                .iter()
                .filter(|s| {
                    discovery::subscription_of(&s.resource)
                        .is_some_and(|x| failed.iter().any(|f| f.eq_ignore_ascii_case(x)))
                })
                .cloned(),
        );
        skipped.sort_by(|a, b| (&a.resource, &a.reason).cmp(&(&b.resource, &b.reason)));
        skipped.dedup();
        self.note_skipped(skipped);

        let brake = next.brake(&current, self.held.as_ref());
        let held = brake.is_some();
        if let Some(b) = &brake {
            if self.is_new(&b.why) {
                warn!("{}", b.why);
            }
            problems.push(b.why.clone());
        }
        self.held = brake.map(|b| b.removed);
        let result = if next.digest() == current.digest() {
            AzureResult::Unchanged
        } else {
            let changes = current.changes(&next);
            let count = next.len();
            match self.reloader.apply_discovery(Arc::new(next)).await {
                Ok(generation) => {
                    info!(
                        generation,
                        workspaces = count,
                        "Azure discovery changed: {changes}"
                    );
                    AzureResult::Success
                }
                Err(e) => {
                    let why = format!("the discovered names do not fit the table: {e}");
                    if self.is_new(&why) {
                        error!(
                            result = AzureResult::Rejected.as_str(),
                            "Azure discovery failed, the last good discovery keeps serving: {why}"
                        );
                    }
                    problems.push(why);
                    AzureResult::Rejected
                }
            }
        };
        self.metrics
            .azure
            .workspaces
            .set(self.reloader.discovered().len() as i64);
        let result = match round.failed.first() {
            Some((_, f)) => f.kind(),
            None if held && result != AzureResult::Rejected => AzureResult::Held,
            None => result,
        };
        (result, wait)
    }

    /// Logs each skipped resource once (until its reason changes) and
    /// publishes the list for `/status`.
    fn note_skipped(&mut self, skipped: Vec<Skipped>) {
        let mut warned = HashSet::new();
        for s in &skipped {
            let key = (s.resource.clone(), s.reason.clone());
            if !self.warned.contains(&key) {
                if s.quiet {
                    debug!(resource = %s.resource, "Azure discovery left it out: {}", s.reason);
                } else {
                    warn!(resource = %s.resource, "Azure discovery left it out: {}", s.reason);
                }
            }
            warned.insert(key);
        }
        self.warned = warned;
        self.metrics.azure.skipped.set(skipped.len() as i64);
        self.reloader.set_skipped(skipped);
    }

    /// Writes the discovery served to the state file unless it holds it
    /// already: a save that failed is tried again each round, changed or
    /// not. The problem, when it fails.
    fn save(&mut self, cfg: &AzureConfig) -> Option<String> {
        let path = cfg.state_file.as_ref()?;
        let served = self.reloader.discovered();
        if self.saved == Some(served.digest()) && path.exists() {
            return None;
        }
        match served.save(path) {
            Ok(()) => {
                self.saved = Some(served.digest());
                None
            }
            Err(e) => {
                self.saved = None;
                let why = format!("cannot save the discovery to {}: {e}", path.display());
                if self.is_new(&why) {
                    warn!("{why}");
                }
                Some(why)
            }
        }
    }

    /// `why` was not a problem of the last round: it is logged.
    fn is_new(&self, why: &str) -> bool {
        !self.problems.iter().any(|p| p == why)
    }
}

/// How long to wait after `f`: the interval, or longer when ARM asked.
fn wait_after(f: &Failure, cfg: &AzureConfig) -> Duration {
    f.retry_after()
        .map_or(cfg.interval, |r| r.max(cfg.interval))
}

/// "a, b, c, …": the first names of a set, for a log line.
fn first_few(names: &BTreeSet<String>) -> String {
    let first: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
    let more = if names.len() > 3 { ", …" } else { "" };
    format!("{}{more}", first.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(name: &str, id: &str, ip: &str) -> Found {
        Found {
            resource_id: format!("/subscriptions/s/resourceGroups/r/providers/x/workspaces/{name}"),
            name: name.into(),
            id: id.into(),
            region: "eastus".into(),
            cloud: "public".into(),
            ip: ip.parse().unwrap(),
            notebook_ip: ip.parse().unwrap(),
            inference_ip: ip.parse().unwrap(),
            notebook_fqdn: None,
            instances: vec!["ci-b".into(), "ci-a".into(), "ci-a".into()],
            online_endpoints: Vec::new(),
            projects: Vec::new(),
            names: Vec::new(),
            endpoint: None,
        }
    }

    const A: &str = crate::fixtures::GUID;
    const B: &str = "0d5c2f4e-1111-4222-8333-944444444444";

    fn discovered(workspaces: Vec<Found>) -> Discovered {
        let mut d = Discovery {
            workspaces,
            ..Discovery::default()
        };
        d.normalize();
        Discovered::new(d).0
    }

    /// A config with `[azure]` and `rest`, built with `found` merged in:
    /// the table's answer for each of `names` (`None`: not served), and the
    /// warnings.
    fn served(rest: &str, found: Vec<Found>, names: &[&str]) -> (Vec<Option<String>>, String) {
        let text = format!(
            "[upstream]\nservers = [\"127.0.0.1:5300\"]\n[azure]\n\
             subscriptions = [\"0b1f6471-1bf0-4dda-aec3-111122223333\"]\n{rest}"
        );
        let config = crate::config::parse(Path::new("t.toml"), &text).unwrap();
        let built = crate::snapshot::build(&config, &discovered(found), 1).unwrap();
        let t = &built.snapshot.table;
        let answers = (names.iter())
            .map(|n| t.find(n).map(|node| node.data.to_string()))
            .collect();
        let warnings: Vec<String> = built.warnings.iter().map(ToString::to_string).collect();
        (answers, warnings.join("\n"))
    }

    fn listed(name: &str, ip: &str, resource: &str, endpoint: &str) -> FoundName {
        FoundName {
            name: name.into(),
            addrs: vec![ip.parse().unwrap()],
            resource_id: resource.into(),
            endpoint: Some(endpoint.into()),
        }
    }

    const PE_HUB: &str =
        "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/privateEndpoints/pe-hub";
    const PE_SPOKE: &str =
        "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/privateEndpoints/pe-spoke";

    #[test]
    fn a_name_discovery_answers_twice_is_left_out_and_the_rest_served() {
        // mlw-a behind endpoints in two VNets; its storage too.
        let st = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/st";
        let mut hub = found("mlw-a", A, "10.1.0.5");
        hub.endpoint = Some(PE_HUB.into());
        hub.names = vec![
            listed("st.blob.core.windows.net", "10.1.0.20", st, PE_HUB),
            listed("st.queue.core.windows.net", "10.1.0.21", st, PE_HUB),
        ];
        let mut spoke = found("mlw-a", A, "10.2.0.5");
        spoke.endpoint = Some(PE_SPOKE.into());
        spoke.names = vec![listed(
            "st.blob.core.windows.net",
            "10.2.0.20",
            st,
            PE_SPOKE,
        )];
        let mut other = found("mlw-b", B, "10.3.0.5");
        other.instances.clear();
        // Two workspaces, however many endpoints each is behind.
        let d = discovered(vec![hub.clone(), spoke.clone(), other.clone()]);
        assert_eq!(d.len(), 2);
        let api = |id: &str| format!("{id}.workspace.eastus.api.azureml.ms");
        let (answers, warnings) = served(
            "",
            vec![hub, spoke, other],
            &[
                &api(A),
                "ci-a.eastus.instances.azureml.ms",
                "st.blob.core.windows.net",
                "st.queue.core.windows.net",
                &api(B),
            ],
        );
        assert_eq!(
            answers,
            [
                None,
                None,
                None,
                Some("10.1.0.21".into()),
                Some("10.3.0.5".into())
            ]
        );
        for said in [
            "given two different answers by Azure",
            PE_HUB,
            PE_SPOKE,
            "virtual_networks",
        ] {
            assert!(warnings.contains(said), "{said}: {warnings}");
        }
    }

    #[test]
    fn discover_prints_only_what_is_served() {
        let st = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/st";
        let mut hub = found("mlw-a", A, "10.1.0.5");
        hub.endpoint = Some(PE_HUB.into());
        hub.names = vec![listed("st.blob.core.windows.net", "10.1.0.20", st, PE_HUB)];
        let mut spoke = found("mlw-a", A, "10.2.0.5");
        spoke.endpoint = Some(PE_SPOKE.into());
        let mut same = found("mlw-b", B, "10.3.0.5");
        same.instances.clear();
        let mut again = same.clone();
        same.endpoint = Some(PE_HUB.into());
        again.endpoint = Some(PE_SPOKE.into());
        let toml = discovered(vec![hub, spoke, same, again]).to_toml();
        let c = crate::config::parse(Path::new("t.toml"), &toml).unwrap();
        let ids: Vec<&str> = c.workspaces.iter().map(|w| w.value.id.as_str()).collect();
        assert_eq!(ids, [B], "{toml}");
        assert_eq!(c.records.len(), 1, "{toml}");
        assert!(toml.contains("# ") && toml.contains(PE_SPOKE), "{toml}");
    }

    #[test]
    fn a_name_the_file_gives_is_served_from_the_file() {
        let st = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/st";
        let mut w = found("mlw-a", A, "10.1.0.5");
        w.names = vec![listed("st.blob.core.windows.net", "10.1.0.20", st, PE_HUB)];
        let (answers, warnings) = served(
            "[[record]]\nname = \"st.blob.core.windows.net\"\na = [\"10.9.9.1\"]\n",
            vec![w],
            &[
                "st.blob.core.windows.net",
                &format!("{A}.workspace.eastus.api.azureml.ms"),
            ],
        );
        assert_eq!(answers, [Some("10.9.9.1".into()), Some("10.1.0.5".into())]);
        assert!(
            warnings.contains("the file's is served") && warnings.contains("10.1.0.20"),
            "{warnings}"
        );
    }

    #[test]
    fn the_regional_inference_wildcard_is_not_served() {
        // Two eastus workspaces whose endpoints list it, as Microsoft's docs
        // show: neither serves it, so they do not collide either.
        let wildcard = |f: &mut Found| {
            f.names = vec![FoundName {
                name: "*.eastus.inference.ml.azure.com".into(),
                addrs: vec![f.inference_ip],
                resource_id: f.resource_id.clone(),
                endpoint: None,
            }];
        };
        let mut a = found("mlw-a", A, "10.1.0.5");
        wildcard(&mut a);
        let mut b = found("mlw-b", B, "10.2.0.5");
        b.instances.clear();
        wildcard(&mut b);
        let (answers, warnings) = served(
            "",
            vec![a, b],
            &["someone-elses-endpoint.eastus.inference.ml.azure.com"],
        );
        assert_eq!(answers, [None]);
        assert!(warnings.is_empty(), "{warnings}");
    }

    #[test]
    fn changes_are_counted_and_named() {
        let before = discovered(vec![
            found("mlw-a", A, "10.1.0.5"),
            found("mlw-b", B, "10.2.0.5"),
        ]);
        let after = discovered(vec![found("mlw-a", A, "10.1.0.9")]);
        let removed: Vec<String> = before.names().difference(&after.names()).cloned().collect();
        assert!(
            removed.contains(&format!("{B}.workspace.eastus.api.azureml.ms")),
            "{removed:?}"
        );
        assert_eq!(
            before.changes(&after),
            "added 0, removed 1 (mlw-b), changed 1 (mlw-a)"
        );
        // Order and repeats do not make a change.
        let again = discovered(vec![
            found("mlw-b", B, "10.2.0.5"),
            found("mlw-a", A, "10.1.0.5"),
        ]);
        assert_eq!(before.digest(), again.digest());
    }

    #[test]
    fn what_cannot_be_served_is_left_out_and_said() {
        let mut bad = found("mlw-b", B, "10.2.0.5");
        bad.instances.push("bad_name".into());
        let (d, problems) = Discovered::new(Discovery {
            workspaces: vec![found("mlw-a", A, "10.1.0.5"), bad],
            ..Discovery::default()
        });
        assert_eq!(d.len(), 1);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].reason.contains("compute instance \"bad_name\""),
            "{problems:?}"
        );
        assert!(
            problems[0].resource.starts_with("/subscriptions/"),
            "{problems:?}"
        );
    }

    #[test]
    fn names_outside_the_catalogue_are_left_out_and_said() {
        let st = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/st";
        let mut a = found("mlw-a", A, "10.1.0.5");
        a.names = vec![
            listed(
                "st.privatelink.blob.core.windows.net",
                "10.1.0.20",
                st,
                PE_HUB,
            ),
            listed("git.corp.example", "10.1.0.21", st, PE_HUB),
        ];
        let (d, problems) = Discovered::new(Discovery {
            workspaces: vec![a.clone()],
            ..Discovery::default()
        });
        assert_eq!(d.len(), 1, "the workspace itself is served");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].resource, st);
        assert!(
            problems[0].reason.contains("git.corp.example")
                && problems[0].reason.contains("catalogue"),
            "{problems:?}"
        );
        let (answers, _) = served(
            "",
            vec![a],
            &["st.privatelink.blob.core.windows.net", "git.corp.example"],
        );
        assert_eq!(answers, [Some("10.1.0.20".to_string()), None]);
    }

    #[test]
    fn the_state_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/azure.json");
        let d = discovered(vec![found("mlw-a", A, "10.1.0.5")]);
        d.save(&path).unwrap();
        let config = crate::config::parse(
            &dir.path().join("amldns.toml"),
            "[azure]\nsubscriptions = [\"0b1f6471-1bf0-4dda-aec3-111122223333\"]\n\
             state_file = \"state/azure.json\"\n",
        )
        .unwrap();
        let back = Discovered::at_start(config.azure.as_ref());
        assert_eq!(back.digest(), d.digest());
        // A broken file is ignored, not fatal.
        std::fs::write(&path, "{").unwrap();
        assert!(Discovered::at_start(config.azure.as_ref()).is_empty());
    }

    #[test]
    fn discovered_workspaces_print_as_config() {
        let mut hub = found("mlw-a", A, "10.1.0.5");
        let project_fqdn = format!("ml-proj_b-eastus-{B}.eastus.notebooks.azure.net");
        hub.projects = vec![FoundProject {
            name: "proj-b".into(),
            id: B.into(),
            notebook_fqdn: Some(project_fqdn.clone()),
        }];
        let d = discovered(vec![hub]);
        let toml = d.to_toml();
        assert!(toml.contains("[[workspace]]\nname = \"mlw-a\"\n"), "{toml}");
        assert!(toml.contains("instances = [\"ci-a\", \"ci-b\"]"), "{toml}");
        let c = crate::config::parse(Path::new("t.toml"), &toml).unwrap();
        assert_eq!(c.workspaces[0].value.id, A);
        let project = &c.workspaces[0].value.projects[0];
        assert_eq!(
            project.notebook_fqdn.as_deref(),
            Some(project_fqdn.as_str())
        );
    }
}
