//! What each origin of local names gives, seen through real sockets: the
//! TTL every origin's names are served with (workspaces, `[[record]]`s with
//! and without their own `ttl`, `[[import]]` files, Azure discovery, and a
//! name a `[[record]]` gives again), over UDP (the fast path) and TCP (the
//! general one); and a reload whose `[[import]]`s now give no name at all,
//! refused however it is asked for, the old table answering on.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use amldns::metrics::{AZURE_SYNC_TOTAL, RELOADS_TOTAL, TABLE_GENERATION};
use amldns::reload::WatchMode;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use tokio::net::TcpStream;

use crate::common::arm::{ArmStandIn, Ws};
use crate::common::*;

/// How long a reload or a discovery round may take on a busy machine
/// before the test gives up: a ceiling, not a measure.
const CEILING: Duration = Duration::from_secs(30);

/// Polls `check` every 50 ms until it holds, for at most [`CEILING`].
async fn until<F: Future<Output = bool>>(mut check: impl FnMut() -> F) -> bool {
    let end = Instant::now() + CEILING;
    while Instant::now() < end {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

// ---- the TTL of every origin ------------------------------------------------

/// Not the default (60), so that a name served with the default, or with
/// any constant, is told apart.
const ZONE_TTL: u32 = 120;
/// A `[[record]]`'s own `ttl`, unlike both.
const OWN_TTL: u32 = 33;

const DISCOVERED: &str = "7c1d2e3f-8888-4999-8aaa-0bbbbbbbbbbb";
const OVERRIDDEN: &str = "8d2e3f4a-9999-4aaa-9bbb-1ccccccccccc";

/// A discovered workspace with its own storage account behind an endpoint.
fn discovered(name: &str, id: &str, storage_ip: &'static str) -> Ws {
    let mut w = Ws::new(name, id, "westus2");
    w.ips = ["10.3.0.5", "10.3.0.6", "10.3.0.7"];
    if id == OVERRIDDEN {
        w.ips = ["10.4.0.5", "10.4.0.6", "10.4.0.7"];
    }
    w.storage_ip = Some(storage_ip);
    w
}

/// `az network private-endpoint show` output, as an `[[import]]` reads it.
fn endpoint_json(names: &[(&str, &str)]) -> String {
    let configs: Vec<String> = names
        .iter()
        .map(|(n, ip)| format!("{{\"fqdn\": \"{n}\", \"ipAddresses\": [\"{ip}\"]}}"))
        .collect();
    format!(
        "{{\"name\": \"pe-test\", \"type\": \"Microsoft.Network/privateEndpoints\", \
         \"properties\": {{\"customDnsConfigs\": [{}]}}}}",
        configs.join(", ")
    )
}

/// One name to ask and what its answer must carry: every CNAME record
/// `cname_ttl`, every A record `a_ttl`, and these addresses.
struct Expect {
    name: String,
    origin: &'static str,
    cname_ttl: u32,
    a_ttl: u32,
    addrs: Vec<&'static str>,
}

fn expect(name: &str, origin: &'static str, ttl: u32, addrs: &[&'static str]) -> Expect {
    Expect {
        name: name.into(),
        origin,
        cname_ttl: ttl,
        a_ttl: ttl,
        addrs: addrs.to_vec(),
    }
}

/// Asserts that `reply` is the local answer `e` describes, TTLs included.
fn check_reply(reply: &Message, e: &Expect, how: &str) {
    let at = format!("{} ({}) over {how}", e.name, e.origin);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError, "{at}");
    assert!(reply.metadata.authoritative, "{at}: a local answer is AA");
    assert_eq!(addrs(reply), e.addrs, "{at}: {reply:?}");
    for r in &reply.answers {
        let want = match &r.data {
            RData::CNAME(_) => e.cname_ttl,
            _ => e.a_ttl,
        };
        assert_eq!(
            r.ttl,
            want,
            "{at}: {} {} served with TTL {}, not {want}",
            r.name,
            r.record_type(),
            r.ttl
        );
    }
}

