//! The committed chain on disk: one checksummed log record per block, with its certificate.

use std::path::{Path, PathBuf};

use almagill::block::Block;
use almagill::certificate::{CommitCertificate, Phase};
use almagill::crypto::Hash;
use almagill::encoding;
use bincode::{Decode, Encode};

use super::{Log, StoreError};

/// The chain log's file name inside the data directory.
pub const CHAIN_FILE: &str = "chain.log";

/// The most blocks one [`ChainStore::range`] returns, so one catch-up request from a peer
/// cannot make the node clone and send an unbounded part of the chain.
pub const MAX_RANGE: u64 = 64;

/// One record of the chain log: a block and the proof it committed.
#[derive(Encode, Decode)]
struct StoredBlock {
    block: Block,
    certificate: CommitCertificate,
}

/// The node's committed chain, durable in `<data_dir>/chain.log`.
///
/// Each commit is one fsynced record, so a block is on disk whole or not at all. On open,
/// the chain is checked to be consecutive from height 1 and linked by `prev` hashes from
/// genesis, and each certificate to be a commit of its block; anything else is reported as
/// corruption.
///
/// All blocks are also kept in memory (a `Vec` indexed by height), which is fine for the
/// chain sizes the node sees now; a long-lived chain would want an on-disk index of record
/// offsets instead.
#[derive(Debug)]
pub struct ChainStore {
    /// The log the blocks are appended to.
    log: Log,
    /// The hash block 1 links to.
    genesis: Hash,
    /// Block `h` is at index `h - 1`.
    blocks: Vec<(Block, CommitCertificate)>,
}

impl ChainStore {
    /// Opens (creating if absent) the chain in `dir`, whose first block must link to the
    /// `genesis` hash. A torn last write is cut off (and logged); damaged records or a chain
    /// that does not link are [`StoreError::Corrupt`].
    pub fn open(dir: &Path, genesis: Hash) -> Result<ChainStore, StoreError> {
        let path = chain_path(dir);
        let (log, recovered) = Log::open(&path)?;
        let mut store = ChainStore {
            log,
            genesis,
            blocks: Vec::with_capacity(recovered.records.len()),
        };
        for record in recovered.records {
            let stored: StoredBlock = encoding::decode(&record.body).map_err(|e| {
                StoreError::corrupt(&path, record.offset, format!("not a stored block: {e}"))
            })?;
            store
                .check_next(&stored.block, &stored.certificate)
                .map_err(|reason| StoreError::corrupt(&path, record.offset, reason))?;
            store.blocks.push((stored.block, stored.certificate));
        }
        Ok(store)
    }

    /// Appends the next committed block with its certificate as one fsynced record: when
    /// this returns `Ok`, the commit is durable. A block that does not extend the chain
    /// (wrong height, wrong parent, mismatched certificate) is refused and nothing is
    /// written, so the log always reopens.
    pub fn append(
        &mut self,
        block: Block,
        certificate: CommitCertificate,
    ) -> Result<(), StoreError> {
        self.check_next(&block, &certificate)
            .map_err(|reason| StoreError::Rejected {
                path: self.path().to_path_buf(),
                reason,
            })?;
        let stored = StoredBlock { block, certificate };
        self.log.append(&[&encoding::encode(&stored)])?;
        self.blocks.push((stored.block, stored.certificate));
        Ok(())
    }

