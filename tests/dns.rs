//! The server end to end: real sockets on loopback, a real DNS client, and an
//! upstream stand-in on 127.0.0.1 that records what reaches it.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use amldns::resolve::QUERY_DEADLINE;
use common::*;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::TcpStream;

const NB: &str = "ml-contoso-research-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51";

/// Every name family of SPEC §1, for each cloud, answered locally with AA.
#[tokio::test]
async fn every_name_family_in_every_cloud() {
    let up = StandIn::zone().await;
    let clouds = [
        (
            "public",
            "api.azureml.ms",
            "notebooks.azure.net",
            ["instances.azureml.ms", "instances.ml.azure.ms"],
            "inference.ml.azure.com",
        ),
        (
            "china",
            "api.ml.azure.cn",
            "notebooks.chinacloudapi.cn",
            ["instances.azureml.cn", "instances.ml.azure.cn"],
            "inference.ml.azure.cn",
        ),
        (
            "usgov",
            "api.ml.azure.us",
            "notebooks.usgovcloudapi.net",
            ["instances.azureml.us", "instances.ml.azure.us"],
            "inference.ml.azure.us",
        ),
    ];
    for (cloud, api, nb, inst, inf) in clouds {
        let ws = workspace(
            cloud,
            "instances = [\"ci-alice\"]\nonline_endpoints = [\"fraud-score\"]\ninstances_wildcard = true\n\
             projects = [ { name = \"proj-a\", id = \"0d5c2f4e-1111-2222-3333-444455556666\" } ]",
        );
        let srv = start(&config_with(up.addr, &ws)).await;
        let cases = [
            (format!("{GUID}.workspace.eastus.{api}"), "10.1.0.5"),
            (format!("{GUID}.workspace.eastus.cert.{api}"), "10.1.0.5"),
            (
                format!("{GUID}.workspace.eastus.privatelink.{api}"),
                "10.1.0.5",
            ),
            (
                format!("{GUID}.workspace.eastus.cert.privatelink.{api}"),
                "10.1.0.5",
            ),
            (format!("{NB}.eastus.{nb}"), "10.1.0.6"),
            (format!("{NB}.{nb}"), "10.1.0.6"),
            (format!("{NB}.eastus.privatelink.{nb}"), "10.1.0.6"),
            (format!("ci-alice.eastus.{}", inst[0]), "10.1.0.5"),
            (format!("ci-alice-22.eastus.{}", inst[0]), "10.1.0.5"),
            (format!("ci-alice.eastus.{}", inst[1]), "10.1.0.5"),
            (format!("ci-alice-22.eastus.{}", inst[1]), "10.1.0.5"),
            (format!("any-ci.eastus.{}", inst[1]), "10.1.0.5"),
            (format!("fraud-score.eastus.{inf}"), "10.1.0.7"),
            (
                format!("fraud-score.{GUID}.inference.eastus.privatelink.{api}"),
                "10.1.0.7",
            ),
            (
                format!("0d5c2f4e-1111-2222-3333-444455556666.workspace.eastus.{api}"),
                "10.1.0.5",
            ),
            (
                format!("ml-proj-a-eastus-0d5c2f4e-1111-2222-3333-444455556666.eastus.{nb}"),
                "10.1.0.6",
            ),
        ];
        for (qname, ip) in &cases {
            let r = udp_query(srv.addr, qname, RecordType::A).await;
            assert_eq!(
                r.metadata.response_code,
                ResponseCode::NoError,
                "{cloud} {qname}"
            );
            assert!(r.metadata.authoritative, "{cloud} {qname}: AA");
            assert!(r.metadata.recursion_available);
            assert_eq!(addrs(&r), vec![ip.to_string()], "{cloud} {qname}");
        }
        srv.stop().await;
    }
    assert!(
        up.seen().is_empty(),
        "local names never reach the upstream: {:?}",
        up.seen()
    );
}

#[tokio::test]
async fn mixed_case_question_is_echoed_as_asked() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(up.addr, &workspace("public", ""))).await;
    let asked = format!("{}.WorkSpace.EastUS.API.AzureML.ms", GUID.to_uppercase());
    let r = udp_query(srv.addr, &asked, RecordType::A).await;
    assert_eq!(addrs(&r), vec!["10.1.0.5"]);
    assert_eq!(r.queries[0].name().to_ascii(), format!("{asked}."));
    assert_eq!(r.answers[0].name.to_ascii(), format!("{asked}."));
    assert!(up.seen().is_empty());
    srv.stop().await;
}

