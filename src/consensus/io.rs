//! What goes into the consensus core and what comes out of it.

use bincode::{Decode, Encode};

use crate::block::{Block, Proposal};
use crate::certificate::{CommitCertificate, Signed, VoteTarget};
use crate::crypto::{Address, Hash};
use crate::reputation::Blames;
use crate::tx::Transaction;
use crate::validators::ValidatorSet;

use super::message::{CheckpointCertificate, Message, PreparedCertificate};

/// The two timers the core runs. Each setting gets a new generation; an expiry that does
/// not carry the latest generation is stale and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum TimerKind {
    /// No progress for too long: change view (or, while changing, resend and move on).
    View,
    /// A leader's pause between proposals is over.
    Propose,
}

/// A timer setting; hand it back in [`Input::Timeout`] when it expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Timer {
    /// Which timer.
    pub kind: TimerKind,
    /// Which setting of it.
    pub generation: u64,
}

/// Something that happened, for the core to react to.
#[derive(Clone, Debug)]
pub enum Input {
    /// A message from the validator `from`, as received (the core checks every signature).
    Message {
        /// The connection's authenticated peer.
        from: Address,
        /// The message.
        message: Message,
    },
    /// A timer the core set has expired.
    Timeout(Timer),
    /// The transactions asked for by [`Actions::batch_request`].
    Batch {
        /// The height they are for.
        height: u64,
        /// Transactions that passed the stateless checks, in the order to propose them.
        txs: Vec<Transaction>,
    },
    /// The mempool has admitted transactions: a leader waiting to ask it again may ask now,
    /// and one with proposals in flight proposes at once if a full block waits beyond them.
    TxsWaiting {
        /// How many transactions the mempool holds now (those in proposals in flight too).
        pending: usize,
    },
    /// A committed block has been executed.
    Executed {
        /// Its height.
        height: u64,
        /// The state root after it.
        state_root: Hash,
        /// A validator set the ledger fixed at this height: `(epoch, set)`.
        next_validators: Option<(u64, ValidatorSet)>,
    },
    /// Blocks a peer sent in answer to a sync request, each with its commit certificate, in
    /// any order. The core keeps a bounded window of them, checks each (certificate against
    /// the validators of its height, body against its header) and hands them out in order.
    Synced {
        /// The connection's authenticated peer: a wrong reply is charged to it.
        from: Address,
        /// The blocks, with their commit certificates.
        blocks: Vec<(Block, CommitCertificate)>,
    },
}

/// A record the core needs back after a restart, so that it never contradicts itself.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Record {
    /// A prepare vote this node cast (as a leader, the vote inside its proposal).
    Prepared(Signed<VoteTarget>),
    /// A commit vote this node cast, the prepared certificate that allowed it, and the body.
    Committed {
        /// The commit vote.
        vote: Signed<VoteTarget>,
        /// The prepared certificate it rests on.
        certificate: PreparedCertificate,
        /// The proposal.
        proposal: Proposal,
    },
    /// This node asked to move to `round`: it must never act in a lower one again.
    ViewChange {
        /// The round.
        round: u64,
    },
    /// A stable checkpoint: the low watermark to restart from.
    Stable(CheckpointCertificate),
}

/// Which of `records` (in the order they were written) a host keeps once everything at or
/// below the stable checkpoint `low` may go: votes above `low`, the highest stable
/// checkpoint and the highest round asked for (of equals, the last written). Restarting
/// from what is kept gives the same core as restarting from everything. One rule, used by
/// the node's vote log and the simulator alike.
pub fn kept_after_prune(records: &[Record], low: u64) -> Vec<bool> {
    let mut stable: Option<(u64, usize)> = None;
    let mut round: Option<(u64, usize)> = None;
    for (i, record) in records.iter().enumerate() {
        let (best, key) = match record {
            Record::Stable(certificate) => (&mut stable, certificate.payload.height),
            Record::ViewChange { round: r } => (&mut round, *r),
            _ => continue,
        };
        if best.is_none_or(|(k, _)| key >= k) {
            *best = Some((key, i));
        }
    }
    records
        .iter()
        .enumerate()
        .map(|(i, record)| match record {
            Record::Prepared(vote) | Record::Committed { vote, .. } => vote.payload.height > low,
            Record::Stable(_) => stable.is_some_and(|(_, at)| at == i),
            Record::ViewChange { .. } => round.is_some_and(|(_, at)| at == i),
        })
        .collect()
}

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every other validator.
    All,
    /// One validator.
    One(Address),
}

/// What the host must do after a step. [`super::drive`] carries it out in the one right
/// order: make `persist` durable, then send `messages`, hand `commits` to execution in
/// order, set `timers`, and serve the requests. Messages may leave only after the records
/// are durable: that is what keeps a validator that crashes and restarts from ever signing
/// two conflicting votes.
#[derive(Clone, Debug, Default)]
pub struct Actions {
    /// Records to make durable first.
    pub persist: Vec<Record>,
    /// Heights at or below which records are no longer needed (a new stable checkpoint).
    pub prune_below: Option<u64>,
    /// Messages to send once `persist` is durable.
    pub messages: Vec<(Target, Message)>,
    /// Newly committed blocks, in height order, each exactly once.
    pub commits: Vec<(Block, CommitCertificate)>,
    /// Timers to (re)set: `(timer, milliseconds from now)`.
    pub timers: Vec<(Timer, u64)>,
    /// Ask the mempool for up to `max_txs` transactions for `height`, leaving out `exclude`
    /// (transactions already in proposals not yet committed); answer with [`Input::Batch`].
    pub batch_request: Option<BatchRequest>,
    /// Fetch committed blocks `from..=to` with their certificates from peers; answer with
    /// [`Input::Synced`] for each reply.
    pub sync_request: Option<(u64, u64)>,
}

/// A leader's request for transactions to propose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRequest {
    /// The height to propose.
    pub height: u64,
    /// The most transactions a block may hold.
    pub max_txs: usize,
    /// Hashes of transactions in blocks in flight: left out, and so is everything of their
    /// senders after them (such a block may yet be replaced).
    pub exclude: Vec<Hash>,
    /// Hashes of transactions in blocks committed above the stable checkpoint, which the
    /// mempool may still hold (it hears of a block once it is stored): left out, never
    /// proposed twice, without holding back their senders' later transactions.
    pub committed: Vec<Hash>,
}

/// What a node had durably when it stopped: its chain and its own records.
#[derive(Clone, Debug)]
pub struct Restored {
    /// The height of the last committed block (0 for a new node).
    pub committed: u64,
    /// Its hash (the genesis hash for a new node).
    pub last_hash: Hash,
    /// Its timestamp (the genesis time for a new node): the next block must be later.
    pub last_timestamp_ms: u64,
    /// Validator sets by epoch, as far as the ledger knows them.
    pub validators: Vec<(u64, ValidatorSet)>,
    /// Who failed recent turns to lead, as of `committed` (the ledger's).
    pub blames: Blames,
    /// The records persisted since the last prune.
    pub records: Vec<Record>,
}
