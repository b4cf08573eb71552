//! What the project's tests and benchmarks share: a [`GenesisBuilder`] and a seeded
//! random generator ([`Rng`]). Tests build the documents and randomness they need from
//! these instead of keeping copies of their own.

#![forbid(unsafe_code)]

use almagill::amount::Amount;
use almagill::crypto::Address;
use almagill::genesis::{ConsensusParams, Genesis, GenesisAccount};

/// Builds a genesis document: start from [`GenesisBuilder::new`], set what the test cares
/// about, add accounts, then [`GenesisBuilder::build`] (validated) or
/// [`GenesisBuilder::unchecked`] (for tests of documents validation refuses).
#[derive(Clone, Debug)]
pub struct GenesisBuilder {
    genesis: Genesis,
}

impl GenesisBuilder {
    /// A document for `chain_id` with no accounts, genesis time 0, a minimum stake of 1,
    /// epochs of 100 blocks and default consensus parameters.
    pub fn new(chain_id: &str) -> GenesisBuilder {
        GenesisBuilder {
            genesis: Genesis {
                chain_id: chain_id.to_string(),
                genesis_time_ms: 0,
                min_stake: 1,
                epoch_length: 100,
                consensus: ConsensusParams::default(),
                accounts: Vec::new(),
            },
        }
    }

    /// Sets the genesis time.
    pub fn time_ms(mut self, ms: u64) -> Self {
        self.genesis.genesis_time_ms = ms;
        self
    }

    /// Sets the minimum stake of a validator.
    pub fn min_stake(mut self, min: Amount) -> Self {
        self.genesis.min_stake = min;
        self
    }

    /// Sets the epoch length.
    pub fn epoch_length(mut self, blocks: u64) -> Self {
        self.genesis.epoch_length = blocks;
        self
    }

    /// Sets the consensus parameters.
    pub fn consensus(mut self, params: ConsensusParams) -> Self {
        self.genesis.consensus = params;
        self
    }

    /// Adds an account.
    pub fn account(mut self, name: &str, address: Address, balance: Amount, stake: Amount) -> Self {
        self.genesis.accounts.push(GenesisAccount {
            name: name.to_string(),
            address,
            balance,
            stake,
        });
        self
    }

    /// The document, validated; panics with the reason if it is not valid.
    pub fn build(self) -> Genesis {
        if let Err(e) = self.genesis.validate() {
            panic!("the test's genesis is invalid: {e}");
        }
        self.genesis
    }

    /// The document as it is, not validated.
    pub fn unchecked(self) -> Genesis {
        self.genesis
    }
}

/// Deterministic pseudo-random numbers from a seed (SplitMix64): a seed replays a run
/// exactly.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_and_another_differs() {
        let (mut a, mut b, mut c) = (Rng::new(7), Rng::new(7), Rng::new(8));
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        assert_eq!(xs, (0..8).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(xs, (0..8).map(|_| c.next_u64()).collect::<Vec<_>>());
        assert!((0..1000).all(|_| a.between(3, 5) >= 3 && a.below(4) < 4));
    }

    #[test]
    fn the_builder_validates_unless_told_not_to() {
        let key = Address([1; 32]);
        let genesis = GenesisBuilder::new("kit").account("v", key, 10, 5).build();
        assert_eq!(genesis.accounts.len(), 1);
        let none = GenesisBuilder::new("kit").unchecked();
        assert!(none.validate().is_err(), "no validator");
    }
}
