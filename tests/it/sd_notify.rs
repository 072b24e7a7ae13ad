//! `amldns serve` under a service manager that speaks sd_notify(3): the real
//! binary, with NOTIFY_SOCKET naming a socket this test holds, as systemd
//! runs a `Type=notify` unit with `WatchdogSec=`.

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::common::{IO_TIMEOUT, RUN_TIMEOUT, addrs, udp_query};

struct Serve {
    child: Child,
    /// Where it answers: the port the kernel gave its `127.0.0.1:0`.
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `amldns serve` on 127.0.0.1, a port of the kernel's choosing (no port is
/// picked ahead and left free for another to take), with `env` set; the
/// upstream is a loopback port nothing is forwarded to (the test asks only
/// local names). Its address is read from its "amldns serving" line.
fn serve(env: &[(&str, String)]) -> Serve {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amldns.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = [\"127.0.0.1:0\"]\nallow = [\"127.0.0.1/32\"]\n\
         [upstream]\nservers = [\"127.0.0.1:9\"]\ntimeout_ms = 1000\n\
         [[record]]\nname = \"probe.privatelink.blob.core.windows.net\"\na = [\"10.9.9.9\"]\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_amldns"));
    cmd.args([
        "serve",
        "--log-format",
        "text",
        "--watch",
        "off",
        "--config",
    ])
    .arg(&config)
    .env_remove("NOTIFY_SOCKET")
    .env_remove("WATCHDOG_USEC")
    .env_remove("WATCHDOG_PID")
    .env_remove("RUST_LOG")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Read to the end, so that the child never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("amldns serving") {
                let _ = tx.send(line);
            }
        }
    });
    let mut serve = Serve {
        child,
        addr: ([127, 0, 0, 1], 0).into(),
        _dir: dir,
    };
    let line = rx
        .recv_timeout(RUN_TIMEOUT)
        .expect("an \"amldns serving\" line");
    // `listen=127.0.0.1:N` (several addresses would be joined by ", ").
    let listen = line.split_once("listen=").expect("a listen field").1;
    let end = listen.find([',', ' ']).unwrap_or(listen.len());
    serve.addr = listen[..end]
        .parse()
        .unwrap_or_else(|e| panic!("{e}: no address in {line:?}"));
    serve
}

/// The notifications received within `wait`, until `until` is among them.
fn collect(sock: &UnixDatagram, wait: Duration, until: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !until(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        sock.set_read_timeout(Some(left)).unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    got
}

/// READY=1 only once amldns answers; then WATCHDOG=1 every half
/// WATCHDOG_USEC; STOPPING=1 on SIGTERM. NOTIFY_SOCKET as a path.
#[tokio::test(flavor = "multi_thread")]
async fn ready_then_watchdog_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let systemd = UnixDatagram::bind(&path).unwrap();
    let started = Instant::now();
    let mut srv = serve(&[
        ("NOTIFY_SOCKET", path.display().to_string()),
        // 400 ms: a ping every 200 ms.
        ("WATCHDOG_USEC", "400000".into()),
    ]);
    let got = collect(&systemd, IO_TIMEOUT, |g| g.iter().any(|m| m == "READY=1"));
    assert_eq!(got, ["READY=1"]);
    // Ready means answering, at once.
    let addr = srv.addr;
    let a = udp_query(
        addr,
        "probe.privatelink.blob.core.windows.net",
        RecordType::A,
    )
    .await;
    assert_eq!(addrs(&a), ["10.9.9.9"]);
    let got = collect(&systemd, IO_TIMEOUT, |g| g.len() >= 3);
    assert_eq!(got, ["WATCHDOG=1"; 3]);
    eprintln!(
        "READY=1 and 3 WATCHDOG=1 within {:?} of the start",
        started.elapsed()
    );
    // A stopped process (the extreme of wedged) pings nothing.
    let pid = srv.child.id().to_string();
    let kill = |sig: &str| {
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        )
    };
    kill("-STOP");
    let _ = collect(&systemd, Duration::from_millis(300), |_| false);
    assert_eq!(
        collect(&systemd, Duration::from_secs(1), |_| false),
        Vec::<String>::new()
    );
    kill("-CONT");
    let got = collect(&systemd, IO_TIMEOUT, |g| {
        g.iter().any(|m| m == "WATCHDOG=1")
    });
    assert!(got.contains(&"WATCHDOG=1".to_string()), "{got:?}");
    kill("-TERM");
    let got = collect(&systemd, IO_TIMEOUT, |g| {
        g.iter().any(|m| m == "STOPPING=1")
    });
    assert_eq!(
        got.last().map(String::as_str),
        Some("STOPPING=1"),
        "{got:?}"
    );
    let t = Instant::now();
    while srv.child.try_wait().unwrap().is_none() {
        assert!(t.elapsed() < IO_TIMEOUT, "still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `@name`: an abstract socket (Linux), as systemd may pass; no
/// WATCHDOG_USEC: READY=1 and no pings.
#[tokio::test(flavor = "multi_thread")]
async fn abstract_socket_and_no_watchdog() {
    use std::os::linux::net::SocketAddrExt;
    // Unique to this process; abstract names vanish with their socket.
    let name = format!("amldns-test-{}-abstract", std::process::id());
    let at = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let systemd = UnixDatagram::bind_addr(&at).unwrap();
    let _srv = serve(&[("NOTIFY_SOCKET", format!("@{name}"))]);
    let got = collect(&systemd, IO_TIMEOUT, |g| g.iter().any(|m| m == "READY=1"));
    assert_eq!(got, ["READY=1"]);
    assert_eq!(
        collect(&systemd, Duration::from_millis(800), |_| false),
        Vec::<String>::new()
    );
}
