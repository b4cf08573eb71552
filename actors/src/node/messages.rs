//! Every message the node's actors send one another (an actor's messages to itself stay in
//! its own file). Actors hold `Recipient`s of these, never each other's addresses, so each
//! can be built and tested alone.

use std::net::SocketAddr;

use actix::Message;
use almagill::block::Block;
use almagill::certificate::CommitCertificate;
use almagill::consensus::{self, BatchRequest, CheckpointCertificate, Target};
use almagill::crypto::{Address, Hash, Keypair};
use almagill::ledger::{Account, RootParts, SnapshotChunk, SnapshotHead, TxError};
use almagill::mempool::AdmitError;
use almagill::tx::{Transaction, TxKind};
use almagill::validators::ValidatorSet;
use bytes::Bytes;

use crate::node::wire::{SyncReply, SyncRequest};

/// A consensus message from a connected validator (PeerConnection → ConsensusEngine).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Inbound {
    /// The peer the connection proved to be.
    pub from: Address,
    /// The message.
    pub message: consensus::Message,
}

/// A consensus message to send (ConsensusEngine → Network).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Outbound {
    /// Every peer, or one.
    pub target: Target,
    /// The message.
    pub message: consensus::Message,
}

/// Transactions to gossip to every peer (Mempool → Network).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Gossip(pub Vec<Transaction>);

/// Transactions gossiped by a peer (PeerConnection → Mempool).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PeerTxs {
    /// The validator that sent them (proven by the session).
    pub from: Address,
    /// The transactions.
    pub txs: Vec<Transaction>,
}

/// The leader wants transactions (ConsensusEngine → Mempool).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RequestBatch(pub BatchRequest);

/// Transactions for a proposal (Mempool → ConsensusEngine).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Batch {
    /// The height they are for.
    pub height: u64,
    /// The transactions.
    pub txs: Vec<Transaction>,
}

/// Transactions were admitted: a leader waiting to ask for a batch may ask now
/// (Mempool → ConsensusEngine).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TxsWaiting {
    /// How many transactions the mempool holds.
    pub pending: usize,
}

/// A committed block to execute, in order (ConsensusEngine → StateActor).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Execute {
    /// The block.
    pub block: Block,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
}

/// A block has been executed (StateActor → ConsensusEngine).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Executed {
    /// Its height.
    pub height: u64,
    /// The state root after it.
    pub state_root: Hash,
    /// A validator set fixed at this height, for a later epoch.
    pub next_validators: Option<(u64, ValidatorSet)>,
}

/// A block was executed and stored (BlockStore → Mempool), in order, each exactly once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Committed {
    /// The block.
    pub block: Block,
}

/// Store an executed block durably, with what it did (StateActor → BlockStore).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Store {
    /// The block.
    pub block: Block,
    /// Its certificate.
    pub certificate: CommitCertificate,
    /// What each of its transactions did, in block order.
    pub results: Vec<Result<(), TxError>>,
    /// The state root after it.
    pub state_root: Hash,
    /// A snapshot of the ledger after it, when one is due.
    pub snapshot: Option<(SnapshotHead, Vec<SnapshotChunk>)>,
    /// At an epoch's last block, what its state root is made of.
    pub epoch_end: Option<RootParts>,
}

/// A stable checkpoint to keep for state sync (ConsensusEngine → BlockStore).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StoreCheckpoint(pub CheckpointCertificate);

/// A peer's state-sync request (PeerConnection → BlockStore).
#[derive(Message)]
#[rtype(result = "SyncReply")]
pub struct ServeSync(pub SyncRequest);

/// A stored block with its certificate and the state root after it: `None` asks for the
/// last stored block (Admin → BlockStore). An error is the store's, as text.
#[derive(Message)]
#[rtype(result = "Result<Option<(Block, CommitCertificate, Hash)>, String>")]
pub struct ReadBlock(pub Option<u64>);

/// Committed blocks `from..=to` for a peer catching up, stopping at `max_bytes` of
/// encoding (PeerConnection → BlockStore).
#[derive(Message)]
#[rtype(result = "Vec<(Block, CommitCertificate)>")]
pub struct ServeBlocks {
    /// First height.
    pub from: u64,
    /// Last height.
    pub to: u64,
    /// The reply's size budget.
    pub max_bytes: usize,
}

/// A peer answered this node's request for blocks (PeerConnection → Network).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Answered(pub Address);

