//! Sockets and the server's life: bind every listen address (UDP and TCP on
//! the same port) and the metrics listener, build the first snapshot, serve
//! DNS and HTTP, watch for reloads, and stop gracefully.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::forward::QUERY_DEADLINE;
use crate::handler::{Handler, InFlight};
use crate::health::Health;
use crate::http::{self, Endpoints};
use crate::metrics::Metrics;
use crate::notify::{self, Notifier};
use crate::reload::{self, FileWatch, ReloadError, Reloader, WatchMode};
use crate::tcp;
use crate::udp;
use crate::upstream;

/// How many times to look for a port free for both UDP and TCP when asked for port 0.
const PORT_ATTEMPTS: usize = 20;

/// Connections the kernel queues before they are accepted (tokio's default).
const TCP_BACKLOG: i32 = 1024;

/// After the last answer is handed over at shutdown, time for it to be sent.
const SEND_FLUSH_GRACE: Duration = Duration::from_millis(100);

/// Background tasks (HTTP, watcher) get this long to finish at shutdown.
const TASK_STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Reload(#[from] ReloadError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("server stopped: {0}")]
    Stopped(String),
}

/// Sockets bound for every listen address, and the metrics listener.
pub struct Listeners {
    /// `threads` sockets per address, each to be drained by a loop of its own.
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<TcpListener>,
    http: Option<TcpListener>,
}

impl Listeners {
    /// Binds TCP and `threads` UDP sockets on each DNS address, and `metrics`
    /// if given. Port 0 gets a port free for both UDP and TCP, so tests can
    /// start the real server on `127.0.0.1:0`.
    pub async fn bind(
        dns: &[SocketAddr],
        threads: usize,
        metrics: Option<SocketAddr>,
    ) -> Result<Self, ServeError> {
        let mut l = Listeners {
            udp: Vec::new(),
            tcp: Vec::new(),
            http: None,
        };
        for &addr in dns {
            let bound =
                bind_group(addr, threads).map_err(|source| ServeError::Bind { addr, source });
            let (udp, tcp) = bound?;
            for s in udp {
                udp::prepare(&s).map_err(|source| ServeError::Bind { addr, source })?;
                l.udp.push(s);
            }
            l.tcp.push(tcp);
        }
        if let Some(addr) = metrics {
            l.http = Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind { addr, source })?,
            );
        }
        Ok(l)
    }

    /// The bound DNS addresses (UDP and TCP share each).
    pub fn dns_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// The bound metrics address.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }
}

