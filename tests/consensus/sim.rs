//! The deterministic simulator: real pBFT cores and real ledgers, virtual time, and a seeded
//! network that delays, drops, duplicates, reorders and partitions messages. Nodes crash and
//! restart from exactly what they had persisted. Invariants are checked as every event is
//! handled; a broken one panics with the seed, which replays the run exactly.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use almagill::amount::AGL;
use almagill::block::Block;
use almagill::certificate::{CommitCertificate, Phase};
use almagill::consensus::{
    drive, kept_after_prune, Actions, BatchRequest, Config, Host, Input, Message, Pbft, Record,
    Restored, Target, Timer,
};
use almagill::crypto::{Address, Hash, Keypair};
use almagill::genesis::{ConsensusParams, Genesis};
use almagill::ledger::Ledger;
use almagill::tx::{Transaction, TxBody, TxKind};

use crate::byzantine::Behaviour;
use almagill_testkit::{GenesisBuilder, Rng};

/// The chain id of simulated networks.
pub const CHAIN: &str = "almagill-sim";

/// How the network misbehaves (while not healed).
#[derive(Clone, Copy, Debug)]
pub struct NetFaults {
    /// Delay of a message, uniformly in this range (ms).
    pub delay: (u64, u64),
    /// Chance a message is lost.
    pub drop: f64,
    /// Chance a message is delivered twice.
    pub duplicate: f64,
}

impl NetFaults {
    /// A healthy network: short delays, nothing lost.
    pub const CALM: NetFaults = NetFaults::delays(1, 10);

    /// A network that delays every message by `min..=max` ms and loses or repeats none.
    pub const fn delays(min: u64, max: u64) -> NetFaults {
        NetFaults {
            delay: (min, max),
            drop: 0.0,
            duplicate: 0.0,
        }
    }
}

/// A point inside the carrying-out of one step where a node may crash: what came before it
/// happened (and is durable, if it was persisted), nothing after it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// After its records were made durable, before any message left.
    AfterPersist,
    /// After its messages left and a block was committed by the core, before the block
    /// was executed and stored.
    BeforeExecute,
}

/// Decides, for each copy of a message (from, to, message), whether the network loses it.
pub type LoseRule = Box<dyn FnMut(usize, usize, &Message) -> bool>;

/// One simulated node.
pub struct Node {
    /// Its key (twins share one).
    pub key: Keypair,
    /// The consensus core.
    pub pbft: Pbft,
    /// Its executed state.
    pub ledger: Ledger,
    /// Committed blocks with certificates and the state root after each.
    pub chain: Vec<(Block, CommitCertificate, Hash)>,
    /// What it persisted (survives a crash).
    pub durable: Vec<Record>,
    /// Transactions waiting to be proposed.
    pub mempool: Vec<Transaction>,
    /// Honest, or one of the Byzantine variants.
    pub behaviour: Behaviour,
    /// Up, or crashed.
    pub alive: bool,
    /// Bumped at every restart, so timers of an earlier life are dropped.
    pub incarnation: u32,
    /// Where the node is to crash the next time it carries out a step that reaches it.
    pub crash_at: Option<CrashPoint>,
}

impl Node {
    /// The height of its last committed block.
    pub fn height(&self) -> u64 {
        self.chain.len() as u64
    }
}

enum Event {
    Deliver {
        to: usize,
        from: usize,
        message: Message,
    },
    Input {
        node: usize,
        incarnation: u32,
        input: Input,
    },
    Workload,
}

