//! The ledger (the DataObject of the original design): accounts, the rules that move tokens
//! between them, and the validator sets that stake produces.
//!
//! Consensus orders blocks whose transactions passed the stateless checks; the ledger then
//! executes each transaction in order. One that no longer applies (a stale nonce, funds
//! already spent, an account already created) is recorded as failed and changes nothing.
//! That keeps execution out of consensus's way. Every sum is checked; tokens are never
//! created or destroyed, so the total always equals the genesis supply.

mod root;
mod snapshot;

use std::collections::BTreeMap;

use bincode::{Decode, Encode};
use thiserror::Error;

use crate::amount::Amount;
use crate::block::Block;
use crate::crypto::{Address, Hash};
use crate::genesis::Genesis;
use crate::reputation::Blames;
use crate::state_tree::StateTree;
use crate::tx::{Transaction, TxKind};
use crate::validators::{self, Validator, ValidatorSet};

pub use self::root::{Epochs, RootParts};
pub use self::snapshot::{SnapshotChunk, SnapshotError, SnapshotHead, ACCOUNTS_PER_CHUNK};

/// One account's holdings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Account {
    /// Spendable tokens.
    pub balance: Amount,
    /// Staked tokens: voting weight once at or above the minimum stake.
    pub stake: Amount,
    /// How many of this account's transactions have been applied; the next must carry it.
    pub nonce: u64,
}

/// Why a transaction does not apply to the current state. The code of each is the admin
/// protocol's error code.
#[derive(Clone, Debug, Error, PartialEq, Eq, Encode, Decode)]
pub enum TxError {
    /// The sender, or a transfer's recipient, does not exist.
    #[error("{0} is not an account")]
    UnknownAccount(Address),
    /// A creation's new account already exists.
    #[error("{0} already exists")]
    AccountExists(Address),
    /// The nonce is not the sender's next.
    #[error("nonce {got} is not the account's next nonce {expected}")]
    BadNonce {
        /// The nonce the account expects.
        expected: u64,
        /// The nonce the transaction carries.
        got: u64,
    },
    /// The balance (or, to unstake, the stake) is less than the amount.
    #[error("{available} available, {needed} needed")]
    InsufficientFunds {
        /// What the account has.
        available: Amount,
        /// What the transaction moves.
        needed: Amount,
    },
    /// The stake left would be above zero but below the minimum.
    #[error("a stake of {stake} is below the minimum {min}")]
    BelowMinStake {
        /// The stake the account would have.
        stake: Amount,
        /// The minimum.
        min: Amount,
    },
}

impl TxError {
    /// The admin protocol's error code.
    pub fn code(&self) -> &'static str {
        match self {
            TxError::UnknownAccount(_) => "unknown_account",
            TxError::AccountExists(_) => "account_exists",
            TxError::BadNonce { .. } => "bad_nonce",
            TxError::InsufficientFunds { .. } => "insufficient_funds",
            TxError::BelowMinStake { .. } => "below_min_stake",
        }
    }
}

/// Why a block could not be executed at all.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LedgerError {
    /// Blocks execute strictly in order, each exactly once.
    #[error("block {got} cannot execute: the next height is {expected}")]
    OutOfOrder {
        /// The height the ledger expects.
        expected: u64,
        /// The height offered.
        got: u64,
    },
    /// The block's transactions are not the ones its header commits to.
    #[error("block {height} cannot execute: its transactions do not match its header")]
    BodyMismatch {
        /// The block's height.
        height: u64,
    },
}

/// What executing one block did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockOutcome {
    /// For each transaction, in block order: applied, or why it failed.
    pub results: Vec<Result<(), TxError>>,
    /// The state root after the block.
    pub state_root: Hash,
    /// At an epoch's last block: the validator set it fixed, and the epoch that set is for.
    pub new_validators: Option<(u64, ValidatorSet)>,
    /// The validators blamed for the rounds that ended before this block was proposed
    /// (see [`crate::reputation`]).
    pub blamed: Vec<Address>,
}

/// The accounts and the chain's rules; it changes only by executing blocks in order.
#[derive(Clone, Debug)]
pub struct Ledger {
    accounts: StateTree,
    min_stake: Amount,
    epoch_length: u64,
    genesis_supply: Amount,
    /// The height of the last executed block (0 is genesis).
    height: u64,
    /// Validator sets by epoch; see [`Ledger::validators_for`].
    epochs: BTreeMap<u64, ValidatorSet>,
    /// Who failed recent turns to lead (see [`crate::reputation`]).
    blames: Blames,
    /// From genesis: reputation counts in checkpoint intervals.
    checkpoint_interval: u64,
}

