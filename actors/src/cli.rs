//! The command line, as specified in `shared/spec/cli.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand, ValueEnum};

/// AlmaGill: a proof-of-stake pBFT blockchain node.
#[derive(Debug, Parser)]
#[command(name = "almagill", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one node until SIGINT or SIGTERM.
    Run {
        /// The node's configuration file (nodeN.toml).
        #[arg(long, value_name = "NODE.TOML")]
        config: PathBuf,
        /// Before starting, fetch the newest snapshot a peer can prove (checked against a
        /// quorum-signed state root) if it is above this node's height, replacing the blocks
        /// stored here; then catch up on the blocks after it. For a new node joining a long
        /// chain, or one far behind.
        #[arg(long)]
        state_sync: bool,
    },
    /// Run every node of a network directory as child processes (the one-command demo).
    Localnet {
        /// The network directory, as written by `almagill testnet`.
        #[arg(long, value_name = "DIR", default_value = "config")]
        dir: PathBuf,
    },
    /// Write a complete local network: genesis.toml, node0.toml.., keys/.
    Testnet {
        /// How many validators (1 to 100).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=100))]
        validators: u16,
        /// The directory to write; it must not already hold a network.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Node i listens for peers on base-port + i, for admin on base-port + 100 + i and
        /// serves metrics on base-port + 200 + i.
        #[arg(long, value_name = "PORT", default_value_t = 7000)]
        base_port: u16,
        /// Funded accounts besides the validators, whose keys every node holds.
        #[arg(
            long,
            value_name = "NAMES",
            value_delimiter = ',',
            default_value = "alice,bob"
        )]
        accounts: Vec<String>,
    },
    /// Measure committed transfers per second and their latency on a local network.
    ///
    /// The network is written into a temporary directory and started; pre-signed transfers
    /// are offered open-loop to every node's admin port, and a transfer's commit time is
    /// when node 0's BLOCK first lists it.
    Bench(crate::commands::bench::Plan),
    /// Make an ed25519 key and print its address.
    Keygen {
        /// Write the key here (mode 0600); it must not exist yet.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Print the hex of a signed transaction, ready for the admin SUBMIT command.
    Tx {
        /// The kind of transaction.
        #[arg(value_enum)]
        kind: TxKindArg,
        /// The sender's key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The recipient (transfer) or the new account (create): 64 hex or a genesis name.
        #[arg(long, value_name = "ADDR")]
        to: Option<String>,
        /// Base units (1500) or AGL (2.5agl).
        #[arg(long, value_name = "AMOUNT")]
        amount: Option<String>,
        /// The sender's next nonce (its count of applied transactions; BALANCE shows it).
        #[arg(long, value_name = "N")]
        nonce: u64,
        /// The chain's genesis file (gives the chain id and account names).
        #[arg(long, value_name = "GENESIS.TOML")]
        genesis: PathBuf,
    },
}

/// Transaction kinds on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TxKindArg {
    /// Move tokens to an existing account.
    Transfer,
    /// Create a new account, funded by the sender.
    Create,
    /// Move balance to stake.
    Stake,
    /// Move stake back to balance.
    Unstake,
}

/// Prints a usage error as one line (help and version print as usual) and picks the exit
/// status: 0 for help and version, 2 for a usage error.
pub fn report_usage_error(error: clap::Error) -> ExitCode {
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::from(error.exit_code() as u8)
        }
        _ => {
            let rendered = error.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.starts_with("Usage:"))
                .filter(|l| !l.starts_with("For more information"))
                .flat_map(str::split_whitespace)
                .collect();
            eprintln!("{} (see --help)", message.join(" "));
            ExitCode::from(2)
        }
    }
}
