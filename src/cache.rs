//! Forwarded answers, kept for as long as their TTLs allow (RFC 1035 §7.4),
//! negative answers for the SOA's negative TTL (RFC 2308 §5). A hit hands the
//! records back with their TTLs counted down by the time spent in the cache.
//!
//! An answer past its TTL is kept a day longer as a stale answer, served
//! only when every upstream fails (RFC 8767); and a question the upstreams
//! just failed is remembered briefly, so that clients asking again get the
//! failure at once instead of each waiting for it.

use std::borrow::Borrow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use crate::names::NameKey;
use crate::upstream::{Dnssec, EDNS_PAYLOAD};
use crate::wire;

/// How long past its TTL an answer may still be served stale (RFC 8767 §5
/// suggests one to three days).
pub const STALE_FOR: Duration = Duration::from_secs(86_400);

/// The TTL of a stale answer (RFC 8767 §4: 30 s), so that clients ask again
/// soon and get a fresh one once an upstream is back.
pub const STALE_TTL: u32 = 30;

/// How long a failure (SERVFAIL, or no answer at all) is remembered the
/// first time. Short: it spares the upstreams a storm of retries (RFC 9520
/// §3.2: at least 1 s), yet a fixed upstream is used again within seconds.
pub const FAILURE_TTL: Duration = Duration::from_secs(5);

/// The longest a question that keeps failing is remembered: each failure
/// soon after the last doubles the time (RFC 9520 §3.2: exponential
/// back-off, up to five minutes). Half a minute, so that once an upstream
/// is back after an outage every name is asked again within that.
pub const MAX_FAILURE_TTL: Duration = Duration::from_secs(30);

/// What a forwarded query got: the rcode and the records that answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    /// The SOA of a negative answer, if any.
    pub authorities: Vec<Record>,
}

impl Reply {
    /// An upstream's error rcode (SERVFAIL, REFUSED…), passed through with no records.
    pub fn error(rcode: ResponseCode) -> Self {
        Reply {
            rcode,
            answers: Vec::new(),
            authorities: Vec::new(),
        }
    }
}

/// A question as the forwarder asks it upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub name: LowerName,
    pub qtype: RecordType,
    /// An answer asked with DO carries DNSSEC records a client without DO
    /// must not get (RFC 4035 §3.2.1), and one asked with CD may carry data
    /// a validating upstream would refuse a client without CD: each is
    /// cached apart.
    pub dnssec: Dnssec,
}

/// The bytes after the name in a [`WireKey`]: the type and the DNSSEC flags.
const KEY_TAIL: usize = 3;

/// A question as the cache stores it: the name in lower-case wire form
/// (length-prefixed labels, no root label), the type, then a byte of the
/// DNSSEC flags. The UDP fast path builds it from the query's name on the
/// stack.
pub struct WireKey {
    buf: [u8; 258],
    len: usize,
}

