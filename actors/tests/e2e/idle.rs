//! An idle network stays small: with nothing to carry, blocks come at the genesis idle
//! interval, not at the block interval.

use std::time::Instant;

use almagill::genesis::ConsensusParams;

use crate::harness::{round_of, u64_field, Net};

const ALL: [usize; 4] = [0, 1, 2, 3];

/// Four validators on the default consensus parameters (block interval 200 ms, idle
/// interval 1 s, view timeout 2 s) and no transactions: every block's time is at least the
/// idle interval after the block below it, so the chain grows by at most one block a second
/// (five before the idle interval existed), and it keeps growing.
#[test]
fn an_idle_network_commits_at_most_one_block_a_second() {
    let mut net = Net::create(4, None);
    net.set_consensus(ConsensusParams::default());
    for i in ALL {
        net.start(i);
    }
    net.wait_height(&ALL, 2);
    let from = net.height(0);
    let started = Instant::now();
    let to = from + 10;
    net.wait_height(&[0], to);
    let elapsed = started.elapsed().as_secs_f64();

    let idle = net.genesis.consensus.idle_block_interval_ms;
    let times: Vec<u64> = (from..=to)
        .map(|h| u64_field(&net.block(0, h), "timestamp"))
        .collect();
    let least_gap = times.windows(2).map(|p| p[1] - p[0]).min().unwrap_or(0);
    let status = net.status(0);
    eprintln!(
        "idle: blocks {from} to {to} in {elapsed:.1} s of wall time ({:.2} blocks/s); \
         least gap between block times {least_gap} ms; round {}",
        (to - from) as f64 / elapsed,
        round_of(&status)
    );
    assert!(
        least_gap >= idle,
        "two empty blocks {least_gap} ms apart, under the idle interval {idle} ms: {times:?}"
    );
}
