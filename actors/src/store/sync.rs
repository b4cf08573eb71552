//! What a node keeps to serve state sync, and how a snapshot fetched by state sync is
//! installed.
//!
//! A node offers its newest snapshot whose height has a stable checkpoint stored, with the
//! block at that height; it serves epoch proofs (the checkpoint and root parts at each
//! epoch's end) and the snapshot's chunks on request. A node that synced installs the
//! snapshot, its block and the proofs in one transaction, in place of what it held: its
//! chain then starts at the snapshot's height, and blocks below it are not stored.

use almagill::consensus::CheckpointCertificate;
use almagill::encoding;
use almagill::ledger::{RootParts, SnapshotChunk, SnapshotHead};
use almagill::state_sync::{EpochProof, Offer};
use bincode::Decode;
use redb::{ReadableDatabase, ReadableTable};

use super::chain::{
    put_snapshot, snapshot_heights, Db, BLOCKS, CHECKPOINTS, EPOCH_PARTS, ROOTS, SNAPSHOTS,
};
use super::tx_index::RECENT_TXS;
use super::{ChainStore, StoreError};

impl ChainStore {
    /// Keeps a stable checkpoint: those at epoch ends and snapshot heights are what state
    /// sync serves.
    pub fn put_checkpoint(
        &mut self,
        certificate: &CheckpointCertificate,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().db(&self.path)?;
        txn.open_table(CHECKPOINTS)
            .db(&self.path)?
            .insert(
                certificate.payload.height,
                encoding::encode(certificate).as_slice(),
            )
            .db(&self.path)?;
        txn.commit().db(&self.path)
    }

    /// The newest snapshot this node can prove: stored with its block and a stable
    /// checkpoint at its height.
    pub fn offer(&self) -> Result<Option<Offer>, StoreError> {
        let txn = self.db.begin_read().db(&self.path)?;
        let snapshots = txn.open_table(SNAPSHOTS).db(&self.path)?;
        let checkpoints = txn.open_table(CHECKPOINTS).db(&self.path)?;
        for height in snapshot_heights(&snapshots)
            .db(&self.path)?
            .into_iter()
            .rev()
        {
            let Some(checkpoint) = self.read(&checkpoints, height)? else {
                continue;
            };
            let Some((block, commit)) = self.block(height)? else {
                continue;
            };
            let Some(head) = snapshots.get((height, 0)).db(&self.path)? else {
                continue;
            };
            let head: SnapshotHead = self.decode(height, head.value())?;
            return Ok(Some(Offer {
                checkpoint,
                head,
                block,
                commit,
            }));
        }
        Ok(None)
    }

    /// Epoch proofs from height `from` on, in height order, up to about `max_bytes`; they
    /// stop before the first epoch end this node has no checkpoint for.
    pub fn epoch_proofs(&self, from: u64, max_bytes: usize) -> Result<Vec<EpochProof>, StoreError> {
        let txn = self.db.begin_read().db(&self.path)?;
        let parts = txn.open_table(EPOCH_PARTS).db(&self.path)?;
        let checkpoints = txn.open_table(CHECKPOINTS).db(&self.path)?;
        let mut proofs = Vec::new();
        let mut bytes = 0;
        for entry in parts.range(from..).db(&self.path)? {
            let (height, value) = entry.db(&self.path)?;
            let height = height.value();
            let Some(checkpoint) = self.read(&checkpoints, height)? else {
                break;
            };
            let parts: RootParts = self.decode(height, value.value())?;
            bytes += value.value().len();
            proofs.push(EpochProof { checkpoint, parts });
            if bytes >= max_bytes {
                break;
            }
        }
        Ok(proofs)
    }

    /// Chunk `index` (from 1) of the snapshot at `height`, if it is still stored.
    pub fn chunk(&self, height: u64, index: u32) -> Result<Option<SnapshotChunk>, StoreError> {
        if index == 0 {
            return Ok(None);
        }
        let txn = self.db.begin_read().db(&self.path)?;
        let snapshots = txn.open_table(SNAPSHOTS).db(&self.path)?;
        let Some(value) = snapshots.get((height, index)).db(&self.path)? else {
            return Ok(None);
        };
        self.decode(height, value.value()).map(Some)
    }

    /// Replaces everything stored with a snapshot state sync checked (its offer, chunks and
    /// the epoch proofs that led to it), in one fsynced transaction, then empties the
    /// transaction index: the chain then starts at the snapshot's block.
    pub fn install(
        &mut self,
        offer: &Offer,
        chunks: &[SnapshotChunk],
        proofs: &[EpochProof],
    ) -> Result<(), StoreError> {
        let height = offer.head.height;
        let txn = self.db.begin_write().db(&self.path)?;
        {
            let mut blocks = txn.open_table(BLOCKS).db(&self.path)?;
            blocks.retain(|_, _| false).db(&self.path)?;
            let stored = encoding::encode(&(&offer.block, &offer.commit));
            blocks.insert(height, stored.as_slice()).db(&self.path)?;
            txn.open_table(RECENT_TXS)
                .db(&self.path)?
                .retain(|_, _| false)
                .db(&self.path)?;
            let mut roots = txn.open_table(ROOTS).db(&self.path)?;
            roots.retain(|_, _| false).db(&self.path)?;
            roots
                .insert(height, offer.head.state_root.0.as_slice())
                .db(&self.path)?;
            let mut snapshots = txn.open_table(SNAPSHOTS).db(&self.path)?;
            snapshots.retain(|_, _| false).db(&self.path)?;
            put_snapshot(&mut snapshots, &offer.head, chunks).db(&self.path)?;
            let mut checkpoints = txn.open_table(CHECKPOINTS).db(&self.path)?;
            let mut parts = txn.open_table(EPOCH_PARTS).db(&self.path)?;
            for certificate in proofs
                .iter()
                .map(|p| &p.checkpoint)
                .chain([&offer.checkpoint])
            {
                checkpoints
                    .insert(
                        certificate.payload.height,
                        encoding::encode(certificate).as_slice(),
                    )
                    .db(&self.path)?;
            }
            for proof in proofs {
                parts
                    .insert(
                        proof.checkpoint.payload.height,
                        encoding::encode(&proof.parts).as_slice(),
                    )
                    .db(&self.path)?;
            }
        }
        txn.commit().db(&self.path)?;
        self.set_tip(height, offer.block.hash());
        self.index.clear()
    }

    fn read<T: Decode<()>>(
        &self,
        table: &impl ReadableTable<u64, &'static [u8]>,
        height: u64,
    ) -> Result<Option<T>, StoreError> {
        match table.get(height).db(&self.path)? {
            Some(value) => self.decode(height, value.value()).map(Some),
            None => Ok(None),
        }
    }

    fn decode<T: Decode<()>>(&self, height: u64, bytes: &[u8]) -> Result<T, StoreError> {
        encoding::decode(bytes).map_err(|e| StoreError::corrupt(&self.path, height, e.to_string()))
    }
}
