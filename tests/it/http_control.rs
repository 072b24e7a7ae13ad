//! Asking the running server: `GET /records`, `/status`,
//! `/explain`, `POST /cache/flush` on the metrics listener, and the commands
//! over them (`amldns status|records|flush|explain --server URL`), run as a
//! user would against a server started in-process on loopback; and what a
//! reload leaves behind: `amldns_config_info{sha256}`, its change summary,
//! `degraded` while it fails. Plus `amldns check --format json`.
//!
//! Also health and readiness routes, the HTTP connection bound, and reload
//! refused outside `control_allow`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use amldns::metrics::*;
use hickory_proto::rr::RecordType;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::common::*;
use crate::setup::*;

const ST: &str = "st.privatelink.blob.core.windows.net";
const CI: &str = "ci-7.eastus.instances.azureml.ms";

/// A workspace with an instances wildcard, a record, and the metrics
/// listener, forwarding to `up`.
fn config(up: std::net::SocketAddr, st_ip: &str) -> String {
    let rest = format!(
        "{}[[record]]\nname = \"{ST}\"\na = [\"{st_ip}\"]\n",
        workspace("public", "instances_wildcard = true")
    );
    TestConfig {
        upstreams: &[up],
        metrics: true,
        rest: &rest,
        ..TestConfig::default()
    }
    .text()
}

/// Runs the `amldns` binary (off the async runtime: it blocks).
async fn amldns(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(ToString::to_string).collect();
    tokio::task::spawn_blocking(move || {
        output_within(
            Command::new(env!("CARGO_BIN_EXE_amldns"))
                .args(&args)
                .env_remove("AMLDNS_CONFIG")
                .env_remove("AMLDNS_SERVER"),
        )
    })
    .await
    .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn url(srv: &Running) -> String {
    format!("http://{}", srv.http())
}

async fn get_json(srv: &Running, path: &str) -> (u16, Value) {
    let (status, body) = http_request(srv.http(), "GET", path).await;
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, v)
}

fn row<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {rows:#}"))
}

/// `GET /records` is the table being served, not the file: with the file
/// broken, it still shows what answers, each name with where it came from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_the_served_table_with_their_sources() {
    let up = StandIn::zone().await;
    let srv = start(&config(up.addr, "10.1.0.9")).await;
    let file = srv.config_path.display().to_string();

    let (status, rows) = get_json(&srv, "/records").await;
    assert_eq!(status, 200);
    let st = row(&rows, ST);
    assert_eq!(st["a"], serde_json::json!(["10.1.0.9"]));
    assert_eq!(st["ttl"], 60);
    assert_eq!(st["source"], "record");
    let at = st["at"].as_str().unwrap();
    assert!(at.starts_with(&format!("{file}:")), "{at}");
    let wild = row(&rows, "*.eastus.instances.azureml.ms");
    assert!(wild["source"].as_str().unwrap().starts_with("workspace "));

    // One name: its own row, or the wildcard's that answers it.
    let (status, one) = get_json(&srv, &format!("/records?name={}", CI.to_uppercase())).await;
    assert_eq!(status, 200);
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["name"], "*.eastus.instances.azureml.ms");
    let (status, none) = get_json(&srv, "/records?name=www.example.com").await;
    assert_eq!(status, 404);
    assert!(none["error"].as_str().unwrap().contains("forwarded"));

    // The file breaks: the reload fails, and /records still tells what is served.
    srv.write("amldns.toml", "[[record]]\nname = \"x\"\n");
    assert_eq!(http_request(srv.http(), "POST", "/reload").await.0, 422);
    let (_, after) = get_json(&srv, "/records").await;
    assert_eq!(after, rows);
    srv.stop().await;
}

