//! The pBFT state machine: one plain struct, driven by [`Pbft::step`].
//!
//! This file holds the state, start-up, and what every part shares. The protocol's parts
//! each have a file: [`normal`] (pre-prepare, prepare, commit, proposing), [`checkpoints`]
//! (checkpoint votes, the low watermark), [`view_change`] (view changes and new views) and
//! [`sync`] (catching up on blocks from peers).

mod checkpoints;
mod normal;
mod sync;
pub mod view_change;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::block::{Block, Proposal};
use crate::certificate::{Certificate, CommitCertificate, Phase, Signed, VoteTarget};
use crate::crypto::{Address, Hash, Keypair, Signature};
use crate::genesis::ConsensusParams;
use crate::reputation::Blames;
use crate::tx::VerifiedTxs;
use crate::validators::{self, ValidatorSet};

use super::budget::{Budget, Period};
use super::io::{Actions, Input, Record, Restored, Target, Timer, TimerKind};
use super::leader::LeaderSchedule;
use super::message::{CheckpointCertificate, CheckpointTarget, Message, NewView, ViewChange};
use super::votes::Tally;

pub use normal::{MAX_CLOCK_AHEAD_MS, MIN_BLOCK_GAP_MS};
pub use sync::SYNC_BUFFER;

/// Longest a view timer doubles to: 2^6 times the base timeout.
const MAX_BACKOFF: u32 = 6;

/// Answers (a certificate, a new view, a proposal) each validator may have from this node
/// per period, beyond the window's worth of proposals.
const ANSWERS_PER_PERIOD: u32 = 4;

/// Costly checks (a view change, a new view, a refused proposal body) each validator may
/// make this node do per period.
const CHECKS_PER_PERIOD: u32 = 3;

