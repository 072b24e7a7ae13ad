//! Every DNS name an Azure ML workspace behind a private endpoint needs (SPEC §1).
//!
//! Pure: a validated [`Workspace`] in, a list of [`DerivedName`]s out. No I/O and
//! no DNS library types, so the rules can be read and tested in one place.
//! The other rules about names live here too: how a name is stored
//! ([`domain_name`]) and keyed for lookups ([`NameKey`]), which names must
//! stay public ([`captures_public`]), what Azure accepts as a workspace name
//! and which regions each cloud has.
//!
//! Sources: Microsoft Learn, "How to use your workspace with a custom DNS server"
//! (the FQDN tables per cloud) and "Configure a private endpoint for an Azure
//! Machine Learning workspace"; the notebook label cut is observed behaviour.

use std::net::IpAddr;

/// The Azure cloud a workspace lives in; it picks the DNS suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Cloud {
    #[default]
    Public,
    China,
    UsGov,
}

/// The DNS suffixes of one cloud.
struct Suffixes {
    api: &'static str,
    privatelink_api: &'static str,
    notebooks: &'static str,
    privatelink_notebooks: &'static str,
    /// Microsoft's docs name both spellings, so both are served.
    instances: [&'static str; 2],
    inference: &'static str,
}

const PUBLIC: Suffixes = Suffixes {
    api: "api.azureml.ms",
    privatelink_api: "privatelink.api.azureml.ms",
    notebooks: "notebooks.azure.net",
    privatelink_notebooks: "privatelink.notebooks.azure.net",
    instances: ["instances.azureml.ms", "instances.ml.azure.ms"],
    inference: "inference.ml.azure.com",
};

const CHINA: Suffixes = Suffixes {
    api: "api.ml.azure.cn",
    privatelink_api: "privatelink.api.ml.azure.cn",
    notebooks: "notebooks.chinacloudapi.cn",
    privatelink_notebooks: "privatelink.notebooks.chinacloudapi.cn",
    instances: ["instances.azureml.cn", "instances.ml.azure.cn"],
    inference: "inference.ml.azure.cn",
};

const USGOV: Suffixes = Suffixes {
    api: "api.ml.azure.us",
    privatelink_api: "privatelink.api.ml.azure.us",
    notebooks: "notebooks.usgovcloudapi.net",
    privatelink_notebooks: "privatelink.notebooks.usgovcloudapi.net",
    instances: ["instances.azureml.us", "instances.ml.azure.us"],
    inference: "inference.ml.azure.us",
};

/// Notebook content, shared by the three clouds (SPEC §1).
const NOTEBOOK_CONTENT_ZONE: &str = "aznbcontent.net";

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

    fn suffixes(self) -> &'static Suffixes {
        match self {
            Cloud::Public => &PUBLIC,
            Cloud::China => &CHINA,
            Cloud::UsGov => &USGOV,
        }
    }

    /// The config spelling (`cloud = "..."`).
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Public => "public",
            Cloud::China => "china",
            Cloud::UsGov => "usgov",
        }
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

/// True when `name` is `zone` or a name below it (both lower-case, no final dot).
pub fn is_at_or_below(name: &str, zone: &str) -> bool {
    name == zone
        || (name.len() > zone.len()
            && name.ends_with(zone)
            && name.as_bytes()[name.len() - zone.len() - 1] == b'.')
}

/// Byte offset of the first label equal to `label`, if any.
fn label_start(name: &str, label: &str) -> Option<usize> {
    let mut pos = 0;
    for l in name.split('.') {
        if l == label {
            return Some(pos);
        }
        pos += l.len() + 1;
    }
    None
}

/// An AI Studio / Foundry hub project: it gets its own api, cert.api and
/// notebooks names on the hub's private endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub name: String,
    /// Lower-case UUID.
    pub id: String,
}

/// A validated workspace: ids and regions lower-case, IPs parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub name: String,
    /// Lower-case UUID (`properties.workspaceId`).
    pub id: String,
    /// Lower-case region short name, e.g. `eastus`.
    pub region: String,
    pub cloud: Cloud,
    /// API IP: api, cert.api and compute instances.
    pub ip: IpAddr,
    pub notebook_ip: IpAddr,
    pub inference_ip: IpAddr,
    /// Azure's exact notebooks FQDN, when given; its first label replaces the
    /// derived one.
    pub notebook_fqdn: Option<String>,
    pub instances: Vec<String>,
    pub instances_wildcard: bool,
    pub online_endpoints: Vec<String>,
    pub inference_wildcard: bool,
    pub projects: Vec<Project>,
}

