//! Forwarding to the upstream resolvers (`[upstream] servers`, by default
//! Azure's 168.63.129.16), with our cache in front.
//!
//! amldns decides the order and the time each upstream gets: healthy
//! upstreams first in config order, a failed one moved last for
//! [`RETRY_FAILED_AFTER`]; each try gets `timeout_ms`, shortened so every
//! upstream gets a turn before the query's deadline.
//!
//! It also protects the upstream (SPEC §1: Azure's resolver silently drops
//! what is over 1000 queries/s or 200 in flight per VM): identical questions
//! in flight are asked once, and questions beyond `max_in_flight` at once or
//! `max_qps` a second get SERVFAIL (or a stale answer) at once, never a
//! queue. Each question is asked in a task of its own, so an answer that
//! comes after a client gave up still refreshes the cache.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use prometheus::{Histogram, IntCounter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::{debug, info, warn};

use crate::cache::{Cache, Hit, Key, Reply};
use crate::config::UpstreamConfig;
use crate::metrics::{Limit, Metrics};
use crate::upstream;

pub use crate::upstream::EDNS_PAYLOAD;

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
    /// Milliseconds since `Forwarder::epoch` of the last failure, 0 if none.
    failed_at_ms: AtomicU64,
    requests: IntCounter,
    duration: Histogram,
    /// By [`crate::metrics::UPSTREAM_ERROR_KINDS`].
    errors: [IntCounter; 5],
}

/// Upstream queries per second, as a token bucket.
struct Rate {
    per_sec: f64,
    /// A burst is at most a fiftieth of a second's worth, so that no second
    /// sees more than 2% over the rate.
    burst: f64,
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

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * self.per_sec;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
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
    pending: Mutex<HashMap<Key, watch::Receiver<Option<Fetched>>>>,
    /// One permit per question being asked (`max_in_flight`).
    in_flight: Arc<Semaphore>,
    rate: Mutex<Rate>,
}

