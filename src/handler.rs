//! Answering one query (SPEC §3): the checks hickory's `Catalog` would have
//! made, the `allow` ACL, then the zone table, then the forwarder; every path
//! ends in an [`Outcome`], which is what metrics and logs record.

use std::future::Future;
use std::iter;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures_util::FutureExt;
use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use ipnet::IpNet;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::cache::WireKey;
use crate::forward::{Dnssec, EDNS_PAYLOAD, Forwarded, Forwarder, QUERY_DEADLINE, cname_target};
use crate::logging::RateLimited;
use crate::metrics::{self, Metrics, Outcome, Transport};
use crate::names;
use crate::wire;
use crate::zone::{End, Lookup, NameKey, QType, ZoneTable};

/// At most this many upstream questions per client question: the name
/// itself, and the targets of chains that leave and re-enter the table.
const MAX_UPSTREAM_HOPS: usize = 3;

/// Everything a query reads, swapped as one piece so that a query sees one
/// consistent configuration.
pub struct Snapshot {
    pub table: ZoneTable,
    pub allow: Vec<IpNet>,
    pub forwarder: Arc<Forwarder>,
    /// `[log] queries`: one line per query.
    pub log_queries: bool,
}

impl Snapshot {
    fn allows(&self, ip: IpAddr) -> bool {
        // A v4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// A workspace-shaped name forwarded is at most one warning per this.
const MISSING_WORKSPACE_LOG_EVERY: Duration = Duration::from_secs(10);

/// Counts the queries being answered, so that a graceful stop can wait for
/// them, and tells new ones apart once the stop began.
#[derive(Default)]
pub struct InFlight {
    stopping: AtomicBool,
    count: AtomicUsize,
    idle: Notify,
}

/// One query being answered; dropping it ends it.
struct Entered<'a>(&'a InFlight);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        // SeqCst on both sides: the stop sees this query, or this query sees
        // the stop (and wakes it).
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1
            && self.0.stopping.load(Ordering::SeqCst)
        {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    /// Counts a query in; the flag says whether the stop has begun.
    fn enter(&self) -> (Entered<'_>, bool) {
        self.count.fetch_add(1, Ordering::SeqCst);
        (Entered(self), self.stopping.load(Ordering::SeqCst))
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// From now on, new queries get REFUSED (so stubs move to their next
    /// server at once); waits, at most `max`, for those already in flight.
    pub async fn drain(&self, max: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let idle = self.idle.notified();
            // Each query counts itself in before it looks at the flag, so a
            // count of 1 here may be one that will be refused at once.
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return;
            }
        }
    }
}

/// The server's [`RequestHandler`]: reads a [`Snapshot`] per query.
pub struct Handler {
    snapshot: Arc<ArcSwap<Snapshot>>,
    metrics: Arc<Metrics>,
    in_flight: Arc<InFlight>,
    missing_workspace_log: RateLimited,
}

impl Handler {
    pub fn new(
        snapshot: Arc<ArcSwap<Snapshot>>,
        metrics: Arc<Metrics>,
        in_flight: Arc<InFlight>,
    ) -> Self {
        Handler {
            snapshot,
            metrics,
            in_flight,
            missing_workspace_log: RateLimited::new(MISSING_WORKSPACE_LOG_EVERY),
        }
    }

