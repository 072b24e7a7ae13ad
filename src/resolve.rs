//! The one place that decides what a query is answered with: a
//! question, read by either parser, and the table in force go in; a
//! [`Plan`] comes out, which says everything an encoder needs to write the
//! answer. Both encoders ([`crate::wire`] for the hot cases, [`crate::codec`]
//! for the rest) write plans and decide nothing themselves; the only thing
//! left to the general path is the asking upstream that [`Plan::Forward`]
//! and a chain leaving the table call for, and a [`Chase`] says what each
//! reply from upstream makes of the answer, for both paths.
//!
//! Pure: no I/O, no clock, no allocation but a chain's list.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use crate::names::{self, NameKey};
use crate::soa::{Book, Negative};
use crate::zone::{self, Lookup, QType, ZoneTable};

/// RFC 1035 §4.1.1 response codes the plans use.
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    /// RFC 6891 §6.1.3: an extended rcode (its upper bits travel in OPT).
    pub const BADVERS: u16 = 16;
}

/// Record types the plans look at (RFC 1035 §3.2.2, RFC 6895).
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const OPT: u16 = 41;
    pub const DS: u16 = 43;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const TSIG: u16 = 250;
    pub const ANY: u16 = 255;
}

/// RFC 1035 §3.2.4: the Internet class, the only one answered from data.
pub const CLASS_IN: u16 = 1;
/// RFC 1035 §3.2.4: CHAOS, where servers say who they are.
const CLASS_CH: u16 = 3;

/// The CH TXT names that ask a server its name (RFC 4892 §2.2: `id.server`;
/// BIND's `hostname.bind`).
const IDENTITY_NAMES: [&str; 2] = ["id.server", "hostname.bind"];

/// Firefox's DNS-over-HTTPS canary: a resolver that answers it NXDOMAIN
/// (or SERVFAIL) tells browsers that turn DoH on by default to keep using
/// it. Firefox asks this one name, for A and AAAA.
pub const DOH_CANARY: &str = "use-application-dns.net";

/// The label of amldns's own name server name at a private-link apex:
/// `ns.<apex>`, the NS target and the SOA MNAME.
pub const NS_LABEL: &str = "ns";

/// How a query ended: what metrics count and the query log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered from the zone table.
    Local,
    /// Answered by an upstream.
    Forwarded,
    /// Answered from the cache.
    Cached,
    /// Answered from the cache past its TTL, because every upstream failed
    /// (RFC 8767).
    Stale,
    /// Client outside `allow`, a question we do not serve, or one that
    /// arrived while stopping.
    Refused,
    /// Sent to TCP with TC=1 before any answer was looked for: ANY over UDP
    /// for a name that is not local (RFC 8482 §4.4).
    Truncated,
    /// Malformed or not a standard query (FORMERR, NOTIMP, BADVERS), or no
    /// upstream answered in time (SERVFAIL).
    Error,
}

impl Outcome {
    /// Every outcome, in the order metrics list them.
    pub const ALL: [Outcome; 7] = [
        Outcome::Local,
        Outcome::Forwarded,
        Outcome::Cached,
        Outcome::Stale,
        Outcome::Refused,
        Outcome::Truncated,
        Outcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Local => "local",
            Outcome::Forwarded => "forwarded",
            Outcome::Cached => "cached",
            Outcome::Stale => "stale",
            Outcome::Refused => "refused",
            Outcome::Truncated => "truncated",
            Outcome::Error => "error",
        }
    }
}

/// What a query came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// Every transport, in the order metrics list them.
    pub const ALL: [Transport; 2] = [Transport::Udp, Transport::Tcp];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// What the plan needs to know of a query, from either parser.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub client: IpAddr,
    pub transport: Transport,
    pub opcode: u8,
    /// RD: the client asks for recursion. Without it, only what amldns
    /// holds (the table, the cache) answers (see [`Chase::uncached`]).
    pub recursion_desired: bool,
    /// The question, when there is exactly one (QDCOUNT = 1).
    pub question: Option<Question<'a>>,
    /// The query's OPT record, if it had one.
    pub edns: Option<AskedEdns>,
}

#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// The name as the table keys it; `None` for a name no table entry can
    /// have (a label with a dot in it, say): such a name is never local.
    pub name: Option<&'a NameKey>,
    pub qtype: u16,
    pub qclass: u16,
}

/// The client's EDNS(0) record (RFC 6891 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AskedEdns {
    pub version: u8,
    pub payload: u16,
    /// DO (RFC 3225): echoed in our OPT, and passed upstream.
    pub dnssec_ok: bool,
    /// The NSID option (RFC 5001): the client asks who answered.
    pub nsid: bool,
}

/// Who may ask, and what amldns says of itself at private-link apexes:
/// read per query from the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `[server] allow`.
    pub allow: Vec<IpNet>,
    /// The addresses of `ns.<apex>` (its listen addresses that a client can
    /// reach: not the wildcard ones). Empty: the name has none.
    pub ns_addrs: Vec<IpAddr>,
    /// `[server] identity`: what `id.server` and NSID say.
    pub identity: Box<str>,
    /// `[server] doh_canary`: [`DOH_CANARY`] is answered NXDOMAIN here,
    /// never forwarded.
    pub doh_canary: bool,
}

