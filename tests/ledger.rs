//! The ledger: random transaction histories (valid and invalid) keep the supply fixed,
//! nonces sequential and failures inert; state roots are a function of the accounts; and
//! validator sets change only at the epoch boundaries the rules give, as every block's
//! outcome, the list of known sets and the set for each height all agree.

mod common;

use std::collections::BTreeMap;

use almagill::amount::Amount;
use almagill::crypto::{Address, Hash};
use almagill::genesis::Genesis;
use almagill::ledger::{Account, BlockOutcome, Ledger, LedgerError, RootParts, TxError};
use almagill::tx::{Transaction, TxFormatError, TxKind};
use almagill::validators::{Validator, ValidatorSet};
use common::{address, block, genesis, signed, test_genesis, EPOCH_LENGTH, MIN_STAKE};
use proptest::collection::vec;
use proptest::prelude::*;

type Accounts = BTreeMap<Address, Account>;

/// Seeds of the keys random transactions come from: 1 to 4 exist at genesis (1 to 3 as
/// validators), 5 to 7 can be created, and 8 is never funded so may stay unknown.
const SEEDS: std::ops::RangeInclusive<u8> = 1..=8;

/// Every account, in address order.
fn snapshot(ledger: &Ledger) -> Accounts {
    ledger.accounts().map(|(a, acc)| (*a, *acc)).collect()
}

/// Which nonce a random transaction carries.
#[derive(Clone, Copy, Debug)]
enum NonceChoice {
    /// The sender's next nonce (the sender's current one, 0 for an unknown sender).
    Next,
    /// The next nonce moved by a small non-zero offset: a replay or a gap.
    Off(i8),
    /// Anything at all.
    Any(u64),
}

/// How much a random transaction moves, relative to the sender's state where that helps
/// to reach the edges.
#[derive(Clone, Copy, Debug)]
enum AmountChoice {
    Zero,
    Small(u128),
    /// Exactly what is available: the balance, or the stake to unstake.
    All,
    /// One more than is available.
    AllPlusOne,
    /// Leaves (or makes) a stake one below the minimum.
    JustBelowMin,
    /// Exactly the minimum stake.
    MinStake,
    Any(u128),
}

/// A transaction to make against whatever the state is when its turn comes.
#[derive(Clone, Copy, Debug)]
struct Intent {
    sender: u8,
    nonce: NonceChoice,
    /// 0 transfer, 1 create account, 2 stake, 3 unstake.
    kind: u8,
    /// The recipient or new account's seed (may be the sender, or missing, or existing).
    target: u8,
    amount: AmountChoice,
}

fn arb_intent() -> impl Strategy<Value = Intent> {
    let nonce = prop_oneof![
        8 => Just(NonceChoice::Next),
        1 => prop_oneof![-2i8..=-1, 1i8..=2].prop_map(NonceChoice::Off),
        1 => any::<u64>().prop_map(NonceChoice::Any),
    ];
    let amount = prop_oneof![
        Just(AmountChoice::Zero),
        (1u128..2_000).prop_map(AmountChoice::Small),
        Just(AmountChoice::All),
        Just(AmountChoice::AllPlusOne),
        Just(AmountChoice::JustBelowMin),
        Just(AmountChoice::MinStake),
        prop_oneof![Just(u128::MAX), any::<u128>()].prop_map(AmountChoice::Any),
    ];
    // Mostly senders that exist (1 to 4 from genesis), sometimes ones that may not.
    let sender = prop_oneof![4 => 1u8..=4, 1 => 5u8..=8];
    (sender, nonce, 0u8..4, SEEDS, amount).prop_map(|(sender, nonce, kind, target, amount)| {
        Intent {
            sender,
            nonce,
            kind,
            target,
            amount,
        }
    })
}

/// The signed transaction `intent` describes against the ledger's current state.
fn make_tx(ledger: &Ledger, intent: Intent) -> Transaction {
    let from = address(intent.sender);
    let account = ledger.account(&from).copied().unwrap_or_default();
    let nonce = match intent.nonce {
        NonceChoice::Next => account.nonce,
        NonceChoice::Off(off) => account.nonce.wrapping_add_signed(i64::from(off)),
        NonceChoice::Any(n) => n,
    };
    let unstaking = intent.kind == 3;
    let available = if unstaking {
        account.stake
    } else {
        account.balance
    };
    let below_min = MIN_STAKE - 1;
    let amount = match intent.amount {
        AmountChoice::Zero => 0,
        AmountChoice::Small(n) => n,
        AmountChoice::All => available,
        AmountChoice::AllPlusOne => available + 1,
        AmountChoice::JustBelowMin if unstaking => account.stake.saturating_sub(below_min),
        AmountChoice::JustBelowMin => below_min.saturating_sub(account.stake).max(1),
        AmountChoice::MinStake => MIN_STAKE,
        AmountChoice::Any(n) => n,
    };
    signed(
        intent.sender,
        nonce,
        common::tx_kind(intent.kind, address(intent.target), amount),
    )
}

