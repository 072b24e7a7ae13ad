//! The two encoders write the same plan the same way: over a corpus of
//! every kind of local name (and a few that are not local) × many query
//! types × EDNS sizes × DO × letter case, each query goes through the fast
//! path (`Handler::answer_fast`, the `wire` writer) and the general path
//! (`Handler::answer`, the `codec` encoder over hickory-proto), and where
//! the fast path answers, the two answers must be the same bytes. Cached
//! negative answers under zones amldns owns are in the corpus too.
//!
//! No I/O: the forwarder has no upstream and no permit to ask one, so a
//! name the plan forwards gets SERVFAIL at once, without a socket.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use amldns::azure::Discovered;
use amldns::cache::{Key, Reply};
use amldns::forward::Dnssec;
use amldns::handler::Handler;
use amldns::metrics::Metrics;
use amldns::resolve::Transport;
use amldns::{config, snapshot};
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use crate::common::fixtures;

/// The config of every kind of local name, in `answer` mode.
fn config_text(answer: &str) -> String {
    fixtures::EVERY_KIND.replace("answer = \"cname\"", &format!("answer = \"{answer}\""))
}

/// Names under private-link zones amldns owns whose upstream answers are
/// negative, cached for every type asked, with DO and without: amldns
/// answers them as the zone's authority.
const OWNED_NEGATIVES: [(&str, ResponseCode); 2] = [
    ("gone.privatelink.api.azureml.ms", ResponseCode::NXDomain),
    (
        "nodata.privatelink.blob.core.windows.net",
        ResponseCode::NoError,
    ),
];

/// A handler over the config with `answer` mode, and the names to ask it:
/// every name of its table (a wildcard as one name it matches), the apexes
/// of its zones and their `ns.` names, and names it does not hold. The
/// table's names come first, `local` of them.
fn world(answer: &str, qtypes: &[RecordType]) -> (Handler, Vec<String>, usize) {
    let mut config = config::parse(Path::new("encoders.toml"), &config_text(answer)).unwrap();
    // Nothing to ask and no permit to ask it: forwarding fails at once.
    config.upstream.servers.clear();
    config.upstream.max_in_flight = 0;
    let metrics = Arc::new(Metrics::new());
    let built = snapshot::build(&config, &Discovered::default(), 1).unwrap();
    let table = &built.snapshot.table;
    let mut names: Vec<String> = table
        .nodes()
        .map(|n| n.name.replacen("*.", "any-1.", 1))
        .collect();
    let local = names.len();
    names.extend(
        [
            "privatelink.api.azureml.ms",
            "ns.privatelink.api.azureml.ms",
            "privatelink.blob.core.windows.net",
            "ns.privatelink.blob.core.windows.net",
            "api.azureml.ms",
            "eastus.api.azureml.ms",
            "www.example.com",
            "deep.any-1.wild.corp.example",
        ]
        .map(String::from),
    );
    let mut cached = Vec::new();
    // The SOA upstream sends with a negative answer (RFC 2308 §3), whose
    // place amldns's own takes.
    let upstream_soa = Record::from_rdata(
        Name::from_ascii("azureml.ms.").unwrap(),
        300,
        RData::SOA(SOA::new(
            Name::from_ascii("ns1.example.net.").unwrap(),
            Name::from_ascii("hostmaster.example.net.").unwrap(),
            7,
            3600,
            600,
            86400,
            300,
        )),
    );
    for (name, rcode) in OWNED_NEGATIVES {
        names.push(name.to_string());
        for (&qtype, dnssec_ok) in qtypes.iter().flat_map(|q| [(q, false), (q, true)]) {
            let key = Key {
                name: LowerName::from(Name::from_ascii(name).unwrap()),
                qtype,
                dnssec: Dnssec {
                    ok: dnssec_ok,
                    checking_disabled: false,
                },
            };
            let reply = Reply {
                rcode,
                answers: Vec::new(),
                authorities: vec![upstream_soa.clone()],
            };
            cached.push((key, reply));
        }
    }
    let handler = Handler::standalone(built, metrics);
    for (key, reply) in &cached {
        handler.forwarder().now().cache().insert(key, reply);
    }
    (handler, names, local)
}

