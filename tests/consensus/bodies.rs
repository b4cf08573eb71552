//! Bodies swapped under signed headers. A proposal's digest covers its header only, and the
//! header binds the transactions through `tx_root`; every path a body enters by must check
//! that binding and every signature, or a Byzantine validator can get transactions nobody
//! signed committed under an agreed block hash.
//!
//! In each scenario a [`Behaviour::SwapBodies`] or [`Behaviour::BadSync`] validator swaps in
//! an unsigned transfer of 900,000 AGL to itself. The simulator checks agreement on whole
//! blocks (header and transactions) and state roots at every commit; each test also checks
//! that the attack really happened and that every committed transaction is validly signed.

use almagill::certificate::Phase;
use almagill::consensus::Message;

use crate::adversaries::{assert_live, honest, leaders, network};
use crate::byzantine::Behaviour;
use crate::sim::{Setup, World, CHAIN};

/// Every transaction in every honest node's chain carries its sender's valid signature.
fn assert_every_committed_tx_signed(world: &World) {
    for i in honest(world) {
        for (block, _, _) in &world.nodes[i].chain {
            for tx in &block.txs {
                assert!(
                    tx.verify(CHAIN).is_ok(),
                    "node {i} committed an unsigned transaction at height {}: {}",
                    block.height(),
                    world.summary()
                );
            }
        }
    }
}

/// Loses every commit vote for `ms` of virtual time: heights prepare but do not commit, so
/// the view changes that follow carry prepared certificates with their bodies.
fn stall_commits(world: &mut World, ms: u64) {
    let mut before = world.lose.take();
    world.lose = Some(Box::new(move |from, to, message| {
        matches!(message, Message::Vote(v) if v.payload.phase == Phase::Commit)
            || before.as_mut().is_some_and(|lose| lose(from, to, message))
    }));
    world.run_until(world.now + ms);
    world.lose = None;
}

/// Finding 1, first reproduction: the primary of round 1 is Byzantine. It sends a valid new
/// view, but to one backup every body under the kept headers is swapped for the theft (and
/// the genuine new view never reaches that backup). The backup refuses it, falls behind,
/// catches up, and everyone commits the same whole blocks.
///
/// Mutation caught: with the body check dropped from `new_view_valid` (digests compared
/// only), the backup takes the swapped new view and passes the theft on (in its view
/// changes); the simulator's check that an honest node never sends a body its header does
/// not commit to fails.
#[test]
fn body_swap_in_a_new_view_never_commits() {
    let setup = Setup::equal(4);
    let byzantine = leaders(&setup, 1, 1, Behaviour::SwapBodies);
    let primary = byzantine[0].0;
    let victim = usize::from(primary == 0);
    let mut world = network(61, &setup, &byzantine);
    world.run_until(1_000);
    // The victim never gets round 1's genuine new view (neither from the primary nor from
    // a peer it asks): only the swapped one.
    world.lose = Some(Box::new(move |_, to, message| {
        matches!(message, Message::NewView { new_view, bodies }
            if to == victim
                && new_view.payload.round == 1
                && bodies.iter().all(|b| b.header.binds(&b.txs)))
    }));
    stall_commits(&mut world, 1_500);
    assert_live(&mut world, 30_000, 20);
    assert!(
        world.attacks("swapped new view") > 0,
        "no new view with bodies was swapped: {}",
        world.summary()
    );
    assert_every_committed_tx_signed(&world);
}

/// Finding 1, second reproduction: the primary is honest, and a Byzantine validator (the
/// one with the lowest address, whose view change comes first in address order) carries
/// the theft in its otherwise valid view change. The view change is refused; the primary
/// builds its new view from the honest ones.
///
/// Mutation caught: with the body check dropped from the view change path (`bodies_ok`
/// comparing digests only), the honest primary keeps the swapped view change and, taking
/// the first body in address order, sends the theft in its new view; the simulator's check
/// that an honest node never sends a body its header does not commit to fails.
#[test]
fn body_swap_in_a_view_change_never_commits() {
    let setup = Setup::equal(4);
    let world = World::new(0, &setup);
    let lowest = (0..4)
        .min_by_key(|&i| world.nodes[i].key.address())
        .expect("validators");
    let primary = leaders(&setup, 1, 1, Behaviour::Honest)[0].0;
    assert_ne!(lowest, primary, "the forger must not be round 1's primary");
    let mut world = network(62, &setup, &[(lowest, Behaviour::SwapBodies)]);
    world.run_until(1_000);
    stall_commits(&mut world, 1_500);
    assert_live(&mut world, 30_000, 20);
    assert!(
        world.attacks("swapped view change") > 0,
        "no view change with bodies was swapped: {}",
        world.summary()
    );
    assert_every_committed_tx_signed(&world);
}

/// A validator that fell behind catches up from peers, one of them (a full node) serving
/// every block with its body swapped for the theft. The node refuses those replies, asks again (another
/// peer answers), and ends with the same chain as everyone else.
///
/// Mutation caught: without the body check on fetched blocks (certificate only), the node
/// commits the swapped block and the whole-block agreement check fails.
#[test]
fn body_swap_in_a_catch_up_reply_is_refused() {
    let (world, _) = catch_up_past(63, Behaviour::SwapBodies);
    assert!(
        world.attacks("swapped catch-up reply") > 0,
        "no catch-up reply was swapped: {}",
        world.summary()
    );
    assert_every_committed_tx_signed(&world);
}

/// Wrong catch-up replies of every kind (a body swapped, a certificate of another height,
/// cut short, reversed, starting at the wrong height) from one peer: the node behind still
/// reaches the head with the agreed chain.
///
/// Mutation caught: without the body check on fetched blocks (certificate only), the node
/// commits the reply whose body was swapped and the ledger refuses to execute it.
#[test]
fn wrong_truncated_and_reordered_catch_up_replies_are_refused() {
    let (world, _) = catch_up_past(64, Behaviour::BadSync);
    assert!(
        world.attacks("bad catch-up reply") > 0,
        "no bad catch-up reply was served: {}",
        world.summary()
    );
    assert_every_committed_tx_signed(&world);
}

/// Node 0 is down for 8 s while the validators commit under load; node 4, a full node
/// that is not a validator, follows the chain with `behaviour`. Node 0 then restarts and
/// must catch up (for its first 2 s only node 4 answers its requests, then every peer
/// does) and go on committing.
fn catch_up_past(seed: u64, behaviour: Behaviour) -> (World, u64) {
    let mut setup = Setup::equal(4);
    setup.outsiders = 1;
    let mut world = network(seed, &setup, &[(4, behaviour)]);
    world.run_until(500);
    world.crash(0);
    world.run_until(8_500);
    let behind = world.nodes[2].height() - world.nodes[0].height();
    // At first only node 4 answers node 0's requests; then every peer does.
    world.sync_servers = Some(vec![4]);
    world.restart(0);
    world.run_until(world.now + 2_000);
    world.sync_servers = None;
    assert_live(&mut world, 30_000, 10);
    assert!(behind > 20, "node 0 fell only {behind} blocks behind");
    (world, behind)
}
