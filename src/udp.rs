//! The UDP side of the server: our own socket loop. Plain questions for
//! local names are answered on the spot by [`Handler::answer_fast`]; every
//! other datagram goes, in a task of its own, through the same handler that
//! serves TCP (hickory parses it, we answer it). Owning the loop also lets
//! us drop responses (QR=1) before parsing, as SPEC §3 asks.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::rr::Record;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::handler::Handler;
use crate::metrics::Transport;

/// RFC 1035 §4.2.1 / RFC 6891: queries are small; a larger datagram is
/// read whole up to this and then fails to parse (FORMERR).
const RECV_BUFFER: usize = 4096;
/// Our answers are at most 1232 bytes (the EDNS cap); room to spare.
const SEND_BUFFER: usize = 2048;

/// Queries on the general path (forwarded, or anything unusual) answered at
/// once per socket. Each ends within the 2.5 s query deadline, so this is
/// about 1,600 queries/s of the slowest kind; past it a datagram is dropped
/// (counted), as Unbound drops when its request list is full, rather than
/// letting a flood grow memory without bound.
pub const MAX_PENDING: usize = 4096;

/// Serves one UDP socket until `stop`.
pub async fn serve(socket: Arc<UdpSocket>, handler: Arc<Handler>, stop: CancellationToken) {
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut out = vec![0u8; SEND_BUFFER];
    let pending = Arc::new(Semaphore::new(MAX_PENDING));
    loop {
        let (n, src) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    // ICMP errors from earlier sends surface here on Linux;
                    // the socket itself is fine.
                    debug!("udp receive: {e}");
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        let msg = &buf[..n];
        // Too short for a header, a response (QR=1), or an address no
        // answer can go to: dropped unread.
        if n < 12 || msg[2] & 0x80 != 0 || !answerable(src) {
            continue;
        }
        if let Some(len) = handler.answer_fast(msg, src, &mut out) {
            if let Err(e) = socket.send_to(&out[..len], src).await {
                debug!(%src, "udp send: {e}");
            }
            continue;
        }
        let Ok(slot) = pending.clone().try_acquire_owned() else {
            handler.metrics().dropped.inc();
            continue;
        };
        let (socket, handler, msg) = (socket.clone(), handler.clone(), msg.to_vec());
        tokio::spawn(async move {
            let _slot = slot;
            let head = [msg[0], msg[1], msg[2], msg[3]];
            match Request::from_bytes(msg, src, Protocol::Udp) {
                Ok(request) => {
                    handler
                        .handle_request::<_, TokioTime>(&request, UdpReply { socket, dst: src })
                        .await;
                }
                Err(_) => {
                    let answer = handler.unparsed(head, src, Transport::Udp);
                    let _ = socket.send_to(&answer, src).await;
                }
            }
        });
    }
}

/// Whether an answer can go back to `src` (hickory's rule: no port 0, no
/// unspecified or broadcast address, also when v4 shows up as v6).
fn answerable(src: SocketAddr) -> bool {
    let ip = src.ip().to_canonical();
    let broadcast = match ip {
        std::net::IpAddr::V4(v4) => v4.is_broadcast(),
        std::net::IpAddr::V6(_) => false,
    };
    src.port() != 0 && !ip.is_unspecified() && !broadcast
}

/// Sends one answer on the socket the question came in on.
#[derive(Clone)]
struct UdpReply {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
}

#[async_trait::async_trait]
impl ResponseHandler for UdpReply {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        // The handler already made the answer fit (TC=1 otherwise); this is
        // the client's limit, as hickory applies it (RFC 6891 §6.2.3).
        let max = response.edns().map_or(512, |e| e.max_payload());
        let (bytes, info) = encode(response, max)?;
        self.socket.send_to(&bytes, self.dst).await?;
        Ok(info)
    }
}

/// An answer on the wire, at most `max` bytes (TC=1 past that).
pub fn encode<'a>(
    response: MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    max: u16,
) -> Result<(Vec<u8>, ResponseInfo), NetError> {
    let mut buf = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_max_size(max);
    let info = response.destructive_emit(&mut encoder)?;
    Ok((buf, info))
}
