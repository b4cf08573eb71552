//! What a hostile validator's requests cost: bytes this node sends and signatures it checks
//! per request, measured on a real core. Each kind of request is sent 100 times in one
//! period (one round at one low watermark); past its small allowance, a request costs
//! nothing but a lookup.

use almagill::block::Proposal;
use almagill::certificate::{Phase, Signed, VoteTarget};
use almagill::consensus::{CheckpointTarget, Input, Message, Record, Target, ViewChange};
use almagill::crypto::{signatures_checked, Address};
use almagill::encoding;

use crate::adversaries::network;
use crate::byzantine::theft;
use crate::sim::{Setup, World, CHAIN};

/// How many of each request the attacker sends.
const REQUESTS: u64 = 100;

/// Bytes sent and signatures checked for one kind of request: in all, and for requests
/// past the tenth.
struct Cost {
    bytes: u64,
    signatures: u64,
    late_bytes: u64,
    late_signatures: u64,
}

/// Steps `messages` into node `victim`'s core as sent by `from`, counting what it costs.
fn cost(world: &mut World, victim: usize, from: Address, messages: Vec<Message>) -> Cost {
    let others = world.nodes.len() as u64 - 1;
    let mut cost = Cost {
        bytes: 0,
        signatures: 0,
        late_bytes: 0,
        late_signatures: 0,
    };
    for (k, message) in messages.into_iter().enumerate() {
        let before = signatures_checked();
        let input = Input::Message { from, message };
        let actions = world.nodes[victim].pbft.step(input, world.now);
        let signatures = signatures_checked() - before;
        let bytes: u64 = actions
            .messages
            .iter()
            .map(|(target, m)| {
                let copies = match target {
                    Target::All => others,
                    Target::One(_) => 1,
                };
                copies * encoding::encode(m).len() as u64
            })
            .sum();
        cost.bytes += bytes;
        cost.signatures += signatures;
        if k >= 10 {
            cost.late_bytes += bytes;
            cost.late_signatures += signatures;
        }
    }
    cost
}

/// A network that went through a view change (so every node holds a new view to hand
/// out) and past a stable checkpoint, stopped at a calm moment; node 0 is the victim and
/// validator 1 the attacker.
fn settled() -> World {
    let mut world = network(81, &Setup::equal(4), &[]);
    world.lose = Some(Box::new(
        |_, _, m| matches!(m, Message::PrePrepare { proposal, .. } if proposal.header.height == 6),
    ));
    world.run_until(2_000);
    world.lose = None;
    world.run_until(4_000);
    // Stop where node 0 holds proposals above its low watermark, to be asked for.
    while world.nodes[0].pbft.committed() == world.nodes[0].pbft.low() && world.now < 8_000 {
        let next = world.now + 5;
        world.run_until(next);
    }
    assert!(world.nodes[0].pbft.round() >= 1, "{}", world.summary());
    assert!(world.nodes[0].pbft.low() > 0, "{}", world.summary());
    world
}

/// The requests of one kind, built against the settled network.
type Requests = fn(&mut World) -> Vec<Message>;

/// Each kind of hostile request, 100 times in one period from validator 1 to a fresh copy
/// of the settled node 0: past the first ten (the allowance is smaller), none costs a byte
/// sent or a signature checked, and the first ten cost at most a few answers and checks.
///
/// Mutation caught: with `Budget::allows` always true, every request is answered or checked
/// again and the costs past the tenth are no longer zero.
#[test]
fn hostile_requests_cost_a_bounded_amount_per_peer_per_round() {
    let kinds: [(&str, Requests); 5] = [
        ("fetch new view", fetch_new_views),
        ("fetch proposal", fetch_proposals),
        ("stale checkpoint vote", stale_checkpoint_votes),
        ("view change, rising rounds", rising_view_changes),
        ("pre-prepare, body swapped", swapped_pre_prepares),
    ];
    println!(
        "{:<28} {:>12} {:>12} {:>14} {:>14}",
        "request x100", "bytes sent", "sigs checked", "bytes past 10", "sigs past 10"
    );
    for (name, requests) in kinds {
        let mut world = settled();
        let messages = requests(&mut world);
        assert_eq!(messages.len() as u64, REQUESTS, "{name}");
        let from = world.nodes[1].key.address();
        let c = cost(&mut world, 0, from, messages);
        println!(
            "{name:<28} {:>12} {:>12} {:>14} {:>14}",
            c.bytes, c.signatures, c.late_bytes, c.late_signatures
        );
        assert!(
            c.bytes + c.signatures > 0,
            "{name}: the request did nothing at all"
        );
        assert_eq!(
            c.late_bytes, 0,
            "{name}: requests past the allowance cost bytes"
        );
        assert_eq!(
            c.late_signatures, 0,
            "{name}: requests past the allowance cost checks"
        );
        assert!(
            c.signatures <= 3 * 16,
            "{name}: {} signatures",
            c.signatures
        );
        assert!(c.bytes <= 8 * 64 * 1024, "{name}: {} bytes", c.bytes);
    }
}