/// Fetch missing committed blocks from peers (ConsensusEngine → Network).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Fetch {
    /// First height missing.
    pub from: u64,
    /// Last height wanted.
    pub to: u64,
}

/// Blocks fetched from a peer (PeerConnection → ConsensusEngine).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Fetched {
    /// The peer that sent them.
    pub from: Address,
    /// The blocks, with their commit certificates.
    pub blocks: Vec<(Block, CommitCertificate)>,
}

// ---------------------------------------------------------------------------------------
// Questions the admin port asks of consensus
// ---------------------------------------------------------------------------------------

/// What the admin port shows of consensus.
pub struct ConsensusView {
    /// Height of the last committed block.
    pub height: u64,
    /// The view of the next block.
    pub view: u64,
    /// Its leader.
    pub leader: Option<Address>,
    /// The hash of the last committed block.
    pub last_hash: Hash,
}

/// Reads the consensus status.
#[derive(Message)]
#[rtype(result = "ConsensusView")]
pub struct ReadConsensus;

// ---------------------------------------------------------------------------------------
// Transactions from the admin port, and questions about the mempool
// ---------------------------------------------------------------------------------------

/// Admit one transaction submitted through the admin port; gossip it if admitted.
#[derive(Message)]
#[rtype(result = "Result<Hash, AdmitError>")]
pub struct Submit(pub Transaction);

/// The node signs a transaction of `kind` with `key`, at the sender's next nonce, and
/// admits it. Choosing the nonce here, in the actor, means concurrent requests for one
/// account never reuse a nonce.
#[derive(Message)]
#[rtype(result = "Result<Hash, AdmitError>")]
pub struct SignAndSubmit {
    /// The sender's key.
    pub key: Keypair,
    /// What to do.
    pub kind: TxKind,
}

/// What the admin port reads of the mempool.
pub struct MempoolView {
    /// Transactions pending.
    pub len: usize,
    /// Whether the transaction asked about is pending.
    pub pending: bool,
}

/// Reads the mempool (and whether transaction `tx` is pending).
#[derive(Message)]
#[rtype(result = "MempoolView")]
pub struct ReadMempool {
    /// The transaction asked about.
    pub tx: Option<Hash>,
}

// ---------------------------------------------------------------------------------------
// Peer connections
// ---------------------------------------------------------------------------------------

/// A peer connection ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnected {
    /// The peer it was with.
    pub peer: Address,
    /// The connection's id (a newer connection to the same peer stays).
    pub id: u64,
}

/// One configured peer as the admin port shows it.
pub struct PeerState {
    /// Its validator key.
    pub address: Address,
    /// Where it listens.
    pub endpoint: SocketAddr,
    /// Whether a connection is up.
    pub connected: bool,
}

/// Lists the configured peers.
#[derive(Message)]
#[rtype(result = "Vec<PeerState>")]
pub struct ReadPeers;

// ---------------------------------------------------------------------------------------
// Frames to one peer
// ---------------------------------------------------------------------------------------

/// How urgent an outgoing frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Consensus messages and catch-up: never dropped while the peer keeps up.
    Consensus,
    /// Transaction gossip: dropped first.
    Gossip,
}

/// A frame to send to this peer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendFrame {
    /// The encoded frame.
    pub frame: Bytes,
    /// Its priority.
    pub priority: Priority,
}

/// Closes this connection: a newer session with the same peer replaced it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Close;

// ---------------------------------------------------------------------------------------
// Questions about committed state
// ---------------------------------------------------------------------------------------

/// Where a transaction ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxOutcome {
    /// Applied in the block at this height.
    Committed(u64),
    /// Recorded as failed in the block at this height, with the reason's code.
    Failed(u64, &'static str),
}

/// A snapshot of committed state for the admin port.
pub struct StateView {
    /// The account asked for, if any.
    pub account: Option<Account>,
    /// Sum of all balances and stakes.
    pub total_supply: u128,
    /// The genesis supply.
    pub genesis_supply: u128,
    /// The validators for the next block.
    pub validators: Option<ValidatorSet>,
}

/// Reads committed state (about `account`, if given).
#[derive(Message)]
#[rtype(result = "StateView")]
pub struct ReadState(pub Option<Address>);

/// Where a transaction ended up, if it has been committed (Admin → BlockStore). An error is
/// the store's, as text.
#[derive(Message)]
#[rtype(result = "Result<Option<TxOutcome>, String>")]
pub struct ReadTx(pub Hash);
