//! The admin port's server: one task per connection, reading lines with bounded time and
//! memory ([`crate::admin::lines`]) and answering each through the node's actors. It only
//! reads snapshots and submits transactions; it never sits in consensus's path, and one slow
//! or silent client holds nothing but its own task, until its idle or line timeout.
//!
//! Connections beyond a cap derived from the process's open-file limit ([`connection_cap`])
//! get one `ERR internal` line (if their socket takes it at once) and are closed, so admin
//! clients can never take the file descriptors the peers, the vote log and the chain need.
//! Accept errors (such as running out of descriptors anyway) are retried after a pause that
//! doubles up to a second, never in a busy loop.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Recipient;
use almagill::crypto::{Address, Hash, Keypair};
use almagill::genesis::Genesis;
use almagill::tx::{Transaction, TxKind};
use futures_util::future::{FutureExt, LocalBoxFuture};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, error, info, warn};

use crate::admin::auth::AdminToken;
use crate::admin::lines::{self, LineReader, Next};
use crate::admin::protocol::{self, AdminError, BlockRef, Command, StatusView, TxStatus};
use crate::node::messages::{
    ReadBlock, ReadConsensus, ReadMempool, ReadPeers, ReadState, ReadTx, SignAndSubmit, Submit,
};

/// How often `WAIT` looks again.
const WAIT_POLL: Duration = Duration::from_millis(25);

/// Open files kept back from admin connections for everything else the node opens: standard
/// streams, the runtime's event descriptors, both listeners, the chain and vote logs and the
/// files that replace them when they are compacted, and connections being handshaken on
/// the peer port.
const RESERVED_FILES: u64 = 256;

/// Open files kept back per configured peer: a dialled connection, an accepted one, and a
/// newer session replacing one of them.
const FILES_PER_PEER: u64 = 4;

/// The fewest admin connections served, whatever the file limit, so an operator can always
/// get in, even at the cost of headroom under a tiny file limit.
const MIN_CONNECTIONS: usize = 16;

/// The most admin connections served, whatever the file limit: each costs a task, a small
/// read buffer and a kernel socket, so this bounds what local clients can make the node hold.
const MAX_CONNECTIONS: usize = 16_384;

/// Requests of one connection read ahead of their answers, at most (see [`serve`]).
const PIPELINE: usize = 64;

/// `SUBMIT`s of all connections together read ahead of their answers, at most: with
/// [`PIPELINE`], this bounds what pipelining clients make the node hold (each a
/// transaction and a small future, a few hundred bytes).
pub const PIPELINED: usize = 4096;

/// The first pause after a failed `accept`; it doubles on each failure in a row.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(100);

/// The longest pause between `accept` retries.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// At most one warning per this period about refused connections or failing accepts, so a
/// flood cannot flood the log too.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How many admin connections a node serves at once, given its open-file limit (`None`:
/// unlimited) and how many peers it has: the limit less what the rest of the node may need,
/// within [`MIN_CONNECTIONS`]..=[`MAX_CONNECTIONS`].
pub fn connection_cap(file_limit: Option<u64>, peers: usize) -> usize {
    let reserved = RESERVED_FILES.saturating_add(FILES_PER_PEER.saturating_mul(peers as u64));
    file_limit
        .map_or(u64::MAX, |limit| limit.saturating_sub(reserved))
        .try_into()
        .unwrap_or(usize::MAX)
        .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// How the admin port treats its connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once ([`connection_cap`]).
    pub max_connections: usize,
    /// How long a connection may send nothing (node config `admin_idle_timeout_s`); also
    /// how long an answer may wait for a client that does not read.
    pub idle_timeout: Duration,
}

/// What the admin port answers from.
#[derive(Clone)]
pub struct Backend {
    /// The node's name.
    pub name: String,
    /// The chain's genesis (account names, chain id).
    pub genesis: Arc<Genesis>,
    /// Keys the node may sign with for `SEND` and friends: exactly the config's `wallets`
    /// (the validator key only if listed there).
    pub wallets: Arc<HashMap<Address, Keypair>>,
    /// When set, the signing commands need `AUTH` with this token on each connection.
    pub token: Option<AdminToken>,
    /// The node's own address.
    pub address: Address,
    /// Where questions and requests go.
    pub routes: Routes,
}

