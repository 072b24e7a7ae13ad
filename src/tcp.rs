//! The TCP side of the server (RFC 7766): our own accept loop, with limits
//! that keep any client from holding more than its share. At most
//! `tcp_connections` connections, on all listeners together; a new one past
//! that closes the connection idle the longest (or, when every one is busy,
//! the one busy longest). A connection with no complete query for
//! `tcp_idle_timeout` is closed, whether it sent nothing or half a message.
//! Each connection answers up to [`QUERIES_PER_CONNECTION`] queries at once,
//! in any order (RFC 7766 §6.2.1.1), and stops reading past that; a client
//! that does not read its answers is closed when a write stalls, so no
//! client can make amldns hold more than a bounded amount for it: a length
//! prefix past [`MAX_QUERY`] closes the connection unread.
//!
//! A client outside `allow` is never admitted, so outsiders cannot close
//! the connections of clients that are allowed: it is told REFUSED for its
//! first query and closed, outside the count, at most
//! [`REFUSALS_AT_ONCE`] at a time (past that, closed at once).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::handler::Handler;
use crate::resolve::Transport;
use crate::wire::MAX_QUERY;

/// Queries answered at once on one connection (Unbound's
/// `incoming-num-tcp`-style pipelining limit is of the same order).
pub const QUERIES_PER_CONNECTION: usize = 16;

/// Clients outside `allow` being refused at once, on all listeners.
pub const REFUSALS_AT_ONCE: usize = 64;

/// How long a client outside `allow` gets to send its first query, and then
/// to take the REFUSED.
const REFUSAL_WAIT: Duration = Duration::from_secs(1);

/// The connections open now, on every listener: whether each is answering
/// something, and since when it has been idle.
pub struct Registry {
    conns: Mutex<HashMap<u64, Conn>>,
    next_id: AtomicU64,
    /// `amldns_tcp_connections`, kept under the lock.
    open: IntGauge,
    /// Clients outside `allow` being answered REFUSED.
    refusals: Arc<Semaphore>,
}

struct Conn {
    /// Queries being answered.
    busy: usize,
    idle_since: Instant,
    close: CancellationToken,
}

