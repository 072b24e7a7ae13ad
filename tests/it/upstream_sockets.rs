//! The sockets questions leave from, against a host on the network that
//! forges ICMP port-unreachables (no spoofing needed: ICMP errors may come
//! from anyone). Each question has a socket of its own, opened for it, so a
//! spray at every port while amldns is idle finds nothing to poison, and an
//! error that hits a question's socket costs that socket only. The ICMP is
//! written on a raw socket to 127.0.0.1, inside the namespace the tests run
//! in; every upstream is a stand-in on loopback.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use socket2::{Domain, Protocol, Socket, Type};

use crate::common::*;

fn config(upstreams: &[SocketAddr]) -> String {
    TestConfig {
        upstreams,
        upstream: "timeout_ms = 1000\nmax_qps = 100000",
        ..TestConfig::default()
    }
    .text()
}

/// The Internet checksum (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP port-unreachable saying a UDP datagram from `from` to `to`
/// found nobody there: what the kernel gives the socket bound to `from`
/// and connected to `to` as ECONNREFUSED.
fn port_unreachable(from: SocketAddrV4, to: SocketAddrV4) -> Vec<u8> {
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(20u16 + 8 + 32).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&from.ip().octets());
    ip[16..20].copy_from_slice(&to.ip().octets());
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut udp = [0u8; 8];
    udp[0..2].copy_from_slice(&from.port().to_be_bytes());
    udp[2..4].copy_from_slice(&to.port().to_be_bytes());
    udp[4..6].copy_from_slice(&(8u16 + 32).to_be_bytes());
    let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&ip);
    icmp.extend_from_slice(&udp);
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    icmp
}

/// A raw ICMP socket, or `None` (the test skipped) without the right to one.
fn icmp_sender() -> Option<Socket> {
    match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)) {
        Ok(s) => Some(s),
        Err(e) => {
            skip_or_fail(&format!(
                "no raw ICMP socket (run as root in a namespace): {e}"
            ));
            None
        }
    }
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("the stand-ins are on 127.0.0.1"),
    }
}

/// Sends `icmp` to 127.0.0.1, where the kernel hands it to the socket it
/// names.
fn send_icmp(raw: &Socket, icmp: &[u8]) {
    let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
    raw.send_to(icmp, &to.into()).unwrap();
}

/// `n` new names asked in turn; the rcodes that are SERVFAIL.
async fn servfails(srv: SocketAddr, prefix: &str, n: usize) -> usize {
    let mut failed = 0;
    for i in 0..n {
        let r = udp_query(srv, &format!("{prefix}{i}.example.com"), RecordType::A).await;
        failed += usize::from(r.metadata.response_code == ResponseCode::ServFail);
    }
    failed
}

/// A port-unreachable for every port (1024–65535) from a host on the
/// network, sent while amldns is idle after answering 2,100 names: the
/// next 300 new names are all answered. A socket kept open between
/// questions would keep the error and fail the next question sent from it
/// (a pool of 2,048 idle sockets did).
#[tokio::test]
async fn a_spray_while_idle_fails_no_question() {
    let Some(raw) = icmp_sender() else { return };
    let up = StandIn::zone().await;
    let srv = start(&config(&[up.addr])).await;
    assert_eq!(servfails(srv.addr, "before", 2100).await, 0);
    let upstream = v4(up.addr);
    for port in 1024..=65535u16 {
        let from = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        send_icmp(&raw, &port_unreachable(from, upstream));
    }
    assert_eq!(servfails(srv.addr, "after", 300).await, 0);
    srv.stop().await;
}

/// A port-unreachable for the port a question left from, sent once the
/// upstream has the question (which it never answers from that port): the
/// question is asked again from another socket, with another ID, and
/// answered within its deadline, with this one upstream.
#[tokio::test]
async fn an_icmp_error_on_a_try_costs_that_socket_only() {
    let Some(raw) = icmp_sender() else { return };
    // The first question's ID goes unanswered, whatever copy comes.
    let first = Arc::new(Mutex::new(None::<u16>));
    let up = StandIn::start({
        let first = first.clone();
        move |q| {
            let first = *first.lock().unwrap().get_or_insert(q.metadata.id);
            (q.metadata.id != first).then(|| upstream_zone(q))
        }
    })
    .await;
    let srv = start(&config(&[up.addr])).await;
    let asked = tokio::spawn(udp_query(srv.addr, "www.example.com", RecordType::A));
    let end = Instant::now() + 10 * amldns::resolve::QUERY_DEADLINE;
    let port = loop {
        if let Some(seen) = up.seen().first() {
            break seen.port;
        }
        assert!(Instant::now() < end, "the question never reached upstream");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let from = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    send_icmp(&raw, &port_unreachable(from, v4(up.addr)));
    let r: Message = asked.await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&r), ["192.0.2.10"]);
    let seen = up.seen();
    let ports: HashSet<u16> = seen.iter().map(|s| s.port).collect();
    assert!(ports.len() >= 2, "asked again from another port: {seen:?}");
    srv.stop().await;
}

/// A first upstream nobody listens at (the kernel answers port-unreachable)
/// and a working second: every question is answered, by the second.
#[tokio::test]
async fn a_closed_first_upstream_leaves_the_question_to_the_next() {
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let up = StandIn::zone().await;
    let srv = start(&config(&[closed_addr, up.addr])).await;
    assert_eq!(servfails(srv.addr, "n", 50).await, 0);
    srv.stop().await;
}
