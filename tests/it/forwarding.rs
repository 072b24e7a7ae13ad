//! The upstream path: lost datagrams sent again, bursts of new
//! names asked rather than refused, FORMERR to EDNS asked again without, the
//! question's spelling in owner names, and DNSSEC passed through for clients
//! that ask with DO (and only for them). Every upstream is a stand-in on
//! 127.0.0.1.
//!
//! Also what passes through: public names beside local ones, CNAME chains
//! into and out of the table, upstream rcodes, one deadline per query,
//! failover, a 4096-byte UDP answer read whole, and errors counted by kind.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amldns::metrics::{
    UPSTREAM_ERRORS_TOTAL, UPSTREAM_IN_FLIGHT, UPSTREAM_LIMITED_TOTAL, UPSTREAM_REQUESTS_TOTAL,
};
use amldns::resolve::QUERY_DEADLINE;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::{TcpStream, UdpSocket};

use crate::common::case::Case;
use crate::common::*;
use crate::setup;
use crate::setup::*;

/// A config forwarding to `upstream` with `keys` in `[upstream]` (the
/// defaults otherwise: `timeout_ms` 2000, `max_qps` 900, `max_in_flight`
/// 150), with metrics.
fn config(upstream: SocketAddr, keys: &str) -> String {
    TestConfig {
        upstreams: &[upstream],
        upstream: keys,
        metrics: true,
        ..TestConfig::default()
    }
    .text()
}

fn name_of(q: &Message) -> String {
    q.queries[0].name().to_ascii()
}

/// The upstream stays silent to the first `lost` datagrams of each name,
/// then answers with TTL 0 (never cached, so every client question goes
/// upstream).
fn losing(lost: usize) -> impl Fn(&Message) -> Option<Message> + Send + Sync + 'static {
    let heard = Mutex::new(HashMap::<String, usize>::new());
    move |q| {
        let name = name_of(q).to_lowercase();
        let mut heard = heard.lock().unwrap();
        let n = heard.entry(name.clone()).or_default();
        *n += 1;
        (*n > lost).then(|| {
            let mut r = reply_to(q);
            r.answers.push(a_record(&name, 0, "192.0.2.7"));
            r
        })
    }
}

/// One or two datagrams lost: the same query (same ID, same port) is sent
/// again at 400 ms and 1 s (a fifth and half of the default `timeout_ms`),
/// never sooner, the client gets the answer, each datagram counts as an
/// upstream request, and nothing is remembered as failed: the next client
/// asking is answered, from the upstream.
#[tokio::test]
async fn lost_datagrams_are_sent_again_within_the_deadline() {
    // Answered by the first resend, or the second.
    for (lost, resent_at) in [(1, 400), (2, 1000)] {
        let up = StandIn::start(losing(lost)).await;
        let srv = start(&config(up.addr, "")).await;
        let t = Instant::now();
        let r = udp_query(srv.addr, "lossy.example.com", RecordType::A).await;
        let took = t.elapsed();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{lost}");
        assert_eq!(addrs(&r), ["192.0.2.7"]);
        let resent_at = Duration::from_millis(resent_at);
        assert!(took >= resent_at, "{lost} lost: answered after {took:?}");
        let seen = up.seen();
        assert_eq!(seen.len(), lost + 1, "{seen:?}");
        assert!(
            seen.iter()
                .all(|s| (s.id, s.port) == (seen[0].id, seen[0].port)),
            "one ID and port for the question: {seen:?}"
        );
        // The answering copy was the last resend, sent no sooner than its time.
        let last = seen[lost].at.duration_since(t);
        assert!(last >= resent_at, "resent {last:?} after the client asked");
        let r = udp_query(srv.addr, "lossy.example.com", RecordType::A).await;
        assert_eq!(addrs(&r), ["192.0.2.7"], "no failure remembered");
        assert_eq!(up.seen().len(), lost + 2, "asked upstream again (TTL 0)");
        let text = scrape(&srv).await;
        let requests = metric(&text, UPSTREAM_REQUESTS_TOTAL, &[]);
        assert_eq!(requests, (lost + 2) as f64, "every datagram counted");
        srv.stop().await;
    }
}

