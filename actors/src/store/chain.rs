//! The committed chain on disk, in an embedded database (`chain.redb`): blocks with their
//! commit certificates, the state root after every height, and ledger snapshots; and the
//! transaction index, in a database of its own (`index.redb`, see `tx_index.rs`).
//!
//! Each executed block is one database transaction (block, the outcome of each of its
//! transactions, its state root and, now and then, a snapshot), committed with an fsync:
//! when [`ChainStore::append`] returns, all of it is durable, and a crash leaves either all
//! of it or none. Nothing here is kept in memory but the tip, the database's page cache,
//! which is bounded ([`CACHE_BYTES`]), and the index's entries not yet merged.

use std::path::{Path, PathBuf};

use almagill::block::Block;
use almagill::certificate::CommitCertificate;
use almagill::crypto::Hash;
use almagill::encoding;
use almagill::ledger::{RootParts, SnapshotChunk, SnapshotHead, TxError};
use bincode::{Decode, Encode};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::tx_index::{TxIndex, RECENT_TXS};
use super::StoreError;

/// The database's file name inside the data directory.
pub const CHAIN_FILE: &str = "chain.redb";

/// The most the database's page cache holds in memory.
pub const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// How many snapshots are kept: the newest, and the one before in case the newest is the
/// one a crash damaged.
const SNAPSHOTS_KEPT: usize = 2;

/// The layout version this code writes and reads. Format 1 held state roots over the
/// accounts only; format 3's also cover the validator sets and the leader blames (format 2,
/// the validator sets without the blames, never left development). Older ones are refused.
const FORMAT: u8 = 3;

/// Height → encoded [`StoredBlock`].
pub(super) const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
/// Height → the state root after it.
pub(super) const ROOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("roots");
/// (height, piece) → piece 0 the encoded [`SnapshotHead`], piece `i` its chunk `i`.
pub(super) const SNAPSHOTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("snapshots");
/// Height → encoded stable [`CheckpointCertificate`](almagill::consensus::CheckpointCertificate),
/// for state sync (see `sync.rs`).
pub(super) const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("checkpoints");
/// Epoch-end height → encoded [`RootParts`] of its state root, for state sync.
pub(super) const EPOCH_PARTS: TableDefinition<u64, &[u8]> = TableDefinition::new("epoch_parts");
/// "format" → [`FORMAT`]; "genesis" → the genesis hash the chain starts from; "index" →
/// `[1]` once the chain has a transaction index (see `tx_index.rs`). `index.redb` has a
/// table of the same name, where "genesis" is the chain the index is of.
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// One block as stored: the block and the proof it committed.
#[derive(Encode, Decode)]
struct StoredBlock {
    block: Block,
    certificate: CommitCertificate,
}

/// Where a transaction was committed and what it did: where it was applied, if it was;
/// else its last failed inclusion.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TxRecord {
    /// The block's height.
    pub height: u64,
    /// Its position in the block.
    pub position: u32,
    /// Applied, or why it failed (and changed nothing).
    pub result: Result<(), TxError>,
}

/// Everything one executed block adds to the store, written in one transaction.
pub struct Commit<'a> {
    /// The block.
    pub block: &'a Block,
    /// Its commit certificate.
    pub certificate: &'a CommitCertificate,
    /// What each of its transactions did, in block order.
    pub results: &'a [Result<(), TxError>],
    /// The state root after it.
    pub state_root: Hash,
    /// A snapshot of the ledger after it, when one is due.
    pub snapshot: Option<(SnapshotHead, Vec<SnapshotChunk>)>,
    /// At an epoch's last block, what its state root is made of (served to state sync).
    pub epoch_end: Option<RootParts>,
}

/// The last stored block, or genesis.
#[derive(Clone, Copy, Debug)]
struct Tip {
    height: u64,
    hash: Hash,
}

/// The node's committed chain, durable in `<data_dir>/chain.redb`.
pub struct ChainStore {
    pub(super) db: Database,
    pub(super) path: PathBuf,
    tip: Tip,
    /// The transaction index (see `tx_index.rs`).
    pub(super) index: TxIndex,
}

impl std::fmt::Debug for ChainStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainStore")
            .field("path", &self.path)
            .field("height", &self.tip.height)
            .finish()
    }
}

