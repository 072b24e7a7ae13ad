//! `amldns records` (SPEC §5): the effective table in the forms people and
//! other DNS servers read — a table, JSON, zone files, hosts lines, and config
//! for BIND, Unbound, dnsmasq, Windows DNS and Azure Private DNS.
//!
//! Pure: a [`ZoneTable`] in, text out. Each server has its own way to hold a
//! few names without capturing their neighbours (SPEC §1, "Do not capture
//! public names") and without sending their other types upstream (SPEC §3);
//! each output's header says which way it uses and where it still differs
//! from amldns, so that nobody finds out in production.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::codec;
use crate::resolve::NS_LABEL;
use crate::zone::{self, Data, Node, Soa, ZoneTable};

pub mod forwarders;

/// The forms `amldns records --format` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One object per name.
    Json,
    /// Master files (RFC 1035 §5), one per zone apex, with SOA and NS.
    Zone,
    /// /etc/hosts lines (addresses only; wildcards cannot be expressed).
    Hosts,
    /// A BIND response policy zone (RPZ): the names, not whole zones.
    Bind,
    /// Unbound `local-zone`/`local-data` lines.
    Unbound,
    /// dnsmasq `host-record`/`address`/`local` lines.
    Dnsmasq,
    /// Windows DNS PowerShell: each privatelink.* zone whole, any other name a zone of its own.
    Powershell,
    /// Azure CLI (bash): the same zones as Azure Private DNS zones, linked to a VNet.
    Azcli,
}

/// The whole output of `amldns records --format <format>`. `ns_addrs`: the
/// addresses amldns gives `ns.<apex>` ([`crate::resolve::ns_addrs`]), for the
/// zone files' NS.
pub fn render(table: &ZoneTable, format: Format, ns_addrs: &[IpAddr]) -> String {
    match format {
        Format::Table => table_text(&rows(table)),
        Format::Json => json(&rows(table)),
        Format::Zone => zone_stream(table, ns_addrs),
        Format::Hosts => hosts(table),
        Format::Bind => rpz(table),
        Format::Unbound => unbound(table),
        Format::Dnsmasq => dnsmasq(table),
        Format::Powershell => powershell(table),
        Format::Azcli => azcli(table),
    }
}

/// `text`, each line behind `prefix` (a comment marker).
pub(crate) fn comment(out: &mut String, prefix: &str, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "{}", format!("{prefix} {line}").trim_end());
    }
}

/// (type, value) of each record a node holds; CNAME targets end in a dot.
fn rrs(data: Data) -> Vec<(&'static str, String)> {
    Answers::from(data).records()
}

/// One local name as `amldns records --format table|json` and `GET /records`
/// show it: what it answers and where it came from. The same rows whether
/// read from a config file or from a running server, so that both print
/// alike.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    /// Lower-case, no final dot; `*.` first for a wildcard.
    pub name: String,
    pub ttl: u32,
    /// The zone apex it is under (its negative answers' SOA).
    pub zone: String,
    /// What gave it: `workspace mlw (api)`, `record`, `import`, `azure`.
    pub source: String,
    /// Where that was written: `file:line:column`.
    pub at: String,
    #[serde(flatten)]
    pub answers: Answers,
}

impl Row {
    pub fn new(table: &ZoneTable, node: Node) -> Self {
        Row {
            name: node.name.to_string(),
            ttl: node.ttl,
            zone: table.apex(node).to_string(),
            source: table.source(node),
            at: table.origin(node).at.to_string(),
            answers: node.data.into(),
        }
    }
}

/// What a name answers, by type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Answers {
    #[serde(default)]
    pub a: Vec<String>,
    #[serde(default)]
    pub aaaa: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cname: Option<String>,
}

impl From<Data<'_>> for Answers {
    fn from(data: Data) -> Self {
        match data {
            Data::Addrs { v4, v6 } => Answers {
                a: v4.iter().map(ToString::to_string).collect(),
                aaaa: v6.iter().map(ToString::to_string).collect(),
                cname: None,
            },
            Data::Alias(t) => Answers {
                a: Vec::new(),
                aaaa: Vec::new(),
                cname: Some(t.to_string()),
            },
        }
    }
}

impl Answers {
    /// (type, value) of each record; CNAME targets end in a dot.
    pub fn records(&self) -> Vec<(&'static str, String)> {
        let a = self.a.iter().map(|a| ("A", a.clone()));
        let aaaa = self.aaaa.iter().map(|a| ("AAAA", a.clone()));
        let cname = self.cname.iter().map(|t| ("CNAME", format!("{t}.")));
        a.chain(aaaa).chain(cname).collect()
    }
}

/// Every name of the table, as rows.
pub fn rows(table: &ZoneTable) -> Vec<Row> {
    table.nodes().map(|n| Row::new(table, n)).collect()
}

/// The row answering `name` (its own, or the wildcard's that matches it).
pub fn row_for(table: &ZoneTable, name: &str) -> Option<Row> {
    let key = name.trim_end_matches('.').to_ascii_lowercase();
    table.find(&key).map(|n| Row::new(table, n))
}

/// `rows` as `--format table` or `json` print them; `None` for a format
/// that needs the whole table (zone files and the like).
pub fn render_rows(rows: &[Row], format: Format) -> Option<String> {
    match format {
        Format::Table => Some(table_text(rows)),
        Format::Json => Some(json(rows)),
        _ => None,
    }
}

