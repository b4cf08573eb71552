//! Signatures: a signed transaction cannot be altered by a single bit or moved to another
//! chain; batch verification says exactly what one-by-one verification says, even on the
//! ZIP-215 edge cases; blocks and commit certificates are checked in full.

mod common;

use almagill::block::{tx_root, Block, BlockError};
use almagill::certificate::{CertificateError, CommitCertificate, Phase, VoteTarget};
use almagill::crypto::{self, domain, Address, Hash, Signature, SignedMessage};
use almagill::encoding;
use almagill::tx::{Transaction, TxBody, TxFormatError, TxKind};
use almagill::validators::{Validator, ValidatorSet};
use common::{address, arb_signed_transaction, block, keypair, signed, CHAIN_ID};
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
            let foreign = TxBody::sign(tx.body.clone(), &keypair(seed), other);
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
    let by_other = tx.body.clone().sign(&keypair(2), CHAIN_ID);
    assert_eq!(
        by_other.verify(CHAIN_ID),
        Err(TxFormatError::InvalidSignature)
    );
    let as_vote = Transaction {
        signature: keypair(1).sign(domain::VOTE, CHAIN_ID, &encoding::encode(&tx.body)),
        ..tx.clone()
    };
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

/// What `verify_batch` says about `items`, and what `verify` says one by one.
fn batch_and_single(items: &[Item]) -> (Vec<bool>, Vec<bool>) {
    let batch: Vec<SignedMessage<'_>> = items
        .iter()
        .map(|i| SignedMessage {
            signer: i.signer,
            message: &i.message,
            signature: i.signature,
        })
        .collect();
    let single = items
        .iter()
        .map(|i| crypto::verify(&i.signer, &i.message, &i.signature))
        .collect();
    (crypto::verify_batch(&batch), single)
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
        prop_assert_eq!(batched, one_by_one);
    }
}

// ---------------------------------------------------------------------------------------
// Blocks
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

/// A block of valid transactions passes; so does an empty one; and exactly the limit of
/// transactions is allowed.
#[test]
fn check_body_accepts_valid_blocks() {
    assert_eq!(block(1, five_txs()).check_body(CHAIN_ID, 100), Ok(()));
    assert_eq!(block(1, five_txs()).check_body(CHAIN_ID, 5), Ok(()));
    assert_eq!(block(1, vec![]).check_body(CHAIN_ID, 0), Ok(()));
    assert_eq!(
        block(1, five_txs()[..1].to_vec()).check_body(CHAIN_ID, 1),
        Ok(())
    );
}

/// A block with a bad signature is refused, naming the first bad transaction, even when
/// its transaction root covers the bad transaction.
#[test]
fn check_body_rejects_bad_signature() {
    for bad in 0..5 {
        let mut txs = five_txs();
        txs[bad].signature.0[40] ^= 1;
        assert_eq!(
            block(1, txs.clone()).check_body(CHAIN_ID, 100),
            Err(BlockError::BadTx {
                index: bad,
                error: TxFormatError::InvalidSignature
            })
        );
        txs[4].signature = Signature([0; 64]);
        assert_eq!(
            block(1, txs).check_body(CHAIN_ID, 100),
            Err(BlockError::BadTx {
                index: bad,
                error: TxFormatError::InvalidSignature
            })
        );
    }
    // Valid signatures for another chain are bad signatures here.
    let foreign: Vec<Transaction> = five_txs()
        .into_iter()
        .map(|tx| tx.body.sign(&keypair(1), "elsewhere"))
        .collect();
    assert!(matches!(
        block(1, foreign).check_body(CHAIN_ID, 100),
        Err(BlockError::BadTx {
            index: 0,
            error: TxFormatError::InvalidSignature
        })
    ));
}

/// A block whose `tx_root` does not match its transactions is refused: a wrong root, the
/// transactions reordered, one dropped or one added.
#[test]
fn check_body_rejects_wrong_tx_root() {
    let good = block(1, five_txs());
    let mut wrong = good.clone();
    wrong.header.tx_root.0[0] ^= 1;
    assert_eq!(
        wrong.check_body(CHAIN_ID, 100),
        Err(BlockError::TxRootMismatch)
    );
    let mut reordered = good.clone();
    reordered.txs.swap(0, 1);
    assert_eq!(
        reordered.check_body(CHAIN_ID, 100),
        Err(BlockError::TxRootMismatch)
    );
    let mut dropped = good.clone();
    dropped.txs.pop();
    assert_eq!(
        dropped.check_body(CHAIN_ID, 100),
        Err(BlockError::TxRootMismatch)
    );
    let mut added = good.clone();
    added.txs.push(signed(7, 0, TxKind::Stake { amount: 1 }));
    assert_eq!(
        added.check_body(CHAIN_ID, 100),
        Err(BlockError::TxRootMismatch)
    );
    let mut emptied = good;
    emptied.txs.clear();
    assert_eq!(
        emptied.check_body(CHAIN_ID, 100),
        Err(BlockError::TxRootMismatch)
    );
}

