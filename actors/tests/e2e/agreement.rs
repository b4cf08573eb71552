//! Four validators agree on one chain, and the admin port answers every command per the spec.

use std::collections::BTreeSet;
use std::time::Instant;

use almagill::amount::{parse_amount, Amount};
use serde_json::json;

use crate::harness::{
    amount_field, is_hex64, parse_reply, str_field, u64_field, Net, Reply, DEADLINE,
};

const ALL: [usize; 4] = [0, 1, 2, 3];

/// Asks node `i` `TX <hash>` over and over, without pause, from just after it admitted the
/// transaction until it shows it committed; returns the height. Every answer must be
/// `pending` or `committed`: a transaction the node admitted is never unknown to it.
fn tx_until_committed(net: &Net, i: usize, hash: &str) -> u64 {
    let mut admin = net.admin(i);
    let line = format!("TX {hash}");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let reply = admin
            .request(&line)
            .unwrap_or_else(|e| net.fail(&format!("node{i}: `{line}`: {e}")));
        match parse_reply(&reply) {
            Ok(Reply::Ok(tx)) if tx["status"] == "committed" => return u64_field(&tx, "height"),
            Ok(Reply::Ok(tx)) if tx["status"] == "pending" => {}
            _ => {
                let after = admin.request(&line).unwrap_or_default();
                net.fail(&format!(
                    "node{i}: `{line}` -> `{reply}` for a transaction it admitted, expected \
                     pending or committed (asked again at once: `{after}`). TX and WAIT read \
                     the ledger, then the mempool: a transaction executed in between is \
                     reported as unknown"
                ))
            }
        }
        if Instant::now() >= deadline {
            net.fail(&format!("node{i}: {hash} still pending after {DEADLINE:?}"));
        }
    }
}

