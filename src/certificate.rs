//! Votes and commit certificates: the proof, checkable by anyone holding the validator set,
//! that more than two thirds of stake committed a block.

use bincode::{Decode, Encode};
use thiserror::Error;

use crate::crypto::{self, domain, Address, Hash, Keypair, Signature, SignedMessage};
use crate::encoding;
use crate::validators::ValidatorSet;

/// The pBFT phase a vote belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub enum Phase {
    /// "I accept this proposal for this height and view."
    Prepare,
    /// "I saw a quorum prepare it; I commit to it."
    Commit,
}

/// What a validator signs when it votes: the phase, the slot and the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct VoteTarget {
    /// Prepare or commit.
    pub phase: Phase,
    /// The height (pBFT's sequence number).
    pub height: u64,
    /// The view the vote is cast in.
    pub view: u64,
    /// The block voted for.
    pub block: Hash,
}

impl VoteTarget {
    /// The exact bytes a vote's signature covers on chain `chain_id`.
    pub fn signing_message(&self, chain_id: &str) -> Vec<u8> {
        crypto::signing_message(domain::VOTE, chain_id, &encoding::encode(self))
    }

    /// Signs this vote.
    pub fn sign(&self, key: &Keypair, chain_id: &str) -> Signature {
        key.sign(domain::VOTE, chain_id, &encoding::encode(self))
    }
}

/// Commit votes from distinct validators holding more than two thirds of stake.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct CommitCertificate {
    /// The block's height.
    pub height: u64,
    /// The view the commits were cast in.
    pub view: u64,
    /// The committed block.
    pub block: Hash,
    /// Signatures over the commit vote, by signer, in strictly increasing address order
    /// (so each signer appears once and the encoding is canonical).
    pub votes: Vec<(Address, Signature)>,
}

/// Why a certificate does not prove its block committed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CertificateError {
    /// Signers are not in strictly increasing order (repeats included).
    #[error("signers are repeated or out of order")]
    NotCanonical,
    /// A signer is not in the validator set for the height.
    #[error("{0} is not a validator at this height")]
    NotValidator(Address),
    /// The signers hold two thirds of stake or less.
    #[error("the signers do not hold more than two thirds of stake")]
    NoQuorum,
    /// A signature does not verify.
    #[error("the signature of {0} does not verify")]
    BadSignature(Address),
}

impl CommitCertificate {
    /// The commit vote every signature in this certificate signs.
    pub fn target(&self) -> VoteTarget {
        VoteTarget {
            phase: Phase::Commit,
            height: self.height,
            view: self.view,
            block: self.block,
        }
    }

    /// Checks the certificate against the validator set in force at its height: distinct
    /// members, more than two thirds of stake, and every signature valid.
    pub fn verify(&self, chain_id: &str, validators: &ValidatorSet) -> Result<(), CertificateError> {
        if self.votes.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(CertificateError::NotCanonical);
        }
        if let Some((outsider, _)) = self
            .votes
            .iter()
            .find(|(a, _)| validators.stake_of(a).is_none())
        {
            return Err(CertificateError::NotValidator(*outsider));
        }
        if !validators.is_quorum(validators.weight(self.votes.iter().map(|(a, _)| a))) {
            return Err(CertificateError::NoQuorum);
        }
        let message = self.target().signing_message(chain_id);
        let items: Vec<SignedMessage<'_>> = self
            .votes
            .iter()
            .map(|(signer, signature)| SignedMessage {
                signer: *signer,
                message: &message,
                signature: *signature,
            })
            .collect();
        match crypto::verify_batch(&items).iter().position(|ok| !ok) {
            Some(i) => Err(CertificateError::BadSignature(self.votes[i].0)),
            None => Ok(()),
        }
    }
}