/// AAAA/TXT/MX/… of a local name: NODATA with the zone's SOA, never forwarded.
#[tokio::test]
async fn other_types_of_a_local_name_are_nodata_and_never_forwarded() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(up.addr, &workspace("public", ""))).await;
    let cases = [
        (
            format!("{GUID}.workspace.eastus.api.azureml.ms"),
            "api.azureml.ms",
        ),
        (
            format!("{GUID}.workspace.eastus.privatelink.api.azureml.ms"),
            "privatelink.api.azureml.ms",
        ),
        (
            format!("{NB}.eastus.notebooks.azure.net"),
            "notebooks.azure.net",
        ),
    ];
    for (qname, apex) in &cases {
        for qtype in [
            RecordType::AAAA,
            RecordType::TXT,
            RecordType::MX,
            RecordType::HTTPS,
            RecordType::SRV,
        ] {
            let r = udp_query(srv.addr, qname, qtype).await;
            assert_eq!(
                r.metadata.response_code,
                ResponseCode::NoError,
                "{qname} {qtype}"
            );
            assert!(r.metadata.authoritative);
            assert!(r.answers.is_empty(), "{qname} {qtype}: {:?}", r.answers);
            assert_eq!(r.authorities.len(), 1);
            let soa = &r.authorities[0];
            assert_eq!(soa.name.to_ascii(), format!("{apex}."));
            let RData::SOA(s) = &soa.data else {
                panic!("not an SOA: {soa:?}")
            };
            assert_eq!(s.serial, 1, "serial = the table's generation");
            assert_eq!(s.minimum, 60);
        }
    }
    assert!(up.seen().is_empty(), "{:?}", up.seen());
    srv.stop().await;
}

/// Public names under the same parents stay public: forwarded.
#[tokio::test]
async fn public_names_beside_local_ones_are_forwarded() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(
        up.addr,
        &workspace("public", "instances = [\"ci-alice\"]"),
    ))
    .await;
    let r = udp_query(srv.addr, "eastus.api.azureml.ms", RecordType::A).await;
    assert_eq!(addrs(&r), vec!["192.0.2.20"]);
    assert!(!r.metadata.authoritative);
    let unlisted = "03ce50c0-2e18-48ad-9e4a-ca338f571072.workspace.eastus.api.azureml.ms";
    let r = udp_query(srv.addr, unlisted, RecordType::A).await;
    assert_eq!(addrs(&r), vec!["192.0.2.40"]);
    // No wildcard asked for: other instances are public.
    let r = udp_query(
        srv.addr,
        "ci-bob.eastus.instances.azureml.ms",
        RecordType::A,
    )
    .await;
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        up.seen_names(),
        vec![
            "eastus.api.azureml.ms",
            unlisted,
            "ci-bob.eastus.instances.azureml.ms"
        ]
    );
    srv.stop().await;
}

/// Azure's chain `st.blob…` CNAME `st.privatelink.blob…` is cut where it
/// enters the table and completed from it.
#[tokio::test]
async fn upstream_cname_chain_into_a_local_name_is_completed_locally() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(
        up.addr,
        "[[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.9\"]\n",
    ))
    .await;
    let r = udp_query(srv.addr, "st.blob.core.windows.net", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        answer_lines(&r),
        vec![
            "st.blob.core.windows.net CNAME st.privatelink.blob.core.windows.net",
            "st.privatelink.blob.core.windows.net A 10.1.0.9",
        ]
    );
    // The privatelink name itself never goes upstream.
    assert_eq!(up.seen_names(), vec!["st.blob.core.windows.net"]);
    srv.stop().await;
}

/// A CNAME question is answered with the CNAME itself (RFC 1034 §4.3.2):
/// the chain is not followed into the table.
#[tokio::test]
async fn cname_questions_are_not_completed() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(
        up.addr,
        "[[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.9\"]\n\
         [[record]]\nname = \"alias.corp.example\"\ncname = \"st.privatelink.blob.core.windows.net\"\n",
    ))
    .await;
    let r = udp_query(srv.addr, "st.blob.core.windows.net", RecordType::CNAME).await;
    assert!(r.authorities.is_empty(), "{:?}", r.authorities);
    assert_eq!(
        answer_lines(&r),
        vec!["st.blob.core.windows.net CNAME st.privatelink.blob.core.windows.net"]
    );
    let r = udp_query(srv.addr, "alias.corp.example", RecordType::CNAME).await;
    assert!(r.metadata.authoritative);
    assert_eq!(
        answer_lines(&r),
        vec!["alias.corp.example CNAME st.privatelink.blob.core.windows.net"]
    );
    srv.stop().await;
}

/// `answer = "cname"`: Azure's own shape, public name CNAME privatelink name.
#[tokio::test]
async fn cname_mode_answers_azures_chain() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(
        up.addr,
        &format!(
            "[zone]\nanswer = \"cname\"\n{}",
            workspace("public", "online_endpoints = [\"fraud-score\"]")
        ),
    ))
    .await;
    let r = udp_query(
        srv.addr,
        &format!("{GUID}.workspace.eastus.api.azureml.ms"),
        RecordType::A,
    )
    .await;
    assert!(r.metadata.authoritative);
    assert_eq!(
        answer_lines(&r),
        vec![
            format!(
                "{GUID}.workspace.eastus.api.azureml.ms CNAME {GUID}.workspace.eastus.privatelink.api.azureml.ms"
            ),
            format!("{GUID}.workspace.eastus.privatelink.api.azureml.ms A 10.1.0.5"),
        ]
    );
    let r = udp_query(
        srv.addr,
        "fraud-score.eastus.inference.ml.azure.com",
        RecordType::A,
    )
    .await;
    assert_eq!(addrs(&r), vec!["10.1.0.7"]);
    assert_eq!(r.answers.len(), 2);
    assert!(up.seen().is_empty());
    srv.stop().await;
}

