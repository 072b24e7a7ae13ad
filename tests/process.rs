//! The `amldns serve` process itself: signals (SIGHUP reload, SIGTERM
//! graceful stop) and its logs, as a service manager would see them.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

fn config(upstream: SocketAddr, ip: &str, extra: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nallow = [\"127.0.0.1/32\"]\n[upstream]\n\
         servers = [\"{upstream}\"]\ntimeout_ms = 2000\n{extra}\n\
         [[record]]\nname = \"ws.corp.example\"\na = [\"{ip}\"]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_table() {
    let up = StandIn::zone().await;
    let p = Process::start(&config(up.addr, "10.9.0.1", ""), "json", None);
    assert_eq!(
        addrs(&udp_query(p.addr, "ws.corp.example", RecordType::A).await),
        vec!["10.9.0.1"]
    );
    std::fs::write(&p.config, config(up.addr, "10.9.0.2", "")).unwrap();
    p.signal("HUP");
    let line = p.wait_for_line("\"reloaded\"");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["generation"], 2);
    assert_eq!(v["trigger"], "SIGHUP");
    assert!(v["millis"].is_u64());
    // SPEC §9: what changed, counted and named.
    assert_eq!(
        (
            v["added"].as_u64(),
            v["removed"].as_u64(),
            v["changed"].as_u64()
        ),
        (Some(0), Some(0), Some(1)),
        "{line}"
    );
    assert_eq!(
        v["changes"],
        "added 0, removed 0, changed 1 (ws.corp.example)"
    );
    assert_eq!(v["sha256"].as_str().map(str::len), Some(64), "{line}");
    assert_eq!(
        addrs(&udp_query(p.addr, "ws.corp.example", RecordType::A).await),
        vec!["10.9.0.2"]
    );

    // A broken file on SIGHUP: one located error line, the old table serves.
    std::fs::write(&p.config, "[upstream]\ntimeout_ms = \"soon\"\n").unwrap();
    p.signal("HUP");
    let line = p.wait_for_line("reload failed");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "ERROR");
    assert_eq!(v["serving_generation"], 2);
    assert!(
        line.contains(&format!("{}:2:14", p.config.display())),
        "file:line:col in {line}"
    );
    assert_eq!(
        addrs(&udp_query(p.addr, "ws.corp.example", RecordType::A).await),
        vec!["10.9.0.2"]
    );
    // One line per reload: the failure came after the first reload's line,
    // and neither was logged twice (the file is not watched: only the
    // signals reload).
    let count = |needle: &str| p.lines().iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("\"reloaded\""), 1, "{:#?}", p.lines());
    assert_eq!(count("reload failed"), 1, "{:#?}", p.lines());
}

/// SIGTERM: stop accepting, answer what is in flight, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_queries_in_flight_and_exits_cleanly() {
    // Slow enough that the query is still in flight when the one after
    // SIGTERM is sent, on a busy machine too.
    let slow = StandIn::start_delayed(
        "127.0.0.1:0".parse().unwrap(),
        Duration::from_millis(1000),
        |q| Some(upstream_zone(q)),
    )
    .await;
    let mut p = Process::start(&config(slow.addr, "10.9.0.1", ""), "json", None);
    let addr = p.addr;
    let in_flight =
        tokio::spawn(async move { udp_query(addr, "www.example.com", RecordType::A).await });
    // Let the query reach the upstream, then ask amldns to stop.
    let t = Instant::now();
    while slow.seen().is_empty() {
        assert!(t.elapsed() < IO_TIMEOUT);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    p.signal("TERM");
    // Once stopping, a new query is refused at once (stubs move on), while
    // the one in flight is still being answered.
    p.wait_for_line("shutting down");
    let r = udp_query(addr, "ws.corp.example", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    let r = in_flight.await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&r), vec!["192.0.2.10"]);
    // Nothing left in flight: it exits now, not at the drain's cap (the
    // query deadline and half a second after SIGTERM, so 2 s after this
    // answer; exiting takes the 100 ms flush grace).
    assert_eq!(p.wait_exit(Duration::from_millis(1500)), Some(0));
    // Nothing answers any more.
    let q = query_msg("ws.corp.example", RecordType::A, None)
        .to_vec()
        .unwrap();
    assert!(
        udp_raw(addr, &q, Duration::from_millis(300))
            .await
            .is_none()
    );
}

