//! Shared test harness: the real server started in-process on 127.0.0.1:0,
//! an upstream stand-in on 127.0.0.1 that records what it is asked, and a DNS
//! client speaking UDP and TCP. Nothing here talks to any address but loopback.
#![allow(dead_code)] // each test binary uses its own part of the harness

/// The ARM, IMDS and Entra ID stand-in of the Azure discovery tests.
pub mod arm;
/// DNS expectations as a table of cases.
pub mod case;
/// A resolver on a client's path: relays to amldns, and may change answers.
pub mod relay;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use amldns::config;
use amldns::names;
use amldns::reload::WatchMode;
use amldns::server::{self, Listeners, Options};

/// Every client call gives up after this; a test never hangs.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The workspace the tests name, shared with unit tests and fuzz targets.
#[path = "../fixtures/workspace.rs"]
pub mod fixtures;

pub use fixtures::GUID;

pub fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

// ---- the server --------------------------------------------------------------

pub struct Running {
    pub addr: SocketAddr,
    /// The metrics listener, when the config has `[metrics]`.
    pub http: Option<SocketAddr>,
    /// The config's folder.
    pub dir: PathBuf,
    pub config_path: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(IO_TIMEOUT, t)
                .await
                .expect("server stops")
                .unwrap();
        }
    }

    /// Writes a file relative to the config's folder.
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn http(&self) -> SocketAddr {
        self.http.expect("the config has [metrics]")
    }
}

/// Writes `config_text` (plus `files`, relative to it) to a temp folder and
/// starts amldns with it.
pub async fn start_with(config_text: &str, files: &[(&str, &str)], watch: WatchMode) -> Running {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let path: PathBuf = dir.path().join("amldns.toml");
    std::fs::write(&path, config_text).unwrap();
    let config = config::load(&path).unwrap_or_else(|e| panic!("config: {e}"));
    let mut running = start_loaded(config, watch).await;
    running._tmp = Some(dir);
    running
}

/// Starts amldns on 127.0.0.1:0 with `config` (and its metrics listener on
/// 127.0.0.1:0 when the config has `[metrics]`).
pub async fn start_loaded(config: config::Config, watch: WatchMode) -> Running {
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let metrics = config.metrics.as_ref().map(|_| loopback);
    let listeners = Listeners::bind(&[loopback], config.server.threads, metrics)
        .await
        .unwrap();
    run_on(config, listeners, watch)
}