/// How the public names are answered (`[zone] answer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnswerMode {
    /// Every name answered with its address directly.
    #[default]
    A,
    /// Azure's own shape: the public name is a CNAME to its `privatelink.` name,
    /// which holds the address.
    Cname,
}

/// What a derived name is for; shown by `amldns records` and counted by `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Purpose {
    Api,
    CertApi,
    Notebooks,
    Instance,
    InstanceSsh,
    InstancesWildcard,
    OnlineEndpoint,
    InferenceWildcard,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Api => "api",
            Purpose::CertApi => "cert.api",
            Purpose::Notebooks => "notebooks",
            Purpose::Instance => "instance",
            Purpose::InstanceSsh => "instance-ssh",
            Purpose::InstancesWildcard => "instances-wildcard",
            Purpose::OnlineEndpoint => "online-endpoint",
            Purpose::InferenceWildcard => "inference-wildcard",
        }
    }
}

/// What a name answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Addr(IpAddr),
    /// A CNAME to another (derived) name.
    Alias(String),
}

/// One name of a workspace and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedName {
    /// Lower-case, no final dot; `*.` first for a one-label wildcard.
    pub name: String,
    pub purpose: Purpose,
    pub target: Target,
    /// The zone apex whose SOA goes with negative answers.
    pub zone: &'static str,
}

/// The DNS label limit (RFC 1035 §2.3.4).
pub const MAX_LABEL: usize = 63;

/// Azure's longest region names are under 20 characters; past 22 the
/// notebooks label would have no room left for the workspace name.
pub const MAX_REGION: usize = NOTEBOOK_NAME_BUDGET;

/// Room for the workspace name in `ml-<name>-<region>-<guid>`:
/// 63 − len("ml-") − 2 hyphens − 36 (UUID) = 22, less the region.
const NOTEBOOK_NAME_BUDGET: usize = MAX_LABEL - 3 - 2 - 36;

/// The first label of the notebooks name: `ml-<name,cut>-<region>-<guid>`.
/// Only the workspace name is shortened, from the right, lower-cased.
pub fn notebook_label(name: &str, region: &str, guid: &str) -> String {
    let keep = NOTEBOOK_NAME_BUDGET.saturating_sub(region.len());
    let cut = name
        .char_indices()
        .nth(keep)
        .map_or(name, |(i, _)| &name[..i]);
    let mut label = ["ml-", cut, "-", region, "-", guid].concat();
    label.make_ascii_lowercase();
    label
}