/// Four validators: transfers sent through different nodes all commit on every node at the
/// same height; `BALANCE`, `TX`, `WAIT`, `BLOCK` (by number and `latest`), `SUPPLY`,
/// `STATUS`, `VALIDATORS`, `PEERS`, `HELP`, `PING` and `QUIT` answer per the spec; every node
/// holds the same block at every height, each linked to its parent and certified by
/// validators holding more than two thirds of the stake.
#[test]
fn four_validators_agree() {
    let net = Net::launch(4);
    net.wait_height(&ALL, 1);
    net.wait_until(
        DEADLINE,
        "every node to be connected to its 3 peers",
        || {
            ALL.iter()
                .all(|&i| net.try_ok(i, "STATUS").is_some_and(|s| s["peers"] == 3))
        },
    );

    // STATUS: every field of the spec, with the right values.
    for i in ALL {
        let s = net.status(i);
        for field in [
            "node",
            "address",
            "height",
            "view",
            "leader",
            "last_hash",
            "peers",
            "mempool",
            "validators",
            "chain_id",
        ] {
            assert!(
                s.get(field).is_some(),
                "node{i}: STATUS lacks `{field}`: {s}"
            );
        }
        assert_eq!(s["node"], format!("node{i}"), "{s}");
        assert_eq!(s["address"], net.address(i), "{s}");
        let height = u64_field(&s, "height");
        assert!(
            u64_field(&s, "view") > height,
            "the next view is above the height: {s}"
        );
        assert!(
            net.node_index(str_field(&s, "leader")).is_some(),
            "the leader is a validator: {s}"
        );
        assert!(is_hex64(str_field(&s, "last_hash")), "{s}");
        assert_eq!(s["peers"], 3, "{s}");
        u64_field(&s, "mempool");
        assert_eq!(s["validators"], 4, "{s}");
        assert_eq!(s["chain_id"], net.genesis.chain_id.as_str(), "{s}");
        // `last_hash` is the hash of the block at `height`.
        net.wait_executed(&[i], height);
        assert_eq!(net.block(i, height)["hash"], s["last_hash"], "node{i}: {s}");
    }
    let h0 = net.height(0);
    net.wait_height(&ALL, h0 + 3);

    // Transfers through different nodes: each commits everywhere at one height.
    let agl = |text: &str| -> Amount { parse_amount(text).expect("an amount") };
    let transfers = [
        (0, "alice", "bob", "1"),
        (1, "bob", "alice", "2agl"),
        (2, "alice", "bob", "3"),
        (3, "bob", "alice", "1.5agl"),
    ];
    let mut alice = net.genesis_balance("alice");
    let mut bob = net.genesis_balance("bob");
    let mut hashes = Vec::new();
    for (i, from, to, amount) in transfers {
        let answer = net.ok(i, &format!("SEND {from} {to} {amount}"));
        let hash = str_field(&answer, "tx").to_string();
        assert!(is_hex64(&hash), "SEND answers a hash: {answer}");
        let height = net.wait_committed(i, &hash);
        assert_eq!(net.committed_everywhere(&ALL, &hash), height);
        assert_eq!(
            net.ok(i, &format!("TX {hash}")),
            json!({ "tx": hash, "status": "committed", "height": height })
        );
        for j in ALL {
            let block = net.block(j, height);
            assert!(
                block["txs"]
                    .as_array()
                    .is_some_and(|t| t.contains(&json!(hash))),
                "node{j}: block {height} lists {hash}: {block}"
            );
        }
        let amount = agl(amount);
        if from == "alice" {
            alice -= amount;
            bob += amount;
        } else {
            bob -= amount;
            alice += amount;
        }
        hashes.push(hash);
    }

    // BALANCE, by name and by address, on every node.
    for j in ALL {
        for (name, balance) in [("alice", alice), ("bob", bob)] {
            for key in [name.to_string(), net.address_of(name)] {
                let b = net.ok(j, &format!("BALANCE {key}"));
                assert_eq!(b["address"], net.address_of(name), "{b}");
                assert_eq!(amount_field(&b, "balance"), balance, "node{j}: {name}: {b}");
                assert_eq!(amount_field(&b, "stake"), 0, "{b}");
                assert_eq!(b["nonce"], 2, "node{j}: {name} sent two transfers: {b}");
            }
        }
        let b = net.ok(j, "BALANCE node0");
        assert_eq!(
            amount_field(&b, "stake"),
            net.genesis.account_named("node0").expect("node0").stake,
            "{b}"
        );
    }

    // BLOCK latest and BLOCK <n> agree; unknown things are not_found.
    let latest = net.ok(0, "BLOCK latest");
    let n = u64_field(&latest, "height");
    let by_number = net.block(0, n);
    assert_eq!(latest, by_number);
    for field in ["hash", "prev", "proposer", "tx_root", "state_root"] {
        assert!(is_hex64(str_field(&latest, field)), "`{field}`: {latest}");
    }
    assert!(
        net.node_index(str_field(&latest, "proposer")).is_some(),
        "{latest}"
    );
    u64_field(&latest, "view");
    u64_field(&latest, "timestamp");
    assert_eq!(net.err(0, "BLOCK 999999999"), "not_found");
    assert_eq!(net.err(0, &format!("TX {}", "ab".repeat(32))), "not_found");

    // SUPPLY: the total is the genesis total.
    for j in ALL {
        let s = net.ok(j, "SUPPLY");
        assert_eq!(amount_field(&s, "genesis"), net.genesis.supply(), "{s}");
        assert_eq!(amount_field(&s, "total"), net.genesis.supply(), "{s}");
    }

    // VALIDATORS: the four nodes with their stakes.
    let validators: BTreeSet<String> = ALL.iter().map(|&i| net.address(i)).collect();
    for j in ALL {
        let v = net.ok(j, "VALIDATORS");
        let list = v
            .as_array()
            .unwrap_or_else(|| panic!("VALIDATORS is a list: {v}"));
        assert_eq!(list.len(), 4, "{v}");
        let listed: BTreeSet<String> = list
            .iter()
            .map(|e| str_field(e, "address").to_string())
            .collect();
        assert_eq!(listed, validators, "{v}");
        for e in list {
            let name = net
                .genesis
                .name_of(&almagill::crypto::Address::from_hex(str_field(e, "address")).unwrap())
                .expect("a genesis account")
                .to_string();
            assert_eq!(
                amount_field(e, "stake"),
                net.genesis.account_named(&name).expect("named").stake,
                "{e}"
            );
        }
    }

    // PEERS: the three others, with their endpoints, connected.
    for j in ALL {
        let p = net.ok(j, "PEERS");
        let list = p
            .as_array()
            .unwrap_or_else(|| panic!("PEERS is a list: {p}"));
        assert_eq!(list.len(), 3, "node{j}: {p}");
        for k in ALL.into_iter().filter(|&k| k != j) {
            let entry = list
                .iter()
                .find(|e| e["address"] == net.address(k))
                .unwrap_or_else(|| panic!("node{j}: PEERS lacks node{k}: {p}"));
            assert_eq!(
                entry["endpoint"],
                format!("127.0.0.1:{}", net.ports.peer(k)),
                "{entry}"
            );
            assert_eq!(entry["connected"], true, "node{j}: {entry}");
        }
    }

    // HELP, PING, QUIT.
    let help = net.ok(1, "help");
    for command in [
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
        "AUTH",
    ] {
        assert!(
            help["commands"]
                .as_array()
                .is_some_and(|c| c.contains(&json!(command))),
            "HELP lists {command}: {help}"
        );
    }
    assert_eq!(net.ok(2, "PING"), json!({ "pong": true }));
    let mut admin = net.admin(3);
    assert_eq!(admin.ok("QUIT"), json!({ "bye": true }));
    assert!(
        admin.closed_within(DEADLINE),
        "the node closes the connection after QUIT"
    );

    // The height keeps growing, and every node holds the same chain.
    let h1 = net.max_height(&ALL);
    net.wait_height(&ALL, h1 + 2);
    let chain = net.assert_same_chain(&ALL, h1);
    for hash in &hashes {
        assert!(
            chain.iter().any(|b| b.txs.contains(hash)),
            "{hash} is in the chain"
        );
    }

    // From admission to commit, `TX` on the admitting node always knows the transaction.
    for k in 0..12 {
        let i = k % 4;
        let line = if k % 2 == 0 {
            "SEND alice bob 1"
        } else {
            "SEND bob alice 1"
        };
        let answer = net.ok(i, line);
        let hash = str_field(&answer, "tx");
        let height = tx_until_committed(&net, i, hash);
        assert_eq!(net.committed_everywhere(&ALL, hash), height);
    }
}
