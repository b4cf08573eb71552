//! Named scenarios and seed sweeps.

use crate::byzantine::Behaviour;
use crate::sim::{NetFaults, Setup, World};

/// How many seeds a sweep runs: the default, or `ALMAGILL_SIM_SEEDS`.
fn seeds(default: u64) -> u64 {
    std::env::var("ALMAGILL_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs until every honest, alive node has committed past `height`, and asserts that
/// happens by virtual time `deadline`.
fn assert_progress(world: &mut World, deadline: u64, height: u64) {
    while world.min_honest_height() <= height && world.now < deadline {
        let next = world.now + 100;
        world.run_until(next);
    }
    assert!(
        world.min_honest_height() > height,
        "no progress: {} (needed above {height})",
        world.summary()
    );
    world.assert_chains_agree();
}

/// Four honest validators on a calm network commit block after block, with the workload's
/// transactions executed, every certificate a stake quorum, and identical chains.
#[test]
fn honest_network_commits_and_agrees() {
    let mut world = World::new(1, &Setup::equal(4));
    world.start_workload(200);
    assert_progress(&mut world, 3_000, 20);
    for i in 0..4 {
        world.assert_certificates_valid(i);
    }
    let txs: usize = world.nodes[0]
        .chain
        .iter()
        .map(|(b, _, _)| b.txs.len())
        .sum();
    eprintln!(
        "{} txs={txs} events={}",
        world.summary(),
        world.events_handled
    );
    assert!(txs > 100, "only {txs} transactions committed");
}

/// One run of the random sweep: a faulty phase (lossy, duplicating, reordering network, a
/// partition, a crash and restart, one Byzantine validator), then a healed network in which
/// every honest node must make progress.
#[test]
fn debug_seed() {
    if let Ok(seed) = std::env::var("SEED") {
        random_run(seed.parse().unwrap());
    }
}

fn random_run(seed: u64) {
    let mut world = World::new(seed, &Setup::equal(4));
    world.start_workload(100);
    let byzantine = world.rng.below(4) as usize;
    let behaviours = [
        Behaviour::Honest,
        Behaviour::Silent,
        Behaviour::SilentLeader,
        Behaviour::Equivocate,
        Behaviour::Duplicate,
        Behaviour::Replay,
        Behaviour::FarFuture,
        Behaviour::WrongChain,
    ];
    world.nodes[byzantine].behaviour =
        behaviours[world.rng.below(behaviours.len() as u64) as usize];
    world.faults = NetFaults {
        delay: (1, 60),
        drop: 0.1,
        duplicate: 0.05,
    };
    world.run_until(500);
    let groups: Vec<u8> = (0..4).map(|_| world.rng.below(2) as u8).collect();
    world.partition = Some(groups);
    world.run_until(900);
    world.partition = None;
    let crashed = (byzantine + 1 + world.rng.below(3) as usize) % 4;
    world.crash(crashed);
    world.run_until(1_200);
    world.restart(crashed);
    world.run_until(1_500);
    world.faults = NetFaults::CALM;
    if std::env::var("SEED").is_ok() {
        for t in (1_600..60_000).step_by(1000) {
            world.run_until(t);
            eprintln!("{}", world.summary());
        }
    }
    let healed_at = world.min_honest_height();
    assert_progress(&mut world, 60_000, healed_at + 3);
}

/// Seeds 0..N of the random sweep (a quarter per test, so they run in parallel).
fn sweep(part: u64) {
    let n = seeds(500);
    for seed in (part * n)..((part + 1) * n) {
        random_run(seed);
    }
}

/// Random faults, sweep part 1 of 4.
#[test]
fn random_faults_sweep_1() {
    sweep(0);
}

/// Random faults, sweep part 2 of 4.
#[test]
fn random_faults_sweep_2() {
    sweep(1);
}

/// Random faults, sweep part 3 of 4.
#[test]
fn random_faults_sweep_3() {
    sweep(2);
}

/// Random faults, sweep part 4 of 4.
#[test]
fn random_faults_sweep_4() {
    sweep(3);
}
