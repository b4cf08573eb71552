//! Byzantine validators: an honest core whose outgoing messages are tampered with, withheld,
//! multiplied or forged, each variant one named behaviour.
//!
//! A Byzantine node signs only with its own key (a colluder's, at most): it can say anything,
//! but it cannot make an honest validator say anything. Each behaviour is one function of the
//! node's outgoing messages and what the world shows it (its own durable records, the honest
//! nodes' progress); the simulator's event queue is the only memory it needs.

use almagill::block::{Block, Proposal};
use almagill::certificate::{Certificate, CommitCertificate, Phase, Signable, Signed, VoteTarget};
use almagill::consensus::view_change;
use almagill::consensus::{
    CheckpointCertificate, CheckpointTarget, Message, NewView, PreparedCertificate, Record, Target,
    ViewChange,
};
use almagill::crypto::{Hash, Keypair};
use almagill::ledger::Ledger;
use almagill::tx::{Transaction, TxBody, TxKind};

use crate::sim::{NetFaults, World, CHAIN};

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
    /// Sends some of its messages twice.
    Replay,
    /// Besides its honest traffic, sends every kind of message with heights, views, rounds
    /// and checkpoint heights far in the future, up to `u64::MAX`.
    FarFuture,
    /// Signs its messages for another chain.
    WrongChain,
    /// A node whose key is not a validator's: injects votes, pre-prepares, checkpoints, view
    /// changes and new views shaped like the honest traffic of the moment, signed by itself.
    Outsider,
    /// Replays messages of views it has left: whenever it changes view, every vote (and
    /// proposal) of earlier rounds in its durable log; and some of everything it sends,
    /// seconds later, when the network has moved on.
    OldViews,
    /// Sends view changes with forged or ill-fitting certificates before its honest one, and
    /// instead of any new view (its own as a round's primary, or one it passes on) only new
    /// views whose proposals do not match the plan (a colluder also signs the valid one, as a
    /// non-primary); where it is not the primary, it sends a new view of its own too. As
    /// leader it equivocates, so that heights go unprepared and new views must fill gaps.
    /// Everything is validly signed: only the content is wrong.
    ForgeCertificates,
    /// One of two nodes running an honest core under the same validator key: together they
    /// are one Byzantine validator.
    Twin,
    /// Keeps every signed header and swaps the body under it for an unsigned theft: its
    /// pre-prepares to half the validators, the bodies of its view changes, and its new
    /// views to one validator; and the blocks it serves to a node catching up.
    SwapBodies,
    /// Serves a node catching up wrong blocks: bodies swapped, certificates of another
    /// height, replies cut short, out of order or from the wrong height.
    BadSync,
    /// As leader, stamps its proposals with absurd times: zero, the time of the block
    /// below, far in the future, `u64::MAX`. Everything validly signed.
    BadTimestamps,
    /// Besides its honest traffic, floods every validator with requests: new views,
    /// proposals, checkpoint proofs (by stale checkpoint votes), and view changes for
    /// ever higher rounds, each validly signed.
    Flood,
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
        Behaviour::Honest | Behaviour::Twin => out,
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
            if world.rng.chance(0.3) {
                sent.push((Target::All, far_future(world, i)));
            }
            sent
        }
        Behaviour::WrongChain => out
            .into_iter()
            .map(|(t, m)| (t, resign_for_other_chain(world, i, m)))
            .collect(),
        Behaviour::Outsider => {
            let mut sent = out;
            if world.rng.chance(0.1) {
                // To validators only: two outsiders must not set each other off.
                let messages = outsider_messages(world, i);
                for validator in world.genesis.accounts.iter().filter(|a| a.stake > 0) {
                    let to = Target::One(validator.address);
                    sent.extend(messages.iter().map(|m| (to, m.clone())));
                }
            }
            sent
        }
        Behaviour::OldViews => old_views(world, i, out),
        Behaviour::SwapBodies => swap_bodies(world, i, out),
        Behaviour::BadSync => out,
        Behaviour::BadTimestamps => out
            .into_iter()
            .map(|(t, m)| (t, restamp(world, i, m)))
            .collect(),
        Behaviour::Flood => {
            let mut sent = out;
            if world.rng.chance(0.3) {
                sent.extend(flood(world, i).into_iter().map(|m| (Target::All, m)));
            }
            sent
        }
        Behaviour::ForgeCertificates => {
            let out = equivocate(world, i, out);
            forge(world, i, out)
        }
    }
}

