//! Forwarding to the upstream resolvers (`[upstream] servers`, by default
//! Azure's 168.63.129.16), with our cache in front.
//!
//! amldns decides the order and the time each upstream gets: healthy
//! upstreams first in config order, a failed one moved last for
//! [`RETRY_FAILED_AFTER`]; each try gets `timeout_ms`, shortened so every
//! upstream gets a turn before the query's deadline. Within a try the
//! datagram is sent again ([`resend_after`]): one lost datagram is never a
//! failure (SPEC §3), and only a question no upstream answered in all its
//! time is remembered as failed.
//!
//! It also protects the upstream (SPEC §1: Azure's resolver silently drops
//! what is over 1000 queries/s or 200 in flight per VM): identical questions
//! in flight are asked once, questions beyond `max_in_flight` at once get
//! SERVFAIL (or a stale answer) at once, and past `max_qps` a question
//! waits its turn for at most [`MAX_RATE_WAIT`], then gets SERVFAIL. Each
//! question is asked in a task of its own, so an answer that comes after a
//! client gave up still refreshes the cache.
//!
//! DNSSEC passes through (SPEC §3, RFC 4035 §3.2): the client's DO and CD
//! go upstream and into the cache key, and the signatures and denial
//! proofs of an answer are kept for a client that set DO, and only for one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use prometheus::{Histogram, IntCounter, IntGauge};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::{debug, info, warn};

use crate::cache::{Cache, Hit, Key, Reply};
use crate::metrics::{Limit, Metrics};
use crate::upstream::{self, Ask};

pub use crate::upstream::{Dnssec, EDNS_PAYLOAD};

/// A client should hear SERVFAIL before its own stub gives up: glibc waits
/// 5 s per try, Windows 1 s then retries; answering within 2.5 s keeps
/// amldns from being the one that looks dead. Every upstream question a
/// client question leads to shares this one budget.
pub const QUERY_DEADLINE: Duration = Duration::from_millis(2500);

/// RFC 8767 §5: with a stale answer at hand, a client waits at most this
/// for a fresh one (its stub's own timeout is often 2 s).
pub const STALE_AFTER: Duration = Duration::from_millis(1800);

/// How long a failed upstream goes to the back of the line before it is
/// tried first again.
pub const RETRY_FAILED_AFTER: Duration = Duration::from_secs(10);

/// The longest a new question waits for its turn under `max_qps`. A burst
/// of new names (a page load, a job starting) is asked as fast as the rate
/// allows instead of refused; at the default 900/s a tenth of the deadline
/// lets about 240 new names at once be asked, and it leaves the default
/// `timeout_ms` (2 s) whole within [`QUERY_DEADLINE`].
pub const MAX_RATE_WAIT: Duration = Duration::from_millis(250);

/// When, within a try of `per_try`, the datagram is sent again: at a fifth
/// and at half of it (400 ms and 1 s of the default 2 s), as a stub
/// retransmits, but never sooner than twice and four times the upstream's
/// smoothed round-trip time `srtt` (RFC 1035 §4.2.1: intervals based on
/// prior statistics). A datagram a fast upstream lost is sent again soon;
/// a slow upstream is not sent copies of what it is still working on.
pub fn resend_after(per_try: Duration, srtt: Duration) -> [Duration; 2] {
    [(per_try / 5).max(srtt * 2), (per_try / 2).max(srtt * 4)]
}

/// The forwarder's settings (`[upstream]`; `config` builds them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub servers: Vec<SocketAddr>,
    /// How long one upstream gets before the next is tried.
    pub timeout: Duration,
    /// Forwarded answers kept; 0 turns the cache off.
    pub cache_entries: u64,
    /// Questions asked upstream at once (SPEC §1: Azure allows 200 per VM).
    pub max_in_flight: usize,
    /// Upstream queries per second (SPEC §1: Azure allows 1000 per VM).
    pub max_qps: u32,
}

/// What forwarding one question gave.
#[derive(Debug)]
pub enum Forwarded {
    /// An answer, from upstream or the cache; its rcode passes through.
    Reply { reply: Reply, cached: bool },
    /// Every upstream failed (or was not asked, over a limit); this answer
    /// is past its TTL (RFC 8767).
    Stale(Reply),
    /// No upstream answered in time, or none was asked (over a limit).
    Failed,
}

/// What asking the upstreams gave, shared with every client waiting for it.
#[derive(Debug, Clone)]
enum Fetched {
    Reply(Reply),
    Failed,
}