/// An upstream that never answers hears the question three times within
/// its try (at 0, and no sooner than 200 and 500 ms of the 1 s try), all
/// before the client gets SERVFAIL, which comes no sooner than the try's
/// end.
#[tokio::test]
async fn a_silent_upstream_hears_the_question_three_times() {
    let up = StandIn::start(|_| None).await;
    let srv = start(&config(up.addr, "timeout_ms = 1000")).await;
    let t = Instant::now();
    let r = udp_query(srv.addr, "silent.example.com", RecordType::A).await;
    let answered = Instant::now();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    let per_try = Duration::from_millis(1000);
    assert!(t.elapsed() >= per_try, "{:?}", t.elapsed());
    let seen = up.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    // Measured from the client's question, which came before the try began.
    let at: Vec<Duration> = seen.iter().map(|s| s.at.duration_since(t)).collect();
    assert!(
        at[1] >= per_try / 5 && at[2] >= per_try / 2,
        "resent sooner than a fifth and half of the try: {at:?}"
    );
    assert!(
        seen.iter().all(|s| s.at < answered),
        "a resend after the SERVFAIL: {at:?}"
    );
    srv.stop().await;
}

/// 200 new names at once, with the default limits (900/s, bursts of 18,
/// 150 in flight): every one waits its turn, is asked and answered, none
/// refused, though there are more than places in flight.
#[tokio::test]
async fn a_burst_of_new_names_is_asked_not_refused() {
    let up = StandIn::start(|q| {
        let mut r = reply_to(q);
        r.answers.push(a_record(&name_of(q), 300, "192.0.2.8"));
        Some(r)
    })
    .await;
    let srv = start(&config(up.addr, "")).await;
    let t = Instant::now();
    let asks: Vec<_> = (0..200)
        .map(|i| {
            let addr = srv.addr;
            tokio::spawn(async move {
                udp_query(addr, &format!("b{i}.burst.example"), RecordType::A).await
            })
        })
        .collect();
    let mut rcodes = HashMap::<ResponseCode, usize>::new();
    for a in asks {
        let r = a.await.unwrap();
        *rcodes.entry(r.metadata.response_code).or_default() += 1;
    }
    eprintln!("burst of 200 answered in {:?}: {rcodes:?}", t.elapsed());
    assert_eq!(rcodes.get(&ResponseCode::NoError), Some(&200), "{rcodes:?}");
    let names: std::collections::HashSet<_> = up.seen_names().into_iter().collect();
    assert_eq!(names.len(), 200);
    let text = scrape(&srv).await;
    assert_eq!(metric(&text, UPSTREAM_LIMITED_TOTAL, &[]), 0.0);
    srv.stop().await;
}

/// An upstream that answers a query with EDNS with FORMERR or NOTIMP (with
/// or without the question): asked again without EDNS, and answered.
/// One that always says FORMERR: the client gets SERVFAIL, never FORMERR.
#[tokio::test]
async fn formerr_to_edns_is_asked_again_without() {
    for (rcode, echo_question) in [
        (ResponseCode::FormErr, true),
        (ResponseCode::FormErr, false),
        (ResponseCode::NotImp, false),
    ] {
        let up = StandIn::start(move |q| {
            let mut r = reply_to(q);
            if q.edns.is_some() {
                r.metadata.response_code = rcode;
                r.edns = None;
                if !echo_question {
                    r.queries.clear();
                }
            } else {
                r.answers.push(a_record(&name_of(q), 300, "192.0.2.9"));
            }
            Some(r)
        })
        .await;
        let srv = start(&config(up.addr, "")).await;
        let r = udp_query(srv.addr, "old.example.com", RecordType::A).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{rcode}");
        assert_eq!(addrs(&r), ["192.0.2.9"]);
        let edns: Vec<_> = up.seen().iter().map(|s| s.edns).collect();
        assert_eq!(edns, [Some(1232), None]);
        srv.stop().await;
    }

    let up = StandIn::start(|q| {
        let mut r = reply_to(q);
        r.metadata.response_code = ResponseCode::FormErr;
        Some(r)
    })
    .await;
    let srv = start(&config(up.addr, "")).await;
    for (name, edns) in [
        ("broken.example.com", Some(1232)),
        ("other.example.com", None),
    ] {
        for _ in 0..2 {
            let r = udp_exchange(srv.addr, &query_msg(name, RecordType::A, edns)).await;
            assert_eq!(r.metadata.response_code, ResponseCode::ServFail, "{name}");
        }
    }
    srv.stop().await;
}

