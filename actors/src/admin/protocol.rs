//! The admin protocol without sockets: request lines in, typed commands out; typed answers
//! in, response lines out.
//!
//! The contract is `spec/admin-protocol.md`. In short: one UTF-8 request line, words split by
//! spaces, command names case-insensitive and arguments not; exactly one response line per
//! request that is not blank, either `OK <json>` or `ERR <code> <message>`. Blank means empty
//! or only ASCII spaces and tabs: any other character, Unicode whitespace included (U+00A0,
//! U+2028, `\x0b`, ...), makes a request that is answered, so a pipelining client that
//! counts its requests never falls out of step with the answers.
//!
//! Choices the spec leaves open, made here:
//! - Addresses and hashes are accepted in any case of hex on input (people paste them from
//!   many places) and always printed in lowercase. An address may also be a genesis account
//!   name; names are at most 32 characters, so they can never be mistaken for 64 hex ones.
//! - Words are split on any ASCII whitespace (space, tab, ...), a superset of "one or more
//!   spaces": no argument ever contains whitespace, so nothing valid is read differently.
//! - `WAIT`'s `ms` is clamped to [`MAX_WAIT_MS`] rather than refused, so a script asking for
//!   "a long time" gets the longest wait the node allows.
//! - Key order inside a JSON object is not part of the contract (clients look fields up by
//!   name); `serde_json` writes them sorted.
//! - Nothing here panics, whatever the bytes: the parser is fuzzed by the tests below.

use std::fmt;
use std::net::SocketAddr;

use almagill::amount::{parse_amount, Amount, AmountError};
use almagill::block::Block;
use almagill::crypto::{Address, Hash};
use almagill::encoding;
use almagill::genesis::Genesis;
use almagill::ledger::Account;
use almagill::tx::Transaction;
use almagill::validators::ValidatorSet;
use serde_json::{json, Value};

/// The longest request line, in bytes, not counting its `\n` (a `\r` before it counts).
/// A longer line is answered `ERR too_long` and the connection is closed: it bounds what one
/// client can make the node buffer. The server enforces this while reading;
/// [`parse_line`] also refuses such a line, so the rule holds whoever calls it.
pub const MAX_LINE: usize = 64 * 1024;

/// How long `WAIT <hash>` waits when no `ms` is given, as the spec says.
pub const DEFAULT_WAIT_MS: u64 = 10_000;

/// The longest `WAIT` a client can ask for (10 minutes); larger values are clamped to it, so
/// no request can hold a connection's answer, and the waiter behind it, indefinitely.
pub const MAX_WAIT_MS: u64 = 600_000;

/// The most characters of a client's own text quoted back in an error message: enough to
/// recognise the mistake, without echoing a 64 KiB argument.
const MAX_ECHO_CHARS: usize = 64;

/// The most characters of an error message on an `ERR` line.
const MAX_MESSAGE_CHARS: usize = 1024;

/// Every command: its name as written in the spec, and its usage, which `HELP` lists and a
/// wrong number of arguments quotes. The parser matches these names, so `HELP` can never
/// miss one.
pub const COMMANDS: &[(&str, &str)] = &[
    ("HELP", "HELP"),
    ("PING", "PING"),
    ("STATUS", "STATUS"),
    ("BALANCE", "BALANCE <addr>"),
    ("SUBMIT", "SUBMIT <hex>"),
    ("SEND", "SEND <from> <to> <amount>"),
    ("CREATE", "CREATE <from> <new_addr> <amount>"),
    ("STAKE", "STAKE <from> <amount>"),
    ("UNSTAKE", "UNSTAKE <from> <amount>"),
    ("TX", "TX <hash>"),
    ("WAIT", "WAIT <hash> [ms]"),
    ("BLOCK", "BLOCK <height|latest>"),
    ("VALIDATORS", "VALIDATORS"),
    ("PEERS", "PEERS"),
    ("SUPPLY", "SUPPLY"),
    ("QUIT", "QUIT"),
    ("AUTH", "AUTH <token>"),
];

/// Which block `BLOCK` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockRef {
    /// `BLOCK latest`: the last committed block.
    Latest,
    /// `BLOCK <n>`: the committed block at height `n`.
    Height(u64),
}

/// One parsed request, with its arguments already checked and typed, so the server only
/// has to carry it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `HELP`: list the commands.
    Help,
    /// `PING`: is the node answering?
    Ping,
    /// `STATUS`: the node's view of the chain.
    Status,
    /// `BALANCE <addr>`: an account in committed state.
    Balance {
        /// The account asked about.
        address: Address,
    },
    /// `SUBMIT <hex>`: admit a transaction someone else signed. Only its encoding is
    /// checked here; the mempool checks its signature and everything else.
    Submit {
        /// The decoded transaction.
        tx: Transaction,
    },
    /// `SEND <from> <to> <amount>`: the node signs a transfer for a key it holds.
    Send {
        /// The paying account, whose key the node must hold.
        from: Address,
        /// The existing recipient.
        to: Address,
        /// Base units moved.
        amount: Amount,
    },
    /// `CREATE <from> <new_addr> <amount>`: the node signs an account creation.
    Create {
        /// The funding account, whose key the node must hold.
        from: Address,
        /// The account to create.
        new_account: Address,
        /// Its opening balance.
        amount: Amount,
    },
    /// `STAKE <from> <amount>`: move balance to stake.
    Stake {
        /// The staking account, whose key the node must hold.
        from: Address,
        /// Base units staked.
        amount: Amount,
    },
    /// `UNSTAKE <from> <amount>`: move stake back to balance.
    Unstake {
        /// The unstaking account, whose key the node must hold.
        from: Address,
        /// Base units unstaked.
        amount: Amount,
    },
    /// `TX <hash>`: where a transaction is now.
    Tx {
        /// The transaction asked about.
        hash: Hash,
    },
    /// `WAIT <hash> [ms]`: like `TX`, answered once the transaction is decided or `ms` ends.
    Wait {
        /// The transaction waited on.
        hash: Hash,
        /// How long to wait: [`DEFAULT_WAIT_MS`] if not given, at most [`MAX_WAIT_MS`].
        timeout_ms: u64,
    },
    /// `BLOCK <height|latest>`: one committed block.
    Block {
        /// Which block.
        at: BlockRef,
    },
    /// `VALIDATORS`: the set for the next block.
    Validators,
    /// `PEERS`: the node's peers and whether each is connected.
    Peers,
    /// `SUPPLY`: the total in committed state against the genesis total.
    Supply,
    /// `QUIT`: answer, then close the connection.
    Quit,
    /// `AUTH <token>`: unlock the signing commands on this connection, when the node's
    /// config names an `admin_token_file`.
    Auth {
        /// The token offered, compared with the file's in constant time by the server.
        token: String,
    },
}

