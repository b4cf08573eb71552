//! State sync's checks: epoch proofs carry trust in validator sets from genesis to a recent
//! epoch, an offer is trusted only against the validators of its height, and every piece a
//! peer could bend (signers, root parts, head, block, chunks) is refused when bent.

mod common;

use almagill::block::Block;
use almagill::certificate::{Certificate, Phase, Signed, VoteTarget};
use almagill::consensus::{CheckpointCertificate, CheckpointTarget};
use almagill::crypto::Hash;
use almagill::genesis::Genesis;
use almagill::ledger::{Ledger, RootParts, SnapshotChunk};
use almagill::state_sync::{EpochProof, KnownSets, Offer, SyncError};
use almagill::tx::TxKind;
use almagill::validators::Validator;
use common::{address, block, genesis, keypair, signed, CHAIN_ID, EPOCH_LENGTH, MIN_STAKE};

/// Validators 1, 2, 3 at genesis; account 4 stakes in block 1, so from epoch 2 on it
/// validates too.
fn chain_genesis() -> Genesis {
    genesis(&[
        (1, 1_000, MIN_STAKE),
        (2, 1_000, MIN_STAKE),
        (3, 1_000, MIN_STAKE),
        (4, 5 * MIN_STAKE, 0),
    ])
}

/// A checkpoint at `height` on `state_root`, signed by the keys of `seeds`.
fn checkpoint(height: u64, state_root: Hash, seeds: &[u8]) -> CheckpointCertificate {
    let target = CheckpointTarget { height, state_root };
    Certificate::new(
        target,
        seeds.iter().map(|&s| {
            let vote = Signed::sign(target, &keypair(s), CHAIN_ID);
            (vote.signer, vote.signature)
        }),
    )
}

/// The seeds of the validators of `height` in `ledger`.
fn signers(ledger: &Ledger, height: u64) -> Vec<u8> {
    let set = ledger.validators_for(height).unwrap();
    (1..=4)
        .filter(|&s| set.stake_of(&address(s)).is_some())
        .collect()
}

/// The chain executed to height 40: the epoch proofs at 10 and 20, and an offer (with its
/// chunks) at 40, all signed by the right validators.
fn chain() -> (Genesis, Vec<EpochProof>, Offer, Vec<SnapshotChunk>) {
    let genesis = chain_genesis();
    let mut ledger = Ledger::from_genesis(&genesis);
    let mut proofs = Vec::new();
    let stake = signed(4, 0, TxKind::Stake { amount: MIN_STAKE });
    let mut last = None;
    for height in 1..=4 * EPOCH_LENGTH {
        let txs = if height == 1 {
            vec![stake.clone()]
        } else {
            vec![]
        };
        let b = block(height, txs);
        let outcome = ledger.apply_block(&b).unwrap();
        if height % EPOCH_LENGTH == 0 && height < 4 * EPOCH_LENGTH {
            let seeds = signers(&ledger, height);
            proofs.push(EpochProof {
                checkpoint: checkpoint(height, outcome.state_root, &seeds),
                parts: ledger.root_parts(),
            });
        }
        last = Some(b);
    }
    let block: Block = last.unwrap();
    let seeds = signers(&ledger, block.height());
    assert_eq!(
        seeds,
        vec![1, 2, 3, 4],
        "account 4 validates from epoch 2 on"
    );
    let (head, chunks) = ledger.snapshot();
    let offer = Offer {
        checkpoint: checkpoint(head.height, head.state_root, &seeds),
        commit: commit(&block, &seeds),
        head,
        block,
    };
    (genesis, proofs, offer, chunks)
}

fn commit(block: &Block, seeds: &[u8]) -> almagill::certificate::CommitCertificate {
    let target = VoteTarget {
        phase: Phase::Commit,
        height: block.height(),
        view: block.header.proposal.view,
        digest: block.header.proposal.digest(),
    };
    Certificate::new(
        target,
        seeds.iter().map(|&s| {
            let vote = Signed::sign(target, &keypair(s), CHAIN_ID);
            (vote.signer, vote.signature)
        }),
    )
}

#[test]
fn epoch_proofs_from_genesis_prove_a_changed_set_and_the_offer_restores_the_ledger() {
    let (genesis, proofs, offer, chunks) = chain();
    let mut known = KnownSets::from_genesis(&genesis);
    assert_eq!(known.check_offer(&offer), Err(SyncError::UnknownEpoch(3)));
    assert_eq!(known.next_proof_height(), 10);
    for proof in &proofs {
        known.add(proof).unwrap();
    }
    assert!(
        known.knows(50) && !known.knows(51),
        "proofs at 10, 20, 30 prove epochs 2 to 4"
    );
    known.check_offer(&offer).unwrap();
    let mut restored = Ledger::from_snapshot(&genesis, &offer.head, chunks).unwrap();
    assert_eq!(restored.state_root(), offer.checkpoint.payload.state_root);
    assert_eq!(restored.height(), 40);
}

