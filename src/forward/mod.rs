//! Forwarding to the upstream resolvers (`[upstream] servers`, by default
//! Azure's 168.63.129.16), with our cache in front.
//!
//! amldns decides the order and the time each upstream gets: healthy
//! upstreams first in config order, a failed one moved last for
//! [`RETRY_FAILED_AFTER`]; each try gets `timeout_ms`, shortened so every
//! upstream gets a turn before the query's deadline. Within a try the
//! datagram is sent again ([`resend_after`]): one lost datagram is never a
//! failure, and only a question no upstream answered in all its
//! time is remembered as failed.
//!
//! It also protects the upstream (Azure's resolver silently drops what is
//! over 1000 queries/s or 200 in flight per VM): identical questions
//! in flight are asked once, questions beyond `max_in_flight` at once get
//! SERVFAIL (or a stale answer) at once, the places shared between clients
//! so that one client's slow names cost that client, and past `max_qps` a
//! question waits its turn for at most [`MAX_RATE_WAIT`], then gets
//! SERVFAIL. Each question is asked in a task of its own, so an answer that
//! comes after a client gave up still refreshes the cache.
//!
//! DNSSEC passes through (RFC 4035 §3.2): the client's DO and CD
//! go upstream and into the cache key, and the signatures and denial
//! proofs of an answer are kept for a client that set DO, and only for one.

mod error;
mod limits;
mod merge;
mod relevance;
mod soa;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};
use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RecordType};
use prometheus::{Histogram, IntCounter};
use tracing::{debug, info, warn};

use crate::cache::{Cache, Hit, Key, Reply};
use crate::config::UpstreamConfig;
use crate::metrics::Metrics;
use crate::resolve::{self, QUERY_DEADLINE};
use crate::soa::Book;
use crate::upstream::{self, Ask};
use error::{ErrorCounters, ErrorKind, UpstreamError};
use limits::Limits;
use merge::{Answer, Fetched, Joined, Pending};
use relevance::spell_as;

pub use crate::upstream::{Dnssec, EDNS_PAYLOAD};
pub use relevance::{CnameLoop, keep_relevant};
pub use soa::keep_soas;

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

/// How many times a try refused by an ICMP error is asked again, each from
/// a new socket, before the upstream counts as failed for it. A forger
/// spraying port-unreachables must hit the random port of each in turn.
const REFUSED_AGAIN: usize = 2;

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

struct Upstream {
    addr: SocketAddr,
    /// Milliseconds since `Forwarder::epoch` of the last failure, 0 if none.
    failed_at_ms: AtomicU64,
    /// Smoothed round-trip time in microseconds, 0 before the first reply:
    /// how soon a datagram may be taken for lost ([`resend_after`]).
    srtt_us: AtomicU64,
    requests: IntCounter,
    duration: Histogram,
    /// Its failed tries, by [`ErrorKind`].
    errors: ErrorCounters,
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

/// The forwarding side: upstreams, their health, the limits, and the cache.
pub struct Forwarder {
    /// What it was built from; a reload with the same settings keeps it.
    config: UpstreamConfig,
    upstreams: Vec<Upstream>,
    metrics: Arc<Metrics>,
    /// `timeout_ms`, shortened so every upstream gets a turn within the deadline.
    per_try: Duration,
    cache: Arc<Cache>,
    epoch: Instant,
    /// Questions being asked now, and where their answer will appear.
    pending: Arc<Pending>,
    /// `max_in_flight` and `max_qps`.
    limits: Limits,
}

impl Forwarder {
    pub fn new(config: &UpstreamConfig, cache: Arc<Cache>, metrics: Arc<Metrics>) -> Self {
        let upstreams = config
            .servers
            .iter()
            .map(|addr| {
                let label = addr.to_string();
                Upstream {
                    addr: *addr,
                    failed_at_ms: AtomicU64::new(0),
                    srtt_us: AtomicU64::new(0),
                    requests: metrics.upstream.requests(&label),
                    duration: metrics.upstream.duration(&label),
                    errors: ErrorCounters::new(|kind| metrics.upstream.error(&label, kind)),
                }
            })
            .collect::<Vec<_>>();
        let n = u32::try_from(upstreams.len().max(1)).unwrap_or(u32::MAX);
        Forwarder {
            per_try: config.timeout.min(QUERY_DEADLINE / n),
            config: config.clone(),
            limits: Limits::new(config.max_in_flight, config.max_qps, metrics.clone()),
            metrics,
            upstreams,
            cache,
            epoch: Instant::now(),
            pending: Arc::default(),
        }
    }

    /// The answer for `name`/`qtype` asked with `dnssec` by a client at
    /// `from`: from the cache, or from the first upstream that answers
    /// before `deadline`, or stale.
    /// Owner names equal to `name` are spelled as the client spelled it,
    /// fresh or cached, as the UDP fast path does by pointing at the
    /// question.
    pub async fn resolve(
        self: &Arc<Self>,
        name: &Name,
        qtype: RecordType,
        dnssec: Dnssec,
        from: IpAddr,
        deadline: Instant,
    ) -> Forwarded {
        let mut got = self.find(key(name, qtype, dnssec), from, deadline).await;
        if let Forwarded::Reply { reply, .. } | Forwarded::Stale(reply) = &mut got {
            spell_as(name, reply);
        }
        got
    }

