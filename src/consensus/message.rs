//! The messages validators exchange, and the statements inside them that are signed.
//!
//! Every statement is signed over a domain tag, the chain id and its canonical encoding.
//! Bodies of proposals travel beside the signed parts, unsigned: each is bound by its digest,
//! which the signed part names, so a body cannot be swapped without the digest failing.

use bincode::{Decode, Encode};

use crate::block::Proposal;
use crate::certificate::{Certificate, Signable, Signed, VoteTarget};
use crate::crypto::{domain, Hash};

/// "After executing up to `height`, my state root is `state_root`."
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct CheckpointTarget {
    /// A multiple of the checkpoint interval.
    pub height: u64,
    /// The state root after executing that height.
    pub state_root: Hash,
}

impl Signable for CheckpointTarget {
    const DOMAIN: &'static [u8] = domain::CHECKPOINT;
}

/// Proof that more than two thirds of stake reached the same state at a height: a stable
/// checkpoint. Everything at or below it is settled and can be forgotten by consensus.
pub type CheckpointCertificate = Certificate<CheckpointTarget>;

/// Proof that more than two thirds of stake prepared one proposal for one height and view.
pub type PreparedCertificate = Certificate<VoteTarget>;

/// A validator's request to move to `round`, with what it knows that the next leader must
/// not lose: its latest stable checkpoint and every height above it it has prepared.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ViewChange {
    /// The round asked for.
    pub round: u64,
    /// The sender's latest stable checkpoint (height 0 is genesis, with no signatures).
    pub checkpoint: CheckpointCertificate,
    /// For each height above the checkpoint that the sender prepared, the certificate from
    /// the highest view, in increasing height order.
    pub prepared: Vec<PreparedCertificate>,
}

impl Signable for ViewChange {
    const DOMAIN: &'static [u8] = domain::VIEW_CHANGE;
}

/// The new round's first word, from its primary: the view changes it is built on and, for
/// every height from the highest checkpoint among them to the highest prepared height, the
/// proposal the round continues with. Anyone can recompute the list from the view changes,
/// and rejects a new view that does not match.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct NewView {
    /// The round that begins.
    pub round: u64,
    /// Signed view changes for `round` from more than two thirds of stake.
    pub view_changes: Vec<Signed<ViewChange>>,
    /// `(height, digest)` for each height re-proposed, in increasing height order.
    pub proposals: Vec<(u64, Hash)>,
}

impl Signable for NewView {
    const DOMAIN: &'static [u8] = domain::NEW_VIEW;
}

/// Everything one validator sends another about consensus.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Message {
    /// A leader's proposal for a height, with the leader's own prepare vote on it.
    PrePrepare {
        /// The proposal.
        proposal: Proposal,
        /// The leader's prepare vote on the proposal's digest.
        vote: Signed<VoteTarget>,
    },
    /// A prepare or commit vote.
    Vote(Signed<VoteTarget>),
    /// A checkpoint vote.
    Checkpoint(Signed<CheckpointTarget>),
    /// A stable checkpoint's proof, sent to a validator that is behind.
    CheckpointProof(CheckpointCertificate),
    /// A view change, with the bodies of the proposals it names.
    ViewChange {
        /// The signed view change.
        view_change: Signed<ViewChange>,
        /// One body per prepared certificate.
        bodies: Vec<Proposal>,
    },
    /// A new view, with the bodies of the proposals it names.
    NewView {
        /// The signed new view.
        new_view: Signed<NewView>,
        /// One body per re-proposed height.
        bodies: Vec<Proposal>,
    },
    /// "I see you in `round`; send me the new view that began it."
    FetchNewView {
        /// The round whose new view is wanted.
        round: u64,
    },
    /// "I see votes for this height and view but never got its pre-prepare; send it."
    FetchProposal {
        /// The height.
        height: u64,
        /// The view of the proposal.
        view: u64,
    },
}
