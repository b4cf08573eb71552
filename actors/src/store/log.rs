//! An append-only file of checksummed records: the one primitive both stores are built on.
//!
//! # Format
//!
//! The file is a plain sequence of records, with no file header:
//!
//! ```text
//! +----------------+---------------------------+------------------+
//! | length: u32 LE | checksum: blake3(body) 32 | body: length B   |
//! +----------------+---------------------------+------------------+
//! ```
//!
//! A record's length is at most [`MAX_ENCODED_BYTES`], the most any canonical value may be.
//!
//! # Recovery
//!
//! [`Log::open`] scans the file from the start:
//!
//! - a *torn tail* (the file ends inside the last record, as after a crash during a write
//!   that was never acknowledged) is cut off, and reported in [`Recovered::truncated_bytes`];
//!   so is a tail of zero bytes only, which is what a crash leaves on a file system that
//!   grew the file before its data reached the disk (no real record is all zeros: the
//!   checksum of any body is not);
//! - anything else that is wrong (a checksum that does not match, a length over the limit)
//!   is corruption: [`StoreError::Corrupt`], naming the file and the offset. Such data is
//!   never used, and never cut away silently, since it may be a record that was durable.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use almagill::encoding::MAX_ENCODED_BYTES;
use thiserror::Error;

/// Bytes before each body: the length (4) and the blake3 checksum (32).
pub const HEADER_BYTES: usize = 4 + 32;

/// Why the node's durable storage cannot be read or written.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The operating system refused an operation.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done ("open", "read", "write", ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The stored bytes are damaged or inconsistent; they are not used.
    #[error(
        "{} is corrupt at byte offset {offset}: {reason} (the node will not use damaged data; \
         restore the data directory from a backup or resync it from peers)",
        path.display()
    )]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A record to write is larger than any record may be, so it could never be read back.
    #[error("refusing to write a {len}-byte record to {}: the limit is {max}", path.display())]
    RecordTooLarge {
        /// The log.
        path: PathBuf,
        /// The record's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An append would break the store's invariants (e.g. a block out of order), so the
    /// file would not reopen; nothing was written.
    #[error("refusing to append to {}: {reason}", path.display())]
    Rejected {
        /// The log.
        path: PathBuf,
        /// Which invariant the append breaks.
        reason: String,
    },
    /// An earlier write or fsync failed in a way that leaves the file's contents uncertain
    /// (partial bytes that could not be cut off, or an fsync error), so further appends are
    /// refused until the log is reopened and rescanned.
    #[error(
        "an earlier write to {} failed and left it uncertain; restart to reopen and rescan it",
        path.display()
    )]
    Unusable {
        /// The log.
        path: PathBuf,
    },
    /// The chain database refused an operation (it reports damage it finds this way too).
    #[error("the chain database {} failed: {source}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// What the database said.
        source: Box<redb::Error>,
    },
}

impl StoreError {
    /// An [`StoreError::Io`] for `op` on `path`; a shorthand for `map_err`.
    pub fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
        move |source| StoreError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A [`StoreError::Corrupt`]: `path` is damaged at `offset` because of `reason`.
    pub fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }
}

/// One record read back from a log, with where it starts (to name it in errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Byte offset of the record's header in the file.
    pub offset: u64,
    /// The body, checksum verified.
    pub body: Vec<u8>,
}

/// What [`Log::open`] found: every intact record, and how much of a torn tail it cut off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The records, in the order they were appended.
    pub records: Vec<LogRecord>,
    /// Bytes of an unfinished last write that were truncated away (0 after a clean stop).
    pub truncated_bytes: u64,
}

/// An open append-only log. Every [`Log::append`] is durable (fsynced) when it returns.
#[derive(Debug)]
pub struct Log {
    /// Opened for reading and appending.
    file: File,
    /// Where it lives, for errors and rewrites.
    path: PathBuf,
    /// Length of the valid records: where the next one goes.
    len: u64,
    /// Set when a failed write or fsync left the file uncertain: appends are refused.
    unusable: bool,
}