/// Catch-up replies with a wrong block each peer may send per period before it is not
/// heard again in it. Apart from the costly checks: honest view changes spend those, and
/// must never stop a node behind from hearing the blocks it needs.
const REFUSALS_PER_PERIOD: u32 = 3;

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
    /// Transactions whose signatures this node checked already (its mempool shares it):
    /// proposal bodies skip them.
    pub verified: Arc<VerifiedTxs>,
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
    /// Peers asked for this round's missing proposal.
    asked: u8,
    /// The highest-view prepared certificate held, with its proposal: what a view change
    /// must carry forward.
    prepared: Option<(Certificate<VoteTarget>, Proposal)>,
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

    /// The votes of `phase`, to read.
    fn votes(&self, phase: Phase) -> &Tally {
        match phase {
            Phase::Prepare => &self.prepares,
            Phase::Commit => &self.commits,
        }
    }

    /// Forgets what belonged to the round being left; prepared and committed state stay.
    fn leave_round(&mut self) {
        self.proposal = None;
        self.prepares.clear();
        self.commits.clear();
        self.asked = 0;
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
/// Feed it inputs with [`Pbft::step`]; carry out the [`Actions`] it returns with
/// [`super::drive`]. It never reads a clock (time comes with each step), never touches a
/// socket or a disk, and is deterministic: the same inputs give the same outputs.
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
    /// Its timestamp: the next block's must be later.
    last_timestamp: u64,
    /// The height the host has executed.
    executed: u64,
    /// Validator sets by epoch.
    epochs: BTreeMap<u64, Epoch>,
    /// Who failed recent turns to lead, as of the committed height: the same record the
    /// ledger keeps, updated with each block handed out (see [`crate::reputation`]).
    blames: Blames,
    /// A round this node joined from a fetched block rather than its new view, and the
    /// lowest height it may vote at in that round (see `join_round_of`).
    joined: Option<(u64, u64)>,
    /// Heights above the low watermark.
    slots: BTreeMap<u64, Slot>,
    /// Digests of proposals whose bodies passed every check, by height: the same digest
    /// with a body under the same transaction root needs no second signature check.
    verified: BTreeMap<Hash, u64>,
    /// The highest height with a proposal in the current round (or committed).
    proposed_to: u64,
    /// When that proposal was accepted: the next leader waits a block interval after it,
    /// unless a full block waits.
    last_proposal_at: u64,
    /// How many transactions the mempool held at its last word (`Input::TxsWaiting`).
    mempool_pending: usize,
    /// The height (and round) a batch was requested for.
    pending_batch: Option<(u64, u64)>,
    /// When the propose timer is due, if set.
    propose_due: Option<u64>,
    /// An empty batch came back before the idle interval was up: the mempool is asked
    /// again no sooner than this (or than the next word that transactions wait).
    next_poll_at: u64,
    /// Checkpoint votes by height: signer to (state root, signature).
    checkpoints: BTreeMap<u64, BTreeMap<Address, (Hash, Signature)>>,
    /// The latest verified view change of each validator, with its bodies.
    view_changes: BTreeMap<Address, (Signed<ViewChange>, Vec<Proposal>)>,
    /// The new view that began the current round, to hand to validators that missed it.
    new_view: Option<(Signed<NewView>, Vec<Proposal>)>,
    /// Every vote this node signed above the low watermark: never two digests for a slot.
    voted: BTreeMap<(Phase, u64, u64), Hash>,
    /// The round whose new view each validator was last asked for (forgotten at each view
    /// timeout): a validator can make this node ask only itself, once per round it claims.
    asked: BTreeMap<Address, u64>,
    /// While changing view: a validator was seen voting in the round this node waits for,
    /// so the round has begun and its new view was missed (cleared at each view timeout).
    round_began: bool,
    /// What each validator may still make this node send per period.
    answers: Budget,
    /// What each validator may still make this node verify per period.
    checks: Budget,
    /// Catch-up replies with a wrong block each peer may still send per period.
    refusals: Budget,
    /// Pre-prepares this node cannot check yet, by height (see `keep_early`).
    early: BTreeMap<u64, (Address, Proposal, Signed<VoteTarget>)>,
    /// Blocks fetched from peers (with the peer each came from), waiting to be handed out
    /// in height order.
    fetched: BTreeMap<u64, (Address, Block, CommitCertificate)>,
    /// The height catch-up is fetching up to.
    sync_to: u64,
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
        let answers = Budget::new(ANSWERS_PER_PERIOD.saturating_add(cfg.params.window as u32));
        let mut pbft = Pbft {
            me,
            round: 0,
            mode: Mode::Normal,
            failures: 0,
            stable: genesis_checkpoint(cfg.genesis_state_root),
            committed: restored.committed,
            last_hash: restored.last_hash,
            last_timestamp: restored.last_timestamp_ms,
            executed: restored.committed,
            epochs: BTreeMap::new(),
            blames: restored.blames,
            joined: None,
            slots: BTreeMap::new(),
            verified: BTreeMap::new(),
            proposed_to: restored.committed,
            last_proposal_at: now,
            mempool_pending: 0,
            pending_batch: None,
            propose_due: None,
            next_poll_at: now,
            checkpoints: BTreeMap::new(),
            view_changes: BTreeMap::new(),
            new_view: None,
            voted: BTreeMap::new(),
            asked: BTreeMap::new(),
            round_began: false,
            answers,
            checks: Budget::new(CHECKS_PER_PERIOD),
            refusals: Budget::new(REFUSALS_PER_PERIOD),
            early: BTreeMap::new(),
            fetched: BTreeMap::new(),
            sync_to: restored.committed,
            generations: [0; 2],
            now,
            actions: Actions::default(),
            cfg,
        };
        for (epoch, validators) in restored.validators {
            pbft.add_epoch(epoch, validators);
        }
        // The stable checkpoint first: records at or below it are not needed (nor checked).
        for record in &restored.records {
            if let Record::Stable(certificate) = record {
                if certificate.payload.height > pbft.stable.payload.height {
                    pbft.stable = certificate.clone();
                }
            }
        }
        let low = pbft.low();
        let mut asked_round = 0;
        for record in restored.records {
            match record {
                Record::Prepared(vote) | Record::Committed { vote, .. }
                    if vote.payload.height <= low => {}
                Record::Prepared(vote) => pbft.restore_vote(&vote),
                Record::Committed {
                    vote,
                    certificate,
                    proposal,
                } => {
                    pbft.restore_vote(&vote);
                    // The log is this node's own, but a body enters only through the one
                    // body check, whatever its path.
                    if certificate.payload.digest != proposal.digest() || !pbft.body_ok(&proposal) {
                        continue;
                    }
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
                Record::Stable(_) => {}
            }
        }
        if asked_round > pbft.round {
            pbft.start_view_change(asked_round);
        } else {
            pbft.arm_view_timer();
        }
        // A node that does not vote (re)starts by asking for what it missed while away.
        if !pbft.is_validator() {
            pbft.follow();
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

    /// Reacts to one input at time `now` (milliseconds since the Unix epoch; the same
    /// clock proposals are stamped with).
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
            Input::Synced { from, blocks } => self.on_synced(from, blocks),
            Input::TxsWaiting { pending } => {
                self.next_poll_at = self.next_poll_at.min(now);
                self.mempool_pending = pending;
            }
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

    /// Who failed recent turns to lead, as of the committed height (equal to the ledger's
    /// once that height is executed).
    pub fn blames(&self) -> &Blames {
        &self.blames
    }

    /// The low watermark: the height of the latest stable checkpoint.
    pub fn low(&self) -> u64 {
        self.stable.payload.height
    }

    /// The leader of the next height in the current round, if it is known.
    pub fn leader(&self) -> Option<Address> {
        self.leader_at(self.committed.saturating_add(1), self.view())
    }

    /// The primary of `round`: the validator that assembles its new view. Primaries follow
    /// the plain rotation: validators changing view need not agree on anything else (not
    /// even their stable checkpoints, across which their leader blames may differ).
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
        validators::epoch_of(height, self.cfg.epoch_length)
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

    /// The leader of `height` in `view`: the rotation with the validators that failed recent
    /// turns passed over, from every blame below `height` and the failed turns at `height`
    /// in the rounds since the chain's last (see [`Blames::leaders`]). Unknown until this
    /// node knows them all: it has committed the height below, or a block of `view`'s
    /// round or a later one; until then its pre-prepares are kept (see `keep_early`).
    pub fn leader_at(&self, height: u64, view: u64) -> Option<Address> {
        let epoch = self.epoch()?;
        let round = view.checked_sub(height)?;
        let below = height.checked_sub(1)?;
        if self.committed < below && self.blames.top_round < round {
            return None;
        }
        // Blames above the committed height would be of rounds above `round`: none count,
        // so every node asks with the same `below`.
        let leaders = self
            .blames
            .leaders(&epoch.leaders, &epoch.validators, height, round, below);
        leaders.last().copied()
    }

    /// Whether `address` is in the validator set consensus is working with.
    fn is_member(&self, address: &Address) -> bool {
        self.epoch()
            .is_some_and(|e| e.validators.stake_of(address).is_some())
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

    /// The period budgets are counted in: this round at this low watermark. Only honest
    /// progress moves either.
    fn period(&self) -> Period {
        (self.round, self.low())
    }

    /// Whether `vote` is cast in the current round. A vote validly signed in a higher
    /// round, or in this round while this node still waits for its new view, means its
    /// signer saw that round begin: ask it for the new view that began it.
    fn in_current_round(&mut self, from: Address, vote: &Signed<VoteTarget>) -> bool {
        let t = vote.payload;
        let Some(round) = t.view.checked_sub(t.height) else {
            return false;
        };
        let missed_new_view =
            round > self.round || (round == self.round && self.mode == Mode::ViewChange);
        if missed_new_view
            && self.asked.get(&from).is_none_or(|asked| round > *asked)
            && vote.verify(&self.cfg.chain_id)
        {
            self.asked.insert(from, round);
            self.round_began |= round == self.round;
            self.send(Target::One(from), Message::FetchNewView { round });
        }
        round == self.round
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
        self.me.is_some_and(|me| self.is_member(&me))
    }

    /// Signs a vote, unless it would contradict one already signed for the same slot.
    fn sign_vote(&mut self, target: VoteTarget) -> Option<Signed<VoteTarget>> {
        if !self.is_validator() {
            return None;
        }
        let below_floor = self.joined.is_some_and(|(round, floor)| {
            target.view.checked_sub(target.height) == Some(round) && target.height < floor
        });
        if below_floor {
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

    /// The one gate for every proposal body, whatever path it came by: its transactions
    /// must hash to its header's root, and each must be well formed and validly signed. A
    /// digest whose body already passed needs only the root compared again: the root binds
    /// the transactions, so the same root means the same transactions.
    fn body_ok(&mut self, proposal: &Proposal) -> bool {
        let digest = proposal.digest();
        if self.verified.contains_key(&digest) {
            return proposal.header.binds(&proposal.txs);
        }
        let max_txs = self.cfg.params.max_block_txs as usize;
        let ok = proposal
            .check_body(&self.cfg.chain_id, max_txs, &self.cfg.verified)
            .is_ok();
        if ok {
            self.verified.insert(digest, proposal.header.height);
        }
        ok
    }

    // ----- inputs ----------------------------------------------------------------------

    fn on_message(&mut self, from: Address, message: Message) {
        match message {
            Message::PrePrepare { proposal, vote } => self.on_pre_prepare(from, proposal, vote),
            Message::Vote(vote) => self.on_vote(from, vote),
            Message::Checkpoint(vote) => self.on_checkpoint(from, vote),
            Message::CheckpointProof(certificate) => self.on_checkpoint_proof(certificate),
            Message::ViewChange {
                view_change,
                bodies,
            } => self.on_view_change(from, view_change, bodies),
            Message::NewView { new_view, bodies } => self.on_new_view(from, new_view, bodies),
            Message::FetchNewView { round } => self.on_fetch_new_view(from, round),
            Message::FetchProposal { height, view } => self.on_fetch_proposal(from, height, view),
        }
    }

    fn on_timeout(&mut self, timer: Timer) {
        if self.generations[timer.kind as usize] != timer.generation {
            return;
        }
        match timer.kind {
            TimerKind::Propose => self.propose_due = None,
            TimerKind::View if self.catch_up() => self.arm_view_timer(),
            // A node that does not vote has no round to leave: it asks for blocks instead.
            TimerKind::View if !self.is_validator() => {
                self.follow();
                self.arm_view_timer();
            }
            TimerKind::View => match self.mode {
                Mode::Normal => self.start_view_change(self.round.saturating_add(1)),
                // The round began elsewhere (a validator voted in it): its new view was
                // missed, so ask for it again rather than leave the round.
                Mode::ViewChange if std::mem::take(&mut self.round_began) => {
                    self.retry_view_change()
                }
                Mode::ViewChange if self.has_view_change_quorum(self.round, false) => {
                    self.start_view_change(self.round.saturating_add(1))
                }
                Mode::ViewChange => self.retry_view_change(),
            },
        }
    }
}
