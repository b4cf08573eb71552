//! Lost messages are fetched, not waited out: a validator that missed a pre-prepare asks a
//! voter for it, and one that missed the new view that began a round asks a validator
//! already in it, so neither costs a view change.

use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;

use almagill::certificate::{Certificate, Phase, Signed, VoteTarget};
use almagill::consensus::{
    CheckpointTarget, Input, Message, Mode, Target, Timer, TimerKind, ViewChange,
};
use almagill::crypto::Hash;
use almagill::ledger::Ledger;

use crate::adversaries::{assert_live, leaders, max_honest_round, network, run_checking};
use crate::byzantine::Behaviour;
use crate::sim::{Setup, World, CHAIN};

/// The node that leads none of `views` in round 0 and is not round 1's primary.
fn bystander(setup: &Setup, views: &[u64]) -> usize {
    let busy: Vec<usize> = views
        .iter()
        .chain(&[1])
        .map(|&v| leaders(setup, v, 1, Behaviour::Honest)[0].0)
        .collect();
    (0..4).find(|i| !busy.contains(i)).expect("a bystander")
}

/// Node `v` misses the first pre-prepare of each of heights 5 to 12 (a fetched copy gets
/// through). It fetches each from a voter and commits with the others, and no node ever
/// leaves round 0.
///
/// Mutation caught: without `ask_for_missing_proposal`, node `v`'s view timer runs out at
/// height 5 and it moves to round 1.
#[test]
fn lost_pre_prepare_is_fetched_without_a_view_change() {
    let setup = Setup::equal(4);
    let v = bystander(&setup, &[]);
    let mut world = network(71, &setup, &[]);
    let lost = Rc::new(Cell::new(0u32));
    let counter = lost.clone();
    let mut seen = HashSet::new();
    world.lose = Some(Box::new(move |_, to, message| {
        let Message::PrePrepare { proposal, .. } = message else {
            return false;
        };
        let height = proposal.header.height;
        let first = to == v && (5..=12).contains(&height) && seen.insert(height);
        if first {
            counter.set(counter.get() + 1);
        }
        first
    }));
    run_checking(&mut world, 5_000, |w| {
        assert_eq!(
            w.nodes[v].pbft.round(),
            0,
            "node {v} changed view: {}",
            w.summary()
        );
        assert_eq!(max_honest_round(w), 0, "a view changed: {}", w.summary());
    });
    assert!(
        lost.get() >= 6,
        "only {} pre-prepares were lost",
        lost.get()
    );
    assert!(world.nodes[v].height() > 12, "{}", world.summary());
    world.assert_chains_agree();
}

/// Every pre-prepare for height 3 in round 0 is lost, so the network moves to round 1; node
/// `v` then misses round 1's new view (and its own view change for round 1 is lost, so no
/// validator sends it the new view unasked). Votes of round 1 show it the round began; it
/// fetches the new view and joins, never asking for round 2.
///
/// Mutation caught: without the fetch (a node waiting in view-change mode does not ask for
/// the new view of its own round), node `v`'s timer runs out and it moves to round 2.
#[test]
fn lost_new_view_is_fetched_without_another_view_change() {
    lost_new_view_run(1);
}

/// A validator waiting for round 1's new view, with view changes for round 1 from a quorum,
/// sees another validator vote in round 1 (so the round began and its new view was lost).
/// When its view timer runs out, it asks the primary for the new view again and stays in
/// round 1, rather than ask for round 2.
///
/// Mutation caught: with the `round_began` arm of `on_timeout` removed, the timer moves the
/// node to round 2.
#[test]
fn lost_new_view_is_asked_for_again_at_the_view_timeout() {
    let setup = Setup::equal(4);
    let mut world = World::new(0, &setup);
    let primary = leaders(&setup, 1, 1, Behaviour::Honest)[0].0;
    let v = (0..4).find(|&i| i != primary).expect("a backup");
    let others: Vec<usize> = (0..4).filter(|&i| i != v).collect();
    let checkpoint = Certificate {
        payload: CheckpointTarget {
            height: 0,
            state_root: Ledger::from_genesis(&world.genesis).state_root(),
        },
        votes: Vec::new(),
    };
    let timer = Cell::new(Timer {
        kind: TimerKind::View,
        generation: 1,
    });
    // Each step into v's core; the latest setting of its view timer is kept.
    let step = |world: &mut World, input: Input, now: u64| {
        let actions = world.nodes[v].pbft.step(input, now);
        if let Some((t, _)) = actions
            .timers
            .iter()
            .find(|(t, _)| t.kind == TimerKind::View)
        {
            timer.set(*t);
        }
        actions
    };
    // Round 0 times out: v asks for round 1, and so do two others.
    step(&mut world, Input::Timeout(timer.get()), 400);
    assert_eq!(world.nodes[v].pbft.round(), 1);
    for &i in others.iter().filter(|&&i| i != primary) {
        let key = &world.nodes[i].key;
        let view_change = ViewChange {
            round: 1,
            checkpoint: checkpoint.clone(),
            prepared: Vec::new(),
        };
        let message = Message::ViewChange {
            view_change: Signed::sign(view_change, key, CHAIN),
            bodies: Vec::new(),
        };
        let from = key.address();
        step(&mut world, Input::Message { from, message }, 410);
    }
    // The primary votes in round 1: the round began without v.
    let key = world.nodes[primary].key.clone();
    let vote = VoteTarget {
        phase: Phase::Prepare,
        height: 1,
        view: 2,
        digest: Hash([1; 32]),
    };
    let message = Message::Vote(Signed::sign(vote, &key, CHAIN));
    step(
        &mut world,
        Input::Message {
            from: key.address(),
            message,
        },
        420,
    );
    let actions = step(&mut world, Input::Timeout(timer.get()), 2_000);
    assert_eq!(world.nodes[v].pbft.round(), 1, "node {v} left round 1");
    assert!(actions.messages.iter().any(|(to, m)| {
        *to == Target::One(key.address()) && matches!(m, Message::FetchNewView { round: 1 })
    }));
}

/// Loses round 0's pre-prepares for height 3, node `v`'s own round-1 view change, and the
/// first `copies` copies of round 1's new view sent to `v`; checks that `v` joins round 1
/// and never asks for round 2, and that the network goes on.
fn lost_new_view_run(copies: u32) {
    let setup = Setup::equal(4);
    let v = bystander(&setup, &[3, 4, 5]);
    let mut world = network(72, &setup, &[]);
    let lost = Rc::new(Cell::new(0u32));
    let counter = lost.clone();
    world.lose = Some(Box::new(move |from, to, message| match message {
        Message::PrePrepare { proposal, .. } => {
            proposal.header.height == 3 && proposal.header.view == 3
        }
        Message::ViewChange { view_change, .. } => from == v && view_change.payload.round == 1,
        Message::NewView { new_view, .. }
            if to == v && new_view.payload.round == 1 && counter.get() < copies =>
        {
            counter.set(counter.get() + 1);
            true
        }
        _ => false,
    }));
    run_checking(&mut world, 6_000, |w: &World| {
        assert!(
            w.nodes[v].pbft.round() <= 1,
            "node {v} asked for round 2: {}",
            w.summary()
        );
    });
    assert_eq!(
        lost.get(),
        copies,
        "round 1's new view reached node {v} too rarely"
    );
    assert_eq!(world.nodes[v].pbft.round(), 1);
    assert_eq!(world.nodes[v].pbft.mode(), Mode::Normal);
    assert_live(&mut world, 10_000, 5);
}
