//! The pBFT core in deterministic simulation: many real cores and ledgers over a seeded,
//! faulty network, with Byzantine validators, crashes and restarts. Every safety invariant
//! is checked as each event is handled.
//!
//! `ALMAGILL_SIM_SEEDS=N` runs N seeds in each sweep instead of the default.

mod adversaries;
mod amplification;
mod bodies;
mod byzantine;
mod driver;
mod fetches;
mod full_nodes;
mod reputation;
mod scenarios;
mod sim;
mod timestamps;
