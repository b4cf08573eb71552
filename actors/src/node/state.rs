//! StateActor: the ledger (the DataObject). Executes committed blocks in order, exactly once,
//! and answers questions about committed state.

use std::collections::HashMap;

use actix::{Actor, Context, Handler, MessageResult, Recipient};
use almagill::crypto::Hash;
use almagill::ledger::Ledger;
use tracing::{debug, error};

use crate::node::messages::{
    Append, Committed, Execute, Executed, ReadState, ReadTx, StateView, TxOutcome,
};

/// The ledger and what the node knows about executed blocks.
pub struct StateActor {
    /// Committed state.
    pub ledger: Ledger,
    /// Every executed transaction's outcome.
    pub txs: HashMap<Hash, TxOutcome>,
    /// The state root after each height (index 0 is genesis).
    pub roots: Vec<Hash>,
    /// Where committed blocks are stored (the BlockStore).
    pub append: Recipient<Append>,
    /// Told of each executed block (the ConsensusEngine).
    pub executed: Recipient<Executed>,
    /// Told of each new committed state (the Mempool).
    pub committed: Recipient<Committed>,
}

impl StateActor {
    /// Applies one block to `ledger`, recording outcomes: used both live and when replaying
    /// the stored chain at start.
    pub fn apply(
        ledger: &mut Ledger,
        txs: &mut HashMap<Hash, TxOutcome>,
        roots: &mut Vec<Hash>,
        block: &almagill::block::Block,
    ) -> Result<almagill::ledger::BlockOutcome, almagill::ledger::LedgerError> {
        let height = block.height();
        let outcome = ledger.apply_block(block)?;
        for (tx, result) in block.txs.iter().zip(&outcome.results) {
            let status = match result {
                Ok(()) => TxOutcome::Committed(height),
                Err(e) => TxOutcome::Failed(height, e.code()),
            };
            txs.insert(tx.hash(), status);
        }
        roots.push(outcome.state_root);
        Ok(outcome)
    }
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
        match Self::apply(&mut self.ledger, &mut self.txs, &mut self.roots, &msg.block) {
            Ok(outcome) => {
                debug!(target: "state", height, root = %outcome.state_root, "executed");
                self.executed.do_send(Executed {
                    height,
                    state_root: outcome.state_root,
                    next_validators: outcome.new_validators,
                });
                self.committed.do_send(Committed {
                    block: msg.block.clone(),
                });
                self.append.do_send(Append {
                    block: msg.block,
                    certificate: msg.certificate,
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
            height,
            account: msg.0.and_then(|a| self.ledger.account(&a).copied()),
            total_supply: self.ledger.total_supply(),
            genesis_supply: self.ledger.genesis_supply(),
            validators: self.ledger.validators_for(height + 1).cloned(),
        })
    }
}

impl Handler<ReadTx> for StateActor {
    type Result = MessageResult<ReadTx>;

    fn handle(&mut self, msg: ReadTx, _: &mut Context<Self>) -> Self::Result {
        let outcome = msg.tx.and_then(|h| self.txs.get(&h).copied());
        let root = msg
            .root_at
            .and_then(|h| self.roots.get(h as usize).copied());
        MessageResult((outcome, root))
    }
}