/// Signs `payload` with node `i`'s key for the simulated chain.
fn sign<T: Signable>(world: &World, i: usize, payload: T) -> Signed<T> {
    Signed::sign(payload, &world.nodes[i].key, CHAIN)
}

/// An empty proposal by node `i`, or one with `txs`.
fn proposal(world: &World, i: usize, height: u64, view: u64, txs: Vec<Transaction>) -> Proposal {
    let proposer = world.nodes[i].key.address();
    Proposal::new(height, view, world.now, proposer, txs)
}

/// The same proposal made a millisecond later: another digest for the same slot.
fn retimed(proposal: &Proposal) -> Proposal {
    let mut other = proposal.clone();
    other.header.timestamp_ms += 1;
    other
}

impl World {
    /// Node `i`'s latest stable checkpoint, as its durable records (or genesis) show it.
    fn stable_checkpoint(&self, i: usize) -> CheckpointCertificate {
        let stable = self.nodes[i].durable.iter().filter_map(|r| match r {
            Record::Stable(c) => Some(c),
            _ => None,
        });
        match stable.max_by_key(|c| c.payload.height) {
            Some(c) => c.clone(),
            None => Certificate {
                payload: CheckpointTarget {
                    height: 0,
                    state_root: Ledger::from_genesis(&self.genesis).state_root(),
                },
                votes: Vec::new(),
            },
        }
    }

    /// Sends a message from node `i` that arrives `delay` ms (a range) from now.
    fn send_later(&mut self, i: usize, delay: (u64, u64), target: Target, message: Message) {
        let faults = self.faults;
        self.faults = NetFaults { delay, ..faults };
        self.send(i, target, message);
        self.faults = faults;
    }
}

