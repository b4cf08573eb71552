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
            chain.append(&Commit {
                block: &block,
                certificate: &certificate,
                results: &outcome.results,
                state_root: outcome.state_root,
                snapshot,
            })?;
        }
        let kept = legacy::retire(dir)?;
        info!(target: "store", blocks = count, kept = %kept.display(), "moved the old chain log into the database");
    }
    Ok((chain, ledger))
}
