//! The view-change rule: from a quorum of view changes, what a new round must continue with.
//!
//! For every height above the highest stable checkpoint among the view changes, up to the
//! highest prepared height, the new round re-proposes the proposal prepared in the highest
//! view; where none was prepared, an empty block fills the gap. A proposal committed anywhere
//! was prepared by more than two thirds of stake, so it is in at least one honest view change
//! of any quorum, and no other proposal was prepared for its height in a later view: the
//! rule carries every committed proposal into the new round. Prepared state is never dropped.

use crate::block::Proposal;
use crate::crypto::{Address, Hash};

use super::message::{CheckpointCertificate, ViewChange};

/// What a new round continues with, derived from a quorum of view changes.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan<'a> {
    /// The highest stable checkpoint among the view changes: the new low watermark.
    pub checkpoint: &'a CheckpointCertificate,
    /// Each height above it up to the highest prepared one, with the digest to re-propose,
    /// or `None` where an empty block fills the gap.
    pub heights: Vec<(u64, Option<Hash>)>,
}

/// The plan for a new round, from view changes that have already been verified.
/// `None` if there are no view changes.
pub fn plan<'a>(view_changes: &[&'a ViewChange]) -> Option<Plan<'a>> {
    let checkpoint = &view_changes
        .iter()
        .max_by_key(|vc| vc.checkpoint.payload.height)?
        .checkpoint;
    let low = checkpoint.payload.height;
    let high = view_changes
        .iter()
        .flat_map(|vc| vc.prepared.iter().map(|p| p.payload.height))
        .max()
        .unwrap_or(low)
        .max(low);
    let heights = (low + 1..=high)
        .map(|height| {
            let best = view_changes
                .iter()
                .flat_map(|vc| vc.prepared.iter())
                .filter(|p| p.payload.height == height)
                .max_by_key(|p| p.payload.view)
                .map(|p| p.payload.digest);
            (height, best)
        })
        .collect();
    Some(Plan {
        checkpoint,
        heights,
    })
}

/// Whether `proposal` is a well-formed gap filler for `height` in the view `view`, made by
/// the new round's primary: no transactions, and its header names exactly that.
pub fn is_gap_filler(proposal: &Proposal, height: u64, view: u64, primary: &Address) -> bool {
    let empty = Proposal::new(
        height,
        view,
        proposal.header.timestamp_ms,
        *primary,
        Vec::new(),
    );
    *proposal == empty
}
