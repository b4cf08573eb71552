//! View change: leaving a round whose leader failed, and beginning the next with a new view.
//!
//! The rule ([`plan`]): from a quorum of view changes, for every height above the highest
//! stable checkpoint among them, up to the highest prepared height, the new round
//! re-proposes the proposal prepared in the highest view; where none was prepared, an empty
//! block fills the gap. A proposal committed anywhere was prepared by more than two thirds
//! of stake, so it is in at least one honest view change of any quorum, and no other
//! proposal was prepared for its height in a later view: the rule carries every committed
//! proposal into the new round. Prepared state is never dropped.
//!
//! Every body a view change or a new view carries passes the one body check
//! ([`Pbft::body_ok`]) before it is kept: a digest covers only a header, so a body swapped
//! under a certified header would otherwise be committed and executed.

use crate::block::Proposal;
use crate::certificate::{Phase, Signed};
use crate::crypto::{Address, Hash};

use super::super::io::{Record, Target};
use super::super::message::{
    CheckpointCertificate, Message, NewView, PreparedCertificate, ViewChange,
};
use super::{Mode, Pbft};

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

impl Pbft {
    /// Leaves the current round for `round`: forget this round's votes, tell everyone what
    /// must be carried forward. A node that does not vote keeps its timer running, so it
    /// goes on catching up.
    pub(super) fn start_view_change(&mut self, round: u64) {
        if !self.is_validator() {
            self.arm_view_timer();
            return;
        }
        if round < self.round || (round == self.round && self.mode == Mode::ViewChange) {
            return;
        }
        self.round = round;
        self.mode = Mode::ViewChange;
        self.round_began = false;
        self.failures = self.failures.saturating_add(1);
        self.pending_batch = None;
        for slot in self.slots.values_mut() {
            slot.leave_round();
        }
        let (prepared, bodies): (Vec<_>, Vec<_>) = self
            .slots
            .values()
            .filter_map(|s| s.prepared.clone())
            .unzip();
        let view_change = ViewChange {
            round,
            checkpoint: self.stable.clone(),
            prepared,
        };
        let Some(key) = self.cfg.key.as_ref() else {
            return;
        };
        let signed = Signed::sign(view_change, key, &self.cfg.chain_id);
        self.actions.persist.push(Record::ViewChange { round });
        self.view_changes
            .insert(signed.signer, (signed.clone(), bodies.clone()));
        self.send(
            Target::All,
            Message::ViewChange {
                view_change: signed,
                bodies,
            },
        );
        self.arm_view_timer();
        self.try_new_view();
    }

    /// A view timer ran out while changing view, with too few view changes to move on or
    /// with the round seen begun elsewhere: resend ours in case it was lost, and ask this
    /// round's primary for its new view in case that was lost instead.
    pub(super) fn retry_view_change(&mut self) {
        if let Some(me) = self.me {
            if let Some((view_change, bodies)) = self.view_changes.get(&me).cloned() {
                let message = Message::ViewChange {
                    view_change,
                    bodies,
                };
                self.send(Target::All, message);
            }
        }
        if let Some(primary) = self.primary(self.round).filter(|p| Some(*p) != self.me) {
            let round = self.round;
            self.send(Target::One(primary), Message::FetchNewView { round });
        }
        self.arm_view_timer();
    }

    /// Whether validators holding a quorum of stake have asked for `round` (with `exact`),
    /// or for `round` or later. A validator that already moved past a round still counts
    /// as having left the one before, which is what lets the others move on too.
    pub(super) fn has_view_change_quorum(&self, round: u64, exact: bool) -> bool {
        let Some(epoch) = self.epoch() else {
            return false;
        };
        let signers = self
            .view_changes
            .iter()
            .filter(|(_, (vc, _))| {
                vc.payload.round == round || (!exact && vc.payload.round > round)
            })
            .map(|(signer, _)| signer);
        epoch.validators.is_quorum(epoch.validators.weight(signers))
    }

