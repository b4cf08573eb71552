//! End-to-end tests of the AlmaGill node: real `almagill` processes on real sockets and
//! disks, driven only through the public contracts (`shared/spec/cli.md` and
//! `shared/spec/admin-protocol.md`) and, for the hostile-input test, the peer wire format.
//!
//! Each test writes its own network with `almagill testnet` into a temporary directory, on
//! ports it reserves (random, checked free, never shared with a test running in parallel),
//! with a 1 s view timeout so view changes are quick (and, for the epoch test, 20-block
//! epochs). Nodes run as `almagill run` with their
//! logs in the temporary directory; a failing test prints each node's last log lines.
//! Nothing sleeps to synchronise: every wait polls a condition with a generous deadline, and
//! no test asserts on timing.
//!
//! ```sh
//! cargo test -p almagill-node --test e2e                      # all of them
//! cargo test -p almagill-node --test e2e -- kill_during_load  # one
//! ```
//!
//! - `agreement`: four validators agree, and every admin command answers per the spec.
//! - `bench`: a short `almagill bench` run reports committed transfers and latency.
//! - `catch_up`: a node emptied during a load of 40,000 transfers rejoins and reaches the
//!   head while the others keep taking transactions.
//! - `clients`: a burst from one account, nonces to any node in any order, more right after
//!   a commit: all admitted, all committed.
//! - `accounts`: account rules, replays and forged signatures, end to end.
//! - `crashes`: a leader killed, a node killed under load, a leader killed just after an
//!   epoch boundary; the others go on, and the killed node recovers and catches up.
//! - `full_nodes`: a node with no stake at genesis, and a validator that unstakes, follow the
//!   head as full nodes, across restarts.
//! - `restarts`: the whole network stopped and started; a wiped node syncs and votes.
//! - `hostile`: bad bytes on the peer and admin ports, a thousand idle admin clients, a
//!   validator gossiping a forged signature.
//! - `peer_surface`: a stranger relaying handshakes, flooding the slots of unauthenticated
//!   connections, announcing huge frames: no session, no validator kept out, no memory.
//! - `metrics`: a real HTTP scrape of the metrics address; height and counters move.
//! - `localnet`: `almagill localnet` runs the shipped `config/`.
//! - `admin_surface`: the admin port under abuse by a local user: idle and half-line floods,
//!   a low open-file limit, whitespace lines, the validator key, the admin token.

mod harness;
mod peer_client;

mod accounts;
mod admin_surface;
mod agreement;
mod bench;
mod catch_up;
mod clients;
mod crashes;
mod full_nodes;
mod hostile;
mod idle;
mod localnet;
mod metrics;
mod peer_surface;
mod restarts;
mod state_sync;
