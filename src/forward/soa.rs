//! Learning the SOA of each public zone the table holds names in, so that a
//! negative answer for a local name there carries the zone's real SOA (see
//! [`crate::soa`]): the one the upstream also gives a client that asks
//! `SOA api.azureml.ms`. Asked whatever the clients' RD bits say, as it
//! forwards no local name.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::Query;
use hickory_proto::rr::{Name, RecordType};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{Dnssec, Service};
use crate::soa::Learned;
use crate::upstream::{self, Ask};

/// The longest a learned SOA is kept without asking again, whatever its TTL.
const REFRESH_AT_MOST: Duration = Duration::from_secs(3600);

/// The soonest a learned SOA is asked again: a TTL of 0 must not turn into
/// a question a second.
const REFRESH_AT_LEAST: Duration = Duration::from_secs(30);

/// How soon a zone whose SOA could not be had is asked again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// How often the table is looked at for zones it gained or lost.
const TICK: Duration = Duration::from_secs(1);

/// Keeps [`Service::soas`] holding the SOA of each zone `zones` gives (the
/// table in force's public zones), until `stop`.
pub async fn keep_soas(
    service: Arc<Service>,
    zones: impl Fn() -> Vec<Box<str>>,
    stop: CancellationToken,
) {
    let mut due: HashMap<Box<str>, Instant> = HashMap::new();
    loop {
        let zones = zones();
        service.soas().keep_only(&zones);
        due.retain(|z, _| zones.contains(z));
        for zone in zones {
            let now = Instant::now();
            if due.get(&zone).is_some_and(|at| *at > now) {
                continue;
            }
            let next = match tokio::select! {
                learned = ask(&service, &zone) => learned,
                () = stop.cancelled() => return,
            } {
                Some(learned) => {
                    let ttl = Duration::from_secs(u64::from(learned.ttl()));
                    service.soas().learn(&zone, learned);
                    ttl.clamp(REFRESH_AT_LEAST, REFRESH_AT_MOST)
                }
                None => RETRY_AFTER,
            };
            due.insert(zone, now + next);
        }
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// `zone`'s SOA as the upstreams give it now: each asked in turn, in the
/// order configured, until one answers with one. Asked straight, outside
/// the cache and the query and request metrics, so that these few
/// questions an hour change no count an operator reads about clients; the
/// sockets are counted as every upstream socket is, and the upstream limits
/// hold them as they hold every question.
async fn ask(service: &Service, zone: &str) -> Option<Learned> {
    let mut name = Name::from_ascii(zone).ok()?;
    name.set_fqdn(true);
    let ask = Ask {
        question: Query::query(name, RecordType::SOA),
        dnssec: Dnssec::default(),
        edns: false,
    };
    let forwarder = service.current();
    let config = forwarder.config();
    let open = &service.metrics.upstream.sockets;
    for &server in &config.servers {
        // Within `max_in_flight` and `max_qps` like every question sent,
        // but only where a place is free: a client's question never waits
        // for this one. Without one it is asked again later.
        let Some(_place) = forwarder.limits.resend_place() else {
            debug!(zone, "no place in flight free to ask the zone's SOA");
            return None;
        };
        forwarder.limits.tokens(Duration::ZERO)?;
        // Sent once: a copy would be one more question out without a
        // place. A lost one is asked again at the next turn.
        let exchange = upstream::exchange(server, open, &ask, &[], |_| false);
        match tokio::time::timeout(config.timeout, exchange).await {
            Ok(Ok(reply)) => {
                if let Some(learned) = Learned::from_reply(&reply.answers, &reply.authorities) {
                    return Some(learned);
                }
                debug!(zone, %server, rcode = %reply.metadata.response_code, "no SOA for the zone");
            }
            Ok(Err(error)) => debug!(zone, %server, %error, "asking the zone's SOA failed"),
            Err(_) => debug!(zone, %server, "no answer for the zone's SOA in time"),
        }
    }
    None
}
