//! Leader reputation's rules: who is blamed for a round that ended, who is passed over and
//! for how long, at most a third of stake passed over, and where a skipped view goes.

mod common;

use almagill::consensus::LeaderSchedule;
use almagill::crypto::Address;
use almagill::reputation::{self, Blames, MEMORY, WINDOW};
use almagill::validators::{Validator, ValidatorSet};
use common::address;

fn four() -> ValidatorSet {
    ValidatorSet::new(
        (1..=4)
            .map(|s| Validator {
                address: address(s),
                stake: 10,
            })
            .collect(),
    )
    .unwrap()
}

fn blames(entries: &[(u64, Address)]) -> Blames {
    Blames {
        top_round: 0,
        blamed: entries.to_vec(),
    }
}

/// Each round that ended before a block's first proposal, above the highest round so far,
/// is blamed on the validator that should have proposed that block in it; a block of the
/// same round or of a lower one (carried over by a new view) blames none.
///
/// Mutation caught: rounds counted from the block just below rather than the highest so
/// far — the block of round 2 above one carried over from round 0 blames rounds 0 and 1
/// again.
#[test]
fn the_leaders_of_ended_rounds_are_blamed() {
    let set = four();
    let schedule = LeaderSchedule::new(&set);
    let mut b = Blames::default();
    assert!(b.record(1, 1, Some(&set), 10).is_empty(), "round 0");
    // Height 2 first proposed in round 2: rounds 0 and 1 ended at height 2.
    let blamed = b.record(2, 4, Some(&set), 10);
    assert_eq!(blamed, vec![schedule.leader(2), schedule.leader(3)]);
    assert!(b.record(3, 5, Some(&set), 10).is_empty(), "still round 2");
    assert!(b.record(4, 4, Some(&set), 10).is_empty(), "carried over");
    assert!(b.record(5, 7, Some(&set), 10).is_empty(), "round 2 again");
    assert_eq!(b.blamed.len(), 2);
    assert_eq!(b.top_round, 2);
}

/// A validator blamed `n` times is passed over for a window doubled by each blame after the
/// first, counted from its last blame, then leads again; blames older than the memory do not
/// count.
#[test]
fn the_more_blamed_are_passed_over_longer() {
    let set = four();
    let (one, two) = (address(1), address(2));
    let b = blames(&[(100, one), (150, two), (160, two)]);
    assert_eq!(b.skipped(99, &set), Vec::<Address>::new(), "not yet blamed");
    assert_eq!(b.skipped(100, &set), vec![one]);
    // Two is blamed twice (more): first; but one and two together hold half the stake.
    assert_eq!(b.skipped(160, &set), vec![two]);
    assert_eq!(
        b.skipped(100 + WINDOW, &set),
        vec![two],
        "one's single window is over"
    );
    assert_eq!(b.skipped(160 + 2 * WINDOW - 1, &set), vec![two]);
    assert!(
        b.skipped(160 + 2 * WINDOW, &set).is_empty(),
        "two's two windows are over"
    );
    let thrice = blames(&[(100, one), (200, one), (300, one)]);
    assert_eq!(thrice.skipped(300 + 4 * WINDOW - 1, &set), vec![one]);
    assert!(
        thrice.skipped(300 + 4 * WINDOW, &set).is_empty(),
        "three blames: four windows"
    );
    assert_eq!(reputation::pass_over(30), MEMORY, "at most the memory");
    let many: Vec<(u64, Address)> = (1..=20).map(|h| (h, one)).collect();
    assert!(
        blames(&many).skipped(20 + MEMORY, &set).is_empty(),
        "forgotten"
    );
}

/// Mutation caught: the third-of-stake bound dropped — two of four equal validators are
/// passed over.
#[test]
fn at_most_a_third_of_stake_is_passed_over() {
    let set = four();
    let b = blames(&[(10, address(1)), (11, address(2)), (12, address(3))]);
    assert_eq!(b.skipped(12, &set).len(), 1);
    // One validator with most of the stake is never passed over.
    let heavy = ValidatorSet::new(vec![
        Validator {
            address: address(1),
            stake: 90,
        },
        Validator {
            address: address(2),
            stake: 10,
        },
    ])
    .unwrap();
    assert!(blames(&[(10, address(1))]).skipped(10, &heavy).is_empty());
}

#[test]
fn a_skipped_view_goes_to_the_next_entry_not_skipped() {
    let set = four();
    let schedule = LeaderSchedule::new(&set);
    for view in 0..16 {
        let plain = schedule.leader(view);
        assert_eq!(reputation::leader(&schedule, view, &[]), plain);
        let chosen = reputation::leader(&schedule, view, &[plain]);
        assert_ne!(chosen, plain);
        assert_eq!(
            chosen,
            schedule.leader(view + 1),
            "four equal validators alternate"
        );
    }
}

/// A leader that failed a height does not lead it again in the next round, even where the
/// rotation would give it that view too (here it had the view of a validator passed over,
/// and then its own); its block blames it, as the leaders were computed.
///
/// Mutation caught: `leaders` ignoring the failed turns — the same validator leads height
/// 10 in rounds 0 and 1 (seen in the random sweep: a silent validator led one height in
/// five rounds out of seven, with the timeouts doubling, and the chain stopped).
#[test]
fn a_leader_that_failed_a_height_does_not_lead_it_next_round() {
    let set = four();
    let schedule = LeaderSchedule::new(&set);
    let passed_over = schedule.leader(10);
    let b = blames(&[(5, passed_over)]);
    let leaders = b.leaders(&schedule, &set, 10, 1, 9);
    let (first, second) = (schedule.leader(11), schedule.leader(12));
    assert_eq!(leaders, vec![first, second]);
    let mut recorded = b.clone();
    assert_eq!(recorded.record(10, 11, Some(&set), 10), vec![first]);
}

/// A dead validator fails one turn: its blame, recorded at the block that the next round
/// proposed, counts for every height above, so it is passed over from there on, for one
/// window.
#[test]
fn a_dead_validator_fails_one_turn() {
    let set = four();
    let schedule = LeaderSchedule::new(&set);
    let dead = schedule.leader(10);
    let mut b = Blames::default();
    let (mut round, mut failed) = (0, 0);
    for height in 1..=100 {
        loop {
            let leaders = b.leaders(&schedule, &set, height, round, height - 1);
            if height < 10 || leaders.last() != Some(&dead) {
                break;
            }
            round += 1;
            failed += 1;
        }
        b.record(height, height + round, Some(&set), 10);
    }
    assert_eq!(failed, 1);
    assert_eq!(b.blamed, vec![(10, dead)]);
    assert_eq!(b.skipped(10 + WINDOW - 1, &set), vec![dead]);
    assert!(b.skipped(10 + WINDOW, &set).is_empty(), "one window");
}

/// Blames are kept only as long as some height still in the window may ask about them.
#[test]
fn old_blames_are_forgotten_as_blocks_execute() {
    let set = four();
    let mut b = Blames::default();
    b.record(5, 7, Some(&set), 10);
    assert_eq!(b.blamed.len(), 2);
    let last = 5 + reputation::kept(10);
    // Later blocks in round 0, which blame nobody.
    b.record(last - 1, last - 1, Some(&set), 10);
    assert_eq!(b.blamed.len(), 2, "still within reach");
    b.record(last, last, Some(&set), 10);
    assert!(b.blamed.is_empty());
}
