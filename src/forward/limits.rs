//! The limits that protect the upstream: how many questions are out at once
//! (`max_in_flight`) and how many go out per second (`max_qps`). Each limit
//! that turns a question away is counted by which it was.
//!
//! The places in flight are shared between clients, work-conserving: a
//! client may take every free place, and when none is free a client's new
//! question takes the place of the newest question of the client holding
//! the most, if that one holds at least two more than it (taking it evens
//! the shares; between equal holders nothing moves, so places never swap
//! back and forth). So a lone client still has the whole cap, and a client
//! whose names never answer holds, while others ask, no more than an equal
//! share, and its own questions are the ones given up. The newest gives its
//! place, not the oldest: it has had the least of the upstream's time, and
//! a client's oldest questions, nearest their answer, are never all given
//! up under a steady stream from others. A question given up ends as one
//! over the limit does (stale, else SERVFAIL) and is not remembered as
//! failed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use prometheus::IntGauge;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::metrics::{Limit, Metrics};

/// The `max_in_flight` places and the `max_qps` bucket of one forwarder.
pub(super) struct Limits {
    places: Arc<Places>,
    rate: Mutex<Rate>,
    /// For the questions turned away.
    metrics: Arc<Metrics>,
}

impl Limits {
    pub(super) fn new(max_in_flight: usize, max_qps: u32, metrics: Arc<Metrics>) -> Self {
        Limits {
            places: Arc::new(Places {
                table: Mutex::new(Table::new(max_in_flight)),
                gauge: metrics.upstream.in_flight.clone(),
            }),
            rate: Mutex::new(Rate::new(max_qps)),
            metrics,
        }
    }

    /// Whether `from` could have a place in flight now, free or taken from
    /// another client; `false` is counted.
    pub(super) fn has_room(&self, from: IpAddr) -> bool {
        let room = self.places.table().room_for(Client::of(from)).is_some();
        if !room {
            self.metrics.upstream.limited(Limit::InFlight);
        }
        room
    }

    /// A place in flight for a question from `from`, free or taken from
    /// another client's question (which is told, and counted); `None` is
    /// counted.
    pub(super) fn place(&self, from: IpAddr) -> Option<Place> {
        let client = Client::of(from);
        let mut table = self.places.table();
        let Some(room) = table.room_for(client) else {
            self.metrics.upstream.limited(Limit::InFlight);
            return None;
        };
        if let Some(victim) = room {
            table.give_up(victim);
            self.metrics.upstream.limited(Limit::Displaced);
        }
        let (id, displaced) = table.take(client, room.is_some());
        if room.is_none() {
            self.places.gauge.inc();
        }
        Some(Place {
            places: self.places.clone(),
            id,
            displaced,
        })
    }

    /// A place in flight for a resend, held until its try ends, if one is
    /// free: uncounted, not in the gauge and no client's, as no question
    /// waits on it. It goes with its question when that one is given up.
    /// amldns's own questions (a public zone's SOA) take one too.
    pub(super) fn resend_place(&self) -> Option<ResendPlace> {
        let mut table = self.places.table();
        if table.held >= table.cap {
            return None;
        }
        table.held += 1;
        Some(ResendPlace(self.places.clone()))
    }

    /// A token from the `max_qps` bucket, and how long to wait for it (at
    /// most `max_wait`); `None`, counted, when there is none that soon.
    pub(super) fn take_token(&self, max_wait: Duration) -> Option<Duration> {
        let turn = self.tokens(max_wait);
        if turn.is_none() {
            self.metrics.upstream.limited(Limit::Rate);
        }
        turn
    }

    /// [`Self::take_token`], uncounted: for resends, which no question waits on.
    pub(super) fn tokens(&self, max_wait: Duration) -> Option<Duration> {
        self.rate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(Instant::now(), max_wait)
    }
}

/// The places in flight, shared by [`Limits`] and the places it gave.
struct Places {
    table: Mutex<Table>,
    /// Questions holding a place (of every forwarder: one a reload
    /// replaced finishes its questions).
    gauge: IntGauge,
}