/// A failed request: an error code from the spec's list and a short sentence for people.
/// The code is what scripts match on; the message may change freely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminError {
    /// One of [`ERROR_CODES`].
    pub code: &'static str,
    /// A short human sentence; [`err_line`] makes it single-line.
    pub message: String,
}

impl AdminError {
    /// An error with any code, for codes computed elsewhere (such as the ledger's
    /// `TxError::code()`); prefer the named constructors otherwise.
    /// A code outside the protocol's list becomes `internal`: clients only ever see
    /// listed codes.
    pub fn new(code: &'static str, message: impl Into<String>) -> AdminError {
        let code = if ERROR_CODES.contains(&code) {
            code
        } else {
            "internal"
        };
        AdminError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AdminError {}

/// Every error code of the protocol, in the spec's order: the only words that may follow
/// `ERR`. Codes about transactions come from the mempool and ledger (`AdmitError::code`).
pub const ERROR_CODES: &[&str] = &[
    "bad_request",
    "unknown_command",
    "bad_address",
    "bad_amount",
    "unknown_account",
    "account_exists",
    "no_key",
    "invalid_signature",
    "bad_nonce",
    "insufficient_funds",
    "below_min_stake",
    "duplicate",
    "mempool_full",
    "not_found",
    "timeout",
    "too_long",
    "unauthorized",
    "internal",
];

/// Named constructors for the codes the admin port itself produces.
macro_rules! constructors {
    ($($(#[$doc:meta])* $code:ident,)*) => {
        impl AdminError {
            $(
                $(#[$doc])*
                pub fn $code(message: impl Into<String>) -> AdminError {
                    AdminError::new(stringify!($code), message)
                }
            )*
        }
    };
}

constructors! {
    /// The request is malformed: not UTF-8, wrong number of arguments, a bad hash,
    /// height or transaction encoding.
    bad_request,
    /// The first word is not a command.
    unknown_command,
    /// An argument is neither 64 hex characters nor a genesis account name.
    bad_address,
    /// An amount is malformed, inexact or too large.
    bad_amount,
    /// The account does not exist.
    unknown_account,
    /// The node holds no key for the sending account.
    no_key,
    /// No such transaction or block.
    not_found,
    /// `WAIT` ended with the transaction still pending.
    timeout,
    /// The request line is over [`MAX_LINE`] bytes; the connection is then closed.
    too_long,
    /// A signing command before a successful `AUTH`, or `AUTH` with a wrong token.
    unauthorized,
    /// The node failed to answer (a bug, or the node is shutting down).
    internal,
}

/// The error for a line over [`MAX_LINE`] bytes, with the standard message; the server
/// sends it and then closes the connection.
pub fn too_long() -> AdminError {
    AdminError::too_long(format!(
        "the line is over {MAX_LINE} bytes; closing the connection"
    ))
}

/// Parses one request line: its raw bytes without the trailing `\n` (a trailing `\r` is
/// dropped here). `None` means the line is blank (empty, or only ASCII spaces and tabs),
/// which gets no response; any other line gets the command, or the error to answer with.
pub fn parse_line(line: &[u8], genesis: &Genesis) -> Option<Result<Command, AdminError>> {
    if line.len() > MAX_LINE {
        return Some(Err(too_long()));
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(text) = std::str::from_utf8(line) else {
        return Some(Err(AdminError::bad_request(
            "the request is not UTF-8 text",
        )));
    };
    if is_blank(text) {
        return None;
    }
    Some(parse_words(text, genesis))
}

/// Whether a line gets no response: empty, or only ASCII spaces and tabs, exactly as the
/// spec says. (`str::trim` would also drop Unicode whitespace, leaving such a line without
/// an answer.)
fn is_blank(text: &str) -> bool {
    text.bytes().all(|b| b == b' ' || b == b'\t')
}

/// Parses a line that is not blank into a command.
fn parse_words(text: &str, genesis: &Genesis) -> Result<Command, AdminError> {
    let mut words = text.split_ascii_whitespace();
    // Only ASCII whitespace other than space and tab (a form feed, a lone `\r`): no word.
    let Some(word) = words.next() else {
        return Err(AdminError::unknown_command(
            "the line holds no command; HELP lists them",
        ));
    };
    let args: Vec<&str> = words.collect();
    let Some(&(name, usage)) = COMMANDS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
    else {
        return Err(AdminError::unknown_command(format!(
            "{} is not a command; HELP lists them",
            quote(word)
        )));
    };
    let address = |text: &str| parse_address(text, genesis);
    let command = match (name, args.as_slice()) {
        ("HELP", []) => Command::Help,
        ("PING", []) => Command::Ping,
        ("STATUS", []) => Command::Status,
        ("BALANCE", [a]) => Command::Balance {
            address: address(a)?,
        },
        ("SUBMIT", [hex]) => Command::Submit {
            tx: parse_transaction(hex)?,
        },
        ("SEND", [from, to, amount]) => Command::Send {
            from: address(from)?,
            to: address(to)?,
            amount: parse_amount_arg(amount)?,
        },
        ("CREATE", [from, new_account, amount]) => Command::Create {
            from: address(from)?,
            new_account: address(new_account)?,
            amount: parse_amount_arg(amount)?,
        },
        ("STAKE", [from, amount]) => Command::Stake {
            from: address(from)?,
            amount: parse_amount_arg(amount)?,
        },
        ("UNSTAKE", [from, amount]) => Command::Unstake {
            from: address(from)?,
            amount: parse_amount_arg(amount)?,
        },
        ("TX", [hash]) => Command::Tx {
            hash: parse_hash(hash)?,
        },
        ("WAIT", [hash]) => Command::Wait {
            hash: parse_hash(hash)?,
            timeout_ms: DEFAULT_WAIT_MS,
        },
        ("WAIT", [hash, ms]) => Command::Wait {
            hash: parse_hash(hash)?,
            timeout_ms: parse_wait_ms(ms)?,
        },
        ("BLOCK", [at]) => Command::Block {
            at: parse_block_ref(at)?,
        },
        ("VALIDATORS", []) => Command::Validators,
        ("PEERS", []) => Command::Peers,
        ("SUPPLY", []) => Command::Supply,
        ("QUIT", []) => Command::Quit,
        ("AUTH", [token]) => Command::Auth {
            token: token.to_string(),
        },
        _ => {
            return Err(AdminError::bad_request(format!(
                "wrong number of arguments; usage: {usage}"
            )))
        }
    };
    Ok(command)
}

/// 64 hex characters (any case) or a genesis account name.
fn parse_address(text: &str, genesis: &Genesis) -> Result<Address, AdminError> {
    genesis.resolve_address(text).ok_or_else(|| {
        AdminError::bad_address(format!(
            "{} is not an address (64 hex characters) or a genesis account name",
            quote(text)
        ))
    })
}

/// Base units (`1500`) or AGL (`2.5agl`), exactly.
fn parse_amount_arg(text: &str) -> Result<Amount, AdminError> {
    parse_amount(text).map_err(|e| {
        let text = quote(text);
        AdminError::bad_amount(match e {
            AmountError::Malformed(_) => {
                format!("{text} is not an amount (base units like 1500, or AGL like 2.5agl)")
            }
            AmountError::Inexact(_) => {
                format!("{text} is not a whole number of base units (at most 18 decimals of agl)")
            }
            AmountError::Overflow(_) => format!("{text} is too large"),
        })
    })
}

/// A transaction hash: 64 hex characters (any case).
fn parse_hash(text: &str) -> Result<Hash, AdminError> {
    Hash::from_hex(text).map_err(|e| {
        AdminError::bad_request(format!(
            "{} is not a transaction hash (64 hex characters): {e}",
            quote(text)
        ))
    })
}

/// `latest` (exactly: arguments are case-sensitive) or a decimal height.
fn parse_block_ref(text: &str) -> Result<BlockRef, AdminError> {
    if text == "latest" {
        return Ok(BlockRef::Latest);
    }
    parse_decimal(text).map(BlockRef::Height).ok_or_else(|| {
        AdminError::bad_request(format!(
            "{} is not a block height (a number, or `latest`)",
            quote(text)
        ))
    })
}

/// Milliseconds to wait: a decimal number, clamped to [`MAX_WAIT_MS`] (even one too large
/// for 64 bits).
fn parse_wait_ms(text: &str) -> Result<u64, AdminError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AdminError::bad_request(format!(
            "{} is not a number of milliseconds",
            quote(text)
        )));
    }
    Ok(parse_decimal(text).map_or(MAX_WAIT_MS, |ms| ms.min(MAX_WAIT_MS)))
}

/// Plain decimal digits only (no sign, no spaces) as a u64; `None` if not, or too large.
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The hex of one transaction in the canonical encoding, as `almagill tx ...` prints it.
fn parse_transaction(text: &str) -> Result<Transaction, AdminError> {
    let bytes = hex::decode(text).map_err(|e| {
        AdminError::bad_request(format!(
            "SUBMIT takes the hex of one signed transaction: {e}"
        ))
    })?;
    encoding::decode::<Transaction>(&bytes).map_err(|e| {
        AdminError::bad_request(format!(
            "the hex is not a transaction in the canonical encoding: {e}"
        ))
    })
}

/// A client's text quoted for an error message, shortened to [`MAX_ECHO_CHARS`].
fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("`{}...`", &text[..cut]),
        None => format!("`{text}`"),
    }
}

/// The `OK` response line for one JSON value: `OK <json>\n`, the JSON compact and so on
/// one line (serde_json escapes every control character inside strings).
pub fn ok_line(value: Value) -> String {
    format!("OK {value}\n")
}

/// The `ERR` response line: `ERR <code> <message>\n`. The message is made single-line (any
/// control or line-separator character becomes a space, runs of whitespace collapse) and
/// shortened, so one error is always exactly one line whatever text it quotes.
pub fn err_line(error: &AdminError) -> String {
    let code_ok = !error.code.is_empty()
        && error
            .code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_');
    let code = if code_ok { error.code } else { "internal" };
    let cleaned: String = error
        .message
        .chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut message = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
        message.truncate(cut);
        message.push_str("...");
    }
    if message.is_empty() {
        message.push_str("error");
    }
    format!("ERR {code} {message}\n")
}

