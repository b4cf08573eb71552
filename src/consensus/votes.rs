//! Vote tallies: at most one vote per signer, weight counted by distinct signers' stake.

use std::collections::BTreeMap;

use crate::amount::Amount;
use crate::crypto::{Address, Hash, Signature};
use crate::validators::ValidatorSet;

/// One phase's votes for one height in one view.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    by_signer: BTreeMap<Address, (Hash, Signature)>,
}

impl Tally {
    /// Whether `signer` has already voted (for anything).
    pub fn has(&self, signer: &Address) -> bool {
        self.by_signer.contains_key(signer)
    }

    /// Records a vote; a signer's first vote is the one that counts.
    pub fn add(&mut self, signer: Address, digest: Hash, signature: Signature) {
        self.by_signer.entry(signer).or_insert((digest, signature));
    }

    /// The stake of the validators that voted for `digest`.
    pub fn weight(&self, digest: &Hash, validators: &ValidatorSet) -> Amount {
        validators.weight(
            self.by_signer
                .iter()
                .filter(|(_, (d, _))| d == digest)
                .map(|(signer, _)| signer),
        )
    }

    /// The signatures for `digest`, by signer.
    pub fn signatures(&self, digest: &Hash) -> Vec<(Address, Signature)> {
        self.by_signer
            .iter()
            .filter(|(_, (d, _))| d == digest)
            .map(|(signer, (_, signature))| (*signer, *signature))
            .collect()
    }

    /// `signer`'s signature, if its vote is for `digest`.
    pub fn signature_of(&self, signer: &Address, digest: &Hash) -> Option<Signature> {
        self.by_signer
            .get(signer)
            .filter(|(d, _)| d == digest)
            .map(|(_, signature)| *signature)
    }

    /// Forgets every vote (a new view begins).
    pub fn clear(&mut self) {
        self.by_signer.clear();
    }
}
