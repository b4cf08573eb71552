//! Typed answers in, response lines out: `OK <json>` and `ERR <code> <message>`, and the
//! JSON of every command's answer.

use almagill::amount::Amount;
use almagill::block::Block;
use almagill::crypto::{Address, Hash};
use almagill::ledger::Account;
use almagill::validators::ValidatorSet;
use serde_json::{json, Value};

use super::commands::COMMANDS;
use super::errors::AdminError;
use crate::node::messages::{PeerState, TxOutcome};

/// The most characters of an error message on an `ERR` line.
const MAX_MESSAGE_CHARS: usize = 1024;

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

/// Where a transaction is, as `TX` and `WAIT` report it: waiting in the mempool, or the
/// outcome the StateActor recorded for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// Admitted to the mempool, not yet in a block.
    Pending,
    /// In a block: applied, or failed there and changed nothing.
    Done(TxOutcome),
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
        TxStatus::Done(TxOutcome::Committed(height)) => {
            json!({ "tx": hash, "status": "committed", "height": height })
        }
        TxStatus::Done(TxOutcome::Failed(height, reason)) => json!({
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
pub fn peers_json(peers: &[PeerState]) -> Value {
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
    use almagill::validators::Validator;
    use proptest::prelude::*;

    use super::super::fixtures::*;
    use super::super::ERROR_CODES;
    use super::*;

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

        let v = round_trip(tx_json(&HASH, &TxStatus::Done(TxOutcome::Committed(43))));
        assert_eq!(keys(&v), set(&["tx", "status", "height"]));
        assert_eq!(v["status"], "committed");
        assert_eq!(v["height"].as_u64(), Some(43));

        let failed = TxStatus::Done(TxOutcome::Failed(44, "bad_nonce"));
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
            PeerState {
                address: BOB,
                endpoint: "127.0.0.1:7001".parse().unwrap(),
                connected: true,
            },
            PeerState {
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

    proptest! {
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