    /// The fast path: a plain UDP query for a local name with addresses (at
    /// the end of a CNAME chain inside the table, maybe) or NODATA, answered
    /// straight from the table into `out`, with no DNS library and no lock
    /// (a chain's list is the one allocation); or one for a name outside
    /// the table whose fresh answer the cache holds on the wire. Its length,
    /// or `None` for anything else: the caller then takes the general path,
    /// which gives the same answers (`tests/dns.rs` compares them). Cached
    /// answers are a little shorter, as their names may point at the
    /// question (and so show the client's letter case), which hickory's
    /// encoder does not do.
    pub fn answer_fast(&self, msg: &[u8], src: SocketAddr, out: &mut [u8]) -> Option<usize> {
        let started = Instant::now();
        let q = wire::parse_query(msg)?;
        if self.in_flight.stopping() {
            return None;
        }
        let snap = self.snapshot.load();
        // Refusals, zone-transfer and meta questions, and the per-query log
        // are the general path's.
        let special = matches!(
            RecordType::from(q.qtype),
            RecordType::AXFR | RecordType::IXFR | RecordType::OPT | RecordType::TSIG
        );
        if special || snap.log_queries || !snap.allows(src.ip()) {
            return None;
        }
        let limit = wire::udp_limit(&q, EDNS_PAYLOAD);
        let (len, outcome, rcode) = match snap
            .table
            .lookup(q.key.as_str(), zone_qtype(RecordType::from(q.qtype)))
        {
            Lookup::Local(ans) => {
                let local = match ans.end {
                    End::Addrs { v4, v6, ttl } => wire::Local::Addrs { v4, v6, ttl },
                    End::NoData { apex } => wire::Local::NoData(snap.table.soa(apex)),
                    End::Chain | End::Forward(_) => return None,
                };
                let len = wire::write_local(msg, &q, &ans.chain, &local, limit as u16, limit, out)?;
                (len, Outcome::Local, 0)
            }
            Lookup::NotLocal => {
                let (len, rcode) = cached(&snap, msg, &q, limit, out)?;
                self.metrics.cache_hits.inc();
                self.check_forwarded(&q.key, src.ip());
                (len, Outcome::Cached, rcode)
            }
        };
        self.metrics.query(
            Transport::Udp,
            q.qtype,
            outcome,
            rcode,
            started.elapsed().as_secs_f64(),
        );
        Some(len)
    }