/// An independent statement of the rules: the accounts after `tx`, or why it fails.
fn model(state: &Accounts, min_stake: Amount, tx: &Transaction) -> Result<Accounts, TxError> {
    let body = tx.body();
    let mut sender = *state
        .get(&body.from)
        .ok_or(TxError::UnknownAccount(body.from))?;
    if body.nonce != sender.nonce {
        return Err(TxError::BadNonce {
            expected: sender.nonce,
            got: body.nonce,
        });
    }
    sender.nonce += 1;
    let amount = body.kind.amount();
    let take = |available: Amount| {
        available
            .checked_sub(amount)
            .ok_or(TxError::InsufficientFunds {
                available,
                needed: amount,
            })
    };
    let stake_ok = |stake: Amount| {
        if stake == 0 || stake >= min_stake {
            Ok(())
        } else {
            Err(TxError::BelowMinStake {
                stake,
                min: min_stake,
            })
        }
    };
    let mut next = state.clone();
    match body.kind {
        TxKind::Transfer { to, .. } => {
            let mut recipient = *state.get(&to).ok_or(TxError::UnknownAccount(to))?;
            take(sender.balance)?;
            if to != body.from {
                sender.balance -= amount;
                recipient.balance += amount;
                next.insert(to, recipient);
            }
        }
        TxKind::CreateAccount { new_account, .. } => {
            if state.contains_key(&new_account) {
                return Err(TxError::AccountExists(new_account));
            }
            sender.balance = take(sender.balance)?;
            next.insert(
                new_account,
                Account {
                    balance: amount,
                    stake: 0,
                    nonce: 0,
                },
            );
        }
        TxKind::Stake { .. } => {
            sender.balance = take(sender.balance)?;
            sender.stake += amount;
            stake_ok(sender.stake)?;
        }
        TxKind::Unstake { .. } => {
            sender.stake = take(sender.stake)?;
            sender.balance += amount;
            stake_ok(sender.stake)?;
        }
    }
    next.insert(body.from, sender);
    Ok(next)
}

/// Block sizes to cut a history into, used in turn and cyclically: empty blocks included,
/// but the last size is never zero, so cutting always gets to the end.
fn arb_block_sizes() -> impl Strategy<Value = Vec<usize>> {
    (vec(0usize..12, 0..40), 1usize..12).prop_map(|(mut sizes, last)| {
        sizes.push(last);
        sizes
    })
}

/// What one random history did, step by step.
struct History {
    txs: Vec<Transaction>,
    results: Vec<Result<(), TxError>>,
    /// The state root after each transaction.
    roots: Vec<Hash>,
    /// The final ledger.
    ledger: Ledger,
}

