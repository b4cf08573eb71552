//! One module per subcommand.

pub mod bench;
mod keygen;
mod localnet;
mod plot;
mod signals;
mod testnet;
mod tx;

use anyhow::Result;

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
        Command::Run { config, state_sync } => {
            let loaded = crate::node::load(&config)?;
            crate::logging::init();
            crate::node::run(loaded, state_sync)
        }
        Command::Localnet { dir } => localnet::run(&dir),
        Command::Bench(plan) => bench::run(&plan),
    }
}