struct Upstream {
    addr: SocketAddr,
    sockets: upstream::Sockets,
    /// Milliseconds since `Forwarder::epoch` of the last failure, 0 if none.
    failed_at_ms: AtomicU64,
    /// Smoothed round-trip time in microseconds, 0 before the first reply:
    /// how soon a datagram may be taken for lost ([`resend_after`]).
    srtt_us: AtomicU64,
    requests: IntCounter,
    duration: Histogram,
    /// By [`crate::metrics::UPSTREAM_ERROR_KINDS`].
    errors: [IntCounter; 5],
}

impl Upstream {
    fn srtt(&self) -> Duration {
        Duration::from_micros(self.srtt_us.load(Ordering::Relaxed))
    }

    /// Folds a round trip into the smoothed RTT: the first sets it, then
    /// each moves it by an eighth (RFC 6298 §2).
    fn observe_rtt(&self, rtt: Duration) {
        let rtt = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = self
            .srtt_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |srtt| {
                Some(match srtt {
                    0 => rtt,
                    _ => srtt - srtt / 8 + rtt / 8,
                })
            });
    }
}

/// Upstream queries per second, as a token bucket that lends: a question
/// that finds it empty may take a token not yet earned and wait until it is
/// (at most [`MAX_RATE_WAIT`]), so queries go out at `per_sec` on average
/// and never faster, however they arrive.
struct Rate {
    per_sec: f64,
    /// A burst is at most a fiftieth of a second's worth, so that no second
    /// sees more than 2% over the rate.
    burst: f64,
    /// Below zero while tokens are lent: the questions waiting for them.
    tokens: f64,
    last: Instant,
}

impl Rate {
    fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec);
        let burst = (per_sec / 50.0).max(1.0);
        Rate {
            per_sec,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// A token at `now`, and how long to wait before using it; `None` when
    /// that would be longer than `max_wait`.
    fn take(&mut self, now: Instant, max_wait: Duration) -> Option<Duration> {
        let earned = now.duration_since(self.last).as_secs_f64() * self.per_sec;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
        let left = self.tokens - 1.0;
        let wait = Duration::from_secs_f64((-left).max(0.0) / self.per_sec);
        if wait > max_wait {
            return None;
        }
        self.tokens = left;
        Some(wait)
    }
}

/// The forwarding side: upstreams, their health, the limits, and the cache.
pub struct Forwarder {
    /// What it was built from; a reload with the same settings keeps it.
    config: Settings,
    upstreams: Vec<Upstream>,
    metrics: Arc<Metrics>,
    /// `timeout_ms`, shortened so every upstream gets a turn within the deadline.
    per_try: Duration,
    cache: Arc<Cache>,
    epoch: Instant,
    /// Questions being asked now, and where their answer will appear.
    pending: Mutex<Pending>,
    /// One permit per question being asked (`max_in_flight`).
    in_flight: Arc<Semaphore>,
    rate: Mutex<Rate>,
}

/// Questions being asked, and where each one's answer will appear; hashed
/// as the cache is (seeded, so clients cannot aim names at one bucket).
type Pending = HashMap<Key, watch::Receiver<Option<Fetched>>, foldhash::fast::RandomState>;

/// Takes a question off `pending` when its task ends, however it ends.
struct Asking {
    forwarder: Arc<Forwarder>,
    key: Key,
}

impl Drop for Asking {
    fn drop(&mut self) {
        self.forwarder.pending().remove(&self.key);
    }
}