/// Runs amldns with `config` on `listeners`, until [`Running::stop`].
fn run_on(config: config::Config, listeners: Listeners, watch: WatchMode) -> Running {
    refuse_unsafe_upstreams(&config);
    let (addr, http) = (listeners.dns_addrs()[0], listeners.http_addr());
    let config_path = config.path.clone();
    let (tx, rx) = oneshot::channel();
    let options = Options {
        watch,
        sighup: None,
    };
    let task = tokio::spawn(async move {
        server::run(config, listeners, options, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running {
        addr,
        http,
        dir: config_path.parent().unwrap().to_path_buf(),
        config_path,
        _tmp: None,
        stop: Some(tx),
        task: Some(task),
    }
}

pub async fn start_with_files(config_text: &str, files: &[(&str, &str)]) -> Running {
    start_with(config_text, files, WatchMode::Off).await
}

pub async fn start(config_text: &str) -> Running {
    start_with_files(config_text, &[]).await
}

/// A config whose upstream is `upstream`, allowing loopback clients, with
/// `rest` (or [`PROBE`] when `rest` gives no local name). See [`TestConfig`].
pub fn config_with(upstream: SocketAddr, rest: &str) -> String {
    TestConfig {
        upstreams: &[upstream],
        rest,
        ..TestConfig::default()
    }
    .text()
}

/// Like [`config_with`], with the metrics listener (on a free loopback port).
pub fn with_metrics(upstream: SocketAddr, rest: &str) -> String {
    TestConfig {
        upstreams: &[upstream],
        metrics: true,
        rest,
        ..TestConfig::default()
    }
    .text()
}

/// The metrics page of a server started with [`with_metrics`].
pub async fn scrape(srv: &Running) -> String {
    let (status, body) = http_request(srv.http(), "GET", "/metrics").await;
    assert_eq!(status, 200);
    body
}

pub fn workspace(cloud: &str, extra: &str) -> String {
    format!(
        "[[workspace]]\nname = \"{name}\"\nid = \"{GUID}\"\n\
         region = \"eastus\"\ncloud = \"{cloud}\"\nip = \"10.1.0.5\"\nnotebook_ip = \"10.1.0.6\"\n\
         inference_ip = \"10.1.0.7\"\n{extra}\n",
        name = fixtures::NAME
    )
}

// ---- the upstream stand-in ----------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    pub qtype: RecordType,
    pub tcp: bool,
    pub edns: Option<u16>,
    pub id: u16,
    /// The asker's source port.
    pub port: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

/// A stand-in's answer to a question, as the bytes it sends.
type Respond = dyn Fn(&Message) -> Option<Vec<u8>> + Send + Sync;

/// A loopback DNS server that answers with `respond` (None: stay silent) and
/// records every question.
pub struct StandIn {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// UDP questions received and not yet answered: now, and at most.
    in_flight: Arc<(AtomicUsize, AtomicUsize)>,
    /// Send UDP answers whole, past the asker's EDNS size (see `send_udp_whole`).
    udp_whole: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl StandIn {
    pub async fn start(
        respond: impl Fn(&Message) -> Option<Message> + Send + Sync + 'static,
    ) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), respond).await
    }

    pub async fn start_on(
        addr: SocketAddr,
        respond: impl Fn(&Message) -> Option<Message> + Send + Sync + 'static,
    ) -> Self {
        Self::start_delayed(addr, Duration::ZERO, respond).await
    }

    /// Like `start_on`, answering each UDP question after `delay`.
    pub async fn start_delayed(
        addr: SocketAddr,
        delay: Duration,
        respond: impl Fn(&Message) -> Option<Message> + Send + Sync + 'static,
    ) -> Self {
        let respond = move |q: &Message| respond(q).map(|r| r.to_vec().unwrap());
        Self::spawn(addr, delay, Arc::new(respond)).await
    }

    /// Like `start`, answering with bytes written by hand: what a server
    /// sends that hickory's encoder would write otherwise.
    pub async fn start_wire(
        respond: impl Fn(&Message) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        Self::spawn(
            "127.0.0.1:0".parse().unwrap(),
            Duration::ZERO,
            Arc::new(respond),
        )
        .await
    }

    async fn spawn(addr: SocketAddr, delay: Duration, respond: Arc<Respond>) -> Self {
        // With port 0, the port UDP gets may be taken for TCP: try again.
        let mut pair = None;
        for _ in 0..20 {
            let udp = UdpSocket::bind(addr).await.unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
                pair = Some((Arc::new(udp), tcp));
                break;
            }
        }
        let (udp, tcp) = pair.expect("a port free for UDP and TCP");
        let addr = udp.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = {
            let seen = seen.clone();
            move |m: &Message, tcp: bool, peer: SocketAddr| {
                if let Some(q) = m.queries.first() {
                    seen.lock().unwrap().push(Seen {
                        name: q.name().to_ascii().trim_end_matches('.').to_lowercase(),
                        qtype: q.query_type(),
                        tcp,
                        edns: m.edns.as_ref().map(|e| e.max_payload()),
                        id: m.metadata.id,
                        port: peer.port(),
                        at: std::time::Instant::now(),
                    });
                }
            }
        };
        let in_flight = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let udp_whole = Arc::new(AtomicBool::new(false));
        let udp_task = {
            let respond = respond.clone();
            let record = record.clone();
            let in_flight = in_flight.clone();
            let udp_whole = udp_whole.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65535];
                loop {
                    let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                        return;
                    };
                    let Ok(q) = Message::from_vec(&buf[..n]) else {
                        continue;
                    };
                    record(&q, false, peer);
                    if let Some(mut bytes) = respond(&q) {
                        let limit = q.edns.as_ref().map_or(512, |e| e.max_payload() as usize);
                        if bytes.len() > limit && !udp_whole.load(Ordering::SeqCst) {
                            let mut tc = reply_to(&q);
                            tc.metadata.truncation = true;
                            bytes = tc.to_vec().unwrap();
                        }
                        let now = in_flight.0.fetch_add(1, Ordering::SeqCst) + 1;
                        in_flight.1.fetch_max(now, Ordering::SeqCst);
                        let (udp, in_flight) = (udp.clone(), in_flight.clone());
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let _ = udp.send_to(&bytes, peer).await;
                            in_flight.0.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                }
            })
        };
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut s, peer)) = tcp.accept().await else {
                    return;
                };
                let respond = respond.clone();
                let record = record.clone();
                tokio::spawn(async move {
                    while let Ok(Ok(bytes)) =
                        tokio::time::timeout(IO_TIMEOUT, read_frame(&mut s)).await
                    {
                        let Ok(q) = Message::from_vec(&bytes) else {
                            return;
                        };
                        record(&q, true, peer);
                        if let Some(r) = respond(&q)
                            && write_frame(&mut s, &r).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        StandIn {
            addr,
            seen,
            in_flight,
            udp_whole,
            tasks: vec![udp_task, tcp_task],
        }
    }

    /// The usual stand-in: answers from [`upstream_zone`].
    pub async fn zone() -> Self {
        Self::start(|q| Some(upstream_zone(q))).await
    }

    /// The questions clients' queries made amldns ask. amldns also asks, on
    /// its own, the SOA of each public Azure ML zone its table holds names
    /// in ([`Self::seen_all`] has those too): when that is asked, and how
    /// often, is not what a test of a client's query counts.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen_all()
            .into_iter()
            .filter(|s| !(s.qtype == RecordType::SOA && names::is_public_zone(&s.name)))
            .collect()
    }

    /// Every question asked.
    pub fn seen_all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn seen_names(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.name).collect()
    }

    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }

    /// The most UDP questions it held unanswered at once.
    pub fn peak_in_flight(&self) -> usize {
        self.in_flight.1.load(Ordering::SeqCst)
    }
}

