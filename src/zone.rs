//! The zone table: every local name and its answer, compiled once from the
//! [`Source`]s of a configuration into an immutable structure that the
//! handler reads per query.
//!
//! Pure: no I/O, no DNS library types, no configuration file. Lookups take a
//! lower-case name without the final dot (see [`names::NameKey`]) and do not
//! allocate unless the answer is a chain of more than one CNAME.
//!
//! Laid out for size (10,000 workspaces are 130,000 names): names and
//! addresses sit in a few large pools that nodes point into, and the name
//! index holds node numbers, not copies of the names. A table is then a
//! handful of allocations, quick to build and to free, that a reload does not
//! leave scattered over the heap.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use crate::diagnostics::{ConfigError, Location};
use crate::names::{self, AnswerMode, Target, Workspace};

/// RFC 1034 leaves chain length open; resolvers give up around 8–16 hops
/// (BIND: 16, Unbound: 11). Ours is 11, Unbound's.
pub const MAX_CHAIN: usize = 11;

/// What a local name answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data<'t> {
    Addrs {
        v4: &'t [Ipv4Addr],
        v6: &'t [Ipv6Addr],
    },
    Alias(&'t str),
}

impl fmt::Display for Data<'_> {
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
    /// Listed by an Azure resource's private endpoint (`[azure]` discovery).
    Azure,
}

/// One name of the table, as lookups and `amldns records` see it.
#[derive(Debug, Clone, Copy)]
pub struct Node<'t> {
    /// Lower-case, no final dot; `*.` first for a wildcard.
    pub name: &'t str,
    pub data: Data<'t>,
    pub ttl: u32,
    /// What a workspace's name is for.
    pub purpose: Option<names::Purpose>,
    /// Index into the table's zone apexes.
    apex: u32,
    /// Index into the table's origins.
    origin: u32,
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
    pub chain: Chain<'t>,
    pub end: End<'t>,
}

