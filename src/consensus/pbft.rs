//! The pBFT state machine: one plain struct, driven by [`Pbft::step`].

use std::collections::BTreeMap;

use crate::block::{Block, Proposal};
use crate::certificate::{Certificate, CommitCertificate, Phase, Signed, VoteTarget};
use crate::crypto::{Address, Hash, Keypair};
use crate::genesis::ConsensusParams;
use crate::validators::ValidatorSet;

use super::io::{Actions, BatchRequest, Input, Record, Restored, Target, Timer, TimerKind};
use super::leader::LeaderSchedule;
use super::message::{
    CheckpointCertificate, CheckpointTarget, Message, NewView, PreparedCertificate, ViewChange,
};
use super::view_change::{self, Plan};
use super::votes::Tally;

/// Longest a view timer doubles to: 2^6 times the base timeout.
const MAX_BACKOFF: u32 = 6;

/// Checkpoint votes kept per validator above the window: enough to see where the network
/// is, too few to fill memory.
const AHEAD_VOTES: usize = 4;

/// What the core needs to know about the chain and itself; fixed for its lifetime.
#[derive(Clone, Debug)]
pub struct Config {
    /// The chain id every signature covers.
    pub chain_id: String,
    /// This validator's key; `None` for a node that follows without voting.
    pub key: Option<Keypair>,
    /// Timing and limits from genesis.
    pub params: ConsensusParams,
    /// Blocks per epoch, from genesis.
    pub epoch_length: u64,
    /// The state root at height 0: the checkpoint every node starts from.
    pub genesis_state_root: Hash,
}

/// Whether the node is working in its round or trying to leave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Proposing and voting in `round`.
    Normal,
    /// Asked to move to `round`; waiting for its new view.
    ViewChange,
}

/// What the core holds for one height above the low watermark.
#[derive(Clone, Debug, Default)]
struct Slot {
    /// The proposal accepted for this height in the current round, and its digest.
    proposal: Option<(Hash, Proposal)>,
    /// Prepare votes in the current round.
    prepares: Tally,
    /// Commit votes in the current round.
    commits: Tally,
    /// The highest-view prepared certificate held, with its proposal: what a view change
    /// must carry forward.
    prepared: Option<(PreparedCertificate, Proposal)>,
    /// The commit certificate once collected; the block waits here until every lower height
    /// has committed.
    committed: Option<(CommitCertificate, Proposal)>,
}

impl Slot {
    /// The votes of one phase.
    fn tally(&mut self, phase: Phase) -> &mut Tally {
        match phase {
            Phase::Prepare => &mut self.prepares,
            Phase::Commit => &mut self.commits,
        }
    }
}

/// The validator set of an epoch and its leader rotation.
#[derive(Clone, Debug)]
struct Epoch {
    validators: ValidatorSet,
    leaders: LeaderSchedule,
}

/// A pure, stake-weighted, pipelined pBFT core.
///
/// Feed it inputs with [`Pbft::step`]; carry out the [`Actions`] it returns in the order
/// their documentation gives. It never reads a clock (time comes with each step), never
/// touches a socket or a disk, and is deterministic: the same inputs give the same outputs.
///
/// Heights are pBFT's sequence numbers. Several are in flight at once, between the low
/// watermark (the last stable checkpoint) and the window's top; blocks are handed out for
/// execution strictly in order. The view of height `n` in round `r` is `n + r`: the view,
/// and with it the leader, advances after every block and on every view change.
#[derive(Debug)]
pub struct Pbft {
    cfg: Config,
    me: Option<Address>,
    /// The round (pBFT's view number): changes only by a view change.
    round: u64,
    mode: Mode,
    /// View changes since the last committed block: the view timer doubles with each.
    failures: u32,
    /// The latest stable checkpoint: the low watermark.
    stable: CheckpointCertificate,
    /// The height of the last block handed out for execution.
    committed: u64,
    /// Its hash.
    last_hash: Hash,
    /// Validator sets by epoch.
    epochs: BTreeMap<u64, Epoch>,
    /// Heights above the low watermark.
    slots: BTreeMap<u64, Slot>,
    /// The highest height with a proposal in the current round (or committed).
    proposed_to: u64,
    /// When that proposal was accepted: the next leader waits a block interval after it.
    last_proposal_at: u64,
    /// The height (and round) a batch was requested for.
    pending_batch: Option<(u64, u64)>,
    /// When the propose timer is due, if set.
    propose_due: Option<u64>,
    /// Checkpoint votes by height: signer to (state root, signature).
    checkpoints: BTreeMap<u64, BTreeMap<Address, (Hash, crate::crypto::Signature)>>,
    /// The latest verified view change of each validator, with its bodies.
    view_changes: BTreeMap<Address, (Signed<ViewChange>, Vec<Proposal>)>,
    /// The new view that began the current round, to hand to validators that missed it.
    new_view: Option<(Signed<NewView>, Vec<Proposal>)>,
    /// Every vote this node signed above the low watermark: never two digests for a slot.
    voted: BTreeMap<(Phase, u64, u64), Hash>,
    /// The round whose new view each validator was last asked for (forgotten at each view
    /// timeout): a validator can make this node ask only itself, once per round it claims.
    asked: BTreeMap<Address, u64>,
    /// The latest generation of each timer.
    generations: [u64; 2],
    /// The current step's time.
    now: u64,
    /// The current step's actions.
    actions: Actions,
}