pub fn reply_to(q: &Message) -> Message {
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    if let Some(query) = q.queries.first() {
        m.add_query(query.clone());
    }
    if q.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m
}

pub fn a_record(owner: &str, ttl: u32, ip: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::A(A(ip.parse().unwrap())))
}

pub fn cname_record(owner: &str, ttl: u32, target: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::CNAME(CNAME(name(target))))
}

pub fn soa_record(zone: &str, ttl: u32, minimum: u32) -> Record {
    let z = name(zone);
    Record::from_rdata(
        z.clone(),
        ttl,
        RData::SOA(SOA::new(
            z.clone(),
            name(&format!("hostmaster.{zone}")),
            1,
            3600,
            600,
            86400,
            minimum,
        )),
    )
}

/// The SOA Azure's public DNS gives for one of its zones (`api.azureml.ms`…).
pub fn azure_soa(zone: &str) -> Record {
    Record::from_rdata(
        name(&format!("{zone}.")),
        3600,
        RData::SOA(SOA::new(
            name("ns1-01.azure-dns.com."),
            name("azuredns-hostmaster.microsoft.com."),
            1,
            3600,
            300,
            2_419_200,
            300,
        )),
    )
}

/// What the stand-in upstream knows. Public-looking answers use documentation
/// and private addresses; none of them is ever contacted.
pub fn upstream_zone(q: &Message) -> Message {
    let mut r = reply_to(q);
    let Some(query) = q.queries.first() else {
        r.metadata.response_code = ResponseCode::FormErr;
        return r;
    };
    let qname = query.name().to_ascii().trim_end_matches('.').to_lowercase();
    let qtype = query.query_type();
    let a = |n: &str, ip: &str| a_record(&format!("{n}."), 300, ip);
    let mut answers: HashMap<&str, Vec<Record>> = HashMap::new();
    answers.insert("www.example.com", vec![a("www.example.com", "192.0.2.10")]);
    answers.insert(
        "eastus.api.azureml.ms",
        vec![a("eastus.api.azureml.ms", "192.0.2.20")],
    );
    // What Azure's public DNS says of a storage account behind a private
    // endpoint: a chain through the privatelink name to a public address.
    answers.insert(
        "st.blob.core.windows.net",
        vec![
            cname_record(
                "st.blob.core.windows.net.",
                60,
                "st.privatelink.blob.core.windows.net.",
            ),
            cname_record(
                "st.privatelink.blob.core.windows.net.",
                60,
                "blob.public.example.",
            ),
            a("blob.public.example", "192.0.2.30"),
        ],
    );
    answers.insert(
        "big.example.com",
        (0..100)
            .map(|i| a("big.example.com", &format!("192.0.2.{}", i + 1)))
            .collect(),
    );
    match (qname.as_str(), qtype) {
        (zone, RecordType::SOA) if names::is_public_zone(zone) => {
            r.answers.push(azure_soa(zone));
        }
        ("refused.example.com", _) => r.metadata.response_code = ResponseCode::Refused,
        // A chain into nothing: the CNAME, then NXDOMAIN with the SOA.
        ("gone.example.com", _) => {
            r.metadata.response_code = ResponseCode::NXDomain;
            r.answers.push(cname_record(
                "gone.example.com.",
                300,
                "nothere.example.com.",
            ));
            r.authorities.push(soa_record("example.com.", 300, 60));
        }
        ("servfail.example.com", _) => r.metadata.response_code = ResponseCode::ServFail,
        (n, RecordType::A) if answers.contains_key(n) => r.answers = answers[n].clone(),
        (n, RecordType::CNAME)
            if answers
                .get(n)
                .is_some_and(|v| v[0].record_type() == RecordType::CNAME) =>
        {
            r.answers = vec![answers[n][0].clone()]
        }
        (n, _) if answers.contains_key(n) => {
            r.authorities.push(soa_record("example.com.", 300, 60))
        }
        (n, RecordType::A) if n.contains(".workspace.") => r.answers.push(a(n, "192.0.2.40")),
        _ => {
            r.metadata.response_code = ResponseCode::NXDomain;
            r.authorities.push(soa_record("example.com.", 300, 60));
        }
    }
    r
}

