//! The zone table: every local name and its answer, compiled once from a
//! [`Config`] into an immutable structure that the handler reads per query.
//!
//! Pure: no I/O, no DNS library types. Lookups take a lower-case name without
//! the final dot (see [`NameKey`]) and do not allocate unless the answer is a
//! CNAME chain.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::{Config, ConfigError, Location, RecordAnswer};
use crate::names::{self, Target};

/// RFC 1034 leaves chain length open; resolvers give up around 8–16 hops
/// (BIND: 16, Unbound: 11). SPEC §3 fixes ours at 11.
pub const MAX_CHAIN: usize = 11;

/// What a local name answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Addrs {
        v4: Box<[Ipv4Addr]>,
        v6: Box<[Ipv6Addr]>,
    },
    Alias(Box<str>),
}

impl Data {
    fn from_addrs(addrs: &[IpAddr]) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for a in addrs {
            match a {
                IpAddr::V4(a) => v4.push(*a),
                IpAddr::V6(a) => v6.push(*a),
            }
        }
        Data::Addrs {
            v4: v4.into(),
            v6: v6.into(),
        }
    }
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Addrs { v4, v6 } => {
                let all: Vec<String> = v4
                    .iter()
                    .map(ToString::to_string)
                    .chain(v6.iter().map(ToString::to_string))
                    .collect();
                f.write_str(&all.join(", "))
            }
            Data::Alias(t) => write!(f, "CNAME {t}"),
        }
    }
}

/// Where names came from: a workspace, a `[[record]]` or an import file, and
/// the place it was written. Shared by all the names it gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub kind: OriginKind,
    pub at: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginKind {
    /// The workspace's name.
    Workspace(String),
    Record,
    Import,
}

/// One name of the table.
#[derive(Debug, Clone)]
pub struct Node {
    /// Lower-case, no final dot; `*.` first for a wildcard.
    pub name: Box<str>,
    pub data: Data,
    pub ttl: u32,
    /// Index into the table's zone apexes.
    apex: u32,
    /// Index into the table's origins.
    origin: u32,
    /// What a workspace's name is for.
    pub purpose: Option<names::Purpose>,
}

/// The record types the table distinguishes; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QType {
    A,
    Aaaa,
    Cname,
    /// RFC 8482 lets us answer ANY with what we have.
    Any,
    Other,
}

/// The outcome of looking a name up in the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'t> {
    /// Not ours: forward it.
    NotLocal,
    Local(Answer<'t>),
}

