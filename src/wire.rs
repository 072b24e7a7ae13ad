//! DNS wire format for the hot cases, without a DNS library: read a plain
//! query (one question, maybe an EDNS OPT record) and write the answers
//! that [`crate::resolve::plan`] decides for it (local addresses, NODATA
//! with the zone's SOA, an error or a refusal) and forwarded answers the
//! cache keeps as bytes (or, under a zone amldns owns, a negative one made
//! amldns's own), straight into a buffer. Anything less plain is
//! left to the general path ([`crate::codec`]), which writes the same bytes
//! for the same plan (`tests/it/encoders.rs` holds them to it): every name
//! is compressed, pointing where hickory's encoder would point.
//!
//! Pure: bytes in, bytes out, no allocation. RFC 1035 §4 for the message
//! layout, RFC 6891 §6 for OPT.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::names::NameKey;
use crate::resolve::{Asked, AskedEdns, CLASS_IN, Question, Transport, rcode, rtype};
use crate::soa::Negative;
use crate::zone::Soa;

const HEADER: usize = 12;
/// RFC 1035 §4.1.4: a pointer to the question name, which always starts
/// right after the header.
const QNAME_POINTER: [u8; 2] = [0xC0, HEADER as u8];
/// An OPT record without options: root name, type, payload, rcode/version,
/// flags, rdlength.
const OPT_LEN: usize = 11;
/// RFC 3225: the DO bit, in the first byte of the OPT record's flags.
const DO_BIT: u8 = 0x80;
/// RFC 5001: the NSID option's code.
const OPTION_NSID: u16 = 3;
/// hickory's encoder keeps at most this many places a name can point to;
/// the same limit gives the same bytes.
const POINTABLE: usize = 64;
/// A name has at most 127 labels (255 bytes, RFC 1035 §2.3.4).
const MAX_LABELS: usize = 128;

/// The largest query read, over TCP as over UDP. One question with an OPT
/// record is at most 12 + 255 + 4 + 11 bytes plus options; 512 would do for
/// most, but EDNS padding (RFC 8467: queries padded to blocks of 128),
/// cookies (RFC 7873), client subnet (RFC 7871) and a TSIG (RFC 8945: key
/// and algorithm names up to 255 bytes each, a MAC of up to 64) can take a
/// legitimate query past it. 4 KiB leaves room for all of them and bounds a
/// connection's reads at 4 KiB × 17 rather than 64 KiB × 17.
pub const MAX_QUERY: usize = 4096;

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
    /// The client's OPT record, if it sent one.
    pub edns: Option<AskedEdns>,
}

