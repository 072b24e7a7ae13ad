//! Issue 5, items 1–3: amldns protects its upstream (caps on questions in
//! flight and per second, identical questions merged), survives its faults
//! (stale answers, remembered failures, failover and recovery), and is not
//! fooled by forged replies. Every upstream is a stand-in on 127.0.0.1.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// 100 clients ask the same uncached name at once: the upstream hears it once.
#[tokio::test]
async fn identical_questions_in_flight_are_asked_once() {
    let up = StandIn::start_delayed(
        "127.0.0.1:0".parse().unwrap(),
        Duration::from_millis(300),
        |q| Some(upstream_zone(q)),
    )
    .await;
    let srv = start(&config_with(up.addr, "")).await;
    let clients: Vec<_> = (0..100)
        .map(|_| {
            let addr = srv.addr;
            tokio::spawn(async move { udp_query(addr, "www.example.com", RecordType::A).await })
        })
        .collect();
    for c in clients {
        assert_eq!(addrs(&c.await.unwrap()), vec!["192.0.2.10"]);
    }
    // One question: a resend while the slow upstream works on it repeats
    // its ID from its port, which a resolver takes as the same query.
    let seen = up.seen();
    let asked: HashSet<_> = seen.iter().map(|s| (&*s.name, s.id, s.port)).collect();
    assert_eq!(asked.len(), 1, "{seen:?}");
    srv.stop().await;
}

