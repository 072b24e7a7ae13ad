//! The two encoders write the same plan the same way: over a corpus of
//! every kind of local name (and a few that are not local) × many query
//! types × EDNS sizes × DO × letter case, each query goes through the fast
//! path (`Handler::answer_fast`, the `wire` writer) and the general path
//! (`Handler::answer`, the `codec` encoder over hickory-proto), and where
//! the fast path answers, the two answers must be the same bytes. Cached
//! negative answers under zones amldns owns are in the corpus too.
//!
//! No I/O: the forwarder has no upstream and no permit to ask one, so a
//! name the plan forwards gets SERVFAIL at once, without a socket.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use amldns::cache::{Cache, Key, Reply};
use amldns::config;
use amldns::forward::{Dnssec, Forwarder};
use amldns::handler::{Handler, InFlight, Snapshot};
use amldns::metrics::{Metrics, Transport};
use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

const GUID: &str = "fb7e20a0-8891-458b-b969-55ddb3382f51";

fn config_text(answer: &str) -> String {
    let many: Vec<String> = (1..=40).map(|i| format!("\"10.4.0.{i}\"")).collect();
    format!(
        r#"
[server]
listen = ["127.0.0.1:53"]
allow = ["127.0.0.0/8"]
[upstream]
servers = ["127.0.0.1:9"]
[zone]
answer = "{answer}"
[[workspace]]
name = "contoso-research-ml-workspace-001"
id = "{GUID}"
region = "eastus"
ip = "10.1.0.5"
notebook_ip = "10.1.0.6"
inference_ip = "10.1.0.7"
instances = ["ci-alice"]
instances_wildcard = true
online_endpoints = ["fraud-score"]
[[workspace]]
name = "hub-contoso"
id = "03ce50c0-2e18-48ad-9e4a-ca338f571072"
region = "chinaeast2"
cloud = "china"
ip = "10.2.0.5"
projects = [ {{ name = "proj-a", id = "0d5c2f4e-7a1b-4c3d-9e8f-102030405060" }} ]
[[record]]
name = "dual.corp.example"
a = ["10.3.0.1", "10.3.0.2"]
aaaa = ["fd00::3"]
[[record]]
name = "alias.corp.example"
cname = "mid.corp.example"
[[record]]
name = "mid.corp.example"
cname = "dual.corp.example"
ttl = 5
[[record]]
name = "web.corp.example"
cname = "www.example.com"
[[record]]
name = "*.wild.corp.example"
a = ["10.3.1.1"]
[[record]]
name = "many.corp.example"
a = [{}]
[[record]]
name = "st.privatelink.blob.core.windows.net"
a = ["10.1.0.9"]
"#,
        many.join(", ")
    )
}

/// Names under private-link zones amldns owns whose upstream answers are
/// negative, cached for every type asked, with DO and without: amldns
/// answers them as the zone's authority.
const OWNED_NEGATIVES: [(&str, ResponseCode); 2] = [
    ("gone.privatelink.api.azureml.ms", ResponseCode::NXDomain),
    (
        "nodata.privatelink.blob.core.windows.net",
        ResponseCode::NoError,
    ),
];