/// Where the admin port's questions and requests go, one recipient per message, so the
/// server names messages, never actors.
#[derive(Clone)]
pub struct Routes {
    /// Consensus status (the ConsensusEngine).
    pub consensus: Recipient<ReadConsensus>,
    /// Committed state (the StateActor).
    pub state: Recipient<ReadState>,
    /// Transaction outcomes and state roots (the StateActor).
    pub txs: Recipient<ReadTx>,
    /// The mempool's contents (the Mempool).
    pub mempool: Recipient<ReadMempool>,
    /// Signed transactions to admit (the Mempool).
    pub submit: Recipient<Submit>,
    /// Transactions for the node to sign and admit (the Mempool).
    pub sign: Recipient<SignAndSubmit>,
    /// The peers (the Network).
    pub peers: Recipient<ReadPeers>,
    /// Stored blocks (the BlockStore).
    pub blocks: Recipient<ReadBlock>,
}

/// Serves the admin port on `listener` until the node stops.
pub fn start(listener: std::net::TcpListener, backend: Backend, limits: Limits) {
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
    info!(target: "admin", max_connections = limits.max_connections, idle_timeout_s = limits.idle_timeout.as_secs(), "serving");
    actix_rt::spawn(accept_loop(listener, backend, limits));
}

/// Accepts connections for ever: each within the cap gets its own task; the others are
/// refused at once. A failing `accept` is retried after a growing pause.
async fn accept_loop(listener: TcpListener, backend: Backend, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let budget = lines::long_line_budget();
    let pipelined = Arc::new(Semaphore::new(PIPELINED));
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut last_warning: Option<Instant> = None;
    let mut may_warn = move || {
        let due = last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY);
        if due {
            last_warning = Some(Instant::now());
        }
        due
    };
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                if may_warn() {
                    warn!(target: "admin", "cannot accept admin connections: {e}; retrying in {backoff:?}");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        backoff = ACCEPT_BACKOFF_MIN;
        // Answers and block notices go out at once, not held back by Nagle's algorithm
        // (which waits for the client's delayed acknowledgement, 40 ms); failing only
        // leaves the socket slower.
        let _ = stream.set_nodelay(true);
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            if may_warn() {
                warn!(target: "admin", max_connections = limits.max_connections, "admin connections refused: all slots are taken");
            }
            refuse(stream, limits.max_connections);
            continue;
        };
        let backend = backend.clone();
        let budget = Arc::clone(&budget);
        let pipelined = Arc::clone(&pipelined);
        actix_rt::spawn(async move {
            if let Err(e) = serve(stream, &backend, limits, budget, pipelined).await {
                debug!(target: "admin", "connection ended: {e}");
            }
            drop(permit);
        });
    }
}

/// Tells a connection over the cap why it is closed, if its socket takes the line without
/// waiting, and closes it. The write goes through the plain (still non-blocking) socket:
/// tokio's `try_write` would refuse a socket the reactor has not yet seen writable.
fn refuse(stream: TcpStream, cap: usize) {
    let line = protocol::err_line(&AdminError::internal(format!(
        "the node serves {cap} admin connections already; closing"
    )));
    if let Ok(mut stream) = stream.into_std() {
        let _ = std::io::Write::write(&mut stream, line.as_bytes());
    }
}

/// Writes one answer, giving up (and so closing the connection) if the client has not
/// taken it within `limit`.
async fn answer(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    line: &str,
    limit: Duration,
) -> std::io::Result<()> {
    tokio::time::timeout(limit, write.write_all(line.as_bytes()))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "the client reads nothing")
        })?
}

/// `SUBMIT`s of one connection handed to the mempool and not yet answered, oldest first,
/// each with its place among the [`PIPELINED`] of all connections.
type Submitted = VecDeque<(
    LocalBoxFuture<'static, Result<Hash, AdminError>>,
    OwnedSemaphorePermit,
)>;

