//! The metrics page: a known mix of queries counted exactly, an answer
//! counted before it is received, series clients cannot grow.

use std::net::{IpAddr, Ipv4Addr};

use amldns::metrics::*;
use hickory_proto::rr::RecordType;
use tokio::net::TcpStream;

use crate::common::*;
use crate::setup::*;

const API: &str = fixtures::API_NAME;

/// Seconds since the Unix epoch, as the timestamp gauges count them.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Exact counters after a known mix of queries.
#[tokio::test]
async fn metrics_count_a_known_mix_exactly() {
    let up = StandIn::zone().await;
    let before_start = unix_now();
    let srv = start(&with_metrics(up.addr, &workspace("public", ""))).await;
    for _ in 0..3 {
        assert_eq!(answer(&srv, API).await, vec!["10.1.0.5"]);
    }
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp_exchange(&mut tcp, &query_msg(API, RecordType::AAAA, None)).await;
    assert_eq!(answer(&srv, "www.example.com").await, vec!["192.0.2.10"]);
    answer(&srv, "nope.example.com").await;
    assert_eq!(answer(&srv, "www.example.com").await, vec!["192.0.2.10"]);
    let refused = query_msg(API, RecordType::A, None).to_vec().unwrap();
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    udp_raw_from(other, srv.addr, &refused, IO_TIMEOUT)
        .await
        .unwrap();
    let mut empty = query_msg("x.example.com", RecordType::A, None);
    empty.queries.clear();
    udp_exchange(srv.addr, &empty).await;

    let m = scrape(&srv).await;
    let q = |labels: &[(&str, &str)]| metric(&m, QUERIES_TOTAL, labels);
    assert_eq!(q(&[("outcome", "local")]), 4.0, "{m}");
    assert_eq!(
        q(&[("outcome", "local"), ("protocol", "tcp"), ("qtype", "AAAA")]),
        1.0
    );
    assert_eq!(q(&[("outcome", "forwarded")]), 2.0);
    assert_eq!(q(&[("outcome", "cached")]), 1.0);
    assert_eq!(q(&[("outcome", "refused")]), 1.0);
    assert_eq!(q(&[("outcome", "error"), ("qtype", "other")]), 1.0);
    assert_eq!(q(&[]), 9.0);
    let r = |rcode| metric(&m, RESPONSES_TOTAL, &[("rcode", rcode)]);
    assert_eq!(r("NOERROR"), 6.0);
    assert_eq!(r("NXDOMAIN"), 1.0);
    assert_eq!(r("REFUSED"), 1.0);
    assert_eq!(r("FORMERR"), 1.0);
    // The latency histogram counted every query, local ones in the first buckets.
    assert_eq!(
        metric(&m, &format!("{QUERY_DURATION_SECONDS}_count"), &[]),
        9.0
    );
    assert_eq!(
        metric(
            &m,
            &format!("{QUERY_DURATION_SECONDS}_count"),
            &[("outcome", "local")]
        ),
        4.0
    );
    assert_eq!(
        metric(
            &m,
            &format!("{QUERY_DURATION_SECONDS}_bucket"),
            &[("outcome", "local"), ("le", "2.5")]
        ),
        4.0
    );
    assert_eq!(metric(&m, CACHE_HITS_TOTAL, &[]), 1.0);
    assert_eq!(metric(&m, CACHE_MISSES_TOTAL, &[]), 2.0);
    assert_eq!(metric(&m, CACHE_ENTRIES, &[]), 2.0);
    let upstream = up.addr.to_string();
    assert_eq!(
        metric(&m, UPSTREAM_REQUESTS_TOTAL, &[("upstream", &upstream)]),
        2.0
    );
    assert_eq!(
        metric(
            &m,
            &format!("{UPSTREAM_DURATION_SECONDS}_count"),
            &[("upstream", &upstream)]
        ),
        2.0
    );
    assert_eq!(metric(&m, UPSTREAM_ERRORS_TOTAL, &[]), 0.0);
    assert_eq!(metric(&m, TABLE_GENERATION, &[]), 1.0);
    assert_eq!(metric(&m, TABLE_NAMES, &[]), 8.0);
    assert_eq!(metric(&m, RELOADS_TOTAL, &[("result", "success")]), 1.0);
    assert!(
        m.contains("amldns_reloads_total{result=\"failure\"} 0"),
        "the failure series exists from the start"
    );
    assert_eq!(metric(&m, LAST_RELOAD_SUCCESSFUL, &[]), 1.0);
    assert!(m.contains(&format!(
        "amldns_upstream_errors_total{{error=\"timeout\",upstream=\"{}\"}} 0",
        up.addr
    )));
    // The first load is the last success: stamped while the server started.
    let stamped = metric(&m, LAST_RELOAD_SUCCESS, &[]);
    assert!(
        (before_start.floor()..=unix_now()).contains(&stamped),
        "stamped {stamped}, started at {before_start}"
    );
    assert_eq!(metric(&m, BUILD_INFO, &[]), 1.0);
    srv.stop().await;
}

