//! The admin port's server: one task per connection, reading lines with a size limit and
//! answering each through the node's actors. It only reads snapshots and submits
//! transactions; it never sits in consensus's path, and one slow or silent client holds
//! nothing but its own task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use almagill::crypto::{Address, Hash, Keypair};
use almagill::genesis::Genesis;
use almagill::tx::TxKind;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, error};

use crate::admin::protocol::{self, AdminError, BlockRef, Command, PeerView, StatusView, TxStatus};
use crate::node::block_store::BlockStore;
use crate::node::consensus::ConsensusEngine;
use crate::node::mempool::Mempool;
use crate::node::messages::{
    GetBlocks, ReadConsensus, ReadMempool, ReadPeers, ReadState, ReadTx, SignAndSubmit, Submit,
    TxOutcome,
};
use crate::node::network::Network;
use crate::node::state::StateActor;

/// Admin connections served at once; more are closed on arrival.
const MAX_CONNECTIONS: usize = 4096;
/// How often `WAIT` looks again.
const WAIT_POLL: Duration = Duration::from_millis(25);

/// What the admin port answers from.
#[derive(Clone)]
pub struct Backend {
    /// The node's name.
    pub name: String,
    /// The chain's genesis (account names, chain id).
    pub genesis: Arc<Genesis>,
    /// Keys the node may sign with for `SEND` and friends.
    pub wallets: Arc<HashMap<Address, Keypair>>,
    /// The node's own address.
    pub address: Address,
    /// Consensus status.
    pub engine: Addr<ConsensusEngine>,
    /// Committed state.
    pub state: Addr<StateActor>,
    /// Pending transactions.
    pub mempool: Addr<Mempool>,
    /// Peers.
    pub network: Addr<Network>,
    /// Stored blocks.
    pub store: Addr<BlockStore>,
}

/// Serves the admin port on `listener` until the node stops.
pub fn start(listener: std::net::TcpListener, backend: Backend) {
    let listener = match listener
        .set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(listener))
    {
        Ok(listener) => listener,
        Err(e) => {
            error!(target: "admin", "cannot serve the admin port: {e}");
            return;
        }
    };
    actix_rt::spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let backend = backend.clone();
            actix_rt::spawn(async move {
                if let Err(e) = serve(stream, &backend).await {
                    debug!(target: "admin", "connection ended: {e}");
                }
                drop(permit);
            });
        }
    });
}

/// Reads one line of at most `MAX_LINE` bytes (without its `\n`). `Ok(None)` at the end of
/// input; `Err(true)` if the line is too long.
async fn read_line(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    line.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if line.is_empty() { None } else { Some(false) });
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if line.len() + chunk.len() > protocol::MAX_LINE {
            return Ok(Some(true));
        }
        line.extend_from_slice(chunk);
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some(false));
        }
    }
}

async fn serve(stream: TcpStream, backend: &Backend) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    while let Some(too_long) = read_line(&mut reader, &mut line).await? {
        if too_long {
            write
                .write_all(protocol::err_line(&protocol::too_long()).as_bytes())
                .await?;
            return Ok(());
        }
        let Some(parsed) = protocol::parse_line(&line, &backend.genesis) else {
            continue;
        };
        let quit = parsed == Ok(Command::Quit);
        let answer = match parsed {
            Ok(command) => match execute(command, backend).await {
                Ok(value) => protocol::ok_line(value),
                Err(e) => protocol::err_line(&e),
            },
            Err(e) => protocol::err_line(&e),
        };
        write.write_all(answer.as_bytes()).await?;
        if quit {
            return Ok(());
        }
    }
    Ok(())
}

fn internal(e: actix::MailboxError) -> AdminError {
    AdminError::internal(format!("the node could not answer: {e}"))
}

fn unknown_account(address: &Address) -> AdminError {
    AdminError::unknown_account(format!(
        "{address} is not an account; create it with CREATE"
    ))
}

/// Where a transaction is. The mempool is asked first: the StateActor records a block's
/// outcomes before it tells the mempool to drop the block's transactions, so a transaction
/// the mempool no longer holds is already in the state if it was committed. (Asking in the
/// other order could miss one that commits between the two questions.)
async fn tx_status(backend: &Backend, hash: Hash) -> Result<Option<TxStatus>, AdminError> {
    let pending = backend
        .mempool
        .send(ReadMempool { tx: Some(hash) })
        .await
        .map_err(internal)?
        .pending;
    if pending {
        return Ok(Some(TxStatus::Pending));
    }
    let (outcome, _) = backend
        .state
        .send(ReadTx {
            tx: Some(hash),
            root_at: None,
        })
        .await
        .map_err(internal)?;
    Ok(outcome.map(|outcome| match outcome {
        TxOutcome::Committed(height) => TxStatus::Committed { height },
        TxOutcome::Failed(height, reason) => TxStatus::Failed { height, reason },
    }))
}

fn not_found(hash: &Hash) -> AdminError {
    AdminError::not_found(format!("no transaction {hash} is known here"))
}

