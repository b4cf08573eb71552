//! The accounts, kept so that the state root can be updated cheaply after every block.
//!
//! Accounts fall into 1024 buckets by the first ten bits of their address; a fixed binary
//! Merkle tree sits over the bucket hashes. Changing an account rehashes its bucket and the
//! ten nodes above it, not the whole state. Because buckets follow address order, iterating
//! the buckets in turn visits every account in address order.

use std::collections::BTreeMap;

use crate::crypto::{domain, Address, Hash};
use crate::ledger::Account;

const BUCKET_BITS: u32 = 10;
const BUCKETS: usize = 1 << BUCKET_BITS;

/// All accounts, with a Merkle root over them.
#[derive(Clone, Debug)]
pub struct StateTree {
    /// Accounts by bucket; bucket `i` holds the addresses whose top ten bits are `i`.
    buckets: Vec<BTreeMap<Address, Account>>,
    /// A heap-ordered tree: `nodes[1]` is the root, `nodes[BUCKETS + i]` bucket `i`'s hash.
    nodes: Vec<Hash>,
    /// Buckets changed since the root was last brought up to date.
    dirty: Vec<usize>,
    /// Number of accounts.
    len: usize,
}

impl Default for StateTree {
    fn default() -> Self {
        let mut tree = StateTree {
            buckets: vec![BTreeMap::new(); BUCKETS],
            nodes: vec![Hash::default(); 2 * BUCKETS],
            dirty: (0..BUCKETS).collect(),
            len: 0,
        };
        tree.root();
        tree
    }
}

fn bucket_of(address: &Address) -> usize {
    usize::from(u16::from_be_bytes([address.0[0], address.0[1]]) >> (16 - BUCKET_BITS))
}

fn bucket_hash(bucket: &BTreeMap<Address, Account>) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(domain::STATE_BUCKET);
    for (address, account) in bucket {
        hasher.update(&address.0);
        hasher.update(&account.balance.to_le_bytes());
        hasher.update(&account.stake.to_le_bytes());
        hasher.update(&account.nonce.to_le_bytes());
    }
    Hash(*hasher.finalize().as_bytes())
}

impl StateTree {
    /// The account at `address`, if it exists.
    pub fn get(&self, address: &Address) -> Option<&Account> {
        self.buckets[bucket_of(address)].get(address)
    }

    /// Creates or overwrites an account.
    pub fn insert(&mut self, address: Address, account: Account) {
        let bucket = bucket_of(&address);
        if self.buckets[bucket].insert(address, account).is_none() {
            self.len += 1;
        }
        self.dirty.push(bucket);
    }

    /// How many accounts exist.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no accounts.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every account, in address order.
    pub fn iter(&self) -> impl Iterator<Item = (&Address, &Account)> {
        self.buckets.iter().flat_map(|bucket| bucket.iter())
    }

    /// The state root, rehashing only what changed since it was last asked for.
    pub fn root(&mut self) -> Hash {
        let mut level: Vec<usize> = std::mem::take(&mut self.dirty);
        level.sort_unstable();
        level.dedup();
        for &bucket in &level {
            self.nodes[BUCKETS + bucket] = bucket_hash(&self.buckets[bucket]);
        }
        let mut level: Vec<usize> = level.into_iter().map(|b| BUCKETS + b).collect();
        while level.first().is_some_and(|&n| n > 1) {
            level = level.into_iter().map(|n| n / 2).collect();
            level.dedup();
            for &n in &level {
                self.nodes[n] = Hash::digest(
                    domain::STATE_NODE,
                    &[&self.nodes[2 * n].0, &self.nodes[2 * n + 1].0],
                );
            }
        }
        self.nodes[1]
    }
}
