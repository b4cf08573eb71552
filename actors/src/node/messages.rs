//! The typed messages the node's actors exchange.

use actix::Message;
use almagill::block::Block;
use almagill::certificate::CommitCertificate;
use almagill::consensus::{self, BatchRequest, Target};
use almagill::crypto::{Address, Hash};
use almagill::tx::Transaction;
use almagill::validators::ValidatorSet;

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
pub struct PeerTxs(pub Vec<Transaction>);

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

/// A block was executed (StateActor → Mempool), in order, each exactly once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Committed {
    /// The block.
    pub block: Block,
}

/// Store a committed block durably (StateActor → BlockStore).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Append {
    /// The block.
    pub block: Block,
    /// Its certificate.
    pub certificate: CommitCertificate,
}

/// Committed blocks `from..=to`, as many as the store serves at once.
#[derive(Message)]
#[rtype(result = "Vec<(Block, CommitCertificate)>")]
pub struct GetBlocks {
    /// First height.
    pub from: u64,
    /// Last height.
    pub to: u64,
}

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
