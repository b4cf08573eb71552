//! Crash faults: a node killed with SIGKILL (the leader, or any node under load) costs the
//! others nothing but a view change, and the node recovers from its disk and catches up.

use std::time::Duration;

use crate::harness::{
    amount_field, parse_reply, round_of, str_field, u64_field, Net, Reply, DEADLINE,
};

const ALL: [usize; 4] = [0, 1, 2, 3];

/// The current leader (from `STATUS`) is SIGKILLed: the other three keep committing, which
/// takes a view change (their round goes up) and several blocks; restarted on its own data,
/// it recovers its blocks from disk, catches up with the others and agrees on every block.
#[test]
fn leader_killed_others_continue_then_it_catches_up() {
    let mut net = Net::launch(4);
    // Past a checkpoint.
    net.wait_height(&ALL, 12);
    let status = net.status(0);
    let leader = net
        .node_index(str_field(&status, "leader"))
        .unwrap_or_else(|| net.fail(&format!("the leader is no node: {status}")));
    let survivors: Vec<usize> = ALL.into_iter().filter(|&i| i != leader).collect();
    let rounds: Vec<(usize, u64)> = survivors
        .iter()
        .map(|&i| (i, round_of(&net.status(i))))
        .collect();
    // A block the node serves is in its store, which fsyncs each block.
    let durable = net
        .try_executed(leader)
        .unwrap_or_else(|| net.fail(&format!("node{leader} answers BLOCK latest")));
    net.kill(leader);
    let at_kill = net.max_height(&survivors);
    net.wait_until(
        DEADLINE,
        &format!(
            "nodes {survivors:?} to commit 8 blocks past {at_kill} through a view change \
             after leader node{leader} was killed"
        ),
        || {
            rounds.iter().all(|&(i, round)| {
                net.try_ok(i, "STATUS")
                    .is_some_and(|s| u64_field(&s, "height") >= at_kill + 8 && round_of(&s) > round)
            })
        },
    );

    net.restart(leader);
    let recovered = net.recovered_height(leader);
    assert!(
        recovered >= durable && durable > 0,
        "node{leader} served block {durable} before it was killed, but recovered height \
         {recovered}"
    );
    let target = net.max_height(&survivors);
    eprintln!(
        "leader node{leader} killed at height {at_kill}; the others reached {target}; \
         it recovered height {recovered} from disk"
    );
    net.wait_height(&[leader], target);
    net.assert_same_chain(&ALL, target);
    // It is connected to every peer again and goes on with the others.
    net.wait_all_connected();
    net.wait_height(&ALL, target + 3);
}

/// While 200 transfers are submitted (alternately alice to bob and bob to alice, through
/// nodes 0, 1 and 2 in turn), node 3 is SIGKILLed halfway: every transaction a surviving
/// node admitted commits. Restarted, node 3 recovers its blocks from its own disk (its log
/// says `recovered from disk ... height=H`, H > 0), catches up, and agrees with the others
/// on every block, balance and the total supply.
#[test]
fn kill_during_load_loses_nothing() {
    let mut net = Net::launch(4);
    let survivors = [0, 1, 2];
    let victim = 3;
    net.wait_height(&ALL, 2);

    let mut last: [Option<String>; 2] = [None, None];
    let mut admitted: Vec<(usize, String)> = Vec::new();
    let mut durable = 0;
    for k in 0..200 {
        if k == 100 {
            durable = net
                .try_executed(victim)
                .unwrap_or_else(|| net.fail(&format!("node{victim} answers BLOCK latest")));
            net.kill(victim);
        }
        let node = survivors[k % 3];
        let (sender, line) = if k % 2 == 0 {
            (0, "SEND alice bob 1")
        } else {
            (1, "SEND bob alice 2")
        };
        // A node chooses the next nonce from what it knows: let it see the sender's previous
        // transaction (gossiped or committed) first, as a client of several nodes must.
        if let Some(previous) = &last[sender] {
            net.wait_until(
                DEADLINE,
                &format!("node{node} to know transaction {previous}"),
                || {
                    net.request(node, &format!("TX {previous}"))
                        .is_ok_and(|r| r.starts_with("OK "))
                },
            );
        }
        let mut hash = None;
        net.wait_until(DEADLINE, &format!("node{node} to admit `{line}`"), || {
            let reply = net
                .request(node, line)
                .unwrap_or_else(|e| net.fail(&format!("node{node}: `{line}`: {e}")));
            match parse_reply(&reply) {
                Ok(Reply::Ok(answer)) => {
                    hash = Some(str_field(&answer, "tx").to_string());
                    true
                }
                // The sender's pending limit while a view change holds blocks back.
                Ok(Reply::Err(code)) if code == "mempool_full" => false,
                _ => net.fail(&format!("node{node}: `{line}` -> `{reply}`")),
            }
        });
        let hash = hash.expect("admitted");
        last[sender] = Some(hash.clone());
        admitted.push((node, hash));
    }

    // Every admitted transaction commits.
    let mut top = 0;
    for (node, hash) in &admitted {
        top = top.max(net.wait_committed(*node, hash));
    }

    net.start(victim);
    let recovered = net.recovered_height(victim);
    assert!(
        recovered > 0 && recovered >= durable,
        "node{victim} served block {durable} before it was killed, but recovered height \
         {recovered}"
    );
    let target = net.max_height(&survivors).max(top);
    eprintln!(
        "{} transactions committed by height {top}; node{victim} recovered height \
         {recovered} from disk and catches up to {target}",
        admitted.len()
    );
    net.wait_height(&[victim], target);
    net.assert_same_chain(&ALL, target);
    net.wait_all_connected();

    for i in ALL {
        for (node, hash) in admitted.iter().step_by(7) {
            let tx = net.ok(i, &format!("TX {hash}"));
            assert_eq!(
                tx["status"], "committed",
                "node{i}: {tx} (sent to node{node})"
            );
        }
        let alice = net.ok(i, "BALANCE alice");
        assert_eq!(u64_field(&alice, "nonce"), 100, "node{i}: {alice}");
        assert_eq!(
            amount_field(&alice, "balance"),
            net.genesis_balance("alice") + 100,
            "node{i}: alice sent 100 x 1 and got 100 x 2: {alice}"
        );
        let bob = net.ok(i, "BALANCE bob");
        assert_eq!(u64_field(&bob, "nonce"), 100, "node{i}: {bob}");
        assert_eq!(
            amount_field(&bob, "balance"),
            net.genesis_balance("bob") - 100,
            "node{i}: {bob}"
        );
        let supply = net.ok(i, "SUPPLY");
        assert_eq!(
            amount_field(&supply, "total"),
            net.genesis.supply(),
            "node{i}: {supply}"
        );
        assert_eq!(supply["total"], supply["genesis"], "node{i}: {supply}");
    }
}

