//! Stake arithmetic at the extremes: the leader schedule and the quorum checks are total
//! for every validator set that can be built (stakes up to the supply cap, and beyond it up
//! to what u128 holds), and a genesis or a stake at the supply cap runs without a panic.
//!
//! Run with overflow checks on (the test profile has them, like release builds), so any
//! overflow would fail these tests as a panic.

mod common;

use almagill::amount::Amount;
use almagill::consensus::LeaderSchedule;
use almagill::crypto::Address;
use almagill::genesis::MAX_SUPPLY;
use almagill::ledger::{Ledger, TxError};
use almagill::tx::TxKind;
use almagill::validators::{Validator, ValidatorSet};
use common::{address, genesis, signed, MIN_STAKE};
use proptest::collection::vec;
use proptest::prelude::*;

/// `floor(stake * 64 / total)` computed exactly for any `stake <= total` (no shift, no
/// overflow): six steps of binary long division of `stake / total`.
fn exact_share(stake: Amount, total: Amount) -> Amount {
    assert!(0 < stake && stake <= total);
    if stake == total {
        return 64;
    }
    let (mut share, mut rest) = (0, stake);
    for _ in 0..6 {
        share *= 2;
        // rest < total; doubling it may not fit, so compare `rest >= total - rest` instead.
        if rest >= total - rest {
            share += 1;
            rest -= total - rest;
        } else {
            rest *= 2;
        }
    }
    share
}

/// `k * x` as a (high, low) pair of u128 words, for small `k`: an exact reference for
/// comparisons whose products do not fit in u128.
fn wide_mul(x: Amount, k: u64) -> (u128, u128) {
    let k = u128::from(k);
    let (hi, lo) = (x >> 64, x & u128::from(u64::MAX));
    // hi * k and lo * k each fit in 66 bits.
    let (low, carry) = ((hi * k) << 64).overflowing_add(lo * k);
    (((hi * k) >> 64) + u128::from(carry), low)
}

/// One stake, with the edges well represented: 1, the supply cap, near `u128::MAX / 64`
/// (where a plain `stake * 64` starts to overflow), and anything in between.
fn arb_stake() -> impl Strategy<Value = Amount> {
    prop_oneof![
        Just(1),
        1u128..=1_000,
        Just(MAX_SUPPLY),
        (MAX_SUPPLY - 1_000)..=MAX_SUPPLY,
        (u128::MAX / 64 - 1_000)..=(u128::MAX / 64 + 1_000),
        1u128..=MAX_SUPPLY,
        any::<u128>(),
    ]
}

/// A validator set of 1 to 12 validators from [`arb_stake`], trimmed in order so the total
/// is at most `cap` (each later validator keeps at least 1), with distinct addresses.
fn arb_set(cap: Amount) -> impl Strategy<Value = ValidatorSet> {
    vec(arb_stake(), 1..=12).prop_map(move |stakes| {
        let n = stakes.len() as u128;
        let mut left = cap;
        let members: Vec<Validator> = stakes
            .into_iter()
            .enumerate()
            .map(|(i, stake)| {
                let later = n - 1 - i as u128;
                let stake = stake.clamp(1, left - later);
                left -= stake;
                Validator {
                    address: Address([i as u8 + 1; 32]),
                    stake,
                }
            })
            .collect();
        ValidatorSet::new(members).expect("non-empty, total within u128")
    })
}