/// A client that holds its answer finds it counted, latency included: the
/// UDP loop adds its batch to the shared series before sending it. (Counted
/// after the send, a scrape right after the answer now and then missed it.)
#[tokio::test]
async fn an_answer_received_is_already_counted() {
    let up = StandIn::zone().await;
    let srv = start(&with_metrics(up.addr, &workspace("public", ""))).await;
    let duration_count = format!("{QUERY_DURATION_SECONDS}_count");
    for n in 1..=200 {
        assert_eq!(answer(&srv, API).await, vec!["10.1.0.5"]);
        let m = scrape(&srv).await;
        let local = [("outcome", "local")];
        assert_eq!(metric(&m, QUERIES_TOTAL, &local), f64::from(n));
        assert_eq!(metric(&m, &duration_count, &local), f64::from(n));
    }
    srv.stop().await;
}

/// Random types and names must not add series.
#[tokio::test]
async fn clients_cannot_grow_the_series() {
    let up = StandIn::zone().await;
    let srv = start(&with_metrics(up.addr, &workspace("public", ""))).await;
    answer(&srv, API).await;
    let before = scrape(&srv).await;
    for i in 0..300u16 {
        let qtype = RecordType::from(1000 + i * 7);
        let name = format!("r{i}-{}.example.com", i * 31);
        udp_query(srv.addr, &name, qtype).await;
    }
    let after = scrape(&srv).await;
    for name in [
        QUERIES_TOTAL,
        RESPONSES_TOTAL,
        UPSTREAM_REQUESTS_TOTAL,
        UPSTREAM_ERRORS_TOTAL,
    ] {
        let grew = series_count(&after, name) - series_count(&before, name);
        assert!(grew <= 1, "{name} grew by {grew} series:\n{after}");
    }
    assert_eq!(metric(&after, QUERIES_TOTAL, &[("qtype", "other")]), 300.0);
    assert!(!after.contains("example.com"), "no query name in a label");
    srv.stop().await;
}

/// A forwarded workspace-shaped name is a workspace missing from the table.
#[tokio::test]
async fn forwarded_workspace_names_are_counted() {
    let up = StandIn::zone().await;
    let srv = start(&with_metrics(up.addr, &workspace("public", ""))).await;
    let missing = "03ce50c0-2e18-48ad-9e4a-ca338f571072.workspace.eastus.api.azureml.ms";
    answer(&srv, missing).await;
    answer(&srv, missing).await;
    answer(
        &srv,
        "ml-other-eastus-03ce50c0-2e18-48ad-9e4a-ca338f571072.eastus.notebooks.azure.net",
    )
    .await;
    // Neither a local workspace name nor a public one counts.
    answer(&srv, API).await;
    answer(&srv, "eastus.api.azureml.ms").await;
    let m = scrape(&srv).await;
    assert_eq!(metric(&m, WORKSPACE_MISSING_TOTAL, &[]), 3.0, "{m}");
    srv.stop().await;
}
