//! What travels between nodes inside a peer session (see `session.rs` for the handshake and
//! the encryption around it).
//!
//! A frame is one [`Wire`] value in the canonical encoding, at most [`MAX_FRAME`] bytes: the
//! largest real message (a new view carrying full blocks) fits; anything larger is a protocol
//! violation and drops the connection.

use almagill::block::Block;
use almagill::certificate::CommitCertificate;
use almagill::consensus::Message;
use almagill::encoding::{self, MAX_ENCODED_BYTES};
use almagill::ledger::SnapshotChunk;
use almagill::state_sync::{EpochProof, Offer};
use almagill::tx::Transaction;
use bincode::{Decode, Encode};
use bytes::Bytes;

/// The largest frame a peer may send.
pub const MAX_FRAME: usize = MAX_ENCODED_BYTES;

/// Everything one node sends another.
// A value lives from decoding to routing (or from building to encoding) and is moved once;
// boxing the large variant would add an allocation per frame for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Encode, Decode)]
pub enum Wire {
    /// Keepalive: sent when nothing else was, so a dead or silent link is noticed.
    Ping,
    /// A consensus message.
    Consensus(Message),
    /// Transactions admitted to the sender's mempool (gossip).
    Txs(Vec<Transaction>),
    /// Asks for committed blocks `from..=to` with their certificates.
    GetBlocks {
        /// First height wanted.
        from: u64,
        /// Last height wanted.
        to: u64,
    },
    /// Committed blocks with their certificates, in height order.
    Blocks(Vec<(Block, CommitCertificate)>),
    /// A state-sync request.
    SyncRequest(SyncRequest),
    /// The answer to one.
    SyncReply(SyncReply),
}

/// What a node joining by state sync asks a peer (see `state_sync.rs`).
#[derive(Clone, Copy, Debug, Encode, Decode)]
pub enum SyncRequest {
    /// "Which snapshot can you prove?"
    Offer,
    /// "Send the epoch proofs from this height on."
    EpochProofs {
        /// The first epoch end wanted.
        from: u64,
    },
    /// "Send this chunk of your snapshot at this height."
    Chunk {
        /// The snapshot's height.
        height: u64,
        /// The chunk, from 1.
        index: u32,
    },
}

/// A peer's answer to a [`SyncRequest`], checked by the asker before any use.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Encode, Decode)]
pub enum SyncReply {
    /// Its newest provable snapshot, if it has one.
    Offer(Option<Offer>),
    /// Epoch proofs in height order (empty when it has none from there).
    EpochProofs(Vec<EpochProof>),
    /// The chunk, if the snapshot is still stored.
    Chunk(Option<SnapshotChunk>),
}

/// Encodes a message for the wire once; the bytes can be sent to every peer.
pub fn encode(wire: &Wire) -> Bytes {
    Bytes::from(encoding::encode(wire))
}