    /// A view change, as sent by `from` (its signer, or a peer passing it on). Costly
    /// checks are charged to `from`: a peer can spend only its own allowance.
    pub(super) fn on_view_change(
        &mut self,
        from: Address,
        signed: Signed<ViewChange>,
        bodies: Vec<Proposal>,
    ) {
        let round = signed.payload.round;
        let signer = signed.signer;
        if !self.is_member(&signer) || !self.is_member(&from) {
            return;
        }
        let behind = round < self.round || (round == self.round && self.mode == Mode::Normal);
        if behind {
            self.help_behind(from, &signed);
            return;
        }
        // Nothing new from this validator, or the sender has used up what it may make
        // this node check in this period: a comparison, nothing more.
        if self
            .view_changes
            .get(&signer)
            .is_some_and(|(vc, _)| vc.payload.round >= round)
            || !self.checks.take(from, self.period())
            || !self.view_change_valid(&signed)
            || !self.bodies_ok(&signed.payload.prepared, &bodies)
        {
            return;
        }
        let checkpoint = signed.payload.checkpoint.clone();
        self.view_changes.insert(signer, (signed, bodies));
        if checkpoint.payload.height > self.low() {
            self.set_stable(checkpoint);
        }
        self.join_higher_round();
        self.try_new_view();
    }

    /// Each prepared certificate comes with the body its digest names, and every body
    /// passes the body check.
    fn bodies_ok(&mut self, prepared: &[PreparedCertificate], bodies: &[Proposal]) -> bool {
        prepared.len() == bodies.len()
            && prepared
                .iter()
                .zip(bodies)
                .all(|(c, b)| c.payload.digest == b.digest())
            && bodies.iter().all(|b| self.body_ok(b))
    }

    /// A validator asked for a round this node has left behind: give it the new view that
    /// began this round, and the latest checkpoint if it lags, within its allowance.
    fn help_behind(&mut self, to: Address, signed: &Signed<ViewChange>) {
        if signed.signer != to
            || !self.answers.take(to, self.period())
            || !signed.verify(&self.cfg.chain_id)
        {
            return;
        }
        if signed.payload.checkpoint.payload.height < self.low() {
            let proof = Message::CheckpointProof(self.stable.clone());
            self.send(Target::One(to), proof);
        }
        if let Some((new_view, bodies)) = self.new_view.clone() {
            self.send(Target::One(to), Message::NewView { new_view, bodies });
        }
    }

    /// A validator missed the new view that began this round: send it, within its
    /// allowance.
    pub(super) fn on_fetch_new_view(&mut self, from: Address, round: u64) {
        let Some((new_view, bodies)) = &self.new_view else {
            return;
        };
        if new_view.payload.round != round || !self.is_member(&from) {
            return;
        }
        let message = Message::NewView {
            new_view: new_view.clone(),
            bodies: bodies.clone(),
        };
        if self.answers.take(from, self.period()) {
            self.send(Target::One(from), message);
        }
    }

    /// More than a third of stake wants a higher round: at least one honest validator does,
    /// so follow to the lowest such round rather than wait for timers.
    fn join_higher_round(&mut self) {
        let Some(epoch) = self.epoch() else {
            return;
        };
        let higher: Vec<(&Address, u64)> = self
            .view_changes
            .iter()
            .map(|(signer, (vc, _))| (signer, vc.payload.round))
            .filter(|(_, round)| *round > self.round)
            .collect();
        if !epoch
            .validators
            .has_honest(epoch.validators.weight(higher.iter().map(|(s, _)| *s)))
        {
            return;
        }
        if let Some(lowest) = higher.iter().map(|(_, r)| *r).min() {
            self.start_view_change(lowest);
        }
    }

