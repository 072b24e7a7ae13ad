//! `amldns doctor` against resolvers on a client's path: relays in front of
//! a real amldns that pass its answers on faithfully or break them one way
//! each, a resolver that never answers, replicas, and Firefox's
//! DNS-over-HTTPS canary, which amldns answers itself.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use amldns::doctor::report::{LAST_RUN_METRIC, RESULTS_METRIC, TEXTFILE_NAME};
use amldns::doctor::verdict::Verdict;
use amldns::doctor::{self, Finding, Report, Request, Table};

use crate::common::relay::Relay;
use crate::common::{
    Running, StandIn, TestConfig, a_record, output_within, start, udp_query, upstream_zone,
    workspace,
};

const CANARY: &str = "use-application-dns.net";
/// The name each broken relay breaks.
const BROKEN: &str = "api.corp.example";

/// Records beside the test workspace: an exact name, a wildcard, a CNAME
/// inside the table, and an AAAA-only name (skipped).
const RECORDS: &str = "[[record]]\nname = \"api.corp.example\"\na = [\"10.2.0.1\"]\n\
     [[record]]\nname = \"*.nb.corp.example\"\na = [\"10.2.0.2\"]\n\
     [[record]]\nname = \"alias.corp.example\"\ncname = \"api.corp.example\"\n\
     [[record]]\nname = \"v6.corp.example\"\naaaa = [\"fd00::1\"]\n";

/// The public DNS: [`upstream_zone`], which gives `eastus.api.azureml.ms` a
/// public address, and the canary an address, as a resolver that does not
/// know it does.
async fn public_dns() -> StandIn {
    StandIn::start(|q| {
        let qname = q.queries[0].name().to_ascii().to_lowercase();
        if qname.trim_end_matches('.') == CANARY {
            let mut r = crate::common::reply_to(q);
            r.answers.push(a_record(&qname, 60, "192.0.2.50"));
            return Some(r);
        }
        Some(upstream_zone(q))
    })
    .await
}

fn config(upstream: SocketAddr, server: &str) -> String {
    TestConfig {
        upstreams: &[upstream],
        server,
        metrics: true,
        rest: &format!("{}{RECORDS}", workspace("public", "")),
        ..TestConfig::default()
    }
    .text()
}

fn url(srv: &Running) -> String {
    format!("http://{}", srv.http())
}

fn qname(q: &Message) -> String {
    q.queries[0]
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_lowercase()
}

/// `reply`, its answers replaced by A records of the question's name.
fn answered(q: &Message, mut reply: Message, ips: &[&str]) -> Message {
    let owner = format!("{}.", qname(q));
    reply.answers = ips.iter().map(|ip| a_record(&owner, 60, ip)).collect();
    reply
}

/// `reply` with `rcode` and no records.
fn failed(mut reply: Message, rcode: ResponseCode) -> Message {
    reply.metadata.response_code = rcode;
    reply.answers.clear();
    reply.authorities.clear();
    reply
}

/// A relay that changes only `name`'s replies, with `change`.
async fn breaking(
    target: SocketAddr,
    name: &'static str,
    change: impl Fn(&Message, Message) -> Option<Message> + Send + Sync + 'static,
) -> Relay {
    Relay::start(target, move |_, q, reply| {
        if qname(q) == name {
            change(q, reply)
        } else {
            Some(reply)
        }
    })
    .await
}

async fn run(table: Table, via: &[SocketAddr], tcp: bool) -> Report {
    doctor::run(Request {
        table,
        via: via.to_vec(),
        tcp,
        repeat: 2,
        connect: None,
    })
    .await
    .expect("doctor runs")
}

fn verdicts(report: &Report, via: SocketAddr) -> Vec<&Finding> {
    let via = via.to_string();
    report.results.iter().filter(|f| f.via == via).collect()
}