// ---- the client ---------------------------------------------------------------

pub fn query_msg(qname: &str, qtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::query();
    m.metadata.id = rand_id();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name(qname), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(4242);
    NEXT.fetch_add(7919, Ordering::Relaxed)
}

/// Sends raw bytes over UDP from `from` (an address on loopback) and waits up
/// to `wait` for one reply.
pub async fn udp_raw_from(
    from: IpAddr,
    server: SocketAddr,
    bytes: &[u8],
    wait: Duration,
) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind((from, 0)).await.unwrap();
    sock.send_to(bytes, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

pub async fn udp_raw(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    udp_raw_from(IpAddr::V4(Ipv4Addr::LOCALHOST), server, bytes, wait).await
}

pub async fn udp_exchange(server: SocketAddr, msg: &Message) -> Message {
    let bytes = udp_raw(server, &msg.to_vec().unwrap(), IO_TIMEOUT)
        .await
        .expect("a UDP reply within the timeout");
    let reply = Message::from_vec(&bytes).unwrap();
    assert_eq!(reply.metadata.id, msg.metadata.id);
    reply
}

/// A UDP query with EDNS(0) 1232, as modern stubs send it.
/// The NODATA amldns gives for `local`'s AAAA once it knows the SOA of the
/// public zone `local` is in: amldns asks the upstream for it when the table
/// loads, so the first answers may carry none.
pub async fn once_soa_learned(server: SocketAddr, local: &str) -> Message {
    for _ in 0..200 {
        let r = udp_query(server, local, RecordType::AAAA).await;
        if !r.authorities.is_empty() {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no SOA learned for {local}'s zone in 20 s");
}

pub async fn udp_query(server: SocketAddr, qname: &str, qtype: RecordType) -> Message {
    udp_exchange(server, &query_msg(qname, qtype, Some(1232))).await
}

pub async fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = s.read_u16().await? as usize;
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

pub async fn write_frame(s: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).await
}

pub async fn tcp_exchange(s: &mut TcpStream, msg: &Message) -> Message {
    write_frame(s, &msg.to_vec().unwrap()).await.unwrap();
    let bytes = tokio::time::timeout(IO_TIMEOUT, read_frame(s))
        .await
        .expect("TCP reply in time")
        .unwrap();
    let reply = Message::from_vec(&bytes).unwrap();
    assert_eq!(reply.metadata.id, msg.metadata.id);
    reply
}

/// Addresses in the answer section, as strings.
pub fn addrs(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

/// The answer section as "owner TYPE data" lines, owners lower-cased.
pub fn answer_lines(m: &Message) -> Vec<String> {
    record_lines(&m.answers)
}

/// Records as "owner TYPE data", the owner lower-case and without its dot.
pub fn record_lines(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let data = match &r.data {
                RData::A(a) => a.0.to_string(),
                RData::AAAA(a) => a.0.to_string(),
                RData::CNAME(c) => c.0.to_ascii().trim_end_matches('.').to_lowercase(),
                other => other.to_string(),
            };
            format!(
                "{} {} {data}",
                r.name.to_ascii().trim_end_matches('.').to_lowercase(),
                r.record_type()
            )
        })
        .collect()
}

// ---- HTTP ---------------------------------------------------------------------

/// One HTTP/1.1 request over a fresh connection: (status, body).
pub async fn http_request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: amldns\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(IO_TIMEOUT, s.read_to_end(&mut buf))
        .await
        .expect("HTTP reply in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("\r\ntransfer-encoding: chunked");
    let body = if chunked {
        unchunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

/// A chunked body (RFC 9112 §7.1) as the bytes it carries.
fn unchunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16)
            .unwrap_or_else(|e| panic!("chunk size {size:?}: {e}"));
        if size == 0 {
            break;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    body
}

/// The value of one sample in Prometheus text, e.g.
/// `metric(&text, "amldns_queries_total", &[("outcome", "local")])` sums every
/// series of that name whose labels include those given.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            if n != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// How many series of `name` there are.
pub fn series_count(text: &str, name: &str) -> usize {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .count()
}

/// Whether a local name is answered, asking like a stub resolver does: up to
/// three times, a second each (a burst may fill the socket's queue).
pub async fn alive(addr: SocketAddr) -> bool {
    let ws = format!("{GUID}.workspace.eastus.api.azureml.ms");
    let q = query_msg(&ws, RecordType::A, None).to_vec().unwrap();
    for _ in 0..3 {
        if let Some(bytes) = udp_raw(addr, &q, Duration::from_secs(1)).await {
            return addrs(&Message::from_vec(&bytes).unwrap()) == ["10.1.0.5"];
        }
    }
    false
}

// ---- test configs: one builder, never empty ----------------------------------

/// A local name for a test that is about something else: amldns refuses a
/// config that gives nothing to answer locally.
pub const PROBE: &str =
    "[[record]]\nname = \"probe.privatelink.blob.core.windows.net\"\na = [\"10.9.9.9\"]\n";

/// Every config a test starts amldns with is built here: its upstreams are
/// named (stand-ins on loopback, never the default 168.63.129.16: no test
/// sends anything off this host)
/// and it gives something to answer locally.
pub struct TestConfig<'a> {
    /// Stand-ins on loopback; [`start_loaded`] refuses anything else.
    pub upstreams: &'a [SocketAddr],
    /// The `[server]` table's keys.
    pub server: &'a str,
    /// `[upstream]` keys other than `servers`.
    pub upstream: &'a str,
    /// A metrics listener on a free loopback port.
    pub metrics: bool,
    /// Workspaces, records, imports and other tables; [`PROBE`] is added
    /// when they give no local name.
    pub rest: &'a str,
}

impl Default for TestConfig<'_> {
    fn default() -> Self {
        TestConfig {
            upstreams: &[],
            server: "allow = [\"127.0.0.1/32\"]",
            upstream: "timeout_ms = 1000",
            metrics: false,
            rest: "",
        }
    }
}