/// One of the `max_in_flight` places of questions out upstream, shown in
/// the gauge while held.
struct Place {
    _permit: OwnedSemaphorePermit,
    gauge: IntGauge,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl Forwarder {
    pub fn new(config: &Settings, cache: Arc<Cache>, metrics: Arc<Metrics>) -> Self {
        let upstreams = config
            .servers
            .iter()
            .map(|addr| {
                let label = addr.to_string();
                Upstream {
                    addr: *addr,
                    sockets: upstream::Sockets::new(
                        *addr,
                        upstream::POOL_IDLE,
                        upstream::POOL_USES,
                        metrics.upstream_sockets.clone(),
                    ),
                    failed_at_ms: AtomicU64::new(0),
                    srtt_us: AtomicU64::new(0),
                    requests: metrics.upstream_requests.with_label_values(&[&label]),
                    duration: metrics.upstream_duration.with_label_values(&[&label]),
                    errors: metrics.upstream_errors_of(&label),
                }
            })
            .collect::<Vec<_>>();
        let n = u32::try_from(upstreams.len().max(1)).unwrap_or(u32::MAX);
        Forwarder {
            per_try: config.timeout.min(QUERY_DEADLINE / n),
            config: config.clone(),
            metrics,
            upstreams,
            cache,
            epoch: Instant::now(),
            pending: Mutex::new(HashMap::default()),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            rate: Mutex::new(Rate::new(config.max_qps)),
        }
    }

    /// The answer for `name`/`qtype` asked with `dnssec`: from the cache, or
    /// from the first upstream that answers before `deadline`, or stale.
    /// Owner names equal to `name` are spelled as the client spelled it,
    /// fresh or cached, as the UDP fast path does by pointing at the
    /// question.
    pub async fn resolve(
        self: &Arc<Self>,
        name: &Name,
        qtype: RecordType,
        dnssec: Dnssec,
        deadline: Instant,
    ) -> Forwarded {
        let key = Key {
            name: LowerName::from(name),
            qtype,
            dnssec,
        };
        let mut got = self.find(key, deadline).await;
        if let Forwarded::Reply { reply, .. } | Forwarded::Stale(reply) = &mut got {
            spell_as(name, reply);
        }
        got
    }

    async fn find(self: &Arc<Self>, key: Key, deadline: Instant) -> Forwarded {
        let stale = match self.cache.get(&key) {
            Some(Hit::Fresh(reply)) => {
                self.metrics.cache_hits.inc();
                return Forwarded::Reply {
                    reply,
                    cached: true,
                };
            }
            Some(Hit::Stale(reply)) => Some(reply),
            None => None,
        };
        self.metrics.cache_misses.inc();
        let fallback = |got: Forwarded| match (&got, stale.clone()) {
            (Forwarded::Failed, Some(stale)) => Forwarded::Stale(stale),
            (Forwarded::Reply { reply, .. }, Some(stale)) if !is_answer(reply.rcode) => {
                Forwarded::Stale(stale)
            }
            _ => got,
        };
        if let Some(failure) = self.cache.failure(&key) {
            return fallback(match failure {
                Some(rcode) => Forwarded::Reply {
                    reply: Reply::error(rcode),
                    cached: true,
                },
                None => Forwarded::Failed,
            });
        }
        let Some(mut answer) = self.ask(key) else {
            return fallback(Forwarded::Failed);
        };
        let wait_until = match stale {
            Some(_) => deadline.min(Instant::now() + STALE_AFTER),
            None => deadline,
        };
        let got = tokio::time::timeout_at(wait_until.into(), answer.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(|r| r.ok().and_then(|v| v.clone()));
        fallback(match got {
            Some(Fetched::Reply(reply)) => Forwarded::Reply {
                reply,
                cached: false,
            },
            Some(Fetched::Failed) | None => Forwarded::Failed,
        })
    }

    /// Where the answer to `key` will appear: the question already being
    /// asked, or a new task asking it; `None` when a limit says no.
    ///
    /// A question waiting for its turn under `max_qps` holds no place in
    /// flight: it takes one when it is sent, so a burst a fast upstream
    /// answers at the rate is not cut at `max_in_flight`. The wait bounds
    /// how many may wait (`max_qps` × [`MAX_RATE_WAIT`]).
    fn ask(self: &Arc<Self>, key: Key) -> Option<watch::Receiver<Option<Fetched>>> {
        let mut pending = self.pending();
        if let Some(rx) = pending.get(&key) {
            return Some(rx.clone());
        }
        // Every place taken: a slow upstream, which waiting would not help.
        if self.in_flight.available_permits() == 0 {
            self.metrics.upstream_limited(Limit::InFlight);
            return None;
        }
        let turn = self.take_token(MAX_RATE_WAIT)?;
        let deadline = Instant::now() + QUERY_DEADLINE;
        let (tx, rx) = watch::channel(None);
        pending.insert(key.clone(), rx.clone());
        drop(pending);
        let asking = Asking {
            forwarder: self.clone(),
            key,
        };
        tokio::spawn(async move {
            // Its turn under `max_qps`; askers of the same question join it
            // meanwhile, and the wait counts against the deadline.
            if !turn.is_zero() {
                tokio::time::sleep(turn).await;
            }
            let forwarder = &asking.forwarder;
            let fetched = match forwarder.place() {
                Some(place) => {
                    let fetched = forwarder.fetch(&asking.key, deadline).await;
                    drop(place);
                    fetched
                }
                None => {
                    forwarder.metrics.upstream_limited(Limit::InFlight);
                    Fetched::Failed
                }
            };
            // Nobody may be waiting any more; the cache has it anyway.
            let _ = tx.send(Some(fetched));
            drop(asking);
        });
        Some(rx)
    }

    /// A place in flight, if one is free.
    fn place(&self) -> Option<Place> {
        let permit = self.in_flight.clone().try_acquire_owned().ok()?;
        let gauge = self.metrics.upstream_in_flight.clone();
        gauge.inc();
        Some(Place {
            _permit: permit,
            gauge,
        })
    }

    /// Asks the upstreams in turn until one answers, before `deadline`; the
    /// first try's token is already taken. The failure is remembered only
    /// when every upstream had its turn (or the deadline passed) without an
    /// answer; not when the rate left none for the next upstream.
    async fn fetch(&self, key: &Key, deadline: Instant) -> Fetched {
        let question = Query::query(Name::from(key.name.clone()), key.qtype);
        let mut last_rcode = None;
        let failed = |rcode: Option<ResponseCode>| {
            rcode.map_or(Fetched::Failed, |rcode| Fetched::Reply(Reply::error(rcode)))
        };
        for (i, up) in self.ordered().into_iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if i > 0 && self.take_token(Duration::ZERO).is_none() {
                return failed(last_rcode);
            }
            match self
                .try_upstream(up, key, &question, self.per_try.min(left))
                .await
            {
                Ok(reply) => {
                    self.cache.insert(key, &reply);
                    return Fetched::Reply(reply);
                }
                // SERVFAIL, REFUSED…: another upstream may do better; if none
                // does, the last one passes through (SPEC §3).
                Err(rcode) => last_rcode = rcode.or(last_rcode),
            }
        }
        self.cache.insert_failure(key, last_rcode);
        failed(last_rcode)
    }

    /// One upstream's turn, of `try_for`: its answer, kept to what is
    /// relevant, or else the error rcode for the client (`None`: no reply).
    async fn try_upstream(
        &self,
        up: &Upstream,
        key: &Key,
        question: &Query,
        try_for: Duration,
    ) -> Result<Reply, Option<ResponseCode>> {
        let until = Instant::now() + try_for;
        let mut ask = Ask {
            question: question.clone(),
            dnssec: key.dnssec,
            edns: true,
        };
        loop {
            // Every datagram sent counts as a request. A resend also costs a
            // token and holds a place in flight until the try ends, so that
            // an upstream slow enough to be resent to is not sent more than
            // the limits allow; short of either, it is not sent (and no
            // question is refused for it).
            up.requests.inc();
            let mut resent = Vec::new();
            let started = Instant::now();
            let resend = |i: usize| {
                // The upstream may have shown itself slower since the try began.
                if started.elapsed() < resend_after(self.per_try, up.srtt())[i] {
                    return false;
                }
                let Ok(place) = self.in_flight.clone().try_acquire_owned() else {
                    return false;
                };
                if self.tokens(Duration::ZERO).is_none() {
                    return false;
                }
                resent.push(place);
                up.requests.inc();
                true
            };
            let schedule = resend_after(self.per_try, up.srtt());
            let exchange = upstream::exchange(&up.sockets, &ask, &schedule, resend);
            // Errors count by kind, an index into metrics::UPSTREAM_ERROR_KINDS.
            let msg = match tokio::time::timeout_at(until.into(), exchange).await {
                Ok(Ok(msg)) => msg,
                Ok(Err(error)) => {
                    debug!(upstream = %up.addr, name = %key.name, %error, "upstream failed");
                    self.mark_failed(up);
                    up.errors[1].inc();
                    return Err(None);
                }
                Err(_elapsed) => {
                    debug!(upstream = %up.addr, name = %key.name, ?try_for, "upstream timed out");
                    self.mark_failed(up);
                    up.errors[0].inc();
                    return Err(None);
                }
            };
            up.duration.observe(started.elapsed().as_secs_f64());
            // Karn: after a resend, which copy was answered is unknown.
            if resent.is_empty() {
                up.observe_rtt(started.elapsed());
            }
            let rcode = msg.metadata.response_code;
            // RFC 6891 §7: a server that does not know EDNS may answer the
            // OPT with FORMERR (or NOTIMP); ask it again without.
            if ask.edns
                && matches!(rcode, ResponseCode::FormErr | ResponseCode::NotImp)
                && self.take_token(Duration::ZERO).is_some()
            {
                debug!(upstream = %up.addr, name = %key.name, %rcode, "asking again without EDNS");
                ask.edns = false;
                continue;
            }
            let reply = Reply {
                rcode,
                answers: msg.answers,
                authorities: msg.authorities,
            };
            let kept = if is_answer(rcode) {
                keep_relevant(question.name(), key.qtype, key.dnssec, reply).map_err(|error| {
                    debug!(upstream = %up.addr, name = %key.name, %error, "upstream answer refused");
                    ResponseCode::ServFail
                })
            } else {
                Err(rcode)
            };
            return match kept {
                Ok(reply) => {
                    self.mark_healthy(up);
                    Ok(reply)
                }
                Err(rcode) => {
                    debug!(upstream = %up.addr, name = %key.name, %rcode, "upstream error rcode");
                    up.errors[match rcode {
                        ResponseCode::ServFail => 2,
                        ResponseCode::Refused => 3,
                        _ => 4,
                    }]
                    .inc();
                    // The query was valid: the upstream failed it, not the
                    // client (SPEC §3), whatever it said.
                    Err(Some(match rcode {
                        ResponseCode::FormErr | ResponseCode::NotImp => ResponseCode::ServFail,
                        other => other,
                    }))
                }
            };
        }
    }

    /// A token from the `max_qps` bucket, and how long to wait for it (at
    /// most `max_wait`); `None`, counted, when there is none that soon.
    fn take_token(&self, max_wait: Duration) -> Option<Duration> {
        let turn = self.tokens(max_wait);
        if turn.is_none() {
            self.metrics.upstream_limited(Limit::Rate);
        }
        turn
    }

    /// [`Self::take_token`], uncounted: for resends, which no question waits on.
    fn tokens(&self, max_wait: Duration) -> Option<Duration> {
        self.rate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(Instant::now(), max_wait)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // The map stays consistent whatever panicked while holding it.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs once when an upstream starts failing, not once per query.
    fn mark_failed(&self, up: &Upstream) {
        let now = self.epoch.elapsed().as_millis().max(1) as u64;
        if up.failed_at_ms.swap(now, Ordering::Relaxed) == 0 {
            warn!(upstream = %up.addr, "upstream stopped answering; trying the others first");
        }
    }

    fn mark_healthy(&self, up: &Upstream) {
        if up.failed_at_ms.swap(0, Ordering::Relaxed) != 0 {
            info!(upstream = %up.addr, "upstream answering again");
        }
    }

    /// The settings it was built from.
    pub fn config(&self) -> &Settings {
        &self.config
    }

    /// Drops the metric series of upstreams that `next` no longer has.
    pub fn forget_upstreams_not_in(&self, next: &Settings) {
        for up in &self.upstreams {
            if !next.servers.contains(&up.addr) {
                self.metrics.forget_upstream(&up.addr.to_string());
            }
        }
    }

    /// Upstreams in the order to try them: healthy ones (and those whose
    /// failure is old enough to retry) in config order, then the rest. Decided
    /// once, up front: an upstream that fails while being tried must not come
    /// round again as one of "the rest".
    fn ordered(&self) -> Vec<&Upstream> {
        let now = self.epoch.elapsed().as_millis() as u64;
        let retry = RETRY_FAILED_AFTER.as_millis() as u64;
        let (healthy, failed): (Vec<&Upstream>, Vec<&Upstream>) =
            self.upstreams.iter().partition(|u| {
                let at = u.failed_at_ms.load(Ordering::Relaxed);
                at == 0 || now.saturating_sub(at) >= retry
            });
        healthy.into_iter().chain(failed).collect()
    }

    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    /// Each upstream's state now, in config order (read-only, for `/status`).
    pub fn health(&self) -> Vec<UpstreamHealth> {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.upstreams
            .iter()
            .map(|u| {
                let failed_at = u.failed_at_ms.load(Ordering::Relaxed);
                let answered = u.duration.get_sample_count();
                UpstreamHealth {
                    addr: u.addr,
                    healthy: failed_at == 0,
                    failing_for_s: (failed_at != 0)
                        .then(|| now.saturating_sub(failed_at) as f64 / 1000.0),
                    requests: u.requests.get(),
                    errors: u.errors.iter().map(IntCounter::get).sum(),
                    mean_latency_ms: (answered > 0)
                        .then(|| u.duration.get_sample_sum() * 1000.0 / answered as f64),
                }
            })
            .collect()
    }
}

/// One upstream as `/status` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UpstreamHealth {
    pub addr: SocketAddr,
    /// False from a failure (a timeout, an error rcode) until it answers again.
    pub healthy: bool,
    /// Seconds since it was marked failed, while it is.
    pub failing_for_s: Option<f64>,
    pub requests: u64,
    pub errors: u64,
    /// Mean time to answer since it was configured; `None` before any answer.
    pub mean_latency_ms: Option<f64>,
}

/// Whether an upstream rcode is an answer to keep (NXDOMAIN and NODATA are),
/// rather than a failure another upstream might do better on.
fn is_answer(rcode: ResponseCode) -> bool {
    matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain)
}

