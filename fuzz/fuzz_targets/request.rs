//! Arbitrary bytes as a UDP query from an allowed client, through what
//! `udp::serve` does with a datagram: the fast path (`Handler::answer_fast`),
//! else the general path's parse (`udp::parse`) and the general path
//! (`Handler::handle_request`), else FORMERR (`Handler::unparsed`).
//!
//! No I/O: the handler's forwarder has no upstream servers and no permit to
//! ask one (`max_in_flight = 0`), so a name the table does not answer gets
//! SERVFAIL at once and no socket is ever opened. The answers are captured in
//! memory, encoded as the UDP loop encodes them.
//!
//! Invariants, beyond "no panic": every answer parses with hickory, has QR=1
//! and the query's ID, fits the client's UDP size (512 without EDNS, else its
//! payload clamped to 512..=1232), and echoes the question as sent; a fast
//! answer is the general path's answer (flags, rcode, question, records,
//! EDNS size), as `tests/dns.rs` checks for a few names.

#![no_main]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use amldns::cache::Cache;
use amldns::config;
use amldns::forward::Forwarder;
use amldns::handler::{Handler, InFlight, Snapshot};
use amldns::metrics::{Metrics, Transport};
use arc_swap::ArcSwap;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::rr::Record;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use libfuzzer_sys::fuzz_target;

/// Inside the default `allow` (RFC 1918).
const CLIENT: &str = "10.0.0.1:5353";

/// Two workspaces (one with an instance wildcard, one with an inference
/// wildcard, in another cloud), Azure's CNAME answers, a record wildcard, a
/// CNAME chain inside the table, one that leaves it, and a name with too many
/// addresses for 512 bytes.
fn config_text() -> String {
    let many: Vec<String> = (1..=40).map(|i| format!("\"10.4.0.{i}\"")).collect();
    format!(
        r#"
[upstream]
servers = ["127.0.0.1:9"]
[zone]
answer = "cname"
[[workspace]]
name = "mlw-contoso-prod"
id = "fb7e20a0-8891-458b-b969-55ddb3382f51"
region = "eastus"
ip = "10.1.0.5"
notebook_ip = "10.1.0.6"
inference_ip = "10.1.0.7"
instances = ["ci-alice"]
instances_wildcard = true
online_endpoints = ["fraud-score"]
[[workspace]]
name = "hub-contoso-research"
id = "03ce50c0-2e18-48ad-9e4a-ca338f571072"
region = "chinaeast2"
cloud = "china"
ip = "10.2.0.5"
inference_wildcard = true
projects = [ {{ name = "proj-a", id = "0d5c2f4e-7a1b-4c3d-9e8f-102030405060" }} ]
[[record]]
name = "dual.corp.example"
a = ["10.3.0.1", "10.3.0.2"]
aaaa = ["fd00::3"]
[[record]]
name = "alias.corp.example"
cname = "mid.corp.example"
[[record]]
name = "mid.corp.example"
cname = "dual.corp.example"
ttl = 5
[[record]]
name = "web.corp.example"
cname = "www.example.com"
[[record]]
name = "*.wild.corp.example"
a = ["10.3.1.1"]
[[record]]
name = "many.corp.example"
a = [{}]
"#,
        many.join(", ")
    )
}

struct World {
    handler: Handler,
    runtime: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut config =
            config::parse(Path::new("fuzz.toml"), &config_text()).expect("the fuzz config");
        // Nothing to ask and no permit to ask it: forwarding fails at once,
        // without a socket.
        config.upstream.servers.clear();
        config.upstream.max_in_flight = 0;
        let metrics = Arc::new(Metrics::new());
        let snapshot = Snapshot {
            table: config.table(1).expect("the fuzz table"),
            allow: config.server.allow.clone(),
            forwarder: Arc::new(Forwarder::new(
                &config.upstream,
                Arc::new(Cache::new(config.upstream.cache_entries)),
                metrics.clone(),
            )),
            log_queries: false,
        };
        World {
            handler: Handler::new(
                Arc::new(ArcSwap::from_pointee(snapshot)),
                metrics,
                Arc::new(InFlight::default()),
            ),
            // Timers only: no I/O driver.
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime"),
        }
    })
}

/// Keeps the answer the general path sends, encoded as `udp.rs` encodes it.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Option<Vec<u8>>>>);

#[async_trait::async_trait]
impl ResponseHandler for Sink {
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
        let max = response.edns().map_or(512, |e| e.max_payload());
        let mut buf = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut buf);
        encoder.set_max_size(max);
        let info = response.destructive_emit(&mut encoder)?;
        *self.0.lock().unwrap() = Some(buf);
        Ok(info)
    }
}

/// What a client sees of an answer; the fast and general paths must agree on it.
type View = (
    String,
    ResponseCode,
    Vec<String>,
    Vec<Record>,
    Vec<Record>,
    Option<u16>,
);

fn view(m: &Message) -> View {
    (
        m.metadata.flags().to_string(),
        m.metadata.response_code,
        questions(m),
        m.answers.clone(),
        m.authorities.clone(),
        m.edns.as_ref().map(|e| e.max_payload()),
    )
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

/// Checks an answer to `request` (whose ID is `id`) sent over UDP.
fn check_answer(what: &str, request: &Request, id: u16, bytes: &[u8]) -> Message {
    let limit = request
        .edns
        .as_ref()
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
    if let [q] = request.queries.queries() {
        let asked = format!(
            "{} {} {}",
            q.original().name().to_ascii(),
            q.query_class(),
            q.query_type()
        );
        // An answer cut to a bare TC=1 header may lack the question.
        if !(m.metadata.truncation && m.queries.is_empty()) {
            assert_eq!(
                questions(&m),
                [asked],
                "{what}: the question echoed as asked"
            );
        }
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
    let fast = w
        .handler
        .answer_fast(data, client, &mut out)
        .map(|n| out[..n].to_vec());

    let request = match amldns::udp::parse(data.to_vec(), client, Protocol::Udp) {
        Some(r) => r,
        None => {
            assert!(fast.is_none(), "a fast answer to what hickory cannot parse");
            let formerr = w
                .handler
                .unparsed([data[0], data[1], data[2], data[3]], client, Transport::Udp);
            assert_eq!(formerr[..2], data[..2], "FORMERR: the query's ID");
            assert_eq!(formerr[2] & 0x80, 0x80, "FORMERR: QR=1");
            assert_eq!(formerr[3] & 0x0F, 1, "FORMERR: the rcode");
            return;
        }
    };
    let sink = Sink::default();
    w.runtime.block_on(
        w.handler
            .handle_request::<_, TokioTime>(&request, sink.clone()),
    );
    let general = sink.0.lock().unwrap().take();
    let general = general.expect("the general path sends an answer");
    let general = check_answer("general", &request, id, &general);
    if let Some(fast) = fast {
        let fast = check_answer("fast", &request, id, &fast);
        assert_eq!(view(&fast), view(&general), "fast and general paths agree");
    }
});