/// Like dnsperf: `clients` askers, each sending its next name as soon as
/// the last is answered (or lost, after a second), through `names` round and
/// round for `run`; returns how many were sent.
async fn flood(
    server: SocketAddr,
    names: Arc<Vec<String>>,
    clients: usize,
    run: Duration,
) -> usize {
    let end = Instant::now() + run;
    let workers: Vec<_> = (0..clients)
        .map(|w| {
            let names = names.clone();
            tokio::spawn(async move {
                let mut sent = 0;
                for name in names.iter().skip(w).step_by(clients).cycle() {
                    if Instant::now() >= end {
                        break;
                    }
                    let q = query_msg(name, RecordType::A, None).to_vec().unwrap();
                    udp_raw(server, &q, Duration::from_secs(1)).await;
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    let mut sent = 0;
    for w in workers {
        sent += w.await.unwrap();
    }
    sent
}

/// Local queries every 5 ms during `run`: how many, and how many were
/// answered with the right address within 50 ms.
async fn local_probe(server: SocketAddr, run: Duration) -> (usize, usize) {
    let name = format!("{GUID}.workspace.eastus.api.azureml.ms");
    let q = query_msg(&name, RecordType::A, None).to_vec().unwrap();
    let end = Instant::now() + run;
    let (mut asked, mut quick) = (0, 0);
    while Instant::now() < end {
        asked += 1;
        if let Some(bytes) = udp_raw(server, &q, Duration::from_millis(50)).await
            && addrs(&Message::from_vec(&bytes).unwrap()) == ["10.1.0.5"]
        {
            quick += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (asked, quick)
}

/// A flood of 5,000 distinct names that no cache can absorb, from clients
/// each asking as fast as it is answered, first 200 through a slow upstream
/// (the in-flight cap binds), then 400 through a fast one (the rate cap
/// binds: it sets the pace, questions wait their turn, and those that would
/// wait longer than 250 ms are refused): the upstream never sees more than
/// 150 at once or 1000 in any second (900/s on average), local names are
/// still answered at once, and memory stays put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_misses_stays_within_the_upstream_limits() {
    let names: Arc<Vec<String>> =
        Arc::new((0..5000).map(|i| format!("n{i}.flood.example")).collect());
    // Every flood name is NXDOMAIN without an SOA: never cached.
    let nx = |q: &Message| {
        let mut r = reply_to(q);
        r.metadata.response_code = ResponseCode::NXDomain;
        Some(r)
    };
    let rss_before = rss_kib();
    for (delay, limit, clients) in [
        (Duration::from_millis(500), "in_flight", 200),
        (Duration::ZERO, "rate", 400),
    ] {
        let up = StandIn::start_delayed("127.0.0.1:0".parse().unwrap(), delay, nx).await;
        let srv = start(&with_metrics(up.addr, &workspace("public", ""))).await;
        let run = Duration::from_secs(5);
        let (sent, (asked, quick)) = tokio::join!(
            flood(srv.addr, names.clone(), clients, run),
            local_probe(srv.addr, run)
        );
        let seen = up.seen();
        let mut per_second = std::collections::BTreeMap::<u64, usize>::new();
        let t0 = seen.first().map(|s| s.at).unwrap();
        for s in &seen {
            *per_second
                .entry(s.at.duration_since(t0).as_secs())
                .or_default() += 1;
        }
        let busiest = per_second.values().copied().max().unwrap();
        let text = scrape(&srv).await;
        let limited = metric(&text, "amldns_upstream_limited_total", &[("limit", limit)]);
        // The bucket allows a burst of 18 on top of 900/s, and arrivals
        // jitter across second boundaries: no second may reach Azure's 1000,
        // and over the run the mean is the configured 900.
        let span = seen.last().unwrap().at.duration_since(t0).as_secs_f64();
        let mean = (seen.len() - 1) as f64 / span;
        eprintln!(
            "{limit}: sent {sent}, upstream asked {} (peak in flight {}, busiest second {busiest}, mean {mean:.0}/s), \
             limited {limited}, local {quick}/{asked} within 50 ms",
            seen.len(),
            up.peak_in_flight(),
        );
        assert!(up.peak_in_flight() <= 150, "peak {}", up.peak_in_flight());
        assert!(busiest < 1000, "{busiest} upstream queries in one second");
        assert!(mean <= 920.0, "{mean:.0} upstream queries per second");
        assert!(limited > 0.0, "the {limit} limit was reached");
        if limit == "rate" {
            assert!(mean >= 850.0, "the rate set the pace: {mean:.0}/s");
        }
        // A p99 budget, not zero misses: on a shared 2-core machine one
        // probe in a few hundred can lose the CPU for longer than 50 ms.
        assert!(
            quick * 100 >= asked * 99,
            "local answers within 50 ms (p99): {quick}/{asked}"
        );
        srv.stop().await;
    }
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(grown < 100 * 1024, "RSS grew by {grown} KiB");
}

/// The upstream goes silent: a name seen before is answered stale (TTL 30)
/// once the upstream has failed, or after about 1.8 s at most; a name never
/// seen gets SERVFAIL within 2.5 s; and the next asker of that name gets
/// SERVFAIL at once.
#[tokio::test]
async fn a_dead_upstream_gives_stale_answers_then_servfail() {
    let alive = Arc::new(AtomicBool::new(true));
    let up = {
        let alive = alive.clone();
        StandIn::start(move |q| {
            if !alive.load(Ordering::SeqCst) {
                return None;
            }
            let mut r = reply_to(q);
            let name = q.queries[0].name().to_ascii();
            r.answers.push(a_record(&name, 1, "192.0.2.77"));
            Some(r)
        })
        .await
    };
    let srv = start(&with_metrics(up.addr, "")).await;
    let r = udp_query(srv.addr, "seen.example.com", RecordType::A).await;
    assert_eq!(addrs(&r), vec!["192.0.2.77"]);
    assert_eq!(r.answers[0].ttl, 1);

    alive.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = Instant::now();
    let r = udp_query(srv.addr, "seen.example.com", RecordType::A).await;
    let took = t.elapsed();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&r), vec!["192.0.2.77"], "the stale answer");
    assert_eq!(r.answers[0].ttl, 30);
    assert!(took < Duration::from_millis(2300), "stale after {took:?}");
    // The one upstream had its try (timeout_ms 1000): it failed, and the
    // stale answer went out then rather than at 1.8 s.
    assert!(
        took >= Duration::from_millis(900),
        "upstream had its chance: {took:?}"
    );

    let t = Instant::now();
    let r = udp_query(srv.addr, "never.example.com", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert!(
        t.elapsed() < Duration::from_millis(2600),
        "{:?}",
        t.elapsed()
    );
    // Remembered: the next one does not wait.
    let t = Instant::now();
    let r = udp_query(srv.addr, "never.example.com", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );

    let text = scrape(&srv).await;
    assert_eq!(
        metric(
            &text,
            "amldns_queries_total",
            &[("protocol", "udp"), ("qtype", "A"), ("outcome", "stale")]
        ),
        1.0
    );
    srv.stop().await;
}

/// An upstream's SERVFAIL reaches the client, is remembered for a few
/// seconds (not asked again), and the name is asked again after that.
#[tokio::test]
async fn upstream_servfail_passes_through_and_is_remembered_briefly() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(up.addr, "")).await;
    for _ in 0..3 {
        let r = udp_query(srv.addr, "servfail.example.com", RecordType::A).await;
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    }
    assert_eq!(up.seen_names(), vec!["servfail.example.com"]);
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let r = udp_query(srv.addr, "servfail.example.com", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(
        up.seen_names().len(),
        2,
        "asked again once remembered no more"
    );
    srv.stop().await;
}

/// A forger that answers every question first with a wrong ID, a wrong
/// question, QR=0 and from another port, and then with the real answer 50 ms
/// later: only the real answer is taken and cached.
#[tokio::test]
async fn forged_replies_are_ignored_and_never_cached() {
    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let other = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = sock.local_addr().unwrap();
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let forger = {
        let asked = asked.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
                asked.fetch_add(1, Ordering::SeqCst);
                let q = Message::from_vec(&buf[..n]).unwrap();
                let name = q.queries[0].name().to_ascii();
                let forged = |edit: &dyn Fn(&mut Message)| {
                    let mut r = reply_to(&q);
                    r.answers.push(a_record(&name, 300, "203.0.113.66"));
                    edit(&mut r);
                    r.to_vec().unwrap()
                };
                let wrong_id = forged(&|r| r.metadata.id = q.metadata.id.wrapping_add(1));
                let wrong_q = forged(&|r| {
                    r.queries[0] = hickory_proto::op::Query::query(
                        name_of("other.example.com."),
                        RecordType::A,
                    )
                });
                let not_response = forged(&|r| r.metadata.message_type = MessageType::Query);
                let from_elsewhere = forged(&|_| {});
                for bytes in [&wrong_id, &wrong_q, &not_response] {
                    sock.send_to(bytes, peer).await.unwrap();
                }
                other.send_to(&from_elsewhere, peer).await.unwrap();
                let mut real = reply_to(&q);
                real.answers.push(a_record(&name, 300, "192.0.2.55"));
                let (sock, real) = (sock.clone(), real.to_vec().unwrap());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    sock.send_to(&real, peer).await.unwrap();
                });
            }
        })
    };
    let srv = start(&config_with(addr, "")).await;
    for _ in 0..3 {
        let r = udp_query(srv.addr, "target.example.com", RecordType::A).await;
        assert_eq!(addrs(&r), vec!["192.0.2.55"]);
    }
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "the real answer was cached"
    );
    forger.abort();
    srv.stop().await;
}