impl WireKey {
    /// `None` for a name longer than DNS allows.
    pub fn new<'a>(
        labels: impl Iterator<Item = &'a [u8]>,
        qtype: u16,
        dnssec: Dnssec,
    ) -> Option<Self> {
        let mut key = WireKey {
            buf: [0; 258],
            len: 0,
        };
        for label in labels {
            let end = key.len + 1 + label.len();
            if label.len() > 63 || end > 255 {
                return None;
            }
            key.buf[key.len] = label.len() as u8;
            for (to, from) in key.buf[key.len + 1..end].iter_mut().zip(label) {
                *to = from.to_ascii_lowercase();
            }
            key.len = end;
        }
        key.buf[key.len..key.len + 2].copy_from_slice(&qtype.to_be_bytes());
        key.buf[key.len + 2] = u8::from(dnssec.ok) | u8::from(dnssec.checking_disabled) << 1;
        key.len += KEY_TAIL;
        Some(key)
    }

    fn of(key: &Key) -> Option<Self> {
        WireKey::new(key.name.iter(), u16::from(key.qtype), key.dnssec)
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// [`WireKey`] as moka holds it; looked up by its bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Stored(Box<[u8]>);

impl Borrow<[u8]> for Stored {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

#[derive(Debug)]
struct Entry {
    reply: Reply,
    stored: Instant,
    ttl: Duration,
    /// The reply as bytes, when it can be sent that way.
    wire: Option<Arc<Wire>>,
    /// The memory the entry holds, its key and the cache's bookkeeping
    /// included ([`weigh`]): what `cache_bytes` bounds.
    bytes: u32,
}

/// How long an answer with `ttl` is kept in all: its TTL, then
/// [`STALE_FOR`] as a stale answer (RFC 8767 §5).
fn kept_for(ttl: Duration) -> Duration {
    ttl + STALE_FOR
}

/// What an entry is at some moment.
#[derive(Debug, PartialEq, Eq)]
enum Age {
    /// Within its TTL, stored this many seconds ago.
    Fresh {
        spent: u32,
    },
    Stale,
    /// Too old even to be stale; moka drops it at this moment too ([`ByTtl`]).
    Gone,
}

impl Entry {
    /// What the entry is at `now`; a parameter so that the day-long limit
    /// is tested without waiting a day.
    fn age(&self, now: Instant) -> Age {
        let age = now.saturating_duration_since(self.stored);
        if age < self.ttl {
            Age::Fresh {
                spent: age.as_secs() as u32,
            }
        } else if age < kept_for(self.ttl) {
            Age::Stale
        } else {
            Age::Gone
        }
    }
}

/// A reply ready for the UDP fast path.
#[derive(Debug)]
struct Wire {
    records: wire::Records,
    /// The targets of the reply's CNAME records, as the zone table keys
    /// names: if one is local, the answer must be completed from the table.
    targets: Box<[Box<str>]>,
}

/// A fresh answer for the UDP fast path.
pub struct Fresh {
    wire: Arc<Wire>,
    spent: u32,
}

impl Fresh {
    pub fn records(&self) -> &wire::Records {
        &self.wire.records
    }

    /// Seconds since the answer was stored, to take off its TTLs.
    pub fn spent(&self) -> u32 {
        self.spent
    }

    /// CNAME targets in the answer, as table keys.
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.wire.targets.iter().map(|t| &**t)
    }
}

/// Tells moka when each entry goes: when it is too old even to be stale.
struct ByTtl;

impl moka::Expiry<Stored, Arc<Entry>> for ByTtl {
    fn expire_after_create(&self, _: &Stored, e: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(kept_for(e.ttl))
    }

    // A refreshed answer gets its own lifetime, not what the old one had left.
    fn expire_after_update(
        &self,
        _: &Stored,
        e: &Arc<Entry>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(kept_for(e.ttl))
    }
}

/// What the cache has for a question.
#[derive(Debug, PartialEq)]
pub enum Hit {
    /// Within its TTL, TTLs counted down.
    Fresh(Reply),
    /// Past its TTL: only for when the upstreams fail; TTLs are [`STALE_TTL`].
    Stale(Reply),
}

/// What the cache holds for a question, as `amldns explain` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Served from the cache for this many seconds more.
    Fresh { ttl_left: u32 },
    /// Past its TTL: served only while every upstream fails (RFC 8767).
    Stale,
}

/// How the upstreams last failed a question: the error rcode they sent, or
/// `None` when none answered.
pub type Failure = Option<ResponseCode>;

/// A failure as remembered: answered with until `until`, the last of
/// `streak` failures each soon after the one before.
#[derive(Debug, Clone, Copy)]
struct Failed {
    failure: Failure,
    until: Instant,
    streak: u32,
}

/// How long the `streak`th failure in a row is remembered: [`FAILURE_TTL`],
/// doubled for each before it, at most [`MAX_FAILURE_TTL`].
fn failure_ttl(streak: u32) -> Duration {
    let doublings = streak.saturating_sub(1).min(16);
    FAILURE_TTL
        .saturating_mul(1 << doublings)
        .min(MAX_FAILURE_TTL)
}

/// The cache's hasher (see Cargo.toml).
type Hasher = foldhash::fast::RandomState;

/// A bounded cache of forwarded answers, shared by every query task.
pub struct Cache {
    /// `None` when either bound is 0.
    inner: Option<moka::sync::Cache<Stored, Arc<Entry>, Hasher>>,
    /// `cache_bytes`: an answer that holds more is not kept.
    max_bytes: u64,
    /// Questions the upstreams failed lately; kept for twice the longest
    /// memory, so that the next failure soon after continues the streak.
    failures: Option<moka::sync::Cache<Stored, Failed, Hasher>>,
}

