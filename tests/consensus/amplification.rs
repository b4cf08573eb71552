//! What a hostile validator's requests cost: bytes this node sends and signatures it checks
//! per request, measured on a real core. Each kind of request is sent 100 times in one
//! period (one round at one low watermark); past its small allowance, a request costs
//! nothing but a lookup.

use almagill::block::Proposal;
use almagill::certificate::Phase;
use almagill::certificate::Signed;
use almagill::consensus::{Input, Message, Record, ViewChange};
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
                    almagill::consensus::Target::All => others,
                    almagill::consensus::Target::One(_) => 1,
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
    assert!(world.nodes[0].pbft.round() >= 1, "{}", world.summary());
    assert!(world.nodes[0].pbft.low() > 0, "{}", world.summary());
    world
}

#[test]
fn hostile_requests_cost_a_bounded_amount_per_peer_per_round() {
    let mut world = settled();
    let attacker = world.nodes[1].key.clone();
    let from = attacker.address();
    let pbft = &world.nodes[0].pbft;
    let (round, low, committed) = (pbft.round(), pbft.low(), pbft.committed());
    let window = world.genesis.consensus.window;

    let fetch_new_view = (0..REQUESTS)
        .map(|_| Message::FetchNewView { round })
        .collect();
    let fetch_proposal = (0..REQUESTS)
        .map(|k| {
            let height = committed + 1 + k % window;
            Message::FetchProposal {
                height,
                view: height + round,
            }
        })
        .collect();
    let stale_root = world.nodes[1].chain[low as usize - 1].2;
    let stale = Signed::sign(
        almagill::consensus::CheckpointTarget {
            height: low,
            state_root: stale_root,
        },
        &attacker,
        CHAIN,
    );
    let stale_checkpoints = (0..REQUESTS)
        .map(|_| Message::Checkpoint(stale.clone()))
        .collect();
    let checkpoint = world.nodes[1]
        .durable
        .iter()
        .filter_map(|r| match r {
            Record::Stable(c) => Some(c.clone()),
            _ => None,
        })
        .max_by_key(|c| c.payload.height)
        .expect("a stable checkpoint");
    let high_rounds = (1..=REQUESTS)
        .map(|k| Message::ViewChange {
            view_change: Signed::sign(
                ViewChange {
                    round: round + k,
                    checkpoint: checkpoint.clone(),
                    prepared: Vec::new(),
                },
                &attacker,
                CHAIN,
            ),
            bodies: Vec::new(),
        })
        .collect();
    // A leader's real pre-prepare for the next height, its body swapped for the theft.
    let swapped = swapped_pre_prepares(&mut world, from);

    let kinds: Vec<(&str, Vec<Message>)> = vec![
        ("fetch new view", fetch_new_view),
        ("fetch proposal", fetch_proposal),
        ("stale checkpoint vote", stale_checkpoints),
        ("view change, rising rounds", high_rounds),
        ("pre-prepare, body swapped", swapped),
    ];
    println!(
        "{:<28} {:>12} {:>12} {:>14} {:>14}",
        "request x100", "bytes sent", "sigs checked", "bytes past 10", "sigs past 10"
    );
    for (name, messages) in kinds {
        let count = messages.len();
        assert!(count > 0, "{name}: nothing to send");
        let c = cost(&mut world, 0, from, messages);
        println!(
            "{name:<28} {:>12} {:>12} {:>14} {:>14}",
            c.bytes, c.signatures, c.late_bytes, c.late_signatures
        );
        assert_eq!(
            c.late_bytes, 0,
            "{name}: requests past the allowance still cost bytes"
        );
        assert_eq!(
            c.late_signatures, 0,
            "{name}: requests past the allowance still cost signature checks"
        );
        // The allowance itself is small: at most a window's worth of answers, each at most
        // a whole new view's size, and a few view changes' worth of signatures.
        assert!(
            c.signatures <= 3 * 16,
            "{name}: {} signatures",
            c.signatures
        );
        assert!(c.bytes <= 8 * 64 * 1024, "{name}: {} bytes", c.bytes);
    }
}

/// `REQUESTS` copies of a real pre-prepare of the next height that the attacker passes on
/// with the body swapped; the leader's signature on the header still holds.
fn swapped_pre_prepares(world: &mut World, from: Address) -> Vec<Message> {
    let victim_height = world.nodes[0].pbft.committed();
    let pbft = &world.nodes[0].pbft;
    let round = pbft.round();
    let height = victim_height + 1;
    let leader = pbft.leader().expect("validators known");
    let key = world
        .nodes
        .iter()
        .find(|n| n.key.address() == leader)
        .expect("leader node")
        .key
        .clone();
    let proposal = Proposal::new(height, height + round, world.now, leader, Vec::new());
    let vote = Signed::sign(
        almagill::certificate::VoteTarget {
            phase: Phase::Prepare,
            height,
            view: height + round,
            digest: proposal.digest(),
        },
        &key,
        CHAIN,
    );
    let body = theft(world, 1);
    let _ = from;
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
