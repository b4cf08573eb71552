//! The mempool's admission and selection: each refusal gives the admin protocol's code,
//! batches keep every sender's nonce order, commits clear and re-check the pool, and (the
//! property everything else serves) a batch applied in order to committed state always
//! applies in full.

mod common;

use std::collections::HashSet;

use almagill::amount::Amount;
use almagill::crypto::Hash;
use almagill::encoding;
use almagill::ledger::{Ledger, TxError};
use almagill::mempool::{AdmitError, Full, Limits, Pool, FUTURE_WINDOW};
use almagill::tx::{Transaction, TxFormatError, TxKind};
use common::{address, signed, test_genesis, CHAIN_ID, MIN_STAKE};
use proptest::collection::vec;
use proptest::prelude::*;

fn test_ledger() -> Ledger {
    Ledger::from_genesis(&test_genesis())
}

fn transfer(seed: u8, nonce: u64, to: u8, amount: Amount) -> Transaction {
    signed(
        seed,
        nonce,
        TxKind::Transfer {
            to: address(to),
            amount,
        },
    )
}

fn create(seed: u8, nonce: u64, new: u8, amount: Amount) -> Transaction {
    signed(
        seed,
        nonce,
        TxKind::CreateAccount {
            new_account: address(new),
            amount,
        },
    )
}

fn stake(seed: u8, nonce: u64, amount: Amount) -> Transaction {
    signed(seed, nonce, TxKind::Stake { amount })
}

fn unstake(seed: u8, nonce: u64, amount: Amount) -> Transaction {
    signed(seed, nonce, TxKind::Unstake { amount })
}

/// Admits a correctly signed transaction (checking that it is) at time 0.
fn admit(pool: &mut Pool, tx: Transaction, ledger: &Ledger) -> Result<Hash, AdmitError> {
    let verified = tx.verify(CHAIN_ID).is_ok();
    pool.admit(tx, verified, ledger, 0)
}

