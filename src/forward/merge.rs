//! Identical questions in flight are asked upstream once: a client asking
//! what is being asked already waits for that answer instead of sending the
//! question again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::cache::{Key, Reply};

/// What asking the upstreams gave, shared with every client waiting for it.
#[derive(Debug, Clone)]
pub(super) enum Fetched {
    Reply(Reply),
    Failed,
}

/// Where the answer to a question will appear (`None` until it does).
pub(super) type Answer = watch::Receiver<Option<Fetched>>;

/// Questions being asked, and where each one's answer will appear.
#[derive(Default)]
pub(super) struct Pending(Mutex<Questions>);

/// Hashed as the cache is (seeded, so clients cannot aim names at one bucket).
type Questions = HashMap<Key, Answer, foldhash::fast::RandomState>;

/// What [`Pending::join_or_start`] found.
pub(super) enum Joined<T> {
    /// The question is being asked already: where its answer will appear.
    Asked(Answer),
    /// A new question: where its answer will appear, the [`Asking`] that
    /// gives it, and what the caller's `start` returned.
    Started(Answer, Asking, T),
}

impl Pending {
    /// Joins the question `key` being asked, or else starts asking it if
    /// `start` says so (`Some`). `start` runs under the lock, so that of
    /// two askers of a new question one starts it and the other joins.
    pub(super) fn join_or_start<T>(
        self: &Arc<Self>,
        key: Key,
        start: impl FnOnce() -> Option<T>,
    ) -> Option<Joined<T>> {
        let mut pending = self.lock();
        if let Some(answer) = pending.get(&key) {
            return Some(Joined::Asked(answer.clone()));
        }
        let started = start()?;
        let (tx, answer) = watch::channel(None);
        pending.insert(key.clone(), answer.clone());
        drop(pending);
        let asking = Asking {
            pending: self.clone(),
            key,
            tx,
        };
        Some(Joined::Started(answer, asking, started))
    }

    fn lock(&self) -> MutexGuard<'_, Questions> {
        // The map stays consistent whatever panicked while holding it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A question being asked: gives its answer to everyone waiting, and takes
/// it off [`Pending`] when dropped, however its task ends.
pub(super) struct Asking {
    pending: Arc<Pending>,
    key: Key,
    tx: watch::Sender<Option<Fetched>>,
}

impl Asking {
    pub(super) fn key(&self) -> &Key {
        &self.key
    }

    /// Gives `fetched` to every asker, then takes the question off.
    pub(super) fn answer(self, fetched: Fetched) {
        // Nobody may be waiting any more; the cache has it anyway.
        let _ = self.tx.send(Some(fetched));
    }
}

impl Drop for Asking {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.key);
    }
}
