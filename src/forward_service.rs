//! The forwarder as a service that lives as long as the server: built once
//! from the first configuration, reconfigured by each reload. Whether a
//! reload keeps the upstreams' state and the cache is decided here, not by
//! the reload.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::cache::Cache;
use crate::forward::{Forwarder, Settings};
use crate::metrics::Metrics;

pub struct Service {
    current: ArcSwap<Forwarder>,
    metrics: Arc<Metrics>,
}

impl Service {
    pub fn new(settings: &Settings, metrics: Arc<Metrics>) -> Self {
        let cache = Arc::new(Cache::new(settings.cache_entries));
        Service {
            current: ArcSwap::from_pointee(Forwarder::new(settings, cache, metrics.clone())),
            metrics,
        }
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
    /// their health and their sockets. Other settings make a new forwarder,
    /// whose cache is the old one (still warm) unless its size changed;
    /// questions being asked finish on the old one.
    pub fn reconfigure(&self, next: &Settings) {
        let old = self.current.load_full();
        if *old.config() == *next {
            return;
        }
        let cache = if old.config().cache_entries == next.cache_entries {
            old.cache().clone()
        } else {
            Arc::new(Cache::new(next.cache_entries))
        };
        old.forget_upstreams_not_in(next);
        self.current
            .store(Arc::new(Forwarder::new(next, cache, self.metrics.clone())));
    }
}