/// The code of a refusal, or "ok".
fn code(result: Result<Hash, AdmitError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

fn everything(pool: &Pool) -> Vec<Transaction> {
    pool.batch(usize::MAX, &HashSet::new(), &HashSet::new())
}

/// Applies `txs` in order to a copy of `ledger`; every one must apply.
fn assert_applies(ledger: &Ledger, txs: &[Transaction]) {
    let mut ledger = ledger.clone();
    for (i, tx) in txs.iter().enumerate() {
        assert_eq!(ledger.apply_tx(tx), Ok(()), "tx {i} of {txs:?}");
    }
}

/// Commits `txs` as the next block and tells the pool.
fn commit(pool: &mut Pool, ledger: &mut Ledger, txs: &[Transaction]) -> Vec<Result<(), TxError>> {
    let outcome = ledger
        .apply_block(&common::block(ledger.height() + 1, txs.to_vec()))
        .expect("next height");
    pool.on_commit(txs, ledger, 0);
    outcome.results
}

#[test]
fn admits_a_chain_of_nonces_from_one_sender() {
    let ledger = test_ledger();
    let mut pool = Pool::new(Limits::default());
    assert!(pool.is_empty());
    let txs: Vec<_> = (0..5).map(|n| transfer(4, n, 1, 100 + n as u128)).collect();
    for tx in &txs {
        assert_eq!(admit(&mut pool, tx.clone(), &ledger), Ok(tx.hash()));
    }
    assert_eq!(pool.len(), 5);
    assert_eq!(pool.pending_count(&address(4)), 5);
    assert_eq!(pool.pending_count(&address(1)), 0);
    let size: usize = txs.iter().map(|tx| encoding::encode(tx).len()).sum();
    assert_eq!(pool.bytes(), size);
    for tx in &txs {
        assert!(pool.contains(&tx.hash()));
        assert_eq!(pool.get(&tx.hash()), Some(tx));
    }
    assert!(pool.get(&transfer(4, 5, 1, 1).hash()).is_none());
    assert_eq!(everything(&pool), txs);
    assert_applies(&ledger, &txs);
}

#[test]
fn future_nonces_wait_for_the_gap_and_stale_ones_are_refused() {
    let ledger = test_ledger();
    let mut pool = Pool::new(Limits::default());
    // Nonces 5 down to 1 wait; nonce 0 fills the gap and all six are pending, in order.
    for nonce in (1..=5).rev() {
        admit(&mut pool, transfer(4, nonce, 1, 10), &ledger).unwrap();
        assert_eq!((pool.len(), pool.waiting()), (0, (6 - nonce) as usize));
    }
    assert!(pool.contains(&transfer(4, 3, 1, 10).hash()));
    assert_eq!(
        code(admit(&mut pool, transfer(4, 3, 1, 10), &ledger)),
        "duplicate"
    );
    admit(&mut pool, transfer(4, 0, 1, 10), &ledger).unwrap();
    assert_eq!((pool.len(), pool.waiting()), (6, 0));
    let nonces: Vec<u64> = everything(&pool).iter().map(|t| t.body().nonce).collect();
    assert_eq!(nonces, [0, 1, 2, 3, 4, 5]);
    // A nonce already taken by a pending transaction, and one too far ahead.
    assert_eq!(
        code(admit(&mut pool, transfer(4, 0, 2, 10), &ledger)),
        "bad_nonce"
    );
    let far = 6 + FUTURE_WINDOW + 1;
    assert_eq!(
        admit(&mut pool, transfer(4, far, 2, 10), &ledger),
        Err(AdmitError::Rejected(TxError::BadNonce {
            expected: 6,
            got: far
        }))
    );
    admit(&mut pool, transfer(4, 6 + FUTURE_WINDOW, 2, 10), &ledger).unwrap();
    assert_eq!(pool.waiting(), 1);
}

#[test]
fn waiting_transactions_expire_and_those_whose_nonce_was_used_go() {
    let mut ledger = test_ledger();
    let mut pool = Pool::new(Limits {
        future_ttl_ms: 1_000,
        ..Limits::default()
    });
    let verified = |tx: &Transaction| tx.verify(CHAIN_ID).is_ok();
    let late = transfer(4, 3, 1, 10);
    pool.admit(late.clone(), verified(&late), &ledger, 0)
        .unwrap();
    let fresh = transfer(4, 2, 1, 10);
    pool.admit(fresh.clone(), verified(&fresh), &ledger, 900)
        .unwrap();
    // Another node's transaction with nonce 1... no: nonce 0 commits from elsewhere.
    let elsewhere = transfer(4, 0, 2, 10);
    ledger
        .apply_block(&common::block(1, vec![elsewhere.clone()]))
        .unwrap();
    pool.on_commit(&[elsewhere], &ledger, 1_500);
    assert!(!pool.contains(&late.hash()), "waited 1.5 s: expired");
    assert!(pool.contains(&fresh.hash()), "waited 0.6 s: still waiting");
    assert_eq!(pool.waiting(), 1);
    // Nonce 1 commits elsewhere too; nonce 2 is next, and now pending.
    let one = transfer(4, 1, 2, 10);
    ledger
        .apply_block(&common::block(2, vec![one.clone()]))
        .unwrap();
    pool.on_commit(&[one], &ledger, 1_600);
    assert_eq!((pool.len(), pool.waiting()), (1, 0));
    assert_applies(&ledger, &everything(&pool));
}

#[test]
fn refuses_a_duplicate() {
    let ledger = test_ledger();
    let mut pool = Pool::new(Limits::default());
    let tx = transfer(4, 0, 1, 10);
    let hash = admit(&mut pool, tx.clone(), &ledger).unwrap();
    let again = admit(&mut pool, tx, &ledger);
    assert_eq!(again, Err(AdmitError::Duplicate(hash)));
    assert_eq!(code(again), "duplicate");
    assert_eq!(pool.len(), 1);
}

/// What needs no signature check is refused before one: a client resending in a loop costs
/// the node a lookup. A transaction that might be admitted is not quick-refused, so its
/// signature is still checked.
#[test]
fn refusals_that_need_no_signature_come_first() {
    let ledger = test_ledger();
    let mut pool = Pool::new(Limits::default());
    let first = transfer(4, 0, 1, 10);
    let hash = admit(&mut pool, first.clone(), &ledger).unwrap();
    assert_eq!(
        pool.quick_refusal(&first, &ledger),
        Some(AdmitError::Duplicate(hash))
    );
    let stale = transfer(4, 0, 2, 10);
    let stale = Transaction::new(stale.body().clone(), *first.signature());
    assert_eq!(
        code(Err(pool.quick_refusal(&stale, &ledger).unwrap())),
        "bad_nonce"
    );
    let far = transfer(4, 2 + FUTURE_WINDOW, 1, 10);
    assert_eq!(
        code(Err(pool.quick_refusal(&far, &ledger).unwrap())),
        "bad_nonce"
    );
    let next = transfer(4, 1, 1, 10);
    let next = Transaction::new(next.body().clone(), *first.signature());
    assert_eq!(pool.quick_refusal(&next, &ledger), None);
    assert_eq!(
        pool.quick_refusal(&transfer(4, 1 + FUTURE_WINDOW, 1, 10), &ledger),
        None
    );
    assert_eq!(code(admit(&mut pool, next, &ledger)), "invalid_signature");
}

#[test]
fn refuses_bad_signatures_and_bad_amounts() {
    let ledger = test_ledger();
    let mut pool = Pool::new(Limits::default());
    let signed = transfer(4, 0, 1, 10);
    let mut body = signed.body().clone();
    body.kind = TxKind::Transfer {
        to: address(1),
        amount: 40_000,
    };
    let forged = Transaction::new(body, *signed.signature());
    assert!(forged.verify(CHAIN_ID).is_err());
    assert_eq!(
        admit(&mut pool, forged.clone(), &ledger),
        Err(AdmitError::InvalidSignature)
    );
    assert_eq!(
        code(pool.admit(forged, false, &ledger, 0)),
        "invalid_signature"
    );
    // The caller's verdict is what counts: a good transaction reported unverified is refused.
    assert_eq!(
        code(pool.admit(transfer(4, 0, 1, 10), false, &ledger, 0)),
        "invalid_signature"
    );
    let zero = admit(&mut pool, transfer(4, 0, 1, 0), &ledger);
    assert_eq!(zero, Err(AdmitError::Format(TxFormatError::ZeroAmount)));
    assert_eq!(code(zero), "bad_amount");
    assert_eq!(
        code(admit(&mut pool, transfer(4, 0, 4, 1), &ledger)),
        "bad_amount"
    );
    assert_eq!(
        code(admit(&mut pool, create(4, 0, 4, 1), &ledger)),
        "bad_amount"
    );
    assert!(pool.is_empty());
}

#[test]
fn unknown_sender_is_refused() {
    let ledger = test_ledger();
    let mut pool = Pool::new(Limits::default());
    assert_eq!(
        admit(&mut pool, transfer(6, 0, 1, 1), &ledger),
        Err(AdmitError::Rejected(TxError::UnknownAccount(address(6))))
    );
    // Even once its creation is pending: it has no committed funds to spend yet.
    admit(&mut pool, create(4, 0, 6, 500), &ledger).unwrap();
    assert_eq!(
        code(admit(&mut pool, transfer(6, 0, 1, 1), &ledger)),
        "unknown_account"
    );
}

#[test]
fn funds_count_pending_spends_but_not_pending_credits() {
    let ledger = test_ledger();
    let mut pool = Pool::new(Limits::default());
    // Seed 2 has 3000.
    admit(&mut pool, transfer(2, 0, 1, 2_000), &ledger).unwrap();
    let over = admit(&mut pool, transfer(2, 1, 1, 1_001), &ledger);
    assert_eq!(
        over,
        Err(AdmitError::Rejected(TxError::InsufficientFunds {
            available: 1_000,
            needed: 1_001
        }))
    );
    assert_eq!(code(over), "insufficient_funds");
    assert_eq!(
        code(admit(&mut pool, create(2, 1, 5, 1_001), &ledger)),
        "insufficient_funds"
    );
    assert_eq!(
        code(admit(&mut pool, stake(2, 1, 1_001), &ledger)),
        "insufficient_funds"
    );
    admit(&mut pool, transfer(2, 1, 1, 1_000), &ledger).unwrap();
    assert_eq!(
        code(admit(&mut pool, transfer(2, 2, 1, 1), &ledger)),
        "insufficient_funds"
    );

    // Seed 3 has no balance: neither its own pending unstake nor a pending transfer to it
    // counts as funds.
    admit(&mut pool, unstake(3, 0, 1_000), &ledger).unwrap();
    admit(&mut pool, transfer(4, 0, 3, 5_000), &ledger).unwrap();
    assert_eq!(
        code(admit(&mut pool, transfer(3, 1, 1, 1), &ledger)),
        "insufficient_funds"
    );
    // Nor does a pending stake count as stake to unstake.
    admit(&mut pool, stake(4, 1, MIN_STAKE), &ledger).unwrap();
    assert_eq!(
        code(admit(&mut pool, unstake(4, 2, 1), &ledger)),
        "insufficient_funds"
    );
    assert_applies(&ledger, &everything(&pool));
}

#[test]
fn transfer_to_a_missing_account_waits_for_its_pending_creation() {
    let ledger = test_ledger();
    let mut pool = Pool::new(Limits::default());
    assert_eq!(
        admit(&mut pool, transfer(1, 0, 5, 10), &ledger),
        Err(AdmitError::Rejected(TxError::UnknownAccount(address(5))))
    );
    admit(&mut pool, create(4, 0, 5, 100), &ledger).unwrap();
    admit(&mut pool, transfer(1, 0, 5, 10), &ledger).unwrap();
    admit(&mut pool, transfer(4, 1, 5, 10), &ledger).unwrap();
    assert_eq!(pool.len(), 3);
    assert_applies(&ledger, &everything(&pool));
}

#[test]
fn an_account_is_created_at_most_once() {
    let ledger = test_ledger();
    let mut pool = Pool::new(Limits::default());
    assert_eq!(
        admit(&mut pool, create(4, 0, 2, 100), &ledger),
        Err(AdmitError::Rejected(TxError::AccountExists(address(2))))
    );
    admit(&mut pool, create(4, 0, 5, 100), &ledger).unwrap();
    let again = admit(&mut pool, create(1, 0, 5, 100), &ledger);
    assert_eq!(code(again), "account_exists");
    assert_eq!(
        code(admit(&mut pool, create(4, 1, 5, 7), &ledger)),
        "account_exists"
    );
    assert_eq!(pool.len(), 1);
}

#[test]
fn stake_is_nothing_or_at_least_the_minimum() {
    let ledger = test_ledger();
    let mut pool = Pool::new(Limits::default());
    // Seed 4: no stake yet.
    let low = admit(&mut pool, stake(4, 0, MIN_STAKE - 1), &ledger);
    assert_eq!(
        low,
        Err(AdmitError::Rejected(TxError::BelowMinStake {
            stake: MIN_STAKE - 1,
            min: MIN_STAKE
        }))
    );
    assert_eq!(code(low), "below_min_stake");
    admit(&mut pool, stake(4, 0, MIN_STAKE), &ledger).unwrap();
    // Counted with the pending stake, a small top-up is fine.
    admit(&mut pool, stake(4, 1, 1), &ledger).unwrap();

    // Seed 2 stakes exactly the minimum: a partial unstake would leave too little.
    assert_eq!(
        code(admit(&mut pool, unstake(2, 0, 1), &ledger)),
        "below_min_stake"
    );
    admit(&mut pool, unstake(2, 0, MIN_STAKE), &ledger).unwrap();
    assert_eq!(
        code(admit(&mut pool, unstake(2, 1, 1), &ledger)),
        "insufficient_funds"
    );

    // Seed 1 stakes 5x the minimum: pending unstakes add up.
    admit(&mut pool, unstake(1, 0, 4 * MIN_STAKE), &ledger).unwrap();
    assert_eq!(
        admit(&mut pool, unstake(1, 1, 1), &ledger),
        Err(AdmitError::Rejected(TxError::BelowMinStake {
            stake: MIN_STAKE - 1,
            min: MIN_STAKE
        }))
    );
    // Pending stakes count towards the minimum after an unstake.
    admit(&mut pool, stake(1, 1, 1), &ledger).unwrap();
    admit(&mut pool, unstake(1, 2, 1), &ledger).unwrap();
    assert_applies(&ledger, &everything(&pool));
}

#[test]
fn a_sender_may_hold_more_while_there_is_room() {
    let ledger = test_ledger();
    let mut pool = Pool::new(Limits::default());
    for n in 0..1_000 {
        admit(&mut pool, transfer(4, n, 1, 1), &ledger).unwrap();
    }
    assert_eq!(pool.len(), 1_000);
    assert_applies(&ledger, &everything(&pool));
}

#[test]
fn a_full_pool_pushes_out_the_largest_senders_highest_nonces() {
    let ledger = test_ledger();
    assert_eq!(Limits::default().max_txs, 50_000);
    assert_eq!(Limits::default().max_bytes, 16 * 1024 * 1024);
    let mut pool = Pool::new(Limits {
        max_txs: 10,
        ..Limits::default()
    });
    for n in 0..8 {
        admit(&mut pool, transfer(4, n, 1, 1), &ledger).unwrap();
    }
    for n in 0..2 {
        admit(&mut pool, transfer(1, n, 4, 1), &ledger).unwrap();
    }
    // The largest sender may not grow a full pool...
    let full = admit(&mut pool, transfer(4, 8, 1, 1), &ledger);
    assert_eq!(full, Err(AdmitError::MempoolFull(Full::Transactions)));
    assert_eq!(code(full), "mempool_full");
    // ...but anyone within its share pushes out its highest nonce.
    admit(&mut pool, transfer(2, 0, 4, 1), &ledger).unwrap();
    assert!(!pool.contains(&transfer(4, 7, 1, 1).hash()));
    admit(&mut pool, transfer(1, 2, 4, 1), &ledger).unwrap();
    assert!(!pool.contains(&transfer(4, 6, 1, 1).hash()));
    assert_eq!(pool.len(), 10);
    assert_eq!(pool.pending_count(&address(4)), 6);
    assert_applies(&ledger, &everything(&pool));

    // Only to give a sender its share: with a full pool of 9 among 3 senders, one holding
    // 3 may not push out another's fifth (every pushed-out transaction is lost to its
    // client, and the rest of its sender's wait on the gap).
    let mut pool = Pool::new(Limits {
        max_txs: 9,
        ..Limits::default()
    });
    for (seed, count) in [(4, 5), (1, 3), (2, 1)] {
        for n in 0..count {
            admit(&mut pool, transfer(seed, n, 3, 1), &ledger).unwrap();
        }
    }
    assert_eq!(
        admit(&mut pool, transfer(1, 3, 4, 1), &ledger),
        Err(AdmitError::MempoolFull(Full::Transactions))
    );
    assert_eq!(pool.pending_count(&address(4)), 5);
    admit(&mut pool, transfer(2, 1, 4, 1), &ledger).unwrap();
    assert_eq!(pool.pending_count(&address(4)), 4);

    // Transactions handed to a proposal in flight are never pushed out.
    let mut pool = Pool::new(Limits {
        max_txs: 4,
        ..Limits::default()
    });
    for n in 0..4 {
        admit(&mut pool, transfer(4, n, 1, 1), &ledger).unwrap();
    }
    assert_eq!(pool.propose(4, &HashSet::new(), &HashSet::new()).len(), 4);
    assert_eq!(
        admit(&mut pool, transfer(1, 0, 4, 1), &ledger),
        Err(AdmitError::MempoolFull(Full::Transactions))
    );
    assert_eq!(pool.len(), 4);

    let size = encoding::encode(&transfer(4, 0, 1, 1)).len();
    let mut pool = Pool::new(Limits {
        max_bytes: size,
        ..Limits::default()
    });
    admit(&mut pool, transfer(4, 0, 1, 1), &ledger).unwrap();
    assert_eq!(
        code(admit(&mut pool, transfer(1, 0, 4, 1), &ledger)),
        "mempool_full"
    );
    assert_eq!(pool.bytes(), size);
    assert_eq!(pool.len(), 1);

    let mut pool = Pool::new(Limits {
        max_future: 2,
        ..Limits::default()
    });
    admit(&mut pool, transfer(4, 1, 1, 1), &ledger).unwrap();
    admit(&mut pool, transfer(1, 1, 4, 1), &ledger).unwrap();
    assert_eq!(
        admit(&mut pool, transfer(2, 1, 4, 1), &ledger),
        Err(AdmitError::MempoolFull(Full::Future))
    );
}

#[test]
fn batches_keep_nonce_order_and_skip_what_follows_an_exclusion() {
    let ledger = test_ledger();
    let mut pool = Pool::new(Limits::default());
    let a0 = transfer(4, 0, 1, 1);
    let b0 = transfer(1, 0, 4, 1);
    let a1 = create(4, 1, 5, 100);
    let c0 = transfer(2, 0, 4, 1);
    let b1 = transfer(1, 1, 5, 1);
    let a2 = transfer(4, 2, 2, 1);
    let c1 = transfer(2, 1, 1, 1);
    let all = vec![
        a0.clone(),
        b0.clone(),
        a1.clone(),
        c0.clone(),
        b1.clone(),
        a2.clone(),
        c1.clone(),
    ];
    for tx in &all {
        admit(&mut pool, tx.clone(), &ledger).unwrap();
    }
    let none = HashSet::new();
    assert_eq!(pool.batch(100, &none, &HashSet::new()), all);
    assert_eq!(pool.batch(3, &none, &HashSet::new()), all[..3].to_vec());
    assert!(pool.batch(0, &none, &HashSet::new()).is_empty());

    // a0 in a block already committed (the pool not told yet) is only skipped: the rest of
    // sender 4 and the transfer to the account it created follow. (Mutation caught: a
    // committed transaction treated as excluded — the batch holds 3 of the 6.)
    let committed: HashSet<Hash> = [a0.hash()].into();
    let rest: Vec<Transaction> = all.iter().filter(|tx| **tx != a0).cloned().collect();
    assert_eq!(pool.batch(100, &none, &committed), rest);

    // Excluding a0 holds back all of sender 4, and with its creation of 5, sender 1's
    // transfer to 5 and so the rest of sender 1.
    let exclude: HashSet<Hash> = [a0.hash()].into();
    let batch = pool.batch(100, &exclude, &HashSet::new());
    assert_eq!(batch, vec![b0.clone(), c0.clone(), c1.clone()]);
    assert_applies(&ledger, &batch);

    let exclude: HashSet<Hash> = [c0.hash()].into();
    assert_eq!(
        pool.batch(100, &exclude, &HashSet::new()),
        vec![a0.clone(), b0.clone(), a1, b1, a2]
    );
    assert_eq!(pool.batch(2, &exclude, &HashSet::new()), vec![a0, b0]);
}

/// A block holding a sender's later nonces can commit when the block before it, holding its
/// earlier ones, was replaced at a view change: the later ones fail, and stay pending to be
/// proposed again (their client was told they were admitted and will not send them again).
///
/// Mutation caught: `on_commit` dropping every committed transaction — the sender's nonces
/// 2 and 3 are gone, and everything it sends after them is refused for good.
#[test]
fn transactions_that_failed_ahead_of_their_turn_stay() {
    let mut ledger = test_ledger();
    let mut pool = Pool::new(Limits::default());
    let txs: Vec<_> = (0..4).map(|n| transfer(4, n, 1, 10)).collect();
    for tx in &txs {
        admit(&mut pool, tx.clone(), &ledger).unwrap();
    }
    let results = commit(&mut pool, &mut ledger, &txs[2..]);
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(TxError::BadNonce { .. }))));
    assert_eq!(everything(&pool), txs);
    let results = commit(&mut pool, &mut ledger, &txs);
    assert!(results.iter().all(Result::is_ok));
    assert!(pool.is_empty() && pool.waiting() == 0);
}