/// A local CNAME to a name outside the table is completed upstream.
#[tokio::test]
async fn local_cname_leaving_the_table_is_forwarded_for_its_target() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(
        up.addr,
        "[[record]]\nname = \"web.corp.example\"\ncname = \"www.example.com\"\n",
    ))
    .await;
    let r = udp_query(srv.addr, "web.corp.example", RecordType::A).await;
    assert!(r.metadata.authoritative);
    assert_eq!(
        answer_lines(&r),
        vec![
            "web.corp.example CNAME www.example.com",
            "www.example.com A 192.0.2.10"
        ]
    );
    assert_eq!(up.seen_names(), vec!["www.example.com"]);
    srv.stop().await;
}

#[tokio::test]
async fn upstream_nxdomain_and_rcodes_pass_through() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(up.addr, "")).await;
    let r = udp_query(srv.addr, "nope.example.com", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert!(r.answers.is_empty());
    assert_eq!(r.authorities.len(), 1);
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(r.authorities[0].name.to_ascii(), "example.com.");
    // NODATA upstream stays NODATA, with its SOA.
    let r = udp_query(srv.addr, "www.example.com", RecordType::AAAA).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);

    // A chain that ends in NXDOMAIN keeps its SOA, and is cached as negative.
    for _ in 0..2 {
        let r = udp_query(srv.addr, "gone.example.com", RecordType::A).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(
            answer_lines(&r),
            vec!["gone.example.com CNAME nothere.example.com"]
        );
        assert_eq!(r.authorities.len(), 1, "{:?}", r.authorities);
        assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    }
    assert_eq!(
        up.seen_names()
            .iter()
            .filter(|n| *n == "gone.example.com")
            .count(),
        1,
        "the second one came from the cache"
    );

    let r = udp_query(srv.addr, "refused.example.com", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    let r = udp_query(srv.addr, "servfail.example.com", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    srv.stop().await;
}

/// A silent upstream: SERVFAIL once its one try (`timeout_ms = 400`) is
/// over, not before and not at the query's 2.5 s deadline (well before the
/// client's own timeout), after the question was sent three times; and
/// local names keep answering while it waits.
#[tokio::test]
async fn upstream_down_gives_servfail_within_the_deadline() {
    let silent = StandIn::start(|_| None).await;
    let per_try = Duration::from_millis(400);
    let cfg = TestConfig {
        upstreams: &[silent.addr],
        upstream: &format!("timeout_ms = {}", per_try.as_millis()),
        rest: &workspace("public", ""),
        ..TestConfig::default()
    }
    .text();
    let srv = start(&cfg).await;
    let addr = srv.addr;
    let forwarded = tokio::spawn(async move {
        let t = Instant::now();
        let r = udp_query(addr, "www.example.com", RecordType::A).await;
        (r, t.elapsed())
    });
    // While that waits (its question is upstream), a local name is answered.
    let t = Instant::now();
    while silent.seen().is_empty() {
        assert!(t.elapsed() < IO_TIMEOUT, "the upstream never asked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = udp_query(
        srv.addr,
        &format!("{GUID}.workspace.eastus.api.azureml.ms"),
        RecordType::A,
    )
    .await;
    assert_eq!(addrs(&r), vec!["10.1.0.5"]);
    assert!(
        !forwarded.is_finished(),
        "the local answer waited for the forwarded one"
    );

    let (r, took) = forwarded.await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert!(
        took >= per_try,
        "SERVFAIL after {took:?}, before the try ended"
    );
    assert!(took < QUERY_DEADLINE, "SERVFAIL after {took:?}");
    // Sent, and sent again at a fifth and at half of the try.
    assert_eq!(silent.seen().len(), 3, "{:?}", silent.seen());
    srv.stop().await;
}

/// Two silent upstreams and the default per-try timeout (2 s): each gets
/// half of the one 2.5 s deadline, one after the other, and the client
/// hears SERVFAIL when it is over.
#[tokio::test]
async fn one_deadline_for_the_whole_query() {
    let a = StandIn::start(|_| None).await;
    let b = StandIn::start(|_| None).await;
    let cfg = TestConfig {
        upstreams: &[a.addr, b.addr],
        upstream: "",
        ..TestConfig::default()
    }
    .text();
    let srv = start(&cfg).await;
    let t = Instant::now();
    let r = udp_query(srv.addr, "www.example.com", RecordType::A).await;
    let took = t.elapsed();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    // Never sooner than the deadline.
    assert!(took >= QUERY_DEADLINE, "SERVFAIL after {took:?}");
    let (a, b) = (a.seen(), b.seen());
    // Each heard the question three times: sent, and sent again at a fifth
    // and at half of its turn. A turn of 2 s for the first would leave the
    // second 0.5 s, in which it hears it twice (at 0 and 400 ms).
    assert_eq!(a.len(), 3, "{a:?}");
    assert_eq!(b.len(), 3, "{b:?}");
    // One after the other: the second only once the first's half is over.
    assert!(a.iter().all(|s| s.at < b[0].at), "{a:?} {b:?}");
    let second_from = b[0].at.duration_since(t);
    assert!(
        second_from >= QUERY_DEADLINE / 2,
        "the second upstream asked {second_from:?} after the client, before the first's half ended"
    );
    srv.stop().await;
}

/// Two upstreams, the first dead: the second answers within the same query,
/// once the first's try is over, and later queries go to it first.
#[tokio::test]
async fn failover_to_the_next_upstream() {
    let dead = StandIn::start(|_| None).await;
    let live = StandIn::zone().await;
    let cfg = TestConfig {
        upstreams: &[dead.addr, live.addr],
        upstream: "timeout_ms = 400",
        ..TestConfig::default()
    }
    .text();
    let srv = start(&cfg).await;
    let t = Instant::now();
    let r = udp_query(srv.addr, "www.example.com", RecordType::A).await;
    assert_eq!(addrs(&r), vec!["192.0.2.10"]);
    // Not asked side by side: the second only once the first's try is over.
    let per_try = Duration::from_millis(400);
    assert!(t.elapsed() >= per_try, "{:?}", t.elapsed());
    assert!(!dead.seen().is_empty());
    assert!(
        live.seen()[0].at.duration_since(t) >= per_try,
        "the live upstream was asked before the dead one's try ended"
    );
    dead.clear();
    let r = udp_query(srv.addr, "nope.example.com", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert!(
        dead.seen().is_empty(),
        "the failed upstream goes last: {:?}",
        dead.seen()
    );
    srv.stop().await;
}

#[tokio::test]
async fn clients_outside_allow_are_refused() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(up.addr, &workspace("public", ""))).await;
    let q = query_msg(
        &format!("{GUID}.workspace.eastus.api.azureml.ms"),
        RecordType::A,
        None,
    );
    // 127.0.0.2 is loopback, but not in allow = ["127.0.0.1/32"].
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let bytes = udp_raw_from(other, srv.addr, &q.to_vec().unwrap(), IO_TIMEOUT)
        .await
        .unwrap();
    let r = Message::from_vec(&bytes).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    assert!(r.answers.is_empty());
    let r = udp_query(srv.addr, "www.example.com", RecordType::A).await;
    assert_eq!(addrs(&r), vec!["192.0.2.10"]);
    assert_eq!(
        up.seen_names(),
        vec!["www.example.com"],
        "refused queries are not forwarded"
    );
    srv.stop().await;
}

/// Bad input: garbage and QR=1 dropped, QDCOUNT=0 FORMERR, NOTIFY NOTIMP,
/// EDNS version 1 BADVERS; a good query still answered afterwards.
#[tokio::test]
async fn bad_packets_are_answered_or_dropped_and_the_server_keeps_going() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(up.addr, &workspace("public", ""))).await;
    let short = Duration::from_millis(300);

    assert!(
        udp_raw(srv.addr, b"\x00\x01garbage", short).await.is_none(),
        "short garbage dropped"
    );
    // A query header (QR=0, one question) followed by noise: FORMERR.
    let mut noise = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    noise.extend((0..200u32).map(|i| (i * 37 % 251) as u8 | 0xc0));
    let bytes = udp_raw(srv.addr, &noise, IO_TIMEOUT)
        .await
        .expect("FORMERR for a bad question");
    let r = Message::from_vec(&bytes).unwrap();
    assert_eq!(r.metadata.id, 0x1234);
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);

    let mut resp = query_msg("www.example.com", RecordType::A, None);
    resp.metadata.message_type = MessageType::Response;
    assert!(
        udp_raw(srv.addr, &resp.to_vec().unwrap(), short)
            .await
            .is_none(),
        "QR=1 dropped"
    );

    let mut empty = query_msg("www.example.com", RecordType::A, None);
    empty.queries.clear();
    let r = udp_exchange(srv.addr, &empty).await;
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);

    let mut two = query_msg("www.example.com", RecordType::A, None);
    two.add_query(hickory_proto::op::Query::query(
        name("example.com."),
        RecordType::A,
    ));
    let r = udp_exchange(srv.addr, &two).await;
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);

    let mut notify = query_msg(
        &format!("{GUID}.workspace.eastus.api.azureml.ms"),
        RecordType::SOA,
        None,
    );
    notify.metadata.op_code = OpCode::Notify;
    let r = udp_exchange(srv.addr, &notify).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);

    let mut v1 = query_msg("www.example.com", RecordType::A, Some(1232));
    v1.edns.as_mut().unwrap().set_version(1);
    let r = udp_exchange(srv.addr, &v1).await;
    // BADVERS and BADSIG share the value 16 (RFC 6891 §9, RFC 8945 §6.2).
    assert_eq!(
        u16::from(r.metadata.response_code),
        16,
        "{:?}",
        r.metadata.response_code
    );
    assert!(
        r.edns.is_some(),
        "the extended rcode travels in the OPT record"
    );

    let r = udp_query(
        srv.addr,
        &format!("{GUID}.workspace.eastus.api.azureml.ms"),
        RecordType::AXFR,
    )
    .await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);

    let r = udp_query(
        srv.addr,
        &format!("{GUID}.workspace.eastus.api.azureml.ms"),
        RecordType::A,
    )
    .await;
    assert_eq!(addrs(&r), vec!["10.1.0.5"]);
    assert!(
        up.seen().is_empty(),
        "none of that was forwarded: {:?}",
        up.seen()
    );
    srv.stop().await;
}