impl Cache {
    /// A cache of at most `entries` answers that hold at most `bytes` of
    /// memory between them (as `weigh` counts it); either 0: no cache.
    pub fn new(entries: u64, bytes: u64) -> Self {
        let on = entries > 0 && bytes > 0;
        // moka bounds one sum. Each entry counts what it holds, but at least
        // an even share of `bytes` among `entries`: a sum within `bytes` then
        // is both bounds at once (no more than `entries` shares fit). Small
        // answers are held up to `entries`, as without a byte bound; large
        // ones up to `bytes`. Evicting (least useful first) is moka's.
        let share = u32::try_from(bytes.div_ceil(entries.max(1))).unwrap_or(u32::MAX);
        let inner = on.then(|| {
            moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(move |_, e: &Arc<Entry>| e.bytes.max(share))
                .expire_after(ByTtl)
                .build_with_hasher(Hasher::default())
        });
        let failures = on.then(|| {
            moka::sync::Cache::builder()
                .max_capacity(entries)
                .time_to_live(2 * MAX_FAILURE_TTL)
                .build_with_hasher(Hasher::default())
        });
        Cache {
            inner,
            max_bytes: bytes,
            failures,
        }
    }

    /// What is cached for `key`: fresh with TTLs counted down, or stale.
    pub fn get(&self, key: &Key) -> Option<Hit> {
        let entry = self.inner.as_ref()?.get(WireKey::of(key)?.as_bytes())?;
        let mut reply = entry.reply.clone();
        let records = reply.answers.iter_mut().chain(reply.authorities.iter_mut());
        match entry.age(Instant::now()) {
            Age::Fresh { spent } => {
                records.for_each(|r| r.ttl = r.ttl.saturating_sub(spent));
                Some(Hit::Fresh(reply))
            }
            Age::Stale => {
                records.for_each(|r| r.ttl = STALE_TTL);
                Some(Hit::Stale(reply))
            }
            Age::Gone => None,
        }
    }

    /// A fresh answer for `key` that can be sent as bytes, for the UDP fast
    /// path; the caller counts the hit.
    pub fn fresh_wire(&self, key: &WireKey) -> Option<Fresh> {
        let entry = self.inner.as_ref()?.get(key.as_bytes())?;
        let Age::Fresh { spent } = entry.age(Instant::now()) else {
            return None;
        };
        Some(Fresh {
            spent,
            wire: entry.wire.clone()?,
        })
    }

    /// What is cached for `name` (any case, final dot or not) and `qtype`,
    /// as a client without DNSSEC flags asks: for `amldns explain`.
    pub fn held(&self, name: &str, qtype: u16) -> Option<Held> {
        let labels = name.trim_end_matches('.').split('.').map(str::as_bytes);
        let key = WireKey::new(labels, qtype, Dnssec::default())?;
        let entry = self.inner.as_ref()?.get(key.as_bytes())?;
        Some(match entry.age(Instant::now()) {
            Age::Fresh { spent } => Held::Fresh {
                ttl_left: (entry.ttl.as_secs() as u32).saturating_sub(spent),
            },
            Age::Stale => Held::Stale,
            Age::Gone => return None,
        })
    }

    /// How the upstreams failed `key`, if that is still remembered.
    pub fn failure(&self, key: &Key) -> Option<Failure> {
        let failed = self.failures.as_ref()?.get(WireKey::of(key)?.as_bytes())?;
        (Instant::now() < failed.until).then_some(failed.failure)
    }

    /// Remembers that the upstreams failed `key`: for [`FAILURE_TTL`], or
    /// longer when it failed lately too (`failure_ttl`).
    pub fn insert_failure(&self, key: &Key, failure: Failure) {
        let (Some(f), Some(k)) = (&self.failures, WireKey::of(key)) else {
            return;
        };
        let stored = k.as_bytes();
        let streak = f
            .get(stored)
            .map_or(1, |last| last.streak.saturating_add(1));
        let failed = Failed {
            failure,
            until: Instant::now() + failure_ttl(streak),
            streak,
        };
        f.insert(Stored(stored.into()), failed);
    }

    /// Keeps `reply` for its TTL, if it may be cached at all.
    pub fn insert(&self, key: &Key, reply: &Reply) {
        let (Some(inner), Some(wire_key)) = (&self.inner, WireKey::of(key)) else {
            return;
        };
        let stored = wire_key.as_bytes();
        // An answer, cached or not, ends the failure memory; and one that may
        // not be cached still means the old answer must not be served stale.
        if let Some(f) = &self.failures {
            f.invalidate(stored);
        }
        let Some(ttl) = cacheable(reply) else {
            inner.invalidate(stored);
            return;
        };
        let mut entry = Entry {
            wire: on_the_wire(key, reply).map(Arc::new),
            reply: reply.clone(),
            stored: Instant::now(),
            ttl: Duration::from_secs(u64::from(ttl)),
            bytes: 0,
        };
        entry.bytes = weigh(stored.len(), &entry);
        // Larger than the whole bound: not kept, and not worth evicting
        // everything else for; the old answer is stale all the same.
        if u64::from(entry.bytes) > self.max_bytes {
            inner.invalidate(stored);
            return;
        }
        inner.insert(Stored(stored.into()), Arc::new(entry));
    }