impl Places {
    fn table(&self) -> MutexGuard<'_, Table> {
        // Every change leaves the table whole before anything can panic.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A question's place: one client's, and no longer its own once another
/// client's question took it.
type Id = (Client, u64);

/// Who holds the places. It holds only clients with a question in flight,
/// so however many sources ask, it is no bigger than `max_in_flight`.
struct Table {
    cap: usize,
    /// Places held, by questions and by resends.
    held: usize,
    next_id: u64,
    /// The questions holding a place, by client and then in the order they
    /// took it: a client's newest is its last.
    questions: BTreeMap<Id, CancellationToken>,
    /// How many places each client's questions hold, ordered: the client
    /// holding the most is the last.
    by_count: BTreeSet<(usize, Client)>,
    /// The same counts, by client.
    counts: BTreeMap<Client, usize>,
}

impl Table {
    fn new(cap: usize) -> Self {
        Table {
            cap,
            held: 0,
            next_id: 0,
            questions: BTreeMap::new(),
            by_count: BTreeSet::new(),
            counts: BTreeMap::new(),
        }
    }

    /// `Some(None)`: a place is free; `Some(Some(id))`: `client` may have
    /// the place of question `id`; `None`: no place for `client`.
    fn room_for(&self, client: Client) -> Option<Option<Id>> {
        if self.held < self.cap {
            return Some(None);
        }
        let mine = self.counts.get(&client).copied().unwrap_or(0);
        let &(most, biggest) = self.by_count.last()?;
        if most < mine + 2 {
            return None;
        }
        let mut theirs = self.questions.range((biggest, 0)..=(biggest, u64::MAX));
        theirs.next_back().map(|(newest, _)| Some(*newest))
    }

    /// Takes a place for `client`'s question; `taken_over`: the place was
    /// just given up by another ([`Self::give_up`]), not free.
    fn take(&mut self, client: Client, taken_over: bool) -> (Id, CancellationToken) {
        if !taken_over {
            self.held += 1;
        }
        let id = (client, self.next_id);
        self.next_id += 1;
        let displaced = CancellationToken::new();
        self.questions.insert(id, displaced.clone());
        self.recount(client, 1);
        (id, displaced)
    }

    /// Question `id` gives up its place, still held, for another's: its task
    /// is told.
    fn give_up(&mut self, id: Id) {
        if let Some(displaced) = self.questions.remove(&id) {
            displaced.cancel();
            self.recount(id.0, -1);
        }
    }

    /// Question `id`'s place is free again, unless it was given to another
    /// (then `false`).
    fn give_back(&mut self, id: Id) -> bool {
        let held = self.questions.remove(&id).is_some();
        if held {
            self.held -= 1;
            self.recount(id.0, -1);
        }
        held
    }

    fn recount(&mut self, client: Client, by: isize) {
        let old = self.counts.get(&client).copied().unwrap_or(0);
        let new = old.saturating_add_signed(by);
        self.by_count.remove(&(old, client));
        if new == 0 {
            self.counts.remove(&client);
        } else {
            self.counts.insert(client, new);
            self.by_count.insert((new, client));
        }
    }
}

/// One of the `max_in_flight` places of questions out upstream, shown in
/// the gauge while held.
pub(super) struct Place {
    places: Arc<Places>,
    id: Id,
    /// Cancelled when another client's question took the place: the
    /// question is given up.
    pub(super) displaced: CancellationToken,
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.places.table().give_back(self.id) {
            self.places.gauge.dec();
        }
    }
}

/// A place held by a resend ([`Limits::resend_place`]).
pub(super) struct ResendPlace(Arc<Places>);

impl Drop for ResendPlace {
    fn drop(&mut self) {
        self.0.table().held -= 1;
    }
}