    /// The answer to a query whose header reads but whose body does not:
    /// FORMERR (RFC 1035 §4.1.1), or REFUSED for a client outside `allow`,
    /// counted like any other answer; `head` is the query's first four bytes
    /// (ID and flags).
    pub fn unparsed(&self, head: [u8; 4], src: SocketAddr, transport: Transport) -> [u8; 12] {
        let (rcode, outcome) = if self.snapshot.load().allows(src.ip()) {
            (ResponseCode::FormErr, Outcome::Error)
        } else {
            (ResponseCode::Refused, Outcome::Refused)
        };
        let mut out = [0u8; 12];
        out[..2].copy_from_slice(&head[..2]);
        // QR, the opcode as asked, the rcode.
        out[2] = 0x80 | (head[2] & 0x78);
        out[3] = u16::from(rcode) as u8;
        self.metrics
            .query(transport, 0, outcome, u16::from(rcode), 0.0);
        out
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// SPEC §6: a workspace name the table lacks, just forwarded (or
    /// answered from the cache), is about to be reached over the public
    /// internet: counted, and logged at most every few seconds.
    fn check_forwarded(&self, name: &NameKey, client: IpAddr) {
        let Some(id) = names::workspace_id_in(name.as_str()) else {
            return;
        };
        self.metrics.workspace_missing.inc();
        if let Some(held_back) = self.missing_workspace_log.check() {
            warn!(
                name = name.as_str(),
                workspace_id = id,
                %client,
                held_back,
                "forwarded a workspace name the table does not hold: is this workspace \
                 missing from the config? its clients will reach the public endpoint"
            );
        }
    }

    /// Where the general path records a query's fate: metrics, the
    /// workspace missing signal, and the per-query log. (The fast path and
    /// FORMERR count themselves; neither is taken when queries are logged.)
    fn record(
        &self,
        snap: &Snapshot,
        request: &Request,
        outcome: Outcome,
        rcode: ResponseCode,
        took: Duration,
    ) {
        let query = request.queries.queries().first();
        let transport = match request.protocol() {
            Protocol::Udp => Transport::Udp,
            Protocol::Tcp => Transport::Tcp,
            _ => Transport::Other,
        };
        let qtype = query.map_or(0, |q| u16::from(q.query_type()));
        self.metrics.query(
            transport,
            qtype,
            outcome,
            u16::from(rcode),
            took.as_secs_f64(),
        );

        if let (Some(q), Outcome::Forwarded | Outcome::Cached | Outcome::Stale) = (query, outcome)
            && let Some(key) = NameKey::from_labels(q.original().name().iter())
        {
            self.check_forwarded(&key, request.src().ip());
        }

        if snap.log_queries {
            info!(
                target: "amldns::query",
                client = %request.src().ip(),
                name = %query.map(|q| q.original().name().to_string()).unwrap_or_default(),
                qtype = %query.map(|q| q.query_type().to_string()).unwrap_or_default(),
                outcome = outcome.as_str(),
                rcode = metrics::rcode_label(u16::from(rcode)),
                micros = took.as_micros() as u64,
                "query"
            );
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let started = Instant::now();
        let (_entered, stopping) = self.in_flight.enter();
        // An owned snapshot: it is held across the forwarding await.
        let snap = self.snapshot.load_full();
        let spare = response_handle.clone();
        // A bug that panics while answering must not leave the client
        // waiting: the panic hook logs and counts it, the client gets SERVFAIL.
        let (outcome, info) =
            or_on_panic(respond(&snap, request, response_handle, stopping), async {
                let edns = response_edns(request);
                let servfail = Answer::error(ResponseCode::ServFail, Outcome::Error);
                (
                    Outcome::Error,
                    send(request, spare, edns.as_ref(), servfail).await,
                )
            })
            .await;
        self.record(
            &snap,
            request,
            outcome,
            info.response_code,
            started.elapsed(),
        );
        info
    }
}

/// A response ready to send.
struct Answer {
    rcode: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    outcome: Outcome,
    /// TC=1: ask again over TCP.
    truncated: bool,
}

impl Answer {
    fn error(rcode: ResponseCode, outcome: Outcome) -> Self {
        Answer {
            rcode,
            authoritative: false,
            answers: Vec::new(),
            authorities: Vec::new(),
            outcome,
            truncated: false,
        }
    }
}

async fn respond<R: ResponseHandler>(
    snap: &Snapshot,
    request: &Request,
    response_handle: R,
    stopping: bool,
) -> (Outcome, ResponseInfo) {
    let resp_edns = response_edns(request);
    let answer = if stopping {
        Answer::error(ResponseCode::Refused, Outcome::Refused)
    } else {
        check_and_answer(snap, request).await
    };
    let outcome = answer.outcome;
    let info = send(request, response_handle, resp_edns.as_ref(), answer).await;
    (outcome, info)
}

/// The OPT record of the response. RFC 6891 §6.1.1: answer with OPT when
/// the query had one, and never promise more than the 1232 bytes that
/// survive the path (DNS Flag Day 2020).
fn response_edns(request: &Request) -> Option<Edns> {
    request.edns.as_ref().map(|req| {
        let mut e = Edns::new();
        e.set_max_payload(req.max_payload().clamp(512, EDNS_PAYLOAD));
        e.set_version(0);
        e
    })
}

/// `answer`, or `fallback` if `answer` panics.
async fn or_on_panic<T>(answer: impl Future<Output = T>, fallback: impl Future<Output = T>) -> T {
    match AssertUnwindSafe(answer).catch_unwind().await {
        Ok(done) => done,
        Err(_) => fallback.await,
    }
}

/// The checks `Catalog` makes, the ACL, then the answer.
async fn check_and_answer(snap: &Snapshot, request: &Request) -> Answer {
    if !snap.allows(request.src().ip()) {
        return Answer::error(ResponseCode::Refused, Outcome::Refused);
    }
    if request.metadata.op_code != OpCode::Query {
        return Answer::error(ResponseCode::NotImp, Outcome::Error);
    }
    if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        return Answer::error(ResponseCode::BADVERS, Outcome::Error);
    }
    let [query] = request.queries.queries() else {
        return Answer::error(ResponseCode::FormErr, Outcome::Error);
    };
    if query.query_class() != DNSClass::IN {
        return Answer::error(ResponseCode::Refused, Outcome::Refused);
    }
    let qtype = query.query_type();
    match qtype {
        // No zone transfers: the table is not a zone to copy.
        RecordType::AXFR | RecordType::IXFR => {
            return Answer::error(ResponseCode::Refused, Outcome::Refused);
        }
        // Meta types are not questions (RFC 6895 §3.1).
        RecordType::OPT | RecordType::TSIG => {
            return Answer::error(ResponseCode::FormErr, Outcome::Error);
        }
        // RFC 8482 §4.4: ANY over UDP is the amplifier's favourite; a
        // local name answers its addresses (a small subset), anything else
        // gets TC=1 and is asked again over TCP, where no source is forged.
        RecordType::ANY if request.protocol() == Protocol::Udp => {
            let local = NameKey::from_labels(query.original().name().iter())
                .is_some_and(|k| snap.table.contains(k.as_str()));
            if !local {
                return Answer {
                    truncated: true,
                    ..Answer::error(ResponseCode::NoError, Outcome::Refused)
                };
            }
        }
        _ => {}
    }
    let dnssec = Dnssec {
        ok: request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        checking_disabled: request.metadata.checking_disabled,
    };
    resolve(snap, query.original().name(), qtype, dnssec).await
}

/// A forwarded answer straight from the cache's bytes, and its rcode; `None`
/// where the general path does more than pass the answer on (ANY over UDP,
/// an answer whose CNAME leads into the table), or for one not cached fresh.
fn cached(
    snap: &Snapshot,
    msg: &[u8],
    q: &wire::Query,
    limit: usize,
    out: &mut [u8],
) -> Option<(usize, u16)> {
    let name = q.key.as_str();
    if RecordType::from(q.qtype) == RecordType::ANY {
        return None;
    }
    let dnssec = Dnssec {
        ok: q.dnssec_ok,
        checking_disabled: q.checking_disabled(),
    };
    let key = WireKey::new(name.split('.').map(str::as_bytes), q.qtype, dnssec)?;
    let fresh = snap.forwarder.cache().fresh_wire(&key)?;
    if q.qtype != u16::from(RecordType::CNAME) && fresh.targets().any(|t| snap.table.contains(t)) {
        return None;
    }
    let records = fresh.records();
    let len = wire::write_cached(msg, q, records, fresh.spent(), limit as u16, limit, out)?;
    Some((len, u16::from(records.rcode())))
}

/// The table's view of a record type.
fn zone_qtype(t: RecordType) -> QType {
    match t {
        RecordType::A => QType::A,
        RecordType::AAAA => QType::Aaaa,
        RecordType::CNAME => QType::Cname,
        RecordType::ANY => QType::Any,
        _ => QType::Other,
    }
}

/// Answers `qname`/`qtype`: from the table when local, else upstream; an
/// upstream chain that reaches a local name is cut there and completed from
/// the table (SPEC §3), and a local chain that leaves the table is completed
/// upstream.
async fn resolve(snap: &Snapshot, qname: &Name, qtype: RecordType, dnssec: Dnssec) -> Answer {
    let deadline = Instant::now() + QUERY_DEADLINE;
    let table = &snap.table;
    let zq = zone_qtype(qtype);
    let mut answers = Vec::new();
    // The name to answer next, as the client wrote it at first.
    let mut owner = qname.clone();
    let mut outcome = None;
    let mut authoritative = false;
    for hop in 0..MAX_UPSTREAM_HOPS {
        let key = NameKey::from_labels(owner.iter());
        let local = key
            .as_ref()
            .map_or(Lookup::NotLocal, |k| table.lookup(k.as_str(), zq));
        if let Lookup::Local(ans) = local {
            if hop == 0 {
                authoritative = true;
                outcome = Some(Outcome::Local);
            }
            for &(target, ttl) in &ans.chain {
                let target = name_of(target);
                answers.push(Record::from_rdata(
                    owner,
                    ttl,
                    RData::CNAME(CNAME(target.clone())),
                ));
                owner = target;
            }
            let done = |answers, authorities| Answer {
                rcode: ResponseCode::NoError,
                authoritative,
                answers,
                authorities,
                outcome: outcome.unwrap_or(Outcome::Local),
                truncated: false,
            };
            match ans.end {
                End::Addrs { v4, v6, ttl } => {
                    answers.extend(
                        v4.iter()
                            .map(|a| Record::from_rdata(owner.clone(), ttl, RData::A(A(*a)))),
                    );
                    answers
                        .extend(v6.iter().map(|a| {
                            Record::from_rdata(owner.clone(), ttl, RData::AAAA(AAAA(*a)))
                        }));
                    return done(answers, Vec::new());
                }
                End::NoData { apex } => return done(answers, vec![soa(table, apex)]),
                End::Chain => return done(answers, Vec::new()),
                // `owner` is now the first name outside the table.
                End::Forward(_) => {}
            }
        }

        let reply = match snap
            .forwarder
            .resolve(&owner, qtype, dnssec, deadline)
            .await
        {
            Forwarded::Failed => return Answer::error(ResponseCode::ServFail, Outcome::Error),
            Forwarded::Reply { reply, cached } => {
                outcome.get_or_insert(if cached {
                    Outcome::Cached
                } else {
                    Outcome::Forwarded
                });
                reply
            }
            Forwarded::Stale(reply) => {
                outcome = Some(Outcome::Stale);
                reply
            }
        };
        // A CNAME question is answered by the CNAME itself, not its target
        // (RFC 1034 §4.3.2 step 3a): nothing to complete then.
        let enters_table = reply.answers.iter().position(|r| {
            qtype != RecordType::CNAME
                && matches!(r.data, RData::CNAME(_))
                && NameKey::from_labels(cname_target(r).iter())
                    .is_some_and(|k| table.contains(k.as_str()))
        });
        match enters_table {
            Some(i) => {
                owner = cname_target(&reply.answers[i]);
                answers.extend(reply.answers.into_iter().take(i + 1));
            }
            None => {
                answers.extend(reply.answers);
                return Answer {
                    rcode: reply.rcode,
                    authoritative,
                    answers,
                    authorities: reply.authorities,
                    outcome: outcome.unwrap_or(Outcome::Forwarded),
                    truncated: false,
                };
            }
        }
    }
    // Chains bouncing between the table and upstream: give up.
    Answer::error(ResponseCode::ServFail, Outcome::Error)
}

/// A zone-table name as a DNS name.
fn name_of(s: &str) -> Name {
    // Table names are validated domain names; the root is a safe fallback.
    let mut n = Name::from_ascii(s).unwrap_or_else(|_| Name::root());
    n.set_fqdn(true);
    n
}

/// The SOA that goes with a negative local answer (SPEC §3): owned by the zone
/// apex, serial = the table's generation, TTL = minimum = the negative TTL.
fn soa(table: &ZoneTable, apex: &str) -> Record {
    let soa = table.soa(apex);
    let apex = name_of(apex);
    let rname = Name::from_ascii("hostmaster")
        .and_then(|h| h.append_domain(&apex))
        .unwrap_or_else(|_| apex.clone());
    Record::from_rdata(
        apex.clone(),
        soa.minimum,
        RData::SOA(SOA::new(
            apex,
            rname,
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum,
        )),
    )
}

async fn send<R: ResponseHandler>(
    request: &Request,
    mut response_handle: R,
    edns: Option<&Edns>,
    mut answer: Answer,
) -> ResponseInfo {
    let mut meta = Metadata::response_from_request(&request.metadata);
    meta.response_code = answer.rcode;
    meta.authoritative = answer.authoritative;
    meta.recursion_available = true;
    if answer.truncated
        || (request.protocol() == Protocol::Udp && !fits_udp(request, edns, &meta, &answer))
    {
        // hickory would fill the packet and drop the OPT record that must
        // follow (RFC 6891 §7); send the usual empty TC=1 answer instead, so
        // the client retries over TCP (RFC 1035 §4.2.1).
        meta.truncation = true;
        answer.answers.clear();
        answer.authorities.clear();
    }
    let mut builder = MessageResponseBuilder::from_message_request(request);
    if let Some(e) = edns {
        builder.edns(e);
    }
    let response = builder.build(
        meta,
        answer.answers.iter(),
        answer.authorities.iter(),
        iter::empty(),
        iter::empty(),
    );
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(error) => {
            debug!(%error, client = %request.src(), "could not send the response");
            ResponseInfo::from(Header {
                metadata: meta,
                counts: HeaderCounts::default(),
            })
        }
    }
}

