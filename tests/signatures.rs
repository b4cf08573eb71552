//! Signatures: a signed transaction or signed consensus statement cannot be altered by a
//! single bit, moved to another chain or passed off as another kind of statement; batch
//! verification says exactly what one-by-one verification says, even on the ZIP-215 edge
//! cases; proposals and certificates (of commits and of checkpoints) are checked in full.

mod common;

use std::fmt::Debug;

use almagill::block::{tx_root, Block, BlockError, Proposal};
use almagill::certificate::{
    Certificate, CertificateError, CommitCertificate, Phase, Signable, Signed, VoteTarget,
};
use almagill::consensus::{CheckpointCertificate, CheckpointTarget, NewView, ViewChange};
use almagill::crypto::{self, domain, Address, Hash, Signature, SignedMessage};
use almagill::encoding;
use almagill::tx::{Transaction, TxBody, TxFormatError, TxKind, VerifiedTxs};
use almagill::validators::{Validator, ValidatorSet};
use bincode::Decode;
use common::{
    address, arb_signed_transaction, block, keypair, proposal, signed, test_prev, CHAIN_ID,
};
use proptest::collection::vec;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------

/// One signed transaction of each kind, with amounts using most of their 16 bytes.
fn sample_txs() -> Vec<Transaction> {
    let big = u128::MAX / 3;
    vec![
        signed(
            1,
            0,
            TxKind::Transfer {
                to: address(2),
                amount: 1_500,
            },
        ),
        signed(
            2,
            7,
            TxKind::CreateAccount {
                new_account: address(9),
                amount: big,
            },
        ),
        signed(3, u64::MAX, TxKind::Stake { amount: big }),
        signed(4, 1 << 40, TxKind::Unstake { amount: 1 }),
    ]
}

/// Flips every bit of `tx`'s canonical encoding in turn and checks each result is either
/// undecodable or a different transaction whose signature does not verify.
fn assert_every_bit_flip_invalidates(tx: &Transaction) -> Result<(), TestCaseError> {
    prop_assert_eq!(tx.verify(CHAIN_ID), Ok(()));
    let bytes = encoding::encode(tx);
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        if let Ok(altered) = encoding::decode::<Transaction>(&flipped) {
            prop_assert_ne!(altered.hash(), tx.hash(), "bit {}", bit);
            prop_assert!(
                altered.verify(CHAIN_ID).is_err(),
                "bit {} still verifies",
                bit
            );
        }
    }
    Ok(())
}