/// Every name `ws` needs, in a stable order.
///
/// Names are joined with `concat`, which allocates each once at its size,
/// not with `format!`, which took 3.5 times the instructions: a reload of
/// 10,000 workspaces derives 130,000 names (issue 4).
pub fn derive(ws: &Workspace, mode: AnswerMode) -> Vec<DerivedName> {
    let s = ws.cloud.suffixes();
    let mut out = Vec::new();
    let mut push = |name: String, purpose: Purpose, target: Target, zone: &'static str| {
        out.push(DerivedName {
            name,
            purpose,
            target,
            zone,
        })
    };

    // The hub itself, then each project, on the same private endpoint IPs.
    let notebook_label_override = ws
        .notebook_fqdn
        .as_deref()
        .map(|f| f.split('.').next().unwrap_or(f).to_string());
    let mut identities = vec![(
        ws.id.as_str(),
        notebook_label_override.unwrap_or_else(|| notebook_label(&ws.name, &ws.region, &ws.id)),
    )];
    for p in &ws.projects {
        identities.push((p.id.as_str(), notebook_label(&p.name, &ws.region, &p.id)));
    }

    for (guid, nb_label) in identities {
        let r = &ws.region;
        // Workspace API and certificate API, with their private-link names.
        let api_pl = [guid, ".workspace.", r, ".", s.privatelink_api].concat();
        let cert_pl = [guid, ".workspace.", r, ".cert.", s.privatelink_api].concat();
        let nb_pl = [&nb_label, ".", r, ".", s.privatelink_notebooks].concat();
        let public = [
            (
                [guid, ".workspace.", r, ".", s.api].concat(),
                &api_pl,
                Purpose::Api,
                ws.ip,
                s.api,
            ),
            (
                [guid, ".workspace.", r, ".cert.", s.api].concat(),
                &cert_pl,
                Purpose::CertApi,
                ws.ip,
                s.api,
            ),
            (
                [&nb_label, ".", r, ".", s.notebooks].concat(),
                &nb_pl,
                Purpose::Notebooks,
                ws.notebook_ip,
                s.notebooks,
            ),
            // The older notebooks form without the region label.
            (
                [&nb_label, ".", s.notebooks].concat(),
                &nb_pl,
                Purpose::Notebooks,
                ws.notebook_ip,
                s.notebooks,
            ),
        ];
        for (name, pl, purpose, ip, zone) in public {
            let target = match mode {
                AnswerMode::A => Target::Addr(ip),
                AnswerMode::Cname => Target::Alias(pl.clone()),
            };
            push(name, purpose, target, zone);
        }
        push(api_pl, Purpose::Api, Target::Addr(ws.ip), s.privatelink_api);
        push(
            cert_pl,
            Purpose::CertApi,
            Target::Addr(ws.ip),
            s.privatelink_api,
        );
        push(
            nb_pl,
            Purpose::Notebooks,
            Target::Addr(ws.notebook_ip),
            s.privatelink_notebooks,
        );
    }

    // Compute instances answer the API IP, not their own (SPEC §1).
    let r = &ws.region;
    for zone in s.instances {
        for ci in &ws.instances {
            push(
                [ci, ".", r, ".", zone].concat(),
                Purpose::Instance,
                Target::Addr(ws.ip),
                zone,
            );
            push(
                [ci, "-22.", r, ".", zone].concat(),
                Purpose::InstanceSsh,
                Target::Addr(ws.ip),
                zone,
            );
        }
        if ws.instances_wildcard {
            push(
                ["*.", r, ".", zone].concat(),
                Purpose::InstancesWildcard,
                Target::Addr(ws.ip),
                zone,
            );
        }
    }

    // Managed online endpoints, on the inference IP; Azure's chain goes through
    // `<endpoint>.<guid>.inference.<region>.privatelink.api...`.
    for ep in &ws.online_endpoints {
        let pl = [ep, ".", &ws.id, ".inference.", r, ".", s.privatelink_api].concat();
        let target = match mode {
            AnswerMode::A => Target::Addr(ws.inference_ip),
            AnswerMode::Cname => Target::Alias(pl.clone()),
        };
        push(
            [ep, ".", r, ".", s.inference].concat(),
            Purpose::OnlineEndpoint,
            target,
            s.inference,
        );
        push(
            pl,
            Purpose::OnlineEndpoint,
            Target::Addr(ws.inference_ip),
            s.privatelink_api,
        );
    }
    if ws.inference_wildcard {
        push(
            ["*.", r, ".", s.inference].concat(),
            Purpose::InferenceWildcard,
            Target::Addr(ws.inference_ip),
            s.inference,
        );
        push(
            ["*.", &ws.id, ".inference.", r, ".", s.privatelink_api].concat(),
            Purpose::InferenceWildcard,
            Target::Addr(ws.inference_ip),
            s.privatelink_api,
        );
    }
    out
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

/// If `fqdn` looks like a workspace name (`<uuid>.workspace.<region>.api…` or
/// `ml-…-<uuid>.…notebooks…`), the workspace id in it.
pub fn workspace_id_in(fqdn: &str) -> Option<&str> {
    // Asked of every forwarded query: a byte search, not `split`'s
    // searcher, which costs more to set up than the label takes to read.
    let first = &fqdn[..fqdn.bytes().position(|c| c == b'.').unwrap_or(fqdn.len())];
    if let Some(rest) = fqdn
        .strip_prefix(first)
        .and_then(|r| r.strip_prefix(".workspace."))
        && is_uuid(first)
        && Cloud::ALL
            .iter()
            .any(|c| is_at_or_below(rest, c.suffixes().api))
    {
        return Some(first);
    }
    if first.starts_with("ml-") && first.len() >= 36 && notebooks_zone_of(fqdn).is_some() {
        let tail = &first[first.len() - 36..];
        if is_uuid(tail) {
            return Some(tail);
        }
    }
    None
}

/// `8-4-4-4-12` hex digits, either case.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A DNS label as host names use it (RFC 1123 §2.1): letters, digits and
/// hyphens, not starting or ending with a hyphen, 1–63 characters.
pub fn is_host_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LABEL
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
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
        if label.len() > MAX_LABEL {
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

/// A query name as the table keys it: lower-case ASCII, labels joined by `.`,
/// no final dot; built on the stack so a lookup does not allocate.
pub struct NameKey {
    buf: [u8; 255],
    len: usize,
}

impl std::fmt::Debug for NameKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("NameKey").field(&self.as_str()).finish()
    }
}

