//! ConsensusEngine: drives the pure pBFT core. It feeds the core every input, and carries
//! out what the core returns: votes are made durable before they are sent, blocks go to
//! execution in order, timers run on the actor's context. It never waits on another actor
//! inside a handler: answers come back as messages.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult, SpawnHandle};
use almagill::block::Block;
use almagill::certificate::CommitCertificate;
use almagill::consensus::{Actions, Input, Pbft, TimerKind};
use almagill::crypto::{Address, Hash};
use tracing::{debug, error, info};

use crate::node::mempool::Mempool;
use crate::node::messages::{
    Batch, Execute, Executed, Fetch, Fetched, Inbound, Outbound, RequestBatch,
};
use crate::node::network::Network;
use crate::node::state::StateActor;
use crate::store::VoteStore;

/// Milliseconds since the Unix epoch: the core's clock and blocks' timestamps.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The actor around the consensus core.
pub struct ConsensusEngine {
    /// The pure core.
    pub pbft: Pbft,
    /// This node's own votes, durable before they leave.
    pub votes: VoteStore,
    /// Names of validators, for logs.
    pub names: HashMap<Address, String>,
    /// Where messages go.
    pub network: Addr<Network>,
    /// Where batches come from.
    pub mempool: Addr<Mempool>,
    /// Where committed blocks are executed.
    pub state: Addr<StateActor>,
    /// The running timer of each kind.
    pub timers: HashMap<TimerKind, SpawnHandle>,
    /// Blocks fetched from peers, waiting to be fed to the core in height order.
    pub fetched: BTreeMap<u64, (Block, CommitCertificate)>,
    /// The height catch-up is fetching up to.
    pub sync_to: u64,
    /// The height the ledger has executed.
    pub executed: u64,
    /// Actions the core returned when it was built, carried out once the actor starts.
    pub initial: Option<Actions>,
}

impl ConsensusEngine {
    fn name(&self, address: &Address) -> String {
        self.names
            .get(address)
            .cloned()
            .unwrap_or_else(|| address.to_string()[..8].to_string())
    }

    fn step(&mut self, input: Input, ctx: &mut Context<Self>) {
        let actions = self.pbft.step(input, now_ms());
        self.carry_out(actions, ctx);
    }

    fn carry_out(&mut self, actions: Actions, ctx: &mut Context<Self>) {
        if !actions.persist.is_empty() {
            if let Err(e) = self.votes.append(&actions.persist) {
                // Sending a vote that is not on disk could let a restart contradict it.
                error!(target: "consensus", "cannot persist votes: {e}; stopping");
                actix::System::current().stop_with_code(1);
                return;
            }
        }
        if let Some(low) = actions.prune_below {
            if let Err(e) = self.votes.prune_below(low) {
                error!(target: "consensus", "cannot prune the vote log: {e}");
            }
        }
        for (target, message) in actions.messages {
            if let almagill::consensus::Message::Vote(vote) = &message {
                let t = vote.payload;
                debug!(target: "consensus", height = t.height, view = t.view, phase = ?t.phase, "vote");
            }
            self.network.do_send(Outbound { target, message });
        }
        for (block, certificate) in actions.commits {
            let header = &block.header.proposal;
            info!(
                target: "consensus",
                height = header.height,
                view = header.view,
                round = self.pbft.round(),
                proposer = %self.name(&header.proposer),
                txs = block.txs.len(),
                hash = %short(&block.hash()),
                "block committed"
            );
            self.state.do_send(Execute { block, certificate });
        }
        for (timer, after) in actions.timers {
            if let Some(old) = self.timers.remove(&timer.kind) {
                ctx.cancel_future(old);
            }
            let handle = ctx.run_later(Duration::from_millis(after), move |engine, ctx| {
                engine.timers.remove(&timer.kind);
                let round = engine.pbft.round();
                engine.step(Input::Timeout(timer), ctx);
                if engine.pbft.round() != round {
                    info!(target: "consensus", round = engine.pbft.round(), mode = ?engine.pbft.mode(), "view change");
                }
            });
            self.timers.insert(timer.kind, handle);
        }
        if let Some(request) = actions.batch_request {
            debug!(target: "consensus", height = request.height, "proposing");
            self.mempool.do_send(RequestBatch(request));
        }
        if let Some((from, to)) = actions.sync_request {
            info!(target: "consensus", from, to, "catching up");
            self.sync_to = self.sync_to.max(to);
            self.network.do_send(Fetch { from, to });
        }
    }
}

fn short(hash: &Hash) -> String {
    hash.to_string()[..12].to_string()
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
        let round = self.pbft.round();
        self.step(
            Input::Message {
                from: msg.from,
                message: msg.message,
            },
            ctx,
        );
        if self.pbft.round() != round {
            info!(target: "consensus", round = self.pbft.round(), mode = ?self.pbft.mode(), "view change");
        }
    }
}

impl Handler<Batch> for ConsensusEngine {
    type Result = ();

    fn handle(&mut self, msg: Batch, ctx: &mut Context<Self>) {
        self.step(
            Input::Batch {
                height: msg.height,
                txs: msg.txs,
            },
            ctx,
        );
    }
}

impl Handler<Executed> for ConsensusEngine {
    type Result = ();

    fn handle(&mut self, msg: Executed, ctx: &mut Context<Self>) {
        self.executed = msg.height;
        self.step(
            Input::Executed {
                height: msg.height,
                state_root: msg.state_root,
                next_validators: msg.next_validators,
            },
            ctx,
        );
        if !self.fetched.is_empty() {
            self.feed_fetched(ctx);
        }
    }
}

impl ConsensusEngine {
    /// Feeds fetched blocks to the core in height order while it takes them (a block whose
    /// epoch's validators are not known yet waits for execution to catch up), then asks for
    /// more if catch-up is not done.
    fn feed_fetched(&mut self, ctx: &mut Context<Self>) {
        while let Some((block, certificate)) = self.fetched.remove(&(self.pbft.committed() + 1)) {
            let before = self.pbft.committed();
            self.step(
                Input::Synced {
                    block: block.clone(),
                    certificate: certificate.clone(),
                },
                ctx,
            );
            if self.pbft.committed() == before {
                // Refused. If execution is not behind, the validators were known and the
                // block is bad: drop it and fetch again. Otherwise wait for execution.
                if self.executed < before {
                    self.fetched.insert(before + 1, (block, certificate));
                }
                break;
            }
        }
        let committed = self.pbft.committed();
        self.fetched = self.fetched.split_off(&(committed + 1));
        if self.fetched.is_empty() && committed < self.sync_to {
            self.network.do_send(Fetch {
                from: committed + 1,
                to: self.sync_to,
            });
        }
    }
}

impl Handler<Fetched> for ConsensusEngine {
    type Result = ();

    fn handle(&mut self, msg: Fetched, ctx: &mut Context<Self>) {
        let committed = self.pbft.committed();
        for (block, certificate) in msg.0 {
            // Bounded: only a window of heights above what is committed is kept.
            let height = block.height();
            if height > committed && height <= committed + 1024 {
                self.fetched.insert(height, (block, certificate));
            }
        }
        self.feed_fetched(ctx);
    }
}

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
