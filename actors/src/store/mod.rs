//! Durable storage for the node: the committed chain and the consensus core's own records.
//!
//! # Why an append-only log
//!
//! Both stores sit on [`Log`], an append-only file of records, each framed as a
//! little-endian `u32` length, a blake3 checksum of the body, and the body (a canonical
//! encoding). It was chosen over an embedded database because:
//!
//! - every write the node makes is an append: a committed block, or the votes of one
//!   consensus step. One record (or one batch) is one `write` and one `fsync`, so a commit is
//!   durable, and atomic, when the call returns;
//! - recovery is a linear scan: a torn tail left by a crash during a write is cut off, and
//!   every other record is checked against its checksum;
//! - it adds no heavy dependency (blake3 is already the chain's hash).
//!
//! Pruning (of the vote log) rewrites the file atomically: a temporary file, fsynced, renamed
//! over the old one, and the directory fsynced.
//!
//! Corruption (a checksum mismatch, an impossible length, a record that does not decode, a
//! chain that does not link) is detected and reported as [`StoreError::Corrupt`] with the file
//! and offset; it is never silently used or cut away.

// Used by the node actors (in progress).
#![allow(dead_code)]

pub mod chain;
pub mod log;
pub mod votes;

pub use self::chain::ChainStore;
pub use self::log::{Log, StoreError};
pub use self::votes::VoteStore;
