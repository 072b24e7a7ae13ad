//! What amldns answers where the resolution step decides something of its
//! own, over real sockets: private-link zone apexes, opcodes it
//! does not implement, DO echoed, ANY over UDP, outsiders on the fast path.
//!
//! And the local names themselves: every name family in every cloud, the
//! question's letter case echoed, other types as NODATA, Azure's CNAME chain,
//! imported names, and large answers that fit once compressed.

use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::common::case::{Case, azure_soa_line, soa_line};
use crate::common::*;

/// A workspace in `cname` mode (so the table holds names in
/// `privatelink.api.azureml.ms`), a record in a second private zone, and
/// the listen address the apex's NS points at.
fn config(upstream: std::net::SocketAddr, rest: &str) -> String {
    with_metrics(
        upstream,
        &format!(
            "[zone]\nanswer = \"cname\"\n{}[[record]]\nname = \"st.privatelink.blob.core.windows.net\"\n\
             a = [\"10.1.0.9\"]\n{rest}",
            workspace("public", "")
        ),
    )
}

fn soa_of(r: &hickory_proto::rr::Record) -> String {
    match &r.data {
        RData::SOA(s) => format!(
            "{} {} {} {} {}",
            r.name.to_ascii().to_lowercase(),
            s.mname.to_ascii().to_lowercase(),
            s.rname.to_ascii().to_lowercase(),
            s.serial,
            s.minimum
        ),
        other => panic!("not an SOA: {other:?}"),
    }
}

/// SOA and NS at the apex of every private-link zone the table
/// holds names in, authoritatively and with the SOA negative answers carry;
/// the NS name's address; DS, other names under the zone and public apexes
/// still forwarded.
#[tokio::test]
async fn private_link_apexes_are_answered_authoritatively() {
    let up = StandIn::zone().await;
    let srv = start(&config(up.addr, "")).await;
    let apex = "privatelink.api.azureml.ms";
    let soa = udp_query(srv.addr, apex, RecordType::SOA).await;
    assert!(soa.metadata.authoritative, "AA=1");
    assert_eq!(soa.metadata.response_code, ResponseCode::NoError);
    assert_eq!(soa.answers.len(), 1);
    let nodata = udp_query(
        srv.addr,
        &format!("{GUID}.workspace.eastus.privatelink.api.azureml.ms"),
        RecordType::AAAA,
    )
    .await;
    assert_eq!(
        soa_of(&soa.answers[0]),
        soa_of(&nodata.authorities[0]),
        "the apex's SOA is the one negative answers carry"
    );
    assert_eq!(
        soa_of(&soa.answers[0]),
        format!("{apex}. ns.{apex}. hostmaster.{apex}. 1 60")
    );

    for q in [
        query_msg(apex, RecordType::NS, Some(1232)),
        query_msg(&apex.to_uppercase(), RecordType::NS, None),
    ] {
        let ns = udp_exchange(srv.addr, &q).await;
        assert!(ns.metadata.authoritative);
        assert_eq!(answer_lines(&ns), vec![format!("{apex} NS ns.{apex}.")]);
        assert_eq!(
            ns.answers[0].name.to_ascii().trim_end_matches('.'),
            q.queries[0].name().to_ascii(),
            "the owner as asked"
        );
        // The config listens on 0.0.0.0 (the default): no usable address.
        assert!(ns.additionals.is_empty());
    }
    let apex_soa = soa_line(apex, 1, 60);
    assert_eq!(answer_lines(&soa), [apex_soa.as_str()]);
    Case::run(
        srv.addr,
        &[
            Case::nodata(&format!("ns.{apex}"), RecordType::A, &apex_soa),
            Case::nodata(apex, RecordType::TXT, &apex_soa),
        ],
    )
    .await;

    // The second private zone is ours too; public apexes, DS and other
    // names are not.
    let blob = udp_query(
        srv.addr,
        "privatelink.blob.core.windows.net",
        RecordType::SOA,
    )
    .await;
    assert!(blob.metadata.authoritative);
    assert!(up.seen().is_empty(), "{:?}", up.seen());
    for (name, qtype) in [
        (apex, RecordType::DS),
        ("api.azureml.ms", RecordType::SOA),
        ("privatelink.vaultcore.azure.net", RecordType::SOA),
    ] {
        let r = udp_query(srv.addr, name, qtype).await;
        assert!(!r.metadata.authoritative, "{name} {qtype} is forwarded");
    }
    // `api.azureml.ms SOA` is one amldns also asks on its own, which
    // `seen` leaves out: the other two.
    assert_eq!(up.seen().len(), 2);
    srv.stop().await;
}

