//! ConsensusEngine: drives the pure pBFT core. It feeds the core every input, and carries
//! out what the core returns: votes are made durable before they are sent, blocks go to
//! execution in order, timers run on the actor's context. It never waits on another actor
//! inside a handler: answers come back as messages.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, Context, Handler, MessageResult, Recipient, SpawnHandle};
use almagill::block::Block;
use almagill::certificate::CommitCertificate;
use almagill::consensus::{
    drive, Actions, BatchRequest, Host, Input, Message as ConsensusMessage, Pbft, Record, Target,
    Timer, TimerKind,
};
use almagill::crypto::Address;
use tracing::{debug, error, info};

use crate::metrics::Metrics;
use crate::node::clock::now_ms;
use crate::node::messages::{
    Batch, ConsensusView, Execute, Executed, Fetch, Fetched, Inbound, Outbound, ReadConsensus,
    RequestBatch, StoreCheckpoint, TxsWaiting,
};
use crate::store::{StoreError, VoteStore};

/// Where the engine sends what the core asks for.
pub struct EngineRoutes {
    /// Consensus messages to peers (the Network).
    pub outbound: Recipient<Outbound>,
    /// Requests for missing blocks (the Network).
    pub fetch: Recipient<Fetch>,
    /// Requests for a proposal's transactions (the Mempool).
    pub batches: Recipient<RequestBatch>,
    /// Committed blocks to execute (the StateActor).
    pub execute: Recipient<Execute>,
    /// Stable checkpoints, kept for state sync (the BlockStore).
    pub checkpoints: Recipient<StoreCheckpoint>,
}

/// The actor around the consensus core.
pub struct ConsensusEngine {
    /// The pure core.
    pub pbft: Pbft,
    /// This node's own votes, durable before they leave.
    pub votes: VoteStore,
    /// Names of validators, for logs.
    pub names: HashMap<Address, String>,
    /// Where the engine's messages go.
    pub routes: EngineRoutes,
    /// The running timer of each kind.
    pub timers: HashMap<TimerKind, SpawnHandle>,
    /// Actions the core returned when it was built, carried out once the actor starts.
    pub initial: Option<Actions>,
    /// Set when a record could not be made durable: from then on the core is fed nothing,
    /// so no later step can send a vote resting on a record that is not on disk.
    pub stopped: bool,
    /// Where consensus metrics go.
    pub metrics: Metrics,
    /// When the last block committed, for the block interval.
    pub last_commit: Option<Instant>,
    /// Catch-up in progress, for its progress line.
    pub catching_up: Option<CatchUp>,
}

/// How often a node catching up logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(3);

/// A catch-up in progress: where it started, where it is going, when it last said so.
pub struct CatchUp {
    started: Instant,
    from: u64,
    target: u64,
    logged: Instant,
}

impl CatchUp {
    /// The progress line's fields at `height`, if one is due: blocks done of the total, the
    /// rate, and the time left at that rate.
    fn progress(&mut self, height: u64, now: Instant) -> Option<(String, u64, String)> {
        if now.duration_since(self.logged) < PROGRESS_EVERY {
            return None;
        }
        self.logged = now;
        let done = height.saturating_sub(self.from);
        let total = self.target.saturating_sub(self.from);
        let rate = done as f64 / now.duration_since(self.started).as_secs_f64().max(1e-3);
        let left = self.target.saturating_sub(height) as f64;
        let eta = if rate > 0.0 {
            format!("{:.0}s", left / rate)
        } else {
            "unknown".to_string()
        };
        Some((format!("{done}/{total}"), rate as u64, eta))
    }
}

impl ConsensusEngine {
    fn name(&self, address: &Address) -> String {
        self.names
            .get(address)
            .cloned()
            .unwrap_or_else(|| address.short())
    }

    fn step(&mut self, input: Input, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        let round = self.pbft.round();
        let actions = self.pbft.step(input, now_ms());
        self.carry_out(actions, ctx);
        if self.pbft.round() != round {
            info!(target: "consensus", round = self.pbft.round(), mode = ?self.pbft.mode(), "view change");
            self.metrics.view_changes.inc();
        }
        self.metrics.round.set(self.pbft.round() as i64);
        self.metrics.height.set(self.pbft.committed() as i64);
    }

    fn carry_out(&mut self, actions: Actions, ctx: &mut Context<Self>) {
        if let Err(e) = drive(&mut EngineHost { engine: self, ctx }, actions) {
            // Sending a vote that is not on disk could let a restart contradict it.
            error!(target: "consensus", "cannot persist votes: {e}; stopping");
            self.stopped = true;
            actix::System::current().stop_with_code(1);
        }
    }
}

/// The engine as the core's [`Host`]: the vote log, the network, the state actor, the
/// actor's timers and the mempool.
struct EngineHost<'a> {
    engine: &'a mut ConsensusEngine,
    ctx: &'a mut Context<ConsensusEngine>,
}

