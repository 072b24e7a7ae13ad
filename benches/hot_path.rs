//! Micro-benchmarks of the per-query hot path, without a network: table
//! lookup as the table grows, writing a local answer, the whole UDP fast
//! path, and a cache hit. `cargo bench` runs them; CI only builds them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use amldns::azure::Discovered;
use amldns::cache::{Cache, Key, Reply};
use amldns::config::{self, Config};
use amldns::handler::Handler;
use amldns::metrics::Metrics;
use amldns::zone::QType;
use amldns::{snapshot, wire};
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

mod common;

fn main() {
    divan::main();
}

/// A config of `workspaces` workspaces, 14 names each.
fn config(workspaces: usize) -> Config {
    config::parse(Path::new("bench.toml"), &common::config_text(workspaces)).expect("valid config")
}

/// The API name of workspace `i`.
fn api(i: usize) -> String {
    format!("{i:08x}-0000-4000-8000-000000000000.workspace.eastus.api.azureml.ms")
}

/// Lookup cost as the table grows from 14 to 140,000 names: flat is the goal.
#[divan::bench(args = [1, 100, 10_000])]
fn lookup(bencher: divan::Bencher<'_, '_>, workspaces: usize) {
    let table = snapshot::table(&config(workspaces)).unwrap();
    let names: Vec<String> = (0..workspaces)
        .step_by((workspaces / 64).max(1))
        .map(api)
        .collect();
    let mut i = 0;
    bencher.bench_local(|| {
        i = (i + 1) % names.len();
        divan::black_box(table.lookup(divan::black_box(&names[i]), QType::A));
    });
}

fn query_bytes(name: &str) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    m.to_vec().unwrap()
}

/// Reading a query and writing its local answer, nothing else.
#[divan::bench]
fn write_local_answer(bencher: divan::Bencher<'_, '_>) {
    let msg = query_bytes(&api(7));
    let v4 = ["10.1.0.5".parse().unwrap()];
    let mut out = [0u8; 2048];
    bencher.bench_local(|| {
        let q = wire::parse_query(divan::black_box(&msg)).unwrap();
        let local = wire::Local::Addrs {
            v4: &v4,
            v6: &[],
            ttl: 60,
        };
        divan::black_box(wire::write_local(&msg, &q, &[], &local, 1232, &mut out));
    });
}

/// A handler over `workspaces` workspaces, its cache holding `cached`, and
/// the runtime it needs to exist (the forwarder's, never run here).
fn handler(workspaces: usize, cached: &[(Key, Reply)]) -> (Handler, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let config = config(workspaces);
    let built = snapshot::build(&config, &Discovered::default(), 1).unwrap();
    let handler = Handler::standalone(built, Arc::new(Metrics::new()));
    for (key, reply) in cached {
        handler.forwarder().now().cache().insert(key, reply);
    }
    (handler, runtime)
}

/// Benches `handler`'s fast path answering `msg`, which it must take.
fn bench_fast(bencher: divan::Bencher<'_, '_>, handler: &Handler, msg: &[u8]) {
    let src: SocketAddr = "127.0.0.1:5555".parse().unwrap();
    let mut out = [0u8; 2048];
    let mut tally = handler.metrics().tally();
    assert!(
        handler
            .answer_fast(msg, src, &mut out, &mut tally)
            .is_some(),
        "takes the fast path"
    );
    // Counted per query and flushed per batch of 32, as the socket loop does.
    let mut n = 0u32;
    bencher.bench_local(|| {
        let got = handler.answer_fast(divan::black_box(msg), src, &mut out, &mut tally);
        n += 1;
        if n.is_multiple_of(32) {
            tally.flush(handler.metrics(), std::time::Duration::ZERO);
        }
        divan::black_box(got)
    });
}

/// The whole UDP fast path: parse, ACL, lookup, write, count.
#[divan::bench(args = [1, 10_000])]
fn fast_path(bencher: divan::Bencher<'_, '_>, workspaces: usize) {
    let (handler, _runtime) = handler(workspaces, &[]);
    bench_fast(bencher, &handler, &query_bytes(&api(workspaces / 2)));
}

/// The same for a forwarded name whose answer the cache holds: the bytes
/// copied, TTLs patched.
#[divan::bench]
fn fast_path_cached(bencher: divan::Bencher<'_, '_>) {
    let (handler, _runtime) = handler(1, &[cached(&Name::from_ascii("www.example.com.").unwrap())]);
    bench_fast(bencher, &handler, &query_bytes("www.example.com"));
}

/// A cached answer: one A record for `name`.
fn cached(name: &Name) -> (Key, Reply) {
    let key = Key {
        name: LowerName::from(name),
        qtype: RecordType::A,
        dnssec: Default::default(),
    };
    let reply = Reply {
        rcode: ResponseCode::NoError,
        answers: vec![Record::from_rdata(
            name.clone(),
            300,
            RData::A(A::new(192, 0, 2, 1)),
        )],
        authorities: Vec::new(),
    };
    (key, reply)
}

/// A forwarded answer found in the cache among 5,000, TTLs counted down.
#[divan::bench]
fn cache_hit(bencher: divan::Bencher<'_, '_>) {
    let cache = Cache::new(10_000, 64 << 20);
    for i in 0..5_000 {
        let (key, reply) = cached(&Name::from_ascii(format!("n{i}.example.com.")).unwrap());
        cache.insert(&key, &reply);
    }
    let (key, reply) = cached(&Name::from_ascii("www.example.com.").unwrap());
    cache.insert(&key, &reply);
    bencher.bench_local(|| divan::black_box(cache.get(divan::black_box(&key))));
}
