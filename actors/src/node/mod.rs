//! The running node: its actors, how they are wired, and its life from start to shutdown.
//!
//! ```text
//! admin line ─► Admin ─► Mempool ──(gossip)──► Network ─► PeerConnection ─► peers
//!                          ▲  │ batch                          │
//! peers ─► PeerConnection ─┼──┴─────────────► ConsensusEngine ◄┘ (consensus, blocks)
//!                          │                    │ votes: fsync, then send
//!                          │                    ▼ committed blocks, in order
//!                          └── committed ── StateActor ──► BlockStore (fsync per block)
//! ```

pub mod admission;
pub mod block_store;
pub mod clock;
pub mod consensus;
pub mod mempool;
pub mod messages;
pub mod network;
pub mod peer;
pub mod recover;
pub mod session;
pub mod state;
pub mod state_sync;
pub mod wire;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use actix::{Actor, AsyncContext, Context};
use almagill::config::NodeConfig;
use almagill::consensus::{Config, Pbft, Record, Restored};
use almagill::crypto::{Address, Keypair};
use almagill::genesis::Genesis;
use almagill::ledger::Ledger;
use almagill::mempool::{Limits, Pool};
use almagill::tx::VerifiedTxs;
use anyhow::{Context as _, Result};
use tracing::{info, warn};

use crate::admin::auth::AdminToken;
use crate::admin::server::{connection_cap, Limits as AdminLimits};
use crate::metrics::{self, Metrics};
use crate::store::VoteStore;
use crate::{file_limit, files};

use self::block_store::BlockStore;
use self::consensus::{ConsensusEngine, EngineRoutes};
use self::mempool::Mempool;
use self::network::{Me, Network};
use self::peer::Routes;
use self::state::StateActor;

/// A ledger snapshot is stored every this many checkpoints, so a restart executes at most
/// that many checkpoint intervals of blocks.
const SNAPSHOT_CHECKPOINTS: u64 = 10;

/// Threads that run blocking work (signature checks of gossiped transactions).
const BLOCKING_THREADS: usize = 2;

/// Everything a node loads before it starts: checked files, recovered storage, bound ports.
pub struct Loaded {
    /// The node's configuration.
    pub config: NodeConfig,
    /// The chain's genesis.
    pub genesis: Genesis,
    /// The validator key.
    pub key: Keypair,
    /// Keys the admin port may sign with, by address: the config's `wallets` only, so the
    /// validator key signs admin requests only if the operator lists it there.
    pub wallets: HashMap<Address, Keypair>,
    /// The token the admin port's signing commands need (`admin_token_file`), if any.
    pub admin_token: Option<AdminToken>,
}

/// Loads and checks the configuration, genesis and keys named by `config_path`.
pub fn load(config_path: &Path) -> Result<Loaded> {
    let base = config_path.parent().unwrap_or(Path::new("."));
    let config = NodeConfig::from_toml(&files::read_text(config_path, "node config")?, base)
        .with_context(|| format!("{}", config_path.display()))?;
    let genesis = files::load_genesis(&config.genesis)?;
    let key = files::load_key(&config.key_file)?;
    let mut wallets = HashMap::new();
    for path in &config.wallets {
        let wallet = files::load_key(path)?;
        wallets.insert(wallet.address(), wallet);
    }
    let admin_token = config
        .admin_token_file
        .as_deref()
        .map(files::load_admin_token)
        .transpose()?;
    Ok(Loaded {
        config,
        genesis,
        key,
        wallets,
        admin_token,
    })
}

