//! Logs: `tracing` to standard error, filtered by `RUST_LOG` (default `info`): one line per
//! committed block and per view change at info, per consensus step at debug, each naming
//! the actor (`consensus`, `network`, `peer`, `mempool`, `state`, `store`, `admin`).

use tracing_subscriber::EnvFilter;

/// Installs the subscriber; call once, before the node starts.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