/// Owner names that are the question name echo the client's spelling:
/// fresh, cached on the UDP fast path, and cached on the general path (TCP).
#[tokio::test]
async fn owner_names_echo_the_question_fresh_and_cached() {
    let up = StandIn::zone().await;
    let srv = start(&config(up.addr, "")).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    for (asked, how) in [
        ("WwW.ExAmPlE.cOm.", "fresh"),
        ("WwW.ExAmPlE.cOm.", "cached, UDP"),
        ("www.EXAMPLE.com.", "cached, UDP"),
        ("WWW.example.COM.", "cached, TCP"),
        ("St.Blob.Core.Windows.Net.", "fresh"),
        ("sT.bLOB.core.windows.net.", "cached, TCP"),
    ] {
        let q = query_msg(asked, RecordType::A, Some(1232));
        let r = match how {
            "cached, TCP" => tcp_exchange(&mut tcp, &q).await,
            _ => udp_exchange(srv.addr, &q).await,
        };
        assert_eq!(r.queries[0].name().to_ascii(), asked);
        assert_eq!(r.answers[0].name.to_ascii(), asked, "{how}: {r:?}");
    }
    srv.stop().await;
}

/// An RRSIG over `covered` at `owner`, as hickory carries it without its
/// DNSSEC features: opaque RDATA (RFC 4034 §3.1 layout, a dummy signature).
fn rrsig(owner: &str, covered: RecordType) -> Record {
    let mut rdata = u16::from(covered).to_be_bytes().to_vec();
    // Algorithm 13, 3 labels, original TTL 300, expiration, inception, key tag.
    rdata.extend_from_slice(&[13, 3, 0, 0, 1, 44, 0x70, 0, 0, 0, 0x60, 0, 0, 0, 0x12, 0x34]);
    rdata.extend_from_slice(b"\x07example\x03com\x00");
    rdata.extend_from_slice(&[0xAB; 64]);
    opaque(owner, RecordType::RRSIG, rdata)
}

fn opaque(owner: &str, code: RecordType, rdata: Vec<u8>) -> Record {
    Record::from_rdata(
        name(owner),
        300,
        RData::Unknown {
            code,
            rdata: NULL::with(rdata),
        },
    )
}

fn types(records: &[Record]) -> Vec<RecordType> {
    records.iter().map(Record::record_type).collect()
}

/// A signing upstream (it even signs for clients without DO, as a careless
/// one might) that records the ID, DO and CD it was asked with.
struct Signer {
    up: StandIn,
    asked: Arc<Mutex<Vec<Asked>>>,
}

/// Name, ID, DO and CD of a question.
type Asked = (String, u16, bool, bool);

impl Signer {
    async fn start() -> Self {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let up = {
            let asked = asked.clone();
            StandIn::start(move |q| {
                let name = name_of(q);
                let dnssec_ok = q.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
                asked.lock().unwrap().push((
                    name.clone(),
                    q.metadata.id,
                    dnssec_ok,
                    q.metadata.checking_disabled,
                ));
                let mut r = reply_to(q);
                if name.starts_with("nx.") {
                    r.metadata.response_code = ResponseCode::NXDomain;
                    r.authorities.push(soa_record("example.com.", 300, 60));
                    r.authorities.push(rrsig("example.com.", RecordType::SOA));
                    r.authorities
                        .push(opaque("mx.example.com.", RecordType::NSEC, nsec_rdata()));
                    r.authorities
                        .push(rrsig("mx.example.com.", RecordType::NSEC));
                } else {
                    r.answers.push(a_record(&name, 300, "192.0.2.11"));
                    r.answers.push(rrsig(&name, RecordType::A));
                }
                Some(r)
            })
            .await
        };
        Signer { up, asked }
    }