impl AsRef<str> for NameKey {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl NameKey {
    /// `None` when the name cannot be local: a label holding a `.` or a
    /// non-ASCII byte (our names have neither), or the root.
    pub fn from_labels<'a>(labels: impl Iterator<Item = &'a [u8]>) -> Option<Self> {
        let mut key = NameKey::empty();
        let mut separators = 0u8;
        for label in labels {
            let sep = usize::from(key.len > 0);
            let end = key.len + sep + label.len();
            let room = key.buf.get_mut(key.len..end)?;
            if sep == 1 {
                room[0] = b'.';
                separators = separators.wrapping_add(1);
            }
            room[sep..].copy_from_slice(label);
            key.len = end;
        }
        key.check(separators).then_some(key)
    }

    /// No name yet: a key to [`NameKey::set_wire`] where it is kept.
    pub fn empty() -> Self {
        NameKey {
            buf: [0; 255],
            len: 0,
        }
    }

    /// Sets this key to a name as a query carries it (RFC 1035 §3.1):
    /// `labels` are its labels, each a length byte (1–63) and that many
    /// bytes, without the root label. Whether it is a key, as for
    /// [`NameKey::from_labels`]. Every query is keyed, so the name is
    /// copied in one piece and each length byte then made a dot (a copy per
    /// label took a fifth of a local answer, issue 15), in place, as a key
    /// is 256 bytes to move.
    pub fn set_wire(&mut self, labels: &[u8]) -> bool {
        self.len = 0;
        let Some((&first, rest)) = labels.split_first() else {
            return false;
        };
        let Some(room) = self.buf.get_mut(..rest.len()) else {
            return false;
        };
        room.copy_from_slice(rest);
        self.len = rest.len();
        let mut separators = 0u8;
        let mut at = usize::from(first);
        while at < rest.len() {
            let len = self.buf[at];
            self.buf[at] = b'.';
            separators = separators.wrapping_add(1);
            at += 1 + usize::from(len);
        }
        // A length that runs past the end leaves no name.
        at == rest.len() && self.check(separators)
    }

    /// Whether the name, joined with `separators` dots, is a key; lower-cased
    /// and checked in one pass over it, which the compiler runs 16 bytes a step
    /// (u8 counters: 255 bytes hold at most 255 dots), rather than a byte
    /// at a time with the checks inside, which took 1,500 instructions of a
    /// 3,500-instruction local answer (issue 15). A label holding a `.`
    /// shows as a dot more than the separators.
    fn check(&mut self, separators: u8) -> bool {
        let (mut high, mut dots) = (0u8, 0u8);
        for c in &mut self.buf[..self.len] {
            high |= *c;
            dots = dots.wrapping_add(u8::from(*c == b'.'));
            *c = c.to_ascii_lowercase();
        }
        self.len > 0 && high.is_ascii() && dots == separators
    }

    /// The key's labels, as [`NameKey::from_labels`] takes them.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> {
        self.buf[..self.len].split(|&c| c == b'.')
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// Why a name must not be local: it would take a public name of an Azure ML
/// zone away from the public DNS (SPEC §1, "Do not capture public names").
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
            Captured::Zone(z) => write!(f, "it is the Azure ML zone {z}, or above it"),
            Captured::Shared(z) => write!(
                f,
                "names at that level of {z} are shared by every workspace of a region \
                 (discovery, MLflow, registries, other workspaces)"
            ),
        }
    }
}

/// How a zone's own names are laid out under its apex, for [`captures_public`].
#[derive(Clone, Copy)]
enum Layout {
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
    /// `aznbcontent.net`: only the apex (and a wildcard under it) is known shared.
    ApexOnly,
}

