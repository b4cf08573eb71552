//! Transactions: what an account asks the chain to do, signed by that account.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, OnceLock, PoisonError};

use bincode::{Decode, Encode};
use thiserror::Error;

use crate::amount::Amount;
use crate::crypto::{self, domain, Address, Hash, Keypair, Signature};
use crate::encoding;

/// What a transaction does. Tokens only move: between accounts, or between an account's
/// balance and its stake. None is ever created or destroyed after genesis.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum TxKind {
    /// Moves `amount` from the sender's balance to an existing account.
    Transfer {
        /// The recipient; must already exist.
        to: Address,
        /// Base units moved.
        amount: Amount,
    },
    /// Creates the account `new_account` and funds it from the sender's balance. This is
    /// the only way an account comes to exist after genesis.
    CreateAccount {
        /// The new account's address; must not exist yet.
        new_account: Address,
        /// Its opening balance.
        amount: Amount,
    },
    /// Moves `amount` from the sender's balance to its stake.
    Stake {
        /// Base units staked.
        amount: Amount,
    },
    /// Moves `amount` from the sender's stake back to its balance.
    Unstake {
        /// Base units unstaked.
        amount: Amount,
    },
}

impl TxKind {
    /// The amount the transaction moves.
    pub fn amount(&self) -> Amount {
        match self {
            TxKind::Transfer { amount, .. }
            | TxKind::CreateAccount { amount, .. }
            | TxKind::Stake { amount }
            | TxKind::Unstake { amount } => *amount,
        }
    }
}

/// The signed part of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TxBody {
    /// The account that signs, pays, and whose nonce is used.
    pub from: Address,
    /// Must equal the sender's count of applied transactions: stops replays and orders a
    /// sender's transactions.
    pub nonce: u64,
    /// What to do.
    pub kind: TxKind,
}

impl TxBody {
    /// Signs the body with the sender's key for chain `chain_id`.
    pub fn sign(self, key: &Keypair, chain_id: &str) -> Transaction {
        let signature = key.sign(domain::TX_SIGN, chain_id, &encoding::encode(&self));
        Transaction::new(self, signature)
    }
}

/// A signed transaction, as submitted, gossiped and put in blocks.
///
/// It cannot be changed once made, so its hash, computed the first time it is asked for,
/// is kept: a node asks for it at every step a transaction goes through (admission,
/// proposal, execution, the index).
#[derive(Clone, Debug)]
pub struct Transaction {
    body: TxBody,
    signature: Signature,
    hash: OnceLock<Hash>,
}

impl PartialEq for Transaction {
    fn eq(&self, other: &Self) -> bool {
        self.body == other.body && self.signature == other.signature
    }
}

impl Eq for Transaction {}

/// Encoded as the body, then the signature.
impl Encode for Transaction {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        encoder: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        self.body.encode(encoder)?;
        self.signature.encode(encoder)
    }
}

impl<Context> Decode<Context> for Transaction {
    fn decode<D: bincode::de::Decoder<Context = Context>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let body = TxBody::decode(decoder)?;
        Ok(Transaction::new(body, Signature::decode(decoder)?))
    }
}

bincode::impl_borrow_decode!(Transaction);

/// Why a transaction is invalid on its own, whatever the state of the chain.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum TxFormatError {
    /// The signature does not verify for this body, sender and chain.
    #[error("the signature does not verify")]
    InvalidSignature,
    /// Moving zero tokens.
    #[error("the amount must be above zero")]
    ZeroAmount,
    /// A transfer or creation addressed to the sender itself.
    #[error("the sender cannot be the recipient")]
    SelfTransfer,
}

impl TxFormatError {
    /// The admin protocol's error code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            TxFormatError::InvalidSignature => "invalid_signature",
            TxFormatError::ZeroAmount | TxFormatError::SelfTransfer => "bad_amount",
        }
    }
}

