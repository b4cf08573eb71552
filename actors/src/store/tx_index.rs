//! The transaction index (hash → where it was committed and what it did): a database file
//! of its own, `index.redb`, written in sorted batches by a thread of its own.
//!
//! Transaction hashes are random, so inserting a block's entries one by one into the
//! hash-keyed table rewrites one page of it per transaction (4 KiB written for a 50-byte
//! entry). Instead, each block's entries are kept in memory in [`PARTS`] parts by the
//! first bits of their hash, and stored with the block in the chain's [`RECENT_TXS`] under
//! (part, height): a row per part, each at the end of its part's rows, so a block writes a
//! page or so per part. Once [`MERGE_AT`] have gathered, the largest part is handed to the
//! merge thread, which writes it into `index.redb` in hash order: its entries all land in
//! one part of the table, so many share each page written. The merge runs beside the node,
//! not in the block's transaction: a merge of a large index takes up to a quarter of a
//! second, which held up every actor on the node's thread when it ran there. Once it is
//! durable, the part's rows up to its last height go in the next block's transaction.
//!
//! Lookups read the waiting entries in memory, then the part being merged, then the file.
//! On opening, the entries in [`RECENT_TXS`] are read back, so a crash loses none: a part
//! whose merge was durable but whose rows were not yet dropped is merged again, to the
//! same records.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use almagill::crypto::Hash;
use almagill::encoding;
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
};

use super::chain::{open_database, Db, TxRecord, META};
use super::StoreError;

/// The index's file name inside the data directory.
pub const INDEX_FILE: &str = "index.redb";

/// The most the index's page cache holds in memory: a merge reads and writes one part of
/// the table, so it need not hold the whole of it.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Transaction hash → encoded [`TxRecord`]: the merged index, in `index.redb`. Earlier
/// versions kept it in `chain.redb` under the same name; it is moved on opening.
pub(super) const TXS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("txs");

/// (part, height) → encoded index entries (hash and [`TxRecord`]) of that block in that
/// part, for the entries not yet merged: in `chain.redb`, written with the block.
pub(super) const RECENT_TXS: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("recent_txs");

/// How many entries wait before the largest part is merged: a merge writes about one page
/// per page of its part, so pages per entry are about the index's size in pages over this
/// number (at 16,384, a 60-second run at 12,000 tx/s slowed down as the index grew: p99
/// 2.2 s instead of 0.4 s). They cost memory, about 100 bytes each (13 MB). While a merge
/// runs, up to as many again may gather; past that, a block waits for the merge.
pub const MERGE_AT: usize = 131_072;

/// Parts the waiting entries are kept in, by the top bits of their hash: a merge takes
/// one, about 8,000 entries. Not more: a block writes one row per part into
/// [`RECENT_TXS`], scattered over the table, so more parts write more pages per block
/// (with 64, p50 at 6,900 tx/s was 62 ms instead of 38).
const PARTS: usize = 16;

/// Entries moved per transaction when an index kept in `chain.redb` is moved out.
const MOVE_BATCH: usize = 65_536;

/// One index entry.
pub(super) type Entry = (Hash, TxRecord);

/// Entries by hash (a later block's entry replaces an earlier one's, as in the table).
type Entries = HashMap<Hash, TxRecord>;

fn part_of(hash: &Hash) -> usize {
    usize::from(hash.0[0]) * PARTS / 256
}

/// A part handed to the merge thread, kept readable until its merge is durable.
#[derive(Debug)]
struct Merging {
    part: usize,
    /// The last height whose entries in this part it holds.
    up_to: u64,
    entries: Arc<Entries>,
}

/// The merge thread and the channels to it.
#[derive(Debug)]
struct Merger {
    jobs: Option<Sender<Arc<Entries>>>,
    /// Each merge's outcome: how long it took, or why it failed.
    done: Receiver<Result<Duration, redb::Error>>,
    thread: Option<JoinHandle<()>>,
}

