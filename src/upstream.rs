//! One question to one upstream resolver: over UDP from a socket of its own
//! on a random port with a random ID, then over TCP when the answer comes
//! back truncated or cut (RFC 1035 §4.2.1, RFC 7766 §5). A datagram that may
//! have been lost is sent again on the caller's schedule.
//!
//! Only a reply that matches the question is taken: from the server asked
//! (the socket is connected, so the kernel drops datagrams from anyone
//! else), QR=1, the same ID, opcode and question. Anything else is ignored
//! and the wait goes on (RFC 5452 §9.1), so a forged datagram can neither be
//! cached nor make the real reply be missed. The caller bounds the wait.
//!
//! No socket outlives its question, and none is kept idle: a socket
//! waiting between questions would collect forged answers and ICMP errors
//! sent to its port (anyone may spray every port) and hand them to the next
//! question. The kernel picks the port (port 0: a random one from
//! `ip_local_port_range`), so amldns never holds ports other programs may
//! be given.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use prometheus::IntGauge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tracing::debug;

/// DNS Flag Day 2020 / RFC 9715: the EDNS(0) payload that avoids IP
/// fragmentation; what we ask upstreams for and the most we answer with.
pub const EDNS_PAYLOAD: u16 = 1232;

/// Azure's resolver may send UDP answers larger than the EDNS size asked for;
/// read them whole.
const RECV_BUFFER: usize = 4096;

/// Datagrams a new socket may have queued before its question is sent
/// (sent blind to a port nobody could know yet) that are thrown away; more
/// means someone floods the port, and the socket is given up.
const DRAIN_AT_MOST: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the reply over TCP does not answer the question ({0})")]
    Mismatch(&'static str),
    #[error("the reply over TCP does not parse: {0}")]
    Malformed(String),
}

impl ExchangeError {
    /// Whether an ICMP error said nobody listens at the server's port (or a
    /// TCP connection was refused): what a spray of forged ICMP errors
    /// looks like too.
    pub fn refused(&self) -> bool {
        matches!(self, ExchangeError::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused)
    }
}

/// What a reply from the server is to the question asked.
#[derive(Debug)]
pub enum Verdict {
    /// It answers the question (any rcode).
    Answer(Box<Message>),
    /// The server says (TC=1), or shows (it does not parse), that the answer
    /// did not fit: ask again over TCP.
    Truncated,
    /// Not a reply to this question: ignore it and keep waiting.
    Ignore(&'static str),
}

/// What a client asked of DNSSEC, passed upstream as asked: DO, "DNSSEC
/// OK" in the OPT record (RFC 3225), and CD, "checking disabled" in the
/// header (RFC 4035 §3.2.2). The answers differ by both, so the cache keeps
/// them apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Dnssec {
    /// DO: the client wants RRSIG, NSEC and NSEC3 records with the answer.
    pub ok: bool,
    /// CD: the client validates for itself, so a validating upstream must
    /// not hold back data it finds bogus.
    pub checking_disabled: bool,
}

/// A question as it is put to an upstream.
#[derive(Debug, Clone)]
pub struct Ask {
    pub question: Query,
    pub dnssec: Dnssec,
    /// With an OPT record. Off for asking again a server that answered the
    /// OPT with FORMERR or NOTIMP (RFC 6891 §7); DO needs the OPT, so it
    /// goes too, while CD, a header bit, stays.
    pub edns: bool,
}

/// Asks `server` and returns its reply, UDP first, TCP when that is
/// truncated. The datagram is sent again at each of `resend_after` (from
/// the first send) that passes without a reply, if `may_resend` agrees
/// (given the resend's index in `resend_after`).
/// Runs until it has a reply or fails; bound it with a timeout. `open`
/// counts the sockets open for it.
///
/// A resend repeats the same bytes from the same socket: same ID, same
/// port. A late reply to any copy is then taken, and only one (port, ID)
/// pair is ever open for the question, so a forger gains nothing from the
/// resend (RFC 5452 §5: several open queries for one question are what
/// helps a forger).
///
/// An ICMP error for the socket (port unreachable: connection refused)
/// fails this exchange, and only this one: the socket goes with it.
pub async fn exchange(
    server: SocketAddr,
    open: &IntGauge,
    ask: &Ask,
    resend_after: &[Duration],
    mut may_resend: impl FnMut(usize) -> bool,
) -> Result<Message, ExchangeError> {
    let id: u16 = rand::random();
    let query = encode(id, ask);
    let socket = Counted::new(connect_fresh(server)?, open);
    let socket = &socket.socket;
    let sent = Instant::now();
    socket.send(&query).await?;
    let mut resends = resend_after.iter().map(|after| sent + *after).enumerate();
    let mut next_resend = resends.next();
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        // A port-unreachable shows up here as an error: fail now rather
        // than at the timeout.
        let n = match next_resend {
            Some((i, at)) => tokio::select! {
                got = socket.recv(&mut buf) => got?,
                () = tokio::time::sleep_until(at.into()) => {
                    if may_resend(i) {
                        socket.send(&query).await?;
                    }
                    next_resend = resends.next();
                    continue;
                }
            },
            None => socket.recv(&mut buf).await?,
        };
        match check_reply(id, &ask.question, &buf[..n]) {
            Verdict::Answer(msg) => return Ok(*msg),
            Verdict::Truncated => break,
            Verdict::Ignore(why) => debug!(%server, why, "ignored a datagram"),
        }
    }
    // The UDP socket is closed (its gauge with it) before TCP opens.
    exchange_tcp(server, ask).await
}