/// Takes a question off `pending` when its task ends, however it ends.
struct Asking {
    forwarder: Arc<Forwarder>,
    key: Key,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Asking {
    fn drop(&mut self) {
        self.forwarder.pending().remove(&self.key);
        self.forwarder.metrics.upstream_in_flight.dec();
    }
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
            pending: Mutex::new(HashMap::new()),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            rate: Mutex::new(Rate::new(config.max_qps)),
        }
    }

    /// The answer for `name`/`qtype`: from the cache, or from the first
    /// upstream that answers before `deadline`, or stale.
    pub async fn resolve(
        self: &Arc<Self>,
        name: &LowerName,
        qtype: RecordType,
        deadline: Instant,
    ) -> Forwarded {
        let key = Key {
            name: name.clone(),
            qtype,
        };
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
    fn ask(self: &Arc<Self>, key: Key) -> Option<watch::Receiver<Option<Fetched>>> {
        let mut pending = self.pending();
        if let Some(rx) = pending.get(&key) {
            return Some(rx.clone());
        }
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            self.metrics.upstream_limited(Limit::InFlight);
            return None;
        };
        if !self.take_token() {
            return None;
        }
        let (tx, rx) = watch::channel(None);
        pending.insert(key.clone(), rx.clone());
        drop(pending);
        self.metrics.upstream_in_flight.inc();
        let asking = Asking {
            forwarder: self.clone(),
            key,
            _permit: permit,
        };
        tokio::spawn(async move {
            let fetched = asking.forwarder.fetch(&asking.key).await;
            // Nobody may be waiting any more; the cache has it anyway.
            let _ = tx.send(Some(fetched));
            drop(asking);
        });
        Some(rx)
    }

    /// Asks the upstreams in turn until one answers, within [`QUERY_DEADLINE`];
    /// the first try's token is already taken.
    async fn fetch(&self, key: &Key) -> Fetched {
        let deadline = Instant::now() + QUERY_DEADLINE;
        let question = Query::query(Name::from(key.name.clone()), key.qtype);
        let mut last_rcode = None;
        for (i, up) in self.ordered().into_iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (i > 0 && !self.take_token()) {
                break;
            }
            let try_for = self.per_try.min(left);
            up.requests.inc();
            let started = Instant::now();
            let reply = tokio::time::timeout(try_for, upstream::exchange(up.addr, &question)).await;
            // The kind, an index into metrics::UPSTREAM_ERROR_KINDS.
            let error = match reply {
                Ok(Ok(msg)) if is_answer(msg.metadata.response_code) => {
                    up.duration.observe(started.elapsed().as_secs_f64());
                    self.mark_healthy(up);
                    let reply = keep_relevant(
                        question.name(),
                        key.qtype,
                        Reply {
                            rcode: msg.metadata.response_code,
                            answers: msg.answers,
                            authorities: msg.authorities,
                        },
                    );
                    self.cache.insert(key, &reply);
                    return Fetched::Reply(reply);
                }
                // SERVFAIL, REFUSED…: another upstream may do better; if none
                // does, the last one passes through (SPEC §3).
                Ok(Ok(msg)) => {
                    up.duration.observe(started.elapsed().as_secs_f64());
                    let rcode = msg.metadata.response_code;
                    debug!(upstream = %up.addr, name = %key.name, %rcode, "upstream error rcode");
                    last_rcode = Some(rcode);
                    match rcode {
                        ResponseCode::ServFail => 2,
                        ResponseCode::Refused => 3,
                        _ => 4,
                    }
                }
                Ok(Err(error)) => {
                    debug!(upstream = %up.addr, name = %key.name, %error, "upstream failed");
                    self.mark_failed(up);
                    1
                }
                Err(_elapsed) => {
                    debug!(upstream = %up.addr, name = %key.name, ?try_for, "upstream timed out");
                    self.mark_failed(up);
                    0
                }
            };
            up.errors[error].inc();
        }
        self.cache.insert_failure(key, last_rcode);
        last_rcode.map_or(Fetched::Failed, |rcode| Fetched::Reply(Reply::error(rcode)))
    }

    fn take_token(&self) -> bool {
        let ok = self
            .rate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if !ok {
            self.metrics.upstream_limited(Limit::Rate);
        }
        ok
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<Key, watch::Receiver<Option<Fetched>>>> {
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
    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// Drops the metric series of upstreams that `next` no longer has.
    pub fn forget_upstreams_not_in(&self, next: &UpstreamConfig) {
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

/// Keeps only what answers the question: the CNAME chain from `qname` and
/// the records of `qtype` at its end, and an SOA for negative answers. The
/// rest (unrelated answers, NS and glue) is dropped so that it can neither be
/// cached nor reach clients. Pure, and public for the `upstream_reply` fuzz
/// target.
pub fn keep_relevant(qname: &Name, qtype: RecordType, reply: Reply) -> Reply {
    let mut owner = qname.clone();
    let mut answers: Vec<Record> = Vec::new();
    // Upstreams list the chain in order, but nothing requires it: walk it by
    // name. Each step keeps one record, and a repeated record (a loop) stops it.
    while answers.len() < reply.answers.len() {
        let Some(cname) = reply
            .answers
            .iter()
            .find(|r| r.name == owner && matches!(r.data, RData::CNAME(_)))
        else {
            break;
        };
        if answers.contains(cname) {
            break;
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
                    r.name == owner && (r.record_type() == qtype || qtype == RecordType::ANY)
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
    let authorities = if !answered {
        reply
            .authorities
            .into_iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .take(1)
            .collect()
    } else {
        Vec::new()
    };
    Reply {
        rcode: reply.rcode,
        answers,
        authorities,
    }
}

/// The target of a CNAME record.
pub fn cname_target(r: &Record) -> Name {
    match &r.data {
        RData::CNAME(c) => c.0.clone(),
        _ => r.name.clone(),
    }
}
