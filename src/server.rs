//! Sockets and the server's life: bind every listen address (UDP and TCP on
//! the same port), build the first snapshot, serve until shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, UdpSocket};
use tracing::info;

use crate::cache::Cache;
use crate::config::{Config, ConfigError};
use crate::forward::Forwarder;
use crate::handler::{Handler, Snapshot};
use crate::zone::ZoneTable;

/// RFC 7766 §6.2.3: servers may close idle TCP connections; a few seconds is
/// the usual choice (Unbound `tcp-idle-timeout` 30 s, BIND 30 s, dnsdist 5 s).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Responses queued per TCP connection before hickory waits for the client.
const TCP_RESPONSE_BUFFER: usize = 32;

/// How many times to look for a port free for both UDP and TCP when asked for port 0.
const PORT_ATTEMPTS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot set up forwarding: {0}")]
    Upstream(String),
    #[error("server stopped: {0}")]
    Stopped(String),
}

/// Sockets bound for every listen address.
pub struct Listeners {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
}

impl Listeners {
    /// Binds UDP and TCP on each address. Port 0 gets a port free for both,
    /// so tests can start the real server on `127.0.0.1:0`.
    pub async fn bind(addrs: &[SocketAddr]) -> Result<Self, ServeError> {
        let mut l = Listeners {
            udp: Vec::new(),
            tcp: Vec::new(),
        };
        for &addr in addrs {
            let (udp, tcp) = bind_pair(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?;
            l.udp.push(udp);
            l.tcp.push(tcp);
        }
        Ok(l)
    }

    /// The bound addresses (one per listen address; UDP and TCP share it).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }
}

async fn bind_pair(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // Someone holds the TCP side of the port UDP got: try another.
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port")))
}

/// A running configuration: the snapshot the handler reads.
pub struct State {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
}

impl State {
    /// Compiles `config` into the first snapshot (generation 1). Must run
    /// inside a tokio runtime (the forwarder's pools need one).
    pub fn new(config: &Config) -> Result<Self, ServeError> {
        let table = ZoneTable::compile(config, 1)?;
        let cache = Arc::new(Cache::new(config.upstream.cache_entries));
        let forwarder =
            Arc::new(Forwarder::new(&config.upstream, cache).map_err(ServeError::Upstream)?);
        let snapshot = Snapshot {
            table,
            allow: config.server.allow.clone(),
            forwarder,
        };
        Ok(State {
            snapshot: Arc::new(ArcSwap::from_pointee(snapshot)),
        })
    }
}

/// Serves DNS on `listeners` until `shutdown` completes, then stops accepting
/// and lets queries in flight finish.
pub async fn serve(
    listeners: Listeners,
    state: &State,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let mut server = hickory_server::Server::new(Handler::new(state.snapshot.clone()));
    for s in listeners.udp {
        server.register_socket(s);
    }
    for l in listeners.tcp {
        server.register_listener(l, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
    }
    tokio::select! {
        r = server.block_until_done() => r.map_err(|e| ServeError::Stopped(e.to_string())),
        () = shutdown => {
            info!("shutting down: finishing queries in flight");
            server
                .shutdown_gracefully()
                .await
                .map_err(|e| ServeError::Stopped(e.to_string()))
        }
    }
}
