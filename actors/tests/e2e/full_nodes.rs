//! Full nodes: a node whose key is in no validator set (never staked, or unstaked) follows
//! the chain. It never votes or proposes; it takes blocks its peers commit, checking each
//! certificate, and keeps doing so across restarts.

use std::fs;
use std::time::{Duration, Instant};

use crate::harness::{almagill, str_field, u64_field, BlockInfo, Net, DEADLINE};

/// Blocks per epoch in these tests: the unstaking validator leaves within seconds.
const EPOCH_LENGTH: u64 = 20;

/// How many blocks the head must move while a follower is watched.
const FOLLOW_BLOCKS: u64 = 25;

/// The highest height among `validators` that answer.
fn head(net: &Net, validators: &[usize]) -> u64 {
    validators
        .iter()
        .filter_map(|&i| net.try_height(i))
        .max()
        .unwrap_or(0)
}

/// Waits until `follower` has reached the validators' head as it is now; returns that head
/// and how long it took.
fn reach_head(net: &Net, follower: usize, validators: &[usize]) -> (u64, Duration) {
    let target = head(net, validators);
    let started = Instant::now();
    net.wait_until(
        DEADLINE,
        &format!("node{follower} to reach the validators' head {target}"),
        || net.try_height(follower).is_some_and(|h| h >= target),
    );
    (target, started.elapsed())
}

/// Watches `follower` while the validators' head moves [`FOLLOW_BLOCKS`] blocks: each time
/// the head has moved five blocks, the follower must reach it. Prints heights over time
/// and how long the follower took to reach each head.
fn follows_the_head(net: &Net, follower: usize, validators: &[usize]) {
    let started = Instant::now();
    let first = head(net, validators);
    let mut last = first;
    eprintln!("node{follower} following from head {first}:");
    while last < first + FOLLOW_BLOCKS {
        net.wait_until(
            DEADLINE,
            &format!("the validators' head to pass {}", last + 4),
            || head(net, validators) >= last + 5,
        );
        let at_head = head(net, validators);
        let own = net.height(follower);
        let (reached, took) = reach_head(net, follower, validators);
        eprintln!(
            "  t={:5.2}s head={at_head:4} node{follower}={own:4} lag={:2} blocks; reached {reached} in {:.2}s",
            started.elapsed().as_secs_f64(),
            at_head.saturating_sub(own),
            took.as_secs_f64()
        );
        last = reached;
    }
}

/// Asserts that `follower` holds exactly `reference`'s blocks `1..=height` (hash, parent,
/// state root, transactions): whole blocks, not only heights.
fn same_blocks(net: &Net, reference: usize, follower: usize, height: u64) {
    net.wait_executed(&[reference, follower], height);
    for h in 1..=height {
        let a = BlockInfo::from_json(&net.block(reference, h));
        let b = BlockInfo::from_json(&net.block(follower, h));
        if a != b {
            net.fail(&format!(
                "node{reference} and node{follower} disagree at height {h}:\n  {a:?}\n  {b:?}"
            ));
        }
    }
}