/// A name under a private-link zone amldns owns that the table
/// does not hold is forwarded (Azure's "fall back to internet"); what the
/// upstream has is passed on, and when it has nothing (NXDOMAIN, NODATA)
/// amldns answers as the zone's authority: AA=1 and the zone's own SOA,
/// fresh and from the cache alike, so a zone checker sees one server.
#[tokio::test]
async fn negative_answers_under_a_private_zone_are_its_own() {
    let up = StandIn::zone().await;
    let srv = start(&config(up.addr, "")).await;
    let apex = "privatelink.api.azureml.ms";
    let soa = udp_query(srv.addr, apex, RecordType::SOA).await;
    for _ in 0..2 {
        let r = udp_query(srv.addr, &format!("nothere.{apex}"), RecordType::A).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert!(r.metadata.authoritative, "AA=1 for the zone's own NXDOMAIN");
        assert_eq!(r.authorities.len(), 1);
        assert_eq!(soa_of(&r.authorities[0]), soa_of(&soa.answers[0]));
    }
    let other = "0d5c2f4e-7a1b-4c3d-9e8f-102030405060.workspace.eastus.privatelink.api.azureml.ms";
    let r = udp_query(srv.addr, other, RecordType::A).await;
    assert_eq!(addrs(&r), vec!["192.0.2.40"]);
    assert!(!r.metadata.authoritative, "public data passed on as it is");
    let r = udp_query(srv.addr, other, RecordType::AAAA).await;
    assert!(
        r.metadata.authoritative && r.answers.is_empty(),
        "NODATA: ours"
    );
    assert_eq!(soa_of(&r.authorities[0]), soa_of(&soa.answers[0]));
    srv.stop().await;
}

/// The NS name's address is amldns's listen address, when it has one.
#[tokio::test]
async fn the_apex_ns_has_the_listen_address_as_glue() {
    let up = StandIn::zone().await;
    let srv = start(&config(up.addr, "").replace(
        "[server]\n",
        "[server]\nlisten = [\"127.0.0.1:53\", \"[::]:53\"]\n",
    ))
    .await;
    let apex = "privatelink.api.azureml.ms";
    let ns = udp_query(srv.addr, apex, RecordType::NS).await;
    let glue: Vec<String> = ns
        .additionals
        .iter()
        .map(|r| format!("{} {}", r.name.to_ascii(), r.data))
        .collect();
    assert_eq!(glue, vec![format!("ns.{apex}. 127.0.0.1")]);
    let a = udp_query(srv.addr, &format!("NS.{apex}"), RecordType::A).await;
    assert_eq!(addrs(&a), vec!["127.0.0.1"]);
    srv.stop().await;
}

/// RFC 8906 §8.2.4: an unknown opcode gets NOTIMP with RD as asked, no RA,
/// no AA, nothing in the answer.
#[tokio::test]
async fn unknown_opcodes_get_notimp_without_ra() {
    let up = StandIn::zone().await;
    let srv = start(&config(up.addr, "")).await;
    for (rd, edns) in [(false, None), (true, Some(1232))] {
        let mut q = query_msg("privatelink.api.azureml.ms", RecordType::SOA, edns);
        q.metadata.op_code = OpCode::from_u8(15);
        q.metadata.recursion_desired = rd;
        let r = udp_exchange(srv.addr, &q).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
        assert_eq!(u8::from(r.metadata.op_code), 15);
        assert!(!r.metadata.recursion_available, "no RA");
        assert!(!r.metadata.authoritative && !r.metadata.truncation);
        assert_eq!(r.metadata.recursion_desired, rd, "RD as asked");
        assert!(r.answers.is_empty() && r.authorities.is_empty());
        assert_eq!(r.edns.is_some(), edns.is_some());
    }
    assert!(up.seen().is_empty());
    srv.stop().await;
}

/// RFC 3225 §3: DO comes back in the OPT of a query that set it, on both
/// paths (UDP's fast writer, TCP's general encoder), and not otherwise.
#[tokio::test]
async fn do_is_echoed_in_the_opt_record() {
    let up = StandIn::zone().await;
    let srv = start(&config(up.addr, "")).await;
    let api = format!("{GUID}.workspace.eastus.api.azureml.ms");
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    for (name, qtype) in [
        (api.as_str(), RecordType::A),
        (api.as_str(), RecordType::TXT),
        ("privatelink.api.azureml.ms", RecordType::SOA),
    ] {
        for dnssec_ok in [false, true] {
            let mut q = query_msg(name, qtype, Some(1232));
            q.edns.as_mut().unwrap().set_dnssec_ok(dnssec_ok);
            for r in [
                udp_exchange(srv.addr, &q).await,
                tcp_exchange(&mut tcp, &q).await,
            ] {
                let opt = r.edns.expect("OPT echoed");
                assert_eq!(opt.flags().dnssec_ok, dnssec_ok, "{name} {qtype}");
                assert!(r.metadata.authoritative);
            }
        }
    }
    srv.stop().await;
}