/// EDNS: OPT echoed with at most 1232; an answer too big for UDP is cut with
/// TC=1, and the same question over TCP gets it whole.
#[tokio::test]
async fn oversized_answers_truncate_on_udp_and_come_whole_over_tcp() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(up.addr, "")).await;

    let r = udp_exchange(
        srv.addr,
        &query_msg("big.example.com", RecordType::A, Some(4096)),
    )
    .await;
    assert!(r.metadata.truncation, "TC=1 over UDP");
    assert!(r.edns.as_ref().unwrap().max_payload() <= 1232);
    // The stand-in truncated too, so amldns retried it over TCP.
    assert!(
        up.seen()
            .iter()
            .any(|s| s.tcp && s.name == "big.example.com"),
        "{:?}",
        up.seen()
    );
    assert!(
        up.seen().iter().all(|s| s.edns == Some(1232)),
        "EDNS 1232 upstream: {:?}",
        up.seen()
    );

    // Without EDNS the limit is 512.
    let r = udp_exchange(srv.addr, &query_msg("big.example.com", RecordType::A, None)).await;
    assert!(r.metadata.truncation);
    assert!(
        r.edns.is_none(),
        "no OPT in the answer to a query without one"
    );

    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let r = tcp_exchange(
        &mut tcp,
        &query_msg("big.example.com", RecordType::A, Some(1232)),
    )
    .await;
    assert!(!r.metadata.truncation);
    assert_eq!(addrs(&r).len(), 100);
    srv.stop().await;
}

