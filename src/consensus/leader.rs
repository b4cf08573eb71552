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
    /// Never empty: a [`ValidatorSet`] has at least one member, and each gets a weight of
    /// at least one.
    cycle: Vec<Address>,
}

impl LeaderSchedule {
    /// Lays out the rotation for `validators`: `n` to `64 + n` entries for `n` validators,
    /// each validator at least once and none fewer times than one with less stake. Never
    /// panics, whatever the stakes.
    pub fn new(validators: &ValidatorSet) -> LeaderSchedule {
        let total = validators.total_stake();
        let weights: Vec<(Address, i128)> = validators
            .members()
            .iter()
            .map(|v| (v.address, weight(v.stake, total)))
            .collect();
        // Each weight is 1 to 64 and together they are at most 64 + n (the shares of 64
        // rounded down sum to at most 64; the floor of one adds at most one per validator).
        // The running totals below sum to zero after every step and only the largest, which
        // is positive, is lowered, so each stays above -sum and hence below n * sum: nowhere
        // near i128's range.
        let sum: i128 = weights.iter().map(|(_, w)| w).sum();
        let mut current = vec![0i128; weights.len()];
        let mut cycle = Vec::with_capacity(usize::try_from(sum).unwrap_or(0));
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
        // `cycle` is never empty (see the field), so the remainder is defined.
        self.cycle[(view % self.cycle.len() as u64) as usize]
    }

    /// The whole rotation: the leader of view `v` is entry `v mod len`.
    pub fn cycle(&self) -> &[Address] {
        &self.cycle
    }
}

/// A validator's number of entries in the cycle: `stake * 64 / total` rounded down, but at
/// least 1. Defined for every `stake <= total` in u128: when `total` is too large for the
/// product to fit, both are first shifted right by the same number of bits, just enough that
/// it does. The shifted total keeps 122 significant bits, so the share is off by at most one
/// entry, and only where the exact share lies within about 2^-100 of a whole number. The
/// result is monotone in `stake` (more stake never means fewer entries), and the shifted
/// stakes of a set sum to at most the shifted total, so the shares still sum to at most 64.
fn weight(stake: Amount, total: Amount) -> i128 {
    // The smallest shift leaving total <= u128::MAX / 64 (< 2^122): then stake * 64 fits.
    let shift = (u128::BITS - total.leading_zeros()).saturating_sub(122);
    let (stake, total) = (stake >> shift, total >> shift);
    let share = stake
        .checked_mul(CYCLE_WEIGHT)
        .and_then(|product| product.checked_div(total))
        .unwrap_or(CYCLE_WEIGHT);
    // At most 64 when stake <= total; the bound keeps the cast lossless whatever is passed.
    share.clamp(1, CYCLE_WEIGHT) as i128
}