impl Log {
    /// Opens (creating if absent) the log at `path` and reads every record back, truncating
    /// a torn tail. Corruption anywhere else is an error, never silently skipped.
    pub fn open(path: &Path) -> Result<(Log, Recovered), StoreError> {
        // A temporary file left by a rewrite that crashed before its rename is never the
        // real log (the rename is the commit point), so it is simply dropped.
        remove_if_present(&temp_path(path))?;
        let existed = path.try_exists().map_err(StoreError::io("check", path))?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(StoreError::io("open", path))?;
        if !existed {
            sync_parent_dir(path)?;
        }
        let file_len = file
            .metadata()
            .map_err(StoreError::io("inspect", path))?
            .len();
        let (records, valid_len) = scan(&mut file, path, file_len)?;
        let truncated_bytes = file_len - valid_len;
        if truncated_bytes > 0 {
            file.set_len(valid_len)
                .map_err(StoreError::io("truncate the torn tail of", path))?;
            file.sync_all().map_err(StoreError::io("sync", path))?;
            tracing::warn!(
                target: "store",
                file = %path.display(),
                bytes = truncated_bytes,
                "cut off an unfinished write at the end of the log"
            );
        }
        let log = Log {
            file,
            path: path.to_path_buf(),
            len: valid_len,
            unusable: false,
        };
        let recovered = Recovered {
            records,
            truncated_bytes,
        };
        Ok((log, recovered))
    }