/// A question's UDP socket, counted in `amldns_upstream_sockets` while open.
struct Counted<'a> {
    socket: UdpSocket,
    open: &'a IntGauge,
}

impl<'a> Counted<'a> {
    fn new(socket: UdpSocket, open: &'a IntGauge) -> Self {
        open.inc();
        Counted { socket, open }
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// The same question over TCP, on a connection of its own.
async fn exchange_tcp(server: SocketAddr, ask: &Ask) -> Result<Message, ExchangeError> {
    let id: u16 = rand::random();
    let query = encode(id, ask);
    let mut stream = TcpStream::connect(server).await?;
    stream.set_nodelay(true)?;
    // One write for length and message: one segment on the wire.
    let mut framed = Vec::with_capacity(2 + query.len());
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(&query);
    stream.write_all(&framed).await?;
    let len = stream.read_u16().await?;
    let mut reply = vec![0u8; usize::from(len)];
    stream.read_exact(&mut reply).await?;
    match check_reply(id, &ask.question, &reply) {
        Verdict::Answer(msg) => Ok(*msg),
        // Over TCP nothing is cut: a reply that does not parse is broken.
        Verdict::Truncated => Err(ExchangeError::Malformed(
            Message::from_vec(&reply).map_or_else(|e| e.to_string(), |_| "TC=1 over TCP".into()),
        )),
        Verdict::Ignore(why) => Err(ExchangeError::Mismatch(why)),
    }
}

/// The query on the wire: RD=1, CD as the client asked; EDNS(0) with our
/// payload size and the client's DO, unless `ask.edns` is off.
pub fn encode(id: u16, ask: &Ask) -> Vec<u8> {
    let mut msg = Message::query();
    msg.metadata.id = id;
    msg.metadata.recursion_desired = true;
    msg.metadata.checking_disabled = ask.dnssec.checking_disabled;
    msg.add_query(ask.question.clone());
    if ask.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        edns.set_version(0);
        edns.set_dnssec_ok(ask.dnssec.ok);
        msg.set_edns(edns);
    }
    // A query built from a valid name and type always encodes.
    msg.to_vec().unwrap_or_default()
}

/// Judges `bytes`, received for the query `id`/`question`; pure, so that
/// every rule is tested without a network.
pub fn check_reply(id: u16, question: &Query, bytes: &[u8]) -> Verdict {
    let Some(head) = bytes.get(..4) else {
        return Verdict::Ignore("shorter than a header");
    };
    if u16::from_be_bytes([head[0], head[1]]) != id {
        return Verdict::Ignore("another ID");
    }
    if head[2] & 0x80 == 0 {
        return Verdict::Ignore("not a response (QR=0)");
    }
    if (head[2] >> 3) & 0x0f != 0 {
        return Verdict::Ignore("another opcode");
    }
    if head[2] & 0x02 != 0 {
        return Verdict::Truncated;
    }
    let Ok(msg) = Message::from_vec(bytes) else {
        // Azure's resolver may cut a large answer without setting TC: one
        // that does not parse is asked again over TCP.
        return Verdict::Truncated;
    };
    debug_assert_eq!(msg.metadata.message_type, MessageType::Response);
    debug_assert_eq!(msg.metadata.op_code, OpCode::Query);
    // Some servers leave the question out of an error they could not
    // attribute to it (FORMERR, NOTIMP); that carries no data to trust.
    let bare_error = msg.queries.is_empty()
        && matches!(
            msg.metadata.response_code,
            ResponseCode::FormErr | ResponseCode::NotImp
        );
    // Name comparison ignores case (RFC 4343).
    if !bare_error && msg.queries.as_slice() != std::slice::from_ref(question) {
        return Verdict::Ignore("another question");
    }
    Verdict::Answer(Box::new(msg))
}

/// A new UDP socket on a random port from the kernel's ephemeral range
/// (RFC 5452 §9.2, RFC 6056), connected to `server`, with nothing in it:
/// whatever reached it before its question is sent (a datagram, or an ICMP
/// error kept as the socket's pending error) is thrown away here, so that
/// nothing from before the question can answer it or fail it.
fn connect_fresh(server: SocketAddr) -> io::Result<UdpSocket> {
    let any: IpAddr = match server {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = std::net::UdpSocket::bind((any, 0))?;
    socket.connect(server)?;
    emptied(socket)
}

/// `socket`, non-blocking and under tokio, once its pending error and
/// queued datagrams are thrown away.
fn emptied(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
    socket.set_nonblocking(true)?;
    // Read here, on the plain socket: tokio's readiness of a socket just
    // registered may not show a datagram already queued.
    let _pending = socket.take_error()?;
    let mut buf = [0u8; 512];
    for _ in 0..DRAIN_AT_MOST {
        match socket.recv(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return UdpSocket::from_std(socket),
            // Read and dropped: a datagram, or an error that came meanwhile.
            _ => {}
        }
    }
    Err(io::Error::other(
        "datagrams flood a new socket before its question",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    fn question() -> Query {
        Query::query(Name::from_ascii("www.example.").unwrap(), RecordType::A)
    }

    fn reply(id: u16, q: Option<Query>, edit: impl FnOnce(&mut Message)) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Response, OpCode::Query);
        if let Some(q) = q {
            m.add_query(q);
        }
        m.add_answer(Record::from_rdata(
            Name::from_ascii("www.example.").unwrap(),
            60,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        edit(&mut m);
        m.to_vec().unwrap()
    }

    fn ask(ok: bool, checking_disabled: bool, edns: bool) -> Ask {
        Ask {
            question: question(),
            dnssec: Dnssec {
                ok,
                checking_disabled,
            },
            edns,
        }
    }

    /// RD always; DO and CD as the client asked; no OPT (so no DO) when
    /// asking again without EDNS.
    #[test]
    fn the_query_asks_for_recursion_with_the_clients_dnssec_flags() {
        // (DO, CD, EDNS) → (OPT's DO, CD); None: no OPT.
        let cases = [
            ((false, false, true), (Some(false), false)),
            ((true, false, true), (Some(true), false)),
            ((false, true, true), (Some(false), true)),
            ((true, true, true), (Some(true), true)),
            ((true, true, false), (None, true)),
            ((false, false, false), (None, false)),
        ];
        for ((ok, cd, edns), want) in cases {
            let m = Message::from_vec(&encode(0x1234, &ask(ok, cd, edns))).unwrap();
            assert_eq!(m.metadata.id, 0x1234);
            assert!(m.metadata.recursion_desired);
            assert_eq!(m.queries, vec![question()]);
            if let Some(e) = &m.edns {
                assert_eq!((e.max_payload(), e.version()), (EDNS_PAYLOAD, 0));
            }
            let got = (
                m.edns.map(|e| e.flags().dnssec_ok),
                m.metadata.checking_disabled,
            );
            assert_eq!(got, want, "DO {ok}, CD {cd}, EDNS {edns}");
        }
    }

    /// A server that ignores the first datagram: the resend, same ID from
    /// the same port, is answered; a resend refused by `may_resend` is not
    /// sent.
    #[tokio::test]
    async fn a_lost_datagram_is_sent_again_from_the_same_port_with_the_same_id() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let a = ask(false, false, true);
        let asked = tokio::spawn({
            let a = a.clone();
            async move {
                let after = [Duration::from_millis(50), Duration::from_millis(100)];
                exchange(addr, &IntGauge::new("s", "s").unwrap(), &a, &after, |i| {
                    i == 1
                })
                .await
            }
        });
        let mut buf = [0u8; 512];
        let wait = Duration::from_secs(5);
        let (n, first) = tokio::time::timeout(wait, server.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let id = Message::from_vec(&buf[..n]).unwrap().metadata.id;
        let t = Instant::now();
        let (n, again) = tokio::time::timeout(wait, server.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        // The first resend was not allowed: this is the second, at 100 ms.
        assert!(
            t.elapsed() >= Duration::from_millis(80),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(again, first, "the same source port");
        assert_eq!(&buf[..n], &encode(id, &a)[..], "the same bytes");
        server
            .send_to(&reply(id, Some(question()), |_| {}), again)
            .await
            .unwrap();
        let got = tokio::time::timeout(wait, asked).await.unwrap().unwrap();
        assert_eq!(got.unwrap().answers.len(), 1);
    }

    /// Asks `n` questions in turn of a server that answers each; the
    /// source port of each, and the sockets still open after each.
    async fn ports_used(server: &UdpSocket, n: usize) -> Vec<(u16, i64)> {
        let open = IntGauge::new("s", "s").unwrap();
        let mut ports = Vec::new();
        for _ in 0..n {
            let answer = async {
                let mut buf = [0u8; 512];
                let (len, from) = server.recv_from(&mut buf).await.unwrap();
                let id = Message::from_vec(&buf[..len]).unwrap().metadata.id;
                server
                    .send_to(&reply(id, Some(question()), |_| {}), from)
                    .await
                    .unwrap();
                from.port()
            };
            let a = ask(false, false, true);
            let addr = server.local_addr().unwrap();
            let asked = exchange(addr, &open, &a, &[], |_| false);
            let wait = Duration::from_secs(5);
            let (got, port) = tokio::time::timeout(wait, async { tokio::join!(asked, answer) })
                .await
                .unwrap();
            assert_eq!(got.unwrap().answers.len(), 1);
            ports.push((port, open.get()));
        }
        ports
    }

    /// Each question leaves from a socket of its own, closed when it is
    /// answered: no two in a row share a port, and none stays open.
    #[tokio::test]
    async fn each_question_has_a_socket_of_its_own_closed_after() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let p = ports_used(&server, 50).await;
        assert!(p.iter().all(|&(_, open)| open == 0), "{p:?}");
        let distinct: std::collections::HashSet<_> = p.iter().map(|&(port, _)| port).collect();
        // Random ports from ~28,000 (Linux's default range): a repeat among
        // 50 is possible, a handful is not.
        assert!(distinct.len() >= 45, "{p:?}");
    }

    /// Whatever reached a socket before its question was sent, datagrams
    /// from the server's address (forged answers) or an ICMP error kept as
    /// its pending error, is gone before the socket is used: the next read
    /// sees only what comes after.
    #[tokio::test]
    async fn nothing_that_came_before_the_question_is_read() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // A port-unreachable on loopback comes back before `send` returns
        // and stays as the socket's pending error.
        socket.connect(closed_addr).unwrap();
        socket.send(b"x").unwrap();
        socket.connect(server.local_addr().unwrap()).unwrap();
        let to = socket.local_addr().unwrap();
        for id in 0..3u16 {
            server
                .send_to(&reply(id, Some(question()), |_| {}), to)
                .unwrap();
        }
        let socket = emptied(socket).unwrap();
        let mut buf = [0u8; 512];
        let early = tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buf)).await;
        assert!(early.is_err(), "read {early:?}");
        server.send_to(b"after", to).unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"after");
    }

    #[test]
    fn only_a_matching_reply_is_taken() {
        let q = question();
        let upper = Query::query(Name::from_ascii("WWW.Example.").unwrap(), RecordType::A);
        let aaaa = Query::query(q.name().clone(), RecordType::AAAA);
        let other = Query::query(Name::from_ascii("evil.example.").unwrap(), RecordType::A);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (reply(7, Some(q.clone()), |_| {}), "answer"),
            (reply(7, Some(upper), |_| {}), "answer"),
            (
                reply(7, None, |m| {
                    m.metadata.response_code = ResponseCode::FormErr
                }),
                "answer",
            ),
            (reply(8, Some(q.clone()), |_| {}), "another ID"),
            (
                reply(7, Some(q.clone()), |m| {
                    m.metadata.message_type = MessageType::Query
                }),
                "not a response (QR=0)",
            ),
            (
                reply(7, Some(q.clone()), |m| m.metadata.op_code = OpCode::Notify),
                "another opcode",
            ),
            (reply(7, Some(aaaa), |_| {}), "another question"),
            (reply(7, Some(other), |_| {}), "another question"),
            (reply(7, None, |_| {}), "another question"),
            (
                reply(7, Some(q.clone()), |m| m.metadata.truncation = true),
                "truncated",
            ),
            (vec![0, 7, 0x80], "shorter than a header"),
        ];
        for (bytes, want) in cases {
            let got = match check_reply(7, &q, &bytes) {
                Verdict::Answer(_) => "answer",
                Verdict::Truncated => "truncated",
                Verdict::Ignore(why) => why,
            };
            assert_eq!(got, want, "{bytes:?}");
        }
        // Cut short without TC: the answer did not fit.
        let mut cut = reply(7, Some(q.clone()), |_| {});
        cut.truncate(cut.len() - 3);
        assert!(matches!(check_reply(7, &q, &cut), Verdict::Truncated));
    }
}