/// What a name finally answers once its CNAME chain is followed inside the
/// table: addresses, or an alias of a name the table does not hold. Servers
/// that do not chase a local CNAME for the client (Unbound's local data, a
/// zone apex that cannot hold a CNAME, hosts files) get the end of the chain.
fn resolved<'t>(table: &'t ZoneTable, node: Node<'t>) -> Data<'t> {
    let mut data = node.data;
    // compile() rejects loops and chains over MAX_CHAIN; the bound is a guard.
    for _ in 0..zone::MAX_CHAIN {
        let Data::Alias(t) = data else { break };
        match table.find(t) {
            Some(next) => data = next.data,
            None => break,
        }
    }
    data
}

/// `*.x` → `Some("x")`.
fn wildcard_parent(name: &str) -> Option<&str> {
    name.strip_prefix("*.")
}

fn table_text(rows: &[Row]) -> String {
    let rows: Vec<[String; 5]> = rows
        .iter()
        .flat_map(|r| {
            r.answers.records().into_iter().map(move |(t, v)| {
                [
                    r.name.clone(),
                    t.to_string(),
                    r.ttl.to_string(),
                    v,
                    r.source.clone(),
                ]
            })
        })
        .collect();
    let head = ["NAME", "TYPE", "TTL", "ANSWER", "SOURCE"].map(String::from);
    let mut widths = [0; 5];
    for r in std::iter::once(&head).chain(&rows) {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&head).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn json(rows: &[Row]) -> String {
    let mut s = serde_json::to_string_pretty(rows).unwrap_or_default();
    s.push('\n');
    s
}

const ZONE_HEADER: &str = "\
amldns records as master files (RFC 1035 §5), one per zone apex, each with the
SOA and NS amldns serves at that apex; each loads in named-checkzone.
`amldns records --format zone --out-dir DIR` writes each to DIR/<zone>.zone;
on one stream, each starts at a line \"; ==== zone <zone> (<zone>.zone)\".
A server loading them is authoritative for every name under each apex
(api.azureml.ms included) and answers NXDOMAIN for the ones not listed, which
amldns forwards. For a resolver, use --format bind, unbound or dnsmasq.";

/// What a zone's NS record says when amldns has no address to give
/// `ns.<apex>` (it listens only on wildcard addresses): an in-zone NS target
/// without an address record does not load (RFC 1912 §2.3; named-checkzone
/// rejects it), so the NS names a host outside every zone instead.
const NS_WITHOUT_ADDRESS: &str = "localhost.";

/// One master file per zone apex (RFC 1035 §5), by apex. The apex carries the SOA amldns serves ([`codec::soa`]) and an NS
/// `ns.<apex>` ([`NS_LABEL`]) with `ns_addrs` as its addresses, as amldns
/// answers them at a private-link apex; with no address, an NS out of the
/// zone (`localhost.`). Names that cannot be held are in `notes`.
pub fn zone_files<'t>(table: &'t ZoneTable, ns_addrs: &[IpAddr]) -> ZoneFiles<'t> {
    let mut files = ZoneFiles::default();
    for n in table.nodes() {
        let apex = table.apex(n);
        // A CNAME cannot share its owner with the apex's SOA and NS
        // (RFC 1034 §3.6.2); `[[record]]` names outside privatelink zones
        // are their own apex.
        if let (Data::Alias(t), true) = (n.data, n.name == apex) {
            files.notes.push(format!(
                "{}: CNAME {t} at its own zone apex, which a zone file cannot hold",
                n.name
            ));
            continue;
        }
        let text = files
            .zones
            .entry(apex)
            .or_insert_with(|| apex_text(table, apex, ns_addrs));
        for (t, v) in rrs(n.data) {
            let _ = writeln!(text, "{}.\t{}\tIN\t{t}\t{v}", n.name, n.ttl);
        }
    }
    files
}

/// [`zone_files`]' result.
#[derive(Debug, Default)]
pub struct ZoneFiles<'t> {
    /// Apex → the file's text.
    pub zones: BTreeMap<&'t str, String>,
    /// Names left out, with why.
    pub notes: Vec<String>,
}

/// A zone file's first lines: where it comes from, `$ORIGIN`, SOA, NS and
/// the NS target's addresses.
fn apex_text(table: &ZoneTable, apex: &str, ns_addrs: &[IpAddr]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "; zone {apex}: from `amldns records --format zone`; check: named-checkzone {apex} {apex}.zone"
    );
    let _ = writeln!(out, "$ORIGIN {apex}.");
    let soa = codec::soa(table, apex);
    let _ = writeln!(out, "{soa}");
    let ttl = soa.ttl;
    if ns_addrs.is_empty() {
        let _ = writeln!(
            out,
            "; amldns listens on wildcard addresses only: ns.{apex} has no address to give,\n\
             ; so the NS names {NS_WITHOUT_ADDRESS} Replace it with this server's name."
        );
        let _ = writeln!(out, "{apex}.\t{ttl}\tIN\tNS\t{NS_WITHOUT_ADDRESS}");
        return out;
    }
    let ns = format!("{NS_LABEL}.{apex}.");
    let _ = writeln!(out, "{apex}.\t{ttl}\tIN\tNS\t{ns}");
    for a in ns_addrs {
        let t = if a.is_ipv6() { "AAAA" } else { "A" };
        let _ = writeln!(out, "{ns}\t{ttl}\tIN\t{t}\t{a}");
    }
    out
}

/// The zone files on one stream, each after a line that names it.
fn zone_stream(table: &ZoneTable, ns_addrs: &[IpAddr]) -> String {
    let files = zone_files(table, ns_addrs);
    let mut out = String::new();
    comment(&mut out, ";", ZONE_HEADER);
    for note in &files.notes {
        let _ = writeln!(out, "; {note}");
    }
    for (zone, text) in files.zones {
        let _ = write!(out, "\n; ==== zone {zone} ({zone}.zone)\n{text}");
    }
    out
}