fn genesis_checkpoint(state_root: Hash) -> CheckpointCertificate {
    Certificate {
        payload: CheckpointTarget {
            height: 0,
            state_root,
        },
        votes: Vec::new(),
    }
}

impl Pbft {
    /// Starts (or restarts) the core from what the node had durably, and returns the first
    /// actions (timers, and a resent view change if it stopped in the middle of one).
    pub fn new(cfg: Config, restored: Restored, now: u64) -> (Pbft, Actions) {
        let me = cfg.key.as_ref().map(Keypair::address);
        let mut pbft = Pbft {
            me,
            round: 0,
            mode: Mode::Normal,
            failures: 0,
            stable: genesis_checkpoint(cfg.genesis_state_root),
            committed: restored.committed,
            last_hash: restored.last_hash,
            epochs: BTreeMap::new(),
            slots: BTreeMap::new(),
            proposed_to: restored.committed,
            last_proposal_at: now,
            pending_batch: None,
            propose_due: None,
            checkpoints: BTreeMap::new(),
            view_changes: BTreeMap::new(),
            new_view: None,
            voted: BTreeMap::new(),
            asked: BTreeMap::new(),
            generations: [0; 2],
            now,
            actions: Actions::default(),
            cfg,
        };
        for (epoch, validators) in restored.validators {
            pbft.add_epoch(epoch, validators);
        }
        let mut asked_round = 0;
        for record in restored.records {
            match record {
                Record::Prepared(vote) => pbft.restore_vote(&vote),
                Record::Committed {
                    vote,
                    certificate,
                    proposal,
                } => {
                    pbft.restore_vote(&vote);
                    let slot = pbft.slots.entry(vote.payload.height).or_default();
                    if slot
                        .prepared
                        .as_ref()
                        .is_none_or(|(c, _)| c.payload.view < certificate.payload.view)
                    {
                        slot.prepared = Some((certificate, proposal));
                    }
                }
                Record::ViewChange { round } => asked_round = asked_round.max(round),
                Record::Stable(certificate) => {
                    if certificate.payload.height > pbft.stable.payload.height {
                        pbft.stable = certificate;
                    }
                }
            }
        }
        let low = pbft.low();
        pbft.slots.retain(|&height, _| height > low);
        pbft.voted.retain(|&(_, height, _), _| height > low);
        if asked_round > pbft.round {
            pbft.start_view_change(asked_round);
        } else {
            pbft.arm_view_timer();
        }
        pbft.maybe_propose();
        let actions = std::mem::take(&mut pbft.actions);
        (pbft, actions)
    }

    fn restore_vote(&mut self, vote: &Signed<VoteTarget>) {
        let t = vote.payload;
        self.voted.insert((t.phase, t.height, t.view), t.digest);
        self.round = self.round.max(t.view.saturating_sub(t.height));
    }

    /// Reacts to one input at time `now` (milliseconds; any monotonic clock).
    pub fn step(&mut self, input: Input, now: u64) -> Actions {
        self.now = now;
        match input {
            Input::Message { from, message } => self.on_message(from, message),
            Input::Timeout(timer) => self.on_timeout(timer),
            Input::Batch { height, txs } => self.on_batch(height, txs),
            Input::Executed {
                height,
                state_root,
                next_validators,
            } => self.on_executed(height, state_root, next_validators),
            Input::Synced { block, certificate } => self.on_synced(block, certificate),
        }
        self.maybe_propose();
        std::mem::take(&mut self.actions)
    }