/// Where a transaction is, as `TX` and `WAIT` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// Admitted to the mempool, not yet in a block.
    Pending,
    /// Executed in the block at `height`.
    Committed {
        /// The block's height.
        height: u64,
    },
    /// In the block at `height`, but it no longer applied there and changed nothing.
    Failed {
        /// The block's height.
        height: u64,
        /// Why, as an error code (the ledger's `TxError::code()`).
        reason: &'static str,
    },
}

/// What `STATUS` reports, filled in by the server from the node's actors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusView {
    /// The node's name (from its config).
    pub node: String,
    /// The node's own address (its validator key).
    pub address: Address,
    /// The last committed block's height; genesis is 0.
    pub height: u64,
    /// The consensus view the node is in.
    pub view: u64,
    /// The leader of that view.
    pub leader: Address,
    /// The hash of the last committed block (the genesis hash at height 0).
    pub last_hash: Hash,
    /// Connected peers.
    pub peers: usize,
    /// Transactions in the mempool.
    pub mempool: usize,
    /// Validators in the current set.
    pub validators: usize,
    /// The chain's id, from genesis.
    pub chain_id: String,
}

/// One peer as `PEERS` reports it, filled in by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerView {
    /// The peer's validator address.
    pub address: Address,
    /// Where the node reaches it, written `ip:port`.
    pub endpoint: SocketAddr,
    /// Whether a connection to it is up now.
    pub connected: bool,
}

/// An amount as the protocol writes it: a JSON string of base units, since JSON numbers
/// cannot hold a u128 exactly in most clients.
fn amount_json(amount: Amount) -> Value {
    Value::String(amount.to_string())
}

/// `HELP`'s answer: every command name (`commands`), and each one's usage (`usage`).
pub fn help_json() -> Value {
    let names: Vec<&str> = COMMANDS.iter().map(|(name, _)| *name).collect();
    let usage: Vec<&str> = COMMANDS.iter().map(|(_, usage)| *usage).collect();
    json!({ "commands": names, "usage": usage })
}

/// `PING`'s answer.
pub fn pong_json() -> Value {
    json!({ "pong": true })
}

