//! The fast path and the general one give the same answers, fresh and
//! cached, over every kind of local and forwarded name.

use std::time::Instant;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::TcpStream;

use crate::common::*;

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
    // Both public zones' SOAs known, so that both paths give them.
    once_soa_learned(srv.addr, &api).await;
    once_soa_learned(srv.addr, "ci-9.eastus.instances.azureml.ms").await;
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
                if nodata {
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
