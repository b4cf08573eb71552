//! The process's open-file limit. Every peer connection, admin connection and storage file
//! takes a descriptor; the default soft limit (often 1024) is far below what a node under a
//! flood of connections needs, so the node raises it to the hard limit at start, and sizes
//! its admin connection cap from the result.

use rustix::io::Errno;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// The soft limit on open files after [`raise_to_hard`].
#[derive(Clone, Copy, Debug)]
pub struct FileLimit {
    /// The limit in force (`None`: unlimited).
    pub soft: Option<u64>,
    /// Why raising it failed, if it did (the old limit then stays).
    pub raise_failed: Option<Errno>,
}

/// Raises the soft limit on open files to the hard limit, if it is lower. An unlimited hard
/// limit is left alone: Linux refuses an unlimited soft limit on open files.
pub fn raise_to_hard() -> FileLimit {
    let limit = getrlimit(Resource::Nofile);
    let unchanged = FileLimit {
        soft: limit.current,
        raise_failed: None,
    };
    let (Some(current), Some(maximum)) = (limit.current, limit.maximum) else {
        return unchanged;
    };
    if current >= maximum {
        return unchanged;
    }
    let raised = Rlimit {
        current: Some(maximum),
        maximum: Some(maximum),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => FileLimit {
            soft: Some(maximum),
            raise_failed: None,
        },
        Err(e) => FileLimit {
            raise_failed: Some(e),
            ..unchanged
        },
    }
}