/// Flipping any single bit anywhere in a signed transaction's encoding (sender, nonce,
/// kind tag, recipient, amount or signature) leaves it undecodable or invalid, for one
/// transaction of each kind.
#[test]
fn any_bit_flip_invalidates_a_signed_tx() {
    for tx in sample_txs() {
        assert_every_bit_flip_invalidates(&tx).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// The same, for random properly signed transactions.
    #[test]
    fn any_bit_flip_invalidates_random_signed_txs(tx in arb_signed_transaction()) {
        assert_every_bit_flip_invalidates(&tx)?;
    }
}

/// A transaction signed for another chain id does not verify here, and one signed here
/// does not verify there, however close the chain ids are.
#[test]
fn signature_is_bound_to_the_chain_id() {
    // `sample_txs` are signed by keys 1 to 4 in turn.
    for (seed, tx) in (1..=4).zip(sample_txs()) {
        for other in [
            "almagill-test2",
            "almagill-tes",
            "Almagill-test",
            "",
            "almagill",
        ] {
            assert_eq!(
                tx.verify(other),
                Err(TxFormatError::InvalidSignature),
                "{other}"
            );
            let foreign = TxBody::sign(tx.body().clone(), &keypair(seed), other);
            assert_eq!(foreign.verify(other), Ok(()));
            assert_eq!(
                foreign.verify(CHAIN_ID),
                Err(TxFormatError::InvalidSignature)
            );
        }
    }
    // The chain id is length-prefixed, so moving bytes between it and the body changes
    // the signed message.
    assert_ne!(
        crypto::signing_message(domain::TX_SIGN, "ab", b"c"),
        crypto::signing_message(domain::TX_SIGN, "a", b"bc")
    );
}

/// A signature only verifies for the key that made it, and only as a transaction
/// signature: a vote signature over the same bytes is not a transaction signature.
#[test]
fn signature_is_bound_to_signer_and_purpose() {
    let tx = signed(1, 0, TxKind::Stake { amount: 5 });
    let by_other = tx.body().clone().sign(&keypair(2), CHAIN_ID);
    assert_eq!(
        by_other.verify(CHAIN_ID),
        Err(TxFormatError::InvalidSignature)
    );
    let as_vote = Transaction::new(
        tx.body().clone(),
        keypair(1).sign(domain::VOTE, CHAIN_ID, &encoding::encode(tx.body())),
    );
    assert_eq!(
        as_vote.verify(CHAIN_ID),
        Err(TxFormatError::InvalidSignature)
    );
    assert_eq!(tx.verify(CHAIN_ID), Ok(()));
}

// ---------------------------------------------------------------------------------------
// Batch verification
// ---------------------------------------------------------------------------------------

/// The group order l = 2^252 + 27742317777372353535851937790883648493, little-endian.
fn group_order() -> [u8; 32] {
    let mut l = [0u8; 32];
    l[..16].copy_from_slice(&27_742_317_777_372_353_535_851_937_790_883_648_493u128.to_le_bytes());
    l[31] = 0x10;
    l
}

/// `a + b` on 256-bit little-endian numbers (no overflow for the values used here).
fn add256(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    out
}

/// The encoding of the identity point (y = 1): a small-order public key.
fn identity() -> [u8; 32] {
    let mut p = [0u8; 32];
    p[0] = 1;
    p
}

/// A signature from its R and S halves.
fn signature(r: [u8; 32], s: [u8; 32]) -> Signature {
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(&r);
    bytes[32..].copy_from_slice(&s);
    Signature(bytes)
}

/// A 32-byte string that is not the encoding of any curve point.
fn undecompressable_key() -> Address {
    (2u8..=255)
        .map(|i| {
            let mut y = [0u8; 32];
            y[0] = i;
            y
        })
        .find(|y| ed25519_zebra::VerificationKey::try_from(*y).is_err())
        .map(Address)
        .expect("some small y is off the curve")
}

/// One (signer, message, signature) to check, owning its message.
#[derive(Clone, Debug)]
struct Item {
    signer: Address,
    message: Vec<u8>,
    signature: Signature,
    /// What ZIP-215 says `verify` must answer.
    expected: bool,
    what: &'static str,
}

/// Valid signatures, ordinary forgeries and the ZIP-215 edge cases.
fn items() -> Vec<Item> {
    let message = |i: u8| crypto::signing_message(domain::VOTE, CHAIN_ID, &[i; 40]);
    let sign = |seed: u8, i: u8| keypair(seed).sign(domain::VOTE, CHAIN_ID, &[i; 40]);
    let valid = |seed: u8, i: u8| Item {
        signer: address(seed),
        message: message(i),
        signature: sign(seed, i),
        expected: true,
        what: "valid",
    };
    let good = sign(1, 1);
    let mut s = [0u8; 32];
    s.copy_from_slice(&good.0[32..]);
    let mut r = [0u8; 32];
    r.copy_from_slice(&good.0[..32]);
    // y = p + 1 = 2^255 - 18: a non-canonical encoding of the identity.
    let mut noncanonical_identity = [0xffu8; 32];
    noncanonical_identity[0] = 0xee;
    noncanonical_identity[31] = 0x7f;
    let mut tampered_r = good;
    tampered_r.0[5] ^= 0x20;
    vec![
        valid(1, 1),
        valid(2, 2),
        valid(3, 3),
        valid(4, 1),
        Item {
            message: message(9),
            expected: false,
            what: "other message",
            ..valid(1, 1)
        },
        Item {
            signer: address(2),
            expected: false,
            what: "other signer",
            ..valid(1, 1)
        },
        Item {
            signature: tampered_r,
            expected: false,
            what: "tampered R",
            ..valid(1, 1)
        },
        Item {
            signer: Address(identity()),
            signature: signature(identity(), [0; 32]),
            expected: true,
            what: "small-order key, R = identity, S = 0 (ZIP-215 accepts)",
            ..valid(1, 1)
        },
        Item {
            signer: Address(noncanonical_identity),
            signature: signature(identity(), [0; 32]),
            expected: true,
            what: "non-canonical identity key, R = identity, S = 0 (ZIP-215 accepts)",
            ..valid(1, 1)
        },
        Item {
            signer: Address(identity()),
            signature: signature(noncanonical_identity, [0; 32]),
            expected: true,
            what: "small-order key, non-canonical R, S = 0 (ZIP-215 accepts)",
            ..valid(1, 1)
        },
        Item {
            signature: signature(r, add256(&s, &group_order())),
            expected: false,
            what: "non-canonical S = S + l",
            ..valid(1, 1)
        },
        Item {
            signer: Address(identity()),
            signature: signature(identity(), group_order()),
            expected: false,
            what: "small-order key, R = identity, S = l",
            ..valid(1, 1)
        },
        Item {
            signature: Signature([0; 64]),
            expected: false,
            what: "all-zero signature",
            ..valid(1, 1)
        },
        Item {
            signer: Address(identity()),
            signature: Signature([0; 64]),
            expected: true,
            what: "small-order key, all-zero signature (R of order 4; ZIP-215 accepts)",
            ..valid(1, 1)
        },
        Item {
            signer: undecompressable_key(),
            expected: false,
            what: "public key off the curve",
            ..valid(1, 1)
        },
        Item {
            signer: Address([0xff; 32]),
            expected: false,
            what: "public key of all ones",
            ..valid(1, 1)
        },
    ]
}

/// `items` as the batch `verify_batch` and `first_invalid` take.
fn as_batch(items: &[Item]) -> Vec<SignedMessage<'_>> {
    items
        .iter()
        .map(|i| SignedMessage {
            signer: i.signer,
            message: &i.message,
            signature: i.signature,
        })
        .collect()
}

/// What `verify_batch` says about `items`, and what `verify` says one by one.
fn batch_and_single(items: &[Item]) -> (Vec<bool>, Vec<bool>) {
    let single = items
        .iter()
        .map(|i| crypto::verify(&i.signer, &i.message, &i.signature))
        .collect();
    (crypto::verify_batch(&as_batch(items)), single)
}

