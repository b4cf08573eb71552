//! What a peer may make this node do: a bounded amount of costly work per period.
//!
//! Answering a fetch sends a certificate or whole proposals; checking a view change or a
//! new view verifies up to thousands of signatures. A validator may ask for such work, but
//! only so often: each peer has a fixed allowance per period (the core uses its round and
//! low watermark, which only honest progress moves), and past it the request costs one
//! map lookup. Only validators are ever charged, so the map is bounded by the validator set.

use std::collections::BTreeMap;

use crate::crypto::Address;

/// A period: work is counted afresh whenever it changes.
pub type Period = (u64, u64);

/// Per-peer allowances of costly work.
#[derive(Clone, Debug)]
pub struct Budget {
    /// Units each peer may spend in one period.
    per_period: u32,
    /// What each peer has spent, and in which period.
    spent: BTreeMap<Address, (Period, u32)>,
}

impl Budget {
    /// An allowance of `per_period` units for each peer in each period.
    pub fn new(per_period: u32) -> Budget {
        Budget {
            per_period,
            spent: BTreeMap::new(),
        }
    }

    /// Whether `peer` has anything left to spend in `period`.
    pub fn allows(&self, peer: &Address, period: Period) -> bool {
        match self.spent.get(peer) {
            Some((p, spent)) if *p == period => *spent < self.per_period,
            _ => self.per_period > 0,
        }
    }

    /// Takes one unit from `peer`'s allowance in `period`; false (and nothing taken) when
    /// it has none left.
    pub fn take(&mut self, peer: Address, period: Period) -> bool {
        if !self.allows(&peer, period) {
            return false;
        }
        let entry = self.spent.entry(peer).or_insert((period, 0));
        if entry.0 != period {
            *entry = (period, 0);
        }
        entry.1 += 1;
        true
    }
}
