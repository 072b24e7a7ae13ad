//! systemd's service notifications (sd_notify(3)): READY=1 once
//! amldns answers, WATCHDOG=1 while it keeps answering, STOPPING=1 when it
//! stops. A datagram to the socket named by `NOTIFY_SOCKET`; nothing when
//! that is unset (not under a `Type=notify` unit).
//!
//! "Answers" is proved the way a client would see it: a DNS query for a name
//! of the table, sent over UDP to amldns's own socket, must come back. That
//! covers what can wedge a server — a stuck socket loop, a handler that never
//! returns, a lock held forever, a runtime whose threads are all blocked —
//! and nothing that is not amldns's fault: the name is local, so the upstream
//! being down never stops the watchdog (amldns still answers its names).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// How often amldns asks itself until it first answers (for READY=1).
const READY_RETRY: Duration = Duration::from_millis(100);

/// How long a self-query may take before it counts as unanswered, at most.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Within that, how long to wait for a reply before asking again.
const RESEND: Duration = Duration::from_millis(500);

/// The socket systemd listens on for this service's notifications.
pub struct Notifier {
    socket: UnixDatagram,
    to: std::os::unix::net::SocketAddr,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`: a path, or `@name` for an abstract socket
    /// (sd_notify(3)). `None` when it is unset or unusable (logged).
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        match Self::at(path.as_encoded_bytes()) {
            Ok(n) => Some(n),
            Err(e) => {
                warn!("NOTIFY_SOCKET {}: {e}", path.to_string_lossy());
                None
            }
        }
    }

    /// The socket at `path` (`@name`: abstract).
    pub fn at(path: &[u8]) -> io::Result<Notifier> {
        let to = match path.strip_prefix(b"@") {
            #[cfg(target_os = "linux")]
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)?
            }
            #[cfg(not(target_os = "linux"))]
            Some(_) => return Err(io::Error::other("abstract sockets are Linux only")),
            None => {
                use std::os::unix::ffi::OsStrExt;
                std::os::unix::net::SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(path))?
            }
        };
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            to,
        })
    }

    /// Sends `state` (`READY=1`, ...). A full socket buffer is not worth
    /// blocking the server for: the datagram is small and systemd reads
    /// them at once.
    pub fn send(&self, state: &str) {
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.to) {
            warn!("cannot notify systemd ({state}): {e}");
        }
    }
}

/// The watchdog interval systemd asks for (`WATCHDOG_USEC`), unless
/// `WATCHDOG_PID` names another process (sd_watchdog_enabled(3)).
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID")
        && pid.to_str().and_then(|p| p.parse::<u32>().ok()) != Some(std::process::id())
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Tells systemd READY=1 once `dns` answers a query for `probe_name()`
/// (a name of the table being served), then WATCHDOG=1 every half
/// `watchdog` (sd_watchdog_enabled(3) advises half) for as long as it
/// answers; a miss sends nothing, and systemd restarts amldns once a whole
/// interval has passed without one. STOPPING=1 when `stop` is cancelled.
pub async fn run(
    notifier: Notifier,
    watchdog: Option<Duration>,
    dns: SocketAddr,
    probe_name: impl Fn() -> Option<String>,
    stop: CancellationToken,
) {
    let probe = |timeout| {
        let name = probe_name();
        async move { answers(dns, name.as_deref(), timeout).await }
    };
    loop {
        if probe(PROBE_TIMEOUT).await {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(READY_RETRY) => {}
            () = stop.cancelled() => return,
        }
    }
    notifier.send("READY=1");
    let Some(watchdog) = watchdog else {
        stop.cancelled().await;
        notifier.send("STOPPING=1");
        return;
    };
    let every = watchdog / 2;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => break,
        }
        if probe(PROBE_TIMEOUT.min(every)).await {
            notifier.send("WATCHDOG=1");
        } else {
            warn!(dns = %dns, "amldns did not answer its own query: not pinging the watchdog");
        }
    }
    notifier.send("STOPPING=1");
}

/// Where amldns can ask itself on `bound`: a wildcard address is reached on
/// loopback.
pub fn self_address(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

/// Whether `dns` answers a query for `name` (type A) within `timeout`: any
/// response with our ID counts, REFUSED included (`[server] allow` may leave
/// loopback out), as it still went through the socket loop and the handler.
/// Without a name, a query with no question, which amldns answers FORMERR.
async fn answers(dns: SocketAddr, name: Option<&str>, timeout: Duration) -> bool {
    let id: u16 = rand::random();
    let query = query(id, name);
    let local: SocketAddr = match dns {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let exchange = async {
        let sock = UdpSocket::bind(local).await?;
        sock.connect(dns).await?;
        let mut buf = [0u8; 512];
        let reply = async |buf: &mut [u8]| loop {
            let n = sock.recv(buf).await?;
            if n >= 2 && buf[..2] == id.to_be_bytes() {
                return io::Result::Ok(());
            }
        };
        // A datagram lost under load (a full receive buffer) is not a
        // wedged server: ask again, as a client would.
        loop {
            sock.send(&query).await?;
            if let Ok(r) = tokio::time::timeout(RESEND, reply(&mut buf)).await {
                return r;
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            debug!("self-query to {dns}: {e}");
            false
        }
        Err(_) => false,
    }
}

/// A query message (RFC 1035 §4.1): `name` A IN, or no question.
fn query(id: u16, name: Option<&str>) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    // Opcode QUERY, RD clear: amldns answers its own names either way.
    q.extend_from_slice(&[0, 0]);
    q.extend_from_slice(&[0, u8::from(name.is_some()), 0, 0, 0, 0, 0, 0]);
    if let Some(name) = name {
        for label in name.split('.').filter(|l| !l.is_empty()) {
            // Table names are validated: labels of 63 bytes at most.
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&[0, 1, 0, 1]);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// The next notification within `wait`, if any.
    async fn next(sock: &tokio::net::UnixDatagram, wait: Duration) -> Option<String> {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(wait, sock.recv(&mut buf))
            .await
            .ok()?
            .unwrap();
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// A wedged server (its DNS socket stops answering) gets no READY=1 and
    /// no WATCHDOG=1; pings resume when it answers again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pings_only_while_answered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = tokio::net::UnixDatagram::bind(&path).unwrap();
        // A stand-in for amldns's UDP socket that answers while `up`.
        let dns = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = dns.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(false));
        let responder = tokio::spawn({
            let up = up.clone();
            async move {
                let mut buf = [0u8; 512];
                loop {
                    let (n, from) = dns.recv_from(&mut buf).await.unwrap();
                    if up.load(Ordering::SeqCst) {
                        buf[2] |= 0x80;
                        let _ = dns.send_to(&buf[..n], from).await;
                    }
                }
            }
        });
        let stop = CancellationToken::new();
        let notifier = Notifier::at(path.as_os_str().as_encoded_bytes()).unwrap();
        let task = tokio::spawn(run(
            notifier,
            Some(Duration::from_millis(200)),
            addr,
            || Some("probe.example".into()),
            stop.clone(),
        ));
        let wait = Duration::from_secs(5);
        assert_eq!(next(&systemd, Duration::from_millis(500)).await, None);
        up.store(true, Ordering::SeqCst);
        assert_eq!(next(&systemd, wait).await.as_deref(), Some("READY=1"));
        assert_eq!(next(&systemd, wait).await.as_deref(), Some("WATCHDOG=1"));
        assert_eq!(next(&systemd, wait).await.as_deref(), Some("WATCHDOG=1"));
        // Wedged: a ping already under way may still land, then none for
        // several intervals.
        up.store(false, Ordering::SeqCst);
        while next(&systemd, Duration::from_millis(250)).await.is_some() {}
        assert_eq!(next(&systemd, Duration::from_millis(700)).await, None);
        up.store(true, Ordering::SeqCst);
        assert_eq!(next(&systemd, wait).await.as_deref(), Some("WATCHDOG=1"));
        stop.cancel();
        let mut last = None;
        while let Some(m) = next(&systemd, Duration::from_secs(2)).await {
            last = Some(m);
        }
        assert_eq!(last.as_deref(), Some("STOPPING=1"));
        task.await.unwrap();
        responder.abort();
    }

    #[test]
    fn query_bytes() {
        assert_eq!(
            query(0x1234, Some("a.bc")),
            [
                0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 2, b'b', b'c', 0, 0, 1, 0, 1
            ]
        );
        assert_eq!(query(1, None), [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn self_addresses() {
        let cases = [
            ("0.0.0.0:53", "127.0.0.1:53"),
            ("[::]:5353", "[::1]:5353"),
            ("10.1.0.4:53", "10.1.0.4:53"),
        ];
        for (bound, want) in cases {
            assert_eq!(
                self_address(bound.parse().unwrap()),
                want.parse().unwrap(),
                "{bound}"
            );
        }
    }
}
