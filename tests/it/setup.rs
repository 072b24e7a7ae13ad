//! Setup several subjects share: an in-process server with metrics and one
//! local name, the same for `amldns serve` as a process, an upstream whose
//! answers are big, and waits on a TCP connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::TcpStream;

use crate::common::*;

/// The local name every config here holds.
pub(crate) const LOCAL: &str = "probe.privatelink.blob.core.windows.net";

/// An in-process server's config: loopback clients, the metrics listener,
/// `upstreams` tried for `timeout_ms` each, and [`LOCAL`].
pub(crate) fn config(upstreams: &[SocketAddr], timeout_ms: u64, upstream_keys: &str) -> String {
    config_with_server(upstreams, timeout_ms, upstream_keys, "")
}

/// [`config`], with `upstream_keys` added to `[upstream]` and `server_keys`
/// to `[server]`.
pub(crate) fn config_with_server(
    upstreams: &[SocketAddr],
    timeout_ms: u64,
    upstream_keys: &str,
    server_keys: &str,
) -> String {
    let servers: Vec<String> = upstreams.iter().map(|a| a.to_string()).collect();
    format!(
        "[server]\nallow = [\"127.0.0.1/32\"]\n{server_keys}\n[metrics]\nlisten = \"127.0.0.1:0\"\n\
         [upstream]\nservers = {servers:?}\ntimeout_ms = {timeout_ms}\n{upstream_keys}\n\
         [[record]]\nname = \"{LOCAL}\"\na = [\"10.9.9.9\"]\n"
    )
}

/// The same for `amldns serve` as a process, on a port of its choosing.
pub(crate) fn process_config(upstream: SocketAddr) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nallow = [\"127.0.0.1/32\"]\n[upstream]\n\
         servers = [\"{upstream}\"]\ntimeout_ms = 2000\n\
         [[record]]\nname = \"{LOCAL}\"\na = [\"10.9.9.9\"]\n"
    )
}

/// Records in an upstream's oversized UDP answer: about 3.9 KB, past the
/// 1232 bytes amldns asks for; [`UDP_READ`] with the padding.
pub(crate) const BIG_UDP_RECORDS: usize = 150;

/// The largest UDP answer amldns reads whole from an upstream: what Azure's
/// resolver may send past the 1232 bytes asked for.
pub(crate) const UDP_READ: usize = 4096;

/// [`upstream_zone`] and a few more names: a negative answer whose SOA
/// minimum is 2 s, an answer too big for 1232 bytes, and an rcode that is
/// neither an answer nor SERVFAIL/REFUSED.
pub(crate) fn edge_case_zone(q: &Message) -> Message {
    let qname = q.queries[0]
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_lowercase();
    let mut r = reply_to(q);
    match qname.as_str() {
        "short-negative.example.com" => {
            r.metadata.response_code = ResponseCode::NXDomain;
            r.authorities.push(soa_record("example.com.", 300, 2));
        }
        "big-udp.example.com" => {
            r.answers = (0..BIG_UDP_RECORDS)
                .map(|i| {
                    a_record(
                        "big-udp.example.com.",
                        300,
                        &format!("198.51.{}.{}", i / 250, i % 250 + 1),
                    )
                })
                .collect();
            // Padded to exactly UDP_READ bytes with a TXT record in the
            // additional section, which no answer uses.
            let pad = |len: usize| {
                let text = "x".repeat(len);
                let strings = text.as_bytes().chunks(255);
                let strings = strings.map(|c| String::from_utf8(c.to_vec()).unwrap());
                Record::from_rdata(
                    name("pad.example.com."),
                    300,
                    RData::TXT(TXT::new(strings.collect())),
                )
            };
            r.additionals.push(pad(0));
            let short = UDP_READ - r.to_vec().unwrap().len();
            // Each string of 255 costs a length byte too.
            for len in (0..=short).rev() {
                r.additionals[0] = pad(len);
                if r.to_vec().unwrap().len() == UDP_READ {
                    break;
                }
            }
        }
        "notauth.example.com" => r.metadata.response_code = ResponseCode::NotAuth,
        // About 47 KB: only over TCP.
        "huge.example.com" => {
            r.answers = (0..2000)
                .map(|i| {
                    a_record(
                        "huge.example.com.",
                        300,
                        &format!("198.18.{}.{}", i / 250, i % 250 + 1),
                    )
                })
                .collect();
        }
        _ => return upstream_zone(q),
    }
    r
}

/// Reads one framed message, within [`IO_TIMEOUT`].
pub(crate) async fn read_reply(s: &mut TcpStream) -> Message {
    let bytes = tokio::time::timeout(IO_TIMEOUT, read_frame(s))
        .await
        .expect("a TCP reply in time")
        .unwrap();
    Message::from_vec(&bytes).unwrap()
}

/// Whether the server closes `s` (EOF or reset) within [`IO_TIMEOUT`].
pub(crate) async fn closed(s: &mut TcpStream) -> bool {
    matches!(
        tokio::time::timeout(IO_TIMEOUT, read_frame(s)).await,
        Ok(Err(_))
    )
}

/// Waits, up to [`IO_TIMEOUT`], until `cond` holds.
pub(crate) async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < IO_TIMEOUT, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A table with one name, `ws.corp.example`, answering `ip`.
pub(crate) fn one_name(upstream: SocketAddr, ip: &str) -> String {
    with_metrics(
        upstream,
        &format!("[[record]]\nname = \"ws.corp.example\"\na = [\"{ip}\"]\n"),
    )
}

pub(crate) async fn answer(srv: &Running, name: &str) -> Vec<String> {
    addrs(&udp_query(srv.addr, name, RecordType::A).await)
}