/// The canary is NXDOMAIN from amldns itself, with no SOA, and never goes
/// upstream; with `doh_canary = false` it is forwarded like any name.
#[tokio::test]
async fn the_canary_is_answered_here_and_never_forwarded() {
    let upstream = public_dns().await;
    let srv = start(&config(upstream.addr, "allow = [\"127.0.0.1/32\"]")).await;
    for qtype in [RecordType::A, RecordType::AAAA] {
        let r = udp_query(srv.addr, CANARY, qtype).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain, "{qtype}");
        assert!(r.answers.is_empty() && r.authorities.is_empty(), "{r:?}");
    }
    assert!(
        !upstream.seen_names().iter().any(|n| n == CANARY),
        "{:?}",
        upstream.seen_names()
    );
    srv.stop().await;

    let off = start(&config(
        upstream.addr,
        "allow = [\"127.0.0.1/32\"]\ndoh_canary = false",
    ))
    .await;
    let r = udp_query(off.addr, CANARY, RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(upstream.seen_names().iter().any(|n| n == CANARY));
    off.stop().await;
}

/// Every verdict a resolver on the path can earn, each from a relay that
/// breaks one name one way; the faithful relay's names are all `ok` (the
/// AAAA-only one `skipped`), and no other name is touched by a broken one.
#[tokio::test]
async fn each_broken_resolver_gets_its_verdict() {
    let upstream = public_dns().await;
    let srv = start(&config(upstream.addr, "allow = [\"127.0.0.1/32\"]")).await;
    let to = srv.addr;
    let flips = Arc::new(AtomicUsize::new(0));
    let relays = vec![
        (Verdict::Ok, Relay::faithful(to).await),
        (
            Verdict::Public,
            breaking(to, BROKEN, |q, r| Some(answered(q, r, &["20.1.2.3"]))).await,
        ),
        (
            Verdict::Wrong,
            breaking(to, BROKEN, |q, r| Some(answered(q, r, &["10.99.0.1"]))).await,
        ),
        (
            Verdict::Flapping,
            breaking(to, BROKEN, move |q, r| {
                let public = flips.fetch_add(1, Ordering::SeqCst) % 2 == 1;
                Some(if public {
                    answered(q, r, &["20.1.2.3"])
                } else {
                    r
                })
            })
            .await,
        ),
        (
            Verdict::NxDomain,
            breaking(to, BROKEN, |_, r| Some(failed(r, ResponseCode::NXDomain))).await,
        ),
        (
            Verdict::ServFail,
            breaking(to, BROKEN, |_, r| Some(failed(r, ResponseCode::ServFail))).await,
        ),
        (
            Verdict::Refused,
            breaking(to, BROKEN, |_, r| Some(failed(r, ResponseCode::Refused))).await,
        ),
        (
            Verdict::NoData,
            breaking(to, BROKEN, |_, r| Some(failed(r, ResponseCode::NoError))).await,
        ),
        (Verdict::Timeout, breaking(to, BROKEN, |_, _| None).await),
    ];
    let via: Vec<SocketAddr> = relays.iter().map(|(_, r)| r.addr).collect();
    let report = run(Table::Servers(vec![url(&srv)]), &via, true).await;
    // The workspace's 8 names and the four records.
    assert_eq!(report.names, 12);
    for (want, relay) in &relays {
        let found = verdicts(&report, relay.addr);
        assert_eq!(found.len(), 12, "{want}: {found:#?}");
        for f in found {
            let expected = if f.name == "v6.corp.example" {
                Verdict::Skipped
            } else if f.name == BROKEN {
                *want
            } else {
                Verdict::Ok
            };
            assert_eq!(f.verdict, expected, "{want}: {f:#?}");
        }
    }
    let wildcard = format!("{}.nb.corp.example", doctor::expect::WILDCARD_LABEL);
    assert!(
        report
            .results
            .iter()
            .any(|f| f.name == wildcard && f.verdict == Verdict::Ok)
    );
    srv.stop().await;
}

/// A resolver that sends a public name under the table's parents to a
/// private address is `captured`; one that forwards the canary (amldns
/// with `doh_canary = false`) is `canary`. The faithful path is neither.
#[tokio::test]
async fn captured_public_names_and_a_forwarded_canary_are_reported() {
    let upstream = public_dns().await;
    let srv = start(&config(upstream.addr, "allow = [\"127.0.0.1/32\"]")).await;
    let faithful = Relay::faithful(srv.addr).await;
    let wide = breaking(srv.addr, "eastus.api.azureml.ms", |q, r| {
        Some(answered(q, r, &["10.1.0.5"]))
    })
    .await;
    let no_canary = start(&config(
        upstream.addr,
        "allow = [\"127.0.0.1/32\"]\ndoh_canary = false",
    ))
    .await;
    let via = [faithful.addr, wide.addr, no_canary.addr];
    let report = run(Table::Servers(vec![url(&srv)]), &via, false).await;
    let problems = |via: SocketAddr| -> Vec<(Verdict, String)> {
        verdicts(&report, via)
            .into_iter()
            .filter(|f| f.verdict.is_problem())
            .map(|f| (f.verdict, f.name.clone()))
            .collect()
    };
    assert_eq!(problems(faithful.addr), []);
    assert_eq!(
        problems(wide.addr),
        [(Verdict::Captured, "eastus.api.azureml.ms".to_string())]
    );
    assert_eq!(
        problems(no_canary.addr),
        [(Verdict::Canary, CANARY.to_string())]
    );
    srv.stop().await;
    no_canary.stop().await;
}