/// The whole simulated network.
pub struct World {
    /// The seed this run replays from.
    pub seed: u64,
    /// Virtual time, ms.
    pub now: u64,
    /// Chance for everything.
    pub rng: Rng,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// Network behaviour now.
    pub faults: NetFaults,
    /// While set, messages between nodes in different groups are lost.
    pub partition: Option<Vec<u8>>,
    /// Messages lost on purpose: called with (from, to, message) for every copy sent;
    /// `true` loses it.
    pub lose: Option<LoseRule>,
    /// While set, only these nodes answer catch-up requests.
    pub sync_servers: Option<Vec<usize>>,
    /// Attacks Byzantine nodes carried out, by name: proof a scenario exercised what it
    /// claims to.
    pub attacks: HashMap<&'static str, u64>,
    /// The genesis every node shares.
    pub genesis: Genesis,
    /// Keys of the bank accounts the workload moves money between.
    pub bank: Vec<Keypair>,
    /// Transactions per second the workload submits (0: none).
    pub tx_rate: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Event>,
    seq: u64,
    /// The whole block (header and transactions) agreed at each height, as a hash of its
    /// encoding (by the first honest node to commit it).
    agreed: HashMap<u64, Hash>,
    /// State root after each height (first honest node to execute it).
    roots: HashMap<u64, Hash>,
    /// Every vote an honest validator signed: (signer, phase, height, view) -> digest.
    votes: HashMap<(Address, Phase, u64, u64), Hash>,
    /// Nonces the workload has handed out but not yet seen committed.
    pending_nonce: HashMap<Address, u64>,
    /// Events handled, for reports.
    pub events_handled: u64,
}

/// What a simulated network looks like.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Stake of each validator in base units; a node per entry.
    pub stakes: Vec<u128>,
    /// Extra nodes that run a twin of validator `i` (same key).
    pub twins: Vec<usize>,
    /// Extra nodes with keys that are not validators.
    pub outsiders: usize,
    /// Consensus parameters.
    pub params: ConsensusParams,
    /// Blocks per epoch.
    pub epoch_length: u64,
}

impl Setup {
    /// `n` validators of equal stake with fast simulated timing.
    pub fn equal(n: usize) -> Setup {
        Setup {
            stakes: vec![100 * AGL; n],
            twins: Vec::new(),
            outsiders: 0,
            params: ConsensusParams {
                view_timeout_ms: 400,
                block_interval_ms: 30,
                idle_block_interval_ms: 200,
                max_block_txs: 50,
                window: 4,
                checkpoint_interval: 4,
            },
            epoch_length: 40,
        }
    }
}

