//! Merkle trees and inclusion proofs: every proof of every tree up to 65 leaves verifies,
//! and changing anything about it (leaf, index, size, root, path) makes it fail; a
//! block's transactions are provable from its header alone.

mod common;

use almagill::crypto::Hash;
use almagill::merkle::{self, Proof};
use almagill::tx::{Transaction, TxKind};
use common::{block, proposal, signed};

/// The largest tree checked exhaustively.
const MAX_SIZE: usize = 65;

/// `n` distinct leaves.
fn leaves(n: usize) -> Vec<Hash> {
    (0..n as u64)
        .map(|i| Hash::digest(b"test-leaf", &[&i.to_le_bytes()]))
        .collect()
}

/// A hash with one bit flipped.
fn flipped(hash: &Hash, bit: usize) -> Hash {
    let mut h = *hash;
    h.0[bit / 8] ^= 1 << (bit % 8);
    h
}

/// Every leaf of every tree of 1 to 65 leaves has a proof, and that proof verifies
/// against the tree's root.
#[test]
fn every_proof_of_every_size_verifies() {
    for size in 1..=MAX_SIZE {
        let leaves = leaves(size);
        let root = merkle::root(&leaves);
        for (index, leaf) in leaves.iter().enumerate() {
            let proof = merkle::prove(&leaves, index).expect("index is in range");
            assert_eq!(proof.index, index as u64);
            assert_eq!(proof.size, size as u64);
            assert!(
                merkle::verify(&root, leaf, &proof),
                "size {size} index {index}"
            );
        }
    }
}

/// A proof does not vouch for any other leaf: neither another leaf of the tree nor a
/// leaf hash one bit away.
#[test]
fn proof_fails_for_wrong_leaf() {
    for size in 1..=MAX_SIZE {
        let leaves = leaves(size);
        let root = merkle::root(&leaves);
        for index in 0..size {
            let proof = merkle::prove(&leaves, index).unwrap();
            for (other, leaf) in leaves.iter().enumerate() {
                if other != index {
                    assert!(
                        !merkle::verify(&root, leaf, &proof),
                        "size {size} {index}/{other}"
                    );
                }
            }
            assert!(!merkle::verify(&root, &flipped(&leaves[index], 0), &proof));
            assert!(!merkle::verify(
                &root,
                &flipped(&leaves[index], 255),
                &proof
            ));
        }
    }
}

/// A proof with its index changed to any other position (in range or not) fails.
#[test]
fn proof_fails_for_wrong_index() {
    for size in 1..=MAX_SIZE {
        let leaves = leaves(size);
        let root = merkle::root(&leaves);
        for index in 0..size {
            let proof = merkle::prove(&leaves, index).unwrap();
            let wrong_indices = (0..=size as u64 + 1).chain([u64::MAX]);
            for wrong in wrong_indices.filter(|&w| w != index as u64) {
                let bad = Proof {
                    index: wrong,
                    ..proof.clone()
                };
                assert!(
                    !merkle::verify(&root, &leaves[index], &bad),
                    "size {size} index {index} claimed {wrong}"
                );
            }
        }
    }
}

/// A proof with its tree size changed to any other size (smaller, larger, 0, u64::MAX)
/// fails.
#[test]
fn proof_fails_for_wrong_size() {
    for size in 1..=MAX_SIZE {
        let leaves = leaves(size);
        let root = merkle::root(&leaves);
        for index in 0..size {
            let proof = merkle::prove(&leaves, index).unwrap();
            let wrong_sizes = (0..=2 * MAX_SIZE as u64).chain([u64::MAX]);
            for wrong in wrong_sizes.filter(|&w| w != size as u64) {
                let bad = Proof {
                    size: wrong,
                    ..proof.clone()
                };
                assert!(
                    !merkle::verify(&root, &leaves[index], &bad),
                    "size {size} index {index} claimed size {wrong}"
                );
            }
        }
    }
}

/// A proof fails against any other root: the root of a tree one leaf smaller or larger,
/// or the true root with a bit flipped.
#[test]
fn proof_fails_for_wrong_root() {
    let all = leaves(MAX_SIZE + 1);
    for size in 1..=MAX_SIZE {
        let leaves = &all[..size];
        let root = merkle::root(leaves);
        let others = [
            merkle::root(&all[..size - 1]),
            merkle::root(&all[..size + 1]),
            flipped(&root, 0),
            flipped(&root, 131),
        ];
        for index in 0..size {
            let proof = merkle::prove(leaves, index).unwrap();
            for other in &others {
                assert!(
                    !merkle::verify(other, &leaves[index], &proof),
                    "size {size}"
                );
            }
        }
    }
}

/// Tampering with the path (flipping a bit of any element, swapping two elements,
/// dropping or adding an element) makes the proof fail.
#[test]
fn proof_fails_for_tampered_path() {
    for size in 1..=MAX_SIZE {
        let leaves = leaves(size);
        let root = merkle::root(&leaves);
        for index in 0..size {
            let proof = merkle::prove(&leaves, index).unwrap();
            let leaf = &leaves[index];
            for at in 0..proof.path.len() {
                for bit in [0, 77, 255] {
                    let mut bad = proof.clone();
                    bad.path[at] = flipped(&bad.path[at], bit);
                    assert!(
                        !merkle::verify(&root, leaf, &bad),
                        "size {size} index {index}"
                    );
                }
                let mut shorter = proof.clone();
                shorter.path.remove(at);
                assert!(!merkle::verify(&root, leaf, &shorter));
            }
            for at in 1..proof.path.len() {
                let mut swapped = proof.clone();
                swapped.path.swap(at - 1, at);
                assert!(!merkle::verify(&root, leaf, &swapped));
            }
            let mut longer = proof.clone();
            longer.path.push(root);
            assert!(!merkle::verify(&root, leaf, &longer));
        }
    }
}