/// Several queries on one TCP connection (RFC 7766 §6.2.1).
#[tokio::test]
async fn several_queries_per_tcp_connection() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(up.addr, &workspace("public", ""))).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    for i in 0..5 {
        let local = tcp_exchange(
            &mut tcp,
            &query_msg(
                &format!("{GUID}.workspace.eastus.api.azureml.ms"),
                RecordType::A,
                None,
            ),
        )
        .await;
        assert_eq!(addrs(&local), vec!["10.1.0.5"], "query {i}");
        let fwd = tcp_exchange(&mut tcp, &query_msg("www.example.com", RecordType::A, None)).await;
        assert_eq!(addrs(&fwd), vec!["192.0.2.10"], "query {i}");
    }
    srv.stop().await;
}

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

/// Every import shape, through the server.
#[tokio::test]
async fn imported_names_are_served() {
    let up = StandIn::zone().await;
    let pe = format!(
        r#"{{"name": "pe-mlw", "customDnsConfigs": [
            {{"fqdn": "{GUID}.workspace.eastus.api.azureml.ms", "ipAddresses": ["10.2.0.5"]}},
            {{"fqdn": "*.{GUID}.inference.eastus.api.azureml.ms", "ipAddresses": ["10.2.0.7"]}}]}}"#
    );
    let bare = r#"[{"fqdn": "a.privatelink.vaultcore.azure.net", "ipAddresses": ["10.2.1.1"]}]"#;
    let projected =
        r#"[{"IPAddress": "10.2.2.2", "FQDNs": ["b.privatelink.blob.core.windows.net"]}]"#;
    let raw = r#"{"ipConfigurations": [{"privateIpAddress": "10.2.3.3",
        "privateLinkConnectionProperties": {"fqdns": ["c.privatelink.file.core.windows.net"]}}]}"#;
    let cfg = config_with(
        up.addr,
        "[[import]]\npath = \"pe/*.json\"\n[[import]]\npath = \"nic.json\"\n",
    );
    let srv = start_with_files(
        &cfg,
        &[
            ("pe/ws.json", &pe),
            ("pe/bare.json", bare),
            ("pe/projected.json", projected),
            ("nic.json", raw),
        ],
    )
    .await;
    let cases = [
        (
            format!("{GUID}.workspace.eastus.api.azureml.ms"),
            "10.2.0.5",
        ),
        (
            format!("ep1.{GUID}.inference.eastus.api.azureml.ms"),
            "10.2.0.7",
        ),
        ("a.privatelink.vaultcore.azure.net".to_string(), "10.2.1.1"),
        (
            "b.privatelink.blob.core.windows.net".to_string(),
            "10.2.2.2",
        ),
        (
            "c.privatelink.file.core.windows.net".to_string(),
            "10.2.3.3",
        ),
    ];
    for (qname, ip) in &cases {
        let r = udp_query(srv.addr, qname, RecordType::A).await;
        assert_eq!(addrs(&r), vec![ip.to_string()], "{qname}");
        assert!(r.metadata.authoritative);
    }
    assert!(up.seen().is_empty());
    srv.stop().await;
}

/// What two answers must share to be the same answer: flags, rcode, question,
/// records (TTLs as `ttl` maps them) and EDNS size.
type View = (
    String,
    ResponseCode,
    Vec<hickory_proto::op::Query>,
    Vec<Record>,
    Vec<Record>,
    Option<u16>,
);

fn view(m: &Message, ttl: impl Fn(u32) -> u32) -> View {
    let records = |rs: &[Record]| {
        rs.iter()
            .map(|r| {
                let mut r = r.clone();
                r.ttl = ttl(r.ttl);
                r
            })
            .collect()
    };
    (
        m.metadata.flags().to_string(),
        m.metadata.response_code,
        m.queries.clone(),
        records(&m.answers),
        records(&m.authorities),
        m.edns.as_ref().map(|e| e.max_payload()),
    )
}

