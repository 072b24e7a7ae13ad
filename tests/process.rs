//! The `amldns serve` process itself: signals (SIGHUP reload, SIGTERM
//! graceful stop) and its logs, as a service manager would see them.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// A running `amldns serve`, its stderr collected line by line.
struct Process {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

impl Process {
    fn start(config_text: &str) -> Self {
        Self::start_as(config_text, "json")
    }

    /// With `--log-format format`; stderr is a pipe, as under systemd or Docker.
    fn start_as(config_text: &str, format: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("amldns.toml");
        std::fs::write(&config, config_text).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_amldns"))
            .args([
                "serve",
                "--log-format",
                format,
                "--watch",
                "off",
                "--config",
            ])
            .arg(&config)
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let mut p = Process {
            child,
            lines,
            addr: "127.0.0.1:0".parse().unwrap(),
            _dir: dir,
            config,
        };
        let started = p.wait_for_line("amldns serving");
        let listen = match serde_json::from_str::<serde_json::Value>(&started) {
            Ok(v) => v["listen"].as_str().unwrap().to_string(),
            Err(_) => started
                .split_whitespace()
                .find_map(|f| f.strip_prefix("listen="))
                .unwrap()
                .to_string(),
        };
        p.addr = listen
            .parse()
            .unwrap_or_else(|e| panic!("listen {listen:?}: {e}"));
        p
    }

    /// Waits up to 5 s for a log line containing `needle`.
    fn wait_for_line(&self, needle: &str) -> String {
        let t = Instant::now();
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            assert!(
                t.elapsed() < IO_TIMEOUT,
                "no log line with {needle:?}: {:#?}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits up to 5 s for the process to exit; its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        let t = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(t.elapsed() < IO_TIMEOUT, "still running");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let p = Process::start(&config(up.addr, "10.9.0.1", ""));
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
}

/// SIGTERM: stop accepting, answer what is in flight, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_queries_in_flight_and_exits_cleanly() {
    let slow = StandIn::start_delayed(
        "127.0.0.1:0".parse().unwrap(),
        Duration::from_millis(700),
        |q| Some(upstream_zone(q)),
    )
    .await;
    let mut p = Process::start(&config(slow.addr, "10.9.0.1", ""));
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
    assert_eq!(p.wait_exit(), Some(0));
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
    let p = Process::start(&config(up.addr, "10.9.0.1", "[log]\nqueries = true\n"));
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
    let p = Process::start_as(&text, "text");
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
