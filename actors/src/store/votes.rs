//! The consensus core's own records on disk: the votes this node cast and the rounds it asked
//! for, which it must never contradict after a restart.

use std::path::{Path, PathBuf};

use almagill::consensus::{kept_after_prune, Record};
use almagill::encoding;

use super::{Log, StoreError};

/// The vote log's file name inside the data directory.
pub const VOTES_FILE: &str = "votes.log";

/// How many prunable records must pile up before [`VoteStore::prune_below`] rewrites the
/// log: a rewrite copies every kept record, so doing it at each checkpoint would be wasteful.
pub const PRUNE_BATCH: usize = 256;

/// The durable [`Record`]s of the consensus core, in `<data_dir>/votes.log`.
///
/// [`VoteStore::append`] makes a step's records durable with one fsync; the node calls it
/// before sending the step's messages, so a validator that crashes and restarts remembers
/// every vote it let out. The records since the last rewrite are also kept in memory, to
/// rewrite the log when pruning.
#[derive(Debug)]
pub struct VoteStore {
    /// The log the records are appended to.
    log: Log,
    /// Every record in the log, in order.
    records: Vec<Record>,
    /// Records for heights at or below this are no longer needed.
    low: u64,
}

impl VoteStore {
    /// Opens (creating if absent) the vote log in `dir`, returning the store and every
    /// record in it, in order, for `Restored::records`. A torn last write is cut off (it
    /// was never acknowledged, so its votes were never sent); damaged records are
    /// [`StoreError::Corrupt`].
    pub fn open(dir: &Path) -> Result<(VoteStore, Vec<Record>), StoreError> {
        let path = votes_path(dir);
        let (log, recovered) = Log::open(&path)?;
        let mut records = Vec::with_capacity(recovered.records.len());
        for record in recovered.records {
            let decoded: Record = encoding::decode(&record.body).map_err(|e| {
                StoreError::corrupt(&path, record.offset, format!("not a consensus record: {e}"))
            })?;
            records.push(decoded);
        }
        // A stable checkpoint is what prunes, so the latest one is the watermark to resume.
        let low = records
            .iter()
            .filter_map(|r| match r {
                Record::Stable(certificate) => Some(certificate.payload.height),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let store = VoteStore {
            log,
            records: records.clone(),
            low,
        };
        Ok((store, records))
    }

    /// Makes `records` durable together: one write, one fsync. It must return `Ok` before
    /// the node sends the messages of the step that produced them.
    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let bodies: Vec<Vec<u8>> = records.iter().map(encoding::encode).collect();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        self.log.append(&refs)?;
        self.records.extend_from_slice(records);
        Ok(())
    }

    /// Notes that records for heights at or below `height` are no longer needed (a new
    /// stable checkpoint), and once at least [`PRUNE_BATCH`] records can go, atomically
    /// rewrites the log keeping only records above the highest such `height`, the latest
    /// `Stable` checkpoint and the latest `ViewChange` (the highest round asked for).
    pub fn prune_below(&mut self, height: u64) -> Result<(), StoreError> {
        self.low = self.low.max(height);
        let keep = self.kept();
        if self.records.len() - keep.iter().filter(|&&k| k).count() < PRUNE_BATCH {
            return Ok(());
        }
        let kept: Vec<Record> = self
            .records
            .iter()
            .zip(&keep)
            .filter(|(_, &k)| k)
            .map(|(record, _)| record.clone())
            .collect();
        let bodies: Vec<Vec<u8>> = kept.iter().map(encoding::encode).collect();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        self.log.replace(&refs)?;
        self.records = kept;
        Ok(())
    }

    /// How many records the log holds.
    #[cfg(test)]
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// For each record, whether a prune now would keep it.
    fn kept(&self) -> Vec<bool> {
        kept_after_prune(&self.records, self.low)
    }
}

/// Where the vote log of the data directory `dir` lives.
fn votes_path(dir: &Path) -> PathBuf {
    dir.join(VOTES_FILE)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use almagill::block::Proposal;
    use almagill::certificate::{Certificate, Phase, Signed, VoteTarget};
    use almagill::consensus::CheckpointTarget;
    use almagill::crypto::{Hash, Keypair};

    use super::*;

    const CHAIN: &str = "test-chain";

    fn key() -> Keypair {
        Keypair::from_seed([1; 32])
    }

    fn proposal(height: u64) -> Proposal {
        Proposal::new(height, height, 1_000 * height, key().address(), Vec::new())
    }

    fn vote(phase: Phase, height: u64) -> Signed<VoteTarget> {
        let target = VoteTarget {
            phase,
            height,
            view: height,
            digest: proposal(height).digest(),
        };
        Signed::sign(target, &key(), CHAIN)
    }

    fn prepared(height: u64) -> Record {
        Record::Prepared(vote(Phase::Prepare, height))
    }

    fn committed(height: u64) -> Record {
        Record::Committed {
            vote: vote(Phase::Commit, height),
            certificate: Certificate::new(vote(Phase::Prepare, height).payload, Vec::new()),
            proposal: proposal(height),
        }
    }

    fn stable(height: u64) -> Record {
        let target = CheckpointTarget {
            height,
            state_root: Hash([height as u8; 32]),
        };
        Record::Stable(Certificate::new(target, Vec::new()))
    }

    #[test]
    fn round_trip_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, restored) = VoteStore::open(dir.path()).unwrap();
        assert!(restored.is_empty());
        let first = vec![prepared(1), committed(1)];
        store.append(&first).unwrap();
        store.append(&[]).unwrap();
        drop(store);