/// The policy zone's own apex records (RFC 1035 §5.2): nobody asks for it,
/// so its SOA and NS name no real server.
fn rpz_apex(out: &mut String, soa: Soa) {
    let _ = writeln!(
        out,
        "@\t{}\tIN\tSOA\tlocalhost. hostmaster.localhost. {} {} {} {} {}",
        soa.minimum, soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum
    );
    let _ = writeln!(out, "@\t{}\tIN\tNS\tlocalhost.", soa.minimum);
}

const HOSTS_HEADER: &str = "\
amldns records as /etc/hosts lines: append them to /etc/hosts (or to a file
that dnsmasq's addn-hosts= or CoreDNS's hosts plugin reads).
A hosts file holds addresses only: a name gets no NODATA for the types it
lacks, so a resolver may ask upstream for them; an alias whose chain ends in
this table is given its final addresses, and a wildcard or an alias out of
the table cannot be written (noted). The TTL is the reader's, not amldns's.";

fn hosts(table: &ZoneTable) -> String {
    let mut out = String::new();
    comment(&mut out, "#", HOSTS_HEADER);
    for n in table.nodes() {
        if n.name.starts_with("*.") {
            let _ = writeln!(
                out,
                "# {} is a wildcard: hosts files cannot hold it",
                n.name
            );
            continue;
        }
        match resolved(table, n) {
            Data::Addrs { v4, v6 } => {
                for a in v4
                    .iter()
                    .map(ToString::to_string)
                    .chain(v6.iter().map(ToString::to_string))
                {
                    let _ = writeln!(out, "{a}\t{}", n.name);
                }
            }
            Data::Alias(t) => {
                let _ = writeln!(out, "# {} is an alias of {t}, which is not local", n.name);
            }
        }
    }
    out
}

/// The policy zone's name: never looked up by clients (RPZ).
pub const RPZ_ZONE: &str = "amldns.rpz";

const RPZ_HEADER: &str = "\
amldns records as a BIND response policy zone (RPZ): a recursive BIND answers
these names from here and resolves every other name as before.
named.conf:
  options {
      response-policy { zone \"amldns.rpz\"; } qname-wait-recurse no break-dnssec yes;
  };
  zone \"amldns.rpz\" { type primary; file \"/etc/bind/db.amldns.rpz\"; allow-query { none; }; };
Why a policy zone: a primary zone \"api.azureml.ms\" would answer NXDOMAIN for
every name under it that it does not list (eastus.api.azureml.ms, other
workspaces); policy records replace only the names listed. Like amldns, a
listed name gets NODATA for the types it lacks (AAAA...), never a public answer.
qname-wait-recurse no: answer without asking upstream first; break-dnssec yes:
rewrite even if the public zone is ever signed.
BIND resolves the target of a policy CNAME without the policy (it would ask
upstream), so an alias whose chain ends in this table is given its final
addresses; an alias out of the table stays a CNAME, resolved upstream.
Differs from amldns: a wildcard *.x here also matches names deeper below x.
Check: named-checkzone amldns.rpz db.amldns.rpz";

/// An RPZ zone (BIND 9.10+; also read by Unbound, Knot Resolver, PowerDNS
/// Recursor): owners are the names relative to the policy zone, and a
/// record whose data is not one of RPZ's special values is local data.
fn rpz(table: &ZoneTable) -> String {
    let mut out = String::new();
    comment(&mut out, ";", RPZ_HEADER);
    let _ = writeln!(out, "$ORIGIN {RPZ_ZONE}.");
    rpz_apex(&mut out, table.soa(RPZ_ZONE));
    for n in table.nodes() {
        for (t, v) in rrs(resolved(table, n)) {
            let _ = writeln!(out, "{}\t{}\tIN\t{t}\t{v}", n.name, n.ttl);
        }
    }
    out
}

const UNBOUND_HEADER: &str = "\
amldns records as Unbound local data: include it from unbound.conf, or put it
in /etc/unbound/unbound.conf.d/.
Each zone apex is a \"transparent\" local zone: a listed name answers from here,
with NODATA for the types it lacks (AAAA...), never a public answer, and every
other name under the apex is resolved as before. (\"typetransparent\" would
resolve a listed name's other types upstream; \"static\" would answer NXDOMAIN
for every name not listed.)
Unbound does not follow a local CNAME to local data, so an alias whose chain
ends in this table is given its final addresses. An alias of a name outside
the table, and a wildcard *.x, become \"redirect\" zones, which unlike amldns
also answer every name below them (and x itself, for a wildcard); names
listed below a wildcard get a transparent zone of their own to keep their
answers.";

fn unbound(table: &ZoneTable) -> String {
    let wildcard_parents: BTreeSet<&str> = table
        .nodes()
        .filter_map(|n| wildcard_parent(n.name))
        .collect();
    // Unbound takes the zones in any order, but one type per zone: a
    // redirect (an alias out of the table, a wildcard) wins over the
    // transparent zone of an apex or of a name below a wildcard.
    let mut zones: BTreeMap<&str, &str> = BTreeMap::new();
    let mut zone = |name, kind: &'static str| {
        let k = zones.entry(name).or_insert(kind);
        if kind == "redirect" {
            *k = kind;
        }
    };
    let mut data = String::new();
    for n in table.nodes() {
        zone(table.apex(n), "transparent");
        let end = resolved(table, n);
        let owner = match wildcard_parent(n.name) {
            Some(parent) => {
                zone(parent, "redirect");
                parent
            }
            None => {
                let parent = n.name.split_once('.').map_or("", |(_, p)| p);
                if wildcard_parents.contains(parent) {
                    zone(n.name, "transparent");
                }
                n.name
            }
        };
        // Only a redirect zone makes Unbound resolve a CNAME target.
        if let Data::Alias(_) = end {
            zone(owner, "redirect");
        }
        for (t, v) in rrs(end) {
            let _ = writeln!(data, "    local-data: \"{owner}. {} IN {t} {v}\"", n.ttl);
        }
    }
    let mut out = String::new();
    comment(&mut out, "#", UNBOUND_HEADER);
    out.push_str("server:\n");
    for (name, kind) in zones {
        let _ = writeln!(out, "    local-zone: \"{name}.\" {kind}");
    }
    out.push_str(&data);
    out
}

