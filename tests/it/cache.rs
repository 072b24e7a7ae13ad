//! The cache: hits stay local and count their TTLs down, its bounds (in
//! entries and in bytes) hold, and negative answers expire after the SOA
//! minimum.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use amldns::metrics::{CACHE_BYTES, CACHE_ENTRIES};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::TcpStream;

use crate::common::*;
use crate::setup::*;

/// A cache hit does not reach the upstream, and its TTL counts down.
#[tokio::test]
async fn cache_hits_stay_local_and_count_ttls_down() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(up.addr, "")).await;
    let asked = Instant::now();
    let first = udp_query(srv.addr, "www.example.com", RecordType::A).await;
    assert_eq!(first.answers[0].ttl, 300);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let second = udp_query(srv.addr, "WWW.Example.COM", RecordType::A).await;
    // The entry is at least 2.1 s old, and at most as old as this test's
    // stopwatch says, however slowly the machine ran.
    let most = asked.elapsed().as_secs() as u32 + 1;
    assert_eq!(addrs(&second), vec!["192.0.2.10"]);
    let ttl = second.answers[0].ttl;
    assert!(
        (300 - most..=298).contains(&ttl),
        "TTL counted down by 2 s to {most} s: {ttl}"
    );
    // Negative answers are cached too (RFC 2308).
    udp_query(srv.addr, "nope.example.com", RecordType::A).await;
    let neg = udp_query(srv.addr, "nope.example.com", RecordType::A).await;
    assert_eq!(neg.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(up.seen_names(), vec!["www.example.com", "nope.example.com"]);
    srv.stop().await;
}

/// `cache_entries` bounds the cache: after 20 different names with room for
/// 4, it holds exactly 4 (full, and no more); asking those 4 again does not
/// reach the upstream, and asking the other 16 does, each of them.
#[tokio::test]
async fn the_cache_holds_at_most_cache_entries() {
    let up = StandIn::start(|q| Some(edge_case_zone(q))).await;
    let srv = start(&config(&[up.addr], 1000, "cache_entries = 4")).await;
    let names: Vec<String> = (0..20).map(|i| format!("n{i}.example.com")).collect();
    for n in &names {
        let r = udp_query(srv.addr, n, RecordType::A).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    }
    let held = metric(&scrape(&srv).await, CACHE_ENTRIES, &[]);
    assert_eq!(held, 4.0, "entries held with cache_entries = 4");
    // Which 4 is the cache's choice; `/explain` says.
    let mut cached = Vec::new();
    for n in &names {
        let (status, body) = http_request(srv.http(), "GET", &format!("/explain?name={n}")).await;
        assert_eq!(status, 200, "{body}");
        if body.contains("an answer is cached") {
            cached.push(n.clone());
        }
    }
    assert_eq!(cached.len(), 4, "{cached:?}");
    up.clear();
    for n in &cached {
        let r = udp_query(srv.addr, n, RecordType::A).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    }
    assert!(up.seen().is_empty(), "asked again: {:?}", up.seen());
    for n in names.iter().filter(|n| !cached.contains(n)) {
        udp_query(srv.addr, n, RecordType::A).await;
    }
    let asked: BTreeSet<String> = up.seen_names().into_iter().collect();
    assert_eq!(asked.len(), 16, "more than 4 were cached: {asked:?}");
    srv.stop().await;
}

/// `cache_bytes` bounds the cache as well: 40 answers of 60 KB (asked over
/// TCP, as they must be) do not fit in 1 MiB, so fewer are held, and what
/// they hold stays within it; a small name in use meanwhile stays cached.
#[tokio::test]
async fn large_answers_stay_within_cache_bytes() {
    let up = StandIn::start(|q| {
        let mut r = reply_to(q);
        let name = q.queries[0].name().clone();
        if name.to_ascii().starts_with("big") {
            let strings = (0..240).map(|i| format!("{i:0250}")).collect();
            let txt = Record::from_rdata(name, 300, RData::TXT(TXT::new(strings)));
            r.answers.push(txt);
        } else {
            r.answers.push(a_record(&name.to_ascii(), 300, "192.0.2.7"));
        }
        Some(r)
    })
    .await;
    let bound = 1 << 20;
    let srv = start(&config(&[up.addr], 1000, &format!("cache_bytes = {bound}"))).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let small = "small.example.com";
    for i in 0..40 {
        // A name in use all along.
        if i % 5 == 0 {
            let r = udp_query(srv.addr, small, RecordType::A).await;
            assert_eq!(addrs(&r), vec!["192.0.2.7"]);
        }
        let big = query_msg(&format!("big{i}.example.com"), RecordType::TXT, Some(1232));
        let r = tcp_exchange(&mut tcp, &big).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        let RData::TXT(txt) = &r.answers[0].data else {
            panic!("{:?}", r.answers)
        };
        assert_eq!(txt.txt_data.len(), 240, "the whole answer");
    }
    let text = scrape(&srv).await;
    let (held, entries) = (
        metric(&text, CACHE_BYTES, &[]),
        metric(&text, CACHE_ENTRIES, &[]),
    );
    assert!(
        held <= bound as f64,
        "{held} bytes held in {entries} entries"
    );
    assert!(entries < 40.0, "{entries} entries of 60 KB held in 1 MiB");
    assert!(
        held > 0.0 && entries > 1.0,
        "{held} bytes in {entries} entries"
    );
    up.clear();
    let r = udp_query(srv.addr, small, RecordType::A).await;
    assert_eq!(addrs(&r), vec!["192.0.2.7"]);
    assert!(up.seen().is_empty(), "asked again: {:?}", up.seen_names());
    srv.stop().await;
}