/// `amldns records --server` prints what `records --config` prints of the
/// same file, in both forms it offers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_from_the_server_print_as_from_the_file() {
    let up = StandIn::zone().await;
    let srv = start(&config(up.addr, "10.1.0.9")).await;
    let file = srv.config_path.display().to_string();
    for format in ["table", "json"] {
        let served = amldns(&["records", "--server", &url(&srv), "--format", format]).await;
        let read = amldns(&["records", "--config", &file, "--format", format]).await;
        assert!(served.status.success(), "{served:?}");
        assert_eq!(stdout(&served), stdout(&read), "{format}");
    }
    let table = stdout(&amldns(&["records", "--server", &url(&srv)]).await);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(ST) && l.contains("10.1.0.9")),
        "{table}"
    );
    // Zone files need the whole table: from the file only.
    let zone = amldns(&["records", "--server", &url(&srv), "--format", "zone"]).await;
    assert_eq!(zone.status.code(), Some(1));
    srv.stop().await;
}

/// `GET /status`: table, last reload and what it changed, upstreams with
/// health and latency, cache size and hit rate, problems; and `amldns status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_tells_table_reloads_upstreams_and_cache() {
    let up = StandIn::zone().await;
    let text = config(up.addr, "10.1.0.9");
    let srv = start(&text).await;
    let (status, s) = get_json(&srv, "/status").await;
    assert_eq!(status, 200);
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["generation"], 1);
    assert_eq!(s["health"], "ok");
    assert_eq!(s["last_reload"], Value::Null);
    assert_eq!(s["cache"]["hit_rate"], Value::Null);
    assert_eq!(s["upstreams"][0]["addr"], up.addr.to_string());
    assert_eq!(series_count(&scrape(&srv).await, "amldns_degraded"), 0);

    // A miss, then a hit.
    for _ in 0..2 {
        let r = udp_query(srv.addr, "www.example.com", RecordType::A).await;
        assert_eq!(addrs(&r), ["192.0.2.10"]);
    }
    // A reload that changes one answer and adds a name.
    let more = format!(
        "{text}[[record]]\nname = \"kv.privatelink.vaultcore.azure.net\"\na = [\"10.1.0.8\"]\n"
    );
    srv.write("amldns.toml", &more.replace("10.1.0.9", "10.1.0.10"));
    assert_eq!(http_request(srv.http(), "POST", "/reload").await.0, 200);

    let (_, s) = get_json(&srv, "/status").await;
    assert_eq!(s["generation"], 2);
    assert_eq!(s["cache"]["hits"], 1);
    assert_eq!(s["cache"]["misses"], 1);
    assert_eq!(s["cache"]["hit_rate"], 0.5);
    assert_eq!(s["cache"]["entries"], 1);
    let u = &s["upstreams"][0];
    assert_eq!(u["healthy"], true);
    assert_eq!(u["requests"], 1);
    assert!(u["mean_latency_ms"].as_f64().unwrap() > 0.0, "{u}");
    let r = &s["last_reload"];
    assert_eq!(r["trigger"], "POST /reload");
    assert_eq!(r["error"], Value::Null);
    assert_eq!(r["changes"]["added"]["count"], 1);
    assert_eq!(
        r["changes"]["added"]["first"][0],
        "kv.privatelink.vaultcore.azure.net"
    );
    assert_eq!(r["changes"]["changed"]["first"], serde_json::json!([ST]));
    assert_eq!(r["changes"]["removed"]["count"], 0);

    let o = amldns(&["status", "--server", &url(&srv)]).await;
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    for want in [
        format!("amldns {}: ok", env!("CARGO_PKG_VERSION")),
        "table:       generation 2".into(),
        format!(
            "ok, generation 2: added 1 (kv.privatelink.vaultcore.azure.net), removed 0, changed 1 ({ST})"
        ),
        format!(
            "upstream:    {} healthy, 1 request, 0 errors, mean",
            up.addr
        ),
        "1 hit, 1 miss, hit rate 50.0%".into(),
    ] {
        assert!(out.contains(&want), "{want:?} in\n{out}");
    }

    // A failing reload: degraded, here and on /healthz, with the reason.
    srv.write("amldns.toml", &format!("{more}bad = 1\n"));
    assert_eq!(http_request(srv.http(), "POST", "/reload").await.0, 422);
    let (_, s) = get_json(&srv, "/status").await;
    assert_eq!(s["health"], "degraded");
    assert_eq!(s["problems"][0]["source"], "reload");
    assert!(s["last_reload"]["error"].as_str().unwrap().contains("bad"));
    assert_eq!(s["generation"], 2);
    let (_, h) = get_json(&srv, "/healthz").await;
    assert_eq!(h["status"], "degraded");
    let m = scrape(&srv).await;
    assert_eq!(metric(&m, "amldns_degraded", &[("source", "reload")]), 1.0);
    assert!(
        h["reason"]
            .as_str()
            .unwrap()
            .contains("the last reload failed")
    );
    let out = stdout(&amldns(&["status", "--server", &url(&srv), "--format", "json"]).await);
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["health"], "degraded");
    srv.stop().await;
}

