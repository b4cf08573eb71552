//! Admission before authentication: which unauthenticated connections the peer port keeps.
//!
//! A stranger can open connections as fast as it likes; it must not be able to keep a
//! validator out, nor make the node hold much for it. Connections from the addresses of
//! configured peers have a pool of their own, and any other source address may hold only a
//! few slots of the strangers' pool. A full pool never refuses a newcomer: it pushes out an
//! older connection, first one that has not yet said anything (a dialing validator sends its
//! first handshake message at once, so it is never among those), oldest first. A flood of
//! silent connections therefore only ever evicts itself.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

/// Unauthenticated connections kept from the configured peers' addresses.
pub const PEER_SLOTS: usize = 64;
/// Unauthenticated connections kept from all other addresses together.
pub const STRANGER_SLOTS: usize = 64;
/// Unauthenticated connections kept from any one other address.
pub const PER_STRANGER: usize = 4;

/// One connection waiting to authenticate.
struct Pending {
    ip: IpAddr,
    /// Whether it came from a configured peer's address.
    peer_pool: bool,
    /// Whether it has sent its first handshake message.
    spoke: bool,
}

/// The slots of unauthenticated connections; ids grow with arrival, so a lower id is older.
pub struct Admission {
    peer_ips: HashSet<IpAddr>,
    pending: BTreeMap<u64, Pending>,
    next: u64,
}

impl Admission {
    /// Slots for a node whose configured peers are at `peer_ips`.
    pub fn new(peer_ips: HashSet<IpAddr>) -> Self {
        Admission {
            peer_ips,
            pending: BTreeMap::new(),
            next: 0,
        }
    }

    /// Admits a connection from `ip`: its id, and the id of a connection to drop to make
    /// room for it, if any.
    pub fn admit(&mut self, ip: IpAddr) -> (u64, Option<u64>) {
        let peer_pool = self.peer_ips.contains(&ip);
        let evict = if peer_pool {
            self.victim(PEER_SLOTS, |p| p.peer_pool)
        } else {
            self.victim(PER_STRANGER, |p| !p.peer_pool && p.ip == ip)
                .or_else(|| self.victim(STRANGER_SLOTS, |p| !p.peer_pool))
        };
        if let Some(id) = evict {
            self.pending.remove(&id);
        }
        let id = self.next;
        self.next += 1;
        self.pending.insert(
            id,
            Pending {
                ip,
                peer_pool,
                spoke: false,
            },
        );
        (id, evict)
    }

    /// Among the connections `in_group`, if they already hold `slots`: the one to push out
    /// (the oldest silent one, else the oldest).
    fn victim(&self, slots: usize, in_group: impl Fn(&Pending) -> bool) -> Option<u64> {
        let mut group = self.pending.iter().filter(|(_, p)| in_group(p));
        if group.clone().count() < slots {
            return None;
        }
        let oldest = group.clone().next().map(|(id, _)| *id);
        group.find(|(_, p)| !p.spoke).map(|(id, _)| *id).or(oldest)
    }

    /// Connection `id` sent its first handshake message.
    pub fn spoke(&mut self, id: u64) {
        if let Some(pending) = self.pending.get_mut(&id) {
            pending.spoke = true;
        }
    }

    /// Connection `id` authenticated, failed or was pushed out: its slot is free.
    pub fn release(&mut self, id: u64) {
        self.pending.remove(&id);
    }

    /// How many connections hold slots.
    pub fn held(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    fn stranger(k: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 0, k))
    }

    fn admission() -> Admission {
        Admission::new([PEER].into_iter().collect())
    }

    #[test]
    fn a_flood_of_silent_connections_never_pushes_out_one_that_spoke() {
        let mut slots = admission();
        let (validator, _) = slots.admit(PEER);
        slots.spoke(validator);
        for _ in 0..10_000 {
            let (_, evicted) = slots.admit(PEER);
            assert_ne!(evicted, Some(validator));
        }
        assert_eq!(slots.held(), PEER_SLOTS);
    }

    #[test]
    fn when_all_spoke_the_oldest_goes_first() {
        let mut slots = admission();
        let ids: Vec<u64> = (0..PEER_SLOTS)
            .map(|_| {
                let (id, _) = slots.admit(PEER);
                slots.spoke(id);
                id
            })
            .collect();
        let (newcomer, evicted) = slots.admit(PEER);
        assert_eq!(evicted, Some(ids[0]));
        assert_eq!(
            slots.admit(PEER).1,
            Some(newcomer),
            "a silent newcomer goes first"
        );
        slots.spoke(newcomer + 1);
        assert_eq!(slots.admit(PEER).1, Some(ids[1]));
    }

    #[test]
    fn strangers_cannot_take_the_peers_slots_nor_each_others() {
        let mut slots = admission();
        let (validator, _) = slots.admit(PEER);
        for _ in 0..1_000 {
            let (_, evicted) = slots.admit(stranger(1));
            assert_ne!(evicted, Some(validator));
        }
        assert_eq!(
            slots.held(),
            1 + PER_STRANGER,
            "one stranger holds only its share"
        );
        let (other, evicted) = slots.admit(stranger(2));
        assert_eq!(evicted, None, "another stranger still finds room");
        for k in 3..200 {
            slots.admit(stranger(k));
        }
        assert_eq!(slots.held(), 1 + STRANGER_SLOTS);
        assert!(
            !slots.pending.contains_key(&other),
            "the oldest silent stranger went first"
        );
        assert!(slots.pending.contains_key(&validator));
    }

    #[test]
    fn released_slots_are_free_again() {
        let mut slots = admission();
        let (id, _) = slots.admit(PEER);
        slots.release(id);
        slots.release(id);
        assert_eq!(slots.held(), 0);
    }
}