/// A handler over the config with `answer` mode, and the names to ask it:
/// every name of its table (a wildcard as one name it matches), the apexes
/// of its zones and their `ns.` names, and names it does not hold.
fn world(answer: &str, qtypes: &[RecordType]) -> (Handler, Vec<String>) {
    let mut config = config::parse(Path::new("encoders.toml"), &config_text(answer)).unwrap();
    // Nothing to ask and no permit to ask it: forwarding fails at once.
    config.upstream.servers.clear();
    config.upstream.max_in_flight = 0;
    let metrics = Arc::new(Metrics::new());
    let table = config.table(1).unwrap();
    let mut names: Vec<String> = table
        .nodes()
        .map(|n| n.name.replacen("*.", "any-1.", 1))
        .collect();
    names.extend(
        [
            "privatelink.api.azureml.ms",
            "ns.privatelink.api.azureml.ms",
            "privatelink.blob.core.windows.net",
            "ns.privatelink.blob.core.windows.net",
            "api.azureml.ms",
            "eastus.api.azureml.ms",
            "www.example.com",
            "deep.any-1.wild.corp.example",
        ]
        .map(String::from),
    );
    let cache = Arc::new(Cache::new(1000));
    // The SOA upstream sends with a negative answer (RFC 2308 §3), whose
    // place amldns's own takes.
    let upstream_soa = Record::from_rdata(
        Name::from_ascii("azureml.ms.").unwrap(),
        300,
        RData::SOA(SOA::new(
            Name::from_ascii("ns1.example.net.").unwrap(),
            Name::from_ascii("hostmaster.example.net.").unwrap(),
            7,
            3600,
            600,
            86400,
            300,
        )),
    );
    for (name, rcode) in OWNED_NEGATIVES {
        names.push(name.to_string());
        for (&qtype, dnssec_ok) in qtypes.iter().flat_map(|q| [(q, false), (q, true)]) {
            let key = Key {
                name: LowerName::from(Name::from_ascii(name).unwrap()),
                qtype,
                dnssec: Dnssec {
                    ok: dnssec_ok,
                    checking_disabled: false,
                },
            };
            let reply = Reply {
                rcode,
                answers: Vec::new(),
                authorities: vec![upstream_soa.clone()],
            };
            cache.insert(&key, &reply);
        }
    }
    let snapshot = Snapshot::new(
        table,
        &config,
        Arc::new(Forwarder::new(&config.upstream, cache, metrics.clone())),
    );
    let handler = Handler::new(
        Arc::new(ArcSwap::from_pointee(snapshot)),
        metrics,
        Arc::new(InFlight::default()),
    );
    (handler, names)
}

/// `name` in lower case, upper case, and alternating.
fn spellings(name: &str) -> [String; 3] {
    let mixed = name
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    [name.to_lowercase(), name.to_uppercase(), mixed]
}

fn query(name: &str, qtype: RecordType, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 0x5EED;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some((payload, dnssec_ok)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

#[tokio::test]
async fn both_encoders_write_the_same_bytes_for_the_same_plan() {
    let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
    let qtypes = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::CNAME,
        RecordType::TXT,
        RecordType::MX,
        RecordType::ANY,
        RecordType::SOA,
        RecordType::NS,
        RecordType::SRV,
        RecordType::DS,
        RecordType::CAA,
        RecordType::Unknown(65280),
    ];
    let sizes = [
        None,
        Some((512, false)),
        Some((1232, false)),
        Some((1232, true)),
        Some((4096, true)),
    ];
    let (mut compared, mut general_only, mut owned) = (0, 0, 0);
    for answer in ["a", "cname"] {
        let (h, names) = world(answer, &qtypes);
        let mut tally = h.metrics().tally();
        for name in names {
            for spelled in spellings(&name) {
                for qtype in qtypes {
                    for edns in sizes {
                        let q = query(&spelled, qtype, edns);
                        let mut out = [0u8; 2048];
                        let fast = h
                            .answer_fast(&q, src, &mut out, &mut tally)
                            .map(|n| out[..n].to_vec());
                        let general = h.answer(&q, src, Transport::Udp).await;
                        let what = format!("{answer} {spelled} {qtype} {edns:?}");
                        assert!(
                            Message::from_vec(&general).is_ok(),
                            "{what}: the general answer parses"
                        );
                        // ANY over UDP is TC=1 whatever the cache holds.
                        if OWNED_NEGATIVES.iter().any(|(n, _)| *n == name)
                            && qtype != RecordType::ANY
                        {
                            assert!(fast.is_some(), "{what}: an owned negative, fast");
                            owned += 1;
                        }
                        match fast {
                            Some(fast) => {
                                assert_eq!(fast, general, "{what}");
                                compared += 1;
                            }
                            None => general_only += 1,
                        }
                    }
                }
            }
        }
    }
    // Most of the corpus is the fast path's; the rest (forwarded names,
    // apexes, chains that leave the table) only the general path writes.
    assert!(
        compared > 2000,
        "{compared} compared, {general_only} general only"
    );
    assert!(
        general_only > 500,
        "{compared} compared, {general_only} general only"
    );
    // Every owned negative is the fast path's, whatever the type, size or DO.
    assert_eq!(
        owned,
        2 * OWNED_NEGATIVES.len() * 3 * (qtypes.len() - 1) * sizes.len()
    );
}