/// Asks for every name of `expected` over UDP (EDNS and plain) and over one
/// TCP connection, checking each answer's TTLs.
async fn check_all(server: SocketAddr, expected: &[Expect]) {
    let mut tcp = TcpStream::connect(server).await.unwrap();
    for e in expected {
        check_reply(&udp_query(server, &e.name, RecordType::A).await, e, "UDP");
        let plain = query_msg(&e.name, RecordType::A, None);
        check_reply(&udp_exchange(server, &plain).await, e, "UDP without EDNS");
        let q = query_msg(&e.name, RecordType::A, Some(1232));
        check_reply(&tcp_exchange(&mut tcp, &q).await, e, "TCP");
    }
}

/// Every origin of local names, each served with the TTL it should have,
/// under `answer = mode`.
async fn every_origin_keeps_its_ttl(mode: &str) {
    let up = StandIn::zone().await;
    let arm = ArmStandIn::start().await;
    let disc = discovered("mlw-disc", DISCOVERED, "10.3.0.20");
    let over = discovered("mlw-over", OVERRIDDEN, "10.4.0.20");
    arm.with(|w| {
        w.put(&disc);
        w.put(&over);
    });
    let imported = "imported.privatelink.blob.core.windows.net";
    let both = "both.privatelink.vaultcore.azure.net";
    let plain = "plain.privatelink.blob.core.windows.net";
    let own = "own.privatelink.blob.core.windows.net";
    let alias = "alias.corp.example";
    let rest = format!(
        "[zone]\nttl = {ZONE_TTL}\nanswer = \"{mode}\"\n{ws}\
         [[record]]\nname = \"{plain}\"\na = [\"10.9.0.1\"]\n\
         [[record]]\nname = \"{own}\"\na = [\"10.9.0.2\"]\nttl = {OWN_TTL}\n\
         [[record]]\nname = \"{alias}\"\ncname = \"{imported}\"\nttl = {OWN_TTL}\n\
         [[record]]\nname = \"{both}\"\na = [\"10.9.0.4\"]\nttl = {OWN_TTL}\n\
         [[record]]\nname = \"{storage}\"\na = [\"10.4.0.20\"]\nttl = {OWN_TTL}\n\
         [[import]]\npath = \"pe/*.json\"\n{azure}",
        ws = workspace("public", ""),
        storage = over.storage_name(),
        azure = arm.section("interval_s = 3600"),
    );
    let text = TestConfig {
        upstreams: &[up.addr],
        metrics: true,
        rest: &rest,
        ..TestConfig::default()
    }
    .text();
    let files = [(
        "pe/endpoint.json",
        endpoint_json(&[(imported, "10.9.0.3"), (both, "10.9.0.4")]),
    )];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let srv = start_with(&text, &files, WatchMode::Off).await;
    assert!(
        until(|| async {
            metric(
                &scrape(&srv).await,
                AZURE_SYNC_TOTAL,
                &[("result", "success")],
            ) >= 1.0
        })
        .await,
        "a discovery round succeeds"
    );
    let file_ws = format!("{GUID}.workspace.eastus.api.azureml.ms");
    let file_nb = fixtures::NAME;
    let file_nb = format!(
        "{}.eastus.notebooks.azure.net",
        amldns::names::notebook_label(file_nb, "eastus", GUID)
    );
    let expected = [
        expect(&file_ws, "[[workspace]]", ZONE_TTL, &["10.1.0.5"]),
        expect(&file_nb, "[[workspace]] notebooks", ZONE_TTL, &["10.1.0.6"]),
        expect(plain, "[[record]] without ttl", ZONE_TTL, &["10.9.0.1"]),
        expect(own, "[[record]] with its own ttl", OWN_TTL, &["10.9.0.2"]),
        // A record's CNAME keeps its own TTL; the imported name it leads
        // to, the zone's.
        Expect {
            cname_ttl: OWN_TTL,
            ..expect(
                alias,
                "[[record]] CNAME into an import",
                ZONE_TTL,
                &["10.9.0.3"],
            )
        },
        expect(imported, "[[import]]", ZONE_TTL, &["10.9.0.3"]),
        expect(
            both,
            "[[record]] over an [[import]]",
            OWN_TTL,
            &["10.9.0.4"],
        ),
        expect(
            &disc.api_name(),
            "discovered workspace",
            ZONE_TTL,
            &["10.3.0.5"],
        ),
        expect(
            &disc.notebooks_name(),
            "discovered notebooks",
            ZONE_TTL,
            &["10.3.0.6"],
        ),
        expect(
            &disc.storage_name(),
            "discovered storage",
            ZONE_TTL,
            &["10.3.0.20"],
        ),
        expect(
            &over.storage_name(),
            "[[record]] over a discovered name",
            OWN_TTL,
            &["10.4.0.20"],
        ),
    ];
    check_all(srv.addr, &expected).await;

    // NODATA under a private-link zone: the SOA is amldns's own, its TTL
    // and minimum the zone's TTL (RFC 2308 §4), whichever origin the name has.
    for name in [plain, own, imported] {
        let r = udp_query(srv.addr, name, RecordType::AAAA).await;
        assert!(r.answers.is_empty(), "{name}: NODATA");
        let soa = r.authorities.first().expect("an SOA");
        let RData::SOA(data) = &soa.data else {
            panic!("{name}: {soa:?} is no SOA")
        };
        assert_eq!((soa.ttl, data.minimum), (ZONE_TTL, ZONE_TTL), "{name}");
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_origin_keeps_its_ttl_answering_a() {
    every_origin_keeps_its_ttl("a").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_origin_keeps_its_ttl_answering_cname() {
    every_origin_keeps_its_ttl("cname").await;
}

// ---- imports that give nothing --------------------------------------------------

const IMPORTED_A: &str = "a.privatelink.blob.core.windows.net";
const IMPORTED_C: &str = "c.privatelink.blob.core.windows.net";
const NOTHING_LOCAL: &str = "gives nothing to answer locally";

fn names_json(name: &str, ip: &str) -> String {
    format!("[{{\"fqdn\": \"{name}\", \"ipAddresses\": [\"{ip}\"]}}]")
}

/// A config whose only local names come from `imports` (its `[[import]]`
/// sections, written as is).
fn imports_only(upstream: SocketAddr, server: &str, imports: &str) -> String {
    TestConfig {
        upstreams: &[upstream],
        server,
        metrics: true,
        rest: imports,
        ..TestConfig::default()
    }
    .text()
}

fn glob_import(dir: &Path) -> String {
    format!("[[import]]\npath = \"{}/pe/*.json\"\n", dir.display())
}

/// Both imports: the glob above, and another folder's.
fn two_imports(dir: &Path) -> String {
    format!(
        "{}[[import]]\npath = \"{}/more/*.json\"\n",
        glob_import(dir),
        dir.display()
    )
}

async fn a(server: SocketAddr, name: &str) -> Vec<String> {
    addrs(&udp_query(server, name, RecordType::A).await)
}

/// (successful, failed) reloads so far; the first load counts as a success.
async fn reloads(srv: &Running) -> (f64, f64) {
    let m = scrape(srv).await;
    (
        metric(&m, RELOADS_TOTAL, &[("result", "success")]),
        metric(&m, RELOADS_TOTAL, &[("result", "failure")]),
    )
}

/// Waits until `n` reloads have ended, either way; then (successful, failed).
async fn reloads_ended(srv: &Running, n: f64) -> (f64, f64) {
    assert!(
        until(|| async {
            let (ok, failed) = reloads(srv).await;
            ok + failed >= n
        })
        .await,
        "{n} reloads did not end within {CEILING:?}"
    );
    reloads(srv).await
}

async fn generation(srv: &Running) -> f64 {
    metric(&scrape(srv).await, TABLE_GENERATION, &[])
}

/// `/healthz` names the refusal.
async fn refusal_shown(srv: &Running) {
    let (status, body) = http_request(srv.http(), "GET", "/healthz").await;
    assert_eq!(status, 200, "degraded, not down");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "degraded", "{body}");
    let why = v["problems"]["reload"].as_str().unwrap_or_default();
    assert!(why.contains(NOTHING_LOCAL), "{body}");
}

/// The file watcher: a glob that stops matching, a file that empties, two
/// imports that both give nothing; each refused, the old table answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_that_match_nothing_are_refused_on_a_file_change() {
    let up = StandIn::zone().await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    std::fs::create_dir_all(dir.join("pe")).unwrap();
    std::fs::write(dir.join("pe/a.json"), names_json(IMPORTED_A, "10.9.1.1")).unwrap();
    let server = TestConfig::default().server;
    let srv = start_with(
        &imports_only(up.addr, server, &glob_import(dir)),
        &[],
        WatchMode::Notify,
    )
    .await;
    // The watched folder is the config's; the imports live beside it in
    // `data`, watched as import folders.
    assert_eq!(a(srv.addr, IMPORTED_A).await, ["10.9.1.1"]);
    assert_eq!(reloads(&srv).await, (1.0, 0.0));

    // The glob matches no file any more.
    std::fs::remove_file(dir.join("pe/a.json")).unwrap();
    assert_eq!(reloads_ended(&srv, 2.0).await, (1.0, 1.0), "refused");
    refusal_shown(&srv).await;
    assert_eq!(a(srv.addr, IMPORTED_A).await, ["10.9.1.1"], "old table");
    assert_eq!(generation(&srv).await, 1.0);

    // Back, with a new address: applied.
    std::fs::write(dir.join("pe/a.json"), names_json(IMPORTED_A, "10.9.1.2")).unwrap();
    assert_eq!(reloads_ended(&srv, 3.0).await, (2.0, 1.0));
    assert_eq!(a(srv.addr, IMPORTED_A).await, ["10.9.1.2"]);

    // The file is still there, and lists no name.
    std::fs::write(dir.join("pe/a.json"), "[]").unwrap();
    assert_eq!(reloads_ended(&srv, 4.0).await, (2.0, 2.0), "refused");
    refusal_shown(&srv).await;
    assert_eq!(a(srv.addr, IMPORTED_A).await, ["10.9.1.2"], "old table");

    // Two imports, one file that lists no name and one glob that then
    // matches nothing: sections, but no name.
    std::fs::create_dir_all(dir.join("more")).unwrap();
    std::fs::write(dir.join("more/c.json"), names_json(IMPORTED_C, "10.9.1.3")).unwrap();
    std::fs::write(
        &srv.config_path,
        imports_only(up.addr, server, &two_imports(dir)),
    )
    .unwrap();
    assert!(
        until(|| async { a(srv.addr, IMPORTED_C).await == ["10.9.1.3"] }).await,
        "the second import is served"
    );
    let (ok, failed) = reloads(&srv).await;
    std::fs::remove_file(dir.join("more/c.json")).unwrap();
    assert_eq!(
        reloads_ended(&srv, ok + failed + 1.0).await,
        (ok, failed + 1.0),
        "refused"
    );
    refusal_shown(&srv).await;
    assert_eq!(a(srv.addr, IMPORTED_C).await, ["10.9.1.3"], "old table");
    srv.stop().await;
}

/// `POST /reload`: 422, naming the reason, the old table answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_that_match_nothing_are_refused_by_post_reload() {
    let up = StandIn::zone().await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    std::fs::create_dir_all(dir.join("pe")).unwrap();
    std::fs::write(dir.join("pe/a.json"), names_json(IMPORTED_A, "10.9.1.1")).unwrap();
    let server = TestConfig::default().server;
    let srv = start(&imports_only(up.addr, server, &glob_import(dir))).await;
    let refused = |why: &'static str| {
        let srv = &srv;
        async move {
            let (status, body) = http_request(srv.http(), "POST", "/reload").await;
            assert_eq!(status, 422, "{why}: {body}");
            assert!(body.contains(NOTHING_LOCAL), "{why}: {body}");
            refusal_shown(srv).await;
        }
    };

    std::fs::remove_file(dir.join("pe/a.json")).unwrap();
    refused("the glob matches no file").await;
    assert_eq!(a(srv.addr, IMPORTED_A).await, ["10.9.1.1"], "old table");

    std::fs::write(dir.join("pe/a.json"), "[]").unwrap();
    refused("the file lists no name").await;
    assert_eq!(a(srv.addr, IMPORTED_A).await, ["10.9.1.1"], "old table");
    assert_eq!(generation(&srv).await, 1.0);

    std::fs::create_dir_all(dir.join("more")).unwrap();
    std::fs::write(dir.join("more/c.json"), names_json(IMPORTED_C, "10.9.1.3")).unwrap();
    std::fs::write(
        &srv.config_path,
        imports_only(up.addr, server, &two_imports(dir)),
    )
    .unwrap();
    let (status, body) = http_request(srv.http(), "POST", "/reload").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(a(srv.addr, IMPORTED_C).await, ["10.9.1.3"]);

    std::fs::remove_file(dir.join("more/c.json")).unwrap();
    refused("neither of two imports matches a file").await;
    assert_eq!(a(srv.addr, IMPORTED_C).await, ["10.9.1.3"], "old table");
    assert_eq!(generation(&srv).await, 2.0);
    srv.stop().await;
}