/// JSON logs: a startup line with what is served, and with `[log] queries`
/// one line per query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_and_the_query_log() {
    let up = StandIn::zone().await;
    let p = Process::start(
        &config(up.addr, "10.9.0.1", "[log]\nqueries = true\n"),
        "json",
        None,
    );
    let start: serde_json::Value =
        serde_json::from_str(&p.wait_for_line("amldns serving")).unwrap();
    assert_eq!(start["level"], "INFO");
    assert_eq!(start["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(start["names"], 1);
    assert_eq!(start["upstreams"], up.addr.to_string());
    assert_eq!(start["metrics"], "off");
    assert_eq!(start["watch"], "off");

    udp_query(p.addr, "ws.corp.example", RecordType::A).await;
    udp_query(p.addr, "nope.example.com", RecordType::AAAA).await;
    let local: serde_json::Value =
        serde_json::from_str(&p.wait_for_line("ws.corp.example")).unwrap();
    assert_eq!(local["target"], "amldns::query");
    assert_eq!(local["client"], "127.0.0.1");
    assert_eq!(local["qtype"], "A");
    assert_eq!(local["outcome"], "local");
    assert_eq!(local["rcode"], "NOERROR");
    assert!(local["micros"].is_u64());
    let fwd: serde_json::Value =
        serde_json::from_str(&p.wait_for_line("nope.example.com")).unwrap();
    assert_eq!(fwd["outcome"], "forwarded");
    assert_eq!(fwd["rcode"], "NXDOMAIN");
    assert_eq!(fwd["qtype"], "AAAA");
    // hickory's own per-request lines stay quiet.
    assert!(
        !p.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("hickory_server"))
    );
}

/// Issue 12, item 7: text logs written to a pipe (journald, `docker logs`)
/// carry no colour codes, and values read as an operator writes them:
/// `listen=127.0.0.1:5358`, not `"[127.0.0.1:5358]"` or `Some(…)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_to_a_pipe_are_plain() {
    let up = StandIn::zone().await;
    let text = format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n{}",
        config(up.addr, "10.9.0.1", "")
    );
    let p = Process::start(&text, "text", None);
    let line = p.wait_for_line("amldns serving");
    assert!(line.contains(&format!("listen={}", p.addr)), "{line}");
    assert!(line.contains(&format!("upstreams={}", up.addr)), "{line}");
    assert!(line.contains("metrics=127.0.0.1:"), "{line}");
    assert!(line.contains("watch=off"), "{line}");
    assert_eq!(
        addrs(&udp_query(p.addr, "ws.corp.example", RecordType::A).await),
        vec!["10.9.0.1"]
    );
    // A warning and an error as well: the broken file on SIGHUP.
    std::fs::write(&p.config, "[upstream]\ntimeout_ms = \"soon\"\n").unwrap();
    p.signal("HUP");
    p.wait_for_line("reload failed");
    let lines = p.lines.lock().unwrap().clone();
    for l in &lines {
        assert!(!l.contains('\x1b'), "a colour code in {l:?}");
        assert!(!l.contains("Some("), "a Debug value in {l:?}");
    }
}

