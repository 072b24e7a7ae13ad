//! DNS wire format for the common case, without a DNS library: read a plain
//! query (one question, maybe an EDNS OPT record) and write a local answer
//! (A/AAAA records, or NODATA with the zone's SOA) straight into a buffer.
//! Anything less plain is left to the general path, which uses hickory.
//!
//! Pure: bytes in, bytes out, no allocation. RFC 1035 §4 for the message
//! layout, RFC 6891 §6 for OPT.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::zone::{NameKey, Soa};

const HEADER: usize = 12;
/// RFC 1035 §4.1.4: a pointer to the question name, which always starts
/// right after the header.
const QNAME_POINTER: [u8; 2] = [0xC0, HEADER as u8];
const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_SOA: u16 = 6;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
/// An OPT record without options: root name, type, payload, rcode/version,
/// flags, rdlength.
const OPT_LEN: usize = 11;

/// A query plain enough for the fast path.
#[derive(Debug)]
pub struct Query {
    pub id: u16,
    /// RD and CD, copied to the answer.
    flags_copied: u8,
    /// Where the question (name, type, class) ends; it is echoed as sent.
    question_end: usize,
    /// The question name as the zone table keys it.
    pub key: NameKey,
    pub qtype: u16,
    /// The client's EDNS UDP payload size, if it sent OPT.
    pub edns_payload: Option<u16>,
    /// DO in the client's OPT (RFC 3225).
    pub dnssec_ok: bool,
}

impl Query {
    /// CD as the client sent it (RFC 4035 §3.2.2).
    pub fn checking_disabled(&self) -> bool {
        self.flags_copied & 0x10 != 0
    }
}

/// Reads `msg` as a plain query: QR=0, opcode QUERY, not truncated, one
/// question of class IN, no answer or authority records, and at most an
/// EDNS(0) OPT record (version 0) as the only additional record. `None` for
/// anything else, which then takes the general path.
pub fn parse_query(msg: &[u8]) -> Option<Query> {
    if msg.len() < HEADER {
        return None;
    }
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    let (qr, opcode, tc) = (flags >> 15, (flags >> 11) & 0xF, (flags >> 9) & 1);
    let count = |i: usize| u16::from_be_bytes([msg[4 + 2 * i], msg[5 + 2 * i]]);
    if qr != 0 || opcode != 0 || tc != 0 || count(0) != 1 || count(1) != 0 || count(2) != 0 {
        return None;
    }
    let additional = count(3);
    // The question name: labels, no compression (RFC 1035 §4.1.4 allows it,
    // but no stub compresses a lone question). Keyed as it is read.
    let mut labels = Labels {
        msg,
        pos: HEADER,
        ended: false,
    };
    let key = NameKey::from_labels(&mut labels);
    let pos = labels.pos;
    if !labels.ended {
        return None;
    }
    let key = key?;
    let qtype = u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]);
    let qclass = u16::from_be_bytes([*msg.get(pos + 2)?, *msg.get(pos + 3)?]);
    let question_end = pos + 4;
    if qclass != CLASS_IN {
        return None;
    }
    let mut dnssec_ok = false;
    let edns_payload = match additional {
        0 if question_end == msg.len() => None,
        1 => {
            // Root name, type OPT, payload, extended rcode, version, flags, rdlength.
            let opt = msg.get(question_end..question_end + OPT_LEN)?;
            let rdlength = usize::from(u16::from_be_bytes([opt[9], opt[10]]));
            let version = opt[6];
            if opt[0] != 0
                || u16::from_be_bytes([opt[1], opt[2]]) != TYPE_OPT
                || version != 0
                || question_end + OPT_LEN + rdlength != msg.len()
            {
                return None;
            }
            // Options (code, length, data) must fill the record exactly, as
            // hickory checks on the general path (FORMERR otherwise).
            let mut options = &msg[question_end + OPT_LEN..];
            while !options.is_empty() {
                let len = usize::from(u16::from_be_bytes([*options.get(2)?, *options.get(3)?]));
                options = options.get(4 + len..)?;
            }
            dnssec_ok = opt[7] & 0x80 != 0;
            Some(u16::from_be_bytes([opt[3], opt[4]]))
        }
        _ => return None,
    };
    Some(Query {
        id: u16::from_be_bytes([msg[0], msg[1]]),
        // RD (bit 8 of the flags, kept in bit 0) and CD (bit 4).
        flags_copied: (((flags >> 8) as u8) & 0x01) | ((flags as u8) & 0x10),
        question_end,
        key,
        qtype,
        edns_payload,
        dnssec_ok,
    })
}