/// Splits each proposal: the first half of the validators get it, the rest get a twin with
/// another timestamp, each with the leader's valid signature; votes are doubled likewise.
fn equivocate(world: &mut World, i: usize, out: Vec<(Target, Message)>) -> Vec<(Target, Message)> {
    let others: Vec<_> = (0..world.nodes.len())
        .filter(|&j| j != i)
        .map(|j| world.nodes[j].key.address())
        .collect();
    let half = others.len() / 2;
    let mut sent = Vec::new();
    for (target, message) in out {
        match (&target, &message) {
            (Target::All, Message::PrePrepare { proposal, vote }) => {
                let other = retimed(proposal);
                let other_vote = sign(
                    world,
                    i,
                    VoteTarget {
                        digest: other.digest(),
                        ..vote.payload
                    },
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

/// A number far beyond `from`: `u64::MAX`, just below it, or a random large jump.
fn far(world: &mut World, from: u64) -> u64 {
    match world.rng.below(3) {
        0 => u64::MAX,
        1 => u64::MAX - 1 - world.rng.below(1_000),
        _ => from.saturating_add(1 + world.rng.below(1 << 40)),
    }
}

/// One message of a random kind about the far future. Half of the votes and proposals are
/// for the next height, in a far view (so receivers look for a round that never began);
/// the rest are for far heights too.
fn far_future(world: &mut World, i: usize) -> Message {
    let next = world.nodes[i].pbft.committed() + 1;
    let round = world.nodes[i].pbft.round();
    let height = if world.rng.chance(0.5) {
        next
    } else {
        far(world, next)
    };
    let view = far(world, height);
    let far_round = far(world, round);
    let phase = if world.rng.chance(0.5) {
        Phase::Prepare
    } else {
        Phase::Commit
    };
    let junk = Hash([7; 32]);
    let interval = world.genesis.consensus.checkpoint_interval;
    let view_change = |world: &World| {
        sign(
            world,
            i,
            ViewChange {
                round: far_round,
                checkpoint: world.stable_checkpoint(i),
                prepared: Vec::new(),
            },
        )
    };
    match world.rng.below(7) {
        0 => Message::Vote(sign(
            world,
            i,
            VoteTarget {
                phase,
                height,
                view,
                digest: junk,
            },
        )),
        1 => {
            let proposal = proposal(world, i, height, view, Vec::new());
            let vote = VoteTarget {
                phase: Phase::Prepare,
                height,
                view,
                digest: proposal.digest(),
            };
            Message::PrePrepare {
                vote: sign(world, i, vote),
                proposal,
            }
        }
        2 => {
            let far_height = far(world, next);
            let height = if world.rng.chance(0.5) {
                far_height - far_height % interval
            } else {
                far_height
            };
            let state_root = junk;
            Message::Checkpoint(sign(world, i, CheckpointTarget { height, state_root }))
        }
        3 => Message::ViewChange {
            view_change: view_change(world),
            bodies: Vec::new(),
        },
        4 => {
            let new_view = NewView {
                round: far_round,
                view_changes: vec![view_change(world)],
                proposals: Vec::new(),
            };
            Message::NewView {
                new_view: sign(world, i, new_view),
                bodies: Vec::new(),
            }
        }
        5 => {
            let target = CheckpointTarget {
                height: far(world, next),
                state_root: junk,
            };
            let signature = sign(world, i, target).signature;
            let signer = world.nodes[i].key.address();
            Message::CheckpointProof(Certificate::new(target, [(signer, signature)]))
        }
        _ => Message::FetchNewView { round: far_round },
    }
}

/// The chain a [`Behaviour::WrongChain`] node signs for.
const OTHER_CHAIN: &str = "another-chain";

/// Its own signatures, wherever they appear (in certificates too), made for another chain.
fn resign_for_other_chain(world: &World, i: usize, message: Message) -> Message {
    let key = &world.nodes[i].key;
    fn resign<T: Signable>(signed: Signed<T>, key: &Keypair) -> Signed<T> {
        Signed::sign(signed.payload, key, OTHER_CHAIN)
    }
    match message {
        Message::CheckpointProof(mut certificate) => {
            let own = Signed::sign(certificate.payload, key, OTHER_CHAIN);
            for (signer, signature) in &mut certificate.votes {
                if *signer == own.signer {
                    *signature = own.signature;
                }
            }
            Message::CheckpointProof(certificate)
        }
        Message::Vote(v) => Message::Vote(resign(v, key)),
        Message::PrePrepare { proposal, vote } => Message::PrePrepare {
            proposal,
            vote: resign(vote, key),
        },
        Message::Checkpoint(v) => Message::Checkpoint(resign(v, key)),
        Message::ViewChange {
            view_change,
            bodies,
        } => Message::ViewChange {
            view_change: resign(view_change, key),
            bodies,
        },
        Message::NewView { new_view, bodies } => Message::NewView {
            new_view: resign(new_view, key),
            bodies,
        },
        other => other,
    }
}

/// What an outsider injects: the shape of the freshest honest traffic (the latest prepare
/// vote in the most advanced honest node's log, its round and checkpoints), with a proposal
/// of its own, all signed with its own key.
fn outsider_messages(world: &World, i: usize) -> Vec<Message> {
    let model = world.reference_node();
    let pbft = &world.nodes[model].pbft;
    let (height, round) = (pbft.committed() + 1, pbft.round());
    let own = proposal(world, i, height, height + round, Vec::new());
    let own_vote = VoteTarget {
        phase: Phase::Prepare,
        height,
        view: height + round,
        digest: own.digest(),
    };
    let prepare = world.nodes[model]
        .durable
        .iter()
        .rev()
        .find_map(|r| match r {
            Record::Prepared(v) => Some(v.payload),
            _ => None,
        })
        .unwrap_or(own_vote);
    let commit = VoteTarget {
        phase: Phase::Commit,
        ..prepare
    };
    let interval = world.genesis.consensus.checkpoint_interval;
    let checkpointed = world.nodes[model].height() / interval * interval;
    let view_change = sign(
        world,
        i,
        ViewChange {
            round: round + 1,
            checkpoint: world.stable_checkpoint(model),
            prepared: Vec::new(),
        },
    );
    let new_view = NewView {
        round: round + 1,
        view_changes: vec![view_change.clone()],
        proposals: Vec::new(),
    };
    let mut messages = vec![
        Message::Vote(sign(world, i, prepare)),
        Message::Vote(sign(world, i, commit)),
        Message::PrePrepare {
            proposal: own,
            vote: sign(world, i, own_vote),
        },
        Message::ViewChange {
            view_change,
            bodies: Vec::new(),
        },
        Message::NewView {
            new_view: sign(world, i, new_view),
            bodies: Vec::new(),
        },
    ];
    if checkpointed > 0 {
        let state_root = world.nodes[model].chain[checkpointed as usize - 1].2;
        let target = CheckpointTarget {
            height: checkpointed,
            state_root,
        };
        messages.push(Message::Checkpoint(sign(world, i, target)));
    }
    messages
}

/// Replays old-view messages: on changing view, every vote (and proposal) of earlier
/// rounds from its durable log; and, a few seconds later, a copy of some of what it sends.
fn old_views(world: &mut World, i: usize, out: Vec<(Target, Message)>) -> Vec<(Target, Message)> {
    for (target, message) in &out {
        if world.rng.chance(0.2) {
            world.send_later(i, (1_000, 5_000), *target, message.clone());
        }
    }
    let changing = out
        .iter()
        .any(|(_, m)| matches!(m, Message::ViewChange { .. }));
    let mut sent = out;
    if changing {
        let old = old_round_messages(world, i);
        sent.extend(old.into_iter().map(|m| (Target::All, m)));
    }
    sent
}

/// The votes node `i` signed in rounds before its current one, as its durable log keeps
/// them, and the proposals it made in them (those that prepared, whose bodies the log has).
fn old_round_messages(world: &World, i: usize) -> Vec<Message> {
    let node = &world.nodes[i];
    let round = node.pbft.round();
    let old = |v: &Signed<VoteTarget>| v.payload.view.saturating_sub(v.payload.height) < round;
    let own_proposals: Vec<&Proposal> = node
        .durable
        .iter()
        .filter_map(|r| match r {
            Record::Committed { proposal, .. } => Some(proposal),
            _ => None,
        })
        .filter(|p| p.header.proposer == node.key.address())
        .collect();
    let mut messages = Vec::new();
    for record in &node.durable {
        match record {
            Record::Prepared(vote) if old(vote) => {
                messages.push(Message::Vote(vote.clone()));
                // As the leader of that view, it sent this vote inside its proposal.
                let t = vote.payload;
                let made = own_proposals
                    .iter()
                    .find(|p| p.digest() == t.digest && p.header.view == t.view);
                if let Some(proposal) = made {
                    messages.push(Message::PrePrepare {
                        proposal: (*proposal).clone(),
                        vote: vote.clone(),
                    });
                }
            }
            Record::Committed { vote, .. } if old(vote) => {
                messages.push(Message::Vote(vote.clone()));
            }
            _ => {}
        }
    }
    messages
}

/// Forges around every view change and new view node `i`'s core sends (see
/// [`Behaviour::ForgeCertificates`]); valid new views are withheld, the valid view change
/// goes last.
fn forge(world: &mut World, i: usize, out: Vec<(Target, Message)>) -> Vec<(Target, Message)> {
    let mut sent = Vec::new();
    for (target, message) in out {
        match message {
            Message::ViewChange {
                view_change,
                bodies,
            } => {
                let vc = &view_change.payload;
                let mut forged = forged_view_changes(world, i, vc, &bodies);
                if world.nodes[i].pbft.primary(vc.round) != Some(view_change.signer) {
                    forged.push(own_new_view(world, i, &view_change, &bodies));
                }
                sent.extend(forged.into_iter().map(|m| (Target::All, m)));
                let honest = Message::ViewChange {
                    view_change,
                    bodies,
                };
                sent.push((target, honest));
            }
            Message::NewView { new_view, bodies } => {
                let forged = mismatching_new_views(world, i, &new_view.payload, &bodies);
                sent.extend(forged.into_iter().map(|m| (target, m)));
            }
            other => sent.push((target, other)),
        }
    }
    sent
}

/// A prepared certificate with its body to forge from: the view change's first, else the
/// latest in the node's durable log, else one with only the node's own signature.
fn certificate_to_forge(
    world: &World,
    i: usize,
    vc: &ViewChange,
    bodies: &[Proposal],
) -> (PreparedCertificate, Proposal) {
    if let (Some(c), Some(b)) = (vc.prepared.first(), bodies.first()) {
        return (c.clone(), b.clone());
    }
    let logged = world.nodes[i].durable.iter().rev().find_map(|r| match r {
        Record::Committed {
            certificate,
            proposal,
            ..
        } => Some((certificate.clone(), proposal.clone())),
        _ => None,
    });
    logged.unwrap_or_else(|| {
        let height = vc.checkpoint.payload.height + 1;
        let view = height + vc.round - 1;
        let body = proposal(world, i, height, view, Vec::new());
        let target = VoteTarget {
            phase: Phase::Prepare,
            height,
            view,
            digest: body.digest(),
        };
        let vote = sign(world, i, target);
        (
            Certificate::new(target, [(vote.signer, vote.signature)]),
            body,
        )
    })
}

/// View changes for the same round as `vc`, each wrong in one way: a prepared certificate
/// without a quorum, over another digest, with a signer twice, with a body that does not
/// match, above the window, at the checkpoint; or a checkpoint certificate without quorum.
fn forged_view_changes(
    world: &World,
    i: usize,
    vc: &ViewChange,
    bodies: &[Proposal],
) -> Vec<Message> {
    let (real, body) = certificate_to_forge(world, i, vc, bodies);
    let low = vc.checkpoint.payload.height;
    let interval = world.genesis.consensus.checkpoint_interval;
    let other = retimed(&body);
    let with = |change: &dyn Fn(&mut PreparedCertificate), body: &Proposal| {
        let mut c = real.clone();
        change(&mut c);
        vec![(c, body.clone())]
    };
    let prepared = [
        with(&|c| c.votes.truncate(1), &body),
        with(&|c| c.payload.digest = other.digest(), &other),
        with(&|c| c.votes.insert(0, c.votes[0]), &body),
        with(&|_| {}, &other),
        with(&|c| c.payload.height = low + 2 * interval + 1, &body),
        with(&|c| c.payload.height = low, &body),
    ];
    let mut messages: Vec<Message> = prepared
        .into_iter()
        .map(|p| signed_view_change(world, i, vc.round, vc.checkpoint.clone(), p))
        .collect();
    // A checkpoint above the real one, "proven" by the forger alone.
    let height = low + interval;
    let state_root = world.nodes[i]
        .chain
        .get(height as usize - 1)
        .map_or(Hash([9; 32]), |(_, _, root)| *root);
    let vote = sign(world, i, CheckpointTarget { height, state_root });
    let checkpoint = Certificate::new(vote.payload, [(vote.signer, vote.signature)]);
    messages.push(signed_view_change(
        world,
        i,
        vc.round,
        checkpoint,
        Vec::new(),
    ));
    messages
}

fn signed_view_change(
    world: &World,
    i: usize,
    round: u64,
    checkpoint: CheckpointCertificate,
    prepared: Vec<(PreparedCertificate, Proposal)>,
) -> Message {
    let (prepared, bodies) = prepared.into_iter().unzip();
    let payload = ViewChange {
        round,
        checkpoint,
        prepared,
    };
    Message::ViewChange {
        view_change: sign(world, i, payload),
        bodies,
    }
}

/// A new view for the round of node `i`'s own view change, signed by `i` though it is not
/// that round's primary, re-proposing what its view change prepared.
fn own_new_view(
    world: &World,
    i: usize,
    view_change: &Signed<ViewChange>,
    bodies: &[Proposal],
) -> Message {
    let vc = &view_change.payload;
    let new_view = NewView {
        round: vc.round,
        view_changes: vec![view_change.clone()],
        proposals: vc
            .prepared
            .iter()
            .map(|c| (c.payload.height, c.payload.digest))
            .collect(),
    };
    Message::NewView {
        new_view: sign(world, i, new_view),
        bodies: bodies.to_vec(),
    }
}

/// New views for `nv`'s round, each with proposals that differ from the plan in one way:
/// another digest for a prepared height, a gap filler with a transaction, a height left out,
/// a height added. A colluder (another node forging certificates) signs the valid one.
fn mismatching_new_views(
    world: &World,
    i: usize,
    nv: &NewView,
    bodies: &[Proposal],
) -> Vec<Message> {
    let payloads: Vec<&ViewChange> = nv.view_changes.iter().map(|vc| &vc.payload).collect();
    let (low, heights) = view_change::plan(&payloads).map_or((0, Vec::new()), |p| {
        (p.checkpoint.payload.height, p.heights)
    });
    let mut variants = Vec::new();
    let replace = |k: usize, body: Proposal| {
        let mut b = bodies.to_vec();
        b[k] = body;
        b
    };
    if let Some(k) = heights.iter().position(|(_, d)| d.is_some()) {
        variants.push(replace(k, retimed(&bodies[k])));
    }
    if let Some(k) = heights.iter().position(|(_, d)| d.is_none()) {
        let (height, view) = (heights[k].0, heights[k].0 + nv.round);
        variants.push(replace(
            k,
            proposal(world, i, height, view, vec![a_transfer(world)]),
        ));
    }
    if !bodies.is_empty() {
        variants.push(bodies[1..].to_vec());
    }
    let next = heights.last().map_or(low, |(h, _)| *h) + 1;
    let mut extra = bodies.to_vec();
    extra.push(proposal(world, i, next, next + nv.round, Vec::new()));
    variants.push(extra);
    let mut messages: Vec<Message> = variants
        .into_iter()
        .map(|bodies| {
            let new_view = NewView {
                proposals: bodies
                    .iter()
                    .map(|b| (b.header.height, b.digest()))
                    .collect(),
                ..nv.clone()
            };
            Message::NewView {
                new_view: sign(world, i, new_view),
                bodies,
            }
        })
        .collect();
    let key = world.nodes[i].key.address();
    let colluder = (0..world.nodes.len()).find(|&j| {
        world.nodes[j].behaviour == Behaviour::ForgeCertificates
            && world.nodes[j].key.address() != key
    });
    if let Some(j) = colluder {
        messages.push(Message::NewView {
            new_view: sign(world, j, nv.clone()),
            bodies: bodies.to_vec(),
        });
    }
    messages
}

/// A valid transfer between two bank accounts.
fn a_transfer(world: &World) -> Transaction {
    TxBody {
        from: world.bank[0].address(),
        nonce: 0,
        kind: TxKind::Transfer {
            to: world.bank[1].address(),
            amount: 1,
        },
    }
    .sign(&world.bank[0], CHAIN)
}

/// Every Byzantine behaviour the random sweep draws from, [`Behaviour::Twin`] and
/// [`Behaviour::Outsider`] aside (those need nodes of their own).
pub const ALL: [Behaviour; 14] = [
    Behaviour::Honest,
    Behaviour::Silent,
    Behaviour::SilentLeader,
    Behaviour::Equivocate,
    Behaviour::Duplicate,
    Behaviour::Replay,
    Behaviour::FarFuture,
    Behaviour::WrongChain,
    Behaviour::OldViews,
    Behaviour::ForgeCertificates,
    Behaviour::SwapBodies,
    Behaviour::BadSync,
    Behaviour::BadTimestamps,
    Behaviour::Flood,
];

/// The body a [`Behaviour::SwapBodies`] node puts under a kept header: one transfer of
/// 900,000 AGL from a funded bank account to itself, signed with its own key instead of
/// the account's (so nobody with the right to spend signed it).
pub fn theft(world: &World, i: usize) -> Vec<Transaction> {
    let victim = world.bank[0].address();
    let nonce = world.nodes[i]
        .ledger
        .account(&victim)
        .map_or(0, |a| a.nonce);
    let body = TxBody {
        from: victim,
        nonce,
        kind: TxKind::Transfer {
            to: world.nodes[i].key.address(),
            amount: 900_000 * almagill::amount::AGL,
        },
    };
    vec![body.sign(&world.nodes[i].key, CHAIN)]
}

/// The same header over the theft: its digest, and so every signature on it, still holds.
fn swapped(world: &World, i: usize, proposal: &Proposal) -> Proposal {
    Proposal {
        header: proposal.header.clone(),
        txs: theft(world, i),
    }
}

/// See [`Behaviour::SwapBodies`].
fn swap_bodies(world: &mut World, i: usize, out: Vec<(Target, Message)>) -> Vec<(Target, Message)> {
    let others: Vec<_> = (0..world.nodes.len())
        .filter(|&j| j != i)
        .map(|j| world.nodes[j].key.address())
        .collect();
    let mut sent = Vec::new();
    for (target, message) in out {
        match message {
            Message::PrePrepare { proposal, vote } if target == Target::All => {
                world.attacked("swapped pre-prepare");
                let fake = swapped(world, i, &proposal);
                for (k, address) in others.iter().enumerate() {
                    let proposal = if k % 2 == 0 { &proposal } else { &fake };
                    let m = Message::PrePrepare {
                        proposal: proposal.clone(),
                        vote: vote.clone(),
                    };
                    sent.push((Target::One(*address), m));
                }
            }
            Message::ViewChange {
                view_change,
                bodies,
            } => {
                if !bodies.is_empty() {
                    world.attacked("swapped view change");
                }
                let bodies = bodies.iter().map(|b| swapped(world, i, b)).collect();
                let m = Message::ViewChange {
                    view_change,
                    bodies,
                };
                sent.push((target, m));
            }
            Message::NewView { new_view, bodies } if target == Target::All => {
                if bodies.iter().any(|b| !b.txs.is_empty()) {
                    world.attacked("swapped new view");
                }
                let fake: Vec<Proposal> = bodies.iter().map(|b| swapped(world, i, b)).collect();
                for (k, address) in others.iter().enumerate() {
                    let bodies = if k == 0 { &fake } else { &bodies };
                    let m = Message::NewView {
                        new_view: new_view.clone(),
                        bodies: bodies.clone(),
                    };
                    sent.push((Target::One(*address), m));
                }
            }
            other => sent.push((target, other)),
        }
    }
    sent
}

/// What a Byzantine node serves a node catching up (see [`Behaviour::SwapBodies`] and
/// [`Behaviour::BadSync`]); other behaviours serve the truth.
pub fn tamper_sync(
    world: &mut World,
    j: usize,
    mut blocks: Vec<(Block, CommitCertificate)>,
) -> Vec<(Block, CommitCertificate)> {
    match world.nodes[j].behaviour {
        Behaviour::SwapBodies => {
            world.attacked("swapped catch-up reply");
            for (block, _) in &mut blocks {
                block.txs = theft(world, j);
            }
        }
        Behaviour::BadSync if blocks.len() > 1 => {
            world.attacked("bad catch-up reply");
            // Each kind in turn (a swapped body first), so every kind is served within five
            // replies.
            let kind = (world.attacks("bad catch-up reply") - 1) % 5;
            match kind {
                0 => {
                    let k = world.rng.below(blocks.len() as u64) as usize;
                    blocks[k].0.txs = theft(world, j);
                }
                1 => {
                    let last = blocks.len() - 1;
                    blocks[0].1 = blocks[last].1.clone();
                }
                2 => blocks.truncate(1 + world.rng.below(blocks.len() as u64 - 1) as usize),
                3 => blocks.reverse(),
                _ => {
                    blocks.remove(0);
                }
            }
        }
        _ => {}
    }
    blocks
}

/// See [`Behaviour::BadTimestamps`]: a pre-prepare restamped and signed again.
fn restamp(world: &mut World, i: usize, message: Message) -> Message {
    let Message::PrePrepare { proposal, vote } = message else {
        return message;
    };
    world.attacked("absurd timestamp");
    let below = world.nodes[i]
        .chain
        .last()
        .map_or(0, |(b, _, _)| b.header.proposal.timestamp_ms);
    let timestamp_ms = match world.rng.below(4) {
        0 => 0,
        1 => below,
        2 => world.now + 10 * almagill::consensus::MAX_CLOCK_AHEAD_MS,
        _ => u64::MAX,
    };
    let mut proposal = proposal;
    proposal.header.timestamp_ms = timestamp_ms;
    let vote = sign(
        world,
        i,
        VoteTarget {
            digest: proposal.digest(),
            ..vote.payload
        },
    );
    Message::PrePrepare { proposal, vote }
}

/// See [`Behaviour::Flood`].
pub fn flood(world: &mut World, i: usize) -> Vec<Message> {
    let pbft = &world.nodes[i].pbft;
    let (round, committed, low) = (pbft.round(), pbft.committed(), pbft.low());
    let window = world.genesis.consensus.window;
    let mut messages = vec![Message::FetchNewView { round }];
    messages.extend(
        (committed + 1..=committed + window).map(|height| Message::FetchProposal {
            height,
            view: height + round,
        }),
    );
    let stale = low
        .checked_sub(1)
        .and_then(|k| world.nodes[i].chain.get(k as usize));
    if let Some(&(_, _, state_root)) = stale {
        let target = CheckpointTarget {
            height: low,
            state_root,
        };
        messages.push(Message::Checkpoint(sign(world, i, target)));
    }
    let higher = round + 1 + world.rng.below(1_000);
    let view_change = ViewChange {
        round: higher,
        checkpoint: world.stable_checkpoint(i),
        prepared: Vec::new(),
    };
    messages.push(Message::ViewChange {
        view_change: sign(world, i, view_change),
        bodies: Vec::new(),
    });
    messages
}
