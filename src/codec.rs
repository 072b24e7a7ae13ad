//! The general path's reading and writing of DNS messages, with
//! hickory-proto: any query the fast path ([`crate::wire`]) leaves, over UDP
//! and TCP, and the answers [`crate::resolve::plan`] decides for it, or the
//! forwarder brings. What to answer is never decided here: [`Response`] is
//! built from a plan (or a forwarded reply), and [`encode`] writes it,
//! sending TC=1 in its place when it does not fit the client's size.

use std::net::IpAddr;

use hickory_proto::ProtoError;
use hickory_proto::op::{Edns, Message, MessageType, Metadata, ResponseCode, emit_message_parts};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption, NSIDPayload};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::names::NameKey;
use crate::resolve::{
    self, ApexAnswer, Asked, AskedEdns, NS_LABEL, Plan, Policy, Question, Transport,
};
use crate::soa::{Book, Negative};
use crate::wire;
use crate::zone::{End, ZoneTable};

/// Reads a query; `None` for one answered FORMERR: it does not parse, or a
/// question points into the header (see
/// [`wire::question_points_into_header`]).
pub fn parse(msg: &[u8]) -> Option<Message> {
    if wire::question_points_into_header(msg) {
        return None;
    }
    Message::from_vec(msg).ok()
}

/// The question's name as the table keys it, when there is one question.
pub fn key_of(query: &Message) -> Option<NameKey> {
    match query.queries.as_slice() {
        [q] => NameKey::from_labels(q.name().iter()),
        _ => None,
    }
}

/// `query` as the resolution step reads it; `key` from [`key_of`].
pub fn asked<'a>(
    query: &Message,
    key: Option<&'a NameKey>,
    client: IpAddr,
    transport: Transport,
) -> Asked<'a> {
    Asked {
        client,
        transport,
        opcode: u8::from(query.metadata.op_code),
        recursion_desired: query.metadata.recursion_desired,
        question: match query.queries.as_slice() {
            [q] => Some(Question {
                name: key,
                qtype: u16::from(q.query_type()),
                qclass: u16::from(q.query_class()),
            }),
            _ => None,
        },
        edns: query.edns.as_ref().map(|e| AskedEdns {
            version: e.version(),
            payload: e.max_payload(),
            dnssec_ok: e.flags().dnssec_ok,
            nsid: e.option(EdnsCode::NSID).is_some(),
        }),
    }
}

/// An answer ready to encode.
#[derive(Debug)]
pub struct Response {
    pub rcode: u16,
    pub authoritative: bool,
    pub recursion_available: bool,
    pub truncated: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// The NSID our OPT carries (RFC 5001), when the query asked for it.
    pub nsid: Option<Box<str>>,
}

impl Response {
    /// No records: an error, a refusal, or TC=1.
    pub fn bare(rcode: u16, recursion_available: bool, truncated: bool) -> Self {
        Response {
            rcode,
            authoritative: false,
            recursion_available,
            truncated,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
            nsid: None,
        }
    }

    /// Records, with NOERROR unless said otherwise.
    pub fn records(authoritative: bool, answers: Vec<Record>, authorities: Vec<Record>) -> Self {
        Response {
            rcode: 0,
            authoritative,
            recursion_available: true,
            truncated: false,
            answers,
            authorities,
            additionals: Vec::new(),
            nsid: None,
        }
    }
}

/// The response to a plan that needs no upstream (not [`Plan::Forward`],
/// nor a local chain that leaves the table). `qname` is the question's name
/// as asked.
pub fn respond(
    plan: &Plan<'_>,
    qname: &Name,
    table: &ZoneTable,
    soas: &Book,
    policy: &Policy,
) -> Response {
    match plan {
        Plan::Bare(reason) => Response::bare(reason.rcode(), reason.recursion_available(), false),
        Plan::Truncated => Response::bare(0, true, true),
        Plan::Local(answer) => {
            let mut answers = Vec::new();
            let mut owner = qname.clone();
            let authorities = local_records(answer, table, soas, &mut owner, &mut answers);
            Response::records(true, answers, authorities)
        }
        Plan::Apex { apex, answer } => apex_records(apex, *answer, qname, table, policy),
        // What `dig CH TXT id.server` shows: one string, never cached.
        Plan::Identity => {
            let mut txt = Record::from_rdata(
                qname.clone(),
                0,
                RData::TXT(TXT::new(vec![policy.identity.to_string()])),
            );
            txt.dns_class = DNSClass::CH;
            Response::records(true, vec![txt], Vec::new())
        }
        // The general path asks upstream for these.
        Plan::Forward { .. } => Response::bare(0, true, false),
    }
}