/// Whether `answer` fits the client's UDP size: 512 without EDNS, else the
/// payload we echo. A cheap upper bound decides most answers; a large one is
/// encoded once to see, since name compression often makes it fit.
fn fits_udp(request: &Request, edns: Option<&Edns>, meta: &Metadata, answer: &Answer) -> bool {
    /// Header, plus an OPT record without options.
    const FIXED: usize = 12 + 11;
    let limit = edns.map_or(512, |e| usize::from(e.max_payload()));
    let question = request.queries.as_bytes().len();
    let records: usize = answer
        .answers
        .iter()
        .chain(&answer.authorities)
        .map(record_size_bound)
        .sum();
    if FIXED + question + records <= limit {
        return true;
    }
    let mut builder = MessageResponseBuilder::from_message_request(request);
    if let Some(e) = edns {
        builder.edns(e);
    }
    let trial = builder.build(
        *meta,
        answer.answers.iter(),
        answer.authorities.iter(),
        iter::empty(),
        iter::empty(),
    );
    let mut buf = Vec::with_capacity(limit);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_max_size(limit as u16);
    trial
        .destructive_emit(&mut encoder)
        .is_ok_and(|info| !info.truncation)
}

/// Upper bound of a record's wire size: uncompressed owner, type, class, TTL,
/// length, data.
fn record_size_bound(r: &Record) -> usize {
    let name = |n: &Name| n.len() + 1;
    let data = match &r.data {
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        RData::CNAME(c) => name(&c.0),
        RData::SOA(s) => name(&s.mname) + name(&s.rname) + 20,
        other => other.to_bytes().map_or(usize::from(u16::MAX), |b| b.len()),
    };
    name(&r.name) + 10 + data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Cache, Key, Reply};
    use crate::config;
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::LowerName;

    /// A handler over `config` (TOML) whose cache holds `cached`.
    fn handler(config: &str, cached: &[(&str, RecordType, Reply)]) -> Handler {
        let config = config::parse(std::path::Path::new("t.toml"), config).unwrap();
        let metrics = Arc::new(Metrics::new());
        let cache = Arc::new(Cache::new(100));
        for (name, qtype, reply) in cached {
            let key = Key {
                name: LowerName::from(Name::from_ascii(name).unwrap()),
                qtype: *qtype,
                dnssec: Dnssec::default(),
            };
            cache.insert(&key, reply);
        }
        let snapshot = Snapshot {
            table: ZoneTable::compile(&config, 1).unwrap(),
            allow: config.server.allow.clone(),
            forwarder: Arc::new(Forwarder::new(&config.upstream, cache, metrics.clone())),
            log_queries: false,
        };
        Handler::new(
            Arc::new(ArcSwap::from_pointee(snapshot)),
            metrics,
            Arc::new(InFlight::default()),
        )
    }

    fn fast(h: &Handler, name: &str, qtype: RecordType) -> Option<Message> {
        let mut q = Message::query();
        q.metadata.id = 0x1234;
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        let mut out = [0u8; 2048];
        let src = "127.0.0.1:5353".parse().unwrap();
        let len = h.answer_fast(&q.to_vec().unwrap(), src, &mut out)?;
        Some(Message::from_vec(&out[..len]).unwrap())
    }

    fn a(owner: &str, ttl: u32, ip: [u8; 4]) -> Record {
        Record::from_rdata(
            Name::from_ascii(owner).unwrap(),
            ttl,
            RData::A(A(ip.into())),
        )
    }

    fn cname(owner: &str, target: &str) -> Record {
        let target = Name::from_ascii(target).unwrap();
        Record::from_rdata(
            Name::from_ascii(owner).unwrap(),
            60,
            RData::CNAME(CNAME(target)),
        )
    }

    /// A fresh cached answer is sent from its bytes: the client's ID and
    /// case, not authoritative, counted as a cache hit; what the general
    /// path must complete or judge is left to it.
    #[test]
    fn cached_answers_take_the_fast_path() {
        let ws = "fb7e20a0-8891-458b-b969-55ddb3382f51.workspace.eastus.api.azureml.ms.";
        let reply = |answers| Reply {
            rcode: ResponseCode::NoError,
            answers,
            authorities: Vec::new(),
        };
        let h = handler(
            "[server]\nallow = [\"127.0.0.0/8\"]\n\
             [[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.9\"]\n",
            &[
                (
                    "www.example.com.",
                    RecordType::A,
                    reply(vec![a("www.example.com.", 300, [192, 0, 2, 1])]),
                ),
                (
                    "st.blob.core.windows.net.",
                    RecordType::A,
                    reply(vec![
                        cname(
                            "st.blob.core.windows.net.",
                            "st.privatelink.blob.core.windows.net.",
                        ),
                        a("st.privatelink.blob.core.windows.net.", 60, [192, 0, 2, 2]),
                    ]),
                ),
                (
                    "other.example.com.",
                    RecordType::A,
                    reply(vec![
                        cname("other.example.com.", "www.example.com."),
                        a("www.example.com.", 300, [192, 0, 2, 1]),
                    ]),
                ),
                (ws, RecordType::A, reply(vec![a(ws, 300, [192, 0, 2, 3])])),
            ],
        );
        let m = fast(&h, "WWW.Example.com.", RecordType::A).expect("the fast path");
        assert_eq!(m.metadata.id, 0x1234);
        assert!(!m.metadata.authoritative && m.metadata.recursion_available);
        assert_eq!(m.queries[0].name().to_ascii(), "WWW.Example.com.");
        assert_eq!(m.answers, vec![a("www.example.com.", 300, [192, 0, 2, 1])]);
        // A chain that stays outside the table is passed on as it is.
        assert_eq!(
            fast(&h, "other.example.com.", RecordType::A)
                .unwrap()
                .answers
                .len(),
            2
        );
        assert_eq!(h.metrics.cache_hits.get(), 2);
        // A workspace name the table lacks still gives its signal.
        assert_eq!(fast(&h, ws, RecordType::A).unwrap().answers.len(), 1);
        assert_eq!(h.metrics.workspace_missing.get(), 1);
        // Into the table (completed there), ANY over UDP, and a miss: the
        // general path's.
        assert!(fast(&h, "st.blob.core.windows.net.", RecordType::A).is_none());
        assert!(fast(&h, "www.example.com.", RecordType::ANY).is_none());
        assert!(fast(&h, "www.example.com.", RecordType::AAAA).is_none());
        assert_eq!(h.metrics.cache_hits.get(), 3);
    }

    #[tokio::test]
    async fn a_panicking_answer_falls_back() {
        let boom = async {
            if Instant::now().elapsed() < Duration::from_secs(3600) {
                panic!("a bug while answering");
            }
            1
        };
        assert_eq!(or_on_panic(boom, async { 2 }).await, 2);
        assert_eq!(or_on_panic(async { 1 }, async { 2 }).await, 1);
    }
}
