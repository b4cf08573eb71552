//! Who leads: a deterministic, stake-weighted rotation.
//!
//! Each validator gets a weight proportional to its stake (at least 1, about 64 in all), and
//! smooth weighted round-robin lays the weights out as a cycle in which every validator
//! appears exactly its weight's number of times, spread as evenly as the weights allow. The
//! leader of view `v` is the cycle's entry `v mod length`. Because the view advances after
//! every block and on every failed leader, leadership rotates with both, and a run of faulty
//! leaders is bounded: with equal stakes, `f` faulty validators lead at most `f` views in a
//! row; in general, faulty validators hold under a third of every full cycle.

use crate::amount::Amount;
use crate::crypto::Address;
use crate::validators::ValidatorSet;

/// About how many entries the cycle has in all; a validator's share of them is its share of
/// stake, rounded down, but never below one.
const CYCLE_WEIGHT: u128 = 64;

/// The leader rotation for one validator set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderSchedule {
    cycle: Vec<Address>,
}

impl LeaderSchedule {
    /// Lays out the rotation for `validators`.
    pub fn new(validators: &ValidatorSet) -> LeaderSchedule {
        let total = validators.total_stake();
        let weights: Vec<(Address, i128)> = validators
            .members()
            .iter()
            .map(|v| (v.address, weight(v.stake, total)))
            .collect();
        let sum: i128 = weights.iter().map(|(_, w)| w).sum();
        let mut current = vec![0i128; weights.len()];
        let mut cycle = Vec::with_capacity(sum as usize);
        for _ in 0..sum {
            for (c, (_, w)) in current.iter_mut().zip(&weights) {
                *c += w;
            }
            // The highest current weight leads; ties go to the lowest address.
            let mut best = 0;
            for (i, c) in current.iter().enumerate() {
                if *c > current[best] {
                    best = i;
                }
            }
            current[best] -= sum;
            cycle.push(weights[best].0);
        }
        LeaderSchedule { cycle }
    }

    /// The leader of view `view`.
    pub fn leader(&self, view: u64) -> Address {
        self.cycle[(view % self.cycle.len() as u64) as usize]
    }
}

fn weight(stake: Amount, total: Amount) -> i128 {
    // stake <= total <= u128::MAX / 4, so stake * 64 cannot overflow.
    ((stake * CYCLE_WEIGHT / total).max(1)) as i128
}
