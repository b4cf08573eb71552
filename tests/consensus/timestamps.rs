//! Proposal timestamps: after the block below, and not beyond the receiver's clock plus
//! [`MAX_CLOCK_AHEAD_MS`]. Each test offers one validator's core a leader's validly signed
//! pre-prepare and sees whether it votes for it.
//!
//! Mutation caught by all three: with `timestamp_ok` always true, each refused stamp is
//! voted for and the tests fail.

use almagill::block::Proposal;
use almagill::certificate::{Phase, Signed, VoteTarget};
use almagill::consensus::{Input, LeaderSchedule, Message, MAX_CLOCK_AHEAD_MS};

use crate::sim::{Setup, World, CHAIN};

/// A fresh 4-validator network and the node that leads neither view 1 nor view 2.
fn fresh() -> (World, usize) {
    let world = World::new(0, &Setup::equal(4));
    let leader = |view| leader_node(&world, view);
    let receiver = (0..4)
        .find(|&i| i != leader(1) && i != leader(2))
        .expect("four validators");
    (world, receiver)
}

fn leader_node(world: &World, view: u64) -> usize {
    let validators = world.nodes[0].ledger.validators_for(1).expect("genesis");
    let leader = LeaderSchedule::new(validators).leader(view);
    (0..world.nodes.len())
        .find(|&i| world.nodes[i].key.address() == leader)
        .expect("a leader is a node")
}

/// Whether node `to` votes for the leader's empty proposal for `height` (round 0) stamped
/// `timestamp_ms`, offered at time `now`.
fn votes_for(world: &mut World, to: usize, height: u64, timestamp_ms: u64, now: u64) -> bool {
    let leader = leader_node(world, height);
    let key = &world.nodes[leader].key;
    let proposal = Proposal::new(height, height, timestamp_ms, key.address(), Vec::new());
    let target = VoteTarget {
        phase: Phase::Prepare,
        height,
        view: height,
        digest: proposal.digest(),
    };
    let vote = Signed::sign(target, key, CHAIN);
    let input = Input::Message {
        from: key.address(),
        message: Message::PrePrepare { proposal, vote },
    };
    let actions = world.nodes[to].pbft.step(input, now);
    actions.messages.iter().any(|(_, m)| {
        matches!(m, Message::Vote(v) if v.payload.phase == Phase::Prepare && v.payload.height == height)
    })
}

/// A stamp earlier than the proposal below it is refused; a later one is taken.
#[test]
fn proposal_stamped_before_the_block_below_is_refused() {
    let (mut world, r) = fresh();
    assert!(votes_for(&mut world, r, 1, 500, 1_000));
    assert!(
        !votes_for(&mut world, r, 2, 499, 1_000),
        "a past stamp was taken"
    );
    assert!(votes_for(&mut world, r, 2, 501, 1_000));
}

/// A stamp equal to the block below's (here genesis time, then height 1's) is refused.
#[test]
fn proposal_stamped_at_the_time_of_the_block_below_is_refused() {
    let (mut world, r) = fresh();
    let genesis_time = world.genesis.genesis_time_ms;
    assert!(
        !votes_for(&mut world, r, 1, genesis_time, 1_000),
        "genesis time was taken"
    );
    assert!(votes_for(&mut world, r, 1, genesis_time + 1, 1_000));
    assert!(
        !votes_for(&mut world, r, 2, genesis_time + 1, 1_000),
        "an equal stamp was taken"
    );
}

/// A stamp more than [`MAX_CLOCK_AHEAD_MS`] past the receiver's clock is refused; one at
/// the bound is taken.
#[test]
fn proposal_stamped_far_in_the_future_is_refused() {
    let (mut world, r) = fresh();
    let now = 1_000;
    for far in [now + MAX_CLOCK_AHEAD_MS + 1, u64::MAX] {
        assert!(
            !votes_for(&mut world, r, 1, far, now),
            "{far} was taken at {now}"
        );
    }
    assert!(votes_for(&mut world, r, 1, now + MAX_CLOCK_AHEAD_MS, now));
}
