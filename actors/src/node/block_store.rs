//! BlockStore: the committed chain on disk, and the blocks peers and admins ask for.

use std::time::Instant;

use actix::{Actor, Context, Handler};
use almagill::block::Block;
use almagill::certificate::CommitCertificate;
use tracing::error;

use crate::metrics::Metrics;
use crate::node::messages::{Append, GetBlocks, ServeBlocks};
use crate::store::ChainStore;

/// Owns the chain log: appends each committed block in one fsynced write, serves ranges.
pub struct BlockStore {
    /// The durable chain.
    pub chain: ChainStore,
    /// Where fsync times go.
    pub metrics: Metrics,
}

impl Actor for BlockStore {
    type Context = Context<Self>;
}

impl Handler<Append> for BlockStore {
    type Result = ();

    fn handle(&mut self, msg: Append, _: &mut Context<Self>) {
        if msg.block.height() != self.chain.height() + 1 {
            return;
        }
        let started = Instant::now();
        let appended = self.chain.append(msg.block, msg.certificate);
        self.metrics.fsynced("chain", started.elapsed());
        if let Err(e) = appended {
            // A node that cannot store its chain must not go on as if it had.
            error!(target: "store", "cannot write the chain: {e}; stopping");
            actix::System::current().stop_with_code(1);
        }
    }
}

impl Handler<GetBlocks> for BlockStore {
    type Result = Vec<(Block, CommitCertificate)>;

    fn handle(&mut self, msg: GetBlocks, _: &mut Context<Self>) -> Self::Result {
        self.chain.range(msg.from, msg.to)
    }
}

impl Handler<ServeBlocks> for BlockStore {
    type Result = Vec<(Block, CommitCertificate)>;

    fn handle(&mut self, msg: ServeBlocks, _: &mut Context<Self>) -> Self::Result {
        self.chain.range_within(msg.from, msg.to, msg.max_bytes)
    }
}