/// A negative answer is kept for the SOA's minimum when that is below the
/// SOA's own TTL (RFC 2308 §5), then asked again.
#[tokio::test]
async fn negative_answers_expire_after_the_soa_minimum() {
    let up = StandIn::start(|q| Some(edge_case_zone(q))).await;
    let srv = start(&config(&[up.addr], 1000, "")).await;
    let name = "short-negative.example.com";
    let asked = Instant::now();
    let first = udp_query(srv.addr, name, RecordType::A).await;
    assert_eq!(first.metadata.response_code, ResponseCode::NXDomain);
    let cached = udp_query(srv.addr, name, RecordType::A).await;
    assert_eq!(cached.metadata.response_code, ResponseCode::NXDomain);
    assert!(
        cached.authorities.iter().all(|r| r.ttl <= 2),
        "the SOA's TTL is at most its minimum: {:?}",
        cached.authorities
    );
    assert_eq!(up.seen().len(), 1, "the second answer came from the cache");
    // Past 2 s, the next question goes upstream again: not before, and
    // well before the SOA's own TTL of 300 s (the ceiling is five minimums).
    let minimum = Duration::from_secs(2);
    let again = loop {
        let r = udp_query(srv.addr, name, RecordType::A).await;
        if up.seen().len() == 2 {
            break r;
        }
        assert!(
            asked.elapsed() < 5 * minimum,
            "still cached after {:?}",
            asked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(again.metadata.response_code, ResponseCode::NXDomain);
    assert!(
        asked.elapsed() >= minimum,
        "asked again after {:?}, before the 2 s minimum",
        asked.elapsed()
    );
    srv.stop().await;
}

/// TTLs from upstream are bounded where the answer enters, so the client's
/// first answer already shows them bounded, as the cached copies do: a TTL
/// with the top bit set is 0, a positive one at most a day, a negative
/// answer's (its SOA's) at most an hour.
#[tokio::test]
async fn upstream_ttls_are_capped_in_the_first_answer() {
    let up = StandIn::start(|q| {
        let mut r = reply_to(q);
        let qname = q.queries[0].name().to_ascii().to_lowercase();
        match qname.as_str() {
            "top-bit.example.com." => r.add_answer(a_record(&qname, 2_147_483_664, "192.0.2.1")),
            "week.example.com." => r.add_answer(a_record(&qname, 604_800, "192.0.2.2")),
            "no-such.example.com." => {
                r.metadata.response_code = ResponseCode::NXDomain;
                r.add_authority(soa_record("example.com.", u32::MAX, u32::MAX))
            }
            _ => {
                r.metadata.response_code = ResponseCode::NXDomain;
                r.add_authority(soa_record("example.com.", 604_800, 86_400))
            }
        };
        Some(r)
    })
    .await;
    let srv = start(&config_with(up.addr, "")).await;
    let ttls = |m: &hickory_proto::op::Message| {
        let all = m.answers.iter().chain(&m.authorities);
        all.map(|r| r.ttl).collect::<Vec<_>>()
    };
    let top_bit = udp_query(srv.addr, "top-bit.example.com", RecordType::A).await;
    assert_eq!(ttls(&top_bit), [0], "top bit set: 0");
    let week = udp_query(srv.addr, "week.example.com", RecordType::A).await;
    assert_eq!(ttls(&week), [86_400], "a week: a day");
    let soa_max = udp_query(srv.addr, "no-such.example.com", RecordType::A).await;
    assert_eq!(soa_max.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(ttls(&soa_max), [0], "an SOA TTL of 2^32-1: top bit set, 0");
    // A negative answer: at most an hour, first and from the cache.
    for asked in ["first", "cached"] {
        let neg = udp_query(srv.addr, "gone.example.com", RecordType::A).await;
        assert_eq!(neg.metadata.response_code, ResponseCode::NXDomain);
        let soa = ttls(&neg);
        assert!(soa.len() == 1 && soa[0] <= 3_600, "{asked}: {soa:?}");
    }
    let asked = up.seen_names();
    assert_eq!(
        asked.iter().filter(|n| *n == "gone.example.com").count(),
        1,
        "the second came from the cache: {asked:?}"
    );
    srv.stop().await;
}