/// Each case gets the answer ZIP-215 gives it from `verify` (small-order keys and
/// non-canonical point encodings accepted when the cofactored equation holds;
/// non-canonical S, off-curve keys and forgeries refused), and `verify_batch` gives the
/// same answer for it alone, twice, and before or after a run of valid signatures.
#[test]
fn batch_agrees_with_single_on_edge_cases() {
    let all = items();
    let valid: Vec<Item> = all.iter().filter(|i| i.what == "valid").cloned().collect();
    for item in &all {
        let single = crypto::verify(&item.signer, &item.message, &item.signature);
        assert_eq!(single, item.expected, "{}", item.what);
        for batch in [
            vec![item.clone()],
            vec![item.clone(), item.clone()],
            [valid.clone(), vec![item.clone()]].concat(),
            [vec![item.clone()], valid.clone()].concat(),
        ] {
            let (batched, one_by_one) = batch_and_single(&batch);
            assert_eq!(batched, one_by_one, "{}", item.what);
        }
    }
    let (batched, one_by_one) = batch_and_single(&all);
    assert_eq!(batched, one_by_one);
    assert_eq!(batch_and_single(&[]), (vec![], vec![]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// For random batches drawn from valid signatures, forgeries and edge cases (with
    /// repeats, in any order), `verify_batch` agrees with `verify` item by item.
    #[test]
    fn batch_agrees_with_single_on_random_batches(
        picks in vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let pool = items();
        let batch: Vec<Item> = picks.iter().map(|p| pool[p.index(pool.len())].clone()).collect();
        let (batched, one_by_one) = batch_and_single(&batch);
        prop_assert_eq!(&batched, &one_by_one);
        // `first_invalid` names the first item `verify` refuses, if any.
        prop_assert_eq!(
            crypto::first_invalid(&as_batch(&batch)),
            one_by_one.iter().position(|ok| !ok)
        );
    }
}

/// `first_invalid` finds nothing in an empty batch or one of valid signatures, and
/// otherwise names the first signature `verify` refuses, wherever it sits, even among
/// later bad ones and accepted ZIP-215 edge cases.
#[test]
fn first_invalid_names_the_first_bad_signature() {
    let all = items();
    assert_eq!(crypto::first_invalid(&[]), None);
    let accepted: Vec<Item> = all.iter().filter(|i| i.expected).cloned().collect();
    assert_eq!(crypto::first_invalid(&as_batch(&accepted)), None);
    let refused: Vec<Item> = all.iter().filter(|i| !i.expected).cloned().collect();
    for bad in &refused {
        for at in 0..=accepted.len() {
            let mut batch = accepted.clone();
            batch.insert(at, bad.clone());
            assert_eq!(
                crypto::first_invalid(&as_batch(&batch)),
                Some(at),
                "{} at {at}",
                bad.what
            );
            batch.extend(refused.iter().cloned());
            assert_eq!(
                crypto::first_invalid(&as_batch(&batch)),
                Some(at),
                "{} at {at}",
                bad.what
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Proposals and blocks
// ---------------------------------------------------------------------------------------

/// Five valid transactions from different senders.
fn five_txs() -> Vec<Transaction> {
    (1..=5)
        .map(|seed| {
            signed(
                seed,
                0,
                TxKind::Transfer {
                    to: address(seed + 10),
                    amount: 100,
                },
            )
        })
        .collect()
}

/// A proposal of valid transactions passes; so does an empty one; and exactly the limit of
/// transactions is allowed.
#[test]
fn check_body_accepts_valid_proposals() {
    assert_eq!(
        proposal(1, five_txs()).check_body(CHAIN_ID, 100, &VerifiedTxs::default()),
        Ok(())
    );
    assert_eq!(
        proposal(1, five_txs()).check_body(CHAIN_ID, 5, &VerifiedTxs::default()),
        Ok(())
    );
    assert_eq!(
        proposal(1, vec![]).check_body(CHAIN_ID, 0, &VerifiedTxs::default()),
        Ok(())
    );
    assert_eq!(
        proposal(1, five_txs()[..1].to_vec()).check_body(CHAIN_ID, 1, &VerifiedTxs::default()),
        Ok(())
    );
}

/// Each transaction's signature is checked once per node: a body checks only those not
/// verified already (by the mempool, or an earlier body) and remembers what it checked. A
/// transaction's hash covers its signature, so a forged copy of a verified transaction is
/// still checked, and refused.
///
/// Mutation caught: `check_body` ignoring `verified` — the second check of the same body
/// verifies five signatures again.
#[test]
fn check_body_verifies_each_transaction_once() {
    let verified = VerifiedTxs::default();
    let txs = five_txs();
    verified.add(txs[..2].iter().map(Transaction::hash));
    let before = crypto::signatures_checked();
    assert_eq!(
        proposal(1, txs.clone()).check_body(CHAIN_ID, 100, &verified),
        Ok(())
    );
    assert_eq!(crypto::signatures_checked() - before, 3);
    assert_eq!(
        proposal(1, txs.clone()).check_body(CHAIN_ID, 100, &verified),
        Ok(())
    );
    assert_eq!(crypto::signatures_checked() - before, 3);
    let mut forged = txs;
    let mut signature = *forged[0].signature();
    signature.0[40] ^= 1;
    forged[0] = Transaction::new(forged[0].body().clone(), signature);
    assert_eq!(
        proposal(1, forged).check_body(CHAIN_ID, 100, &verified),
        Err(BlockError::BadTx {
            index: 0,
            error: TxFormatError::InvalidSignature
        })
    );
}

/// A proposal with a bad signature is refused, naming the first bad transaction, even when
/// its transaction root covers the bad transaction.
#[test]
fn check_body_rejects_bad_signature() {
    for bad in 0..5 {
        let mut txs = five_txs();
        let mut signature = *txs[bad].signature();
        signature.0[40] ^= 1;
        txs[bad] = Transaction::new(txs[bad].body().clone(), signature);
        assert_eq!(
            proposal(1, txs.clone()).check_body(CHAIN_ID, 100, &VerifiedTxs::default()),
            Err(BlockError::BadTx {
                index: bad,
                error: TxFormatError::InvalidSignature
            })
        );
        txs[4] = Transaction::new(txs[4].body().clone(), Signature([0; 64]));
        assert_eq!(
            proposal(1, txs).check_body(CHAIN_ID, 100, &VerifiedTxs::default()),
            Err(BlockError::BadTx {
                index: bad,
                error: TxFormatError::InvalidSignature
            })
        );
    }
    // Valid signatures for another chain are bad signatures here.
    let foreign: Vec<Transaction> = five_txs()
        .into_iter()
        .map(|tx| tx.body().clone().sign(&keypair(1), "elsewhere"))
        .collect();
    assert!(matches!(
        proposal(1, foreign).check_body(CHAIN_ID, 100, &VerifiedTxs::default()),
        Err(BlockError::BadTx {
            index: 0,
            error: TxFormatError::InvalidSignature
        })
    ));
}

/// A proposal whose `tx_root` does not match its transactions is refused: a wrong root, the
/// transactions reordered, one dropped or one added.
#[test]
fn check_body_rejects_wrong_tx_root() {
    let good = proposal(1, five_txs());
    let mut wrong = good.clone();
    wrong.header.tx_root.0[0] ^= 1;
    assert_eq!(
        wrong.check_body(CHAIN_ID, 100, &VerifiedTxs::default()),
        Err(BlockError::TxRootMismatch)
    );
    let mut reordered = good.clone();
    reordered.txs.swap(0, 1);
    assert_eq!(
        reordered.check_body(CHAIN_ID, 100, &VerifiedTxs::default()),
        Err(BlockError::TxRootMismatch)
    );
    let mut dropped = good.clone();
    dropped.txs.pop();
    assert_eq!(
        dropped.check_body(CHAIN_ID, 100, &VerifiedTxs::default()),
        Err(BlockError::TxRootMismatch)
    );
    let mut added = good.clone();
    added.txs.push(signed(7, 0, TxKind::Stake { amount: 1 }));
    assert_eq!(
        added.check_body(CHAIN_ID, 100, &VerifiedTxs::default()),
        Err(BlockError::TxRootMismatch)
    );
    let mut emptied = good;
    emptied.txs.clear();
    assert_eq!(
        emptied.check_body(CHAIN_ID, 100, &VerifiedTxs::default()),
        Err(BlockError::TxRootMismatch)
    );
}

/// A proposal carrying the same transaction twice is refused, even with a matching root.
#[test]
fn check_body_rejects_duplicate_tx() {
    let mut txs = five_txs();
    txs.push(txs[2].clone());
    let dup = txs[2].hash();
    assert_eq!(
        proposal(1, txs).check_body(CHAIN_ID, 100, &VerifiedTxs::default()),
        Err(BlockError::DuplicateTx(dup))
    );
}

/// A proposal with more transactions than the limit is refused.
#[test]
fn check_body_rejects_too_many_txs() {
    assert_eq!(
        proposal(1, five_txs()).check_body(CHAIN_ID, 4, &VerifiedTxs::default()),
        Err(BlockError::TooManyTxs { count: 5, max: 4 })
    );
    assert_eq!(
        proposal(1, five_txs()[..1].to_vec()).check_body(CHAIN_ID, 0, &VerifiedTxs::default()),
        Err(BlockError::TooManyTxs { count: 1, max: 0 })
    );
}

/// Transactions that fail the stateless format checks make the proposal invalid, even when
/// properly signed.
#[test]
fn check_body_rejects_malformed_txs() {
    let mut txs = five_txs();
    txs[1] = signed(2, 0, TxKind::Stake { amount: 0 });
    assert_eq!(
        proposal(1, txs).check_body(CHAIN_ID, 100, &VerifiedTxs::default()),
        Err(BlockError::BadTx {
            index: 1,
            error: TxFormatError::ZeroAmount
        })
    );
    let mut txs = five_txs();
    txs[3] = signed(
        4,
        0,
        TxKind::CreateAccount {
            new_account: address(4),
            amount: 9,
        },
    );
    assert_eq!(
        proposal(1, txs).check_body(CHAIN_ID, 100, &VerifiedTxs::default()),
        Err(BlockError::BadTx {
            index: 3,
            error: TxFormatError::SelfTransfer
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A proposal of random valid transactions passes; corrupting one byte of any one
    /// transaction's signature is caught at exactly that transaction.
    #[test]
    fn check_body_finds_the_bad_signature(
        txs in vec(arb_signed_transaction(), 1..10),
        pick in any::<prop::sample::Index>(),
        byte in 0usize..64,
        mask in 1u8..=255,
    ) {
        let mut txs = txs;
        // Keep the transactions distinct (the generator may repeat one).
        txs.sort_by_key(Transaction::hash);
        txs.dedup_by_key(|tx| tx.hash());
        prop_assert_eq!(proposal(1, txs.clone()).check_body(CHAIN_ID, 100, &VerifiedTxs::default()), Ok(()));
        let bad = pick.index(txs.len());
        let mut signature = *txs[bad].signature();
        signature.0[byte] ^= mask;
        txs[bad] = Transaction::new(txs[bad].body().clone(), signature);
        prop_assert_eq!(
            proposal(1, txs).check_body(CHAIN_ID, 100, &VerifiedTxs::default()),
            Err(BlockError::BadTx { index: bad, error: TxFormatError::InvalidSignature })
        );
    }
}

/// A proposal's transaction root is the Merkle root of its transactions' hashes, and its
/// digest (what votes sign) commits to every header field, so to exactly those
/// transactions; a block made of it keeps the header and the transactions, and its hash
/// commits to the parent as well.
#[test]
fn proposal_digest_and_block_hash_commit_to_everything() {
    let p: Proposal = proposal(3, five_txs());
    assert_eq!(p.header.tx_root, tx_root(&p.txs));
    assert_eq!(p.digest(), p.header.digest());
    let mut other = p.clone();
    other.txs.pop();
    other.header.tx_root = tx_root(&other.txs);
    assert_ne!(other.digest(), p.digest());
    for field in 0..5 {
        let mut changed = p.header.clone();
        match field {
            0 => changed.height += 1,
            1 => changed.view += 1,
            2 => changed.timestamp_ms += 1,
            3 => changed.proposer = address(2),
            _ => changed.tx_root.0[31] ^= 1,
        }
        assert_ne!(changed.digest(), p.digest(), "field {field}");
    }

    let b: Block = block(3, five_txs());
    assert_eq!(b.height(), 3);
    assert_eq!(b.header.prev, test_prev(3));
    assert_eq!(b.header.proposal, p.header);
    assert_eq!(b.txs, p.txs);
    assert_eq!(b.hash(), b.header.hash());
    assert_eq!(Block::new(p.clone(), test_prev(3)), b);
    // Blocks and proposals are hashed under different domains.
    assert_ne!(b.hash(), p.digest());
    assert_ne!(Block::new(p.clone(), test_prev(4)).hash(), b.hash());
    assert_ne!(Block::new(other, test_prev(3)).hash(), b.hash());
}

// ---------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------

/// The proposal the certificates below commit.
fn committed_digest() -> Hash {
    proposal(5, five_txs()).digest()
}

/// A validator set of test keys with the given `(seed, stake)`.
fn validator_set(members: &[(u8, u128)]) -> ValidatorSet {
    ValidatorSet::new(
        members
            .iter()
            .map(|&(seed, stake)| Validator {
                address: address(seed),
                stake,
            })
            .collect(),
    )
    .expect("a non-empty set")
}

/// `seed`'s signature on `payload` for `chain_id`.
fn signature_on<T: Signable>(payload: T, seed: u8, chain_id: &str) -> Signature {
    Signed::sign(payload, &keypair(seed), chain_id).signature
}

/// The commit vote the certificates below carry: [`committed_digest`] at height 5, view 2.
fn commit_target() -> VoteTarget {
    VoteTarget {
        phase: Phase::Commit,
        height: 5,
        view: 2,
        digest: committed_digest(),
    }
}

/// A certificate on `payload` signed by `signers`, through `Certificate::new` (so the votes
/// are in canonical order).
fn certificate_on<T: Signable + Clone>(payload: T, signers: &[u8]) -> Certificate<T> {
    let votes: Vec<(Address, Signature)> = signers
        .iter()
        .map(|&seed| (address(seed), signature_on(payload.clone(), seed, CHAIN_ID)))
        .collect();
    Certificate::new(payload, votes)
}

/// A commit certificate for [`commit_target`] signed by `signers`.
fn certificate(signers: &[u8]) -> CommitCertificate {
    let cert = certificate_on(commit_target(), signers);
    assert!(cert.votes.windows(2).all(|w| w[0].0 < w[1].0));
    cert
}

/// Votes from validators holding more than two thirds of stake make a valid certificate.
#[test]
fn certificate_with_quorum_verifies() {
    let equal = validator_set(&[(1, 1), (2, 1), (3, 1)]);
    assert_eq!(certificate(&[1, 2, 3]).verify(CHAIN_ID, &equal), Ok(()));
    let single = validator_set(&[(1, 7)]);
    assert_eq!(certificate(&[1]).verify(CHAIN_ID, &single), Ok(()));
}

/// `Certificate::new` puts votes in address order and keeps one per signer, whatever order
/// and repeats it is given; the result verifies and names its signers in order.
#[test]
fn certificate_new_is_canonical() {
    let set = validator_set(&[(1, 1), (2, 1), (3, 1), (4, 1)]);
    let target = commit_target();
    let vote = |seed| (address(seed), signature_on(target, seed, CHAIN_ID));
    let given = vec![
        vote(4),
        vote(2),
        vote(4),
        vote(1),
        vote(3),
        vote(2),
        vote(1),
    ];
    let cert = Certificate::new(target, given);
    let mut expected: Vec<Address> = (1..=4).map(address).collect();
    expected.sort();
    assert_eq!(cert.signers().copied().collect::<Vec<_>>(), expected);
    assert_eq!(cert.votes.len(), 4);
    assert_eq!(cert.verify(CHAIN_ID, &set), Ok(()));
    assert_eq!(cert, certificate(&[1, 2, 3, 4]));
    assert_eq!(Certificate::new(target, vec![]).votes, vec![]);
}

/// Exactly two thirds of stake is not a quorum; two thirds plus one unit is.
#[test]
fn certificate_quorum_is_strictly_more_than_two_thirds() {
    let equal = validator_set(&[(1, 1), (2, 1), (3, 1)]);
    for pair in [[1, 2], [1, 3], [2, 3]] {
        assert_eq!(
            certificate(&pair).verify(CHAIN_ID, &equal),
            Err(CertificateError::NoQuorum)
        );
    }
    // Total 300: 200 is exactly two thirds, 201 is one unit more.
    let exact = validator_set(&[(1, 100), (2, 100), (3, 100)]);
    assert_eq!(
        certificate(&[1, 2]).verify(CHAIN_ID, &exact),
        Err(CertificateError::NoQuorum)
    );
    let over = validator_set(&[(1, 101), (2, 100), (3, 99)]);
    assert_eq!(certificate(&[1, 2]).verify(CHAIN_ID, &over), Ok(()));
    assert_eq!(
        certificate(&[2, 3]).verify(CHAIN_ID, &over),
        Err(CertificateError::NoQuorum)
    );
    assert_eq!(
        certificate(&[]).verify(CHAIN_ID, &over),
        Err(CertificateError::NoQuorum)
    );
    // One validator with more than two thirds alone.
    let heavy = validator_set(&[(1, 201), (2, 50), (3, 49)]);
    assert_eq!(certificate(&[1]).verify(CHAIN_ID, &heavy), Ok(()));
}

/// Votes out of address order, or a signer named twice, are refused as non-canonical,
/// so a signer cannot be counted twice towards a quorum.
#[test]
fn certificate_rejects_non_canonical_votes() {
    let set = validator_set(&[(1, 1), (2, 1), (3, 1)]);
    let mut reversed = certificate(&[1, 2, 3]);
    reversed.votes.reverse();
    assert_eq!(
        reversed.verify(CHAIN_ID, &set),
        Err(CertificateError::NotCanonical)
    );
    let mut repeated = certificate(&[1, 2]);
    let first = repeated.votes[0];
    repeated.votes.insert(0, first);
    assert_eq!(
        repeated.verify(CHAIN_ID, &set),
        Err(CertificateError::NotCanonical)
    );
    // Two signers, one named twice: still only two thirds, and refused before counting.
    let mut doubled = certificate(&[1, 2]);
    let last = *doubled.votes.last().unwrap();
    doubled.votes.push(last);
    assert_eq!(
        doubled.verify(CHAIN_ID, &set),
        Err(CertificateError::NotCanonical)
    );
}

/// A vote from a key outside the validator set is refused, naming it, even when the
/// members alone would make a quorum.
#[test]
fn certificate_rejects_non_members() {
    let set = validator_set(&[(1, 1), (2, 1), (3, 1)]);
    let outsider = certificate(&[1, 2, 3, 9]);
    assert_eq!(
        outsider.verify(CHAIN_ID, &set),
        Err(CertificateError::NotValidator(address(9)))
    );
}

/// A vote whose signature does not verify is refused, naming the signer: a tampered
/// signature, a vote for another proposal or view, a prepare vote, one for another chain,
/// another validator's, or the same bytes signed as another kind of statement.
#[test]
fn certificate_rejects_bad_signatures() {
    let set = validator_set(&[(1, 1), (2, 1), (3, 1)]);
    let cert = certificate(&[1, 2, 3]);
    let victim = cert.votes[1].0;
    let seed = (1..=3).find(|&s| address(s) == victim).unwrap();
    let base = cert.payload;
    let key = keypair(seed);
    let bytes = encoding::encode(&base);
    let wrong_votes = [
        signature_on(
            VoteTarget {
                digest: Hash::default(),
                ..base
            },
            seed,
            CHAIN_ID,
        ),
        signature_on(VoteTarget { view: 3, ..base }, seed, CHAIN_ID),
        signature_on(
            VoteTarget {
                phase: Phase::Prepare,
                ..base
            },
            seed,
            CHAIN_ID,
        ),
        signature_on(base, seed, "elsewhere"),
        signature_on(base, seed % 3 + 1, CHAIN_ID),
        key.sign(CheckpointTarget::DOMAIN, CHAIN_ID, &bytes),
        key.sign(ViewChange::DOMAIN, CHAIN_ID, &bytes),
        key.sign(NewView::DOMAIN, CHAIN_ID, &bytes),
        key.sign(domain::TX_SIGN, CHAIN_ID, &bytes),
        {
            let mut s = cert.votes[1].1;
            s.0[63] ^= 0x40;
            s
        },
    ];
    for signature in wrong_votes {
        let mut bad = cert.clone();
        bad.votes[1].1 = signature;
        assert_eq!(
            bad.verify(CHAIN_ID, &set),
            Err(CertificateError::BadSignature(victim))
        );
    }
    // The same certificate checked for another chain fails on the first signer.
    assert_eq!(
        cert.verify("elsewhere", &set),
        Err(CertificateError::BadSignature(cert.votes[0].0))
    );
    // A valid certificate's proposal, height, view or phase cannot be changed.
    for change in 0..4 {
        let mut moved = cert.clone();
        match change {
            0 => moved.payload.digest.0[0] ^= 1,
            1 => moved.payload.height += 1,
            2 => moved.payload.view += 1,
            _ => moved.payload.phase = Phase::Prepare,
        }
        assert!(matches!(
            moved.verify(CHAIN_ID, &set),
            Err(CertificateError::BadSignature(_))
        ));
    }
}

/// A checkpoint at height 20 with a state root of its own.
fn checkpoint_target() -> CheckpointTarget {
    CheckpointTarget {
        height: 20,
        state_root: Hash::digest(b"test-state", &[b"twenty"]),
    }
}

/// Checkpoint certificates follow the same rules: a quorum of members' valid signatures
/// verifies; two thirds, an outsider, non-canonical order, a tampered or foreign
/// signature, or a moved height or state root do not; nor do vote signatures (or any
/// other kind of statement's) over the checkpoint's very bytes.
#[test]
fn checkpoint_certificates_are_checked_in_full() {
    let set = validator_set(&[(1, 1), (2, 1), (3, 1)]);
    let target = checkpoint_target();
    let cert: CheckpointCertificate = certificate_on(target, &[3, 1, 2]);
    assert_eq!(cert.verify(CHAIN_ID, &set), Ok(()));
    assert_eq!(
        certificate_on(target, &[1, 3]).verify(CHAIN_ID, &set),
        Err(CertificateError::NoQuorum)
    );
    assert_eq!(
        certificate_on(target, &[1, 2, 3, 7]).verify(CHAIN_ID, &set),
        Err(CertificateError::NotValidator(address(7)))
    );
    let mut reversed = cert.clone();
    reversed.votes.reverse();
    assert_eq!(
        reversed.verify(CHAIN_ID, &set),
        Err(CertificateError::NotCanonical)
    );
    assert_eq!(
        cert.verify("elsewhere", &set),
        Err(CertificateError::BadSignature(cert.votes[0].0))
    );
    let bytes = encoding::encode(&target);
    for (i, (signer, _)) in cert.votes.iter().enumerate() {
        let seed = (1..=3).find(|&s| address(s) == *signer).unwrap();
        let key = keypair(seed);
        for signature in [
            key.sign(VoteTarget::DOMAIN, CHAIN_ID, &bytes),
            key.sign(ViewChange::DOMAIN, CHAIN_ID, &bytes),
            key.sign(NewView::DOMAIN, CHAIN_ID, &bytes),
            key.sign(domain::TX_SIGN, CHAIN_ID, &bytes),
            signature_on(target, seed, "elsewhere"),
            signature_on(
                CheckpointTarget {
                    height: 30,
                    ..target
                },
                seed,
                CHAIN_ID,
            ),
        ] {
            let mut bad = cert.clone();
            bad.votes[i].1 = signature;
            assert_eq!(
                bad.verify(CHAIN_ID, &set),
                Err(CertificateError::BadSignature(*signer))
            );
        }
    }
    for change in 0..2 {
        let mut moved = cert.clone();
        match change {
            0 => moved.payload.height += 1,
            _ => moved.payload.state_root.0[7] ^= 1,
        }
        assert!(matches!(
            moved.verify(CHAIN_ID, &set),
            Err(CertificateError::BadSignature(_))
        ));
    }
}

// ---------------------------------------------------------------------------------------
// Signed statements
// ---------------------------------------------------------------------------------------

/// A vote of each phase, with edge-case fields.
fn sample_vote_targets() -> Vec<VoteTarget> {
    vec![
        commit_target(),
        VoteTarget {
            phase: Phase::Prepare,
            height: 1,
            view: 1,
            digest: Hash::default(),
        },
        VoteTarget {
            phase: Phase::Commit,
            height: u64::MAX,
            view: u64::MAX,
            digest: Hash([0xff; 32]),
        },
    ]
}

/// A view change to round 4 carrying a checkpoint certificate and a prepared certificate.
fn sample_view_change() -> ViewChange {
    ViewChange {
        round: 4,
        checkpoint: certificate_on(checkpoint_target(), &[1, 2, 3]),
        prepared: vec![certificate_on(
            VoteTarget {
                phase: Phase::Prepare,
                height: 21,
                view: 24,
                digest: proposal(21, vec![]).digest(),
            },
            &[1, 2, 3],
        )],
    }
}

/// A new view for round 4 on a signed view change, re-proposing height 21.
fn sample_new_view() -> NewView {
    NewView {
        round: 4,
        view_changes: vec![Signed::sign(sample_view_change(), &keypair(2), CHAIN_ID)],
        proposals: vec![(21, proposal(21, vec![]).digest())],
    }
}

/// `payload` signed by `seed` verifies on [`CHAIN_ID`] only: not on chain ids one
/// character away, not on the empty one, and a signature made for one of those does not
/// verify here. It is bound to its signer too: another validator named as the signer, or a
/// signer that is no key at all, does not verify.
fn assert_bound_to_chain_and_signer<T: Signable + Clone + Debug>(payload: T, seed: u8) {
    let good = Signed::sign(payload.clone(), &keypair(seed), CHAIN_ID);
    assert_eq!(good.signer, address(seed));
    assert!(good.verify(CHAIN_ID), "{good:?}");
    for other in [
        "almagill-test2",
        "almagill-tes",
        "Almagill-test",
        "",
        "almagill",
    ] {
        assert!(!good.verify(other), "{other}");
        let foreign = Signed::sign(payload.clone(), &keypair(seed), other);
        assert!(foreign.verify(other));
        assert!(!foreign.verify(CHAIN_ID), "{other}");
    }
    for signer in [address(seed % 4 + 1), Address([0xff; 32]), Address([0; 32])] {
        let moved = Signed {
            signer,
            ..good.clone()
        };
        assert!(!moved.verify(CHAIN_ID), "{signer:?}");
    }
}

/// Every kind of signed statement (votes of both phases, checkpoints, view changes, new
/// views) verifies only for its chain and its signer.
#[test]
fn signed_statements_are_bound_to_chain_and_signer() {
    for target in sample_vote_targets() {
        assert_bound_to_chain_and_signer(target, 1);
    }
    assert_bound_to_chain_and_signer(checkpoint_target(), 2);
    assert_bound_to_chain_and_signer(sample_view_change(), 3);
    assert_bound_to_chain_and_signer(sample_new_view(), 4);
}

/// `T`'s domain signature, by `seed`, over `bytes` on [`CHAIN_ID`].
fn sign_as<T: Signable>(seed: u8, bytes: &[u8]) -> Signature {
    keypair(seed).sign(T::DOMAIN, CHAIN_ID, bytes)
}

/// A statement `payload` carrying a signature made by `seed` over its exact canonical
/// bytes, but under `domain`.
fn signed_under<T: Signable + Clone>(payload: &T, seed: u8, domain: &[u8]) -> Signed<T> {
    Signed {
        payload: payload.clone(),
        signer: address(seed),
        signature: keypair(seed).sign(domain, CHAIN_ID, &encoding::encode(payload)),
    }
}

/// Domain separation: each kind of statement has its own domain tag, so a signature made
/// as one kind never verifies as another over the same bytes. A vote's signature over a
/// checkpoint's, view change's or new view's exact bytes does not make that statement
/// signed, and neither does a transaction signature; each of them signed as itself over a
/// vote's bytes does not make a signed vote; the vote's own signature moved onto a
/// checkpoint of the same height and digest fails too.
#[test]
fn signatures_are_bound_to_their_kind_of_statement() {
    let domains = [
        VoteTarget::DOMAIN,
        CheckpointTarget::DOMAIN,
        ViewChange::DOMAIN,
        NewView::DOMAIN,
        domain::TX_SIGN,
    ];
    // Distinct, and none a prefix of another (each ends in NUL).
    for (i, a) in domains.iter().enumerate() {
        assert_eq!(a.last(), Some(&0), "{a:?}");
        for b in &domains[i + 1..] {
            assert!(!a.starts_with(b) && !b.starts_with(a), "{a:?} {b:?}");
        }
    }
    let vote_target = commit_target();
    let checkpoint = checkpoint_target();
    let view_change = sample_view_change();
    let new_view = sample_new_view();
    // Each statement signed over its exact bytes under each domain: only its own verifies.
    for (i, &domain) in domains.iter().enumerate() {
        assert_eq!(
            signed_under(&vote_target, 1, domain).verify(CHAIN_ID),
            i == 0
        );
        assert_eq!(
            signed_under(&checkpoint, 1, domain).verify(CHAIN_ID),
            i == 1
        );
        assert_eq!(
            signed_under(&view_change, 1, domain).verify(CHAIN_ID),
            i == 2
        );
        assert_eq!(signed_under(&new_view, 1, domain).verify(CHAIN_ID), i == 3);
    }
    // The same bytes signed as each kind give different messages and signatures.
    let bytes = encoding::encode(&view_change);
    let messages = [
        crypto::signing_message(VoteTarget::DOMAIN, CHAIN_ID, &bytes),
        crypto::signing_message(CheckpointTarget::DOMAIN, CHAIN_ID, &bytes),
        view_change.signing_message(CHAIN_ID),
        crypto::signing_message(NewView::DOMAIN, CHAIN_ID, &bytes),
    ];
    for (i, a) in messages.iter().enumerate() {
        for b in &messages[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_ne!(
        sign_as::<VoteTarget>(1, &bytes),
        sign_as::<ViewChange>(1, &bytes)
    );
    // A real vote's signature, moved onto a checkpoint naming the same height and digest.
    let vote = Signed::sign(vote_target, &keypair(1), CHAIN_ID);
    let moved = Signed {
        payload: CheckpointTarget {
            height: vote_target.height,
            state_root: vote_target.digest,
        },
        signer: vote.signer,
        signature: vote.signature,
    };
    assert!(vote.verify(CHAIN_ID));
    assert!(!moved.verify(CHAIN_ID));
}

/// Flips every bit of a signed statement's encoding in turn: each result is undecodable, or
/// a different statement that does not verify.
fn assert_every_bit_flip_invalidates_statement<T>(signed: &Signed<T>) -> Result<(), TestCaseError>
where
    T: Signable + Decode<()> + PartialEq + Debug,
{
    prop_assert!(signed.verify(CHAIN_ID));
    let bytes = encoding::encode(signed);
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        if let Ok(altered) = encoding::decode::<Signed<T>>(&flipped) {
            prop_assert_ne!(&altered, signed, "bit {}", bit);
            prop_assert!(!altered.verify(CHAIN_ID), "bit {} still verifies", bit);
        }
    }
    Ok(())
}

/// Flipping any single bit anywhere in a signed vote (phase tag, height, view, digest,
/// signer or signature) leaves it undecodable or invalid, for votes of both phases and
/// extreme fields; the same holds for a signed checkpoint, view change and new view,
/// whose bits include those of the certificates inside them.
#[test]
fn any_bit_flip_invalidates_a_signed_statement() {
    for (seed, target) in (1..).zip(sample_vote_targets()) {
        let vote = Signed::sign(target, &keypair(seed), CHAIN_ID);
        assert_every_bit_flip_invalidates_statement(&vote).unwrap();
    }
    let checkpoint = Signed::sign(checkpoint_target(), &keypair(2), CHAIN_ID);
    assert_every_bit_flip_invalidates_statement(&checkpoint).unwrap();
    let view_change = Signed::sign(sample_view_change(), &keypair(3), CHAIN_ID);
    assert_every_bit_flip_invalidates_statement(&view_change).unwrap();
    let new_view = Signed::sign(sample_new_view(), &keypair(4), CHAIN_ID);
    assert_every_bit_flip_invalidates_statement(&new_view).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// The same, for random votes signed by one of a few keys.
    #[test]
    fn any_bit_flip_invalidates_random_signed_votes(
        target in common::arb_vote_target(),
        seed in 1u8..=8,
    ) {
        let vote = Signed::sign(target, &keypair(seed), CHAIN_ID);
        assert_every_bit_flip_invalidates_statement(&vote)?;
    }
}

/// A signature built by hand over a mixed-order key (a valid key plus a point of small
/// order) and with a mixed-order nonce `R`: ZIP-215's cofactored check accepts it, and the
/// batch check must say exactly the same as the single one, alone and among valid
/// signatures, so no such signature can split validators.
#[test]
fn batch_agrees_with_single_on_mixed_order_keys_and_nonces() {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};

    let message = crypto::signing_message(b"test\0", "chain", b"mixed order");
    let a = Scalar::from_bytes_mod_order([7u8; 32]);
    let r = Scalar::from_bytes_mod_order([9u8; 32]);
    let mut forged = Vec::new();
    for torsion in 1..8 {
        for (key_torsion, nonce_torsion) in [(torsion, 0), (0, torsion), (torsion, torsion)] {
            let key = (a * B + EIGHT_TORSION[key_torsion]).compress().to_bytes();
            let nonce = (r * B + EIGHT_TORSION[nonce_torsion]).compress().to_bytes();
            let k = Scalar::from_hash(
                Sha512::new()
                    .chain_update(nonce)
                    .chain_update(key)
                    .chain_update(&message),
            );
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&nonce);
            signature[32..].copy_from_slice((r + k * a).as_bytes());
            forged.push((Address(key), Signature(signature)));
        }
    }
    let valid_key = almagill::crypto::Keypair::from_seed([3; 32]);
    let valid = (
        valid_key.address(),
        valid_key.sign(b"test\0", "chain", b"mixed order"),
    );
    assert!(crypto::verify(&valid.0, &message, &valid.1));
    let singles: Vec<bool> = forged
        .iter()
        .map(|(signer, signature)| crypto::verify(signer, &message, signature))
        .collect();
    assert!(
        singles.iter().all(|ok| *ok),
        "ZIP-215 accepts mixed-order keys and nonces"
    );
    let mut items: Vec<SignedMessage<'_>> = forged
        .iter()
        .map(|(signer, signature)| SignedMessage {
            signer: *signer,
            message: &message,
            signature: *signature,
        })
        .collect();
    assert_eq!(crypto::verify_batch(&items), singles);
    items.push(SignedMessage {
        signer: valid.0,
        message: &message,
        signature: valid.1,
    });
    let mut expected = singles.clone();
    expected.push(true);
    assert_eq!(crypto::verify_batch(&items), expected);
}