    /// The answer for `name`/`qtype` asked with `dnssec` if the cache holds
    /// it fresh, spelled as [`Forwarder::resolve`] spells it; no upstream is
    /// asked, and no stale answer or remembered failure is given: for a
    /// client that did not ask for recursion.
    pub fn cached(&self, name: &Name, qtype: RecordType, dnssec: Dnssec) -> Option<Reply> {
        let mut reply = self.fresh(&key(name, qtype, dnssec)).ok()?;
        spell_as(name, &mut reply);
        Some(reply)
    }

    /// The cache's fresh answer to `key`, counted as a hit; or, counted as a
    /// miss, the answer held past its TTL, if any.
    fn fresh(&self, key: &Key) -> Result<Reply, Option<Reply>> {
        match self.cache.get(key) {
            Some(Hit::Fresh(reply)) => {
                self.metrics.cache.hits.inc();
                Ok(reply)
            }
            held => {
                self.metrics.cache.misses.inc();
                Err(match held {
                    Some(Hit::Stale(reply)) => Some(reply),
                    _ => None,
                })
            }
        }
    }

    async fn find(self: &Arc<Self>, key: Key, from: IpAddr, deadline: Instant) -> Forwarded {
        let stale = match self.fresh(&key) {
            Ok(reply) => {
                return Forwarded::Reply {
                    reply,
                    cached: true,
                };
            }
            Err(stale) => stale,
        };
        let fallback = |got: Forwarded| match (&got, stale.clone()) {
            (Forwarded::Failed, Some(stale)) => Forwarded::Stale(stale),
            (Forwarded::Reply { reply, .. }, Some(stale))
                if !resolve::is_upstream_answer(reply.rcode.into()) =>
            {
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
        let Some(mut answer) = self.ask(key, from) else {
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
    /// asked, or a new task asking it for `from`, whose share of the places
    /// in flight it takes; `None` when a limit says no.
    ///
    /// A question waiting for its turn under `max_qps` holds no place in
    /// flight: it takes one when it is sent, so a burst a fast upstream
    /// answers at the rate is not cut at `max_in_flight`. The wait bounds
    /// how many may wait (`max_qps` × [`MAX_RATE_WAIT`]).
    fn ask(self: &Arc<Self>, key: Key, from: IpAddr) -> Option<Answer> {
        let joined = self.pending.join_or_start(key, || {
            // No place for this client, free or another's: a slow upstream,
            // which waiting would not help.
            if !self.limits.has_room(from) {
                return None;
            }
            let turn = self.limits.take_token(MAX_RATE_WAIT)?;
            Some((turn, Instant::now() + QUERY_DEADLINE))
        })?;
        let (answer, asking, (turn, deadline)) = match joined {
            Joined::Asked(answer) => return Some(answer),
            Joined::Started(answer, asking, started) => (answer, asking, started),
        };
        let forwarder = self.clone();
        tokio::spawn(async move {
            // Its turn under `max_qps`; askers of the same question join it
            // meanwhile, and the wait counts against the deadline.
            if !turn.is_zero() {
                tokio::time::sleep(turn).await;
            }
            let fetched = match forwarder.limits.place(from) {
                // Given up, and not remembered as failed, when another
                // client's question takes its place.
                Some(place) => tokio::select! {
                    fetched = forwarder.fetch(asking.key(), deadline) => fetched,
                    () = place.displaced.cancelled() => Fetched::Failed,
                },
                None => Fetched::Failed,
            };
            asking.answer(fetched);
        });
        Some(answer)
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
            if i > 0 && self.limits.take_token(Duration::ZERO).is_none() {
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
                // does, the last one's answer reaches the client as it is.
                Err(error) => {
                    up.errors.count(&error);
                    last_rcode = error.rcode().or(last_rcode);
                }
            }
        }
        self.cache.insert_failure(key, last_rcode);
        failed(last_rcode)
    }

    /// One upstream's turn, of `try_for`: its answer, kept to what is
    /// relevant, or else how it failed.
    async fn try_upstream(
        &self,
        up: &Upstream,
        key: &Key,
        question: &Query,
        try_for: Duration,
    ) -> Result<Reply, UpstreamError> {
        let until = Instant::now() + try_for;
        let mut ask = Ask {
            question: question.clone(),
            dnssec: key.dnssec,
            edns: true,
        };
        let mut refused = 0;
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
                let Some(place) = self.limits.resend_place() else {
                    return false;
                };
                if self.limits.tokens(Duration::ZERO).is_none() {
                    return false;
                }
                resent.push(place);
                up.requests.inc();
                true
            };
            let schedule = resend_after(self.per_try, up.srtt());
            let open = &self.metrics.upstream.sockets;
            let exchange = upstream::exchange(up.addr, open, &ask, &schedule, resend);
            let msg = match tokio::time::timeout_at(until.into(), exchange).await {
                Ok(Ok(msg)) => msg,
                // Anyone can forge a port-unreachable for a port they guess:
                // it costs that socket only, and the question is asked again
                // from another (a token each). An upstream really not
                // listening is refused each time, and fails the try.
                Ok(Err(error))
                    if error.refused()
                        && refused < REFUSED_AGAIN
                        && self.limits.take_token(Duration::ZERO).is_some() =>
                {
                    debug!(upstream = %up.addr, name = %key.name, %error, "asking again from another socket");
                    refused += 1;
                    continue;
                }
                Ok(Err(error)) => {
                    debug!(upstream = %up.addr, name = %key.name, %error, "upstream failed");
                    self.mark_failed(up);
                    return Err(UpstreamError::Network(error));
                }
                Err(_elapsed) => {
                    debug!(upstream = %up.addr, name = %key.name, ?try_for, "upstream timed out");
                    self.mark_failed(up);
                    return Err(UpstreamError::Timeout);
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
                && self.limits.take_token(Duration::ZERO).is_some()
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
            if !resolve::is_upstream_answer(rcode.into()) {
                debug!(upstream = %up.addr, name = %key.name, %rcode, "upstream error rcode");
                return Err(UpstreamError::Rcode(rcode));
            }
            let kept = keep_relevant(question.name(), key.qtype, key.dnssec, reply).inspect_err(
                |error| debug!(upstream = %up.addr, name = %key.name, %error, "upstream answer refused"),
            )?;
            self.mark_healthy(up);
            return Ok(kept);
        }
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
    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// Drops the metric series of upstreams that `next` no longer has.
    pub fn forget_upstreams_not_in(&self, next: &UpstreamConfig) {
        for up in &self.upstreams {
            if !next.servers.contains(&up.addr) {
                let kinds = ErrorKind::ALL.map(ErrorKind::label);
                self.metrics.upstream.forget(&up.addr.to_string(), &kinds);
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
                    errors: u.errors.total(),
                    mean_latency_ms: (answered > 0)
                        .then(|| u.duration.get_sample_sum() * 1000.0 / answered as f64),
                }
            })
            .collect()
    }
}

/// The cache's key for a question.
fn key(name: &Name, qtype: RecordType, dnssec: Dnssec) -> Key {
    Key {
        name: LowerName::from(name),
        qtype,
        dnssec,
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

/// The forwarder as a service that lives as long as the server: built once
/// from the first configuration, reconfigured by each reload. Whether a
/// reload keeps the upstreams' state and the cache is decided here, not by
/// the reload.
pub struct Service {
    current: ArcSwap<Forwarder>,
    metrics: Arc<Metrics>,
    /// The public zones' SOAs, as [`keep_soas`] learns them.
    soas: Book,
}

impl Service {
    pub fn new(settings: &UpstreamConfig, metrics: Arc<Metrics>) -> Self {
        let cache = Arc::new(Cache::new(settings.cache_entries, settings.cache_bytes));
        Service {
            current: ArcSwap::from_pointee(Forwarder::new(settings, cache, metrics.clone())),
            metrics,
            soas: Book::default(),
        }
    }

    /// The public zones' SOAs learned so far.
    pub fn soas(&self) -> &Book {
        &self.soas
    }

    /// The forwarder in force, held across a question's awaits.
    pub fn current(&self) -> Arc<Forwarder> {
        self.current.load_full()
    }

    /// The forwarder in force, for a look that does not wait.
    pub fn now(&self) -> Guard<Arc<Forwarder>> {
        self.current.load()
    }

    /// Applies `next`. The same settings change nothing: the upstreams keep
    /// their health. Other settings make a new forwarder,
    /// whose cache is the old one (still warm) unless its size changed;
    /// questions being asked finish on the old one.
    pub fn reconfigure(&self, next: &UpstreamConfig) {
        let old = self.current.load_full();
        if *old.config() == *next {
            return;
        }
        let (was, is) = (old.config(), next);
        let cache = if (was.cache_entries, was.cache_bytes) == (is.cache_entries, is.cache_bytes) {
            old.cache().clone()
        } else {
            Arc::new(Cache::new(is.cache_entries, is.cache_bytes))
        };
        old.forget_upstreams_not_in(next);
        self.current
            .store(Arc::new(Forwarder::new(next, cache, self.metrics.clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            failed_at_ms: AtomicU64::new(0),
            srtt_us: AtomicU64::new(0),
            requests: IntCounter::new("r", "r").unwrap(),
            duration: Histogram::with_opts(prometheus::HistogramOpts::new("d", "d")).unwrap(),
            errors: ErrorCounters::new(|_| IntCounter::new("e", "e").unwrap()),
        };
        up.observe_rtt(ms(80));
        assert_eq!(up.srtt(), ms(80), "the first sets it");
        up.observe_rtt(ms(160));
        assert_eq!(up.srtt(), ms(90), "then an eighth of each");
    }
}