    /// (DO, CD) of the questions it was asked for `name` (a resend, same
    /// ID, is the same question).
    fn asked(&self, name: &str) -> Vec<(bool, bool)> {
        let all = self.asked.lock().unwrap();
        let mut asked: Vec<_> = all
            .iter()
            .filter(|(n, ..)| n == name)
            .map(|&(_, id, d, c)| (id, d, c))
            .collect();
        asked.dedup_by_key(|&mut (id, ..)| id);
        asked.into_iter().map(|(_, d, c)| (d, c)).collect()
    }
}

/// NSEC RDATA: next name `oz.example.com.`, types A and RRSIG.
fn nsec_rdata() -> Vec<u8> {
    let mut rdata = b"\x02oz\x07example\x03com\x00".to_vec();
    rdata.extend_from_slice(&[0, 6, 0x40, 0, 0, 0, 0, 0x02]);
    rdata
}

/// RFC 3225, 4035 §3.2.1: DO goes upstream; the RRSIG reaches a client that
/// set DO and no client that did not, in either order and from either
/// cached path (UDP fast path, TCP general path), and the cache asks again
/// rather than hand one the other's answer. A denial's NSEC proof and
/// signatures likewise. CD goes upstream, and is cached apart too.
#[tokio::test]
async fn dnssec_records_reach_only_clients_that_set_do() {
    let signer = Signer::start().await;
    let srv = start(&config(signer.up.addr, "")).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let signed = vec![RecordType::A, RecordType::RRSIG];
    let unsigned = vec![RecordType::A];
    for (name, first_do) in [
        ("first-plain.example.com.", false),
        ("first-do.example.com.", true),
    ] {
        for dnssec_ok in [first_do, !first_do, first_do, !first_do] {
            let q = query_dnssec(name, RecordType::A, dnssec_ok, false);
            let want = if dnssec_ok { &signed } else { &unsigned };
            for (how, r) in [
                ("UDP", udp_exchange(srv.addr, &q).await),
                ("TCP", tcp_exchange(&mut tcp, &q).await),
            ] {
                assert_eq!(&types(&r.answers), want, "{name}, DO {dnssec_ok}, {how}");
                let echoed = r.edns.map(|e| e.flags().dnssec_ok);
                assert_eq!(echoed, Some(dnssec_ok), "DO echoed, {how}");
            }
        }
        assert_eq!(
            signer.asked(name),
            [(first_do, false), (!first_do, false)],
            "{name}: asked once each way, as the client asked"
        );
    }

    // A denial: the SOA alone without DO; with DO, the NSEC and signatures.
    let nx = "nx.example.com.";
    for dnssec_ok in [false, true, false] {
        let r = udp_exchange(srv.addr, &query_dnssec(nx, RecordType::A, dnssec_ok, false)).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        let want = match dnssec_ok {
            true => vec![
                RecordType::SOA,
                RecordType::NSEC,
                RecordType::RRSIG,
                RecordType::RRSIG,
            ],
            false => vec![RecordType::SOA],
        };
        assert_eq!(types(&r.authorities), want, "DO {dnssec_ok}");
    }

    // CD passes through, and an answer asked with CD stays with CD.
    let cd = "cd.example.com.";
    for checking_disabled in [true, false, true] {
        let q = query_dnssec(cd, RecordType::A, false, checking_disabled);
        let r = udp_exchange(srv.addr, &q).await;
        assert_eq!(addrs(&r), ["192.0.2.11"]);
        assert_eq!(r.metadata.checking_disabled, checking_disabled);
    }
    assert_eq!(signer.asked(cd), [(false, true), (false, false)]);
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
    // The stand-in's SOA for example.com.
    let soa = "example.com SOA example.com. hostmaster.example.com. 1 3600 600 86400 60";
    let gone = Case::forwarded("gone.example.com", RecordType::A, ResponseCode::NXDomain)
        .answer(&["gone.example.com CNAME nothere.example.com"])
        .authority(&[soa]);
    Case::run(
        srv.addr,
        &[
            Case::forwarded("nope.example.com", RecordType::A, ResponseCode::NXDomain)
                .authority(&[soa]),
            // NODATA upstream stays NODATA, with its SOA.
            Case::forwarded("www.example.com", RecordType::AAAA, ResponseCode::NoError)
                .authority(&[soa]),
            // A chain that ends in NXDOMAIN keeps its SOA, and is cached as
            // negative.
            gone.clone(),
            gone,
        ],
    )
    .await;
    assert_eq!(
        up.seen_names()
            .iter()
            .filter(|n| *n == "gone.example.com")
            .count(),
        1,
        "the second one came from the cache"
    );
    Case::run(
        srv.addr,
        &[
            Case::forwarded("refused.example.com", RecordType::A, ResponseCode::Refused),
            Case::forwarded(
                "servfail.example.com",
                RecordType::A,
                ResponseCode::ServFail,
            ),
        ],
    )
    .await;
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

/// Azure's resolver may answer over UDP with more than the 1232
/// bytes asked for, without TC. amldns reads such an answer whole up to
/// 4096 bytes: one of exactly 4096 bytes is taken (no retry over TCP) and
/// served, whole over TCP, and with TC to a UDP client it does not fit.
/// A read buffer a byte short would cut it, and the cut answer would not
/// parse.
#[tokio::test]
async fn an_upstream_udp_answer_of_4096_bytes_without_tc_is_read_whole() {
    let up = StandIn::start(|q| Some(edge_case_zone(q))).await;
    up.send_udp_whole();
    let name = "big-udp.example.com";
    // As amldns asks it: EDNS with its 1232 bytes.
    let size = edge_case_zone(&query_msg(name, RecordType::A, Some(1232)))
        .to_vec()
        .unwrap()
        .len();
    assert_eq!(size, UDP_READ, "the stand-in's answer is {size} bytes");
    let srv = start(&setup::config(&[up.addr], 1000, "")).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let r = tcp_exchange(&mut tcp, &query_msg(name, RecordType::A, Some(1232))).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&r).len(), BIG_UDP_RECORDS);
    let seen = up.seen();
    assert!(
        !seen.is_empty() && seen.iter().all(|s| !s.tcp),
        "asked over UDP only: {seen:?}"
    );
    let r = udp_query(srv.addr, name, RecordType::A).await;
    assert!(r.metadata.truncation, "too big for the client's 1232 bytes");
    srv.stop().await;
}