/// Checks every property of the schedule for `set`: entries per validator are its exact
/// share of 64 (at least 1) give or take one, every validator leads, the cycle has `n` to
/// `64 + n` entries, more stake never means fewer entries, and `leader` agrees with the
/// cycle for any view.
fn check_schedule(set: &ValidatorSet) -> Result<(), TestCaseError> {
    let schedule = LeaderSchedule::new(set);
    let cycle = schedule.cycle();
    let n = set.len();
    prop_assert!(
        n <= cycle.len() && cycle.len() <= 64 + n,
        "{} entries for {} validators",
        cycle.len(),
        n
    );
    let total = set.total_stake();
    let counts: Vec<(Amount, usize)> = set
        .members()
        .iter()
        .map(|v| (v.stake, cycle.iter().filter(|a| **a == v.address).count()))
        .collect();
    prop_assert_eq!(counts.iter().map(|(_, c)| c).sum::<usize>(), cycle.len());
    for &(stake, count) in &counts {
        prop_assert!(count >= 1, "a validator staking {} never leads", stake);
        let share = exact_share(stake, total).max(1) as usize;
        prop_assert!(
            count.abs_diff(share) <= 1,
            "stake {} of {}: {} entries, exact share {}",
            stake,
            total,
            count,
            share
        );
    }
    for &(big, big_count) in &counts {
        for &(small, small_count) in &counts {
            if big > small {
                prop_assert!(
                    big_count >= small_count,
                    "stake {} has {} entries, stake {} has {}",
                    big,
                    big_count,
                    small,
                    small_count
                );
            }
        }
    }
    for view in [0, 1, 63, 64, 65, 1_000_003, u64::MAX - 1, u64::MAX] {
        prop_assert_eq!(
            schedule.leader(view),
            cycle[(view % cycle.len() as u64) as usize]
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// For sets whose total is at most the supply cap (everything a genesis and a ledger
    /// can produce), `LeaderSchedule::new` does not panic and the schedule keeps its
    /// meaning: see [`check_schedule`].
    ///
    /// mutation: `stake * 64 / total` without the shift overflows for stakes above
    /// u128::MAX/64 — caught (the test panics with "attempt to multiply with overflow").
    #[test]
    fn leader_schedule_total_for_extreme_stakes(set in arb_set(MAX_SUPPLY)) {
        check_schedule(&set)?;
    }

    /// The same for any set that can be built at all, up to a total of `u128::MAX`: the
    /// schedule does not rely on the supply cap.
    #[test]
    fn leader_schedule_total_beyond_the_supply_cap(set in arb_set(u128::MAX)) {
        check_schedule(&set)?;
    }

    /// `is_quorum` is exactly `3 * weight > 2 * total` and `has_honest` exactly
    /// `3 * weight > total`, computed here in wide arithmetic, for any total u128 holds and
    /// any weight (the set's own products would not fit).
    ///
    /// mutation: `3 * weight > 2 * self.total` in `is_quorum` overflows for totals above
    /// u128::MAX/2 — caught.
    #[test]
    fn quorum_checks_exact_for_any_total(
        set in prop_oneof![arb_set(MAX_SUPPLY), arb_set(u128::MAX)],
        weight in prop_oneof![any::<u128>(), Just(u128::MAX), Just(0u128)],
        near in -3i64..=3,
        fraction in prop_oneof![Just(0u8), Just(1u8), Just(2u8), Just(3u8)],
    ) {
        let total = set.total_stake();
        // Weights right at a third and two thirds of the total, where the checks flip.
        let at = |base: Amount| base.saturating_add_signed(i128::from(near));
        for w in [weight, at(total / 3 * u128::from(fraction.min(2))), at(total / 3 * 2 + total % 3), at(total)] {
            prop_assert_eq!(set.is_quorum(w), wide_mul(w, 3) > wide_mul(total, 2), "w {} S {}", w, total);
            prop_assert_eq!(set.has_honest(w), wide_mul(w, 3) > wide_mul(total, 1), "w {} S {}", w, total);
        }
    }
}

/// A genesis whose one validator stakes the whole supply cap validates, and the ledger, its
/// validator sets and their leader schedules build without a panic; so does one where a
/// validator holds all but one unit of the cap next to a validator staking just one unit.
#[test]
fn genesis_at_the_supply_cap_builds_a_schedule() {
    let g = genesis(&[(1, 0, MAX_SUPPLY)]);
    assert_eq!(g.supply(), MAX_SUPPLY);
    let ledger = Ledger::from_genesis(&g);
    assert_eq!(ledger.genesis_supply(), MAX_SUPPLY);
    let set = ledger.validators_for(1).expect("the genesis set");
    assert_eq!(set.total_stake(), MAX_SUPPLY);
    assert!(set.is_quorum(MAX_SUPPLY) && set.has_honest(MAX_SUPPLY));
    assert!(!set.is_quorum(MAX_SUPPLY / 3 * 2));
    let schedule = LeaderSchedule::new(set);
    assert_eq!(schedule.cycle(), &[address(1); 64][..]);
    assert_eq!(schedule.leader(u64::MAX), address(1));

    // The cap split as unevenly as possible between two validators.
    let mut g = genesis(&[(1, 0, MIN_STAKE), (2, 0, MIN_STAKE)]);
    g.accounts[0].stake = MAX_SUPPLY - MIN_STAKE;
    assert_eq!(g.validate(), Ok(()));
    let ledger = Ledger::from_genesis(&g);
    let schedule = LeaderSchedule::new(ledger.validators_for(1).expect("the genesis set"));
    assert_eq!((entries(&schedule, 1), entries(&schedule, 2)), (63, 1));
}

/// How many entries of `schedule`'s cycle belong to [`address`]`(seed)`.
fn entries(schedule: &LeaderSchedule, seed: u8) -> usize {
    schedule
        .cycle()
        .iter()
        .filter(|a| **a == address(seed))
        .count()
}

/// A Stake transaction that brings a validator's stake to the supply cap less the other
/// validator's minimum stake applies without a panic, and the validator set it makes
/// eligible (the one the next epoch change fixes) builds a schedule led almost always by
/// that validator.
#[test]
fn staking_up_to_the_supply_cap_applies_and_the_schedule_builds() {
    let mut g = genesis(&[(1, 0, MIN_STAKE), (2, 0, MIN_STAKE)]);
    g.accounts[0].balance = MAX_SUPPLY - 2 * MIN_STAKE;
    assert_eq!(g.validate(), Ok(()));
    assert_eq!(g.supply(), MAX_SUPPLY);
    let mut ledger = Ledger::from_genesis(&g);
    let amount = MAX_SUPPLY - 2 * MIN_STAKE;
    assert_eq!(
        ledger.apply_tx(&signed(1, 0, TxKind::Stake { amount })),
        Ok(())
    );
    let account = *ledger.account(&address(1)).expect("exists");
    assert_eq!(
        (account.balance, account.stake),
        (0, MAX_SUPPLY - MIN_STAKE)
    );
    assert_eq!(ledger.total_supply(), MAX_SUPPLY);
    // Unstaking and staking it all again round-trips at the cap.
    assert_eq!(
        ledger.apply_tx(&signed(1, 1, TxKind::Unstake { amount })),
        Ok(())
    );
    assert_eq!(
        ledger.apply_tx(&signed(1, 2, TxKind::Stake { amount })),
        Ok(())
    );

    let set = ledger.eligible_validators().expect("two validators");
    assert_eq!(set.total_stake(), MAX_SUPPLY);
    assert_eq!(set.stake_of(&address(1)), Some(MAX_SUPPLY - MIN_STAKE));
    assert!(set.is_quorum(MAX_SUPPLY - MIN_STAKE));
    assert!(!set.is_quorum(MIN_STAKE) && !set.has_honest(MIN_STAKE));
    let schedule = LeaderSchedule::new(&set);
    assert_eq!((entries(&schedule, 1), entries(&schedule, 2)), (63, 1));
}

/// A genesis document that was never validated can hold more than u128 in all. Nothing built
/// from it panics: its supply saturates, a validator set whose stakes would overflow is not
/// built, and a Stake or a transfer whose credit would overflow is refused, changing
/// nothing. (`validate` refuses such a document; this is the ledger's own guard.)
///
/// mutation: `sender.stake += amount` in the ledger's Stake overflows here — caught.
#[test]
fn unvalidated_genesis_past_u128_never_panics() {
    let g = common::builder(&[(1, u128::MAX, u128::MAX - 5), (2, 10, u128::MAX)]).unchecked();
    assert!(g.validate().is_err());
    assert_eq!(g.supply(), u128::MAX);
    assert_eq!(g.validator_set(), None);
    let mut ledger = Ledger::from_genesis(&g);
    assert_eq!(ledger.total_supply(), u128::MAX);
    assert_eq!(ledger.eligible_validators(), None);
    let root = ledger.state_root();
    assert_eq!(
        ledger.apply_tx(&signed(1, 0, TxKind::Stake { amount: 6 })),
        Err(TxError::InsufficientFunds {
            available: u128::MAX,
            needed: 6
        })
    );
    assert_eq!(
        ledger.apply_tx(&signed(
            2,
            0,
            TxKind::Transfer {
                to: address(1),
                amount: 1
            }
        )),
        Err(TxError::InsufficientFunds {
            available: 10,
            needed: 1
        })
    );
    assert_eq!(
        ledger.apply_tx(&signed(2, 0, TxKind::Unstake { amount: u128::MAX })),
        Err(TxError::InsufficientFunds {
            available: u128::MAX,
            needed: u128::MAX
        })
    );
    assert_eq!(ledger.state_root(), root);
    // What does fit still applies.
    assert_eq!(
        ledger.apply_tx(&signed(1, 0, TxKind::Stake { amount: 5 })),
        Ok(())
    );
}
