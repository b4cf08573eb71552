//! Full nodes: a node whose key is in no validator set (it never staked, or it unstaked and
//! left at an epoch boundary), or that has no key at all, follows the chain. It never votes
//! or proposes; its view timer never stops, and on each one it asks peers for the blocks
//! above its height, so it keeps up even when none of the validators' messages reach it in
//! a form it can use.

use std::cell::Cell;
use std::rc::Rc;

use almagill::consensus::{Config, Input, Message, Pbft, Restored, TimerKind};
use almagill::ledger::Ledger;
use almagill::tx::{TxBody, TxKind};

use crate::scenarios::assert_progress;
use crate::sim::{Setup, World, CHAIN};

/// The highest height any node has committed.
fn head(world: &World) -> u64 {
    world.nodes.iter().map(|n| n.height()).max().unwrap_or(0)
}

/// Five times over, every honest node (the full node among them) must pass the head of the
/// moment within two seconds of virtual time: it follows the chain, not merely catches up
/// once. Whole blocks are compared on every commit, as everywhere in the simulator.
fn keeps_following(world: &mut World) {
    for _ in 0..5 {
        let (at, deadline) = (head(world), world.now + 2_000);
        assert_progress(world, deadline, at);
    }
}

/// A node with no stake that hears no consensus message at all (every one sent to it is
/// lost) still follows the head, from genesis and again after a crash: its view timer
/// keeps running and each time asks peers for blocks, whose certificates it checks. No
/// certificate it holds carries its signature.
///
/// Mutation caught: without the non-validator arm of `on_timeout` (or with the core fix
/// reverted whole), the full node stays at height 0 ("no progress ... needed above 0").
#[test]
fn non_validator_follows_the_head_by_asking_for_blocks() {
    let mut setup = Setup::equal(4);
    setup.outsiders = 1;
    let full = 4;
    let mut world = World::new(61, &setup);
    world.start_workload(100);
    world.lose = Some(Box::new(move |_, to, _| to == full));
    keeps_following(&mut world);
    world.crash(full);
    let down_at = world.now;
    world.run_until(down_at + 1_500);
    world.restart(full);
    keeps_following(&mut world);
    world.assert_chains_agree();
    world.assert_certificates_valid(full);
    let me = world.nodes[full].key.address();
    assert!(
        world.nodes[full]
            .chain
            .iter()
            .all(|(_, c, _)| c.votes.iter().all(|(signer, _)| *signer != me)),
        "the full node signed a certificate"
    );
    assert!(world.nodes[full].height() > 50, "{}", world.summary());
}

/// Validator 4 of five unstakes everything and leaves the set at the epoch boundary. It is
/// then down while another validator is down too, so the others change view without it;
/// it restarts in a round that is not theirs, and every checkpoint vote sent to it from
/// then on is lost. It follows the head, and signs nothing after it left.
///
/// Mutation caught: without the non-validator arm of `on_timeout` (or with the core fix
/// reverted whole), the restarted node stays at height 86, where it restarted, while the
/// validators pass 140 ("no progress ... needed above 86").
#[test]
fn validator_that_unstakes_and_restarts_follows_the_head() {
    let setup = Setup::equal(5);
    let (leaver, other) = (4, 1);
    let mut world = World::new(62, &setup);
    world.start_workload(100);
    let key = world.nodes[leaver].key.clone();
    let unstake = TxBody {
        from: key.address(),
        nonce: 0,
        kind: TxKind::Unstake {
            amount: setup.stakes[leaver],
        },
    }
    .sign(&key, CHAIN);
    world.submit(unstake);
    // Its stake is gone once the epoch after next begins.
    let boundary = 2 * setup.epoch_length;
    let deadline = world.now + 10_000;
    assert_progress(&mut world, deadline, boundary + 5);
    let validators = world.nodes[0]
        .ledger
        .validators_for(boundary + 1)
        .expect("the set of the new epoch")
        .clone();
    assert_eq!(validators.members().len(), 4, "{validators:?}");
    assert!(validators.stake_of(&key.address()).is_none());

    let round = world.nodes[0].pbft.round();
    world.crash(leaver);
    world.crash(other);
    let deadline = world.now + 10_000;
    while world.nodes[0].pbft.round() <= round && world.now < deadline {
        let next = world.now + 100;
        world.run_until(next);
    }
    assert!(
        world.nodes[0].pbft.round() > round,
        "no view change: {}",
        world.summary()
    );
    world.restart(other);
    let lost = Rc::new(Cell::new(0u32));
    let counter = lost.clone();
    world.lose = Some(Box::new(move |_, to, message| {
        let checkpoint = matches!(
            message,
            Message::Checkpoint(_) | Message::CheckpointProof(_)
        );
        if to == leaver && checkpoint {
            counter.set(counter.get() + 1);
        }
        to == leaver && checkpoint
    }));
    world.restart(leaver);
    keeps_following(&mut world);
    world.assert_chains_agree();
    assert!(lost.get() > 10, "only {} checkpoint votes lost", lost.get());
    assert!(
        world.nodes[leaver].chain[boundary as usize..]
            .iter()
            .all(|(_, c, _)| c.votes.iter().all(|(signer, _)| *signer != key.address())),
        "node {leaver} signed a certificate after it left"
    );
}

/// A core with no key at all: its view timer never stops, each expiry asks for the blocks
/// above its height, and it sends, records and proposes nothing.
///
/// Mutation caught: without the non-validator arm of `on_timeout`, no expiry asks for
/// blocks; without the `follow` at the end of `Pbft::new`, the start asks for none.
#[test]
fn core_without_a_key_keeps_its_timer_and_asks_for_blocks() {
    let world = World::new(63, &Setup::equal(4));
    let mut ledger = Ledger::from_genesis(&world.genesis);
    let config = Config {
        chain_id: CHAIN.into(),
        key: None,
        params: world.genesis.consensus.clone(),
        epoch_length: world.genesis.epoch_length,
        genesis_state_root: ledger.state_root(),
        verified: Default::default(),
    };
    let restored = Restored {
        committed: 0,
        last_hash: world.genesis.hash(),
        last_timestamp_ms: world.genesis.genesis_time_ms,
        validators: ledger
            .validator_epochs()
            .map(|(e, v)| (e, v.clone()))
            .collect(),
        blames: ledger.blames().clone(),
        records: Vec::new(),
    };
    let (mut pbft, mut actions) = Pbft::new(config, restored, 0);
    let mut now = 0;
    for _ in 0..5 {
        assert!(actions.messages.is_empty() && actions.persist.is_empty());
        assert!(actions.batch_request.is_none());
        assert_eq!(actions.sync_request.map(|(from, _)| from), Some(1));
        let (timer, after) = actions
            .timers
            .iter()
            .find(|(t, _)| t.kind == TimerKind::View)
            .copied()
            .expect("the view timer is set");
        now += after;
        actions = pbft.step(Input::Timeout(timer), now);
    }
}