/// Why an upstream's answer is not passed on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("its CNAME chain loops")]
pub struct CnameLoop;

/// Keeps only what answers the question: the CNAME chain from `qname` and
/// the records of `qtype` at its end, and an SOA for negative answers. Asked
/// with DO, also the RRSIGs over what is kept, and the NSEC and NSEC3
/// records (with theirs) that prove a denial or a wildcard expansion (RFC
/// 4035 §3.1.1–3.1.3), which a validating client needs. The rest (unrelated
/// answers, NS and glue; and without DO, DNSSEC records the client did not
/// ask for by type, RFC 4035 §3.2.1) is dropped so that it can neither be
/// cached nor reach clients. Owner names equal to `qname` are spelled as it
/// is. A chain that loops is refused: peers (Unbound, Knot Resolver) answer
/// it SERVFAIL. Pure, and public for the `upstream_reply` fuzz target.
pub fn keep_relevant(
    qname: &Name,
    qtype: RecordType,
    dnssec: Dnssec,
    reply: Reply,
) -> Result<Reply, CnameLoop> {
    let mut owner = qname.clone();
    let mut answers: Vec<Record> = Vec::new();
    // Upstreams list the chain in order, but nothing requires it: walk it by
    // name. Each step keeps a record not kept before, so the walk ends.
    while let Some(cname) = reply
        .answers
        .iter()
        .find(|r| r.name == owner && matches!(r.data, RData::CNAME(_)))
    {
        if answers.contains(cname) {
            return Err(CnameLoop);
        }
        answers.push(cname.clone());
        if qtype == RecordType::CNAME {
            break;
        }
        owner = cname_target(cname);
    }
    if qtype != RecordType::CNAME {
        answers.extend(
            reply
                .answers
                .iter()
                .filter(|r| {
                    let t = r.record_type();
                    r.name == owner
                        && (t == qtype || qtype == RecordType::ANY && (dnssec.ok || !t.is_dnssec()))
                })
                .filter(|r| !matches!(r.data, RData::CNAME(_)))
                .cloned(),
        );
    }
    // A chain that ends without data is a negative answer for its last name:
    // its SOA carries the negative TTL (RFC 2308 §2.1, §2.2).
    let answered = answers
        .iter()
        .any(|r| qtype == RecordType::CNAME || !matches!(r.data, RData::CNAME(_)));
    let mut authorities: Vec<Record> = if !answered {
        reply
            .authorities
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .take(1)
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    if dnssec.ok {
        authorities.extend(
            reply
                .authorities
                .iter()
                .filter(|r| matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3))
                .cloned(),
        );
        let signed = signatures(&reply.answers, &answers);
        answers.extend(signed);
        let signed = signatures(&reply.authorities, &authorities);
        authorities.extend(signed);
    }
    let mut kept = Reply {
        rcode: reply.rcode,
        answers,
        authorities,
    };
    spell_as(qname, &mut kept);
    Ok(kept)
}