/// RFC 8482 §4.4: ANY over UDP for a name that is not local is TC=1 at
/// once, counted as its own outcome; over TCP it is forwarded.
#[tokio::test]
async fn any_over_udp_is_truncated_and_counted_so() {
    let up = StandIn::zone().await;
    let srv = start(&config(up.addr, "")).await;
    let r = udp_query(srv.addr, "www.example.com", RecordType::ANY).await;
    assert!(r.metadata.truncation && r.answers.is_empty());
    let text = scrape(&srv).await;
    let labels = [
        ("protocol", "udp"),
        ("qtype", "ANY"),
        ("outcome", "truncated"),
    ];
    assert_eq!(metric(&text, "amldns_queries_total", &labels), 1.0);
    let refused = [
        ("protocol", "udp"),
        ("qtype", "ANY"),
        ("outcome", "refused"),
    ];
    assert_eq!(metric(&text, "amldns_queries_total", &refused), 0.0);
    assert!(up.seen().is_empty(), "not asked upstream over UDP");
    srv.stop().await;
}

/// A client outside `allow` gets REFUSED with its question echoed, from the
/// fast path (no task is spawned for it), counted as refused.
#[tokio::test]
async fn outsiders_are_refused_with_their_question() {
    let up = StandIn::zone().await;
    let srv = start(&config(up.addr, "")).await;
    let q = query_msg(
        &format!("{GUID}.workspace.EastUS.api.azureml.ms"),
        RecordType::A,
        Some(1232),
    );
    // 127.0.0.2 is loopback, but not in allow = ["127.0.0.1/32"].
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let bytes = udp_raw_from(other, srv.addr, &q.to_vec().unwrap(), IO_TIMEOUT)
        .await
        .unwrap();
    let r = Message::from_vec(&bytes).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    assert_eq!(
        r.queries[0].name().to_ascii().trim_end_matches('.'),
        q.queries[0].name().to_ascii(),
        "the question as asked"
    );
    assert!(r.answers.is_empty() && r.edns.is_some());
    let text = scrape(&srv).await;
    let labels = [("protocol", "udp"), ("qtype", "A"), ("outcome", "refused")];
    assert_eq!(metric(&text, "amldns_queries_total", &labels), 1.0);
    srv.stop().await;
}

/// `id.server` and `hostname.bind` CH TXT, and NSID when asked,
/// give `[server] identity`; other CH questions are refused.
#[tokio::test]
async fn identity_answers_id_server_hostname_bind_and_nsid() {
    use hickory_proto::rr::DNSClass;
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    let up = StandIn::zone().await;
    let cfg = config(up.addr, "").replace("[server]\n", "[server]\nidentity = \"dns-vm-1\"\n");
    let srv = start(&cfg).await;
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    for name in ["id.server", "HOSTNAME.bind"] {
        let mut q = query_msg(name, RecordType::TXT, None);
        q.queries[0].query_class = DNSClass::CH;
        for r in [
            udp_exchange(srv.addr, &q).await,
            tcp_exchange(&mut tcp, &q).await,
        ] {
            assert_eq!(r.metadata.response_code, ResponseCode::NoError);
            assert_eq!(r.answers.len(), 1, "{name}");
            assert_eq!(r.answers[0].dns_class, DNSClass::CH);
            assert_eq!(r.answers[0].data.to_string(), "dns-vm-1");
        }
    }
    let mut version = query_msg("version.bind", RecordType::TXT, None);
    version.queries[0].query_class = DNSClass::CH;
    let r = udp_exchange(srv.addr, &version).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);

    // NSID (RFC 5001): in the OPT of any answer, only when asked.
    let api = format!("{GUID}.workspace.eastus.api.azureml.ms");
    let mut q = query_msg(&api, RecordType::A, Some(1232));
    q.edns
        .as_mut()
        .unwrap()
        .options_mut()
        .insert(EdnsOption::Unknown(3, Vec::new()));
    for r in [
        udp_exchange(srv.addr, &q).await,
        tcp_exchange(&mut tcp, &q).await,
    ] {
        assert_eq!(addrs(&r), vec!["10.1.0.5"]);
        let nsid = r.edns.as_ref().unwrap().option(EdnsCode::NSID).cloned();
        match nsid {
            Some(EdnsOption::NSID(p)) => assert_eq!(p.as_ref(), b"dns-vm-1"),
            other => panic!("no NSID: {other:?}"),
        }
    }
    let plain = udp_exchange(srv.addr, &query_msg(&api, RecordType::A, Some(1232))).await;
    assert!(plain.edns.unwrap().option(EdnsCode::NSID).is_none());
    assert!(up.seen().is_empty());
    srv.stop().await;
}

