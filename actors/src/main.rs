//! `almagill`: the AlmaGill node and its tools (see `almagill --help`).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use almagill_node::{cli, commands};
use clap::Parser;

fn main() -> ExitCode {
    // No backtrace ever reaches a user: a bug is reported as one line and a failed exit.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error (a bug in almagill): {info}");
    }));
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::report_usage_error(e),
    };
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
