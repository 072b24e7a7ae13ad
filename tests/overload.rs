//! Issue 5: queries waiting on the upstream are capped per socket. In a test
//! binary of its own: it holds thousands of sockets and tasks at once, which
//! would disturb the descriptor and memory checks of tests running beside it.

mod common;

use std::time::Duration;

use common::*;
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

/// Forwarded queries waiting on a silent upstream (no upstream cap to stop
/// them first): past 4,096 at once per socket, further datagrams are dropped
/// and counted instead of piling up, and local names are still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_waiting_on_the_upstream_are_capped() {
    let silent = StandIn::start(|_| None).await;
    let cfg = format!(
        "[server]\nallow = [\"127.0.0.1/32\"]\n[metrics]\nlisten = \"127.0.0.1:0\"\n\
         [upstream]\nservers = [\"{}\"]\ntimeout_ms = 2500\nmax_in_flight = 100000\n\
         max_qps = 1000000\n{}",
        silent.addr,
        workspace("public", "")
    );
    let srv = start(&cfg).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..10_000u16 {
        let mut q = query_msg(&format!("w{i}.example.com"), RecordType::A, None);
        q.metadata.id = i;
        sock.send_to(&q.to_vec().unwrap(), srv.addr).await.unwrap();
        // Bursts the socket's receive queue can hold.
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(12)).await;
        }
    }
    assert!(alive(srv.addr).await, "local names answered meanwhile");
    let text = http_request(srv.http(), "GET", "/metrics").await.1;
    let dropped = metric(&text, "amldns_queries_dropped_total", &[]);
    let asked = silent.seen().len();
    eprintln!("asked upstream {asked}, dropped {dropped}");
    assert!(dropped > 0.0, "nothing dropped with {asked} asked upstream");
    assert!(asked as f64 + dropped <= 10_000.0);
    srv.stop().await;
}