/// A local answer: CNAME steps (if any), then how it ends.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer<'t> {
    /// CNAME targets in order, with the TTL of the CNAME record. The first
    /// step's owner is the query name, each next one's the previous target.
    pub chain: Vec<(&'t str, u32)>,
    pub end: End<'t>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum End<'t> {
    /// Addresses of the last name, of the asked type.
    Addrs {
        v4: &'t [Ipv4Addr],
        v6: &'t [Ipv6Addr],
        ttl: u32,
    },
    /// The last name exists but has no data of the asked type: NODATA with
    /// the SOA of this zone apex (RFC 2308 §2.2).
    NoData { apex: &'t str },
    /// The asked type was CNAME: the chain is the answer.
    Chain,
    /// The chain leaves the table at this name: resolve it upstream (SPEC §3).
    Forward(&'t str),
}

/// A synthesized SOA: owner and MNAME are the apex, RNAME `hostmaster.<apex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Soa<'a> {
    pub apex: &'a str,
    pub serial: u32,
    pub refresh: i32,
    pub retry: i32,
    pub expire: i32,
    pub minimum: u32,
}

/// The compiled table. Immutable: reload builds a new one and swaps it in.
#[derive(Debug)]
pub struct ZoneTable {
    generation: u64,
    /// Sorted by name.
    nodes: Vec<Node>,
    exact: HashMap<Box<str>, u32>,
    /// Wildcard nodes by the parent they stand under (`*.x` → `x`).
    wildcards: HashMap<Box<str>, u32>,
    apexes: Vec<Box<str>>,
    origins: Vec<Origin>,
    /// TTL of negative answers (the SOA minimum).
    negative_ttl: u32,
}

impl ZoneTable {
    /// Compiles every name `config` gives. Fails, with the location of the
    /// later definition, when one name is given two different answers, or a
    /// CNAME chain inside the table loops or is longer than [`MAX_CHAIN`].
    pub fn compile(config: &Config, generation: u64) -> Result<Self, ConfigError> {
        let ttl = config.zone.ttl;
        let mut entries: Vec<Node> = Vec::new();
        let mut zones: Vec<String> = Vec::new();
        let mut origins: Vec<Origin> = Vec::new();
        let mut push = |name: String, data: Data, ttl: u32, zone: &str, purpose| {
            let apex = match zones.iter().position(|z| z == zone) {
                Some(i) => i,
                None => {
                    zones.push(zone.to_string());
                    zones.len() - 1
                }
            };
            entries.push(Node {
                name: name.into(),
                data,
                ttl,
                apex: apex as u32,
                // The origin pushed last is this entry's.
                origin: 0,
                purpose,
            });
        };
        let mut origin_of = Vec::new();
        for ws in &config.workspaces {
            origins.push(Origin {
                kind: OriginKind::Workspace(ws.value.name.clone()),
                at: ws.at.clone(),
            });
            for d in names::derive(&ws.value, config.zone.answer) {
                let data = match d.target {
                    Target::Addr(ip) => Data::from_addrs(&[ip]),
                    Target::Alias(t) => Data::Alias(t.into()),
                };
                push(d.name, data, ttl, d.zone, Some(d.purpose));
                origin_of.push(origins.len() - 1);
            }
        }
        for r in &config.records {
            origins.push(Origin {
                kind: OriginKind::Record,
                at: r.at.clone(),
            });
            let data = match &r.value.answer {
                RecordAnswer::Addrs(a) => Data::from_addrs(a),
                RecordAnswer::Cname(t) => Data::Alias(t.as_str().into()),
            };
            let zone = names::apex_of(&r.value.name);
            push(
                r.value.name.clone(),
                data,
                r.value.ttl.unwrap_or(ttl),
                &zone,
                None,
            );
            origin_of.push(origins.len() - 1);
        }
        for i in &config.imports {
            origins.push(Origin {
                kind: OriginKind::Import,
                at: i.at.clone(),
            });
            let zone = names::apex_of(&i.name);
            push(i.name.clone(), Data::from_addrs(&i.addrs), ttl, &zone, None);
            origin_of.push(origins.len() - 1);
        }
        for (e, o) in entries.iter_mut().zip(origin_of) {
            e.origin = o as u32;
        }

        // Sorted by name, definitions of one name in the order written.
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut nodes = Vec::new();
        for group in entries.chunk_by(|a, b| a.name == b.name) {
            nodes.push(pick(group, &entries, &origins)?);
        }

        let mut table = ZoneTable {
            generation,
            exact: HashMap::with_capacity(nodes.len()),
            wildcards: HashMap::new(),
            apexes: zones.into_iter().map(Into::into).collect(),
            origins,
            negative_ttl: ttl,
            nodes,
        };
        for (i, n) in table.nodes.iter().enumerate() {
            match n.name.strip_prefix("*.") {
                Some(parent) => table.wildcards.insert(parent.into(), i as u32),
                None => table.exact.insert(n.name.clone(), i as u32),
            };
        }
        table.check_chains()?;
        Ok(table)
    }

    /// Every CNAME chain inside the table must end within [`MAX_CHAIN`] hops.
    fn check_chains(&self) -> Result<(), ConfigError> {
        for node in &self.nodes {
            let Data::Alias(first) = &node.data else {
                continue;
            };
            let mut target: &str = first;
            let mut hops = 1;
            while let Some(next) = self.find(target) {
                let Data::Alias(t) = &next.data else { break };
                hops += 1;
                if hops > MAX_CHAIN || t.as_ref() == node.name.as_ref() {
                    return Err(ConfigError::Invalid {
                        at: self.origin(node).at.clone(),
                        message: format!(
                            "CNAME chain from {} loops or is longer than {MAX_CHAIN} hops",
                            node.name
                        ),
                    });
                }
                target = t;
            }
        }
        Ok(())
    }

    /// The table's generation: 1 for the first table, one more per reload.
    /// Negative answers use it as the SOA serial.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The SOA of a zone apex, synthesized: amldns is the only server of
    /// these names, so the timers only matter to someone loading
    /// `amldns records --format zone` elsewhere.
    pub fn soa<'a>(&self, apex: &'a str) -> Soa<'a> {
        Soa {
            apex,
            // RFC 1982 serials are 32-bit and wrap.
            serial: self.generation as u32,
            refresh: 3600,
            retry: 600,
            expire: 86_400,
            // The TTL of negative answers (RFC 2308 §4).
            minimum: self.negative_ttl,
        }
    }

    /// Every local name, sorted.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The zone apex of `node`.
    pub fn apex(&self, node: &Node) -> &str {
        &self.apexes[node.apex as usize]
    }

    /// Where `node` was defined.
    pub fn origin(&self, node: &Node) -> &Origin {
        &self.origins[node.origin as usize]
    }

    /// What gave `node`, e.g. "workspace mlw-contoso (api)", "record", "import".
    pub fn source(&self, node: &Node) -> String {
        describe(node, &self.origins)
    }

    /// The node answering `name` (lower-case, no final dot): an exact name
    /// first, then a wildcard one label up (SPEC §3).
    pub fn find(&self, name: &str) -> Option<&Node> {
        if let Some(&i) = self.exact.get(name) {
            return Some(&self.nodes[i as usize]);
        }
        let (_, parent) = name.split_once('.')?;
        self.wildcards.get(parent).map(|&i| &self.nodes[i as usize])
    }

    /// True when `name` is a local name (wildcard matches included).
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Answers `qtype` for `qname` (lower-case, no final dot) from the table.
    pub fn lookup(&self, qname: &str, qtype: QType) -> Lookup<'_> {
        let Some(mut node) = self.find(qname) else {
            return Lookup::NotLocal;
        };
        let mut chain = Vec::new();
        loop {
            match &node.data {
                Data::Alias(target) => {
                    chain.push((target.as_ref(), node.ttl));
                    if qtype == QType::Cname {
                        return Lookup::Local(Answer {
                            chain,
                            end: End::Chain,
                        });
                    }
                    match self.find(target) {
                        // compile() bounds chains; this guards the loop anyway.
                        Some(next) if chain.len() <= MAX_CHAIN => node = next,
                        _ => {
                            return Lookup::Local(Answer {
                                chain,
                                end: End::Forward(target),
                            });
                        }
                    }
                }
                Data::Addrs { v4, v6 } => {
                    let end = match qtype {
                        QType::A if !v4.is_empty() => End::Addrs {
                            v4,
                            v6: &[],
                            ttl: node.ttl,
                        },
                        QType::Aaaa if !v6.is_empty() => End::Addrs {
                            v4: &[],
                            v6,
                            ttl: node.ttl,
                        },
                        QType::Any => End::Addrs {
                            v4,
                            v6,
                            ttl: node.ttl,
                        },
                        _ => End::NoData {
                            apex: self.apex(node),
                        },
                    };
                    return Lookup::Local(Answer { chain, end });
                }
            }
        }
    }
}