    /// Entries held now. Settles moka's pending bookkeeping first, so call
    /// it when scraped, not per query.
    pub fn len(&self) -> u64 {
        self.inner.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.entry_count()
        })
    }

    /// The memory the entries hold now, as `weigh` counts it. Walks
    /// every entry: call it when scraped, not per query.
    pub fn bytes(&self) -> u64 {
        self.inner.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.iter().map(|(_, e)| u64::from(e.bytes)).sum()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every answer (`name` `None`), or every answer for `name`
    /// whatever its type, and the failures remembered with them; the next
    /// question goes upstream. Returns how many answers were dropped.
    /// `name`: lower- or upper-case, with or without the final dot.
    pub fn flush(&self, name: Option<&str>) -> u64 {
        let Some(inner) = &self.inner else { return 0 };
        // The question's name as keys begin with it: its wire form, no type.
        let prefix = match name {
            Some(n) => match WireKey::new(
                n.trim_end_matches('.').split('.').map(str::as_bytes),
                0,
                Dnssec::default(),
            ) {
                Some(k) => Some(k.as_bytes()[..k.len - KEY_TAIL].to_vec()),
                None => return 0,
            },
            None => None,
        };
        let of_name = |k: &[u8]| {
            prefix
                .as_ref()
                .is_none_or(|p| k.len() == p.len() + KEY_TAIL && k.starts_with(p))
        };
        let mut dropped = 0;
        for (key, _) in inner.iter() {
            if of_name(&key.0) {
                inner.invalidate(&key.0[..]);
                dropped += 1;
            }
        }
        if let Some(f) = &self.failures {
            for (key, _) in f.iter() {
                if of_name(&key.0) {
                    f.invalidate(&key.0[..]);
                }
            }
        }
        dropped
    }
}

/// `reply` as the UDP fast path sends it: its records as they follow the
/// question `key` in a response, and where its CNAMEs point.
fn on_the_wire(key: &Key, reply: &Reply) -> Option<Wire> {
    let mut msg = Message::response(0, OpCode::Query);
    msg.metadata.response_code = reply.rcode;
    msg.add_query(Query::query(Name::from(key.name.clone()), key.qtype));
    msg.insert_answers(reply.answers.clone());
    msg.insert_authorities(reply.authorities.clone());
    let targets = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(t) => NameKey::from_labels(t.0.iter()).map(|k| k.as_str().into()),
            _ => None,
        })
        .collect();
    let bytes = msg.to_vec().ok()?;
    // The fast path writes no UDP answer larger than this: a larger reply's
    // bytes would never be sent, only held.
    if bytes.len() > usize::from(EDNS_PAYLOAD) {
        return None;
    }
    Some(Wire {
        records: wire::Records::from_response(&bytes)?,
        targets,
    })
}

/// What moka holds per entry besides the key and the value: its node in
/// the map, in the order and timer lists, the key's `Arc`. Measured with
/// the counting allocator of the tests below (`weighs_what_it_holds`).
const BOOKKEEPING: usize = 280;

/// The memory `entry`, kept under a key of `key_len` bytes, holds: the
/// entry and its records as laid out, what those point to (the bulk of a
/// large answer: TXT strings, long names, opaque data), the bytes kept for
/// the fast path, the key, and moka's bookkeeping. Allocators round up
/// a little more; this is what the program asked for.
fn weigh(key_len: usize, entry: &Entry) -> u32 {
    const ARC: usize = 2 * size_of::<usize>();
    let records = |v: &Vec<Record>| {
        v.capacity() * size_of::<Record>()
            + v.iter()
                .map(|r| name_heap(&r.name) + rdata_heap(&r.data))
                .sum::<usize>()
    };
    let wire = entry.wire.as_ref().map_or(0, |w| {
        let targets = w.targets.iter();
        ARC + size_of::<Wire>()
            + w.records.heap()
            + targets
                .map(|t| size_of::<Box<str>>() + t.len())
                .sum::<usize>()
    });
    let total = BOOKKEEPING
        + key_len
        + ARC
        + size_of::<Entry>()
        + records(&entry.reply.answers)
        + records(&entry.reply.authorities)
        + wire;
    u32::try_from(total).unwrap_or(u32::MAX)
}