/// The transaction index: the merged entries in `index.redb`, the rest in memory (and in
/// the chain's [`RECENT_TXS`]).
#[derive(Debug)]
pub(super) struct TxIndex {
    db: Arc<Database>,
    path: PathBuf,
    /// Entries not yet handed to a merge, by part.
    parts: Vec<Entries>,
    merging: Option<Merging>,
    /// (part, height) of merges now durable: their rows up to that height are dropped in
    /// the next block's transaction.
    merged: Vec<(u8, u64)>,
    /// A merge failed or its thread stopped: the part stays in memory and its rows stay
    /// in the chain (a restart merges it again), and every later step is refused.
    broken: bool,
    /// How long the last merge collected took, until [`TxIndex::take_merge_time`].
    merge_took: Option<Duration>,
    merger: Merger,
}

impl TxIndex {
    /// Opens (creating if absent) `index.redb` in `dir` for the chain of `genesis`, moves
    /// into it an index the chain's database `chain` still holds, reads back the entries
    /// waiting in the chain's [`RECENT_TXS`], and starts the merge thread.
    pub(super) fn open(
        dir: &Path,
        genesis: Hash,
        chain: &Database,
        chain_path: &Path,
    ) -> Result<TxIndex, StoreError> {
        let path = dir.join(INDEX_FILE);
        let db = open_database(&path, CACHE_BYTES)?;
        let indexed = {
            let txn = chain.begin_read().db(chain_path)?;
            match txn.open_table(META) {
                Ok(meta) => meta.get("index").db(chain_path)?.is_some(),
                Err(redb::TableError::TableDoesNotExist(_)) => false,
                Err(e) => return Err(e).db(chain_path),
            }
        };
        let txn = db.begin_write().db(&path)?;
        {
            let mut meta = txn.open_table(META).db(&path)?;
            let stored = meta.get("genesis").db(&path)?.map(|v| v.value().to_vec());
            match stored {
                None if indexed => {
                    return Err(StoreError::corrupt(
                        &path,
                        0,
                        "it holds no index, though the chain beside it had one (the file was \
                         deleted or replaced): transactions committed before would read as \
                         unknown",
                    ))
                }
                None => {
                    meta.insert("genesis", genesis.0.as_slice()).db(&path)?;
                }
                Some(stored) if stored == genesis.0 => {}
                Some(_) => {
                    return Err(StoreError::corrupt(
                        &path,
                        0,
                        format!("it indexes another chain than the one genesis {genesis} starts"),
                    ))
                }
            }
            txn.open_table(TXS).db(&path)?;
        }
        txn.commit().db(&path)?;
        move_index(chain, chain_path, &db, &path, indexed)?;
        let parts = {
            let txn = chain.begin_read().db(chain_path)?;
            load(&txn.open_table(RECENT_TXS).db(chain_path)?)
                .map_err(|(height, reason)| StoreError::corrupt(chain_path, height, reason))?
        };
        let db = Arc::new(db);
        let (jobs, todo) = mpsc::channel::<Arc<Entries>>();
        let (finished, done) = mpsc::channel();
        let merging_db = Arc::clone(&db);
        let thread = std::thread::Builder::new()
            .name("tx-index-merge".into())
            .spawn(move || {
                for entries in todo {
                    if finished.send(merge(&merging_db, &entries)).is_err() {
                        return;
                    }
                }
            })
            .map_err(StoreError::io("start the index's merge thread", &path))?;
        Ok(TxIndex {
            db,
            path,
            parts,
            merging: None,
            merged: Vec::new(),
            broken: false,
            merge_took: None,
            merger: Merger {
                jobs: Some(jobs),
                done,
                thread: Some(thread),
            },
        })
    }

    /// The entry for `hash`, if the transaction was committed.
    pub(super) fn get(&self, hash: &Hash) -> Result<Option<TxRecord>, StoreError> {
        let part = part_of(hash);
        let merging = self.merging.as_ref().filter(|m| m.part == part);
        if let Some(record) = self.parts[part]
            .get(hash)
            .or_else(|| merging.and_then(|m| m.entries.get(hash)))
        {
            return Ok(Some(record.clone()));
        }
        let txn = self.db.begin_read().db(&self.path)?;
        let txs = txn.open_table(TXS).db(&self.path)?;
        let Some(value) = txs.get(hash.0.as_slice()).db(&self.path)? else {
            return Ok(None);
        };
        encoding::decode(value.value())
            .map(Some)
            .map_err(|e| StoreError::corrupt(&self.path, 0, format!("transaction {hash}: {e}")))
    }

