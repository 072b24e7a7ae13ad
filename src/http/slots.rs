//! Who holds the metrics listener's connections. Probes must always get in,
//! however many idle or half-sent connections one client keeps opening: a
//! client (an address; for IPv6 its /64, which one host can fill) holds at
//! most [`PER_CLIENT`] of the [`MAX_CONNECTIONS`]. A client at its share
//! that opens another closes its own oldest idle connection; when the
//! listener is full, a newcomer closes the oldest idle connection of the
//! client holding the most. A connection is idle until its request has been
//! read (nothing sent, or headers in part); one being answered is never
//! closed for another, and when no connection may be closed the newcomer
//! is.

use std::cmp::Reverse;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use crate::client::Client;

/// Scrapers and probes need a handful of connections; more is a misbehaving client.
pub const MAX_CONNECTIONS: usize = 64;
/// One client's share: the other three quarters stay for everyone else.
pub const PER_CLIENT: usize = MAX_CONNECTIONS / 4;

/// The listener's connections, oldest first.
#[derive(Default)]
pub struct Slots(Mutex<Table>);

/// A connection's place among [`Slots`]; given back when dropped.
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    /// Cancelled when the connection must make room for another.
    pub closed: CancellationToken,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    /// In the order they were admitted.
    conns: Vec<Conn>,
}

struct Conn {
    id: u64,
    client: Client,
    /// Its request has been read: it is being answered.
    answering: bool,
    closed: CancellationToken,
}

impl Slots {
    /// A place for a connection from `peer`, having closed another when that
    /// is what makes room; `None` when the new one must be closed instead.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        let client = Client::of(peer);
        let mut table = self.table();
        if let Some(make_room) = table.room_for(client)? {
            let pos = table.conns.iter().position(|c| c.id == make_room)?;
            table.conns.remove(pos).closed.cancel();
        }
        let id = table.next_id;
        table.next_id += 1;
        let closed = CancellationToken::new();
        table.conns.push(Conn {
            id,
            client,
            answering: false,
            closed: closed.clone(),
        });
        Some(Slot {
            slots: self.clone(),
            id,
            closed,
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Slot {
    /// Its request has been read: from now on it is not closed for another.
    pub fn answering(&self) {
        if let Some(c) = self
            .slots
            .table()
            .conns
            .iter_mut()
            .find(|c| c.id == self.id)
        {
            c.answering = true;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Gone already when it was closed to make room.
        self.slots.table().conns.retain(|c| c.id != self.id);
    }
}

impl Table {
    /// `Some(None)`: room as it is; `Some(Some(id))`: room once `id` is
    /// closed; `None`: no room.
    fn room_for(&self, client: Client) -> Option<Option<u64>> {
        let held = |c: Client| self.conns.iter().filter(|x| x.client == c).count();
        let mut idle = self.conns.iter().filter(|c| !c.answering);
        if held(client) >= PER_CLIENT {
            return idle.find(|c| c.client == client).map(|c| Some(c.id));
        }
        if self.conns.len() < MAX_CONNECTIONS {
            return Some(None);
        }
        idle.max_by_key(|c| (held(c.client), Reverse(c.id)))
            .map(|c| Some(c.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Admits `n` connections from `peer`, none of them closing another.
    fn fill(slots: &Arc<Slots>, peer: &str, n: usize) -> Vec<Slot> {
        (0..n)
            .map(|i| {
                let s = slots.admit(ip(peer)).unwrap();
                assert!(!s.closed.is_cancelled(), "{peer} #{i}");
                s
            })
            .collect()
    }

    fn closed(held: &[Slot]) -> Vec<usize> {
        (0..held.len())
            .filter(|i| held[*i].closed.is_cancelled())
            .collect()
    }

    #[test]
    fn a_client_past_its_share_closes_its_own_oldest_idle_connection() {
        let slots = Arc::new(Slots::default());
        let other = fill(&slots, "127.0.0.1", 2);
        let mut mine = fill(&slots, "127.0.0.2", PER_CLIENT);
        mine[0].answering();
        mine.push(slots.admit(ip("127.0.0.2")).unwrap());
        assert_eq!(closed(&mine), [1], "the oldest that is not answering");
        assert_eq!(closed(&other), [] as [usize; 0]);
        assert_eq!(slots.table().conns.len(), 2 + PER_CLIENT);

        // Every one answering: the newcomer is the one refused.
        let slots = Arc::new(Slots::default());
        let mine = fill(&slots, "127.0.0.2", PER_CLIENT);
        mine.iter().for_each(Slot::answering);
        assert!(slots.admit(ip("127.0.0.2")).is_none());
        assert_eq!(closed(&mine), [] as [usize; 0]);
        // Another client still gets in.
        assert!(slots.admit(ip("127.0.0.3")).is_some());
    }

    #[test]
    fn a_newcomer_to_a_full_listener_closes_the_biggest_holders_oldest() {
        let slots = Arc::new(Slots::default());
        // The oldest, but holding less than the others.
        let d = fill(&slots, "10.0.0.4", PER_CLIENT - 1);
        let a = fill(&slots, "10.0.0.1", PER_CLIENT);
        let b = fill(&slots, "10.0.0.2", PER_CLIENT);
        let c = fill(&slots, "10.0.0.3", PER_CLIENT);
        let e = fill(&slots, "10.0.0.5", MAX_CONNECTIONS - 4 * PER_CLIENT + 1);
        assert_eq!(slots.table().conns.len(), MAX_CONNECTIONS);
        a[0].answering();
        let f = slots.admit(ip("10.0.0.6")).unwrap();
        assert!(!f.closed.is_cancelled());
        assert_eq!(closed(&a), [1]);
        for held in [&b, &c, &d, &e] {
            assert_eq!(closed(held), [] as [usize; 0]);
        }
        // A slot given back is room again.
        drop(b);
        assert_eq!(slots.table().conns.len(), MAX_CONNECTIONS - PER_CLIENT);
        let _g = fill(&slots, "10.0.0.7", PER_CLIENT);
        assert_eq!(closed(&a), [1], "room enough without closing more");
    }
}
