//! Network: the registry of peer connections. It listens for validators (with a limit on
//! handshakes in progress), dials the ones it should (the lower key of a pair dials, with
//! backoff), routes outgoing messages to connections, and asks peers for missing blocks.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, Message, MessageResult};
use almagill::config::Peer;
use almagill::consensus::Target;
use almagill::crypto::{Address, Hash, Keypair};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info};

use crate::node::messages::{Fetch, Gossip, Outbound};
use crate::node::peer::{PeerConnection, Priority, Routes, Send};
use crate::node::wire::{self, Connection, Identity, Wire};

/// Handshakes that may be in progress at once on the listener.
const MAX_HANDSHAKES: usize = 32;
/// Longest pause between two attempts to reach a peer.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Blocks asked of one peer at a time when catching up.
const FETCH_CHUNK: u64 = 64;
/// Peers asked at once when catching up.
const FETCH_PEERS: usize = 3;
/// Consensus frames kept for a configured peer while it is not connected, sent when it
/// connects (the oldest are dropped first): a peer that is a moment late to connect, or
/// reconnecting, does not miss the messages of that moment.
const HELD_FRAMES: usize = 256;

/// Who this node is on the network.
#[derive(Clone)]
pub struct Me {
    /// Its validator key.
    pub key: Arc<Keypair>,
    /// The chain id.
    pub chain_id: Arc<str>,
    /// The genesis hash.
    pub genesis: Hash,
}

/// The peer connections and the rules for making them.
pub struct Network {
    me: Me,
    peers: Vec<Peer>,
    routes: Routes,
    listener: Option<std::net::TcpListener>,
    /// Live connections, each with the id it was opened under.
    connections: HashMap<Address, (u64, Addr<PeerConnection>)>,
    opened: u64,
    dialing: HashSet<Address>,
    /// Consensus frames waiting for peers that are not connected.
    held: HashMap<Address, VecDeque<bytes::Bytes>>,
    retry: HashMap<Address, (Instant, Duration)>,
    next_fetch: usize,
}

impl Network {
    /// A registry for the configured `peers`, serving the bound `listener`.
    pub fn new(me: Me, peers: Vec<Peer>, routes: Routes, listener: std::net::TcpListener) -> Self {
        Network {
            me,
            peers,
            routes,
            listener: Some(listener),
            connections: HashMap::new(),
            opened: 0,
            dialing: HashSet::new(),
            held: HashMap::new(),
            retry: HashMap::new(),
            next_fetch: 0,
        }
    }

    fn name(&self, address: &Address) -> String {
        self.peers
            .iter()
            .find(|p| p.address == *address)
            .map_or_else(|| address.to_string()[..8].to_string(), |p| p.name.clone())
    }

    fn dial_due(&mut self, ctx: &mut Context<Self>) {
        let me = self.me.key.address();
        let now = Instant::now();
        let due: Vec<Peer> = self
            .peers
            .iter()
            .filter(|p| me < p.address)
            .filter(|p| {
                !self.connections.contains_key(&p.address) && !self.dialing.contains(&p.address)
            })
            .filter(|p| self.retry.get(&p.address).is_none_or(|(at, _)| *at <= now))
            .cloned()
            .collect();
        for peer in due {
            self.dialing.insert(peer.address);
            let me = self.me.clone();
            let network = ctx.address();
            actix_rt::spawn(async move {
                let result = dial(&me, &peer).await;
                network.do_send(Dialed {
                    peer: peer.address,
                    result: result.map_err(|e| e.to_string()),
                });
            });
        }
    }

    fn send(&mut self, target: Target, frame: bytes::Bytes, priority: Priority) {
        let peers: Vec<Address> = match target {
            Target::All => self.peers.iter().map(|p| p.address).collect(),
            Target::One(address) => vec![address],
        };
        for peer in peers {
            match self.connections.get(&peer) {
                Some((_, connection)) => connection.do_send(Send {
                    frame: frame.clone(),
                    priority,
                }),
                None if priority == Priority::Consensus
                    && self.peers.iter().any(|p| p.address == peer) =>
                {
                    let held = self.held.entry(peer).or_default();
                    if held.len() == HELD_FRAMES {
                        held.pop_front();
                    }
                    held.push_back(frame.clone());
                }
                None => {}
            }
        }
    }
}

async fn dial(me: &Me, peer: &Peer) -> anyhow::Result<Connection> {
    let stream = tokio::time::timeout(wire::HANDSHAKE_TIMEOUT, TcpStream::connect(peer.endpoint))
        .await
        .map_err(|_| anyhow::anyhow!("connecting timed out"))??;
    let mut connection = wire::frame(stream);
    let identity = Identity {
        key: &me.key,
        chain_id: &me.chain_id,
        genesis: me.genesis,
    };
    let expected = peer.address;
    wire::handshake(&mut connection, &identity, |a| *a == expected).await?;
    Ok(connection)
}

async fn accept_loop(
    listener: TcpListener,
    me: Me,
    validators: Arc<HashSet<Address>>,
    network: Addr<Network>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(target: "network", %from, "too many handshakes in progress; refused");
            continue;
        };
        let (me, validators, network) = (me.clone(), validators.clone(), network.clone());
        actix_rt::spawn(async move {
            let mut connection = wire::frame(stream);
            let identity = Identity {
                key: &me.key,
                chain_id: &me.chain_id,
                genesis: me.genesis,
            };
            match wire::handshake(&mut connection, &identity, |a| validators.contains(a)).await {
                Ok(peer) => network.do_send(Connected { peer, connection }),
                Err(e) => debug!(target: "network", %from, "handshake refused: {e:#}"),
            }
            drop(permit);
        });
    }
}