/// `POST /cache/flush` forgets one name (every type) or everything, so the
/// next question goes upstream; only from `[metrics] control_allow`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_sends_the_next_question_upstream() {
    let up = StandIn::zone().await;
    let srv = start(&config(up.addr, "10.1.0.9")).await;
    let asked = |name: &str| up.seen_names().iter().filter(|n| *n == name).count();
    udp_query(srv.addr, "www.example.com", RecordType::A).await;
    udp_query(srv.addr, "www.example.com", RecordType::AAAA).await;
    udp_query(srv.addr, "eastus.api.azureml.ms", RecordType::A).await;
    udp_query(srv.addr, "www.example.com", RecordType::A).await;
    assert_eq!(asked("www.example.com"), 2, "cached");

    let (status, body) =
        http_request(srv.http(), "POST", "/cache/flush?name=WWW.example.com.").await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["flushed"], 2, "A and AAAA: {v}");
    udp_query(srv.addr, "www.example.com", RecordType::A).await;
    assert_eq!(asked("www.example.com"), 3, "asked again after the flush");
    udp_query(srv.addr, "eastus.api.azureml.ms", RecordType::A).await;
    assert_eq!(asked("eastus.api.azureml.ms"), 1, "other names stay cached");

    let o = amldns(&["flush", "--server", &url(&srv)]).await;
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        stdout(&o),
        "flushed the whole cache: 2 cached answers dropped\n"
    );
    udp_query(srv.addr, "eastus.api.azureml.ms", RecordType::A).await;
    assert_eq!(asked("eastus.api.azureml.ms"), 2);
    let o = amldns(&["flush", "--server", &url(&srv), "--name", "www.example.com"]).await;
    assert!(stdout(&o).starts_with("flushed every type of www.example.com: 0 cached answers"));
    assert_eq!(http_request(srv.http(), "GET", "/cache/flush").await.0, 405);
    srv.stop().await;

    // Outside control_allow: 403, and the cache is kept.
    let metrics = "[metrics]\nlisten = \"127.0.0.1:0\"\n";
    let text = config(up.addr, "10.1.0.9").replace(
        metrics,
        &format!("{metrics}control_allow = [\"10.0.0.0/8\"]\n"),
    );
    let srv = start(&text).await;
    udp_query(srv.addr, "www.example.com", RecordType::A).await;
    let seen = asked("www.example.com");
    let (status, body) = http_request(srv.http(), "POST", "/cache/flush").await;
    assert_eq!(status, 403, "{body}");
    let o = amldns(&["flush", "--server", &url(&srv)]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("403"), "{o:?}");
    udp_query(srv.addr, "www.example.com", RecordType::A).await;
    assert_eq!(asked("www.example.com"), seen, "still cached");
    srv.stop().await;
}