impl ChainStore {
    /// Opens (creating if absent) the chain in `dir`, which must be the chain that starts
    /// from the `genesis` hash. The database checks its own pages; a damaged file, a file of
    /// another chain or format, or a last block that does not match its certificate is an
    /// error, never used.
    pub fn open(dir: &Path, genesis: Hash) -> Result<ChainStore, StoreError> {
        let path = dir.join(CHAIN_FILE);
        let db = open_database(&path, CACHE_BYTES)?;
        let txn = db.begin_write().db(&path)?;
        {
            let mut meta = txn.open_table(META).db(&path)?;
            let format = meta.get("format").db(&path)?.map(|v| v.value().to_vec());
            let stored_genesis = meta.get("genesis").db(&path)?.map(|v| v.value().to_vec());
            match (format, stored_genesis) {
                (None, None) => {
                    meta.insert("format", [FORMAT].as_slice()).db(&path)?;
                    meta.insert("genesis", genesis.0.as_slice()).db(&path)?;
                }
                (Some(format), _) if format != [FORMAT] => {
                    return Err(StoreError::corrupt(
                        &path,
                        0,
                        format!(
                        "storage format {format:?}; this node reads format {FORMAT} (its state \
                         roots cover the validator sets and leader blames): move the data directory aside and \
                         let the node sync again"
                    ),
                    ));
                }
                (_, Some(stored)) if stored == genesis.0 => {}
                _ => {
                    return Err(StoreError::corrupt(
                        &path,
                        0,
                        format!("it holds another chain than the one genesis {genesis} starts"),
                    ))
                }
            }
            txn.open_table(BLOCKS).db(&path)?;
            txn.open_table(RECENT_TXS).db(&path)?;
            txn.open_table(ROOTS).db(&path)?;
            txn.open_table(SNAPSHOTS).db(&path)?;
            txn.open_table(CHECKPOINTS).db(&path)?;
            txn.open_table(EPOCH_PARTS).db(&path)?;
        }
        txn.commit().db(&path)?;
        let index = TxIndex::open(dir, genesis, &db, &path)?;
        let mut store = ChainStore {
            db,
            path,
            tip: Tip {
                height: 0,
                hash: genesis,
            },
            index,
        };
        let last = {
            let txn = store.db.begin_read().db(&store.path)?;
            let blocks = txn.open_table(BLOCKS).db(&store.path)?;
            let last = blocks.last().db(&store.path)?;
            last.map(|(h, v)| (h.value(), v.value().to_vec()))
        };
        if let Some((height, bytes)) = last {
            let stored = store.decode_block(height, &bytes)?;
            check_certificate(&stored.block, &stored.certificate, height)
                .map_err(|reason| StoreError::corrupt(&store.path, height, reason))?;
            store.tip = Tip {
                height,
                hash: stored.block.hash(),
            };
        }
        Ok(store)
    }

