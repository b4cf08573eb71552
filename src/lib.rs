//! AlmaGill core: the pure, deterministic half of a stake-weighted pBFT blockchain.
//!
//! Everything here is a plain function of its inputs: no actix, no sockets, no clock, no
//! disk. The node in `actors/` feeds this library bytes, time and randomness, and carries out
//! what it returns. That split is what lets the same code run in the real node and in a
//! deterministic simulator.

#![forbid(unsafe_code)]

pub mod amount;
pub mod block;
pub mod certificate;
pub mod config;
pub mod consensus;
pub mod crypto;
pub mod encoding;
pub mod genesis;
pub mod ledger;
pub mod mempool;
pub mod merkle;
pub mod reputation;
pub mod state_sync;
pub mod state_tree;
pub mod tx;
pub mod validators;