#[test]
fn commits_remove_committed_and_drop_stale() {
    let mut ledger = test_ledger();
    let mut pool = Pool::new(Limits::default());
    let a: Vec<_> = (0..3).map(|n| transfer(4, n, 1, 10)).collect();
    let b0 = transfer(1, 0, 4, 10);
    // Sender 2 (3000): n1 fits after n0 here, but not after the competing n0 below.
    let c0 = transfer(2, 0, 1, 100);
    let c1 = transfer(2, 1, 1, 2_500);
    let c2 = transfer(2, 2, 1, 1);
    // 4 creates 5 and 1 then pays it (later, someone else creates 5 first).
    let create5 = create(4, 3, 5, 100);
    let pay5 = transfer(1, 1, 5, 10);
    for tx in a.iter().chain([&b0, &c0, &c1, &c2, &create5, &pay5]) {
        admit(&mut pool, tx.clone(), &ledger).unwrap();
    }
    assert_eq!(pool.len(), 9);

    let competing_c0 = transfer(2, 0, 4, 1_000);
    // Seed 3 has no balance: its creation of 6 fails without using its nonce.
    let failing_create6 = create(3, 0, 6, 1);
    let block = vec![
        a[0].clone(),
        b0.clone(),
        competing_c0.clone(),
        failing_create6.clone(),
    ];
    let results = commit(&mut pool, &mut ledger, &block);
    assert_eq!(results[..3], [Ok(()), Ok(()), Ok(())]);
    assert_eq!(
        results[3],
        Err(TxError::InsufficientFunds {
            available: 0,
            needed: 1
        })
    );

    assert!(!pool.contains(&a[0].hash()));
    assert!(!pool.contains(&b0.hash()));
    assert!(pool.contains(&a[1].hash()) && pool.contains(&a[2].hash()));
    // c0's nonce went to the competing transaction; c1 no longer has the funds, and c2,
    // which follows it, waits for a nonce 1 its sender may yet send.
    assert!(!pool.contains(&c0.hash()));
    assert!(!pool.contains(&c1.hash()));
    assert!(pool.contains(&c2.hash()));
    assert_eq!(pool.waiting(), 1);
    // 5 is still not created, so its creation and the transfer to it remain.
    assert!(pool.contains(&create5.hash()));
    assert!(pool.contains(&pay5.hash()));
    assert_eq!(pool.len(), 4);
    assert_eq!(pool.pending_count(&address(2)), 0);

    // A replay right after commit is a duplicate; a replay of a transaction that failed
    // without using its nonce is judged afresh.
    assert_eq!(
        admit(&mut pool, a[0].clone(), &ledger),
        Err(AdmitError::Duplicate(a[0].hash()))
    );
    assert_eq!(code(admit(&mut pool, b0.clone(), &ledger)), "duplicate");
    assert_eq!(
        code(admit(&mut pool, competing_c0.clone(), &ledger)),
        "duplicate"
    );
    assert!(pool.recently_committed(&a[0].hash()));
    assert!(!pool.recently_committed(&failing_create6.hash()));
    assert_eq!(
        code(admit(&mut pool, failing_create6, &ledger)),
        "insufficient_funds"
    );
    // c1 replayed against the new state: nonce fine, funds not.
    assert_eq!(
        code(admit(&mut pool, c1.clone(), &ledger)),
        "insufficient_funds"
    );
    assert_applies(&ledger, &everything(&pool));

    // Now someone else creates 5 for real: 4's creation is dropped, the transfer to 5 stays;
    // it is sender 2's nonce 1, so its waiting nonce 2 is pending now.
    let really_create5 = create(2, 1, 5, 1);
    assert_eq!(
        commit(&mut pool, &mut ledger, &[really_create5]),
        vec![Ok(())]
    );
    assert!(!pool.contains(&create5.hash()));
    assert!(pool.contains(&pay5.hash()));
    assert_eq!(
        everything(&pool),
        vec![a[1].clone(), a[2].clone(), pay5, c2.clone()]
    );
    assert_applies(&ledger, &everything(&pool));

    // Committing the rest empties the pool.
    let rest = everything(&pool);
    assert!(commit(&mut pool, &mut ledger, &rest)
        .iter()
        .all(|r| r.is_ok()));
    assert!(pool.is_empty());
    assert_eq!(pool.bytes(), 0);
    assert_eq!(pool.pending_count(&address(4)), 0);
}

