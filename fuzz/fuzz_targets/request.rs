//! Arbitrary bytes as a UDP query from an allowed client, through what
//! `udp::serve` does with a datagram: the fast path (`Handler::answer_fast`,
//! the `wire` writer), else the general path (`Handler::answer`: the
//! `codec` parser, the resolution step `resolve::plan`, the `codec`
//! encoder).
//!
//! No I/O: the handler's forwarder has no upstream servers and no permit to
//! ask one (`max_in_flight = 0`), so a name the table does not answer gets
//! SERVFAIL (REFUSED without RD) at once and no socket is ever opened.
//!
//! Invariants, beyond "no panic": every answer parses with hickory, has QR=1
//! and the query's ID, fits the client's UDP size (512 without EDNS, else its
//! payload clamped to 512..=1232), and echoes the question as sent; a fast
//! answer is the general path's answer, byte for byte (as
//! `tests/it/encoders.rs` checks over a corpus).

#![no_main]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use amldns::azure::Discovered;
use amldns::handler::Handler;
use amldns::metrics::Metrics;
use amldns::resolve::Transport;
use amldns::{config, snapshot};
use hickory_proto::op::{Message, MessageType};
use libfuzzer_sys::fuzz_target;

/// The config of every kind of local name (`tests/fixtures`).
mod fixtures {
    #![allow(dead_code)] // only the config is used here
    include!("../../tests/fixtures/workspace.rs");
}

/// Inside the default `allow` (RFC 1918).
const CLIENT: &str = "10.0.0.1:5353";

struct World {
    handler: Handler,
    runtime: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut config =
            config::parse(Path::new("fuzz.toml"), fixtures::EVERY_KIND).expect("the fuzz config");
        // Nothing to ask and no permit to ask it: forwarding fails at once,
        // without a socket.
        config.upstream.servers.clear();
        config.upstream.max_in_flight = 0;
        let built =
            snapshot::build(&config, &Discovered::default(), 1).expect("the fuzz table");
        World {
            handler: Handler::standalone(built, Arc::new(Metrics::new())),
            // Timers only: no I/O driver.
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime"),
        }
    })
}

/// The question section as written (names keep their case).
fn questions(m: &Message) -> Vec<String> {
    m.queries
        .iter()
        .map(|q| {
            format!(
                "{} {} {}",
                q.name().to_ascii(),
                q.query_class(),
                q.query_type()
            )
        })
        .collect()
}

/// Checks an answer to `query` (whose ID is `id`; `None` when it does not
/// parse) sent over UDP.
fn check_answer(what: &str, query: Option<&Message>, id: u16, bytes: &[u8]) -> Message {
    let limit = query
        .and_then(|q| q.edns.as_ref())
        .map_or(512, |e| usize::from(e.max_payload().clamp(512, 1232)));
    assert!(
        bytes.len() <= limit,
        "{what} answer of {} bytes, over the client's {limit}",
        bytes.len()
    );
    let m =
        Message::from_vec(bytes).unwrap_or_else(|e| panic!("{what} answer does not parse: {e}"));
    assert_eq!(
        m.metadata.message_type,
        MessageType::Response,
        "{what}: QR=1"
    );
    assert_eq!(m.metadata.id, id, "{what}: the query's ID");
    if let Some(q) = query
        && q.queries.len() == 1
        && !m.queries.is_empty()
    {
        assert_eq!(questions(&m), questions(q), "{what}: the question echoed as asked");
    }
    m
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let client: SocketAddr = CLIENT.parse().unwrap();
    // What udp::serve drops unread: shorter than a header, or a response.
    if data.len() < 12 || data[2] & 0x80 != 0 {
        return;
    }
    let id = u16::from_be_bytes([data[0], data[1]]);
    let mut out = [0u8; 2048];
    let mut tally = w.handler.metrics().tally();
    let fast = w
        .handler
        .answer_fast(data, client, &mut out, &mut tally)
        .map(|n| out[..n].to_vec());
    let general = w
        .runtime
        .block_on(w.handler.answer(data, client, Transport::Udp));
    let query = amldns::codec::parse(data);
    match &query {
        Some(_) => {
            check_answer("general", query.as_ref(), id, &general);
        }
        None => {
            assert!(fast.is_none(), "a fast answer to what the parser cannot read");
            assert_eq!(general.len(), 12, "FORMERR: a bare header");
            assert_eq!(general[..2], data[..2], "FORMERR: the query's ID");
            assert_eq!(general[2] & 0x80, 0x80, "FORMERR: QR=1");
            assert_eq!(general[3] & 0x0F, 1, "FORMERR: the rcode");
        }
    }
    if let Some(fast) = fast {
        check_answer("fast", query.as_ref(), id, &fast);
        assert_eq!(fast, general, "the fast and general paths write the same bytes");
    }
});