/// The answer section as "owner TTL TYPE data" lines, owners lower-cased.
fn lines_with_ttls(m: &Message) -> Vec<String> {
    answer_lines(m)
        .into_iter()
        .zip(&m.answers)
        .map(|(line, r)| {
            let (owner, rest) = line.split_once(' ').unwrap();
            format!("{owner} {} {rest}", r.ttl)
        })
        .collect()
}

/// What the contract says of an answer, whichever path wrote it: the
/// header (QR, the query's ID and RD, RA, AA as `authoritative`, no TC,
/// `rcode`), the question echoed as asked, OPT only when asked and at most
/// 1232 bytes, the first owner spelled as asked; and, for a negative
/// answer (`negative`), at most one SOA in the authority section, of a
/// zone holding the last name of the answer, its TTL within its minimum
/// (RFC 2308 §3) and an hour. `Err` says what is wrong.
fn contract(
    q: &Message,
    r: &Message,
    authoritative: bool,
    rcode: ResponseCode,
    negative: bool,
) -> Result<(), String> {
    let h = &r.metadata;
    if h.message_type != MessageType::Response || h.id != q.metadata.id {
        return Err(format!("header {h:?}"));
    }
    if h.authoritative != authoritative || !h.recursion_available || h.truncation {
        return Err(format!("flags {}", h.flags()));
    }
    if h.recursion_desired != q.metadata.recursion_desired {
        return Err("RD not echoed".into());
    }
    if h.response_code != rcode {
        return Err(format!("rcode {}", h.response_code));
    }
    // As sent: the name in its own case, type and class.
    let asked = |m: &Message| {
        m.queries
            .iter()
            .map(|q| {
                let mut name = q.name().clone();
                name.set_fqdn(true);
                (name.to_ascii(), q.query_type(), q.query_class())
            })
            .collect::<Vec<_>>()
    };
    if asked(r) != asked(q) {
        return Err(format!("question {:?}", r.queries));
    }
    match (&q.edns, &r.edns) {
        (None, None) => {}
        (Some(_), Some(e)) if e.max_payload() <= 1232 => {}
        (_, e) => return Err(format!("OPT {e:?}")),
    }
    if let Some(first) = r.answers.first()
        && first.name.to_ascii() != asked(q)[0].0
    {
        return Err(format!(
            "first owner {}, asked {}",
            first.name,
            q.queries[0].name()
        ));
    }
    if !negative {
        return Ok(());
    }
    let last = r.answers.last().map_or_else(
        || q.queries[0].name().clone(),
        |a| match &a.data {
            RData::CNAME(c) => c.0.clone(),
            _ => a.name.clone(),
        },
    );
    if r.authorities.len() > 1 {
        return Err(format!("authority {:?}", r.authorities));
    }
    for soa in &r.authorities {
        let RData::SOA(data) = &soa.data else {
            return Err(format!("authority {soa:?}"));
        };
        if !soa.name.zone_of(&last) {
            return Err(format!("SOA of {}, for {last}", soa.name));
        }
        if soa.ttl > data.minimum.min(3600) {
            return Err(format!("SOA TTL {} past its minimum", soa.ttl));
        }
    }
    Ok(())
}

/// The UDP fast path and the general path (TCP) give the same answers, and
/// each is the answer the contract gives for its case (written here from
/// the config, not read from either path): AA, NOERROR, the table's
/// addresses with their TTLs (60 by default, the record's own `ttl`), CNAME
/// chains followed inside the table, NODATA for other types.
#[tokio::test]
async fn fast_and_general_paths_agree() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(
        up.addr,
        &format!(
            "{}[[record]]\nname = \"dual.corp.example\"\na = [\"10.3.0.1\", \"10.3.0.2\"]\naaaa = [\"fd00::3\"]\n\
             [[record]]\nname = \"alias.corp.example\"\ncname = \"mid.corp.example\"\n\
             [[record]]\nname = \"mid.corp.example\"\ncname = \"dual.corp.example\"\nttl = 5\n",
            workspace("public", "instances_wildcard = true")
        ),
    ))
    .await;
    let api = format!("{GUID}.workspace.EastUS.api.azureml.ms");
    let cases = [
        (api.as_str(), RecordType::A),
        (api.as_str(), RecordType::AAAA),
        (api.as_str(), RecordType::TXT),
        ("ci-9.eastus.instances.azureml.ms", RecordType::A),
        ("ci-9.eastus.instances.azureml.ms", RecordType::MX),
        ("dual.corp.example", RecordType::A),
        ("dual.corp.example", RecordType::AAAA),
        ("dual.corp.example", RecordType::ANY),
        ("Alias.Corp.Example", RecordType::A),
        ("alias.corp.example", RecordType::AAAA),
        ("alias.corp.example", RecordType::TXT),
        ("alias.corp.example", RecordType::CNAME),
    ];
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    for (name, qtype) in cases {
        for edns in [None, Some(1232)] {
            let q = query_msg(name, qtype, edns);
            let fast = udp_exchange(srv.addr, &q).await;
            write_frame(&mut tcp, &q.to_vec().unwrap()).await.unwrap();
            let general_bytes = tokio::time::timeout(IO_TIMEOUT, read_frame(&mut tcp))
                .await
                .expect("a TCP reply in time")
                .unwrap();
            let general = Message::from_vec(&general_bytes).unwrap();
            assert_eq!(
                view(&fast, |ttl| ttl),
                view(&general, |ttl| ttl),
                "{name} {qtype} edns={edns:?}"
            );
            let (want, nodata) = local_expected(name, qtype);
            for (how, r) in [("UDP", &fast), ("TCP", &general)] {
                let what = format!("{name} {qtype} edns={edns:?} {how}");
                contract(&q, r, true, ResponseCode::NoError, nodata)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(lines_with_ttls(r), want, "{what}");
                // Under a public Azure zone, the upstream's SOA as last seen,
                // or none while none is known; elsewhere the table's own.
                let public_zone = name.to_lowercase().ends_with(".azureml.ms");
                if nodata && !public_zone {
                    assert_eq!(r.authorities.len(), 1, "{what}: NODATA carries the SOA");
                }
            }
        }
    }
    assert!(up.seen().is_empty());
    srv.stop().await;
}