/// One step of a random history.
#[derive(Clone, Debug)]
enum Step {
    /// Submit a transaction to the pool.
    Admit(Intent),
    /// Commit a batch of the pool's, some transactions excluded.
    Commit { max: usize, exclude: u64 },
    /// Commit a block of one transaction that never went through this pool.
    Foreign(Intent),
}

/// A transaction to make against the state when its turn comes.
#[derive(Clone, Copy, Debug)]
struct Intent {
    sender: u8,
    /// 0 transfer, 1 create account, 2 stake, 3 unstake.
    kind: u8,
    target: u8,
    amount: Amount,
    /// Added to the sender's next nonce: mostly 0.
    nonce_offset: i8,
}

fn arb_intent() -> impl Strategy<Value = Intent> {
    (
        // Mostly the genesis accounts 1 to 4, which have funds.
        prop_oneof![4 => 1u8..=4, 1 => 5u8..=8],
        0u8..4,
        1u8..=8,
        prop_oneof![
            4 => 1u128..100,
            2 => 1u128..5_000,
            1 => Just(MIN_STAKE),
            1 => Just(MIN_STAKE - 1),
            1 => 0u128..60_000,
        ],
        prop_oneof![6 => Just(0i8), 1 => -2i8..=2],
    )
        .prop_map(|(sender, kind, target, amount, nonce_offset)| Intent {
            sender,
            kind,
            target,
            amount,
            nonce_offset,
        })
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => arb_intent().prop_map(Step::Admit),
        2 => (0usize..12, any::<u64>()).prop_map(|(max, exclude)| Step::Commit { max, exclude }),
        1 => arb_intent().prop_map(Step::Foreign),
    ]
}