/// The addresses of `ns.<apex>` for amldns listening on `listen`: those a
/// client can reach it at. A wildcard listen address names no such place.
pub fn ns_addrs(listen: &[SocketAddr]) -> Vec<IpAddr> {
    listen
        .iter()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
        .collect()
}

impl Policy {
    pub fn allows(&self, ip: IpAddr) -> bool {
        // A v4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        // The bits above each net's prefix compared as one number: every
        // query asks, and ipnet's `contains` works out the net's first and
        // last address each time.
        self.allow.iter().any(|net| match (net, ip) {
            (IpNet::V4(n), IpAddr::V4(a)) => (u32::from(n.addr()) ^ u32::from(a))
                .checked_shr(32 - u32::from(n.prefix_len()))
                .is_none_or(|rest| rest == 0),
            (IpNet::V6(n), IpAddr::V6(a)) => (u128::from(n.addr()) ^ u128::from(a))
                .checked_shr(128 - u32::from(n.prefix_len()))
                .is_none_or(|rest| rest == 0),
            _ => false,
        })
    }

    /// The NSID our OPT carries for `asked` (RFC 5001 §2.1: only when asked).
    pub fn nsid(&self, asked: &Asked<'_>) -> Option<&str> {
        asked
            .edns
            .is_some_and(|e| e.nsid)
            .then_some(&*self.identity)
    }
}

/// What to answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan<'t> {
    /// No records: an error, or a refusal, for this reason. The question
    /// and (when asked with one) our OPT are echoed.
    Bare(Reason),
    /// TC=1 and nothing else: ask again over TCP (RFC 8482 §4.4 for ANY).
    Truncated,
    /// From the table, authoritatively: a CNAME chain inside the table,
    /// then how it ends. `End::Forward` leaves the table: the general path
    /// asks upstream for the rest.
    Local(zone::Answer<'t>),
    /// At a private-link zone apex, or its `ns.` name.
    Apex { apex: &'t str, answer: ApexAnswer },
    /// `id.server`/`hostname.bind` CH TXT: the server's identity.
    Identity,
    /// Not ours: ask upstream (the cache first). `zone`: the name is under
    /// a private-link apex amldns is the authority of; a negative answer
    /// from upstream is then amldns's own (AA=1, that zone's SOA), as an
    /// authoritative server falling back to the internet answers.
    Forward { zone: Option<&'t str> },
}

/// What is answered at a private-link apex `Z` (or at `ns.Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApexAnswer {
    /// `Z SOA`.
    Soa,
    /// `Z NS ns.Z`, with the addresses of `ns.Z` as glue.
    Ns,
    /// `Z ANY`: the SOA and the NS.
    Any,
    /// `ns.Z A` or `AAAA`: its addresses of that family (NODATA if none).
    NsAddrs { v6: bool },
    /// Any other type: NODATA with the SOA.
    NoData,
}

/// Why a query is answered with no records: each reason's rcode, flags and
/// outcome are decided here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A graceful stop has begun: REFUSED, so that stubs move on at once.
    Stopping,
    /// The client is outside `[server] allow`.
    NotAllowed,
    /// Not a standard query (RFC 1035 §4.1.1).
    Opcode,
    /// An EDNS version above 0 (RFC 6891 §6.1.3).
    EdnsVersion,
    /// No question, or more than one.
    NotOneQuestion,
    /// A class other than IN, or a CH question other than the identity.
    Class,
    /// AXFR or IXFR: the table is not a zone to copy.
    ZoneTransfer,
    /// OPT or TSIG as a question: meta types are not questions
    /// (RFC 6895 §3.1).
    MetaType,
    /// RD=0, and the answer needs the upstream: a client that does not ask
    /// for recursion is not recursed for (RFC 1034 §4.3.1), as Unbound and
    /// Knot Resolver refuse it.
    NoRecursion,
    /// [`DOH_CANARY`] with `[server] doh_canary` on: NXDOMAIN without an
    /// SOA, so that browsers keep using this resolver (and the private
    /// answers) instead of DNS-over-HTTPS to a public one.
    Canary,
}

impl Reason {
    pub fn rcode(self) -> u16 {
        match self {
            Reason::Stopping
            | Reason::NotAllowed
            | Reason::Class
            | Reason::ZoneTransfer
            | Reason::NoRecursion => rcode::REFUSED,
            Reason::Opcode => rcode::NOTIMP,
            Reason::Canary => rcode::NXDOMAIN,
            Reason::EdnsVersion => rcode::BADVERS,
            Reason::NotOneQuestion | Reason::MetaType => rcode::FORMERR,
        }
    }

    pub fn outcome(self) -> Outcome {
        match self.rcode() {
            rcode::REFUSED => Outcome::Refused,
            rcode::NXDOMAIN => Outcome::Local,
            _ => Outcome::Error,
        }
    }

    /// RA: amldns recurses for its clients, but says nothing about recursion
    /// for an opcode it does not implement (RFC 8906 §8.2.4, as Unbound).
    pub fn recursion_available(self) -> bool {
        self != Reason::Opcode
    }
}