impl Transaction {
    /// `body` with `signature`, as signed (or claimed to be: see [`Transaction::verify`]).
    pub fn new(body: TxBody, signature: Signature) -> Transaction {
        Transaction {
            body,
            signature,
            hash: OnceLock::new(),
        }
    }

    /// What is asked.
    pub fn body(&self) -> &TxBody {
        &self.body
    }

    /// The sender's signature over the body (see [`crypto::signing_message`]).
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The transaction's identity: blake3 of its canonical encoding.
    pub fn hash(&self) -> Hash {
        *self
            .hash
            .get_or_init(|| Hash::digest(domain::TX_HASH, &[&encoding::encode(self)]))
    }

    /// The exact bytes the signature covers on chain `chain_id`.
    pub fn signing_message(&self, chain_id: &str) -> Vec<u8> {
        crypto::signing_message(domain::TX_SIGN, chain_id, &encoding::encode(&self.body))
    }

    /// Checks what needs no state: a non-zero amount, no self-transfer. The signature is
    /// checked apart ([`Transaction::verify`], or in a batch) because it is the costly part.
    pub fn check_format(&self) -> Result<(), TxFormatError> {
        let body = &self.body;
        if body.kind.amount() == 0 {
            return Err(TxFormatError::ZeroAmount);
        }
        match body.kind {
            TxKind::Transfer { to, .. }
            | TxKind::CreateAccount {
                new_account: to, ..
            } if to == body.from => Err(TxFormatError::SelfTransfer),
            _ => Ok(()),
        }
    }

    /// Every stateless check: format and signature.
    pub fn verify(&self, chain_id: &str) -> Result<(), TxFormatError> {
        self.check_format()?;
        let message = self.signing_message(chain_id);
        if crypto::verify(&self.body.from, &message, &self.signature) {
            Ok(())
        } else {
            Err(TxFormatError::InvalidSignature)
        }
    }
}

/// Checks the signatures of many transactions as one batch; each answer is what the
/// signature check of [`Transaction::verify`] would say for that transaction alone.
pub fn verify_signatures<'a>(
    txs: impl IntoIterator<Item = &'a Transaction>,
    chain_id: &str,
) -> Vec<bool> {
    let txs: Vec<&Transaction> = txs.into_iter().collect();
    let messages: Vec<Vec<u8>> = txs.iter().map(|tx| tx.signing_message(chain_id)).collect();
    let items: Vec<crypto::SignedMessage<'_>> = txs
        .iter()
        .zip(&messages)
        .map(|(tx, message)| crypto::SignedMessage {
            signer: tx.body.from,
            message,
            signature: tx.signature,
        })
        .collect();
    crypto::verify_batch(&items)
}

/// How many verified transaction hashes a node remembers: a few seconds of transactions at
/// the highest rates (a proposal carries what arrived in the last second or so), in a few
/// MiB.
pub const VERIFIED_REMEMBERED: usize = 50_000;

/// Hashes of transactions whose signatures this node has checked on its chain, so that each
/// is checked once per node: the mempool adds what it verifies, proposal bodies skip what
/// is here and add what they verify. A transaction's hash covers its signature, so a hit is
/// the very same signed bytes. Bounded by [`VERIFIED_REMEMBERED`], oldest forgotten first;
/// shared between actors, so behind a lock.
#[derive(Debug, Default)]
pub struct VerifiedTxs {
    inner: Mutex<(VecDeque<Hash>, HashSet<Hash>)>,
}

impl VerifiedTxs {
    /// Remembers `hashes` as verified.
    pub fn add(&self, hashes: impl IntoIterator<Item = Hash>) {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (order, set) = &mut *guard;
        for hash in hashes {
            if set.insert(hash) {
                order.push_back(hash);
            }
        }
        while order.len() > VERIFIED_REMEMBERED {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
    }

    /// Whether each of `hashes` was verified, under one lock.
    pub fn known(&self, hashes: &[Hash]) -> Vec<bool> {
        let guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        hashes.iter().map(|h| guard.1.contains(h)).collect()
    }
}