/// Upstream failures are counted per upstream and kind, and the in-flight
/// gauge shows a question while it is being asked and drops back after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_errors_are_counted_by_kind_and_the_in_flight_gauge_moves() {
    // Rcodes from an upstream that answers.
    let up = StandIn::start(|q| Some(edge_case_zone(q))).await;
    let srv = start(&setup::config(&[up.addr], 1000, "")).await;
    for (name, rcode) in [
        ("servfail.example.com", ResponseCode::ServFail),
        ("refused.example.com", ResponseCode::Refused),
        ("notauth.example.com", ResponseCode::NotAuth),
    ] {
        let r = udp_query(srv.addr, name, RecordType::A).await;
        assert_eq!(r.metadata.response_code, rcode, "{name}");
    }
    let m = scrape(&srv).await;
    let upstream = up.addr.to_string();
    for (kind, n) in [
        ("servfail", 1.0),
        ("refused", 1.0),
        ("rcode", 1.0),
        ("timeout", 0.0),
        ("network", 0.0),
    ] {
        let got = metric(
            &m,
            UPSTREAM_ERRORS_TOTAL,
            &[("upstream", &upstream), ("error", kind)],
        );
        assert_eq!(got, n, "{kind} errors");
    }
    srv.stop().await;

    // A port nobody listens on (the kernel says so at once), then one that
    // never answers.
    // Held, and connected elsewhere: the kernel delivers it nothing from
    // amldns and answers port-unreachable, as for a port nobody holds, yet
    // no other socket can take the port meanwhile.
    let held = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    held.connect("127.0.0.1:9").await.unwrap();
    let closed = held.local_addr().unwrap();
    let silent = StandIn::start(|_| None).await;
    let srv = start(&setup::config(&[closed, silent.addr], 1500, "")).await;
    assert_eq!(metric(&scrape(&srv).await, UPSTREAM_IN_FLIGHT, &[]), 0.0);
    let addr = srv.addr;
    let asking =
        tokio::spawn(async move { udp_query(addr, "slow.example.com", RecordType::A).await });
    until("the silent upstream is asked", || !silent.seen().is_empty()).await;
    assert_eq!(metric(&scrape(&srv).await, UPSTREAM_IN_FLIGHT, &[]), 1.0);
    let r = asking.await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    let m = scrape(&srv).await;
    assert_eq!(metric(&m, UPSTREAM_IN_FLIGHT, &[]), 0.0);
    let of = |up: SocketAddr, kind| {
        metric(
            &m,
            UPSTREAM_ERRORS_TOTAL,
            &[("upstream", &up.to_string()), ("error", kind)],
        )
    };
    assert_eq!(of(closed, "network"), 1.0);
    assert_eq!(of(closed, "timeout"), 0.0);
    assert_eq!(of(silent.addr, "timeout"), 1.0);
    assert_eq!(of(silent.addr, "network"), 0.0);
    srv.stop().await;
}