/// The RRSIGs in `from` over a record set in `kept` (same owner, the type
/// they cover) and not in `kept` already.
fn signatures(from: &[Record], kept: &[Record]) -> Vec<Record> {
    from.iter()
        .filter(|sig| {
            covered(sig).is_some_and(|t| {
                kept.iter()
                    .any(|r| r.name == sig.name && r.record_type() == t)
            }) && !kept.contains(sig)
        })
        .cloned()
        .collect()
}

/// The type an RRSIG covers: the first two bytes of its RDATA (RFC 4034
/// §3.1). hickory without its `dnssec` features (we validate nothing) reads
/// RRSIGs as unknown records and writes them back byte for byte, the signer
/// name uncompressed as RFC 4034 §3.1.7 requires.
fn covered(sig: &Record) -> Option<RecordType> {
    match &sig.data {
        RData::Unknown {
            code: RecordType::RRSIG,
            rdata,
        } => rdata
            .anything
            .get(..2)
            .map(|t| RecordType::from(u16::from_be_bytes([t[0], t[1]]))),
        _ => None,
    }
}

/// Spells owner names equal to `qname` as `qname` is. Case carries no
/// meaning (RFC 4343), but a client sees the question's own spelling
/// echoed, as peers echo it, from the cache or not.
fn spell_as(qname: &Name, reply: &mut Reply) {
    for r in reply.answers.iter_mut().chain(reply.authorities.iter_mut()) {
        if r.name == *qname && !r.name.eq_case(qname) {
            r.name = qname.clone();
        }
    }
}

