//! The AlmaGill node as a library: its actors, storage, networking and commands. The
//! `almagill` binary (`main.rs`) is a thin shell over [`commands::run`]; tests drive the
//! same modules (a peer of their own making, for instance) through this crate.

#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod commands;
pub mod file_limit;
pub mod files;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod store;
