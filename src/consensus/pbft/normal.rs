//! The normal case: a leader's pre-prepare, prepare and commit votes, blocks handed out in
//! order, and proposing. Also the fetch of a pre-prepare this node missed.

use std::collections::HashSet;

use crate::block::{Block, Proposal};
use crate::certificate::{Certificate, CommitCertificate, Phase, Signed, VoteTarget};
use crate::crypto::{Address, Hash};
use crate::tx::Transaction;

use super::super::io::{BatchRequest, Record, Target, TimerKind};
use super::super::message::Message;
use super::super::votes::Tally;
use super::{Mode, Pbft};

/// How far ahead of this node's clock a proposal's timestamp may be. A leader's clock may
/// run ahead of its peers' by this much; a stamp beyond it is refused.
pub const MAX_CLOCK_AHEAD_MS: u64 = 5_000;

/// The least time between a block's stamp and the proposal of the block above it, when
/// nothing is in flight. Every block costs each validator the same fixed work (two signed
/// and fsynced votes, six votes checked, a stored block) however few transactions it
/// carries; at a few thousand transactions a second, blocks sent as fast as the previous
/// one commits (about 10 ms apart on a 2-core machine) spend most of the CPU on that work.
/// Waiting this long lets a block gather what arrives meanwhile, so at such loads each
/// transaction commits sooner (the README's performance section has the figures); at light
/// load it costs a transaction at most this much.
pub const MIN_BLOCK_GAP_MS: u64 = 15;

/// How many peers are asked for a proposal this node missed, per height and round.
const PROPOSAL_ASKS: u8 = 3;

impl Pbft {
    pub(super) fn on_pre_prepare(
        &mut self,
        from: Address,
        proposal: Proposal,
        vote: Signed<VoteTarget>,
    ) {
        let t = vote.payload;
        let height = t.height;
        if t.phase != Phase::Prepare {
            return;
        }
        if !self.in_window(height) {
            self.keep_early(from, proposal, vote);
            return;
        }
        let Some(leader) = self.leader_at(height, t.view) else {
            // Its leader is known once the block below is: kept until then if a validator
            // of this round signed it (within the sender's allowance of checks).
            let period = self.period();
            if self.is_member(&vote.signer)
                && self.is_member(&from)
                && self.in_current_round(from, &vote)
                && self.checks.allows(&from, period)
            {
                if vote.verify(&self.cfg.chain_id) {
                    self.keep_early(from, proposal, vote);
                } else {
                    self.checks.take(from, period);
                }
            }
            return;
        };
        if vote.signer != leader || !self.is_member(&from) || !self.in_current_round(from, &vote) {
            return;
        }
        let header = &proposal.header;
        if header.height != height
            || header.view != t.view
            || header.proposer != leader
            || proposal.digest() != t.digest
            || !self.timestamp_ok(height, header.timestamp_ms)
        {
            return;
        }
        if self
            .slots
            .get(&height)
            .is_some_and(|s| s.proposal.is_some())
        {
            return;
        }
        // A peer whose pre-prepares keep failing the body check may not make this node
        // check more of them in this period (charged to the sender, not the leader: a
        // peer that passes on a leader's header with another body spends its own).
        let period = self.period();
        if !self.checks.allows(&from, period) || !vote.verify(&self.cfg.chain_id) {
            return;
        }
        if !self.body_ok(&proposal) {
            self.checks.take(from, period);
            return;
        }
        self.accept_proposal(height, t.digest, proposal);
        let slot = self.slots.entry(height).or_default();
        slot.prepares.add(leader, t.digest, vote.signature);
        // While waiting for the new view of this round, keep the proposal; act on it once
        // the round begins.
        if self.mode == Mode::Normal {
            self.cast(Phase::Prepare, height, t.view, t.digest);
            self.advance(height);
        }
    }

    /// The timestamp the proposal below `height` carries, where this node knows it.
    fn previous_timestamp(&self, height: u64) -> Option<u64> {
        let below = height.checked_sub(1)?;
        if below == self.committed {
            return Some(self.last_timestamp);
        }
        let slot = self.slots.get(&below)?;
        slot.proposal
            .as_ref()
            .map(|(_, p)| p)
            .or(slot.committed.as_ref().map(|(_, p)| p))
            .map(|p| p.header.timestamp_ms)
    }

    /// A proposal's time must come after the block below it (where known) and not run
    /// ahead of this node's clock by more than [`MAX_CLOCK_AHEAD_MS`]. Safety never rests
    /// on it: it keeps block times meaningful.
    pub(super) fn timestamp_ok(&self, height: u64, timestamp_ms: u64) -> bool {
        timestamp_ms <= self.now.saturating_add(MAX_CLOCK_AHEAD_MS)
            && self
                .previous_timestamp(height)
                .is_none_or(|previous| timestamp_ms > previous)
    }

