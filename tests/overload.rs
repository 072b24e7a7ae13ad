//! Queries waiting on the upstream are capped per socket. In a test
//! binary of its own: it holds thousands of sockets and tasks at once, which
//! would disturb the descriptor and memory checks of tests running beside it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

/// Forwarded queries waiting on a silent upstream (no upstream cap to stop
/// them first): past 4,096 at once per socket, further datagrams are dropped
/// and counted instead of piling up, and local names are still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_waiting_on_the_upstream_are_capped() {
    let silent = StandIn::start(|_| None).await;
    let cfg = TestConfig {
        upstreams: &[silent.addr],
        upstream: "timeout_ms = 2500\nmax_in_flight = 100000\nmax_qps = 1000000",
        metrics: true,
        rest: &workspace("public", ""),
        ..TestConfig::default()
    }
    .text();
    let srv = start(&cfg).await;
    // The server raised the process's open-files limit as far as it could;
    // each waiting query holds an upstream socket.
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let open_files: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if open_files < 8192 {
        skip_or_fail(&format!(
            "the open-files limit is {open_files}, below the 8192 this test needs \
             (raise the hard limit: ulimit -Hn, LimitNOFILE)"
        ));
        srv.stop().await;
        return;
    }
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let started = Instant::now();
    let mut sent = 0u32;
    // Bursts the socket's receive queue can hold, until the cap shows. The
    // first queries wait 2.5 s for the silent upstream, so the cap shows as
    // soon as the server takes in 4096 in that time; 20 s is a ceiling for
    // a machine so busy that it does not.
    let dropped = loop {
        for _ in 0..100 {
            let mut q = query_msg(&format!("w{sent}.example.com"), RecordType::A, None);
            q.metadata.id = sent as u16;
            sock.send_to(&q.to_vec().unwrap(), srv.addr).await.unwrap();
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        if sent.is_multiple_of(1000) {
            let text = scrape(&srv).await;
            let dropped = metric(&text, "amldns_queries_dropped_total", &[]);
            if dropped > 0.0 || started.elapsed() > Duration::from_secs(20) {
                break dropped;
            }
        }
    };
    assert!(alive(srv.addr).await, "local names answered meanwhile");
    // Questions, not datagrams: a silent upstream is sent each one again.
    let seen = silent.seen();
    let asked = seen
        .iter()
        .map(|s| (&s.name, s.id, s.port))
        .collect::<std::collections::HashSet<_>>()
        .len();
    eprintln!(
        "sent {sent} in {:?}: asked upstream {asked}, dropped {dropped}",
        started.elapsed()
    );
    assert!(dropped > 0.0, "nothing dropped with {asked} asked upstream");
    assert!(asked <= 4096, "{asked} asked upstream at once");
    srv.stop().await;
}