/// The CNAME steps of an [`Answer`], read as a slice. One step, the shape
/// of every public name under `answer = "cname"`, is kept in place, so
/// that the fast path answers it without allocating.
#[derive(Debug, Clone, Default)]
pub enum Chain<'t> {
    #[default]
    Empty,
    One((&'t str, u32)),
    Many(Vec<(&'t str, u32)>),
}

impl<'t> Chain<'t> {
    fn push(&mut self, step: (&'t str, u32)) {
        *self = match std::mem::take(self) {
            Chain::Empty => Chain::One(step),
            Chain::One(first) => Chain::Many(vec![first, step]),
            Chain::Many(mut steps) => {
                steps.push(step);
                Chain::Many(steps)
            }
        };
    }
}

impl<'t> std::ops::Deref for Chain<'t> {
    type Target = [(&'t str, u32)];

    fn deref(&self) -> &Self::Target {
        match self {
            Chain::Empty => &[],
            Chain::One(step) => std::slice::from_ref(step),
            Chain::Many(steps) => steps,
        }
    }
}

impl<'a, 't> IntoIterator for &'a Chain<'t> {
    type Item = &'a (&'t str, u32);
    type IntoIter = std::slice::Iter<'a, (&'t str, u32)>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The same steps, however they are kept.
impl PartialEq for Chain<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Chain<'_> {}

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
    /// The chain leaves the table at this name: resolve it upstream.
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

/// A run of one of the [`Pool`]'s vectors. 32 bits each: [`Pool::fits`]
/// holds the pools under 4 Gi items, which halves the size of every node.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// `start..end`, cut to 32 bits (see [`Pool::fits`]).
    fn new(start: usize, end: usize) -> Self {
        Span {
            start: start as u32,
            len: (end - start) as u32,
        }
    }

    fn range(self) -> Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

/// [`Data`] as stored: runs of the pool.
#[derive(Debug, Clone, Copy)]
enum Stored {
    Addrs { v4: Span, v6: Span },
    Alias(Span),
}

/// [`Node`] as stored.
#[derive(Debug, Clone, Copy)]
struct Entry {
    name: Span,
    data: Stored,
    ttl: u32,
    apex: u32,
    origin: u32,
    purpose: Option<names::Purpose>,
}

/// Every name, CNAME target and address of a table, each kind in one vector.
#[derive(Debug, Default)]
struct Pool {
    text: String,
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
}

impl Pool {
    fn push_str(&mut self, s: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(s);
        Span::new(start, self.text.len())
    }

    fn push_addrs(&mut self, addrs: &[IpAddr]) -> Stored {
        let (v4, v6) = (self.v4.len(), self.v6.len());
        for a in addrs {
            match a {
                IpAddr::V4(a) => self.v4.push(*a),
                IpAddr::V6(a) => self.v6.push(*a),
            }
        }
        Stored::Addrs {
            v4: Span::new(v4, self.v4.len()),
            v6: Span::new(v6, self.v6.len()),
        }
    }

    /// Whether every run can be told by 32-bit offsets; checked before any
    /// [`Span`] is read, so a truncated one never is.
    fn fits(&self) -> bool {
        [self.text.len(), self.v4.len(), self.v6.len()]
            .iter()
            .all(|&n| u32::try_from(n).is_ok())
    }

    // `str` and `data` are on every query's path, where LLVM left them calls.
    #[inline]
    fn str(&self, s: Span) -> &str {
        &self.text[s.range()]
    }

    #[inline]
    fn data(&self, d: Stored) -> Data<'_> {
        match d {
            Stored::Addrs { v4, v6 } => Data::Addrs {
                v4: &self.v4[v4.range()],
                v6: &self.v6[v6.range()],
            },
            Stored::Alias(t) => Data::Alias(self.str(t)),
        }
    }

    fn node(&self, e: &Entry) -> Node<'_> {
        Node {
            name: self.str(e.name),
            data: self.data(e.data),
            ttl: e.ttl,
            purpose: e.purpose,
            apex: e.apex,
            origin: e.origin,
        }
    }

    /// Gives back what the vectors grew by in advance, before the table is
    /// kept for its lifetime.
    fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.v4.shrink_to_fit();
        self.v6.shrink_to_fit();
    }
}

/// Node numbers by name: open addressing with linear probing over a
/// power-of-two number of slots at most half full, so that a lookup costs one
/// hash and about one probe at any table size. Each slot keeps 32 bits of
/// its name's hash beside the node number, so that a probe seldom has to
/// read the name itself.
#[derive(Debug)]
struct Index {
    /// Keyed per table, as std's `HashMap` is: query names come from
    /// clients, and a known hash would let them aim at long probe runs.
    /// foldhash rather than std's SipHash, a large share of a local
    /// answer's time: SipHash's strength is for maps
    /// whose keys come from outside, and the index's keys are the config's
    /// names; a client only looks names up.
    hasher: foldhash::fast::RandomState,
    /// (hash tag, node number), or [`Index::FREE`].
    slots: Box<[(u32, u32)]>,
}

impl Index {
    const FREE: (u32, u32) = (0, u32::MAX);

    /// Indexes distinct `keys`: (name, node number).
    fn new<'a>(keys: impl Iterator<Item = (&'a str, u32)> + Clone) -> Self {
        let mut index = Index {
            hasher: foldhash::fast::RandomState::default(),
            slots: vec![Self::FREE; (keys.clone().count() * 2).next_power_of_two()].into(),
        };
        for (key, node) in keys {
            let (mut slot, tag) = index.start(key);
            while index.slots[slot] != Self::FREE {
                slot = (slot + 1) & (index.slots.len() - 1);
            }
            index.slots[slot] = (tag, node);
        }
        index
    }

    /// The first slot to probe for `key`, and its tag.
    fn start(&self, key: &str) -> (usize, u32) {
        let hash = self.hasher.hash_one(key);
        (hash as usize & (self.slots.len() - 1), (hash >> 32) as u32)
    }

    /// The node whose key is `key`; `key_of` gives a node's key.
    fn get<'t>(&self, key: &str, key_of: impl Fn(u32) -> &'t str) -> Option<u32> {
        let (mut slot, tag) = self.start(key);
        loop {
            let (t, node) = self.slots[slot];
            if (t, node) == Self::FREE {
                return None;
            }
            if t == tag && key_of(node) == key {
                return Some(node);
            }
            slot = (slot + 1) & (self.slots.len() - 1);
        }
    }
}