/// Whether a local `name` (as [`domain_name`] stores it, `*.` first for a
/// wildcard) would capture a name that must keep resolving publicly, and why.
/// The private-link zones (`privatelink.api.azureml.ms`…) are private: any
/// name under them may be local.
pub fn captures_public(name: &str) -> Option<Captured> {
    let (wildcard, body) = match name.strip_prefix("*.") {
        Some(parent) => (true, parent),
        None => (false, name),
    };
    for cloud in Cloud::ALL {
        let s = cloud.suffixes();
        let zones = [
            (s.api, Layout::Api),
            (s.notebooks, Layout::Notebooks),
            (s.instances[0], Layout::Regional),
            (s.instances[1], Layout::Regional),
            (s.inference, Layout::Regional),
            (NOTEBOOK_CONTENT_ZONE, Layout::ApexOnly),
        ];
        for (zone, layout) in zones {
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
    }
    None
}

/// Whether `name` holds only what a workspace name may: letters, digits,
/// `-` and `_`. Anything else could not go into its notebooks label at all.
pub fn is_workspace_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Why Azure would not accept `name` (already [`is_workspace_name`]) as a
/// workspace or hub project name: it takes 3–33 characters, starting with a
/// letter or digit (the rule of the Azure portal and `az ml workspace create`).
pub fn workspace_name_issue(name: &str) -> Option<String> {
    let chars = name.chars().count();
    if !(3..=33).contains(&chars) {
        return Some(format!("has {chars} characters; Azure accepts 3 to 33"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("starts with neither a letter nor a digit".into());
    }
    None
}

/// Region short names per cloud, in the form `az account list-locations
/// --query "[].name"` prints them in that cloud: the physical regions, not
/// the `*stage`/`*euap` or geography names. Azure adds regions every year,
/// so a region missing here is only a warning, never an error.
const PUBLIC_REGIONS: &[&str] = &[
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
];

const CHINA_REGIONS: &[&str] = &[
    "chinaeast",
    "chinaeast2",
    "chinaeast3",
    "chinanorth",
    "chinanorth2",
    "chinanorth3",
];

const USGOV_REGIONS: &[&str] = &[
    "usgovvirginia",
    "usgovarizona",
    "usgovtexas",
    "usdodeast",
    "usdodcentral",
];

impl Cloud {
    /// The region short names of this cloud known when amldns was built.
    pub fn regions(self) -> &'static [&'static str] {
        match self {
            Cloud::Public => PUBLIC_REGIONS,
            Cloud::China => CHINA_REGIONS,
            Cloud::UsGov => USGOV_REGIONS,
        }
    }

    /// The cloud `region` (lower-case) is a known region of.
    pub fn of_region(region: &str) -> Option<Cloud> {
        Cloud::ALL
            .into_iter()
            .find(|c| c.regions().contains(&region))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = "fb7e20a0-8891-458b-b969-55ddb3382f51";

    fn ws(cloud: Cloud) -> Workspace {
        Workspace {
            name: "contoso-research-ml-workspace-001".into(),
            id: GUID.into(),
            region: "eastus".into(),
            cloud,
            ip: "10.1.0.5".parse().unwrap(),
            notebook_ip: "10.1.0.6".parse().unwrap(),
            inference_ip: "10.1.0.7".parse().unwrap(),
            notebook_fqdn: None,
            instances: vec![],
            instances_wildcard: false,
            online_endpoints: vec![],
            inference_wildcard: false,
            projects: vec![],
        }
    }

    fn answers(names: &[DerivedName]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|d| {
                let t = match &d.target {
                    Target::Addr(ip) => ip.to_string(),
                    Target::Alias(n) => format!("CNAME {n}"),
                };
                (d.name.clone(), t)
            })
            .collect()
    }

    fn has(names: &[DerivedName], name: &str, target: &str) -> bool {
        answers(names).iter().any(|(n, t)| n == name && t == target)
    }

    #[test]
    fn notebook_label_cut_worked_examples() {
        let cases = [
            // SPEC §1, verbatim.
            (
                "contoso-research-ml-workspace-001",
                "eastus",
                GUID,
                "ml-contoso-research-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51",
            ),
            (
                "contoso-research-ml-workspace-001",
                "australiaeast",
                GUID,
                "ml-contoso-r-australiaeast-fb7e20a0-8891-458b-b969-55ddb3382f51",
            ),
            (
                "mlworkspace-portal02",
                "eastus",
                "03ce50c0-2e18-48ad-9e4a-ca338f571072",
                "ml-mlworkspace-port-eastus-03ce50c0-2e18-48ad-9e4a-ca338f571072",
            ),
            // A name that fits is unchanged.
            (
                "mlw1",
                "eastus",
                GUID,
                "ml-mlw1-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51",
            ),
            // Long region: 22 - 18 = 4 characters of the name remain.
            (
                "contoso-research",
                "germanywestcentral",
                GUID,
                "ml-cont-germanywestcentral-fb7e20a0-8891-458b-b969-55ddb3382f51",
            ),
            // Upper-case input is lower-cased, and the cut counts characters.
            (
                "Contoso-Research-ML",
                "EastUS",
                "FB7E20A0-8891-458B-B969-55DDB3382F51",
                "ml-contoso-research-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51",
            ),
            // Exactly 16 characters in eastus: fits, unchanged.
            (
                "abcdefghijklmnop",
                "eastus",
                GUID,
                "ml-abcdefghijklmnop-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51",
            ),
        ];
        for (name, region, guid, want) in cases {
            let got = notebook_label(name, region, guid);
            assert_eq!(got, want, "{name} in {region}");
            assert!(got.len() <= MAX_LABEL, "{got} is {} long", got.len());
        }
    }

    #[test]
    fn every_cloud_gets_its_own_suffixes() {
        let cases = [
            (
                Cloud::Public,
                "api.azureml.ms",
                "notebooks.azure.net",
                "instances.azureml.ms",
                "instances.ml.azure.ms",
                "inference.ml.azure.com",
            ),
            (
                Cloud::China,
                "api.ml.azure.cn",
                "notebooks.chinacloudapi.cn",
                "instances.azureml.cn",
                "instances.ml.azure.cn",
                "inference.ml.azure.cn",
            ),
            (
                Cloud::UsGov,
                "api.ml.azure.us",
                "notebooks.usgovcloudapi.net",
                "instances.azureml.us",
                "instances.ml.azure.us",
                "inference.ml.azure.us",
            ),
        ];
        let nb = "ml-contoso-research-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51";
        for (cloud, api, notebooks, inst1, inst2, inference) in cases {
            let mut w = ws(cloud);
            w.instances = vec!["ci-alice".into()];
            w.online_endpoints = vec!["fraud-score".into()];
            let d = derive(&w, AnswerMode::A);
            let want = [
                (format!("{GUID}.workspace.eastus.{api}"), "10.1.0.5"),
                (format!("{GUID}.workspace.eastus.cert.{api}"), "10.1.0.5"),
                (
                    format!("{GUID}.workspace.eastus.privatelink.{api}"),
                    "10.1.0.5",
                ),
                (
                    format!("{GUID}.workspace.eastus.cert.privatelink.{api}"),
                    "10.1.0.5",
                ),
                (format!("{nb}.eastus.{notebooks}"), "10.1.0.6"),
                (format!("{nb}.{notebooks}"), "10.1.0.6"),
                (format!("{nb}.eastus.privatelink.{notebooks}"), "10.1.0.6"),
                (format!("ci-alice.eastus.{inst1}"), "10.1.0.5"),
                (format!("ci-alice-22.eastus.{inst1}"), "10.1.0.5"),
                (format!("ci-alice.eastus.{inst2}"), "10.1.0.5"),
                (format!("ci-alice-22.eastus.{inst2}"), "10.1.0.5"),
                (format!("fraud-score.eastus.{inference}"), "10.1.0.7"),
                (
                    format!("fraud-score.{GUID}.inference.eastus.privatelink.{api}"),
                    "10.1.0.7",
                ),
            ];
            for (name, ip) in &want {
                assert!(
                    has(&d, name, ip),
                    "{cloud:?}: missing {name} -> {ip} in {d:#?}"
                );
            }
            assert_eq!(d.len(), want.len(), "{cloud:?}: unexpected extra names");
        }
    }

    #[test]
    fn cname_mode_follows_azures_chain() {
        let mut w = ws(Cloud::Public);
        w.online_endpoints = vec!["fraud-score".into()];
        w.instances = vec!["ci-1".into()];
        let d = derive(&w, AnswerMode::Cname);
        let nb = "ml-contoso-research-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51";
        let cases = [
            (
                format!("{GUID}.workspace.eastus.api.azureml.ms"),
                format!("CNAME {GUID}.workspace.eastus.privatelink.api.azureml.ms"),
            ),
            (
                format!("{GUID}.workspace.eastus.cert.api.azureml.ms"),
                format!("CNAME {GUID}.workspace.eastus.cert.privatelink.api.azureml.ms"),
            ),
            (
                format!("{nb}.eastus.notebooks.azure.net"),
                format!("CNAME {nb}.eastus.privatelink.notebooks.azure.net"),
            ),
            (
                format!("{nb}.notebooks.azure.net"),
                format!("CNAME {nb}.eastus.privatelink.notebooks.azure.net"),
            ),
            (
                "fraud-score.eastus.inference.ml.azure.com".to_string(),
                format!("CNAME fraud-score.{GUID}.inference.eastus.privatelink.api.azureml.ms"),
            ),
            (
                format!("{GUID}.workspace.eastus.privatelink.api.azureml.ms"),
                "10.1.0.5".to_string(),
            ),
            // Instances have no private-link form: always an address.
            (
                "ci-1.eastus.instances.azureml.ms".to_string(),
                "10.1.0.5".to_string(),
            ),
        ];
        for (name, target) in cases {
            assert!(has(&d, &name, &target), "missing {name} -> {target}");
        }
    }

    #[test]
    fn wildcards_are_opt_in() {
        let w = ws(Cloud::Public);
        let d = derive(&w, AnswerMode::A);
        assert!(d.iter().all(|n| !n.name.starts_with("*.")));

        let mut w = ws(Cloud::UsGov);
        w.instances_wildcard = true;
        w.inference_wildcard = true;
        let d = derive(&w, AnswerMode::A);
        assert!(has(&d, "*.eastus.instances.azureml.us", "10.1.0.5"));
        assert!(has(&d, "*.eastus.instances.ml.azure.us", "10.1.0.5"));
        assert!(has(&d, "*.eastus.inference.ml.azure.us", "10.1.0.7"));
        assert!(has(
            &d,
            &format!("*.{GUID}.inference.eastus.privatelink.api.ml.azure.us"),
            "10.1.0.7"
        ));
    }

    #[test]
    fn hub_projects_get_their_own_names_on_the_hubs_ips() {
        let mut w = ws(Cloud::Public);
        w.projects = vec![Project {
            name: "proj-a".into(),
            id: "0d5c2f4e-1111-2222-3333-444455556666".into(),
        }];
        let d = derive(&w, AnswerMode::A);
        let p = "0d5c2f4e-1111-2222-3333-444455556666";
        assert!(has(
            &d,
            &format!("{p}.workspace.eastus.api.azureml.ms"),
            "10.1.0.5"
        ));
        assert!(has(
            &d,
            &format!("{p}.workspace.eastus.cert.api.azureml.ms"),
            "10.1.0.5"
        ));
        assert!(has(
            &d,
            &format!("ml-proj-a-eastus-{p}.eastus.notebooks.azure.net"),
            "10.1.0.6"
        ));
        // The hub keeps its own names too.
        assert!(has(
            &d,
            &format!("{GUID}.workspace.eastus.api.azureml.ms"),
            "10.1.0.5"
        ));
    }

    #[test]
    fn notebook_fqdn_overrides_the_derived_label() {
        let mut w = ws(Cloud::Public);
        w.notebook_fqdn = Some(format!(
            "ml-contoso_research-eastus-{GUID}.eastus.notebooks.azure.net"
        ));
        let d = derive(&w, AnswerMode::A);
        let label = format!("ml-contoso_research-eastus-{GUID}");
        assert!(has(
            &d,
            &format!("{label}.eastus.notebooks.azure.net"),
            "10.1.0.6"
        ));
        assert!(has(&d, &format!("{label}.notebooks.azure.net"), "10.1.0.6"));
        assert!(has(
            &d,
            &format!("{label}.eastus.privatelink.notebooks.azure.net"),
            "10.1.0.6"
        ));
        assert!(!d.iter().any(|n| n.name.starts_with("ml-contoso-research-")));
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

    /// Forwarding these zones is enough: every name amldns derives, in both
    /// answer modes and with every option on, sits at or below one of them.
    #[test]
    fn forwarder_zones_cover_every_derived_name() {
        for cloud in Cloud::ALL {
            let mut w = ws(cloud);
            w.instances = vec!["ci-1".into()];
            w.instances_wildcard = true;
            w.online_endpoints = vec!["ep".into()];
            w.inference_wildcard = true;
            w.projects = vec![Project {
                name: "p".into(),
                id: "0d5c2f4e-1111-2222-3333-444455556666".into(),
            }];
            for mode in [AnswerMode::A, AnswerMode::Cname] {
                for d in derive(&w, mode) {
                    let name = d.name.strip_prefix("*.").unwrap_or(&d.name);
                    assert!(
                        cloud
                            .forwarder_zones()
                            .iter()
                            .any(|z| is_at_or_below(name, z)),
                        "{} ({cloud:?}) is under no forwarder zone",
                        d.name
                    );
                }
            }
        }
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
        for cloud in Cloud::ALL {
            for d in derive(&ws(cloud), AnswerMode::A) {
                assert_eq!(apex_of(&d.name), d.zone, "{}", d.name);
            }
        }
    }

    #[test]
    fn workspace_shaped_names() {
        let cases = [
            (
                format!("{GUID}.workspace.eastus.api.azureml.ms"),
                Some(GUID),
            ),
            (
                format!("{GUID}.workspace.eastus.cert.api.ml.azure.cn"),
                Some(GUID),
            ),
            (
                format!("ml-contoso-eastus-{GUID}.eastus.notebooks.azure.net"),
                Some(GUID),
            ),
            ("eastus.api.azureml.ms".to_string(), None),
            ("ml.azure.com".to_string(), None),
            (
                "not-a-uuid.workspace.eastus.api.azureml.ms".to_string(),
                None,
            ),
        ];
        for (name, want) in cases {
            assert_eq!(workspace_id_in(&name), want, "{name}");
        }
    }

    #[test]
    fn labels_and_uuids() {
        assert!(is_uuid(GUID));
        assert!(is_uuid(&GUID.to_uppercase()));
        assert!(!is_uuid("fb7e20a0-8891-458b-b969-55ddb3382f5"));
        assert!(!is_uuid("fb7e20a0x8891-458b-b969-55ddb3382f51"));
        assert!(is_host_label("eastus"));
        assert!(is_host_label("ci-alice"));
        assert!(!is_host_label("-ci"));
        assert!(!is_host_label("ci_alice"));
        assert!(!is_host_label(""));
        assert!(!is_host_label(&"a".repeat(64)));
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

    #[test]
    fn name_keys() {
        let k = |labels: &[&[u8]]| {
            NameKey::from_labels(labels.iter().copied()).map(|k| k.as_str().to_string())
        };
        assert_eq!(
            k(&[b"WWW", b"Example", b"COM"]).as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            k(&[b"a.b", b"c"]),
            None,
            "a label holding a dot must not match two labels"
        );
        assert_eq!(k(&[b"\xc3\xa9", b"c"]), None);
        assert_eq!(k(&[]), None);
        let long: Vec<&[u8]> = std::iter::repeat_n(&b"abcdefghij"[..], 30).collect();
        assert_eq!(k(&long), None);
        let key = NameKey::from_labels([&b"A"[..], b"Bc"].into_iter()).unwrap();
        assert_eq!(key.labels().collect::<Vec<_>>(), [&b"a"[..], b"bc"]);
    }

    /// A name in wire form keys as its labels do.
    #[test]
    fn wire_name_keys() {
        let k = |wire: &[u8]| {
            let mut key = NameKey::empty();
            key.set_wire(wire).then(|| key.as_str().to_string())
        };
        assert_eq!(
            k(b"\x03WWW\x07Example\x03COM").as_deref(),
            Some("www.example.com")
        );
        assert_eq!(k(b"\x01a").as_deref(), Some("a"));
        assert_eq!(k(b"\x03a.b\x01c"), None, "a label holding a dot");
        assert_eq!(k(b"\x02\xc3\xa9\x01c"), None);
        assert_eq!(k(b""), None);
        assert_eq!(k(b"\x03ab"), None, "a label past the end");
        assert_eq!(k(b"\x01a\x05bc"), None, "a label past the end");
        let mut long = Vec::new();
        for _ in 0..30 {
            long.push(10);
            long.extend_from_slice(b"abcdefghij");
        }
        assert_eq!(k(&long), None);
        assert_eq!(k(&long[..23 * 11]).map(|n| n.len()), Some(23 * 11 - 1));
    }

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
            // Names outside the Azure ML zones.
            ("stcontoso.blob.core.windows.net".into(), None),
            ("*.apps.corp.example".into(), None),
            ("studio.ml.azure.com".into(), None),
            ("xapi.azureml.ms".into(), None),
        ];
        for (name, want) in cases {
            assert_eq!(captures_public(&name), want, "{name}");
        }
    }

    #[test]
    fn workspace_names_azure_accepts() {
        let cases = [
            ("mlw-contoso-prod", None),
            ("mlw_contoso_prod", None),
            ("MLW1", None),
            ("9lives", None),
            (&"a".repeat(33)[..], None),
            ("ab", Some("has 2 characters; Azure accepts 3 to 33")),
            (
                &"a".repeat(56)[..],
                Some("has 56 characters; Azure accepts 3 to 33"),
            ),
            ("-mlw", Some("starts with neither a letter nor a digit")),
            ("_mlw", Some("starts with neither a letter nor a digit")),
        ];
        for (name, want) in cases {
            assert!(is_workspace_name(name), "{name}");
            assert_eq!(workspace_name_issue(name).as_deref(), want, "{name}");
        }
        assert!(!is_workspace_name("mlw.prod"));
        assert!(!is_workspace_name("mlw contoso"));
        assert!(!is_workspace_name(""));
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
