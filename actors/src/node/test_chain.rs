//! A one-validator genesis and empty blocks on top of it, for the node's unit tests.

use almagill::block::{Block, Proposal};
use almagill::certificate::{Certificate, CommitCertificate, Phase, VoteTarget};
use almagill::crypto::Keypair;
use almagill::genesis::Genesis;
use almagill_testkit::GenesisBuilder;

/// A genesis with one validator, the key of seed 1.
pub fn genesis() -> Genesis {
    let validator = Keypair::from_seed([1; 32]).address();
    GenesisBuilder::new("node-test")
        .account("v", validator, 10, 5)
        .build()
}

/// `n` empty blocks linked from `genesis`, each with an (unsigned) commit certificate.
pub fn chain(genesis: &Genesis, n: u64) -> Vec<(Block, CommitCertificate)> {
    let proposer = Keypair::from_seed([1; 32]).address();
    let mut prev = genesis.hash();
    (1..=n)
        .map(|height| {
            let proposal = Proposal::new(height, height, height, proposer, Vec::new());
            let target = VoteTarget {
                phase: Phase::Commit,
                height,
                view: height,
                digest: proposal.digest(),
            };
            let block = Block::new(proposal, prev);
            prev = block.hash();
            (block, Certificate::new(target, Vec::new()))
        })
        .collect()
}
