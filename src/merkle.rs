//! Binary Merkle trees over transaction hashes (the shape of RFC 6962 / RFC 9162), with
//! inclusion proofs, so a client can check a transaction is in a block from its header alone.
//!
//! Leaves and inner nodes are hashed under different domain tags, so no inner node can be
//! passed off as a leaf. A tree of `n` leaves splits at the largest power of two below `n`.
//!
//! The root also commits to the number of leaves. A proof carries its own index and size,
//! and the RFC 9162 check cannot tell some (index, size) pairs apart (leaf 2 of 3 checks
//! like leaf 1 of 2), so without that a proof could put a leaf at the wrong position.

use bincode::{Decode, Encode};

use crate::crypto::{domain, Hash};

fn leaf_hash(leaf: &Hash) -> Hash {
    Hash::digest(domain::MERKLE_LEAF, &[&leaf.0])
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::digest(domain::MERKLE_NODE, &[&left.0, &right.0])
}

/// The largest power of two strictly below `n` (for `n >= 2`).
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The root of the tree over `leaves`: its top node bound to its leaf count. An empty tree
/// has a fixed root of its own.
pub fn root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return Hash::digest(domain::MERKLE_EMPTY, &[]);
    }
    sized_root(leaves.len() as u64, &top(leaves))
}

/// The top node of the RFC 9162 tree over one or more leaves.
fn top(leaves: &[Hash]) -> Hash {
    match leaves {
        [leaf] => leaf_hash(leaf),
        _ => {
            let k = split(leaves.len());
            node_hash(&top(&leaves[..k]), &top(&leaves[k..]))
        }
    }
}

/// The root of a tree of `size` leaves whose top node is `top`.
fn sized_root(size: u64, top: &Hash) -> Hash {
    Hash::digest(domain::MERKLE_ROOT, &[&size.to_le_bytes(), &top.0])
}

/// Proof that one leaf sits at `index` in a tree of `size` leaves.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Proof {
    /// The leaf's position.
    pub index: u64,
    /// How many leaves the tree has.
    pub size: u64,
    /// Sibling hashes from the leaf up to the root.
    pub path: Vec<Hash>,
}

/// The inclusion proof for `leaves[index]`, or `None` if there is no such leaf.
pub fn prove(leaves: &[Hash], index: usize) -> Option<Proof> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    let (mut lo, mut hi, mut at) = (0, leaves.len(), index);
    // Walk down from the root, remembering the sibling of each subtree we enter; the
    // proof lists them from the bottom up.
    while hi - lo > 1 {
        let k = split(hi - lo);
        if at < k {
            path.push(top(&leaves[lo + k..hi]));
            hi = lo + k;
        } else {
            path.push(top(&leaves[lo..lo + k]));
            lo += k;
            at -= k;
        }
    }
    path.reverse();
    Some(Proof {
        index: index as u64,
        size: leaves.len() as u64,
        path,
    })
}

/// Checks that `leaf` is at `proof.index` of the tree of `proof.size` leaves whose root is
/// `root` (RFC 9162, 2.1.3.2, then the leaf count the root commits to).
pub fn verify(root: &Hash, leaf: &Hash, proof: &Proof) -> bool {
    if proof.index >= proof.size {
        return false;
    }
    let (mut fnode, mut snode) = (proof.index, proof.size - 1);
    let mut hash = leaf_hash(leaf);
    for sibling in &proof.path {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            hash = node_hash(sibling, &hash);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && sized_root(proof.size, &hash) == *root
}