    /// Takes `proposal` as this round's for `height`.
    pub(super) fn accept_proposal(&mut self, height: u64, digest: Hash, proposal: Proposal) {
        self.slots.entry(height).or_default().proposal = Some((digest, proposal));
        if height > self.proposed_to {
            self.proposed_to = height;
            self.last_proposal_at = self.now;
        }
    }

    /// Signs and sends this node's prepare vote (a commit vote goes through `advance`).
    pub(super) fn cast(&mut self, phase: Phase, height: u64, view: u64, digest: Hash) {
        let target = VoteTarget {
            phase,
            height,
            view,
            digest,
        };
        if let Some(vote) = self.sign_vote(target) {
            let slot = self.slots.entry(height).or_default();
            slot.prepares.add(vote.signer, digest, vote.signature);
            self.actions.persist.push(Record::Prepared(vote.clone()));
            self.send(Target::All, Message::Vote(vote));
        }
    }

    pub(super) fn on_vote(&mut self, from: Address, vote: Signed<VoteTarget>) {
        let t = vote.payload;
        // Votes for heights this node already committed still count: its own votes there
        // may be what a lagging validator needs to complete a quorum. Votes for a round
        // whose new view has not arrived yet are kept for when it does.
        if !self.in_window(t.height) || !self.is_member(&vote.signer) {
            return;
        }
        if !self.in_current_round(from, &vote) {
            return;
        }
        let tally = self.slots.entry(t.height).or_default().tally(t.phase);
        if tally.has(&vote.signer) || !vote.verify(&self.cfg.chain_id) {
            return;
        }
        tally.add(vote.signer, t.digest, vote.signature);
        if self.mode == Mode::Normal {
            self.ask_for_missing_proposal(from, t);
            self.advance(t.height);
        }
    }

    /// Votes from more than a third of stake (so from an honest validator) for a proposal
    /// this node never received: its pre-prepare was lost. Ask the voter for it, rather
    /// than let the height wait for a view change (once its leader is known: an answer
    /// before that could not be checked).
    fn ask_for_missing_proposal(&mut self, from: Address, t: VoteTarget) {
        // Runs for every vote: the cheap checks first, and no copy of the validator set.
        let (Some(slot), Some(epoch)) = (self.slots.get(&t.height), self.epoch()) else {
            return;
        };
        if slot.proposal.is_some()
            || slot.asked >= PROPOSAL_ASKS
            || !epoch
                .validators
                .has_honest(slot.votes(t.phase).weight(&t.digest, &epoch.validators))
            || self.leader_at(t.height, t.view).is_none()
        {
            return;
        }
        if let Some(slot) = self.slots.get_mut(&t.height) {
            slot.asked += 1;
        }
        let (height, view) = (t.height, t.view);
        self.send(Target::One(from), Message::FetchProposal { height, view });
    }

    /// A pre-prepare this node cannot check yet: just above the window (its leader made the
    /// checkpoint below stable a moment before this node did), or among a round's first
    /// fresh heights, whose leader this node knows only once it has committed the block
    /// below (see `leader_at`). Kept (the first per height, at most `window` of them, of
    /// the current round, from the height's leader where that is known) until it can be
    /// checked, when it goes through every check; otherwise its height would wait out a
    /// view change.
    fn keep_early(&mut self, from: Address, proposal: Proposal, vote: Signed<VoteTarget>) {
        let t = vote.payload;
        let next_top = self
            .window_top()
            .saturating_add(2 * self.cfg.params.checkpoint_interval);
        if t.height <= self.low()
            || t.height > next_top
            || t.view.checked_sub(t.height) != Some(self.round)
            || self.early.len() as u64 >= self.cfg.params.window
            || self.early.contains_key(&t.height)
            || self
                .leader_at(t.height, t.view)
                .is_some_and(|leader| leader != vote.signer)
        {
            return;
        }
        self.early.insert(t.height, (from, proposal, vote));
    }

    /// Hands the kept pre-prepares that can now be checked (in the window, leader known) to
    /// the normal path, and forgets those below the window.
    pub(super) fn replay_early(&mut self) {
        let low = self.low();
        self.early = self.early.split_off(&(low + 1));
        let top = self.window_top();
        let ready: Vec<u64> = self
            .early
            .range(..=top)
            .filter(|(h, (_, _, vote))| self.leader_at(**h, vote.payload.view).is_some())
            .map(|(h, _)| *h)
            .collect();
        for height in ready {
            if let Some((from, proposal, vote)) = self.early.remove(&height) {
                self.on_pre_prepare(from, proposal, vote);
            }
        }
    }

