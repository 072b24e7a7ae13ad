//! The UDP side of the server: our own socket loops, one thread each (a
//! socket per `[server] threads` on every listen address). Plain questions
//! for local names, and for forwarded names whose fresh answer the cache
//! holds, are answered on the spot by [`Handler::answer_fast`], in batches;
//! every other datagram goes, in a task of its own on the runtime, through
//! the general path that serves TCP too ([`Handler::answer`]). Owning the
//! loop also lets us drop responses (QR=1) before parsing: a response is
//! never answered, so two servers cannot answer each other in a loop.

use std::net::{SocketAddr, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::handler::Handler;
use crate::resolve::Transport;

mod batch;

use batch::{Inbox, Outbox};

pub use batch::prepare;

/// Queries on the general path (forwarded, or anything unusual) answered at
/// once per socket. Each ends within the 2.5 s query deadline, so this is
/// about 1,600 queries/s of the slowest kind; past it a datagram is dropped
/// (counted), as Unbound drops when its request list is full, rather than
/// letting a flood grow memory without bound.
pub const MAX_PENDING: usize = 4096;

/// Serves one UDP socket until `stop`, on the calling thread, which it
/// keeps (run it with `spawn_blocking`): it sleeps in the kernel's receive
/// between datagrams, waking at least every `batch::WAKE_EVERY` to look
/// at `stop`. General-path tasks are spawned on `runtime`.
pub fn serve(
    socket: Arc<UdpSocket>,
    handler: Arc<Handler>,
    stop: CancellationToken,
    runtime: tokio::runtime::Handle,
) {
    let (mut inbox, mut outbox) = (Inbox::default(), Outbox::default());
    let mut tally = handler.metrics().tally();
    let pending = Arc::new(Semaphore::new(MAX_PENDING));
    while !stop.is_cancelled() {
        let n = match inbox.recv(&socket) {
            Ok(n) => n,
            // ICMP errors from earlier sends surface here on Linux; the
            // socket itself is fine.
            Err(e) => {
                debug!("udp receive: {e}");
                continue;
            }
        };
        // One clock reading per batch: each answer's time is the batch's,
        // from its receipt to the last answer being ready to send.
        let received = Instant::now();
        for i in 0..n {
            let (msg, src) = inbox.get(i);
            // Too short for a header, a response (QR=1), or an address no
            // answer can go to: dropped unread.
            let Some(src) = src.filter(|&s| answerable(s)) else {
                continue;
            };
            if msg.len() < 12 || msg[2] & 0x80 != 0 {
                continue;
            }
            // A bug that panics here must not end the loop (and with it the
            // server): the panic hook logs and counts it, and the query
            // takes the general path, which answers SERVFAIL if it panics too.
            let fast = catch_unwind(AssertUnwindSafe(|| {
                handler.answer_fast(msg, src, outbox.next(), &mut tally)
            }));
            if let Ok(Some(len)) = fast {
                if !outbox.push(len, src) {
                    tally.dropped();
                }
                continue;
            }
            let Ok(slot) = pending.clone().try_acquire_owned() else {
                tally.dropped();
                continue;
            };
            let (socket, handler, msg) = (socket.clone(), handler.clone(), msg.to_vec());
            runtime.spawn(async move {
                let _slot = slot;
                handler
                    .answer_then(&msg, src, Transport::Udp, |answer| async move {
                        if let Err(e) = batch::send_now(&socket, &answer, src) {
                            debug!(%src, "udp send: {e}");
                        }
                    })
                    .await;
            });
        }
        // Counted before it is sent, as the general path does: a client
        // that holds its answer then always finds it in the metrics.
        tally.flush(handler.metrics(), received.elapsed());
        outbox.flush(&socket);
    }
}

/// Whether an answer can go back to `src`: not to port 0, nor to an
/// unspecified or broadcast address (also when v4 shows up as v6), where
/// it would reach nobody or everybody.
fn answerable(src: SocketAddr) -> bool {
    let ip = src.ip().to_canonical();
    let broadcast = match ip {
        std::net::IpAddr::V4(v4) => v4.is_broadcast(),
        std::net::IpAddr::V6(_) => false,
    };
    src.port() != 0 && !ip.is_unspecified() && !broadcast
}