impl Plan<'_> {
    /// The outcome a query answered by this plan counts as, where the plan
    /// alone decides it.
    pub fn outcome(&self) -> Outcome {
        match self {
            Plan::Bare(reason) => reason.outcome(),
            Plan::Truncated => Outcome::Truncated,
            Plan::Local(_) | Plan::Apex { .. } | Plan::Identity => Outcome::Local,
            Plan::Forward { .. } => Outcome::Forwarded,
        }
    }
}

/// The table's view of a record type.
pub fn zone_qtype(qtype: u16) -> QType {
    match qtype {
        rtype::A => QType::A,
        rtype::AAAA => QType::Aaaa,
        rtype::CNAME => QType::Cname,
        rtype::ANY => QType::Any,
        _ => QType::Other,
    }
}

/// Decides what `asked` is answered with. `stopping`: a graceful stop has
/// begun, and new queries are refused so that stubs move on at once.
pub fn plan<'t>(
    table: &'t ZoneTable,
    policy: &Policy,
    asked: &Asked<'_>,
    stopping: bool,
) -> Plan<'t> {
    if stopping {
        return Plan::Bare(Reason::Stopping);
    }
    if !policy.allows(asked.client) {
        return Plan::Bare(Reason::NotAllowed);
    }
    if asked.opcode != 0 {
        return Plan::Bare(Reason::Opcode);
    }
    if asked.edns.is_some_and(|e| e.version > 0) {
        return Plan::Bare(Reason::EdnsVersion);
    }
    let Some(q) = asked.question else {
        return Plan::Bare(Reason::NotOneQuestion);
    };
    if q.qclass == CLASS_CH
        && q.qtype == rtype::TXT
        && q.name.is_some_and(|k| IDENTITY_NAMES.contains(&k.as_str()))
    {
        return Plan::Identity;
    }
    // Other classes, other CH questions (`version.bind`…) included: not ours.
    if q.qclass != CLASS_IN {
        return Plan::Bare(Reason::Class);
    }
    match q.qtype {
        rtype::AXFR | rtype::IXFR => return Plan::Bare(Reason::ZoneTransfer),
        rtype::OPT | rtype::TSIG => return Plan::Bare(Reason::MetaType),
        _ => {}
    }
    // Once: each `as_str` checks the name as UTF-8 again.
    let name = q.name.map(NameKey::as_str);
    if policy.doh_canary && name == Some(DOH_CANARY) {
        return Plan::Bare(Reason::Canary);
    }
    let local = name.map_or(Lookup::NotLocal, |k| table.lookup(k, zone_qtype(q.qtype)));
    match local {
        Lookup::Local(answer) => Plan::Local(answer),
        Lookup::NotLocal => {
            let mut zone = name.and_then(|k| private_zone_of(table, k));
            if let (Some(apex), Some(k)) = (zone, name) {
                if let Some(answer) = at_apex(apex, k, q.qtype) {
                    // `ns.<apex>` without an address of the asked family
                    // (a wildcard listen address): NODATA.
                    let answer = match answer {
                        ApexAnswer::NsAddrs { v6 }
                            if !policy.ns_addrs.iter().any(|a| a.is_ipv6() == v6) =>
                        {
                            ApexAnswer::NoData
                        }
                        other => other,
                    };
                    return Plan::Apex { apex, answer };
                }
                // The apex's DS is the parent zone's to say.
                if k == apex {
                    zone = None;
                }
            }
            // RFC 8482 §4.4: ANY over UDP is the amplifier's favourite; a
            // local name answers its addresses (a small subset), anything
            // else gets TC=1 and is asked again over TCP, where no source
            // is forged.
            if q.qtype == rtype::ANY && asked.transport == Transport::Udp {
                return Plan::Truncated;
            }
            Plan::Forward { zone }
        }
    }
}

/// The `privatelink.*` zone apex at or above `name` that amldns is the
/// authority of: every such zone the table holds names in.
fn private_zone_of<'t>(table: &'t ZoneTable, name: &str) -> Option<&'t str> {
    // A private-link apex starts at a `privatelink` label; most forwarded
    // names have none and stop here. Searched for by its first byte, not
    // with `str::find`, whose searcher costs more to set up than
    // a short name takes to read.
    const LABEL: &[u8] = b"privatelink.";
    let bytes = name.as_bytes();
    let last = bytes.len().checked_sub(LABEL.len())?;
    let at = (0..=last).find(|&i| bytes[i] == b'p' && bytes[i..].starts_with(LABEL))?;
    if at > 0 && bytes[at - 1] != b'.' {
        return None;
    }
    table.private_apex(&name[at..])
}

/// At the apex of a private-link zone it owns, amldns answers the
/// SOA and NS, as Azure's linked private DNS zone does, and at `ns.<apex>`
/// the address of the name server it names. DS belongs to the parent side
/// of the cut (RFC 4035 §3.1.4.1): forwarded. `None` for every other name
/// under the zone.
fn at_apex(apex: &str, name: &str, qtype: u16) -> Option<ApexAnswer> {
    if name == apex {
        return match qtype {
            rtype::SOA => Some(ApexAnswer::Soa),
            rtype::NS => Some(ApexAnswer::Ns),
            rtype::ANY => Some(ApexAnswer::Any),
            rtype::DS => None,
            _ => Some(ApexAnswer::NoData),
        };
    }
    let below = name.strip_suffix(apex)?.strip_suffix('.')?;
    if below != NS_LABEL {
        return None;
    }
    Some(match qtype {
        rtype::A => ApexAnswer::NsAddrs { v6: false },
        rtype::AAAA => ApexAnswer::NsAddrs { v6: true },
        _ => ApexAnswer::NoData,
    })
}

