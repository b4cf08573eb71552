//! PeerConnection: one actor per connected validator, over an authenticated session.
//!
//! Opens each sealed message of the session (see `session.rs`), joins them into frames and
//! decodes each with the canonical decoder; a message that does not authenticate or a frame
//! that does not decode drops this peer, never the node. Pings go out every second and a
//! link that brings nothing for [`SILENCE_LIMIT`] is dropped (it reconnects). Writes go through two bounded queues
//! drained by a writer task, consensus traffic first: when the peer is too slow, gossip is
//! dropped, and if even consensus traffic backs up the peer is disconnected (it reconnects
//! and catches up), so no peer can make this node hold unbounded memory.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Recipient, StreamHandler,
    WrapFuture,
};
use almagill::crypto::Address;
use almagill::encoding;
use bytes::{Bytes, BytesMut};
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::metrics::Metrics;
use crate::node::messages::{
    Answered, Close, Disconnected, Fetched, Inbound, PeerTxs, Priority, SendFrame, ServeBlocks,
    ServeSync,
};
use crate::node::session::{Connection, Opener, Session};
use crate::node::wire::{self, Wire};

/// Frames of consensus traffic that may wait for a slow peer before it is dropped.
const CONSENSUS_QUEUE: usize = 4096;
/// Frames of gossip that may wait; beyond that gossip to this peer is dropped.
const GOSSIP_QUEUE: usize = 256;
/// The size budget of one reply to a peer catching up: a few full blocks, well within a
/// frame.
const SYNC_REPLY_BYTES: usize = 2 * 1024 * 1024;
/// A catch-up request is served only while less than this is queued for the peer: a peer
/// that asks faster than it reads gets no more (it asks again, or another peer), so serving
/// it never holds more than this much memory.
const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;
/// How often a keepalive ping is sent.
const PING_EVERY: Duration = Duration::from_secs(1);
/// How long a link may bring nothing (not even a ping) before it is taken for dead.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(5);

/// Where inbound traffic goes.
#[derive(Clone)]
pub struct Routes {
    /// Consensus messages (the ConsensusEngine).
    pub inbound: Recipient<Inbound>,
    /// Fetched blocks (the ConsensusEngine).
    pub fetched: Recipient<Fetched>,
    /// Gossiped transactions (the Mempool).
    pub txs: Recipient<PeerTxs>,
    /// Catch-up requests (the BlockStore).
    pub serve: Recipient<ServeBlocks>,
    /// State-sync requests (the BlockStore).
    pub serve_sync: Recipient<ServeSync>,
    /// Told when this node's request for blocks is answered (the Network).
    pub answered: Recipient<Answered>,
    /// Told when this connection ends (the Network).
    pub disconnected: Recipient<Disconnected>,
    /// Where traffic is counted.
    pub metrics: Metrics,
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
    /// Bytes queued for the writer and not yet taken by it.
    queued: Arc<AtomicUsize>,
    reader: Option<SplitStream<Connection>>,
    opener: Opener,
    /// When the peer last sent anything.
    heard: Instant,
}