/// `prove` returns `None` for any index at or past the number of leaves, including on an
/// empty tree.
#[test]
fn prove_out_of_range_is_none() {
    assert_eq!(merkle::prove(&[], 0), None);
    for size in 1..=MAX_SIZE {
        let leaves = leaves(size);
        assert_eq!(merkle::prove(&leaves, size), None);
        assert_eq!(merkle::prove(&leaves, size + 1), None);
        assert_eq!(merkle::prove(&leaves, usize::MAX), None);
    }
}

/// The empty tree's root differs from every one-leaf tree's root, including the trees
/// whose leaf is the all-zero hash or the empty root itself.
#[test]
fn empty_root_differs_from_one_leaf_roots() {
    let empty = merkle::root(&[]);
    let mut candidates = leaves(MAX_SIZE);
    candidates.push(Hash::default());
    candidates.push(empty);
    for leaf in candidates {
        assert_ne!(merkle::root(&[leaf]), empty);
    }
}

/// Roots depend on every leaf and on the order and number of leaves.
#[test]
fn root_commits_to_every_leaf_and_order() {
    for size in 1..=MAX_SIZE {
        let leaves = leaves(size);
        let root = merkle::root(&leaves);
        for i in 0..size {
            let mut changed = leaves.clone();
            changed[i] = flipped(&changed[i], 3);
            assert_ne!(merkle::root(&changed), root);
        }
        if size > 1 {
            let mut reordered = leaves.clone();
            reordered.swap(0, size - 1);
            assert_ne!(merkle::root(&reordered), root);
            // A tree's root is not the root of a tree of its first size-1 leaves, nor
            // of itself with the last leaf repeated.
            assert_ne!(merkle::root(&leaves[..size - 1]), root);
            let mut padded = leaves.clone();
            padded.push(leaves[size - 1]);
            assert_ne!(merkle::root(&padded), root);
        }
    }
}

/// A proof verifies only at its true position: changing index and size together to any
/// other pair fails too. (Under plain RFC 9162 hashing, whose root does not commit to the
/// leaf count, leaf 2 of 3 would check as leaf 1 of 2 with the very same path.)
#[test]
fn proof_verifies_only_at_its_true_index_and_size() {
    const SIZES: usize = 33;
    for size in 1..=SIZES {
        let leaves = leaves(size);
        let root = merkle::root(&leaves);
        for index in 0..size {
            let proof = merkle::prove(&leaves, index).unwrap();
            for claimed_size in 1..=SIZES as u64 + 8 {
                for claimed_index in 0..claimed_size {
                    let bad = Proof {
                        index: claimed_index,
                        size: claimed_size,
                        path: proof.path.clone(),
                    };
                    let truthful = (claimed_index, claimed_size) == (index as u64, size as u64);
                    assert_eq!(
                        merkle::verify(&root, &leaves[index], &bad),
                        truthful,
                        "leaf {index} of {size} claimed as {claimed_index} of {claimed_size}"
                    );
                }
            }
        }
    }
    let leaves = leaves(3);
    let proof = merkle::prove(&leaves, 2).unwrap();
    let moved = Proof {
        index: 1,
        size: 2,
        path: proof.path.clone(),
    };
    assert!(merkle::verify(&merkle::root(&leaves), &leaves[2], &proof));
    assert!(!merkle::verify(&merkle::root(&leaves), &leaves[2], &moved));
}

/// A client holding only a block's header can check that a transaction is in the block,
/// at its position: the header's transaction root (the proposal's, which votes sign) is
/// the Merkle root of the transactions' hashes; each transaction's proof verifies against
/// it, and neither vouches for another of the block's transactions nor verifies against
/// the root of the same block with a transaction fewer or one more.
#[test]
fn transactions_are_provable_from_the_header_alone() {
    assert_eq!(block(1, vec![]).header.proposal.tx_root, merkle::root(&[]));
    let all: Vec<Transaction> = (0..9u64)
        .map(|nonce| {
            signed(
                1,
                nonce,
                TxKind::Stake {
                    amount: u128::from(nonce) + 1,
                },
            )
        })
        .collect();
    for n in 1..all.len() {
        let txs = &all[..n];
        let header = block(7, txs.to_vec()).header;
        assert_eq!(header.proposal, proposal(7, txs.to_vec()).header);
        let root = header.proposal.tx_root;
        let hashes: Vec<Hash> = txs.iter().map(Transaction::hash).collect();
        assert_eq!(root, merkle::root(&hashes));
        let fewer = proposal(7, all[..n - 1].to_vec()).header.tx_root;
        let more = proposal(7, all[..n + 1].to_vec()).header.tx_root;
        for (index, hash) in hashes.iter().enumerate() {
            let proof = merkle::prove(&hashes, index).unwrap();
            assert!(merkle::verify(&root, hash, &proof), "{index} of {n}");
            for (other, other_hash) in hashes.iter().enumerate() {
                if other != index {
                    assert!(!merkle::verify(&root, other_hash, &proof));
                }
            }
            assert!(!merkle::verify(&fewer, hash, &proof));
            assert!(!merkle::verify(&more, hash, &proof));
        }
    }
}
