//! PeerConnection: one actor per connected validator.
//!
//! Reads frames with a size limit and decodes each with the canonical decoder; a frame that
//! does not decode drops this peer, never the node. Writes go through two bounded queues
//! drained by a writer task, consensus traffic first: when the peer is too slow, gossip is
//! dropped, and if even consensus traffic backs up the peer is disconnected (it reconnects
//! and catches up), so no peer can make this node hold unbounded memory.

use std::io;

use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message,
    StreamHandler, WrapFuture,
};
use almagill::crypto::Address;
use almagill::encoding;
use bytes::{Bytes, BytesMut};
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::node::block_store::BlockStore;
use crate::node::consensus::ConsensusEngine;
use crate::node::mempool::Mempool;
use crate::node::messages::{Fetched, GetBlocks, Inbound, PeerTxs};
use crate::node::network::{Disconnected, Network};
use crate::node::wire::{self, Connection, Wire};

/// Frames of consensus traffic that may wait for a slow peer before it is dropped.
const CONSENSUS_QUEUE: usize = 4096;
/// Frames of gossip that may wait; beyond that gossip to this peer is dropped.
const GOSSIP_QUEUE: usize = 256;
/// Blocks served per catch-up request.
const BLOCKS_PER_REQUEST: u64 = 64;

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
pub struct Send {
    /// The encoded frame.
    pub frame: Bytes,
    /// Its priority.
    pub priority: Priority,
}

/// Where inbound traffic goes.
#[derive(Clone)]
pub struct Routes {
    /// Consensus messages and fetched blocks.
    pub engine: Addr<ConsensusEngine>,
    /// Gossiped transactions.
    pub mempool: Addr<Mempool>,
    /// Catch-up requests.
    pub store: Addr<BlockStore>,
    /// The registry, told when this connection ends.
    pub network: Addr<Network>,
}

/// One connection to one validator.
pub struct PeerConnection {
    /// The validator on the other end (proven by the handshake).
    pub peer: Address,
    /// Which connection to it this is (the registry may have replaced it).
    pub id: u64,
    /// Its name, for logs.
    pub name: String,
    routes: Routes,
    consensus: mpsc::Sender<Bytes>,
    gossip: mpsc::Sender<Bytes>,
    reader: Option<SplitStream<Connection>>,
}

impl PeerConnection {
    /// Takes over a connection whose handshake succeeded; spawns its writer task.
    pub fn new(
        peer: Address,
        id: u64,
        name: String,
        connection: Connection,
        routes: Routes,
    ) -> Self {
        let (mut sink, reader) = connection.split();
        let (consensus, mut consensus_rx) = mpsc::channel::<Bytes>(CONSENSUS_QUEUE);
        let (gossip, mut gossip_rx) = mpsc::channel::<Bytes>(GOSSIP_QUEUE);
        actix_rt::spawn(async move {
            loop {
                let frame = tokio::select! {
                    biased;
                    Some(frame) = consensus_rx.recv() => frame,
                    Some(frame) = gossip_rx.recv() => frame,
                    else => break,
                };
                if sink.send(frame).await.is_err() {
                    break;
                }
            }
        });
        PeerConnection {
            peer,
            id,
            name,
            routes,
            consensus,
            gossip,
            reader: Some(reader),
        }
    }

    fn route(&mut self, wire: Wire, ctx: &mut Context<Self>) {
        match wire {
            Wire::Consensus(message) => self.routes.engine.do_send(Inbound {
                from: self.peer,
                message,
            }),
            Wire::Txs(txs) => self.routes.mempool.do_send(PeerTxs(txs)),
            Wire::GetBlocks { from, to } => {
                let to = to.min(from.saturating_add(BLOCKS_PER_REQUEST - 1));
                let request = self.routes.store.send(GetBlocks { from, to });
                ctx.spawn(request.into_actor(self).map(|blocks, peer, ctx| {
                    if let Ok(blocks) = blocks {
                        let frame = wire::encode(&Wire::Blocks(blocks));
                        peer.queue(frame, Priority::Consensus, ctx);
                    }
                }));
            }
            Wire::Blocks(blocks) => self.routes.engine.do_send(Fetched {
                from: self.peer,
                blocks,
            }),
            Wire::Hello(_) | Wire::Proof(_) => {
                warn!(target: "peer", peer = %self.name, "handshake frame after the handshake; disconnecting");
                ctx.stop();
            }
        }
    }

    fn queue(&mut self, frame: Bytes, priority: Priority, ctx: &mut Context<Self>) {
        let queue = match priority {
            Priority::Consensus => &self.consensus,
            Priority::Gossip => &self.gossip,
        };
        match queue.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) if priority == Priority::Gossip => {
                debug!(target: "peer", peer = %self.name, "slow peer: gossip dropped");
            }
            Err(_) => {
                warn!(target: "peer", peer = %self.name, "peer too slow or gone; disconnecting");
                ctx.stop();
            }
        }
    }
}

impl Actor for PeerConnection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(reader) = self.reader.take() {
            ctx.add_stream(reader);
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.routes.network.do_send(Disconnected {
            peer: self.peer,
            id: self.id,
        });
    }
}

impl StreamHandler<Result<BytesMut, io::Error>> for PeerConnection {
    fn handle(&mut self, frame: Result<BytesMut, io::Error>, ctx: &mut Context<Self>) {
        let decoded = frame
            .map_err(|e| e.to_string())
            .and_then(|bytes| encoding::decode::<Wire>(&bytes).map_err(|e| e.to_string()));
        match decoded {
            Ok(wire) => self.route(wire, ctx),
            Err(e) => {
                warn!(target: "peer", peer = %self.name, "bad frame ({e}); disconnecting");
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        debug!(target: "peer", peer = %self.name, "connection closed");
        ctx.stop();
    }
}

impl Handler<Send> for PeerConnection {
    type Result = ();

    fn handle(&mut self, msg: Send, ctx: &mut Context<Self>) {
        self.queue(msg.frame, msg.priority, ctx);
    }
}