/// Runs the node until SIGINT or SIGTERM, then stops cleanly (storage is fsynced at every
/// write, so stopping is closing sockets). With `state_sync`, first installs the newest
/// snapshot a peer can prove, if it is above the stored chain. Errors before start-up (a bad
/// file, a port in use, corrupt storage) are returned; the process exits non-zero on them.
pub fn run(loaded: Loaded, state_sync: bool) -> Result<()> {
    let Loaded {
        config,
        genesis,
        key,
        wallets,
        admin_token,
    } = loaded;
    let file_limit = file_limit::raise_to_hard();
    if let Some(e) = file_limit.raise_failed {
        warn!(target: "node", "cannot raise the open-file limit to its hard limit: {e}");
    }
    let admin_limits = AdminLimits {
        max_connections: connection_cap(file_limit.soft, config.peers.len()),
        idle_timeout: config.admin_idle_timeout,
    };
    info!(target: "node", open_files = ?file_limit.soft, admin_connections = admin_limits.max_connections, "open-file limit");
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let snapshot_every = genesis
        .consensus
        .checkpoint_interval
        .saturating_mul(SNAPSHOT_CHECKPOINTS);
    let (mut chain, mut ledger) = recover::recover(&config.data_dir, &genesis, snapshot_every)
        .with_context(|| format!("cannot recover the chain in {}", config.data_dir.display()))?;
    let (mut votes, mut records) = VoteStore::open(&config.data_dir)
        .with_context(|| format!("cannot open the vote log in {}", config.data_dir.display()))?;
    let me = Me {
        key: Arc::new(key.clone()),
        chain_id: genesis.chain_id.as_str().into(),
        genesis: genesis.hash(),
    };
    let genesis_state_root = Ledger::from_genesis(&genesis).state_root();

    let peer_listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen for peers on {}", config.listen))?;
    let admin_listener = std::net::TcpListener::bind(config.admin)
        .with_context(|| format!("cannot listen for admin on {}", config.admin))?;
    let metrics_listener = match config.metrics {
        None => None,
        Some(address) => Some(
            std::net::TcpListener::bind(address)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .with_context(|| format!("cannot serve metrics on {address}"))?,
        ),
    };
    let (metrics, registry) = Metrics::new();
    if state_sync {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the state-sync runtime")?;
        let fetched = runtime.block_on(state_sync::fetch(
            &me,
            &config.peers,
            &genesis,
            chain.height(),
        ))?;
        match fetched {
            Some(synced) => {
                chain
                    .install(&synced.offer, &synced.chunks, &synced.proofs)
                    .context("cannot store the fetched snapshot")?;
                // The snapshot's checkpoint is this node's low watermark from now on.
                let stable = Record::Stable(synced.offer.checkpoint);
                votes
                    .append(std::slice::from_ref(&stable))
                    .context("cannot record the snapshot's checkpoint")?;
                records.push(stable);
                ledger = synced.ledger;
            }
            None => {
                info!(target: "sync", height = chain.height(), "no snapshot above this node's height; catching up on blocks")
            }
        }
    }
    let last_hash = chain.tip_hash();
    let last_timestamp_ms = chain
        .block(chain.height())
        .context("cannot read the last stored block")?
        .map_or(genesis.genesis_time_ms, |(b, _)| {
            b.header.proposal.timestamp_ms
        });
    info!(target: "node", node = %config.name, height = chain.height(), "recovered from disk");

    let restored = Restored {
        committed: chain.height(),
        last_hash,
        last_timestamp_ms,
        validators: ledger
            .validator_epochs()
            .map(|(epoch, set)| (epoch, set.clone()))
            .collect(),
        blames: ledger.blames().clone(),
        records,
    };
    // Signatures checked once per node: the mempool's checks spare the proposal bodies'.
    let verified = Arc::new(VerifiedTxs::default());
    let core_config = Config {
        chain_id: genesis.chain_id.clone(),
        key: Some(key.clone()),
        params: genesis.consensus.clone(),
        epoch_length: genesis.epoch_length,
        genesis_state_root,
        verified: verified.clone(),
    };
    let names: HashMap<Address, String> = genesis
        .accounts
        .iter()
        .map(|a| (a.address, a.name.clone()))
        .collect();

    // At most two threads check gossiped signatures off the actor thread (the machine's
    // cores are the limit anyway): each thread that allocates gets its own allocator arena,
    // and a pool that grows under bursts keeps the memory of every arena it ever had.
    let system = actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(BLOCKING_THREADS)
            .build()
            .expect("a single-threaded runtime builds")
    });
    system.block_on(async move {
        let engine_ctx = Context::<ConsensusEngine>::new();
        let state_ctx = Context::<StateActor>::new();
        let mempool_ctx = Context::<Mempool>::new();
        let network_ctx = Context::<Network>::new();
        let (engine, state, mempool, network) = (
            engine_ctx.address(),
            state_ctx.address(),
            mempool_ctx.address(),
            network_ctx.address(),
        );
        let store = BlockStore {
            chain,
            committed: mempool.clone().recipient(),
            metrics: metrics.clone(),
        }
        .start();
        if let Some(listener) = metrics_listener {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => {
                    actix_rt::spawn(metrics::serve(listener, Arc::new(registry)));
                }
                Err(e) => tracing::error!(target: "metrics", "cannot serve metrics: {e}"),
            }
        }
        let routes = Routes {
            inbound: engine.clone().recipient(),
            fetched: engine.clone().recipient(),
            txs: mempool.clone().recipient(),
            serve: store.clone().recipient(),
            serve_sync: store.clone().recipient(),
            answered: network.clone().recipient(),
            disconnected: network.clone().recipient(),
            metrics: metrics.clone(),
        };
        network_ctx.run(Network::new(me, config.peers.clone(), routes, peer_listener));
        let (pbft, initial) = Pbft::new(core_config, restored, clock::now_ms());
        mempool_ctx.run(Mempool {
            pool: Pool::new(Limits::default()),
            ledger: ledger.clone(),
            chain_id: genesis.chain_id.clone(),
            gossip: network.clone().recipient(),
            batches: engine.clone().recipient(),
            waiting: engine.clone().recipient(),
            hint_due: false,
            metrics: metrics.clone(),
            admitted_at: HashMap::new(),
            to_gossip: Vec::new(),
            verified,
            unchecked: Default::default(),
            muted: HashMap::new(),
        });
        state_ctx.run(StateActor {
            ledger,
            snapshot_every,
            store: store.clone().recipient(),
            executed: engine.clone().recipient(),
        });
        engine_ctx.run(ConsensusEngine {
            pbft,
            votes,
            names,
            routes: EngineRoutes {
                outbound: network.clone().recipient(),
                fetch: network.clone().recipient(),
                batches: mempool.clone().recipient(),
                execute: state.clone().recipient(),
                checkpoints: store.clone().recipient(),
            },
            timers: HashMap::new(),
            initial: Some(initial),
            stopped: false,
            metrics,
            last_commit: None,
            catching_up: None,
        });
        crate::admin::server::start(
            admin_listener,
            crate::admin::server::Backend {
                name: config.name.clone(),
                address: key.address(),
                genesis: Arc::new(genesis),
                wallets: Arc::new(wallets),
                token: admin_token,
                routes: crate::admin::server::Routes {
                    consensus: engine.recipient(),
                    state: state.clone().recipient(),
                    txs: store.clone().recipient(),
                    mempool: mempool.clone().recipient(),
                    submit: mempool.clone().recipient(),
                    sign: mempool.recipient(),
                    peers: network.recipient(),
                    blocks: store.recipient(),
                },
            },
            admin_limits,
        );
        info!(target: "node", node = %config.name, listen = %config.listen, admin = %config.admin, "started");
        actix_rt::spawn(async {
            wait_for_shutdown().await;
            info!(target: "node", "shutting down");
            actix::System::current().stop();
        });
    });
    let code = system
        .run_with_code()
        .context("the node's runtime failed")?;
    if code != 0 {
        anyhow::bail!("the node stopped on an error (exit code {code}); see the log");
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
