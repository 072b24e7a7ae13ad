//! Forwarded answers, kept for as long as their TTLs allow (RFC 1035 §7.4),
//! negative answers for the SOA's negative TTL (RFC 2308 §5). A hit hands the
//! records back with their TTLs counted down by the time spent in the cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, RData, Record, RecordType};

/// Upper bound on how long anything is kept: a day, like Unbound's
/// `cache-max-ttl` default; longer upstream TTLs are served capped.
pub const MAX_TTL: u32 = 86_400;

/// What a forwarded query got: the rcode and the records that answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    /// The SOA of a negative answer, if any.
    pub authorities: Vec<Record>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub name: LowerName,
    pub qtype: RecordType,
}

#[derive(Debug)]
struct Entry {
    reply: Reply,
    stored: Instant,
    ttl: Duration,
}

/// Tells moka when each entry goes: at its own TTL.
struct ByTtl;

impl moka::Expiry<Key, Arc<Entry>> for ByTtl {
    fn expire_after_create(&self, _: &Key, e: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(e.ttl)
    }
}

/// A bounded cache of forwarded answers, shared by every query task.
pub struct Cache {
    /// `None` when `cache_entries = 0`.
    inner: Option<moka::sync::Cache<Key, Arc<Entry>>>,
}

impl Cache {
    pub fn new(capacity: u64) -> Self {
        let inner = (capacity > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(ByTtl)
                .build()
        });
        Cache { inner }
    }

    /// The cached reply for `key`, its TTLs counted down, or `None`.
    pub fn get(&self, key: &Key) -> Option<Reply> {
        let entry = self.inner.as_ref()?.get(key)?;
        let age = entry.stored.elapsed();
        if age >= entry.ttl {
            return None;
        }
        let spent = age.as_secs() as u32;
        let mut reply = entry.reply.clone();
        for r in reply.answers.iter_mut().chain(reply.authorities.iter_mut()) {
            r.ttl = r.ttl.saturating_sub(spent);
        }
        Some(reply)
    }

    /// Keeps `reply` for its TTL, if it may be cached at all.
    pub fn insert(&self, key: Key, reply: &Reply) {
        let Some(inner) = &self.inner else { return };
        let Some((ttl, reply)) = cacheable(reply) else {
            return;
        };
        inner.insert(
            key,
            Arc::new(Entry {
                reply,
                stored: Instant::now(),
                ttl: Duration::from_secs(u64::from(ttl)),
            }),
        );
    }

    /// Entries held now. Settles moka's pending bookkeeping first, so call
    /// it when scraped, not per query.
    pub fn len(&self) -> u64 {
        self.inner.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.entry_count()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How long `reply` may be kept, and the reply with TTLs capped to that; `None`
/// for what must not be cached: failures, and negative answers without an SOA
/// (RFC 2308 §5).
fn cacheable(reply: &Reply) -> Option<(u32, Reply)> {
    // The forwarder keeps an SOA only for negative answers, including a
    // CNAME chain that ends without data.
    let negative = reply.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
        _ => None,
    });
    let positive = reply.answers.iter().map(|r| r.ttl).min();
    let ttl = match (reply.rcode, positive, negative) {
        (ResponseCode::NoError | ResponseCode::NXDomain, Some(p), Some(n)) => p.min(n),
        (ResponseCode::NoError, Some(p), None) => p,
        (ResponseCode::NoError | ResponseCode::NXDomain, None, Some(n)) => n,
        _ => return None,
    }
    .min(MAX_TTL);
    if ttl == 0 {
        return None;
    }
    let mut reply = reply.clone();
    for r in &mut reply.answers {
        r.ttl = r.ttl.min(MAX_TTL);
    }
    // RFC 2308 §3: the SOA of a negative answer carries the negative TTL.
    if let Some(n) = negative {
        for r in &mut reply.authorities {
            r.ttl = n.min(MAX_TTL);
        }
    }
    Some((ttl, reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::{A, SOA};

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

    fn key() -> Key {
        Key {
            name: LowerName::from(Name::from_ascii("X.example.").unwrap()),
            qtype: RecordType::A,
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
            (
                reply(ResponseCode::NoError, vec![a(10 * MAX_TTL)], vec![]),
                Some(MAX_TTL),
            ),
            (reply(ResponseCode::NoError, vec![a(0)], vec![]), None),
            // Negative: min(SOA TTL, SOA minimum).
            (
                reply(ResponseCode::NXDomain, vec![], vec![soa(3600, 900)]),
                Some(900),
            ),
            (
                reply(ResponseCode::NoError, vec![], vec![soa(30, 900)]),
                Some(30),
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
            assert_eq!(cacheable(&r).map(|(t, _)| t), want, "{r:?}");
        }
        let (_, neg) =
            cacheable(&reply(ResponseCode::NXDomain, vec![], vec![soa(3600, 900)])).unwrap();
        assert_eq!(neg.authorities[0].ttl, 900);
    }

    #[test]
    fn hit_and_miss_by_key() {
        let c = Cache::new(10);
        let r = Reply {
            rcode: ResponseCode::NoError,
            answers: vec![a(300)],
            authorities: vec![],
        };
        assert!(c.get(&key()).is_none());
        c.insert(key(), &r);
        // Keys ignore letter case.
        let lower = Key {
            name: LowerName::from(Name::from_ascii("x.EXAMPLE.").unwrap()),
            qtype: RecordType::A,
        };
        assert_eq!(c.get(&lower).unwrap().answers[0].ttl, 300);
        let aaaa = Key {
            qtype: RecordType::AAAA,
            ..key()
        };
        assert!(c.get(&aaaa).is_none());
    }

    #[test]
    fn disabled_cache_keeps_nothing() {
        let c = Cache::new(0);
        c.insert(
            key(),
            &Reply {
                rcode: ResponseCode::NoError,
                answers: vec![a(300)],
                authorities: vec![],
            },
        );
        assert!(c.get(&key()).is_none());
        assert!(c.is_empty());
    }
}
