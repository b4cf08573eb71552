//! Validator sets and stake-weighted quorums.

use std::collections::BTreeSet;

use crate::amount::Amount;
use crate::crypto::Address;

/// One validator: its key and the stake it votes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validator {
    /// The validator's key, which is also its account.
    pub address: Address,
    /// Its voting weight.
    pub stake: Amount,
}

/// The validators for a range of heights, in address order, with their total stake.
///
/// Quorum arithmetic is done in u128 on stakes bounded by the genesis supply, which genesis
/// caps at a quarter of `u128::MAX`, so `3 * stake` cannot overflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    members: Vec<Validator>,
    total: Amount,
}

impl ValidatorSet {
    /// Builds a set from validators with non-zero stake; `None` if there are none.
    /// Duplicates of an address keep the first.
    pub fn new(mut members: Vec<Validator>) -> Option<ValidatorSet> {
        members.retain(|v| v.stake > 0);
        members.sort_by_key(|v| v.address);
        members.dedup_by_key(|v| v.address);
        let total = members.iter().map(|v| v.stake).sum();
        (!members.is_empty()).then_some(ValidatorSet { members, total })
    }

    /// The validators in address order.
    pub fn members(&self) -> &[Validator] {
        &self.members
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a set has at least one validator.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Sum of all stake in the set.
    pub fn total_stake(&self) -> Amount {
        self.total
    }

    /// The stake of `address`, if it is a validator.
    pub fn stake_of(&self, address: &Address) -> Option<Amount> {
        self.members
            .binary_search_by_key(address, |v| v.address)
            .ok()
            .map(|i| self.members[i].stake)
    }

    /// The stake of the distinct validators among `signers`; non-members add nothing and a
    /// signer named twice counts once.
    pub fn weight<'a>(&self, signers: impl IntoIterator<Item = &'a Address>) -> Amount {
        let distinct: BTreeSet<&Address> = signers.into_iter().collect();
        distinct.into_iter().filter_map(|a| self.stake_of(a)).sum()
    }

    /// More than two thirds of the stake: enough to decide.
    pub fn is_quorum(&self, weight: Amount) -> bool {
        3 * weight > 2 * self.total
    }

    /// More than one third of the stake: at least one honest validator is among them.
    pub fn has_honest(&self, weight: Amount) -> bool {
        3 * weight > self.total
    }
}
