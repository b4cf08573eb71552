//! StateActor: the ledger (the DataObject). Executes committed blocks in order, exactly once,
//! hands each to the BlockStore with what it did, and answers questions about current state.

use actix::{Actor, Context, Handler, MessageResult, Recipient};
use almagill::ledger::Ledger;
use tracing::{debug, error, info};

use crate::node::messages::{Execute, Executed, ReadState, StateView, Store};

/// The ledger as of the last executed block.
pub struct StateActor {
    /// Committed state.
    pub ledger: Ledger,
    /// A snapshot of the ledger goes with every block whose height is a multiple of this.
    pub snapshot_every: u64,
    /// Where executed blocks are stored (the BlockStore).
    pub store: Recipient<Store>,
    /// Told of each executed block (the ConsensusEngine).
    pub executed: Recipient<Executed>,
}

impl Actor for StateActor {
    type Context = Context<Self>;
}

impl Handler<Execute> for StateActor {
    type Result = ();

    fn handle(&mut self, msg: Execute, _: &mut Context<Self>) {
        let height = msg.block.height();
        if height != self.ledger.height() + 1 {
            return;
        }
        match self.ledger.apply_block(&msg.block) {
            Ok(outcome) => {
                debug!(target: "state", height, root = %outcome.state_root, "executed");
                if !outcome.blamed.is_empty() {
                    let blamed: Vec<String> = outcome.blamed.iter().map(|a| a.short()).collect();
                    info!(target: "state", height, blamed = ?blamed, "leaders blamed for failed rounds; passed over for a while");
                }
                let epoch_end = outcome
                    .new_validators
                    .is_some()
                    .then(|| self.ledger.root_parts());
                self.executed.do_send(Executed {
                    height,
                    state_root: outcome.state_root,
                    next_validators: outcome.new_validators,
                });
                let snapshot = (height % self.snapshot_every == 0).then(|| self.ledger.snapshot());
                self.store.do_send(Store {
                    block: msg.block,
                    certificate: msg.certificate,
                    results: outcome.results,
                    state_root: outcome.state_root,
                    snapshot,
                    epoch_end,
                });
            }
            Err(e) => {
                // Consensus hands out only checked blocks, in order: a block the ledger
                // refuses means a bug or corrupt state. Going on would leave consensus
                // waiting for an execution that never comes; stop instead.
                error!(target: "state", "cannot execute block {height}: {e}; stopping");
                actix::System::current().stop_with_code(1);
            }
        }
    }
}

impl Handler<ReadState> for StateActor {
    type Result = MessageResult<ReadState>;

    fn handle(&mut self, msg: ReadState, _: &mut Context<Self>) -> Self::Result {
        let height = self.ledger.height();
        MessageResult(StateView {
            account: msg.0.and_then(|a| self.ledger.account(&a).copied()),
            total_supply: self.ledger.total_supply(),
            genesis_supply: self.ledger.genesis_supply(),
            validators: self.ledger.validators_for(height + 1).cloned(),
        })
    }
}