/// One node for a name given by several entries: identical answers merge; an
/// alias and addresses agree when the alias leads to those same addresses
/// (a derived `cname`-mode name and an imported A record, say), and the alias
/// is kept; anything else is an error at the later entry.
fn pick(group: &[Node], sorted: &[Node], origins: &[Origin]) -> Result<Node, ConfigError> {
    let first = &group[0];
    let mut kept = first;
    // The first definition of `name`, found in the sorted entries.
    let defined = |name: &str| {
        let i = sorted.partition_point(|e| e.name.as_ref() < name);
        sorted.get(i).filter(|e| e.name.as_ref() == name)
    };
    for other in &group[1..] {
        let agree = |a: &Node, b: &Node| {
            a.data == b.data
                || matches!(&a.data, Data::Alias(t) if defined(t).is_some_and(|d| d.data == b.data))
        };
        if agree(kept, other) {
            continue;
        }
        if agree(other, kept) {
            kept = other;
            continue;
        }
        let (a, b) = (
            &origins[first.origin as usize],
            &origins[other.origin as usize],
        );
        let hint = match (&a.kind, &b.kind) {
            (OriginKind::Workspace(_), OriginKind::Workspace(_))
                if first.name.starts_with("*.") =>
            {
                ": two workspaces in one region ask for this wildcard with different IPs; \
                 list their instances/online_endpoints by name instead"
            }
            _ => "",
        };
        return Err(ConfigError::Invalid {
            at: b.at.clone(),
            message: format!(
                "{} is given two different answers: {} here ({}), but {} at {} ({}){hint}",
                other.name,
                other.data,
                describe(other, origins),
                first.data,
                a.at,
                describe(first, origins)
            ),
        });
    }
    Ok(kept.clone())
}

fn describe(node: &Node, origins: &[Origin]) -> String {
    match (&origins[node.origin as usize].kind, node.purpose) {
        (OriginKind::Workspace(name), Some(p)) => format!("workspace {name} ({})", p.as_str()),
        (OriginKind::Workspace(name), None) => format!("workspace {name}"),
        (OriginKind::Record, _) => "record".into(),
        (OriginKind::Import, _) => "import".into(),
    }
}