    /// A validator missed a pre-prepare this node holds: send it again, with the leader's
    /// signed vote, within the validator's allowance.
    pub(super) fn on_fetch_proposal(&mut self, from: Address, height: u64, view: u64) {
        if !self.is_member(&from) {
            return;
        }
        let Some(slot) = self.slots.get(&height) else {
            return;
        };
        let Some((digest, proposal)) = slot.proposal.as_ref() else {
            return;
        };
        // The proposer this node accepted; the asker checks it is the leader.
        let leader = proposal.header.proposer;
        let Some(signature) = slot.prepares.signature_of(&leader, digest) else {
            return;
        };
        if proposal.header.view != view || !self.answers.take(from, self.period()) {
            return;
        }
        let vote = Signed {
            payload: VoteTarget {
                phase: Phase::Prepare,
                height,
                view,
                digest: *digest,
            },
            signer: leader,
            signature,
        };
        let proposal = proposal.clone();
        self.send(Target::One(from), Message::PrePrepare { proposal, vote });
    }

    /// Moves a height forward: prepared (then commit), committed (then deliver in order).
    pub(super) fn advance(&mut self, height: u64) {
        if self.mode != Mode::Normal {
            return;
        }
        let Some(validators) = self.epoch().map(|e| e.validators.clone()) else {
            return;
        };
        let view = height.saturating_add(self.round);
        let Some(slot) = self.slots.get(&height) else {
            return;
        };
        // Called at every vote: the body is copied only when a certificate forms.
        let Some((digest, proposal)) = slot.proposal.as_ref() else {
            return;
        };
        let digest = *digest;
        let quorum = |tally: &Tally| validators.is_quorum(tally.weight(&digest, &validators));
        let prepared_here = slot
            .prepared
            .as_ref()
            .is_some_and(|(c, _)| c.payload.view == view);
        if !prepared_here && quorum(&slot.prepares) {
            let proposal = proposal.clone();
            let target = VoteTarget {
                phase: Phase::Prepare,
                height,
                view,
                digest,
            };
            let certificate = Certificate::new(target, slot.prepares.signatures(&digest));
            let commit = self.sign_vote(VoteTarget {
                phase: Phase::Commit,
                ..target
            });
            let slot = self.slots.entry(height).or_default();
            slot.prepared = Some((certificate.clone(), proposal.clone()));
            if let Some(vote) = commit {
                slot.commits.add(vote.signer, digest, vote.signature);
                self.actions.persist.push(Record::Committed {
                    vote: vote.clone(),
                    certificate,
                    proposal,
                });
                self.send(Target::All, Message::Vote(vote));
            }
        }
        let slot = self.slots.entry(height).or_default();
        // A commit quorum alone proves more than two thirds prepared, so it is enough.
        if slot.committed.is_none() && quorum(&slot.commits) {
            let Some((_, proposal)) = slot.proposal.clone() else {
                return;
            };
            let target = VoteTarget {
                phase: Phase::Commit,
                height,
                view,
                digest,
            };
            slot.committed = Some((
                Certificate::new(target, slot.commits.signatures(&digest)),
                proposal,
            ));
            self.deliver();
        }
    }

    /// Hands out every committed block whose predecessors are all out, in height order;
    /// then pre-prepares kept for want of their leader are checked if it is known now.
    pub(super) fn deliver(&mut self) {
        while let Some((certificate, proposal)) = self
            .slots
            .get(&(self.committed + 1))
            .and_then(|s| s.committed.clone())
        {
            self.hand_out(Block::new(proposal, self.last_hash), certificate);
        }
        if !self.early.is_empty() {
            self.replay_early();
        }
    }

    pub(super) fn hand_out(&mut self, block: Block, certificate: CommitCertificate) {
        let height = block.height();
        let validators = self
            .epochs
            .get(&self.epoch_of(height))
            .map(|e| &e.validators);
        self.blames.record(
            height,
            block.header.proposal.view,
            validators,
            self.cfg.params.checkpoint_interval,
        );
        self.committed = height;
        self.last_hash = block.hash();
        self.last_timestamp = block.header.proposal.timestamp_ms;
        self.proposed_to = self.proposed_to.max(self.committed);
        self.actions.commits.push((block, certificate));
        self.failures = 0;
        if self.mode == Mode::Normal {
            self.arm_view_timer();
        }
    }

    // ----- proposing -------------------------------------------------------------------