impl TestConfig<'_> {
    pub fn text(&self) -> String {
        let servers: Vec<String> = self.upstreams.iter().map(|u| format!("\"{u}\"")).collect();
        let metrics = if self.metrics {
            "[metrics]\nlisten = \"127.0.0.1:0\"\n"
        } else {
            ""
        };
        let local = ["[[workspace]]", "[[record]]", "[[import]]"]
            .iter()
            .any(|t| self.rest.contains(t));
        format!(
            "{metrics}[server]\n{}\n[upstream]\nservers = [{}]\n{}\n{}\n{}",
            self.server,
            servers.join(", "),
            self.upstream,
            self.rest,
            if local { "" } else { PROBE }
        )
    }
}

/// Panics unless every upstream of `config` is on loopback: a test must
/// never reach 168.63.129.16 (the default when `[upstream]` is left out) or
/// any other address off this host. Tests of the defaults run the
/// binary inside `unshare --net` instead.
pub fn refuse_unsafe_upstreams(config: &config::Config) {
    let off_host: Vec<String> = config
        .upstream
        .servers
        .iter()
        .filter(|s| !s.ip().is_loopback())
        .map(ToString::to_string)
        .collect();
    assert!(
        off_host.is_empty(),
        "{}: upstream {} is not on loopback: a test config names its stand-in upstreams \
         explicitly (build it with TestConfig / config_with)",
        config.path.display(),
        off_host.join(", ")
    );
    refuse_unsafe_azure(config);
}