/// Four validators and a fifth node, `node4`, whose account holds no stake at genesis (it
/// is a configured peer of every validator, so they accept its connection). It reaches the
/// head and follows it, holding the validators' very blocks; SIGKILLed and restarted while
/// a validator is down (so the validators change view without it), it catches up and
/// follows again. It never signs: every certificate has at most four signers.
#[test]
fn non_validator_from_genesis_follows_the_head() {
    let mut net = Net::create(5, Some(EPOCH_LENGTH));
    let full = 4;
    let validators = [0, 1, 2, 3];
    let account = net
        .genesis
        .accounts
        .iter_mut()
        .find(|a| a.name == format!("node{full}"))
        .expect("node4 has an account");
    account.balance += account.stake;
    account.stake = 0;
    net.genesis.validate().expect("genesis with node4 unstaked");
    fs::write(net.dir().join("genesis.toml"), net.genesis.to_toml()).expect("genesis written");

    let started = Instant::now();
    for i in 0..5 {
        net.start(i);
    }
    net.wait_height(&validators, 1);
    assert_eq!(
        u64_field(&net.status(0), "validators"),
        4,
        "node4 is no validator"
    );
    let (at, took) = reach_head(&net, full, &validators);
    eprintln!(
        "node{full} (no stake) reached the head {at} {:.2}s after start ({:.2}s after the \
         validators' first block)",
        started.elapsed().as_secs_f64(),
        took.as_secs_f64()
    );
    follows_the_head(&net, full, &validators);

    // Down while the validators change view without one of them; back up, it catches up.
    net.kill(full);
    let down = 1;
    net.kill(down);
    let up = [0, 2, 3];
    let before = head(&net, &up);
    net.wait_height(&up, before + 10);
    net.start(down);
    net.wait_height(&validators, before + 12);
    let restarted = Instant::now();
    net.start(full);
    let recovered = net.recovered_height(full);
    let (at, took) = reach_head(&net, full, &validators);
    eprintln!(
        "node{full} restarted at height {recovered}; reached the head {at} in {:.2}s ({:.2}s \
         after the restart)",
        took.as_secs_f64(),
        restarted.elapsed().as_secs_f64()
    );
    follows_the_head(&net, full, &validators);

    let height = net.height(full);
    same_blocks(&net, 0, full, height);
    for h in 1..=height {
        let signers = u64_field(&net.block(full, h), "signers");
        assert!(
            (3..=4).contains(&signers),
            "block {h} has {signers} signers"
        );
    }
}

/// Node 3, one of four equal validators, unstakes everything (a transaction signed with
/// `almagill tx unstake` and sent with `SUBMIT`). Once the epoch after next begins, the
/// validator set is nodes 0-2; node 3 is SIGKILLed and restarted, and it reaches the head
/// and keeps following it, holding the same blocks as the validators.
#[test]
fn validator_that_unstakes_follows_the_head() {
    let mut net = Net::launch_with(4, Some(EPOCH_LENGTH));
    let leaver = 3;
    let validators = [0, 1, 2];
    net.wait_height(&[0, 1, 2, 3], 2);
    let dir = net.dir();
    let stake = net
        .genesis
        .account_named("node3")
        .expect("node3 has an account")
        .stake;
    let nonce = u64_field(&net.ok(0, "BALANCE node3"), "nonce");
    let unstake = almagill(&[
        "tx",
        "unstake",
        "--key",
        dir.join("keys/node3.key").to_str().expect("utf-8 path"),
        "--amount",
        &stake.to_string(),
        "--nonce",
        &nonce.to_string(),
        "--genesis",
        dir.join("genesis.toml").to_str().expect("utf-8 path"),
    ]);
    let submitted = net.ok(0, &format!("SUBMIT {unstake}"));
    let at = net.wait_committed(0, str_field(&submitted, "tx"));
    // The set for epoch e >= 2 is fixed at the end of epoch e - 2.
    let boundary = ((at - 1) / EPOCH_LENGTH + 2) * EPOCH_LENGTH;
    let address = net.address(leaver);
    eprintln!("node{leaver} unstaked at height {at}; it leaves after height {boundary}");
    net.wait_height(&validators, boundary + 1);
    let set = net.ok(0, "VALIDATORS");
    let members = set.as_array().expect("VALIDATORS is a list");
    assert_eq!(members.len(), 3, "{set}");
    assert!(
        members.iter().all(|v| v["address"] != address.as_str()),
        "node{leaver} is still a validator: {set}"
    );

    let killed_at = net.height(leaver);
    net.kill(leaver);
    net.wait_height(&validators, killed_at + 5);
    let restarted = Instant::now();
    net.start(leaver);
    let recovered = net.recovered_height(leaver);
    let (at, took) = reach_head(&net, leaver, &validators);
    eprintln!(
        "node{leaver} restarted at height {recovered}; reached the head {at} in {:.2}s ({:.2}s \
         after the restart)",
        took.as_secs_f64(),
        restarted.elapsed().as_secs_f64()
    );
    follows_the_head(&net, leaver, &validators);
    let height = net.height(leaver);
    net.assert_same_chain(&[0, 1, 2, 3], height);
}