/// `name` in lower case, upper case, and alternating.
fn spellings(name: &str) -> [String; 3] {
    let mixed = name
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    [name.to_lowercase(), name.to_uppercase(), mixed]
}

fn query(name: &str, qtype: RecordType, edns: Option<(u16, bool)>, rd: bool) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 0x5EED;
    m.metadata.recursion_desired = rd;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some((payload, dnssec_ok)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

#[tokio::test]
async fn both_encoders_write_the_same_bytes_for_the_same_plan() {
    let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
    let qtypes = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::CNAME,
        RecordType::TXT,
        RecordType::MX,
        RecordType::ANY,
        RecordType::SOA,
        RecordType::NS,
        RecordType::SRV,
        RecordType::DS,
        RecordType::CAA,
        RecordType::Unknown(65280),
    ];
    let sizes = [
        None,
        Some((512, false)),
        Some((1232, false)),
        Some((1232, true)),
        Some((4096, true)),
    ];
    let (mut compared, mut general_only, mut owned) = (0, 0, 0);
    for answer in ["a", "cname"] {
        let (h, names, local) = world(answer, &qtypes);
        let mut tally = h.metrics().tally();
        for (i, name) in names.into_iter().enumerate() {
            let kind = match name.as_str() {
                "web.corp.example" => Kind::LeavesTable,
                _ if i < local => Kind::Local,
                "privatelink.api.azureml.ms" | "privatelink.blob.core.windows.net" => {
                    Kind::OwnedApex
                }
                n if OWNED_NEGATIVES.iter().any(|(o, _)| *o == n) => Kind::OwnedNegative,
                "www.example.com"
                | "api.azureml.ms"
                | "eastus.api.azureml.ms"
                | "deep.any-1.wild.corp.example" => Kind::Forwarded,
                _ => Kind::Other,
            };
            // Without RD (a client that does not ask for recursion), in
            // one spelling: the table and the cache answer, else REFUSED.
            let [lower, upper, mixed] = spellings(&name);
            let asks = [
                (lower.clone(), false),
                (lower, true),
                (upper, true),
                (mixed, true),
            ];
            for (spelled, rd) in asks {
                for qtype in qtypes {
                    for edns in sizes {
                        let q = query(&spelled, qtype, edns, rd);
                        let mut out = [0u8; 2048];
                        let fast = h
                            .answer_fast(&q, src, &mut out, &mut tally)
                            .map(|n| out[..n].to_vec());
                        let general = h.answer(&q, src, Transport::Udp).await;
                        let what = format!("{answer} {spelled} {qtype} {edns:?} RD={rd}");
                        let reply = Message::from_vec(&general)
                            .unwrap_or_else(|e| panic!("{what}: the general answer: {e}"));
                        let asked = Message::from_vec(&q).unwrap();
                        contract(&asked, &reply, kind, &name)
                            .unwrap_or_else(|e| panic!("{what}: {e}\n{reply:?}"));
                        // ANY over UDP is TC=1 whatever the cache holds.
                        if OWNED_NEGATIVES.iter().any(|(n, _)| *n == name)
                            && qtype != RecordType::ANY
                        {
                            assert!(fast.is_some(), "{what}: an owned negative, fast");
                            owned += 1;
                        }
                        match fast {
                            Some(fast) => {
                                assert_eq!(fast, general, "{what}");
                                compared += 1;
                            }
                            None => general_only += 1,
                        }
                    }
                }
            }
        }
    }
    // Most of the corpus is the fast path's; the rest (forwarded names,
    // apexes, chains that leave the table) only the general path writes.
    assert!(
        compared > 2000,
        "{compared} compared, {general_only} general only"
    );
    assert!(
        general_only > 500,
        "{compared} compared, {general_only} general only"
    );
    // Every owned negative is the fast path's, whatever the type, size or DO.
    assert_eq!(
        owned,
        2 * OWNED_NEGATIVES.len() * 4 * (qtypes.len() - 1) * sizes.len()
    );
}