/// The answer lines [`fast_and_general_paths_agree`] expects, and whether
/// NODATA follows them, from its config: the workspace answers 10.1.0.5
/// (and its instances' wildcard), `dual` its two A and one AAAA, `alias`
/// and `mid` (TTL 5) chain into `dual`; TTL 60 unless a record says.
fn local_expected(name: &str, qtype: RecordType) -> (Vec<String>, bool) {
    let name = name.to_lowercase();
    let chain = [
        "alias.corp.example 60 CNAME mid.corp.example",
        "mid.corp.example 5 CNAME dual.corp.example",
    ];
    let dual_a = [
        "dual.corp.example 60 A 10.3.0.1",
        "dual.corp.example 60 A 10.3.0.2",
    ];
    let dual_aaaa = ["dual.corp.example 60 AAAA fd00::3"];
    let lines: Vec<&str> = match (name.as_str(), qtype) {
        ("dual.corp.example", RecordType::A) => dual_a.to_vec(),
        ("dual.corp.example", RecordType::AAAA) => dual_aaaa.to_vec(),
        ("dual.corp.example", RecordType::ANY) => [&dual_a[..], &dual_aaaa[..]].concat(),
        ("alias.corp.example", RecordType::A) => [&chain[..], &dual_a[..]].concat(),
        ("alias.corp.example", RecordType::AAAA) => [&chain[..], &dual_aaaa[..]].concat(),
        ("alias.corp.example", RecordType::CNAME) => chain[..1].to_vec(),
        ("alias.corp.example", _) => return (chain.iter().map(|l| l.to_string()).collect(), true),
        (n, RecordType::A) => return (vec![format!("{n} 60 A 10.1.0.5")], false),
        _ => return (vec![], true),
    };
    (lines.iter().map(|l| l.to_string()).collect(), false)
}

