//! State sync's checks: how a node that holds only genesis comes to trust a snapshot that
//! peers offer, without executing the chain below it.
//!
//! Genesis fixes the validators of epochs 0 and 1. The state root after the last block of
//! epoch `e` binds the validator set of epoch `e + 2` ([`RootParts`]), and the stable
//! checkpoint at that height is that root signed by a quorum of epoch `e`'s validators. So
//! the epoch-end checkpoints, each with the parts of its root ([`EpochProof`]), prove every
//! validator set in turn from genesis ([`KnownSets`]). The checkpoint at a snapshot's height
//! then proves the snapshot's state root ([`Offer`]), and the root proves every account
//! (`Ledger::from_snapshot`). Nothing a peer sends is taken on its word.

use std::collections::BTreeMap;

use bincode::{Decode, Encode};
use thiserror::Error;

use crate::block::Block;
use crate::certificate::{CertificateError, CommitCertificate};
use crate::consensus::CheckpointCertificate;
use crate::genesis::Genesis;
use crate::ledger::{RootParts, SnapshotHead};
use crate::validators::{epoch_of, ValidatorSet};

/// The stable checkpoint at an epoch's last height, with the parts of its state root: proof
/// of the validator set of the epoch after next.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct EpochProof {
    /// The checkpoint, signed by the ending epoch's validators.
    pub checkpoint: CheckpointCertificate,
    /// What its state root is the digest of.
    pub parts: RootParts,
}

/// A snapshot a peer offers: its head, the checkpoint that proves the head's root, and the
/// block at its height (whose hash the next block links to) with its commit certificate.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Offer {
    /// The stable checkpoint at the snapshot's height.
    pub checkpoint: CheckpointCertificate,
    /// The snapshot's head; its chunks are fetched separately.
    pub head: SnapshotHead,
    /// The block at the snapshot's height.
    pub block: Block,
    /// That block's commit certificate.
    pub commit: CommitCertificate,
}

/// Why a proof or an offer proves nothing.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SyncError {
    /// An epoch proof for another height than the next one needed.
    #[error("an epoch proof at height {got} where height {expected} was needed")]
    OutOfOrder {
        /// The height needed.
        expected: u64,
        /// The height given.
        got: u64,
    },
    /// The validators of this epoch are not proven yet.
    #[error("the validators of epoch {0} are not known yet")]
    UnknownEpoch(u64),
    /// A certificate does not verify against the validators of its height.
    #[error("the certificate at height {height} does not verify: {error}")]
    Certificate {
        /// Its height.
        height: u64,
        /// What is wrong with it.
        error: CertificateError,
    },
    /// The pieces do not fit together.
    #[error("at height {height}: {reason}")]
    Mismatch {
        /// The height concerned.
        height: u64,
        /// What does not fit.
        reason: &'static str,
    },
}

/// The validator sets proven so far, by epoch.
#[derive(Clone, Debug)]
pub struct KnownSets {
    chain_id: String,
    epoch_length: u64,
    checkpoint_interval: u64,
    sets: BTreeMap<u64, ValidatorSet>,
}

impl KnownSets {
    /// What genesis proves: the sets of epochs 0 and 1.
    pub fn from_genesis(genesis: &Genesis) -> KnownSets {
        let sets = genesis
            .validator_set()
            .map(|set| BTreeMap::from([(0, set.clone()), (1, set)]))
            .unwrap_or_default();
        KnownSets {
            chain_id: genesis.chain_id.clone(),
            epoch_length: genesis.epoch_length.max(1),
            checkpoint_interval: genesis.consensus.checkpoint_interval.max(1),
            sets,
        }
    }

    /// Whether the validators of `height` are proven.
    pub fn knows(&self, height: u64) -> bool {
        self.sets.contains_key(&epoch_of(height, self.epoch_length))
    }

    /// The height whose epoch proof comes next: the end of the epoch before the last one
    /// known.
    pub fn next_proof_height(&self) -> u64 {
        let last = self.sets.keys().next_back().copied().unwrap_or(0);
        last.saturating_mul(self.epoch_length)
    }

    /// Learns the set an epoch proof proves, if the proof holds.
    pub fn add(&mut self, proof: &EpochProof) -> Result<(), SyncError> {
        let height = proof.checkpoint.payload.height;
        let expected = self.next_proof_height();
        if height != expected || height == 0 {
            return Err(SyncError::OutOfOrder {
                expected,
                got: height,
            });
        }
        let ended = epoch_of(height, self.epoch_length);
        let signers = self.set(ended)?;
        proof
            .checkpoint
            .verify(&self.chain_id, signers)
            .map_err(|error| SyncError::Certificate { height, error })?;
        let mismatch = |reason| SyncError::Mismatch { height, reason };
        if proof.parts.root() != proof.checkpoint.payload.state_root {
            return Err(mismatch("the root's parts do not hash to the signed root"));
        }
        let of = |epoch: u64| {
            proof
                .parts
                .epochs
                .iter()
                .find(|(e, _)| *e == epoch)
                .map(|(_, members)| members)
        };
        if of(ended + 1).map(Vec::as_slice) != Some(self.set(ended + 1)?.members()) {
            return Err(mismatch(
                "the next epoch's set is not the one already proven",
            ));
        }
        let members = of(ended + 2).ok_or(mismatch("no set for the epoch after next"))?;
        let set = ValidatorSet::new(members.clone())
            .filter(|set| set.members() == members.as_slice())
            .ok_or(mismatch("the set of the epoch after next is not canonical"))?;
        self.sets.insert(ended + 2, set);
        Ok(())
    }

    /// Checks an offer: its checkpoint against the validators of its height, its head
    /// against the checkpoint's root, its block against its commit certificate. The chunks
    /// are checked against the head when the ledger is rebuilt from them.
    pub fn check_offer(&self, offer: &Offer) -> Result<(), SyncError> {
        let height = offer.checkpoint.payload.height;
        let mismatch = |reason| SyncError::Mismatch { height, reason };
        if height == 0 || height % self.checkpoint_interval != 0 {
            return Err(mismatch("not a checkpoint height"));
        }
        let validators = self.set(epoch_of(height, self.epoch_length))?;
        offer
            .checkpoint
            .verify(&self.chain_id, validators)
            .map_err(|error| SyncError::Certificate { height, error })?;
        let head = &offer.head;
        if head.height != height || head.state_root != offer.checkpoint.payload.state_root {
            return Err(mismatch("the snapshot is not of the checkpoint's state"));
        }
        let parts = RootParts {
            accounts_root: head.accounts_root,
            epochs: head.epochs.clone(),
            blames: head.blames.clone(),
        };
        if parts.root() != head.state_root {
            return Err(mismatch("the snapshot's parts do not hash to its root"));
        }
        if offer.block.height() != height
            || !offer.block.committed_by(&offer.commit)
            || !offer.block.header.proposal.binds(&offer.block.txs)
        {
            return Err(mismatch("the block is not the one its certificate commits"));
        }
        offer
            .commit
            .verify(&self.chain_id, validators)
            .map_err(|error| SyncError::Certificate { height, error })
    }

    fn set(&self, epoch: u64) -> Result<&ValidatorSet, SyncError> {
        self.sets.get(&epoch).ok_or(SyncError::UnknownEpoch(epoch))
    }
}
