//! Sockets and the server's life: bind every listen address (UDP and TCP on
//! the same port) and the metrics listener, build the first snapshot, serve
//! DNS and HTTP, watch for reloads, and stop gracefully.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::handler::{Handler, InFlight};
use crate::health::Health;
use crate::http::{self, Endpoints};
use crate::metrics::Metrics;
use crate::notify::{self, Notifier};
use crate::reload::{self, FileWatch, ReloadError, Reloader, WatchMode};
use crate::resolve::QUERY_DEADLINE;
use crate::tcp;
use crate::udp;

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

/// Serves `config` on `listeners` until `signal` completes; then stops
/// accepting, lets queries in flight finish, and returns.
pub async fn run(
    config: Config,
    listeners: Listeners,
    options: Options,
    signal: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let open_files = make_room(&config);
    let serving = Serving::new(&config, &listeners, options.watch, open_files);
    let control_allow = config
        .metrics
        .as_ref()
        .map(|m| m.control_allow.clone())
        .unwrap_or_default();
    let shared = Shared::new(config)?;
    let shutdown = Shutdown::default();
    let Listeners { udp, tcp, http } = listeners;

    // Watching starts before the first query is answered, so that a change
    // made after that is never missed.
    let mut tasks = start_reloads(&shared, options, &shutdown).await;
    let mut dns = start_dns(udp, tcp, &shared, &shutdown);
    tasks.extend(http.map(|l| start_http(l, control_allow, &shared, &shutdown)));
    tasks.extend(start_notify(&serving.listen, &shared, &shutdown));
    serving.log(&shared);

    let result = serve_until(signal, &mut dns, &shutdown).await;
    shutdown.finish(dns, tasks).await;
    result
}

/// What every part of a running server reads.
struct Shared {
    /// The table in force, and the only way to change it.
    reloader: Arc<Reloader>,
    metrics: Arc<Metrics>,
    /// What is wrong with a source, for `/healthz` and `/status`.
    health: Arc<Health>,
}

impl Shared {
    /// Loads `config`'s first table.
    fn new(config: Config) -> Result<Self, ServeError> {
        let metrics = Arc::new(Metrics::new());
        crate::logging::count_panics(metrics.clone());
        let health = Arc::new(Health::default());
        let reloader = Arc::new(Reloader::new(config, metrics.clone(), health.clone())?);
        Ok(Shared {
            reloader,
            metrics,
            health,
        })
    }
}

/// The server's stop, in its phases. Each phase waits for the one before
/// it to be over, so each has a signal of its own:
///
/// 1. [`Shutdown::begin`]: new queries are refused, so that stubs move to
///    their next server at once; `/readyz` turns 503 and systemd is told
///    STOPPING=1 ([`Shutdown::begun`]). The DNS sockets stay open, and
///    [`Shutdown::drain`] waits for the queries in flight to be answered.
/// 2. [`Shutdown::finish`] ends the DNS socket loops ([`Shutdown::dns_done`])
///    and waits for them; then the metrics listener, the reload watchers
///    and the Azure rounds ([`Shutdown::done`]), so that the listener
///    answers (`/readyz` 503, the last counts) for as long as DNS does.
///
/// Dropped before it finished (a runtime dropped under a running server),
/// it ends the DNS loops: the UDP loops' threads would otherwise outlive
/// the runtime, which would wait for them for ever.
#[derive(Default)]
struct Shutdown {
    /// Counts the queries being answered, and refuses new ones once the
    /// stop began (a flag read on every query, so an atomic of its own).
    in_flight: Arc<InFlight>,
    begun: CancellationToken,
    dns_done: CancellationToken,
    done: CancellationToken,
}

impl Shutdown {
    /// For the handler: the queries it answers, refused once the stop began.
    fn in_flight(&self) -> Arc<InFlight> {
        self.in_flight.clone()
    }

    /// Cancelled when the stop begins.
    fn begun(&self) -> CancellationToken {
        self.begun.clone()
    }

    /// Cancelled when the DNS socket loops are to end.
    fn dns_done(&self) -> CancellationToken {
        self.dns_done.clone()
    }

