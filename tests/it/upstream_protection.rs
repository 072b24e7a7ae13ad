//! amldns protects its upstream (caps on questions in
//! flight and per second, identical questions merged), survives its faults
//! (stale answers, remembered failures, failover and recovery), and is not
//! fooled by forged replies. Every upstream is a stand-in on 127.0.0.1.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amldns::forward::STALE_AFTER;
use amldns::metrics::{UPSTREAM_ERRORS_TOTAL, UPSTREAM_IN_FLIGHT, UPSTREAM_LIMITED_TOTAL};
use amldns::resolve::QUERY_DEADLINE;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

use crate::common::*;

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

/// Local queries every 5 ms during `run`, each asked as a stub asks (up to
/// three times, a second each): how many, and how many were answered with
/// the right address.
async fn local_probe(server: SocketAddr, run: Duration) -> (usize, usize) {
    let end = Instant::now() + run;
    let (mut asked, mut answered) = (0, 0);
    while Instant::now() < end {
        asked += 1;
        if alive(server).await {
            answered += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (asked, answered)
}

/// Set in the copy of this test binary that runs the flood alone.
const FLOOD_ALONE: &str = "AMLDNS_TEST_FLOOD_ALONE";

/// A flood of 5,000 distinct names that no cache can absorb, from clients
/// each asking as fast as it is answered, first 200 through a slow upstream
/// (the in-flight cap binds), then 400 through a fast one with `max_qps =
/// 300` (the rate cap binds: questions wait their turn, and those that
/// would wait longer than 250 ms are refused): the upstream never has more
/// than 150 unanswered at once, never hears more than the rate allows over
/// the time the flood took, local names are still answered, and memory
/// stays put.
///
/// It runs in a process of its own (this test binary again, with only this
/// test), so that the memory it measures is not that of other tests.
#[test]
fn a_flood_of_misses_stays_within_the_upstream_limits() {
    if std::env::var_os(FLOOD_ALONE).is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(flood_alone());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "upstream_protection::a_flood_of_misses_stays_within_the_upstream_limits",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FLOOD_ALONE, "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    // Two runs of 5 s and their setup; the ceiling is for a hung child.
    let end = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the flood still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    eprintln!("{}{}", text(&out), text(&err));
    assert!(status.success(), "the flood, run alone, failed: {status}");
    assert!(
        text(&out).contains("1 passed"),
        "the flood did not run: {}",
        text(&out)
    );
}

/// The flood's upstream: every question NXDOMAIN without an SOA (never
/// cached), answered after `delay`; it counts the datagrams it heard and
/// the most questions it held unanswered at once. A question is its source
/// and DNS ID, so a resend of one held (same socket, same ID) is not a
/// second question; it stops counting just before its first answer is
/// sent, and a datagram of it arriving later counts for nothing: amldns
/// frees its place only once that answer arrives, so a correct cap is
/// never seen passed by a race with this count, however late a loaded
/// machine runs the timers.
struct Holder {
    addr: SocketAddr,
    heard: Arc<AtomicUsize>,
    questions: Arc<Mutex<Held>>,
    task: tokio::task::JoinHandle<()>,
}

/// The questions a [`Holder`] holds, and has answered.
#[derive(Default)]
struct Held {
    now: HashSet<(SocketAddr, u16)>,
    answered: HashSet<(SocketAddr, u16)>,
    peak: usize,
}

impl Holder {
    async fn start(delay: Duration) -> Self {
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = sock.local_addr().unwrap();
        let heard = Arc::new(AtomicUsize::new(0));
        let questions = Arc::new(Mutex::new(Held::default()));
        let task = tokio::spawn({
            let (heard, questions) = (heard.clone(), questions.clone());
            async move {
                let mut buf = [0u8; 2048];
                while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
                    let Ok(q) = Message::from_vec(&buf[..n]) else {
                        continue;
                    };
                    heard.fetch_add(1, Ordering::SeqCst);
                    let question = (peer, q.metadata.id);
                    {
                        let mut held = questions.lock().unwrap();
                        if !held.answered.contains(&question) && held.now.insert(question) {
                            held.peak = held.peak.max(held.now.len());
                        }
                    }
                    let mut r = reply_to(&q);
                    r.metadata.response_code = ResponseCode::NXDomain;
                    let bytes = r.to_vec().unwrap();
                    let (sock, questions) = (sock.clone(), questions.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        {
                            let mut held = questions.lock().unwrap();
                            if held.now.remove(&question) {
                                held.answered.insert(question);
                            }
                        }
                        let _ = sock.send_to(&bytes, peer).await;
                    });
                }
            }
        });
        Holder {
            addr,
            heard,
            questions,
            task,
        }
    }

    fn heard(&self) -> usize {
        self.heard.load(Ordering::SeqCst)
    }

    fn peak(&self) -> usize {
        self.questions.lock().unwrap().peak
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn flood_alone() {
    let names: Arc<Vec<String>> =
        Arc::new((0..5000).map(|i| format!("n{i}.flood.example")).collect());
    let rss_before = rss_kib();
    for (delay, limit, clients, max_qps) in [
        (Duration::from_millis(500), "in_flight", 200, 900u32),
        (Duration::ZERO, "rate", 400, 300),
    ] {
        let up = Holder::start(delay).await;
        // A try (2 s) far longer than the upstream takes, so that no
        // question is given up on while the upstream still holds it.
        let cfg = TestConfig {
            upstreams: &[up.addr],
            upstream: &format!("timeout_ms = 2000\nmax_qps = {max_qps}"),
            metrics: true,
            rest: &workspace("public", ""),
            ..TestConfig::default()
        }
        .text();
        let srv = start(&cfg).await;
        let run = Duration::from_secs(5);
        // Every datagram the upstream hears was sent within this window.
        let began = Instant::now();
        let (sent, (asked, answered)) = tokio::join!(
            flood(srv.addr, names.clone(), clients, run),
            local_probe(srv.addr, run)
        );
        let heard = up.heard();
        let window = began.elapsed();
        let text = scrape(&srv).await;
        let limited = metric(&text, "amldns_upstream_limited_total", &[("limit", limit)]);
        // The bucket holds at most a fiftieth of a second's worth and fills
        // at `max_qps`: over any stretch of time no more than that goes out,
        // however slowly this machine ran the flood.
        let rate = f64::from(max_qps);
        let allowed = (rate / 50.0).max(1.0) + rate * window.as_secs_f64();
        eprintln!(
            "{limit}: sent {sent}, upstream asked {} in {window:?} (allowed {allowed:.0}, peak in \
             flight {}), limited {limited}, local {answered}/{asked} answered",
            heard,
            up.peak(),
        );
        assert!(up.peak() <= 150, "peak {}", up.peak());
        assert!(
            heard as f64 <= allowed,
            "{heard} upstream queries in {window:?}, over {max_qps}/s"
        );
        assert!(limited > 0.0, "the {limit} limit was reached");
        assert_eq!(answered, asked, "every local question answered");
        srv.stop().await;
    }
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(grown < 100 * 1024, "RSS grew by {grown} KiB");
}

/// The upstream goes silent: a name seen before is answered stale (TTL 30)
/// once the upstream's one try (`timeout_ms = 300`) has failed, not later
/// at STALE_AFTER (1.8 s); a name never seen gets SERVFAIL then too, not at
/// the query's deadline; and the next asker of that name gets SERVFAIL
/// without its question going upstream.
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
    let per_try = Duration::from_millis(300);
    let cfg = TestConfig {
        upstreams: &[up.addr],
        upstream: &format!("timeout_ms = {}", per_try.as_millis()),
        metrics: true,
        ..TestConfig::default()
    }
    .text();
    let srv = start(&cfg).await;
    let r = udp_query(srv.addr, "seen.example.com", RecordType::A).await;
    assert_eq!(addrs(&r), vec!["192.0.2.77"]);
    assert_eq!(r.answers[0].ttl, 1);

    alive.store(false, Ordering::SeqCst);
    // Past the TTL of 1 s, measured on the real clock the cache counts on.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = Instant::now();
    let r = udp_query(srv.addr, "seen.example.com", RecordType::A).await;
    let took = t.elapsed();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&r), vec!["192.0.2.77"], "the stale answer");
    assert_eq!(r.answers[0].ttl, 30);
    // The one upstream had its try (never sooner), and the stale answer
    // went out when it failed: before STALE_AFTER, six tries' worth, which
    // is where it would come if it waited for that instead.
    assert!(
        took >= per_try,
        "stale after {took:?}, before the try ended"
    );
    assert!(took < STALE_AFTER, "stale after {took:?}");

    let t = Instant::now();
    let r = udp_query(srv.addr, "never.example.com", RecordType::A).await;
    let took = t.elapsed();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    // When the try failed: not before, and not at the 2.5 s deadline.
    assert!(took >= per_try, "SERVFAIL after {took:?}");
    assert!(took < QUERY_DEADLINE, "SERVFAIL after {took:?}");
    // Remembered: the next one is not asked upstream.
    let asked = up.seen().len();
    let r = udp_query(srv.addr, "never.example.com", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(up.seen().len(), asked);

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

/// An upstream slower than STALE_AFTER (`timeout_ms = 2500`, it never
/// answers): a client with a stale answer at hand gets it at STALE_AFTER
/// (RFC 8767 §5), while the upstream question is still out, not when the
/// try ends.
#[tokio::test]
async fn a_slow_upstream_gives_the_stale_answer_at_stale_after() {
    let alive = Arc::new(AtomicBool::new(true));
    let up = {
        let alive = alive.clone();
        StandIn::start(move |q| {
            let mut r = reply_to(q);
            let name = q.queries[0].name().to_ascii();
            r.answers.push(a_record(&name, 1, "192.0.2.78"));
            alive.load(Ordering::SeqCst).then_some(r)
        })
        .await
    };
    let cfg = TestConfig {
        upstreams: &[up.addr],
        upstream: "timeout_ms = 2500",
        metrics: true,
        ..TestConfig::default()
    }
    .text();
    let srv = start(&cfg).await;
    let r = udp_query(srv.addr, "slow.example.com", RecordType::A).await;
    assert_eq!(addrs(&r), vec!["192.0.2.78"]);
    alive.store(false, Ordering::SeqCst);
    // Past the TTL of 1 s, measured on the real clock the cache counts on.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = Instant::now();
    let r = udp_query(srv.addr, "slow.example.com", RecordType::A).await;
    let took = t.elapsed();
    // The try is still running: the question is in flight, and no timeout
    // has been counted (it would be, had the answer waited for the try).
    let m = scrape(&srv).await;
    assert_eq!(addrs(&r), vec!["192.0.2.78"], "the stale answer");
    assert_eq!(r.answers[0].ttl, 30);
    assert!(took >= STALE_AFTER, "stale after {took:?}");
    assert_eq!(metric(&m, UPSTREAM_IN_FLIGHT, &[]), 1.0, "{m}");
    assert_eq!(
        metric(&m, UPSTREAM_ERRORS_TOTAL, &[("error", "timeout")]),
        0.0,
        "{m}"
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
    let asked = Arc::new(AtomicUsize::new(0));
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

/// 2,000 misses: each from a random source port and with an ID of its own.
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
    // Random ports from the kernel's ephemeral range: among 2,000 draws from
    // its 28,232 ports (Linux's default) some repeat, ~1,930 are distinct.
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let [low, high] = [0, 1].map(|i| {
        range
            .split_whitespace()
            .nth(i)
            .unwrap()
            .parse::<f64>()
            .unwrap()
    });
    let size = high - low + 1.0;
    let expected = size * (1.0 - (-2000.0 / size).exp());
    assert!(
        ports.len() as f64 >= 0.95 * expected,
        "{} distinct ports, ~{expected:.0} expected",
        ports.len()
    );
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
    // One try of the whole deadline: a try waited out would take 2.5 s.
    let cfg = TestConfig {
        upstreams: &[up.addr],
        upstream: "timeout_ms = 2500",
        rest: &workspace("public", ""),
        ..TestConfig::default()
    }
    .text();
    let srv = start(&cfg).await;
    let mut asked = Vec::new();
    for _ in 0..2 {
        // Answered as soon as the loop is seen: no try waits out a timeout
        // (the ceiling is far above a few loopback exchanges, far below one).
        let t = Instant::now();
        let r = udp_query(srv.addr, "loop1.example.com", RecordType::A).await;
        assert!(t.elapsed() < QUERY_DEADLINE / 2, "{:?}", t.elapsed());
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        assert!(r.answers.is_empty());
        asked.push(up.seen().len());
    }
    // The first asker's question went upstream (at most 3 questions to
    // follow the chain); the second was answered without asking.
    assert!((1..=3).contains(&asked[0]), "{asked:?} upstream questions");
    assert_eq!(asked[1], asked[0], "asked again for a loop already seen");
    let r = udp_query(
        srv.addr,
        &format!("{GUID}.workspace.eastus.api.azureml.ms"),
        RecordType::A,
    )
    .await;
    assert_eq!(addrs(&r), vec!["10.1.0.5"]);
    srv.stop().await;
}

/// One client keeps every place in flight full of names the upstream never
/// answers; another client's new names are still answered, each taking the
/// place of one of the first client's questions (counted as displaced).
#[tokio::test]
async fn one_clients_unanswered_names_do_not_fail_anothers() {
    const SLOW: &str = ".slow.example";
    let up = StandIn::start(|q| {
        let name = q.queries[0].name().to_ascii();
        if name.trim_end_matches('.').ends_with(SLOW) {
            return None;
        }
        let mut r = reply_to(q);
        r.answers.push(a_record(&name, 300, "192.0.2.55"));
        Some(r)
    })
    .await;
    let cfg = TestConfig {
        upstreams: &[up.addr],
        server: "allow = [\"127.0.0.0/8\"]",
        upstream: "timeout_ms = 2000\nmax_in_flight = 16",
        metrics: true,
        ..TestConfig::default()
    }
    .text();
    let srv = start(&cfg).await;
    let slow_seen = || up.seen().iter().filter(|s| s.name.ends_with(SLOW)).count();

    // Client A: 64 never-answered names at once, then 8 more every 50 ms
    // until told to stop (bounded, 30 s at most); its answers go unread.
    let stop = Arc::new(AtomicBool::new(false));
    let a = {
        let (stop, server) = (stop.clone(), srv.addr);
        tokio::spawn(async move {
            let sock = UdpSocket::bind("127.0.0.2:0").await.unwrap();
            let mut n = 0;
            for tick in 0..600 {
                if tick > 0 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                for _ in 0..if tick == 0 { 64 } else { 8 } {
                    let q = query_msg(&format!("a{n}{SLOW}"), RecordType::A, Some(1232));
                    sock.send_to(&q.to_vec().unwrap(), server).await.unwrap();
                    n += 1;
                }
            }
        })
    };
    // Every place taken by A before B asks.
    let waited = Instant::now();
    while slow_seen() < 16 && waited.elapsed() < IO_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(slow_seen() >= 16, "A's questions went upstream");

    // Client B: 40 new names, 4 at a time.
    let b = "127.0.0.3".parse().unwrap();
    let mut answered = 0;
    let mut failed = Vec::new();
    for round in 0..10 {
        let asks = (0..4).map(|i| {
            let q = query_msg(
                &format!("b{round}-{i}.fast.example"),
                RecordType::A,
                Some(1232),
            );
            async move {
                let bytes = udp_raw_from(b, srv.addr, &q.to_vec().unwrap(), IO_TIMEOUT).await;
                bytes.map(|b| Message::from_vec(&b).unwrap())
            }
        });
        for (i, r) in futures_util::future::join_all(asks)
            .await
            .into_iter()
            .enumerate()
        {
            match r {
                Some(r) if addrs(&r) == ["192.0.2.55"] => answered += 1,
                r => failed.push((round, i, r.map(|r| r.metadata.response_code))),
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    a.await.unwrap();
    let text = scrape(&srv).await;
    let limited = |limit| metric(&text, UPSTREAM_LIMITED_TOTAL, &[("limit", limit)]);
    assert_eq!(answered, 40, "B's names not answered: {failed:?}");
    // A was over the cap, and gave places up to B.
    assert!(limited("in_flight") > 0.0, "{text}");
    assert!(limited("displaced") > 0.0, "{text}");
    // Every place is given back once A's last questions end, those given
    // up included: the whole cap is there again.
    let waited = Instant::now();
    let mut held = f64::NAN;
    while waited.elapsed() < 4 * QUERY_DEADLINE {
        held = metric(&scrape(&srv).await, UPSTREAM_IN_FLIGHT, &[]);
        if held == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(held, 0.0, "places held after every question ended");
    srv.stop().await;
}