    /// Appends `bodies` as records with a single write and a single `fsync`, so a batch
    /// (e.g. the votes of one consensus step) becomes durable together. A crash mid-way
    /// leaves at most a torn tail, which the next [`Log::open`] cuts off.
    pub fn append(&mut self, bodies: &[&[u8]]) -> Result<(), StoreError> {
        if self.unusable {
            return Err(StoreError::Unusable {
                path: self.path.clone(),
            });
        }
        if bodies.is_empty() {
            return Ok(());
        }
        let buf = frame(&self.path, bodies)?;
        let written = match self.file.write_all(&buf) {
            Ok(()) => self.file.sync_data().map_err(|e| (e, true)),
            Err(e) => Err((e, false)),
        };
        if let Err((source, sync_failed)) = written {
            // After a failed fsync, what reached the disk is unknowable (and a retried fsync
            // may report success falsely), so the log refuses further appends; a restart
            // rescans the file. After a failed write, cut off whatever part of the batch
            // reached the file, so the next append does not land after a partial record.
            let undone = !sync_failed
                && self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_data())
                    .is_ok();
            self.unusable |= !undone;
            return Err(StoreError::Io {
                op: "append to",
                path: self.path.clone(),
                source,
            });
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Atomically replaces the log at `path` with exactly `bodies` (for pruning): writes a
    /// temporary file in the same directory, fsyncs it, renames it over the log and fsyncs
    /// the directory. A crash at any point leaves either the old log or the new one, whole.
    /// Returns the new log, opened for appending; a handle on the old file must not be
    /// appended to afterwards (use [`Log::replace`] to swap a handle safely).
    #[cfg(test)]
    pub fn rewrite(path: &Path, bodies: &[&[u8]]) -> Result<Log, StoreError> {
        write_new(path, bodies).map_err(|(error, _)| error)
    }

    /// Rewrites this log's file with `bodies` (as `Log::rewrite` does) and continues on the new file. If the
    /// rewrite fails before its rename, this log is unchanged and still usable; if it fails
    /// after (the directory could not be synced, so which file survives a crash is unknown),
    /// appends are refused from then on and the node must restart to reopen the log.
    pub fn replace(&mut self, bodies: &[&[u8]]) -> Result<(), StoreError> {
        if self.unusable {
            return Err(StoreError::Unusable {
                path: self.path.clone(),
            });
        }
        match write_new(&self.path, bodies) {
            Ok(log) => {
                *self = log;
                Ok(())
            }
            Err((error, renamed)) => {
                self.unusable |= renamed;
                Err(error)
            }
        }
    }

    /// The length in bytes of the records written so far.
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the log holds no records.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Encodes `bodies` as records into one buffer, refusing any body too large to read back.
fn frame(path: &Path, bodies: &[&[u8]]) -> Result<Vec<u8>, StoreError> {
    let total: usize = bodies.iter().map(|b| HEADER_BYTES + b.len()).sum();
    let mut buf = Vec::with_capacity(total);
    for body in bodies {
        let len = match u32::try_from(body.len()) {
            Ok(len) if body.len() <= MAX_ENCODED_BYTES => len,
            _ => {
                return Err(StoreError::RecordTooLarge {
                    path: path.to_path_buf(),
                    len: body.len(),
                    max: MAX_ENCODED_BYTES,
                })
            }
        };
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(blake3::hash(body).as_bytes());
        buf.extend_from_slice(body);
    }
    Ok(buf)
}

/// Reads every record of `file` (of length `file_len`) from the start. Returns them and the
/// length of the intact prefix; whatever follows it is a torn tail.
fn scan(file: &mut File, path: &Path, file_len: u64) -> Result<(Vec<LogRecord>, u64), StoreError> {
    file.seek(SeekFrom::Start(0))
        .map_err(StoreError::io("read", path))?;
    let mut reader = BufReader::new(&mut *file);
    let mut records = Vec::new();
    let mut offset = 0u64;
    while offset < file_len {
        let remaining = file_len - offset;
        if remaining < 4 {
            return Ok((records, offset));
        }
        let mut len_bytes = [0u8; 4];
        reader
            .read_exact(&mut len_bytes)
            .map_err(StoreError::io("read", path))?;
        let len = u32::from_le_bytes(len_bytes);
        // Checked before anything is allocated: a damaged length must not become a huge
        // allocation, nor be mistaken for a torn tail.
        if len as usize > MAX_ENCODED_BYTES {
            return Err(StoreError::corrupt(
                path,
                offset,
                format!("record length {len} is over the {MAX_ENCODED_BYTES}-byte limit"),
            ));
        }
        let record_len = HEADER_BYTES as u64 + u64::from(len);
        if remaining < record_len {
            // The file ends inside this record: an unfinished last write.
            return Ok((records, offset));
        }
        let mut checksum = [0u8; 32];
        reader
            .read_exact(&mut checksum)
            .map_err(StoreError::io("read", path))?;
        let mut body = vec![0u8; len as usize];
        reader
            .read_exact(&mut body)
            .map_err(StoreError::io("read", path))?;
        if blake3::hash(&body).as_bytes() != &checksum {
            drop(reader);
            if zeros_from(file, path, offset, file_len)? {
                return Ok((records, offset));
            }
            return Err(StoreError::corrupt(
                path,
                offset,
                format!("the checksum of the {len}-byte record does not match its contents"),
            ));
        }
        records.push(LogRecord { offset, body });
        offset += record_len;
    }
    Ok((records, offset))
}

/// Whether every byte of `file` from `offset` to its end is zero.
fn zeros_from(
    file: &mut File,
    path: &Path,
    offset: u64,
    file_len: u64,
) -> Result<bool, StoreError> {
    file.seek(SeekFrom::Start(offset))
        .map_err(StoreError::io("read", path))?;
    let mut reader = BufReader::new(file).take(file_len - offset);
    let mut chunk = [0u8; 8192];
    loop {
        let n = reader
            .read(&mut chunk)
            .map_err(StoreError::io("read", path))?;
        if n == 0 {
            return Ok(true);
        }
        if chunk[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// Writes `bodies` into a fresh temporary file, makes it durable, renames it over `path`
/// and syncs the directory. On failure, also says whether the rename had happened.
fn write_new(path: &Path, bodies: &[&[u8]]) -> Result<Log, (StoreError, bool)> {
    let temp = temp_path(path);
    let file = match write_temp(&temp, path, bodies) {
        Ok(file) => file,
        Err(error) => {
            // Best effort: a leftover temp file is also removed by the next open.
            let _ = fs::remove_file(&temp);
            return Err((error, false));
        }
    };
    let len = file.len;
    sync_parent_dir(path).map_err(|error| (error, true))?;
    Ok(Log {
        file: file.file,
        path: path.to_path_buf(),
        len,
        unusable: false,
    })
}

/// A file written in full, with its length.
struct Written {
    file: File,
    len: u64,
}

/// Writes `bodies` as a log into a fresh file at `temp`, fsyncs it and renames it to `path`.
fn write_temp(temp: &Path, path: &Path, bodies: &[&[u8]]) -> Result<Written, StoreError> {
    let buf = frame(path, bodies)?;
    // Appending mode, as in `open`: appends after a failed write then go to the real end.
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .truncate(false)
        .open(temp)
        .map_err(StoreError::io("create", temp))?;
    // A stale file of the same name (from a crashed rewrite) must not leave bytes behind.
    file.set_len(0).map_err(StoreError::io("truncate", temp))?;
    file.write_all(&buf)
        .map_err(StoreError::io("write", temp))?;
    file.sync_all().map_err(StoreError::io("sync", temp))?;
    fs::rename(temp, path).map_err(StoreError::io("rename over", path))?;
    Ok(Written {
        file,
        len: buf.len() as u64,
    })
}

/// The temporary file a rewrite of `path` goes through: `<name>.tmp`, in the same directory
/// (so the rename is atomic).
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Removes `path` if it exists.
fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(StoreError::io("remove the stale", path)(e))
        }
        _ => Ok(()),
    }
}

/// Fsyncs the directory holding `path`, so a file's creation or rename in it is durable.
fn sync_parent_dir(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    sync_dir(dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("sync the directory", dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), StoreError> {
    // Directories cannot be opened for syncing here; the rename itself is still atomic.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies() -> Vec<Vec<u8>> {
        vec![b"first".to_vec(), Vec::new(), vec![7u8; 1000]]
    }

    fn refs(bodies: &[Vec<u8>]) -> Vec<&[u8]> {
        bodies.iter().map(Vec::as_slice).collect()
    }

    fn read_back(path: &Path) -> (Log, Recovered) {
        Log::open(path).expect("the log opens")
    }

    fn only_bodies(recovered: &Recovered) -> Vec<Vec<u8>> {
        recovered.records.iter().map(|r| r.body.clone()).collect()
    }

    #[test]
    fn round_trip_and_reopen_after_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.log");
        let (mut log, recovered) = read_back(&path);
        assert_eq!(recovered, Recovered::default());
        assert!(log.is_empty());
        let first = bodies();
        log.append(&refs(&first)).unwrap();
        drop(log);

        let (mut log, recovered) = read_back(&path);
        assert_eq!(only_bodies(&recovered), first);
        assert_eq!(recovered.truncated_bytes, 0);
        assert_eq!(recovered.records[1].offset, (HEADER_BYTES + 5) as u64);
        log.append(&[b"second batch"]).unwrap();
        drop(log);

        let (log, recovered) = read_back(&path);
        let mut all = first;
        all.push(b"second batch".to_vec());
        assert_eq!(only_bodies(&recovered), all);
        assert_eq!(log.len(), fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn torn_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.log");
        let (mut log, _) = read_back(&path);
        log.append(&[b"kept one", b"kept two"]).unwrap();
        let intact = log.len();
        log.append(&[b"the record a crash interrupted"]).unwrap();
        drop(log);
        // Cut at every point inside the last record: header or body.
        let full = fs::read(&path).unwrap();
        for cut in intact + 1..full.len() as u64 {
            fs::write(&path, &full[..cut as usize]).unwrap();
            let (mut log, recovered) = read_back(&path);
            assert_eq!(
                only_bodies(&recovered),
                vec![b"kept one".to_vec(), b"kept two".to_vec()]
            );
            assert_eq!(recovered.truncated_bytes, cut - intact);
            assert_eq!(fs::metadata(&path).unwrap().len(), intact);
            // Appends go after the intact records, not after the torn bytes.
            log.append(&[b"after"]).unwrap();
            drop(log);
            let (_, recovered) = read_back(&path);
            assert_eq!(recovered.records.len(), 3);
            assert_eq!(recovered.records[2].body, b"after");
        }
    }

    #[test]
    fn zero_filled_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.log");
        let (mut log, _) = read_back(&path);
        log.append(&[b"kept"]).unwrap();
        let intact = log.len();
        drop(log);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0u8; 100]);
        fs::write(&path, &bytes).unwrap();
        let (_, recovered) = read_back(&path);
        assert_eq!(only_bodies(&recovered), vec![b"kept".to_vec()]);
        assert_eq!(recovered.truncated_bytes, 100);
        assert_eq!(fs::metadata(&path).unwrap().len(), intact);
    }