/// Two replicas with the same config agree; a third with one name changed
/// is reported with that name, and each one's config hash is shown.
#[tokio::test]
async fn replicas_that_differ_are_named_by_name() {
    let upstream = public_dns().await;
    let same = config(upstream.addr, "allow = [\"127.0.0.1/32\"]");
    let a = start(&same).await;
    let b = start(&same).await;
    let c = start(&same.replace("10.2.0.1", "10.2.0.9")).await;
    let report = run(
        Table::Servers(vec![url(&a), url(&b), url(&c)]),
        &[a.addr],
        false,
    )
    .await;
    let differ: Vec<&Finding> = report
        .results
        .iter()
        .filter(|f| f.verdict == Verdict::ReplicasDiffer)
        .collect();
    assert_eq!(differ.len(), 1, "{differ:#?}");
    assert_eq!(differ[0].name, BROKEN);
    assert_eq!(differ[0].via, format!("{} / {}", url(&a), url(&c)));
    assert_eq!(
        (&*differ[0].expected, &*differ[0].got),
        ("10.2.0.1", "10.2.0.9")
    );
    let hashes: Vec<&str> = report.replicas.iter().map(|r| r.sha256.as_str()).collect();
    assert_eq!(hashes.len(), 3);
    assert_eq!(hashes[0], hashes[1]);
    assert_ne!(hashes[0], hashes[2]);
    for s in [a, b, c] {
        s.stop().await;
    }
}

/// With `--connect PORT`, an `ok` name whose address takes no connection
/// on PORT is `unreachable`.
#[tokio::test]
async fn an_address_that_takes_no_connection_is_unreachable() {
    let upstream = public_dns().await;
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = open.local_addr().unwrap().port();
    let srv = start(
        &TestConfig {
            upstreams: &[upstream.addr],
            metrics: true,
            rest: "[[record]]\nname = \"open.corp.example\"\na = [\"127.0.0.1\"]\n\
                   [[record]]\nname = \"shut.corp.example\"\na = [\"127.0.0.2\"]\n",
            ..TestConfig::default()
        }
        .text(),
    )
    .await;
    let report = doctor::run(Request {
        table: Table::Servers(vec![url(&srv)]),
        via: vec![srv.addr],
        tcp: false,
        repeat: 1,
        connect: Some(port),
    })
    .await
    .unwrap();
    let got: Vec<(&str, Verdict)> = report
        .results
        .iter()
        .map(|f| (f.name.as_str(), f.verdict))
        .collect();
    assert_eq!(
        got,
        [
            ("open.corp.example", Verdict::Ok),
            ("shut.corp.example", Verdict::Unreachable)
        ]
    );
    srv.stop().await;
}