/// The SOA a negative answer for a local name under `apex` carries (one
/// SOA per owner): at a zone amldns is the authority of, its own; at a
/// public zone (`api.azureml.ms`…), the one the upstream gives for it, and
/// none while none is known, cached for no longer than the table's
/// negative TTL.
pub fn negative_soa<'t>(table: &'t ZoneTable, soas: &Book, apex: &'t str) -> Option<Negative<'t>> {
    let own = table.soa(apex);
    if !names::is_public_zone(apex) {
        return Some(Negative::Own(own));
    }
    let soa = soas.get(apex)?;
    let ttl = soa.negative_ttl().min(own.minimum);
    Some(Negative::Learned { soa, ttl })
}

/// Whether an upstream's rcode is an answer to pass on (NXDOMAIN is, and
/// NODATA is a NOERROR), rather than a failure another upstream may do
/// better on.
pub fn is_upstream_answer(rcode: u16) -> bool {
    matches!(rcode, rcode::NOERROR | rcode::NXDOMAIN)
}

/// What a client is told when an upstream failed its question with `rcode`
/// and no other did better. The question was valid: the upstream failed it,
/// not the client, so FORMERR and NOTIMP become SERVFAIL.
pub fn told_for_upstream_failure(rcode: u16) -> u16 {
    match rcode {
        rcode::FORMERR | rcode::NOTIMP => rcode::SERVFAIL,
        other => other,
    }
}

/// A client should hear SERVFAIL before its own stub gives up: glibc waits
/// 5 s per try, Windows 1 s then retries; answering within 2.5 s keeps
/// amldns from being the one that looks dead. Every upstream question a
/// client question leads to shares this one budget.
pub const QUERY_DEADLINE: Duration = Duration::from_millis(2500);

/// At most this many upstream questions per client question: the name
/// itself, and the targets of chains that leave and re-enter the table.
pub const MAX_UPSTREAM_HOPS: usize = 3;

/// Where a reply to an upstream question came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// An upstream, just now.
    Upstream,
    /// The cache, fresh.
    Cache,
    /// The cache, past its TTL, because every upstream failed (RFC 8767).
    Stale,
}

/// What a reply from upstream makes of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next<'t> {
    /// The reply is the rest of the answer: its records and rcode follow
    /// what was gathered, AA as [`Chase::authoritative`] says.
    PassOn,
    /// The reply says the question's name or data is not there, under a
    /// private-link zone amldns owns: the answer is amldns's own (AA=1, the
    /// reply's rcode, this zone's SOA), as an authoritative server falling
    /// back to the internet answers (RFC 2308 §2).
    Own { apex: &'t str },
    /// The reply's CNAME chain reaches a name the table holds, at the
    /// answer record `at`: the records up to it are kept, and the answer
    /// goes on from its target, in the table (as Azure's resolver
    /// does for a linked private DNS zone).
    Enter { at: usize },
    /// Chains bouncing between the table and upstream: SERVFAIL.
    GiveUp,
}

/// One client question answered across the table and upstream, hop by
/// hop: which outcome it counts as and whether the answer is authoritative
/// are decided here, for the cache's fast path and the general path alike.
#[derive(Debug)]
pub struct Chase<'t> {
    qtype: u16,
    /// The private-link zone amldns owns that the question is under (see
    /// [`Plan::Forward`]).
    zone: Option<&'t str>,
    /// RD as the client sent it: whether names outside the table may be
    /// asked upstream, or only looked up in the cache.
    recursion_desired: bool,
    hop: usize,
    outcome: Option<Outcome>,
    authoritative: bool,
}

impl<'t> Chase<'t> {
    pub fn new(qtype: u16, zone: Option<&'t str>, recursion_desired: bool) -> Self {
        Chase {
            qtype,
            zone,
            recursion_desired,
            hop: 0,
            outcome: None,
            authoritative: false,
        }
    }

    /// The name this hop asks is in the table. The question's own name
    /// makes the answer authoritative and local; a target reached later
    /// does not change what the answer counts as.
    pub fn local(&mut self) {
        if self.hop == 0 {
            self.authoritative = true;
            self.outcome = Some(Outcome::Local);
        }
    }