    /// Stores the next executed block with everything it adds, in one fsynced transaction.
    /// A block that does not extend the chain (wrong height, wrong parent, mismatched
    /// certificate) is refused and nothing is written.
    pub fn append(&mut self, commit: &Commit<'_>) -> Result<(), StoreError> {
        let block = commit.block;
        let height = self.tip.height + 1;
        let rejected = |reason: String| StoreError::Rejected {
            path: self.path.clone(),
            reason,
        };
        if block.height() != height {
            return Err(rejected(format!(
                "block at height {} where height {height} was expected",
                block.height()
            )));
        }
        if block.header.prev != self.tip.hash {
            return Err(rejected(format!(
                "block {height} links to {} instead of {}",
                block.header.prev, self.tip.hash
            )));
        }
        check_certificate(block, commit.certificate, height).map_err(rejected)?;
        if commit.results.len() != block.txs.len() {
            return Err(rejected(format!(
                "{} outcomes for the {} transactions of block {height}",
                commit.results.len(),
                block.txs.len()
            )));
        }
        self.index.collect()?;
        let mut entries = Vec::with_capacity(block.txs.len());
        for (position, (tx, result)) in block.txs.iter().zip(commit.results).enumerate() {
            let hash = tx.hash();
            // A transaction applied once keeps that record: included again (a replay,
            // which fails on its used nonce) it must not read as failed. A failed one
            // changed nothing, so a later inclusion may apply it, and replaces it. Only
            // a failure needs the old record read; an application always writes.
            if result.is_err() && self.tx(&hash)?.is_some_and(|old| old.result.is_ok()) {
                continue;
            }
            let record = TxRecord {
                height,
                position: position as u32,
                result: result.clone(),
            };
            entries.push((hash, record));
        }
        let txn = self.db.begin_write().db(&self.path)?;
        {
            let stored = encoding::encode(&(block, commit.certificate));
            txn.open_table(BLOCKS)
                .db(&self.path)?
                .insert(height, stored.as_slice())
                .db(&self.path)?;
            let mut recent = txn.open_table(RECENT_TXS).db(&self.path)?;
            self.index
                .write(height, &entries, &mut recent)
                .db(&self.path)?;
            txn.open_table(ROOTS)
                .db(&self.path)?
                .insert(height, commit.state_root.0.as_slice())
                .db(&self.path)?;
            if let Some(parts) = &commit.epoch_end {
                txn.open_table(EPOCH_PARTS)
                    .db(&self.path)?
                    .insert(height, encoding::encode(parts).as_slice())
                    .db(&self.path)?;
            }
            if let Some((head, chunks)) = &commit.snapshot {
                let mut snapshots = txn.open_table(SNAPSHOTS).db(&self.path)?;
                put_snapshot(&mut snapshots, head, chunks).db(&self.path)?;
                let heights = snapshot_heights(&snapshots).db(&self.path)?;
                for old in heights.iter().rev().skip(SNAPSHOTS_KEPT) {
                    snapshots
                        .retain_in((*old, 0)..=(*old, u32::MAX), |_, _| false)
                        .db(&self.path)?;
                }
            }
        }
        txn.commit().db(&self.path)?;
        self.index.written(height, entries);
        self.tip = Tip {
            height,
            hash: block.hash(),
        };
        Ok(())
    }

    /// How long the transaction index's last finished merge took, once (see `tx_index.rs`):
    /// merges run on a thread of their own, so the block store reports them as it learns
    /// of them.
    pub fn merge_took(&mut self) -> Option<std::time::Duration> {
        self.index.take_merge_time()
    }

    /// Makes the block at `height` with `hash` the last one (state sync installed it).
    pub(super) fn set_tip(&mut self, height: u64, hash: Hash) {
        self.tip = Tip { height, hash };
    }

    /// The height of the last stored block (0 when only genesis is known).
    pub fn height(&self) -> u64 {
        self.tip.height
    }

    /// The hash the next block must link to: the last stored block's, or genesis.
    pub fn tip_hash(&self) -> Hash {
        self.tip.hash
    }

    /// The block at `height` with its certificate, if stored (height 0, genesis, is not).
    pub fn block(&self, height: u64) -> Result<Option<(Block, CommitCertificate)>, StoreError> {
        let txn = self.db.begin_read().db(&self.path)?;
        let blocks = txn.open_table(BLOCKS).db(&self.path)?;
        let Some(bytes) = blocks.get(height).db(&self.path)? else {
            return Ok(None);
        };
        let stored = self.decode_block(height, bytes.value())?;
        Ok(Some((stored.block, stored.certificate)))
    }