    /// The height of the last stored block (0 when only genesis is known).
    pub fn height(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// The hash of the last stored block, or `None` when only genesis is known.
    pub fn last_hash(&self) -> Option<Hash> {
        self.blocks.last().map(|(block, _)| block.hash())
    }

    /// The block at `height` with its certificate, if stored (height 0, genesis, is not).
    pub fn get(&self, height: u64) -> Option<&(Block, CommitCertificate)> {
        let index = usize::try_from(height.checked_sub(1)?).ok()?;
        self.blocks.get(index)
    }

    /// Blocks `from..=to` with their certificates, for a peer catching up: at most
    /// [`MAX_RANGE`] of them, starting at `from` (or 1), stopping at the last stored block.
    pub fn range(&self, from: u64, to: u64) -> Vec<(Block, CommitCertificate)> {
        let from = from.max(1);
        let to = to
            .min(self.height())
            .min(from.saturating_add(MAX_RANGE - 1));
        (from..=to)
            .filter_map(|height| self.get(height).cloned())
            .collect()
    }

    /// Like [`ChainStore::range`], but stopping once the blocks' encoded size reaches
    /// `max_bytes` (at least one block is always given): a reply to a peer catching up stays
    /// well within a frame however full the blocks are.
    pub fn range_within(
        &self,
        from: u64,
        to: u64,
        max_bytes: usize,
    ) -> Vec<(Block, CommitCertificate)> {
        let from = from.max(1);
        let to = to
            .min(self.height())
            .min(from.saturating_add(MAX_RANGE - 1));
        let mut out = Vec::new();
        let mut bytes = 0;
        for height in from..=to {
            let Some(item) = self.get(height) else { break };
            if !out.is_empty() && bytes >= max_bytes {
                break;
            }
            bytes += almagill::encoding::encode(item).len();
            out.push(item.clone());
        }
        out
    }

    /// Every stored block in height order, for replaying into the ledger on start.
    pub fn blocks(&self) -> impl Iterator<Item = &(Block, CommitCertificate)> {
        self.blocks.iter()
    }

    /// The chain log's path.
    pub fn path(&self) -> &Path {
        self.log.path()
    }

    /// The hash the next block must link to.
    fn tip_hash(&self) -> Hash {
        self.last_hash().unwrap_or(self.genesis)
    }

    /// Why `block` cannot be the next block of this chain, if it cannot.
    fn check_next(&self, block: &Block, certificate: &CommitCertificate) -> Result<(), String> {
        let expected = self.height() + 1;
        if block.height() != expected {
            return Err(format!(
                "block at height {} where height {expected} was expected",
                block.height()
            ));
        }
        let tip = self.tip_hash();
        if block.header.prev != tip {
            return Err(format!(
                "block {expected} links to {} instead of {tip}",
                block.header.prev
            ));
        }
        let target = &certificate.payload;
        if target.phase != Phase::Commit
            || target.height != expected
            || target.digest != block.header.proposal.digest()
        {
            return Err(format!(
                "the certificate of block {expected} is not a commit of that block"
            ));
        }
        Ok(())
    }
}

/// Where the chain log of the data directory `dir` lives.
fn chain_path(dir: &Path) -> PathBuf {
    dir.join(CHAIN_FILE)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use almagill::block::Proposal;
    use almagill::certificate::{Certificate, VoteTarget};
    use almagill::crypto::{domain, Keypair};

    use super::*;

    fn genesis() -> Hash {
        Hash::digest(domain::GENESIS, &[b"test chain"])
    }

    /// A block at `height` on top of `prev`, with an (unsigned) commit certificate for it.
    fn block(height: u64, prev: Hash) -> (Block, CommitCertificate) {
        let proposer = Keypair::from_seed([height as u8; 32]).address();
        let proposal = Proposal::new(height, height, 1_000 * height, proposer, Vec::new());
        let target = VoteTarget {
            phase: Phase::Commit,
            height,
            view: height,
            digest: proposal.digest(),
        };
        (
            Block::new(proposal, prev),
            Certificate::new(target, Vec::new()),
        )
    }

    /// `n` linked blocks from genesis.
    fn chain(n: u64) -> Vec<(Block, CommitCertificate)> {
        let mut prev = genesis();
        (1..=n)
            .map(|height| {
                let (b, c) = block(height, prev);
                prev = b.hash();
                (b, c)
            })
            .collect()
    }

    /// Writes `records` as the raw chain log of `dir`, bypassing the checks of `append`.
    fn write_raw(dir: &Path, records: &[(Block, CommitCertificate)]) {
        let bodies: Vec<Vec<u8>> = records
            .iter()
            .map(|(block, certificate)| {
                encoding::encode(&StoredBlock {
                    block: block.clone(),
                    certificate: certificate.clone(),
                })
            })
            .collect();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        Log::rewrite(&chain_path(dir), &refs).unwrap();
    }

    #[test]
    fn round_trip_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(5);
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        assert_eq!(store.height(), 0);
        assert_eq!(store.last_hash(), None);
        for (b, c) in blocks.iter().take(3).cloned() {
            store.append(b, c).unwrap();
        }
        drop(store);

        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        assert_eq!(store.height(), 3);
        for (b, c) in blocks.iter().skip(3).cloned() {
            store.append(b, c).unwrap();
        }
        drop(store);

        let store = ChainStore::open(dir.path(), genesis()).unwrap();
        assert_eq!(store.height(), 5);
        assert_eq!(store.blocks().cloned().collect::<Vec<_>>(), blocks);
        assert_eq!(store.last_hash(), Some(blocks[4].0.hash()));
        assert_eq!(store.get(0), None);
        assert_eq!(store.get(2), Some(&blocks[1]));
        assert_eq!(store.get(6), None);
        assert_eq!(store.range(2, 4), blocks[1..4].to_vec());
        assert_eq!(store.range(0, 100), blocks);
        assert!(store.range(6, 10).is_empty());
        assert!(store.range(4, 3).is_empty());
    }