/// Appends a local answer's chain and addresses to `answers`, starting at
/// `owner` and leaving it at the chain's last name; the authority records
/// (the SOA of a NODATA, when one is known) are returned.
pub fn local_records(
    answer: &crate::zone::Answer<'_>,
    table: &ZoneTable,
    soas: &Book,
    owner: &mut Name,
    answers: &mut Vec<Record>,
) -> Vec<Record> {
    for &(target, ttl) in &answer.chain {
        let target = name_of(target);
        answers.push(Record::from_rdata(
            owner.clone(),
            ttl,
            RData::CNAME(CNAME(target.clone())),
        ));
        *owner = target;
    }
    match answer.end {
        End::Addrs { v4, v6, ttl } => {
            answers.extend(
                v4.iter()
                    .map(|a| Record::from_rdata(owner.clone(), ttl, RData::A(A(*a)))),
            );
            answers.extend(
                v6.iter()
                    .map(|a| Record::from_rdata(owner.clone(), ttl, RData::AAAA(AAAA(*a)))),
            );
            Vec::new()
        }
        End::NoData { apex } => match resolve::negative_soa(table, soas, apex) {
            Some(Negative::Own(_)) => vec![soa(table, apex)],
            Some(Negative::Learned { soa, ttl }) => vec![soa.record(ttl)],
            None => Vec::new(),
        },
        End::Chain | End::Forward(_) => Vec::new(),
    }
}