/// The target of a CNAME record.
pub fn cname_target(r: &Record) -> Name {
    match &r.data {
        RData::CNAME(c) => c.0.clone(),
        _ => r.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME, NULL, SOA};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// Records from short specs: "owner A", "owner CNAME target",
    /// "owner RRSIG covered", "owner SOA", and any other type as opaque
    /// bytes (NSEC, NSEC3, DNSKEY, NS…), as hickory reads them without its
    /// DNSSEC features.
    fn record(spec: &str) -> Record {
        let words: Vec<&str> = spec.split(' ').collect();
        let owner = name(words[0]);
        let data = match words[1] {
            "A" => RData::A(A::new(192, 0, 2, 1)),
            "CNAME" => RData::CNAME(CNAME(name(words[2]))),
            "SOA" => RData::SOA(SOA::new(owner.clone(), owner.clone(), 1, 1, 1, 1, 60)),
            "RRSIG" => {
                let covered = u16::from(words[2].parse::<RecordType>().unwrap());
                let mut rdata = covered.to_be_bytes().to_vec();
                rdata.extend_from_slice(&[13, 2, 0, 0, 1, 44]);
                RData::Unknown {
                    code: RecordType::RRSIG,
                    rdata: NULL::with(rdata),
                }
            }
            other => RData::Unknown {
                code: other.parse().unwrap(),
                rdata: NULL::with(vec![1, 2, 3]),
            },
        };
        Record::from_rdata(owner, 300, data)
    }

    fn reply(rcode: ResponseCode, answers: &[&str], authorities: &[&str]) -> Reply {
        Reply {
            rcode,
            answers: answers.iter().map(|s| record(s)).collect(),
            authorities: authorities.iter().map(|s| record(s)).collect(),
        }
    }

    /// A record as "owner TYPE", RRSIGs as "owner RRSIG(covered)".
    fn show(r: &Record) -> String {
        match covered(r) {
            Some(t) => format!("{} RRSIG({t})", r.name),
            None => format!("{} {}", r.name, r.record_type()),
        }
    }

    type Kept = Result<(Vec<&'static str>, Vec<&'static str>), CnameLoop>;

    #[test]
    fn what_is_kept_of_an_upstream_answer() {
        use ResponseCode::{NXDomain, NoError};
        let (plain, with_do) = (
            Dnssec::default(),
            Dnssec {
                ok: true,
                checking_disabled: false,
            },
        );
        let signed_a = ["w.x. A", "w.x. RRSIG A", "w.x. RRSIG AAAA", "o.x. RRSIG A"];
        let chain = [
            "w.x. CNAME t.x.",
            "w.x. RRSIG CNAME",
            "t.x. A",
            "t.x. RRSIG A",
        ];
        let denial = [
            "x. SOA",
            "x. RRSIG SOA",
            "w.x. NSEC",
            "w.x. RRSIG NSEC",
            "x. NS",
        ];
        let at_w = ["w.x. A", "w.x. RRSIG A", "w.x. NSEC", "w.x. DNSKEY"];
        let cases: Vec<(RecordType, Dnssec, Reply, Kept)> = vec![
            // Loops, however listed; a CNAME question takes only the first step.
            (
                RecordType::A,
                plain,
                reply(NoError, &["w.x. CNAME t.x.", "t.x. CNAME w.x."], &[]),
                Err(CnameLoop),
            ),
            (
                RecordType::A,
                plain,
                reply(
                    NoError,
                    &["t.x. CNAME w.x.", "w.x. CNAME t.x.", "t.x. A"],
                    &[],
                ),
                Err(CnameLoop),
            ),
            (
                RecordType::AAAA,
                with_do,
                reply(NoError, &["w.x. CNAME w.x."], &[]),
                Err(CnameLoop),
            ),
            (
                RecordType::CNAME,
                plain,
                reply(NoError, &["w.x. CNAME t.x.", "t.x. CNAME w.x."], &[]),
                Ok((vec!["w.x. CNAME"], vec![])),
            ),
            // Signatures: only with DO, only over what is kept.
            (
                RecordType::A,
                plain,
                reply(NoError, &signed_a, &[]),
                Ok((vec!["w.x. A"], vec![])),
            ),
            (
                RecordType::A,
                with_do,
                reply(NoError, &signed_a, &[]),
                Ok((vec!["w.x. A", "w.x. RRSIG(A)"], vec![])),
            ),
            (
                RecordType::A,
                plain,
                reply(NoError, &chain, &[]),
                Ok((vec!["w.x. CNAME", "t.x. A"], vec![])),
            ),
            (
                RecordType::A,
                with_do,
                reply(NoError, &chain, &[]),
                Ok((
                    vec!["w.x. CNAME", "t.x. A", "w.x. RRSIG(CNAME)", "t.x. RRSIG(A)"],
                    vec![],
                )),
            ),
            // Denial: the SOA alone, or with the NSEC proof and signatures.
            (
                RecordType::A,
                plain,
                reply(NXDomain, &[], &denial),
                Ok((vec![], vec!["x. SOA"])),
            ),
            (
                RecordType::A,
                with_do,
                reply(NXDomain, &[], &denial),
                Ok((
                    vec![],
                    vec!["x. SOA", "w.x. NSEC", "x. RRSIG(SOA)", "w.x. RRSIG(NSEC)"],
                )),
            ),
            // A wildcard answer's proof that no closer name exists.
            (
                RecordType::A,
                with_do,
                reply(
                    NoError,
                    &["w.x. A", "w.x. RRSIG A"],
                    &["v.x. NSEC", "v.x. RRSIG NSEC", "x. NS"],
                ),
                Ok((
                    vec!["w.x. A", "w.x. RRSIG(A)"],
                    vec!["v.x. NSEC", "v.x. RRSIG(NSEC)"],
                )),
            ),
            (
                RecordType::A,
                plain,
                reply(NoError, &["w.x. A"], &["v.x. NSEC", "v.x. RRSIG NSEC"]),
                Ok((vec!["w.x. A"], vec![])),
            ),
            // ANY: DNSSEC types only with DO; a type asked for by name always.
            (
                RecordType::ANY,
                plain,
                reply(NoError, &at_w, &[]),
                Ok((vec!["w.x. A"], vec![])),
            ),
            (
                RecordType::ANY,
                with_do,
                reply(NoError, &at_w, &[]),
                Ok((
                    vec!["w.x. A", "w.x. RRSIG(A)", "w.x. NSEC", "w.x. DNSKEY"],
                    vec![],
                )),
            ),
            (
                RecordType::DNSKEY,
                plain,
                reply(NoError, &at_w, &[]),
                Ok((vec!["w.x. DNSKEY"], vec![])),
            ),
            (
                RecordType::RRSIG,
                plain,
                reply(NoError, &at_w, &[]),
                Ok((vec!["w.x. RRSIG(A)"], vec![])),
            ),
        ];
        for (qtype, dnssec, reply, want) in cases {
            let what = format!("{qtype} DO={} {reply:?}", dnssec.ok);
            let got = keep_relevant(&name("w.x."), qtype, dnssec, reply).map(|r| {
                (
                    r.answers.iter().map(show).collect::<Vec<_>>(),
                    r.authorities.iter().map(show).collect::<Vec<_>>(),
                )
            });
            let want = want.map(|(a, b)| {
                let own = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
                (own(a), own(b))
            });
            assert_eq!(got, want, "{what}");
        }
    }

    /// Owners that are the question name take its spelling, others keep theirs.
    #[test]
    fn owners_are_spelled_as_the_question() {
        let kept = keep_relevant(
            &name("WwW.Example."),
            RecordType::A,
            Dnssec::default(),
            reply(
                ResponseCode::NoError,
                &["www.example. CNAME T.example.", "T.example. A"],
                &[],
            ),
        )
        .unwrap();
        let owners: Vec<String> = kept.answers.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(owners, ["WwW.Example.", "T.example."]);
    }

    /// Resends come at a fifth and half of the try, later for a slow upstream.
    #[test]
    fn resends_wait_for_a_slow_upstream() {
        let ms = Duration::from_millis;
        let cases = [
            (ms(2000), ms(0), [ms(400), ms(1000)]),
            (ms(2000), ms(5), [ms(400), ms(1000)]),
            (ms(2000), ms(300), [ms(600), ms(1200)]),
            (ms(1000), ms(500), [ms(1000), ms(2000)]),
        ];
        for (per_try, srtt, want) in cases {
            assert_eq!(resend_after(per_try, srtt), want, "{per_try:?} {srtt:?}");
        }
        let addr = "127.0.0.1:53".parse().unwrap();
        let up = Upstream {
            addr,
            sockets: upstream::Sockets::new(addr, 0, 1, IntGauge::new("s", "s").unwrap()),
            failed_at_ms: AtomicU64::new(0),
            srtt_us: AtomicU64::new(0),
            requests: IntCounter::new("r", "r").unwrap(),
            duration: Histogram::with_opts(prometheus::HistogramOpts::new("d", "d")).unwrap(),
            errors: std::array::from_fn(|_| IntCounter::new("e", "e").unwrap()),
        };
        up.observe_rtt(ms(80));
        assert_eq!(up.srtt(), ms(80), "the first sets it");
        up.observe_rtt(ms(160));
        assert_eq!(up.srtt(), ms(90), "then an eighth of each");
    }

    /// The bucket lends up to the wait allowed, and no more: a burst is
    /// spread out at the rate instead of refused.
    #[test]
    fn the_rate_lends_tokens_within_the_wait() {
        let mut rate = Rate::new(1000);
        let now = rate.last;
        let ms = Duration::from_millis;
        // The burst (20) at once.
        for _ in 0..20 {
            assert_eq!(rate.take(now, Duration::ZERO), Some(Duration::ZERO));
        }
        assert_eq!(rate.take(now, Duration::ZERO), None, "no token to spare");
        // Then one a millisecond: 100 more within 100 ms.
        for i in 1..=100 {
            let wait = rate.take(now, ms(150)).expect("a turn");
            assert!(
                wait.abs_diff(ms(i)) < Duration::from_micros(10),
                "{i}: {wait:?}"
            );
        }
        assert_eq!(rate.take(now, ms(50)), None, "too far off");
        // Earned back at the rate: 50 ms later, the next waits 51 ms.
        let wait = rate.take(now + ms(50), ms(150)).unwrap();
        assert!(
            wait.abs_diff(ms(51)) < Duration::from_micros(10),
            "{wait:?}"
        );
    }
}
