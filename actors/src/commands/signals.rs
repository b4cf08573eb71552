//! Stopping a command that runs nodes on SIGTERM or SIGINT: `localnet` and `bench` start
//! node processes that must not outlive them.

use std::future::Future;

use anyhow::{Context, Result};
use tokio::runtime::Runtime;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGTERM and SIGINT, handled from the moment this is made, on a runtime of its own (the
/// commands that use it are otherwise synchronous).
pub struct StopSignals {
    runtime: Runtime,
    term: Signal,
    interrupt: Signal,
}

impl StopSignals {
    /// Installs the handlers: from now on these signals no longer end the process.
    pub fn install() -> Result<StopSignals> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the signal handler")?;
        let (term, interrupt) = {
            let _in_runtime = runtime.enter();
            (
                signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
                signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            )
        };
        Ok(StopSignals {
            runtime,
            term,
            interrupt,
        })
    }

    /// Runs `work` until it ends (its output) or a signal comes (`Err` with the exit
    /// status a shell reports for it: 143 for SIGTERM, 130 for SIGINT).
    pub fn run_until<T>(&mut self, work: impl Future<Output = T>) -> Result<T, i32> {
        let StopSignals {
            runtime,
            term,
            interrupt,
        } = self;
        runtime.block_on(async {
            tokio::select! {
                _ = term.recv() => Err(143),
                _ = interrupt.recv() => Err(130),
                out = work => Ok(out),
            }
        })
    }
}
