//! Forwarding to the upstream resolvers (`[upstream] servers`, by default
//! Azure's 168.63.129.16), through hickory-resolver's name-server pool, with
//! our cache in front.
//!
//! Each upstream has a pool of its own, so amldns decides the order and the
//! time each gets: healthy upstreams first in config order, a failed one
//! moved last for [`RETRY_FAILED_AFTER`]; each try gets `timeout_ms`, shortened
//! so every upstream gets a turn before the query's deadline. hickory's pool
//! sends EDNS(0) with a 1232-byte payload, retries over TCP on TC, uses a
//! random ID and source port per query, and merges identical questions in
//! flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{DnsRequest, DnsRequestOptions, Query, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_resolver::config::{NameServerConfig, ResolverOpts, ServerOrderingStrategy};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::{DnsHandle, FirstAnswer};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::{NameServerPool, PoolContext, TlsConfig};
use prometheus::{Histogram, IntCounter};
use tracing::{debug, info, warn};

use crate::cache::{Cache, Key, Reply};
use crate::config::UpstreamConfig;
use crate::metrics::Metrics;

/// A client should hear SERVFAIL before its own stub gives up: glibc waits
/// 5 s per try, Windows 1 s then retries; answering within 2.5 s keeps
/// amldns from being the one that looks dead. Every upstream question a
/// client question leads to shares this one budget.
pub const QUERY_DEADLINE: Duration = Duration::from_millis(2500);

/// How long a failed upstream goes to the back of the line before it is
/// tried first again.
pub const RETRY_FAILED_AFTER: Duration = Duration::from_secs(10);

/// DNS Flag Day 2020 / RFC 9715: the EDNS(0) payload that avoids IP
/// fragmentation; also what we ask upstreams for.
pub const EDNS_PAYLOAD: u16 = 1232;

/// What forwarding one question gave.
#[derive(Debug)]
pub enum Forwarded {
    /// An answer, from upstream or the cache; its rcode passes through.
    Reply { reply: Reply, cached: bool },
    /// No upstream answered in time.
    Failed,
}

struct Upstream {
    addr: SocketAddr,
    pool: NameServerPool<TokioRuntimeProvider>,
    /// Milliseconds since `Forwarder::epoch` of the last failure, 0 if none.
    failed_at_ms: AtomicU64,
    requests: IntCounter,
    duration: Histogram,
    /// By [`crate::metrics::UPSTREAM_ERROR_KINDS`].
    errors: [IntCounter; 5],
}

/// The forwarding side: upstreams, their health, and the cache.
pub struct Forwarder {
    /// What it was built from; a reload with the same settings keeps it.
    config: UpstreamConfig,
    upstreams: Vec<Upstream>,
    metrics: Arc<Metrics>,
    /// `timeout_ms`, shortened so every upstream gets a turn within the deadline.
    per_try: Duration,
    cache: Arc<Cache>,
    epoch: Instant,
}

impl Forwarder {
    /// Builds pools for `config.servers`. Must run inside a tokio runtime.
    pub fn new(
        config: &UpstreamConfig,
        cache: Arc<Cache>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let mut opts = ResolverOpts::default();
        opts.timeout = config.timeout;
        opts.attempts = 1;
        opts.edns0 = true;
        opts.edns_payload_len = EDNS_PAYLOAD;
        // One server per pool: ordering and failover are ours.
        opts.num_concurrent_reqs = 1;
        opts.server_ordering_strategy = ServerOrderingStrategy::UserProvidedOrder;
        // The default of 32 turns bursts of misses into "busy" errors.
        opts.max_active_requests = 4096;
        opts.cache_size = 0;
        let tls = TlsConfig::new().map_err(|e| e.to_string())?;
        let cx = Arc::new(PoolContext::new(opts, tls));
        let upstreams = config
            .servers
            .iter()
            .map(|addr| {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                let label = addr.to_string();
                Upstream {
                    addr: *addr,
                    pool: NameServerPool::from_config(
                        [ns],
                        cx.clone(),
                        TokioRuntimeProvider::default(),
                    ),
                    failed_at_ms: AtomicU64::new(0),
                    requests: metrics.upstream_requests.with_label_values(&[&label]),
                    duration: metrics.upstream_duration.with_label_values(&[&label]),
                    errors: metrics.upstream_errors_of(&label),
                }
            })
            .collect::<Vec<_>>();
        let n = u32::try_from(upstreams.len().max(1)).unwrap_or(u32::MAX);
        Ok(Forwarder {
            per_try: config.timeout.min(QUERY_DEADLINE / n),
            config: config.clone(),
            metrics,
            upstreams,
            cache,
            epoch: Instant::now(),
        })
    }