const DNSMASQ_HEADER: &str = "\
amldns records as dnsmasq config: conf-file= it, or put it in /etc/dnsmasq.d/.
host-record= answers A and AAAA. Without local=/name/, dnsmasq would forward
the other types of a listed name (an IPv4-only name's AAAA, TXT...) upstream
and hand out public answers; with it, they get NODATA, as from amldns. But
local= also covers every name below the listed one: those get NXDOMAIN where
amldns would forward them.
A wildcard *.x becomes address=/x/ (with local=/x/), which unlike amldns also
answers x itself and every name at any depth below x, with the TTL of
local-ttl= (default 0); names listed below x keep their own host-record.
dnsmasq's cname= can only point at names it holds itself (not at an
address= wildcard, nor outside): an alias whose chain ends in this table is
given its final addresses, one that leaves the table is left out (noted).";

fn dnsmasq(table: &ZoneTable) -> String {
    let mut out = String::new();
    comment(&mut out, "#", DNSMASQ_HEADER);
    for n in table.nodes() {
        let Data::Addrs { v4, v6 } = resolved(table, n) else {
            let _ = writeln!(
                out,
                "# {}: {}, which is not local: dnsmasq cannot hold it",
                n.name, n.data
            );
            continue;
        };
        let addrs = v4
            .iter()
            .map(ToString::to_string)
            .chain(v6.iter().map(ToString::to_string));
        match wildcard_parent(n.name) {
            Some(parent) => {
                for a in addrs {
                    let _ = writeln!(out, "address=/{parent}/{a}");
                }
                let _ = writeln!(out, "local=/{parent}/");
            }
            None => {
                for a in addrs {
                    let _ = writeln!(out, "host-record={},{a},{}", n.name, n.ttl);
                }
                let _ = writeln!(out, "local=/{}/", n.name);
            }
        }
    }
    out
}

/// One A or AAAA record set of a [`private_zones`] zone.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RecordSet {
    /// Relative to the zone: `@`, `*`, `x.workspace.eastus`...
    name: String,
    /// `A` or `AAAA`.
    kind: &'static str,
    ttl: u32,
    /// Sorted as strings, which is how the scripts compare them.
    addrs: Vec<String>,
}

/// [`private_zones`]' result: zone → record sets, and the names left out.
#[derive(Debug, Default)]
struct PrivateZones {
    zones: BTreeMap<String, Vec<RecordSet>>,
    notes: Vec<String>,
}

/// The table as zones for Azure Private DNS and Windows DNS, which answer
/// every name under a zone they hold:
/// - a `privatelink.*` zone is held whole, as Azure does for private
///   endpoints: nothing public lives under it;
/// - a name in a public zone whose `privatelink` twin is in the table
///   (`x.api.azureml.ms` and `x.privatelink.api.azureml.ms`) is left to the
///   twin: public DNS CNAMEs the name into it;
/// - any other name in a public zone gets a zone of its own (a wildcard
///   `*.x`: the record `*` of zone `x`), since a zone `instances.azureml.ms`
///   would answer NXDOMAIN for every public name under it it does not list.
///
/// A zone apex cannot be a CNAME, and these servers do not follow one into
/// another zone for the client: aliases are given their final addresses.
fn private_zones(table: &ZoneTable) -> PrivateZones {
    let mut out = PrivateZones::default();
    let mut twins: BTreeMap<&str, usize> = BTreeMap::new();
    for n in table.nodes() {
        let apex = table.apex(n);
        let (zone, rel) = if apex.starts_with("privatelink.") {
            let rel = n
                .name
                .strip_suffix(apex)
                .and_then(|r| r.strip_suffix('.'))
                .unwrap_or("@");
            (apex, rel)
        } else if has_twin(table, n.name, apex) {
            *twins.entry(apex).or_default() += 1;
            continue;
        } else {
            match wildcard_parent(n.name) {
                Some(parent) => (parent, "*"),
                None => (n.name, "@"),
            }
        };
        let Data::Addrs { v4, v6 } = resolved(table, n) else {
            out.notes.push(format!(
                "{}: {}, which is not local: a zone cannot hold it",
                n.name, n.data
            ));
            continue;
        };
        let sets = out.zones.entry(zone.to_string()).or_default();
        let v4: Vec<String> = v4.iter().map(ToString::to_string).collect();
        let v6: Vec<String> = v6.iter().map(ToString::to_string).collect();
        for (kind, mut addrs) in [("A", v4), ("AAAA", v6)] {
            if addrs.is_empty() {
                continue;
            }
            addrs.sort();
            sets.push(RecordSet {
                name: rel.to_string(),
                kind,
                ttl: n.ttl,
                addrs,
            });
        }
    }
    for (apex, count) in twins {
        out.notes.push(format!(
            "names under {apex} ({count}): left to privatelink.{apex}, which public DNS CNAMEs them into"
        ));
    }
    out
}