    /// Before a block is written: takes note of a merge that finished, and waits for the
    /// one running if [`MERGE_AT`] more entries than start a merge gathered meanwhile (so
    /// that memory stays bounded when merges fall behind). A failed merge is the error.
    pub(super) fn collect(&mut self) -> Result<(), StoreError> {
        self.usable()?;
        if self.merging.is_none() {
            return Ok(());
        }
        let outcome = if self.waiting() >= 2 * MERGE_AT {
            self.merger.done.recv().ok()
        } else {
            match self.merger.done.try_recv() {
                Ok(outcome) => Some(outcome),
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => None,
            }
        };
        self.finish(outcome)
    }

    /// Takes a merge's `outcome` (`None`: its thread stopped): the part merged leaves
    /// memory and its rows go with the next block; or the index is broken, with the reason.
    fn finish(&mut self, outcome: Option<Result<Duration, redb::Error>>) -> Result<(), StoreError> {
        let Some(merging) = &self.merging else {
            return Ok(());
        };
        let took = match outcome {
            Some(Ok(took)) => took,
            Some(Err(e)) => {
                self.broken = true;
                return Err(e).db(&self.path);
            }
            None => {
                self.broken = true;
                let why = match self.merger.thread.take().map(JoinHandle::join) {
                    Some(Err(panic)) => panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into()),
                    _ => "no reason given".into(),
                };
                return Err(StoreError::Io {
                    op: "merge into",
                    path: self.path.clone(),
                    source: std::io::Error::other(format!("the merge thread stopped: {why}")),
                });
            }
        };
        self.merge_took = Some(took);
        self.merged.push((merging.part as u8, merging.up_to));
        self.merging = None;
        Ok(())
    }

    /// Writes a block's `entries` under `height` into the chain's `recent` table, and drops
    /// the rows of the parts whose merge is durable. Nothing in memory changes until
    /// [`TxIndex::written`] says the chain's transaction committed.
    pub(super) fn write(
        &self,
        height: u64,
        entries: &[Entry],
        recent: &mut Table<(u8, u64), &[u8]>,
    ) -> Result<(), redb::Error> {
        for &(part, up_to) in &self.merged {
            recent.retain_in((part, 0)..=(part, up_to), |_, _| false)?;
        }
        let mut new: Vec<Vec<&Entry>> = vec![Vec::new(); PARTS];
        for entry in entries {
            new[part_of(&entry.0)].push(entry);
        }
        for (part, entries) in new.iter().enumerate() {
            if !entries.is_empty() {
                recent.insert((part as u8, height), encoding::encode(entries).as_slice())?;
            }
        }
        Ok(())
    }

    /// The chain's transaction of [`TxIndex::write`] committed: keeps the block's entries
    /// and, once [`MERGE_AT`] wait and no merge runs, hands the largest part to the merge
    /// thread.
    pub(super) fn written(&mut self, height: u64, entries: Vec<Entry>) {
        self.merged.clear();
        for (hash, record) in entries {
            self.parts[part_of(&hash)].insert(hash, record);
        }
        if self.merging.is_some() || self.waiting() < MERGE_AT {
            return;
        }
        let part = (0..PARTS).max_by_key(|&p| self.parts[p].len()).unwrap_or(0);
        let entries = Arc::new(std::mem::take(&mut self.parts[part]));
        if let Some(jobs) = &self.merger.jobs {
            // A thread that stopped is reported by the next `collect`.
            let _ = jobs.send(Arc::clone(&entries));
        }
        self.merging = Some(Merging {
            part,
            up_to: height,
            entries,
        });
    }

    /// Forgets every entry, in memory and in `index.redb`: the chain was replaced by a
    /// snapshot, and its rows in [`RECENT_TXS`] are gone. Waits for a running merge first.
    /// (A crash before this leaves records of the blocks below the snapshot: true ones,
    /// since a committed block is final, of blocks this node no longer stores.)
    pub(super) fn clear(&mut self) -> Result<(), StoreError> {
        self.usable()?;
        if self.merging.is_some() {
            let outcome = self.merger.done.recv().ok();
            self.finish(outcome)?;
        }
        self.parts = vec![Entries::new(); PARTS];
        self.merged.clear();
        let txn = self.db.begin_write().db(&self.path)?;
        txn.delete_table(TXS).db(&self.path)?;
        txn.open_table(TXS).db(&self.path)?;
        txn.commit().db(&self.path)
    }

    /// Refuses every step once a merge failed.
    fn usable(&self) -> Result<(), StoreError> {
        match self.broken {
            true => Err(StoreError::Unusable {
                path: self.path.clone(),
            }),
            false => Ok(()),
        }
    }

    /// How long the last merge that finished took (writing and fsyncing its part), once:
    /// for the node's metrics.
    pub(super) fn take_merge_time(&mut self) -> Option<Duration> {
        self.merge_took.take()
    }

    /// Entries not yet handed to a merge.
    fn waiting(&self) -> usize {
        self.parts.iter().map(HashMap::len).sum()
    }
}