/// Upstream queries per second, as a token bucket that lends: a question
/// that finds it empty may take a token not yet earned and wait until it is
/// (at most [`MAX_RATE_WAIT`](super::MAX_RATE_WAIT)), so queries go out at `per_sec` on average
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(cap: usize) -> Limits {
        Limits::new(cap, 1000, Arc::new(Metrics::new()))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Takes `n` places for `from`, none of them another's.
    fn fill(limits: &Limits, from: &str, n: usize) -> Vec<Place> {
        let taken = limits.metrics.upstream.in_flight.get();
        let places: Vec<Place> = (0..n).map(|_| limits.place(ip(from)).unwrap()).collect();
        assert_eq!(limits.metrics.upstream.in_flight.get(), taken + n as i64);
        places
    }

    fn given_up(places: &[Place]) -> Vec<usize> {
        (0..places.len())
            .filter(|i| places[*i].displaced.is_cancelled())
            .collect()
    }

    /// Work-conserving: a client alone takes every place, and nobody's is
    /// given up for its own next question.
    #[test]
    fn a_lone_client_takes_the_whole_cap() {
        let limits = limits(8);
        let a = fill(&limits, "10.0.0.1", 8);
        assert!(!limits.has_room(ip("10.0.0.1")));
        assert!(limits.place(ip("10.0.0.1")).is_none());
        assert!(limits.resend_place().is_none());
        assert_eq!(given_up(&a), [] as [usize; 0]);
        // A place given back is free again, for anyone.
        drop(a);
        let b = fill(&limits, "10.0.0.2", 8);
        assert_eq!(given_up(&b), [] as [usize; 0]);
    }

    /// When every place is taken, a client holding fewer takes the newest
    /// place of the client holding the most, until their shares are even.
    #[test]
    fn a_second_client_takes_places_from_the_biggest_holder() {
        let limits = limits(8);
        let small = fill(&limits, "10.0.0.9", 1);
        let a = fill(&limits, "10.0.0.1", 7);
        let mut b = Vec::new();
        for i in 0..3 {
            assert!(limits.has_room(ip("10.0.0.2")), "{i}");
            b.push(limits.place(ip("10.0.0.2")).unwrap());
        }
        assert_eq!(given_up(&a), [4, 5, 6], "the newest first");
        assert_eq!(given_up(&small), [] as [usize; 0]);
        assert_eq!(limits.metrics.upstream.in_flight.get(), 8);
        // 1, 4, 3: taking one of the 4 would not even them out.
        assert!(!limits.has_room(ip("10.0.0.2")));
        assert!(limits.place(ip("10.0.0.2")).is_none());
        // A new client takes from the biggest, 4, which then holds 3.
        let c = limits.place(ip("10.0.0.3")).unwrap();
        assert_eq!(given_up(&a), [3, 4, 5, 6]);
        // A place given up is not freed again when its question ends.
        drop(a);
        assert_eq!(limits.metrics.upstream.in_flight.get(), 5);
        let d = fill(&limits, "10.0.0.4", 3);
        assert!(limits.place(ip("10.0.0.4")).is_none(), "3, 3, 1, 1: even");
        let text = limits.metrics.render();
        for (limit, n) in [("displaced", 4), ("in_flight", 3)] {
            let line = format!("amldns_upstream_limited_total{{limit=\"{limit}\"}} {n}\n");
            assert!(text.contains(&line), "{line}");
        }
        drop((small, b, c, d));
        assert_eq!(limits.metrics.upstream.in_flight.get(), 0);
        assert_eq!(limits.places.table().held, 0);
        assert!(limits.places.table().counts.is_empty(), "nobody held");
    }

    /// A resend holds a place only while one is free, and is no client's: a
    /// question takes over its question's place, not the resend's.
    #[test]
    fn resends_take_only_free_places() {
        let limits = limits(4);
        let a = fill(&limits, "10.0.0.1", 2);
        let resends = [
            limits.resend_place().unwrap(),
            limits.resend_place().unwrap(),
        ];
        assert!(limits.resend_place().is_none());
        let b = limits.place(ip("10.0.0.2")).unwrap();
        assert_eq!(given_up(&a), [1]);
        assert!(limits.place(ip("10.0.0.2")).is_none(), "1 and 1");
        drop(resends);
        let _b2 = fill(&limits, "10.0.0.2", 2);
        drop((a, b));
    }

    /// Addresses of one IPv6 /64 are one client: they take no places from
    /// each other, however many there are.
    #[test]
    fn one_v6_64_is_one_client() {
        let limits = limits(4);
        let a = fill(&limits, "2001:db8:1:2::1", 4);
        for host in ["2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
            assert!(!limits.has_room(ip(host)), "{host}");
            assert!(limits.place(ip(host)).is_none(), "{host}");
        }
        assert_eq!(given_up(&a), [] as [usize; 0]);
        let _b = limits.place(ip("2001:db8:1:3::1")).unwrap();
        assert_eq!(given_up(&a), [3], "another /64 is another client");
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
