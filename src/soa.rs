//! The SOAs of the public zones the table holds names in, as the upstream
//! last gave them.
//!
//! A name such as `<guid>.workspace.eastus.api.azureml.ms` is amldns's to
//! answer, but `api.azureml.ms` is Azure's zone: `dig SOA api.azureml.ms`
//! is forwarded and answered with Azure's SOA. So a negative answer for a
//! local name there carries that same SOA, never one amldns makes up, or a
//! client would see two SOAs for one owner. [`crate::forward::keep_soas`]
//! asks for them when the table loads and again within their TTL; this
//! module keeps what it learned, in the forms both encoders write.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::{RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use crate::zone::Soa;

/// An upstream's SOA for a public zone.
#[derive(Debug)]
pub struct Learned {
    /// As hickory holds it, for the general path.
    record: Record,
    /// The whole record as it goes on the wire, names uncompressed, so the
    /// fast path copies it into any message; its TTL is written over.
    wire: Box<[u8]>,
    /// Where the TTL sits in `wire`.
    ttl_at: usize,
    /// What a negative answer may be cached for by its SOA (RFC 2308 §5:
    /// the lesser of the SOA's TTL and its MINIMUM).
    negative_ttl: u32,
}

impl Learned {
    /// The SOA in an upstream's reply to `<zone> SOA`: in the answer when
    /// the name is a zone apex, else the enclosing zone's in the authority
    /// section. `None` when the reply has none.
    pub fn from_reply(answers: &[Record], authorities: &[Record]) -> Option<Learned> {
        let record = answers
            .iter()
            .chain(authorities)
            .find(|r| matches!(r.data, RData::SOA(_)))?
            .clone();
        let RData::SOA(soa) = &record.data else {
            return None;
        };
        let negative_ttl = record.ttl.min(soa.minimum);
        let uncompressed = |item: &dyn BinEncodable| -> Option<Vec<u8>> {
            let mut wire = Vec::new();
            let mut encoder = BinEncoder::new(&mut wire);
            encoder.set_name_encoding(NameEncoding::Uncompressed);
            item.emit(&mut encoder).ok()?;
            Some(wire)
        };
        let wire = uncompressed(&record)?;
        // The owner, then TYPE and CLASS.
        let ttl_at = uncompressed(&record.name)?.len() + 4;
        Some(Learned {
            record,
            wire: wire.into_boxed_slice(),
            ttl_at,
            negative_ttl,
        })
    }

    /// The record with `ttl`, for the general path.
    pub fn record(&self, ttl: u32) -> Record {
        let mut r = self.record.clone();
        r.ttl = ttl;
        r
    }

    /// The record's bytes with `ttl` written in, for the fast path: the
    /// bytes before the TTL, and those after it.
    pub fn wire(&self) -> (&[u8], &[u8]) {
        (&self.wire[..self.ttl_at], &self.wire[self.ttl_at + 4..])
    }

    /// Its TTL when the upstream (or the cache) gave it.
    pub fn ttl(&self) -> u32 {
        self.record.ttl
    }

    /// The most a negative answer carrying it may be cached for.
    pub fn negative_ttl(&self) -> u32 {
        self.negative_ttl
    }
}

/// The learned SOAs, by zone apex: read by every query that needs one,
/// replaced whole by the task that learns them.
#[derive(Debug, Default)]
pub struct Book {
    by_zone: ArcSwap<HashMap<Box<str>, Arc<Learned>>>,
}

impl Book {
    pub fn get(&self, zone: &str) -> Option<Arc<Learned>> {
        self.by_zone.load().get(zone).cloned()
    }

    /// Keeps `learned` for `zone`.
    pub fn learn(&self, zone: &str, learned: Learned) {
        let learned = Arc::new(learned);
        self.by_zone.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.insert(zone.into(), learned.clone());
            m
        });
    }

    /// Forgets the zones not in `zones`: the table holds no names there now.
    pub fn keep_only(&self, zones: &[Box<str>]) {
        let current = self.by_zone.load();
        if current.keys().all(|z| zones.contains(z)) {
            return;
        }
        self.by_zone.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.retain(|z, _| zones.contains(z));
            m
        });
    }
}

/// The SOA a negative answer for a local name carries.
#[derive(Debug, Clone)]
pub enum Negative<'a> {
    /// amldns's own, at a zone it is the authority of.
    Own(Soa<'a>),
    /// The upstream's for a public zone, with the TTL a client is given.
    Learned { soa: Arc<Learned>, ttl: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Message;
    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::serialize::binary::BinDecodable;

    fn soa(owner: &str, ttl: u32, minimum: u32) -> Record {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        Record::from_rdata(
            n(owner),
            ttl,
            RData::SOA(SOA::new(
                n("ns1-01.azure-dns.com."),
                n("azuredns-hostmaster.microsoft.com."),
                1,
                3600,
                300,
                2_419_200,
                minimum,
            )),
        )
    }

    /// The SOA is taken from the answer, or from the authority section when
    /// the name asked is below a zone's apex; its bytes decode back to it,
    /// with the TTL written in where the fast path writes it.
    #[test]
    fn an_soa_is_learned_from_either_section_and_written_whole() {
        let a = Record::from_rdata(
            Name::from_ascii("x.example.").unwrap(),
            60,
            RData::A(A::new(192, 0, 2, 1)),
        );
        let apex = soa("api.azureml.ms.", 3600, 300);
        let learned = Learned::from_reply(std::slice::from_ref(&apex), &[]).unwrap();
        assert_eq!(learned.negative_ttl(), 300);
        let parent = soa("azureml.ms.", 120, 300);
        let below =
            Learned::from_reply(std::slice::from_ref(&a), std::slice::from_ref(&parent)).unwrap();
        assert_eq!(below.record(7), {
            let mut p = parent.clone();
            p.ttl = 7;
            p
        });
        assert_eq!(below.negative_ttl(), 120);
        assert!(Learned::from_reply(&[a], &[]).is_none());

        let (head, tail) = learned.wire();
        let mut bytes = head.to_vec();
        bytes.extend(42u32.to_be_bytes());
        bytes.extend(tail);
        let decoded = Record::from_bytes(&bytes).unwrap();
        assert_eq!(decoded, learned.record(42));
        // A message holding it parses: no pointer into another message.
        let mut m = Message::query();
        m.add_answer(decoded);
        assert!(Message::from_vec(&m.to_vec().unwrap()).is_ok());
    }

    #[test]
    fn the_book_forgets_zones_the_table_left() {
        let book = Book::default();
        let learned = || Learned::from_reply(&[soa("api.azureml.ms.", 60, 60)], &[]).unwrap();
        book.learn("api.azureml.ms", learned());
        book.learn("notebooks.azure.net", learned());
        book.keep_only(&["notebooks.azure.net".into()]);
        assert!(book.get("api.azureml.ms").is_none());
        assert!(book.get("notebooks.azure.net").is_some());
    }
}