/// The compiled table. Immutable: reload builds a new one and swaps it in.
#[derive(Debug)]
pub struct ZoneTable {
    generation: u64,
    pool: Pool,
    /// Sorted by name.
    nodes: Vec<Entry>,
    exact: Index,
    /// Wildcard nodes by the parent they stand under (`*.x` → `x`).
    wildcards: Index,
    apexes: Vec<Box<str>>,
    /// The apexes of `privatelink.*` zones, sorted: a question is looked up
    /// here, and there may be as many other apexes as names.
    private_apexes: Vec<u32>,
    /// The apexes of the public Azure ML zones (a handful at most).
    public_zones: Vec<u32>,
    origins: Vec<Origin>,
    /// TTL of negative answers (the SOA minimum).
    negative_ttl: u32,
}

/// The entries of a table being compiled, in the order written.
#[derive(Default)]
struct Builder {
    pool: Pool,
    entries: Vec<Entry>,
    /// Each zone apex and its number. A map, not a list scanned: a record
    /// or import outside every private-link zone is an apex of its own, so
    /// there can be as many apexes as names (a scan per name took 5 s for
    /// 40,000 such records).
    apexes: HashMap<Box<str>, u32>,
    origins: Vec<Origin>,
}

impl Builder {
    /// Starts the names of one workspace, record or import; returns its number.
    fn origin(&mut self, kind: OriginKind, at: &Location) -> u32 {
        self.origins.push(Origin {
            kind,
            at: at.clone(),
        });
        (self.origins.len() - 1) as u32
    }

    fn add(
        &mut self,
        name: &str,
        data: Stored,
        ttl: u32,
        apex: &str,
        purpose: Option<names::Purpose>,
        origin: u32,
    ) {
        let apex = match self.apexes.get(apex) {
            Some(&i) => i,
            None => {
                let i = self.apexes.len() as u32;
                self.apexes.insert(apex.into(), i);
                i
            }
        };
        let name = self.pool.push_str(name);
        self.entries.push(Entry {
            name,
            data,
            ttl,
            apex,
            origin,
            purpose,
        });
    }
}

/// What a whole table shares (`[zone]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneSettings {
    /// TTL of local answers, and of negative ones (the SOA minimum);
    /// default 60.
    pub ttl: u32,
    /// How a workspace's public names are answered; default A records.
    pub answer: AnswerMode,
}

/// One source of local names and where it was written: what a table is
/// compiled from, whichever file or service gave it.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Every name the workspace needs ([`names::derive`]).
    Workspace {
        workspace: &'a Workspace,
        at: &'a Location,
    },
    /// One name with its own answer (a `[[record]]`); `ttl` overrides the table's.
    Record {
        name: &'a str,
        data: Given<'a>,
        ttl: Option<u32>,
        at: &'a Location,
    },
    /// One name that an import file lists, with its addresses.
    Import {
        name: &'a str,
        addrs: &'a [IpAddr],
        at: &'a Location,
    },
    /// One name an Azure resource's private endpoint lists (its storage
    /// account's, say), found by discovery: served as an import is.
    Azure {
        name: &'a str,
        addrs: &'a [IpAddr],
        at: &'a Location,
    },
}

