//! The transaction index (hash → where it was committed and what it did), written in
//! sorted batches.
//!
//! Transaction hashes are random, so inserting a block's entries one by one into the
//! hash-keyed table rewrites one page of it per transaction (4 KiB written for a 50-byte
//! entry). Instead, each block's entries are kept in memory in [`PARTS`] parts by the
//! first bits of their hash, and stored in [`RECENT_TXS`] under (part, height): a row per
//! part, each at the end of its part's rows, so a block writes a page or so per part.
//! Once [`MERGE_AT`] have gathered, the largest part goes into [`TXS`] in hash order, in
//! the same database transaction that stores the block: its entries all land in one
//! part of the table, so many share each page written, and the pause is that part's.
//! Lookups find the waiting entries in memory. On opening, the entries in [`RECENT_TXS`]
//! are read back, so a crash loses none.

use std::collections::HashMap;

use almagill::crypto::Hash;
use almagill::encoding;
use redb::{ReadableTable, Table, TableDefinition};

use super::chain::TxRecord;

/// Transaction hash → encoded [`TxRecord`]: the merged index.
pub(super) const TXS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("txs");

/// (part, height) → encoded index entries (hash and [`TxRecord`]) of that block in that
/// part, for the entries not yet merged into [`TXS`].
pub(super) const RECENT_TXS: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("recent_txs");

/// How many entries wait before the largest part is merged: a merge writes about one page
/// per page of its part, so pages per entry are about the index's size in pages over this
/// number (at 16,384, a 60-second run at 12,000 tx/s slowed down as the index grew: p99
/// 2.2 s instead of 0.4 s). They cost memory, about 100 bytes each (13 MB).
pub const MERGE_AT: usize = 131_072;

/// Parts the waiting entries are kept in, by the top bits of their hash: a merge takes
/// one, about 8,000 entries. Not more: a block writes one row per part into
/// [`RECENT_TXS`], scattered over the table, so more parts write more pages per block
/// (with 64, p50 at 6,900 tx/s was 62 ms instead of 38).
const PARTS: usize = 16;

/// One index entry.
pub(super) type Entry = (Hash, TxRecord);

fn part_of(hash: &Hash) -> usize {
    usize::from(hash.0[0]) * PARTS / 256
}

/// The entries not yet merged into [`TXS`], by part then hash (a later block's entry
/// replaces an earlier one's, as it would in the table).
#[derive(Debug)]
pub(super) struct Recent {
    parts: Vec<HashMap<Hash, TxRecord>>,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            parts: vec![HashMap::new(); PARTS],
        }
    }
}

impl Recent {
    /// Reads back the entries of [`RECENT_TXS`], in height order within each part.
    pub(super) fn load(
        table: &impl ReadableTable<(u8, u64), &'static [u8]>,
    ) -> Result<Recent, (u64, String)> {
        let mut recent = Recent::default();
        for row in table.iter().map_err(|e| (0, e.to_string()))? {
            let (key, bytes) = row.map_err(|e| (0, e.to_string()))?;
            let (part, height) = key.value();
            let entries: Vec<Entry> = encoding::decode(bytes.value())
                .map_err(|e| (height, format!("index entries: {e}")))?;
            let part = recent
                .parts
                .get_mut(usize::from(part))
                .ok_or((height, format!("index entries in part {part}")))?;
            part.extend(entries);
        }
        Ok(recent)
    }

    /// The entry for `hash`, if it is among these.
    pub(super) fn get(&self, hash: &Hash) -> Option<&TxRecord> {
        self.parts[part_of(hash)].get(hash)
    }

    fn len(&self) -> usize {
        self.parts.iter().map(HashMap::len).sum()
    }

    /// Writes a block's `entries`: under `height` in [`RECENT_TXS`], except that once
    /// [`MERGE_AT`] are reached, the largest part (with this block's entries in it) is merged
    /// into [`TXS`] and its rows removed. Returns the part merged, if any. Nothing in memory
    /// changes until [`Recent::written`] says the database transaction committed.
    pub(super) fn write(
        &self,
        height: u64,
        entries: &[Entry],
        txs: &mut Table<&[u8], &[u8]>,
        recent: &mut Table<(u8, u64), &[u8]>,
    ) -> Result<Option<usize>, redb::Error> {
        let mut new: Vec<Vec<&Entry>> = vec![Vec::new(); PARTS];
        for entry in entries {
            new[part_of(&entry.0)].push(entry);
        }
        let merged = (self.len() + entries.len() >= MERGE_AT)
            .then(|| (0..PARTS).max_by_key(|&p| self.parts[p].len() + new[p].len()))
            .flatten();
        for (part, entries) in new.iter().enumerate() {
            if !entries.is_empty() && merged != Some(part) {
                recent.insert((part as u8, height), encoding::encode(entries).as_slice())?;
            }
        }
        let Some(part) = merged else {
            return Ok(None);
        };
        let mut all: HashMap<&Hash, &TxRecord> = self.parts[part].iter().collect();
        all.extend(new[part].iter().map(|(hash, record)| (hash, record)));
        let mut all: Vec<(&Hash, &TxRecord)> = all.into_iter().collect();
        all.sort_unstable_by_key(|(hash, _)| **hash);
        for (hash, record) in all {
            txs.insert(hash.0.as_slice(), encoding::encode(record).as_slice())?;
        }
        let part = part as u8;
        recent.retain_in((part, 0)..=(part, u64::MAX), |_, _| false)?;
        Ok(merged)
    }

    /// The transaction of [`Recent::write`] committed: `merged` is what it returned.
    pub(super) fn written(&mut self, entries: Vec<Entry>, merged: Option<usize>) {
        for (hash, record) in entries {
            self.parts[part_of(&hash)].insert(hash, record);
        }
        if let Some(part) = merged {
            self.parts[part] = HashMap::new();
        }
    }

    /// Forgets every entry (the chain was replaced by a snapshot).
    pub(super) fn clear(&mut self) {
        *self = Recent::default();
    }
}
