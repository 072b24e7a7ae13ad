//! What amldns does when the config leaves things out, and a few promises
//! only the real binary can show: where it reads its config
//! (`AMLDNS_CONFIG`, `/etc/amldns/amldns.toml`), whom it answers by default
//! (every private range, no public address), that without `[metrics]`
//! nothing listens over HTTP, that a new listen address waits for a
//! restart, that the control endpoint refuses non-loopback clients by
//! default, and the log line of a workspace missing from the table.
//!
//! Clients from other addresses than 127.0.0.1 talk to an `amldns serve`
//! inside a network namespace the test creates (`unshare --net`, only lo,
//! the addresses added to it): nothing here sends a packet off this host,
//! and the default path is read through an overlay of /etc inside a mount
//! namespace of its own, leaving the real /etc as it was.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amldns::metrics::WORKSPACE_MISSING_TOTAL;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::common::*;

/// How long a process may take to start or a reload to end on a busy
/// machine before the test gives up: a ceiling, not a measure.
const CEILING: Duration = Duration::from_secs(30);

const LOCAL: &str = "probe.privatelink.blob.core.windows.net";

/// A config giving [`LOCAL`] (10.9.9.9), its upstream a loopback address
/// where nothing needs to answer (only local names are asked), with `server`
/// as the `[server]` table's keys and `extra` after it.
fn config(server: &str, extra: &str) -> String {
    format!(
        "[server]\n{server}\n[upstream]\nservers = [\"127.0.0.1:5353\"]\ntimeout_ms = 1000\n\
         {extra}\n[[record]]\nname = \"{LOCAL}\"\na = [\"10.9.9.9\"]\n"
    )
}

// ---- an amldns serve whose log is read ----------------------------------------

