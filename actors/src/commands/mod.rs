//! One module per subcommand.

mod keygen;
mod testnet;
mod tx;

use anyhow::{bail, Result};

use crate::cli::Command;

/// Carries out a parsed command.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Keygen { out } => keygen::run(out.as_deref()),
        Command::Testnet {
            validators,
            out,
            base_port,
            accounts,
        } => testnet::run(validators, &out, base_port, &accounts),
        Command::Tx {
            kind,
            key,
            to,
            amount,
            nonce,
            genesis,
        } => tx::run(
            kind,
            &key,
            to.as_deref(),
            amount.as_deref(),
            nonce,
            &genesis,
        ),
        Command::Run { .. } | Command::Localnet { .. } => {
            bail!("the node is not built yet: `run` and `localnet` arrive with the node (actors, TCP, storage)")
        }
    }
}