impl Host for EngineHost<'_> {
    type Error = StoreError;

    fn persist(
        &mut self,
        records: Vec<Record>,
        prune_below: Option<u64>,
    ) -> Result<(), StoreError> {
        if !records.is_empty() {
            let started = Instant::now();
            self.engine.votes.append(&records)?;
            self.engine.metrics.fsynced("votes", started.elapsed());
        }
        for record in records {
            if let Record::Stable(certificate) = record {
                let checkpoints = &self.engine.routes.checkpoints;
                checkpoints.do_send(StoreCheckpoint(certificate));
            }
        }
        if let Some(low) = prune_below {
            // Old records kept a little longer harm nothing: log and go on.
            if let Err(e) = self.engine.votes.prune_below(low) {
                error!(target: "consensus", "cannot prune the vote log: {e}");
            }
        }
        Ok(())
    }

    fn send(&mut self, target: Target, message: ConsensusMessage) {
        if let ConsensusMessage::Vote(vote) = &message {
            let t = vote.payload;
            debug!(target: "consensus", height = t.height, view = t.view, phase = ?t.phase, "vote");
        }
        self.engine
            .routes
            .outbound
            .do_send(Outbound { target, message });
    }

    fn execute(&mut self, block: Block, certificate: CommitCertificate) {
        let header = &block.header.proposal;
        info!(
            target: "consensus",
            height = header.height,
            view = header.view,
            round = self.engine.pbft.round(),
            proposer = %self.engine.name(&header.proposer),
            txs = block.txs.len(),
            hash = %block.hash().short(),
            "block committed"
        );
        let metrics = &self.engine.metrics;
        metrics.blocks.inc();
        metrics.transactions.inc_by(block.txs.len() as u64);
        metrics.block_size.observe(block.txs.len() as f64);
        let now = Instant::now();
        if let Some(last) = self.engine.last_commit.replace(now) {
            metrics.block_interval.observe((now - last).as_secs_f64());
        }
        let height = header.height;
        if let Some(catch_up) = &mut self.engine.catching_up {
            if height >= catch_up.target {
                info!(target: "consensus", height, "caught up");
                self.engine.catching_up = None;
            } else if let Some((synced, rate, eta)) = catch_up.progress(height, now) {
                info!(target: "consensus", synced, "blocks/s" = rate, eta, "catching up");
            }
        }
        self.engine
            .routes
            .execute
            .do_send(Execute { block, certificate });
    }

    fn set_timer(&mut self, timer: Timer, after_ms: u64) {
        if let Some(old) = self.engine.timers.remove(&timer.kind) {
            self.ctx.cancel_future(old);
        }
        let handle = self
            .ctx
            .run_later(Duration::from_millis(after_ms), move |engine, ctx| {
                engine.timers.remove(&timer.kind);
                engine.step(Input::Timeout(timer), ctx);
            });
        self.engine.timers.insert(timer.kind, handle);
    }

    fn request_batch(&mut self, request: BatchRequest) {
        debug!(target: "consensus", height = request.height, "proposing");
        self.engine.routes.batches.do_send(RequestBatch(request));
    }

    fn request_sync(&mut self, from: u64, to: u64) {
        self.engine.metrics.sync_target.set(to as i64);
        match &mut self.engine.catching_up {
            Some(catch_up) => catch_up.target = catch_up.target.max(to),
            None => {
                info!(target: "consensus", from, to, "catching up");
                let now = Instant::now();
                self.engine.catching_up = Some(CatchUp {
                    started: now,
                    from: from.saturating_sub(1),
                    target: to,
                    logged: now,
                });
            }
        }
        self.engine.routes.fetch.do_send(Fetch { from, to });
    }
}

impl Actor for ConsensusEngine {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(actions) = self.initial.take() {
            self.carry_out(actions, ctx);
        }
    }
}

impl Handler<Inbound> for ConsensusEngine {
    type Result = ();

    fn handle(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        let input = Input::Message {
            from: msg.from,
            message: msg.message,
        };
        self.step(input, ctx);
    }
}

impl Handler<Batch> for ConsensusEngine {
    type Result = ();

    fn handle(&mut self, msg: Batch, ctx: &mut Context<Self>) {
        debug!(target: "consensus", height = msg.height, txs = msg.txs.len(), "batch");
        let input = Input::Batch {
            height: msg.height,
            txs: msg.txs,
        };
        self.step(input, ctx);
    }
}

impl Handler<TxsWaiting> for ConsensusEngine {
    type Result = ();

    fn handle(&mut self, msg: TxsWaiting, ctx: &mut Context<Self>) {
        self.step(
            Input::TxsWaiting {
                pending: msg.pending,
            },
            ctx,
        );
    }
}

impl Handler<Executed> for ConsensusEngine {
    type Result = ();

    fn handle(&mut self, msg: Executed, ctx: &mut Context<Self>) {
        let input = Input::Executed {
            height: msg.height,
            state_root: msg.state_root,
            next_validators: msg.next_validators,
        };
        self.step(input, ctx);
    }
}

impl Handler<Fetched> for ConsensusEngine {
    type Result = ();

    fn handle(&mut self, msg: Fetched, ctx: &mut Context<Self>) {
        self.metrics.synced_blocks.inc_by(msg.blocks.len() as u64);
        debug!(
            target: "consensus",
            from = %msg.from.short(),
            first = msg.blocks.first().map(|(b, _)| b.height()),
            last = msg.blocks.last().map(|(b, _)| b.height()),
            "blocks fetched"
        );
        let input = Input::Synced {
            from: msg.from,
            blocks: msg.blocks,
        };
        self.step(input, ctx);
    }
}

impl Handler<ReadConsensus> for ConsensusEngine {
    type Result = MessageResult<ReadConsensus>;

    fn handle(&mut self, _: ReadConsensus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(ConsensusView {
            height: self.pbft.committed(),
            view: self.pbft.view(),
            leader: self.pbft.leader(),
            last_hash: self.pbft.last_hash(),
        })
    }
}