fn make_tx(intent: Intent, next_nonce: u64) -> Transaction {
    let nonce = next_nonce.saturating_add_signed(i64::from(intent.nonce_offset));
    let kind = common::tx_kind(intent.kind, address(intent.target), intent.amount);
    signed(intent.sender, nonce, kind)
}

/// Pending transactions chosen by the bits of `mask`.
fn excluded(pool: &Pool, mask: u64) -> HashSet<Hash> {
    everything(pool)
        .iter()
        .enumerate()
        .filter(|(i, _)| mask >> (i % 64) & 1 == 1)
        .map(|(_, tx)| tx.hash())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever is submitted and committed, every batch the pool offers (with or without
    /// exclusions, of any size) applies in full, in order, to committed state.
    #[test]
    fn batches_always_apply(steps in vec(arb_step(), 1..80), masks in vec(any::<u64>(), 4)) {
        let mut ledger = test_ledger();
        let limits = Limits { max_txs: 12, max_future: 4, ..Limits::default() };
        let mut pool = Pool::new(limits);
        for step in steps {
            match step {
                Step::Admit(intent) => {
                    let sender = address(intent.sender);
                    let committed = ledger.account(&sender).map_or(0, |a| a.nonce);
                    let next = committed + pool.pending_count(&sender) as u64;
                    let tx = make_tx(intent, next);
                    let before = (pool.len(), pool.waiting(), pool.bytes());
                    match admit(&mut pool, tx.clone(), &ledger) {
                        Ok(hash) => {
                            prop_assert_eq!(hash, tx.hash());
                            prop_assert!(pool.contains(&hash));
                            // Admission agrees with the ledger on the sender's first one
                            // (a transfer may wait on someone's pending creation; a
                            // future nonce waits apart, unchecked).
                            if next == committed && tx.body().nonce == next && intent.kind != 0 {
                                prop_assert_eq!(ledger.check(&tx), Ok(()));
                            }
                        }
                        Err(e) => {
                            prop_assert_eq!((pool.len(), pool.waiting(), pool.bytes()), before);
                            prop_assert!(!pool.contains(&tx.hash()) || e.code() == "duplicate");
                        }
                    }
                }
                Step::Commit { max, exclude } => {
                    let exclude = excluded(&pool, exclude);
                    let batch = pool.propose(max, &exclude, &HashSet::new());
                    prop_assert!(batch.len() <= max);
                    prop_assert!(batch.iter().all(|tx| !exclude.contains(&tx.hash())));
                    let results = commit(&mut pool, &mut ledger, &batch);
                    prop_assert!(results.iter().all(|r| r.is_ok()), "{:?}", results);
                    for tx in &batch {
                        prop_assert!(!pool.contains(&tx.hash()));
                        prop_assert_eq!(
                            admit(&mut pool, tx.clone(), &ledger).map_err(|e| e.code()),
                            Err("duplicate")
                        );
                    }
                }
                Step::Foreign(intent) => {
                    let sender = address(intent.sender);
                    let next = ledger.account(&sender).map_or(0, |a| a.nonce);
                    let tx = make_tx(intent, next);
                    commit(&mut pool, &mut ledger, &[tx]);
                }
            }
            let all = everything(&pool);
            prop_assert_eq!(all.len(), pool.len());
            let size: usize = all.iter().map(|tx| encoding::encode(tx).len()).sum();
            prop_assert!(size <= pool.bytes() && pool.bytes() <= limits.max_bytes);
            prop_assert_eq!(size == pool.bytes(), pool.waiting() == 0);
            prop_assert!(pool.len() <= limits.max_txs && pool.waiting() <= limits.max_future);
            assert_applies(&ledger, &all);
            for &mask in &masks {
                let exclude = excluded(&pool, mask);
                let batch = pool.batch(usize::MAX, &exclude, &HashSet::new());
                assert_applies(&ledger, &batch);
            }
            prop_assert_eq!(ledger.total_supply(), ledger.genesis_supply());
        }
    }
}

/// A flood from 200 senders, 60 transactions each (12,000 for a pool of 10,000), and one
/// quiet sender: the pool stays within its bounds, every flooding sender keeps a share, the
/// quiet sender's transaction is admitted, and a batch of everything commits in full.
#[test]
fn a_flood_from_many_senders_leaves_room_for_a_quiet_one() {
    let floods: Vec<u8> = (10..210).collect();
    let quiet = 250u8;
    let mut accounts: Vec<(u8, Amount, Amount)> =
        floods.iter().map(|&s| (s, 1_000_000, 0)).collect();
    accounts.push((quiet, 1_000_000, 0));
    accounts.push((1, 1_000_000, MIN_STAKE));
    let mut ledger = Ledger::from_genesis(&common::genesis(&accounts));
    let limits = Limits::default();
    let mut pool = Pool::new(limits);
    let (mut admitted, mut refused) = (0, 0);
    for nonce in 0..60 {
        for &sender in &floods {
            match admit(&mut pool, transfer(sender, nonce, 1, 1), &ledger) {
                Ok(_) => admitted += 1,
                Err(AdmitError::MempoolFull(_)) => refused += 1,
                Err(e) => panic!("unexpected refusal: {e}"),
            }
        }
    }
    let shares: Vec<usize> = floods
        .iter()
        .map(|&s| pool.pending_count(&address(s)))
        .collect();
    let (least, most) = (
        shares.iter().min().copied().unwrap_or(0),
        shares.iter().max().copied().unwrap_or(0),
    );
    eprintln!(
        "flood: 12,000 offered by 200 senders, {admitted} admitted (some pushed out later), \
         {refused} refused; pool holds {} transactions, {} bytes (limits {} and {}); \
         shares {least}..={most} per sender",
        pool.len(),
        pool.bytes(),
        limits.max_txs,
        limits.max_bytes
    );
    assert!(pool.len() <= limits.max_txs && pool.bytes() <= limits.max_bytes);
    assert!(most - least <= 1, "shares {least}..={most} are not even");
    let quiet_tx = transfer(quiet, 0, 1, 1);
    admit(&mut pool, quiet_tx.clone(), &ledger).expect("the quiet sender gets in");
    let batch = pool.propose(usize::MAX, &HashSet::new(), &HashSet::new());
    assert!(batch.contains(&quiet_tx));
    let results = commit(&mut pool, &mut ledger, &batch);
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(pool.len(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// However a full pool is filled, a sender with nothing pending gets a transaction in
    /// whenever some other sender holds at least two that are not in flight (the largest
    /// gives up its highest nonce), and the pool stays within its bounds.
    ///
    /// Mutation caught: a full pool that never pushes anything out (refusing newcomers, as
    /// the old per-sender ceiling did once full).
    #[test]
    fn no_sender_can_starve_another(
        fills in vec((0u8..3, 1usize..8), 1..10),
        in_flight in 0usize..4,
    ) {
        let ledger = Ledger::from_genesis(&common::genesis(&[
            (1, 1_000_000, MIN_STAKE),
            (2, 1_000_000, 0),
            (3, 1_000_000, 0),
            (4, 1_000_000, 0),
        ]));
        let limits = Limits { max_txs: 12, ..Limits::default() };
        let mut pool = Pool::new(limits);
        let mut next = [0u64; 3];
        for (sender, count) in fills {
            for _ in 0..count {
                let seed = sender + 1;
                let nonce = next[usize::from(sender)];
                if admit(&mut pool, transfer(seed, nonce, 4, 1), &ledger).is_ok() {
                    next[usize::from(sender)] += 1;
                }
            }
        }
        let flying = pool.propose(in_flight, &HashSet::new(), &HashSet::new());
        prop_assert!(pool.len() <= limits.max_txs);
        let flying_of = |seed: u8| flying.iter().filter(|t| t.body().from == address(seed)).count();
        let could_give = (1u8..=3).any(|s| pool.pending_count(&address(s)) - flying_of(s) >= 2);
        let full = pool.len() == limits.max_txs;
        let quiet = admit(&mut pool, transfer(4, 0, 1, 1), &ledger);
        if !full || could_give {
            prop_assert!(quiet.is_ok(), "{:?}", quiet);
        }
        prop_assert!(pool.len() <= limits.max_txs);
        for tx in flying {
            prop_assert!(pool.contains(&tx.hash()), "a transaction in flight was pushed out");
        }
        assert_applies(&ledger, &everything(&pool));
    }
}