/// What a name of the corpus is to amldns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A name of the table.
    Local,
    /// The apex of a private-link zone amldns owns.
    OwnedApex,
    /// One of [`OWNED_NEGATIVES`], cached.
    OwnedNegative,
    /// Neither held nor cached: forwarded, which fails at once here.
    Forwarded,
    /// A name of the table whose CNAME leaves it: its target is forwarded.
    LeavesTable,
    /// An `ns.` name of an owned apex.
    Other,
}

/// What the contract says of `r`, the answer to `q` for a name of `kind`,
/// written from the config above and not read from either encoder: the
/// header (QR, ID, RD echoed, RA), the question echoed as asked, OPT only
/// when asked (at most 1232 bytes, DO echoed); a local or owned name is
/// answered authoritatively, unsigned, with the table's TTL (60, and
/// `mid`'s own 5), only records of the type asked or the CNAMEs leading to
/// them, and NODATA for other types with at most one SOA of a zone holding
/// it; an owned negative carries amldns's own SOA of its private-link zone
/// (serial 1, the table's generation) in place of the upstream's; an owned
/// apex answers its SOA and NS; a forwarded name is not authoritative and,
/// with no upstream, SERVFAIL (REFUSED without RD). `Err` says what is wrong.
fn contract(q: &Message, r: &Message, kind: Kind, name: &str) -> Result<(), String> {
    let h = &r.metadata;
    let qtype = q.queries[0].query_type();
    if h.message_type != hickory_proto::op::MessageType::Response || h.id != q.metadata.id {
        return Err(format!("header {h:?}"));
    }
    if !h.recursion_available || h.recursion_desired != q.metadata.recursion_desired {
        return Err(format!("flags {}", h.flags()));
    }
    let asked = |m: &Message| {
        m.queries
            .iter()
            .map(|q| {
                let mut n = q.name().clone();
                n.set_fqdn(true);
                (n.to_ascii(), q.query_type(), q.query_class())
            })
            .collect::<Vec<_>>()
    };
    if asked(r) != asked(q) {
        return Err(format!("question {:?}", r.queries));
    }
    match (&q.edns, &r.edns) {
        (None, None) => {}
        (Some(a), Some(e))
            if e.max_payload() <= 1232 && e.flags().dnssec_ok == a.flags().dnssec_ok => {}
        (_, e) => return Err(format!("OPT {e:?}")),
    }
    if let Some(first) = r.answers.first()
        && first.name.to_ascii() != asked(q)[0].0
    {
        return Err(format!("first owner {}", first.name));
    }
    let signed = r.answers.iter().chain(&r.authorities).any(|r| {
        matches!(
            r.record_type(),
            RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3 | RecordType::DNSKEY
        )
    });
    // RFC 8482: ANY over UDP may be told to ask over TCP; a TC answer is
    // checked for its header only.
    if h.truncation {
        return if r.answers.is_empty() {
            Ok(())
        } else {
            Err("TC with answers".into())
        };
    }
    // A zone's DS is its parent's to give (RFC 4035 §3.1.4.1): forwarded.
    let kind = match (kind, qtype) {
        (Kind::OwnedApex, RecordType::DS) => Kind::Forwarded,
        _ => kind,
    };
    match kind {
        Kind::Forwarded => {
            let want = match q.metadata.recursion_desired {
                true => ResponseCode::ServFail,
                false => ResponseCode::Refused,
            };
            if h.authoritative || h.response_code != want {
                return Err(format!("forwarded: {} {}", h.flags(), h.response_code));
            }
            return Ok(());
        }
        Kind::Other => return Ok(()),
        // Its CNAME alone (asked for the CNAME, or without RD), or the
        // target's answer, which here is SERVFAIL.
        Kind::LeavesTable => {
            let lines: Vec<_> = r
                .answers
                .iter()
                .map(|a| (a.record_type(), a.ttl, a.data.to_string()))
                .collect();
            let cname = (RecordType::CNAME, 60, "www.example.com.".to_string());
            return match h.response_code {
                ResponseCode::ServFail if !h.authoritative && lines.is_empty() => Ok(()),
                ResponseCode::NoError if h.authoritative && lines == [cname] => Ok(()),
                _ => Err(format!("{kind:?}: {} {lines:?}", h.flags())),
            };
        }
        Kind::Local | Kind::OwnedApex | Kind::OwnedNegative => {}
    }
    if !h.authoritative || signed {
        return Err(format!("{kind:?}: AA unset or signed: {}", h.flags()));
    }
    if kind == Kind::OwnedNegative {
        let want = OWNED_NEGATIVES.iter().find(|(n, _)| *n == name).unwrap().1;
        let apex = name
            .split_once(".privatelink.")
            .map(|(_, z)| format!("privatelink.{z}."));
        let soa = match &r.authorities[..] {
            [soa] if Some(soa.name.to_ascii()) == apex => soa,
            other => return Err(format!("authority {other:?}, want the SOA of {apex:?}")),
        };
        return match &soa.data {
            RData::SOA(s) if s.serial == 1 && h.response_code == want && r.answers.is_empty() => {
                Ok(())
            }
            other => Err(format!("{} {other:?}", h.response_code)),
        };
    }
    if h.response_code != ResponseCode::NoError {
        return Err(format!("rcode {}", h.response_code));
    }
    if kind == Kind::OwnedApex && matches!(qtype, RecordType::SOA | RecordType::NS) {
        let apex = format!("{name}.");
        let ok = !r.answers.is_empty()
            && r.answers
                .iter()
                .all(|a| a.record_type() == qtype && a.name.to_ascii().eq_ignore_ascii_case(&apex));
        let serial = r.answers.iter().all(|a| match &a.data {
            RData::SOA(s) => s.serial == 1,
            _ => true,
        });
        return if ok && serial {
            Ok(())
        } else {
            Err(format!("the apex's {qtype}: {:?}", r.answers))
        };
    }
    for a in &r.answers {
        let owner = a.name.to_ascii().to_lowercase();
        let ttl = if owner == "mid.corp.example." { 5 } else { 60 };
        let fits = a.record_type() == qtype
            || a.record_type() == RecordType::CNAME
            || qtype == RecordType::ANY;
        if a.ttl != ttl || !fits {
            return Err(format!(
                "{owner} {} TTL {}, want TTL {ttl}",
                a.record_type(),
                a.ttl
            ));
        }
    }
    let data = r
        .answers
        .iter()
        .any(|a| a.record_type() != RecordType::CNAME || qtype == RecordType::CNAME);
    let last = r.answers.last().map_or_else(
        || q.queries[0].name().clone(),
        |a| match &a.data {
            RData::CNAME(c) => c.0.clone(),
            _ => a.name.clone(),
        },
    );
    if !data {
        // NODATA (or a chain that ends in it): at most one SOA, of a zone
        // holding the name, its TTL within its minimum.
        if r.authorities.len() > 1 {
            return Err(format!("NODATA authority {:?}", r.authorities));
        }
        for soa in &r.authorities {
            match &soa.data {
                RData::SOA(s) if soa.name.zone_of(&last) && soa.ttl <= s.minimum.min(60) => {}
                other => return Err(format!("NODATA authority {} {other:?}", soa.name)),
            }
        }
    } else if !r.authorities.is_empty() {
        return Err(format!("an answer with authority {:?}", r.authorities));
    }
    Ok(())
}