/// The TCP listener on `addr` and `threads` UDP sockets on the same port.
///
/// With more than one thread the UDP sockets share the port through
/// SO_REUSEPORT, and the kernel spreads clients over them by address and
/// port, as Unbound's `so-reuseport` and Knot's do. Any process of the same
/// user could join such a group; the TCP listener, bound first and alone
/// (no SO_REUSEPORT), is what keeps a second amldns, or anything else
/// holding the port, out: its bind fails with "address in use".
fn bind_group(
    addr: SocketAddr,
    threads: usize,
) -> io::Result<(Vec<std::net::UdpSocket>, TcpListener)> {
    let shared = threads > 1;
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let tcp = bind_socket(addr, Type::STREAM, false)?;
        tcp.listen(TCP_BACKLOG)?;
        let tcp = TcpListener::from_std(tcp.into())?;
        let at = tcp.local_addr()?;
        let udp = (0..threads)
            .map(|_| bind_socket(at, Type::DGRAM, shared).map(std::net::UdpSocket::from))
            .collect::<io::Result<Vec<_>>>();
        match udp {
            Ok(udp) => return Ok((udp, tcp)),
            // Someone holds the UDP side of the port TCP got: try another.
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port")))
}

/// A non-blocking socket bound to `addr`. An IPv6 one is IPv6 only
/// (IPV6_V6ONLY, RFC 3493 §5.3): Linux makes `[::]:53` dual-stack by
/// default, so it would hold the IPv4 port too and `listen = ["0.0.0.0:53",
/// "[::]:53"]` would fail with "address in use". As in BIND and Unbound,
/// each family is listened on by its own address. `shared`: one of a
/// SO_REUSEPORT group ([`bind_group`]).
fn bind_socket(addr: SocketAddr, ty: Type, shared: bool) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if ty == Type::STREAM {
        // As tokio's `TcpListener::bind`: a restart can bind again while the
        // last run's connections are in TIME_WAIT.
        s.set_reuse_address(true)?;
    }
    if shared {
        s.set_reuse_port(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}

/// How `run` watches for reloads.
#[derive(Debug)]
pub struct Options {
    pub watch: WatchMode,
    /// SIGHUP, registered by the caller as early as possible (until it is,
    /// SIGHUP ends the process); `None` in tests that run several servers
    /// in one process.
    #[cfg(unix)]
    pub sighup: Option<tokio::signal::unix::Signal>,
}

/// Serves `config` on `listeners` until `shutdown` completes; then stops
/// accepting, lets queries in flight finish, and returns.
pub async fn run(
    config: Config,
    listeners: Listeners,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let metrics = Arc::new(Metrics::new());
    crate::logging::count_panics(metrics.clone());
    let open_files = raise_open_files_limit();
    let wanted = descriptors_wanted(&config);
    if open_files.is_some_and(|n| n < wanted as u64) {
        warn!(
            open_files,
            wanted, "the open-files limit is low for the configured limits: raise it (LimitNOFILE)"
        );
    }
    reserve_descriptors(open_files.map_or(wanted as u64, |n| n.min(wanted as u64)));
    let upstreams = config.upstream.servers.clone();
    let (tcp_connections, tcp_idle_timeout) = (
        config.server.tcp_connections,
        config.server.tcp_idle_timeout,
    );
    let control_allow = config
        .metrics
        .as_ref()
        .map(|m| m.control_allow.clone())
        .unwrap_or_default();
    let health = Arc::new(Health::default());
    let reloader = Arc::new(Reloader::new(config, metrics.clone(), health.clone())?);
    let stop = CancellationToken::new();
    let dns_addrs = listeners.dns_addrs();
    let http_addr = listeners.http_addr();
    let threads = listeners.udp.len() / dns_addrs.len().max(1);

    // Watching starts before the first query is answered, so that a change
    // made after that is never missed.
    let watch = FileWatch::start(reloader.clone(), options.watch).await;
    let in_flight = Arc::new(InFlight::default());
    let handler = Arc::new(Handler::new(
        reloader.snapshot().clone(),
        metrics.clone(),
        in_flight.clone(),
    ));
    let tcp_limits = tcp::Limits {
        connections: tcp_connections,
        idle_timeout: tcp_idle_timeout,
    };
    // Every DNS socket loop: they end only when told to.
    let dns_stop = CancellationToken::new();
    // The UDP loops' threads outlive a runtime that drops this future (a
    // test that failed, say) unless told to stop: the runtime would wait
    // for them for ever.
    let _dns_stop_on_drop = dns_stop.clone().drop_guard();
    let mut dns_tasks = tokio::task::JoinSet::new();
    // Each UDP socket gets a thread of its own, as the kernel's floor and
    // Unbound's threads have: it sleeps in the receive, with no readiness
    // poll between batches.
    let runtime = tokio::runtime::Handle::current();
    for s in listeners.udp {
        let (handler, stop, runtime) = (handler.clone(), dns_stop.clone(), runtime.clone());
        dns_tasks.spawn_blocking(move || udp::serve(Arc::new(s), handler, stop, runtime));
    }
    let tcp_registry = Arc::new(tcp::Registry::new(metrics.tcp_connections.clone()));
    for l in listeners.tcp {
        dns_tasks.spawn(tcp::serve(
            l,
            handler.clone(),
            tcp_registry.clone(),
            tcp_limits,
            dns_stop.clone(),
        ));
    }
    let ready = Arc::new(AtomicBool::new(true));
    let mut tasks = Vec::new();
    if let Some(listener) = listeners.http {
        let endpoints = Arc::new(Endpoints::new(
            reloader.clone(),
            metrics.clone(),
            health.clone(),
            ready.clone(),
            control_allow,
        ));
        tasks.push(tokio::spawn(http::serve(listener, endpoints, stop.clone())));
    }
    if let Some(watch) = watch {
        tasks.push(tokio::spawn(watch.run(stop.clone())));
    }
    // Idle until a config has [azure]; a reload may add it.
    tasks.push(tokio::spawn(crate::azure::run(
        reloader.clone(),
        metrics.clone(),
        health.clone(),
        stop.clone(),
    )));
    #[cfg(unix)]
    if let Some(hup) = options.sighup {
        tasks.push(tokio::spawn(reload::on_sighup(
            reloader.clone(),
            hup,
            stop.clone(),
        )));
    }

    // Under systemd (Type=notify): READY=1 once a query is answered, and
    // the watchdog while they keep being answered.
    let stopping = CancellationToken::new();
    if let (Some(notifier), Some(&first)) = (Notifier::from_env(), dns_addrs.first()) {
        let watchdog = notify::watchdog_interval();
        info!(watchdog = ?watchdog, "notifying systemd");
        tasks.push(tokio::spawn(notify::run(
            notifier,
            watchdog,
            notify::self_address(first),
            {
                let snapshot = reloader.snapshot().clone();
                move || {
                    let s = snapshot.load();
                    s.table.nodes().next().map(|n| n.name.to_string())
                }
            },
            stopping.clone(),
        )));
    }

    let status = reloader.status();
    info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = %joined(&dns_addrs),
        threads,
        metrics = %http_addr.map_or_else(|| "off".to_string(), |a| a.to_string()),
        names = status.names,
        upstreams = %joined(&upstreams),
        watch = %options.watch,
        open_files,
        "amldns serving"
    );

    let result = tokio::select! {
        // A socket loop only ends when told to: one that ends otherwise (a
        // panic) must not leave a server that answers on some sockets only.
        Some(ended) = dns_tasks.join_next() => Err(ServeError::Stopped(match ended {
            Err(e) => format!("a DNS socket loop failed: {e}"),
            Ok(()) => "a DNS socket loop ended".into(),
        })),
        () = shutdown => {
            // Refusing first, so that a query sent after the log line is
            // refused, never answered.
            in_flight.refuse_new();
            stopping.cancel();
            ready.store(false, Ordering::Relaxed);
            info!("shutting down: no new queries, finishing those in flight");
            // None takes longer than the query deadline.
            in_flight.drain(QUERY_DEADLINE + Duration::from_millis(500)).await;
            // Answers are handed to TCP connections' writers through a
            // queue; give the last ones a moment to be written.
            tokio::time::sleep(SEND_FLUSH_GRACE).await;
            Ok(())
        }
    };
    // DNS first, then the metrics listener and the watchers.
    stopping.cancel();
    dns_stop.cancel();
    while dns_tasks.join_next().await.is_some() {}
    stop.cancel();
    for t in tasks {
        if tokio::time::timeout(TASK_STOP_GRACE, t).await.is_err() {
            warn!("a background task did not stop in time");
        }
    }
    result
}

/// Addresses for a log line, as an operator writes them: `a, b`.
fn joined(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The descriptors `config`'s limits let amldns hold at once: a TCP
/// client each, an upstream question in flight each, the general-path
/// queries the UDP loops let wait, each upstream's idle socket pool, and
/// `DESCRIPTORS_BESIDE` for the rest.
pub fn descriptors_wanted(config: &Config) -> usize {
    config.server.tcp_connections
        + config.upstream.max_in_flight
        + udp::MAX_PENDING
        + upstream::POOL_IDLE * config.upstream.servers.len()
        + DESCRIPTORS_BESIDE
}

/// Listeners, the runtime's epoll and wakers, the watcher, logs: enough
/// that they do not make the table grow once more under load.
const DESCRIPTORS_BESIDE: usize = 256;

/// Each upstream question holds a socket of its own, and so does each TCP
/// client: raise the soft limit on open files (often 1024) to the hard one,
/// as Unbound and BIND do. The limit in force, if it can be read.
#[cfg(unix)]
fn raise_open_files_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other memory.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            ..lim
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        }
    }
    // rlim_t is u64 on Linux, not on every unix.
    #[allow(clippy::unnecessary_cast)]
    Some(lim.rlim_cur as u64)
}