fn seeded_key(tag: u8, i: usize) -> Keypair {
    let mut seed = [tag; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Keypair::from_seed(seed)
}

impl World {
    /// A network as `setup` describes, every node honest, ready at time 0.
    pub fn new(seed: u64, setup: &Setup) -> World {
        let validators: Vec<Keypair> = (0..setup.stakes.len()).map(|i| seeded_key(1, i)).collect();
        let bank: Vec<Keypair> = (0..6).map(|i| seeded_key(2, i)).collect();
        let mut builder = GenesisBuilder::new(CHAIN)
            .min_stake(1)
            .epoch_length(setup.epoch_length)
            .consensus(setup.params.clone());
        for (i, (k, stake)) in validators.iter().zip(&setup.stakes).enumerate() {
            builder = builder.account(&format!("v{i}"), k.address(), 1_000 * AGL, *stake);
        }
        for (i, k) in bank.iter().enumerate() {
            builder = builder.account(&format!("bank{i}"), k.address(), 1_000_000 * AGL, 0);
        }
        let genesis = builder.build();
        let mut keys: Vec<Keypair> = validators.clone();
        keys.extend(setup.twins.iter().map(|&i| validators[i].clone()));
        keys.extend((0..setup.outsiders).map(|i| seeded_key(3, i)));
        let mut world = World {
            seed,
            now: 0,
            rng: Rng::new(seed),
            nodes: Vec::new(),
            faults: NetFaults::CALM,
            partition: None,
            lose: None,
            sync_servers: None,
            attacks: HashMap::new(),
            genesis,
            bank,
            tx_rate: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            seq: 0,
            agreed: HashMap::new(),
            roots: HashMap::new(),
            votes: HashMap::new(),
            pending_nonce: HashMap::new(),
            events_handled: 0,
        };
        for key in keys {
            let ledger = Ledger::from_genesis(&world.genesis);
            let (pbft, actions) =
                Pbft::new(world.config(&key), world.restored(&ledger, &[], &[]), 0);
            world.nodes.push(Node {
                key,
                pbft,
                ledger,
                chain: Vec::new(),
                durable: Vec::new(),
                mempool: Vec::new(),
                behaviour: Behaviour::Honest,
                alive: true,
                incarnation: 0,
                crash_at: None,
            });
            let i = world.nodes.len() - 1;
            world.carry_out(i, actions);
        }
        world
    }

    fn config(&self, key: &Keypair) -> Config {
        let mut ledger = Ledger::from_genesis(&self.genesis);
        Config {
            chain_id: CHAIN.into(),
            key: Some(key.clone()),
            params: self.genesis.consensus.clone(),
            epoch_length: self.genesis.epoch_length,
            genesis_state_root: ledger.state_root(),
            verified: Default::default(),
        }
    }

    fn restored(
        &self,
        ledger: &Ledger,
        chain: &[(Block, CommitCertificate, Hash)],
        records: &[Record],
    ) -> Restored {
        Restored {
            committed: chain.len() as u64,
            last_hash: chain
                .last()
                .map_or(self.genesis.hash(), |(b, _, _)| b.hash()),
            last_timestamp_ms: chain
                .last()
                .map_or(self.genesis.genesis_time_ms, |(b, _, _)| {
                    b.header.proposal.timestamp_ms
                }),
            validators: ledger
                .validator_epochs()
                .map(|(e, v)| (e, v.clone()))
                .collect(),
            blames: ledger.blames().clone(),
            records: records.to_vec(),
        }
    }

    /// Whether node `i` is honest (its votes are checked against the safety invariant).
    pub fn honest(&self, i: usize) -> bool {
        self.nodes[i].behaviour.is_honest()
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, event);
    }

    fn input(&mut self, node: usize, at: u64, input: Input) {
        let incarnation = self.nodes[node].incarnation;
        self.schedule(
            at,
            Event::Input {
                node,
                incarnation,
                input,
            },
        );
    }

    /// Starts the workload: `rate` random transfers per second between bank accounts.
    pub fn start_workload(&mut self, rate: u64) {
        self.tx_rate = rate;
        if let Some(gap) = 1000u64.checked_div(rate) {
            self.schedule(self.now + gap, Event::Workload);
        }
    }

    /// Handles every event up to time `until`.
    pub fn run_until(&mut self, until: u64) {
        while let Some(Reverse((at, seq))) = self.queue.peek().copied() {
            if at > until {
                break;
            }
            self.queue.pop();
            self.now = at;
            let Some(event) = self.events.remove(&seq) else {
                continue;
            };
            self.handle(event);
            self.events_handled += 1;
        }
        self.now = until;
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { to, from, message } => {
                if !self.nodes[to].alive {
                    return;
                }
                let from = self.nodes[from].key.address();
                self.step(to, Input::Message { from, message });
            }
            Event::Input {
                node,
                incarnation,
                input,
            } => {
                if self.nodes[node].alive && self.nodes[node].incarnation == incarnation {
                    self.step(node, input);
                }
            }
            Event::Workload => {
                self.submit_transfer();
                let gap = 1000 / self.tx_rate.max(1);
                self.schedule(self.now + gap, Event::Workload);
            }
        }
    }

    fn step(&mut self, i: usize, input: Input) {
        let now = self.now;
        if std::env::var("ALMAGILL_SIM_TRACE").is_ok() {
            let what = match &input {
                Input::Message { message, .. } => match message {
                    Message::PrePrepare { vote, .. } => format!("preprepare {:?}", vote.payload),
                    Message::Vote(v) => format!("vote from {:?} {:?}", v.signer, v.payload),
                    Message::NewView { new_view, .. } => format!(
                        "newview r{} {:?}",
                        new_view.payload.round, new_view.payload.proposals
                    ),
                    Message::ViewChange { view_change, .. } => format!(
                        "viewchange r{} from {:?}",
                        view_change.payload.round, view_change.signer
                    ),
                    other => format!("{:?}", std::mem::discriminant(other)),
                },
                other => format!("{other:?}").chars().take(80).collect(),
            };
            let n = &self.nodes[i];
            eprintln!(
                "t={now} node{i}[{:?} h{} r{} {:?}] <- {what}",
                n.key.address(),
                n.pbft.committed(),
                n.pbft.round(),
                n.pbft.mode()
            );
        }
        let actions = self.nodes[i].pbft.step(input, now);
        self.carry_out(i, actions);
    }

    /// Carries out a node's actions through the node's own driver, checking invariants on
    /// the way. A Byzantine node's messages pass through its behaviour first; a node set to
    /// crash mid-step stops where its crash point says.
    fn carry_out(&mut self, i: usize, actions: Actions) {
        let crash_at = self.nodes[i].crash_at;
        let mut host = SimHost {
            world: self,
            i,
            crash_at,
            crashed: false,
            held: Vec::new(),
        };
        let Ok(()) = drive(&mut host, actions);
        let SimHost { crashed, held, .. } = host;
        if crashed || held.is_empty() {
            return;
        }
        for (target, message) in crate::byzantine::misbehave(self, i, held) {
            self.send(i, target, message);
        }
    }

    /// Counts one attack of kind `what`.
    pub fn attacked(&mut self, what: &'static str) {
        *self.attacks.entry(what).or_insert(0) += 1;
    }

    /// How many attacks of kind `what` were carried out.
    pub fn attacks(&self, what: &str) -> u64 {
        self.attacks.get(what).copied().unwrap_or(0)
    }

    /// Node `i` is to crash at `point` the next time a step reaches it.
    pub fn crash_mid_step(&mut self, i: usize, point: CrashPoint) {
        self.nodes[i].crash_at = Some(point);
    }

    /// Sends a message from node `from` through the faulty network.
    pub fn send(&mut self, from: usize, target: Target, message: Message) {
        let to: Vec<usize> = match target {
            Target::All => (0..self.nodes.len()).filter(|&j| j != from).collect(),
            Target::One(address) => (0..self.nodes.len())
                .filter(|&j| j != from && self.nodes[j].key.address() == address)
                .collect(),
        };
        for j in to {
            if let Some(lose) = &mut self.lose {
                if lose(from, j, &message) {
                    continue;
                }
            }
            if let Some(groups) = &self.partition {
                if groups[from] != groups[j] {
                    continue;
                }
            }
            if self.rng.chance(self.faults.drop) {
                continue;
            }
            let copies = if self.rng.chance(self.faults.duplicate) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let delay = self.rng.between(self.faults.delay.0, self.faults.delay.1);
                let message = message.clone();
                self.schedule(
                    self.now + delay,
                    Event::Deliver {
                        to: j,
                        from,
                        message,
                    },
                );
            }
        }
    }

    /// A lagging node asks for blocks: one peer with them, chosen at random, answers with
    /// one reply (a Byzantine peer's reply may be tampered with).
    fn serve_sync(&mut self, i: usize, from: u64, to: u64) {
        let peers: Vec<usize> = (0..self.nodes.len())
            .filter(|&j| j != i && self.nodes[j].alive && self.nodes[j].height() >= from)
            .filter(|j| self.sync_servers.as_ref().is_none_or(|s| s.contains(j)))
            .collect();
        if peers.is_empty() {
            return;
        }
        let j = peers[self.rng.below(peers.len() as u64) as usize];
        let last = to.min(self.nodes[j].height()).min(from + 63);
        let delay = self.rng.between(self.faults.delay.0, self.faults.delay.1);
        let mut blocks: Vec<(Block, CommitCertificate)> = (from..=last)
            .map(|height| {
                let (block, certificate, _) = &self.nodes[j].chain[height as usize - 1];
                (block.clone(), certificate.clone())
            })
            .collect();
        if !self.honest(j) {
            blocks = crate::byzantine::tamper_sync(self, j, blocks);
        }
        let from = self.nodes[j].key.address();
        self.input(i, self.now + delay, Input::Synced { from, blocks });
    }

    /// An honest validator must never sign two different digests for one slot and phase.
    /// Only the sender's own votes count: a pre-prepare passed on to a validator that
    /// missed it carries the leader's vote, not the sender's.
    fn check_vote(&mut self, i: usize, message: &Message) {
        let vote = match message {
            Message::Vote(v) => v,
            Message::PrePrepare { vote, .. } => vote,
            _ => return,
        };
        if vote.signer != self.nodes[i].key.address() {
            return;
        }
        let t = vote.payload;
        let key = (vote.signer, t.phase, t.height, t.view);
        let previous = *self.votes.entry(key).or_insert(t.digest);
        assert_eq!(
            previous, t.digest,
            "seed {}: honest validator {:?} signed two {:?} votes for height {} view {}",
            self.seed, vote.signer, t.phase, t.height, t.view
        );
    }

    /// An honest node never sends a body its header does not commit to: whatever it passes
    /// on, in a pre-prepare, a view change or a new view, went through the body check.
    fn check_bodies(&self, i: usize, message: &Message) {
        let bodies: Vec<&almagill::block::Proposal> = match message {
            Message::PrePrepare { proposal, .. } => vec![proposal],
            Message::ViewChange { bodies, .. } | Message::NewView { bodies, .. } => {
                bodies.iter().collect()
            }
            _ => return,
        };
        for body in bodies {
            assert!(
                body.header.binds(&body.txs),
                "seed {}: honest node {i} sent a body its header does not commit to (height {})",
                self.seed,
                body.header.height
            );
        }
    }

    /// Executes a committed block on node `i`, checking agreement, order and supply.
    fn commit(&mut self, i: usize, block: Block, certificate: CommitCertificate) {
        let seed = self.seed;
        let honest = self.honest(i);
        let node = &mut self.nodes[i];
        let height = block.height();
        assert_eq!(
            height,
            node.height() + 1,
            "seed {seed}: node {i} committed out of order"
        );
        if let Some((last, _, _)) = node.chain.last() {
            assert_eq!(
                block.header.prev,
                last.hash(),
                "seed {seed}: broken chain at {height}"
            );
        }
        let outcome = node
            .ledger
            .apply_block(&block)
            .unwrap_or_else(|e| panic!("seed {seed}: node {i} cannot execute: {e}"));
        assert_eq!(
            node.ledger.total_supply(),
            node.ledger.genesis_supply(),
            "seed {seed}: node {i} broke supply at height {height}"
        );
        if node.pbft.committed() == height {
            assert_eq!(
                node.pbft.blames(),
                node.ledger.blames(),
                "seed {seed}: node {i}'s consensus and ledger disagree on who failed to lead"
            );
        }
        let committed: HashSet<Hash> = block.txs.iter().map(Transaction::hash).collect();
        node.mempool.retain(|tx| !committed.contains(&tx.hash()));
        let hash = whole_block_hash(&block);
        node.chain.push((block, certificate, outcome.state_root));
        if honest {
            let agreed = *self.agreed.entry(height).or_insert(hash);
            assert_eq!(
                agreed, hash,
                "seed {seed}: node {i} committed a different block at {height}"
            );
            let root = *self.roots.entry(height).or_insert(outcome.state_root);
            assert_eq!(
                root, outcome.state_root,
                "seed {seed}: node {i} diverged in state at {height}"
            );
        }
        self.input(
            i,
            self.now,
            Input::Executed {
                height,
                state_root: outcome.state_root,
                next_validators: outcome.new_validators,
            },
        );
    }

    /// Puts a transaction in every node's mempool, as gossip would, and tells each core
    /// that transactions wait (as the node's mempool does).
    pub fn submit(&mut self, tx: Transaction) {
        let mut told = Vec::new();
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if node.mempool.len() < 500 && !node.mempool.contains(&tx) {
                node.mempool.push(tx.clone());
                told.push(i);
            }
        }
        for i in told {
            if self.nodes[i].alive {
                let pending = self.nodes[i].mempool.len();
                self.input(i, self.now, Input::TxsWaiting { pending });
            }
        }
    }

    /// Submits a random transfer between bank accounts to every node's mempool (as gossip
    /// would), with the sender's next nonce as far as the workload knows.
    pub fn submit_transfer(&mut self) {
        let n = self.bank.len() as u64;
        let from = self.rng.below(n) as usize;
        let to = (from + 1 + self.rng.below(n - 1) as usize) % self.bank.len();
        let sender = self.bank[from].address();
        let reference = self.reference_node();
        let committed_nonce = self.nodes[reference]
            .ledger
            .account(&sender)
            .map_or(0, |a| a.nonce);
        let next = self.pending_nonce.entry(sender).or_insert(0);
        if *next < committed_nonce || *next > committed_nonce + 3 {
            *next = committed_nonce;
        }
        let nonce = *next;
        *next += 1;
        let tx = TxBody {
            from: sender,
            nonce,
            kind: TxKind::Transfer {
                to: self.bank[to].address(),
                amount: 1 + u128::from(self.rng.below(1000)),
            },
        }
        .sign(&self.bank[from], CHAIN);
        self.submit(tx);
    }

    /// The honest node with the longest chain.
    pub fn reference_node(&self) -> usize {
        (0..self.nodes.len())
            .filter(|&i| self.honest(i))
            .max_by_key(|&i| self.nodes[i].height())
            .unwrap_or(0)
    }

    /// Crashes node `i`: it loses everything but what it persisted and committed.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].alive = false;
    }

    /// Restarts node `i` from its durable state.
    pub fn restart(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].crash_at = None;
        let node = &self.nodes[i];
        let restored = self.restored(&node.ledger, &node.chain, &node.durable);
        let config = self.config(&node.key);
        let (pbft, actions) = Pbft::new(config, restored, now);
        let node = &mut self.nodes[i];
        node.pbft = pbft;
        node.alive = true;
        node.incarnation += 1;
        node.mempool.clear();
        self.carry_out(i, actions);
    }

    /// The lowest committed height among honest, alive nodes.
    pub fn min_honest_height(&self) -> u64 {
        (0..self.nodes.len())
            .filter(|&i| self.honest(i) && self.nodes[i].alive)
            .map(|i| self.nodes[i].height())
            .min()
            .unwrap_or(0)
    }

    /// Every honest node's chain is a prefix of the agreed chain (checked on each commit);
    /// here, a final cross-check of whole chains.
    pub fn assert_chains_agree(&self) {
        let honest: Vec<&Node> = (0..self.nodes.len())
            .filter(|&i| self.honest(i))
            .map(|i| &self.nodes[i])
            .collect();
        for pair in honest.windows(2) {
            for (a, b) in pair[0].chain.iter().zip(&pair[1].chain) {
                assert_eq!(a.0, b.0, "seed {}: chains differ", self.seed);
                assert_eq!(a.2, b.2, "seed {}: state roots differ", self.seed);
            }
        }
    }

    /// Stake-weighted quorum check of every certificate in node `i`'s chain.
    pub fn assert_certificates_valid(&self, i: usize) {
        let ledger = Ledger::from_genesis(&self.genesis);
        for (block, certificate, _) in &self.nodes[i].chain {
            let validators = ledger
                .validators_for(block.height())
                .or_else(|| self.nodes[i].ledger.validators_for(block.height()));
            if let Some(validators) = validators {
                certificate
                    .verify(CHAIN, validators)
                    .unwrap_or_else(|e| panic!("seed {}: bad certificate: {e}", self.seed));
            }
        }
    }

    /// Every event handled so far, by type of node, for debugging a seed.
    pub fn summary(&self) -> String {
        let heights: Vec<String> = self
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "{}:r{}:{:?}:low{}:{:?}{}",
                    n.height(),
                    n.pbft.round(),
                    n.pbft.mode(),
                    n.pbft.low(),
                    n.behaviour,
                    if n.alive { "" } else { ":down" }
                )
            })
            .collect();
        format!(
            "seed {} t={} heights [{}]",
            self.seed,
            self.now,
            heights.join(" ")
        )
    }
}

