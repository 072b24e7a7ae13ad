// A process of its own: these tests count the process's open descriptors,
// which tests running beside them in one binary would change.
//! TCP abuse, amplification, malformed input, and
//! resources that stay bounded through all of it. Everything on loopback.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use amldns::resolve::QUERY_DEADLINE;
use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const WS: &str = fixtures::API_NAME;

/// The tests here count the process's descriptors, which every test in
/// this binary shares: they take turns, each on a runtime of its own that is
/// gone (with its server's threads) before the next one starts.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time(workers: usize, test: impl Future<Output = ()>) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = match workers {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    }
    .enable_all()
    .build()
    .unwrap();
    runtime.block_on(test);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits for the process's descriptors to come back to `before` (give or
/// take the two a test may still hold), with no upstream socket open: each
/// upstream question holds one until it is answered or its query deadline
/// passes, and none is kept after.
async fn assert_fds_return_to(before: usize, srv: &Running) {
    // A generous ceiling: the upstream questions end by their deadline.
    let end = Instant::now() + 6 * QUERY_DEADLINE;
    loop {
        let open_upstream = metric(&scrape(srv).await, "amldns_upstream_sockets", &[]);
        let open = open_fds();
        if open <= before + 2 && open_upstream == 0.0 {
            return;
        }
        assert!(
            Instant::now() < end,
            "descriptors: {before} before, {open} after, {open_upstream} upstream sockets open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the server has closed `s` (EOF or reset) within `wait`; answers
/// still queued are read and skipped.
async fn closed(s: &mut TcpStream, wait: Duration) -> bool {
    let end = tokio::time::Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

async fn tcp_query(addr: SocketAddr, name: &str) -> Message {
    let mut s = TcpStream::connect(addr).await.unwrap();
    tcp_exchange(&mut s, &query_msg(name, RecordType::A, None)).await
}

/// Twice the connection cap held open, idle and with half a length prefix:
/// the gauge reaches the cap and never passes it, a new connection is
/// still answered long before any idle timeout could have made room (the
/// oldest idle one makes room at once), UDP does not notice, the held ones
/// are closed by the idle timeout, and no descriptor is left behind.
#[test]
fn tcp_connections_are_capped_and_idle_ones_closed() {
    one_at_a_time(1, async {
        let up = StandIn::zone().await;
        let cap = 20;
        let idle = Duration::from_secs(4);
        let cfg = TestConfig {
            upstreams: &[up.addr],
            server: &format!(
                "allow = [\"127.0.0.1/32\"]\ntcp_connections = {cap}\ntcp_idle_timeout_ms = {}",
                idle.as_millis()
            ),
            upstream: "",
            metrics: true,
            rest: &workspace("public", ""),
        }
        .text();
        let srv = start(&cfg).await;
        let fds_before = open_fds();
        let mut held = Vec::new();
        for i in 0..4 * cap {
            let mut s = TcpStream::connect(srv.addr).await.unwrap();
            if i % 2 == 1 {
                s.write_all(&[0]).await.unwrap();
            }
            held.push(s);
        }
        let held_at = Instant::now();
        // The gauge reaches the cap (all were accepted, the oldest closed
        // to make room), and is never above it.
        let end = Instant::now() + IO_TIMEOUT;
        loop {
            let open = metric(&scrape(&srv).await, "amldns_tcp_connections", &[]);
            assert!(open <= cap as f64, "{open} connections open, cap {cap}");
            if open == cap as f64 {
                break;
            }
            assert!(
                Instant::now() < end,
                "{open} connections open, never the cap {cap}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Answered without waiting for an idle connection to time out: the
        // ceiling is half the idle timeout, far above a loopback exchange.
        let r = tcp_query(srv.addr, WS).await;
        assert_eq!(addrs(&r), vec!["10.1.0.5"]);
        assert!(
            held_at.elapsed() < idle / 2,
            "the new connection waited {:?} for room",
            held_at.elapsed()
        );

        // UDP is served all along (each answer within the client's timeout).
        for _ in 0..200 {
            let r = udp_query(srv.addr, WS, RecordType::A).await;
            assert_eq!(addrs(&r), vec!["10.1.0.5"]);
        }

        // Every held connection is closed by the idle timeout: waited for
        // with a ceiling of five times it.
        for s in &mut held {
            let left = (5 * idle).saturating_sub(held_at.elapsed());
            assert!(
                closed(s, left).await,
                "a held connection outlived five idle timeouts"
            );
        }
        drop(held);
        assert_fds_return_to(fds_before, &srv).await;
        srv.stop().await;
    });
}

/// `tcp_connections` and `tcp_idle_timeout_ms` apply live: after a reload
/// that lowers the cap, the connections that come are held to the new one
/// (the oldest idle ones are closed to make room), without a restart.
#[test]
fn a_reload_applies_new_tcp_limits() {
    one_at_a_time(1, async {
        let up = StandIn::zone().await;
        let cfg = |cap: usize| {
            TestConfig {
                upstreams: &[up.addr],
                server: &format!(
                    "allow = [\"127.0.0.1/32\"]\ntcp_connections = {cap}\n\
                     tcp_idle_timeout_ms = 60000"
                ),
                upstream: "",
                metrics: true,
                rest: &workspace("public", ""),
            }
            .text()
        };
        let srv = start(&cfg(50)).await;
        std::fs::write(&srv.config_path, cfg(2)).unwrap();
        let (status, body) = http_request(srv.http(), "POST", "/reload").await;
        assert_eq!(status, 200, "{body}");

        let mut held = Vec::new();
        for _ in 0..6 {
            held.push(TcpStream::connect(srv.addr).await.unwrap());
        }
        // Under the old cap all six would stay open for a minute; under the
        // new one the first four are closed as the later ones come.
        for s in &mut held[..4] {
            assert!(
                closed(s, IO_TIMEOUT).await,
                "a connection past the new cap stayed open"
            );
        }
        let end = Instant::now() + IO_TIMEOUT;
        loop {
            let open = metric(&scrape(&srv).await, "amldns_tcp_connections", &[]);
            if open == 2.0 {
                break;
            }
            assert!(Instant::now() < end, "{open} connections open, cap 2");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let r = tcp_query(srv.addr, WS).await;
        assert_eq!(addrs(&r), vec!["10.1.0.5"]);
        srv.stop().await;
    });
}

/// A client that pipelines queries and never reads its answers: amldns
/// stops reading from it, and closes it once its writes stall for the idle
/// timeout.
#[test]
fn a_client_that_never_reads_is_closed() {
    one_at_a_time(1, async {
        let up = StandIn::zone().await;
        let cfg = TestConfig {
            upstreams: &[up.addr],
            server: "allow = [\"127.0.0.1/32\"]\ntcp_idle_timeout_ms = 1000",
            upstream: "",
            metrics: true,
            rest: &workspace("public", ""),
        }
        .text();
        let srv = start(&cfg).await;
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        // Large answers (100 addresses) to small questions: the answers back
        // up long before the questions do.
        let q = query_msg("big.example.com", RecordType::A, None)
            .to_vec()
            .unwrap();
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        let burst: Vec<u8> = framed.repeat(1000);
        // Write until the server stops taking more (or closes), for at most 10 s.
        let t = Instant::now();
        let mut written = 0usize;
        while t.elapsed() < Duration::from_secs(10) {
            match tokio::time::timeout(Duration::from_millis(500), s.write_all(&burst)).await {
                Ok(Ok(())) => written += 1000,
                // Blocked (the server stopped reading) or closed: both bounded.
                _ => break,
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{written} queries accepted"
        );
        eprintln!(
            "{written} queries written in {:?} before the server stopped reading",
            t.elapsed()
        );
        // Its writes stall for the 1 s idle timeout, then it closes; only then
        // does this client read what was queued for it. Waited for with a
        // ceiling of thirty idle timeouts (a loaded 2-core machine took 2.8
        // s): without the stall timeout it would stay open for as long as
        // this client holds it.
        let idle = Duration::from_secs(1);
        let t = Instant::now();
        loop {
            let text = scrape(&srv).await;
            if metric(&text, "amldns_tcp_connections", &[]) == 0.0 {
                break;
            }
            assert!(
                t.elapsed() < 30 * idle,
                "still open after {:?}",
                t.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("closed {:?} after the client stopped writing", t.elapsed());
        assert!(closed(&mut s, 2 * IO_TIMEOUT).await, "closed once stalled");
        // Others are served throughout.
        assert_eq!(addrs(&tcp_query(srv.addr, WS).await), vec!["10.1.0.5"]);
        srv.stop().await;
    });
}

/// Not an open resolver: 1,000 queries from outside `allow` are all
/// REFUSED and none reaches the upstream.
#[test]
fn clients_outside_allow_never_reach_the_upstream() {
    one_at_a_time(1, async {
        let up = StandIn::zone().await;
        let cfg = TestConfig {
            upstreams: &[up.addr],
            server: "allow = [\"127.0.0.2/32\"]",
            upstream: "",
            ..TestConfig::default()
        }
        .text();
        let srv = start(&cfg).await;
        for i in 0..1000 {
            let r = udp_query(srv.addr, &format!("n{i}.example.com"), RecordType::A).await;
            assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        }
        assert!(up.seen().is_empty());
        srv.stop().await;
    });
}

/// RFC 8482: ANY over UDP for a forwarded name gets TC=1 with nothing in
/// it, and is answered over TCP; for a local name, its addresses.
#[test]
fn any_over_udp_is_minimal() {
    one_at_a_time(1, async {
        let up = StandIn::zone().await;
        let srv = start(&config_with(up.addr, &workspace("public", ""))).await;
        let r = udp_query(srv.addr, "www.example.com", RecordType::ANY).await;
        assert!(r.metadata.truncation);
        assert!(r.answers.is_empty());
        assert!(up.seen().is_empty(), "not asked upstream over UDP");
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        let r = tcp_exchange(&mut s, &query_msg("www.example.com", RecordType::ANY, None)).await;
        assert!(!r.metadata.truncation);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(up.seen().iter().all(|s| s.qtype == RecordType::ANY));
        assert_eq!(up.seen().len(), 1);
        let r = udp_query(srv.addr, WS, RecordType::ANY).await;
        assert!(!r.metadata.truncation);
        assert_eq!(addrs(&r), vec!["10.1.0.5"]);
        srv.stop().await;
    });
}

/// A small xorshift: the same mutations every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What an answer to the datagram `q` may be, per RFC 1035 §4.1.1 and
/// It parses, QR=1, the query's ID and opcode, an rcode the input
/// allows (FORMERR only for what is not a valid query), the question
/// echoed when the query had exactly one that parses, and the local
/// name's address when that question survived. `Err` says what is wrong.
fn check_answer(q: &[u8], r: &[u8]) -> Result<(), String> {
    let reply = Message::from_vec(r).map_err(|e| format!("unparseable answer: {e}"))?;
    if r[2] & 0x80 == 0 {
        return Err("QR=0".into());
    }
    if r[..2] != q[..2] {
        return Err(format!("ID {:02x?}, asked {:02x?}", &r[..2], &q[..2]));
    }
    let opcode = q.get(2).map(|b| (b >> 3) & 0xf);
    if let Some(op) = opcode
        && (r[2] >> 3) & 0xf != op
    {
        return Err(format!("opcode {} for {op}", (r[2] >> 3) & 0xf));
    }
    let asked = Message::from_vec(q).ok().filter(|_| q.len() >= 12);
    // By number: hickory reads 16 as BADSIG, which BADVERS shares (RFC 6891 §9).
    let rcode = u16::from(reply.metadata.response_code);
    // A client never receives FORMERR for a valid query.
    let valid = asked.as_ref().is_some_and(|m| {
        m.queries.len() == 1
            && opcode == Some(0)
            && m.edns.as_ref().is_none_or(|e| e.version() == 0)
            && !matches!(
                m.queries[0].query_type(),
                RecordType::OPT | RecordType::TSIG
            )
    });
    let mut fits = if valid {
        vec![]
    } else {
        vec![ResponseCode::FormErr]
    };
    if opcode.is_some_and(|op| op != 0) {
        fits.push(ResponseCode::NotImp);
    }
    if let Some(m) = &asked {
        if m.edns.as_ref().is_some_and(|e| e.version() > 0) {
            fits.push(ResponseCode::BADVERS);
        }
        if m.queries.len() == 1 && opcode == Some(0) {
            // A question like any other: what the table or the upstream says.
            fits.extend([
                ResponseCode::NoError,
                ResponseCode::NXDomain,
                ResponseCode::ServFail,
                ResponseCode::Refused,
            ]);
        }
    }
    if !fits.iter().any(|&f| u16::from(f) == rcode) {
        return Err(format!("rcode {rcode} (fits: {fits:?})"));
    }
    if let Some(m) = asked.as_ref().filter(|m| m.queries.len() == 1)
        && questions(&reply) != questions(m)
    {
        return Err(format!(
            "question {:?}, asked {:?}",
            reply.queries, m.queries
        ));
    }
    // The local name, still whole: its address and nothing else.
    let local = asked.as_ref().and_then(|m| m.queries.first()).filter(|q| {
        q.name().to_ascii().to_lowercase() == format!("{WS}.")
            && (q.query_type(), q.query_class()) == (RecordType::A, DNSClass::IN)
    });
    if valid && local.is_some() && (rcode, addrs(&reply)) != (0, vec!["10.1.0.5".to_string()]) {
        return Err(format!(
            "the local name answered {rcode} {:?}",
            addrs(&reply)
        ));
    }
    Ok(())
}

/// The question section as it was sent: names in their own case (a
/// client may randomise it, and matches the echo byte for byte).
fn questions(m: &Message) -> Vec<(String, RecordType, DNSClass)> {
    m.queries
        .iter()
        .map(|q| {
            let mut name = q.name().clone();
            name.set_fqdn(true);
            (name.to_ascii(), q.query_type(), q.query_class())
        })
        .collect()
}

/// A well-formed question for the local name gets exactly its address.
async fn probe_answers_exactly(sock: &UdpSocket, server: SocketAddr) {
    let q = query_msg(WS, RecordType::A, None);
    let bytes = q.to_vec().unwrap();
    let mut buf = [0u8; 2048];
    // Like a stub: three tries, a second each (a burst may fill the queue).
    for _ in 0..3 {
        sock.send_to(&bytes, server).await.unwrap();
        let end = tokio::time::Instant::now() + Duration::from_secs(1);
        while let Ok(Ok((n, _))) = tokio::time::timeout_at(end, sock.recv_from(&mut buf)).await {
            let Ok(r) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if r.metadata.id != q.metadata.id {
                continue;
            }
            assert_eq!(r.metadata.response_code, ResponseCode::NoError);
            assert_eq!(questions(&r), questions(&q));
            assert_eq!(answer_lines(&r), [format!("{WS} A 10.1.0.5")]);
            return;
        }
    }
    panic!("the probe got no answer");
}

/// 20,000 mutated datagrams and abusive TCP framings: every answer fits
/// what was asked ([`check_answer`]), a well-formed probe after every 500
/// gets exactly its address, a datagram with QR=1 is never answered, and
/// the process holds no more descriptors at the end than at the start.
#[test]
fn mutated_packets_never_stop_it() {
    one_at_a_time(2, async {
        // Mutated names are forwarded too: an upstream that answers anything.
        let up = StandIn::start(|q| Some(reply_to(q))).await;
        let srv = start(&with_metrics(up.addr, &workspace("public", ""))).await;
        let fds_before = open_fds();
        let seeds: Vec<Vec<u8>> = [
            query_msg(WS, RecordType::A, None),
            query_msg(WS, RecordType::AAAA, Some(1232)),
            query_msg("www.example.com", RecordType::A, Some(4096)),
            query_msg("st.blob.core.windows.net", RecordType::CNAME, None),
        ]
        .iter()
        .map(|m| m.to_vec().unwrap())
        .collect();
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let probes = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // Datagrams with QR=1 go from a socket of their own, which must hear nothing.
        let responses = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // What was sent under each ID: every datagram of two bytes or more
        // gets its own (any 16 bits are a valid ID), so that each answer is
        // checked against its own question.
        let mut sent: Vec<Option<Vec<u8>>> = vec![None; 20_000];
        let mut checked = 0usize;
        let mut buf = [0u8; 65535];
        let mut check_all = |s: &UdpSocket, sent: &[Option<Vec<u8>>]| {
            while let Ok(n) = s.try_recv(&mut buf) {
                let r = &buf[..n];
                assert!(n >= 2, "an answer of {n} bytes");
                let id = u16::from_be_bytes([r[0], r[1]]) as usize;
                let q = sent.get(id).and_then(Option::as_ref);
                let q = q.unwrap_or_else(|| panic!("an answer to ID {id}, never sent"));
                if let Err(e) = check_answer(q, r) {
                    panic!("{e}\nasked {q:02x?}\nanswered {r:02x?}");
                }
                checked += 1;
            }
        };
        for i in 0..20_000u16 {
            let mut p = seeds[rng.below(seeds.len())].clone();
            match rng.below(4) {
                0 => {
                    for _ in 0..=rng.below(8) {
                        let at = rng.below(p.len());
                        p[at] ^= 1 << rng.below(8);
                    }
                }
                1 => p.truncate(rng.below(p.len())),
                2 => p.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
                _ => {
                    let at = rng.below(p.len());
                    p[at] = rng.next() as u8;
                }
            }
            if p.len() > 2 && p[2] & 0x80 != 0 {
                responses.send_to(&p, srv.addr).await.unwrap();
            } else {
                if p.len() >= 2 {
                    p[..2].copy_from_slice(&i.to_be_bytes());
                    sent[usize::from(i)] = Some(p.clone());
                }
                sock.send_to(&p, srv.addr).await.unwrap();
            }
            check_all(&sock, &sent);
            if i % 500 == 499 {
                probe_answers_exactly(&probes, srv.addr).await;
            } else if i % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        // Forwarded ones come back within the query deadline.
        let end = tokio::time::Instant::now() + QUERY_DEADLINE;
        while tokio::time::timeout_at(end, sock.readable()).await.is_ok() {
            check_all(&sock, &sent);
        }
        eprintln!("{checked} answers checked");
        assert!(checked > 5_000, "only {checked} answers to check");
        let mut buf = [0u8; 2048];
        assert!(
            tokio::time::timeout(Duration::from_millis(300), responses.recv(&mut buf))
                .await
                .is_err(),
            "a datagram with QR=1 was answered"
        );
        drop((sock, probes, responses));

        // TCP framings: a zero length, a length promising more than is sent,
        // a lone length byte, and garbage, each on a connection of its own.
        let framings: [&[u8]; 4] = [
            &[0, 0],
            &[0xff, 0xff, 1, 2, 3],
            &[0x01],
            &[0, 3, 0xde, 0xad, 0xbe],
        ];
        for f in framings {
            let mut s = TcpStream::connect(srv.addr).await.unwrap();
            s.write_all(f).await.unwrap();
            drop(s);
        }
        assert_eq!(addrs(&tcp_query(srv.addr, WS).await), vec!["10.1.0.5"]);
        assert_fds_return_to(fds_before, &srv).await;
        srv.stop().await;
    });
}

/// Clients outside `allow` are turned away before they
/// count against `tcp_connections`, so a flood of them never closes the
/// connection of a client that is allowed. Each is told REFUSED for its
/// first query (counted) and closed.
#[test]
fn tcp_outsiders_never_evict_insiders() {
    one_at_a_time(1, async {
        let up = StandIn::zone().await;
        let cap = 4;
        let cfg = format!(
            "[server]\nallow = [\"127.0.0.1/32\"]\ntcp_connections = {cap}\n\
             tcp_idle_timeout_ms = 10000\n[metrics]\nlisten = \"127.0.0.1:0\"\n\
             [upstream]\nservers = [\"{}\"]\n{}",
            up.addr,
            workspace("public", "")
        );
        let srv = start(&cfg).await;
        let outsider: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        // An allowed client, connected and idle before the flood.
        let mut insider = TcpStream::connect(srv.addr).await.unwrap();
        tcp_exchange(&mut insider, &query_msg(WS, RecordType::A, None)).await;
        let mut held = Vec::new();
        for _ in 0..5 * cap {
            held.push(tcp_connect_from(outsider, srv.addr).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let m = scrape(&srv).await;
        assert_eq!(metric(&m, "amldns_tcp_connections", &[]), 1.0, "{m}");
        let r = tcp_exchange(&mut insider, &query_msg(WS, RecordType::A, None)).await;
        assert_eq!(addrs(&r), vec!["10.1.0.5"], "the insider is still served");

        // An outsider's query: REFUSED, then the connection closes.
        let mut s = tcp_connect_from(outsider, srv.addr).await;
        let q = query_msg(WS, RecordType::A, None);
        write_frame(&mut s, &q.to_vec().unwrap()).await.unwrap();
        let bytes = tokio::time::timeout(IO_TIMEOUT, read_frame(&mut s))
            .await
            .expect("REFUSED in time")
            .unwrap();
        let r = Message::from_vec(&bytes).unwrap();
        assert_eq!(r.metadata.id, q.metadata.id);
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        assert!(closed(&mut s, IO_TIMEOUT).await);
        let m = scrape(&srv).await;
        assert_eq!(
            metric(
                &m,
                "amldns_queries_total",
                &[("protocol", "tcp"), ("outcome", "refused")]
            ),
            1.0
        );
        assert!(up.seen().is_empty());
        // Those that never sent a query are closed after a second (the
        // refusal's wait), long before the 10 s idle timeout.
        for s in &mut held {
            assert!(closed(s, IO_TIMEOUT).await, "an outsider held on");
        }
        srv.stop().await;
    });
}

/// A length prefix larger than any query closes the
/// connection at once, without waiting for (or holding) the 64 KiB it
/// promises; queries up to the bound are answered.
#[test]
fn an_oversized_tcp_length_closes_at_once() {
    one_at_a_time(1, async {
        let up = StandIn::zone().await;
        let cfg = format!(
            "[server]\nallow = [\"127.0.0.1/32\"]\ntcp_idle_timeout_ms = 10000\n\
             [upstream]\nservers = [\"{}\"]\n{}",
            up.addr,
            workspace("public", "")
        );
        let srv = start(&cfg).await;
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        tcp_exchange(&mut s, &query_msg(WS, RecordType::A, None)).await;
        let too_long = u16::try_from(amldns::wire::MAX_QUERY + 1).unwrap();
        s.write_all(&too_long.to_be_bytes()).await.unwrap();
        s.write_all(&[0u8; 100]).await.unwrap();
        let t = Instant::now();
        // At once: well within the 10 s idle timeout it would otherwise wait.
        assert!(closed(&mut s, IO_TIMEOUT).await, "still open");
        eprintln!("closed {:?} after the length prefix", t.elapsed());

        // A query padded to the bound (RFC 7830 padding in its OPT) is read.
        let mut q = query_msg(WS, RecordType::A, Some(1232)).to_vec().unwrap();
        let pad = amldns::wire::MAX_QUERY - q.len() - 4;
        let rdlen = u16::from_be_bytes([q[q.len() - 2], q[q.len() - 1]]);
        assert_eq!(rdlen, 0, "the OPT record ends the query, with no options");
        let at = q.len() - 2;
        q[at..].copy_from_slice(&(pad as u16 + 4).to_be_bytes());
        q.extend_from_slice(&12u16.to_be_bytes());
        q.extend_from_slice(&(pad as u16).to_be_bytes());
        q.resize(amldns::wire::MAX_QUERY, 0);
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        write_frame(&mut s, &q).await.unwrap();
        let bytes = tokio::time::timeout(IO_TIMEOUT, read_frame(&mut s))
            .await
            .expect("an answer in time")
            .unwrap();
        assert_eq!(addrs(&Message::from_vec(&bytes).unwrap()), vec!["10.1.0.5"]);
        srv.stop().await;
    });
}

/// A flood of new names forwarded, answered and then never answered (the
/// upstream gone silent): once it ends and its questions reach their
/// deadline, no upstream socket is open and the process holds the
/// descriptors it held before it. Nothing waits idle between questions
/// for a forger's datagrams or ICMP errors.
#[test]
fn descriptors_come_back_after_a_forwarding_flood() {
    one_at_a_time(2, async {
        let answering = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let up = StandIn::start({
            let answering = answering.clone();
            move |q| {
                answering
                    .load(std::sync::atomic::Ordering::SeqCst)
                    .then(|| upstream_zone(q))
            }
        })
        .await;
        let cfg = TestConfig {
            upstreams: &[up.addr],
            upstream: "max_in_flight = 1000\nmax_qps = 100000",
            metrics: true,
            ..TestConfig::default()
        }
        .text();
        let srv = start(&cfg).await;
        // Everything the server opens before the load: listeners, the
        // metrics connection's pool, a first forwarded question's runtime.
        let r = udp_query(srv.addr, "warm.example.com", RecordType::A).await;
        assert_ne!(r.metadata.response_code, ResponseCode::ServFail);
        let _ = scrape(&srv).await;
        let before = open_fds();

        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for (round, answered) in [(0, true), (1, false)] {
            answering.store(answered, std::sync::atomic::Ordering::SeqCst);
            let sent = 2000;
            for i in 0..sent {
                let q = query_msg(&format!("f{round}-{i}.example.com"), RecordType::A, None);
                client
                    .send_to(&q.to_vec().unwrap(), srv.addr)
                    .await
                    .unwrap();
                if i % 100 == 99 {
                    // Let the server read: a full receive buffer would drop.
                    tokio::task::yield_now().await;
                }
            }
            if !answered {
                // The questions wait for their deadline, each on its socket.
                let held = metric(&scrape(&srv).await, "amldns_upstream_sockets", &[]);
                assert!(held > 0.0, "no upstream socket open during the flood");
            }
            // Every question gets its answer, or SERVFAIL at its deadline.
            let mut buf = vec![0u8; 4096];
            let mut got = 0;
            let end = Instant::now() + 4 * QUERY_DEADLINE;
            while got < sent
                && let Ok(Ok(_)) = tokio::time::timeout_at(end.into(), client.recv(&mut buf)).await
            {
                got += 1;
            }
            assert!(got > 0, "round {round}: no answer");
        }
        drop(client);
        assert_fds_return_to(before, &srv).await;
        srv.stop().await;
    });
}