/// Whether the table holds `name`'s `privatelink` twin: `x.<apex>` →
/// `x.privatelink.<apex>`, itself and not through a wildcard.
fn has_twin(table: &ZoneTable, name: &str, apex: &str) -> bool {
    let Some(prefix) = name.strip_suffix(apex) else {
        return false;
    };
    let twin = format!("{prefix}privatelink.{apex}");
    table.find(&twin).is_some_and(|t| t.name == twin)
}

/// What both scripts say of the zones they make.
const PRIVATE_ZONES_TEXT: &str = "\
Zones: each privatelink.* zone whole, as Azure does for private endpoints. A
name in a public zone whose privatelink twin is listed (x.api.azureml.ms and
x.privatelink.api.azureml.ms) is left to the twin, which public DNS CNAMEs it
into. Any other name in a public zone gets a zone of its own: a zone
\"instances.azureml.ms\" would answer NXDOMAIN for every public name under it
that it does not list, while a zone named after the name answers only it. A
wildcard *.x is the record * of zone x (x itself then gets NODATA). Aliases
are given their final addresses (a zone apex cannot be a CNAME).
Idempotent: run it again after the table changes; it creates what is
missing, corrects what differs, removes the records (and zones) it made
earlier that the table no longer has, and changes nothing else.";

const POWERSHELL_HEADER: &str = "\
amldns records for Windows DNS: run in an elevated PowerShell on the DNS
server (DnsServer module). On a domain controller, replace
-ZoneFile \"$Zone.dns\" with -ReplicationScope Forest.
The zones it made carry a TXT record _amldns; only those are ever removed.
Simpler still: a conditional forwarder to amldns (amldns forwarders).";

/// The fixed part of the PowerShell script: it brings each zone of `$Want`
/// to exactly its A/AAAA records, then removes the zones marked `_amldns`
/// that `$Want` no longer has. The address parameters are splatted:
/// tree-sitter's PowerShell grammar, which the tests parse this with (no
/// PowerShell runs there), rejects parameter names with digits (-IPv4Address).
const POWERSHELL_LOGIC: &str = r#"
$Marker = "_amldns"
foreach ($Zone in $Want.Keys) {
    if (-not (Get-DnsServerZone -Name $Zone -ErrorAction SilentlyContinue)) {
        Add-DnsServerPrimaryZone -Name $Zone -ZoneFile "$Zone.dns"
    }
    if (-not (Get-DnsServerResourceRecord -ZoneName $Zone -Name $Marker -RRType Txt -ErrorAction SilentlyContinue)) {
        Add-DnsServerResourceRecord -ZoneName $Zone -Name $Marker -Txt -DescriptiveText "made by amldns records --format powershell"
    }
    $Have = @{}
    foreach ($Rr in Get-DnsServerResourceRecord -ZoneName $Zone | Where-Object { $_.RecordType -in "A", "AAAA" }) {
        $Ip = if ($Rr.RecordType -eq "A") { $Rr.RecordData.IPv4Address } else { $Rr.RecordData.IPv6Address }
        $Key = "$($Rr.HostName) $($Rr.RecordType) $([int]$Rr.TimeToLive.TotalSeconds) $Ip"
        if ($Want[$Zone] -ccontains $Key) {
            $Have[$Key] = $true
        } else {
            Remove-DnsServerResourceRecord -ZoneName $Zone -InputObject $Rr -Force
        }
    }
    foreach ($Key in $Want[$Zone]) {
        if ($Have.ContainsKey($Key)) { continue }
        $Name, $Type, $Ttl, $Ip = $Key -split " "
        $Record = @{ ZoneName = $Zone; Name = $Name; TimeToLive = (New-TimeSpan -Seconds $Ttl) }
        if ($Type -eq "A") {
            $Record.IPv4Address = $Ip
            Add-DnsServerResourceRecordA @Record
        } else {
            $Record.IPv6Address = $Ip
            Add-DnsServerResourceRecordAAAA @Record
        }
    }
}
foreach ($Old in Get-DnsServerZone | Where-Object { -not $_.IsAutoCreated -and -not $Want.Contains($_.ZoneName) }) {
    if (Get-DnsServerResourceRecord -ZoneName $Old.ZoneName -Name $Marker -RRType Txt -ErrorAction SilentlyContinue) {
        Remove-DnsServerZone -Name $Old.ZoneName -Force
    }
}
"#;

fn powershell(table: &ZoneTable) -> String {
    let pz = private_zones(table);
    let mut out = String::new();
    comment(&mut out, "#", POWERSHELL_HEADER);
    comment(&mut out, "#", PRIVATE_ZONES_TEXT);
    for note in &pz.notes {
        let _ = writeln!(out, "# {note}");
    }
    out.push_str(
        "$ErrorActionPreference = \"Stop\"\n\
         # Zone -> its records, each \"name type ttl address\".\n\
         $Want = [ordered]@{\n",
    );
    for (zone, sets) in &pz.zones {
        let _ = writeln!(out, "    \"{zone}\" = @(");
        for set in sets {
            for a in &set.addrs {
                let _ = writeln!(out, "        \"{} {} {} {a}\"", set.name, set.kind, set.ttl);
            }
        }
        out.push_str("    )\n");
    }
    out.push_str("}\n");
    out.push_str(POWERSHELL_LOGIC);
    out
}

