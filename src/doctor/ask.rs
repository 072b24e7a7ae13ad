//! Asking resolvers as a client does: one question over UDP or TCP, each
//! with a timeout; a resolver's questions concurrent but bounded; a
//! resolver that stops answering given up on, so that a dead one costs
//! seconds, not a timeout per name.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use super::verdict::Got;

/// Each question's wait for its answer: stubs retry after 1 to 5 s, and a
/// resolver slower than this fails its clients already.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Questions in flight per resolver: as many as a busy client network
/// sends, far below what a resolver drops (Azure's: 1,000 per second per VM).
pub const IN_FLIGHT: usize = 256;
/// After this many timeouts in a row a resolver is taken for dead: its
/// remaining questions are `timeout` without being asked.
pub const GIVE_UP_AFTER: usize = 20;

/// One resolver on a client's path.
pub struct Resolver {
    pub addr: SocketAddr,
    /// Bounds its questions in flight.
    slots: Semaphore,
    /// Timeouts since its last answer.
    silent: AtomicUsize,
}

impl Resolver {
    pub fn new(addr: SocketAddr) -> Arc<Self> {
        Arc::new(Resolver {
            addr,
            slots: Semaphore::new(IN_FLIGHT),
            silent: AtomicUsize::new(0),
        })
    }

    /// Asks `name` `qtype` once, over TCP or UDP.
    pub async fn ask(&self, name: &str, qtype: RecordType, tcp: bool) -> Got {
        let Ok(_slot) = self.slots.acquire().await else {
            return Got::Timeout;
        };
        if self.silent.load(Ordering::Relaxed) >= GIVE_UP_AFTER {
            return Got::Timeout;
        }
        let exchange = async {
            let query = encode(name, qtype)?;
            if tcp {
                over_tcp(self.addr, &query).await
            } else {
                over_udp(self.addr, &query).await
            }
        };
        // A refused connection or an ICMP error is no answer either.
        match tokio::time::timeout(QUERY_TIMEOUT, exchange).await {
            Ok(Ok(got)) => {
                self.silent.store(0, Ordering::Relaxed);
                got
            }
            Ok(Err(_)) | Err(_) => {
                self.silent.fetch_add(1, Ordering::Relaxed);
                Got::Timeout
            }
        }
    }
}

/// The question, with RD (a client asks its resolver to recurse) and a
/// random ID, and the ID to check the reply by.
fn encode(name: &str, qtype: RecordType) -> std::io::Result<(u16, Vec<u8>)> {
    let invalid = |e: hickory_proto::ProtoError| std::io::Error::other(e.to_string());
    let id: u16 = rand::random();
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    let name = Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).map_err(invalid)?;
    m.add_query(Query::query(name, qtype));
    Ok((id, m.to_vec().map_err(invalid)?))
}

async fn over_udp(to: SocketAddr, (id, query): &(u16, Vec<u8>)) -> std::io::Result<Got> {
    let any: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let socket = UdpSocket::bind(any).await?;
    socket.connect(to).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        // Anything else (a late reply to nobody, a forgery) is not it.
        if let Some(got) = read(*id, &buf[..n]) {
            return Ok(got);
        }
    }
}

async fn over_tcp(to: SocketAddr, (id, query): &(u16, Vec<u8>)) -> std::io::Result<Got> {
    let mut stream = TcpStream::connect(to).await?;
    let len = u16::try_from(query.len()).map_err(std::io::Error::other)?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    loop {
        let len = stream.read_u16().await?;
        let mut reply = vec![0u8; usize::from(len)];
        stream.read_exact(&mut reply).await?;
        if let Some(got) = read(*id, &reply) {
            return Ok(got);
        }
    }
}

/// A reply to question `id`, as what it says of the name.
fn read(id: u16, bytes: &[u8]) -> Option<Got> {
    let m = Message::from_vec(bytes).ok()?;
    if m.metadata.id != id || m.metadata.message_type != MessageType::Response {
        return None;
    }
    Some(match m.metadata.response_code {
        ResponseCode::NoError => {
            let mut addrs: Vec<IpAddr> = m
                .answers
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect();
            addrs.sort();
            addrs.dedup();
            if addrs.is_empty() {
                Got::NoData
            } else {
                Got::Addrs(addrs)
            }
        }
        ResponseCode::NXDomain => Got::NxDomain,
        ResponseCode::Refused => Got::Refused,
        _ => Got::ServFail,
    })
}

/// Whether a TCP connection to `ip:port` opens within [`QUERY_TIMEOUT`].
pub async fn reachable(ip: IpAddr, port: u16) -> bool {
    let connect = TcpStream::connect(SocketAddr::new(ip, port));
    matches!(
        tokio::time::timeout(QUERY_TIMEOUT, connect).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: u16, rcode: ResponseCode, addrs: &[&str]) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        let name = Name::from_ascii("a.example.").unwrap();
        m.add_query(Query::query(name.clone(), RecordType::A));
        for a in addrs {
            let ip: std::net::Ipv4Addr = a.parse().unwrap();
            m.add_answer(hickory_proto::rr::Record::from_rdata(
                name.clone(),
                60,
                RData::A(ip.into()),
            ));
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn replies_read_as_what_they_say_of_the_name() {
        let ips = |s: &[&str]| {
            s.iter()
                .map(|a| a.parse().unwrap())
                .collect::<Vec<IpAddr>>()
        };
        let cases: Vec<(Vec<u8>, Option<Got>)> = vec![
            (
                reply(7, ResponseCode::NoError, &["10.0.0.2", "10.0.0.1"]),
                Some(Got::Addrs(ips(&["10.0.0.1", "10.0.0.2"]))),
            ),
            (reply(7, ResponseCode::NoError, &[]), Some(Got::NoData)),
            (reply(7, ResponseCode::NXDomain, &[]), Some(Got::NxDomain)),
            (reply(7, ResponseCode::Refused, &[]), Some(Got::Refused)),
            (reply(7, ResponseCode::ServFail, &[]), Some(Got::ServFail)),
            (reply(7, ResponseCode::FormErr, &[]), Some(Got::ServFail)),
            (reply(8, ResponseCode::NoError, &["10.0.0.1"]), None),
            (vec![1, 2, 3], None),
        ];
        for (bytes, want) in cases {
            assert_eq!(read(7, &bytes), want);
        }
    }
}
