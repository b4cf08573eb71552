//! Mempool: admits transactions (from the admin port and from peers), gossips them, hands
//! the leader batches, and forgets them once committed. The rules live in the pure
//! `almagill::mempool::Pool`; this actor adds signatures checked off the actor thread and
//! the messages to other actors.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, MessageResult, Recipient, WrapFuture,
};
use almagill::crypto::Hash;
use almagill::ledger::{Ledger, TxError};
use almagill::mempool::{AdmitError, Pool};
use almagill::tx::{verify_signatures, Transaction, TxBody, TxFormatError, VerifiedTxs};
use tracing::debug;

use crate::metrics::Metrics;
use crate::node::clock::now_ms;
use crate::node::messages::{
    Batch, Committed, Gossip, MempoolView, PeerTxs, ReadMempool, RequestBatch, SignAndSubmit,
    Submit, TxsWaiting,
};

/// Pending transactions and the committed state they are checked against.
pub struct Mempool {
    /// The pending transactions and their rules.
    pub pool: Pool,
    /// Committed state, as of the last executed block. The mempool executes each block on
    /// its own copy: that costs the block's execution (microseconds), where sharing the
    /// StateActor's ledger would mean copying the whole state at every block.
    pub ledger: Ledger,
    /// The chain id signatures must cover.
    pub chain_id: String,
    /// Where gossip goes (the Network).
    pub gossip: Recipient<Gossip>,
    /// Where batches go (the ConsensusEngine).
    pub batches: Recipient<Batch>,
    /// Told that transactions were admitted (the ConsensusEngine), once per burst.
    pub waiting: Recipient<TxsWaiting>,
    /// A word to the ConsensusEngine that transactions wait is due shortly.
    pub hint_due: bool,
    /// Where mempool metrics go.
    pub metrics: Metrics,
    /// When each held transaction was admitted, for the commit latency (as bounded as the
    /// pool: entries leave with their transactions).
    pub admitted_at: HashMap<Hash, Instant>,
    /// Transactions admitted from clients and not yet gossiped: sent together a moment
    /// later, so a burst travels in a few frames instead of one frame each.
    pub to_gossip: Vec<Transaction>,
    /// Signatures this node checked (shared with the ConsensusEngine): each transaction's
    /// is checked once, here or in a proposal body, whichever sees it first.
    pub verified: Arc<VerifiedTxs>,
}

/// How long an admitted transaction may wait to be gossiped with others.
const GOSSIP_DELAY: Duration = Duration::from_millis(5);
/// Most transactions gossiped in one frame, and taken from one peer's frame.
const GOSSIP_BATCH: usize = 1024;

impl Mempool {
    /// Admits one transaction and keeps the metrics.
    fn admit(&mut self, tx: Transaction, verified: bool) -> Result<Hash, AdmitError> {
        match self.pool.admit(tx, verified, &self.ledger, now_ms()) {
            Ok(hash) => {
                self.admitted_at.insert(hash, Instant::now());
                self.gauges();
                Ok(hash)
            }
            Err(e) => {
                debug!(target: "mempool", "transaction refused: {e}");
                self.metrics.rejected(e.code());
                Err(e)
            }
        }
    }

    /// Tells the ConsensusEngine, once for all admissions of this burst, that transactions
    /// wait: a leader with nothing in flight proposes at once instead of at its next poll.
    fn hint(&mut self, ctx: &mut Context<Self>) {
        if !self.hint_due {
            self.hint_due = true;
            ctx.run_later(Duration::ZERO, |mempool, _| {
                mempool.hint_due = false;
                mempool.waiting.do_send(TxsWaiting);
            });
        }
    }

    /// Sends what waits to be gossiped, if anything.
    fn gossip(&mut self) {
        if !self.to_gossip.is_empty() {
            self.gossip
                .do_send(Gossip(std::mem::take(&mut self.to_gossip)));
        }
    }

    /// Sets the size gauges.
    fn gauges(&self) {
        self.metrics.mempool_size.set(self.pool.len() as i64);
        self.metrics.mempool_waiting.set(self.pool.waiting() as i64);
        self.metrics.mempool_bytes.set(self.pool.bytes() as i64);
    }
}

impl Actor for Mempool {
    type Context = Context<Self>;
}

impl Handler<Submit> for Mempool {
    type Result = Result<Hash, AdmitError>;