impl Drop for TxIndex {
    /// Lets a running merge finish, so that the file is closed when the store is.
    fn drop(&mut self) {
        self.merger.jobs = None;
        if let Some(thread) = self.merger.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes `entries` into the index in hash order, in one fsynced transaction; returns how
/// long that took.
fn merge(db: &Database, entries: &Entries) -> Result<Duration, redb::Error> {
    let started = Instant::now();
    let mut sorted: Vec<(&Hash, &TxRecord)> = entries.iter().collect();
    sorted.sort_unstable_by_key(|(hash, _)| **hash);
    let txn = db.begin_write()?;
    {
        let mut txs = txn.open_table(TXS)?;
        for (hash, record) in sorted {
            txs.insert(hash.0.as_slice(), encoding::encode(record).as_slice())?;
        }
    }
    txn.commit()?;
    Ok(started.elapsed())
}

/// Reads back the entries of [`RECENT_TXS`], by part, in height order within each part.
fn load(
    table: &impl ReadableTable<(u8, u64), &'static [u8]>,
) -> Result<Vec<Entries>, (u64, String)> {
    let mut parts = vec![Entries::new(); PARTS];
    for row in table.iter().map_err(|e| (0, e.to_string()))? {
        let (key, bytes) = row.map_err(|e| (0, e.to_string()))?;
        let (part, height) = key.value();
        let entries: Vec<Entry> =
            encoding::decode(bytes.value()).map_err(|e| (height, format!("index entries: {e}")))?;
        parts
            .get_mut(usize::from(part))
            .ok_or((height, format!("index entries in part {part}")))?
            .extend(entries);
    }
    Ok(parts)
}

/// Moves an index that earlier versions kept in the chain's database into `index`, in
/// batches of [`MOVE_BATCH`] entries, then drops it from the chain and notes there that
/// the chain has an index (unless `indexed` says it is noted and there was nothing to
/// move: then the chain is not written). A crash part way moves the same entries again on
/// the next start.
fn move_index(
    chain: &Database,
    chain_path: &Path,
    index: &Database,
    index_path: &Path,
    indexed: bool,
) -> Result<(), StoreError> {
    let mut after: Option<Vec<u8>> = None;
    let mut found = false;
    loop {
        let txn = chain.begin_read().db(chain_path)?;
        let old = match txn.open_table(TXS) {
            Ok(old) => old,
            Err(redb::TableError::TableDoesNotExist(_)) => break,
            Err(e) => return Err(e).db(chain_path),
        };
        found = true;
        if old.is_empty().db(chain_path)? {
            break;
        }
        let rows = match &after {
            Some(key) => old.range::<&[u8]>((
                std::ops::Bound::Excluded(key.as_slice()),
                std::ops::Bound::Unbounded,
            )),
            None => old.range::<&[u8]>(..),
        }
        .db(chain_path)?;
        let write = index.begin_write().db(index_path)?;
        let mut moved = 0;
        {
            let mut txs = write.open_table(TXS).db(index_path)?;
            for row in rows.take(MOVE_BATCH) {
                let (key, value) = row.db(chain_path)?;
                txs.insert(key.value(), value.value()).db(index_path)?;
                after = Some(key.value().to_vec());
                moved += 1;
            }
        }
        write.commit().db(index_path)?;
        if moved < MOVE_BATCH {
            break;
        }
    }
    if indexed && !found {
        return Ok(());
    }
    let txn = chain.begin_write().db(chain_path)?;
    txn.delete_table(TXS).db(chain_path)?;
    txn.open_table(META)
        .db(chain_path)?
        .insert("index", [1u8].as_slice())
        .db(chain_path)?;
    txn.commit().db(chain_path)
}

#[cfg(test)]
mod tests {
    use almagill::crypto::domain;

    use super::*;

    fn genesis() -> Hash {
        Hash::digest(domain::GENESIS, &[b"index test"])
    }

    /// `n` entries of block `height` with distinct hashes, numbered from `first`.
    fn entries(height: u64, first: u64, n: u64) -> Vec<Entry> {
        (first..first + n)
            .map(|i| {
                let hash = Hash::digest(domain::TX_HASH, &[&i.to_le_bytes()]);
                let record = TxRecord {
                    height,
                    position: i as u32,
                    result: Ok(()),
                };
                (hash, record)
            })
            .collect()
    }

    /// A chain database with its recent-entries table, and the index beside it.
    fn open(dir: &Path) -> (Database, PathBuf, TxIndex) {
        let path = dir.join("chain.redb");
        let chain = Database::create(&path).unwrap();
        let txn = chain.begin_write().unwrap();
        txn.open_table(RECENT_TXS).unwrap();
        txn.commit().unwrap();
        let index = TxIndex::open(dir, genesis(), &chain, &path).unwrap();
        (chain, path, index)
    }

    /// What the chain store does with a block's entries.
    fn append(index: &mut TxIndex, chain: &Database, height: u64, entries: Vec<Entry>) {
        index.collect().unwrap();
        let txn = chain.begin_write().unwrap();
        index
            .write(height, &entries, &mut txn.open_table(RECENT_TXS).unwrap())
            .unwrap();
        txn.commit().unwrap();
        index.written(height, entries);
    }

    fn assert_found(index: &TxIndex, entries: &[Entry], when: &str) {
        for (hash, record) in entries {
            assert_eq!(index.get(hash).unwrap().as_ref(), Some(record), "{when}");
        }
    }

    /// Heights of the rows the chain holds for `part`.
    fn rows(chain: &Database, part: u8) -> Vec<u64> {
        let txn = chain.begin_read().unwrap();
        let recent = txn.open_table(RECENT_TXS).unwrap();
        recent
            .range((part, 0)..=(part, u64::MAX))
            .unwrap()
            .map(|row| row.unwrap().0.value().1)
            .collect()
    }

    /// A part handed to the merge thread is found while its merge cannot commit (the test
    /// holds the index's write lock), a later block's entry for the same hash wins over it,
    /// and once the merge is durable the part's rows go with the next block; everything is
    /// found after a reopen, and nothing after the index is cleared.
    ///
    /// Mutations caught: `get` not reading the part being merged (its entries are not
    /// found while the lock is held); `write` not dropping a merged part's rows (block 1's
    /// row of that part is still there after block 4); `clear` leaving the file's entries
    /// (they are found after the reopen).
    #[test]
    fn entries_are_found_while_their_part_is_merged_after_and_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (chain, _, mut index) = open(dir.path());
        let first = entries(1, 0, MERGE_AT as u64);
        let lock = index.db.begin_write().unwrap();
        append(&mut index, &chain, 1, first.clone());
        let part = index.merging.as_ref().expect("a merge started").part;
        assert_found(&index, &first, "while the merge waits for the lock");
        let hash = first.iter().find(|(h, _)| part_of(h) == part).unwrap().0;
        let again = TxRecord {
            height: 2,
            position: 0,
            result: Ok(()),
        };
        append(&mut index, &chain, 2, vec![(hash, again.clone())]);
        assert_eq!(index.get(&hash).unwrap(), Some(again.clone()));
        drop(lock);

        // Enough entries that the next block waits for the merge, and drops its rows.
        let third = entries(3, MERGE_AT as u64, MERGE_AT as u64);
        append(&mut index, &chain, 3, third.clone());
        append(&mut index, &chain, 4, Vec::new());
        assert!(
            index.take_merge_time().is_some(),
            "the merge's time is kept"
        );
        assert!(
            rows(&chain, part as u8).iter().all(|&h| h > 1),
            "block 1's rows of the merged part are dropped"
        );
        let mut all: HashMap<Hash, TxRecord> = first.into_iter().chain(third).collect();
        all.insert(hash, again);
        let all: Vec<Entry> = all.into_iter().collect();
        assert_found(&index, &all, "after the merge");

        drop(index);
        let mut index = TxIndex::open(
            dir.path(),
            genesis(),
            &chain,
            &dir.path().join("chain.redb"),
        )
        .unwrap();
        assert_found(&index, &all, "after a reopen");
        index.clear().unwrap();
        let txn = chain.begin_write().unwrap();
        txn.open_table(RECENT_TXS)
            .unwrap()
            .retain(|_, _| false)
            .unwrap();
        txn.commit().unwrap();
        drop(index);
        let index = TxIndex::open(
            dir.path(),
            genesis(),
            &chain,
            &dir.path().join("chain.redb"),
        )
        .unwrap();
        for (hash, _) in &all {
            assert_eq!(index.get(hash).unwrap(), None, "after clearing");
        }
    }

    /// An index that an earlier version kept in `chain.redb` is moved into `index.redb`
    /// on opening, all of it (more than one batch), and its table leaves the chain.
    ///
    /// Mutation caught: moving only the first batch (entries past it are not found).
    #[test]
    fn an_index_kept_in_the_chain_database_is_moved_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        let old = entries(1, 0, MOVE_BATCH as u64 + 10);
        {
            let chain = Database::create(&path).unwrap();
            let txn = chain.begin_write().unwrap();
            txn.open_table(RECENT_TXS).unwrap();
            let mut txs = txn.open_table(TXS).unwrap();
            for (hash, record) in &old {
                txs.insert(hash.0.as_slice(), encoding::encode(record).as_slice())
                    .unwrap();
            }
            drop(txs);
            txn.commit().unwrap();
        }
        let (chain, _, index) = open(dir.path());
        assert_found(&index, &old, "after the move");
        let txn = chain.begin_read().unwrap();
        assert!(
            matches!(
                txn.open_table(TXS),
                Err(redb::TableError::TableDoesNotExist(_))
            ),
            "the chain's copy is gone"
        );
    }

