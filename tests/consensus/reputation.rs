//! Leader reputation in simulation: a dead validator is passed over once its failed turns
//! are on the chain, so view changes stop coming at each of its turns; when it comes back it
//! leads again.

use almagill::reputation::{MEMORY, WINDOW};

use crate::sim::{NetFaults, Setup, World};

/// Node 3 of four dead for 30 s of virtual time with transfers flowing.
fn with_node3_dead(seed: u64) -> World {
    let mut world = World::new(seed, &Setup::equal(4));
    world.faults = NetFaults::delays(5, 15);
    world.crash(3);
    world.start_workload(200);
    world.run_until(30_000);
    world.assert_chains_agree();
    world
}

/// With node 3 dead, its turns to lead end in view changes only until they are on the
/// chain; then it is passed over for a window, so there is about one view change per
/// window, not one at each of its turns (a quarter of all views).
///
/// Mutation caught: `Blames::skipped` returning nobody — the plain rotation keeps giving
/// node 3 its turns, and the round climbs with about a third of the blocks.
#[test]
fn a_dead_validator_is_passed_over() {
    for seed in [1, 2, 3] {
        let world = with_node3_dead(seed);
        let blocks = world.min_honest_height();
        let rounds = world.nodes[0].pbft.round();
        eprintln!("seed {seed}: node 3 dead: {blocks} blocks, round {rounds}");
        assert!(blocks > 500, "seed {seed}: only {blocks} blocks");
        assert!(
            rounds * 25 < blocks,
            "seed {seed}: {rounds} view changes in {blocks} blocks"
        );
    }
}

/// Node 3 comes back after being passed over: it joins the others' round (which began
/// while it was down, so it never saw its new view) from the blocks it fetches, and at its
/// first turn after the pass-over it proposes committed blocks again, not blamed a second
/// time.
///
/// Mutation caught: `join_round_of` doing nothing — node 3 stays in round 0, following
/// the chain without voting, fails its first turn after the pass-over (blamed again) and
/// leads only after a second, doubled one.
#[test]
fn a_validator_that_recovers_leads_again() {
    let mut world = with_node3_dead(4);
    let back_at = world.min_honest_height();
    world.restart(3);
    let node3 = world.nodes[3].key.address();
    let led_again = |world: &World| {
        world.nodes[0]
            .chain
            .iter()
            .find(|(b, _, _)| b.height() > back_at && b.header.proposal.proposer == node3)
            .map(|(b, _, _)| b.height())
    };
    while led_again(&world).is_none() && world.min_honest_height() <= back_at + MEMORY + WINDOW {
        let next = world.now + 1_000;
        world.run_until(next);
    }
    let led = led_again(&world);
    eprintln!("node 3 back at {back_at}: led again at {led:?}");
    assert!(led.is_some(), "node 3 never led again after it came back");
    let blamed_again: Vec<u64> = world.nodes[0]
        .pbft
        .blames()
        .blamed
        .iter()
        .filter(|(h, a)| *h > back_at && *a == node3)
        .map(|(h, _)| *h)
        .collect();
    assert!(
        blamed_again.is_empty(),
        "node 3 failed turns after it came back, at {blamed_again:?}"
    );
    world.assert_chains_agree();
}