impl Query {
    /// The query as the resolution step reads it.
    pub fn asked(&self, client: IpAddr) -> Asked<'_> {
        Asked {
            client,
            transport: Transport::Udp,
            opcode: 0,
            recursion_desired: self.recursion_desired(),
            question: Some(Question {
                name: Some(&self.key),
                qtype: self.qtype,
                qclass: CLASS_IN,
            }),
            edns: self.edns,
        }
    }

    /// RD as the client sent it (RFC 1035 §4.1.1).
    pub fn recursion_desired(&self) -> bool {
        self.flags_copied & 0x01 != 0
    }

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
    // but no stub compresses a lone question). Keyed once its end is found.
    let mut pos = HEADER;
    loop {
        match *msg.get(pos)? {
            0 => break,
            len if len > 63 => return None,
            len => pos += 1 + usize::from(len),
        }
    }
    let name = &msg[HEADER..pos];
    let pos = pos + 1;
    let qtype = u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]);
    let qclass = u16::from_be_bytes([*msg.get(pos + 2)?, *msg.get(pos + 3)?]);
    let question_end = pos + 4;
    if qclass != CLASS_IN {
        return None;
    }
    let edns = match additional {
        0 if question_end == msg.len() => None,
        1 => {
            // Root name, type OPT, payload, extended rcode, version, flags, rdlength.
            let opt = msg.get(question_end..question_end + OPT_LEN)?;
            let rdlength = usize::from(u16::from_be_bytes([opt[9], opt[10]]));
            let version = opt[6];
            if opt[0] != 0
                || u16::from_be_bytes([opt[1], opt[2]]) != rtype::OPT
                || version != 0
                || question_end + OPT_LEN + rdlength != msg.len()
            {
                return None;
            }
            // Options (code, length, data) must fill the record exactly, as
            // hickory checks on the general path (FORMERR otherwise).
            let mut options = &msg[question_end + OPT_LEN..];
            let mut nsid = false;
            while !options.is_empty() {
                let code = u16::from_be_bytes([options[0], *options.get(1)?]);
                let len = usize::from(u16::from_be_bytes([*options.get(2)?, *options.get(3)?]));
                nsid |= code == OPTION_NSID;
                options = options.get(4 + len..)?;
            }
            Some(AskedEdns {
                version,
                payload: u16::from_be_bytes([opt[3], opt[4]]),
                dnssec_ok: opt[7] & DO_BIT != 0,
                nsid,
            })
        }
        _ => return None,
    };
    let mut query = Some(Query {
        id: u16::from_be_bytes([msg[0], msg[1]]),
        // RD (bit 8 of the flags, kept in bit 0) and CD (bit 4).
        flags_copied: (((flags >> 8) as u8) & 0x01) | ((flags as u8) & 0x10),
        question_end,
        key: NameKey::empty(),
        qtype,
        edns,
    });
    // Keyed in its place, and returned from there: a key is 256 bytes to
    // move.
    if let Some(q) = &mut query
        && !q.key.set_wire(name)
    {
        query = None;
    }
    query
}

/// The largest UDP answer the client takes: 512 without EDNS (RFC 1035
/// §4.2.1), else its payload size, never below 512 (RFC 6891 §6.2.5) nor
/// above `cap`. It is also the payload our OPT announces.
pub fn udp_limit(edns: Option<AskedEdns>, cap: u16) -> u16 {
    edns.map_or(512, |e| e.payload.clamp(512, cap))
}

/// The header flags of an answer.
#[derive(Debug, Clone, Copy)]
pub struct Flags {
    pub rcode: u16,
    pub authoritative: bool,
    pub truncated: bool,
    pub recursion_available: bool,
}

/// Writes an answer with no records (an error, a refusal, or TC=1): the
/// header, the question as asked, our OPT.
pub fn write_bare(
    msg: &[u8],
    q: &Query,
    flags: Flags,
    limit: u16,
    out: &mut [u8],
) -> Option<usize> {
    let mut w = Writer::new(out);
    w.head(msg, q, flags, 0, 0)?;
    w.finish(q, flags.rcode, limit)
}

