//! The driver carries out a step's actions in the one safe order, and a failed persist
//! stops everything after it.
//!
//! Mutation caught by both: sending before persisting in `drive` (messages first, then the
//! records) puts a send ahead of the persist in the first test's log, and lets messages out
//! after a failed persist in the second.

use almagill::block::{Block, Proposal};
use almagill::certificate::{Certificate, CommitCertificate, Phase, VoteTarget};
use almagill::consensus::{
    drive, Actions, BatchRequest, Host, Message, Record, Target, Timer, TimerKind,
};
use almagill::crypto::{Address, Hash};

/// A host that logs what it is asked to do, and fails to persist if told to.
#[derive(Default)]
struct Log {
    events: Vec<&'static str>,
    persist_fails: bool,
}

impl Host for Log {
    type Error = ();

    fn persist(&mut self, _: Vec<Record>, _: Option<u64>) -> Result<(), ()> {
        self.events.push("persist");
        if self.persist_fails {
            Err(())
        } else {
            Ok(())
        }
    }

    fn send(&mut self, _: Target, _: Message) {
        self.events.push("send");
    }

    fn execute(&mut self, _: Block, _: CommitCertificate) {
        self.events.push("execute");
    }

    fn set_timer(&mut self, _: Timer, _: u64) {
        self.events.push("timer");
    }

    fn request_batch(&mut self, _: BatchRequest) {
        self.events.push("batch");
    }

    fn request_sync(&mut self, _: u64, _: u64) {
        self.events.push("sync");
    }
}

/// One of every action, two messages among them.
fn every_action() -> Actions {
    let block = Block::new(
        Proposal::new(1, 1, 1, Address([1; 32]), Vec::new()),
        Hash([0; 32]),
    );
    let target = VoteTarget {
        phase: Phase::Commit,
        height: 1,
        view: 1,
        digest: block.header.proposal.digest(),
    };
    let timer = Timer {
        kind: TimerKind::View,
        generation: 1,
    };
    Actions {
        persist: vec![Record::ViewChange { round: 1 }],
        prune_below: None,
        messages: vec![
            (Target::All, Message::FetchNewView { round: 1 }),
            (Target::All, Message::FetchNewView { round: 2 }),
        ],
        commits: vec![(block, Certificate::new(target, []))],
        timers: vec![(timer, 10)],
        batch_request: Some(BatchRequest {
            height: 2,
            max_txs: 1,
            exclude: Vec::new(),
            committed: Vec::new(),
        }),
        sync_request: Some((2, 3)),
    }
}

#[test]
fn drive_persists_then_sends_then_executes_then_sets_timers() {
    let mut host = Log::default();
    assert_eq!(drive(&mut host, every_action()), Ok(()));
    assert_eq!(
        host.events,
        ["persist", "send", "send", "execute", "timer", "batch", "sync"]
    );
}

#[test]
fn nothing_leaves_after_a_failed_persist() {
    let mut host = Log {
        persist_fails: true,
        ..Log::default()
    };
    assert_eq!(drive(&mut host, every_action()), Err(()));
    assert_eq!(host.events, ["persist"]);
}