impl Actor for Network {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let validators: HashSet<Address> = self.peers.iter().map(|p| p.address).collect();
        let (me, network) = (self.me.clone(), ctx.address());
        match listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
        {
            Ok(listener) => {
                actix_rt::spawn(accept_loop(listener, me, Arc::new(validators), network));
            }
            Err(e) => {
                tracing::error!(target: "network", "cannot listen: {e}");
                ctx.stop();
            }
        }
        ctx.run_interval(Duration::from_millis(200), |network, ctx| {
            network.dial_due(ctx)
        });
    }
}

/// A connection's handshake succeeded.
#[derive(Message)]
#[rtype(result = "()")]
struct Connected {
    peer: Address,
    connection: Connection,
}

impl Handler<Connected> for Network {
    type Result = ();

    fn handle(&mut self, msg: Connected, _: &mut Context<Self>) {
        if self.connections.contains_key(&msg.peer) {
            return;
        }
        let name = self.name(&msg.peer);
        info!(target: "network", peer = %name, "connected");
        self.opened += 1;
        let id = self.opened;
        let connection =
            PeerConnection::new(msg.peer, id, name, msg.connection, self.routes.clone()).start();
        for frame in self.held.remove(&msg.peer).unwrap_or_default() {
            connection.do_send(Send {
                frame,
                priority: Priority::Consensus,
            });
        }
        self.connections.insert(msg.peer, (id, connection));
        self.retry.remove(&msg.peer);
    }
}

/// An attempt to reach a peer ended.
#[derive(Message)]
#[rtype(result = "()")]
struct Dialed {
    peer: Address,
    result: Result<Connection, String>,
}

impl Handler<Dialed> for Network {
    type Result = ();

    fn handle(&mut self, msg: Dialed, ctx: &mut Context<Self>) {
        self.dialing.remove(&msg.peer);
        match msg.result {
            Ok(connection) => {
                let peer = msg.peer;
                <Self as Handler<Connected>>::handle(self, Connected { peer, connection }, ctx);
            }
            Err(e) => {
                let backoff = self
                    .retry
                    .get(&msg.peer)
                    .map_or(Duration::from_millis(200), |(_, b)| {
                        (*b * 2).min(MAX_BACKOFF)
                    });
                debug!(target: "network", peer = %self.name(&msg.peer), "cannot connect ({e}); retry in {backoff:?}");
                self.retry
                    .insert(msg.peer, (Instant::now() + backoff, backoff));
            }
        }
    }
}

/// A peer connection ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnected {
    /// The peer it was with.
    pub peer: Address,
    /// The connection's id (a newer connection to the same peer stays).
    pub id: u64,
}

impl Handler<Disconnected> for Network {
    type Result = ();

    fn handle(&mut self, msg: Disconnected, _: &mut Context<Self>) {
        if self
            .connections
            .get(&msg.peer)
            .is_some_and(|(id, _)| *id == msg.id)
        {
            self.connections.remove(&msg.peer);
            info!(target: "network", peer = %self.name(&msg.peer), "disconnected");
        }
    }
}

impl Handler<Outbound> for Network {
    type Result = ();

    fn handle(&mut self, msg: Outbound, _: &mut Context<Self>) {
        let frame = wire::encode(&Wire::Consensus(msg.message));
        self.send(msg.target, frame, Priority::Consensus);
    }
}

impl Handler<Gossip> for Network {
    type Result = ();

    fn handle(&mut self, msg: Gossip, _: &mut Context<Self>) {
        let frame = wire::encode(&Wire::Txs(msg.0));
        self.send(Target::All, frame, Priority::Gossip);
    }
}

impl Handler<Fetch> for Network {
    type Result = ();

    fn handle(&mut self, msg: Fetch, _: &mut Context<Self>) {
        let peers: Vec<Address> = self.connections.keys().copied().collect();
        if peers.is_empty() {
            return;
        }
        let mut from = msg.from;
        for _ in 0..FETCH_PEERS.min(peers.len()) {
            if from > msg.to {
                break;
            }
            let to = msg.to.min(from + FETCH_CHUNK - 1);
            self.next_fetch = (self.next_fetch + 1) % peers.len();
            let frame = wire::encode(&Wire::GetBlocks { from, to });
            self.send(
                Target::One(peers[self.next_fetch]),
                frame,
                Priority::Consensus,
            );
            from = to + 1;
        }
    }
}

/// One configured peer as the admin port shows it.
pub struct PeerState {
    /// Its validator key.
    pub address: Address,
    /// Where it listens.
    pub endpoint: SocketAddr,
    /// Whether a connection is up.
    pub connected: bool,
}

/// Lists the configured peers.
#[derive(Message)]
#[rtype(result = "Vec<PeerState>")]
pub struct ReadPeers;

impl Handler<ReadPeers> for Network {
    type Result = MessageResult<ReadPeers>;

    fn handle(&mut self, _: ReadPeers, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.peers
                .iter()
                .map(|p| PeerState {
                    address: p.address,
                    endpoint: p.endpoint,
                    connected: self.connections.contains_key(&p.address),
                })
                .collect(),
        )
    }
}