/// What a name holds beyond its record: hickory keeps up to 32 bytes of
/// labels and 24 label ends inline, and the rest on the heap.
fn name_heap(name: &Name) -> usize {
    let labels = usize::from(name.num_labels());
    let bytes: usize = name.iter().map(<[u8]>::len).sum();
    (if bytes > 32 { bytes } else { 0 }) + (if labels > 24 { labels } else { 0 })
}

/// What a record's data holds beyond its record.
fn rdata_heap(data: &RData) -> usize {
    match data {
        RData::A(_) | RData::AAAA(_) => 0,
        RData::CNAME(n) => name_heap(&n.0),
        RData::NS(n) => name_heap(&n.0),
        RData::PTR(n) => name_heap(&n.0),
        RData::SOA(soa) => name_heap(&soa.mname) + name_heap(&soa.rname),
        // A boxed slice of boxed strings.
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| size_of::<Box<[u8]>>() + s.len())
            .sum(),
        RData::Unknown { rdata, .. } => rdata.anything.capacity(),
        // The rest, rarer: about as much as on the wire.
        other => other.to_bytes().map_or(0, |b| b.len()),
    }
}

/// How long `reply` may be kept: its shortest TTL, as the forwarder bounded
/// them where the answer entered; `None` for what must not be cached:
/// failures, and negative answers without an SOA (RFC 2308 §5).
fn cacheable(reply: &Reply) -> Option<u32> {
    // The forwarder keeps an SOA only for negative answers, including a
    // CNAME chain that ends without data; it carries the negative TTL.
    let is_soa = |r: &Record| matches!(r.data, RData::SOA(_));
    let negative = reply
        .authorities
        .iter()
        .find_map(|r| is_soa(r).then_some(r.ttl));
    // Every other record kept bounds it too: answers, and (asked with DO)
    // NSEC or NSEC3 proofs with their RRSIGs.
    let positive = reply
        .answers
        .iter()
        .chain(reply.authorities.iter().filter(|r| !is_soa(r)))
        .map(|r| r.ttl)
        .min();
    let ttl = match (reply.rcode, positive, negative) {
        (ResponseCode::NoError | ResponseCode::NXDomain, Some(p), Some(n)) => p.min(n),
        (ResponseCode::NoError, Some(p), None) => p,
        (ResponseCode::NoError | ResponseCode::NXDomain, None, Some(n)) => n,
        _ => return None,
    };
    (ttl > 0).then_some(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::{A, SOA, TXT};
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    /// The unit tests' allocator: the system's, counting what each thread
    /// holds, so that [`weigh`] is checked against what was allocated.
    struct Counting;

    thread_local! {
        static HELD: Cell<isize> = const { Cell::new(0) };
    }

    fn count(bytes: usize, sign: isize) {
        // Not while the thread is torn down.
        let _ = HELD.try_with(|h| h.set(h.get() + sign * bytes as isize));
    }

    // SAFETY: the system's allocator, called with the caller's arguments.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count(layout.size(), 1);
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            count(layout.size(), -1);
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    /// What this thread holds from the allocator now.
    fn held() -> isize {
        HELD.with(Cell::get)
    }

    fn a(ttl: u32) -> Record {
        Record::from_rdata(
            Name::from_ascii("x.example.").unwrap(),
            ttl,
            RData::A(A::new(1, 2, 3, 4)),
        )
    }

    fn soa(ttl: u32, minimum: u32) -> Record {
        let n = Name::from_ascii("example.").unwrap();
        Record::from_rdata(
            n.clone(),
            ttl,
            RData::SOA(SOA::new(n.clone(), n, 1, 1, 1, 1, minimum)),
        )
    }

    /// An NSEC record, opaque as hickory reads it without DNSSEC features.
    fn nsec(ttl: u32) -> Record {
        Record::from_rdata(
            Name::from_ascii("x.example.").unwrap(),
            ttl,
            RData::Unknown {
                code: RecordType::NSEC,
                rdata: hickory_proto::rr::rdata::NULL::with(vec![0, 0, 6, 0x40]),
            },
        )
    }

    fn key() -> Key {
        Key {
            name: LowerName::from(Name::from_ascii("X.example.").unwrap()),
            qtype: RecordType::A,
            dnssec: Dnssec::default(),
        }
    }

    #[test]
    fn what_is_cached_and_for_how_long() {
        let reply = |rcode, answers, authorities| Reply {
            rcode,
            answers,
            authorities,
        };
        let cases = [
            (
                reply(ResponseCode::NoError, vec![a(300), a(60)], vec![]),
                Some(60),
            ),
            (reply(ResponseCode::NoError, vec![a(0)], vec![]), None),
            // Negative: the SOA's TTL, which the forwarder made the
            // negative TTL where the answer entered.
            (
                reply(ResponseCode::NXDomain, vec![], vec![soa(900, 3600)]),
                Some(900),
            ),
            (
                reply(ResponseCode::NoError, vec![], vec![soa(30, 900)]),
                Some(30),
            ),
            // DNSSEC proofs kept with DO count too.
            (
                reply(ResponseCode::NoError, vec![a(300)], vec![nsec(30)]),
                Some(30),
            ),
            (
                reply(
                    ResponseCode::NXDomain,
                    vec![],
                    vec![soa(900, 3600), nsec(600)],
                ),
                Some(600),
            ),
            // Negative without SOA, and failures: never.
            (reply(ResponseCode::NXDomain, vec![], vec![]), None),
            (reply(ResponseCode::ServFail, vec![], vec![]), None),
            (
                reply(ResponseCode::Refused, vec![], vec![soa(30, 30)]),
                None,
            ),
        ];
        for (r, want) in cases {
            assert_eq!(cacheable(&r), want, "{r:?}");
        }
    }

    #[test]
    fn hit_and_miss_by_key() {
        let c = Cache::new(10, 1 << 20);
        let r = Reply {
            rcode: ResponseCode::NoError,
            answers: vec![a(300)],
            authorities: vec![],
        };
        assert!(c.get(&key()).is_none());
        c.insert(&key(), &r);
        // Keys ignore letter case.
        let lower = Key {
            name: LowerName::from(Name::from_ascii("x.EXAMPLE.").unwrap()),
            ..key()
        };
        assert_eq!(c.get(&lower), Some(Hit::Fresh(r.clone())));
        let aaaa = Key {
            qtype: RecordType::AAAA,
            ..key()
        };
        assert!(c.get(&aaaa).is_none());
        // Asked with DO or CD, it is another question.
        for (ok, checking_disabled) in [(true, false), (false, true), (true, true)] {
            let other = Key {
                dnssec: Dnssec {
                    ok,
                    checking_disabled,
                },
                ..key()
            };
            assert!(c.get(&other).is_none(), "DO {ok}, CD {checking_disabled}");
            let wire = WireKey::new([&b"x"[..], b"example"].into_iter(), 1, other.dnssec);
            assert!(c.fresh_wire(&wire.unwrap()).is_none());
        }
        let plain = WireKey::new([&b"X"[..], b"example"].into_iter(), 1, Dnssec::default());
        assert!(c.fresh_wire(&plain.unwrap()).is_some());
    }

    /// `cache_entries = 0` or `cache_bytes = 0`: no cache.
    #[test]
    fn disabled_cache_keeps_nothing() {
        for (entries, bytes) in [(0, 1 << 20), (10, 0)] {
            let c = Cache::new(entries, bytes);
            c.insert(
                &key(),
                &Reply {
                    rcode: ResponseCode::NoError,
                    answers: vec![a(300)],
                    authorities: vec![],
                },
            );
            assert!(c.get(&key()).is_none());
            assert!(c.is_empty());
            c.insert_failure(&key(), None);
            assert!(c.failure(&key()).is_none());
        }
    }

    #[test]
    fn past_its_ttl_an_answer_is_stale() {
        let c = Cache::new(10, 1 << 20);
        let r = Reply {
            rcode: ResponseCode::NoError,
            answers: vec![a(1)],
            authorities: vec![],
        };
        c.insert(&key(), &r);
        std::thread::sleep(Duration::from_millis(1100));
        let Some(Hit::Stale(stale)) = c.get(&key()) else {
            panic!("a stale answer")
        };
        assert_eq!(stale.answers[0].ttl, STALE_TTL);
        assert_eq!(stale.answers[0].data, r.answers[0].data);
    }

    /// RFC 8767 §5: an answer is served stale at most a day past its TTL;
    /// a second before that it still is, a second after it is not, and moka
    /// drops the entry at that same moment.
    #[test]
    fn a_stale_answer_is_served_at_most_a_day_past_its_ttl() {
        let s = Duration::from_secs;
        let (ttl, day) = (s(300), s(86_400));
        let stored = Instant::now();
        let entry = Arc::new(Entry {
            reply: Reply::error(ResponseCode::NoError),
            stored,
            ttl,
            wire: None,
            bytes: 0,
        });
        let cases = [
            (s(0), Age::Fresh { spent: 0 }),
            (ttl - s(1), Age::Fresh { spent: 299 }),
            (ttl, Age::Stale),
            (ttl + day - s(1), Age::Stale),
            (ttl + day, Age::Gone),
            (ttl + day + s(1), Age::Gone),
        ];
        for (age, want) in cases {
            assert_eq!(entry.age(stored + age), want, "{age:?}");
        }
        let k = Stored(WireKey::of(&key()).unwrap().as_bytes().into());
        let created = moka::Expiry::expire_after_create(&ByTtl, &k, &entry, stored);
        assert_eq!(created, Some(ttl + day));
        let updated = moka::Expiry::expire_after_update(&ByTtl, &k, &entry, stored, Some(s(5)));
        assert_eq!(updated, Some(ttl + day), "a refresh starts over");
    }

    #[test]
    fn flush_drops_one_name_of_every_type_or_everything() {
        let c = Cache::new(10, 1 << 20);
        let r = Reply {
            rcode: ResponseCode::NoError,
            answers: vec![a(300)],
            authorities: vec![],
        };
        let k = |name: &str, qtype| Key {
            name: LowerName::from(Name::from_ascii(name).unwrap()),
            qtype,
            dnssec: Dnssec::default(),
        };
        // Asked with DO: cached apart, flushed with the rest of its name.
        let with_do = Key {
            dnssec: Dnssec {
                ok: true,
                checking_disabled: false,
            },
            ..k("x.example.", RecordType::A)
        };
        // Below x.example and a name that starts with the same bytes: kept.
        let others = [
            k("y.x.example.", RecordType::A),
            k("x.example.com.", RecordType::A),
        ];
        for key in [
            k("x.example.", RecordType::A),
            k("x.example.", RecordType::AAAA),
            with_do.clone(),
        ]
        .iter()
        .chain(&others)
        {
            c.insert(key, &r);
        }
        c.insert_failure(&k("x.example.", RecordType::TXT), None);
        assert!(matches!(
            c.held("X.EXAMPLE.", 1),
            Some(Held::Fresh {
                ttl_left: 299 | 300
            })
        ));
        assert_eq!(c.flush(Some("X.Example.")), 3);
        assert_eq!(c.held("x.example", 1), None);
        assert!(c.get(&with_do).is_none());
        assert!(c.get(&k("x.example.", RecordType::A)).is_none());
        assert!(c.get(&k("x.example.", RecordType::AAAA)).is_none());
        assert!(c.failure(&k("x.example.", RecordType::TXT)).is_none());
        for key in &others {
            assert!(c.get(key).is_some(), "{key:?}");
        }
        assert_eq!(c.flush(None), 2);
        assert!(c.is_empty());
    }

    #[test]
    fn failures_are_remembered_per_question() {
        let c = Cache::new(10, 1 << 20);
        assert_eq!(c.failure(&key()), None);
        c.insert_failure(&key(), Some(ResponseCode::ServFail));
        assert_eq!(c.failure(&key()), Some(Some(ResponseCode::ServFail)));
        let aaaa = Key {
            qtype: RecordType::AAAA,
            ..key()
        };
        assert_eq!(c.failure(&aaaa), None);
    }

    /// A question failing again soon is remembered longer each time, up to
    /// the cap; an answer ends the streak.
    #[test]
    fn failures_in_a_row_back_off() {
        let s = Duration::from_secs;
        let cases = [
            (1, s(5)),
            (2, s(10)),
            (3, s(20)),
            (4, s(30)),
            (u32::MAX, s(30)),
        ];
        for (streak, want) in cases {
            assert_eq!(failure_ttl(streak), want, "{streak}");
        }
        let c = Cache::new(10, 1 << 20);
        let remembered = |c: &Cache| {
            let k = WireKey::of(&key()).unwrap();
            let failed = c.failures.as_ref().unwrap().get(k.as_bytes()).unwrap();
            (failed.streak, failed.until - Instant::now())
        };
        for (streak, ttl) in [(1, s(5)), (2, s(10)), (3, s(20))] {
            c.insert_failure(&key(), None);
            let (got, left) = remembered(&c);
            assert_eq!(got, streak);
            assert!(left <= ttl && left > ttl - s(1), "{streak}: {left:?}");
        }
        c.insert(
            &key(),
            &Reply {
                rcode: ResponseCode::NoError,
                answers: vec![a(300)],
                authorities: vec![],
            },
        );
        assert_eq!(c.failure(&key()), None);
        c.insert_failure(&key(), None);
        assert_eq!(remembered(&c).0, 1, "a new streak");
    }

    /// One TXT record of `size` bytes, in strings of 250 as a zone holds
    /// long text (a character-string is at most 255).
    fn txt(owner: &str, size: usize) -> Reply {
        let strings: Vec<String> = (0..size / 250).map(|i| format!("{i:0250}")).collect();
        Reply {
            rcode: ResponseCode::NoError,
            answers: vec![Record::from_rdata(
                Name::from_ascii(owner).unwrap(),
                300,
                RData::TXT(TXT::new(strings)),
            )],
            authorities: vec![],
        }
    }

    fn key_of(name: &str, qtype: RecordType) -> Key {
        Key {
            name: LowerName::from(Name::from_ascii(name).unwrap()),
            qtype,
            dnssec: Dnssec::default(),
        }
    }

    /// The weight of an entry is what the cache came to hold for it, to
    /// within a tenth: for 60 KB TXT answers and for small A answers.
    #[test]
    fn weighs_what_it_holds() {
        let c = Cache::new(100_000, 1 << 30);
        let a_reply = |i: u8| Reply {
            rcode: ResponseCode::NoError,
            answers: vec![a(300), a(300 + u32::from(i))],
            authorities: vec![],
        };
        let entry = |name: &str| {
            let k = WireKey::of(&key_of(name, RecordType::TXT)).unwrap();
            c.inner.as_ref().unwrap().get(k.as_bytes()).unwrap()
        };
        // moka's own structures, allocated once.
        for i in 0..50 {
            let k = key_of(&format!("warm{i}.example."), RecordType::A);
            c.insert(&k, &a_reply(1));
        }
        c.len();
        for (what, n, reply) in [
            ("txt", 20, txt("big.example.", 60_000)),
            ("a", 2_000, a_reply(2)),
        ] {
            let before = held();
            for i in 0..n {
                let k = key_of(&format!("{what}{i}.example."), RecordType::TXT);
                c.insert(&k, &reply);
            }
            c.len();
            let grew = (held() - before) as f64 / f64::from(n);
            let weighed = f64::from(entry(&format!("{what}0.example.")).bytes);
            assert!(
                (grew * 0.9..=grew * 1.1).contains(&weighed),
                "{what}: allocated {grew:.0} per entry, weighed {weighed}"
            );
        }
        // A large answer is held once, as records: its bytes are not kept
        // beside them for a fast path that could never send them.
        let large = entry("txt0.example.").bytes;
        assert!(large < 66_000, "a 60 KB answer weighs {large}");
    }

    /// Large answers fill the cache up to its bytes, not its entries: the
    /// memory held stays within the bound after every insert, a small
    /// answer in use stays, and an answer larger than the whole bound is not
    /// kept and pushes nothing out.
    #[test]
    fn large_answers_stay_within_cache_bytes() {
        let bound = 1 << 20;
        let c = Cache::new(10_000, bound);
        let big = txt("big.example.", 60_000);
        let small = key_of("small.example.", RecordType::A);
        c.insert(
            &small,
            &Reply {
                rcode: ResponseCode::NoError,
                answers: vec![a(300)],
                authorities: vec![],
            },
        );
        for i in 0..40 {
            // Asked now and then, as a name in use is.
            assert!(c.get(&small).is_some(), "the small answer, before {i}");
            c.insert(&key_of(&format!("n{i}.example."), RecordType::TXT), &big);
            let held = c.bytes();
            assert!(
                held <= bound,
                "{held} bytes held after {} large answers",
                i + 1
            );
        }
        let entries = c.len();
        assert!(entries < 40, "{entries} entries of ~64 KB in 1 MiB");
        // Not starved either: at least all but one large answer's room is used.
        assert!(c.bytes() > bound - 70_000, "{} bytes held", c.bytes());
        assert!(c.get(&small).is_some(), "the small answer, after");

        let huge = txt("huge.example.", 2 * bound as usize);
        c.insert(&key_of("huge.example.", RecordType::TXT), &huge);
        assert!(c.get(&key_of("huge.example.", RecordType::TXT)).is_none());
        assert_eq!(c.len(), entries, "nothing pushed out for it");
    }
}