    #[test]
    fn range_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        for (b, c) in chain(MAX_RANGE + 10) {
            store.append(b, c).unwrap();
        }
        let served = store.range(5, u64::MAX);
        assert_eq!(served.len() as u64, MAX_RANGE);
        assert_eq!(served[0].0.height(), 5);
        assert_eq!(store.range(u64::MAX, u64::MAX), Vec::new());
    }

    #[test]
    fn a_range_for_a_peer_stops_at_its_byte_budget() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        let blocks = chain(10);
        for (b, c) in blocks.iter().cloned() {
            store.append(b, c).unwrap();
        }
        let size = encoding::encode(&blocks[0]).len();
        assert_eq!(store.range_within(1, 10, 3 * size).len(), 3);
        assert_eq!(store.range_within(1, 10, 3 * size - 1).len(), 3);
        assert_eq!(
            store.range_within(2, 10, 0),
            blocks[1..2].to_vec(),
            "at least one"
        );
        assert_eq!(store.range_within(1, 10, usize::MAX), blocks);
        assert!(store.range_within(11, 20, usize::MAX).is_empty());
    }

    #[test]
    fn torn_last_block_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(3);
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        for (b, c) in blocks.iter().cloned() {
            store.append(b, c).unwrap();
        }
        drop(store);
        let path = chain_path(dir.path());
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        assert_eq!(store.height(), 2);
        // The lost commit can be stored again (e.g. fetched back from peers).
        let (b, c) = blocks[2].clone();
        store.append(b, c).unwrap();
        drop(store);
        assert_eq!(ChainStore::open(dir.path(), genesis()).unwrap().height(), 3);
    }

    #[test]
    fn rejects_a_gap_in_heights() {
        let dir = tempfile::tempdir().unwrap();
        let mut blocks = chain(3);
        blocks.remove(1);
        write_raw(dir.path(), &blocks);
        assert!(matches!(
            ChainStore::open(dir.path(), genesis()),
            Err(StoreError::Corrupt { reason, .. }) if reason.contains("height 2 was expected")
        ));
    }

    #[test]
    fn rejects_a_chain_not_starting_at_one() {
        let dir = tempfile::tempdir().unwrap();
        write_raw(dir.path(), &chain(3)[1..]);
        assert!(matches!(
            ChainStore::open(dir.path(), genesis()),
            Err(StoreError::Corrupt { offset: 0, .. })
        ));
    }

    #[test]
    fn rejects_a_wrong_link() {
        let dir = tempfile::tempdir().unwrap();
        let mut blocks = chain(3);
        blocks[2] = block(3, genesis());
        write_raw(dir.path(), &blocks);
        match ChainStore::open(dir.path(), genesis()) {
            Err(StoreError::Corrupt { offset, reason, .. }) => {
                assert!(offset > 0);
                assert!(reason.contains("links to"), "{reason}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn rejects_another_genesis() {
        let dir = tempfile::tempdir().unwrap();
        write_raw(dir.path(), &chain(2));
        let other = Hash::digest(domain::GENESIS, &[b"another chain"]);
        assert!(matches!(
            ChainStore::open(dir.path(), other),
            Err(StoreError::Corrupt { offset: 0, .. })
        ));
    }

    #[test]
    fn rejects_a_mismatched_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let mut blocks = chain(2);
        blocks[1].1.payload.phase = Phase::Prepare;
        write_raw(dir.path(), &blocks);
        assert!(matches!(
            ChainStore::open(dir.path(), genesis()),
            Err(StoreError::Corrupt { reason, .. }) if reason.contains("certificate")
        ));
    }

    #[test]
    fn rejects_undecodable_records() {
        let dir = tempfile::tempdir().unwrap();
        Log::rewrite(&chain_path(dir.path()), &[b"not a block"]).unwrap();
        assert!(matches!(
            ChainStore::open(dir.path(), genesis()),
            Err(StoreError::Corrupt { reason, .. }) if reason.contains("not a stored block")
        ));
    }

    #[test]
    fn append_refuses_what_would_not_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(3);
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        let (b, c) = blocks[1].clone();
        assert!(matches!(
            store.append(b, c),
            Err(StoreError::Rejected { .. })
        ));
        let (b, c) = block(1, Hash([9; 32]));
        assert!(matches!(
            store.append(b, c),
            Err(StoreError::Rejected { .. })
        ));
        assert_eq!(store.height(), 0);
        assert_eq!(fs::metadata(chain_path(dir.path())).unwrap().len(), 0);
    }

    #[test]
    fn flipped_byte_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        for (b, c) in chain(3) {
            store.append(b, c).unwrap();
        }
        drop(store);
        let path = chain_path(dir.path());
        let mut bytes = fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xFF;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            ChainStore::open(dir.path(), genesis()),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