    /// What the reply to this hop's name makes of the answer. `targets`:
    /// the reply's answer records in order, each a CNAME's target as a
    /// table key, or `None`.
    pub fn after_upstream<K: AsRef<str>>(
        &mut self,
        table: &ZoneTable,
        from: Source,
        rcode: u16,
        answers: usize,
        targets: impl Iterator<Item = Option<K>>,
    ) -> Next<'t> {
        match from {
            // Stale wins: the client is told less than the truth.
            Source::Stale => self.outcome = Some(Outcome::Stale),
            Source::Cache => _ = self.outcome.get_or_insert(Outcome::Cached),
            Source::Upstream => _ = self.outcome.get_or_insert(Outcome::Forwarded),
        }
        if let Some(at) = enters_table(table, self.qtype, targets) {
            self.hop += 1;
            if self.hop == MAX_UPSTREAM_HOPS {
                self.outcome = Some(Outcome::Error);
                return Next::GiveUp;
            }
            return Next::Enter { at };
        }
        let negative = rcode == rcode::NXDOMAIN || (rcode == rcode::NOERROR && answers == 0);
        match self.zone {
            // Only for the question: not for a name a chain led to.
            Some(apex) if self.hop == 0 && negative => Next::Own { apex },
            _ => Next::PassOn,
        }
    }

    /// Whether a name outside the table may be asked upstream; if not, the
    /// cache alone is looked in, and a miss is [`Chase::uncached`]. A
    /// question under a private-link zone amldns is the authority of is
    /// answered as that authority whatever RD says, as an authoritative
    /// server answers its zone to a checker that sends RD=0: asking upstream
    /// for the rest of its own zone is not recursing for the client.
    pub fn may_ask_upstream(&self) -> bool {
        self.recursion_desired || self.zone.is_some()
    }

    /// With RD=0, the next name is neither in the table nor in the cache,
    /// and nothing is asked upstream (RFC 1034 §4.3.1). With nothing
    /// answered yet, the question is refused: the reason. Else the chain
    /// gathered so far (a local CNAME whose target is out of the table, say)
    /// is the whole answer, NOERROR, and `None`.
    pub fn uncached(&mut self) -> Option<Reason> {
        if self.outcome.is_some() {
            return None;
        }
        self.outcome = Some(Outcome::Refused);
        Some(Reason::NoRecursion)
    }

    /// The outcome the answer counts as, once it is complete.
    pub fn outcome(&self) -> Outcome {
        self.outcome.unwrap_or(Outcome::Local)
    }

    /// AA: the question's own name is in the table.
    pub fn authoritative(&self) -> bool {
        self.authoritative
    }
}

