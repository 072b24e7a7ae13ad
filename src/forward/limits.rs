//! The limits that protect the upstream: how many questions are out at once
//! (`max_in_flight`) and how many go out per second (`max_qps`). Each limit
//! that turns a question away is counted by which it was.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus::IntGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::{Limit, Metrics};

/// The `max_in_flight` places and the `max_qps` bucket of one forwarder.
pub(super) struct Limits {
    /// One permit per question being asked (`max_in_flight`).
    in_flight: Arc<Semaphore>,
    rate: Mutex<Rate>,
    /// For the in-flight gauge and the questions turned away.
    metrics: Arc<Metrics>,
}

impl Limits {
    pub(super) fn new(max_in_flight: usize, max_qps: u32, metrics: Arc<Metrics>) -> Self {
        Limits {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            rate: Mutex::new(Rate::new(max_qps)),
            metrics,
        }
    }

    /// Whether a place in flight is free now; `false` is counted.
    pub(super) fn has_room(&self) -> bool {
        let room = self.in_flight.available_permits() > 0;
        if !room {
            self.metrics.upstream.limited(Limit::InFlight);
        }
        room
    }

    /// A place in flight, if one is free; `None` is counted.
    pub(super) fn place(&self) -> Option<Place> {
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            self.metrics.upstream.limited(Limit::InFlight);
            return None;
        };
        let gauge = self.metrics.upstream.in_flight.clone();
        gauge.inc();
        Some(Place {
            _permit: permit,
            gauge,
        })
    }

    /// A place in flight for a resend, held until its try ends: uncounted
    /// and not in the gauge, as no question waits on it.
    pub(super) fn resend_place(&self) -> Option<OwnedSemaphorePermit> {
        self.in_flight.clone().try_acquire_owned().ok()
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

/// One of the `max_in_flight` places of questions out upstream, shown in
/// the gauge while held.
pub(super) struct Place {
    _permit: OwnedSemaphorePermit,
    gauge: IntGauge,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.gauge.dec();
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