/// `amldns explain` says the same from the running table as from the file,
/// for a wildcard match, a forwarded name and a refused client; and the
/// served table wins when the file changed without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_from_the_server_and_from_the_file() {
    let up = StandIn::zone().await;
    let text = config(up.addr, "10.1.0.9");
    let srv = start(&text).await;
    let file = srv.config_path.display().to_string();
    let cases: [(&[&str], &str); 4] = [
        (&[CI], "A: local"),
        (&[ST, "--type", "AAAA"], "AAAA: local"),
        (&["www.example.com", "--type", "txt"], "TXT: forwarded"),
        (&[ST, "--from", "192.0.2.1"], "A: refused"),
    ];
    for (args, verdict) in cases {
        let mut served = vec!["explain", "--server"];
        let u = url(&srv);
        served.push(&u);
        served.extend(args);
        let mut read = vec!["explain", "--config", &file];
        read.extend(args);
        let (served, read) = (amldns(&served).await, amldns(&read).await);
        assert!(served.status.success(), "{served:?}");
        // Only the server knows its cache.
        let without_cache: String = stdout(&served)
            .lines()
            .filter(|l| !l.starts_with("cache: "))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(without_cache, stdout(&read), "{args:?}");
        assert!(stdout(&served).contains(verdict), "{}", stdout(&served));
    }
    let wild = stdout(&amldns(&["explain", CI, "--server", &url(&srv)]).await);
    assert!(
        wild.contains(&format!(
            "{CI}: wildcard *.eastus.instances.azureml.ms, workspace "
        )),
        "{wild}"
    );
    assert!(wild.contains(&format!("{CI} 60 A 10.1.0.5")), "{wild}");

    // What the cache holds for a forwarded name, from the server only.
    let www = ["explain", "www.example.com", "--server", &url(&srv)];
    let uncached = stdout(&amldns(&www).await);
    assert!(
        uncached.contains("\ncache: nothing cached: the next question goes upstream\n"),
        "{uncached}"
    );
    udp_query(srv.addr, "www.example.com", RecordType::A).await;
    let cached = stdout(&amldns(&www).await);
    assert!(
        cached.contains("\ncache: an answer is cached for "),
        "{cached}"
    );
    assert!(
        cached.contains("(`amldns flush --name www.example.com` drops it)"),
        "{cached}"
    );
    let read = amldns(&["explain", "www.example.com", "--config", &file]).await;
    assert!(!stdout(&read).contains("cache:"));

    // GET /explain directly, and its errors.
    let (status, x) = get_json(&srv, &format!("/explain?name={ST}&type=AAAA")).await;
    assert_eq!(status, 200);
    assert_eq!(x["verdict"], "local");
    assert!(x["why"].as_str().unwrap().contains("NODATA"));
    assert!(x["steps"][0]["at"].as_str().unwrap().starts_with(&file));
    assert_eq!(get_json(&srv, "/explain").await.0, 400);
    assert_eq!(
        get_json(&srv, "/explain?name=x.example&type=bogus").await.0,
        400
    );

    // Changed on disk, not reloaded: the server explains what it serves.
    srv.write("amldns.toml", &text.replace("10.1.0.9", "10.1.0.99"));
    let served = stdout(&amldns(&["explain", ST, "--server", &url(&srv)]).await);
    let read = stdout(&amldns(&["explain", ST, "--config", &file]).await);
    assert!(served.contains("A 10.1.0.9\n"), "{served}");
    assert!(read.contains("A 10.1.0.99\n"), "{read}");
    srv.stop().await;
}