/// Applies `intents` one transaction at a time, checking every per-transaction invariant
/// along the way.
fn run_history(genesis: &Genesis, intents: &[Intent]) -> Result<History, TestCaseError> {
    let mut ledger = Ledger::from_genesis(genesis);
    let supply = genesis.supply();
    prop_assert_eq!(ledger.genesis_supply(), supply);
    prop_assert_eq!(ledger.total_supply(), supply);
    let mut states = vec![(snapshot(&ledger), ledger.state_root())];
    let (mut txs, mut results, mut roots) = (vec![], vec![], vec![]);
    for &intent in intents {
        let tx = make_tx(&ledger, intent);
        let before = snapshot(&ledger);
        let root_before = ledger.state_root();
        let body = tx.body();
        let sender = before.get(&body.from).copied();

        let checked = ledger.check(&tx);
        prop_assert_eq!(ledger.state_root(), root_before, "check changed the state");
        let result = ledger.apply_tx(&tx);
        prop_assert_eq!(&checked, &result, "check and apply disagree");
        let after = snapshot(&ledger);
        let root_after = ledger.state_root();

        // The ledger follows the rules exactly.
        let expected = model(&before, MIN_STAKE, &tx);
        match (&expected, &result) {
            (Ok(accounts), Ok(())) => prop_assert_eq!(accounts, &after),
            (Err(want), Err(got)) => prop_assert_eq!(want, got),
            _ => prop_assert!(false, "{:?}: model {:?}, ledger {:?}", tx, expected, result),
        }

        // Tokens are neither created nor destroyed, and nothing exceeds the supply.
        prop_assert_eq!(ledger.total_supply(), supply);
        for account in after.values() {
            prop_assert!(account.balance <= supply && account.stake <= supply);
        }

        // Nonces move by exactly one, for the sender of an applied transaction only.
        for (addr, account) in &after {
            let old = before.get(addr).map_or(0, |a| a.nonce);
            let bump = u64::from(result.is_ok() && *addr == body.from);
            prop_assert_eq!(account.nonce, old + bump, "nonce of {:?}", addr);
        }

        // The specific refusals.
        match sender {
            None => prop_assert_eq!(&result, &Err(TxError::UnknownAccount(body.from))),
            Some(s) if s.nonce != body.nonce => prop_assert_eq!(
                &result,
                &Err(TxError::BadNonce {
                    expected: s.nonce,
                    got: body.nonce
                })
            ),
            Some(_) => match body.kind {
                TxKind::Transfer { to, .. } if !before.contains_key(&to) => {
                    prop_assert_eq!(&result, &Err(TxError::UnknownAccount(to)));
                }
                TxKind::CreateAccount { new_account, .. } if before.contains_key(&new_account) => {
                    prop_assert_eq!(&result, &Err(TxError::AccountExists(new_account)));
                }
                _ => {}
            },
        }

        // A failed transaction changes nothing; an applied one changes the root.
        if result.is_err() {
            prop_assert_eq!(&after, &before);
            prop_assert_eq!(root_after, root_before);
        } else {
            prop_assert_ne!(root_after, root_before);
        }

        states.push((after, root_after));
        txs.push(tx);
        results.push(result);
        roots.push(root_after);
    }
    // Roots are equal exactly when the accounts are.
    for (i, (accounts_i, root_i)) in states.iter().enumerate() {
        for (accounts_j, root_j) in &states[..i] {
            prop_assert_eq!(accounts_i == accounts_j, root_i == root_j);
        }
    }
    Ok(History {
        txs,
        results,
        roots,
        ledger,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Over random histories of valid and invalid transactions (unknown senders, wrong
    /// nonces, overdrafts, zero amounts, stakes around the minimum, transfers to missing
    /// accounts, re-creations, self-transfers), after every transaction: the ledger agrees
    /// with an independent model of the rules; balances and stakes sum to the genesis
    /// supply; only an applied transaction bumps a nonce, by one; wrong nonces, missing
    /// recipients and existing new accounts are refused with their errors; a failure
    /// leaves the state root unchanged; and roots are equal exactly when accounts are.
    #[test]
    fn random_histories_keep_the_invariants(intents in vec(arb_intent(), 1..80)) {
        let genesis = test_genesis();
        let history = run_history(&genesis, &intents)?;
        // The histories exercise both outcomes.
        prop_assume!(history.results.iter().any(Result::is_ok));
    }

    /// The same history gives the same state roots whether it is applied one transaction
    /// at a time (asking for the root after each, or only at the end) or as blocks of any
    /// sizes; the blocks report the same per-transaction results.
    #[test]
    fn equal_histories_give_equal_roots(
        intents in vec(arb_intent(), 1..80),
        block_sizes in arb_block_sizes(),
    ) {
        let genesis = test_genesis();
        let history = run_history(&genesis, &intents)?;

        let mut one_by_one = Ledger::from_genesis(&genesis);
        for tx in &history.txs {
            let _ = one_by_one.apply_tx(tx);
        }
        prop_assert_eq!(one_by_one.state_root(), *history.roots.last().unwrap());
        prop_assert_eq!(snapshot(&one_by_one), snapshot(&history.ledger));

        // Blocks cross epoch ends, which change the validator sets, and record their views
        // (both parts of the root): the accounts are compared under genesis's other parts,
        // which the runs a transaction at a time keep.
        let genesis_parts = Ledger::from_genesis(&genesis).root_parts();
        let mut by_blocks = Ledger::from_genesis(&genesis);
        let mut done = 0;
        let mut sizes = block_sizes.iter().cycle();
        while done < history.txs.len() {
            let size = (*sizes.next().unwrap()).min(history.txs.len() - done);
            let height = by_blocks.height() + 1;
            let outcome = execute(&mut by_blocks, height, &history.txs[done..done + size]);
            prop_assert_eq!(&outcome.results[..], &history.results[done..done + size]);
            done += size;
            let expected_root = match done {
                0 => Ledger::from_genesis(&genesis).state_root(),
                n => history.roots[n - 1],
            };
            let parts = by_blocks.root_parts();
            prop_assert_eq!(outcome.state_root, parts.root());
            let accounts_only = RootParts {
                accounts_root: parts.accounts_root,
                ..genesis_parts.clone()
            };
            prop_assert_eq!(accounts_only.root(), expected_root);
            prop_assert_eq!(by_blocks.height(), height);
            prop_assert_eq!(by_blocks.total_supply(), genesis.supply());
        }
        prop_assert_eq!(snapshot(&by_blocks), snapshot(&history.ledger));
    }

    /// Ledgers whose histories differ in one applied transaction have different accounts
    /// and different state roots: the ledgers just before and just after it, and (unless
    /// later transactions happen to even them out) the ledgers with and without it.
    #[test]
    fn histories_differing_in_one_applied_tx_give_different_roots(
        intents in vec(arb_intent(), 1..60),
        pick in any::<prop::sample::Index>(),
    ) {
        let genesis = test_genesis();
        let history = run_history(&genesis, &intents)?;
        let applied: Vec<usize> = (0..history.txs.len())
            .filter(|&i| history.results[i].is_ok())
            .collect();
        prop_assume!(!applied.is_empty());
        let skip = applied[pick.index(applied.len())];

        let mut without = Ledger::from_genesis(&genesis);
        for tx in &history.txs[..skip] {
            let _ = without.apply_tx(tx);
        }
        let mut with = without.clone();
        prop_assert_eq!(with.apply_tx(&history.txs[skip]), Ok(()));
        prop_assert_ne!(snapshot(&with), snapshot(&without));
        prop_assert_ne!(with.state_root(), without.state_root());

        for tx in &history.txs[skip + 1..] {
            let _ = without.apply_tx(tx);
        }
        let mut full = history.ledger;
        prop_assert_eq!(
            snapshot(&without) == snapshot(&full),
            without.state_root() == full.state_root()
        );
    }

    /// From any state, two transfers that differ only in amount by one unit give different
    /// roots (the two ledgers differ in exactly two balances, by one each).
    #[test]
    fn balances_one_unit_apart_give_different_roots(
        intents in vec(arb_intent(), 0..40),
        amount in 1u128..1_000,
    ) {
        let genesis = test_genesis();
        let history = run_history(&genesis, &intents)?;
        let from = address(4);
        let nonce = history.ledger.account(&from).unwrap().nonce;
        let mut a = history.ledger.clone();
        let mut b = history.ledger;
        let pay = |n| signed(4, nonce, TxKind::Transfer { to: address(1), amount: n });
        let (ra, rb) = (a.apply_tx(&pay(amount)), b.apply_tx(&pay(amount + 1)));
        prop_assume!(ra.is_ok() && rb.is_ok());
        prop_assert_eq!(a.account(&from).unwrap().balance, b.account(&from).unwrap().balance + 1);
        prop_assert_ne!(a.state_root(), b.state_root());
    }
}

/// The state root depends only on the accounts, not on the order genesis lists them.
#[test]
fn state_root_ignores_genesis_order() {
    let genesis = test_genesis();
    let mut reversed = genesis.clone();
    reversed.accounts.reverse();
    assert_eq!(
        Ledger::from_genesis(&genesis).state_root(),
        Ledger::from_genesis(&reversed).state_root()
    );
}

/// A change of one unit in any one field of one account (balance, stake or nonce) changes
/// the state root.
#[test]
fn one_unit_in_any_field_changes_the_root() {
    let base = Ledger::from_genesis(&test_genesis()).state_root();
    for (seed, field) in [(1u8, 0), (2, 0), (3, 1), (4, 0), (1, 1)] {
        let mut g = test_genesis();
        let account = g
            .accounts
            .iter_mut()
            .find(|a| a.address == address(seed))
            .unwrap();
        match field {
            0 => account.balance += 1,
            _ => account.stake += 1,
        }
        assert_ne!(Ledger::from_genesis(&g).state_root(), base);
    }
    // A nonce change alone: a transfer of everything and back again, versus nothing.
    let mut ledger = Ledger::from_genesis(&test_genesis());
    let start = snapshot(&ledger);
    ledger
        .apply_tx(&signed(1, 0, TxKind::Stake { amount: 10 }))
        .unwrap();
    ledger
        .apply_tx(&signed(1, 1, TxKind::Unstake { amount: 10 }))
        .unwrap();
    let now = snapshot(&ledger);
    assert_eq!(now[&address(1)].balance, start[&address(1)].balance);
    assert_eq!(now[&address(1)].stake, start[&address(1)].stake);
    assert_eq!(now[&address(1)].nonce, 2);
    assert_ne!(ledger.state_root(), base);
}

/// The specific refusals, with the numbers they report.
#[test]
fn refusals_report_what_was_wrong() {
    let mut ledger = Ledger::from_genesis(&test_genesis());
    let cases = [
        (
            signed(8, 0, TxKind::Stake { amount: 1 }),
            TxError::UnknownAccount(address(8)),
        ),
        (
            signed(1, 1, TxKind::Stake { amount: 1 }),
            TxError::BadNonce {
                expected: 0,
                got: 1,
            },
        ),
        (
            signed(
                1,
                0,
                TxKind::Transfer {
                    to: address(6),
                    amount: 1,
                },
            ),
            TxError::UnknownAccount(address(6)),
        ),
        (
            signed(
                1,
                0,
                TxKind::CreateAccount {
                    new_account: address(2),
                    amount: 1,
                },
            ),
            TxError::AccountExists(address(2)),
        ),
        (
            signed(
                2,
                0,
                TxKind::Transfer {
                    to: address(1),
                    amount: 3_001,
                },
            ),
            TxError::InsufficientFunds {
                available: 3_000,
                needed: 3_001,
            },
        ),
        (
            signed(2, 0, TxKind::Unstake { amount: 1 }),
            TxError::BelowMinStake {
                stake: MIN_STAKE - 1,
                min: MIN_STAKE,
            },
        ),
        (
            signed(
                4,
                0,
                TxKind::Stake {
                    amount: MIN_STAKE - 1,
                },
            ),
            TxError::BelowMinStake {
                stake: MIN_STAKE - 1,
                min: MIN_STAKE,
            },
        ),
        (
            signed(3, 0, TxKind::Unstake { amount: u128::MAX }),
            TxError::InsufficientFunds {
                available: 2 * MIN_STAKE,
                needed: u128::MAX,
            },
        ),
    ];
    let root = ledger.state_root();
    for (tx, error) in cases {
        assert_eq!(ledger.apply_tx(&tx), Err(error), "{tx:?}");
    }
    assert_eq!(ledger.state_root(), root);
    // Unstaking everything, or staking exactly the minimum, is fine.
    assert_eq!(
        ledger.apply_tx(&signed(2, 0, TxKind::Unstake { amount: MIN_STAKE })),
        Ok(())
    );
    assert_eq!(
        ledger.apply_tx(&signed(4, 0, TxKind::Stake { amount: MIN_STAKE })),
        Ok(())
    );
    // A second creation of the same account is refused.
    let create = |nonce| {
        signed(
            4,
            nonce,
            TxKind::CreateAccount {
                new_account: address(5),
                amount: 7,
            },
        )
    };
    assert_eq!(ledger.apply_tx(&create(1)), Ok(()));
    assert_eq!(
        ledger.apply_tx(&create(2)),
        Err(TxError::AccountExists(address(5)))
    );
    assert_eq!(
        ledger.account(&address(5)),
        Some(&Account {
            balance: 7,
            stake: 0,
            nonce: 0
        })
    );
    // A replay of an applied transaction is refused on its nonce.
    assert_eq!(
        ledger.apply_tx(&create(1)),
        Err(TxError::BadNonce {
            expected: 2,
            got: 1
        })
    );
}

/// A transfer to oneself never passes the stateless checks, and if one reaches the
/// ledger anyway it moves nothing but the nonce: no tokens are minted and it cannot be
/// replayed.
#[test]
fn self_transfer_mints_nothing() {
    let tx = signed(
        4,
        0,
        TxKind::Transfer {
            to: address(4),
            amount: 60,
        },
    );
    assert_eq!(
        tx.verify(common::CHAIN_ID),
        Err(TxFormatError::SelfTransfer)
    );
    let genesis = test_genesis();
    let mut ledger = Ledger::from_genesis(&genesis);
    let before = *ledger.account(&address(4)).unwrap();
    assert_eq!(ledger.apply_tx(&tx), Ok(()));
    let after = *ledger.account(&address(4)).unwrap();
    assert_eq!(after.balance, before.balance);
    assert_eq!(after.nonce, before.nonce + 1);
    assert_eq!(ledger.total_supply(), genesis.supply());
    assert!(matches!(
        ledger.apply_tx(&tx),
        Err(TxError::BadNonce { .. })
    ));
    let too_much = signed(
        4,
        1,
        TxKind::Transfer {
            to: address(4),
            amount: before.balance + 1,
        },
    );
    assert!(matches!(
        ledger.apply_tx(&too_much),
        Err(TxError::InsufficientFunds { .. })
    ));
}

/// A transfer of 5 base units from account 4 (nonce 0) to account 1.
fn small_transfer() -> Transaction {
    let kind = TxKind::Transfer {
        to: address(1),
        amount: 5,
    };
    signed(4, 0, kind)
}

/// Blocks execute strictly in order: a gap, a repeat or height 0 is refused with the
/// height expected, and a refused block changes nothing.
#[test]
fn apply_block_refuses_out_of_order() {
    let mut ledger = Ledger::from_genesis(&test_genesis());
    let tx = small_transfer();
    let root = ledger.state_root();
    let epochs = known_epochs(&ledger);
    for height in [0, 2, 3, EPOCH_LENGTH, u64::MAX] {
        assert_eq!(
            ledger.apply_block(&block(height, vec![tx.clone()])),
            Err(LedgerError::OutOfOrder {
                expected: 1,
                got: height
            })
        );
    }
    assert_eq!(ledger.height(), 0);
    assert_eq!(ledger.state_root(), root);
    assert_eq!(known_epochs(&ledger), epochs);
    let outcome = ledger.apply_block(&block(1, vec![tx.clone()])).unwrap();
    assert_eq!(outcome.results, vec![Ok(())]);
    assert_eq!(outcome.new_validators, None);
    let root = ledger.state_root();
    assert_eq!(outcome.state_root, root);
    assert_eq!(
        ledger.apply_block(&block(1, vec![tx.clone()])),
        Err(LedgerError::OutOfOrder {
            expected: 2,
            got: 1
        })
    );
    assert_eq!(ledger.height(), 1);
    assert_eq!(ledger.state_root(), root);
    assert!(ledger.apply_block(&block(2, Vec::new())).is_ok());
}

/// A block whose transactions are not the ones its header commits to is refused and
/// changes nothing: a body can never be swapped under a header at execution either.
#[test]
fn apply_block_refuses_a_body_its_header_does_not_commit_to() {
    let mut ledger = Ledger::from_genesis(&test_genesis());
    let tx = small_transfer();
    let root = ledger.state_root();
    let mut swapped = block(1, Vec::new());
    swapped.txs = vec![tx.clone()];
    assert_eq!(
        ledger.apply_block(&swapped),
        Err(LedgerError::BodyMismatch { height: 1 })
    );
    assert_eq!(ledger.height(), 0);
    assert_eq!(ledger.state_root(), root);
    assert!(ledger.apply_block(&block(1, vec![tx])).is_ok());
}

/// The addresses of the validator set in force at `height`.
fn validators_at(ledger: &Ledger, height: u64) -> Option<Vec<Validator>> {
    ledger.validators_for(height).map(|s| s.members().to_vec())
}

/// The validator sets the ledger lists, by epoch.
fn known_epochs(ledger: &Ledger) -> Vec<(u64, ValidatorSet)> {
    ledger
        .validator_epochs()
        .map(|(epoch, set)| (epoch, set.clone()))
        .collect()
}

/// `validator_epochs` and `validators_for` agree: epochs are listed once each, in
/// increasing order; every height up to `up_to` has exactly its epoch's listed set, or
/// none when its epoch is not listed; and the epochs of the next block and of the one
/// after it are both listed, so consensus always knows the sets it may need next.
fn assert_epochs_agree(ledger: &Ledger, up_to: u64) {
    let listed = known_epochs(ledger);
    assert!(
        listed.windows(2).all(|w| w[0].0 < w[1].0),
        "epochs {:?}",
        listed.iter().map(|(e, _)| e).collect::<Vec<_>>()
    );
    let set_of = |epoch: u64| listed.iter().find(|(e, _)| *e == epoch).map(|(_, s)| s);
    for height in 0..=up_to {
        assert_eq!(
            ledger.validators_for(height),
            set_of(ledger.epoch_of(height)),
            "height {height}"
        );
    }
    let next = ledger.epoch_of(ledger.height() + 1);
    assert!(set_of(next).is_some() && set_of(next + 1).is_some());
}

/// Executes the block at `height` (it must be next) and checks what it reports about
/// validator sets. At an epoch's last block: the epoch two ahead, and its set (the
/// eligible accounts, or when none is eligible the set of the epoch after the one ending),
/// which the ledger then lists and uses for every height of that epoch. At any other
/// block: nothing, and the known sets are unchanged.
fn execute(ledger: &mut Ledger, height: u64, txs: &[Transaction]) -> BlockOutcome {
    let before = known_epochs(ledger);
    let outcome = ledger
        .apply_block(&block(height, txs.to_vec()))
        .expect("blocks in order");
    let e = EPOCH_LENGTH;
    if height % e == 0 {
        let ended = ledger.epoch_of(height);
        let (epoch, set) = outcome
            .new_validators
            .clone()
            .expect("an epoch's last block fixes a set");
        assert_eq!(epoch, ended + 2, "height {height}");
        let fallback = before.iter().find(|(e, _)| *e == ended + 1).map(|(_, s)| s);
        assert_eq!(
            Some(&set),
            ledger.eligible_validators().as_ref().or(fallback),
            "height {height}"
        );
        assert_eq!(known_epochs(ledger).last(), Some(&(epoch, set.clone())));
        for h in [height + e + 1, height + 2 * e] {
            assert_eq!(ledger.validators_for(h), Some(&set), "height {h}");
        }
    } else {
        assert_eq!(outcome.new_validators, None, "height {height}");
        assert_eq!(known_epochs(ledger), before, "height {height}");
    }
    assert_epochs_agree(ledger, height + 3 * e);
    outcome
}

/// Executes empty blocks up to and including `height`.
fn run_to(ledger: &mut Ledger, height: u64) {
    while ledger.height() < height {
        execute(ledger, ledger.height() + 1, &[]);
    }
}

/// Epochs 0 and 1 use the genesis set; a stake change made in epoch 0 (even in its last
/// block) shows in epoch 2's set but not epoch 1's; one made in epoch 1 shows only from
/// epoch 3; and sets too far ahead are not known yet. Each epoch's last block reports the
/// set it fixed and for which epoch, and the list of known sets agrees with the set of
/// every height throughout: genesis knows epochs 0 and 1; the end of epoch `k` adds
/// `k + 2` and forgets those before `k`.
#[test]
fn validator_sets_change_two_epochs_later() {
    let e = EPOCH_LENGTH;
    let genesis = test_genesis();
    let genesis_validators = genesis.validator_set().unwrap();
    let genesis_set = genesis_validators.members().to_vec();
    let mut ledger = Ledger::from_genesis(&genesis);
    assert_eq!(
        known_epochs(&ledger),
        vec![
            (0, genesis_validators.clone()),
            (1, genesis_validators.clone())
        ]
    );
    assert_epochs_agree(&ledger, 4 * e);
    for height in 0..=2 * e {
        assert_eq!(
            validators_at(&ledger, height),
            Some(genesis_set.clone()),
            "height {height}"
        );
    }
    assert_eq!(validators_at(&ledger, 2 * e + 1), None);

    // Epoch 0: account 4 stakes in block 1; account 3 unstakes in the last block (e).
    let stake = signed(
        4,
        0,
        TxKind::Stake {
            amount: 3 * MIN_STAKE,
        },
    );
    assert_eq!(execute(&mut ledger, 1, &[stake]).results, vec![Ok(())]);
    run_to(&mut ledger, e - 1);
    let unstake = signed(
        3,
        0,
        TxKind::Unstake {
            amount: 2 * MIN_STAKE,
        },
    );
    let outcome = execute(&mut ledger, e, &[unstake]);
    assert_eq!(outcome.results, vec![Ok(())]);

    let epoch2: Vec<Validator> = vec![
        Validator {
            address: address(1),
            stake: 5 * MIN_STAKE,
        },
        Validator {
            address: address(2),
            stake: MIN_STAKE,
        },
        Validator {
            address: address(4),
            stake: 3 * MIN_STAKE,
        },
    ];
    let mut epoch2_sorted = epoch2.clone();
    epoch2_sorted.sort_by_key(|v| v.address);
    let epoch2_set = ValidatorSet::new(epoch2).unwrap();
    assert_eq!(epoch2_set.members(), &epoch2_sorted[..]);
    assert_eq!(outcome.new_validators, Some((2, epoch2_set.clone())));
    assert_eq!(
        known_epochs(&ledger),
        vec![
            (0, genesis_validators.clone()),
            (1, genesis_validators.clone()),
            (2, epoch2_set.clone())
        ]
    );
    for height in 1..=2 * e {
        assert_eq!(
            validators_at(&ledger, height),
            Some(genesis_set.clone()),
            "height {height}"
        );
    }
    for height in 2 * e + 1..=3 * e {
        assert_eq!(
            validators_at(&ledger, height),
            Some(epoch2_sorted.clone()),
            "height {height}"
        );
    }
    assert_eq!(validators_at(&ledger, 3 * e + 1), None);

    // Epoch 1: account 2 unstakes; that shows in epoch 3 only.
    let unstake2 = signed(2, 0, TxKind::Unstake { amount: MIN_STAKE });
    assert_eq!(
        execute(&mut ledger, e + 1, &[unstake2]).results,
        vec![Ok(())]
    );
    run_to(&mut ledger, 2 * e - 1);
    let outcome = execute(&mut ledger, 2 * e, &[]);
    for height in 2 * e + 1..=3 * e {
        assert_eq!(
            validators_at(&ledger, height),
            Some(epoch2_sorted.clone()),
            "height {height}"
        );
    }
    let epoch3: Vec<Validator> = epoch2_sorted
        .iter()
        .copied()
        .filter(|v| v.address != address(2))
        .collect();
    let epoch3_set = ValidatorSet::new(epoch3.clone()).unwrap();
    assert_eq!(outcome.new_validators, Some((3, epoch3_set.clone())));
    assert_eq!(
        known_epochs(&ledger),
        vec![
            (1, genesis_validators.clone()),
            (2, epoch2_set.clone()),
            (3, epoch3_set.clone())
        ]
    );
    for height in 3 * e + 1..=4 * e {
        assert_eq!(
            validators_at(&ledger, height),
            Some(epoch3.clone()),
            "height {height}"
        );
    }
    // Long-past epochs are forgotten.
    assert_eq!(validators_at(&ledger, 1), None);
    assert_eq!(
        ledger.validators_for(3 * e + 1).unwrap().total_stake(),
        8 * MIN_STAKE
    );
    // With no stake moving, the end of epoch 2 fixes epoch 4 to epoch 3's set, and
    // forgets epoch 1.
    run_to(&mut ledger, 3 * e);
    assert_eq!(
        known_epochs(&ledger),
        vec![(2, epoch2_set), (3, epoch3_set.clone()), (4, epoch3_set)]
    );
    assert_eq!(validators_at(&ledger, 2 * e), None);
}

/// If every validator unstakes, the chain keeps the last set rather than having none.
#[test]
fn validator_set_never_becomes_empty() {
    let genesis = genesis(&[(1, 0, MIN_STAKE), (2, 100, 0)]);
    let mut ledger = Ledger::from_genesis(&genesis);
    let unstake = signed(1, 0, TxKind::Unstake { amount: MIN_STAKE });
    assert_eq!(execute(&mut ledger, 1, &[unstake]).results, vec![Ok(())]);
    assert!(ledger.eligible_validators().is_none());
    run_to(&mut ledger, 3 * EPOCH_LENGTH);
    let set = genesis.validator_set().unwrap();
    for height in 1..=4 * EPOCH_LENGTH {
        if let Some(found) = ledger.validators_for(height) {
            assert_eq!(found, &set);
        }
    }
    assert_eq!(ledger.validators_for(4 * EPOCH_LENGTH), Some(&set));
    // Every epoch's end reported the set it kept, and it is the only set the ledger knows.
    run_to(&mut ledger, 4 * EPOCH_LENGTH - 1);
    let outcome = execute(&mut ledger, 4 * EPOCH_LENGTH, &[]);
    assert_eq!(outcome.new_validators, Some((5, set.clone())));
    assert!(ledger.validator_epochs().all(|(_, s)| s == &set));
}
