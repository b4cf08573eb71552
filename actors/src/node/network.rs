//! Network: the registry of peer connections. It listens for validators (unauthenticated
//! connections held in bounded slots, see `admission.rs`), dials the ones it should (the
//! lower key of a pair dials, with backoff), keeps the newest authenticated session of each
//! peer, routes outgoing messages to connections, and asks peers for missing blocks.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, Message, MessageResult};
use almagill::config::Peer;
use almagill::consensus::Target;
use almagill::crypto::{Address, Hash, Keypair};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};

use crate::node::admission::Admission;
use crate::node::messages::{
    Answered, Close, Disconnected, Fetch, Gossip, Outbound, PeerState, Priority, ReadPeers,
    SendFrame,
};
use crate::node::peer::{PeerConnection, Routes};
use crate::node::session::{self, Identity, Session};
use crate::node::wire::{self, Wire};

/// Longest pause between two attempts to reach a peer: short, so a restarted peer is
/// reconnected within about a second (a refused dial costs next to nothing).
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Longest pause of the accept loop after an error such as too many open files.
const MAX_ACCEPT_PAUSE: Duration = Duration::from_secs(1);
/// Failed handshakes are reported at WARN at most this often (with a count).
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Blocks asked of one peer at a time when catching up (its reply may hold fewer: replies
/// are bounded in bytes).
const FETCH_CHUNK: u64 = 32;
/// How long a peer may take to answer a request for blocks before others are asked.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);
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
    /// Peers asked for blocks and not yet answered, with when they were asked.
    asked: HashMap<Address, Instant>,
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
            asked: HashMap::new(),
        }
    }

    fn name(&self, address: &Address) -> String {
        self.peers
            .iter()
            .find(|p| p.address == *address)
            .map_or_else(|| address.short(), |p| p.name.clone())
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
                    result: result.map_err(|e| format!("{e:#}")),
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
                Some((_, connection)) => connection.do_send(SendFrame {
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

impl Me {
    /// What this node brings to a handshake.
    pub fn identity(&self) -> Identity<'_> {
        Identity {
            key: &self.key,
            chain_id: &self.chain_id,
            genesis: self.genesis,
        }
    }
}

/// Connects to `peer` and runs the handshake as the dialer.
pub async fn dial(me: &Me, peer: &Peer) -> anyhow::Result<Session> {
    let stream = tokio::time::timeout(
        session::HANDSHAKE_TIMEOUT,
        TcpStream::connect(peer.endpoint),
    )
    .await
    .map_err(|_| anyhow::anyhow!("connecting timed out"))??;
    session::dial(session::frame(stream), &me.identity(), peer.address).await
}

/// The listener's shared bookkeeping: slots of unauthenticated connections, the tasks that
/// hold them (so a pushed-out one can be stopped), and failures not yet reported.
struct Gate {
    admission: Admission,
    tasks: HashMap<u64, AbortHandle>,
    failures: u64,
    evicted: u64,
    reported: Option<Instant>,
}

impl Gate {
    /// Counts a failed handshake; at most every [`WARN_EVERY`] reports the count at WARN.
    fn failed(&mut self, from: SocketAddr, error: &anyhow::Error) {
        self.failures += 1;
        debug!(target: "network", %from, "handshake refused: {error:#}");
        if self.reported.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            warn!(target: "network", failures = self.failures, evicted = self.evicted, waiting = self.admission.held(),
                "peer handshakes failed; latest from {from}: {error:#}");
            self.failures = 0;
            self.evicted = 0;
            self.reported = Some(Instant::now());
        }
    }
}

type SharedGate = Arc<Mutex<Gate>>;

fn lock(gate: &SharedGate) -> std::sync::MutexGuard<'_, Gate> {
    gate.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Frees a connection's slot however its task ends (done, failed, or aborted when pushed
/// out).
struct Slot {
    gate: SharedGate,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut gate = lock(&self.gate);
        gate.admission.release(self.id);
        gate.tasks.remove(&self.id);
    }
}