/// The new states of the accounts a transaction touches.
type Writes = [Option<(Address, Account)>; 2];

impl Ledger {
    /// The state at height 0.
    pub fn from_genesis(genesis: &Genesis) -> Ledger {
        let mut accounts = StateTree::default();
        for a in &genesis.accounts {
            accounts.insert(
                a.address,
                Account {
                    balance: a.balance,
                    stake: a.stake,
                    nonce: 0,
                },
            );
        }
        let mut ledger = Ledger {
            accounts,
            min_stake: genesis.min_stake,
            epoch_length: genesis.epoch_length,
            genesis_supply: genesis.supply(),
            height: 0,
            epochs: BTreeMap::new(),
            blames: Blames::default(),
            checkpoint_interval: genesis.consensus.checkpoint_interval,
        };
        if let Some(set) = genesis.validator_set() {
            ledger.epochs.insert(0, set.clone());
            ledger.epochs.insert(1, set);
        }
        ledger
    }

    /// The height of the last executed block.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The account at `address`, if it exists.
    pub fn account(&self, address: &Address) -> Option<&Account> {
        self.accounts.get(address)
    }

    /// Every account in address order.
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, &Account)> {
        self.accounts.iter()
    }

    /// The tokens that exist: fixed at genesis.
    pub fn genesis_supply(&self) -> Amount {
        self.genesis_supply
    }

    /// The sum of every balance and stake now. Always equal to [`Ledger::genesis_supply`];
    /// computed afresh so that this can be checked, not assumed.
    pub fn total_supply(&self) -> Amount {
        self.accounts
            .iter()
            .map(|(_, a)| a.balance.saturating_add(a.stake))
            .fold(0, Amount::saturating_add)
    }

    /// The state root: a digest of every account and of the validator sets, equal on every
    /// node with the same history.
    pub fn state_root(&mut self) -> Hash {
        self.root_parts().root()
    }

    /// What the state root is the digest of.
    pub fn root_parts(&mut self) -> RootParts {
        RootParts {
            accounts_root: self.accounts.root(),
            epochs: self
                .epochs
                .iter()
                .map(|(epoch, set)| (*epoch, set.members().to_vec()))
                .collect(),
            blames: self.blames.clone(),
        }
    }

    /// Who failed recent turns to lead: what a restarting node hands to consensus.
    pub fn blames(&self) -> &Blames {
        &self.blames
    }

    /// The minimum stake of a validator.
    pub fn min_stake(&self) -> Amount {
        self.min_stake
    }

    /// The accounts that would be validators if an epoch began now.
    pub fn eligible_validators(&self) -> Option<ValidatorSet> {
        ValidatorSet::new(
            self.accounts
                .iter()
                .filter(|(_, a)| validators::qualifies(a.stake, self.min_stake))
                .map(|(address, a)| Validator {
                    address: *address,
                    stake: a.stake,
                })
                .collect(),
        )
    }

    /// The epoch a height belongs to (see [`validators::epoch_of`]).
    pub fn epoch_of(&self, height: u64) -> u64 {
        validators::epoch_of(height, self.epoch_length)
    }

    /// The validator set in force at `height`, or `None` when it is not known here: too far
    /// ahead of execution, or long past.
    ///
    /// Epochs 0 and 1 use the genesis set. The set for epoch `e >= 2` is the eligible set
    /// once the last block of epoch `e - 2` has executed, a whole epoch before it is used,
    /// so every block in flight knows its validators however far execution lags.
    pub fn validators_for(&self, height: u64) -> Option<&ValidatorSet> {
        self.epochs.get(&self.epoch_of(height))
    }

    /// Checks a transaction against the current state without changing anything.
    /// Signature and format are not checked here (see [`Transaction::verify`]).
    pub fn check(&self, tx: &Transaction) -> Result<(), TxError> {
        self.writes(tx).map(|_| ())
    }

    /// Applies one transaction, or changes nothing and says why not.
    pub fn apply_tx(&mut self, tx: &Transaction) -> Result<(), TxError> {
        for (address, account) in self.writes(tx)?.into_iter().flatten() {
            self.accounts.insert(address, account);
        }
        Ok(())
    }

    /// Executes the next block: every transaction in order, failures recorded. A block out
    /// of order, or whose transactions are not the ones its header commits to, is refused
    /// and changes nothing. Signatures are checked where a body enters the node
    /// ([`crate::block::ProposalHeader::check_body`]), not again here.
    pub fn apply_block(&mut self, block: &Block) -> Result<BlockOutcome, LedgerError> {
        let height = block.height();
        if height != self.height + 1 {
            return Err(LedgerError::OutOfOrder {
                expected: self.height + 1,
                got: height,
            });
        }
        if !block.header.proposal.binds(&block.txs) {
            return Err(LedgerError::BodyMismatch { height });
        }
        let results = block.txs.iter().map(|tx| self.apply_tx(tx)).collect();
        let blamed = self.blames.record(
            height,
            block.header.proposal.view,
            self.epochs.get(&self.epoch_of(height)),
            self.checkpoint_interval,
        );
        self.height = height;
        let new_validators = if height % self.epoch_length == 0 {
            self.begin_epoch_change(height)
        } else {
            None
        };
        Ok(BlockOutcome {
            results,
            state_root: self.state_root(),
            new_validators,
            blamed,
        })
    }

    /// At the end of epoch `e`, fixes the set for epoch `e + 2` (the eligible accounts, or
    /// if none is eligible, the set before) and forgets old ones.
    fn begin_epoch_change(&mut self, height: u64) -> Option<(u64, ValidatorSet)> {
        let ended = self.epoch_of(height);
        let set = self
            .eligible_validators()
            .or_else(|| self.epochs.get(&(ended + 1)).cloned())?;
        self.epochs.insert(ended + 2, set.clone());
        self.epochs = self.epochs.split_off(&ended);
        Some((ended + 2, set))
    }

    /// Every validator set the ledger knows, by epoch: what a restarting node hands to
    /// consensus.
    pub fn validator_epochs(&self) -> impl Iterator<Item = (u64, &ValidatorSet)> {
        self.epochs.iter().map(|(epoch, set)| (*epoch, set))
    }

    /// The account states a transaction would produce, or why it does not apply.
    fn writes(&self, tx: &Transaction) -> Result<Writes, TxError> {
        let body = tx.body();
        let mut sender = *self
            .accounts
            .get(&body.from)
            .ok_or(TxError::UnknownAccount(body.from))?;
        if body.nonce != sender.nonce {
            return Err(TxError::BadNonce {
                expected: sender.nonce,
                got: body.nonce,
            });
        }
        sender.nonce += 1;
        // Every amount is part of the fixed supply, which genesis caps at a quarter of
        // u128::MAX, so the additions below cannot overflow on a ledger built from a valid
        // genesis. They are checked all the same (the way the mempool checks its sums), so
        // that not even a ledger built from an unchecked genesis can panic: an addition that
        // would overflow refuses the transaction as moving more than can be held.
        let amount = body.kind.amount();
        let debit = |from: Amount| {
            from.checked_sub(amount).ok_or(TxError::InsufficientFunds {
                available: from,
                needed: amount,
            })
        };
        let credit = |to: Amount, available: Amount| {
            to.checked_add(amount).ok_or(TxError::InsufficientFunds {
                available,
                needed: amount,
            })
        };
        let recipient = match body.kind {
            TxKind::Transfer { to, .. } => {
                let mut to_account = *self.accounts.get(&to).ok_or(TxError::UnknownAccount(to))?;
                let available = sender.balance;
                sender.balance = debit(sender.balance)?;
                if to == body.from {
                    // A transfer to oneself (refused by `check_format`, but the ledger must
                    // not mint if one reaches it): it moves nothing and only uses the nonce.
                    sender.balance = available;
                    None
                } else {
                    to_account.balance = credit(to_account.balance, available)?;
                    Some((to, to_account))
                }
            }
            TxKind::CreateAccount { new_account, .. } => {
                if self.accounts.get(&new_account).is_some() {
                    return Err(TxError::AccountExists(new_account));
                }
                sender.balance = debit(sender.balance)?;
                let opened = Account {
                    balance: amount,
                    ..Account::default()
                };
                Some((new_account, opened))
            }
            TxKind::Stake { .. } => {
                let available = sender.balance;
                sender.balance = debit(sender.balance)?;
                sender.stake = credit(sender.stake, available)?;
                self.check_stake(sender.stake)?;
                None
            }
            TxKind::Unstake { .. } => {
                let available = sender.stake;
                sender.stake = debit(sender.stake)?;
                sender.balance = credit(sender.balance, available)?;
                self.check_stake(sender.stake)?;
                None
            }
        };
        Ok([Some((body.from, sender)), recipient])
    }

    fn check_stake(&self, stake: Amount) -> Result<(), TxError> {
        check_stake(stake, self.min_stake)
    }
}

/// The staking rule ([`validators::stake_allowed`]) as the error a transaction gets.
pub fn check_stake(stake: Amount, min: Amount) -> Result<(), TxError> {
    if validators::stake_allowed(stake, min) {
        Ok(())
    } else {
        Err(TxError::BelowMinStake { stake, min })
    }
}