    /// Cancelled when every other task is to end.
    fn done(&self) -> CancellationToken {
        self.done.clone()
    }

    /// Refuses new queries, then says so: a query sent after the log line
    /// is refused, never answered.
    fn begin(&self) {
        self.in_flight.refuse_new();
        self.begun.cancel();
        info!("shutting down: no new queries, finishing those in flight");
    }

    /// Waits for the queries in flight (none takes longer than the query
    /// deadline), then for their answers to be sent: those to TCP clients
    /// go to the connections' writers through a queue.
    async fn drain(&self) {
        self.in_flight
            .drain(QUERY_DEADLINE + Duration::from_millis(500))
            .await;
        tokio::time::sleep(SEND_FLUSH_GRACE).await;
    }

    /// Ends the DNS socket loops `dns`, then `tasks`.
    async fn finish(&self, mut dns: JoinSet<()>, tasks: Vec<JoinHandle<()>>) {
        // When a failed loop stopped the server, the stop begins here.
        self.begun.cancel();
        self.dns_done.cancel();
        while dns.join_next().await.is_some() {}
        self.done.cancel();
        for t in tasks {
            if tokio::time::timeout(TASK_STOP_GRACE, t).await.is_err() {
                warn!("a background task did not stop in time");
            }
        }
    }
}

impl Drop for Shutdown {
    fn drop(&mut self) {
        self.dns_done.cancel();
    }
}

/// Starts what changes the table while it serves: the file watcher,
/// SIGHUP, and the Azure rounds (idle until a config has `[azure]`; a
/// reload may add it).
async fn start_reloads(
    shared: &Shared,
    options: Options,
    shutdown: &Shutdown,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(watch) = FileWatch::start(shared.reloader.clone(), options.watch).await {
        tasks.push(tokio::spawn(watch.run(shutdown.done())));
    }
    tasks.push(tokio::spawn(crate::azure::run(
        shared.reloader.clone(),
        shared.metrics.clone(),
        shared.health.clone(),
        shutdown.done(),
    )));
    let snapshot = shared.reloader.snapshot().clone();
    tasks.push(tokio::spawn(crate::forward::keep_soas(
        shared.reloader.forwarder().clone(),
        move || {
            snapshot
                .load()
                .table
                .public_zones()
                .map(Box::from)
                .collect()
        },
        shutdown.done(),
    )));
    #[cfg(unix)]
    if let Some(hup) = options.sighup {
        tasks.push(tokio::spawn(reload::on_sighup(
            shared.reloader.clone(),
            hup,
            shutdown.done(),
        )));
    }
    tasks
}

/// Starts a loop on every DNS socket; they end only when told to.
///
/// Each UDP socket gets a thread of its own, as the kernel's floor and
/// Unbound's threads have: it sleeps in the receive, with no readiness
/// poll between batches.
fn start_dns(
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<TcpListener>,
    shared: &Shared,
    shutdown: &Shutdown,
) -> JoinSet<()> {
    let handler = Arc::new(Handler::new(
        shared.reloader.snapshot().clone(),
        shared.reloader.forwarder().clone(),
        shared.metrics.clone(),
        shutdown.in_flight(),
    ));
    let mut loops = JoinSet::new();
    let runtime = tokio::runtime::Handle::current();
    for s in udp {
        let (handler, stop, runtime) = (handler.clone(), shutdown.dns_done(), runtime.clone());
        loops.spawn_blocking(move || udp::serve(Arc::new(s), handler, stop, runtime));
    }
    let registry = Arc::new(tcp::Registry::new(shared.metrics.tcp.connections.clone()));
    for l in tcp {
        loops.spawn(tcp::serve(
            l,
            handler.clone(),
            registry.clone(),
            shutdown.dns_done(),
        ));
    }
    loops
}

/// Starts the metrics listener.
fn start_http(
    listener: TcpListener,
    control_allow: Vec<IpNet>,
    shared: &Shared,
    shutdown: &Shutdown,
) -> JoinHandle<()> {
    let endpoints = Arc::new(Endpoints::new(
        shared.reloader.clone(),
        shared.metrics.clone(),
        shared.health.clone(),
        shutdown.begun(),
        control_allow,
    ));
    tokio::spawn(http::serve(listener, endpoints, shutdown.done()))
}

