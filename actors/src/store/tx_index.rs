//! The transaction index (hash → where it was committed and what it did), written in
//! sorted batches.
//!
//! Transaction hashes are random, so inserting a block's entries one by one into the
//! hash-keyed table rewrites one page of it per transaction (4 KiB written for a 50-byte
//! entry). Instead, each block's entries are stored under its height in [`RECENT_TXS`]
//! (sequential keys: a page or two per block) and kept in memory; once [`MERGE_AT`] have
//! gathered, they go into [`TXS`] together, in hash order, in the same database
//! transaction that stores the block, so entries that share a page share its write. Until
//! then lookups find them in memory. On opening, the entries in [`RECENT_TXS`] are read back,
//! so a crash loses none.

use std::collections::HashMap;

use almagill::crypto::Hash;
use almagill::encoding;
use redb::{ReadableTable, Table, TableDefinition};

use super::chain::TxRecord;

/// Transaction hash → encoded [`TxRecord`]: the merged index.
pub(super) const TXS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("txs");

/// Height → encoded index entries (hash and [`TxRecord`]) of that block, for the blocks not
/// yet merged into [`TXS`].
pub(super) const RECENT_TXS: TableDefinition<u64, &[u8]> = TableDefinition::new("recent_txs");

/// How many entries wait before they are merged: a merge costs about one page write per
/// page of the index they land on, so the more wait, the fewer writes per entry; they also
/// make the merge's pause (tens of milliseconds) and the memory held (about 100 bytes each).
pub const MERGE_AT: usize = 16_384;

/// One index entry.
pub(super) type Entry = (Hash, TxRecord);

/// The entries not yet merged into [`TXS`], by hash (a later block's entry replaces an
/// earlier one's, as it would in the table).
#[derive(Debug, Default)]
pub(super) struct Recent(HashMap<Hash, TxRecord>);

impl Recent {
    /// Reads back the entries of [`RECENT_TXS`], in height order.
    pub(super) fn load(
        table: &impl ReadableTable<u64, &'static [u8]>,
    ) -> Result<Recent, (u64, String)> {
        let mut recent = Recent::default();
        for row in table.iter().map_err(|e| (0, e.to_string()))? {
            let (height, bytes) = row.map_err(|e| (0, e.to_string()))?;
            let entries: Vec<Entry> = encoding::decode(bytes.value())
                .map_err(|e| (height.value(), format!("index entries: {e}")))?;
            recent.0.extend(entries);
        }
        Ok(recent)
    }

    /// The entry for `hash`, if it is among these.
    pub(super) fn get(&self, hash: &Hash) -> Option<&TxRecord> {
        self.0.get(hash)
    }

    /// Writes a block's `entries`: merged into [`TXS`] with all the others if
    /// [`MERGE_AT`] are reached (emptying [`RECENT_TXS`]), else under `height` in
    /// [`RECENT_TXS`]. Nothing in memory changes until [`Recent::written`] says the
    /// database transaction committed.
    pub(super) fn write(
        &self,
        height: u64,
        entries: &[Entry],
        txs: &mut Table<&[u8], &[u8]>,
        recent: &mut Table<u64, &[u8]>,
    ) -> Result<bool, redb::Error> {
        if self.0.len() + entries.len() < MERGE_AT {
            recent.insert(height, encoding::encode(&entries).as_slice())?;
            return Ok(false);
        }
        let mut all: HashMap<&Hash, &TxRecord> = self.0.iter().collect();
        all.extend(entries.iter().map(|(hash, record)| (hash, record)));
        let mut all: Vec<(&Hash, &TxRecord)> = all.into_iter().collect();
        all.sort_unstable_by_key(|(hash, _)| **hash);
        for (hash, record) in all {
            txs.insert(hash.0.as_slice(), encoding::encode(record).as_slice())?;
        }
        recent.retain(|_, _| false)?;
        Ok(true)
    }

    /// The transaction of [`Recent::write`] committed: `merged` is what it returned.
    pub(super) fn written(&mut self, entries: Vec<Entry>, merged: bool) {
        if merged {
            self.0 = HashMap::new();
        } else {
            self.0.extend(entries);
        }
    }

    /// Forgets every entry (the chain was replaced by a snapshot).
    pub(super) fn clear(&mut self) {
        self.0 = HashMap::new();
    }
}
