//! Mempool: admits transactions (from the admin port and from peers), gossips them, hands
//! the leader batches, and forgets them once committed. The rules live in the pure
//! `almagill::mempool::Pool`; this actor adds signatures checked off the actor thread and
//! the messages to other actors, and stops listening for a while to a peer that gossips a
//! transaction whose signature does not verify.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, MessageResult, Recipient,
    ResponseFuture, WrapFuture,
};
use almagill::crypto::{Address, Hash};
use almagill::ledger::{Ledger, TxError};
use almagill::mempool::{AdmitError, Full, Pool};
use almagill::tx::{verify_signatures, Transaction, TxBody, VerifiedTxs};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use crate::admin::server::PIPELINED;
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
    /// Transactions waiting for their signature check.
    pub unchecked: Unchecked,
    /// Peers whose gossip is ignored, until when: each sent a transaction whose signature
    /// does not verify, which an honest node never does (it gossips only what it admitted,
    /// after checking the signature under the same rule). Without this, one bad signature
    /// per batch would make every batch be checked again one signature at a time. Only
    /// validators hold sessions, so it holds at most one entry per validator.
    pub muted: HashMap<Address, Instant>,
}

/// Transactions whose signatures are still to be checked, from clients and from peers, in
/// arrival order. They are checked in batches off the actor thread, one batch at a time:
/// a batch costs about half as much per signature as checking one by one, and the
/// transactions that arrive while one is checked make the next.
#[derive(Default)]
pub struct Unchecked {
    queue: VecDeque<Pending>,
    /// Whether a batch is being checked.
    running: bool,
}

/// One transaction waiting for its check, and where it came from.
struct Pending {
    tx: Transaction,
    source: Source,
}

/// Where a transaction waiting for its check came from.
enum Source {
    /// A client, waiting for the answer.
    Client(oneshot::Sender<Result<Hash, AdmitError>>),
    /// A peer's gossip, which has no one to answer.
    Peer(Address),
}

/// How long an admitted transaction may wait to be gossiped with others.
const GOSSIP_DELAY: Duration = Duration::from_millis(5);
/// Most transactions gossiped in one frame, and taken from one peer's frame.
const GOSSIP_BATCH: usize = 1024;
/// Most signatures checked in one batch.
const CHECK_BATCH: usize = 1024;
/// Most transactions waiting for their signature check: beyond it clients are told the
/// mempool is full and gossip is dropped, so neither can queue unbounded work.
const MAX_UNCHECKED: usize = 16 * CHECK_BATCH;
/// How long a peer that gossiped a bad signature is not listened to.
const MUTE_FOR: Duration = Duration::from_secs(60);

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
                let pending = mempool.pool.len();
                mempool.waiting.do_send(TxsWaiting { pending });
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

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Room for every `SUBMIT` the admin port pipelines, so none waits outside the
        // mailbox (where it would lose its place in line), and for the other questions.
        ctx.set_mailbox_capacity(PIPELINED + 64);
    }
}

impl Mempool {
    /// Queues a transaction for its signature check (see [`Mempool::check_next`]); `false`
    /// if the queue is full.
    fn queue_check(&mut self, pending: Pending) -> bool {
        let room = self.unchecked.queue.len() < MAX_UNCHECKED;
        if room {
            self.unchecked.queue.push_back(pending);
        }
        room
    }

    /// Starts checking the next batch of waiting signatures, unless a batch is being checked
    /// (its end starts the next). Signatures this node checked before are not checked again.
    fn check_next(&mut self, ctx: &mut Context<Self>) {
        if self.unchecked.running || self.unchecked.queue.is_empty() {
            return;
        }
        self.unchecked.running = true;
        let take = self.unchecked.queue.len().min(CHECK_BATCH);
        let batch: Vec<Pending> = self.unchecked.queue.drain(..take).collect();
        let chain_id = self.chain_id.clone();
        let verified = self.verified.clone();
        let check = actix_rt::task::spawn_blocking(move || {
            let hashes: Vec<Hash> = batch.iter().map(|p| p.tx.hash()).collect();
            let known = verified.known(&hashes);
            let unchecked = batch.iter().zip(&known).filter(|(_, k)| !**k);
            let mut valid = verify_signatures(unchecked.map(|(p, _)| &p.tx), &chain_id).into_iter();
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
            batch.into_iter().zip(checked).collect::<Vec<_>>()
        });
        ctx.spawn(check.into_actor(self).map(|checked, mempool, ctx| {
            mempool.unchecked.running = false;
            // A check that could not run (its thread panicked) admits nothing; its clients
            // are told to retry.
            for (pending, verified) in checked.unwrap_or_default() {
                match pending.source {
                    Source::Client(reply) => {
                        let _ = reply.send(mempool.admit_from_client(pending.tx, verified, ctx));
                    }
                    // A refusal is logged and counted by `admit`; gossip has no one to answer.
                    Source::Peer(peer) => {
                        if !verified {
                            mempool.mute(peer);
                        }
                        let _ = mempool.admit(pending.tx, verified);
                    }
                }
            }
            // The batch's client transactions go to the peers at once, together: the
            // batch already gathered them, and waiting would only add to their latency.
            mempool.gossip();
            mempool.hint(ctx);
            mempool.check_next(ctx);
        }));
    }