/// `amldns_config_info{sha256}` is the hash of the file served, one series,
/// following successful reloads only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_info_names_the_file_served() {
    let up = StandIn::zone().await;
    let text = config(up.addr, "10.1.0.9");
    let srv = start(&text).await;
    let info = |m: &str| -> Vec<String> {
        m.lines()
            .filter_map(|l| l.strip_prefix("amldns_config_info{sha256=\""))
            .map(|l| l.split('"').next().unwrap().to_string())
            .collect()
    };
    let sha = |t: &str| amldns::config::sha256_hex(t);
    // FIPS 180-2's example, as `sha256sum` prints it.
    assert_eq!(
        sha("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(info(&scrape(&srv).await), [sha(&text)]);
    let next = text.replace("10.1.0.9", "10.1.0.10");
    srv.write("amldns.toml", &next);
    assert_eq!(http_request(srv.http(), "POST", "/reload").await.0, 200);
    assert_eq!(info(&scrape(&srv).await), [sha(&next)]);
    srv.write("amldns.toml", "broken");
    assert_eq!(http_request(srv.http(), "POST", "/reload").await.0, 422);
    assert_eq!(
        info(&scrape(&srv).await),
        [sha(&next)],
        "the file still served"
    );
    srv.stop().await;
}

/// `amldns check --format json`, for CI pipelines: errors and warnings with
/// file, line, column and message; exit 1 on an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_as_json_locates_errors_and_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amldns.toml");
    let file = path.display().to_string();
    let args = ["check", "--config", &file, "--format", "json"];

    // A public answer address is a warning.
    std::fs::write(
        &path,
        format!("[[record]]\nname = \"{ST}\"\na = [\"192.0.2.1\"]\n"),
    )
    .unwrap();
    let o = amldns(&args).await;
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["errors"], serde_json::json!([]));
    let w = &v["warnings"][0];
    assert_eq!(
        (w["file"].as_str(), w["line"].as_u64()),
        (Some(file.as_str()), Some(3)),
        "{w}"
    );
    assert!(w["column"].as_u64().unwrap() >= 1);
    assert!(w["message"].as_str().unwrap().contains("192.0.2.1"), "{w}");

    std::fs::write(
        &path,
        format!("[[record]]\nname = \"{ST}\"\na = [\"10.1.0.300\"]\n"),
    )
    .unwrap();
    let o = amldns(&args).await;
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let e = &v["errors"][0];
    assert_eq!(
        (e["file"].as_str(), e["line"].as_u64(), e["column"].as_u64()),
        (Some(file.as_str()), Some(3), Some(6)),
        "{e}"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("is not an IPv4 address"),
        "{e}"
    );

    // A file that cannot be read: its path, no line.
    let missing = Path::new(&file).with_file_name("missing.toml");
    let o = amldns(&[
        "check",
        "--config",
        missing.to_str().unwrap(),
        "--format",
        "json",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["errors"][0]["file"], missing.display().to_string());
    assert_eq!(v["errors"][0]["line"], Value::Null);
}