/// What an authoritative answer ends in: from the table, addresses or
/// NODATA; NXDOMAIN only where upstream said so under a zone amldns owns.
pub enum Local<'a> {
    /// A/AAAA records at the last name.
    Addrs {
        v4: &'a [Ipv4Addr],
        v6: &'a [Ipv6Addr],
        ttl: u32,
    },
    /// No data of the asked type: the zone's SOA in the authority section,
    /// when one is known.
    NoData(Option<Negative<'a>>),
    /// No such name (NXDOMAIN): the zone's SOA in the authority section.
    NxDomain(Soa<'a>),
}

/// Writes the authoritative answer to `query` (whose bytes are `msg`) into
/// `out`: the CNAME `chain` inside the table (targets and TTLs, maybe
/// empty), then `answer` for its last name. Its length, or `None` when it
/// would not fit `limit` (the general path then answers with TC=1).
pub fn write_local(
    msg: &[u8],
    q: &Query,
    chain: &[(&str, u32)],
    answer: &Local<'_>,
    limit: u16,
    out: &mut [u8],
) -> Option<usize> {
    let (answers, authorities, rcode) = match answer {
        Local::Addrs { v4, v6, .. } => (chain.len() + v4.len() + v6.len(), 0, rcode::NOERROR),
        Local::NoData(soa) => (chain.len(), usize::from(soa.is_some()), rcode::NOERROR),
        Local::NxDomain(_) => (chain.len(), 1, rcode::NXDOMAIN),
    };
    let flags = Flags {
        rcode,
        authoritative: true,
        truncated: false,
        recursion_available: true,
    };
    let mut w = Writer::new(out);
    w.head(msg, q, flags, answers, authorities)?;
    // Each record's owner is the name before it: the question, then each
    // CNAME target.
    let mut owner: Option<&str> = None;
    for &(target, ttl) in chain {
        w.owner(owner)?;
        w.fixed(rtype::CNAME, ttl)?;
        let rdlength_at = w.len;
        w.put(&[0, 0])?;
        w.name(target)?;
        w.patch_len(rdlength_at)?;
        owner = Some(target);
    }
    match answer {
        Local::Addrs { v4, v6, ttl } => {
            for a in v4.iter() {
                w.owner(owner)?;
                w.fixed(rtype::A, *ttl)?;
                w.put(&4u16.to_be_bytes())?;
                w.put(&a.octets())?;
            }
            for a in v6.iter() {
                w.owner(owner)?;
                w.fixed(rtype::AAAA, *ttl)?;
                w.put(&16u16.to_be_bytes())?;
                w.put(&a.octets())?;
            }
        }
        Local::NoData(None) => {}
        Local::NoData(Some(Negative::Own(soa))) | Local::NxDomain(soa) => w.soa(soa)?,
        Local::NoData(Some(Negative::Learned { soa, ttl })) => {
            let (head, tail) = soa.wire();
            w.put(head)?;
            w.put(&ttl.to_be_bytes())?;
            w.put(tail)?;
        }
    }
    w.finish(q, flags.rcode, limit)
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

    /// How many records the answer section holds.
    pub fn answers(&self) -> usize {
        usize::from(self.answers)
    }

    /// The memory these records hold beyond their struct.
    pub fn heap(&self) -> usize {
        self.bytes.len() + self.ttls.len() * size_of::<(u16, u32)>()
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
    limit: u16,
    out: &mut [u8],
) -> Option<usize> {
    let flags = Flags {
        rcode: u16::from(records.rcode),
        authoritative: false,
        truncated: false,
        recursion_available: true,
    };
    let mut w = Writer::new(out);
    w.head(
        msg,
        q,
        flags,
        usize::from(records.answers),
        usize::from(records.authorities),
    )?;
    let start = w.len;
    w.put(&records.bytes)?;
    for &(at, ttl) in records.ttls.iter() {
        let at = start + usize::from(at);
        w.out[at..at + 4].copy_from_slice(&ttl.saturating_sub(spent).to_be_bytes());
    }
    w.finish(q, flags.rcode, limit)
}

/// Where the first `.` of `name` is, looked for 8 bytes a step (the
/// zero-byte test of "Bit Twiddling Hacks" on the bytes XOR `.`): a byte at
/// a time was a fifth of writing a local CNAME answer.
fn first_dot(name: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    const DOTS: u64 = u64::from_le_bytes([b'.'; 8]);
    let mut chunks = name.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ DOTS;
        // The lowest bit set marks the first zero byte exactly: a borrow
        // only runs upward, into bytes after it.
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(at + zero.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let tail = chunks.remainder();
    tail.iter().position(|&c| c == b'.').map(|i| at + i)
}

/// An answer being written, with the places earlier names can be pointed
/// at (RFC 1035 §4.1.4), chosen as hickory's encoder chooses them: the
/// longest suffix of a name that equals, byte for byte, a suffix written
/// before, the first one written winning.
struct Writer<'a, 'n> {
    out: &'a mut [u8],
    len: usize,
    /// Where each label written in full starts, in the order written, and
    /// the length of the name from there as text (`b.c` for `a.b.c` at
    /// `b`): only a name of that length can match, which passes over most
    /// places without reading them.
    pointable: [(u16, u16); POINTABLE],
    pointables: usize,
    /// Bit `n` set: some pointable name is `n` long as text. Most suffixes
    /// of a name have no such length, and are passed over at once.
    lengths: [u64; 4],
    /// The question's labels are pointable once a name is written.
    question_pointable: bool,
    /// The last table name written and the place it can be pointed at.
    last: Option<(&'n str, u16)>,
}

impl<'a, 'n> Writer<'a, 'n> {
    fn new(out: &'a mut [u8]) -> Self {
        Writer {
            out,
            len: 0,
            pointable: [(0, 0); POINTABLE],
            pointables: 0,
            lengths: [0; 4],
            question_pointable: false,
            last: None,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len + bytes.len();
        self.out.get_mut(self.len..end)?.copy_from_slice(bytes);
        self.len = end;
        Some(())
    }

    /// The header and the question as asked (with the counts given, and
    /// one additional record when we send OPT).
    fn head(
        &mut self,
        msg: &[u8],
        q: &Query,
        flags: Flags,
        answers: usize,
        authorities: usize,
    ) -> Option<()> {
        let [id_hi, id_lo] = q.id.to_be_bytes();
        let [an_hi, an_lo] = u16::try_from(answers).ok()?.to_be_bytes();
        let [ns_hi, ns_lo] = u16::try_from(authorities).ok()?.to_be_bytes();
        // One write for the header (this is the hot path): QR, opcode
        // QUERY, AA, TC, RD as asked; RA, CD as asked, the rcode; the counts.
        self.put(&[
            id_hi,
            id_lo,
            0x80 | u8::from(flags.authoritative) << 2
                | u8::from(flags.truncated) << 1
                | (q.flags_copied & 0x01),
            u8::from(flags.recursion_available) << 7
                | (q.flags_copied & 0x10)
                | (flags.rcode & 0x0F) as u8,
            0,
            1,
            an_hi,
            an_lo,
            ns_hi,
            ns_lo,
            0,
            u8::from(q.edns.is_some()),
        ])?;
        self.put(&msg[HEADER..q.question_end])
    }

    /// Type, class IN and TTL of a record, after its owner.
    fn fixed(&mut self, rtype: u16, ttl: u32) -> Option<()> {
        self.put(&rtype.to_be_bytes())?;
        self.put(&CLASS_IN.to_be_bytes())?;
        self.put(&ttl.to_be_bytes())
    }

    /// A record owner: the question (`None`) or a table name.
    fn owner(&mut self, name: Option<&'n str>) -> Option<()> {
        match name {
            // The question is the first name written: every later one
            // equal to it points there.
            None => self.put(&QNAME_POINTER),
            Some(name) => self.name(name),
        }
    }

    /// A table name (lower-case, dotted, no final dot), remembered for
    /// [`Writer::dotted`].
    fn name(&mut self, name: &'n str) -> Option<()> {
        let at = self.dotted(name.as_bytes())?;
        self.last = at.map(|at| (name, at));
        Some(())
    }

    /// A name as text (`a.b.c`: no empty label, no final dot; empty for
    /// the root), written label by label until the rest of it was written
    /// before, which is then pointed at. Walking the text itself, rather
    /// than a list of its labels, spares the 2 KiB list per name.
    /// The place later names can point at for the whole of it, if any.
    ///
    /// The table name written last (a CNAME target, then the owner of the
    /// records after it; a zone apex, then the SOA names under it) is
    /// pointed at where it was found or begun the first time, without
    /// looking: places are only added, and the first that matches wins, so
    /// looking would find that same place.
    fn dotted(&mut self, name: &[u8]) -> Option<Option<u16>> {
        if !self.question_pointable {
            self.question_pointable = true;
            let end = self.question_end();
            let mut pos = HEADER;
            while pos < end {
                self.point_to(pos, end - pos - 1, end);
                pos += 1 + usize::from(self.out[pos]);
            }
        }
        // Where the labels end written in full, which decides (as for
        // hickory) whether later names may point into them.
        let end = self.len + name.len() + 1;
        let mut rest = name;
        let mut whole = None;
        while !rest.is_empty() {
            let first = rest.len() == name.len();
            // A suffix never equals a longer one, so the places of this
            // name's own labels, taken as it is written, never match.
            let recalled = self.last.filter(|(last, _)| last.as_bytes() == rest);
            if let Some(p) = recalled.map(|(_, at)| at).or_else(|| self.find(rest)) {
                self.put(&(0xC000 | p).to_be_bytes())?;
                return Some(if first { Some(p) } else { whole });
            }
            let (label, next) = match first_dot(rest) {
                Some(dot) => (&rest[..dot], &rest[dot + 1..]),
                None => (rest, &[][..]),
            };
            let at = self.len as u16;
            if self.point_to(self.len, rest.len(), end) && first {
                whole = Some(at);
            }
            self.put(&[u8::try_from(label.len()).ok()?])?;
            self.put(label)?;
            rest = next;
        }
        self.put(&[0])?;
        Some(whole)
    }

    /// Where the question name's labels end.
    fn question_end(&self) -> usize {
        let mut pos = HEADER;
        while let Some(&len) = self.out.get(pos).filter(|&&l| l != 0) {
            pos += 1 + usize::from(len);
        }
        pos
    }

    /// Lets later names point at `pos`, where a name `text_len` long as
    /// text starts, as hickory does: while the name it is part of ends
    /// (at `name_end`) before offset 0x3FFF and there is room. Whether it
    /// did.
    fn point_to(&mut self, pos: usize, text_len: usize, name_end: usize) -> bool {
        let room = name_end < 0x3FFF && self.pointables < POINTABLE;
        if room {
            self.pointable[self.pointables] = (pos as u16, text_len as u16);
            self.pointables += 1;
            self.lengths[text_len / 64 % 4] |= 1 << (text_len % 64);
        }
        room
    }

    /// The first pointable place whose name is `name` (as text), byte for
    /// byte.
    fn find(&self, name: &[u8]) -> Option<u16> {
        let n = name.len();
        if self.lengths[n / 64 % 4] & 1 << (n % 64) == 0 {
            return None;
        }
        self.pointable[..self.pointables]
            .iter()
            .find(|&&(p, len)| usize::from(len) == name.len() && self.name_at(usize::from(p), name))
            .map(|&(p, _)| p)
    }

    /// Whether the name written at `pos` (following pointers) is `name`
    /// (as text, not empty).
    fn name_at(&self, mut pos: usize, name: &[u8]) -> bool {
        let mut hops = 0;
        // What is left to match; `None` once every label has.
        let mut want = Some(name);
        loop {
            let Some(&len) = self.out.get(pos) else {
                return false;
            };
            if len & 0xC0 == 0xC0 {
                hops += 1;
                let Some(&low) = self.out.get(pos + 1) else {
                    return false;
                };
                pos = usize::from(len & 0x3F) << 8 | usize::from(low);
                if hops > MAX_LABELS {
                    return false;
                }
                continue;
            }
            let len = usize::from(len);
            if len == 0 {
                return want.is_none();
            }
            let (Some(rest), Some(label)) = (want, self.out.get(pos + 1..pos + 1 + len)) else {
                return false;
            };
            want = match rest.strip_prefix(label) {
                Some([]) => None,
                Some([b'.', more @ ..]) => Some(more),
                _ => return false,
            };
            pos += 1 + len;
        }
    }

    /// Fills in the RDLENGTH at `at` for the data written since.
    fn patch_len(&mut self, at: usize) -> Option<()> {
        let len = u16::try_from(self.len - at - 2).ok()?;
        self.out[at..at + 2].copy_from_slice(&len.to_be_bytes());
        Some(())
    }

    /// The zone's SOA: owner the apex, MNAME `ns.<apex>`, RNAME
    /// `hostmaster.<apex>`, the TTL its minimum (RFC 2308 §3).
    fn soa(&mut self, soa: &Soa<'n>) -> Option<()> {
        self.name(soa.apex)?;
        self.fixed(rtype::SOA, soa.minimum)?;
        let rdlength_at = self.len;
        self.put(&[0, 0])?;
        self.prefixed(crate::resolve::NS_LABEL, soa.apex)?;
        self.prefixed("hostmaster", soa.apex)?;
        for v in [
            soa.serial,
            soa.refresh as u32,
            soa.retry as u32,
            soa.expire as u32,
            soa.minimum,
        ] {
            self.put(&v.to_be_bytes())?;
        }
        self.patch_len(rdlength_at)
    }

    /// The name `label.apex`.
    fn prefixed(&mut self, label: &str, apex: &str) -> Option<()> {
        let mut buf = [0; 255];
        let name = buf.get_mut(..label.len() + 1 + apex.len())?;
        let (head, tail) = name.split_at_mut(label.len() + 1);
        head[..label.len()].copy_from_slice(label.as_bytes());
        head[label.len()] = b'.';
        tail.copy_from_slice(apex.as_bytes());
        self.dotted(name).map(|_| ())
    }

    /// Our OPT record (if the query had one), and the length, if the answer
    /// fits `limit`. The OPT announces `limit`, carries the upper bits of
    /// an extended rcode, and echoes DO (RFC 3225 §3).
    fn finish(&mut self, q: &Query, rcode: u16, limit: u16) -> Option<usize> {
        if let Some(edns) = q.edns {
            self.put(&[0])?;
            self.put(&rtype::OPT.to_be_bytes())?;
            self.put(&limit.to_be_bytes())?;
            let dnssec = if edns.dnssec_ok { DO_BIT } else { 0 };
            self.put(&[(rcode >> 4) as u8, 0, dnssec, 0, 0, 0])?;
        }
        (self.len <= usize::from(limit)).then_some(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery, ResponseCode};
    use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
    use std::sync::Arc;

    use crate::soa::Learned;

    /// An SOA for `corp.example`, whose timers no test reads.
    fn corp_soa() -> Soa<'static> {
        Soa {
            apex: "corp.example",
            serial: 1,
            refresh: 1,
            retry: 1,
            expire: 1,
            minimum: 1,
        }
    }

    #[test]
    fn first_dots() {
        let names: [&[u8]; 7] = [
            b"",
            b"a",
            b"a.b",
            b"abcdefgh.b",
            b"abcdefg.h",
            b"0123456789abcdef",
            // `.` with the high bit set is not a dot.
            b"ab\xae\xaecdefgh\xae.c",
        ];
        for name in names {
            let want = name.iter().position(|&c| c == b'.');
            assert_eq!(first_dot(name), want, "{name:?}");
        }
        // A dot in every place of a word and past it, then `/` (`.` XOR 1),
        // which the borrow from a dot below makes look like one.
        for i in 0..20 {
            let mut name = vec![b'a'; 20];
            name[i] = b'.';
            if let Some(next) = name.get_mut(i + 1) {
                *next = b'/';
            }
            assert_eq!(first_dot(&name), Some(i));
        }
    }

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
        let limit = udp_limit(q.edns, 1232);
        let mut out = [0u8; 2048];
        let n = write_local(&bytes, &q, &[], local, limit, &mut out).unwrap();
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
            let r = answer(
                &query(asked, RecordType::AAAA, edns),
                &Local::NoData(Some(Negative::Own(soa))),
            );
            assert!(r.answers.is_empty());
            assert_eq!(r.authorities.len(), 1);
            let a = &r.authorities[0];
            assert_eq!(a.name.to_ascii().to_lowercase(), "api.azureml.ms.");
            assert_eq!(a.ttl, 60);
            let RData::SOA(s) = &a.data else {
                panic!("{a:?}")
            };
            assert_eq!(s.mname.to_ascii().to_lowercase(), "ns.api.azureml.ms.");
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

    /// Under a public zone, the upstream's SOA as learned, with the TTL
    /// given; while none is known, NODATA alone.
    #[test]
    fn nodata_carries_a_learned_soa_or_none() {
        let upstream = Record::from_rdata(
            Name::from_ascii("api.azureml.ms.").unwrap(),
            3600,
            RData::SOA(hickory_proto::rr::rdata::SOA::new(
                Name::from_ascii("ns1-01.azure-dns.com.").unwrap(),
                Name::from_ascii("azuredns-hostmaster.microsoft.com.").unwrap(),
                1,
                3600,
                300,
                2_419_200,
                300,
            )),
        );
        let learned = Arc::new(Learned::from_reply(std::slice::from_ref(&upstream), &[]).unwrap());
        let q = query(
            "ws.workspace.eastus.api.azureml.ms.",
            RecordType::AAAA,
            Some(1232),
        );
        let soa = Negative::Learned {
            soa: learned,
            ttl: 60,
        };
        let r = answer(&q, &Local::NoData(Some(soa)));
        assert!(r.answers.is_empty());
        let mut want = upstream;
        want.ttl = 60;
        assert_eq!(r.authorities, [want]);
        let r = answer(&q, &Local::NoData(None));
        assert!(r.answers.is_empty() && r.authorities.is_empty());
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
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
        let n = write_local(&m, &q, &chain, &local, 512, &mut out).unwrap();
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
        let soa = corp_soa();
        let n = write_local(
            &m,
            &q,
            &chain,
            &Local::NoData(Some(Negative::Own(soa))),
            512,
            &mut out,
        )
        .unwrap();
        let r = Message::from_vec(&out[..n]).unwrap();
        assert_eq!((r.answers.len(), r.authorities.len()), (2, 1));
    }

    /// Names are compressed as hickory's encoder compresses them, byte for
    /// byte (its own bytes for the message read back are ours): a CNAME
    /// target found whole in the question, or in another letter case not,
    /// or begun afresh, then the owner of several records, and the SOA.
    #[test]
    fn chains_compress_as_hickory_does() {
        let soa = corp_soa();
        let v4 = ["10.1.0.9".parse().unwrap(), "10.1.0.10".parse().unwrap()];
        let addrs = Local::Addrs {
            v4: &v4,
            v6: &[],
            ttl: 10,
        };
        let chains: [(&str, &[(&str, u32)]); 4] = [
            ("a.b.corp.example.", &[("b.corp.example", 30)]),
            ("A.B.Corp.Example.", &[("b.corp.example", 30)]),
            (
                "x.corp.example.",
                &[
                    ("mid.corp.example", 30),
                    ("st.privatelink.blob.core.windows.net", 20),
                ],
            ),
            ("b.corp.example.", &[]),
        ];
        for (qname, chain) in chains {
            let m = query(qname, RecordType::A, None).to_vec().unwrap();
            let q = parse_query(&m).unwrap();
            for local in [&addrs, &Local::NoData(Some(Negative::Own(soa)))] {
                let mut out = [0u8; 512];
                let n = write_local(&m, &q, chain, local, 512, &mut out).unwrap();
                let hickory = Message::from_vec(&out[..n]).unwrap().to_vec().unwrap();
                assert_eq!(hickory, &out[..n], "{qname} {chain:?}");
            }
        }
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
        assert_eq!(parse_query(&m).unwrap().edns.map(|e| e.payload), Some(1232));
    }

    #[test]
    fn too_big_for_the_client_is_left_to_the_general_path() {
        let v4: Vec<Ipv4Addr> = (0..40).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        let m = query("a.example.", RecordType::A, None).to_vec().unwrap();
        let q = parse_query(&m).unwrap();
        assert_eq!(udp_limit(q.edns, 1232), 512);
        let mut out = [0u8; 2048];
        let local = Local::Addrs {
            v4: &v4,
            v6: &[],
            ttl: 1,
        };
        assert!(write_local(&m, &q, &[], &local, 512, &mut out).is_none());
        assert!(write_local(&m, &q, &[], &local, 1232, &mut out).is_some());
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
        let len = write_cached(&m, &q, &records, 10, 1232, &mut out).unwrap();
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
        assert!(write_cached(&m, &q, &records, 0, 40, &mut out).is_none());
    }
}