    /// An `index.redb` lost beside a chain that had one (deleted, say, after it was
    /// reported damaged) is refused, not started afresh with every record missing.
    ///
    /// Mutation caught: opening without checking the chain's note (the empty file opens).
    #[test]
    fn a_lost_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()));
        std::fs::remove_file(dir.path().join(INDEX_FILE)).unwrap();
        let path = dir.path().join("chain.redb");
        let chain = Database::create(&path).unwrap();
        let err = TxIndex::open(dir.path(), genesis(), &chain, &path).unwrap_err();
        assert!(err.to_string().contains("holds no index"), "{err}");
    }

    /// A merge thread that stopped is an error at the next block, and at every step after
    /// (none waits for it forever); the part it held is still found.
    ///
    /// Mutation caught: `clear` not checking for a broken index (it then empties the file
    /// and goes on as if nothing had happened).
    #[test]
    fn a_stopped_merge_thread_is_an_error_from_then_on() {
        let dir = tempfile::tempdir().unwrap();
        let (chain, _, mut index) = open(dir.path());
        index.merger.jobs = None;
        if let Some(thread) = index.merger.thread.take() {
            thread.join().unwrap();
        }
        let first = entries(1, 0, MERGE_AT as u64);
        append(&mut index, &chain, 1, first.clone());
        let err = index.collect().unwrap_err();
        assert!(err.to_string().contains("merge thread stopped"), "{err}");
        assert!(matches!(index.collect(), Err(StoreError::Unusable { .. })));
        assert!(matches!(index.clear(), Err(StoreError::Unusable { .. })));
        assert_found(&index, &first, "after the thread stopped");
    }

    /// An index file of another chain is refused.
    #[test]
    fn an_index_of_another_chain_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()));
        let path = dir.path().join("chain.redb");
        let chain = Database::create(&path).unwrap();
        let other = Hash::digest(domain::GENESIS, &[b"another chain"]);
        let err = TxIndex::open(dir.path(), other, &chain, &path).unwrap_err();
        assert!(err.to_string().contains("another chain"), "{err}");
    }
}