/// Lines of `p`'s log that end a reload, either way.
fn reload_lines(p: &Process) -> Vec<String> {
    p.lines()
        .into_iter()
        .filter(|l| l.contains("\"reloaded\"") || l.contains("reload failed"))
        .collect()
}

/// Sends SIGHUP and waits for the reload it causes to end: its log line.
fn hup(p: &Process) -> String {
    let before = reload_lines(p).len();
    p.signal("HUP");
    let t = Instant::now();
    loop {
        if let Some(line) = reload_lines(p).get(before) {
            return line.clone();
        }
        assert!(t.elapsed() < CEILING, "no reload ended: {:#?}", p.lines());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGHUP to `amldns serve`: the refusal is logged as an error, the old
/// table answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_that_match_nothing_are_refused_on_sighup() {
    let up = StandIn::zone().await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    std::fs::create_dir_all(dir.join("pe")).unwrap();
    std::fs::write(dir.join("pe/a.json"), names_json(IMPORTED_A, "10.9.1.1")).unwrap();
    let server = "listen = [\"127.0.0.1:0\"]\nallow = [\"127.0.0.1/32\"]";
    let p = Process::start(
        &imports_only(up.addr, server, &glob_import(dir)),
        "json",
        None,
    );
    assert_eq!(a(p.addr, IMPORTED_A).await, ["10.9.1.1"]);
    let refused = |line: &str, why: &str| {
        assert!(line.contains("reload failed"), "{why}: {line}");
        assert!(line.contains(NOTHING_LOCAL), "{why}: {line}");
    };

    std::fs::remove_file(dir.join("pe/a.json")).unwrap();
    refused(&hup(&p), "the glob matches no file");
    assert_eq!(a(p.addr, IMPORTED_A).await, ["10.9.1.1"], "old table");

    std::fs::write(dir.join("pe/a.json"), "[]").unwrap();
    refused(&hup(&p), "the file lists no name");
    assert_eq!(a(p.addr, IMPORTED_A).await, ["10.9.1.1"], "old table");

    std::fs::create_dir_all(dir.join("more")).unwrap();
    std::fs::write(dir.join("more/c.json"), names_json(IMPORTED_C, "10.9.1.3")).unwrap();
    let config = std::fs::read_to_string(&p.config)
        .unwrap()
        .replace(&glob_import(dir), &two_imports(dir));
    std::fs::write(&p.config, config).unwrap();
    let line = hup(&p);
    assert!(line.contains("\"reloaded\""), "{line}");
    assert_eq!(a(p.addr, IMPORTED_C).await, ["10.9.1.3"]);

    std::fs::remove_file(dir.join("more/c.json")).unwrap();
    refused(&hup(&p), "neither of two imports matches a file");
    assert_eq!(a(p.addr, IMPORTED_C).await, ["10.9.1.3"], "old table");
}