/// Serves one connection.
///
/// `SUBMIT` lines are pipelined: each goes to the mempool as soon as it is read, while the
/// earlier ones are still being checked, so a client writing many at once has them checked
/// in one batch. At most [`PIPELINE`] of a connection, and [`PIPELINED`] of all connections
/// together, wait for their answers; beyond that the connection's next line waits in its
/// socket. Any other command is carried out once every earlier `SUBMIT` is answered, so a
/// client sees its requests take effect in the order it sent them. Answers are written in
/// that order, those ready together in one write.
async fn serve(
    stream: TcpStream,
    backend: &Backend,
    limits: Limits,
    budget: Arc<Semaphore>,
    pipelined: Arc<Semaphore>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = LineReader::new(read, budget);
    let mut authorized = backend.token.is_none();
    let mut submitted: Submitted = VecDeque::new();
    let mut out = String::new();
    let limit = limits.idle_timeout;
    loop {
        while let Some(answer) = submitted
            .front_mut()
            .and_then(|(answer, _)| answer.as_mut().now_or_never())
        {
            submitted.pop_front();
            out.push_str(&submitted_line(answer));
        }
        flush(&mut write, &mut out, limit).await?;
        let read = |line: &[u8]| protocol::parse_line(line, &backend.genesis);
        let full = submitted.len() >= PIPELINE;
        let next = match submitted.front_mut() {
            None => reader.next_line(limit, read).await?,
            Some((answer, _)) if full => {
                let answer = answer.await;
                submitted.pop_front();
                out.push_str(&submitted_line(answer));
                continue;
            }
            // `next_line` keeps a line it has started when it is dropped here.
            Some((answer, _)) => tokio::select! {
                biased;
                answer = answer => {
                    submitted.pop_front();
                    out.push_str(&submitted_line(answer));
                    continue;
                }
                next = reader.next_line(limit, read) => next?,
            },
        };
        let parsed = match next {
            Next::Line(Some(parsed)) => parsed,
            Next::Line(None) => continue,
            Next::TooLong => {
                answer_all(&mut submitted, &mut write, &mut out, limit).await?;
                let line = protocol::err_line(&protocol::too_long());
                return answer(&mut write, &line, limit).await;
            }
            Next::End => return answer_all(&mut submitted, &mut write, &mut out, limit).await,
            Next::Idle => {
                debug!(target: "admin", "closing an idle connection");
                return answer_all(&mut submitted, &mut write, &mut out, limit).await;
            }
            Next::Slow => {
                debug!(target: "admin", "closing a connection that did not finish its line");
                return answer_all(&mut submitted, &mut write, &mut out, limit).await;
            }
        };
        if let Ok(Command::Submit { tx }) = parsed {
            let place = Arc::clone(&pipelined)
                .acquire_owned()
                .await
                .map_err(std::io::Error::other)?;
            submitted.push_back((Box::pin(submit(backend, tx)), place));
            continue;
        }
        answer_all(&mut submitted, &mut write, &mut out, limit).await?;
        let quit = parsed == Ok(Command::Quit);
        // The command's future is boxed only while it runs, so the task of each idle
        // connection stays the size of the reading state, not of the largest command.
        let reply = match parsed {
            Ok(command) => match Box::pin(execute(command, backend, &mut authorized)).await {
                Ok(value) => protocol::ok_line(value),
                Err(e) => protocol::err_line(&e),
            },
            Err(e) => protocol::err_line(&e),
        };
        answer(&mut write, &reply, limit).await?;
        if quit {
            return Ok(());
        }
    }
}

/// The answer line to a `SUBMIT`.
fn submitted_line(answer: Result<Hash, AdminError>) -> String {
    match answer {
        Ok(hash) => protocol::ok_line(protocol::tx_admitted_json(&hash)),
        Err(e) => protocol::err_line(&e),
    }
}

/// Writes the answers to every pipelined `SUBMIT`, in order, waiting for them as needed.
async fn answer_all(
    submitted: &mut Submitted,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    out: &mut String,
    limit: Duration,
) -> std::io::Result<()> {
    while let Some((mut answer, _)) = submitted.pop_front() {
        let answer = match answer.as_mut().now_or_never() {
            Some(answer) => answer,
            None => {
                flush(write, out, limit).await?;
                answer.await
            }
        };
        out.push_str(&submitted_line(answer));
    }
    flush(write, out, limit).await
}

/// Writes the answers gathered in `out`, if any, giving up (and so closing the connection)
/// if the client has not taken them within `limit`.
async fn flush(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    out: &mut String,
    limit: Duration,
) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    answer(write, out, limit).await?;
    out.clear();
    Ok(())
}

/// Hands a signed transaction to the mempool at once (the message is queued before this
/// returns); the future is its answer.
fn submit(
    backend: &Backend,
    tx: Transaction,
) -> impl std::future::Future<Output = Result<Hash, AdminError>> {
    let sent = backend.routes.submit.send(Submit(tx));
    async move {
        sent.await
            .map_err(internal)?
            .map_err(|e| AdminError::new(e.code(), e.to_string()))
    }
}

fn internal(e: impl std::fmt::Display) -> AdminError {
    AdminError::internal(format!("the node could not answer: {e}"))
}

fn unknown_account(address: &Address) -> AdminError {
    AdminError::unknown_account(format!(
        "{address} is not an account; create it with CREATE"
    ))
}

/// Where a transaction is. The mempool is asked first: the BlockStore records a block's
/// outcomes before the mempool hears of the block and drops its transactions, so a
/// transaction the mempool no longer holds is already in the index if it was committed.
/// (Asking in the other order could miss one that commits between the two questions.)
async fn tx_status(backend: &Backend, hash: Hash) -> Result<Option<TxStatus>, AdminError> {
    let pending = backend
        .routes
        .mempool
        .send(ReadMempool { tx: Some(hash) })
        .await
        .map_err(internal)?
        .pending;
    if pending {
        return Ok(Some(TxStatus::Pending));
    }
    let outcome = backend
        .routes
        .txs
        .send(ReadTx(hash))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(outcome.map(TxStatus::Done))
}