/// The answer a [`Source::Record`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Given<'a> {
    Addrs(&'a [IpAddr]),
    Alias(&'a str),
}

impl ZoneTable {
    /// Compiles every name `sources` give. Fails, with the location of the
    /// later definition, when one name is given two different answers, or a
    /// CNAME chain inside the table loops or is longer than [`MAX_CHAIN`].
    pub fn compile<'a>(
        sources: impl IntoIterator<Item = Source<'a>>,
        settings: ZoneSettings,
        generation: u64,
    ) -> Result<Self, ConfigError> {
        let ZoneSettings { ttl, answer } = settings;
        let mut b = Builder::default();
        for source in sources {
            match source {
                Source::Workspace { workspace, at } => {
                    let origin = b.origin(OriginKind::Workspace(workspace.name.clone()), at);
                    for d in names::derive(workspace, answer) {
                        let data = match d.target {
                            Target::Addr(ip) => b.pool.push_addrs(&[ip]),
                            Target::Alias(t) => Stored::Alias(b.pool.push_str(&t)),
                        };
                        b.add(&d.name, data, ttl, d.zone, Some(d.purpose), origin);
                    }
                }
                Source::Record {
                    name,
                    data,
                    ttl: own,
                    at,
                } => {
                    let origin = b.origin(OriginKind::Record, at);
                    let data = match data {
                        Given::Addrs(a) => b.pool.push_addrs(a),
                        Given::Alias(t) => Stored::Alias(b.pool.push_str(t)),
                    };
                    let apex = names::apex_of(name);
                    b.add(name, data, own.unwrap_or(ttl), &apex, None, origin);
                }
                Source::Import { name, addrs, at } | Source::Azure { name, addrs, at } => {
                    let kind = match source {
                        Source::Azure { .. } => OriginKind::Azure,
                        _ => OriginKind::Import,
                    };
                    let origin = b.origin(kind, at);
                    let data = b.pool.push_addrs(addrs);
                    b.add(name, data, ttl, &names::apex_of(name), None, origin);
                }
            }
        }
        let Builder {
            mut pool,
            mut entries,
            apexes,
            origins,
        } = b;
        // Listed by number, each moved out of the map.
        let mut apexes: Vec<_> = apexes.into_iter().map(|(z, i)| (i, z)).collect();
        apexes.sort_unstable_by_key(|&(i, _)| i);
        let apexes: Vec<Box<str>> = apexes.into_iter().map(|(_, z)| z).collect();
        let mut private_apexes: Vec<u32> = (0u32..)
            .zip(&apexes)
            .filter(|(_, z)| z.starts_with("privatelink."))
            .map(|(i, _)| i)
            .collect();
        private_apexes.sort_unstable_by_key(|&i| &apexes[i as usize]);
        let public_zones = (0u32..)
            .zip(&apexes)
            .filter(|(_, z)| names::is_public_zone(z))
            .map(|(i, _)| i)
            .collect();
        // A pool too big to fit holds names, so there is an origin to blame.
        if let Some(last) = origins.last().filter(|_| !pool.fits()) {
            return Err(ConfigError::Invalid {
                at: last.at.clone(),
                message: "the table holds more than 4 GiB of names: split the configuration \
                          over several servers"
                    .into(),
            });
        }

        // Sorted by name, definitions of one name in the order written:
        // names enter the pool in that order, so their offsets break ties,
        // and the sort is done in place, without a copy of the entries.
        entries.sort_unstable_by(|a, b| {
            (pool.str(a.name), a.name.start).cmp(&(pool.str(b.name), b.name.start))
        });
        // The entry each name keeps, chosen against the whole sorted list
        // (see `pick`), then moved down in place: the nodes are the
        // entries' own memory, not a second list beside them.
        let mut kept = Vec::new();
        let mut first = 0;
        for group in entries.chunk_by(|a, b| pool.str(a.name) == pool.str(b.name)) {
            kept.push(first + pick(group, &entries, &pool, &origins)?);
            first += group.len();
        }
        for (to, &from) in kept.iter().enumerate() {
            entries[to] = entries[from];
        }
        entries.truncate(kept.len());
        drop(kept);
        let mut nodes = entries;
        nodes.shrink_to_fit();
        pool.shrink_to_fit();

        let numbered = || (0u32..).zip(&nodes).map(|(i, n)| (pool.str(n.name), i));
        let exact = Index::new(numbered().filter(|(n, _)| !n.starts_with("*.")));
        let wildcards =
            Index::new(numbered().filter_map(|(n, i)| Some((n.strip_prefix("*.")?, i))));
        let table = ZoneTable {
            generation,
            exact,
            wildcards,
            apexes,
            private_apexes,
            public_zones,
            origins,
            negative_ttl: ttl,
            pool,
            nodes,
        };
        table.check_chains()?;
        Ok(table)
    }

    /// Every CNAME chain inside the table must end within [`MAX_CHAIN`] hops.
    fn check_chains(&self) -> Result<(), ConfigError> {
        for node in self.nodes() {
            let Data::Alias(first) = node.data else {
                continue;
            };
            let mut target = first;
            let mut hops = 1;
            while let Some(next) = self.find(target) {
                let Data::Alias(t) = next.data else { break };
                hops += 1;
                if hops > MAX_CHAIN || t == node.name {
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
            // Azure Private DNS zones' own timers; an expire under a week
            // is what zone checkers warn of (RFC 1912 §2.2).
            refresh: 3600,
            retry: 300,
            expire: 2_419_200,
            // The TTL of negative answers (RFC 2308 §4).
            minimum: self.negative_ttl,
        }
    }

    /// Every local name, sorted.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = Node<'_>> + Clone {
        self.nodes.iter().map(|e| self.pool.node(e))
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The zone apex of `node`.
    pub fn apex(&self, node: Node<'_>) -> &str {
        &self.apexes[node.apex as usize]
    }

    /// Where `node` was defined.
    pub fn origin(&self, node: Node<'_>) -> &Origin {
        &self.origins[node.origin as usize]
    }

    /// What gave `node`, e.g. "workspace mlw-contoso (api)", "record", "import", "azure".
    pub fn source(&self, node: Node<'_>) -> String {
        describe(&node, &self.origins)
    }

    /// The name of node number `i`.
    fn name(&self, i: u32) -> &str {
        self.pool.str(self.nodes[i as usize].name)
    }

    /// The node answering `name` (lower-case, no final dot): an exact name
    /// first, then a wildcard one label up (a one-label wildcard, nothing
    /// deeper).
    pub fn find(&self, name: &str) -> Option<Node<'_>> {
        self.entry(name).map(|e| self.pool.node(e))
    }

    /// [`ZoneTable::find`] without the view: queries need only a node's
    /// answer, TTL and apex.
    fn entry(&self, name: &str) -> Option<&Entry> {
        let i = match self.exact.get(name, |i| self.name(i)) {
            Some(i) => i,
            None => {
                let (_, parent) = name.split_once('.')?;
                // A wildcard's key is its name without the leading `*.`.
                self.wildcards.get(parent, |i| &self.name(i)[2..])?
            }
        };
        Some(&self.nodes[i as usize])
    }

    /// `name` itself when it is the apex of a `privatelink.*` zone the
    /// table holds names in: amldns is that zone's authority.
    pub fn private_apex(&self, name: &str) -> Option<&str> {
        let apex = |i: &u32| &*self.apexes[*i as usize];
        let i = self
            .private_apexes
            .binary_search_by(|i| apex(i).cmp(name))
            .ok()?;
        Some(apex(&self.private_apexes[i]))
    }

    /// The public Azure ML zones the table holds names in: their SOA is the
    /// upstream's, learned by asking for it.
    pub fn public_zones(&self) -> impl Iterator<Item = &str> {
        self.public_zones.iter().map(|&i| &*self.apexes[i as usize])
    }

    /// True when `name` is a local name (wildcard matches included).
    pub fn contains(&self, name: &str) -> bool {
        self.entry(name).is_some()
    }

    /// Answers `qtype` for `qname` (lower-case, no final dot) from the table.
    pub fn lookup(&self, qname: &str, qtype: QType) -> Lookup<'_> {
        let Some(mut node) = self.entry(qname) else {
            return Lookup::NotLocal;
        };
        let mut chain = Chain::Empty;
        loop {
            match self.pool.data(node.data) {
                Data::Alias(target) => {
                    chain.push((target, node.ttl));
                    if qtype == QType::Cname {
                        return Lookup::Local(Answer {
                            chain,
                            end: End::Chain,
                        });
                    }
                    match self.entry(target) {
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
                            apex: &self.apexes[node.apex as usize],
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
/// is kept; anything else is an error at the later entry. Returns the
/// place in `group` of the entry kept.
fn pick(
    group: &[Entry],
    sorted: &[Entry],
    pool: &Pool,
    origins: &[Origin],
) -> Result<usize, ConfigError> {
    let first = pool.node(&group[0]);
    let mut kept = (0, first);
    // The answer of the first definition of `name`, found in the sorted entries.
    let defined = |name: &str| {
        let i = sorted.partition_point(|e| pool.str(e.name) < name);
        sorted
            .get(i)
            .filter(|e| pool.str(e.name) == name)
            .map(|e| pool.data(e.data))
    };
    for (i, entry) in group.iter().enumerate().skip(1) {
        let other = pool.node(entry);
        let agree = |a: &Node<'_>, b: &Node<'_>| {
            a.data == b.data || matches!(a.data, Data::Alias(t) if defined(t) == Some(b.data))
        };
        if agree(&kept.1, &other) {
            continue;
        }
        if agree(&other, &kept.1) {
            kept = (i, other);
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
                describe(&other, origins),
                first.data,
                a.at,
                describe(&first, origins)
            ),
        });
    }
    Ok(kept.0)
}

fn describe(node: &Node<'_>, origins: &[Origin]) -> String {
    match (&origins[node.origin as usize].kind, node.purpose) {
        (OriginKind::Workspace(name), Some(p)) => format!("workspace {name} ({})", p.as_str()),
        (OriginKind::Workspace(name), None) => format!("workspace {name}"),
        (OriginKind::Record, _) => "record".into(),
        (OriginKind::Import, _) => "import".into(),
        (OriginKind::Azure, _) => "azure".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use std::path::Path;

    fn table(text: &str) -> ZoneTable {
        let c = config::parse(Path::new("t.toml"), text).unwrap();
        crate::snapshot::build(&c, &Default::default(), 7)
            .unwrap()
            .snapshot
            .table
    }

    fn compile_err(text: &str) -> String {
        let c = config::parse(Path::new("t.toml"), text).unwrap();
        crate::snapshot::table(&c).unwrap_err().to_string()
    }

    const G: &str = crate::fixtures::GUID;

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
        let local = |chain: Vec<(&'static str, u32)>, end| {
            Lookup::Local(Answer {
                chain: Chain::Many(chain),
                end,
            })
        };
        let addrs = |v4, v6| End::Addrs { v4, v6, ttl: 60 };
        let nodata = |apex| End::NoData { apex };
        let cases: Vec<(&str, QType, Lookup<'_>)> = vec![
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
                chain: Chain::One((pl.as_str(), 30)),
                end: End::Addrs {
                    v4: &a5,
                    v6: &[],
                    ttl: 30
                },
            })
        );
        // The one step is kept in place: the fast path does not allocate.
        let Lookup::Local(answer) = t.lookup(&api, QType::A) else {
            panic!("local");
        };
        assert!(matches!(answer.chain, Chain::One(_)), "{:?}", answer.chain);
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

    /// The sort is in place and unstable: ties still go in the order
    /// written, so the first definition is the one kept and blamed against.
    #[test]
    fn definitions_of_one_name_keep_their_order() {
        let record = |name: &str, ip: &str| {
            format!(
                "[[record]]\nname = \"{name}.privatelink.blob.core.windows.net\"\na = [\"{ip}\"]\n"
            )
        };
        let mut text = String::new();
        for i in 0..64 {
            text += &record(["a", "b", "c"][i % 3], "10.0.0.1");
        }
        text += &record("b", "10.0.0.2");
        let e = compile_err(&text);
        assert!(
            e.starts_with(
                "t.toml:194:8: b.privatelink.blob.core.windows.net is given two \
                           different answers: 10.0.0.2 here (record), but 10.0.0.1 at t.toml:5:8"
            ),
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

    /// The table needs no configuration file: sources from anywhere will do.
    #[test]
    fn compiles_from_sources_of_any_origin() {
        let at = Location::start_of(Path::new("discovered"));
        let addrs: [IpAddr; 1] = ["10.1.0.9".parse().unwrap()];
        let sources = [
            Source::Import {
                name: "st.privatelink.blob.core.windows.net",
                addrs: &addrs,
                at: &at,
            },
            Source::Record {
                name: "st.corp.example",
                data: Given::Alias("st.privatelink.blob.core.windows.net"),
                ttl: Some(5),
                at: &at,
            },
        ];
        let settings = ZoneSettings {
            ttl: 30,
            answer: AnswerMode::A,
        };
        let t = ZoneTable::compile(sources, settings, 2).unwrap();
        let st = "st.privatelink.blob.core.windows.net";
        assert_eq!(
            t.lookup("st.corp.example", QType::A),
            Lookup::Local(Answer {
                chain: Chain::One((st, 5)),
                end: End::Addrs {
                    v4: &[v4("10.1.0.9")],
                    v6: &[],
                    ttl: 30
                },
            })
        );
        assert_eq!(t.soa("corp.example").minimum, 30);
    }

    /// Every record outside a private-link zone is an apex of its own; the
    /// private-link apexes among them are found by name, each its own.
    #[test]
    fn apexes_of_many_records() {
        let names = [
            "st1.privatelink.blob.core.windows.net",
            "kv.privatelink.vaultcore.azure.net",
            "host1.corp.example",
            "host2.corp.example",
            "*.sub.privatelink.web.core.windows.net",
        ];
        let text: String = names
            .iter()
            .map(|n| format!("[[record]]\nname = \"{n}\"\na = [\"10.0.0.1\"]\n"))
            .collect();
        let t = table(&text);
        let apexes: Vec<&str> = t.nodes().map(|n| t.apex(n)).collect();
        assert_eq!(
            apexes,
            [
                "privatelink.web.core.windows.net",
                "host1.corp.example",
                "host2.corp.example",
                "privatelink.vaultcore.azure.net",
                "privatelink.blob.core.windows.net",
            ]
        );
        for apex in [
            "privatelink.blob.core.windows.net",
            "privatelink.vaultcore.azure.net",
            "privatelink.web.core.windows.net",
        ] {
            assert_eq!(t.private_apex(apex), Some(apex));
        }
        for not in [
            "host1.corp.example",
            "sub.privatelink.web.core.windows.net",
            "privatelink.azure.net",
            "zzz.privatelink.blob.core.windows.net",
        ] {
            assert_eq!(t.private_apex(not), None, "{not}");
        }
    }

    /// The name hash spreads names as alike as a config's (ids a digit
    /// apart, long shared suffixes, short names) over the index: a lookup
    /// probes about as often as linear probing at this load promises
    /// (1.3 at 0.38 full), where a hash that kept such names together would
    /// probe runs of them.
    #[test]
    fn names_spread_over_the_index() {
        let names: Vec<String> = (0..100_000u32)
            .flat_map(|i| {
                [
                    format!("{i:08x}-0000-4000-8000-000000000000.workspace.eastus.api.azureml.ms"),
                    format!("ci-{i}.e"),
                ]
            })
            .collect();
        let index = Index::new(names.iter().map(String::as_str).zip(0..));
        let mut probes = 0;
        for (node, name) in (0..).zip(&names) {
            let (mut slot, _) = index.start(name);
            probes += 1;
            while index.slots[slot].1 != node {
                slot = (slot + 1) & (index.slots.len() - 1);
                probes += 1;
            }
        }
        let mean = f64::from(probes) / names.len() as f64;
        assert!(mean < 1.6, "{mean} probes a lookup");
    }
}
