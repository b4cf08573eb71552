//! Validator sets and stake-weighted quorums.

use std::collections::BTreeSet;

use bincode::{Decode, Encode};

use crate::amount::Amount;
use crate::crypto::Address;

/// The staking rule: an account's stake is either nothing or at least the minimum. Genesis,
/// the ledger and the mempool all ask this one function.
pub fn stake_allowed(stake: Amount, min_stake: Amount) -> bool {
    stake == 0 || stake >= min_stake
}

/// Whether a stake makes its account a validator (when the next epoch's set is drawn).
pub fn qualifies(stake: Amount, min_stake: Amount) -> bool {
    stake > 0 && stake >= min_stake
}

/// The epoch a height belongs to: heights `1..=E` are epoch 0, `E+1..=2E` epoch 1, ...
/// (height 0, genesis, counts as epoch 0). Consensus and the ledger both ask this.
pub fn epoch_of(height: u64, epoch_length: u64) -> u64 {
    height.saturating_sub(1) / epoch_length.max(1)
}

/// One validator: its key and the stake it votes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Validator {
    /// The validator's key, which is also its account.
    pub address: Address,
    /// Its voting weight.
    pub stake: Amount,
}

/// The validators for a range of heights, in address order, with their total stake.
///
/// The total fits in u128 (a set whose stakes would not is never built), and the quorum
/// checks compare without multiplying, so no stake in u128 can overflow them. Stakes from a
/// ledger are in any case bounded by the genesis supply, at most [`MAX_SUPPLY`].
///
/// [`MAX_SUPPLY`]: crate::genesis::MAX_SUPPLY
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    members: Vec<Validator>,
    total: Amount,
}

impl ValidatorSet {
    /// Builds a set from validators with non-zero stake; `None` if there are none, or if
    /// their stakes together do not fit in u128 (which no valid genesis and no ledger
    /// reaches: their tokens never exceed [`MAX_SUPPLY`](crate::genesis::MAX_SUPPLY)).
    /// Duplicates of an address keep the first.
    pub fn new(mut members: Vec<Validator>) -> Option<ValidatorSet> {
        members.retain(|v| v.stake > 0);
        members.sort_by_key(|v| v.address);
        members.dedup_by_key(|v| v.address);
        let total = members
            .iter()
            .try_fold(0, |sum: Amount, v| sum.checked_add(v.stake))?;
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
        // Distinct members' stakes sum to at most the total, which fits: saturating only
        // states that this cannot overflow.
        distinct
            .into_iter()
            .filter_map(|a| self.stake_of(a))
            .fold(0, Amount::saturating_add)
    }

    /// More than two thirds of the stake: enough to decide.
    pub fn is_quorum(&self, weight: Amount) -> bool {
        // `3 * weight > 2 * total` without the products, exact for all u128: with
        // `total = 3q + r` (`r < 3`), it holds exactly when `weight > 2q + floor(2r / 3)`,
        // and that bound is at most `2 * (u128::MAX / 3) + 1`, so it fits.
        let (q, r) = (self.total / 3, self.total % 3);
        weight > 2 * q + 2 * r / 3
    }

    /// More than one third of the stake: at least one honest validator is among them.
    pub fn has_honest(&self, weight: Amount) -> bool {
        // `3 * weight > total` without the product: for a whole `weight`, exactly when
        // `weight > floor(total / 3)`.
        weight > self.total / 3
    }
}