/// The labels of an uncompressed name in a message; `ended` once the root
/// label was read (a pointer, a label over 63 bytes or the end of the
/// message stop it short).
struct Labels<'a> {
    msg: &'a [u8],
    pos: usize,
    ended: bool,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let len = usize::from(*self.msg.get(self.pos)?);
        if len == 0 {
            self.pos += 1;
            self.ended = true;
            return None;
        }
        if len > 63 {
            return None;
        }
        let label = self.msg.get(self.pos + 1..self.pos + 1 + len)?;
        self.pos += 1 + len;
        Some(label)
    }
}

/// The largest UDP answer the client takes: 512 without EDNS (RFC 1035
/// §4.2.1), else its payload size, never above `cap`.
pub fn udp_limit(q: &Query, cap: u16) -> usize {
    usize::from(q.edns_payload.map_or(512, |p| p.clamp(512, cap)))
}

/// What a fast answer holds.
pub enum Local<'a> {
    /// A/AAAA records at the question name.
    Addrs {
        v4: &'a [Ipv4Addr],
        v6: &'a [Ipv6Addr],
        ttl: u32,
    },
    /// No data of the asked type: the zone's SOA in the authority section.
    NoData(Soa<'a>),
}

/// Writes the authoritative answer to `query` (whose bytes are `msg`) into
/// `out`: the CNAME `chain` inside the table (targets and TTLs, maybe
/// empty), then `answer` for its last name. Its length, or `None` when it
/// would not fit `limit` (the general path then answers with TC=1), or for
/// NODATA after a chain (left to the general path). `edns_payload` is what
/// our OPT announces.
pub fn write_local(
    msg: &[u8],
    q: &Query,
    chain: &[(&str, u32)],
    answer: &Local<'_>,
    edns_payload: u16,
    limit: usize,
    out: &mut [u8],
) -> Option<usize> {
    let mut w = Writer { out, len: 0 };
    let question = &msg[HEADER..q.question_end];
    let (answers, authorities) = match answer {
        Local::Addrs { v4, v6, .. } => (chain.len() + v4.len() + v6.len(), 0),
        Local::NoData(_) if chain.is_empty() => (0, 1),
        Local::NoData(_) => return None,
    };
    let additional = usize::from(q.edns_payload.is_some());
    w.put(&q.id.to_be_bytes())?;
    // QR, opcode QUERY, AA, RD as asked; RA, CD as asked, rcode NOERROR.
    w.put(&[
        0x84 | (q.flags_copied & 0x01),
        0x80 | (q.flags_copied & 0x10),
    ])?;
    for c in [1, answers, authorities, additional] {
        w.put(&(c as u16).to_be_bytes())?;
    }
    w.put(question)?;
    // Each record's owner points at the name before it: the question, then
    // each CNAME target as written.
    let mut owner = QNAME_POINTER;
    for &(target, ttl) in chain {
        w.put(&owner)?;
        w.put(&TYPE_CNAME.to_be_bytes())?;
        w.put(&CLASS_IN.to_be_bytes())?;
        w.put(&ttl.to_be_bytes())?;
        let rdlength_at = w.len;
        w.put(&[0, 0])?;
        let name_at = w.len;
        for label in target.split('.') {
            w.put(&[label.len() as u8])?;
            w.put(label.as_bytes())?;
        }
        w.put(&[0])?;
        let rdlength = (w.len - name_at) as u16;
        w.out[rdlength_at..rdlength_at + 2].copy_from_slice(&rdlength.to_be_bytes());
        if name_at >= 0x3FFF {
            return None;
        }
        owner = [0xC0 | (name_at >> 8) as u8, name_at as u8];
    }
    match answer {
        Local::Addrs { v4, v6, ttl } => {
            for a in v4.iter() {
                w.rr(&owner, TYPE_A, *ttl, &a.octets())?;
            }
            for a in v6.iter() {
                w.rr(&owner, TYPE_AAAA, *ttl, &a.octets())?;
            }
        }
        Local::NoData(soa) => {
            // The apex is the question name or one of its parents: point at it.
            let apex = pointer_to_suffix(msg, q, soa.apex)?;
            let mut rdata = [0u8; 2 + 1 + 10 + 2 + 20];
            let mut r = Writer {
                out: &mut rdata,
                len: 0,
            };
            r.put(&apex)?;
            r.put(b"\x0ahostmaster")?;
            r.put(&apex)?;
            for v in [
                soa.serial,
                soa.refresh as u32,
                soa.retry as u32,
                soa.expire as u32,
                soa.minimum,
            ] {
                r.put(&v.to_be_bytes())?;
            }
            let rdata_len = r.len;
            w.rr(&apex, TYPE_SOA, soa.minimum, &rdata[..rdata_len])?;
        }
    }
    w.opt(q, edns_payload)?;
    (w.len <= limit).then_some(w.len)
}

