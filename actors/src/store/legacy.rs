//! The chain log earlier versions of the node wrote (`chain.log`, one checksummed record per
//! block): read once at start to move its blocks into the database, then renamed so it is
//! never read again.

use std::path::{Path, PathBuf};

use almagill::block::Block;
use almagill::certificate::CommitCertificate;
use almagill::encoding;

use super::{Log, StoreError};

/// The old chain log's file name inside the data directory.
pub const LEGACY_FILE: &str = "chain.log";

/// What the old chain log becomes once its blocks are in the database.
pub const MIGRATED_FILE: &str = "chain.log.migrated";

/// The blocks of the old chain log in `dir`, if there is one; damaged records are an error.
/// The blocks are checked again as they are executed and stored.
pub fn read(dir: &Path) -> Result<Option<Vec<(Block, CommitCertificate)>>, StoreError> {
    let path = dir.join(LEGACY_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let (_, recovered) = Log::open(&path)?;
    recovered
        .records
        .into_iter()
        .map(|record| {
            encoding::decode(&record.body).map_err(|e| {
                StoreError::corrupt(&path, record.offset, format!("not a stored block: {e}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Renames the old chain log out of the way once its blocks are stored; returns the new
/// path.
pub fn retire(dir: &Path) -> Result<PathBuf, StoreError> {
    let (from, to) = (dir.join(LEGACY_FILE), dir.join(MIGRATED_FILE));
    std::fs::rename(&from, &to).map_err(StoreError::io("rename", &from))?;
    Ok(to)
}
