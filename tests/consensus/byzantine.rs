//! Byzantine validators: an honest core whose outgoing messages are tampered with, withheld,
//! multiplied or forged, each variant one named behaviour.

use almagill::block::Proposal;
use almagill::certificate::{Signed, VoteTarget};
use almagill::consensus::{Message, Target};

use crate::sim::{World, CHAIN};

/// How a node behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Follows the protocol.
    Honest,
    /// Sends nothing at all (but keeps running).
    Silent,
    /// Follows the protocol but never proposes: drops its own pre-prepares and new views.
    SilentLeader,
    /// As leader, sends one proposal to half the validators and a different one to the
    /// other half, and votes for both.
    Equivocate,
    /// Sends every message three times, the copies re-encoded through the canonical codec.
    Duplicate,
    /// Replays every message it ever sent, again, at random later moments.
    Replay,
    /// Sends votes, checkpoints and view changes for heights, views and rounds far in the
    /// future, up to `u64::MAX`.
    FarFuture,
    /// Signs its messages for another chain.
    WrongChain,
}

impl Behaviour {
    /// Whether the node follows the protocol.
    pub fn is_honest(&self) -> bool {
        *self == Behaviour::Honest
    }
}

/// Turns an honest core's outgoing messages into what node `i`'s behaviour sends.
pub fn misbehave(
    world: &mut World,
    i: usize,
    out: Vec<(Target, Message)>,
) -> Vec<(Target, Message)> {
    match world.nodes[i].behaviour {
        Behaviour::Honest => out,
        Behaviour::Silent => Vec::new(),
        Behaviour::SilentLeader => out
            .into_iter()
            .filter(|(_, m)| !matches!(m, Message::PrePrepare { .. } | Message::NewView { .. }))
            .collect(),
        Behaviour::Equivocate => equivocate(world, i, out),
        Behaviour::Duplicate => out
            .into_iter()
            .flat_map(|(t, m)| {
                let copy: Message = almagill::encoding::decode(&almagill::encoding::encode(&m))
                    .expect("round trip");
                [(t, m.clone()), (t, copy), (t, m)]
            })
            .collect(),
        Behaviour::Replay => {
            let mut sent = out.clone();
            for (t, m) in out {
                if world.rng.chance(0.3) {
                    sent.push((t, m));
                }
            }
            sent
        }
        Behaviour::FarFuture => {
            let mut sent = out;
            sent.push((Target::All, far_future_vote(world, i)));
            sent
        }
        Behaviour::WrongChain => out
            .into_iter()
            .map(|(t, m)| (t, resign_for_other_chain(world, i, m)))
            .collect(),
    }
}

/// Splits each proposal: the first half of the validators get it, the rest get a twin with
/// another timestamp, each with the leader's valid signature; votes are doubled likewise.
fn equivocate(world: &mut World, i: usize, out: Vec<(Target, Message)>) -> Vec<(Target, Message)> {
    let key = world.nodes[i].key.clone();
    let others: Vec<_> = (0..world.nodes.len())
        .filter(|&j| j != i)
        .map(|j| world.nodes[j].key.address())
        .collect();
    let half = others.len() / 2;
    let mut sent = Vec::new();
    for (target, message) in out {
        match (&target, &message) {
            (Target::All, Message::PrePrepare { proposal, vote }) => {
                let mut other: Proposal = proposal.clone();
                other.header.timestamp_ms += 1;
                let other_vote = Signed::sign(
                    VoteTarget {
                        digest: other.digest(),
                        ..vote.payload
                    },
                    &key,
                    CHAIN,
                );
                for (k, address) in others.iter().enumerate() {
                    let m = if k < half {
                        message.clone()
                    } else {
                        Message::PrePrepare {
                            proposal: other.clone(),
                            vote: other_vote.clone(),
                        }
                    };
                    sent.push((Target::One(*address), m));
                }
            }
            _ => sent.push((target, message)),
        }
    }
    sent
}

fn far_future_vote(world: &mut World, i: usize) -> Message {
    let key = world.nodes[i].key.clone();
    let height = match world.rng.below(3) {
        0 => u64::MAX,
        1 => u64::MAX / 2,
        _ => world.nodes[i].height() + 1 + world.rng.below(1_000_000),
    };
    let view = height.saturating_add(world.rng.below(u64::MAX / 2));
    Message::Vote(Signed::sign(
        VoteTarget {
            phase: almagill::certificate::Phase::Commit,
            height,
            view,
            digest: almagill::crypto::Hash([7; 32]),
        },
        &key,
        CHAIN,
    ))
}

fn resign_for_other_chain(world: &World, i: usize, message: Message) -> Message {
    let key = &world.nodes[i].key;
    match message {
        Message::Vote(v) => Message::Vote(Signed::sign(v.payload, key, "another-chain")),
        Message::PrePrepare { proposal, vote } => Message::PrePrepare {
            proposal,
            vote: Signed::sign(vote.payload, key, "another-chain"),
        },
        other => other,
    }
}