    /// A view change carries a valid signature, a valid checkpoint, and valid prepared
    /// certificates for distinct heights inside the window above that checkpoint.
    fn view_change_valid(&self, signed: &Signed<ViewChange>) -> bool {
        let vc = &signed.payload;
        let low = vc.checkpoint.payload.height;
        let top = low.saturating_add(2 * self.cfg.params.checkpoint_interval);
        let mut last = low;
        for certificate in &vc.prepared {
            let t = certificate.payload;
            if t.phase != Phase::Prepare || t.height <= last || t.height > top {
                return false;
            }
            match t.view.checked_sub(t.height) {
                Some(round) if round < vc.round => {}
                _ => return false,
            }
            last = t.height;
        }
        signed.verify(&self.cfg.chain_id)
            && self.checkpoint_valid(&vc.checkpoint)
            && vc.prepared.iter().all(|c| {
                self.validators_at(c.payload.height)
                    .is_some_and(|v| c.verify(&self.cfg.chain_id, v).is_ok())
            })
    }

    /// A view change this node already verified and keeps needs no second check (it is
    /// compared whole, signature included); any other is checked in full.
    fn view_change_known_or_valid(&self, signed: &Signed<ViewChange>) -> bool {
        self.view_changes
            .get(&signed.signer)
            .is_some_and(|(known, _)| known == signed)
            || self.view_change_valid(signed)
    }

    /// As the primary of the round being changed to, with a quorum of view changes, start
    /// the round.
    pub(super) fn try_new_view(&mut self) {
        if self.mode != Mode::ViewChange
            || self.primary(self.round) != self.me
            || !self.has_view_change_quorum(self.round, true)
        {
            return;
        }
        let Some(me) = self.me else { return };
        let round = self.round;
        let chosen: Vec<(Signed<ViewChange>, Vec<Proposal>)> = self
            .view_changes
            .values()
            .filter(|(vc, _)| vc.payload.round == round)
            .cloned()
            .collect();
        let payloads: Vec<&ViewChange> = chosen.iter().map(|(vc, _)| &vc.payload).collect();
        let Some(Plan { heights, .. }) = plan(&payloads) else {
            return;
        };
        let mut proposals = Vec::with_capacity(heights.len());
        let mut bodies = Vec::with_capacity(heights.len());
        for (height, digest) in heights {
            // Every kept view change's bodies passed the body check, so any body with the
            // planned digest carries exactly the certified transactions.
            let body = match digest {
                Some(digest) => chosen
                    .iter()
                    .flat_map(|(_, bodies)| bodies)
                    .find(|b| b.digest() == digest)
                    .cloned(),
                None => Some(Proposal::new(
                    height,
                    height.saturating_add(round),
                    self.now,
                    me,
                    Vec::new(),
                )),
            };
            let Some(body) = body else { return };
            proposals.push((height, body.digest()));
            bodies.push(body);
        }
        let new_view = NewView {
            round,
            view_changes: chosen.into_iter().map(|(vc, _)| vc).collect(),
            proposals,
        };
        let Some(key) = self.cfg.key.as_ref() else {
            return;
        };
        let signed = Signed::sign(new_view, key, &self.cfg.chain_id);
        self.send(
            Target::All,
            Message::NewView {
                new_view: signed.clone(),
                bodies: bodies.clone(),
            },
        );
        self.enter_round(signed, bodies);
    }

    /// A new view, as sent by `from` (the primary, or a peer passing it on). Costly checks
    /// are charged to `from`.
    pub(super) fn on_new_view(
        &mut self,
        from: Address,
        signed: Signed<NewView>,
        bodies: Vec<Proposal>,
    ) {
        let round = signed.payload.round;
        if round < self.round || (round == self.round && self.mode == Mode::Normal) {
            return;
        }
        // Only the round's primary signs its new view.
        if self.primary(round) != Some(signed.signer)
            || !self.is_member(&from)
            || !self.checks.take(from, self.period())
        {
            return;
        }
        if self.new_view_valid(&signed, &bodies) {
            self.enter_round(signed, bodies);
        }
    }