fn name_of(s: &str) -> hickory_proto::rr::Name {
    hickory_proto::rr::Name::from_ascii(s).unwrap()
}

/// 2,000 misses: each from a source port and with an ID of its own.
#[tokio::test]
async fn upstream_queries_use_random_ports_and_ids() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(
        up.addr,
        "max_qps = 100000\nmax_in_flight = 1000",
    ))
    .await;
    for chunk in (0..2000).collect::<Vec<_>>().chunks(100) {
        let asks: Vec<_> = chunk
            .iter()
            .map(|i| {
                let addr = srv.addr;
                let name = format!("r{i}.example.com");
                tokio::spawn(async move { udp_query(addr, &name, RecordType::A).await })
            })
            .collect();
        for a in asks {
            a.await.unwrap();
        }
    }
    // Under load a slow answer may be resent for: same name, ID and port.
    let seen = up.seen();
    let asked: HashSet<_> = seen.iter().map(|s| (&*s.name, s.id, s.port)).collect();
    assert_eq!(asked.len(), 2000);
    let ports: HashSet<u16> = seen.iter().map(|s| s.port).collect();
    let ids: HashSet<u16> = seen.iter().map(|s| s.id).collect();
    eprintln!("distinct ports {}, distinct IDs {}", ports.len(), ids.len());
    assert!(ports.len() >= 1900, "{} distinct ports", ports.len());
    assert!(ids.len() >= 1900, "{} distinct IDs", ids.len());
    srv.stop().await;
}

/// Two upstreams, the first refusing: the second answers within the same
/// query; when the first is healthy again it is first again after the
/// retry interval.
#[tokio::test]
async fn failover_and_recovery() {
    let healthy = Arc::new(AtomicBool::new(false));
    let first = {
        let healthy = healthy.clone();
        StandIn::start(move |q| healthy.load(Ordering::SeqCst).then(|| upstream_zone(q))).await
    };
    let second = StandIn::zone().await;
    let cfg = TestConfig {
        upstreams: &[first.addr, second.addr],
        upstream: "timeout_ms = 300",
        ..TestConfig::default()
    }
    .text();
    let srv = start(&cfg).await;
    let r = udp_query(srv.addr, "www.example.com", RecordType::A).await;
    assert_eq!(addrs(&r), vec!["192.0.2.10"]);
    healthy.store(true, Ordering::SeqCst);
    first.clear();
    // Within the retry interval the second stays first.
    let r = udp_query(srv.addr, "nope1.example.com", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert!(first.seen().is_empty());
    // After it, the first is tried first again, and answers.
    tokio::time::sleep(Duration::from_millis(10_200)).await;
    second.clear();
    let r = udp_query(srv.addr, "nope2.example.com", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(first.seen_names(), vec!["nope2.example.com"]);
    assert!(second.seen().is_empty());
    srv.stop().await;
}

/// An upstream that answers with a CNAME loop: the client hears SERVFAIL
/// (as from Unbound and Knot Resolver) within 2 s, the loop is not cached
/// as an answer (the next asker gets SERVFAIL too, without asking again),
/// amldns asks at most 3 upstream questions for it, and goes on serving.
#[tokio::test]
async fn upstream_cname_loops_end_quickly() {
    let up = StandIn::start(|q| {
        let mut r = reply_to(q);
        r.answers
            .push(cname_record("loop1.example.com.", 60, "loop2.example.com."));
        r.answers
            .push(cname_record("loop2.example.com.", 60, "loop1.example.com."));
        Some(r)
    })
    .await;
    let srv = start(&config_with(up.addr, &workspace("public", ""))).await;
    for _ in 0..2 {
        let t = Instant::now();
        let r = udp_query(srv.addr, "loop1.example.com", RecordType::A).await;
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        assert!(r.answers.is_empty());
    }
    assert!(
        up.seen().len() <= 3,
        "{} upstream questions",
        up.seen().len()
    );
    let r = udp_query(
        srv.addr,
        &format!("{GUID}.workspace.eastus.api.azureml.ms"),
        RecordType::A,
    )
    .await;
    assert_eq!(addrs(&r), vec!["10.1.0.5"]);
    srv.stop().await;
}