/// Forwarded records as they follow the question in a response: the form
/// the cache keeps next to the parsed reply, so that a hit is sent by
/// copying bytes. Compression pointers stay valid because the question
/// that precedes them, echoed from the client, has the same length.
#[derive(Debug)]
pub struct Records {
    bytes: Box<[u8]>,
    /// Where each record's TTL sits in `bytes`, and its value when stored.
    ttls: Box<[(u16, u32)]>,
    answers: u16,
    authorities: u16,
    rcode: u8,
}

impl Records {
    /// The answer and authority records of `msg`, a response with one
    /// question and nothing in the additional section. `None` if it is not
    /// that, or does not read.
    pub fn from_response(msg: &[u8]) -> Option<Records> {
        let count = |i: usize| u16::from_be_bytes([msg[4 + 2 * i], msg[5 + 2 * i]]);
        if msg.len() < HEADER || count(0) != 1 || count(3) != 0 {
            return None;
        }
        let (answers, authorities) = (count(1), count(2));
        let mut pos = skip_name(msg, HEADER)? + 4;
        let start = pos;
        let mut ttls = Vec::with_capacity(usize::from(answers + authorities));
        for _ in 0..answers + authorities {
            pos = skip_name(msg, pos)? + 4;
            let ttl = u32::from_be_bytes(msg.get(pos..pos + 4)?.try_into().ok()?);
            ttls.push(((pos - start) as u16, ttl));
            let rdlength =
                usize::from(u16::from_be_bytes([*msg.get(pos + 4)?, *msg.get(pos + 5)?]));
            pos += 6 + rdlength;
        }
        Some(Records {
            bytes: msg.get(start..pos)?.into(),
            ttls: ttls.into(),
            answers,
            authorities,
            rcode: msg[3] & 0x0F,
        })
    }

    /// The response code these records go with (NOERROR or NXDOMAIN).
    pub fn rcode(&self) -> u8 {
        self.rcode
    }
}

