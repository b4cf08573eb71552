//! The state root: one digest over the accounts, the validator sets the ledger knows and
//! the blames that decide who leads (see [`crate::reputation`]).
//!
//! The validator sets are inside the root so that a quorum-signed checkpoint proves them
//! too: a node that holds no history learns each epoch's validators from the checkpoint at
//! the end of the epoch before last (see [`crate::state_sync`]).

use bincode::{Decode, Encode};

use crate::crypto::{domain, Hash};
use crate::encoding;
use crate::reputation::Blames;
use crate::validators::Validator;

/// Validator sets by epoch, in epoch order, as they are hashed and sent.
pub type Epochs = Vec<(u64, Vec<Validator>)>;

/// What a state root is the digest of.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct RootParts {
    /// The Merkle root over every account.
    pub accounts_root: Hash,
    /// The validator sets the ledger knows at that height.
    pub epochs: Epochs,
    /// Who failed recent turns to lead.
    pub blames: Blames,
}

impl RootParts {
    /// The state root these parts make.
    pub fn root(&self) -> Hash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(domain::STATE_ROOT);
        hasher.update(&encoding::encode(self));
        Hash(*hasher.finalize().as_bytes())
    }
}
