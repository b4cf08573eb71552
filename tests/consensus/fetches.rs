//! Lost messages are fetched, not waited out: a validator that missed a pre-prepare asks a
//! voter for it, and one that missed the new view that began a round asks a validator
//! already in it, so neither costs a view change.

use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;

use almagill::consensus::{Message, Mode};

use crate::adversaries::{assert_live, leaders, max_honest_round, network, run_checking};
use crate::byzantine::Behaviour;
use crate::sim::{Setup, World};

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
/// validator sends it the new view unasked). Votes of round 1 show it the round began; it fetches
/// the new view and joins, never asking for round 2.
///
/// Mutation caught: without the fetch (a node waiting in view-change mode does not ask for
/// the new view of its own round), node `v`'s timer runs out and it moves to round 2.
#[test]
fn lost_new_view_is_fetched_without_another_view_change() {
    let setup = Setup::equal(4);
    let v = bystander(&setup, &[3]);
    let mut world = network(72, &setup, &[]);
    let lost = Rc::new(Cell::new(0u32));
    let counter = lost.clone();
    let mut lost_new_view = false;
    world.lose = Some(Box::new(move |from, to, message| match message {
        Message::PrePrepare { proposal, .. } => {
            proposal.header.height == 3 && proposal.header.view == 3
        }
        // Node v's own view change is lost too, so no one hands it the new view unasked.
        Message::ViewChange { view_change, .. } => from == v && view_change.payload.round == 1,
        Message::NewView { new_view, .. } if to == v && !lost_new_view => {
            lost_new_view = new_view.payload.round == 1;
            if lost_new_view {
                counter.set(1);
            }
            lost_new_view
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
    assert_eq!(lost.get(), 1, "round 1's new view never reached node {v}");
    assert_eq!(world.nodes[v].pbft.round(), 1);
    assert_eq!(world.nodes[v].pbft.mode(), Mode::Normal);
    assert_live(&mut world, 10_000, 5);
}