// ---- sockets, the control ACL, logs -----------------------------------------

/// Starts amldns with `config_text` (written to a temp folder) on sockets the
/// test bound itself, e.g. wildcard or IPv6 addresses.
pub async fn start_on(config_text: &str, listeners: Listeners) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("amldns.toml");
    std::fs::write(&config_path, config_text).unwrap();
    let config = config::load(&config_path).unwrap_or_else(|e| panic!("config: {e}"));
    let mut running = run_on(config, listeners, WatchMode::Off);
    running._tmp = Some(dir);
    running
}

/// A TCP connection to `to` from `from` (e.g. 127.0.0.2, another loopback
/// address, to stand for a client outside `allow`).
pub async fn tcp_connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let s = match from {
        IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .unwrap();
    s.bind(SocketAddr::new(from, 0)).unwrap();
    tokio::time::timeout(IO_TIMEOUT, s.connect(to))
        .await
        .expect("connected in time")
        .unwrap()
}

// ---- the upstream path and DNSSEC transparency ------------------------------

/// A query as [`query_msg`] makes it with EDNS(0) 1232, with DO and CD as given.
pub fn query_dnssec(qname: &str, qtype: RecordType, dnssec_ok: bool, cd: bool) -> Message {
    let mut m = query_msg(qname, qtype, Some(1232));
    m.metadata.checking_disabled = cd;
    if let Some(e) = m.edns.as_mut() {
        e.set_dnssec_ok(dnssec_ok);
    }
    m
}

// ---- skips, and amldns run as a process ------------------------------------

/// Why a test cannot run here, for [`skip`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lack {
    /// Something an install step provides (`scripts/install-peers.sh`, the
    /// open-files limit `.ci/run` raises): under CI it fails, since a skip
    /// would hide a broken step.
    Install,
    /// A fact of the host no install changes (the kernel has no IPv6
    /// loopback): the test passes, recorded, even under CI.
    Host,
}

/// Every test that cannot run goes through here, and says so. Outside CI it
/// prints "SKIPPED" and returns (the test then returns and passes). Under
/// CI (`CI=true`, which `.ci/run` sets) a [`Lack::Install`] panics instead.
/// Either way the test's name and the reason are appended, one line of
/// "<binary>::<test>\t<skipped|failed>\t<reason>", to the file named by
/// `AMLDNS_SKIP_LOG` when set: `cargo test` hides what passing tests print,
/// and `.ci/run`'s summary lists that file instead.
pub fn skip(lack: Lack, reason: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let fails = ci && lack == Lack::Install;
    let test = std::thread::current()
        .name()
        .filter(|n| *n != "main" && !n.starts_with("tokio-"))
        .unwrap_or("(unnamed thread)")
        .to_string();
    // The test binary: target/debug/deps/it-0123abcd → it (the test's name
    // then carries its module: it::peers::…).
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| s.rsplit_once('-').map_or(s.clone(), |(b, _)| b.to_string()))
        .unwrap_or_default();
    let name = format!("{bin}::{test}");
    if let Some(log) = std::env::var_os("AMLDNS_SKIP_LOG") {
        use std::io::Write;
        let state = if fails { "failed" } else { "skipped" };
        let line = format!("{name}\t{state}\t{}\n", reason.replace(['\t', '\n'], " "));
        // One write of one short line with O_APPEND: lines from tests running
        // at once do not interleave.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            panic!("{name}: cannot record the skip in {log:?}: {e}");
        }
    }
    if fails {
        panic!("{reason}: under CI=true this fails instead of skipping");
    }
    eprintln!("SKIPPED {name}: {reason}");
}

/// [`skip`] for what an install step fixes: fails under CI.
pub fn skip_or_fail(reason: &str) {
    skip(Lack::Install, reason);
}

/// A running `amldns serve` (`--watch off` unless started watching), its
/// stderr collected line by line; killed when dropped.
pub struct Process {
    pub child: std::process::Child,
    pub lines: Arc<Mutex<Vec<String>>>,
    /// The DNS address, from its "amldns serving" line.
    pub addr: SocketAddr,
    pub config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    /// With `--log-format log_format` and `RUST_LOG` set to `rust_log`, or
    /// removed. The config must listen on one address.
    pub fn start(config_text: &str, log_format: &str, rust_log: Option<&str>) -> Self {
        Self::start_watching(config_text, log_format, rust_log, "off", IO_TIMEOUT)
    }