#[cfg(not(unix))]
fn raise_open_files_limit() -> Option<u64> {
    None
}

/// Grows the descriptor table to hold `n` descriptors now, in one step.
/// Linux grows it by doubling as descriptors are opened, and in a process
/// with threads each doubling waits for an RCU grace period
/// (`expand_fdtable`) in the thread that opens one: while the upstream
/// socket pool first filled, the general path stalled 10–20 ms at each
/// doubling, and a miss's p99 was 3.6–4.0 ms instead of 0.32–0.36
/// (BENCHMARKS.md). The table never shrinks, so once is enough.
#[cfg(unix)]
fn reserve_descriptors(n: u64) {
    let Ok(highest) = libc::c_int::try_from(n.saturating_sub(1)) else {
        return;
    };
    let null = match std::fs::File::open("/dev/null") {
        Ok(f) => f,
        Err(e) => return debug!("descriptor table not reserved: /dev/null: {e}"),
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&null);
    // SAFETY: F_DUPFD_CLOEXEC duplicates a descriptor we hold onto the
    // lowest free number at or above `highest`, or fails; the duplicate is
    // closed at once and nothing else refers to it.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, highest) };
    if dup < 0 {
        return debug!(
            "descriptor table not reserved: {}",
            io::Error::last_os_error()
        );
    }
    // SAFETY: `dup` is ours alone, opened just above.
    unsafe { libc::close(dup) };
}

#[cfg(not(unix))]
fn reserve_descriptors(_: u64) {}