/// `[server] threads`: one UDP socket per thread on the listen port, which
/// the kernel spreads clients over (SO_REUSEPORT); every client is
/// answered, so every socket is drained. A second server on the same
/// address is refused at its start rather than let in to share the port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_share_the_port_and_a_second_server_is_refused() {
    let up = StandIn::zone().await;
    let text = |listen: &str| {
        format!(
            "[server]\nlisten = [\"{listen}\"]\nallow = [\"127.0.0.1/32\"]\nthreads = 3\n\
             [upstream]\nservers = [\"{}\"]\n\
             [[record]]\nname = \"ws.corp.example\"\na = [\"10.9.0.1\"]\n",
            up.addr
        )
    };
    let p = Process::start(&text("127.0.0.1:0"), "json", None);
    assert!(p.wait_for_line("amldns serving").contains("\"threads\":3"));
    // /proc/net/udp lists this namespace's sockets, the port in hex.
    let port = format!(":{:04X} ", p.addr.port());
    let sockets = std::fs::read_to_string("/proc/net/udp")
        .unwrap()
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| format!("{a} ").ends_with(&port))
        })
        .count();
    assert_eq!(sockets, 3, "UDP sockets on {}", p.addr);
    // 60 clients, each from a port of its own: spread by the kernel over
    // the three sockets, so an undrained one would leave about 20 unanswered.
    let asked = (0..60).map(|_| udp_query(p.addr, "ws.corp.example", RecordType::A));
    for m in futures_util::future::join_all(asked).await {
        assert_eq!(addrs(&m), vec!["10.9.0.1"]);
    }

    let dir = tempfile::tempdir().unwrap();
    let second_config = dir.path().join("second.toml");
    std::fs::write(&second_config, text(&p.addr.to_string())).unwrap();
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_amldns"))
        .args(["serve", "--watch", "off", "--config"])
        .arg(&second_config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if t.elapsed() > IO_TIMEOUT {
            let _ = second.kill();
            panic!("a second server on {} is still running", p.addr);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot listen on {}", p.addr)) && err.contains("in use"),
        "{err}"
    );
}

/// The serving process is set up for an even latency: no transparent huge
/// pages, and a descriptor table already as large as its limits need, so
/// that neither is grown while queries wait (BENCHMARKS.md, "The tail of
/// cold misses").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_starts_with_huge_pages_off_and_its_descriptors_reserved() {
    let up = StandIn::zone().await;
    let text = config(up.addr, "10.9.0.1", "");
    let p = Process::start(&text, "json", None);
    let proc_file =
        |name: &str| std::fs::read_to_string(format!("/proc/{}/{name}", p.child.id())).unwrap();
    let status = proc_file("status");
    assert!(status.contains("THP_enabled:\t0"), "{status}");
    let fd_size: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("FDSize:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    // The soft limit the server raised itself to caps what it reserves.
    let limits = proc_file("limits");
    let open_files: usize = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let parsed = amldns::config::parse(&p.config, &text).unwrap();
    let wanted = amldns::server::descriptors_wanted(&parsed);
    assert!(
        fd_size >= wanted.min(open_files),
        "FDSize {fd_size}, open files {open_files}, wanted {wanted}"
    );
}

/// A reload that changes nothing keeps the generation (the SOA serial a
/// secondary compares) and says `unchanged`; the first good reload after a
/// failed one, even one that only puts the served file back, says that the
/// failure ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_reload_keeps_the_generation_and_a_mended_failure_is_logged() {
    let up = StandIn::zone().await;
    let good = config(up.addr, "10.9.0.1", "");
    let p = Process::start(&good, "json", None);
    let count = |needle: &str| p.lines().iter().filter(|l| l.contains(needle)).count();

    p.signal("HUP");
    let line = p.wait_for_line("unchanged");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (v["level"].as_str(), v["generation"].as_u64()),
        (Some("INFO"), Some(1)),
        "{line}"
    );
    assert_eq!(v["trigger"], "SIGHUP", "{line}");
    assert_eq!(
        count("\"reloaded\""),
        0,
        "nothing was swapped: {:#?}",
        p.lines()
    );

    std::fs::write(&p.config, "[upstream]\ntimeout_ms = \"soon\"\n").unwrap();
    p.signal("HUP");
    p.wait_for_line("reload failed");
    std::fs::write(&p.config, &good).unwrap();
    p.signal("HUP");
    let line = p.wait_for_line("reload failure ended");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (v["level"].as_str(), v["generation"].as_u64()),
        (Some("INFO"), Some(1)),
        "{line}"
    );
    assert_eq!(
        count("\"reloaded\""),
        0,
        "the served file came back: {:#?}",
        p.lines()
    );
    assert_eq!(count("reload failure ended"), 1);
    assert_eq!(
        addrs(&udp_query(p.addr, "ws.corp.example", RecordType::A).await),
        vec!["10.9.0.1"]
    );
}
