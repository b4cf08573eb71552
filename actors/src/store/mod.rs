//! Durable storage for the node: the committed chain and the consensus core's own records.
//!
//! The chain (blocks, transaction index, state roots, ledger snapshots) lives in an embedded
//! database ([`ChainStore`], redb): it is read at random (a block, a transaction) long after
//! it was written, and must not be held in memory.
//!
//! # Why an append-only log for votes
//!
//! The consensus core's records (votes) sit on [`Log`], an append-only file of records, each
//! framed as a little-endian `u32` length, a blake3 checksum of the body, and the body (a
//! canonical encoding). It suits them better than a database because:
//!
//! - every write is an append: the votes of one consensus step. One batch is one `write` and
//!   one `fsync`, so a vote is durable, and atomic, before it is sent;
//! - recovery is a linear scan: a torn tail left by a crash during a write is cut off, and
//!   every other record is checked against its checksum;
//! - it adds no heavy dependency (blake3 is already the chain's hash).
//!
//! Pruning (of the vote log) rewrites the file atomically: a temporary file, fsynced, renamed
//! over the old one, and the directory fsynced.
//!
//! Corruption (a checksum mismatch, an impossible length, a record that does not decode, a
//! database whose checksums fail) is detected and reported as [`StoreError::Corrupt`] with the file
//! and offset; it is never silently used or cut away.

pub mod chain;
pub mod legacy;
pub mod log;
pub mod sync;
pub mod tx_index;
pub mod votes;

pub use self::chain::{ChainStore, Commit};
pub use self::log::{Log, StoreError};
pub use self::votes::VoteStore;