/// `AUTH`'s answer when the token is right (or the node needs none).
pub fn auth_json() -> Value {
    json!({ "auth": true })
}

/// `QUIT`'s answer, sent just before the connection closes.
pub fn bye_json() -> Value {
    json!({ "bye": true })
}

/// The answer to a transaction command (`SUBMIT`, `SEND`, `CREATE`, `STAKE`, `UNSTAKE`):
/// the hash of the transaction admitted to the mempool.
pub fn tx_admitted_json(hash: &Hash) -> Value {
    json!({ "tx": hash.to_string() })
}

/// `STATUS`'s answer.
pub fn status_json(status: &StatusView) -> Value {
    json!({
        "node": status.node,
        "address": status.address.to_string(),
        "height": status.height,
        "view": status.view,
        "leader": status.leader.to_string(),
        "last_hash": status.last_hash.to_string(),
        "peers": status.peers,
        "mempool": status.mempool,
        "validators": status.validators,
        "chain_id": status.chain_id,
    })
}

/// `BALANCE`'s answer for an account in committed state.
pub fn balance_json(address: &Address, account: &Account) -> Value {
    json!({
        "address": address.to_string(),
        "balance": amount_json(account.balance),
        "stake": amount_json(account.stake),
        "nonce": account.nonce,
    })
}

/// `TX`'s answer, and `WAIT`'s once the transaction is decided.
pub fn tx_json(hash: &Hash, status: &TxStatus) -> Value {
    let hash = hash.to_string();
    match *status {
        TxStatus::Pending => json!({ "tx": hash, "status": "pending" }),
        TxStatus::Committed { height } => {
            json!({ "tx": hash, "status": "committed", "height": height })
        }
        TxStatus::Failed { height, reason } => json!({
            "tx": hash,
            "status": "failed",
            "height": height,
            "reason": reason,
        }),
    }
}

/// `BLOCK`'s answer: `state_root` is the state after executing the block, `signers` the
/// number of validators in its commit certificate (both kept outside [`Block`]).
pub fn block_json(block: &Block, state_root: &Hash, signers: usize) -> Value {
    let proposal = &block.header.proposal;
    let txs: Vec<String> = block.txs.iter().map(|tx| tx.hash().to_string()).collect();
    json!({
        "height": proposal.height,
        "hash": block.header.hash().to_string(),
        "prev": block.header.prev.to_string(),
        "view": proposal.view,
        "proposer": proposal.proposer.to_string(),
        "timestamp": proposal.timestamp_ms,
        "tx_root": proposal.tx_root.to_string(),
        "state_root": state_root.to_string(),
        "txs": txs,
        "signers": signers,
    })
}

/// `VALIDATORS`' answer: the set for the next block, in address order.
pub fn validators_json(set: &ValidatorSet) -> Value {
    Value::Array(
        set.members()
            .iter()
            .map(|v| json!({ "address": v.address.to_string(), "stake": amount_json(v.stake) }))
            .collect(),
    )
}

/// `PEERS`' answer.
pub fn peers_json(peers: &[PeerView]) -> Value {
    Value::Array(
        peers
            .iter()
            .map(|p| {
                json!({
                    "address": p.address.to_string(),
                    "endpoint": p.endpoint.to_string(),
                    "connected": p.connected,
                })
            })
            .collect(),
    )
}

