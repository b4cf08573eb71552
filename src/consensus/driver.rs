//! The one driver of the core's [`Actions`]: the node's actor and the simulator both carry
//! them out through [`drive`], so the order that keeps a validator safe (nothing leaves
//! before what it rests on is durable) is code, not a comment, and the simulator tests the
//! node's real order.

use crate::block::Block;
use crate::certificate::CommitCertificate;

use super::io::{Actions, BatchRequest, Record, Target, Timer};
use super::message::Message;

/// The effects a node can have: what the core asks its host to do.
pub trait Host {
    /// Why a record could not be made durable.
    type Error;

    /// Makes `records` durable, then drops records at or below `prune_below` (records
    /// older than a new stable checkpoint). Must not return before they are durable.
    fn persist(
        &mut self,
        records: Vec<Record>,
        prune_below: Option<u64>,
    ) -> Result<(), Self::Error>;

    /// Sends a message to one validator or to all others.
    fn send(&mut self, target: Target, message: Message);

    /// Executes a committed block (the next height) and answers with
    /// [`super::Input::Executed`].
    fn execute(&mut self, block: Block, certificate: CommitCertificate);

    /// Sets a timer, replacing any earlier setting of its kind; answers with
    /// [`super::Input::Timeout`] when it expires.
    fn set_timer(&mut self, timer: Timer, after_ms: u64);

    /// Asks for transactions to propose; answers with [`super::Input::Batch`].
    fn request_batch(&mut self, request: BatchRequest);

    /// Asks peers for committed blocks `from..=to`; answers with [`super::Input::Synced`].
    fn request_sync(&mut self, from: u64, to: u64);
}

/// Carries out one step's actions on `host`: persist first, and only if that succeeded,
/// send, execute in height order, set timers, and pass on the requests. A persist error
/// stops everything after it: a vote that is not durable must not leave the node.
pub fn drive<H: Host>(host: &mut H, actions: Actions) -> Result<(), H::Error> {
    let Actions {
        persist,
        prune_below,
        messages,
        commits,
        timers,
        batch_request,
        sync_request,
    } = actions;
    if !persist.is_empty() || prune_below.is_some() {
        host.persist(persist, prune_below)?;
    }
    for (target, message) in messages {
        host.send(target, message);
    }
    for (block, certificate) in commits {
        host.execute(block, certificate);
    }
    for (timer, after_ms) in timers {
        host.set_timer(timer, after_ms);
    }
    if let Some(request) = batch_request {
        host.request_batch(request);
    }
    if let Some((from, to)) = sync_request {
        host.request_sync(from, to);
    }
    Ok(())
}