    /// Blocks `from..=to` with their certificates for a peer catching up, starting at `from`
    /// (or 1), stopping at the last stored block or once `max_bytes` of encoding is reached
    /// (at least one block is always given). Nothing when `from` is not stored (below the
    /// snapshot a synced chain starts at).
    pub fn range_within(
        &self,
        from: u64,
        to: u64,
        max_bytes: usize,
    ) -> Result<Vec<(Block, CommitCertificate)>, StoreError> {
        let from = from.max(1);
        if from > to {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read().db(&self.path)?;
        let blocks = txn.open_table(BLOCKS).db(&self.path)?;
        let mut out = Vec::new();
        let mut bytes = 0;
        for entry in blocks.range(from..=to).db(&self.path)? {
            if !out.is_empty() && bytes >= max_bytes {
                break;
            }
            let (height, value) = entry.db(&self.path)?;
            if out.is_empty() && height.value() != from {
                break;
            }
            bytes += value.value().len();
            let stored = self.decode_block(height.value(), value.value())?;
            out.push((stored.block, stored.certificate));
        }
        Ok(out)
    }

    /// The state root after `height` (0 is not stored: it is genesis's).
    pub fn state_root(&self, height: u64) -> Result<Option<Hash>, StoreError> {
        let txn = self.db.begin_read().db(&self.path)?;
        let roots = txn.open_table(ROOTS).db(&self.path)?;
        let Some(value) = roots.get(height).db(&self.path)? else {
            return Ok(None);
        };
        let bytes: [u8; 32] = value
            .value()
            .try_into()
            .map_err(|_| StoreError::corrupt(&self.path, height, "a state root is not 32 bytes"))?;
        Ok(Some(Hash(bytes)))
    }

    /// Where transaction `hash` was committed, if it was.
    pub fn tx(&self, hash: &Hash) -> Result<Option<TxRecord>, StoreError> {
        self.index.get(hash)
    }

    /// The newest stored snapshot, if any: its head and chunks (not yet checked: see
    /// `Ledger::from_snapshot`).
    pub fn latest_snapshot(
        &self,
    ) -> Result<Option<(SnapshotHead, Vec<SnapshotChunk>)>, StoreError> {
        let txn = self.db.begin_read().db(&self.path)?;
        let snapshots = txn.open_table(SNAPSHOTS).db(&self.path)?;
        let Some(&height) = snapshot_heights(&snapshots).db(&self.path)?.last() else {
            return Ok(None);
        };
        let corrupt = |e| StoreError::corrupt(&self.path, height, format!("snapshot: {e}"));
        let mut head = None;
        let mut chunks = Vec::new();
        for entry in snapshots
            .range((height, 0)..=(height, u32::MAX))
            .db(&self.path)?
        {
            let (key, value) = entry.db(&self.path)?;
            if key.value().1 == 0 {
                head = Some(encoding::decode::<SnapshotHead>(value.value()).map_err(corrupt)?);
            } else {
                chunks.push(encoding::decode::<SnapshotChunk>(value.value()).map_err(corrupt)?);
            }
        }
        match head {
            Some(head) => Ok(Some((head, chunks))),
            None => Err(StoreError::corrupt(
                &self.path,
                height,
                "a snapshot without its head",
            )),
        }
    }

    /// The database's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn decode_block(&self, height: u64, bytes: &[u8]) -> Result<StoredBlock, StoreError> {
        let stored: StoredBlock = encoding::decode(bytes)
            .map_err(|e| StoreError::corrupt(&self.path, height, format!("block {height}: {e}")))?;
        if stored.block.height() != height {
            return Err(StoreError::corrupt(
                &self.path,
                height,
                format!("block {} stored at height {height}", stored.block.height()),
            ));
        }
        Ok(stored)
    }
}

/// Opens (creating if absent) the database at `path` with a page cache of `cache_bytes`,
/// and checks its pages: a damaged file is an error, never used.
pub(super) fn open_database(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    // The database may panic rather than fail on some damaged files (a table's
    // definition cut short): that too is a damaged file, reported as such.
    let opened = std::panic::catch_unwind(|| {
        let mut db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)?;
        let intact = db.check_integrity()?;
        Ok::<_, redb::Error>((db, intact))
    });
    let Ok(opened) = opened else {
        return Err(StoreError::corrupt(
            path,
            0,
            "the database could not be read",
        ));
    };
    let (db, intact) = opened.db(path)?;
    if !intact {
        return Err(StoreError::corrupt(
            path,
            0,
            "the database's checksums do not match",
        ));
    }
    Ok(db)
}

/// Why `certificate` is not a commit of `block` at `height`, if it is not.
fn check_certificate(
    block: &Block,
    certificate: &CommitCertificate,
    height: u64,
) -> Result<(), String> {
    if block.height() != height || !block.committed_by(certificate) {
        return Err(format!(
            "the certificate of block {height} is not a commit of that block"
        ));
    }
    Ok(())
}

