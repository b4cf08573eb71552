//! The genesis document: the chain id, the whole token supply and who holds it, and the
//! rules every node must share (minimum stake, epoch length, consensus timing).
//!
//! It is read from `genesis.toml` and validated before anything uses it. Amounts are
//! written as strings (`"1000agl"` or base units) because TOML integers stop at 2^63.

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::amount::{format_agl, parse_amount, Amount};
use crate::crypto::{domain, Address, Hash};
use crate::encoding;
use crate::validators::{self, Validator, ValidatorSet};

/// The most tokens a chain may have: a quarter of u128. Every balance and stake, and any
/// sum of them, stays within it, so the ledger's additions never overflow; quorum and
/// leader-weight arithmetic do not rely on it (they hold for any stakes that fit in u128).
pub const MAX_SUPPLY: Amount = u128::MAX / 4;

/// The most transactions a block may carry, whatever genesis asks; keeps a full block far
/// below the decoder's size limit.
pub const MAX_BLOCK_TXS: u32 = 10_000;

/// The most transactions the blocks between the watermarks may hold together. A view change
/// carries all of them, so this keeps it (about 160 bytes a transaction) well inside the
/// decoder's 8 MiB limit.
pub const MAX_TXS_IN_WINDOW: u64 = 40_000;

/// An account that exists from the start.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct GenesisAccount {
    /// A short name people can use instead of the address (`alice`, `node0`).
    pub name: String,
    /// The account's key.
    pub address: Address,
    /// Spendable tokens.
    pub balance: Amount,
    /// Staked tokens; at or above `min_stake` makes the account a validator.
    pub stake: Amount,
}

/// Consensus timing and limits, the same on every node.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusParams {
    /// How long a view may go without progress before validators move to the next leader;
    /// doubles with each failed view in a row.
    pub view_timeout_ms: u64,
    /// With proposals in flight, how long after the last one a leader waits before
    /// proposing what waits, unless a full block waits (that goes at once): the bound on
    /// batching delay.
    pub block_interval_ms: u64,
    /// With no transactions waiting, the least time between a block and the empty block
    /// after it, so that an idle chain does not grow a block every `block_interval_ms`.
    pub idle_block_interval_ms: u64,
    /// Most transactions in one block.
    pub max_block_txs: u32,
    /// How many blocks may be in flight at once (the pBFT watermark window).
    pub window: u64,
    /// Blocks between checkpoints, where nodes prove they agree on the state root.
    pub checkpoint_interval: u64,
}

impl Default for ConsensusParams {
    fn default() -> Self {
        ConsensusParams {
            view_timeout_ms: 2_000,
            block_interval_ms: 200,
            idle_block_interval_ms: 1_000,
            max_block_txs: 2_000,
            window: 4,
            checkpoint_interval: 10,
        }
    }
}

/// A validated genesis document.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Genesis {
    /// Names the chain; every signature covers it, so nothing signed for another chain is
    /// valid here.
    pub chain_id: String,
    /// The chain's start, in milliseconds since the Unix epoch: block 0's timestamp.
    pub genesis_time_ms: u64,
    /// The least stake that makes an account a validator.
    pub min_stake: Amount,
    /// Blocks per epoch; validator-set changes take effect only at epoch boundaries.
    pub epoch_length: u64,
    /// Consensus timing and limits.
    pub consensus: ConsensusParams,
    /// Every account at height 0.
    pub accounts: Vec<GenesisAccount>,
}