    /// The current round.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Whether the node is working in its round or changing view.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The view of the next height: what a node reports as its view.
    pub fn view(&self) -> u64 {
        self.committed.saturating_add(1).saturating_add(self.round)
    }

    /// The height of the last block handed out for execution.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// The hash of the last block handed out for execution (the genesis hash before any).
    pub fn last_hash(&self) -> Hash {
        self.last_hash
    }

    /// The low watermark: the height of the latest stable checkpoint.
    pub fn low(&self) -> u64 {
        self.stable.payload.height
    }

    /// The leader of the next height in the current round, if the validator set is known.
    pub fn leader(&self) -> Option<Address> {
        self.epoch().map(|e| e.leaders.leader(self.view()))
    }

    /// The primary of `round`: the validator that assembles its new view.
    pub fn primary(&self, round: u64) -> Option<Address> {
        self.epoch().map(|e| e.leaders.leader(round))
    }

    // ----- epochs and the window -------------------------------------------------------

    fn add_epoch(&mut self, epoch: u64, validators: ValidatorSet) {
        let leaders = LeaderSchedule::new(&validators);
        self.epochs.insert(
            epoch,
            Epoch {
                validators,
                leaders,
            },
        );
    }

    fn epoch_of(&self, height: u64) -> u64 {
        height.saturating_sub(1) / self.cfg.epoch_length
    }

    /// The epoch consensus is working in: the one just above the low watermark.
    fn epoch(&self) -> Option<&Epoch> {
        self.epochs.get(&self.epoch_of(self.low() + 1))
    }

    fn validators_at(&self, height: u64) -> Option<&ValidatorSet> {
        self.epochs
            .get(&self.epoch_of(height))
            .map(|e| &e.validators)
    }

    /// The highest height consensus may work on: two checkpoint intervals above the low
    /// watermark, and never past the end of its epoch (the window drains at an epoch's end,
    /// so every height in flight has the same validators).
    fn window_top(&self) -> u64 {
        let low = self.low();
        let epoch_end = (self.epoch_of(low + 1) + 1).saturating_mul(self.cfg.epoch_length);
        low.saturating_add(2 * self.cfg.params.checkpoint_interval)
            .min(epoch_end)
    }

    fn in_window(&self, height: u64) -> bool {
        height > self.low() && height <= self.window_top()
    }

    /// Whether `vote` is cast in the current round. A vote validly signed in a higher round
    /// means its signer saw that round begin: ask for the new view that began it.
    fn in_current_round(&mut self, from: Address, vote: &Signed<VoteTarget>) -> bool {
        let t = vote.payload;
        match t.view.checked_sub(t.height) {
            Some(round) if round == self.round => true,
            Some(round)
                if round > self.round
                    && self.asked.get(&from).is_none_or(|asked| round > *asked)
                    && vote.verify(&self.cfg.chain_id) =>
            {
                self.asked.insert(from, round);
                self.send(Target::One(from), Message::FetchNewView { round });
                false
            }
            _ => false,
        }
    }

    // ----- small helpers ---------------------------------------------------------------

    fn send(&mut self, target: Target, message: Message) {
        self.actions.messages.push((target, message));
    }

    fn set_timer(&mut self, kind: TimerKind, after_ms: u64) {
        let generation = &mut self.generations[kind as usize];
        *generation += 1;
        let timer = Timer {
            kind,
            generation: *generation,
        };
        self.actions.timers.retain(|(t, _)| t.kind != kind);
        self.actions.timers.push((timer, after_ms));
    }

    fn arm_view_timer(&mut self) {
        let backoff = 1u64 << self.failures.min(MAX_BACKOFF);
        let after = self.cfg.params.view_timeout_ms.saturating_mul(backoff);
        self.set_timer(TimerKind::View, after);
    }

    /// Whether this node votes: it has a key in the current validator set.
    fn is_validator(&self) -> bool {
        match (self.me, self.epoch()) {
            (Some(me), Some(epoch)) => epoch.validators.stake_of(&me).is_some(),
            _ => false,
        }
    }

    /// Signs a vote, unless it would contradict one already signed for the same slot.
    fn sign_vote(&mut self, target: VoteTarget) -> Option<Signed<VoteTarget>> {
        if !self.is_validator() {
            return None;
        }
        let key = (target.phase, target.height, target.view);
        match self.voted.get(&key) {
            Some(digest) if *digest != target.digest => return None,
            _ => {}
        }
        self.voted.insert(key, target.digest);
        let signing_key = self.cfg.key.as_ref()?;
        Some(Signed::sign(target, signing_key, &self.cfg.chain_id))
    }