fn apex_records(
    apex: &str,
    answer: ApexAnswer,
    qname: &Name,
    table: &ZoneTable,
    policy: &Policy,
) -> Response {
    let ns_name = prefixed(NS_LABEL, apex);
    let ttl = table.soa(apex).minimum;
    let ns = || Record::from_rdata(name_of(apex), ttl, RData::NS(NS(ns_name.clone())));
    let addrs = |v6: bool| -> Vec<Record> {
        policy
            .ns_addrs
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(|a| {
                let data = match a {
                    IpAddr::V4(v4) => RData::A(A(*v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                };
                Record::from_rdata(ns_name.clone(), ttl, data)
            })
            .collect()
    };
    let glue = || {
        let mut g = addrs(false);
        g.extend(addrs(true));
        g
    };
    let mut r = match answer {
        ApexAnswer::Soa => Response::records(true, vec![soa(table, apex)], Vec::new()),
        ApexAnswer::Ns => Response::records(true, vec![ns()], Vec::new()),
        ApexAnswer::Any => Response::records(true, vec![soa(table, apex), ns()], Vec::new()),
        ApexAnswer::NsAddrs { v6 } => {
            let found = addrs(v6)
                .into_iter()
                .map(|mut r| {
                    r.name = qname.clone();
                    r
                })
                .collect();
            Response::records(true, found, Vec::new())
        }
        ApexAnswer::NoData => Response::records(true, Vec::new(), vec![soa(table, apex)]),
    };
    if matches!(answer, ApexAnswer::Ns | ApexAnswer::Any) {
        r.additionals = glue();
    }
    // The apex as asked owns what is at the apex.
    if matches!(answer, ApexAnswer::Soa | ApexAnswer::Ns | ApexAnswer::Any) {
        for rec in &mut r.answers {
            rec.name = qname.clone();
        }
    }
    r
}

/// A zone-table name as a DNS name.
pub fn name_of(s: &str) -> Name {
    // Table names are validated domain names; the root is a safe fallback.
    let mut n = Name::from_ascii(s).unwrap_or_else(|_| Name::root());
    n.set_fqdn(true);
    n
}

/// `label.apex` as a DNS name.
fn prefixed(label: &str, apex: &str) -> Name {
    Name::from_ascii(label)
        .and_then(|l| l.append_domain(&name_of(apex)))
        .unwrap_or_else(|_| name_of(apex))
}

/// The SOA of a local zone: owned by the apex, MNAME `ns.<apex>`,
/// RNAME `hostmaster.<apex>`, serial = the table's generation, TTL =
/// minimum = the negative TTL.
pub fn soa(table: &ZoneTable, apex: &str) -> Record {
    let soa = table.soa(apex);
    Record::from_rdata(
        name_of(apex),
        soa.minimum,
        RData::SOA(SOA::new(
            prefixed(NS_LABEL, apex),
            prefixed("hostmaster", apex),
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum,
        )),
    )
}

/// The UDP payload size our OPT announces to `query`: what its OPT says
/// (512 without one), never above `cap` (RFC 6891 §6.2.5, DNS Flag Day
/// 2020). Over UDP it is also the most the answer may take.
pub fn payload(query: &Message, cap: u16) -> u16 {
    wire::udp_limit(
        query.edns.as_ref().map(|e| AskedEdns {
            version: e.version(),
            payload: e.max_payload(),
            dnssec_ok: e.flags().dnssec_ok,
            nsid: false,
        }),
        cap,
    )
}

/// Writes `response` to `query`: the question echoed as asked, RD and CD
/// copied, our OPT when the query had one (announcing the UDP size
/// `payload`, echoing DO: RFC 6891 §6.1.1, RFC 3225 §3). When it does not
/// fit `limit`, the same header with TC=1 and no records, so that the
/// client asks again over TCP (RFC 1035 §4.2.1; hickory-proto's encoder
/// would instead fill the packet and drop the OPT record that must follow,
/// RFC 6891 §7).
pub fn encode(query: &Message, response: &Response, payload: u16, limit: u16) -> Vec<u8> {
    let full = emit(query, response, payload, limit, false);
    match full {
        Some(bytes) => bytes,
        None => emit(query, response, payload, limit, true).unwrap_or_default(),
    }
}

fn emit(
    query: &Message,
    r: &Response,
    payload: u16,
    limit: u16,
    truncate: bool,
) -> Option<Vec<u8>> {
    let mut metadata = Metadata::new(
        query.metadata.id,
        MessageType::Response,
        query.metadata.op_code,
    );
    metadata.recursion_desired = query.metadata.recursion_desired;
    metadata.checking_disabled = query.metadata.checking_disabled;
    metadata.authoritative = r.authoritative;
    metadata.recursion_available = r.recursion_available;
    metadata.truncation = r.truncated || truncate;
    let rcode: ResponseCode = r.rcode.into();
    metadata.response_code = rcode;
    let edns = query.edns.as_ref().map(|asked| {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        e.set_version(0);
        e.set_dnssec_ok(asked.flags().dnssec_ok);
        if let Some(nsid) = r
            .nsid
            .as_deref()
            .and_then(|n| NSIDPayload::new(n.as_bytes()).ok())
        {
            e.options_mut().insert(EdnsOption::NSID(nsid));
        }
        e
    });
    let section = |records| {
        if truncate {
            Vec::new()
        } else {
            compressed(records)
        }
    };
    let mut buf = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_max_size(limit);
    let written = emit_message_parts(
        &metadata,
        &mut query.queries.iter(),
        &mut section(&r.answers).iter(),
        &mut section(&r.authorities).iter(),
        &mut section(&r.additionals).iter(),
        edns.as_ref(),
        None,
        &mut encoder,
    );
    // A message hickory cut (it sets TC itself) did not fit.
    let fits = written.is_ok_and(|h| h.metadata.truncation == metadata.truncation)
        && buf.len() <= usize::from(limit);
    fits.then_some(buf)
}

/// `records` to be written by [`Compressed`].
fn compressed(records: &[Record]) -> Vec<Compressed<'_>> {
    records.iter().map(Compressed).collect()
}

/// A record as an answer carries it, every name in it compressed (RFC 1035
/// §4.1.4) as a server compresses them: its owner, and the names in the
/// data of the types whose names may be (RFC 3597 §4: CNAME, NS, PTR, MX,
/// SOA). hickory's own record encoder stops compressing after 120 names a
/// message, which wrote a 62 KB answer of one owner in more than 64 KB;
/// the data of other types is hickory's, as it writes it.
struct Compressed<'a>(&'a Record);

impl BinEncodable for Compressed<'_> {
    fn emit(&self, encoder: &mut BinEncoder<'_>) -> Result<(), ProtoError> {
        let r = self.0;
        emit_name(&r.name, encoder)?;
        r.record_type().emit(encoder)?;
        r.dns_class.emit(encoder)?;
        encoder.emit_u32(r.ttl)?;
        let rdlength = encoder.place::<u16>()?;
        match &r.data {
            RData::CNAME(CNAME(name)) | RData::NS(NS(name)) | RData::PTR(PTR(name)) => {
                emit_name(name, encoder)?
            }
            RData::MX(mx) => {
                encoder.emit_u16(mx.preference)?;
                emit_name(&mx.exchange, encoder)?;
            }
            RData::SOA(soa) => {
                emit_name(&soa.mname, encoder)?;
                emit_name(&soa.rname, encoder)?;
                encoder.emit_u32(soa.serial)?;
                encoder.emit_i32(soa.refresh)?;
                encoder.emit_i32(soa.retry)?;
                encoder.emit_i32(soa.expire)?;
                encoder.emit_u32(soa.minimum)?;
            }
            other => other.emit(encoder)?,
        }
        // The encoder holds at most 65,535 bytes, so the length fits.
        let len = encoder.len_since_place(&rdlength);
        rdlength.replace(encoder, len as u16)
    }
}

