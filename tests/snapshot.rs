//! Ledger snapshots: a snapshot restores exactly the ledger it was taken of, and pieces that
//! were tampered with, reordered, cut short or padded are refused, never used.

mod common;

use almagill::crypto::Address;
use almagill::genesis::Genesis;
use almagill::ledger::{Ledger, SnapshotChunk, SnapshotHead, ACCOUNTS_PER_CHUNK};
use almagill::tx::TxKind;
use common::{address, block, builder, signed, MIN_STAKE};

/// A genesis with three validators and `extra` more accounts (so snapshots span chunks).
fn big_genesis(extra: u32) -> Genesis {
    let stake = MIN_STAKE;
    (0..extra)
        .fold(
            builder(&[(1, 1_000, stake), (2, 1_000, stake), (3, 1_000, stake)]),
            |b, i| {
                let mut bytes = [0u8; 32];
                bytes[..4].copy_from_slice(&i.to_be_bytes());
                bytes[31] = 0xAA;
                b.account(&format!("a{i}"), Address(bytes), 5, 0)
            },
        )
        .build()
}

/// A ledger of `genesis` after one block that moves tokens, and its snapshot.
fn ledger_and_snapshot(genesis: &Genesis) -> (Ledger, SnapshotHead, Vec<SnapshotChunk>) {
    let mut ledger = Ledger::from_genesis(genesis);
    let transfer = signed(
        1,
        0,
        TxKind::Transfer {
            to: address(2),
            amount: 7,
        },
    );
    ledger.apply_block(&block(1, vec![transfer])).unwrap();
    let (head, chunks) = ledger.snapshot();
    (ledger, head, chunks)
}

#[test]
fn a_snapshot_restores_the_ledger_it_was_taken_of() {
    let genesis = big_genesis(2 * ACCOUNTS_PER_CHUNK as u32 + 17);
    let (mut ledger, head, chunks) = ledger_and_snapshot(&genesis);
    assert_eq!(head.chunks, 3);
    assert_eq!(head.height, 1);
    let mut restored = Ledger::from_snapshot(&genesis, &head, chunks).unwrap();
    assert_eq!(restored.height(), 1);
    assert_eq!(restored.state_root(), ledger.state_root());
    assert_eq!(
        restored.accounts().collect::<Vec<_>>(),
        ledger.accounts().collect::<Vec<_>>()
    );
    assert_eq!(
        restored.validator_epochs().collect::<Vec<_>>(),
        ledger.validator_epochs().collect::<Vec<_>>()
    );
    assert_eq!(restored.total_supply(), genesis.supply());
}

#[test]
fn tampered_pieces_are_refused() {
    let genesis = big_genesis(ACCOUNTS_PER_CHUNK as u32 + 5);
    let (_, head, chunks) = ledger_and_snapshot(&genesis);
    let refused = |head: &SnapshotHead, chunks: Vec<SnapshotChunk>| {
        Ledger::from_snapshot(&genesis, head, chunks)
            .unwrap_err()
            .to_string()
    };

    // Tokens moved between two accounts: the supply holds, the root does not.
    let mut swapped = chunks.clone();
    swapped[1].0[0].1.balance += 1;
    swapped[1].0[1].1.balance -= 1;
    assert!(refused(&head, swapped).contains("hash to"));

    // Tokens made from nothing.
    let mut minted = chunks.clone();
    minted[1].0[0].1.balance += 1;
    assert!(refused(&head, minted).contains("supply"));

    // Two accounts in the wrong order.
    let mut reordered = chunks.clone();
    reordered[1].0.swap(0, 1);
    assert!(refused(&head, reordered).contains("out of order"));

    // A chunk missing, or one more than the head says.
    assert!(refused(&head, chunks[..1].to_vec()).contains("chunks"));
    let mut padded = chunks.clone();
    padded.push(SnapshotChunk(vec![(
        Address([0xFF; 32]),
        Default::default(),
    )]));
    assert!(refused(&head, padded).contains("chunks"));

    // An empty chunk, or an oversized one.
    let mut empty = chunks.clone();
    empty.insert(1, SnapshotChunk(Vec::new()));
    assert!(refused(&head, empty).contains("holds 0"));

    // A validator set that is not in canonical form.
    let mut bad_epochs = head.clone();
    bad_epochs.epochs[0].1.reverse();
    assert!(refused(&bad_epochs, chunks.clone()).contains("validator set"));

    // Another root in the head.
    let mut other_root = head.clone();
    other_root.state_root.0[0] ^= 1;
    assert!(refused(&other_root, chunks).contains("hash to"));
}