/// Why a genesis document was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum GenesisError {
    /// Not valid TOML, or not the expected fields.
    #[error("genesis is not valid TOML for a genesis file: {0}")]
    Parse(String),
    /// Well-formed but breaks a rule.
    #[error("invalid genesis: {0}")]
    Invalid(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenesisFile {
    chain_id: String,
    genesis_time_ms: u64,
    min_stake: String,
    epoch_length: u64,
    #[serde(default)]
    consensus: ConsensusParams,
    accounts: Vec<AccountFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountFile {
    name: String,
    address: String,
    balance: String,
    #[serde(default = "zero")]
    stake: String,
}

fn zero() -> String {
    "0".to_string()
}

fn invalid(reason: String) -> GenesisError {
    GenesisError::Invalid(reason)
}

impl Genesis {
    /// Parses and validates `genesis.toml` text.
    pub fn from_toml(text: &str) -> Result<Genesis, GenesisError> {
        let file: GenesisFile =
            toml::from_str(text).map_err(|e| GenesisError::Parse(one_line(&e.to_string())))?;
        let amount = |what: String, text: &str| {
            parse_amount(text).map_err(|e| invalid(format!("{what}: {e}")))
        };
        let mut accounts = Vec::with_capacity(file.accounts.len());
        for a in file.accounts {
            let address = Address::from_hex(&a.address)
                .map_err(|e| invalid(format!("account `{}` address: {e}", a.name)))?;
            accounts.push(GenesisAccount {
                balance: amount(format!("account `{}` balance", a.name), &a.balance)?,
                stake: amount(format!("account `{}` stake", a.name), &a.stake)?,
                name: a.name,
                address,
            });
        }
        let genesis = Genesis {
            chain_id: file.chain_id,
            genesis_time_ms: file.genesis_time_ms,
            min_stake: amount("min_stake".to_string(), &file.min_stake)?,
            epoch_length: file.epoch_length,
            consensus: file.consensus,
            accounts,
        };
        genesis.validate()?;
        Ok(genesis)
    }

    /// Writes the document as TOML that [`Genesis::from_toml`] reads back to the same value.
    pub fn to_toml(&self) -> String {
        let file = GenesisFile {
            chain_id: self.chain_id.clone(),
            genesis_time_ms: self.genesis_time_ms,
            min_stake: format_agl(self.min_stake),
            epoch_length: self.epoch_length,
            consensus: self.consensus.clone(),
            accounts: self
                .accounts
                .iter()
                .map(|a| AccountFile {
                    name: a.name.clone(),
                    address: a.address.to_string(),
                    balance: format_agl(a.balance),
                    stake: format_agl(a.stake),
                })
                .collect(),
        };
        toml::to_string(&file).expect("plain strings, integers and tables always serialize")
    }

    /// Checks every rule a genesis must follow.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let id = &self.chain_id;
        let id_ok = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if id.is_empty() || id.len() > 64 || !id.chars().all(id_ok) {
            return Err(invalid(format!(
                "chain_id `{id}` must be 1 to 64 characters of letters, digits, `-`, `_`, `.`"
            )));
        }
        if self.min_stake == 0 {
            return Err(invalid("min_stake must be above zero".into()));
        }
        let c = &self.consensus;
        // TOML integers stop at 2^63 - 1: anything larger could not be written out.
        let toml_max = i64::MAX as u64;
        for (field, value) in [
            ("genesis_time_ms", self.genesis_time_ms),
            ("epoch_length", self.epoch_length),
            ("consensus.view_timeout_ms", c.view_timeout_ms),
            ("consensus.block_interval_ms", c.block_interval_ms),
            ("consensus.idle_block_interval_ms", c.idle_block_interval_ms),
            ("consensus.window", c.window),
            ("consensus.checkpoint_interval", c.checkpoint_interval),
        ] {
            if value > toml_max {
                return Err(invalid(format!(
                    "{field} {value} is over the maximum {toml_max}"
                )));
            }
        }
        if self.epoch_length == 0 || c.window == 0 || c.checkpoint_interval == 0 {
            return Err(invalid(
                "epoch_length, consensus.window and consensus.checkpoint_interval must be above zero"
                    .into(),
            ));
        }
        if self.epoch_length % c.checkpoint_interval != 0 {
            return Err(invalid(format!(
                "epoch_length {} must be a multiple of consensus.checkpoint_interval {}, so every epoch ends on a checkpoint",
                self.epoch_length, c.checkpoint_interval
            )));
        }
        if c.window > c.checkpoint_interval.saturating_mul(2) {
            return Err(invalid(format!(
                "consensus.window {} must be at most twice consensus.checkpoint_interval {}: blocks in flight stay between the watermarks",
                c.window, c.checkpoint_interval
            )));
        }
        if c.view_timeout_ms == 0 {
            return Err(invalid(
                "consensus.view_timeout_ms must be above zero".into(),
            ));
        }
        if c.idle_block_interval_ms < c.block_interval_ms
            || c.idle_block_interval_ms.saturating_mul(2) > c.view_timeout_ms
        {
            return Err(invalid(format!(
                "consensus.idle_block_interval_ms {} must be at least consensus.block_interval_ms {} and at most half of consensus.view_timeout_ms {}: an idle leader must propose well before its view times out",
                c.idle_block_interval_ms, c.block_interval_ms, c.view_timeout_ms
            )));
        }
        if c.checkpoint_interval
            .saturating_mul(2)
            .saturating_mul(u64::from(c.max_block_txs))
            > MAX_TXS_IN_WINDOW
        {
            return Err(invalid(format!(
                "2 * consensus.checkpoint_interval * consensus.max_block_txs must be at most {MAX_TXS_IN_WINDOW}: a view change carries every block between the watermarks, and must fit in one message"
            )));
        }
        if c.max_block_txs == 0 || c.max_block_txs > MAX_BLOCK_TXS {
            return Err(invalid(format!(
                "consensus.max_block_txs must be 1 to {MAX_BLOCK_TXS}"
            )));
        }
        if self.accounts.is_empty() {
            return Err(invalid("there are no accounts".into()));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut addresses = std::collections::BTreeSet::new();
        let mut supply: Amount = 0;
        for a in &self.accounts {
            let name_ok = |c: char| c.is_ascii_alphanumeric() || "-_".contains(c);
            if a.name.is_empty() || a.name.len() > 32 || !a.name.chars().all(name_ok) {
                return Err(invalid(format!(
                    "account name `{}` must be 1 to 32 letters, digits, `-` or `_`",
                    a.name
                )));
            }
            if !names.insert(a.name.as_str()) {
                return Err(invalid(format!("account name `{}` appears twice", a.name)));
            }
            if !addresses.insert(a.address) {
                return Err(invalid(format!("address {} appears twice", a.address)));
            }
            if !validators::stake_allowed(a.stake, self.min_stake) {
                return Err(invalid(format!(
                    "account `{}` stakes {}, below min_stake {}",
                    a.name,
                    format_agl(a.stake),
                    format_agl(self.min_stake)
                )));
            }
            supply = supply
                .checked_add(a.balance)
                .and_then(|s| s.checked_add(a.stake))
                .filter(|s| *s <= MAX_SUPPLY)
                .ok_or_else(|| invalid(format!("the supply is over the {MAX_SUPPLY} maximum")))?;
        }
        if supply == 0 {
            return Err(invalid("the total supply is zero".into()));
        }
        if self.validator_set().is_none() {
            return Err(invalid(format!(
                "no account stakes min_stake {}: there would be no validators",
                format_agl(self.min_stake)
            )));
        }
        Ok(())
    }

    /// All tokens in existence: the sum of genesis balances and stakes, fixed forever.
    /// [`Genesis::validate`] refuses a sum over [`MAX_SUPPLY`]; on a document it has not
    /// checked, a sum past u128 saturates rather than panicking.
    pub fn supply(&self) -> Amount {
        self.accounts
            .iter()
            .map(|a| a.balance.saturating_add(a.stake))
            .fold(0, Amount::saturating_add)
    }

    /// The validators at height 0: accounts staking at least `min_stake`.
    pub fn validator_set(&self) -> Option<ValidatorSet> {
        ValidatorSet::new(
            self.accounts
                .iter()
                .filter(|a| validators::qualifies(a.stake, self.min_stake))
                .map(|a| Validator {
                    address: a.address,
                    stake: a.stake,
                })
                .collect(),
        )
    }

    /// The genesis account called `name`.
    pub fn account_named(&self, name: &str) -> Option<&GenesisAccount> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// Reads an address given as 64 hex characters or as a genesis account name.
    pub fn resolve_address(&self, text: &str) -> Option<Address> {
        Address::from_hex(text)
            .ok()
            .or_else(|| self.account_named(text).map(|a| a.address))
    }

    /// The name of the genesis account at `address`, if it has one.
    pub fn name_of(&self, address: &Address) -> Option<&str> {
        self.accounts
            .iter()
            .find(|a| a.address == *address)
            .map(|a| a.name.as_str())
    }

    /// Identifies this exact genesis: the hash block 1 builds on.
    pub fn hash(&self) -> Hash {
        Hash::digest(domain::GENESIS, &[&encoding::encode(self)])
    }
}

/// Folds a multi-line message (as TOML errors are) into one line.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