/// A query name as the table keys it: lower-case ASCII, labels joined by `.`,
/// no final dot; built on the stack so a lookup does not allocate.
pub struct NameKey {
    buf: [u8; 255],
    len: usize,
}

impl fmt::Debug for NameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NameKey").field(&self.as_str()).finish()
    }
}

impl NameKey {
    /// `None` when the name cannot be local: a label holding a `.` or a
    /// non-ASCII byte (our names have neither), or the root.
    pub fn from_labels<'a>(labels: impl Iterator<Item = &'a [u8]>) -> Option<Self> {
        let mut key = NameKey {
            buf: [0; 255],
            len: 0,
        };
        for label in labels {
            let sep = usize::from(key.len > 0);
            if key.len + sep + label.len() > key.buf.len() {
                return None;
            }
            if sep == 1 {
                key.buf[key.len] = b'.';
                key.len += 1;
            }
            for &c in label {
                if c == b'.' || !c.is_ascii() {
                    return None;
                }
                key.buf[key.len] = c.to_ascii_lowercase();
                key.len += 1;
            }
        }
        (key.len > 0).then_some(key)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use std::path::Path;

    fn table(text: &str) -> ZoneTable {
        let c = config::parse(Path::new("t.toml"), text).unwrap();
        ZoneTable::compile(&c, 7).unwrap()
    }

    fn compile_err(text: &str) -> String {
        let c = config::parse(Path::new("t.toml"), text).unwrap();
        ZoneTable::compile(&c, 1).unwrap_err().to_string()
    }

    const G: &str = "fb7e20a0-8891-458b-b969-55ddb3382f51";

    fn ws(extra: &str) -> String {
        format!(
            "[[workspace]]\nname = \"mlw\"\nid = \"{G}\"\nregion = \"eastus\"\nip = \"10.1.0.5\"\n\
             inference_ip = \"10.1.0.7\"\n{extra}\n"
        )
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn lookup_table() {
        let t = table(&format!(
            "{}[[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.9\"]\n\
             aaaa = [\"fd00::9\"]\n\
             [[record]]\nname = \"alias.corp.example\"\ncname = \"st.privatelink.blob.core.windows.net\"\n\
             [[record]]\nname = \"out.corp.example\"\ncname = \"www.example.com\"\n",
            ws("instances_wildcard = true\ninstances = [\"ci-1\"]")
        ));
        let api = format!("{G}.workspace.eastus.api.azureml.ms");
        let a5 = [v4("10.1.0.5")];
        let a9 = [v4("10.1.0.9")];
        let six: [Ipv6Addr; 1] = ["fd00::9".parse().unwrap()];
        let st = "st.privatelink.blob.core.windows.net";
        let local = |chain: Vec<(&'static str, u32)>, end| Lookup::Local(Answer { chain, end });
        let addrs = |v4, v6| End::Addrs { v4, v6, ttl: 60 };
        let nodata = |apex| End::NoData { apex };
        let cases: Vec<(&str, QType, Lookup)> = vec![
            (&api, QType::A, local(vec![], addrs(&a5, &[]))),
            (&api, QType::Aaaa, local(vec![], nodata("api.azureml.ms"))),
            (&api, QType::Other, local(vec![], nodata("api.azureml.ms"))),
            ("eastus.api.azureml.ms", QType::A, Lookup::NotLocal),
            ("api.azureml.ms", QType::A, Lookup::NotLocal),
            ("ml.azure.com", QType::A, Lookup::NotLocal),
            (
                "anything.eastus.instances.azureml.ms",
                QType::A,
                local(vec![], addrs(&a5, &[])),
            ),
            // One label only: not the apex, not deeper.
            ("eastus.instances.azureml.ms", QType::A, Lookup::NotLocal),
            (
                "a.b.eastus.instances.azureml.ms",
                QType::A,
                Lookup::NotLocal,
            ),
            (st, QType::Aaaa, local(vec![], addrs(&[], &six))),
            (st, QType::Any, local(vec![], addrs(&a9, &six))),
            (
                "alias.corp.example",
                QType::A,
                local(vec![(st, 60)], addrs(&a9, &[])),
            ),
            (
                "alias.corp.example",
                QType::Cname,
                local(vec![(st, 60)], End::Chain),
            ),
            (
                "alias.corp.example",
                QType::Other,
                local(vec![(st, 60)], nodata("privatelink.blob.core.windows.net")),
            ),
            (
                "out.corp.example",
                QType::A,
                local(
                    vec![("www.example.com", 60)],
                    End::Forward("www.example.com"),
                ),
            ),
        ];
        for (name, qtype, want) in cases {
            assert_eq!(t.lookup(name, qtype), want, "{name} {qtype:?}");
        }
        assert_eq!(t.generation(), 7);
    }

    #[test]
    fn exact_name_wins_over_wildcard() {
        let t = table(
            "[[record]]\nname = \"*.apps.corp.example\"\na = [\"10.0.0.1\"]\n\
             [[record]]\nname = \"db.apps.corp.example\"\na = [\"10.0.0.2\"]\n",
        );
        let a = |n: &str| match t.lookup(n, QType::A) {
            Lookup::Local(Answer {
                end: End::Addrs { v4, .. },
                ..
            }) => v4[0].to_string(),
            other => panic!("{n}: {other:?}"),
        };
        assert_eq!(a("db.apps.corp.example"), "10.0.0.2");
        assert_eq!(a("web.apps.corp.example"), "10.0.0.1");
    }

    #[test]
    fn cname_mode_chains_inside_the_table() {
        let t = table(&format!("[zone]\nanswer = \"cname\"\nttl = 30\n{}", ws("")));
        let api = format!("{G}.workspace.eastus.api.azureml.ms");
        let pl = format!("{G}.workspace.eastus.privatelink.api.azureml.ms");
        let a5 = [v4("10.1.0.5")];
        assert_eq!(
            t.lookup(&api, QType::A),
            Lookup::Local(Answer {
                chain: vec![(pl.as_str(), 30)],
                end: End::Addrs {
                    v4: &a5,
                    v6: &[],
                    ttl: 30
                },
            })
        );
    }

    #[test]
    fn same_answer_twice_merges_and_different_answers_fail() {
        // A record repeating a derived name with the same IP is fine.
        let t = table(&format!(
            "{}[[record]]\nname = \"{G}.workspace.eastus.api.azureml.ms\"\na = [\"10.1.0.5\"]\n",
            ws("")
        ));
        assert!(t.contains(&format!("{G}.workspace.eastus.api.azureml.ms")));

        let e = compile_err(&format!(
            "{}[[record]]\nname = \"{G}.workspace.eastus.api.azureml.ms\"\na = [\"10.9.9.9\"]\n",
            ws("")
        ));
        assert!(e.starts_with("t.toml:9:8: "), "{e}");
        assert!(
            e.contains("two different answers: 10.9.9.9 here (record), but 10.1.0.5 at t.toml:3:6"),
            "{e}"
        );
    }

    #[test]
    fn conflicting_wildcards_from_two_workspaces() {
        let other =
            "[[workspace]]\nname = \"mlw2\"\nid = \"0d5c2f4e-1111-2222-3333-444455556666\"\n\
             region = \"eastus\"\nip = \"10.2.0.5\"\ninstances_wildcard = true\n"
                .to_string();
        let e = compile_err(&format!("{}{other}", ws("instances_wildcard = true")));
        assert!(
            e.contains("*.eastus.instances.azureml.ms is given two different answers"),
            "{e}"
        );
        assert!(e.contains("list their instances"), "{e}");
        // Different regions do not clash.
        let fine = other.replace("\"eastus\"", "\"westus\"");
        table(&format!("{}{fine}", ws("instances_wildcard = true")));
    }

    #[test]
    fn cname_loops_and_long_chains_are_rejected() {
        let e = compile_err(
            "[[record]]\nname = \"a.x.example\"\ncname = \"b.x.example\"\n\
             [[record]]\nname = \"b.x.example\"\ncname = \"a.x.example\"\n",
        );
        assert!(e.contains("loops or is longer than 11"), "{e}");

        let mut text = String::new();
        for i in 0..12 {
            text += &format!(
                "[[record]]\nname = \"n{i}.x.example\"\ncname = \"n{}.x.example\"\n",
                i + 1
            );
        }
        assert!(compile_err(&text).contains("longer than 11"));
        // 11 hops is allowed.
        let mut ok = String::new();
        for i in 0..10 {
            ok += &format!(
                "[[record]]\nname = \"n{i}.x.example\"\ncname = \"n{}.x.example\"\n",
                i + 1
            );
        }
        ok += "[[record]]\nname = \"n10.x.example\"\ncname = \"n11.x.example\"\n";
        ok += "[[record]]\nname = \"n11.x.example\"\na = [\"10.0.0.1\"]\n";
        let t = table(&ok);
        match t.lookup("n0.x.example", QType::A) {
            Lookup::Local(a) => assert_eq!(a.chain.len(), 11),
            other => panic!("{other:?}"),
        }
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
    }
}