impl Registry {
    pub fn new(open: IntGauge) -> Self {
        Registry {
            conns: Mutex::default(),
            next_id: AtomicU64::new(0),
            open,
            refusals: Arc::new(Semaphore::new(REFUSALS_AT_ONCE)),
        }
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Conn>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Room for one more connection: at the limit, the one idle longest is
    /// closed or, when all are busy, the one busy longest (a client that
    /// reads its answers slowly on purpose must not hold a slot forever).
    fn admit(&self, max: usize, stop: &CancellationToken) -> (u64, CancellationToken) {
        let mut conns = self.conns();
        if conns.len() >= max {
            let oldest = conns
                .iter()
                .min_by_key(|(_, c)| (c.busy > 0, c.idle_since))
                .map(|(id, _)| *id);
            if let Some(c) = oldest.and_then(|id| conns.remove(&id)) {
                c.close.cancel();
                self.open.dec();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = stop.child_token();
        conns.insert(
            id,
            Conn {
                busy: 0,
                idle_since: Instant::now(),
                close: close.clone(),
            },
        );
        self.open.inc();
        (id, close)
    }

    fn started(&self, id: u64) {
        if let Some(c) = self.conns().get_mut(&id) {
            c.busy += 1;
        }
    }

    fn finished(&self, id: u64) {
        if let Some(c) = self.conns().get_mut(&id) {
            c.busy = c.busy.saturating_sub(1);
            if c.busy == 0 {
                c.idle_since = Instant::now();
            }
        }
    }

    fn remove(&self, id: u64) {
        if self.conns().remove(&id).is_some() {
            self.open.dec();
        }
    }
}

/// Serves one TCP listener until `stop`.
pub async fn serve(
    listener: TcpListener,
    handler: Arc<Handler>,
    registry: Arc<Registry>,
    stop: CancellationToken,
) {
    loop {
        let (stream, src) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was
                    // accepted: the listener itself is fine. A pause keeps
                    // an fd shortage from spinning.
                    debug!("tcp accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        if !handler.allows(src.ip()) {
            match registry.refusals.clone().try_acquire_owned() {
                Ok(slot) => {
                    tokio::spawn(refuse(stream, src, handler.clone(), slot));
                }
                Err(_) => debug!(%src, "tcp: too many clients outside allow at once, closed"),
            }
            continue;
        }
        // As the snapshot in force says: a reload changes them for the
        // connections that come after it.
        let limits = handler.tcp_limits();
        let (id, close) = registry.admit(limits.connections, &stop);
        let (handler, registry) = (handler.clone(), registry.clone());
        tokio::spawn(async move {
            connection(
                stream,
                src,
                id,
                &close,
                &handler,
                &registry,
                limits.idle_timeout,
            )
            .await;
            registry.remove(id);
        });
    }
}

async fn connection(
    stream: TcpStream,
    src: SocketAddr,
    id: u64,
    close: &CancellationToken,
    handler: &Arc<Handler>,
    registry: &Arc<Registry>,
    idle_timeout: Duration,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel(QUERIES_PER_CONNECTION);
    let writer = tokio::spawn(write_answers(wr, rx, idle_timeout, close.clone()));
    let slots = Arc::new(Semaphore::new(QUERIES_PER_CONNECTION));
    loop {
        let msg = tokio::select! {
            r = tokio::time::timeout(idle_timeout, read_message(&mut rd)) => match r {
                Ok(Ok(msg)) => msg,
                // The idle timeout, the client closing, or a reset.
                _ => break,
            },
            () = close.cancelled() => break,
        };
        // Too short to answer, or a response (QR=1): dropped unanswered, so
        // that two servers can never answer each other in a loop.
        if msg.len() < 12 || msg[2] & 0x80 != 0 {
            continue;
        }
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            () = close.cancelled() => break,
        };
        registry.started(id);
        let (handler, registry, tx) = (handler.clone(), registry.clone(), tx.clone());
        tokio::spawn(async move {
            handler
                .answer_then(&msg, src, Transport::Tcp, |answer| async move {
                    // The connection may have closed meanwhile; nothing to
                    // do then.
                    let _ = tx.send(answer).await;
                })
                .await;
            registry.finished(id);
            drop(slot);
        });
    }
    // Answers still being made go out before the connection closes: the
    // writer ends once every query task has dropped its sender.
    drop(tx);
    let _ = writer.await;
}

/// Answers the first query of a client outside `allow` with REFUSED
/// (counted, as over UDP) and closes the connection.
async fn refuse(
    mut stream: TcpStream,
    src: SocketAddr,
    handler: Arc<Handler>,
    _slot: OwnedSemaphorePermit,
) {
    let Ok(Ok(msg)) = tokio::time::timeout(REFUSAL_WAIT, read_message(&mut stream)).await else {
        return;
    };
    if msg.len() < 12 || msg[2] & 0x80 != 0 {
        return;
    }
    // The resolution step refuses it, as it refuses outsiders over UDP.
    let answer = handler.answer(&msg, src, Transport::Tcp).await;
    let mut framed = Vec::with_capacity(2 + answer.len());
    framed.extend_from_slice(&(answer.len() as u16).to_be_bytes());
    framed.extend_from_slice(&answer);
    let _ = tokio::time::timeout(REFUSAL_WAIT, async {
        stream.write_all(&framed).await?;
        stream.shutdown().await
    })
    .await;
}

/// One length-prefixed message (RFC 1035 §4.2.2); one longer than
/// [`MAX_QUERY`] is an error, before any of it is read.
async fn read_message(rd: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let len = usize::from(rd.read_u16().await?);
    if len > MAX_QUERY {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a {len}-byte message is no query"),
        ));
    }
    let mut msg = vec![0u8; len];
    rd.read_exact(&mut msg).await?;
    Ok(msg)
}

/// Writes answers as they come; a write that stalls for `stall` (a client
/// that does not read) closes the connection.
async fn write_answers(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<u8>>,
    stall: Duration,
    close: CancellationToken,
) {
    while let Some(answer) = rx.recv().await {
        let mut framed = Vec::with_capacity(2 + answer.len());
        framed.extend_from_slice(&(answer.len() as u16).to_be_bytes());
        framed.extend_from_slice(&answer);
        let write = tokio::time::timeout(stall, wr.write_all(&framed));
        let ok = tokio::select! {
            r = write => matches!(r, Ok(Ok(()))),
            () = close.cancelled() => false,
        };
        if !ok {
            close.cancel();
            return;
        }
    }
}