/// Under systemd (Type=notify): READY=1 once a query to `listen`'s first
/// address is answered, and the watchdog while they keep being answered.
fn start_notify(
    listen: &[SocketAddr],
    shared: &Shared,
    shutdown: &Shutdown,
) -> Option<JoinHandle<()>> {
    let (notifier, &first) = (Notifier::from_env()?, listen.first()?);
    let watchdog = notify::watchdog_interval();
    info!(watchdog = ?watchdog, "notifying systemd");
    let snapshot = shared.reloader.snapshot().clone();
    Some(tokio::spawn(notify::run(
        notifier,
        watchdog,
        notify::self_address(first),
        move || {
            let s = snapshot.load();
            s.table.nodes().next().map(|n| n.name.to_string())
        },
        shutdown.begun(),
    )))
}

/// Serves until `signal`, then begins the stop and lets the queries in
/// flight finish. A DNS socket loop only ends when told to: one that ends
/// otherwise (a panic) must not leave a server that answers on some
/// sockets only, so it stops the server.
async fn serve_until(
    signal: impl Future<Output = ()>,
    dns: &mut JoinSet<()>,
    shutdown: &Shutdown,
) -> Result<(), ServeError> {
    tokio::select! {
        Some(ended) = dns.join_next() => Err(ServeError::Stopped(match ended {
            Err(e) => format!("a DNS socket loop failed: {e}"),
            Ok(()) => "a DNS socket loop ended".into(),
        })),
        () = signal => {
            shutdown.begin();
            shutdown.drain().await;
            Ok(())
        }
    }
}

/// What the line that says amldns is serving names.
struct Serving {
    listen: Vec<SocketAddr>,
    /// UDP sockets (and threads) per listen address.
    threads: usize,
    metrics: Option<SocketAddr>,
    upstreams: Vec<SocketAddr>,
    watch: WatchMode,
    open_files: Option<u64>,
}

impl Serving {
    fn new(
        config: &Config,
        listeners: &Listeners,
        watch: WatchMode,
        open_files: Option<u64>,
    ) -> Self {
        let listen = listeners.dns_addrs();
        Serving {
            threads: listeners.udp.len() / listen.len().max(1),
            listen,
            metrics: listeners.http_addr(),
            upstreams: config.upstream.servers.clone(),
            watch,
            open_files,
        }
    }

    fn log(&self, shared: &Shared) {
        info!(
            version = env!("CARGO_PKG_VERSION"),
            listen = %joined(&self.listen),
            threads = self.threads,
            metrics = %self.metrics.map_or_else(|| "off".to_string(), |a| a.to_string()),
            names = shared.reloader.status().names,
            upstreams = %joined(&self.upstreams),
            watch = %self.watch,
            open_files = self.open_files,
            "amldns serving"
        );
    }
}

/// Addresses for a log line, as an operator writes them: `a, b`.
fn joined(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Raises the open-files limit and reserves the descriptor table for
/// `config`'s limits, warning when the limit is too low for them. The
/// limit in force, if it can be read.
fn make_room(config: &Config) -> Option<u64> {
    let open_files = raise_open_files_limit();
    let wanted = descriptors_wanted(config);
    if open_files.is_some_and(|n| n < wanted as u64) {
        warn!(
            open_files,
            wanted, "the open-files limit is low for the configured limits: raise it (LimitNOFILE)"
        );
    }
    reserve_descriptors(open_files.map_or(wanted as u64, |n| n.min(wanted as u64)));
    open_files
}

/// The descriptors `config`'s limits let amldns hold at once: a TCP
/// client each, an upstream question in flight each (its one socket, UDP
/// or TCP; none is kept between questions), the general-path queries the
/// UDP loops let wait, and `DESCRIPTORS_BESIDE` for the rest.
pub fn descriptors_wanted(config: &Config) -> usize {
    config.server.tcp_connections
        + config.upstream.max_in_flight
        + udp::MAX_PENDING
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