#[test]
fn a_proof_not_signed_by_a_quorum_of_its_epoch_is_refused() {
    let (genesis, proofs, _, _) = chain();
    let root = proofs[0].checkpoint.payload.state_root;
    // Account 4 validates only from epoch 2: it cannot sign for epoch 0.
    for seeds in [&[1, 2][..], &[1, 2, 4][..], &[4, 5, 6][..]] {
        let mut known = KnownSets::from_genesis(&genesis);
        let proof = EpochProof {
            checkpoint: checkpoint(10, root, seeds),
            parts: proofs[0].parts.clone(),
        };
        assert!(
            matches!(
                known.add(&proof),
                Err(SyncError::Certificate { height: 10, .. })
            ),
            "signed by {seeds:?}"
        );
    }
}

/// Mutation caught: without the check that the parts hash to the signed root, a peer makes
/// its own keys the validators of epoch 2.
#[test]
fn a_proof_whose_parts_name_another_set_is_refused() {
    let (genesis, proofs, _, _) = chain();
    let mut forged = proofs[0].clone();
    for (epoch, members) in &mut forged.parts.epochs {
        if *epoch == 2 {
            *members = vec![Validator {
                address: address(9),
                stake: MIN_STAKE,
            }];
        }
    }
    let mut known = KnownSets::from_genesis(&genesis);
    assert!(matches!(
        known.add(&forged),
        Err(SyncError::Mismatch { height: 10, .. })
    ));
    // Re-signing the forged root needs a quorum of epoch 0: outsiders cannot.
    forged.checkpoint = checkpoint(10, forged.parts.root(), &[9, 10, 11]);
    assert!(matches!(
        known.add(&forged),
        Err(SyncError::Certificate { .. })
    ));
    known.add(&proofs[0]).unwrap();
}

#[test]
fn epoch_proofs_out_of_order_are_refused() {
    let (genesis, proofs, _, _) = chain();
    let mut known = KnownSets::from_genesis(&genesis);
    assert_eq!(
        known.add(&proofs[1]),
        Err(SyncError::OutOfOrder {
            expected: 10,
            got: 20
        })
    );
    known.add(&proofs[0]).unwrap();
    assert!(known.add(&proofs[0]).is_err(), "a proof is used once");
}

/// Mutation caught: without the head's root compared with the checkpoint's, a head of
/// another state whose parts hash to its own root passes.
#[test]
fn an_offer_that_is_not_the_certified_state_is_refused() {
    let (genesis, proofs, offer, chunks) = chain();
    let mut known = KnownSets::from_genesis(&genesis);
    for proof in &proofs {
        known.add(proof).unwrap();
    }
    let refused = |bend: &dyn Fn(&mut Offer)| {
        let mut bent = offer.clone();
        bend(&mut bent);
        known.check_offer(&bent).is_err()
    };
    assert!(refused(&|o| o.head.state_root = Hash([7; 32])));
    // Another state whose parts hash to its own root: only the checkpoint can tell.
    assert!(refused(&|o| {
        o.head.accounts_root = Hash([7; 32]);
        o.head.state_root = RootParts {
            accounts_root: o.head.accounts_root,
            epochs: o.head.epochs.clone(),
            blames: o.head.blames.clone(),
        }
        .root();
    }));
    assert!(refused(&|o| o.head.accounts_root = Hash([7; 32])));
    assert!(refused(&|o| o.head.epochs.truncate(1)));
    assert!(refused(&|o| o.head.height = 30));
    assert!(refused(
        &|o| o.block = block(40, vec![signed(1, 0, TxKind::Stake { amount: 1 })])
    ));
    assert!(refused(&|o| o.commit = commit(&o.block, &[1, 2])));
    assert!(refused(
        &|o| o.checkpoint = checkpoint(40, o.head.state_root, &[1, 2])
    ));

    // Chunks that are not the head's accounts do not rebuild a ledger.
    let mut bent = chunks.clone();
    bent[0].0[0].1.balance += 1;
    assert!(Ledger::from_snapshot(&genesis, &offer.head, bent).is_err());
    assert!(Ledger::from_snapshot(&genesis, &offer.head, chunks).is_ok());
}