/// Writes a snapshot's head (piece 0) and chunks (pieces 1..).
pub(super) fn put_snapshot(
    snapshots: &mut redb::Table<(u64, u32), &'static [u8]>,
    head: &SnapshotHead,
    chunks: &[SnapshotChunk],
) -> Result<(), redb::StorageError> {
    snapshots.insert((head.height, 0), encoding::encode(head).as_slice())?;
    for (i, chunk) in chunks.iter().enumerate() {
        snapshots.insert(
            (head.height, i as u32 + 1),
            encoding::encode(chunk).as_slice(),
        )?;
    }
    Ok(())
}

/// The heights that have a snapshot, oldest first.
pub(super) fn snapshot_heights(
    snapshots: &impl ReadableTable<(u64, u32), &'static [u8]>,
) -> Result<Vec<u64>, redb::StorageError> {
    let mut heights = Vec::new();
    for entry in snapshots.iter()? {
        let (key, _) = entry?;
        let (height, piece) = key.value();
        if piece == 0 {
            heights.push(height);
        }
    }
    Ok(heights)
}

/// Names the database file in its errors: `result.db(path)?`.
pub(super) trait Db<T> {
    fn db(self, path: &Path) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> Db<T> for Result<T, E> {
    fn db(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Database {
            path: path.to_path_buf(),
            source: Box::new(e.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use almagill::block::Proposal;
    use almagill::certificate::{Certificate, Phase, VoteTarget};
    use almagill::crypto::{domain, Address, Keypair};
    use almagill::ledger::Account;
    use almagill::tx::{Transaction, TxBody, TxKind};

    use super::*;

    fn genesis() -> Hash {
        Hash::digest(domain::GENESIS, &[b"test chain"])
    }

    /// A block at `height` on top of `prev` holding one transfer, with an (unsigned) commit
    /// certificate for it.
    fn block(height: u64, prev: Hash) -> (Block, CommitCertificate) {
        block_of(height, prev, vec![transfer(height as u8, height)])
    }

    /// A transfer's failure before its sender had the funds.
    const SHORT: TxError = TxError::InsufficientFunds {
        available: 0,
        needed: 1,
    };

    /// A replay's failure on its used nonce.
    const STALE: TxError = TxError::BadNonce {
        expected: 1,
        got: 0,
    };

    /// The index record of the first transaction of block `height`.
    fn first_in(height: u64, result: Result<(), TxError>) -> TxRecord {
        TxRecord {
            height,
            position: 0,
            result,
        }
    }

    /// A signed transfer of 1 from the key of `seed`, at `nonce`.
    fn transfer(seed: u8, nonce: u64) -> Transaction {
        let key = Keypair::from_seed([seed; 32]);
        TxBody {
            from: key.address(),
            nonce,
            kind: TxKind::Transfer {
                to: Address([7; 32]),
                amount: 1,
            },
        }
        .sign(&key, "test")
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

    fn root(height: u64) -> Hash {
        Hash([height as u8; 32])
    }

    fn snapshot(height: u64) -> (SnapshotHead, Vec<SnapshotChunk>) {
        let chunk = SnapshotChunk(vec![(Address([1; 32]), Account::default())]);
        let head = SnapshotHead {
            height,
            state_root: root(height),
            accounts_root: root(height),
            epochs: Vec::new(),
            blames: Default::default(),
            accounts: 1,
            chunks: 1,
        };
        (head, vec![chunk])
    }

    /// Appends `(block, certificate)` with one applied transaction and `root(height)`,
    /// and a snapshot when `with_snapshot`.
    fn append(
        store: &mut ChainStore,
        (block, certificate): &(Block, CommitCertificate),
        with_snapshot: bool,
    ) -> Result<(), StoreError> {
        store.append(&Commit {
            block,
            certificate,
            results: &[Ok(())],
            state_root: root(block.height()),
            snapshot: with_snapshot.then(|| snapshot(block.height())),
            epoch_end: None,
        })
    }

    #[test]
    fn blocks_index_and_roots_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(5);
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        assert_eq!((store.height(), store.tip_hash()), (0, genesis()));
        for b in &blocks[..3] {
            append(&mut store, b, false).unwrap();
        }
        drop(store);
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        assert_eq!(store.height(), 3);
        for b in &blocks[3..] {
            append(&mut store, b, false).unwrap();
        }
        drop(store);

        let store = ChainStore::open(dir.path(), genesis()).unwrap();
        assert_eq!(store.height(), 5);
        assert_eq!(store.tip_hash(), blocks[4].0.hash());
        assert_eq!(store.block(2).unwrap(), Some(blocks[1].clone()));
        assert_eq!(store.block(0).unwrap(), None);
        assert_eq!(store.block(6).unwrap(), None);
        assert_eq!(store.state_root(4).unwrap(), Some(root(4)));
        assert_eq!(store.state_root(6).unwrap(), None);
        let tx = blocks[2].0.txs[0].hash();
        assert_eq!(
            store.tx(&tx).unwrap(),
            Some(TxRecord {
                height: 3,
                position: 0,
                result: Ok(())
            })
        );
        assert_eq!(store.tx(&Hash([0; 32])).unwrap(), None);
    }

    /// A block at `height` on top of `prev` holding `txs`, with an (unsigned) commit
    /// certificate for it.
    fn block_of(height: u64, prev: Hash, txs: Vec<Transaction>) -> (Block, CommitCertificate) {
        let proposer = Keypair::from_seed([1; 32]).address();
        let proposal = Proposal::new(height, height, 1_000 * height, proposer, txs);
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

    /// A transaction failed, then applied, then replayed twice: the index answers the
    /// failure until it applies, and where it applied from then on.
    ///
    /// Mutation caught: `append` writing every inclusion's record (no skip for an applied
    /// one) — after block 3 the index reads "failed" for the applied transfer.
    #[test]
    fn a_transaction_included_again_keeps_the_record_where_it_applied() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        let tx = transfer(3, 0);
        let hash = tx.hash();
        // Failed at 1 (no funds yet), applied at 2, included again at 3 and 4 (a replay).
        let outcomes = [Err(SHORT), Ok(()), Err(STALE), Err(STALE)];
        let mut prev = genesis();
        for (i, result) in outcomes.into_iter().enumerate() {
            let height = i as u64 + 1;
            let (block, certificate) = block_of(height, prev, vec![tx.clone()]);
            prev = block.hash();
            store
                .append(&Commit {
                    block: &block,
                    certificate: &certificate,
                    results: std::slice::from_ref(&result),
                    state_root: root(height),
                    snapshot: None,
                    epoch_end: None,
                })
                .unwrap();
            let expected = if height == 1 {
                first_in(1, Err(SHORT))
            } else {
                first_in(2, Ok(()))
            };
            assert_eq!(
                store.tx(&hash).unwrap(),
                Some(expected),
                "after block {height}"
            );
        }
    }

    /// The index answers the same across reopenings, with merges between them: a
    /// transfer failed at 1, applied at 10 and replayed at 19, with blocks of other
    /// transactions in between, enough that merges start from block 9 on. The store is
    /// reopened after every block, so each merge is durable but its rows are still there
    /// (what a crash right after a merge leaves): they are read back and merged again.
    ///
    /// Mutation caught: opening without reading the recent entries back (the transfer's
    /// record is then not found after block 1). Reads from the merged file, and the rows
    /// dropped after a merge, are checked in `tx_index.rs`.
    #[test]
    fn the_index_reads_the_same_before_and_after_a_merge_and_a_reopen() {
        use super::super::tx_index::MERGE_AT;

        const FILLER: usize = 16_384;
        let dir = tempfile::tempdir().unwrap();
        let tx = transfer(3, 0);
        // `n` other transactions (applied), distinct from every other block's.
        let filler = |height: u64, n: usize| -> Vec<Transaction> {
            (0..n as u64)
                .map(|nonce| {
                    let body = TxBody {
                        from: Address([height as u8; 32]),
                        nonce,
                        kind: TxKind::Stake { amount: 1 },
                    };
                    Transaction::new(body, almagill::crypto::Signature([0; 64]))
                })
                .collect()
        };
        let between = (MERGE_AT / FILLER) as u64;
        let applied_at = between + 2;
        let last = 2 * between + 3;
        let mut prev = genesis();
        let mut others: Vec<(u64, Vec<Transaction>)> = Vec::new();
        for height in 1..=last {
            let outcome = match height {
                1 => Some(Err(SHORT)),
                h if h == applied_at => Some(Ok(())),
                h if h == last => Some(Err(STALE)),
                _ => None,
            };
            let mut txs = Vec::new();
            let mut results = Vec::new();
            if let Some(outcome) = outcome {
                txs.push(tx.clone());
                results.push(outcome);
            }
            let mine = filler(height, if txs.is_empty() { FILLER } else { 10 });
            results.extend(mine.iter().map(|_| Ok(())));
            txs.extend(mine.iter().cloned());
            others.push((height, mine));
            let (block, certificate) = block_of(height, prev, txs);
            prev = block.hash();
            let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
            store
                .append(&Commit {
                    block: &block,
                    certificate: &certificate,
                    results: &results,
                    state_root: root(height),
                    snapshot: None,
                    epoch_end: None,
                })
                .unwrap();
            drop(store);
            let store = ChainStore::open(dir.path(), genesis()).unwrap();
            let want = if height < applied_at {
                first_in(1, Err(SHORT))
            } else {
                first_in(applied_at, Ok(()))
            };
            assert_eq!(
                store.tx(&tx.hash()).unwrap(),
                Some(want),
                "after block {height}"
            );
        }
        let store = ChainStore::open(dir.path(), genesis()).unwrap();
        for (height, txs) in &others {
            for other in txs {
                assert_eq!(
                    store.tx(&other.hash()).unwrap().map(|r| r.height),
                    Some(*height),
                    "a transaction of block {height}"
                );
            }
        }
    }

    #[test]
    fn a_range_for_a_peer_stops_at_its_byte_budget() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        let blocks = chain(10);
        for b in &blocks {
            append(&mut store, b, false).unwrap();
        }
        let size = encoding::encode(&blocks[0]).len();
        assert_eq!(store.range_within(1, 10, 3 * size).unwrap().len(), 3);
        assert_eq!(store.range_within(1, 10, 3 * size - 1).unwrap().len(), 3);
        assert_eq!(
            store.range_within(2, 10, 0).unwrap(),
            blocks[1..2].to_vec(),
            "at least one"
        );
        assert_eq!(store.range_within(0, 100, usize::MAX).unwrap(), blocks);
        assert!(store.range_within(11, 20, usize::MAX).unwrap().is_empty());
        assert!(store.range_within(4, 3, usize::MAX).unwrap().is_empty());
    }

    #[test]
    fn only_the_newest_snapshots_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        assert_eq!(store.latest_snapshot().unwrap(), None);
        for b in &chain(6) {
            append(&mut store, b, b.0.height() % 2 == 0).unwrap();
        }
        assert_eq!(store.latest_snapshot().unwrap(), Some(snapshot(6)));
        let txn = store.db.begin_read().unwrap();
        let table = txn.open_table(SNAPSHOTS).unwrap();
        assert_eq!(snapshot_heights(&table).unwrap(), vec![4, 6]);
    }

    /// State sync's side of the store: a snapshot is offered only with a checkpoint at its
    /// height, epoch proofs stop at the first epoch end without one, and an installed
    /// snapshot replaces the chain, which then starts at its block (also after a reopen).
    #[test]
    fn state_sync_offers_proven_snapshots_and_installs_one() {
        use almagill::consensus::{CheckpointCertificate, CheckpointTarget};
        use almagill::state_sync::EpochProof;

        let checkpoint = |height: u64| CheckpointCertificate {
            payload: CheckpointTarget {
                height,
                state_root: root(height),
            },
            votes: Vec::new(),
        };
        let parts = |height: u64| RootParts {
            accounts_root: root(height),
            epochs: Vec::new(),
            blames: Default::default(),
        };
        let dir = tempfile::tempdir().unwrap();
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        let blocks = chain(6);
        for b in &blocks {
            let height = b.0.height();
            store
                .append(&Commit {
                    block: &b.0,
                    certificate: &b.1,
                    results: &[Ok(())],
                    state_root: root(height),
                    snapshot: (height % 2 == 0).then(|| snapshot(height)),
                    epoch_end: (height % 2 == 0).then(|| parts(height)),
                })
                .unwrap();
        }
        assert_eq!(store.offer().unwrap(), None, "no checkpoint, no offer");
        for height in [2, 4] {
            store.put_checkpoint(&checkpoint(height)).unwrap();
        }
        let offer = store.offer().unwrap().unwrap();
        assert_eq!((offer.head.height, offer.block.height()), (4, 4));
        let proofs = store.epoch_proofs(1, usize::MAX).unwrap();
        let heights: Vec<u64> = proofs.iter().map(|p| p.checkpoint.payload.height).collect();
        assert_eq!(
            heights,
            vec![2, 4],
            "they stop before 6, which has no checkpoint"
        );
        assert_eq!(store.chunk(4, 1).unwrap(), Some(snapshot(4).1[0].clone()));
        assert_eq!(store.chunk(4, 2).unwrap(), None);

        // Another node installs the offer.
        let other = tempfile::tempdir().unwrap();
        let mut synced = ChainStore::open(other.path(), genesis()).unwrap();
        append(&mut synced, &blocks[0], false).unwrap();
        let first = blocks[0].0.txs[0].hash();
        assert!(synced.tx(&first).unwrap().is_some());
        let proof = EpochProof {
            checkpoint: checkpoint(2),
            parts: parts(2),
        };
        synced.install(&offer, &snapshot(4).1, &[proof]).unwrap();
        assert_eq!(synced.tx(&first).unwrap(), None, "the index is emptied");
        drop(synced);
        let synced = ChainStore::open(other.path(), genesis()).unwrap();
        assert_eq!(
            (synced.height(), synced.tip_hash()),
            (4, blocks[3].0.hash())
        );
        assert_eq!(synced.block(3).unwrap(), None);
        assert!(synced.range_within(1, 4, usize::MAX).unwrap().is_empty());
        assert_eq!(synced.range_within(4, 9, usize::MAX).unwrap().len(), 1);
        assert_eq!(synced.latest_snapshot().unwrap(), Some(snapshot(4)));
        assert_eq!(synced.offer().unwrap(), Some(offer));
        assert_eq!(synced.epoch_proofs(1, usize::MAX).unwrap().len(), 1);
    }

    #[test]
    fn an_append_that_would_not_extend_the_chain_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = chain(3);
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        let refused = |r| matches!(r, Err(StoreError::Rejected { .. }));
        assert!(refused(append(&mut store, &blocks[1], false)), "a gap");
        assert!(
            refused(append(&mut store, &block(1, Hash([9; 32])), false)),
            "a wrong link"
        );
        let (b, mut c) = blocks[0].clone();
        c.payload.phase = Phase::Prepare;
        assert!(refused(append(&mut store, &(b, c), false)), "not a commit");
        let (b, c) = &blocks[0];
        let wrong_count = store.append(&Commit {
            block: b,
            certificate: c,
            results: &[],
            state_root: root(1),
            snapshot: None,
            epoch_end: None,
        });
        assert!(refused(wrong_count), "an outcome missing");
        assert_eq!(store.height(), 0);
        assert_eq!(store.block(1).unwrap(), None);
    }

    #[test]
    fn another_chain_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        append(&mut store, &chain(1)[0], false).unwrap();
        drop(store);
        let other = Hash::digest(domain::GENESIS, &[b"another chain"]);
        match ChainStore::open(dir.path(), other) {
            Err(StoreError::Corrupt { reason, .. }) => assert!(reason.contains("another chain")),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_damaged_file_is_reported_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ChainStore::open(dir.path(), genesis()).unwrap();
        for b in &chain(40) {
            append(&mut store, b, false).unwrap();
        }
        drop(store);
        let path = dir.path().join(CHAIN_FILE);
        let clean = fs::read(&path).unwrap();
        // Flip one byte at a time across the file: whatever it hits, the store either
        // opens and reads back exactly what was written, or reports an error.
        let mut refused = 0;
        for at in (0..clean.len()).step_by(clean.len() / 64) {
            let mut bytes = clean.clone();
            bytes[at] ^= 0x55;
            fs::write(&path, &bytes).unwrap();
            match ChainStore::open(dir.path(), genesis()) {
                Ok(store) => {
                    let read = store.range_within(1, 40, usize::MAX);
                    if let Ok(read) = read {
                        assert_eq!(read, chain(40), "flipped byte {at} changed what is read");
                    }
                }
                Err(_) => refused += 1,
            }
        }
        assert!(refused > 0, "no flipped byte was noticed");
    }
}
