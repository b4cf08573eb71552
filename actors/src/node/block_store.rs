//! BlockStore: the committed chain on disk, and the blocks and transactions peers and admins
//! ask for.

use std::time::Instant;

use actix::{Actor, Context, Handler, MessageResult, Recipient};
use almagill::block::Block;
use almagill::certificate::CommitCertificate;
use almagill::crypto::Hash;
use tracing::error;

use crate::metrics::Metrics;
use crate::node::messages::{
    Committed, ReadBlock, ReadTx, ServeBlocks, ServeSync, Store, StoreCheckpoint, TxOutcome,
};
use crate::node::wire::{SyncReply, SyncRequest};
use crate::store::{ChainStore, Commit, StoreError};

/// Owns the chain database: stores each executed block in one fsynced transaction, then
/// tells the mempool; serves blocks and the transaction index.
///
/// The mempool hears of a block only once it is stored, so a transaction the mempool no
/// longer holds is already in the index if it was committed (the admin port relies on it).
pub struct BlockStore {
    /// The durable chain.
    pub chain: ChainStore,
    /// Told of each stored block (the Mempool).
    pub committed: Recipient<Committed>,
    /// Where fsync times go.
    pub metrics: Metrics,
}

impl Actor for BlockStore {
    type Context = Context<Self>;
}

impl Handler<Store> for BlockStore {
    type Result = ();

    fn handle(&mut self, msg: Store, _: &mut Context<Self>) {
        let height = msg.block.height();
        if height != self.chain.height() + 1 {
            // The state actor executes and hands over blocks in order: a gap here means a
            // bug, and going on would leave consensus ahead of a chain that stopped.
            error!(target: "store", height, stored = self.chain.height(), "a block out of order reached the store; stopping");
            actix::System::current().stop_with_code(1);
            return;
        }
        let started = Instant::now();
        let stored = self.chain.append(&Commit {
            block: &msg.block,
            certificate: &msg.certificate,
            results: &msg.results,
            state_root: msg.state_root,
            snapshot: msg.snapshot,
            epoch_end: msg.epoch_end,
        });
        self.metrics.fsynced("chain", started.elapsed());
        if let Some(took) = self.chain.merge_took() {
            self.metrics.fsynced("index", took);
        }
        match stored {
            Ok(()) => self.committed.do_send(Committed { block: msg.block }),
            Err(e) => {
                // A node that cannot store its chain must not go on as if it had.
                error!(target: "store", "cannot write the chain: {e}; stopping");
                actix::System::current().stop_with_code(1);
            }
        }
    }
}

impl Handler<ServeBlocks> for BlockStore {
    type Result = Vec<(Block, CommitCertificate)>;

    fn handle(&mut self, msg: ServeBlocks, _: &mut Context<Self>) -> Self::Result {
        self.chain
            .range_within(msg.from, msg.to, msg.max_bytes)
            .unwrap_or_else(|e| {
                error!(target: "store", "cannot read blocks for a peer: {e}");
                Vec::new()
            })
    }
}

impl Handler<StoreCheckpoint> for BlockStore {
    type Result = ();

    fn handle(&mut self, msg: StoreCheckpoint, _: &mut Context<Self>) {
        // Only state sync reads these: a node that cannot keep one still runs.
        if let Err(e) = self.chain.put_checkpoint(&msg.0) {
            error!(target: "store", "cannot keep a stable checkpoint: {e}");
        }
    }
}

/// Most bytes of epoch proofs in one reply.
const PROOF_REPLY_BYTES: usize = 2 * 1024 * 1024;

impl Handler<ServeSync> for BlockStore {
    type Result = MessageResult<ServeSync>;

    fn handle(&mut self, msg: ServeSync, _: &mut Context<Self>) -> Self::Result {
        let reply = match msg.0 {
            SyncRequest::Offer => self.chain.offer().map(SyncReply::Offer),
            SyncRequest::EpochProofs { from } => self
                .chain
                .epoch_proofs(from, PROOF_REPLY_BYTES)
                .map(SyncReply::EpochProofs),
            SyncRequest::Chunk { height, index } => {
                self.chain.chunk(height, index).map(SyncReply::Chunk)
            }
        };
        MessageResult(reply.unwrap_or_else(|e| {
            error!(target: "store", "cannot serve state sync: {e}");
            SyncReply::Offer(None)
        }))
    }
}

impl Handler<ReadBlock> for BlockStore {
    type Result = Result<Option<(Block, CommitCertificate, Hash)>, String>;

    fn handle(&mut self, msg: ReadBlock, _: &mut Context<Self>) -> Self::Result {
        let height = msg.0.unwrap_or(self.chain.height());
        let read = || -> Result<_, StoreError> {
            let Some((block, certificate)) = self.chain.block(height)? else {
                return Ok(None);
            };
            Ok(self
                .chain
                .state_root(height)?
                .map(|root| (block, certificate, root)))
        };
        read().map_err(|e| e.to_string())
    }
}

impl Handler<ReadTx> for BlockStore {
    type Result = Result<Option<TxOutcome>, String>;

    fn handle(&mut self, msg: ReadTx, _: &mut Context<Self>) -> Self::Result {
        let record = self.chain.tx(&msg.0).map_err(|e| e.to_string())?;
        Ok(record.map(|r| match r.result {
            Ok(()) => TxOutcome::Committed(r.height),
            Err(e) => TxOutcome::Failed(r.height, e.code()),
        }))
    }
}