/// Forwarded answers from the cache: the UDP fast path sends the cached
/// bytes, TCP goes through the general encoder; both say the same, byte for
/// byte where the question is in lower case (the cached bytes may point a
/// name at the client's spelling of the question), and the upstream was
/// asked each question once. Each is also the answer the contract gives
/// (written here from the stand-in's zone, not read from either path): not
/// authoritative, the upstream's rcode, records and TTLs counted down, a
/// negative answer's SOA at most its minimum, a chain into a local name cut
/// there with the table's record, TC over UDP when it does not fit. (Which
/// path took which case is the unit test
/// `handler::tests::cached_answers_take_the_fast_path`.)
#[tokio::test]
async fn cached_answers_agree_on_both_paths() {
    let began = Instant::now();
    let up = StandIn::zone().await;
    let srv = start(&config_with(
        up.addr,
        "[[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.9\"]\n",
    ))
    .await;
    let cases = [
        ("www.example.com", RecordType::A),
        ("WWW.Example.COM", RecordType::A),
        ("www.example.com", RecordType::TXT),
        ("gone.example.com", RecordType::A),
        ("st.blob.core.windows.net", RecordType::A),
        ("st.blob.core.windows.net", RecordType::CNAME),
        ("big.example.com", RecordType::A),
    ];
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    for (name, qtype) in cases {
        // Fill the cache first.
        tcp_exchange(&mut tcp, &query_msg(name, qtype, None)).await;
        for edns in [None, Some(1232)] {
            let q = query_msg(name, qtype, edns);
            let fast_bytes = udp_raw(srv.addr, &q.to_vec().unwrap(), IO_TIMEOUT)
                .await
                .expect("a UDP reply");
            let fast = Message::from_vec(&fast_bytes).unwrap();
            write_frame(&mut tcp, &q.to_vec().unwrap()).await.unwrap();
            let general_bytes = tokio::time::timeout(IO_TIMEOUT, read_frame(&mut tcp))
                .await
                .expect("a TCP reply in time")
                .unwrap();
            let general = Message::from_vec(&general_bytes).unwrap();
            // TCP has room for all of big.example.com (100 addresses, more
            // than 1232 bytes); UDP says TC.
            if name == "big.example.com" {
                assert!(fast.metadata.truncation, "{name} over UDP: TC");
                assert!(fast.answers.is_empty(), "{name}");
                assert!(!general.metadata.truncation, "{name}");
                assert_eq!(addrs(&general).len(), 100);
                continue;
            }
            let (rcode, want, soa) = forwarded_expected(name, qtype);
            // No TTL above the upstream's, nor below it by more than the
            // time since the cache was filled.
            let spent = began.elapsed().as_secs() as u32 + 1;
            for (how, r) in [("UDP", &fast), ("TCP", &general)] {
                let what = format!("{name} {qtype} edns={edns:?} {how}");
                contract(&q, r, false, rcode, soa).unwrap_or_else(|e| panic!("{what}: {e}"));
                let got: Vec<(String, u32)> = answer_lines(r)
                    .into_iter()
                    .zip(r.answers.iter().map(|a| a.ttl))
                    .collect();
                assert_eq!(got.len(), want.len(), "{what}: {got:?}");
                for ((line, ttl), (want_line, want_ttl)) in got.iter().zip(&want) {
                    assert_eq!(line, want_line, "{what}");
                    assert!(
                        *ttl <= *want_ttl && ttl + spent >= *want_ttl,
                        "{what}: {line} TTL {ttl}, from {want_ttl}"
                    );
                }
                let soas: Vec<_> = r.authorities.iter().map(|a| a.name.to_ascii()).collect();
                let want_soas = if soa {
                    vec!["example.com.".to_string()]
                } else {
                    vec![]
                };
                assert_eq!(soas, want_soas, "{what}");
            }
            // A second may tick between the two: TTLs within 1 s.
            assert_eq!(
                view(&fast, |_| 0),
                view(&general, |_| 0),
                "{name} {qtype} edns={edns:?}"
            );
            let ttls = |m: &Message| {
                m.answers
                    .iter()
                    .chain(&m.authorities)
                    .map(|r| r.ttl)
                    .collect::<Vec<_>>()
            };
            for (f, g) in ttls(&fast).into_iter().zip(ttls(&general)) {
                assert!(f.abs_diff(g) <= 1, "{name} {qtype}: TTL {f} vs {g}");
            }
            if name == name.to_lowercase() && ttls(&fast) == ttls(&general) {
                assert_eq!(fast_bytes, general_bytes, "{name} {qtype} edns={edns:?}");
            }
        }
    }
    let asked = up.seen().len();
    assert!(
        asked <= cases.len() + 1,
        "the upstream was asked {asked} times"
    );
    srv.stop().await;
}

/// What [`cached_answers_agree_on_both_paths`] expects for a forwarded
/// question, from [`upstream_zone`] and its config: the rcode, the answer
/// lines with the TTL the upstream gave (the table's 60 for its own
/// record), and whether an SOA (example.com's) is in the authority section.
fn forwarded_expected(name: &str, qtype: RecordType) -> (ResponseCode, Vec<(String, u32)>, bool) {
    let line = |l: &str, ttl| (l.to_string(), ttl);
    match (name.to_lowercase().as_str(), qtype) {
        ("www.example.com", RecordType::A) => (
            ResponseCode::NoError,
            vec![line("www.example.com A 192.0.2.10", 300)],
            false,
        ),
        ("www.example.com", _) => (ResponseCode::NoError, vec![], true),
        ("gone.example.com", _) => (
            ResponseCode::NXDomain,
            vec![line("gone.example.com CNAME nothere.example.com", 300)],
            true,
        ),
        // Cut where it reaches the table, which answers for that name.
        ("st.blob.core.windows.net", RecordType::A) => (
            ResponseCode::NoError,
            vec![
                line(
                    "st.blob.core.windows.net CNAME st.privatelink.blob.core.windows.net",
                    60,
                ),
                line("st.privatelink.blob.core.windows.net A 10.1.0.9", 60),
            ],
            false,
        ),
        ("st.blob.core.windows.net", RecordType::CNAME) => (
            ResponseCode::NoError,
            vec![line(
                "st.blob.core.windows.net CNAME st.privatelink.blob.core.windows.net",
                60,
            )],
            false,
        ),
        other => panic!("no expectation for {other:?}"),
    }
}

/// The general path sends what fits (names compress), TC only when it does not.
#[tokio::test]
async fn large_local_answers_fit_when_compressed() {
    let up = StandIn::zone().await;
    let many: Vec<String> = (1..=40).map(|i| format!("\"10.4.0.{i}\"")).collect();
    // `[log] queries` sends every query down the general path.
    let srv = start(&config_with(
        up.addr,
        &format!(
            "[log]\nqueries = true\n[[record]]\nname = \"many.corp.example\"\na = [{}]\n",
            many.join(", ")
        ),
    ))
    .await;
    let r = udp_exchange(
        srv.addr,
        &query_msg("many.corp.example", RecordType::A, Some(1232)),
    )
    .await;
    assert!(
        !r.metadata.truncation,
        "40 A records are about 700 bytes compressed"
    );
    assert_eq!(addrs(&r).len(), 40);
    let r = udp_exchange(
        srv.addr,
        &query_msg("many.corp.example", RecordType::A, None),
    )
    .await;
    assert!(r.metadata.truncation, "but more than 512");
    srv.stop().await;
}