const AZCLI_HEADER: &str = "\
amldns records as Azure Private DNS zones (bash, Azure CLI): set RG (resource
group) and VNET_ID (the virtual network's resource id), then run it. Each
zone is linked to the VNet (link \"amldns\").
What it makes is marked: zones with the tag managed-by=amldns, record sets
with the metadata managed-by=amldns; only those are ever removed (a record
set a private endpoint's DNS zone group made is left alone), and a zone only
once nothing but its SOA is left in it.";

/// The fixed part of the Azure CLI script: it brings every record set of
/// `$WANT` to its TTL and addresses, then removes the marked record sets and
/// zones that `$WANT` no longer has.
const AZCLI_LOGIC: &str = r#"
dns() { az network private-dns "$@" --resource-group "$RG" --only-show-errors; }
MARK=managed-by=amldns
MARKED="[?metadata.\"managed-by\"=='amldns'].name"
zones=$(cut -f1 <<<"$WANT" | sort -u)
for zone in $zones; do
  dns zone show --name "$zone" --output none 2>/dev/null ||
    dns zone create --name "$zone" --tags "$MARK" --output none
  dns link vnet show --zone-name "$zone" --name amldns --output none 2>/dev/null ||
    dns link vnet create --zone-name "$zone" --name amldns --virtual-network "$VNET_ID" \
      --registration-enabled false --output none
done
while IFS=$'\t' read -r zone set type ttl addrs; do
  [[ -n $zone ]] || continue
  case $type in
    a) field=aRecords[].ipv4Address flag=--ipv4-address ;;
    aaaa) field=aaaaRecords[].ipv6Address flag=--ipv6-address ;;
  esac
  have=$(dns record-set "$type" show --zone-name "$zone" --name "$set" \
    --query "join(' ', [to_string(ttl), join(',', sort($field))])" --output tsv 2>/dev/null || true)
  [[ $have == "$ttl $addrs" ]] && continue
  [[ -z $have ]] || dns record-set "$type" delete --zone-name "$zone" --name "$set" --yes
  dns record-set "$type" create --zone-name "$zone" --name "$set" --ttl "$ttl" --metadata "$MARK" --output none
  for ip in ${addrs//,/ }; do
    dns record-set "$type" add-record --zone-name "$zone" --record-set-name "$set" "$flag" "$ip" --output none
  done
done <<<"$WANT"
wanted_sets=$(cut -f1-3 <<<"$WANT")
marked_zones=$(dns zone list --query "[?tags.\"managed-by\"=='amldns'].name" --output tsv)
for zone in $(sort -u <<<"$zones"$'\n'"$marked_zones"); do
  for type in a aaaa; do
    for set in $(dns record-set "$type" list --zone-name "$zone" --query "$MARKED" --output tsv); do
      grep -qxF "$zone"$'\t'"$set"$'\t'"$type" <<<"$wanted_sets" ||
        dns record-set "$type" delete --zone-name "$zone" --name "$set" --yes
    done
  done
  # Not wanted any more, so one of the marked zones.
  grep -qxF "$zone" <<<"$zones" && continue
  left=$(dns record-set list --zone-name "$zone" \
    --query "length([?type!='Microsoft.Network/privateDnsZones/SOA'])" --output tsv)
  if [[ $left == 0 ]]; then
    dns link vnet delete --zone-name "$zone" --name amldns --yes
    dns zone delete --name "$zone" --yes
  fi
done
"#;

fn azcli(table: &ZoneTable) -> String {
    let pz = private_zones(table);
    let mut out = String::from("#!/usr/bin/env bash\n");
    comment(&mut out, "#", AZCLI_HEADER);
    comment(&mut out, "#", PRIVATE_ZONES_TEXT);
    for note in &pz.notes {
        let _ = writeln!(out, "# {note}");
    }
    // noglob: the record set "*" is a name, not a pattern.
    out.push_str(
        "set -euo pipefail -o noglob\n\
         : \"${RG:?set RG to the resource group}\"\n\
         : \"${VNET_ID:?set VNET_ID to the resource id of the VNet}\"\n\
         # zone, record set, type, TTL, addresses (sorted), tab-separated.\n\
         WANT=\"\\\n",
    );
    let lines: Vec<String> = pz
        .zones
        .iter()
        .flat_map(|(zone, sets)| {
            sets.iter().map(move |s| {
                format!(
                    "{zone}\t{}\t{}\t{}\t{}",
                    s.name,
                    s.kind.to_ascii_lowercase(),
                    s.ttl,
                    s.addrs.join(",")
                )
            })
        })
        .collect();
    let _ = writeln!(out, "{}\"", lines.join("\n"));
    out.push_str(AZCLI_LOGIC);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use std::path::Path;

    const G: &str = "fb7e20a0-8891-458b-b969-55ddb3382f51";

    /// A workspace with a wildcard and an instance under it, an AAAA record,
    /// a CNAME into the table and a CNAME out of it.
    fn table() -> ZoneTable {
        let text = format!(
            "[[workspace]]\nname = \"mlw\"\nid = \"{G}\"\nregion = \"eastus\"\nip = \"10.1.0.5\"\n\
             instances = [\"ci-1\"]\ninstances_wildcard = true\n\
             [[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.9\"]\n\
             aaaa = [\"fd00::9\"]\n\
             [[record]]\nname = \"alias.corp.example\"\ncname = \"st.privatelink.blob.core.windows.net\"\n\
             [[record]]\nname = \"out.corp.example\"\ncname = \"www.example.com\"\n"
        );
        let c = config::parse(Path::new("t.toml"), &text).unwrap();
        c.table(3).unwrap()
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    /// What each format says for a plain name, a wildcard, a name below the
    /// wildcard, AAAA, an alias into the table and one out of it.
    #[test]
    fn each_format_expresses_every_kind_of_name() {
        let t = table();
        let api = format!("{G}.workspace.eastus.api.azureml.ms");
        let cases: Vec<(Format, Vec<String>, Vec<&str>)> = vec![
            (
                Format::Bind,
                vec![
                    "$ORIGIN amldns.rpz.".into(),
                    "@\t60\tIN\tSOA\tlocalhost. hostmaster.localhost. 3 3600 300 2419200 60".into(),
                    format!("{api}\t60\tIN\tA\t10.1.0.5"),
                    "*.eastus.instances.azureml.ms\t60\tIN\tA\t10.1.0.5".into(),
                    "st.privatelink.blob.core.windows.net\t60\tIN\tAAAA\tfd00::9".into(),
                    // BIND would not apply the policy to the target.
                    "alias.corp.example\t60\tIN\tA\t10.1.0.9".into(),
                    "out.corp.example\t60\tIN\tCNAME\twww.example.com.".into(),
                ],
                vec![],
            ),
            (
                Format::Unbound,
                vec![
                    "server:".into(),
                    "    local-zone: \"api.azureml.ms.\" transparent".into(),
                    format!("    local-data: \"{api}. 60 IN A 10.1.0.5\""),
                    "    local-zone: \"eastus.instances.azureml.ms.\" redirect".into(),
                    "    local-data: \"eastus.instances.azureml.ms. 60 IN A 10.1.0.5\"".into(),
                    "    local-zone: \"ci-1.eastus.instances.azureml.ms.\" transparent".into(),
                    "    local-data: \"ci-1.eastus.instances.azureml.ms. 60 IN A 10.1.0.5\"".into(),
                    "    local-data: \"st.privatelink.blob.core.windows.net. 60 IN AAAA fd00::9\""
                        .into(),
                    // Into the table: the final addresses; out: a redirect.
                    "    local-data: \"alias.corp.example. 60 IN A 10.1.0.9\"".into(),
                    "    local-data: \"alias.corp.example. 60 IN AAAA fd00::9\"".into(),
                    "    local-zone: \"out.corp.example.\" redirect".into(),
                    "    local-data: \"out.corp.example. 60 IN CNAME www.example.com.\"".into(),
                ],
                vec!["local-zone: \"instances.azureml.ms.\" static"],
            ),
            (
                Format::Dnsmasq,
                vec![
                    format!("host-record={api},10.1.0.5,60"),
                    format!("local=/{api}/"),
                    "address=/eastus.instances.azureml.ms/10.1.0.5".into(),
                    "local=/eastus.instances.azureml.ms/".into(),
                    "host-record=ci-1.eastus.instances.azureml.ms,10.1.0.5,60".into(),
                    "host-record=st.privatelink.blob.core.windows.net,fd00::9,60".into(),
                    "host-record=alias.corp.example,10.1.0.9,60".into(),
                ],
                vec!["out.corp.example,", "local=/out.corp.example/"],
            ),
            (
                Format::Powershell,
                vec![
                    "    \"privatelink.blob.core.windows.net\" = @(".into(),
                    "        \"st AAAA 60 fd00::9\"".into(),
                    "    \"privatelink.api.azureml.ms\" = @(".into(),
                    format!("        \"{G}.workspace.eastus A 60 10.1.0.5\""),
                    "    \"eastus.instances.azureml.ms\" = @(".into(),
                    "        \"* A 60 10.1.0.5\"".into(),
                    "    \"alias.corp.example\" = @(".into(),
                    "        \"@ AAAA 60 fd00::9\"".into(),
                ],
                vec!["\"out.corp.example\" = @(", "\"api.azureml.ms\" = @("],
            ),
            (
                Format::Azcli,
                vec![
                    "privatelink.blob.core.windows.net\tst\taaaa\t60\tfd00::9".into(),
                    format!("privatelink.api.azureml.ms\t{G}.workspace.eastus\ta\t60\t10.1.0.5"),
                    "eastus.instances.azureml.ms\t*\ta\t60\t10.1.0.5".into(),
                    "alias.corp.example\t@\ta\t60\t10.1.0.9".into(),
                ],
                vec!["out.corp.example\t", "\napi.azureml.ms\t"],
            ),
        ];
        for (format, want, never) in cases {
            let text = render(&t, format, &[]);
            let body = lines(&text);
            for w in &want {
                assert!(
                    body.contains(&w.as_str()),
                    "{format:?} lacks {w:?}:\n{text}"
                );
            }
            for n in never {
                assert!(!text.contains(n), "{format:?} has {n:?}:\n{text}");
            }
            // A name that cannot be expressed is said so, not dropped silently.
            if matches!(format, Format::Dnsmasq | Format::Powershell | Format::Azcli) {
                assert!(
                    text.contains("# out.corp.example: CNAME www.example.com, which is not local"),
                    "{format:?}:\n{text}"
                );
            }
        }
    }

    #[test]
    fn unbound_gives_each_zone_one_type() {
        let text = render(&table(), Format::Unbound, &[]);
        let zones: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("local-zone: "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let unique: BTreeSet<&&str> = zones.iter().collect();
        assert_eq!(zones.len(), unique.len(), "{text}");
        // The alias out of the table is its own apex: redirect, not both.
        assert!(text.contains("local-zone: \"out.corp.example.\" redirect"));
        assert!(!text.contains("local-zone: \"out.corp.example.\" transparent"));
    }

    /// Private-link zones whole, a public name left to its twin, other
    /// names in zones of their own (a wildcard as `*` of its parent).
    #[test]
    fn private_zones_per_zone_where_safe() {
        let pz = private_zones(&table());
        let zones: Vec<&str> = pz.zones.keys().map(String::as_str).collect();
        assert_eq!(
            zones,
            [
                "alias.corp.example",
                "ci-1-22.eastus.instances.azureml.ms",
                "ci-1-22.eastus.instances.ml.azure.ms",
                "ci-1.eastus.instances.azureml.ms",
                "ci-1.eastus.instances.ml.azure.ms",
                "eastus.instances.azureml.ms",
                "eastus.instances.ml.azure.ms",
                &format!("ml-mlw-eastus-{G}.notebooks.azure.net"),
                "privatelink.api.azureml.ms",
                "privatelink.blob.core.windows.net",
                "privatelink.notebooks.azure.net",
            ]
        );
        let w = &pz.zones["eastus.instances.azureml.ms"];
        assert_eq!((w[0].name.as_str(), w[0].kind), ("*", "A"));
        // An alias into the table: its own zone, with the final addresses.
        let a = &pz.zones["alias.corp.example"];
        assert_eq!(a[0].addrs, ["10.1.0.9"]);
        assert_eq!(a[1].addrs, ["fd00::9"]);
        assert_eq!(
            pz.notes,
            [
                "out.corp.example: CNAME www.example.com, which is not local: a zone cannot hold it",
                "names under api.azureml.ms (2): left to privatelink.api.azureml.ms, which public DNS CNAMEs them into",
                "names under notebooks.azure.net (1): left to privatelink.notebooks.azure.net, which public DNS CNAMEs them into",
            ]
        );
    }

    #[test]
    fn hosts_form() {
        let t = table();
        let hosts = render(&t, Format::Hosts, &[]);
        assert!(hosts.contains("10.1.0.9\talias.corp.example\n"), "{hosts}");
        assert!(hosts.contains("fd00::9\talias.corp.example\n"), "{hosts}");
        assert!(
            hosts.contains("# out.corp.example is an alias of www.example.com, which is not local")
        );
        assert!(hosts.contains("# *.eastus.instances.azureml.ms is a wildcard"));

        assert!(
            hosts.starts_with("# amldns records as /etc/hosts lines"),
            "{hosts}"
        );
    }

    /// The zone files carry the SOA and NS amldns serves: MNAME and NS
    /// `ns.<apex>`, with the listen addresses as its addresses.
    #[test]
    fn zone_files_carry_amldns_s_soa_and_ns() {
        let t = table();
        let addrs: [IpAddr; 2] = ["10.1.0.4".parse().unwrap(), "fd00::4".parse().unwrap()];
        let files = zone_files(&t, &addrs);
        let blob = "privatelink.blob.core.windows.net";
        let text = &files.zones[blob];
        for want in [
            format!("$ORIGIN {blob}.\n"),
            format!("{}\n", codec::soa(&t, blob)),
            format!("{blob}. 60 IN SOA ns.{blob}. hostmaster.{blob}. 3 3600 300 2419200 60\n"),
            format!("{blob}.\t60\tIN\tNS\tns.{blob}.\n"),
            format!("ns.{blob}.\t60\tIN\tA\t10.1.0.4\n"),
            format!("ns.{blob}.\t60\tIN\tAAAA\tfd00::4\n"),
            format!("st.{blob}.\t60\tIN\tAAAA\tfd00::9\n"),
        ] {
            assert!(text.contains(&want), "{want:?}:\n{text}");
        }
        assert_eq!(
            files.notes,
            [
                "alias.corp.example: CNAME st.privatelink.blob.core.windows.net at its own zone apex, which a zone file cannot hold",
                "out.corp.example: CNAME www.example.com at its own zone apex, which a zone file cannot hold",
            ]
        );
        // Listening on wildcard addresses only: no address for ns.<apex>,
        // so an NS out of the zone.
        let files = zone_files(&t, &[]);
        let text = &files.zones[blob];
        assert!(
            text.contains(&format!("{blob}.\t60\tIN\tNS\tlocalhost.\n")),
            "{text}"
        );
        assert!(!text.contains(&format!("\tns.{blob}.")), "{text}");

        let zone = render(&t, Format::Zone, &addrs);
        assert!(
            zone.starts_with("; amldns records as master files"),
            "{zone}"
        );
        assert!(
            zone.contains(&format!(
                "\n\n; ==== zone {blob} ({blob}.zone)\n; zone {blob}: "
            )),
            "{zone}"
        );
        assert!(zone.contains(
            "; alias.corp.example: CNAME st.privatelink.blob.core.windows.net at its own zone apex"
        ));
        assert!(!zone.contains("$ORIGIN alias.corp.example."), "{zone}");
    }

    #[test]
    fn table_and_json_forms() {
        let t = table();
        let text = render(&t, Format::Table, &[]);
        assert!(text.starts_with("NAME"), "{text}");
        assert!(text.contains("workspace mlw (instance)"), "{text}");
        let list: serde_json::Value = serde_json::from_str(&render(&t, Format::Json, &[])).unwrap();
        let out = list
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "out.corp.example")
            .unwrap();
        assert_eq!(out["cname"], "www.example.com");
        assert_eq!(out["at"], "t.toml:16:8");
    }
}