    fn handle(&mut self, msg: Submit, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(e) = self.pool.quick_refusal(&msg.0, &self.ledger) {
            self.metrics.rejected(e.code());
            return Err(e);
        }
        let hash = msg.0.hash();
        let verified = self.verified.known(&[hash])[0]
            || match msg.0.verify(&self.chain_id) {
                Ok(()) => {
                    self.verified.add([hash]);
                    true
                }
                Err(TxFormatError::InvalidSignature) => false,
                // Malformed: `admit` refuses it with its own code, checked first.
                Err(_) => true,
            };
        self.admit(msg.0.clone(), verified)?;
        self.hint(ctx);
        if self.to_gossip.is_empty() {
            ctx.run_later(GOSSIP_DELAY, |mempool, _| mempool.gossip());
        }
        self.to_gossip.push(msg.0);
        if self.to_gossip.len() >= GOSSIP_BATCH {
            self.gossip();
        }
        Ok(hash)
    }
}

impl Handler<PeerTxs> for Mempool {
    type Result = ();

    fn handle(&mut self, msg: PeerTxs, ctx: &mut Context<Self>) {
        // Each transaction is verified once per node: known ones are dropped first.
        let fresh: Vec<Transaction> = msg
            .0
            .into_iter()
            .filter(|tx| !self.pool.contains(&tx.hash()))
            .take(GOSSIP_BATCH)
            .collect();
        if fresh.is_empty() {
            return;
        }
        let chain_id = self.chain_id.clone();
        let verified = self.verified.clone();
        let check = actix_rt::task::spawn_blocking(move || {
            let hashes: Vec<Hash> = fresh.iter().map(Transaction::hash).collect();
            let known = verified.known(&hashes);
            let unchecked = fresh.iter().zip(&known).filter(|(_, k)| !**k);
            let mut valid = verify_signatures(unchecked.map(|(tx, _)| tx), &chain_id).into_iter();
            let checked: Vec<bool> = known
                .iter()
                .map(|k| *k || valid.next().unwrap_or(false))
                .collect();
            let newly = hashes.iter().zip(&known).zip(&checked);
            verified.add(
                newly
                    .filter(|((_, k), ok)| !**k && **ok)
                    .map(|((h, _), _)| *h),
            );
            fresh.into_iter().zip(checked).collect::<Vec<_>>()
        });
        ctx.spawn(check.into_actor(self).map(|checked, mempool, ctx| {
            for (tx, verified) in checked.unwrap_or_default() {
                // A refusal is logged and counted by `admit`; gossip has no one to answer.
                let _ = mempool.admit(tx, verified);
            }
            mempool.hint(ctx);
        }));
    }
}

impl Handler<RequestBatch> for Mempool {
    type Result = ();

    fn handle(&mut self, msg: RequestBatch, _: &mut Context<Self>) {
        let exclude: HashSet<Hash> = msg.0.exclude.into_iter().collect();
        let committed: HashSet<Hash> = msg.0.committed.into_iter().collect();
        let txs = self.pool.propose(msg.0.max_txs, &exclude, &committed);
        self.batches.do_send(Batch {
            height: msg.0.height,
            txs,
        });
    }
}

impl Handler<Committed> for Mempool {
    type Result = ();

    fn handle(&mut self, msg: Committed, _: &mut Context<Self>) {
        if let Err(e) = self.ledger.apply_block(&msg.block) {
            tracing::error!(target: "mempool", "its copy of the state is out of step: {e}");
        }
        self.pool.on_commit(&msg.block.txs, &self.ledger, now_ms());
        for tx in &msg.block.txs {
            if let Some(at) = self.admitted_at.remove(&tx.hash()) {
                self.metrics
                    .commit_latency
                    .observe(at.elapsed().as_secs_f64());
            }
        }
        let pool = &self.pool;
        self.admitted_at.retain(|hash, _| pool.contains(hash));
        self.gauges();
    }
}

impl Handler<SignAndSubmit> for Mempool {
    type Result = Result<Hash, AdmitError>;

    fn handle(&mut self, msg: SignAndSubmit, ctx: &mut Context<Self>) -> Self::Result {
        let from = msg.key.address();
        let account = self
            .ledger
            .account(&from)
            .ok_or(AdmitError::Rejected(TxError::UnknownAccount(from)))?;
        let nonce = account.nonce + self.pool.pending_count(&from) as u64;
        let tx = TxBody {
            from,
            nonce,
            kind: msg.kind,
        }
        .sign(&msg.key, &self.chain_id);
        <Self as Handler<Submit>>::handle(self, Submit(tx), ctx)
    }
}

impl Handler<ReadMempool> for Mempool {
    type Result = MessageResult<ReadMempool>;

    fn handle(&mut self, msg: ReadMempool, _: &mut Context<Self>) -> Self::Result {
        MessageResult(MempoolView {
            len: self.pool.len(),
            pending: msg.tx.is_some_and(|h| self.pool.contains(&h)),
        })
    }
}