fn fetch_new_views(world: &mut World) -> Vec<Message> {
    let round = world.nodes[0].pbft.round();
    (0..REQUESTS)
        .map(|_| Message::FetchNewView { round })
        .collect()
}

/// Requests for the proposals node 0 holds between its low watermark and its height.
fn fetch_proposals(world: &mut World) -> Vec<Message> {
    let pbft = &world.nodes[0].pbft;
    let (round, low, committed) = (pbft.round(), pbft.low(), pbft.committed());
    assert!(committed > low, "{}", world.summary());
    (0..REQUESTS)
        .map(|k| {
            let height = low + 1 + k % (committed - low);
            Message::FetchProposal {
                height,
                view: height + round,
            }
        })
        .collect()
}

/// The attacker's checkpoint vote for node 0's low watermark, again and again.
fn stale_checkpoint_votes(world: &mut World) -> Vec<Message> {
    let low = world.nodes[0].pbft.low();
    let state_root = world.nodes[1].chain[low as usize - 1].2;
    let target = CheckpointTarget {
        height: low,
        state_root,
    };
    let vote = Signed::sign(target, &world.nodes[1].key, CHAIN);
    (0..REQUESTS)
        .map(|_| Message::Checkpoint(vote.clone()))
        .collect()
}

/// Validly signed view changes of the attacker for rounds ever higher.
fn rising_view_changes(world: &mut World) -> Vec<Message> {
    let round = world.nodes[0].pbft.round();
    let checkpoint = world.nodes[1]
        .durable
        .iter()
        .filter_map(|r| match r {
            Record::Stable(c) => Some(c.clone()),
            _ => None,
        })
        .max_by_key(|c| c.payload.height)
        .expect("a stable checkpoint");
    (1..=REQUESTS)
        .map(|k| {
            let view_change = ViewChange {
                round: round + k,
                checkpoint: checkpoint.clone(),
                prepared: Vec::new(),
            };
            Message::ViewChange {
                view_change: Signed::sign(view_change, &world.nodes[1].key, CHAIN),
                bodies: Vec::new(),
            }
        })
        .collect()
}

/// A leader's validly signed pre-prepare for the window's top height (not proposed yet),
/// passed on by the attacker with the body swapped for the theft.
fn swapped_pre_prepares(world: &mut World) -> Vec<Message> {
    let pbft = &world.nodes[0].pbft;
    let height = pbft.low() + 2 * world.genesis.consensus.checkpoint_interval;
    let view = height + pbft.round();
    let leader = pbft.leader_at(height, view).expect("validators known");
    let key = world
        .nodes
        .iter()
        .find(|n| n.key.address() == leader)
        .expect("leader node")
        .key
        .clone();
    let proposal = Proposal::new(height, view, world.now, leader, Vec::new());
    let target = VoteTarget {
        phase: Phase::Prepare,
        height,
        view,
        digest: proposal.digest(),
    };
    let vote = Signed::sign(target, &key, CHAIN);
    let body = theft(world, 1);
    (0..REQUESTS)
        .map(|_| Message::PrePrepare {
            proposal: Proposal {
                header: proposal.header.clone(),
                txs: body.clone(),
            },
            vote: vote.clone(),
        })
        .collect()
}