    /// Checks a new view completely: the primary's signature, a quorum of distinct valid view
    /// changes for its round, a proposal list equal to the one recomputed from them, and
    /// every body (its digest, and the body check).
    fn new_view_valid(&mut self, signed: &Signed<NewView>, bodies: &[Proposal]) -> bool {
        let nv = &signed.payload;
        let (Some(primary), Some(epoch)) = (self.primary(nv.round), self.epoch()) else {
            return false;
        };
        if signed.signer != primary
            || bodies.len() != nv.proposals.len()
            || nv
                .view_changes
                .windows(2)
                .any(|w| w[0].signer >= w[1].signer)
            || nv
                .view_changes
                .iter()
                .any(|vc| vc.payload.round != nv.round)
            || !epoch.validators.is_quorum(
                epoch
                    .validators
                    .weight(nv.view_changes.iter().map(|vc| &vc.signer)),
            )
            || !signed.verify(&self.cfg.chain_id)
            || !nv
                .view_changes
                .iter()
                .all(|vc| self.view_change_known_or_valid(vc))
        {
            return false;
        }
        let payloads: Vec<&ViewChange> = nv.view_changes.iter().map(|vc| &vc.payload).collect();
        let Some(plan) = plan(&payloads) else {
            return false;
        };
        let now = self.now;
        let matches_plan = plan.heights.len() == nv.proposals.len()
            && plan.heights.iter().zip(&nv.proposals).zip(bodies).all(
                |(((height, expected), (h, digest)), body)| {
                    let view = height.saturating_add(nv.round);
                    height == h
                        && body.digest() == *digest
                        && match expected {
                            Some(expected) => expected == digest,
                            None => {
                                is_gap_filler(body, *height, view, &primary)
                                    && body.header.timestamp_ms
                                        <= now.saturating_add(super::normal::MAX_CLOCK_AHEAD_MS)
                            }
                        }
                },
            );
        matches_plan && bodies.iter().all(|b| self.body_ok(b))
    }

    /// Moves this node into `round`, working normally: what every way of beginning a round
    /// (its new view, or a block committed in it) shares. Votes and proposals that arrived
    /// for this round before are kept; those of a lower round are left.
    pub(super) fn begin_round(&mut self, round: u64) {
        if round != self.round {
            for slot in self.slots.values_mut() {
                slot.leave_round();
            }
        }
        self.round = round;
        self.mode = Mode::Normal;
        self.pending_batch = None;
        self.view_changes
            .retain(|_, (vc, _)| vc.payload.round > round);
        self.early
            .retain(|_, (_, _, v)| v.payload.view.checked_sub(v.payload.height) == Some(round));
    }

    /// Begins the round a valid new view starts: adopt its checkpoint, take its proposals
    /// and prepare them.
    fn enter_round(&mut self, signed: Signed<NewView>, bodies: Vec<Proposal>) {
        let nv = &signed.payload;
        let round = nv.round;
        let payloads: Vec<&ViewChange> = nv.view_changes.iter().map(|vc| &vc.payload).collect();
        let checkpoint = plan(&payloads).map(|p| p.checkpoint.clone());
        self.begin_round(round);
        if let Some(checkpoint) = checkpoint {
            self.set_stable(checkpoint);
        }
        self.proposed_to = self.committed.max(self.low());
        self.last_proposal_at = self.now;
        for ((height, digest), body) in nv.proposals.clone().into_iter().zip(bodies.clone()) {
            if self.in_window(height) {
                self.accept_proposal(height, digest, body);
            }
        }
        self.new_view = Some((signed, bodies));
        self.arm_view_timer();
        let proposed: Vec<(u64, Hash)> = self
            .slots
            .iter()
            .filter_map(|(height, s)| s.proposal.as_ref().map(|(d, _)| (*height, *d)))
            .collect();
        for (height, digest) in proposed {
            self.proposed_to = self.proposed_to.max(height);
            self.cast(Phase::Prepare, height, height.saturating_add(round), digest);
            self.advance(height);
        }
    }
}
