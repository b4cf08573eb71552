//! The admin port: the line-based TCP protocol people and scripts use to talk to a running
//! node (`nc 127.0.0.1 7100`). Its contract is `spec/admin-protocol.md`; tests outside the
//! project drive nodes through exactly that text.
//!
//! [`protocol`] is the pure half: parsing one request line into a typed [`protocol::Command`]
//! and formatting `OK <json>` / `ERR <code> <message>` response lines. It has no sockets, no
//! clock and no node state, so every corner of the contract is unit-tested here. The server
//! that reads lines, asks the node's actors and writes the answers builds on it:
//! [`lines`] reads request lines with bounded time and memory, [`auth`] holds the admin
//! token, [`server`] accepts connections within a cap and answers them.

pub mod auth;
pub mod lines;
pub mod protocol;
pub mod server;
