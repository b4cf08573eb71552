//! The node's clock: the one place wall time enters (the core takes it as `now`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the core's clock and blocks' timestamps.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