/// `SUPPLY`'s answer: the sum of every balance and stake in committed state, and the
/// genesis total, which must always be equal.
pub fn supply_json(total: Amount, genesis: Amount) -> Value {
    json!({ "total": amount_json(total), "genesis": amount_json(genesis) })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use almagill::amount::AGL;
    use almagill::block::{BlockHeader, Proposal};
    use almagill::crypto::Keypair;
    use almagill::genesis::{ConsensusParams, GenesisAccount};
    use almagill::tx::{TxBody, TxKind};
    use almagill::validators::Validator;
    use proptest::prelude::*;

    use super::*;

    const ALICE: Address = Address([0xa1; 32]);
    const BOB: Address = Address([0xb0; 32]);
    const NODE0: Address = Address([0x10; 32]);
    const HASH: Hash = Hash([0xab; 32]);

    fn genesis() -> Genesis {
        let account = |name: &str, address, stake| GenesisAccount {
            name: name.to_string(),
            address,
            balance: 1_000 * AGL,
            stake,
        };
        Genesis {
            chain_id: "almagill-test".into(),
            genesis_time_ms: 1_700_000_000_000,
            min_stake: 100 * AGL,
            epoch_length: 10,
            consensus: ConsensusParams::default(),
            accounts: vec![
                account("alice", ALICE, 0),
                account("bob", BOB, 0),
                account("node0", NODE0, 100 * AGL),
            ],
        }
    }

    fn parse(line: &str) -> Option<Result<Command, AdminError>> {
        parse_line(line.as_bytes(), &genesis())
    }

    fn ok(line: &str) -> Command {
        match parse(line) {
            Some(Ok(command)) => command,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    fn err(line: &str) -> AdminError {
        match parse(line) {
            Some(Err(e)) => e,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    fn hex64(address: Address) -> String {
        address.to_string()
    }

    fn signed_tx() -> Transaction {
        TxBody {
            from: Keypair::from_seed([7; 32]).address(),
            nonce: 3,
            kind: TxKind::Transfer {
                to: BOB,
                amount: 5 * AGL,
            },
        }
        .sign(&Keypair::from_seed([7; 32]), "almagill-test")
    }

    #[test]
    fn argumentless_commands_parse() {
        for (line, command) in [
            ("HELP", Command::Help),
            ("PING", Command::Ping),
            ("STATUS", Command::Status),
            ("VALIDATORS", Command::Validators),
            ("PEERS", Command::Peers),
            ("SUPPLY", Command::Supply),
            ("QUIT", Command::Quit),
        ] {
            assert_eq!(ok(line), command, "{line}");
        }
    }

    #[test]
    fn auth_takes_one_case_sensitive_token() {
        assert_eq!(
            ok("auth S3cret-Token"),
            Command::Auth {
                token: "S3cret-Token".into()
            }
        );
        for line in ["AUTH", "AUTH a b"] {
            let e = err(line);
            assert_eq!(e.code, "bad_request", "{line}");
            assert!(e.message.contains("AUTH <token>"), "{line}: {}", e.message);
        }
    }

    #[test]
    fn command_names_are_case_insensitive() {
        assert_eq!(ok("ping"), Command::Ping);
        assert_eq!(ok("PiNg"), Command::Ping);
        assert_eq!(ok("status"), Command::Status);
        assert_eq!(ok("balance alice"), Command::Balance { address: ALICE });
        assert_eq!(
            ok(&format!("wAiT {HASH}")),
            Command::Wait {
                hash: HASH,
                timeout_ms: DEFAULT_WAIT_MS
            }
        );
    }

    #[test]
    fn arguments_are_case_sensitive() {
        // Account names are not folded: `ALICE` is not `alice`.
        assert_eq!(err("BALANCE ALICE").code, "bad_address");
        assert_eq!(err("BLOCK LATEST").code, "bad_request");
    }

    #[test]
    fn every_listed_command_parses() {
        let hash = HASH.to_string();
        let tx = hex::encode(encoding::encode(&signed_tx()));
        for (name, _) in COMMANDS {
            let args = match *name {
                "BALANCE" => "alice".to_string(),
                "SUBMIT" => tx.clone(),
                "SEND" | "CREATE" => "alice bob 1".to_string(),
                "STAKE" | "UNSTAKE" => "alice 1".to_string(),
                "TX" | "WAIT" => hash.clone(),
                "BLOCK" => "latest".to_string(),
                "AUTH" => "token".to_string(),
                _ => String::new(),
            };
            let line = format!("{name} {args}");
            assert!(matches!(parse(&line), Some(Ok(_))), "{line}");
        }
    }

    #[test]
    fn balance_takes_names_and_hex() {
        assert_eq!(ok("BALANCE alice"), Command::Balance { address: ALICE });
        assert_eq!(
            ok(&format!("BALANCE {}", hex64(BOB))),
            Command::Balance { address: BOB }
        );
        // Any case of hex is accepted; it is printed back in lowercase.
        let upper = hex64(BOB).to_uppercase();
        assert_eq!(
            ok(&format!("BALANCE {upper}")),
            Command::Balance { address: BOB }
        );
        // An address that is in no genesis is still an address (it may be created later).
        let stranger = Address([0x5e; 32]);
        assert_eq!(
            ok(&format!("BALANCE {stranger}")),
            Command::Balance { address: stranger }
        );
    }

    #[test]
    fn transaction_commands_parse() {
        assert_eq!(
            ok("SEND alice bob 2.5agl"),
            Command::Send {
                from: ALICE,
                to: BOB,
                amount: 5 * AGL / 2
            }
        );
        assert_eq!(
            ok(&format!("SEND {} {} 1500", hex64(ALICE), hex64(BOB))),
            Command::Send {
                from: ALICE,
                to: BOB,
                amount: 1500
            }
        );
        let new = Address([0x42; 32]);
        assert_eq!(
            ok(&format!("CREATE alice {new} 10AGL")),
            Command::Create {
                from: ALICE,
                new_account: new,
                amount: 10 * AGL
            }
        );
        assert_eq!(
            ok("STAKE node0 100agl"),
            Command::Stake {
                from: NODE0,
                amount: 100 * AGL
            }
        );
        assert_eq!(
            ok("UNSTAKE node0 0.000000000000000001agl"),
            Command::Unstake {
                from: NODE0,
                amount: 1
            }
        );
    }

    #[test]
    fn submit_decodes_a_transaction() {
        let tx = signed_tx();
        let hex = hex::encode(encoding::encode(&tx));
        assert_eq!(
            ok(&format!("SUBMIT {hex}")),
            Command::Submit { tx: tx.clone() }
        );
        assert_eq!(
            ok(&format!("submit {}", hex.to_uppercase())),
            Command::Submit { tx }
        );
    }

    #[test]
    fn submit_refuses_what_is_not_a_transaction() {
        assert_eq!(err("SUBMIT xyz").code, "bad_request");
        assert_eq!(err("SUBMIT abc").code, "bad_request"); // odd length
        assert_eq!(err("SUBMIT 00").code, "bad_request"); // too short
        let mut bytes = encoding::encode(&signed_tx());
        bytes.push(0);
        let e = err(&format!("SUBMIT {}", hex::encode(&bytes)));
        assert_eq!(e.code, "bad_request");
        assert!(e.message.contains("trailing"), "{}", e.message);
    }

    #[test]
    fn tx_wait_and_block_parse() {
        assert_eq!(ok(&format!("TX {HASH}")), Command::Tx { hash: HASH });
        assert_eq!(
            ok(&format!("TX {}", HASH.to_string().to_uppercase())),
            Command::Tx { hash: HASH }
        );
        assert_eq!(
            ok(&format!("WAIT {HASH}")),
            Command::Wait {
                hash: HASH,
                timeout_ms: DEFAULT_WAIT_MS
            }
        );
        assert_eq!(
            ok(&format!("WAIT {HASH} 250")),
            Command::Wait {
                hash: HASH,
                timeout_ms: 250
            }
        );
        assert_eq!(
            ok(&format!("WAIT {HASH} 0")),
            Command::Wait {
                hash: HASH,
                timeout_ms: 0
            }
        );
        // Over the cap, even over u64: clamped, not refused.
        for big in ["600001", "18446744073709551615", "99999999999999999999999"] {
            assert_eq!(
                ok(&format!("WAIT {HASH} {big}")),
                Command::Wait {
                    hash: HASH,
                    timeout_ms: MAX_WAIT_MS
                }
            );
        }
        for bad in ["-1", "+5", "1.5", "10s", "ten"] {
            assert_eq!(
                err(&format!("WAIT {HASH} {bad}")).code,
                "bad_request",
                "{bad}"
            );
        }
        assert_eq!(
            ok("BLOCK latest"),
            Command::Block {
                at: BlockRef::Latest
            }
        );
        assert_eq!(
            ok("block 0"),
            Command::Block {
                at: BlockRef::Height(0)
            }
        );
        assert_eq!(
            ok("BLOCK 42"),
            Command::Block {
                at: BlockRef::Height(42)
            }
        );
        assert_eq!(
            ok("BLOCK 18446744073709551615"),
            Command::Block {
                at: BlockRef::Height(u64::MAX)
            }
        );
        for bad in ["-1", "+1", "18446744073709551616", "x", "1e3"] {
            assert_eq!(err(&format!("BLOCK {bad}")).code, "bad_request", "{bad}");
        }
    }

    #[test]
    fn crlf_and_extra_whitespace_are_accepted() {
        assert_eq!(ok("PING\r"), Command::Ping);
        assert_eq!(
            ok("  SEND   alice \t bob    2.5agl  \r"),
            Command::Send {
                from: ALICE,
                to: BOB,
                amount: 5 * AGL / 2
            }
        );
        assert_eq!(ok("BALANCE alice\r"), Command::Balance { address: ALICE });
    }

    #[test]
    fn empty_lines_get_no_response() {
        for line in ["", "\r", "   ", " \t \r", "\t\t"] {
            assert_eq!(parse(line), None, "{line:?}");
        }
    }

    #[test]
    fn unicode_and_other_whitespace_lines_get_one_answer() {
        for line in [
            "\u{a0}", "\u{2028}", "\u{2029}", "\u{3000}", "\u{feff}", "\u{85}", "\x0b", "\x0c",
            " \x0c\t", "\r\r", " \u{a0} ",
        ] {
            let e = err(line);
            assert_eq!(e.code, "unknown_command", "{line:?}");
            assert_eq!(err_line(&e).matches('\n').count(), 1, "{line:?}");
        }
        // Unicode whitespace is not a word separator either: it is part of a word.
        assert_eq!(err("PING\u{a0}").code, "unknown_command");
    }

    #[test]
    fn wrong_arity_is_bad_request_with_usage() {
        for (line, usage) in [
            ("PING now", "PING"),
            ("BALANCE", "BALANCE <addr>"),
            ("BALANCE alice bob", "BALANCE <addr>"),
            ("SEND alice bob", "SEND <from> <to> <amount>"),
            ("SEND alice bob 1 2", "SEND <from> <to> <amount>"),
            ("CREATE alice", "CREATE <from> <new_addr> <amount>"),
            ("STAKE alice", "STAKE <from> <amount>"),
            ("UNSTAKE", "UNSTAKE <from> <amount>"),
            ("TX", "TX <hash>"),
            ("WAIT", "WAIT <hash> [ms]"),
            ("WAIT a b c", "WAIT <hash> [ms]"),
            ("BLOCK", "BLOCK <height|latest>"),
            ("SUBMIT", "SUBMIT <hex>"),
            ("quit now", "QUIT"),
        ] {
            let e = err(line);
            assert_eq!(e.code, "bad_request", "{line}");
            assert!(e.message.contains(usage), "{line}: {}", e.message);
        }
    }

    #[test]
    fn unknown_commands() {
        for line in ["FOO", "PINGS", "pong", "BALANCEalice", "\u{1f600}", "ÿ"] {
            let e = err(line);
            assert_eq!(e.code, "unknown_command", "{line}");
        }
    }

    #[test]
    fn bad_addresses() {
        for arg in [
            "carol",
            "Alice",
            "",
            &hex64(ALICE)[..63],
            &format!("{}0", hex64(ALICE)),
            &format!("g{}", &hex64(ALICE)[1..]),
        ] {
            if arg.is_empty() {
                continue;
            }
            assert_eq!(err(&format!("BALANCE {arg}")).code, "bad_address", "{arg}");
            assert_eq!(
                err(&format!("SEND alice {arg} 1")).code,
                "bad_address",
                "{arg}"
            );
        }
    }

    #[test]
    fn bad_amounts() {
        for arg in [
            "x",
            "1.5",
            "-1",
            "agl",
            "1.0000000000000000001agl",
            "340282366920938463463374607431768211456",
            "1e18",
        ] {
            assert_eq!(
                err(&format!("SEND alice bob {arg}")).code,
                "bad_amount",
                "{arg}"
            );
            assert_eq!(err(&format!("STAKE alice {arg}")).code, "bad_amount");
        }
    }

    #[test]
    fn bad_hashes() {
        for arg in ["abc", "zz", &format!("{HASH}00"), &HASH.to_string()[1..]] {
            assert_eq!(err(&format!("TX {arg}")).code, "bad_request", "{arg}");
            assert_eq!(err(&format!("WAIT {arg} 5")).code, "bad_request", "{arg}");
        }
    }

    #[test]
    fn non_utf8_is_bad_request() {
        for bytes in [&b"\xff"[..], b"PING \xc3", b"BALANCE \xfe\xfe\r", b"\x80"] {
            let e = parse_line(bytes, &genesis()).unwrap().unwrap_err();
            assert_eq!(e.code, "bad_request");
        }
    }

    #[test]
    fn overlong_lines_are_too_long() {
        let line = vec![b' '; MAX_LINE + 1];
        let e = parse_line(&line, &genesis()).unwrap().unwrap_err();
        assert_eq!(e.code, "too_long");
        assert_eq!(too_long().code, "too_long");
        // Exactly MAX_LINE is still a line.
        let mut line = b"PING".to_vec();
        line.resize(MAX_LINE, b' ');
        assert_eq!(parse_line(&line, &genesis()), Some(Ok(Command::Ping)));
    }

    #[test]
    fn errors_echo_only_a_short_quote() {
        let long = "x".repeat(10_000);
        let e = err(&format!("BALANCE {long}"));
        assert!(e.message.len() < 200, "{}", e.message.len());
        let e = err(&long);
        assert!(e.message.len() < 200, "{}", e.message.len());
    }

    #[test]
    fn error_codes_match_the_spec() {
        let spec = [
            "bad_request",
            "unknown_command",
            "bad_address",
            "bad_amount",
            "unknown_account",
            "account_exists",
            "no_key",
            "invalid_signature",
            "bad_nonce",
            "insufficient_funds",
            "below_min_stake",
            "duplicate",
            "mempool_full",
            "not_found",
            "timeout",
            "too_long",
            "unauthorized",
            "internal",
        ];
        assert_eq!(ERROR_CODES, spec);
        for code in spec {
            assert_eq!(AdminError::new(code, "m").code, code);
        }
        assert_eq!(AdminError::new("made_up", "m").code, "internal");
        let made = [
            AdminError::bad_request("m"),
            AdminError::unknown_command("m"),
            AdminError::bad_address("m"),
            AdminError::bad_amount("m"),
            AdminError::unknown_account("m"),
            AdminError::no_key("m"),
            AdminError::not_found("m"),
            AdminError::timeout("m"),
            AdminError::too_long("m"),
            AdminError::unauthorized("m"),
            AdminError::internal("m"),
        ];
        assert!(made.iter().all(|e| spec.contains(&e.code)));
    }

    #[test]
    fn ok_lines_are_one_line() {
        let line = ok_line(json!({ "s": "a\nb\r\nc\u{0}", "n": 1 }));
        assert!(line.starts_with("OK {"));
        assert!(line.ends_with('\n') && !line.ends_with("\n\n"));
        assert_eq!(line.matches('\n').count(), 1);
        assert!(!line.contains('\r'));
        let back: Value = serde_json::from_str(&line[3..]).unwrap();
        assert_eq!(back["s"], "a\nb\r\nc\u{0}");
        assert_eq!(ok_line(pong_json()), "OK {\"pong\":true}\n");
    }

    #[test]
    fn err_lines_are_one_line() {
        let e = AdminError::not_found("no\ntransaction\r\nhere\u{2028}at\u{b}all  ");
        assert_eq!(err_line(&e), "ERR not_found no transaction here at all\n");
        assert_eq!(err_line(&AdminError::timeout("")), "ERR timeout error\n");
        let long = AdminError::internal("y".repeat(5_000));
        let line = err_line(&long);
        assert!(line.len() < 1_100 && line.ends_with("...\n"));
        // A code that is not a code word cannot break the line either.
        let weird = AdminError::new("bad code\n", "m");
        assert_eq!(err_line(&weird), "ERR internal m\n");
    }

    /// Parses a builder's output back and checks it has exactly these keys.
    fn keys(value: &Value) -> BTreeSet<String> {
        value
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect()
    }

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    /// The JSON as a client sees it: through an `OK` line.
    fn round_trip(value: Value) -> Value {
        let line = ok_line(value);
        serde_json::from_str(line.strip_prefix("OK ").unwrap().trim_end()).unwrap()
    }

    fn is_hex64(value: &Value) -> bool {
        value.as_str().is_some_and(|s| {
            s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
    }

    fn is_amount(value: &Value, expected: Amount) -> bool {
        value.as_str() == Some(expected.to_string().as_str())
    }

    #[test]
    fn simple_answers() {
        let help = round_trip(help_json());
        assert_eq!(keys(&help), set(&["commands", "usage"]));
        let names: Vec<&str> = help["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "HELP",
                "PING",
                "STATUS",
                "BALANCE",
                "SUBMIT",
                "SEND",
                "CREATE",
                "STAKE",
                "UNSTAKE",
                "TX",
                "WAIT",
                "BLOCK",
                "VALIDATORS",
                "PEERS",
                "SUPPLY",
                "QUIT",
                "AUTH"
            ]
        );
        assert_eq!(help["usage"].as_array().unwrap().len(), names.len());
        assert_eq!(round_trip(pong_json()), json!({ "pong": true }));
        assert_eq!(round_trip(bye_json()), json!({ "bye": true }));
        let tx = round_trip(tx_admitted_json(&HASH));
        assert_eq!(keys(&tx), set(&["tx"]));
        assert!(is_hex64(&tx["tx"]));
        assert_eq!(tx["tx"], HASH.to_string());
    }

    #[test]
    fn status_fields() {
        let status = StatusView {
            node: "node0".into(),
            address: NODE0,
            height: 42,
            view: 43,
            leader: BOB,
            last_hash: HASH,
            peers: 3,
            mempool: 0,
            validators: 4,
            chain_id: "almagill-local".into(),
        };
        let v = round_trip(status_json(&status));
        assert_eq!(
            keys(&v),
            set(&[
                "node",
                "address",
                "height",
                "view",
                "leader",
                "last_hash",
                "peers",
                "mempool",
                "validators",
                "chain_id"
            ])
        );
        assert_eq!(v["node"], "node0");
        assert!(is_hex64(&v["address"]) && is_hex64(&v["leader"]) && is_hex64(&v["last_hash"]));
        assert_eq!(v["address"], NODE0.to_string());
        assert_eq!(v["height"].as_u64(), Some(42));
        assert_eq!(v["view"].as_u64(), Some(43));
        assert_eq!(v["peers"].as_u64(), Some(3));
        assert_eq!(v["mempool"].as_u64(), Some(0));
        assert_eq!(v["validators"].as_u64(), Some(4));
        assert_eq!(v["chain_id"], "almagill-local");
    }

    #[test]
    fn balance_fields() {
        let account = Account {
            balance: u128::MAX,
            stake: 100 * AGL,
            nonce: 7,
        };
        let v = round_trip(balance_json(&ALICE, &account));
        assert_eq!(keys(&v), set(&["address", "balance", "stake", "nonce"]));
        assert_eq!(v["address"], ALICE.to_string());
        assert!(is_amount(&v["balance"], u128::MAX));
        assert!(is_amount(&v["stake"], 100 * AGL));
        assert_eq!(v["nonce"].as_u64(), Some(7));
    }

    #[test]
    fn tx_status_fields() {
        let v = round_trip(tx_json(&HASH, &TxStatus::Pending));
        assert_eq!(keys(&v), set(&["tx", "status"]));
        assert_eq!(v["tx"], HASH.to_string());
        assert_eq!(v["status"], "pending");

        let v = round_trip(tx_json(&HASH, &TxStatus::Committed { height: 43 }));
        assert_eq!(keys(&v), set(&["tx", "status", "height"]));
        assert_eq!(v["status"], "committed");
        assert_eq!(v["height"].as_u64(), Some(43));

        let failed = TxStatus::Failed {
            height: 44,
            reason: "bad_nonce",
        };
        let v = round_trip(tx_json(&HASH, &failed));
        assert_eq!(keys(&v), set(&["tx", "status", "height", "reason"]));
        assert_eq!(v["status"], "failed");
        assert_eq!(v["height"].as_u64(), Some(44));
        assert_eq!(v["reason"], "bad_nonce");
        assert!(ERROR_CODES.contains(&v["reason"].as_str().unwrap()));
    }

    #[test]
    fn block_fields() {
        let txs = vec![signed_tx()];
        let proposal = Proposal::new(5, 6, 1_700_000_001_000, NODE0, txs.clone());
        let block = Block {
            header: BlockHeader {
                prev: Hash([0x11; 32]),
                proposal: proposal.header,
            },
            txs,
        };
        let state_root = Hash([0x22; 32]);
        let v = round_trip(block_json(&block, &state_root, 3));
        assert_eq!(
            keys(&v),
            set(&[
                "height",
                "hash",
                "prev",
                "view",
                "proposer",
                "timestamp",
                "tx_root",
                "state_root",
                "txs",
                "signers"
            ])
        );
        assert_eq!(v["height"].as_u64(), Some(5));
        assert_eq!(v["view"].as_u64(), Some(6));
        assert_eq!(v["timestamp"].as_u64(), Some(1_700_000_001_000));
        assert_eq!(v["signers"].as_u64(), Some(3));
        assert_eq!(v["hash"], block.header.hash().to_string());
        assert_eq!(v["prev"], Hash([0x11; 32]).to_string());
        assert_eq!(v["proposer"], NODE0.to_string());
        assert_eq!(v["tx_root"], block.header.proposal.tx_root.to_string());
        assert_eq!(v["state_root"], state_root.to_string());
        for field in ["hash", "prev", "proposer", "tx_root", "state_root"] {
            assert!(is_hex64(&v[field]), "{field}");
        }
        let hashes = v["txs"].as_array().unwrap();
        assert_eq!(hashes.len(), 1);
        assert_eq!(hashes[0], block.txs[0].hash().to_string());
    }

    #[test]
    fn validators_fields() {
        let set_ = ValidatorSet::new(vec![
            Validator {
                address: BOB,
                stake: 200 * AGL,
            },
            Validator {
                address: NODE0,
                stake: 100 * AGL,
            },
        ])
        .unwrap();
        let v = round_trip(validators_json(&set_));
        let members = v.as_array().unwrap();
        assert_eq!(members.len(), 2);
        for (member, validator) in members.iter().zip(set_.members()) {
            assert_eq!(keys(member), set(&["address", "stake"]));
            assert_eq!(member["address"], validator.address.to_string());
            assert!(is_amount(&member["stake"], validator.stake));
        }
    }

    #[test]
    fn peers_fields() {
        let peers = [
            PeerView {
                address: BOB,
                endpoint: "127.0.0.1:7001".parse().unwrap(),
                connected: true,
            },
            PeerView {
                address: NODE0,
                endpoint: "10.0.0.2:7002".parse().unwrap(),
                connected: false,
            },
        ];
        let v = round_trip(peers_json(&peers));
        let list = v.as_array().unwrap();
        assert_eq!(list.len(), 2);
        for item in list {
            assert_eq!(keys(item), set(&["address", "endpoint", "connected"]));
            assert!(is_hex64(&item["address"]));
        }
        assert_eq!(list[0]["endpoint"], "127.0.0.1:7001");
        assert_eq!(list[0]["connected"], true);
        assert_eq!(list[1]["endpoint"], "10.0.0.2:7002");
        assert_eq!(list[1]["connected"], false);
        assert_eq!(round_trip(peers_json(&[])), json!([]));
    }

    #[test]
    fn supply_fields() {
        let g = genesis();
        let v = round_trip(supply_json(g.supply(), g.supply()));
        assert_eq!(keys(&v), set(&["total", "genesis"]));
        assert!(is_amount(&v["total"], 3_100 * AGL));
        assert!(is_amount(&v["genesis"], 3_100 * AGL));
    }

    /// Words that make random lines reach deep into the parser.
    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(
                COMMANDS
                    .iter()
                    .map(|(n, _)| n.to_string())
                    .collect::<Vec<_>>()
            ),
            Just("alice".to_string()),
            Just("latest".to_string()),
            Just(HASH.to_string()),
            Just(hex::encode(encoding::encode(&signed_tx()))),
            "[0-9]{0,25}(agl|AGL)?",
            "[0-9a-fA-F]{0,70}",
            "\\PC{0,20}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn parse_line_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let answer = parse_line(&bytes, &genesis());
            if let Some(Err(e)) = answer {
                prop_assert!(ERROR_CODES.contains(&e.code));
                prop_assert_eq!(err_line(&e).matches('\n').count(), 1);
            }
        }

        #[test]
        fn structured_lines_never_panic(
            words in prop::collection::vec(word(), 0..6),
            separator in "[ \t]{1,3}",
            crlf in any::<bool>(),
        ) {
            let mut line = words.join(&separator);
            if crlf {
                line.push('\r');
            }
            match parse_line(line.as_bytes(), &genesis()) {
                None => prop_assert!(is_blank(line.strip_suffix('\r').unwrap_or(&line))),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    prop_assert!(ERROR_CODES.contains(&e.code));
                    let out = err_line(&e);
                    prop_assert!(out.ends_with('\n'));
                    prop_assert_eq!(out.matches('\n').count(), 1);
                    prop_assert!(!out.contains('\r'));
                }
            }
        }

        /// Exactly the blank lines go unanswered, whatever whitespace (ASCII, Unicode or
        /// control) the others are made of.
        #[test]
        fn only_blank_lines_go_unanswered(
            chars in prop::collection::vec(
                prop_oneof![
                    Just(' '), Just('\t'), Just('\r'), Just('\x0b'), Just('\x0c'),
                    Just('\u{85}'), Just('\u{a0}'), Just('\u{1680}'), Just('\u{2000}'),
                    Just('\u{200b}'), Just('\u{2028}'), Just('\u{2029}'), Just('\u{202f}'),
                    Just('\u{3000}'), Just('\u{feff}'), any::<char>(),
                ],
                0..12,
            ),
        ) {
            let line: String = chars.into_iter().collect();
            let body = line.strip_suffix('\r').unwrap_or(&line);
            let blank = body.chars().all(|c| c == ' ' || c == '\t');
            match parse_line(line.as_bytes(), &genesis()) {
                None => prop_assert!(blank, "{:?} went unanswered", line),
                Some(answer) => {
                    prop_assert!(!blank, "{:?} was answered", line);
                    if let Err(e) = answer {
                        prop_assert_eq!(err_line(&e).matches('\n').count(), 1);
                    }
                }
            }
        }

        #[test]
        fn err_line_is_always_one_line(message in any::<String>()) {
            let out = err_line(&AdminError::bad_request(message));
            prop_assert!(out.starts_with("ERR bad_request "));
            prop_assert!(out.ends_with('\n'));
            prop_assert_eq!(out.matches('\n').count(), 1);
            prop_assert!(!out.contains('\r'));
        }

        #[test]
        fn ok_line_is_always_one_line(text in any::<String>()) {
            let out = ok_line(json!({ "s": text.clone() }));
            prop_assert!(out.ends_with('\n'));
            prop_assert_eq!(out.matches('\n').count(), 1);
            prop_assert!(!out.contains('\r'));
            let back: Value = serde_json::from_str(&out[3..]).unwrap();
            prop_assert_eq!(back["s"].as_str(), Some(text.as_str()));
        }
    }
}
