//! Clean stops and restarts: the whole network stopped with SIGTERM and started again, and a
//! node whose data was wiped syncing the chain from the others and voting again.

use crate::harness::{str_field, u64_field, Net};

const ALL: [usize; 4] = [0, 1, 2, 3];

/// All four nodes stopped with SIGTERM each exit 0; started again, each recovers at least
/// the height it had executed, the same blocks, the transaction and the balances of a
/// transfer made before, and the network goes on committing past the old height.
#[test]
fn sigterm_all_and_restart() {
    let mut net = Net::launch(4);
    // Past two checkpoints.
    net.wait_height(&ALL, 22);
    let sent = net.ok(0, "SEND alice bob 7");
    let hash = str_field(&sent, "tx").to_string();
    let tx_height = net.committed_everywhere(&ALL, &hash);
    net.wait_executed(&ALL, tx_height);
    let balances: Vec<_> = ALL
        .iter()
        .map(|&i| (net.ok(i, "BALANCE alice"), net.ok(i, "BALANCE bob")))
        .collect();

    // Each node's executed height just before it is stopped, and node 0's chain.
    let mut executed = [0u64; 4];
    let mut reference = Vec::new();
    for i in ALL {
        executed[i] = net
            .try_executed(i)
            .unwrap_or_else(|| net.fail(&format!("node{i} answers BLOCK latest")));
        if i == 0 {
            reference = net.chain(0, executed[0]);
        }
        let status = net.terminate(i);
        if !status.success() {
            net.fail(&format!(
                "node{i} exited with {status} after SIGTERM, expected 0"
            ));
        }
        if i == 1 {
            // Nodes 2 and 3 alone hold half the stake: no quorum, so a transfer stays
            // pending, and WAIT with a short limit answers `timeout`.
            let sent = net.ok(2, "SEND bob node3 1");
            let pending = str_field(&sent, "tx");
            assert_eq!(net.err(2, &format!("WAIT {pending} 300")), "timeout");
            assert_eq!(
                net.ok(2, &format!("TX {pending}")),
                serde_json::json!({ "tx": pending, "status": "pending" })
            );
            let status = net.status(2);
            assert!(u64_field(&status, "mempool") >= 1, "{status}");
        }
    }

    for i in ALL {
        net.start(i);
    }
    let mut recovered = [0u64; 4];
    for i in ALL {
        recovered[i] = net.recovered_height(i);
        assert!(
            recovered[i] >= executed[i],
            "node{i} had executed {} before SIGTERM but recovered height {}",
            executed[i],
            recovered[i]
        );
    }
    eprintln!("executed before SIGTERM: {executed:?}; recovered after: {recovered:?}");
    let top = reference.len() as u64;
    for i in ALL {
        net.wait_executed(&[i], top);
        let chain = net.chain(i, top);
        for (a, b) in reference.iter().zip(&chain) {
            if a != b {
                net.fail(&format!(
                    "node{i}'s block {} changed across the restart:\n  before {a:?}\n  after  {b:?}",
                    a.height
                ));
            }
        }
        let tx = net.ok(i, &format!("TX {hash}"));
        assert_eq!(tx["status"], "committed", "node{i}: {tx}");
        assert_eq!(u64_field(&tx, "height"), tx_height, "node{i}: {tx}");
        assert_eq!(net.ok(i, "BALANCE alice"), balances[i].0, "node{i}");
        assert_eq!(net.ok(i, "BALANCE bob"), balances[i].1, "node{i}");
    }
    let old = recovered.iter().copied().max().unwrap_or(0);
    net.wait_height(&ALL, old + 5);
    net.assert_same_chain(&ALL, old + 5);
    net.wait_all_connected();
}

/// Node 3 is stopped with SIGTERM, its data directory deleted, and started again: it starts
/// from genesis, syncs the whole chain from the others (the same block at every height),
/// and then votes: with node 0 stopped, nodes 1, 2 and 3 still commit, which needs node 3's
/// votes (two of four equal stakes are no quorum).
#[test]
fn fresh_node_syncs_then_votes() {
    let mut net = Net::launch(4);
    // Four checkpoints to sync.
    net.wait_height(&ALL, 42);
    let status = net.terminate(3);
    if !status.success() {
        net.fail(&format!(
            "node3 exited with {status} after SIGTERM, expected 0"
        ));
    }
    net.wipe(3);
    assert!(!net.data_dir(3).exists(), "the data dir is gone");
    let others = [0, 1, 2];
    let target = net.max_height(&others);

    net.start(3);
    assert_eq!(
        net.recovered_height(3),
        0,
        "a wiped node starts from genesis"
    );
    eprintln!("node3 wiped; it syncs the others' {target} blocks");
    net.wait_height(&[3], target);
    net.assert_same_chain(&ALL, target);
    net.wait_all_connected();

    let status = net.terminate(0);
    if !status.success() {
        net.fail(&format!(
            "node0 exited with {status} after SIGTERM, expected 0"
        ));
    }
    let rest = [1, 2, 3];
    let base = net.max_height(&rest);
    net.wait_height(&rest, base + 8);
    // Blocks from base + 5 on were agreed after node 0 stopped (at most `window` = 4 heights
    // are in flight at once): their certificates hold nodes 1, 2 and 3.
    for h in base + 5..=base + 8 {
        for i in rest {
            net.wait_executed(&[i], h);
            let block = net.block(i, h);
            assert_eq!(
                u64_field(&block, "signers"),
                3,
                "node{i}: block {h} was certified by nodes 1, 2 and 3: {block}"
            );
        }
    }
    net.assert_same_chain(&rest, base + 8);
}