    pub(super) fn maybe_propose(&mut self) {
        if self.mode != Mode::Normal || !self.is_validator() {
            return;
        }
        let height = self.proposed_to + 1;
        let view = height.saturating_add(self.round);
        if self.pending_batch.is_some()
            || !self.in_window(height)
            || height > self.committed.saturating_add(self.cfg.params.window)
            || self.leader_at(height, view) != self.me
            || self.voted.contains_key(&(Phase::Prepare, height, view))
        {
            return;
        }
        // With nothing in flight, a proposal goes as soon as transactions wait and the
        // block below is MIN_BLOCK_GAP_MS old (never more than that from now, whatever the
        // stamp of the block below says); with proposals in flight, at once if a full block
        // waits beyond them, else a block interval after the last one (batching).
        let in_flight = self.proposed_to > self.committed;
        let due = if in_flight && self.full_block_waits() {
            self.now
        } else if in_flight {
            self.last_proposal_at
                .saturating_add(self.cfg.params.block_interval_ms)
        } else {
            self.previous_timestamp(height)
                .map_or(self.now, |t| t.saturating_add(MIN_BLOCK_GAP_MS))
                .clamp(self.now, self.now.saturating_add(MIN_BLOCK_GAP_MS))
        }
        .max(self.next_poll_at);
        if self.now < due {
            if self.propose_due != Some(due) {
                self.propose_due = Some(due);
                self.set_timer(TimerKind::Propose, due - self.now);
            }
            return;
        }
        self.pending_batch = Some((height, self.round));
        let exclude = self
            .in_flight()
            .flat_map(|p| p.txs.iter().map(Transaction::hash))
            .collect();
        let committed = self
            .slots
            .range(..=self.committed)
            .filter_map(|(_, s)| s.committed.as_ref().map(|(_, p)| p))
            .flat_map(|p| p.txs.iter().map(Transaction::hash))
            .collect();
        self.actions.batch_request = Some(BatchRequest {
            height,
            max_txs: self.cfg.params.max_block_txs as usize,
            exclude,
            committed,
        });
    }

    /// Whether the mempool, at its last word, held a full block beyond the transactions of
    /// the proposals in flight. Under a backlog the leader then fills the window with full
    /// blocks instead of one per block interval, which would cap throughput at
    /// `max_block_txs` per interval once rounds take longer than that. A stale count costs
    /// only a block proposed before it is full.
    fn full_block_waits(&self) -> bool {
        let in_flight: usize = self.in_flight().map(|p| p.txs.len()).sum();
        let max = self.cfg.params.max_block_txs as usize;
        self.mempool_pending >= in_flight.saturating_add(max)
    }

    /// The proposals held for heights above the committed one: the blocks in flight.
    fn in_flight(&self) -> impl Iterator<Item = &Proposal> {
        self.slots
            .range(self.committed + 1..)
            .filter_map(|(_, s)| s.proposal.as_ref().map(|(_, p)| p))
    }

    pub(super) fn on_batch(&mut self, height: u64, mut txs: Vec<Transaction>) {
        if self.pending_batch != Some((height, self.round)) {
            return;
        }
        self.pending_batch = None;
        let view = height.saturating_add(self.round);
        let Some(me) = self.me else { return };
        if self.mode != Mode::Normal
            || self.leader_at(height, view) != Some(me)
            || !self.in_window(height)
            || self
                .slots
                .get(&height)
                .is_some_and(|s| s.proposal.is_some())
        {
            return;
        }
        // A block with a transaction twice is invalid: keep the first of each.
        let mut seen = HashSet::new();
        txs.retain(|tx| seen.insert(tx.hash()));
        txs.truncate(self.cfg.params.max_block_txs as usize);
        let previous = self.previous_timestamp(height);
        if txs.is_empty() {
            // Nothing waits: an empty block only once the idle interval is up; until then
            // the mempool is asked again every block interval (at least every millisecond).
            let idle_due = previous.map_or(self.now, |t| {
                t.saturating_add(self.cfg.params.idle_block_interval_ms)
            });
            if self.now < idle_due {
                let poll = self.cfg.params.block_interval_ms.max(1);
                self.next_poll_at = self.now.saturating_add(poll).min(idle_due);
                self.maybe_propose();
                return;
            }
        }
        let after = previous.unwrap_or(0).saturating_add(1);
        let proposal = Proposal::new(height, view, self.now.max(after), me, txs);
        let digest = proposal.digest();
        let Some(vote) = self.sign_vote(VoteTarget {
            phase: Phase::Prepare,
            height,
            view,
            digest,
        }) else {
            return;
        };
        // The batch came from this node's own mempool, which verified every signature.
        self.verified.insert(digest, height);
        self.actions.persist.push(Record::Prepared(vote.clone()));
        self.accept_proposal(height, digest, proposal.clone());
        self.slots
            .entry(height)
            .or_default()
            .prepares
            .add(me, digest, vote.signature);
        self.send(Target::All, Message::PrePrepare { proposal, vote });
        self.advance(height);
    }
}
