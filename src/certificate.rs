//! Signed statements and quorum certificates: the proofs, checkable by anyone holding the
//! validator set, that a validator said something, or that more than two thirds of stake did.

use bincode::{Decode, Encode};
use thiserror::Error;

use crate::crypto::{self, domain, Address, Hash, Keypair, Signature, SignedMessage};
use crate::encoding;
use crate::validators::ValidatorSet;

/// A statement a validator can sign. Each kind has its own domain tag, so a signature on one
/// kind can never be passed off as another.
pub trait Signable: Encode + Sized {
    /// The domain tag of this kind of statement.
    const DOMAIN: &'static [u8];

    /// The exact bytes a signature on this statement covers on chain `chain_id`.
    fn signing_message(&self, chain_id: &str) -> Vec<u8> {
        crypto::signing_message(Self::DOMAIN, chain_id, &encoding::encode(self))
    }
}

/// The pBFT phase a vote belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub enum Phase {
    /// "I accept this proposal for this height and view." The leader's proposal carries its
    /// own prepare vote.
    Prepare,
    /// "I saw a quorum prepare it; I commit to it."
    Commit,
}

/// What a validator signs when it votes: the phase, the slot and the proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct VoteTarget {
    /// Prepare or commit.
    pub phase: Phase,
    /// The height (pBFT's sequence number).
    pub height: u64,
    /// The view the vote is cast in.
    pub view: u64,
    /// The digest of the proposal voted for (see `block::ProposalHeader::digest`).
    pub digest: Hash,
}

impl Signable for VoteTarget {
    const DOMAIN: &'static [u8] = domain::VOTE;
}

/// A statement with its signer and signature.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Signed<T> {
    /// What was said.
    pub payload: T,
    /// Who said it.
    pub signer: Address,
    /// The signer's signature over [`Signable::signing_message`].
    pub signature: Signature,
}

impl<T: Signable> Signed<T> {
    /// Signs `payload` with `key` for chain `chain_id`.
    pub fn sign(payload: T, key: &Keypair, chain_id: &str) -> Signed<T> {
        let signature = key.sign(T::DOMAIN, chain_id, &encoding::encode(&payload));
        Signed {
            payload,
            signer: key.address(),
            signature,
        }
    }

    /// Whether the signature is the signer's on this payload and chain.
    pub fn verify(&self, chain_id: &str) -> bool {
        crypto::verify(
            &self.signer,
            &self.payload.signing_message(chain_id),
            &self.signature,
        )
    }
}

/// One statement signed by distinct validators holding more than two thirds of stake.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Certificate<T> {
    /// The statement every signature covers.
    pub payload: T,
    /// Signatures by signer, in strictly increasing address order (so each signer appears
    /// once and the encoding is canonical).
    pub votes: Vec<(Address, Signature)>,
}

/// Proof that a block committed: commit votes of more than two thirds of stake.
pub type CommitCertificate = Certificate<VoteTarget>;

/// Why a certificate proves nothing.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CertificateError {
    /// Signers are not in strictly increasing order (repeats included).
    #[error("signers are repeated or out of order")]
    NotCanonical,
    /// A signer is not in the validator set.
    #[error("{0} is not a validator here")]
    NotValidator(Address),
    /// The signers hold two thirds of stake or less.
    #[error("the signers do not hold more than two thirds of stake")]
    NoQuorum,
    /// A signature does not verify.
    #[error("the signature of {0} does not verify")]
    BadSignature(Address),
}

impl<T: Signable> Certificate<T> {
    /// Builds a certificate from signatures on `payload`, putting them in canonical order
    /// and keeping one per signer.
    pub fn new(
        payload: T,
        votes: impl IntoIterator<Item = (Address, Signature)>,
    ) -> Certificate<T> {
        let mut votes: Vec<(Address, Signature)> = votes.into_iter().collect();
        votes.sort_by_key(|(signer, _)| *signer);
        votes.dedup_by_key(|(signer, _)| *signer);
        Certificate { payload, votes }
    }

    /// The signers, in order.
    pub fn signers(&self) -> impl Iterator<Item = &Address> {
        self.votes.iter().map(|(signer, _)| signer)
    }

    /// Checks the certificate against `validators`: distinct members, more than two thirds
    /// of stake, and every signature valid. Cheap checks come first, so a forged certificate
    /// costs little.
    pub fn verify(
        &self,
        chain_id: &str,
        validators: &ValidatorSet,
    ) -> Result<(), CertificateError> {
        if self.votes.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(CertificateError::NotCanonical);
        }
        if let Some(outsider) = self.signers().find(|a| validators.stake_of(a).is_none()) {
            return Err(CertificateError::NotValidator(*outsider));
        }
        if !validators.is_quorum(validators.weight(self.signers())) {
            return Err(CertificateError::NoQuorum);
        }
        let message = self.payload.signing_message(chain_id);
        let items: Vec<SignedMessage<'_>> = self
            .votes
            .iter()
            .map(|(signer, signature)| SignedMessage {
                signer: *signer,
                message: &message,
                signature: *signature,
            })
            .collect();
        match crypto::first_invalid(&items) {
            Some(i) => Err(CertificateError::BadSignature(self.votes[i].0)),
            None => Ok(()),
        }
    }
}