impl PeerConnection {
    /// Takes over an authenticated session; spawns its writer task, which seals frames.
    pub fn new(id: u64, name: String, session: Session, routes: Routes) -> Self {
        let Session {
            peer,
            mut sealer,
            opener,
            connection,
        } = session;
        let (mut sink, reader) = connection.split();
        let (consensus, mut consensus_rx) = mpsc::channel::<Bytes>(CONSENSUS_QUEUE);
        let (gossip, mut gossip_rx) = mpsc::channel::<Bytes>(GOSSIP_QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let sent = queued.clone();
        actix_rt::spawn(async move {
            loop {
                let frame = tokio::select! {
                    biased;
                    Some(frame) = consensus_rx.recv() => frame,
                    Some(frame) = gossip_rx.recv() => frame,
                    else => break,
                };
                sent.fetch_sub(frame.len(), Ordering::Relaxed);
                let Ok(messages) = sealer.seal(&frame) else {
                    break;
                };
                for message in messages {
                    if sink.send(message).await.is_err() {
                        return;
                    }
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
            queued,
            reader: Some(reader),
            opener,
            heard: Instant::now(),
        }
    }

    fn route(&mut self, wire: Wire, size: usize, ctx: &mut Context<Self>) {
        let traffic = match wire {
            Wire::Txs(_) => "gossip",
            _ => "consensus",
        };
        self.routes.metrics.traffic("in", traffic, size);
        match wire {
            Wire::Consensus(message) => self.routes.inbound.do_send(Inbound {
                from: self.peer,
                message,
            }),
            Wire::Txs(txs) => self.routes.txs.do_send(PeerTxs {
                from: self.peer,
                txs,
            }),
            Wire::SyncRequest(request) => {
                if self.replies_wait() {
                    return;
                }
                let request = self.routes.serve_sync.send(ServeSync(request));
                ctx.spawn(request.into_actor(self).map(|reply, peer, ctx| {
                    if let Ok(reply) = reply {
                        let frame = wire::encode(&Wire::SyncReply(reply));
                        peer.queue(frame, Priority::Consensus, ctx);
                    }
                }));
            }
            // Only a node syncing asks, on a link of its own (see `state_sync.rs`).
            Wire::SyncReply(_) => {}
            Wire::GetBlocks { from, to } => {
                if self.replies_wait() {
                    return;
                }
                let max_bytes = SYNC_REPLY_BYTES;
                let request = self.routes.serve.send(ServeBlocks {
                    from,
                    to,
                    max_bytes,
                });
                ctx.spawn(request.into_actor(self).map(|blocks, peer, ctx| {
                    if let Ok(blocks) = blocks {
                        let frame = wire::encode(&Wire::Blocks(blocks));
                        peer.queue(frame, Priority::Consensus, ctx);
                    }
                }));
            }
            Wire::Blocks(blocks) => {
                self.routes.answered.do_send(Answered(self.peer));
                self.routes.fetched.do_send(Fetched {
                    from: self.peer,
                    blocks,
                });
            }
            Wire::Ping => {}
        }
    }

    /// Whether earlier replies to this peer still wait to be sent: a peer that asks faster
    /// than it reads gets no more (it asks again, or another peer), so serving it never
    /// holds more than [`MAX_QUEUED_BYTES`].
    fn replies_wait(&self) -> bool {
        let wait = self.queued.load(Ordering::Relaxed) >= MAX_QUEUED_BYTES;
        if wait {
            debug!(target: "peer", peer = %self.name, "request while its replies wait; dropped");
        }
        wait
    }

    fn queue(&mut self, frame: Bytes, priority: Priority, ctx: &mut Context<Self>) {
        let (queue, traffic) = match priority {
            Priority::Consensus => (&self.consensus, "consensus"),
            Priority::Gossip => (&self.gossip, "gossip"),
        };
        self.routes.metrics.traffic("out", traffic, frame.len());
        // Counted before the writer can take it, so the count never goes below zero.
        self.queued.fetch_add(frame.len(), Ordering::Relaxed);
        let size = frame.len();
        let result = queue.try_send(frame);
        if result.is_err() {
            self.queued.fetch_sub(size, Ordering::Relaxed);
        }
        match result {
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
        ctx.run_interval(PING_EVERY, |peer, ctx| {
            if peer.heard.elapsed() > SILENCE_LIMIT {
                warn!(target: "peer", peer = %peer.name, "nothing heard for {SILENCE_LIMIT:?}; disconnecting");
                ctx.stop();
                return;
            }
            peer.queue(wire::encode(&Wire::Ping), Priority::Consensus, ctx);
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.routes.disconnected.do_send(Disconnected {
            peer: self.peer,
            id: self.id,
        });
    }
}

impl StreamHandler<Result<BytesMut, io::Error>> for PeerConnection {
    fn handle(&mut self, message: Result<BytesMut, io::Error>, ctx: &mut Context<Self>) {
        self.heard = Instant::now();
        let opened = message
            .map_err(|e| e.to_string())
            .and_then(|bytes| self.opener.open(&bytes).map_err(|e| format!("{e:#}")));
        let decoded = match opened {
            Ok(None) => return,
            Ok(Some(frame)) => encoding::decode::<Wire>(&frame)
                .map(|wire| (wire, frame.len()))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match decoded {
            Ok((wire, size)) => self.route(wire, size, ctx),
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

impl Handler<SendFrame> for PeerConnection {
    type Result = ();

    fn handle(&mut self, msg: SendFrame, ctx: &mut Context<Self>) {
        self.queue(msg.frame, msg.priority, ctx);
    }
}

impl Handler<Close> for PeerConnection {
    type Result = ();

    fn handle(&mut self, _: Close, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