    // ----- messages --------------------------------------------------------------------

    fn on_message(&mut self, from: Address, message: Message) {
        match message {
            Message::PrePrepare { proposal, vote } => self.on_pre_prepare(from, proposal, vote),
            Message::Vote(vote) => self.on_vote(from, vote),
            Message::Checkpoint(vote) => self.on_checkpoint(from, vote),
            Message::CheckpointProof(certificate) => self.on_checkpoint_proof(certificate),
            Message::ViewChange {
                view_change,
                bodies,
            } => self.on_view_change(view_change, bodies),
            Message::NewView { new_view, bodies } => self.on_new_view(new_view, bodies),
            Message::FetchNewView { round } => {
                let validator = self
                    .epoch()
                    .is_some_and(|e| e.validators.stake_of(&from).is_some());
                if let Some((new_view, bodies)) = &self.new_view {
                    if validator && new_view.payload.round == round {
                        let message = Message::NewView {
                            new_view: new_view.clone(),
                            bodies: bodies.clone(),
                        };
                        self.send(Target::One(from), message);
                    }
                }
            }
        }
    }

    fn on_pre_prepare(&mut self, from: Address, proposal: Proposal, vote: Signed<VoteTarget>) {
        let t = vote.payload;
        let height = t.height;
        if t.phase != Phase::Prepare || !self.in_window(height) {
            return;
        }
        let Some(leader) = self.epoch().map(|e| e.leaders.leader(t.view)) else {
            return;
        };
        if vote.signer != leader || !self.in_current_round(from, &vote) {
            return;
        }
        let header = &proposal.header;
        if vote.signer != leader
            || header.height != height
            || header.view != t.view
            || header.proposer != leader
            || proposal.digest() != t.digest
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
        if !vote.verify(&self.cfg.chain_id)
            || proposal
                .check_body(&self.cfg.chain_id, self.cfg.params.max_block_txs as usize)
                .is_err()
        {
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

    /// Takes `proposal` as this round's for `height`.
    fn accept_proposal(&mut self, height: u64, digest: Hash, proposal: Proposal) {
        self.slots.entry(height).or_default().proposal = Some((digest, proposal));
        if height > self.proposed_to {
            self.proposed_to = height;
            self.last_proposal_at = self.now;
        }
    }

    /// Signs and sends this node's prepare vote (a commit vote goes through `advance`).
    fn cast(&mut self, phase: Phase, height: u64, view: u64, digest: Hash) {
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

    fn on_vote(&mut self, from: Address, vote: Signed<VoteTarget>) {
        let t = vote.payload;
        // Votes for heights this node already committed still count: its own votes there
        // may be what a lagging validator needs to complete a quorum. Votes for a round
        // whose new view has not arrived yet are kept for when it does.
        if !self.in_window(t.height) {
            return;
        }
        let member = self
            .epoch()
            .is_some_and(|e| e.validators.stake_of(&vote.signer).is_some());
        if !member || !self.in_current_round(from, &vote) {
            return;
        }
        let tally = self.slots.entry(t.height).or_default().tally(t.phase);
        if tally.has(&vote.signer) || !vote.verify(&self.cfg.chain_id) {
            return;
        }
        tally.add(vote.signer, t.digest, vote.signature);
        if self.mode == Mode::Normal {
            self.advance(t.height);
        }
    }

    /// Moves a height forward: prepared (then commit), committed (then deliver in order).
    fn advance(&mut self, height: u64) {
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
        let Some((digest, proposal)) = slot.proposal.clone() else {
            return;
        };
        let prepared_here = slot
            .prepared
            .as_ref()
            .is_some_and(|(c, _)| c.payload.view == view);
        if !prepared_here && validators.is_quorum(slot.prepares.weight(&digest, &validators)) {
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
                    proposal: proposal.clone(),
                });
                self.send(Target::All, Message::Vote(vote));
            }
        }
        let slot = self.slots.entry(height).or_default();
        // A commit quorum alone proves more than two thirds prepared, so it is enough.
        if slot.committed.is_none()
            && validators.is_quorum(slot.commits.weight(&digest, &validators))
        {
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

    /// Hands out every committed block whose predecessors are all out, in height order.
    fn deliver(&mut self) {
        while let Some((certificate, proposal)) = self
            .slots
            .get(&(self.committed + 1))
            .and_then(|s| s.committed.clone())
        {
            self.hand_out(Block::new(proposal, self.last_hash), certificate);
        }
    }

    fn hand_out(&mut self, block: Block, certificate: CommitCertificate) {
        self.committed = block.height();
        self.last_hash = block.hash();
        self.proposed_to = self.proposed_to.max(self.committed);
        self.actions.commits.push((block, certificate));
        self.failures = 0;
        if self.mode == Mode::Normal {
            self.arm_view_timer();
        }
    }

    // ----- proposing -------------------------------------------------------------------

    fn maybe_propose(&mut self) {
        if self.mode != Mode::Normal || !self.is_validator() {
            return;
        }
        let height = self.proposed_to + 1;
        let view = height.saturating_add(self.round);
        if self.pending_batch.is_some()
            || !self.in_window(height)
            || height > self.committed.saturating_add(self.cfg.params.window)
            || self.leader_of(view) != self.me
            || self.voted.contains_key(&(Phase::Prepare, height, view))
        {
            return;
        }
        let due = self
            .last_proposal_at
            .saturating_add(self.cfg.params.block_interval_ms);
        if self.now < due {
            if self.propose_due != Some(due) {
                self.propose_due = Some(due);
                self.set_timer(TimerKind::Propose, due - self.now);
            }
            return;
        }
        self.pending_batch = Some((height, self.round));
        let exclude = self
            .slots
            .range(self.committed + 1..)
            .filter_map(|(_, s)| s.proposal.as_ref())
            .flat_map(|(_, p)| p.txs.iter().map(|tx| tx.hash()))
            .collect();
        self.actions.batch_request = Some(BatchRequest {
            height,
            max_txs: self.cfg.params.max_block_txs as usize,
            exclude,
        });
    }

    fn leader_of(&self, view: u64) -> Option<Address> {
        self.epoch().map(|e| e.leaders.leader(view))
    }

    fn on_batch(&mut self, height: u64, mut txs: Vec<crate::tx::Transaction>) {
        if self.pending_batch != Some((height, self.round)) {
            return;
        }
        self.pending_batch = None;
        let view = height.saturating_add(self.round);
        let Some(me) = self.me else { return };
        if self.mode != Mode::Normal
            || self.leader_of(view) != Some(me)
            || !self.in_window(height)
            || self
                .slots
                .get(&height)
                .is_some_and(|s| s.proposal.is_some())
        {
            return;
        }
        // A block with a transaction twice is invalid: keep the first of each.
        let mut seen = std::collections::HashSet::new();
        txs.retain(|tx| seen.insert(tx.hash()));
        txs.truncate(self.cfg.params.max_block_txs as usize);
        let proposal = Proposal::new(height, view, self.now, me, txs);
        let digest = proposal.digest();
        let Some(vote) = self.sign_vote(VoteTarget {
            phase: Phase::Prepare,
            height,
            view,
            digest,
        }) else {
            return;
        };
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

    // ----- timers ----------------------------------------------------------------------

    fn on_timeout(&mut self, timer: Timer) {
        if self.generations[timer.kind as usize] != timer.generation {
            return;
        }
        match timer.kind {
            TimerKind::Propose => self.propose_due = None,
            TimerKind::View if self.catch_up() => self.arm_view_timer(),
            TimerKind::View => match self.mode {
                Mode::Normal => self.start_view_change(self.round.saturating_add(1)),
                Mode::ViewChange if self.has_view_change_quorum(self.round, false) => {
                    self.start_view_change(self.round.saturating_add(1))
                }
                Mode::ViewChange => {
                    // Too few view changes to move on: resend ours in case it was lost.
                    if let Some(me) = self.me {
                        if let Some((view_change, bodies)) = self.view_changes.get(&me).cloned() {
                            self.send(
                                Target::All,
                                Message::ViewChange {
                                    view_change,
                                    bodies,
                                },
                            );
                        }
                    }
                    self.arm_view_timer();
                }
            },
        }
    }

    /// On a view timer: resend this node's checkpoint votes, let validators in higher rounds
    /// be asked again for their new view, and if this node is behind rather than the network
    /// stuck, fetch blocks instead of changing view.
    fn catch_up(&mut self) -> bool {
        self.resend_checkpoint_votes();
        self.asked.clear();
        let target = self.ahead_height().unwrap_or(0).max(self.low());
        if target > self.committed {
            self.actions.sync_request = Some((self.committed + 1, target));
            return true;
        }
        false
    }

    /// Sends again this node's checkpoint votes above the low watermark. A checkpoint whose
    /// votes were lost would otherwise never become stable; at an epoch's end, where the
    /// window drains and waits for exactly that checkpoint, the chain would stop.
    fn resend_checkpoint_votes(&mut self) {
        let Some(me) = self.me else { return };
        let own: Vec<Signed<CheckpointTarget>> = self
            .checkpoints
            .iter()
            .filter_map(|(height, votes)| {
                votes.get(&me).map(|(state_root, signature)| Signed {
                    payload: CheckpointTarget {
                        height: *height,
                        state_root: *state_root,
                    },
                    signer: me,
                    signature: *signature,
                })
            })
            .collect();
        for vote in own {
            self.send(Target::All, Message::Checkpoint(vote));
        }
    }

    // ----- execution and checkpoints ---------------------------------------------------

    fn on_executed(&mut self, height: u64, state_root: Hash, next: Option<(u64, ValidatorSet)>) {
        if let Some((epoch, validators)) = next {
            self.add_epoch(epoch, validators);
            let heights: Vec<u64> = self.checkpoints.keys().copied().collect();
            for height in heights {
                self.try_stable(height);
            }
        }
        let interval = self.cfg.params.checkpoint_interval;
        if height % interval != 0 || height <= self.low() || !self.is_validator() {
            return;
        }
        let Some(key) = self.cfg.key.as_ref() else {
            return;
        };
        let vote = Signed::sign(
            CheckpointTarget { height, state_root },
            key,
            &self.cfg.chain_id,
        );
        self.record_checkpoint_vote(&vote);
        self.send(Target::All, Message::Checkpoint(vote));
    }

    fn on_checkpoint(&mut self, from: Address, vote: Signed<CheckpointTarget>) {
        let height = vote.payload.height;
        if height <= self.low() {
            // The sender is behind: show it the way forward.
            if self.low() > 0 {
                self.send(
                    Target::One(from),
                    Message::CheckpointProof(self.stable.clone()),
                );
            }
            return;
        }
        // Far above the window the validator set may not be known yet; a current validator
        // may still say where the network is, which is how a lagging node learns to sync.
        let member = self
            .validators_at(height)
            .or_else(|| self.epoch().map(|e| &e.validators))
            .is_some_and(|v| v.stake_of(&vote.signer).is_some());
        let fresh = !self
            .checkpoints
            .get(&height)
            .is_some_and(|votes| votes.contains_key(&vote.signer));
        if height % self.cfg.params.checkpoint_interval == 0
            && member
            && fresh
            && vote.verify(&self.cfg.chain_id)
        {
            self.record_checkpoint_vote(&vote);
        }
    }

    /// Keeps a checkpoint vote, and makes the checkpoint stable if a quorum now agrees.
    /// Above the window a validator's votes are kept for its few highest heights only.
    fn record_checkpoint_vote(&mut self, vote: &Signed<CheckpointTarget>) {
        let target = vote.payload;
        self.checkpoints
            .entry(target.height)
            .or_default()
            .entry(vote.signer)
            .or_insert((target.state_root, vote.signature));
        let top = self.window_top();
        let above: Vec<u64> = self
            .checkpoints
            .range(top + 1..)
            .filter(|(_, votes)| votes.contains_key(&vote.signer))
            .map(|(height, _)| *height)
            .collect();
        if above.len() > AHEAD_VOTES {
            if let Some(votes) = self.checkpoints.get_mut(&above[0]) {
                votes.remove(&vote.signer);
            }
            self.checkpoints.retain(|_, votes| !votes.is_empty());
        }
        self.try_stable(target.height);
    }

    /// Makes the checkpoint at `height` stable if validators holding a quorum of stake
    /// agree on its state root.
    fn try_stable(&mut self, height: u64) {
        let (Some(validators), Some(votes)) =
            (self.validators_at(height), self.checkpoints.get(&height))
        else {
            return;
        };
        let mut roots: Vec<Hash> = votes.values().map(|(root, _)| *root).collect();
        roots.sort();
        roots.dedup();
        for state_root in roots {
            let agreeing: Vec<_> = votes
                .iter()
                .filter(|(signer, (root, _))| {
                    *root == state_root && validators.stake_of(signer).is_some()
                })
                .map(|(signer, (_, signature))| (*signer, *signature))
                .collect();
            if validators.is_quorum(validators.weight(agreeing.iter().map(|(s, _)| s))) {
                let target = CheckpointTarget { height, state_root };
                self.set_stable(Certificate::new(target, agreeing));
                return;
            }
        }
    }

    /// The highest checkpoint height above this node's reach that validators holding more
    /// than a third of stake (so at least one honest) claim: proof the network is ahead.
    fn ahead_height(&self) -> Option<u64> {
        let validators = &self.epoch()?.validators;
        let reach = self.committed.max(self.window_top());
        let mut claims: BTreeMap<Address, u64> = BTreeMap::new();
        for (height, votes) in self.checkpoints.range(reach + 1..) {
            for signer in votes.keys() {
                claims.insert(*signer, *height);
            }
        }
        let mut by_height: Vec<(u64, Address)> = claims.into_iter().map(|(a, h)| (h, a)).collect();
        by_height.sort_by(|a, b| b.cmp(a));
        let mut signers = Vec::new();
        for (height, signer) in by_height {
            signers.push(signer);
            if validators.has_honest(validators.weight(&signers)) {
                return Some(height);
            }
        }
        None
    }

    fn on_checkpoint_proof(&mut self, certificate: CheckpointCertificate) {
        if certificate.payload.height > self.low() && self.checkpoint_valid(&certificate) {
            self.set_stable(certificate);
        }
    }

    fn checkpoint_valid(&self, certificate: &CheckpointCertificate) -> bool {
        let height = certificate.payload.height;
        if height == 0 {
            return *certificate == genesis_checkpoint(self.cfg.genesis_state_root);
        }
        height % self.cfg.params.checkpoint_interval == 0
            && self
                .validators_at(height)
                .is_some_and(|v| certificate.verify(&self.cfg.chain_id, v).is_ok())
    }

    /// Moves the low watermark up to a proven checkpoint and forgets what lies below it.
    fn set_stable(&mut self, certificate: CheckpointCertificate) {
        let height = certificate.payload.height;
        if height <= self.low() {
            return;
        }
        self.actions
            .persist
            .push(Record::Stable(certificate.clone()));
        self.actions.prune_below = Some(height);
        self.stable = certificate;
        self.slots = self.slots.split_off(&(height + 1));
        self.checkpoints = self.checkpoints.split_off(&(height + 1));
        self.voted.retain(|&(_, h, _), _| h > height);
        self.proposed_to = self.proposed_to.max(height);
        // Keep the epoch of the checkpoint itself: view changes carry it as their proof,
        // and it is checked against that epoch's validators (the one just ended, when the
        // checkpoint is an epoch's last block).
        let keep_from = self.epoch_of(self.committed.min(height));
        self.epochs = self.epochs.split_off(&keep_from);
        if height > self.committed {
            self.actions.sync_request = Some((self.committed + 1, height));
        }
    }

    fn on_synced(&mut self, block: Block, certificate: CommitCertificate) {
        let height = block.height();
        let t = certificate.payload;
        if height != self.committed + 1
            || block.header.prev != self.last_hash
            || t.phase != Phase::Commit
            || t.height != height
            || t.digest != block.header.proposal.digest()
            || crate::block::tx_root(&block.txs) != block.header.proposal.tx_root
        {
            return;
        }
        let valid = self
            .validators_at(height)
            .is_some_and(|v| certificate.verify(&self.cfg.chain_id, v).is_ok());
        if valid {
            self.hand_out(block, certificate);
            self.deliver();
        }
    }

    // ----- view change -----------------------------------------------------------------

    /// Leaves the current round for `round`: forget this round's votes, tell everyone what
    /// must be carried forward.
    fn start_view_change(&mut self, round: u64) {
        if !self.is_validator()
            || round < self.round
            || (round == self.round && self.mode == Mode::ViewChange)
        {
            return;
        }
        self.round = round;
        self.mode = Mode::ViewChange;
        self.failures = self.failures.saturating_add(1);
        self.pending_batch = None;
        for slot in self.slots.values_mut() {
            slot.proposal = None;
            slot.prepares.clear();
            slot.commits.clear();
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

    /// Whether validators holding a quorum of stake have asked for `round` (with `exact`),
    /// or for `round` or later. A validator that already moved past a round still counts
    /// as having left the one before, which is what lets the others move on too.
    fn has_view_change_quorum(&self, round: u64, exact: bool) -> bool {
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

    fn on_view_change(&mut self, signed: Signed<ViewChange>, bodies: Vec<Proposal>) {
        let round = signed.payload.round;
        let Some(epoch) = self.epoch() else {
            return;
        };
        if epoch.validators.stake_of(&signed.signer).is_none() {
            return;
        }
        let behind = round < self.round || (round == self.round && self.mode == Mode::Normal);
        if behind {
            if signed.verify(&self.cfg.chain_id) {
                self.help_behind(signed.signer, &signed.payload);
            }
            return;
        }
        if self
            .view_changes
            .get(&signed.signer)
            .is_some_and(|(vc, _)| vc.payload.round >= round)
            || !self.view_change_valid(&signed)
            || !bodies_match(&signed.payload.prepared, &bodies)
        {
            return;
        }
        let checkpoint = signed.payload.checkpoint.clone();
        self.view_changes.insert(signed.signer, (signed, bodies));
        if checkpoint.payload.height > self.low() {
            self.set_stable(checkpoint);
        }
        self.join_higher_round();
        self.try_new_view();
    }

    /// A validator asked for a round this node has left behind: give it the new view that
    /// began this round, and the latest checkpoint if it lags.
    fn help_behind(&mut self, to: Address, view_change: &ViewChange) {
        if view_change.checkpoint.payload.height < self.low() {
            self.send(
                Target::One(to),
                Message::CheckpointProof(self.stable.clone()),
            );
        }
        if let Some((new_view, bodies)) = self.new_view.clone() {
            self.send(Target::One(to), Message::NewView { new_view, bodies });
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

    /// As the primary of the round being changed to, with a quorum of view changes, start
    /// the round.
    fn try_new_view(&mut self) {
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
        let Some(Plan { heights, .. }) = view_change::plan(&payloads) else {
            return;
        };
        let mut proposals = Vec::with_capacity(heights.len());
        let mut bodies = Vec::with_capacity(heights.len());
        for (height, digest) in heights {
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

    fn on_new_view(&mut self, signed: Signed<NewView>, bodies: Vec<Proposal>) {
        let round = signed.payload.round;
        if round < self.round || (round == self.round && self.mode == Mode::Normal) {
            return;
        }
        if self.new_view_valid(&signed, &bodies) {
            self.enter_round(signed, bodies);
        }
    }

    /// Checks a new view completely: the primary's signature, a quorum of distinct valid view
    /// changes for its round, and a proposal list equal to the one recomputed from them.
    fn new_view_valid(&self, signed: &Signed<NewView>, bodies: &[Proposal]) -> bool {
        let nv = &signed.payload;
        let Some(epoch) = self.epoch() else {
            return false;
        };
        let primary = epoch.leaders.leader(nv.round);
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
            || !nv.view_changes.iter().all(|vc| self.view_change_valid(vc))
        {
            return false;
        }
        let payloads: Vec<&ViewChange> = nv.view_changes.iter().map(|vc| &vc.payload).collect();
        let Some(plan) = view_change::plan(&payloads) else {
            return false;
        };
        plan.heights.len() == nv.proposals.len()
            && plan.heights.iter().zip(&nv.proposals).zip(bodies).all(
                |(((height, expected), (h, digest)), body)| {
                    let view = height.saturating_add(nv.round);
                    height == h
                        && body.digest() == *digest
                        && match expected {
                            Some(expected) => expected == digest,
                            None => view_change::is_gap_filler(body, *height, view, &primary),
                        }
                },
            )
    }

    /// Begins the round a valid new view starts: adopt its checkpoint, take its proposals
    /// and prepare them.
    fn enter_round(&mut self, signed: Signed<NewView>, bodies: Vec<Proposal>) {
        let nv = &signed.payload;
        let round = nv.round;
        let payloads: Vec<&ViewChange> = nv.view_changes.iter().map(|vc| &vc.payload).collect();
        let checkpoint = view_change::plan(&payloads).map(|p| p.checkpoint.clone());
        // Votes and proposals that arrived for this round before its new view are kept.
        if round != self.round {
            for slot in self.slots.values_mut() {
                slot.proposal = None;
                slot.prepares.clear();
                slot.commits.clear();
            }
        }
        self.round = round;
        self.mode = Mode::Normal;
        self.pending_batch = None;
        if let Some(checkpoint) = checkpoint {
            self.set_stable(checkpoint);
        }
        self.view_changes
            .retain(|_, (vc, _)| vc.payload.round > round);
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

/// Each prepared certificate comes with the body its digest names.
fn bodies_match(prepared: &[PreparedCertificate], bodies: &[Proposal]) -> bool {
    prepared.len() == bodies.len()
        && prepared
            .iter()
            .zip(bodies)
            .all(|(c, b)| c.payload.digest == b.digest())
}