/// The index of the CNAME record whose target the table holds, if
/// any. A CNAME question is answered by the CNAME itself (RFC 1034 §4.3.2
/// step 3a): nothing to complete then.
fn enters_table<K: AsRef<str>>(
    table: &ZoneTable,
    qtype: u16,
    mut targets: impl Iterator<Item = Option<K>>,
) -> Option<usize> {
    if qtype == rtype::CNAME {
        return None;
    }
    targets.position(|t| t.is_some_and(|t| table.contains(t.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::End;

    fn table() -> ZoneTable {
        let text = "[upstream]\nservers = [\"127.0.0.1:9\"]\n\
             [[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.9\"]\n\
             [[record]]\nname = \"alias.corp.example\"\ncname = \"st.privatelink.blob.core.windows.net\"\n";
        let c = crate::config::parse(std::path::Path::new("t.toml"), text).unwrap();
        crate::snapshot::table(&c).unwrap()
    }

    fn key(s: &str) -> NameKey {
        NameKey::from_labels(s.split('.').map(str::as_bytes)).unwrap()
    }

    fn asked<'a>(name: &'a NameKey, qtype: u16) -> Asked<'a> {
        Asked {
            client: "127.0.0.1".parse().unwrap(),
            transport: Transport::Udp,
            opcode: 0,
            recursion_desired: true,
            question: Some(Question {
                name: Some(name),
                qtype,
                qclass: CLASS_IN,
            }),
            edns: None,
        }
    }

    fn policy() -> Policy {
        Policy {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
            ns_addrs: vec!["127.0.0.1".parse().unwrap()],
            identity: "dns-1".into(),
            doh_canary: true,
        }
    }

    /// The canary is answered here while `doh_canary` is on, for every
    /// type and however it is spelt, and is forwarded like any name when
    /// it is off; a name under it is not the canary.
    #[test]
    fn the_doh_canary_is_nxdomain_here_unless_turned_off() {
        let t = table();
        let on = policy();
        let off = Policy {
            doh_canary: false,
            ..policy()
        };
        let canary = key("Use-Application-DNS.net");
        let under = key("x.use-application-dns.net");
        for qtype in [rtype::A, rtype::AAAA, rtype::TXT] {
            let p = plan(&t, &on, &asked(&canary, qtype), false);
            assert_eq!(p, Plan::Bare(Reason::Canary), "{qtype}");
            assert_eq!(p.outcome(), Outcome::Local);
            assert_eq!(Reason::Canary.rcode(), rcode::NXDOMAIN);
            let p = plan(&t, &off, &asked(&canary, qtype), false);
            assert_eq!(p, Plan::Forward { zone: None }, "{qtype}");
        }
        let p = plan(&t, &on, &asked(&under, rtype::A), false);
        assert_eq!(p, Plan::Forward { zone: None });
    }

    /// One SOA per owner: amldns's own at its private-link zones and at the
    /// zones of names of its own; at a public Azure ML zone, only what the
    /// upstream gave, none before, the TTL no more than the table's.
    #[test]
    fn negative_answers_carry_the_soa_of_whoever_owns_the_zone() {
        let t = table();
        let book = Book::default();
        for apex in ["privatelink.blob.core.windows.net", "alias.corp.example"] {
            assert!(
                matches!(negative_soa(&t, &book, apex), Some(Negative::Own(s)) if s.apex == apex),
                "{apex}"
            );
        }
        assert!(negative_soa(&t, &book, "api.azureml.ms").is_none());
        let soa = hickory_proto::rr::Record::from_rdata(
            hickory_proto::rr::Name::from_ascii("api.azureml.ms.").unwrap(),
            3600,
            hickory_proto::rr::RData::SOA(hickory_proto::rr::rdata::SOA::new(
                hickory_proto::rr::Name::from_ascii("ns1-01.azure-dns.com.").unwrap(),
                hickory_proto::rr::Name::from_ascii("hostmaster.example.").unwrap(),
                1,
                3600,
                300,
                2_419_200,
                300,
            )),
        );
        book.learn(
            "api.azureml.ms",
            crate::soa::Learned::from_reply(&[soa], &[]).unwrap(),
        );
        let Some(Negative::Learned { ttl, .. }) = negative_soa(&t, &book, "api.azureml.ms") else {
            panic!("the learned SOA")
        };
        assert_eq!(ttl, t.soa("api.azureml.ms").minimum.min(300));
    }

    /// A client is allowed exactly when ipnet says a net holds it: host
    /// bits in a net, /0, /32 and /128, and v4 clients seen over v6.
    #[test]
    fn allow_matches_ipnet() {
        let nets: Vec<IpNet> = [
            "10.1.2.3/8",
            "0.0.0.0/0",
            "192.0.2.7/32",
            "172.16.0.0/12",
            "::/0",
            "fd00::1/8",
            "2001:db8::5/128",
        ]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
        let clients: Vec<IpAddr> = [
            "10.200.0.1",
            "11.0.0.1",
            "192.0.2.7",
            "192.0.2.8",
            "172.31.255.255",
            "172.32.0.0",
            "::ffff:10.0.0.1",
            "fdff::1",
            "fe00::1",
            "2001:db8::5",
            "2001:db8::4",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        for net in &nets {
            let policy = Policy {
                allow: vec![*net],
                ..Policy::default()
            };
            for &client in &clients {
                let want = net.contains(&client.to_canonical());
                assert_eq!(policy.allows(client), want, "{net} {client}");
            }
        }
    }

    #[test]
    fn checks_come_before_the_table() {
        let t = table();
        let p = policy();
        let n = key("st.privatelink.blob.core.windows.net");
        let base = asked(&n, rtype::A);
        let bare = Plan::Bare;
        let cases: Vec<(&str, Asked<'_>, bool, Plan<'_>)> = vec![
            ("stopping", base, true, bare(Reason::Stopping)),
            (
                "outside allow",
                Asked {
                    client: "192.0.2.1".parse().unwrap(),
                    ..base
                },
                false,
                bare(Reason::NotAllowed),
            ),
            (
                "opcode 15",
                Asked { opcode: 15, ..base },
                false,
                bare(Reason::Opcode),
            ),
            (
                "EDNS version 1",
                Asked {
                    edns: Some(AskedEdns {
                        version: 1,
                        payload: 1232,
                        dnssec_ok: false,
                        nsid: false,
                    }),
                    ..base
                },
                false,
                bare(Reason::EdnsVersion),
            ),
            (
                "no question",
                Asked {
                    question: None,
                    ..base
                },
                false,
                bare(Reason::NotOneQuestion),
            ),
            (
                "class CH",
                Asked {
                    question: Some(Question {
                        qclass: 3,
                        ..base.question.unwrap()
                    }),
                    ..base
                },
                false,
                bare(Reason::Class),
            ),
            (
                "AXFR",
                asked(&n, rtype::AXFR),
                false,
                bare(Reason::ZoneTransfer),
            ),
            (
                "OPT as a question",
                asked(&n, rtype::OPT),
                false,
                bare(Reason::MetaType),
            ),
        ];
        for (what, a, stopping, want) in cases {
            assert_eq!(plan(&t, &p, &a, stopping), want, "{what}");
        }
    }

    #[test]
    fn identity_in_chaos_only_for_its_two_names() {
        let t = table();
        let p = policy();
        let ch = |name: &str, qtype| {
            let k = key(name);
            let mut a = asked(&k, qtype);
            a.question = Some(Question {
                qclass: CLASS_CH,
                ..a.question.unwrap()
            });
            plan(&t, &p, &a, false)
        };
        assert_eq!(ch("id.server", rtype::TXT), Plan::Identity);
        assert_eq!(ch("hostname.bind", rtype::TXT), Plan::Identity);
        let refused = Plan::Bare(Reason::Class);
        assert_eq!(ch("version.bind", rtype::TXT), refused);
        assert_eq!(ch("id.server", rtype::A), refused);
        let k = key("id.server");
        assert_eq!(
            plan(&t, &p, &asked(&k, rtype::TXT), false),
            Plan::Forward { zone: None }
        );
        let mut a = asked(&k, rtype::A);
        assert_eq!(p.nsid(&a), None);
        a.edns = Some(AskedEdns {
            version: 0,
            payload: 1232,
            dnssec_ok: false,
            nsid: true,
        });
        assert_eq!(p.nsid(&a), Some("dns-1"));
    }

    #[test]
    fn local_names_any_and_forwarding() {
        let t = table();
        let p = policy();
        let st = key("st.privatelink.blob.core.windows.net");
        let Plan::Local(a) = plan(&t, &p, &asked(&st, rtype::A), false) else {
            panic!()
        };
        assert!(matches!(a.end, End::Addrs { .. }));
        let Plan::Local(a) = plan(&t, &p, &asked(&st, rtype::AAAA), false) else {
            panic!()
        };
        assert!(matches!(a.end, End::NoData { .. }));
        // ANY over UDP: a local name answers, anything else is sent to TCP.
        assert!(matches!(
            plan(&t, &p, &asked(&st, rtype::ANY), false),
            Plan::Local(_)
        ));
        let www = key("www.example.com");
        assert_eq!(
            plan(&t, &p, &asked(&www, rtype::ANY), false),
            Plan::Truncated
        );
        let tcp = Asked {
            transport: Transport::Tcp,
            ..asked(&www, rtype::ANY)
        };
        assert_eq!(plan(&t, &p, &tcp, false), Plan::Forward { zone: None });
        assert_eq!(
            plan(&t, &p, &asked(&www, rtype::A), false),
            Plan::Forward { zone: None }
        );
        assert_eq!(Plan::Truncated.outcome(), Outcome::Truncated);
    }

    #[test]
    fn private_link_apexes_are_ours_public_ones_are_not() {
        let t = table();
        let p = policy();
        let case = |name: &str, qtype| {
            let k = key(name);
            match plan(&t, &p, &asked(&k, qtype), false) {
                Plan::Apex { apex, answer } => Some((apex.to_string(), answer)),
                Plan::Forward { .. } => None,
                other => panic!("{name}: {other:?}"),
            }
        };
        let apex = "privatelink.blob.core.windows.net".to_string();
        assert_eq!(
            case("privatelink.blob.core.windows.net", rtype::SOA),
            Some((apex.clone(), ApexAnswer::Soa))
        );
        assert_eq!(
            case("PrivateLink.blob.core.windows.net", rtype::NS),
            Some((apex.clone(), ApexAnswer::Ns))
        );
        assert_eq!(
            case("privatelink.blob.core.windows.net", 16),
            Some((apex.clone(), ApexAnswer::NoData))
        );
        assert_eq!(case("privatelink.blob.core.windows.net", rtype::DS), None);
        assert_eq!(
            case("ns.privatelink.blob.core.windows.net", rtype::A),
            Some((apex.clone(), ApexAnswer::NsAddrs { v6: false }))
        );
        // A zone the table holds nothing in, a public apex, another name
        // under the private zone: forwarded.
        assert_eq!(case("privatelink.vaultcore.azure.net", rtype::SOA), None);
        assert_eq!(case("blob.core.windows.net", rtype::SOA), None);
        assert_eq!(
            case("other.privatelink.blob.core.windows.net", rtype::A),
            None
        );
        // Without a listen address of its family, `ns.<apex>` has NODATA.
        assert_eq!(
            case("ns.privatelink.blob.core.windows.net", rtype::AAAA),
            Some((
                "privatelink.blob.core.windows.net".into(),
                ApexAnswer::NoData
            ))
        );
    }

    /// Under a zone it owns, a forwarded name's negative answer is amldns's
    /// own; elsewhere, and for a name a chain led to, it is not.
    #[test]
    fn negative_answers_under_an_owned_zone() {
        let t = table();
        let p = policy();
        let zone_of = |name: &str| match plan(&t, &p, &asked(&key(name), rtype::A), false) {
            Plan::Forward { zone } => zone.map(str::to_string),
            other => panic!("{name}: {other:?}"),
        };
        let blob = Some("privatelink.blob.core.windows.net".to_string());
        assert_eq!(zone_of("other.privatelink.blob.core.windows.net"), blob);
        assert_eq!(zone_of("a.b.privatelink.blob.core.windows.net"), blob);
        assert_eq!(zone_of("xprivatelink.blob.core.windows.net"), None);
        assert_eq!(zone_of("other.privatelink.vaultcore.azure.net"), None);
        assert_eq!(zone_of("www.example.com"), None);
        let z = Some("privatelink.blob.core.windows.net");
        let none: [Option<&str>; 0] = [];
        let first = |zone, rcode, answers| {
            let targets = vec![None::<&str>; answers];
            Chase::new(rtype::A, zone, true).after_upstream(
                &t,
                Source::Upstream,
                rcode,
                answers,
                targets.into_iter(),
            )
        };
        let own = Next::Own {
            apex: "privatelink.blob.core.windows.net",
        };
        assert_eq!(first(z, rcode::NXDOMAIN, 0), own, "NXDOMAIN");
        assert_eq!(first(z, rcode::NOERROR, 0), own, "NODATA");
        assert_eq!(first(z, rcode::NOERROR, 1), Next::PassOn, "an answer");
        assert_eq!(first(z, rcode::SERVFAIL, 0), Next::PassOn, "SERVFAIL");
        assert_eq!(
            first(None, rcode::NXDOMAIN, 0),
            Next::PassOn,
            "not an owned zone"
        );
        // After a chain entered the table and left it again.
        let mut chase = Chase::new(rtype::A, z, true);
        let into = [Some("st.privatelink.blob.core.windows.net")];
        let next = chase.after_upstream(&t, Source::Upstream, 0, 1, into.into_iter());
        assert_eq!(next, Next::Enter { at: 0 });
        let next = chase.after_upstream(&t, Source::Upstream, 3, 0, none.into_iter());
        assert_eq!(next, Next::PassOn, "a name a chain led to");
    }

    /// A forwarded chain is cut where it reaches the table, at most so often;
    /// which outcome and AA the answer gets is decided across the hops.
    #[test]
    fn forwarded_chains_enter_the_table_where_it_holds_the_target() {
        let t = table();
        let into = [
            Some("x.example.com"),
            Some("st.privatelink.blob.core.windows.net"),
        ];
        let outside = [Some("x.example.com")];
        let ask = |chase: &mut Chase<'static>, from, targets: &[Option<&str>]| {
            chase.after_upstream(&t, from, 0, targets.len(), targets.iter().copied())
        };
        let mut chase = Chase::new(rtype::A, None, true);
        assert_eq!(
            ask(&mut chase, Source::Upstream, &into),
            Next::Enter { at: 1 }
        );
        assert_eq!(chase.outcome(), Outcome::Forwarded);
        assert!(!chase.authoritative());
        // A CNAME question is answered by the CNAME itself.
        let mut chase = Chase::new(rtype::CNAME, None, true);
        assert_eq!(ask(&mut chase, Source::Cache, &into), Next::PassOn);
        assert_eq!(chase.outcome(), Outcome::Cached);
        let mut chase = Chase::new(rtype::A, None, true);
        assert_eq!(ask(&mut chase, Source::Upstream, &outside), Next::PassOn);

        // The question's own name in the table: local and authoritative,
        // whatever upstream adds, unless the rest came stale.
        let mut chase = Chase::new(rtype::A, None, true);
        chase.local();
        assert_eq!(ask(&mut chase, Source::Upstream, &outside), Next::PassOn);
        assert_eq!(
            (chase.outcome(), chase.authoritative()),
            (Outcome::Local, true)
        );
        let mut chase = Chase::new(rtype::A, None, true);
        chase.local();
        ask(&mut chase, Source::Stale, &outside);
        assert_eq!(chase.outcome(), Outcome::Stale);

        // Bouncing between the table and upstream: the third entry gives up.
        let mut chase = Chase::new(rtype::A, None, true);
        for _ in 1..MAX_UPSTREAM_HOPS {
            assert_eq!(
                ask(&mut chase, Source::Upstream, &into),
                Next::Enter { at: 1 }
            );
            chase.local();
        }
        assert_eq!(ask(&mut chase, Source::Upstream, &into), Next::GiveUp);
        assert_eq!(chase.outcome(), Outcome::Error);
    }

    /// With RD=0, a name neither local nor cached: refused when nothing is
    /// answered yet, else the chain gathered is the answer.
    #[test]
    fn without_recursion_only_what_is_held_answers() {
        let t = table();
        let mut chase = Chase::new(rtype::A, None, false);
        assert!(!chase.may_ask_upstream());
        assert_eq!(chase.uncached(), Some(Reason::NoRecursion));
        assert_eq!(chase.outcome(), Outcome::Refused);
        assert_eq!(Reason::NoRecursion.rcode(), rcode::REFUSED);
        // A local CNAME out of the table: the chain alone, still local.
        let mut chase = Chase::new(rtype::A, None, false);
        chase.local();
        assert_eq!(chase.uncached(), None);
        assert_eq!(chase.outcome(), Outcome::Local);
        // A cached chain into the table and out again: what was gathered.
        let mut chase = Chase::new(rtype::A, None, false);
        let into = [Some("st.privatelink.blob.core.windows.net")];
        chase.after_upstream(&t, Source::Cache, 0, 1, into.into_iter());
        assert_eq!(chase.uncached(), None);
        assert_eq!(chase.outcome(), Outcome::Cached);
        assert!(Chase::new(rtype::A, None, true).may_ask_upstream());
        // Under a zone amldns is the authority of: answered as its authority.
        let zone = Some("privatelink.blob.core.windows.net");
        assert!(Chase::new(rtype::A, zone, false).may_ask_upstream());
    }

    /// NOERROR and NXDOMAIN from upstream are answers; any other rcode is a
    /// failure, and the client is not told that its valid question was
    /// malformed or unknown.
    #[test]
    fn upstream_rcodes() {
        for (code, answer, told) in [
            (rcode::NOERROR, true, rcode::NOERROR),
            (rcode::NXDOMAIN, true, rcode::NXDOMAIN),
            (rcode::SERVFAIL, false, rcode::SERVFAIL),
            (rcode::REFUSED, false, rcode::REFUSED),
            (rcode::FORMERR, false, rcode::SERVFAIL),
            (rcode::NOTIMP, false, rcode::SERVFAIL),
        ] {
            assert_eq!(is_upstream_answer(code), answer, "{code}");
            assert_eq!(told_for_upstream_failure(code), told, "{code}");
        }
    }
}