/// A block's identity for the agreement check: its header and its transactions. Two
/// blocks under one header hash with different bodies must count as a disagreement.
fn whole_block_hash(block: &Block) -> Hash {
    Hash::digest(b"sim/whole-block", &[&almagill::encoding::encode(block)])
}

/// A node carrying out one step: the simulator as the core's host.
struct SimHost<'a> {
    world: &'a mut World,
    i: usize,
    /// Where this node is to crash, if it is.
    crash_at: Option<CrashPoint>,
    /// Whether it crashed during this step: everything after is lost.
    crashed: bool,
    /// A Byzantine node's messages, held for its behaviour to rewrite.
    held: Vec<(Target, Message)>,
}

impl SimHost<'_> {
    fn crash(&mut self) {
        self.crashed = true;
        self.world.nodes[self.i].crash_at = None;
        self.world.crash(self.i);
    }
}

impl Host for SimHost<'_> {
    type Error = std::convert::Infallible;

    fn persist(
        &mut self,
        records: Vec<Record>,
        prune_below: Option<u64>,
    ) -> Result<(), Self::Error> {
        if self.crashed {
            return Ok(());
        }
        let node = &mut self.world.nodes[self.i];
        node.durable.extend(records);
        if let Some(low) = prune_below {
            let keep = kept_after_prune(&node.durable, low);
            let mut kept = keep.into_iter();
            node.durable.retain(|_| kept.next().unwrap_or(false));
        }
        if self.crash_at == Some(CrashPoint::AfterPersist) {
            self.crash();
        }
        Ok(())
    }

    fn send(&mut self, target: Target, message: Message) {
        if self.crashed {
            return;
        }
        if self.world.honest(self.i) {
            self.world.check_vote(self.i, &message);
            self.world.check_bodies(self.i, &message);
            self.world.send(self.i, target, message);
        } else {
            self.held.push((target, message));
        }
    }

    fn execute(&mut self, block: Block, certificate: CommitCertificate) {
        if self.crashed {
            return;
        }
        if self.crash_at == Some(CrashPoint::BeforeExecute) {
            self.crash();
            return;
        }
        self.world.commit(self.i, block, certificate);
    }

    fn set_timer(&mut self, timer: Timer, after_ms: u64) {
        if !self.crashed {
            let at = self.world.now + after_ms;
            self.world.input(self.i, at, Input::Timeout(timer));
        }
    }

    fn request_batch(&mut self, request: BatchRequest) {
        if self.crashed {
            return;
        }
        let exclude: HashSet<Hash> = request
            .exclude
            .into_iter()
            .chain(request.committed)
            .collect();
        let txs: Vec<Transaction> = self.world.nodes[self.i]
            .mempool
            .iter()
            .filter(|tx| !exclude.contains(&tx.hash()))
            .take(request.max_txs)
            .cloned()
            .collect();
        let height = request.height;
        let at = self.world.now + 1;
        self.world.input(self.i, at, Input::Batch { height, txs });
    }

    fn request_sync(&mut self, from: u64, to: u64) {
        if !self.crashed {
            self.world.serve_sync(self.i, from, to);
        }
    }
}
