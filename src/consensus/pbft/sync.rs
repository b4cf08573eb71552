//! Catch-up: a node that is behind fetches committed blocks with their commit certificates,
//! checks each against the validators of its height and its body against its header, and
//! hands them out in order. Replies may come in any order and in pieces; a bounded window
//! of them waits here for the heights below to arrive.

use crate::block::Block;
use crate::certificate::CommitCertificate;
use crate::crypto::Address;

use super::{Mode, Pbft};

/// Most fetched blocks kept above the committed height, waiting for the ones below.
pub const SYNC_BUFFER: u64 = 128;

/// What a fetched block at the next height turned out to be.
enum Fetched {
    /// Proven and well formed: hand it out.
    Valid,
    /// Its epoch's validators are not known until execution catches up: wait.
    Unknown,
    /// Wrong: drop it.
    Invalid,
}

impl Pbft {
    /// On a view timer: resend this node's checkpoint votes, let validators in higher rounds
    /// be asked again for their new view, and if this node is behind rather than the network
    /// stuck, fetch blocks instead of changing view.
    pub(super) fn catch_up(&mut self) -> bool {
        self.resend_checkpoint_votes();
        self.asked.clear();
        let target = self.ahead_height().unwrap_or(0).max(self.low());
        if target > self.committed {
            self.request_sync(target);
            return true;
        }
        false
    }

    /// A node that does not vote (no key, or a key in no validator set: never staked, or
    /// unstaked and gone at an epoch boundary) asks peers for the blocks above its height.
    /// Called on each of its view timers, which never stop, and at start.
    ///
    /// Such a node hears the chain only from what validators send it: pre-prepares and
    /// votes of the round it is in, checkpoint votes, view changes and new views. It cannot
    /// ask for any of them again (validators answer members only), and after a restart or a
    /// missed new view its round need not be theirs, so none may ever come that it can use.
    /// Committed blocks with their certificates are what any peer serves, and the one
    /// thing it needs: each is checked against the validators of its height.
    pub(super) fn follow(&mut self) {
        self.request_sync(self.committed.saturating_add(SYNC_BUFFER));
    }

    /// Asks the host for the blocks from the next height up to `to`.
    pub(super) fn request_sync(&mut self, to: u64) {
        self.sync_to = self.sync_to.max(to);
        self.actions.sync_request = Some((self.committed + 1, self.sync_to));
    }

    /// A reply from `from`: kept only while this node is catching up, within the buffer,
    /// and from a peer that has not sent too many wrong blocks this period; a block already
    /// held for a height is not replaced.
    pub(super) fn on_synced(&mut self, from: Address, blocks: Vec<(Block, CommitCertificate)>) {
        if !self.refusals.allows(&from, self.period()) {
            return;
        }
        let top = self.committed.saturating_add(SYNC_BUFFER).min(self.sync_to);
        for (block, certificate) in blocks {
            let height = block.height();
            if height > self.committed && height <= top {
                self.fetched
                    .entry(height)
                    .or_insert((from, block, certificate));
            }
        }
        self.feed_fetched();
    }

    /// Hands out fetched blocks in height order while they check out. A wrong block is
    /// dropped and charged to the peer that sent it, with everything else that peer sent;
    /// the missing part is asked for again (the host asks another peer). Once everything
    /// fetched is out, the next part is asked for.
    pub(super) fn feed_fetched(&mut self) {
        let before = self.committed;
        let mut refused = false;
        while let Some((from, block, certificate)) = self.fetched.remove(&(self.committed + 1)) {
            match self.check_fetched(&block, &certificate) {
                Fetched::Valid => {
                    self.join_round_of(&block);
                    self.hand_out(block, certificate);
                    self.deliver();
                }
                Fetched::Unknown => {
                    self.fetched
                        .insert(block.height(), (from, block, certificate));
                    break;
                }
                Fetched::Invalid => {
                    self.refusals.take(from, self.period());
                    self.fetched.retain(|_, (sender, _, _)| *sender != from);
                    refused = true;
                }
            }
        }
        self.fetched = self.fetched.split_off(&(self.committed + 1));
        // Ask for more when this made progress or refused a block, unless the next block is
        // here already (waiting for execution to catch up).
        let progressed = self.committed > before;
        let next_held = self.fetched.contains_key(&(self.committed + 1));
        if self.committed < self.sync_to && (progressed || refused) && !next_held {
            self.request_sync(self.sync_to);
        }
    }

    /// A fetched block committed in a round above this node's proves that a quorum began
    /// that round. A node that missed the round's new view (it restarted, or was away, and
    /// a new view from far below its stable checkpoint no longer checks out) joins the round
    /// here instead of waiting for the next view change.
    ///
    /// Safety without the new view: it does not know which proposals the round took over,
    /// but every one lies at most two checkpoint intervals above the round's checkpoint,
    /// and the round's checkpoint is below every height committed in the round, this block
    /// included. So the node votes in the joined round only from two intervals above this
    /// block's height: never on a height the new view decided. (Below that it only follows
    /// the chain by catch-up, as before.)
    fn join_round_of(&mut self, block: &Block) {
        let height = block.height();
        let Some(round) = block.header.proposal.view.checked_sub(height) else {
            return;
        };
        if round < self.round || (round == self.round && self.mode == Mode::Normal) {
            return;
        }
        self.begin_round(round);
        let floor = height.saturating_add(2 * self.cfg.params.checkpoint_interval + 1);
        self.joined = Some((round, floor));
        self.proposed_to = self.committed.max(self.low());
        self.last_proposal_at = self.now;
        self.arm_view_timer();
    }

    fn check_fetched(&mut self, block: &Block, certificate: &CommitCertificate) -> Fetched {
        let height = block.height();
        if block.header.prev != self.last_hash || !block.committed_by(certificate) {
            return Fetched::Invalid;
        }
        let Some(validators) = self.validators_at(height) else {
            return if self.executed < self.committed {
                Fetched::Unknown
            } else {
                Fetched::Invalid
            };
        };
        let max_txs = self.cfg.params.max_block_txs as usize;
        if certificate.verify(&self.cfg.chain_id, validators).is_err()
            || block
                .check_body(&self.cfg.chain_id, max_txs, &self.cfg.verified)
                .is_err()
        {
            return Fetched::Invalid;
        }
        Fetched::Valid
    }
}