/// Epochs of 20 blocks (a valid genesis: a multiple of the 10-block checkpoint interval).
/// Just after an epoch boundary, while the stable checkpoint is the last block of the
/// previous epoch, the next leader is SIGKILLed: the other three must change view and go on
/// committing past the next checkpoint. Restarted, the killed node catches up across the
/// boundary, and all four carry on into the next epoch.
#[test]
fn leader_killed_just_after_an_epoch_boundary() {
    const EPOCH: u64 = 20;
    let mut net = Net::launch_with(4, Some(EPOCH));
    // Heights 21..=24 (or 41..=44, ...): the checkpoint at the epoch's last block stays the
    // stable one until the next checkpoint, ten blocks on; the killed leader's turn comes
    // back within four views, before that.
    let mut found = None;
    net.wait_until(
        DEADLINE,
        "node0 at a height just past an epoch boundary",
        || {
            found = net.try_ok(0, "STATUS").filter(|s| {
                let h = s["height"].as_u64().unwrap_or(0);
                h > EPOCH && (h - 1) % EPOCH < 4
            });
            found.is_some()
        },
    );
    let status = found.expect("found");
    let height = u64_field(&status, "height");
    let leader = net
        .node_index(str_field(&status, "leader"))
        .unwrap_or_else(|| net.fail(&format!("the leader is no node: {status}")));
    let survivors: Vec<usize> = ALL.into_iter().filter(|&i| i != leader).collect();
    let durable = net
        .try_executed(leader)
        .unwrap_or_else(|| net.fail(&format!("node{leader} answers BLOCK latest")));
    net.kill(leader);
    let at_kill = net.max_height(&survivors);
    let boundary = height - (height - 1) % EPOCH - 1;
    net.wait_until(
        Duration::from_secs(30),
        &format!(
            "nodes {survivors:?} to commit 8 blocks past {at_kill} after leader node{leader} \
             was killed at height {height}, just after the epoch boundary {boundary} (whose \
             checkpoint was the stable one)"
        ),
        || {
            survivors
                .iter()
                .all(|&i| net.try_height(i).is_some_and(|h| h >= at_kill + 8))
        },
    );

    net.restart(leader);
    let recovered = net.recovered_height(leader);
    assert!(
        recovered >= durable,
        "node{leader} served block {durable} before it was killed, but recovered height \
         {recovered}"
    );
    let target = net.max_height(&survivors);
    net.wait_height(&[leader], target);
    net.assert_same_chain(&ALL, target);
    net.wait_all_connected();
    let next_boundary = (target / EPOCH + 1) * EPOCH;
    net.wait_height(&ALL, next_boundary + 2);
    net.assert_same_chain(&ALL, next_boundary + 2);
}