/// A block carrying the same transaction twice is refused, even with a matching root.
#[test]
fn check_body_rejects_duplicate_tx() {
    let mut txs = five_txs();
    txs.push(txs[2].clone());
    let dup = txs[2].hash();
    assert_eq!(
        block(1, txs).check_body(CHAIN_ID, 100),
        Err(BlockError::DuplicateTx(dup))
    );
}

/// A block with more transactions than the limit is refused.
#[test]
fn check_body_rejects_too_many_txs() {
    assert_eq!(
        block(1, five_txs()).check_body(CHAIN_ID, 4),
        Err(BlockError::TooManyTxs { count: 5, max: 4 })
    );
    assert_eq!(
        block(1, five_txs()[..1].to_vec()).check_body(CHAIN_ID, 0),
        Err(BlockError::TooManyTxs { count: 1, max: 0 })
    );
}

/// Transactions that fail the stateless format checks make the block invalid, even when
/// properly signed.
#[test]
fn check_body_rejects_malformed_txs() {
    let mut txs = five_txs();
    txs[1] = signed(2, 0, TxKind::Stake { amount: 0 });
    assert_eq!(
        block(1, txs).check_body(CHAIN_ID, 100),
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
        block(1, txs).check_body(CHAIN_ID, 100),
        Err(BlockError::BadTx {
            index: 3,
            error: TxFormatError::SelfTransfer
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A block of random valid transactions passes; corrupting one byte of any one
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
        prop_assert_eq!(block(1, txs.clone()).check_body(CHAIN_ID, 100), Ok(()));
        let bad = pick.index(txs.len());
        txs[bad].signature.0[byte] ^= mask;
        prop_assert_eq!(
            block(1, txs).check_body(CHAIN_ID, 100),
            Err(BlockError::BadTx { index: bad, error: TxFormatError::InvalidSignature })
        );
    }
}

// ---------------------------------------------------------------------------------------
// Commit certificates
// ---------------------------------------------------------------------------------------

/// The block the certificates below commit.
fn committed_block() -> Hash {
    Hash::digest(b"test-block", &[b"certified"])
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

/// A certificate for [`committed_block`] at height 5, view 2, signed by `signers`, with
/// the votes in canonical (address) order.
fn certificate(signers: &[u8]) -> CommitCertificate {
    let mut cert = CommitCertificate {
        height: 5,
        view: 2,
        block: committed_block(),
        votes: vec![],
    };
    let target = cert.target();
    cert.votes = signers
        .iter()
        .map(|&seed| (address(seed), target.sign(&keypair(seed), CHAIN_ID)))
        .collect();
    cert.votes.sort_by_key(|(a, _)| *a);
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
/// signature, a vote for another block or view, a prepare vote, or one for another chain.
#[test]
fn certificate_rejects_bad_signatures() {
    let set = validator_set(&[(1, 1), (2, 1), (3, 1)]);
    let cert = certificate(&[1, 2, 3]);
    let victim = cert.votes[1].0;
    let seed = (1..=3).find(|&s| address(s) == victim).unwrap();
    let base = cert.target();
    let wrong_votes = [
        VoteTarget {
            block: Hash::default(),
            ..base
        }
        .sign(&keypair(seed), CHAIN_ID),
        VoteTarget { view: 3, ..base }.sign(&keypair(seed), CHAIN_ID),
        VoteTarget {
            phase: Phase::Prepare,
            ..base
        }
        .sign(&keypair(seed), CHAIN_ID),
        base.sign(&keypair(seed), "elsewhere"),
        base.sign(&keypair(seed % 3 + 1), CHAIN_ID),
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
    // A valid certificate's block, height or view cannot be changed.
    for change in [0, 1, 2] {
        let mut moved = cert.clone();
        match change {
            0 => moved.block.0[0] ^= 1,
            1 => moved.height += 1,
            _ => moved.view += 1,
        }
        assert!(matches!(
            moved.verify(CHAIN_ID, &set),
            Err(CertificateError::BadSignature(_))
        ));
    }
}

/// A certificate's transaction root helper and the block's own `tx_root` agree, so a
/// certificate for `block.hash()` commits to exactly those transactions.
#[test]
fn block_hash_commits_to_transactions() {
    let b: Block = block(3, five_txs());
    assert_eq!(b.header.tx_root, tx_root(&b.txs));
    let mut other = b.clone();
    other.txs.pop();
    other.header.tx_root = tx_root(&other.txs);
    assert_ne!(other.hash(), b.hash());
}