fn not_found(hash: &Hash) -> AdminError {
    AdminError::not_found(format!("no transaction {hash} is known here"))
}

/// Carries out one command for a connection; `authorized` is whether it may use the signing
/// commands (set by a successful `AUTH`).
async fn execute(
    command: Command,
    backend: &Backend,
    authorized: &mut bool,
) -> Result<Value, AdminError> {
    let signing = matches!(
        command,
        Command::Send { .. }
            | Command::Create { .. }
            | Command::Stake { .. }
            | Command::Unstake { .. }
    );
    if signing && !*authorized {
        return Err(AdminError::unauthorized(
            "this command needs AUTH <token> first on this connection",
        ));
    }
    match command {
        Command::Help => Ok(protocol::help_json()),
        Command::Ping => Ok(protocol::pong_json()),
        Command::Quit => Ok(protocol::bye_json()),
        Command::Auth { token } => match &backend.token {
            None => Ok(protocol::auth_json()),
            Some(expected) if expected.matches(&token) => {
                *authorized = true;
                Ok(protocol::auth_json())
            }
            Some(_) => Err(AdminError::unauthorized("wrong token")),
        },
        Command::Status => status(backend).await,
        Command::Balance { address } => {
            let view = backend
                .routes
                .state
                .send(ReadState(Some(address)))
                .await
                .map_err(internal)?;
            let account = view.account.ok_or_else(|| unknown_account(&address))?;
            Ok(protocol::balance_json(&address, &account))
        }
        // `serve` pipelines every `SUBMIT` itself, so none reaches here in practice.
        Command::Submit { tx } => submit(backend, tx)
            .await
            .map(|hash| protocol::tx_admitted_json(&hash)),
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
                .routes
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
            let peers = backend
                .routes
                .peers
                .send(ReadPeers)
                .await
                .map_err(internal)?;
            Ok(protocol::peers_json(&peers))
        }
        Command::Supply => {
            let view = backend
                .routes
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

/// Signs a transaction of `kind` from `from` with a key listed in the node's `wallets`,
/// choosing the next nonce inside the mempool so concurrent requests never reuse one.
async fn sign(backend: &Backend, from: Address, kind: TxKind) -> Result<Value, AdminError> {
    let key = backend
        .wallets
        .get(&from)
        .cloned()
        .ok_or_else(|| AdminError::no_key(format!("this node holds no key for {from}")))?;
    let hash = backend
        .routes
        .sign
        .send(SignAndSubmit { key, kind })
        .await
        .map_err(internal)?
        .map_err(|e| AdminError::new(e.code(), e.to_string()))?;
    Ok(protocol::tx_admitted_json(&hash))
}

async fn status(backend: &Backend) -> Result<Value, AdminError> {
    let consensus = backend
        .routes
        .consensus
        .send(ReadConsensus)
        .await
        .map_err(internal)?;
    let peers = backend
        .routes
        .peers
        .send(ReadPeers)
        .await
        .map_err(internal)?;
    let mempool = backend
        .routes
        .mempool
        .send(ReadMempool { tx: None })
        .await
        .map_err(internal)?;
    let state = backend
        .routes
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
    let height = match at {
        BlockRef::Latest => None,
        BlockRef::Height(height) => Some(height),
    };
    let found = backend
        .routes
        .blocks
        .send(ReadBlock(height))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let (block, certificate, root) = found.ok_or_else(|| {
        AdminError::not_found(match height {
            Some(height) => format!("no block at height {height} here"),
            None => "no block here yet".to_string(),
        })
    })?;
    Ok(protocol::block_json(&block, &root, certificate.votes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_room_for_the_rest_of_the_node() {
        // `ulimit -n 1024` with three peers: 1024 - 256 - 12.
        assert_eq!(connection_cap(Some(1024), 3), 756);
        assert_eq!(connection_cap(Some(20_000), 3), 19_732.min(MAX_CONNECTIONS));
        assert_eq!(connection_cap(Some(5_300), 0), 5_044);
        // Never below the floor, never above the ceiling.
        assert_eq!(connection_cap(Some(100), 3), MIN_CONNECTIONS);
        assert_eq!(connection_cap(Some(0), usize::MAX), MIN_CONNECTIONS);
        assert_eq!(connection_cap(None, 3), MAX_CONNECTIONS);
        assert_eq!(connection_cap(Some(u64::MAX), 0), MAX_CONNECTIONS);
    }
}
