//! Writes the binary seeds of `request` and `upstream_reply` (real queries
//! and upstream replies, made with hickory) under `fuzz/seeds/`:
//! `cargo run --example make_seeds` from `fuzz/`. The text seeds (`config`,
//! `import`) are checked in as they are.

use std::path::Path;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use fixtures::GUID;

/// The workspace the tests name (`tests/fixtures`).
mod fixtures {
    #![allow(dead_code)] // only the id is used here
    include!("../../tests/fixtures/workspace.rs");
}

/// The ID the `upstream_reply` target asks with.
const UPSTREAM_ID: u16 = 0x2a2a;

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn query(qname: &str, qtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::query();
    m.metadata.id = 0x1234;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name(qname), qtype));
    if let Some(p) = edns {
        let mut e = Edns::new();
        e.set_max_payload(p);
        m.set_edns(e);
    }
    m
}

/// A reply to our upstream question `www.example.com.`, as resolvers send it.
fn reply(qtype: RecordType, rcode: ResponseCode) -> Message {
    let mut m = Message::new(UPSTREAM_ID, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.metadata.response_code = rcode;
    m.add_query(Query::query(name("www.example.com."), qtype));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    m
}

fn a(owner: &str, ip: [u8; 4]) -> Record {
    Record::from_rdata(
        name(owner),
        300,
        RData::A(A::from(std::net::Ipv4Addr::from(ip))),
    )
}

fn cname(owner: &str, target: &str) -> Record {
    Record::from_rdata(name(owner), 60, RData::CNAME(CNAME(name(target))))
}

fn soa(zone: &str) -> Record {
    Record::from_rdata(
        name(zone),
        300,
        RData::SOA(SOA::new(
            name(&format!("ns1.{zone}")),
            name(&format!("hostmaster.{zone}")),
            2026112201,
            3600,
            600,
            86400,
            60,
        )),
    )
}

fn write(dir: &Path, file: &str, m: &Message) {
    std::fs::write(dir.join(file), m.to_vec().unwrap()).unwrap();
}

fn main() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let dir = seeds.join("request");
    std::fs::create_dir_all(&dir).unwrap();
    let api = format!("{GUID}.workspace.eastus.api.azureml.ms.");
    let cases = [
        ("api-a-edns", query(&api, RecordType::A, Some(1232))),
        ("api-aaaa-nodata", query(&api, RecordType::AAAA, None)),
        (
            "api-mixed-case",
            query(
                &format!("{}.Workspace.EastUS.API.AzureML.ms.", GUID.to_uppercase()),
                RecordType::A,
                None,
            ),
        ),
        (
            "instance-wildcard-edns4096",
            query(
                "ci-9.eastus.instances.azureml.ms.",
                RecordType::A,
                Some(4096),
            ),
        ),
        (
            "cname-chain",
            query("Alias.Corp.Example.", RecordType::A, Some(1232)),
        ),
        (
            "dual-any",
            query("dual.corp.example.", RecordType::ANY, None),
        ),
        (
            "chain-leaves-table",
            query("web.corp.example.", RecordType::A, None),
        ),
        (
            "forwarded",
            query("www.example.com.", RecordType::A, Some(1232)),
        ),
        (
            "too-big-for-512",
            query("many.corp.example.", RecordType::A, None),
        ),
    ];
    for (file, m) in &cases {
        write(&dir, file, m);
    }
    let mut two = query("dual.corp.example.", RecordType::A, None);
    two.add_query(Query::query(name("mid.corp.example."), RecordType::A));
    write(&dir, "two-questions", &two);
    let mut notify = query(&api, RecordType::SOA, None);
    notify.metadata.op_code = OpCode::Notify;
    write(&dir, "notify", &notify);

    let dir = seeds.join("upstream_reply");
    std::fs::create_dir_all(&dir).unwrap();
    let mut m = reply(RecordType::A, ResponseCode::NoError);
    m.add_answer(a("www.example.com.", [192, 0, 2, 10]));
    write(&dir, "a", &m);
    // A chain out of order, with an unrelated answer, NS and glue: all but
    // the chain and its A are dropped.
    let mut m = reply(RecordType::A, ResponseCode::NoError);
    m.add_answer(cname("cdn.example.net.", "edge.example.org."));
    m.add_answer(cname("WWW.example.com.", "cdn.example.net."));
    m.add_answer(a("edge.example.org.", [192, 0, 2, 20]));
    m.add_answer(a("unrelated.example.", [192, 0, 2, 66]));
    m.add_authority(Record::from_rdata(
        name("example.org."),
        300,
        RData::NS(NS(name("ns1.example.org."))),
    ));
    m.add_additional(a("ns1.example.org.", [192, 0, 2, 53]));
    write(&dir, "cname-chain", &m);
    // A chain into nothing: the CNAME, then NXDOMAIN with the SOA.
    let mut m = reply(RecordType::A, ResponseCode::NXDomain);
    m.add_answer(cname("www.example.com.", "gone.example.com."));
    m.add_authority(soa("example.com."));
    write(&dir, "nxdomain-soa", &m);
    let mut m = reply(RecordType::AAAA, ResponseCode::NoError);
    m.add_authority(soa("example.com."));
    write(&dir, "aaaa-nodata", &m);
    let mut m = reply(RecordType::AAAA, ResponseCode::NoError);
    m.add_answer(Record::from_rdata(
        name("www.example.com."),
        300,
        RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    ));
    write(&dir, "aaaa", &m);
    let mut m = reply(RecordType::CNAME, ResponseCode::NoError);
    m.add_answer(cname("www.example.com.", "cdn.example.net."));
    m.add_answer(a("cdn.example.net.", [192, 0, 2, 30]));
    write(&dir, "cname-question", &m);
    let mut m = reply(RecordType::A, ResponseCode::NoError);
    m.metadata.truncation = true;
    write(&dir, "truncated", &m);
    let mut m = Message::new(UPSTREAM_ID, MessageType::Response, OpCode::Query);
    m.metadata.response_code = ResponseCode::FormErr;
    write(&dir, "bare-formerr", &m);
}