    /// Admits a client's transaction whose signature check said `verified`; if admitted,
    /// it is gossiped with the others admitted a moment later.
    fn admit_from_client(
        &mut self,
        tx: Transaction,
        verified: bool,
        ctx: &mut Context<Self>,
    ) -> Result<Hash, AdmitError> {
        let hash = self.admit(tx.clone(), verified)?;
        if self.to_gossip.is_empty() {
            ctx.run_later(GOSSIP_DELAY, |mempool, _| mempool.gossip());
        }
        self.to_gossip.push(tx);
        if self.to_gossip.len() >= GOSSIP_BATCH {
            self.gossip();
        }
        Ok(hash)
    }
}

/// The rejection reason counted for gossip from a muted peer.
const MUTED: &str = "muted_peer";

impl Mempool {
    /// Stops listening to `peer`'s gossip for [`MUTE_FOR`], and drops what it sent that
    /// still waits for its check (once: a peer muted already just stays muted longer).
    fn mute(&mut self, peer: Address) {
        let now = Instant::now();
        self.muted.retain(|_, until| *until > now);
        let newly = self.muted.insert(peer, now + MUTE_FOR).is_none();
        if !newly {
            return;
        }
        warn!(target: "mempool", peer = %peer.short(),
            "gossiped a transaction whose signature does not verify; its gossip is ignored for {MUTE_FOR:?}");
        let before = self.unchecked.queue.len();
        self.unchecked
            .queue
            .retain(|p| !matches!(p.source, Source::Peer(from) if from == peer));
        self.metrics
            .rejected_many(MUTED, before - self.unchecked.queue.len());
    }

    /// Whether `peer`'s gossip is ignored now; forgets a mute that has run out.
    fn is_muted(&mut self, peer: &Address) -> bool {
        match self.muted.get(peer) {
            Some(until) if Instant::now() < *until => true,
            Some(_) => {
                self.muted.remove(peer);
                false
            }
            None => false,
        }
    }
}

/// What a client waiting on a check that never ended is told.
const RETRY: AdmitError = AdmitError::MempoolFull(Full::Checking);

impl Handler<Submit> for Mempool {
    type Result = ResponseFuture<Result<Hash, AdmitError>>;

    fn handle(&mut self, msg: Submit, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(e) = self.pool.quick_refusal(&msg.0, &self.ledger) {
            self.metrics.rejected(e.code());
            return Box::pin(std::future::ready(Err(e)));
        }
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            tx: msg.0,
            source: Source::Client(reply),
        };
        if !self.queue_check(pending) {
            self.metrics.rejected(RETRY.code());
            return Box::pin(std::future::ready(Err(RETRY)));
        }
        self.check_next(ctx);
        Box::pin(async move { answer.await.unwrap_or(Err(RETRY)) })
    }
}

impl Handler<PeerTxs> for Mempool {
    type Result = ();

    fn handle(&mut self, msg: PeerTxs, ctx: &mut Context<Self>) {
        if self.is_muted(&msg.from) {
            self.metrics.rejected_many(MUTED, msg.txs.len());
            return;
        }
        // Each transaction is verified once per node: held ones are dropped first.
        let pool = &self.pool;
        let fresh: Vec<Transaction> = msg
            .txs
            .into_iter()
            .filter(|tx| !pool.contains(&tx.hash()))
            .take(GOSSIP_BATCH)
            .collect();
        for tx in fresh {
            let source = Source::Peer(msg.from);
            if !self.queue_check(Pending { tx, source }) {
                debug!(target: "mempool", "gossip dropped: too many transactions wait for their check");
                break;
            }
        }
        self.check_next(ctx);
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

    fn handle(&mut self, msg: Committed, ctx: &mut Context<Self>) {
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
        // The count consensus holds went stale with the commit (see `full_block_waits`).
        if !self.pool.is_empty() {
            self.hint(ctx);
        }
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
        // Signed here a moment ago: there is nothing to check.
        let hash = self.admit_from_client(tx, true, ctx)?;
        self.hint(ctx);
        Ok(hash)
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