/// A query without RD (`dig +norec`) is answered from what amldns holds:
/// the table and the cache. What would need the upstream gets REFUSED and
/// nothing is sent; a local CNAME whose target is neither local nor cached
/// is answered with the CNAME alone. Names under a private-link zone amldns
/// is the authority of are the exception: answered as that authority.
#[tokio::test]
async fn without_rd_only_the_table_and_the_cache_answer() {
    let up = StandIn::zone().await;
    let rest =
        format!("{PROBE}[[record]]\nname = \"alias.corp.example\"\ncname = \"www.example.com\"\n");
    let srv = start(
        &TestConfig {
            upstreams: &[up.addr],
            metrics: true,
            rest: &rest,
            ..TestConfig::default()
        }
        .text(),
    )
    .await;
    let norec = async |qname: &str| {
        let mut m = query_msg(qname, RecordType::A, Some(1232));
        m.metadata.recursion_desired = false;
        udp_exchange(srv.addr, &m).await
    };
    let refused = norec("www.example.com").await;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    assert!(refused.answers.is_empty() && !refused.metadata.recursion_desired);
    let alias = norec("alias.corp.example").await;
    assert_eq!(alias.metadata.response_code, ResponseCode::NoError);
    let types: Vec<RecordType> = alias.answers.iter().map(Record::record_type).collect();
    assert_eq!(types, [RecordType::CNAME], "the CNAME alone: {alias:?}");
    assert!(alias.metadata.authoritative);
    assert!(up.seen().is_empty(), "sent upstream: {:?}", up.seen());
    let local = norec("probe.privatelink.blob.core.windows.net").await;
    assert_eq!(addrs(&local), ["10.9.9.9"]);
    let text = scrape(&srv).await;
    let refusals = [("outcome", "refused"), ("protocol", "udp"), ("qtype", "A")];
    assert_eq!(
        metric(&text, "amldns_queries_total", &refusals),
        1.0,
        "{text}"
    );

    // Once a client with RD had it asked, the cache answers without RD too,
    // over either path, and the alias ends in its address.
    let asked = udp_query(srv.addr, "www.example.com", RecordType::A).await;
    assert_eq!(addrs(&asked), ["192.0.2.10"]);
    let cached = norec("WWW.example.com").await;
    assert_eq!(addrs(&cached), ["192.0.2.10"]);
    let mut tcp = query_msg("www.example.com", RecordType::A, None);
    tcp.metadata.recursion_desired = false;
    let mut conn = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(addrs(&tcp_exchange(&mut conn, &tcp).await), ["192.0.2.10"]);
    let alias = norec("alias.corp.example").await;
    assert_eq!(alias.answers.len(), 2, "{alias:?}");
    assert_eq!(up.seen_names(), ["www.example.com"]);

    // Under a private-link zone amldns is the authority of, a name the
    // table lacks is answered as that authority, RD or not (zone checkers
    // ask without RD): upstream is asked, and its NXDOMAIN is amldns's own.
    up.clear();
    let gone = norec("gone.privatelink.blob.core.windows.net").await;
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    assert!(gone.metadata.authoritative, "{gone:?}");
    assert_eq!(up.seen_names(), ["gone.privatelink.blob.core.windows.net"]);
    srv.stop().await;
}
