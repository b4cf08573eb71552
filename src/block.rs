//! Blocks: an ordered batch of transactions under a header that chains to its parent.

use bincode::{Decode, Encode};
use thiserror::Error;

use crate::crypto::{self, domain, Address, Hash, SignedMessage};
use crate::encoding;
use crate::merkle;
use crate::tx::{Transaction, TxFormatError};

/// What identifies a block and links it into the chain.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BlockHeader {
    /// Position in the chain; genesis is 0.
    pub height: u64,
    /// The consensus view in which the block was proposed.
    pub view: u64,
    /// Hash of the block at `height - 1` (for block 1, the genesis hash).
    pub prev: Hash,
    /// The proposer's clock when proposing, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The validator that proposed the block.
    pub proposer: Address,
    /// Merkle root of the transaction hashes, in block order.
    pub tx_root: Hash,
}

impl BlockHeader {
    /// The block's identity: blake3 of the canonical header.
    pub fn hash(&self) -> Hash {
        Hash::digest(domain::BLOCK, &[&encoding::encode(self)])
    }
}

/// A header and the transactions it commits to.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Block {
    /// The header; its `tx_root` covers `txs`.
    pub header: BlockHeader,
    /// The transactions, executed in this order.
    pub txs: Vec<Transaction>,
}

/// Why a block is invalid whatever the state.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BlockError {
    /// `tx_root` does not match the transactions.
    #[error("the transaction root does not match the transactions")]
    TxRootMismatch,
    /// More transactions than the chain allows.
    #[error("{count} transactions is over the limit of {max}")]
    TooManyTxs {
        /// Transactions in the block.
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
        /// Its position in the block.
        index: usize,
        /// What is wrong with it.
        error: TxFormatError,
    },
}

/// The Merkle root over transactions' hashes.
pub fn tx_root(txs: &[Transaction]) -> Hash {
    merkle::root(&txs.iter().map(Transaction::hash).collect::<Vec<_>>())
}

impl Block {
    /// The block's identity (its header's hash).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Every stateless check on the body: the transaction root, the count limit, no
    /// duplicates, and each transaction's format and signature (checked as one batch).
    pub fn check_body(&self, chain_id: &str, max_txs: usize) -> Result<(), BlockError> {
        if self.txs.len() > max_txs {
            return Err(BlockError::TooManyTxs {
                count: self.txs.len(),
                max: max_txs,
            });
        }
        let hashes: Vec<Hash> = self.txs.iter().map(Transaction::hash).collect();
        if merkle::root(&hashes) != self.header.tx_root {
            return Err(BlockError::TxRootMismatch);
        }
        let mut seen = std::collections::HashSet::with_capacity(hashes.len());
        if let Some(dup) = hashes.iter().find(|h| !seen.insert(**h)) {
            return Err(BlockError::DuplicateTx(*dup));
        }
        for (index, tx) in self.txs.iter().enumerate() {
            tx.check_format()
                .map_err(|error| BlockError::BadTx { index, error })?;
        }
        let messages: Vec<Vec<u8>> = self
            .txs
            .iter()
            .map(|tx| tx.signing_message(chain_id))
            .collect();
        let items: Vec<SignedMessage<'_>> = self
            .txs
            .iter()
            .zip(&messages)
            .map(|(tx, message)| SignedMessage {
                signer: tx.body.from,
                message,
                signature: tx.signature,
            })
            .collect();
        match crypto::verify_batch(&items).iter().position(|ok| !ok) {
            Some(index) => Err(BlockError::BadTx {
                index,
                error: TxFormatError::InvalidSignature,
            }),
            None => Ok(()),
        }
    }
}