/// Without `[server] identity`, the host's name.
#[tokio::test]
async fn identity_defaults_to_the_host_name() {
    use hickory_proto::rr::DNSClass;
    let up = StandIn::zone().await;
    let srv = start(&config(up.addr, "")).await;
    let mut q = query_msg("id.server", RecordType::TXT, None);
    q.queries[0].query_class = DNSClass::CH;
    let r = udp_exchange(srv.addr, &q).await;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(r.answers[0].data.to_string(), host.trim());
    srv.stop().await;
}

const NB: &str = fixtures::NOTEBOOK_LABEL;

/// Every name family a workspace needs, for each cloud, answered locally with AA.
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
        let local = [
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
        let cases: Vec<Case> = local
            .iter()
            .map(|(qname, ip)| Case::local_a(qname, ip).ra(true))
            .collect();
        Case::run(srv.addr, &cases).await;
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
    let names = [
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
    let types = [
        RecordType::AAAA,
        RecordType::TXT,
        RecordType::MX,
        RecordType::HTTPS,
        RecordType::SRV,
    ];
    for (qname, _) in &names {
        once_soa_learned(srv.addr, qname).await;
    }
    // Under a public zone, the upstream's SOA; under a private-link zone,
    // amldns's own, serial 1: the table's first generation.
    let soa = |apex: &str| match apex.starts_with("privatelink.") {
        true => soa_line(apex, 1, 60),
        false => azure_soa_line(apex),
    };
    let cases: Vec<Case> = names
        .iter()
        .flat_map(|(qname, apex)| types.map(|t| Case::nodata(qname, t, &soa(apex))))
        .collect();
    Case::run(srv.addr, &cases).await;
    assert!(up.seen().is_empty(), "{:?}", up.seen());
    srv.stop().await;
}

/// One SOA per owner: under a public zone (`api.azureml.ms`), a local
/// name's NODATA carries the SOA the upstream gives for the zone, the same
/// one a client asking the zone's SOA through amldns is given, RD or not;
/// the TTL no more than the table's negative TTL. While the upstream gives
/// none, NODATA carries no SOA, and is still NOERROR from the table.
#[tokio::test]
async fn nodata_under_a_public_zone_carries_the_upstream_s_soa() {
    let up = StandIn::zone().await;
    let srv = start(&config_with(up.addr, &workspace("public", ""))).await;
    let local = format!("{GUID}.workspace.eastus.api.azureml.ms");
    let nodata = once_soa_learned(srv.addr, &local).await;
    assert!(nodata.metadata.authoritative);
    assert!(nodata.answers.is_empty());
    let [soa] = &nodata.authorities[..] else {
        panic!("one SOA: {:?}", nodata.authorities)
    };
    assert_eq!(soa.name.to_ascii(), "api.azureml.ms.");
    assert_eq!(soa.ttl, 60, "the table's negative TTL, under the SOA's 300");
    let asked = udp_query(srv.addr, "api.azureml.ms", RecordType::SOA).await;
    assert_eq!(asked.answers.len(), 1, "{asked:?}");
    assert_eq!(
        asked.answers[0].data, soa.data,
        "one SOA for api.azureml.ms"
    );
    let mut q = query_msg(&local, RecordType::AAAA, Some(1232));
    q.metadata.recursion_desired = false;
    let norec = udp_exchange(srv.addr, &q).await;
    assert_eq!(norec.authorities, nodata.authorities, "RD=0 alike");
    srv.stop().await;

    // An upstream that gives no SOA: NODATA alone, never a made-up SOA.
    let up = StandIn::start(|q| {
        let mut r = reply_to(q);
        r.metadata.response_code = ResponseCode::Refused;
        Some(r)
    })
    .await;
    let srv = start(&config_with(up.addr, &workspace("public", ""))).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !up.seen_all().iter().any(|s| s.qtype == RecordType::SOA) {
        assert!(std::time::Instant::now() < deadline, "the zone's SOA asked");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = udp_query(srv.addr, &local, RecordType::AAAA).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.metadata.authoritative);
    assert!(r.answers.is_empty() && r.authorities.is_empty(), "{r:?}");
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
    let ws = format!("{GUID}.workspace.eastus.api.azureml.ms");
    let pl = format!("{GUID}.workspace.eastus.privatelink.api.azureml.ms");
    let chain = [format!("{ws} CNAME {pl}"), format!("{pl} A 10.1.0.5")];
    let chain: Vec<&str> = chain.iter().map(String::as_str).collect();
    Case::run(srv.addr, &[Case::local(&ws, RecordType::A, &chain)]).await;
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
    let imported = [
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
    let cases: Vec<Case> = imported
        .iter()
        .map(|(qname, ip)| Case::local_a(qname, ip))
        .collect();
    Case::run(srv.addr, &cases).await;
    assert!(up.seen().is_empty());
    srv.stop().await;
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