async fn execute(command: Command, backend: &Backend) -> Result<Value, AdminError> {
    match command {
        Command::Help => Ok(protocol::help_json()),
        Command::Ping => Ok(protocol::pong_json()),
        Command::Quit => Ok(protocol::bye_json()),
        Command::Status => status(backend).await,
        Command::Balance { address } => {
            let view = backend
                .state
                .send(ReadState(Some(address)))
                .await
                .map_err(internal)?;
            let account = view.account.ok_or_else(|| unknown_account(&address))?;
            Ok(protocol::balance_json(&address, &account))
        }
        Command::Submit { tx } => {
            let hash = backend
                .mempool
                .send(Submit(tx))
                .await
                .map_err(internal)?
                .map_err(|e| AdminError::new(e.code(), e.to_string()))?;
            Ok(protocol::tx_admitted_json(&hash))
        }
        Command::Send { from, to, amount } => {
            sign(backend, from, TxKind::Transfer { to, amount }).await
        }
        Command::Create {
            from,
            new_account,
            amount,
        } => {
            sign(
                backend,
                from,
                TxKind::CreateAccount {
                    new_account,
                    amount,
                },
            )
            .await
        }
        Command::Stake { from, amount } => sign(backend, from, TxKind::Stake { amount }).await,
        Command::Unstake { from, amount } => sign(backend, from, TxKind::Unstake { amount }).await,
        Command::Tx { hash } => {
            let status = tx_status(backend, hash)
                .await?
                .ok_or_else(|| not_found(&hash))?;
            Ok(protocol::tx_json(&hash, &status))
        }
        Command::Wait { hash, timeout_ms } => {
            let deadline = Instant::now() + Duration::from_millis(timeout_ms);
            loop {
                match tx_status(backend, hash).await? {
                    None => return Err(not_found(&hash)),
                    Some(TxStatus::Pending) if Instant::now() < deadline => {
                        tokio::time::sleep(WAIT_POLL).await;
                    }
                    Some(TxStatus::Pending) => {
                        return Err(AdminError::timeout(format!(
                            "{hash} is still pending after {timeout_ms} ms"
                        )))
                    }
                    Some(status) => return Ok(protocol::tx_json(&hash, &status)),
                }
            }
        }
        Command::Block { at } => block(backend, at).await,
        Command::Validators => {
            let view = backend
                .state
                .send(ReadState(None))
                .await
                .map_err(internal)?;
            let set = view
                .validators
                .ok_or_else(|| AdminError::internal("the validator set is not known yet"))?;
            Ok(protocol::validators_json(&set))
        }
        Command::Peers => {
            let peers = backend.network.send(ReadPeers).await.map_err(internal)?;
            let views: Vec<PeerView> = peers
                .into_iter()
                .map(|p| PeerView {
                    address: p.address,
                    endpoint: p.endpoint,
                    connected: p.connected,
                })
                .collect();
            Ok(protocol::peers_json(&views))
        }
        Command::Supply => {
            let view = backend
                .state
                .send(ReadState(None))
                .await
                .map_err(internal)?;
            Ok(protocol::supply_json(
                view.total_supply,
                view.genesis_supply,
            ))
        }
    }
}

/// Signs a transaction of `kind` from `from` with a key the node holds, choosing the next
/// nonce inside the mempool so concurrent requests never reuse one.
async fn sign(backend: &Backend, from: Address, kind: TxKind) -> Result<Value, AdminError> {
    let key = backend
        .wallets
        .get(&from)
        .cloned()
        .ok_or_else(|| AdminError::no_key(format!("this node holds no key for {from}")))?;
    let hash = backend
        .mempool
        .send(SignAndSubmit { key, kind })
        .await
        .map_err(internal)?
        .map_err(|e| AdminError::new(e.code(), e.to_string()))?;
    Ok(protocol::tx_admitted_json(&hash))
}

async fn status(backend: &Backend) -> Result<Value, AdminError> {
    let consensus = backend.engine.send(ReadConsensus).await.map_err(internal)?;
    let peers = backend.network.send(ReadPeers).await.map_err(internal)?;
    let mempool = backend
        .mempool
        .send(ReadMempool { tx: None })
        .await
        .map_err(internal)?;
    let state = backend
        .state
        .send(ReadState(None))
        .await
        .map_err(internal)?;
    let view = StatusView {
        node: backend.name.clone(),
        address: backend.address,
        height: consensus.height,
        view: consensus.view,
        leader: consensus.leader.unwrap_or(backend.address),
        last_hash: consensus.last_hash,
        peers: peers.iter().filter(|p| p.connected).count(),
        mempool: mempool.len,
        validators: state.validators.map_or(0, |v| v.len()),
        chain_id: backend.genesis.chain_id.clone(),
    };
    Ok(protocol::status_json(&view))
}

async fn block(backend: &Backend, at: BlockRef) -> Result<Value, AdminError> {
    let executed = backend
        .state
        .send(ReadState(None))
        .await
        .map_err(internal)?
        .height;
    let height = match at {
        BlockRef::Latest => executed,
        BlockRef::Height(height) => height,
    };
    let missing = || AdminError::not_found(format!("no block at height {height} here"));
    if height == 0 || height > executed {
        return Err(missing());
    }
    let blocks = backend
        .store
        .send(GetBlocks {
            from: height,
            to: height,
        })
        .await
        .map_err(internal)?;
    let (block, certificate) = blocks.into_iter().next().ok_or_else(missing)?;
    let (_, root) = backend
        .state
        .send(ReadTx {
            tx: None,
            root_at: Some(height),
        })
        .await
        .map_err(internal)?;
    let root = root.ok_or_else(missing)?;
    Ok(protocol::block_json(&block, &root, certificate.votes.len()))
}
