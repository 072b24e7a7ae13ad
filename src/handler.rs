//! Answering one query: the [`Snapshot`] in force is read once,
//! [`resolve::plan`] decides what to answer, and an encoder writes it: the
//! fast path's [`wire`] writer for the plain UDP queries it can write, else
//! the general path's [`codec`]. The general path also does the asking
//! upstream that a plan calls for. Every path ends in an [`Outcome`], which
//! is what metrics and logs record, in one place (`Handler::record`).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures_util::FutureExt;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::cache::WireKey;
use crate::codec::{self, Response};
use crate::forward::Service;
use crate::forward::{Dnssec, EDNS_PAYLOAD, Forwarded};
use crate::logging::RateLimited;
use crate::metrics::{self, Metrics, Tally};
use crate::names::{self, NameKey};
use crate::resolve::{self, Chase, Next, Outcome, Plan, QUERY_DEADLINE, Source, Transport, rcode};
use crate::snapshot::{Built, Snapshot, TcpLimits};
use crate::soa::Negative;
use crate::wire;
use crate::zone::{End, Lookup};

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

    /// From now on, new queries get REFUSED, so stubs move to their next
    /// server at once.
    pub fn refuse_new(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Refuses new queries ([`Self::refuse_new`]) and waits, at most `max`,
    /// for those already in flight.
    pub async fn drain(&self, max: Duration) {
        self.refuse_new();
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

/// Answers queries from the [`Snapshot`] in force.
pub struct Handler {
    snapshot: Arc<ArcSwap<Snapshot>>,
    forwarder: Arc<Service>,
    metrics: Arc<Metrics>,
    in_flight: Arc<InFlight>,
    missing_workspace_log: RateLimited,
}

/// How a query was answered, for [`Handler::record`].
struct Answered<'a> {
    transport: Transport,
    qtype: u16,
    name: Option<&'a NameKey>,
    client: IpAddr,
    outcome: Outcome,
    rcode: u16,
}

/// Where an answered query is counted.
enum Count<'t> {
    /// The fast path's: in its loop's tally, which times the whole batch.
    InBatch(&'t mut Tally),
    /// The general path's: straight into the shared series, with the time
    /// the query took.
    Took(Duration),
}

impl Handler {
    pub fn new(
        snapshot: Arc<ArcSwap<Snapshot>>,
        forwarder: Arc<Service>,
        metrics: Arc<Metrics>,
        in_flight: Arc<InFlight>,
    ) -> Self {
        Handler {
            snapshot,
            forwarder,
            metrics,
            in_flight,
            missing_workspace_log: RateLimited::new(MISSING_WORKSPACE_LOG_EVERY),
        }
    }

    /// A handler that answers from `built` alone, with no reloads: for
    /// tests, benchmarks and fuzzing.
    pub fn standalone(built: Built, metrics: Arc<Metrics>) -> Self {
        let forwarder = Arc::new(Service::new(&built.upstream, metrics.clone()));
        Handler::new(
            Arc::new(ArcSwap::from_pointee(built.snapshot)),
            forwarder,
            metrics,
            Arc::new(InFlight::default()),
        )
    }

    /// The forwarder it asks, and its cache.
    pub fn forwarder(&self) -> &Service {
        &self.forwarder
    }

    /// The fast path: a plain UDP query whose plan the [`wire`] writer can
    /// write (a local name's addresses or NODATA, an error or a refusal,
    /// TC=1), or a forwarded name whose fresh answer the cache holds on the
    /// wire (a negative one under a zone amldns owns made amldns's own),
    /// answered straight into `out` with no DNS library and no lock.
    /// Its length, or `None` for anything else: the caller then takes the
    /// general path, which writes the same bytes for the same plan. The
    /// answer is counted in the calling loop's `tally`.
    pub fn answer_fast(
        &self,
        msg: &[u8],
        src: SocketAddr,
        out: &mut [u8],
        tally: &mut Tally,
    ) -> Option<usize> {
        // Borrowed where it was returned: a query is 290 bytes to move.
        let Some(q) = &wire::parse_query(msg) else {
            return None;
        };
        let snap = self.snapshot.load();
        // The per-query log, and NSID, are the general path's.
        if snap.log_queries || q.edns.is_some_and(|e| e.nsid) {
            return None;
        }
        let plan = resolve::plan(
            &snap.table,
            &snap.policy,
            &q.asked(src.ip()),
            self.in_flight.stopping(),
        );
        let limit = wire::udp_limit(q.edns, EDNS_PAYLOAD);
        let bare = |rcode, recursion_available, truncated, out: &mut [u8]| {
            let flags = wire::Flags {
                rcode,
                authoritative: false,
                truncated,
                recursion_available,
            };
            wire::write_bare(msg, q, flags, limit, out)
        };
        let (len, rcode) = match &plan {
            Plan::Bare(reason) => {
                let rcode = reason.rcode();
                (
                    bare(rcode, reason.recursion_available(), false, out)?,
                    rcode,
                )
            }
            Plan::Truncated => (bare(rcode::NOERROR, true, true, out)?, rcode::NOERROR),
            Plan::Local(answer) => {
                let local = match answer.end {
                    End::Addrs { v4, v6, ttl } => wire::Local::Addrs { v4, v6, ttl },
                    End::NoData { apex } => wire::Local::NoData(resolve::negative_soa(
                        &snap.table,
                        self.forwarder.soas(),
                        apex,
                    )),
                    End::Chain | End::Forward(_) => return None,
                };
                let len = wire::write_local(msg, q, &answer.chain, &local, limit, out)?;
                (len, rcode::NOERROR)
            }
            Plan::Apex { .. } | Plan::Identity => return None,
            Plan::Forward { zone } => self.cached(&snap, msg, q, *zone, limit, out)?,
        };
        let outcome = match plan {
            Plan::Forward { .. } => {
                tally.cache_hit();
                Outcome::Cached
            }
            _ => plan.outcome(),
        };
        self.record(
            &snap,
            &Answered {
                transport: Transport::Udp,
                qtype: q.qtype,
                name: Some(&q.key),
                client: src.ip(),
                outcome,
                rcode,
            },
            None,
            Count::InBatch(tally),
        );
        Some(len)
    }

    /// The general path: any query, over UDP or TCP (at least a header's
    /// 12 bytes, QR=0), answered with the bytes to send.
    pub async fn answer(&self, msg: &[u8], src: SocketAddr, transport: Transport) -> Vec<u8> {
        self.answer_then(msg, src, transport, std::future::ready)
            .await
    }

    /// [`Handler::answer`], the answer handed to `send` while the query
    /// still counts as in flight: a graceful stop waits (up to its cap)
    /// until it has gone out, not only until it was made.
    pub async fn answer_then<T, F: Future<Output = T>>(
        &self,
        msg: &[u8],
        src: SocketAddr,
        transport: Transport,
        send: impl FnOnce(Vec<u8>) -> F,
    ) -> T {
        let (_entered, stopping) = self.in_flight.enter();
        send(self.general(msg, src, transport, stopping).await).await
    }

    async fn general(
        &self,
        msg: &[u8],
        src: SocketAddr,
        transport: Transport,
        stopping: bool,
    ) -> Vec<u8> {
        let started = Instant::now();
        // An owned snapshot: it is held across the forwarding await.
        let snap = self.snapshot.load_full();
        let Some(query) = codec::parse(msg) else {
            return self.unparsed(&snap, msg, src, transport).to_vec();
        };
        let key = codec::key_of(&query);
        let asked = codec::asked(&query, key.as_ref(), src.ip(), transport);
        let plan = resolve::plan(&snap.table, &snap.policy, &asked, stopping);
        // A bug that panics while answering must not leave the client
        // waiting: the panic hook logs and counts it, the client gets SERVFAIL.
        let respond = self.respond(&snap, &query, &plan, src.ip());
        let (outcome, mut response) = or_on_panic(respond, async {
            (Outcome::Error, Response::bare(rcode::SERVFAIL, true, false))
        })
        .await;
        response.nsid = snap.policy.nsid(&asked).map(Into::into);
        let payload = codec::payload(&query, EDNS_PAYLOAD);
        let limit = match transport {
            Transport::Udp => payload,
            _ => u16::MAX,
        };
        let bytes = codec::encode(&query, &response, payload, limit);
        self.record(
            &snap,
            &Answered {
                transport,
                qtype: asked.question.map_or(0, |q| q.qtype),
                name: key.as_ref(),
                client: src.ip(),
                outcome,
                rcode: response.rcode,
            },
            Some(&query),
            Count::Took(started.elapsed()),
        );
        bytes
    }

    /// The answer to a query whose header reads but whose body does not:
    /// FORMERR (RFC 1035 §4.1.1), or REFUSED for a client outside `allow`,
    /// counted like any other answer.
    fn unparsed(
        &self,
        snap: &Snapshot,
        msg: &[u8],
        src: SocketAddr,
        transport: Transport,
    ) -> [u8; 12] {
        let (rcode, outcome) = if snap.policy.allows(src.ip()) {
            (rcode::FORMERR, Outcome::Error)
        } else {
            (rcode::REFUSED, Outcome::Refused)
        };
        self.metrics
            .queries
            .count(transport, 0, outcome, rcode, 0.0);
        codec::bare_header([msg[0], msg[1], msg[2], msg[3]], rcode)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The TCP limits in force.
    pub fn tcp_limits(&self) -> TcpLimits {
        self.snapshot.load().tcp
    }

    /// Whether `ip` is inside `allow` now (the TCP acceptor asks first).
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.snapshot.load().policy.allows(ip)
    }

    /// A workspace name the table lacks, just forwarded (or
    /// answered from the cache), is about to be reached over the public
    /// internet: counted, and logged at most every few seconds.
    fn check_forwarded(&self, name: &NameKey, client: IpAddr) {
        let Some(id) = names::workspace_id_in(name.as_str()) else {
            return;
        };
        self.metrics.queries.workspace_missing.inc();
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

    /// Where every answered query is recorded: metrics, the missing
    /// workspace signal, and the per-query log (`query`, the general
    /// path's parsed query, names the question as asked), counted as
    /// `count` says.
    fn record(&self, snap: &Snapshot, a: &Answered<'_>, query: Option<&Message>, count: Count<'_>) {
        let took = match count {
            Count::InBatch(tally) => {
                tally.query(a.transport, a.qtype, a.outcome, a.rcode);
                None
            }
            Count::Took(took) => {
                let seconds = took.as_secs_f64();
                self.metrics
                    .queries
                    .count(a.transport, a.qtype, a.outcome, a.rcode, seconds);
                Some(took)
            }
        };
        if let (Some(key), Outcome::Forwarded | Outcome::Cached | Outcome::Stale) =
            (a.name, a.outcome)
        {
            self.check_forwarded(key, a.client);
        }
        if snap.log_queries {
            let q = query.and_then(|m| m.queries.first());
            info!(
                target: "amldns::query",
                client = %a.client,
                name = %q.map(|q| q.name().to_string()).unwrap_or_default(),
                qtype = %RecordType::from(a.qtype),
                outcome = a.outcome.as_str(),
                rcode = metrics::rcode_label(a.rcode),
                micros = took.unwrap_or_default().as_micros() as u64,
                "query"
            );
        }
    }
}

/// How a client asked for what the plan sends upstream.
#[derive(Debug, Clone, Copy)]
struct Asking {
    /// DO and CD, passed upstream and part of the cache's key.
    dnssec: Dnssec,
    /// RD: without it, the cache alone is looked in.
    recursion_desired: bool,
    /// Whose share of the upstream's places in flight its question takes.
    from: IpAddr,
}

/// `answer`, or `fallback` if `answer` panics.
async fn or_on_panic<T>(answer: impl Future<Output = T>, fallback: impl Future<Output = T>) -> T {
    match AssertUnwindSafe(answer).catch_unwind().await {
        Ok(done) => done,
        Err(_) => fallback.await,
    }
}

impl Handler {
    /// The general path's response to `plan` for a client at `from`: written
    /// from the plan, or asked upstream where the plan says so.
    async fn respond(
        &self,
        snap: &Snapshot,
        query: &Message,
        plan: &Plan<'_>,
        from: IpAddr,
    ) -> (Outcome, Response) {
        let Some(q) = query.queries.first() else {
            return (
                plan.outcome(),
                codec::respond(
                    plan,
                    &Name::root(),
                    &snap.table,
                    self.forwarder.soas(),
                    &snap.policy,
                ),
            );
        };
        let asking = Asking {
            dnssec: Dnssec {
                ok: query.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
                checking_disabled: query.metadata.checking_disabled,
            },
            recursion_desired: query.metadata.recursion_desired,
            from,
        };
        match plan {
            Plan::Forward { zone } => {
                self.forward(snap, q.name(), q.query_type(), *zone, asking)
                    .await
            }
            Plan::Local(crate::zone::Answer {
                end: End::Forward(_),
                ..
            }) => {
                self.forward(snap, q.name(), q.query_type(), None, asking)
                    .await
            }
            _ => (
                plan.outcome(),
                codec::respond(
                    plan,
                    q.name(),
                    &snap.table,
                    self.forwarder.soas(),
                    &snap.policy,
                ),
            ),
        }
    }

    /// A forwarded answer straight from the cache's bytes, and its rcode; `None`
    /// where the general path does more than pass the answer on (an answer
    /// whose CNAME leads into the table), or for one not cached fresh. Under
    /// `zone`, a private-link zone amldns owns, a negative answer is amldns's
    /// own, as [`forward`] makes it.
    fn cached(
        &self,
        snap: &Snapshot,
        msg: &[u8],
        q: &wire::Query,
        zone: Option<&str>,
        limit: u16,
        out: &mut [u8],
    ) -> Option<(usize, u16)> {
        let dnssec = Dnssec {
            ok: q.edns.is_some_and(|e| e.dnssec_ok),
            checking_disabled: q.checking_disabled(),
        };
        let key = WireKey::new(q.key.labels(), q.qtype, dnssec)?;
        let fresh = self.forwarder.now().cache().fresh_wire(&key)?;
        let records = fresh.records();
        let rcode = u16::from(records.rcode());
        let next = Chase::new(q.qtype, zone, q.recursion_desired()).after_upstream(
            &snap.table,
            Source::Cache,
            rcode,
            records.answers(),
            fresh.targets().map(Some),
        );
        let len = match next {
            Next::PassOn => wire::write_cached(msg, q, records, fresh.spent(), limit, out)?,
            Next::Own { apex } => {
                let soa = snap.table.soa(apex);
                let negative = match rcode {
                    rcode::NXDOMAIN => wire::Local::NxDomain(soa),
                    _ => wire::Local::NoData(Some(Negative::Own(soa))),
                };
                wire::write_local(msg, q, &[], &negative, limit, out)?
            }
            // Completed from the table: the general path's.
            Next::Enter { .. } | Next::GiveUp => return None,
        };
        Some((len, rcode))
    }

    /// Answers `qname`/`qtype` where the plan sends it upstream: a local chain
    /// that leaves the table is completed upstream, and an upstream chain that
    /// reaches a local name is cut there and completed from the table, as
    /// Azure's resolver does for a linked private DNS zone.
    /// `zone`: the private-link zone amldns owns that `qname` is under, whose
    /// authority a negative answer comes from.
    async fn forward(
        &self,
        snap: &Snapshot,
        qname: &Name,
        qtype: RecordType,
        zone: Option<&str>,
        asking: Asking,
    ) -> (Outcome, Response) {
        let deadline = Instant::now() + QUERY_DEADLINE;
        let table = &snap.table;
        let zq = resolve::zone_qtype(u16::from(qtype));
        let mut chase = Chase::new(u16::from(qtype), zone, asking.recursion_desired);
        let dnssec = asking.dnssec;
        // Held for the whole question: a reload that reconfigures it meanwhile
        // lets this one finish where it began.
        let forwarder = self.forwarder.current();
        let mut answers = Vec::new();
        // The name to answer next, as the client wrote it at first.
        let mut owner = qname.clone();
        loop {
            let key = NameKey::from_labels(owner.iter());
            let local = key
                .as_ref()
                .map_or(Lookup::NotLocal, |k| table.lookup(k.as_str(), zq));
            if let Lookup::Local(ans) = local {
                chase.local();
                let authorities = codec::local_records(
                    &ans,
                    table,
                    self.forwarder.soas(),
                    &mut owner,
                    &mut answers,
                );
                if !matches!(ans.end, End::Forward(_)) {
                    let response = Response::records(chase.authoritative(), answers, authorities);
                    return (chase.outcome(), response);
                }
                // `owner` is now the first name outside the table.
            }

            let got = if chase.may_ask_upstream() {
                forwarder
                    .resolve(&owner, qtype, dnssec, asking.from, deadline)
                    .await
            } else {
                match forwarder.cached(&owner, qtype, dnssec) {
                    Some(reply) => Forwarded::Reply {
                        reply,
                        cached: true,
                    },
                    None => {
                        return match chase.uncached() {
                            Some(reason) => (
                                reason.outcome(),
                                Response::bare(reason.rcode(), reason.recursion_available(), false),
                            ),
                            None => (
                                chase.outcome(),
                                Response::records(chase.authoritative(), answers, Vec::new()),
                            ),
                        };
                    }
                }
            };
            let (reply, from) = match got {
                Forwarded::Failed => {
                    return (Outcome::Error, Response::bare(rcode::SERVFAIL, true, false));
                }
                Forwarded::Reply { reply, cached } => (
                    reply,
                    if cached {
                        Source::Cache
                    } else {
                        Source::Upstream
                    },
                ),
                Forwarded::Stale(reply) => (reply, Source::Stale),
            };
            let rcode = u16::from(reply.rcode);
            let targets = reply.answers.iter().map(|r| match &r.data {
                RData::CNAME(c) => NameKey::from_labels(c.0.iter()),
                _ => None,
            });
            let next = chase.after_upstream(table, from, rcode, reply.answers.len(), targets);
            match next {
                Next::Enter { at } => {
                    if let RData::CNAME(c) = &reply.answers[at].data {
                        owner = c.0.clone();
                    }
                    answers.extend(reply.answers.into_iter().take(at + 1));
                }
                Next::Own { apex } => {
                    let mut own =
                        Response::records(true, Vec::new(), vec![codec::soa(table, apex)]);
                    own.rcode = rcode;
                    return (chase.outcome(), own);
                }
                Next::PassOn => {
                    answers.extend(reply.answers);
                    let mut response =
                        Response::records(chase.authoritative(), answers, reply.authorities);
                    response.rcode = rcode;
                    return (chase.outcome(), response);
                }
                Next::GiveUp => {
                    return (
                        chase.outcome(),
                        Response::bare(rcode::SERVFAIL, true, false),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::Discovered;
    use crate::cache::{Key, Reply};
    use crate::{config, snapshot};
    use hickory_proto::op::{Query, ResponseCode};
    use hickory_proto::rr::rdata::{A, CNAME};
    use hickory_proto::rr::{LowerName, Record};

    /// Loopback clients, one record in a private-link zone amldns owns.
    const ONE_RECORD: &str = "[server]\nallow = [\"127.0.0.0/8\"]\n[upstream]\n\
        servers = [\"127.0.0.1:9\"]\n[[record]]\nname = \"st.privatelink.blob.core.windows.net\"\n\
        a = [\"10.1.0.9\"]\n";

    /// A handler over `config` (TOML) whose cache holds `cached`.
    fn handler(config: &str, cached: &[(&str, RecordType, Reply)]) -> Handler {
        let config = config::parse(std::path::Path::new("t.toml"), config).unwrap();
        let built = snapshot::build(&config, &Discovered::default(), 1).unwrap();
        let h = Handler::standalone(built, Arc::new(Metrics::new()));
        for (name, qtype, reply) in cached {
            let key = Key {
                name: LowerName::from(Name::from_ascii(name).unwrap()),
                qtype: *qtype,
                dnssec: Dnssec::default(),
            };
            h.forwarder().now().cache().insert(&key, reply);
        }
        h
    }

    fn fast(h: &Handler, name: &str, qtype: RecordType) -> Option<Message> {
        fast_from(h, "127.0.0.1:5353", name, qtype)
    }

    fn fast_from(h: &Handler, src: &str, name: &str, qtype: RecordType) -> Option<Message> {
        let answer = fast_bytes(h, src, &query(name, qtype))?;
        Some(Message::from_vec(&answer).unwrap())
    }

    fn query(name: &str, qtype: RecordType) -> Vec<u8> {
        let mut q = Message::query();
        q.metadata.id = 0x1234;
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        q.to_vec().unwrap()
    }

    /// The fast path's answer to `msg` from `src`, in a batch of one,
    /// counted as the socket loop counts it.
    fn fast_bytes(h: &Handler, src: &str, msg: &[u8]) -> Option<Vec<u8>> {
        let mut out = [0u8; 2048];
        let mut tally = h.metrics().tally();
        let len = h.answer_fast(msg, src.parse().unwrap(), &mut out, &mut tally);
        tally.flush(h.metrics(), Duration::ZERO);
        Some(out[..len?].to_vec())
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
        let ws = format!("{}.", crate::fixtures::API_NAME);
        let ws = ws.as_str();
        let reply = |answers| Reply {
            rcode: ResponseCode::NoError,
            answers,
            authorities: Vec::new(),
        };
        let h = handler(
            ONE_RECORD,
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
        assert_eq!(h.metrics.cache.hits.get(), 2);
        // A workspace name the table lacks still gives its signal.
        assert_eq!(fast(&h, ws, RecordType::A).unwrap().answers.len(), 1);
        assert_eq!(h.metrics.queries.workspace_missing.get(), 1);
        // ANY over UDP for a name that is not local: TC=1, from here.
        let any = fast(&h, "www.example.com.", RecordType::ANY).unwrap();
        assert!(any.metadata.truncation && any.answers.is_empty());
        // Into the table (completed there), and a miss: the general path's.
        assert!(fast(&h, "st.blob.core.windows.net.", RecordType::A).is_none());
        assert!(fast(&h, "www.example.com.", RecordType::AAAA).is_none());
        assert_eq!(h.metrics.cache.hits.get(), 3);
    }

    /// Under a private-link zone amldns owns, a cached negative answer is
    /// written on the fast path as amldns's own (AA=1, the zone's SOA in
    /// place of upstream's), byte for byte as the general path writes it; a
    /// cached positive answer there is passed on as any other.
    #[tokio::test]
    async fn owned_negatives_take_the_fast_path() {
        let zone = "privatelink.blob.core.windows.net.";
        let upstream_soa = Record::from_rdata(
            Name::from_ascii("core.windows.net.").unwrap(),
            900,
            RData::SOA(hickory_proto::rr::rdata::SOA::new(
                Name::from_ascii("ns1.example.net.").unwrap(),
                Name::from_ascii("hostmaster.example.net.").unwrap(),
                7,
                3600,
                600,
                86400,
                900,
            )),
        );
        let negative = |rcode| Reply {
            rcode,
            answers: Vec::new(),
            authorities: vec![upstream_soa.clone()],
        };
        let positive = Reply {
            rcode: ResponseCode::NoError,
            answers: vec![a(
                "st2.privatelink.blob.core.windows.net.",
                60,
                [192, 0, 2, 4],
            )],
            authorities: Vec::new(),
        };
        let h = handler(
            ONE_RECORD,
            &[
                (
                    "gone.privatelink.blob.core.windows.net.",
                    RecordType::A,
                    negative(ResponseCode::NXDomain),
                ),
                (
                    "st2.privatelink.blob.core.windows.net.",
                    RecordType::AAAA,
                    negative(ResponseCode::NoError),
                ),
                (
                    "st2.privatelink.blob.core.windows.net.",
                    RecordType::A,
                    positive,
                ),
            ],
        );
        for (name, qtype, rcode) in [
            (
                "Gone.privatelink.blob.core.windows.net.",
                RecordType::A,
                ResponseCode::NXDomain,
            ),
            (
                "st2.privatelink.blob.core.windows.net.",
                RecordType::AAAA,
                ResponseCode::NoError,
            ),
        ] {
            let q = query(name, qtype);
            let bytes = fast_bytes(&h, "127.0.0.1:5353", &q).expect("the fast path");
            let general = h.answer(&q, "127.0.0.1:5353".parse().unwrap(), Transport::Udp);
            assert_eq!(bytes, general.await, "{name}: the same bytes");
            let m = Message::from_vec(&bytes).unwrap();
            assert_eq!(m.metadata.response_code, rcode, "{name}");
            assert!(m.metadata.authoritative && m.answers.is_empty(), "{name}");
            assert_eq!(m.authorities.len(), 1, "{name}");
            let soa = &m.authorities[0];
            assert_eq!(soa.name.to_ascii(), zone, "ours, not upstream's");
            assert_eq!(soa.record_type(), RecordType::SOA);
        }
        // A positive answer there is passed on, as the general path does.
        let q = query("st2.privatelink.blob.core.windows.net.", RecordType::A);
        let bytes = fast_bytes(&h, "127.0.0.1:5353", &q).expect("the fast path");
        let general = h.answer(&q, "127.0.0.1:5353".parse().unwrap(), Transport::Udp);
        assert_eq!(bytes, general.await);
        let m = Message::from_vec(&bytes).unwrap();
        assert!(!m.metadata.authoritative);
        assert_eq!(m.answers.len(), 1);
        // Three on the fast path, three on the general path beside it.
        assert_eq!(h.metrics.cache.hits.get(), 6);
    }

    /// A client outside `allow` is refused on the fast path (no task, no
    /// parse by the general path), and counted so.
    #[test]
    fn outsiders_are_refused_on_the_fast_path() {
        let h = handler(
            "[server]\nallow = [\"127.0.0.1/32\"]\n[upstream]\nservers = [\"127.0.0.1:9\"]\n\
             [[record]]\nname = \"st.privatelink.blob.core.windows.net\"\na = [\"10.1.0.9\"]\n",
            &[],
        );
        for name in ["st.privatelink.blob.core.windows.net.", "www.example.com."] {
            let m = fast_from(&h, "192.0.2.7:5353", name, RecordType::A).expect("the fast path");
            assert_eq!(m.metadata.response_code, ResponseCode::Refused);
            assert!(m.answers.is_empty() && !m.metadata.authoritative);
        }
        let text = h.metrics.render();
        assert!(
            text.contains(r#"amldns_queries_total{outcome="refused",protocol="udp",qtype="A"} 2"#),
            "{text}"
        );
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