    #[test]
    fn flipped_byte_in_a_middle_record_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.log");
        let (mut log, _) = read_back(&path);
        log.append(&[b"one", b"two", b"three"]).unwrap();
        drop(log);
        let original = fs::read(&path).unwrap();
        let second = (HEADER_BYTES + 3) as u64;
        // A flip in the second record's checksum or body.
        for at in [second as usize + 4, second as usize + HEADER_BYTES + 1] {
            let mut bytes = original.clone();
            bytes[at] ^= 0x01;
            fs::write(&path, &bytes).unwrap();
            match Log::open(&path) {
                Err(StoreError::Corrupt {
                    offset, path: p, ..
                }) => {
                    assert_eq!(offset, second);
                    assert_eq!(p, path);
                }
                other => panic!("expected corruption, got {other:?}"),
            }
            // Nothing was cut away: the damaged data stays for an operator to inspect.
            assert_eq!(fs::read(&path).unwrap(), bytes);
        }
    }

    #[test]
    fn flipped_byte_in_the_last_complete_record_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.log");
        let (mut log, _) = read_back(&path);
        log.append(&[b"one", b"two"]).unwrap();
        drop(log);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x80;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            Log::open(&path),
            Err(StoreError::Corrupt { offset, .. }) if offset == (HEADER_BYTES + 3) as u64
        ));
    }

    #[test]
    fn oversize_length_is_corrupt_not_an_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.log");
        let (mut log, _) = read_back(&path);
        log.append(&[b"one"]).unwrap();
        drop(log);
        let mut bytes = fs::read(&path).unwrap();
        let offset = bytes.len() as u64;
        // A header claiming 4 GiB, with only a few bytes after it: were the length trusted,
        // this would either allocate 4 GiB or pass for a torn tail.
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0xAB; 40]);
        fs::write(&path, &bytes).unwrap();
        match Log::open(&path) {
            Err(StoreError::Corrupt {
                offset: at, reason, ..
            }) => {
                assert_eq!(at, offset);
                assert!(reason.contains("over"), "{reason}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        // Just over the limit is refused as well.
        bytes.truncate(offset as usize);
        bytes.extend_from_slice(&(MAX_ENCODED_BYTES as u32 + 1).to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(Log::open(&path), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn oversize_append_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.log");
        let (mut log, _) = read_back(&path);
        let big = vec![0u8; MAX_ENCODED_BYTES + 1];
        assert!(matches!(
            log.append(&[b"fine", &big]),
            Err(StoreError::RecordTooLarge { .. })
        ));
        // Nothing of the batch was written.
        assert!(log.is_empty());
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn rewrite_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.log");
        let temp = temp_path(&path);
        assert_eq!(temp, dir.path().join("test.log.tmp"));
        let (mut log, _) = read_back(&path);
        log.append(&[b"old one", b"old two"]).unwrap();
        drop(log);

        let mut log = Log::rewrite(&path, &[b"new"]).unwrap();
        assert!(!temp.exists(), "the temp file is renamed away");
        log.append(&[b"appended"]).unwrap();
        drop(log);
        let (_, recovered) = read_back(&path);
        assert_eq!(
            only_bodies(&recovered),
            vec![b"new".to_vec(), b"appended".to_vec()]
        );
    }

    #[test]
    fn crashed_rewrite_leaves_the_old_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.log");
        let (mut log, _) = read_back(&path);
        log.append(&[b"old"]).unwrap();
        drop(log);
        // A rewrite that crashed before its rename: a (possibly partial) temp file.
        let temp = temp_path(&path);
        fs::write(&temp, b"half of a new log").unwrap();
        let (_, recovered) = read_back(&path);
        assert_eq!(only_bodies(&recovered), vec![b"old".to_vec()]);
        assert!(!temp.exists(), "open removes the stale temp file");
    }

    #[test]
    fn failed_replace_keeps_the_log_usable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.log");
        let (mut log, _) = read_back(&path);
        log.append(&[b"old"]).unwrap();
        let big = vec![0u8; MAX_ENCODED_BYTES + 1];
        // Failing before the rename leaves the same file in place and appendable.
        assert!(log.replace(&[&big]).is_err());
        log.append(&[b"more"]).unwrap();
        log.replace(&[b"new"]).unwrap();
        log.append(&[b"after"]).unwrap();
        assert_eq!(log.len(), fs::metadata(&path).unwrap().len());
        drop(log);
        let (_, recovered) = read_back(&path);
        assert_eq!(
            only_bodies(&recovered),
            vec![b"new".to_vec(), b"after".to_vec()]
        );
    }

    #[test]
    fn failed_rewrite_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.log");
        let (mut log, _) = read_back(&path);
        log.append(&[b"old"]).unwrap();
        drop(log);
        let big = vec![0u8; MAX_ENCODED_BYTES + 1];
        assert!(Log::rewrite(&path, &[&big]).is_err());
        assert!(!temp_path(&path).exists());
        let (_, recovered) = read_back(&path);
        assert_eq!(only_bodies(&recovered), vec![b"old".to_vec()]);
    }
}