/// A thousand names through a resolver that never answers end within
/// seconds: questions run concurrently, and the resolver is given up on
/// after timeouts in a row instead of being asked every name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_names_through_a_dead_resolver_end_in_seconds() {
    let dead = StandIn::start(|_| None).await;
    let records: String = (0..1000)
        .map(|i| {
            format!(
                "[[record]]\nname = \"n{i}.corp.example\"\na = [\"10.3.{}.{}\"]\n",
                i / 250,
                i % 250
            )
        })
        .collect();
    let text = TestConfig {
        upstreams: &[dead.addr],
        rest: &records,
        ..TestConfig::default()
    }
    .text();
    let config = amldns::config::parse(std::path::Path::new("t.toml"), &text).unwrap();
    let rows = amldns::export::rows(&amldns::snapshot::table(&config).unwrap());
    let started = Instant::now();
    let report = doctor::run(Request {
        table: Table::Rows(rows),
        via: vec![dead.addr],
        tcp: false,
        repeat: 3,
        connect: None,
    })
    .await
    .unwrap();
    let took = started.elapsed();
    eprintln!("1,000 names x 3 through a dead resolver: {took:?}");
    assert_eq!(report.names, 1000);
    let timeouts = report
        .results
        .iter()
        .filter(|f| f.verdict == Verdict::Timeout)
        .count();
    assert_eq!(timeouts, 1000);
    let canary: Vec<&Finding> = report
        .results
        .iter()
        .filter(|f| f.verdict == Verdict::Canary)
        .collect();
    assert_eq!((canary.len(), &*canary[0].got), (1, "timeout"));
    // Given up on: far fewer questions than the 3,003 tries.
    let asked = dead.seen_all().len();
    assert!(asked <= 2 * doctor::ask::IN_FLIGHT, "{asked} questions");
    assert!(took < Duration::from_secs(60), "{took:?}");
}

fn amldns(args: &[&str]) -> Output {
    output_within(
        Command::new(env!("CARGO_BIN_EXE_amldns"))
            .args(args)
            .env_remove("AMLDNS_CONFIG")
            .env_remove("AMLDNS_SERVER"),
    )
}

async fn amldns_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        amldns(&args)
    })
    .await
    .unwrap()
}

/// The command: a table of problems and a summary, or JSON; the textfile;
/// exit 0 when all is ok, 1 on a problem, 2 when it cannot run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_prints_writes_metrics_and_exits_by_outcome() {
    let upstream = public_dns().await;
    let srv = start(&config(upstream.addr, "allow = [\"127.0.0.1/32\"]")).await;
    let faithful = Relay::faithful(srv.addr).await;
    let public = breaking(srv.addr, BROKEN, |q, r| Some(answered(q, r, &["20.1.2.3"]))).await;
    let dir = tempfile::tempdir().unwrap();
    let server = url(&srv);
    let args = |via: SocketAddr, more: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["doctor", "--server", &server, "--via", &via.to_string()]
            .map(String::from)
            .to_vec();
        a.extend(more.iter().map(|s| s.to_string()));
        a
    };

    let o = amldns_async(args(faithful.addr, &["--tcp"])).await;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.ends_with("12 names via 1 resolver: 11 ok, 1 skipped\n"),
        "{out}"
    );

    let textfile = dir.path().to_str().unwrap();
    let o = amldns_async(args(public.addr, &["--textfile", textfile])).await;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("public "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains(BROKEN) && line.contains("10.2.0.1") && line.contains("20.1.2.3"),
        "{out}"
    );
    let prom = std::fs::read_to_string(dir.path().join(TEXTFILE_NAME)).unwrap();
    let via = public.addr;
    assert!(
        prom.contains(&format!(
            "{RESULTS_METRIC}{{via=\"{via}\",verdict=\"public\"}} 1"
        )),
        "{prom}"
    );
    assert!(
        prom.contains(&format!(
            "{RESULTS_METRIC}{{via=\"{via}\",verdict=\"ok\"}} 10"
        )),
        "{prom}"
    );
    assert!(prom.contains(&format!("{LAST_RUN_METRIC} ")), "{prom}");
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "no temporary file is left");

    let o = amldns_async(args(public.addr, &["--format", "json"])).await;
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 12);
    let broken = results.iter().find(|r| r["name"] == BROKEN).unwrap();
    assert_eq!(broken["verdict"], "public");
    assert_eq!(broken["expected"], "10.2.0.1");
    assert_eq!(broken["got"], "20.1.2.3");
    assert_eq!(broken["via"], via.to_string());

    // The table a config compiles to, instead of a server's.
    let o = amldns_async(vec![
        "doctor".into(),
        "--config".into(),
        srv.config_path.to_str().unwrap().into(),
        "--via".into(),
        faithful.addr.to_string(),
    ])
    .await;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert_eq!(out, "12 names via 1 resolver: 11 ok, 1 skipped\n");

    // No server to take the table from: it cannot run.
    let o = amldns_async(vec![
        "doctor".into(),
        "--server".into(),
        "http://127.0.0.1:1".into(),
        "--via".into(),
        faithful.addr.to_string(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot reach"));
    srv.stop().await;
}
