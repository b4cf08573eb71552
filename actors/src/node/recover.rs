//! Recovery at start: the ledger from the newest stored snapshot plus the blocks after it,
//! each checked against the state root stored with it; and, once, the move of an old
//! `chain.log` into the database.

use std::path::Path;

use almagill::genesis::Genesis;
use almagill::ledger::Ledger;
use anyhow::{bail, Context as _, Result};
use tracing::info;

use crate::store::{legacy, ChainStore, Commit, StoreError};

/// The chain store of `dir` and the ledger as of its last block. Start time depends on how
/// many blocks follow the newest snapshot (at most `snapshot_every`), not on the chain's
/// length.
pub fn recover(dir: &Path, genesis: &Genesis, snapshot_every: u64) -> Result<(ChainStore, Ledger)> {
    let mut chain = ChainStore::open(dir, genesis.hash())?;
    let mut ledger = match chain.latest_snapshot()? {
        Some((head, chunks)) => {
            let at = head.height;
            if chain.state_root(at)? != Some(head.state_root) {
                return Err(StoreError::corrupt(
                    chain.path(),
                    at,
                    "the snapshot's state root is not the one stored for its height",
                )
                .into());
            }
            Ledger::from_snapshot(genesis, &head, chunks)
                .map_err(|e| StoreError::corrupt(chain.path(), at, e.to_string()))?
        }
        None => Ledger::from_genesis(genesis),
    };
    let from = ledger.height();
    for height in from + 1..=chain.height() {
        let Some((block, _)) = chain.block(height)? else {
            bail!(StoreError::corrupt(
                chain.path(),
                height,
                "a stored block is missing"
            ));
        };
        let outcome = ledger
            .apply_block(&block)
            .context("the stored chain does not execute")?;
        if chain.state_root(height)? != Some(outcome.state_root) {
            bail!(StoreError::corrupt(
                chain.path(),
                height,
                "executing the stored block gives another state root than the one stored"
            ));
        }
    }
    info!(target: "store", snapshot = from, replayed = chain.height() - from, "ledger recovered");
    if let Some(blocks) = legacy::read(dir)? {
        let count = blocks.len();
        for (block, certificate) in blocks {
            if block.height() <= chain.height() {
                continue;
            }
            let outcome = ledger
                .apply_block(&block)
                .context("the old chain log does not execute")?;
            let snapshot = (block.height() % snapshot_every == 0).then(|| ledger.snapshot());
            let epoch_end = outcome
                .new_validators
                .is_some()
                .then(|| ledger.root_parts());
            chain.append(&Commit {
                block: &block,
                certificate: &certificate,
                results: &outcome.results,
                state_root: outcome.state_root,
                snapshot,
                epoch_end,
            })?;
        }
        let kept = legacy::retire(dir)?;
        info!(target: "store", blocks = count, kept = %kept.display(), "moved the old chain log into the database");
    }
    Ok((chain, ledger))
}

#[cfg(test)]
mod tests {
    use almagill::block::{Block, Proposal};
    use almagill::certificate::{Certificate, CommitCertificate, Phase, VoteTarget};
    use almagill::crypto::{Hash, Keypair};
    use almagill::encoding;
    use almagill_testkit::GenesisBuilder;

    use super::*;
    use crate::store::Log;

    fn genesis() -> Genesis {
        let validator = Keypair::from_seed([1; 32]).address();
        GenesisBuilder::new("recover-test")
            .account("v", validator, 10, 5)
            .build()
    }

    /// `n` empty blocks linked from `genesis`, each with an (unsigned) commit certificate.
    fn chain(genesis: &Genesis, n: u64) -> Vec<(Block, CommitCertificate)> {
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

    #[test]
    fn an_old_chain_log_moves_into_the_database_once() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = genesis();
        let blocks = chain(&genesis, 7);
        let bodies: Vec<Vec<u8>> = blocks.iter().map(encoding::encode).collect();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        Log::rewrite(&dir.path().join(legacy::LEGACY_FILE), &refs).unwrap();

        let (chain, ledger) = recover(dir.path(), &genesis, 3).unwrap();
        assert_eq!((chain.height(), ledger.height()), (7, 7));
        assert_eq!(chain.tip_hash(), blocks[6].0.hash());
        assert!(!dir.path().join(legacy::LEGACY_FILE).exists());
        assert!(dir.path().join(legacy::MIGRATED_FILE).exists());
        let snapshot = chain.latest_snapshot().unwrap().unwrap().0;
        assert_eq!(snapshot.height, 6, "snapshots are taken as the blocks move");
        drop(chain);

        // Started again: from the snapshot at 6, block 7 executed again, nothing migrated.
        let (chain, mut again) = recover(dir.path(), &genesis, 3).unwrap();
        assert_eq!(chain.height(), 7);
        assert_eq!(again.state_root(), chain.state_root(7).unwrap().unwrap());
    }

    #[test]
    fn a_state_root_that_execution_does_not_give_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = genesis();
        let mut store = ChainStore::open(dir.path(), genesis.hash()).unwrap();
        let mut ledger = Ledger::from_genesis(&genesis);
        for (i, (block, certificate)) in chain(&genesis, 3).iter().enumerate() {
            let outcome = ledger.apply_block(block).unwrap();
            let state_root = if i == 1 {
                Hash([9; 32])
            } else {
                outcome.state_root
            };
            store
                .append(&Commit {
                    block,
                    certificate,
                    results: &outcome.results,
                    state_root,
                    snapshot: None,
                    epoch_end: None,
                })
                .unwrap();
        }
        drop(store);
        let error = recover(dir.path(), &genesis, 100).unwrap_err();
        assert!(
            format!("{error:#}").contains("another state root"),
            "{error:#}"
        );
    }
}
