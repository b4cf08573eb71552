//! Ledger snapshots: the whole state at one height, in pieces small enough to store and send
//! one at a time, and the checks that turn pieces back into a ledger.
//!
//! A node writes one every so many blocks, so that a restart loads it and executes only the
//! blocks after it. Restoring trusts nothing in the pieces: the accounts must be in strictly
//! increasing address order, hold exactly the genesis supply, and hash to the head's state
//! root.

use std::collections::BTreeMap;

use bincode::{Decode, Encode};
use thiserror::Error;

use super::{Account, Epochs, Ledger, RootParts};
use crate::crypto::{Address, Hash};
use crate::genesis::Genesis;
use crate::reputation::Blames;
use crate::state_tree::StateTree;
use crate::validators::ValidatorSet;

/// Accounts per chunk: 10,000 accounts encode to about 0.7 MB, well under the decode limit.
pub const ACCOUNTS_PER_CHUNK: usize = 10_000;

/// What a snapshot is of: its height, state root, validator sets and how many chunks of
/// accounts follow.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SnapshotHead {
    /// The height of the last block executed into the state.
    pub height: u64,
    /// The state root at that height.
    pub state_root: Hash,
    /// The root over the accounts, one of the state root's parts.
    pub accounts_root: Hash,
    /// The validator sets the ledger knows, by epoch: another of the root's parts.
    pub epochs: Epochs,
    /// Who failed recent turns to lead: the root's last part.
    pub blames: Blames,
    /// How many accounts there are.
    pub accounts: u64,
    /// How many chunks they come in.
    pub chunks: u32,
}

/// Up to [`ACCOUNTS_PER_CHUNK`] accounts, in address order, continuing the chunk before.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SnapshotChunk(pub Vec<(Address, Account)>);

/// Why pieces of a snapshot do not make a ledger.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// The pieces do not match their head, or break a rule of the ledger.
    #[error("snapshot at height {height} is invalid: {reason}")]
    Invalid {
        /// The head's height.
        height: u64,
        /// What is wrong.
        reason: String,
    },
}

impl Ledger {
    /// The state as a head and its chunks of accounts.
    pub fn snapshot(&mut self) -> (SnapshotHead, Vec<SnapshotChunk>) {
        let parts = self.root_parts();
        let state_root = parts.root();
        let RootParts {
            accounts_root,
            epochs,
            blames,
        } = parts;
        let accounts: Vec<(Address, Account)> =
            self.accounts.iter().map(|(a, acc)| (*a, *acc)).collect();
        let chunks: Vec<SnapshotChunk> = accounts
            .chunks(ACCOUNTS_PER_CHUNK)
            .map(|c| SnapshotChunk(c.to_vec()))
            .collect();
        let head = SnapshotHead {
            height: self.height,
            state_root,
            accounts_root,
            epochs,
            blames,
            accounts: accounts.len() as u64,
            chunks: chunks.len() as u32,
        };
        (head, chunks)
    }

    /// The ledger a snapshot describes, for the chain `genesis` starts, if every piece checks
    /// out (see the module's doc).
    pub fn from_snapshot(
        genesis: &Genesis,
        head: &SnapshotHead,
        chunks: impl IntoIterator<Item = SnapshotChunk>,
    ) -> Result<Ledger, SnapshotError> {
        let invalid = |reason: String| SnapshotError::Invalid {
            height: head.height,
            reason,
        };
        let mut tree = StateTree::default();
        let mut last: Option<Address> = None;
        let mut count = 0u32;
        for chunk in chunks {
            count += 1;
            if chunk.0.is_empty() || chunk.0.len() > ACCOUNTS_PER_CHUNK {
                return Err(invalid(format!(
                    "chunk {count} holds {} accounts",
                    chunk.0.len()
                )));
            }
            for (address, account) in chunk.0 {
                if last.is_some_and(|l| l >= address) {
                    return Err(invalid(format!("account {address} is out of order")));
                }
                last = Some(address);
                tree.insert(address, account);
            }
        }
        if count != head.chunks || tree.len() as u64 != head.accounts {
            return Err(invalid(format!(
                "{} accounts in {count} chunks where the head says {} in {}",
                tree.len(),
                head.accounts,
                head.chunks
            )));
        }
        let mut epochs = BTreeMap::new();
        for (epoch, members) in &head.epochs {
            let set = ValidatorSet::new(members.clone())
                .filter(|set| set.members() == members.as_slice())
                .ok_or_else(|| invalid(format!("the validator set of epoch {epoch} is invalid")))?;
            epochs.insert(*epoch, set);
        }
        let mut ledger = Ledger {
            accounts: tree,
            min_stake: genesis.min_stake,
            epoch_length: genesis.epoch_length,
            genesis_supply: genesis.supply(),
            height: head.height,
            epochs,
            blames: head.blames.clone(),
            checkpoint_interval: genesis.consensus.checkpoint_interval,
        };
        if ledger.total_supply() != ledger.genesis_supply {
            return Err(invalid(format!(
                "its accounts hold {} where the supply is {}",
                ledger.total_supply(),
                ledger.genesis_supply
            )));
        }
        let root = ledger.state_root();
        if root != head.state_root {
            return Err(invalid(format!(
                "its accounts hash to {root}, not to the head's root {}",
                head.state_root
            )));
        }
        Ok(ledger)
    }
}
