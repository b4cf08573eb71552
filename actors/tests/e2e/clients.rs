//! What ordinary clients do with one account: send a burst, send nonces to different nodes
//! or out of order, and send more right after the last commit. All of it is admitted and
//! commits.

use std::time::Instant;

use almagill::encoding;
use almagill::tx::Transaction;

use crate::harness::{
    parse_reply, pipeline, signed_transfers, str_field, wait_committed, Net, Reply,
};

const ALL: [usize; 4] = [0, 1, 2, 3];

/// 1,000 pre-signed transfers from one account, pipelined into one idle node: every one is
/// admitted, and every one commits.
#[test]
fn a_burst_from_one_account_is_admitted_and_commits() {
    let net = Net::launch(4);
    net.wait_height(&ALL, 2);
    let signed = signed_transfers(&net, "alice", "bob", 0..1_000);
    let start = Instant::now();
    let hashes = pipeline(&net, 0, &signed);
    let admitted = start.elapsed();
    wait_committed(&net, 0, &hashes[hashes.len() - 1]);
    // Node 2 may not have heard of them by gossip: it knows them once it has the blocks.
    net.wait_height(&[2], net.height(0));
    for hash in &hashes {
        wait_committed(&net, 2, hash);
    }
    eprintln!(
        "burst: 1,000 transfers from one account admitted in {admitted:?}, all committed \
         {:?} after the first was sent",
        start.elapsed()
    );
}

/// An account's nonces 0..19 sent round-robin to the four nodes, one request at a time, and
/// another account's nonces 19..0 sent in reverse to one node: all commit.
#[test]
fn nonces_sent_to_any_node_in_any_order_all_commit() {
    let net = Net::launch(4);
    net.wait_height(&ALL, 2);
    let round_robin = signed_transfers(&net, "alice", "bob", 0..20);
    // (node it was sent to, hash): WAIT asks that node, which surely knows it.
    let mut sent = Vec::new();
    for (nonce, hex) in round_robin.iter().enumerate() {
        let reply = net.ok(nonce % 4, &format!("SUBMIT {hex}"));
        sent.push((nonce % 4, str_field(&reply, "tx").to_string()));
    }
    let reverse = signed_transfers(&net, "bob", "alice", (0..20).rev());
    for hex in &reverse {
        let reply = net.ok(1, &format!("SUBMIT {hex}"));
        sent.push((1, str_field(&reply, "tx").to_string()));
    }
    for (node, hash) in &sent {
        wait_committed(&net, *node, hash);
    }
    // And every node holds them all, committed.
    net.wait_height(&ALL, net.height(0));
    for (_, hash) in &sent {
        for i in ALL {
            wait_committed(&net, i, hash);
        }
    }
    eprintln!("nonces: 20 round-robin over four nodes and 20 in reverse to one: all committed");
}

/// Right after `WAIT` answers committed for the last of 50 transactions, the node's mempool
/// no longer holds any of them, and the sender's next 50 are admitted.
#[test]
fn right_after_a_commit_the_next_transactions_are_admitted() {
    let net = Net::launch(4);
    net.wait_height(&ALL, 2);
    let signed = signed_transfers(&net, "alice", "bob", 0..100);
    let first = pipeline(&net, 0, &signed[..50]);
    wait_committed(&net, 0, &first[49]);
    let status = net.ok(0, "STATUS");
    assert_eq!(
        status["mempool"], 0,
        "the mempool still counts committed transactions: {status}"
    );
    let next = pipeline(&net, 0, &signed[50..]);
    wait_committed(&net, 0, &next[49]);
}

/// Pipelined `SUBMIT`s get one answer each, in the order they were sent, whatever the
/// answer; and a command written right behind them sees every one of them. In one write:
/// 100 transfers with a forged copy of nonce 50 before the real one and a repeat of nonce 0
/// at the end, then `TX` of nonce 99 and `QUIT`.
///
/// Shown failing: with `serve` carrying out other commands without first answering the
/// `SUBMIT`s before them, the `TX` answer comes out ahead of theirs.
#[test]
fn pipelined_submits_are_answered_in_order_and_seen_by_the_next_command() {
    let net = Net::launch(1);
    net.wait_height(&[0], 1);
    let signed = signed_transfers(&net, "alice", "bob", 0..100);
    let hash_of = |hex: &str| {
        let bytes = hex::decode(hex).expect("hex");
        let tx: Transaction = encoding::decode(&bytes).expect("a transaction");
        tx.hash().to_string()
    };
    let mut forged = hex::decode(&signed[50]).expect("hex");
    *forged.last_mut().expect("a signature") ^= 1;
    let mut lines = Vec::new();
    let mut expected = Vec::new();
    for (nonce, hex) in signed.iter().enumerate() {
        if nonce == 50 {
            lines.push(format!("SUBMIT {}", hex::encode(&forged)));
            expected.push(Err("invalid_signature".to_string()));
        }
        lines.push(format!("SUBMIT {hex}"));
        expected.push(Ok(hash_of(hex)));
    }
    lines.push(format!("SUBMIT {}", signed[0]));
    expected.push(Err("duplicate".to_string()));
    lines.push(format!("TX {}", hash_of(&signed[99])));
    lines.push("QUIT".to_string());

    let mut admin = net.admin(0);
    admin
        .send_raw(format!("{}\n", lines.join("\n")).as_bytes())
        .expect("the lines are sent");
    let mut replies = Vec::new();
    while let Ok(line) = admin.read_line() {
        replies.push(parse_reply(&line).unwrap_or_else(|e| net.fail(&e)));
    }
    assert_eq!(replies.len(), expected.len() + 2, "{replies:#?}");
    for (k, (reply, want)) in replies.iter().zip(&expected).enumerate() {
        match (reply, want) {
            (Reply::Ok(value), Ok(hash)) => assert_eq!(str_field(value, "tx"), hash, "line {k}"),
            (Reply::Err(code), Err(want)) => assert_eq!(code, want, "line {k}"),
            _ => panic!("line {k}: {reply:?}, expected {want:?}"),
        }
    }
    let Reply::Ok(status) = &replies[expected.len()] else {
        panic!("TX: {:?}", replies[expected.len()]);
    };
    assert!(
        ["pending", "committed"].contains(&str_field(status, "status")),
        "TX: {status}"
    );
    assert!(matches!(&replies[expected.len() + 1], Reply::Ok(bye) if bye["bye"] == true));
    eprintln!(
        "pipelined: {} SUBMITs answered in order, then TX saw the last as {}",
        expected.len(),
        str_field(status, "status")
    );
}
