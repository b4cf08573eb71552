//! Proposals and blocks.
//!
//! Consensus agrees, height by height, on a [`Proposal`]: a batch of transactions under a
//! header naming its height, view, proposer and time. A [`Block`] is a committed proposal
//! placed in the chain: the same header plus the hash of the block below it. Keeping the
//! parent link out of what is voted on lets several heights be agreed at once, each on its
//! own, as in pBFT's log; the chain is then derived, identically on every node, from the
//! agreed proposals in height order.

use bincode::{Decode, Encode};
use thiserror::Error;

use crate::certificate::{CommitCertificate, Phase};
use crate::crypto::{domain, Address, Hash};
use crate::encoding;
use crate::merkle;
use crate::tx::{verify_signatures, Transaction, TxFormatError, VerifiedTxs};

/// The header of a proposal: what consensus votes on (through its digest).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ProposalHeader {
    /// Position in the chain; genesis is 0.
    pub height: u64,
    /// The view in which the proposal was first made.
    pub view: u64,
    /// The proposer's clock when proposing, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The validator that proposed it.
    pub proposer: Address,
    /// Merkle root of the transaction hashes, in order.
    pub tx_root: Hash,
}

impl ProposalHeader {
    /// The proposal's identity, which votes and certificates sign.
    pub fn digest(&self) -> Hash {
        Hash::digest(domain::PROPOSAL, &[&encoding::encode(self)])
    }

    /// Whether `txs` are the transactions this header commits to (their Merkle root is
    /// `tx_root`). The digest covers only the header, so this is what binds a body to it.
    pub fn binds(&self, txs: &[Transaction]) -> bool {
        tx_root(txs) == self.tx_root
    }

    /// Every stateless check on a body under this header: the transaction root, the count
    /// limit, no duplicates, and each transaction's format and signature (one batch, of
    /// those not in `verified`; those it checks are added to it).
    ///
    /// A body enters a node by many paths (a pre-prepare, a view change, a new view, a
    /// catch-up reply, the node's own vote log); each calls this one check, so no path can
    /// accept transactions the header does not commit to, or that nobody signed.
    pub fn check_body(
        &self,
        txs: &[Transaction],
        chain_id: &str,
        max_txs: usize,
        verified: &VerifiedTxs,
    ) -> Result<(), BlockError> {
        if txs.len() > max_txs {
            return Err(BlockError::TooManyTxs {
                count: txs.len(),
                max: max_txs,
            });
        }
        let hashes: Vec<Hash> = txs.iter().map(Transaction::hash).collect();
        if merkle::root(&hashes) != self.tx_root {
            return Err(BlockError::TxRootMismatch);
        }
        let mut seen = std::collections::HashSet::with_capacity(hashes.len());
        if let Some(dup) = hashes.iter().find(|h| !seen.insert(**h)) {
            return Err(BlockError::DuplicateTx(*dup));
        }
        for (index, tx) in txs.iter().enumerate() {
            tx.check_format()
                .map_err(|error| BlockError::BadTx { index, error })?;
        }
        let known = verified.known(&hashes);
        let unchecked: Vec<usize> = (0..txs.len()).filter(|&i| !known[i]).collect();
        let valid = verify_signatures(unchecked.iter().map(|&i| &txs[i]), chain_id);
        if let Some((&index, _)) = unchecked.iter().zip(&valid).find(|(_, ok)| !**ok) {
            return Err(BlockError::BadTx {
                index,
                error: TxFormatError::InvalidSignature,
            });
        }
        verified.add(unchecked.iter().map(|&i| hashes[i]));
        Ok(())
    }
}

/// A header and the transactions it commits to.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Proposal {
    /// The header; its `tx_root` covers `txs`.
    pub header: ProposalHeader,
    /// The transactions, executed in this order.
    pub txs: Vec<Transaction>,
}

/// A block's header: a proposal's header and the link to the parent.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BlockHeader {
    /// Hash of the block at `height - 1` (for block 1, the genesis hash).
    pub prev: Hash,
    /// The agreed proposal's header.
    pub proposal: ProposalHeader,
}

impl BlockHeader {
    /// The block's identity: blake3 of the canonical header.
    pub fn hash(&self) -> Hash {
        Hash::digest(domain::BLOCK, &[&encoding::encode(self)])
    }
}

/// A committed proposal in its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, executed in this order.
    pub txs: Vec<Transaction>,
}

/// Why a proposal is invalid whatever the state.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BlockError {
    /// `tx_root` does not match the transactions.
    #[error("the transaction root does not match the transactions")]
    TxRootMismatch,
    /// More transactions than the chain allows.
    #[error("{count} transactions is over the limit of {max}")]
    TooManyTxs {
        /// Transactions in the proposal.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A transaction appears twice.
    #[error("transaction {0} appears twice")]
    DuplicateTx(Hash),
    /// A transaction fails its stateless checks.
    #[error("transaction {index}: {error}")]
    BadTx {
        /// Its position.
        index: usize,
        /// What is wrong with it.
        error: TxFormatError,
    },
}

/// The Merkle root over transactions' hashes.
pub fn tx_root(txs: &[Transaction]) -> Hash {
    merkle::root(&txs.iter().map(Transaction::hash).collect::<Vec<_>>())
}

impl Proposal {
    /// A proposal of `txs`, with its transaction root computed.
    pub fn new(
        height: u64,
        view: u64,
        timestamp_ms: u64,
        proposer: Address,
        txs: Vec<Transaction>,
    ) -> Proposal {
        Proposal {
            header: ProposalHeader {
                height,
                view,
                timestamp_ms,
                proposer,
                tx_root: tx_root(&txs),
            },
            txs,
        }
    }

    /// The proposal's identity (its header's digest).
    pub fn digest(&self) -> Hash {
        self.header.digest()
    }

    /// Every stateless check on the body ([`ProposalHeader::check_body`]).
    pub fn check_body(
        &self,
        chain_id: &str,
        max_txs: usize,
        verified: &VerifiedTxs,
    ) -> Result<(), BlockError> {
        self.header
            .check_body(&self.txs, chain_id, max_txs, verified)
    }
}

impl Block {
    /// Places an agreed proposal on top of the block whose hash is `prev`.
    pub fn new(proposal: Proposal, prev: Hash) -> Block {
        Block {
            header: BlockHeader {
                prev,
                proposal: proposal.header,
            },
            txs: proposal.txs,
        }
    }

    /// The block's identity (its header's hash).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The block's height.
    pub fn height(&self) -> u64 {
        self.header.proposal.height
    }

    /// Whether `certificate` names this block: a commit at its height of its proposal's
    /// digest. (Its signatures are checked against the validators of the height apart.)
    pub fn committed_by(&self, certificate: &CommitCertificate) -> bool {
        let t = &certificate.payload;
        t.phase == Phase::Commit
            && t.height == self.height()
            && t.digest == self.header.proposal.digest()
    }

    /// Every stateless check on the body ([`ProposalHeader::check_body`]).
    pub fn check_body(
        &self,
        chain_id: &str,
        max_txs: usize,
        verified: &VerifiedTxs,
    ) -> Result<(), BlockError> {
        self.header
            .proposal
            .check_body(&self.txs, chain_id, max_txs, verified)
    }
}