        let (mut store, restored) = VoteStore::open(dir.path()).unwrap();
        assert_eq!(restored, first);
        let second = vec![Record::ViewChange { round: 3 }, stable(1)];
        store.append(&second).unwrap();
        drop(store);

        let (store, restored) = VoteStore::open(dir.path()).unwrap();
        assert_eq!(restored, [first, second].concat());
        assert_eq!(store.record_count(), 4);
        assert_eq!(store.low, 1);
    }

    #[test]
    fn torn_last_batch_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = VoteStore::open(dir.path()).unwrap();
        store.append(&[prepared(1)]).unwrap();
        store.append(&[committed(1), prepared(2)]).unwrap();
        drop(store);
        let path = votes_path(dir.path());
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let (_, restored) = VoteStore::open(dir.path()).unwrap();
        // The batch was not acknowledged, so none of its votes went out; losing its last
        // record alone is what a crash during the write can do.
        assert_eq!(restored, vec![prepared(1), committed(1)]);
    }

    #[test]
    fn flipped_byte_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = VoteStore::open(dir.path()).unwrap();
        store
            .append(&[prepared(1), committed(1), prepared(2)])
            .unwrap();
        drop(store);
        let path = votes_path(dir.path());
        let mut bytes = fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            VoteStore::open(dir.path()),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn undecodable_record_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        Log::rewrite(&votes_path(dir.path()), &[b"\xff\xff not a record"]).unwrap();
        assert!(matches!(
            VoteStore::open(dir.path()),
            Err(StoreError::Corrupt { offset: 0, reason, .. }) if reason.contains("not a consensus record")
        ));
    }

    #[test]
    fn prune_waits_for_a_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = VoteStore::open(dir.path()).unwrap();
        let records: Vec<Record> = (1..=10).map(prepared).collect();
        store.append(&records).unwrap();
        let size = fs::metadata(votes_path(dir.path())).unwrap().len();
        store.prune_below(5).unwrap();
        // Too few prunable records to be worth a rewrite.
        assert_eq!(store.record_count(), 10);
        assert_eq!(fs::metadata(votes_path(dir.path())).unwrap().len(), size);
    }

    #[test]
    fn prune_keeps_the_right_records() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = VoteStore::open(dir.path()).unwrap();
        let mut records = Vec::new();
        for height in 1..=150u64 {
            records.push(prepared(height));
            records.push(committed(height));
            if height % 10 == 0 {
                records.push(stable(height));
            }
            if height % 50 == 0 {
                records.push(Record::ViewChange { round: height / 50 });
            }
        }
        store.append(&records).unwrap();
        store.prune_below(140).unwrap();

        // In log order: heights 141..=150, then the checkpoint at 150, then round 3.
        let mut expected: Vec<Record> = Vec::new();
        for height in 141..=150 {
            expected.push(prepared(height));
            expected.push(committed(height));
        }
        expected.push(stable(150));
        expected.push(Record::ViewChange { round: 3 });
        assert_eq!(store.records, expected);
        drop(store);

        let (mut store, restored) = VoteStore::open(dir.path()).unwrap();
        assert_eq!(restored, expected);
        assert_eq!(store.low, 150);
        // Appends continue on the rewritten file.
        store.append(&[prepared(151)]).unwrap();
        drop(store);
        let (_, restored) = VoteStore::open(dir.path()).unwrap();
        assert_eq!(restored.len(), expected.len() + 1);
        assert!(!dir.path().join("votes.log.tmp").exists());
    }

    #[test]
    fn prune_keeps_the_highest_round_and_checkpoint_whatever_the_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = VoteStore::open(dir.path()).unwrap();
        let mut records: Vec<Record> = (1..=PRUNE_BATCH as u64).map(prepared).collect();
        records.push(Record::ViewChange { round: 9 });
        records.push(stable(200));
        records.push(Record::ViewChange { round: 4 });
        records.push(stable(100));
        records.push(prepared(300));
        store.append(&records).unwrap();
        store.prune_below(PRUNE_BATCH as u64).unwrap();
        assert_eq!(
            store.records,
            vec![Record::ViewChange { round: 9 }, stable(200), prepared(300)]
        );
    }
}