/// Whether a question's name holds a compression pointer into the header
/// (offsets 0–11), where no name can be. hickory reads such a question and
/// echoes its bytes unchanged in the answer, where the pointer then reads
/// the answer's own header: an answer that does not parse.
pub fn question_points_into_header(msg: &[u8]) -> bool {
    let Some(&[hi, lo]) = msg.get(4..6) else {
        return false;
    };
    let mut pos = HEADER;
    for _ in 0..u16::from_be_bytes([hi, lo]) {
        loop {
            let Some(&len) = msg.get(pos) else {
                return false;
            };
            match len {
                0 => {
                    pos += 1;
                    break;
                }
                l if l & 0xC0 == 0xC0 => {
                    let Some(&low) = msg.get(pos + 1) else {
                        return false;
                    };
                    if (usize::from(l & 0x3F) << 8 | usize::from(low)) < HEADER {
                        return true;
                    }
                    pos += 2;
                    break;
                }
                l if l <= 63 => pos += 1 + usize::from(l),
                _ => return false,
            }
        }
        pos += 4;
    }
    false
}

/// Where the name at `pos` ends: after its root label or its pointer.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            l if l & 0xC0 == 0xC0 => return Some(pos + 2),
            l if l <= 63 => pos += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// Writes the answer to `query` from cached `records` into `out`, every TTL
/// lowered by the `spent` seconds they have been kept: not authoritative,
/// recursion available, as the general path sends a forwarded answer. Its
/// length, or `None` when it would not fit `limit`.
pub fn write_cached(
    msg: &[u8],
    q: &Query,
    records: &Records,
    spent: u32,
    edns_payload: u16,
    limit: usize,
    out: &mut [u8],
) -> Option<usize> {
    let mut w = Writer { out, len: 0 };
    w.put(&q.id.to_be_bytes())?;
    // QR, opcode QUERY, RD as asked; RA, CD as asked, the rcode.
    w.put(&[
        0x80 | (q.flags_copied & 0x01),
        0x80 | (q.flags_copied & 0x10) | records.rcode,
    ])?;
    let additional = u16::from(q.edns_payload.is_some());
    for c in [1, records.answers, records.authorities, additional] {
        w.put(&c.to_be_bytes())?;
    }
    w.put(&msg[HEADER..q.question_end])?;
    let start = w.len;
    w.put(&records.bytes)?;
    for &(at, ttl) in records.ttls.iter() {
        let at = start + usize::from(at);
        w.out[at..at + 4].copy_from_slice(&ttl.saturating_sub(spent).to_be_bytes());
    }
    w.opt(q, edns_payload)?;
    (w.len <= limit).then_some(w.len)
}

/// A compression pointer to the part of the question name that spells
/// `suffix` (lower-case, no final dot).
fn pointer_to_suffix(msg: &[u8], q: &Query, suffix: &str) -> Option<[u8; 2]> {
    let name = q.key.as_str();
    let skip = name.len().checked_sub(suffix.len())?;
    if &name[skip..] != suffix || (skip > 0 && name.as_bytes()[skip - 1] != b'.') {
        return None;
    }
    // Walk the wire labels until `skip` text bytes are behind us.
    let (mut pos, mut text) = (HEADER, 0);
    while text < skip {
        let len = usize::from(*msg.get(pos)?);
        pos += 1 + len;
        text += len + 1;
    }
    (text == skip && pos < 0x3FFF).then_some([0xC0 | (pos >> 8) as u8, pos as u8])
}

struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len + bytes.len();
        self.out.get_mut(self.len..end)?.copy_from_slice(bytes);
        self.len = end;
        Some(())
    }

    /// Our OPT record, announcing `payload`, if the query had one.
    fn opt(&mut self, q: &Query, payload: u16) -> Option<()> {
        if q.edns_payload.is_some() {
            self.put(&[0])?;
            self.put(&TYPE_OPT.to_be_bytes())?;
            self.put(&payload.to_be_bytes())?;
            self.put(&[0, 0, 0, 0, 0, 0])?;
        }
        Some(())
    }

    /// One resource record of class IN.
    fn rr(&mut self, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Option<()> {
        self.put(owner)?;
        self.put(&rtype.to_be_bytes())?;
        self.put(&CLASS_IN.to_be_bytes())?;
        self.put(&ttl.to_be_bytes())?;
        self.put(&(rdata.len() as u16).to_be_bytes())?;
        self.put(rdata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery, ResponseCode};
    use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

    fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Message {
        let mut m = Message::query();
        m.metadata.id = 0xBEEF;
        m.metadata.recursion_desired = true;
        m.metadata.checking_disabled = true;
        m.add_query(HQuery::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some(p) = edns {
            let mut e = Edns::new();
            e.set_max_payload(p);
            m.set_edns(e);
        }
        m
    }

    fn answer(m: &Message, local: &Local<'_>) -> Message {
        let bytes = m.to_vec().unwrap();
        let q = parse_query(&bytes).expect("plain query");
        let limit = udp_limit(&q, 1232);
        let mut out = [0u8; 2048];
        let n = write_local(&bytes, &q, &[], local, limit as u16, limit, &mut out).unwrap();
        Message::from_vec(&out[..n]).unwrap()
    }

    #[test]
    fn addresses_decode_as_hickory_reads_them() {
        let v4 = ["10.1.0.5".parse().unwrap(), "10.1.0.6".parse().unwrap()];
        let v6 = ["fd00::5".parse().unwrap()];
        let asked = "Ws.Workspace.EastUS.api.azureml.ms.";
        let r = answer(
            &query(asked, RecordType::ANY, Some(4096)),
            &Local::Addrs {
                v4: &v4,
                v6: &v6,
                ttl: 60,
            },
        );
        assert_eq!(r.metadata.id, 0xBEEF);
        assert_eq!(r.metadata.message_type, MessageType::Response);
        assert_eq!(r.metadata.op_code, OpCode::Query);
        assert!(r.metadata.authoritative && r.metadata.recursion_available);
        assert!(r.metadata.recursion_desired && r.metadata.checking_disabled);
        assert!(!r.metadata.truncation && !r.metadata.authentic_data);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            r.queries[0].name().to_ascii(),
            asked,
            "question echoed as asked"
        );
        let got: Vec<String> = r
            .answers
            .iter()
            .map(|a| format!("{} {} {} {}", a.name.to_ascii(), a.ttl, a.dns_class, a.data))
            .collect();
        assert_eq!(
            got,
            [
                format!("{asked} 60 IN 10.1.0.5"),
                format!("{asked} 60 IN 10.1.0.6"),
                format!("{asked} 60 IN fd00::5"),
            ]
        );
        assert_eq!(
            r.edns.unwrap().max_payload(),
            1232,
            "our cap, not the client's 4096"
        );
    }

    #[test]
    fn nodata_carries_the_zone_soa() {
        let soa = Soa {
            apex: "api.azureml.ms",
            serial: 7,
            refresh: 3600,
            retry: 600,
            expire: 86_400,
            minimum: 60,
        };
        for (asked, edns) in [
            ("ws.workspace.eastus.API.azureml.ms.", None),
            ("api.azureml.ms.", Some(1232)),
        ] {
            let r = answer(&query(asked, RecordType::AAAA, edns), &Local::NoData(soa));
            assert!(r.answers.is_empty());
            assert_eq!(r.authorities.len(), 1);
            let a = &r.authorities[0];
            assert_eq!(a.name.to_ascii().to_lowercase(), "api.azureml.ms.");
            assert_eq!(a.ttl, 60);
            let RData::SOA(s) = &a.data else {
                panic!("{a:?}")
            };
            assert_eq!(s.mname.to_ascii().to_lowercase(), "api.azureml.ms.");
            assert_eq!(
                s.rname.to_ascii().to_lowercase(),
                "hostmaster.api.azureml.ms."
            );
            assert_eq!(
                (s.serial, s.refresh, s.retry, s.expire, s.minimum),
                (7, 3600, 600, 86_400, 60)
            );
            assert_eq!(r.edns.is_some(), edns.is_some());
        }
    }

    #[test]
    fn a_chain_inside_the_table_points_each_owner_at_the_last_target() {
        let m = query("Alias.Corp.Example.", RecordType::A, None)
            .to_vec()
            .unwrap();
        let q = parse_query(&m).unwrap();
        let chain = [
            ("mid.corp.example", 30),
            ("st.privatelink.blob.core.windows.net", 20),
        ];
        let v4 = ["10.1.0.9".parse().unwrap()];
        let mut out = [0u8; 512];
        let local = Local::Addrs {
            v4: &v4,
            v6: &[],
            ttl: 10,
        };
        let n = write_local(&m, &q, &chain, &local, 512, 512, &mut out).unwrap();
        let r = Message::from_vec(&out[..n]).unwrap();
        let lines: Vec<String> = r
            .answers
            .iter()
            .map(|a| format!("{} {} {}", a.name.to_ascii(), a.ttl, a.data))
            .collect();
        assert_eq!(
            lines,
            [
                "Alias.Corp.Example. 30 mid.corp.example.",
                "mid.corp.example. 20 st.privatelink.blob.core.windows.net.",
                "st.privatelink.blob.core.windows.net. 10 10.1.0.9",
            ]
        );
        let soa = Soa {
            apex: "corp.example",
            serial: 1,
            refresh: 1,
            retry: 1,
            expire: 1,
            minimum: 1,
        };
        assert!(write_local(&m, &q, &chain, &Local::NoData(soa), 512, 512, &mut out).is_none());
    }

    #[test]
    fn only_plain_queries_take_the_fast_path() {
        let plain = query("a.example.", RecordType::A, Some(1232));
        assert!(parse_query(&plain.to_vec().unwrap()).is_some());
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut m = plain.clone();
        m.metadata.message_type = MessageType::Response;
        cases.push(("QR=1", m.to_vec().unwrap()));
        let mut m = plain.clone();
        m.metadata.op_code = OpCode::Notify;
        cases.push(("NOTIFY", m.to_vec().unwrap()));
        let mut m = plain.clone();
        m.add_query(HQuery::query(
            Name::from_ascii("b.example.").unwrap(),
            RecordType::A,
        ));
        cases.push(("two questions", m.to_vec().unwrap()));
        let mut m = plain.clone();
        m.edns.as_mut().unwrap().set_version(1);
        cases.push(("EDNS version 1", m.to_vec().unwrap()));
        let mut m = plain.clone();
        m.queries[0].query_class = DNSClass::CH;
        cases.push(("class CH", m.to_vec().unwrap()));
        let mut trailing = plain.to_vec().unwrap();
        trailing.push(0);
        cases.push(("trailing byte", trailing));
        let mut tc = plain.to_vec().unwrap();
        tc[2] |= 0x02;
        cases.push(("TC=1", tc));
        // An EDNS option claiming 64 bytes but carrying 8.
        let mut bad_option = plain.to_vec().unwrap();
        let rdlength_at = bad_option.len() - 2;
        bad_option[rdlength_at..].copy_from_slice(&12u16.to_be_bytes());
        bad_option.extend([0, 10, 0, 64, 1, 2, 3, 4, 5, 6, 7, 8]);
        cases.push(("EDNS option longer than the record", bad_option));
        let bare = query("a.example.", RecordType::A, None).to_vec().unwrap();
        cases.push(("cut short", bare[..bare.len() - 1].to_vec()));
        // A pointer in the question name.
        let mut pointer = bare[..12].to_vec();
        pointer.extend([0xC0, 0x0C, 0, 1, 0, 1]);
        cases.push(("compressed name", pointer));
        for (what, bytes) in cases {
            assert!(parse_query(&bytes).is_none(), "{what}");
        }
        assert!(parse_query(&[0; 11]).is_none());
    }

    #[test]
    fn well_formed_edns_options_are_fine() {
        let mut m = query("a.example.", RecordType::A, Some(1232))
            .to_vec()
            .unwrap();
        let rdlength_at = m.len() - 2;
        m[rdlength_at..].copy_from_slice(&12u16.to_be_bytes());
        // A client cookie (RFC 7873): code 10, 8 bytes.
        m.extend([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(parse_query(&m).unwrap().edns_payload, Some(1232));
    }

    #[test]
    fn too_big_for_the_client_is_left_to_the_general_path() {
        let v4: Vec<Ipv4Addr> = (0..40).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        let m = query("a.example.", RecordType::A, None).to_vec().unwrap();
        let q = parse_query(&m).unwrap();
        assert_eq!(udp_limit(&q, 1232), 512);
        let mut out = [0u8; 2048];
        let local = Local::Addrs {
            v4: &v4,
            v6: &[],
            ttl: 1,
        };
        assert!(write_local(&m, &q, &[], &local, 512, 512, &mut out).is_none());
        assert!(write_local(&m, &q, &[], &local, 1232, 1232, &mut out).is_some());
    }

    /// A question whose name points into the header (found by fuzzing:
    /// hickory echoed it and its own answer did not parse) is caught; one
    /// pointing at an earlier question is not.
    #[test]
    fn questions_pointing_into_the_header() {
        let mut m = vec![0x02, 0x34, 0x01, 0, 0, 2, 0, 0, 0, 0, 0, 0];
        m.extend(b"\x04dual\x04corp\x07example\x00\x00\x01\x00\x01");
        let plain = m.clone();
        m.extend(b"\x03mid\xc0\x00\x00\x01\x00\x01");
        assert!(question_points_into_header(&m));
        let mut back = plain.clone();
        back.extend(b"\x03mid\xc0\x11\x00\x01\x00\x01");
        assert!(!question_points_into_header(&back));
        assert!(!question_points_into_header(&plain[..20]));
    }

    /// Cached records come back under the client's question, compression
    /// intact, each TTL lowered by the time spent (never below 0), with the
    /// stored rcode.
    #[test]
    fn cached_records_are_sent_as_stored() {
        use hickory_proto::rr::Record;
        use hickory_proto::rr::rdata::{CNAME, SOA};
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let mut stored = Message::response(0, OpCode::Query);
        stored.metadata.response_code = ResponseCode::NXDomain;
        stored.add_query(HQuery::query(n("www.example.com."), RecordType::A));
        stored.add_answer(Record::from_rdata(
            n("www.example.com."),
            300,
            RData::CNAME(CNAME(n("gone.example.com."))),
        ));
        stored.add_authority(Record::from_rdata(
            n("example.com."),
            5,
            RData::SOA(SOA::new(
                n("ns.example.com."),
                n("h.example.com."),
                1,
                2,
                3,
                4,
                5,
            )),
        ));
        let records = Records::from_response(&stored.to_vec().unwrap()).unwrap();
        assert_eq!(records.rcode(), 3);
        let m = query("WWW.example.COM.", RecordType::A, Some(4096))
            .to_vec()
            .unwrap();
        let q = parse_query(&m).unwrap();
        let mut out = [0u8; 2048];
        let len = write_cached(&m, &q, &records, 10, 1232, 1232, &mut out).unwrap();
        let got = Message::from_vec(&out[..len]).unwrap();
        assert_eq!(got.metadata.id, 0xBEEF);
        assert_eq!(got.metadata.message_type, MessageType::Response);
        assert_eq!(got.metadata.response_code, ResponseCode::NXDomain);
        assert!(got.metadata.recursion_desired && got.metadata.checking_disabled);
        assert!(!got.metadata.authoritative);
        assert_eq!(got.queries[0].name(), &n("WWW.example.COM."));
        assert_eq!(got.answers[0].ttl, 290);
        assert_eq!(
            got.answers[0].data,
            RData::CNAME(CNAME(n("gone.example.com.")))
        );
        assert_eq!(got.authorities[0].ttl, 0);
        assert_eq!(got.edns.as_ref().map(|e| e.max_payload()), Some(1232));
        // Past the limit: left to the general path (TC=1).
        assert!(write_cached(&m, &q, &records, 0, 1232, 40, &mut out).is_none());
    }
}