    /// The answer for `name`/`qtype`: from the cache, or from the first
    /// upstream that answers before `deadline`.
    pub async fn resolve(
        &self,
        name: &LowerName,
        qtype: RecordType,
        deadline: Instant,
    ) -> Forwarded {
        let key = Key {
            name: name.clone(),
            qtype,
        };
        if let Some(reply) = self.cache.get(&key) {
            self.metrics.cache_hits.inc();
            return Forwarded::Reply {
                reply,
                cached: true,
            };
        }
        self.metrics.cache_misses.inc();
        let qname = Name::from(name.clone());
        let mut last_rcode = None;
        for up in self.ordered() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let try_for = self.per_try.min(left);
            up.requests.inc();
            let started = Instant::now();
            // The kind, an index into metrics::UPSTREAM_ERROR_KINDS.
            let error = match tokio::time::timeout(try_for, self.ask(up, &qname, qtype)).await {
                Ok(Ok(reply)) => {
                    up.duration.observe(started.elapsed().as_secs_f64());
                    self.mark_healthy(up);
                    let reply = keep_relevant(&qname, qtype, reply);
                    self.cache.insert(key, &reply);
                    return Forwarded::Reply {
                        reply,
                        cached: false,
                    };
                }
                // SERVFAIL, REFUSED…: another upstream may do better; if none
                // does, the last one passes through (SPEC §3).
                Ok(Err(Some(rcode))) => {
                    up.duration.observe(started.elapsed().as_secs_f64());
                    debug!(upstream = %up.addr, %qname, %rcode, "upstream error rcode");
                    last_rcode = Some(rcode);
                    match rcode {
                        ResponseCode::ServFail => 2,
                        ResponseCode::Refused => 3,
                        _ => 4,
                    }
                }
                Ok(Err(None)) => {
                    self.mark_failed(up);
                    1
                }
                Err(_elapsed) => {
                    debug!(upstream = %up.addr, %qname, ?try_for, "upstream timed out");
                    self.mark_failed(up);
                    0
                }
            };
            up.errors[error].inc();
        }
        match last_rcode {
            Some(rcode) => Forwarded::Reply {
                reply: Reply {
                    rcode,
                    answers: Vec::new(),
                    authorities: Vec::new(),
                },
                cached: false,
            },
            None => Forwarded::Failed,
        }
    }

    /// One try at one upstream: `Ok` for an answer (NXDOMAIN and NODATA
    /// included), `Err(Some(rcode))` for an error rcode, `Err(None)` when it
    /// failed to answer at all.
    async fn ask(
        &self,
        up: &Upstream,
        qname: &Name,
        qtype: RecordType,
    ) -> Result<Reply, Option<ResponseCode>> {
        let mut options = DnsRequestOptions::default();
        options.use_edns = true;
        options.edns_payload_len = EDNS_PAYLOAD;
        options.recursion_desired = true;
        let request = DnsRequest::from_query(Query::query(qname.clone(), qtype), options);
        match up.pool.send(request).first_answer().await {
            Ok(resp) => {
                let msg = resp.into_message();
                Ok(Reply {
                    rcode: msg.metadata.response_code,
                    answers: msg.answers,
                    authorities: msg.authorities,
                })
            }
            // hickory turns empty answers into errors; they are answers to us.
            Err(NetError::Dns(DnsError::NoRecordsFound(nr))) => Ok(Reply {
                rcode: nr.response_code,
                answers: Vec::new(),
                authorities: nr.authorities.map(|a| a.to_vec()).unwrap_or_default(),
            }),
            Err(NetError::Dns(DnsError::ResponseCode(rcode))) => Err(Some(rcode)),
            Err(e) => {
                debug!(upstream = %up.addr, %qname, error = %e, "upstream failed");
                Err(None)
            }
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
                self.metrics.forget_upstream(&up.addr.to_string());
            }
        }
    }

    /// Upstreams in the order to try them: healthy ones (and those whose
    /// failure is old enough to retry) in config order, then the rest.
    fn ordered(&self) -> impl Iterator<Item = &Upstream> {
        let now = self.epoch.elapsed().as_millis() as u64;
        let retry = RETRY_FAILED_AFTER.as_millis() as u64;
        let failed = move |u: &&Upstream| {
            let at = u.failed_at_ms.load(Ordering::Relaxed);
            at != 0 && now.saturating_sub(at) < retry
        };
        let healthy = self.upstreams.iter().filter(move |u| !failed(u));
        let unhealthy = self.upstreams.iter().filter(failed);
        healthy.chain(unhealthy)
    }

    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }
}

/// Keeps only what answers the question: the CNAME chain from `qname` and
/// the records of `qtype` at its end, and an SOA for negative answers. The
/// rest (unrelated answers, NS and glue) is dropped so that it can neither be
/// cached nor reach clients.
fn keep_relevant(qname: &Name, qtype: RecordType, reply: Reply) -> Reply {
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