    /// [`Process::start`] with `--watch watch`, given up to `max` to load
    /// its table and start serving.
    pub fn start_watching(
        config_text: &str,
        log_format: &str,
        rust_log: Option<&str>,
        watch: &str,
        max: Duration,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("amldns.toml");
        std::fs::write(&config, config_text).unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_amldns"));
        cmd.args(["serve", "--log-format", log_format, "--watch", watch])
            .arg("--config")
            .arg(&config)
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null());
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let mut child = cmd.spawn().unwrap();
        let lines = stderr_lines(&mut child);
        let mut p = Process {
            child,
            lines,
            addr: "127.0.0.1:0".parse().unwrap(),
            config,
            _dir: dir,
        };
        // `listen=127.0.0.1:N` in text, `"listen":"127.0.0.1:N"` in JSON
        // (several addresses are joined by ", ").
        let started = p.wait_for_line_within("amldns serving", max);
        let listen = started.split_once("listen").expect("a listen field").1;
        let addr = listen.trim_start_matches(['=', '"', ':']);
        let end = addr.find(['"', ',', ' ']).unwrap_or(addr.len());
        p.addr = addr[..end]
            .parse()
            .unwrap_or_else(|e| panic!("{e}: no address in {started:?}"));
        p
    }

    /// Waits up to [`IO_TIMEOUT`] for a log line containing `needle`.
    pub fn wait_for_line(&self, needle: &str) -> String {
        self.wait_for_line_within(needle, IO_TIMEOUT)
    }

    /// Waits up to `max` for a log line containing `needle`.
    pub fn wait_for_line_within(&self, needle: &str, max: Duration) -> String {
        let t = std::time::Instant::now();
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            assert!(
                t.elapsed() < max,
                "no log line with {needle:?}: {:#?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Sends `kill -SIG`.
    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits up to `max` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, max: Duration) -> Option<i32> {
        let t = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(t.elapsed() < max, "still running after {max:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The lines `child` writes to its piped stderr, collected as they come by
/// a thread of their own.
pub fn stderr_lines(child: &mut std::process::Child) -> Arc<Mutex<Vec<String>>> {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr piped");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let collected = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            collected.lock().unwrap().push(line);
        }
    });
    lines
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StandIn {
    /// From now on, UDP answers go out whole, past the asker's EDNS size and
    /// without TC, as Azure's resolver may send them.
    pub fn send_udp_whole(&self) {
        self.udp_whole.store(true, Ordering::SeqCst);
    }
}

// ---- Azure discovery -------------------------------------------------------

/// Panics unless `[azure]`, if any, asks only loopback stand-ins: a test
/// must never reach ARM or IMDS (169.254.169.254), the defaults.
pub fn refuse_unsafe_azure(config: &config::Config) {
    let Some(azure) = &config.azure else { return };
    for url in [&azure.arm_endpoint, &azure.imds_endpoint] {
        let host = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':']).next())
            .unwrap_or("");
        assert!(
            host == "127.0.0.1" || host == "localhost",
            "{}: [azure] endpoint {url} is not a loopback stand-in",
            config.path.display()
        );
    }
}

/// How long a command a test runs (`amldns check`, `unbound-checkconf`…)
/// may take before it is taken for hung: it only reads files, or asks a
/// server on loopback, so this is room for a busy machine.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `cmd` to its end, its stdout and stderr collected, for at most
/// [`RUN_TIMEOUT`]; see [`wait_within`].
pub fn output_within(cmd: &mut std::process::Command) -> std::process::Output {
    output_for(cmd, RUN_TIMEOUT)
}

/// [`output_within`] for at most `limit` (a benchmark's long run).
pub fn output_for(cmd: &mut std::process::Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(child, limit)
}

/// `child.wait_with_output()` for at most [`RUN_TIMEOUT`]: a child that
/// hangs is killed (by its id) and the test fails, instead of the suite
/// hanging.
pub fn wait_within(child: std::process::Child) -> std::process::Output {
    wait_for(child, RUN_TIMEOUT)
}

/// [`wait_within`] for at most `limit`.
pub fn wait_for(child: std::process::Child, limit: Duration) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // Not yet reaped (the waiting thread holds it): still our child.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("process {pid} still running after {limit:?}");
        }
    }
}