/// A server that cannot be reached is a one-line error and exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_an_error() {
    // Bound and never listening: connections are refused, and the port
    // stays this test's own until it ends (a port freed could be taken).
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = held.local_addr().unwrap().port();
    let o = amldns(&["status", "--server", &format!("http://127.0.0.1:{port}")]).await;
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: cannot reach http://127.0.0.1:"),
        "{err}"
    );
    // Not a URL: the same one-line error and exit 1, nothing on stdout.
    let o = amldns(&["status", "--server", "127.0.0.1:9153"]).await;
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("expected http://HOST:PORT"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// A file put back as it was served ends a failure: `/status` and
/// `/healthz` say so without another reload being asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_put_back_ends_the_failure_it_caused() {
    let up = StandIn::zone().await;
    let text = config(up.addr, "10.1.0.9");
    let srv = start_with(&text, &[], amldns::reload::WatchMode::Notify).await;
    srv.write("amldns.toml", &format!("{text}bad = 1\n"));
    assert_eq!(http_request(srv.http(), "POST", "/reload").await.0, 422);
    let (_, s) = get_json(&srv, "/status").await;
    assert_eq!(s["health"], "degraded");

    srv.write("amldns.toml", &text);
    let deadline = Instant::now() + IO_TIMEOUT;
    let s = loop {
        let (_, s) = get_json(&srv, "/status").await;
        if s["health"] == "ok" {
            break s;
        }
        assert!(Instant::now() < deadline, "still {s:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let r = &s["last_reload"];
    assert_eq!(r["trigger"], "file change", "{r}");
    assert_eq!(r["error"], Value::Null);
    assert_eq!(r["changes"], Value::Null, "nothing to swap: {r}");
    assert_eq!(s["generation"], 1);
    srv.stop().await;
}

#[tokio::test]
async fn health_readiness_and_routes() {
    let up = StandIn::zone().await;
    let srv = start(&with_metrics(up.addr, "")).await;
    let (status, body) = http_request(srv.http(), "GET", "/healthz").await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["generation"], 1);
    assert!(v["reason"].is_null());
    assert_eq!(http_request(srv.http(), "GET", "/readyz").await.0, 200);
    assert_eq!(http_request(srv.http(), "GET", "/nope").await.0, 404);
    assert_eq!(http_request(srv.http(), "GET", "/reload").await.0, 405);
    assert_eq!(http_request(srv.http(), "POST", "/metrics").await.0, 405);
    srv.stop().await;
}

/// One client's idle connections are capped at its share: one more closes
/// its oldest, not the newcomer; and an idle connection is closed once the
/// header timeout passes.
#[tokio::test]
async fn http_connections_are_bounded() {
    let up = StandIn::zone().await;
    let srv = start(&with_metrics(up.addr, "")).await;
    let mut idle = Vec::new();
    let opened = Instant::now();
    for _ in 0..amldns::http::PER_CLIENT {
        idle.push(TcpStream::connect(srv.http()).await.unwrap());
    }
    // Past the share: the oldest is closed without an answer, long before
    // its header timeout would have closed it.
    let mut newest = TcpStream::connect(srv.http()).await.unwrap();
    let mut buf = [0u8; 16];
    let header = amldns::http::HEADER_TIMEOUT;
    let n = tokio::time::timeout(header, idle[0].read(&mut buf))
        .await
        .expect("the oldest is closed for the newcomer")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    // Idle connections are closed once the header timeout passes: not
    // before, and well before the connection's 30 s deadline (the ceiling
    // is five header timeouts).
    assert!(5 * header < amldns::http::CONNECTION_DEADLINE);
    let n = tokio::time::timeout(5 * header, newest.read(&mut buf))
        .await
        .expect("an idle connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    let took = opened.elapsed();
    assert!(took >= header, "closed at {took:?}");
    drop(idle);
    assert_eq!(http_request(srv.http(), "GET", "/healthz").await.0, 200);
    srv.stop().await;
}

/// 200 idle connections from one address, reopened as soon as they are
/// closed, do not keep probes out: `/healthz` and `/readyz` from another
/// address answer, every time, while they are held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_while_another_address_holds_idle_connections() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const IDLE: usize = 200;
    let up = StandIn::zone().await;
    let srv = start(&with_metrics(up.addr, "")).await;
    let http = srv.http();
    let stop = tokio_util::sync::CancellationToken::new();
    let opened = Arc::new(AtomicUsize::new(0));
    let mut holders = Vec::new();
    for _ in 0..IDLE {
        let (stop, opened) = (stop.clone(), opened.clone());
        holders.push(tokio::spawn(async move {
            while !stop.is_cancelled() {
                let sock = tokio::net::TcpSocket::new_v4().unwrap();
                sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
                if let Ok(mut conn) = sock.connect(http).await {
                    opened.fetch_add(1, Ordering::Relaxed);
                    // Held, sending nothing, until the server closes it.
                    let mut buf = [0u8; 16];
                    tokio::select! {
                        _ = conn.read(&mut buf) => {}
                        () = stop.cancelled() => {}
                    }
                }
                // Reopened soon, but not in a busy loop.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }
    let deadline = Instant::now() + IO_TIMEOUT;
    while opened.load(Ordering::Relaxed) < IDLE {
        assert!(Instant::now() < deadline, "only {opened:?} opened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 1 s is what the rule promises; five times that is the ceiling here.
    let ceiling = 5 * Duration::from_secs(1);
    let before = opened.load(Ordering::Relaxed);
    for i in 0..20 {
        for path in ["/healthz", "/readyz"] {
            let probe = async {
                let mut s = TcpStream::connect(http).await.ok()?;
                let req =
                    format!("GET {path} HTTP/1.1\r\nHost: amldns\r\nConnection: close\r\n\r\n");
                tokio::io::AsyncWriteExt::write_all(&mut s, req.as_bytes())
                    .await
                    .ok()?;
                let mut reply = Vec::new();
                s.read_to_end(&mut reply).await.ok()?;
                Some(String::from_utf8_lossy(&reply).into_owned())
            };
            let reply = tokio::time::timeout(ceiling, probe).await;
            let status = reply.as_ref().ok().and_then(|r| r.as_deref()).unwrap_or("");
            assert!(
                status.starts_with("HTTP/1.1 200"),
                "probe {i} of {path}: {reply:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        opened.load(Ordering::Relaxed) > before,
        "the idle connections were closed and reopened meanwhile"
    );
    stop.cancel();
    for h in holders {
        h.await.unwrap();
    }
    srv.stop().await;
}

/// `POST /reload` only from `[metrics] control_allow`
/// (loopback by default, which the other tests rely on); anyone else gets
/// 403 and nothing is reloaded, while reading stays open to them.
#[tokio::test]
async fn reload_is_refused_outside_control_allow() {
    let up = StandIn::zone().await;
    let metrics = "[metrics]\nlisten = \"127.0.0.1:0\"\n";
    let text = one_name(up.addr, "10.9.0.1").replace(
        metrics,
        &format!("{metrics}control_allow = [\"10.0.0.0/8\", \"::1/128\"]\n"),
    );
    let srv = start(&text).await;
    std::fs::write(&srv.config_path, text.replace("10.9.0.1", "10.9.0.2")).unwrap();
    let (status, body) = http_request(srv.http(), "POST", "/reload").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("control_allow"), "{body}");
    // Every POST is a control request (a cache flush will be one too).
    assert_eq!(http_request(srv.http(), "POST", "/flush").await.0, 403);
    assert_eq!(answer(&srv, "ws.corp.example").await, vec!["10.9.0.1"]);
    assert_eq!(http_request(srv.http(), "GET", "/healthz").await.0, 200);
    let m = scrape(&srv).await;
    assert_eq!(metric(&m, TABLE_GENERATION, &[]), 1.0);
    assert_eq!(metric(&m, RELOADS_TOTAL, &[]), 1.0, "only the first load");
    srv.stop().await;
}

/// A query string the server cannot read (a bad percent escape, a parameter
/// the path does not take, in any case) is 400 naming it, on every path,
/// and does nothing: never the whole table, never the whole cache flushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_strings_are_refused_and_change_nothing() {
    let up = StandIn::zone().await;
    let srv = start(&config(up.addr, "10.1.0.9")).await;
    udp_query(srv.addr, "www.example.com", RecordType::A).await;
    udp_query(srv.addr, "eastus.api.azureml.ms", RecordType::A).await;
    let cached = || async { get_json(&srv, "/status").await.1["cache"]["entries"].clone() };
    assert_eq!(cached().await, 2);

    let cases = [
        ("POST", "/cache/flush?name=www.example.com%ZZ", "name="),
        ("POST", "/cache/flush?name=%", "name="),
        ("POST", "/cache/flush?Name=www.example.com", "\"Name\""),
        ("POST", "/cache/flush?foo=1", "\"foo\""),
        ("POST", "/cache/flush?name=", "name has no value"),
        ("GET", "/records?name=%ZZ", "name="),
        ("GET", "/records?Name=st", "\"Name\""),
        ("GET", "/explain?name=www.example.com&Type=A", "\"Type\""),
        ("GET", "/explain?name=www.example.com&type=%G1", "type="),
        ("GET", "/healthz?foo=1", "\"foo\""),
        ("GET", "/readyz?x", "\"x\""),
        ("GET", "/metrics?name=x", "\"name\""),
        ("GET", "/status?all", "\"all\""),
        ("POST", "/reload?now=1", "\"now\""),
    ];
    for (method, path, names) in cases {
        let (status, body) = http_request(srv.http(), method, path).await;
        assert_eq!(status, 400, "{method} {path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}"));
        let why = v["error"].as_str().unwrap_or_default();
        assert!(why.contains(names), "{method} {path}: {why}");
    }
    assert_eq!(cached().await, 2, "nothing flushed");
    assert_eq!(
        get_json(&srv, "/status").await.1["generation"],
        1,
        "nothing reloaded"
    );
    // The same paths, read right, still work.
    let (status, body) =
        http_request(srv.http(), "POST", "/cache/flush?name=www.example.com").await;
    assert_eq!(
        (status, body.contains("\"flushed\": 1")),
        (200, true),
        "{body}"
    );
    assert_eq!(cached().await, 1);
    let (status, rows) = get_json(&srv, &format!("/records?name={ST}")).await;
    assert_eq!((status, rows.as_array().map(Vec::len)), (200, Some(1)));
    srv.stop().await;
}

/// `GET /records` of a large table to clients that take the first bytes
/// and then never read: the server holds what it buffers per client, not
/// the whole text per client. A server in a process of its own, so the
/// memory measured is its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_for_clients_that_do_not_read_hold_bounded_memory() {
    // 5,000 names of 32 addresses: about 4.3 MB of JSON, loaded in about
    // a second by a debug build.
    const NAMES: usize = 5000;
    // Fewer than one address's share of the listener, so the probe at the
    // end gets in while they are still being closed.
    const CLIENTS: usize = 12;
    let up = StandIn::zone().await;
    let mut text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"{}\"]\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n",
        up.addr
    );
    for i in 0..NAMES {
        let a: Vec<String> = (0..32)
            .map(|j| format!("\"10.{}.{}.{j}\"", i / 256, i % 256))
            .collect();
        text += &format!(
            "[[record]]\nname = \"h{i}.corp.example\"\na = [{}]\n",
            a.join(", ")
        );
    }
    let p = Process::start(&text, "json", None);
    let serving: Value = serde_json::from_str(&p.wait_for_line("amldns serving")).unwrap();
    let http: std::net::SocketAddr = serving["metrics"].as_str().unwrap().parse().unwrap();
    let rss = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", p.child.id())).unwrap();
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS");
        kb * 1024
    };

    // Read whole, it is the array serde_json prints, every name in it.
    let (status, body) = http_request(http, "GET", "/records").await;
    assert_eq!(status, 200);
    let rows: Vec<amldns::export::Row> = serde_json::from_str(&body).unwrap();
    assert_eq!(rows.len(), NAMES);
    assert_eq!(
        body,
        format!("{}\n", serde_json::to_string_pretty(&rows).unwrap())
    );
    let size = body.len() as u64;
    drop((rows, body));
    let before = rss();

    let mut stalled = Vec::new();
    for _ in 0..CLIENTS {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        // A small window, so the kernel takes little of the reply off the server.
        sock.set_recv_buffer_size(4096).unwrap();
        let mut conn = sock.connect(http).await.unwrap();
        let req = "GET /records HTTP/1.1\r\nHost: amldns\r\nConnection: close\r\n\r\n";
        tokio::io::AsyncWriteExt::write_all(&mut conn, req.as_bytes())
            .await
            .unwrap();
        // The reply has begun; nothing more is read.
        let mut first = [0u8; 12];
        tokio::time::timeout(IO_TIMEOUT, conn.read_exact(&mut first))
            .await
            .expect("the reply begins")
            .unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        stalled.push(conn);
    }
    // Whole replies held for every client would be CLIENTS × size (52 MB);
    // what a streamed one holds is well under a MB a client.
    let bound = 20 << 20;
    assert!(CLIENTS as u64 * size > 2 * bound, "{size} bytes a reply");
    for _ in 0..5 {
        let grown = rss().saturating_sub(before);
        assert!(
            grown < bound,
            "{grown} bytes more with {CLIENTS} clients not reading {size} bytes each"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(stalled);
    assert_eq!(http_request(http, "GET", "/healthz").await.0, 200);
}