/// A running `amldns serve` (perhaps under `unshare`), its stderr collected
/// line by line; killed when dropped.
struct Served {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Spawns `cmd`, and waits for its "amldns serving" line.
    fn spawn(mut cmd: Command, dir: tempfile::TempDir) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let lines = stderr_lines(&mut child);
        let mut s = Served {
            child,
            lines,
            _dir: dir,
        };
        s.wait_for_line("amldns serving");
        s
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits up to [`CEILING`] for a line containing `needle`; fails at once
    /// if the process ends.
    fn wait_for_line(&mut self, needle: &str) -> String {
        let t = Instant::now();
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(200));
                panic!("exited ({status}) before {needle:?}: {:#?}", self.lines());
            }
            assert!(
                t.elapsed() < CEILING,
                "no line with {needle:?}: {:#?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The "amldns serving" line's field `key`, e.g. its `listen` address.
    fn serving(&mut self, key: &str) -> String {
        let line = self.wait_for_line("amldns serving");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v[key].as_str().unwrap_or_default().to_string()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary, with nothing in its environment naming a config or a log
/// level.
fn amldns() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_amldns"));
    cmd.env_remove("AMLDNS_CONFIG").env_remove("RUST_LOG");
    cmd
}

/// Whether this machine lets the test make namespaces (root, util-linux's
/// `unshare`); if not, the test says so through [`skip_or_fail`].
fn namespaces(what: &str) -> bool {
    let ok = Command::new("unshare")
        .args(["--net", "--mount", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip_or_fail(&format!(
            "{what}: needs network and mount namespaces (root and `unshare`)"
        ));
    }
    ok
}

/// `amldns serve` (with `args`) inside a new network namespace (and a mount
/// namespace, with `mount`), after `setup` (shell lines) ran there with lo
/// up: only what the test adds to lo exists in it.
fn isolated(mount: bool, setup: &str, args: &str, dir: tempfile::TempDir) -> Served {
    let script = format!(
        "set -e\nip link set lo up\n{setup}\nexec '{}' serve --watch off --log-format json {args}\n",
        env!("CARGO_BIN_EXE_amldns")
    );
    let mut cmd = Command::new("unshare");
    cmd.env_remove("AMLDNS_CONFIG")
        .env_remove("RUST_LOG")
        .arg("--net");
    if mount {
        cmd.arg("--mount");
    }
    cmd.args(["sh", "-c", &script]);
    Served::spawn(cmd, dir)
}

/// Runs `f` on a thread inside `pid`'s network namespace: the sockets it
/// makes there reach what that namespace holds, and nothing else.
fn in_netns<T: Send>(pid: u32, f: impl FnOnce() -> T + Send) -> T {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    std::thread::scope(|s| {
        let joined = s
            .spawn(|| {
                // SAFETY: setns on this thread only, with a namespace file
                // descriptor that stays open for the call.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join();
        joined.unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

// ---- blocking clients, for threads inside a namespace --------------------------

/// One UDP question from `from` to `to`, and its reply.
fn udp_ask(from: SocketAddr, to: SocketAddr, qname: &str) -> Message {
    let s = std::net::UdpSocket::bind(from).unwrap_or_else(|e| panic!("bind {from}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let q = query_msg(qname, RecordType::A, None);
    s.send_to(&q.to_vec().unwrap(), to)
        .unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
    let mut buf = [0u8; 4096];
    let (n, _) = s
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no UDP reply {from} -> {to}: {e}"));
    let r = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(r.metadata.id, q.metadata.id);
    r
}

/// A TCP connection from `from` to `to`.
fn tcp_from(from: SocketAddr, to: SocketAddr) -> std::net::TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(to), Type::STREAM, None).unwrap();
    s.bind(&from.into())
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    s.connect_timeout(&to.into(), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
    let s: std::net::TcpStream = s.into();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// One DNS question over TCP from `from` to `to`.
fn tcp_ask(from: SocketAddr, to: SocketAddr, qname: &str) -> Message {
    let mut s = tcp_from(from, to);
    let q = query_msg(qname, RecordType::A, None).to_vec().unwrap();
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len)
        .unwrap_or_else(|e| panic!("no TCP reply {from} -> {to}: {e}"));
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).unwrap();
    Message::from_vec(&buf).unwrap()
}

/// One HTTP/1.1 request from `from` to `to`: (status, body).
fn http_from(from: SocketAddr, to: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = tcp_from(from, to);
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: amldns\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

fn at(ip: &str, port: u16) -> SocketAddr {
    let ip: IpAddr = ip.parse().unwrap();
    match ip {
        // A link-local address means nothing without its link: lo, whose
        // index is 1 in a namespace of its own.
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
            SocketAddr::V6(SocketAddrV6::new(v6, port, 0, 1))
        }
        _ => SocketAddr::new(ip, port),
    }
}

// ---- where the config is read from ------------------------------------------------

/// `AMLDNS_CONFIG` names the config when `--config` does not.
#[test]
fn amldns_config_names_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("elsewhere.toml");
    std::fs::write(
        &path,
        config("listen = [\"127.0.0.1:0\"]\nallow = [\"127.0.0.1/32\"]", ""),
    )
    .unwrap();
    let mut cmd = amldns();
    cmd.args(["serve", "--watch", "off", "--log-format", "json"])
        .env("AMLDNS_CONFIG", &path);
    let mut served = Served::spawn(cmd, dir);
    let addr: SocketAddr = served.serving("listen").parse().unwrap();
    assert_eq!(
        addrs(&udp_ask(at("127.0.0.1", 0), addr, LOCAL)),
        ["10.9.9.9"]
    );
}

/// Without `--config` or `AMLDNS_CONFIG`, `/etc/amldns/amldns.toml`: read
/// here from an overlay of /etc inside a mount namespace, so the real /etc
/// is not touched. The config also leaves `listen` out: 0.0.0.0:53.
#[test]
fn the_default_config_is_etc_amldns_amldns_toml() {
    if !namespaces("the default config path") {
        return;
    }
    let real_before = Path::new("/etc/amldns").exists();
    let dir = tempfile::tempdir().unwrap();
    let staged = dir.path().join("amldns.toml");
    std::fs::write(&staged, config("", "")).unwrap();
    let d = dir.path().display();
    let setup = format!(
        "mkdir '{d}/etc'\nmount -t tmpfs tmpfs '{d}/etc'\nmkdir '{d}/etc/up' '{d}/etc/work'\n\
         mount -t overlay overlay -o 'lowerdir=/etc,upperdir={d}/etc/up,workdir={d}/etc/work' /etc\n\
         mkdir -p /etc/amldns\ncp '{d}/amldns.toml' /etc/amldns/amldns.toml"
    );
    let mut served = isolated(true, &setup, "", dir);
    assert_eq!(served.serving("listen"), "0.0.0.0:53");
    let pid = served.child.id();
    let r = in_netns(pid, || {
        udp_ask(at("127.0.0.1", 0), at("127.0.0.1", 53), LOCAL)
    });
    assert_eq!(addrs(&r), ["10.9.9.9"]);
    drop(served);
    assert_eq!(
        Path::new("/etc/amldns").exists(),
        real_before,
        "the real /etc is as it was"
    );
}

// ---- whom it answers by default ------------------------------------------------------

/// Sources inside the default `allow`: both ends of every range.
const ALLOWED: [&str; 18] = [
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.0.1",
    "192.168.255.254",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.0.1",
    "169.254.255.254",
    "::1",
    "fe80::1",
    "febf:ffff::1",
    "fc00::1",
    "fd00::1",
    "fdff:ffff::1",
];

/// Public sources, and the first address past each private range: REFUSED.
const REFUSED: [&str; 10] = [
    "192.0.2.7",
    "8.8.8.8",
    "11.0.0.1",
    "172.32.0.1",
    "172.15.255.254",
    "100.128.0.1",
    "100.63.255.254",
    "169.255.0.1",
    "2001:db8::7",
    "fec0::1",
];

/// With `allow` left out, every private, CGNAT, loopback and link-local
/// source is answered, over UDP and TCP, and a public one is REFUSED: each
/// client sends from an address of its own, added to lo inside the
/// namespace, to that same address.
#[test]
fn the_default_allow_answers_private_ranges_and_refuses_the_rest() {
    if !namespaces("the default allow") {
        return;
    }
    let added: Vec<String> = ALLOWED
        .iter()
        .chain(&REFUSED)
        // Loopback is there already.
        .filter(|a| **a != "::1" && !a.starts_with("127."))
        .map(|a| match a.contains(':') {
            true => format!("ip addr add {a}/128 dev lo nodad"),
            false => format!("ip addr add {a}/32 dev lo"),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("amldns.toml");
    std::fs::write(&cfg, config("listen = [\"0.0.0.0:53\", \"[::]:53\"]", "")).unwrap();
    let served = isolated(
        false,
        &added.join("\n"),
        &format!("--config '{}'", cfg.display()),
        dir,
    );
    let pid = served.child.id();
    in_netns(pid, || {
        for src in ALLOWED {
            let (from, to) = (at(src, 0), at(src, 53));
            for (how, r) in [
                ("UDP", udp_ask(from, to, LOCAL)),
                ("TCP", tcp_ask(from, to, LOCAL)),
            ] {
                assert_eq!(
                    (r.metadata.response_code, addrs(&r)),
                    (ResponseCode::NoError, vec!["10.9.9.9".to_string()]),
                    "{src} over {how} is inside the default allow"
                );
            }
        }
        for src in REFUSED {
            let (from, to) = (at(src, 0), at(src, 53));
            for (how, r) in [
                ("UDP", udp_ask(from, to, LOCAL)),
                ("TCP", tcp_ask(from, to, LOCAL)),
            ] {
                assert_eq!(
                    r.metadata.response_code,
                    ResponseCode::Refused,
                    "{src} over {how} is outside the default allow: {r:?}"
                );
                assert!(r.answers.is_empty(), "{src} over {how}");
            }
        }
    });
}

/// The default `[metrics] control_allow` is loopback: `POST /reload` from
/// another address is refused (reading stays open to it), from 127.0.0.1
/// accepted.
#[test]
fn the_default_control_allow_refuses_a_non_loopback_client() {
    if !namespaces("the default control_allow") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("amldns.toml");
    std::fs::write(
        &cfg,
        config(
            "listen = [\"127.0.0.1:53\"]",
            "[metrics]\nlisten = \"0.0.0.0:9153\"\n",
        ),
    )
    .unwrap();
    let served = isolated(
        false,
        "ip addr add 10.0.0.1/32 dev lo",
        &format!("--config '{}'", cfg.display()),
        dir,
    );
    // A change for a reload to apply.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("10.9.9.9", "10.9.9.8")).unwrap();
    let pid = served.child.id();
    in_netns(pid, || {
        let dns = at("127.0.0.1", 53);
        let answer = || addrs(&udp_ask(at("127.0.0.1", 0), dns, LOCAL));
        let (outsider, to) = (at("10.0.0.1", 0), at("10.0.0.1", 9153));
        let (status, body) = http_from(outsider, to, "POST", "/reload");
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("control_allow"), "{body}");
        assert_eq!(answer(), ["10.9.9.9"], "nothing reloaded");
        assert_eq!(http_from(outsider, to, "GET", "/healthz").0, 200);
        let loopback = (at("127.0.0.1", 0), at("127.0.0.1", 9153));
        let (status, body) = http_from(loopback.0, loopback.1, "POST", "/reload");
        assert_eq!(status, 200, "{body}");
        assert_eq!(answer(), ["10.9.9.8"], "reloaded");
    });
}

// ---- what listens ----------------------------------------------------------------------

/// The TCP ports `pid` listens on, read from its descriptors and its
/// network namespace's socket tables (not from its log).
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    assert!(!inodes.is_empty(), "{pid} holds sockets");
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap();
        for row in text.lines().skip(1) {
            let f: Vec<&str> = row.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                let port = f[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Without `[metrics]` the process listens on TCP for DNS only; with it,
/// on the metrics port too (so the check sees an HTTP listener when there
/// is one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_metrics_nothing_listens_over_http() {
    let up = StandIn::zone().await;
    let server = "listen = [\"127.0.0.1:0\"]\nallow = [\"127.0.0.1/32\"]";
    let text = |metrics| {
        TestConfig {
            upstreams: &[up.addr],
            server,
            metrics,
            ..TestConfig::default()
        }
        .text()
    };
    assert!(!text(false).contains("[metrics]"));
    let p = Process::start(&text(false), "json", None);
    assert_eq!(listening_ports(p.child.id()), [p.addr.port()]);
    assert!(
        p.wait_for_line("amldns serving")
            .contains("\"metrics\":\"off\"")
    );
    drop(p);

    let p = Process::start(&text(true), "json", None);
    let line = p.wait_for_line("amldns serving");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let http: SocketAddr = v["metrics"].as_str().unwrap().parse().unwrap();
    let mut want = vec![p.addr.port(), http.port()];
    want.sort_unstable();
    assert_eq!(listening_ports(p.child.id()), want);
}

// ---- a new listen address waits for a restart -------------------------------------

/// A reload that changes `[server] listen` applies the rest, says a restart
/// is needed, and keeps answering on the old address only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_listen_address_waits_for_a_restart() {
    let up = StandIn::zone().await;
    let text = |listen: &str, ip: &str| {
        TestConfig {
            upstreams: &[up.addr],
            server: &format!("listen = [\"{listen}\"]\nallow = [\"127.0.0.1/32\"]"),
            rest: &format!("[[record]]\nname = \"ws.corp.example\"\na = [\"{ip}\"]\n"),
            ..TestConfig::default()
        }
        .text()
    };
    let p = Process::start(&text("127.0.0.1:0", "10.9.0.1"), "json", None);
    let old = p.addr;
    // Another loopback address, the same port: nothing listens there.
    let new: SocketAddr = format!("127.0.0.3:{}", old.port()).parse().unwrap();
    std::fs::write(&p.config, text(&new.to_string(), "10.9.0.2")).unwrap();
    p.signal("HUP");
    let t = Instant::now();
    let warned = loop {
        let lines = p.lines();
        let reloaded = lines.iter().any(|l| l.contains("\"reloaded\""));
        let warned = lines
            .iter()
            .find(|l| l.contains("take effect at the next restart"));
        if let (true, Some(w)) = (reloaded, warned) {
            break w.clone();
        }
        assert!(t.elapsed() < CEILING, "{lines:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(warned.contains("\"WARN\""), "{warned}");
    assert!(warned.contains("[server] listen changed"), "{warned}");
    // The rest applied: the old address answers the new table.
    assert_eq!(
        addrs(&udp_query(old, "ws.corp.example", RecordType::A).await),
        ["10.9.0.2"]
    );
    let mut tcp = tokio::net::TcpStream::connect(old).await.unwrap();
    let q = query_msg("ws.corp.example", RecordType::A, None);
    assert_eq!(addrs(&tcp_exchange(&mut tcp, &q).await), ["10.9.0.2"]);
    // The new one is not listened on: TCP is refused, UDP draws the
    // port-unreachable error.
    let refused = tokio::net::TcpStream::connect(new).await.unwrap_err();
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{new}"
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect(new).unwrap();
    udp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    udp.send(&q.to_vec().unwrap()).unwrap();
    let mut buf = [0u8; 512];
    let e = udp.recv(&mut buf).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{new}");
    assert_eq!(listening_ports(p.child.id()), [old.port()]);
}

// ---- a workspace missing from the table ----------------------------------------

const MISSING_LINE: &str = "forwarded a workspace name the table does not hold";

/// A forwarded workspace-shaped name the table lacks is logged, as a
/// warning naming it, its workspace id and the client, at most once per
/// ten seconds (the handler's limit), while every such query is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_workspace_is_logged_rate_limited_and_counted() {
    let up = StandIn::zone().await;
    let server = "listen = [\"127.0.0.1:0\"]\nallow = [\"127.0.0.1/32\"]";
    let text = TestConfig {
        upstreams: &[up.addr],
        server,
        metrics: true,
        rest: &workspace("public", ""),
        ..TestConfig::default()
    }
    .text();
    let p = Process::start(&text, "json", None);
    let line = p.wait_for_line("amldns serving");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let http: SocketAddr = v["metrics"].as_str().unwrap().parse().unwrap();

    // Neither a name the table holds nor a public one counts.
    let held = format!("{GUID}.workspace.eastus.api.azureml.ms");
    assert_eq!(
        addrs(&udp_query(p.addr, &held, RecordType::A).await),
        ["10.1.0.5"]
    );
    udp_query(p.addr, "eastus.api.azureml.ms", RecordType::A).await;

    let id = |i: usize| format!("{i:08x}-2e18-48ad-9e4a-ca338f571072");
    let started = Instant::now();
    let mut asked = 0;
    for i in 0..40 {
        let name = format!("{}.workspace.eastus.api.azureml.ms", id(i));
        let r = udp_query(p.addr, &name, RecordType::A).await;
        // Forwarded: the stand-in's public answer.
        assert_eq!(addrs(&r), ["192.0.2.40"], "{name}");
        asked += 1;
    }
    // Answered from the cache now: still a workspace reached publicly.
    for _ in 0..10 {
        let name = format!("{}.workspace.eastus.api.azureml.ms", id(0));
        udp_query(p.addr, &name, RecordType::A).await;
        asked += 1;
    }
    let took = started.elapsed();
    let (_, body) = http_request(http, "GET", "/metrics").await;
    assert_eq!(
        metric(&body, WORKSPACE_MISSING_TOTAL, &[]),
        f64::from(asked),
        "every query counted"
    );

    let first = p.wait_for_line(MISSING_LINE);
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["level"], "WARN", "{first}");
    assert_eq!(
        v["name"],
        format!("{}.workspace.eastus.api.azureml.ms", id(0)),
        "{first}"
    );
    assert_eq!(v["workspace_id"], id(0), "{first}");
    assert_eq!(v["client"], "127.0.0.1", "{first}");
    assert_eq!(v["held_back"], 0, "{first}");
    // A reload's line comes after every line the queries caused: once it
    // is read, so are they.
    let mut text = std::fs::read_to_string(&p.config).unwrap();
    text.push_str("[[record]]\nname = \"marker.corp.example\"\na = [\"10.9.9.7\"]\n");
    std::fs::write(&p.config, text).unwrap();
    p.signal("HUP");
    p.wait_for_line("\"reloaded\"");
    // At most one line per ten seconds of asking: one, unless this
    // machine took more than ten seconds for fifty loopback queries.
    let lines: Vec<String> = p
        .lines()
        .into_iter()
        .filter(|l| l.contains(MISSING_LINE))
        .collect();
    let allowed = 1 + (took.as_secs() / 10) as usize;
    assert!(
        lines.len() <= allowed,
        "{} lines in {took:?}: {lines:#?}",
        lines.len()
    );
    assert!(
        !p.lines().iter().any(|l| l.contains(&held)),
        "the held workspace is not reported"
    );
}