/// Writes `name` label by label until the rest of it was written before,
/// then a pointer there: the longest suffix found wins. The places a name
/// can point at are hickory's (the encoder's table: where earlier names
/// and their suffixes begin, byte for byte, below offset 0x3FFF), so names
/// hickory wrote (the question) and names written here point at each other.
fn emit_name(name: &Name, encoder: &mut BinEncoder<'_>) -> Result<(), ProtoError> {
    // Where each label starts: a name has at most 127 (RFC 1035 §2.3.4).
    let mut starts = [0usize; 128];
    let mut labels = 0;
    for label in name.iter() {
        *starts
            .get_mut(labels)
            .ok_or(ProtoError::Message("a name of more than 127 labels"))? = encoder.offset();
        labels += 1;
        encoder.emit_character_data(label)?;
    }
    let end = encoder.offset();
    for &start in &starts[..labels] {
        match encoder.get_label_pointer(start, end) {
            Some(at) if at & 0xC000 == 0 => {
                encoder.set_offset(start);
                encoder.trim();
                return encoder.emit_u16(0xC000 | at);
            }
            _ => encoder.store_label_pointer(start, end),
        }
    }
    encoder.emit(0)
}

/// The answer to a query whose header reads but whose body does not
/// (FORMERR, RFC 1035 §4.1.1), or to a client outside `allow` (REFUSED):
/// the query's ID, QR, its opcode, the rcode. `head` is the query's first
/// four bytes.
pub fn bare_header(head: [u8; 4], rcode: u16) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..2].copy_from_slice(&head[..2]);
    out[2] = 0x80 | (head[2] & 0x78);
    out[3] = (rcode & 0x0F) as u8;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::RecordType;
    use hickory_proto::rr::rdata::MX;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// A large answer is written as tightly as a server writes it, however
    /// many names it holds: each owner equal to the question a pointer to
    /// it (2 bytes), each name in MX and SOA data its new labels and a
    /// pointer to the rest. The reference sizes count those bytes.
    #[test]
    fn large_answers_compress_every_name() {
        let qname = name("BiG.Example.test.");
        let mut query = Message::query();
        query.add_query(Query::query(qname.clone(), RecordType::TXT));
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        query.set_edns(edns);
        // Header, question (18-byte name, type, class), OPT.
        let frame = 12 + 18 + 4 + 11;
        // Owner pointer, type, class, TTL, RDLENGTH.
        let fixed = 2 + 10;

        let txt: Vec<Record> = (0..300)
            .map(|i| {
                let text = format!("{i:05}{}", "x".repeat(95));
                Record::from_rdata(qname.clone(), 300, RData::TXT(TXT::new(vec![text])))
            })
            .collect();
        let txt_size = frame + 300 * (fixed + 101);

        // The first exchange is `mail` and a pointer into the question,
        // each later one a pointer to the first.
        let mx: Vec<Record> = (0..300)
            .map(|i| {
                let exchange = name("mail.Example.test.");
                Record::from_rdata(qname.clone(), 300, RData::MX(MX::new(i, exchange)))
            })
            .collect();
        let soa = Record::from_rdata(
            name("Example.test."),
            60,
            RData::SOA(SOA::new(
                name("ns.Example.test."),
                name("hostmaster.Example.test."),
                1,
                2,
                3,
                4,
                60,
            )),
        );
        let mx_size = frame + 300 * (fixed + 2 + 2) + 5 + fixed + (3 + 2) + (11 + 2) + 20;

        for (answers, authorities, size) in [(txt, Vec::new(), txt_size), (mx, vec![soa], mx_size)]
        {
            let response = Response::records(false, answers.clone(), authorities.clone());
            let bytes = encode(&query, &response, 1232, u16::MAX);
            assert!(
                bytes.len() <= size,
                "{} bytes, a server's {size}",
                bytes.len()
            );
            let read = Message::from_vec(&bytes).unwrap();
            assert!(!read.metadata.truncation);
            assert_eq!((read.answers, read.authorities), (answers, authorities));
        }
    }
}