async fn accept_loop(
    listener: TcpListener,
    me: Me,
    validators: Arc<HashSet<Address>>,
    peer_ips: HashSet<IpAddr>,
    network: Addr<Network>,
) {
    let gate: SharedGate = Arc::new(Mutex::new(Gate {
        admission: Admission::new(peer_ips),
        tasks: HashMap::new(),
        failures: 0,
        evicted: 0,
        reported: None,
    }));
    let mut pause = Duration::from_millis(10);
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => {
                pause = Duration::from_millis(10);
                accepted
            }
            Err(e) => {
                warn!(target: "network", "cannot accept a peer connection ({e}); pausing {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_ACCEPT_PAUSE);
                continue;
            }
        };
        let mut locked = lock(&gate);
        let (id, evict) = locked.admission.admit(from.ip());
        let pushed_out = evict.and_then(|old| locked.tasks.remove(&old));
        locked.evicted += u64::from(pushed_out.is_some());
        let (me, validators, network) = (me.clone(), validators.clone(), network.clone());
        let slot = Slot {
            gate: gate.clone(),
            id,
        };
        // The runtime is single-threaded: the task cannot run (and free its slot) before
        // its handle is recorded below.
        let task = actix_rt::spawn(async move {
            let mut connection = session::frame(stream);
            let result = async {
                let first = session::first_frame(&mut connection).await?;
                lock(&slot.gate).admission.spoke(slot.id);
                session::respond(connection, &first, &me.identity(), |a| {
                    validators.contains(a)
                })
                .await
            }
            .await;
            match result {
                Ok(session) => network.do_send(Connected { session }),
                Err(e) => lock(&slot.gate).failed(from, &e),
            }
            drop(slot);
        });
        locked.tasks.insert(id, task.abort_handle());
        drop(locked);
        if let Some(task) = pushed_out {
            task.abort();
        }
    }
}

impl Actor for Network {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let validators: HashSet<Address> = self.peers.iter().map(|p| p.address).collect();
        let peer_ips: HashSet<IpAddr> = self.peers.iter().map(|p| p.endpoint.ip()).collect();
        let (me, network) = (self.me.clone(), ctx.address());
        match listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
        {
            Ok(listener) => {
                let validators = Arc::new(validators);
                actix_rt::spawn(accept_loop(listener, me, validators, peer_ips, network));
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
    session: Session,
}

impl Handler<Connected> for Network {
    type Result = ();

    /// Keeps the newest session of each peer: only the peer itself can open one (it must
    /// prove its key over the session), and a link it opens anew is one it found broken.
    fn handle(&mut self, msg: Connected, _: &mut Context<Self>) {
        let peer = msg.session.peer;
        let name = self.name(&peer);
        if let Some((_, older)) = self.connections.remove(&peer) {
            info!(target: "network", peer = %name, "a newer session replaces the older one");
            older.do_send(Close);
        } else {
            info!(target: "network", peer = %name, "connected");
        }
        self.opened += 1;
        let id = self.opened;
        let connection = PeerConnection::new(id, name, msg.session, self.routes.clone()).start();
        for frame in self.held.remove(&peer).unwrap_or_default() {
            connection.do_send(SendFrame {
                frame,
                priority: Priority::Consensus,
            });
        }
        self.connections.insert(peer, (id, connection));
        self.retry.remove(&peer);
        self.routes.metrics.peers.set(self.connections.len() as i64);
    }
}

/// An attempt to reach a peer ended.
#[derive(Message)]
#[rtype(result = "()")]
struct Dialed {
    peer: Address,
    result: Result<Session, String>,
}

impl Handler<Dialed> for Network {
    type Result = ();

    fn handle(&mut self, msg: Dialed, ctx: &mut Context<Self>) {
        self.dialing.remove(&msg.peer);
        match msg.result {
            Ok(session) => {
                <Self as Handler<Connected>>::handle(self, Connected { session }, ctx);
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
            self.routes.metrics.peers.set(self.connections.len() as i64);
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

    /// Asks up to [`FETCH_PEERS`] peers for consecutive parts of the range, each peer at
    /// most one request at a time: the next part is asked for when a reply has been taken
    /// in, so a node catching up pulls no faster than it checks blocks. A peer that does not
    /// answer within [`ANSWER_WITHIN`] is passed over for the others.
    fn handle(&mut self, msg: Fetch, _: &mut Context<Self>) {
        let now = Instant::now();
        self.asked
            .retain(|_, at| now.duration_since(*at) < ANSWER_WITHIN);
        let mut free: Vec<Address> = self
            .connections
            .keys()
            .filter(|p| !self.asked.contains_key(p))
            .copied()
            .collect();
        if free.is_empty() {
            debug!(target: "network", from = msg.from, to = msg.to, "blocks wanted; every peer is still asked");
            return;
        }
        free.sort();
        self.next_fetch = (self.next_fetch + 1) % free.len();
        free.rotate_left(self.next_fetch);
        let mut from = msg.from;
        for peer in free.into_iter().take(FETCH_PEERS) {
            if from > msg.to {
                break;
            }
            let to = msg.to.min(from.saturating_add(FETCH_CHUNK - 1));
            self.asked.insert(peer, now);
            debug!(target: "network", peer = %self.name(&peer), from, to, "asking for blocks");
            let frame = wire::encode(&Wire::GetBlocks { from, to });
            self.send(Target::One(peer), frame, Priority::Consensus);
            from = to.saturating_add(1);
        }
    }
}

impl Handler<Answered> for Network {
    type Result = ();

    fn handle(&mut self, msg: Answered, _: &mut Context<Self>) {
        self.asked.remove(&msg.0);
    }
}

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
