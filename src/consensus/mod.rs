//! Stake-weighted, pipelined pBFT as a pure state machine.
//!
//! # Driving it
//!
//! Build a [`Pbft`] with [`Pbft::new`] from a [`Config`] and what the node had durably
//! ([`Restored`]); then feed it every [`Input`] with [`Pbft::step`], passing the time in
//! milliseconds. Each step returns [`Actions`]; carry them out with [`drive`] on a [`Host`]
//! (the node's actor and the simulator are both hosts). `drive` keeps the order that makes
//! a validator safe:
//!
//! 1. make every [`Record`] durable (and drop records at or below `prune_below`): a vote
//!    may leave the node only once it is on disk, so a validator that crashes and restarts
//!    can never sign two conflicting votes;
//! 2. send messages ([`Target::All`] means every other validator);
//! 3. execute committed blocks in order (each exactly once), answering each with
//!    [`Input::Executed`];
//! 4. set timers, answering each expiry with [`Input::Timeout`] (a timer set again
//!    replaces the earlier setting; a stale expiry is ignored);
//! 5. answer a batch request with [`Input::Batch`], and a sync request with
//!    [`Input::Synced`] for each reply, in any order.
//!
//! The core verifies every signature, certificate and body itself; the host only needs to
//! authenticate which validator a connection belongs to (`from`).
//!
//! # The protocol
//!
//! - Heights are sequence numbers. Up to `window` of them are in flight at once, inside
//!   the watermarks `low < n <= low + 2 * checkpoint_interval`; blocks come out strictly in
//!   order. The window drains at the end of each epoch, so all heights in flight share one
//!   validator set.
//! - The view of height `n` in round `r` is `n + r`, and its leader is the
//!   [`LeaderSchedule`]'s entry for that view: leadership rotates after every block and on
//!   every view change, in proportion to stake.
//! - Normal case: the leader's pre-prepare (its proposal with its own prepare vote), then
//!   prepare and commit votes; a quorum is validators holding more than two thirds of stake,
//!   counted by distinct signers.
//! - Checkpoints every `checkpoint_interval` heights carry the state root; a quorum makes
//!   one stable, which moves the low watermark and lets everything below go.
//! - View change: a node with no progress for the view timeout (doubling with each failed
//!   round) asks for the next round, carrying its stable checkpoint and prepared
//!   certificates; the next round's primary re-proposes per [`view_change::plan`], and every
//!   node recomputes that plan and rejects a new view that differs. A node that sees more
//!   than a third of stake in higher rounds joins the lowest of them.
//! - Catch-up: a node that is behind fetches blocks with their commit certificates and
//!   verifies each against the validator set of its height.

mod budget;
mod driver;
mod io;
mod leader;
mod message;
mod pbft;
mod votes;

pub use driver::{drive, Host};
pub use io::{
    kept_after_prune, Actions, BatchRequest, Input, Record, Restored, Target, Timer, TimerKind,
};
pub use leader::LeaderSchedule;
pub use message::{
    CheckpointCertificate, CheckpointTarget, Message, NewView, PreparedCertificate, ViewChange,
};
pub use pbft::view_change;
pub use pbft::{Config, Mode, Pbft, MAX_CLOCK_AHEAD_MS, MIN_BLOCK_GAP_MS, SYNC_BUFFER};
