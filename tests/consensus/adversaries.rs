//! One named scenario per Byzantine behaviour, and the Twins sweeps.
//!
//! Each scenario runs a network in which the Byzantine nodes hold under a third of stake,
//! under load, usually through a faulty phase; the simulator checks safety on every event.
//! Then, on a calm network, every honest node must commit new blocks within bounded virtual
//! time, and where the attack could leave a trace, the test looks for it and finds none.
//!
//! A failing run names its seed; `ALMAGILL_SIM_SEED=N` makes the Twins sweeps run just that
//! seed, and `ALMAGILL_SIM_SEEDS=N` runs N seeds in each.

use almagill::consensus::{LeaderSchedule, Mode, Record};
use almagill::crypto::Address;

use crate::byzantine::Behaviour;
use crate::sim::{NetFaults, Setup, World, CHAIN};
use almagill_testkit::Rng;

/// A slow network that loses and duplicates messages.
const LOSSY: NetFaults = NetFaults {
    delay: (1, 60),
    drop: 0.1,
    duplicate: 0.05,
};

/// A network as `setup` describes, with the given nodes Byzantine, under load.
pub fn network(seed: u64, setup: &Setup, byzantine: &[(usize, Behaviour)]) -> World {
    let mut world = World::new(seed, setup);
    for &(i, behaviour) in byzantine {
        world.nodes[i].behaviour = behaviour;
    }
    world.start_workload(100);
    world
}

/// The honest nodes.
pub fn honest(world: &World) -> Vec<usize> {
    (0..world.nodes.len())
        .filter(|&i| world.honest(i))
        .collect()
}

/// The highest round any honest node is in.
pub fn max_honest_round(world: &World) -> u64 {
    honest(world)
        .into_iter()
        .map(|i| world.nodes[i].pbft.round())
        .max()
        .unwrap_or(0)
}

/// Runs until every honest, alive node has committed `blocks` more blocks than the slowest
/// one had, and asserts that happens within `within` ms of virtual time; then cross-checks
/// the honest chains.
pub fn assert_live(world: &mut World, within: u64, blocks: u64) {
    let target = world.min_honest_height() + blocks;
    let deadline = world.now + within;
    while world.min_honest_height() < target && world.now < deadline {
        let next = world.now + 100;
        world.run_until(next);
    }
    assert!(
        world.min_honest_height() >= target,
        "no progress to height {target} within {within} ms: {}",
        world.summary()
    );
    world.assert_chains_agree();
}

/// Runs for `ms` of virtual time, calling `check` every 20 ms.
pub fn run_checking(world: &mut World, ms: u64, mut check: impl FnMut(&World)) {
    let until = world.now + ms;
    while world.now < until {
        let next = (world.now + 20).min(until);
        world.run_until(next);
        check(world);
    }
}

/// `phases` rounds of trouble: a lossy network split into even- and odd-numbered nodes (so
/// neither side holds a quorum and views change), then briefly whole again; finally calm.
/// `check` runs every 20 ms throughout.
fn faulty_phases_checking(world: &mut World, phases: usize, mut check: impl FnMut(&World)) {
    world.faults = LOSSY;
    for _ in 0..phases {
        world.partition = Some((0..world.nodes.len()).map(|j| (j % 2) as u8).collect());
        run_checking(world, 1_200, &mut check);
        world.partition = None;
        run_checking(world, 600, &mut check);
    }
    world.faults = NetFaults::CALM;
}

/// [`faulty_phases_checking`] with nothing to check.
pub fn faulty_phases(world: &mut World, phases: usize) {
    faulty_phases_checking(world, phases, |_| {});
}

/// Runs for `ms` of virtual time, asserting that no honest node ever leaves round 0.
fn assert_round_stays_0(world: &mut World, ms: u64) {
    run_checking(world, ms, |w| {
        assert_eq!(max_honest_round(w), 0, "a view changed: {}", w.summary());
    });
}

/// Some honest node has moved to a later round: a faulty leader's views were given up.
fn assert_replaced(world: &World, who: &str) {
    assert!(
        max_honest_round(world) > 0,
        "the {who} was never replaced: {}",
        world.summary()
    );
}

/// The signers of every certificate honest node `i` holds: its chain's commit certificates,
/// the prepared certificates in its log, and its stable checkpoints.
fn certificate_signers(world: &World, i: usize) -> Vec<Address> {
    let node = &world.nodes[i];
    let mut signers: Vec<Address> = node
        .chain
        .iter()
        .flat_map(|(_, c, _)| c.signers().copied())
        .collect();
    for record in &node.durable {
        match record {
            Record::Committed { certificate, .. } => signers.extend(certificate.signers()),
            Record::Stable(certificate) => signers.extend(certificate.signers()),
            _ => {}
        }
    }
    signers
}

/// No certificate an honest node holds carries a signature of `address`.
fn assert_never_signed_by(world: &World, address: Address) {
    for i in honest(world) {
        assert!(
            !certificate_signers(world, i).contains(&address),
            "node {i} holds a certificate signed by {address:?}: {}",
            world.summary()
        );
    }
}

/// No honest node committed a block proposed by one of the `byzantine` nodes.
fn assert_never_proposed_by(world: &World, byzantine: &[(usize, Behaviour)]) {
    let proposers: Vec<Address> = byzantine
        .iter()
        .map(|(i, _)| world.nodes[*i].key.address())
        .collect();
    for i in honest(world) {
        for (block, _, _) in &world.nodes[i].chain {
            assert!(
                !proposers.contains(&block.header.proposal.proposer),
                "node {i} committed block {} of {:?}: {}",
                block.height(),
                block.header.proposal.proposer,
                world.summary()
            );
        }
    }
}

/// The nodes of the validators that lead views `first..first + count` in a network as
/// `setup` describes, each with `behaviour`.
pub fn leaders(
    setup: &Setup,
    first: u64,
    count: u64,
    behaviour: Behaviour,
) -> Vec<(usize, Behaviour)> {
    let world = World::new(0, setup);
    let validators = world.nodes[0]
        .ledger
        .validators_for(1)
        .expect("genesis validators");
    let schedule = LeaderSchedule::new(validators);
    (first..first + count)
        .map(|view| {
            let leader = schedule.leader(view);
            let i = world.nodes.iter().position(|n| n.key.address() == leader);
            (i.expect("a leader is a node"), behaviour)
        })
        .collect()
}

/// An equivocating leader sends one proposal to some validators and another to the rest:
/// neither gathers a commit quorum, so its views time out, the round moves past it, and
/// blocks keep committing with one agreed chain.
///
/// Mutation caught: `Tally::weight` counting votes for every digest, not only the one
/// weighed — node 0 commits a different block at height 3 than the others and the agreement
/// check fails. (Not caught: a second pre-prepare for a slot replacing the first; no honest
/// node is ever sent both proposals.)
#[test]
fn equivocating_leader_is_replaced() {
    let mut world = network(41, &Setup::equal(4), &[(1, Behaviour::Equivocate)]);
    assert_live(&mut world, 20_000, 20);
    assert_replaced(&world, "equivocating leader");
    faulty_phases(&mut world, 2);
    assert_live(&mut world, 30_000, 10);
}

/// Every message sent three times, twice re-encoded, counts once: on a calm network not a
/// single view changes and throughput matches an honest network's; after a faulty phase,
/// progress resumes.
///
/// Mutation caught: `on_vote` without its `tally.has` check and a `Tally` that keeps and
/// weighs every copy — quorums made of copies, and after the faulty phase the nodes stay in
/// view change (no progress to height 148). (Not caught: `Tally::add` letting the last vote
/// win; the copies are identical.) Also caught: pre-prepares just above the window dropped
/// (`keep_early` keeping nothing) — a leader that proposes the moment its checkpoint at an
/// epoch's end is stable reaches the others before theirs is, and height 241 waits out a
/// view change.
#[test]
fn duplicate_and_reencoded_votes_change_nothing() {
    let committed_in_5s = |behaviour| {
        let mut world = network(42, &Setup::equal(4), &[(2, behaviour)]);
        assert_round_stays_0(&mut world, 5_000);
        (world.min_honest_height(), world)
    };
    let (honest_blocks, _) = committed_in_5s(Behaviour::Honest);
    let (blocks, mut world) = committed_in_5s(Behaviour::Duplicate);
    assert!(
        blocks * 10 >= honest_blocks * 9,
        "{blocks} blocks with duplicates, {honest_blocks} without: {}",
        world.summary()
    );
    faulty_phases(&mut world, 2);
    assert_live(&mut world, 30_000, 10);
}

/// Two nodes whose keys are not validators inject votes, proposals, checkpoints, view
/// changes and new views shaped like the live traffic: no view changes because of them, no
/// certificate ever carries their signatures, and blocks keep committing.
///
/// Mutation caught: `is_member` true for every key — the outsiders count as validators, and
/// after the faulty phase every node stays in view change (no progress to height 101). Not
/// caught: `on_vote` without its membership check (even with outsiders given stake in
/// `ValidatorSet::weight`), `Certificate::verify` accepting non-validators, outsiders'
/// checkpoint votes kept and counted: the injected messages arrive after the quorum they
/// could join.
#[test]
fn non_validator_votes_are_ignored() {
    let mut setup = Setup::equal(4);
    setup.outsiders = 2;
    let outsiders = [(4, Behaviour::Outsider), (5, Behaviour::Outsider)];
    let mut world = network(43, &setup, &outsiders);
    assert_round_stays_0(&mut world, 3_000);
    assert_live(&mut world, 10_000, 10);
    faulty_phases(&mut world, 2);
    assert_live(&mut world, 30_000, 10);
    for (i, _) in outsiders {
        assert_never_signed_by(&world, world.nodes[i].key.address());
    }
}

/// A validator that signs everything for another chain is, to this chain, a silent one:
/// none of its signatures lands in a certificate, and the other three carry on.
///
/// Mutation caught: `crypto::signing_message` leaving out the chain id — the other chain's
/// signatures verify here, and node 0 holds a certificate signed by the wrong-chain
/// validator.
#[test]
fn wrong_chain_signatures_are_ignored() {
    let mut world = network(44, &Setup::equal(4), &[(2, Behaviour::WrongChain)]);
    assert_live(&mut world, 20_000, 15);
    faulty_phases(&mut world, 2);
    assert_live(&mut world, 30_000, 10);
    assert_never_signed_by(&world, world.nodes[2].key.address());
}

/// A validator replays votes and proposals of rounds it has left, and echoes its messages
/// seconds later, through three rounds of partitions: safety holds, and once the network
/// heals blocks commit again.
///
/// Mutation caught: `in_current_round` taking votes of earlier rounds as current (`round <=
/// self.round`) — after the partitions every node stays in view change in round 2 (no
/// progress to height 37).
#[test]
fn old_view_replays_are_ignored() {
    let mut world = network(45, &Setup::equal(4), &[(3, Behaviour::OldViews)]);
    world.run_until(1_000);
    faulty_phases(&mut world, 3);
    assert!(
        world.nodes[3].pbft.round() > 0,
        "too few view changes for old views to replay: {}",
        world.summary()
    );
    assert_live(&mut world, 30_000, 10);
    faulty_phases(&mut world, 1);
    assert_live(&mut world, 30_000, 10);
}

/// Heights, views, rounds and checkpoint heights up to `u64::MAX`, in every kind of
/// message: on a calm network no honest node leaves round 0, and after a faulty phase the
/// rounds stay small and blocks commit.
///
/// Mutation caught: `join_higher_round` following a single validator (no more-than-a-third
/// check) — at t=440 the honest nodes jump to round 18446744073709551188 and "a view
/// changed" fails; likewise `ahead_height` trusting one validator's claim (no progress to
/// height 103). Not caught: no `in_window` check in `on_vote` and `on_pre_prepare`; no
/// `AHEAD_VOTES` bound (memory, which this test does not measure).
#[test]
fn far_future_numbers_cost_nothing() {
    let mut world = network(46, &Setup::equal(4), &[(0, Behaviour::FarFuture)]);
    assert_round_stays_0(&mut world, 3_000);
    assert_live(&mut world, 10_000, 10);
    faulty_phases(&mut world, 2);
    assert_live(&mut world, 30_000, 10);
    assert!(
        max_honest_round(&world) < 20,
        "rounds ran away: {}",
        world.summary()
    );
}

/// A validator surrounds each view change with forged ones (prepared certificates without a
/// quorum, over another digest, with a repeated signer, with a mismatching body, outside the
/// window; a checkpoint certificate it signed alone) and sends a new view of its own where
/// it is not the primary: every honest stable checkpoint is still a real quorum certificate,
/// and after the partitions heal, blocks commit.
///
/// Mutation caught: `view_change_valid` not checking the checkpoint certificate — the
/// forger's self-signed checkpoint becomes the honest nodes' low watermark (12, above their
/// height 9) and there is no progress to height 19. Not caught, here or in 60 seeds of each
/// random sweep part: prepared certificates not verified.
#[test]
fn forged_view_change_certificates_are_rejected() {
    let mut world = network(47, &Setup::equal(4), &[(1, Behaviour::ForgeCertificates)]);
    world.run_until(1_000);
    faulty_phases(&mut world, 3);
    assert!(
        world.nodes[1].pbft.round() > 0,
        "the forger never changed view: {}",
        world.summary()
    );
    assert_live(&mut world, 30_000, 10);
    let validators = world.nodes[0].ledger.validators_for(1).unwrap().clone();
    for i in honest(&world) {
        world.assert_certificates_valid(i);
        for record in &world.nodes[i].durable {
            if let Record::Stable(certificate) = record {
                if certificate.payload.height > 0 {
                    let valid = certificate.verify(CHAIN, &validators);
                    assert!(valid.is_ok(), "node {i}: {valid:?}: {}", world.summary());
                }
            }
        }
    }
}

/// The primaries of rounds 1 and 2 both forge (and equivocate as leaders, so that new views
/// have gaps to fill): as primary each sends only new views whose proposals differ from the
/// recomputed plan (another digest, a gap filler with a transaction, a height missing, a
/// height added), and the other signs the valid one as a non-primary. No honest node ever
/// enters a round they lead, and the rounds after them bring progress.
///
/// Mutation caught: `new_view_valid` not comparing a re-proposed digest with the plan's (as
/// also with no comparison to the plan at all) — node 1 enters a forged new view.
#[test]
fn mismatching_new_view_is_rejected() {
    let setup = Setup::equal(7);
    let byzantine = leaders(&setup, 1, 2, Behaviour::ForgeCertificates);
    let forgers: Vec<usize> = byzantine.iter().map(|(i, _)| *i).collect();
    let mut world = network(48, &setup, &byzantine);
    let led_by_forger = |w: &World, i: usize| {
        let pbft = &w.nodes[i].pbft;
        let round = pbft.round();
        round > 0
            && pbft.mode() == Mode::Normal
            && forgers
                .iter()
                .any(|&f| pbft.primary(round) == Some(w.nodes[f].key.address()))
    };
    let mut forger_led = false;
    let mut check = |w: &World| {
        forger_led |= forgers.iter().any(|&f| led_by_forger(w, f));
        for i in honest(w) {
            assert!(
                !led_by_forger(w, i),
                "node {i} entered a forged new view: {}",
                w.summary()
            );
        }
    };
    run_checking(&mut world, 1_000, &mut check);
    faulty_phases_checking(&mut world, 1, &mut check);
    run_checking(&mut world, 15_000, &mut check);
    assert!(
        forger_led,
        "no forger ever led a round: {}",
        world.summary()
    );
    assert_live(&mut world, 30_000, 10);
}

/// A validator that votes but never proposes: each view it leads times out and the next
/// round's leader takes over, across an epoch boundary (height 40) too; none of the
/// committed blocks is its own.
///
/// Mutation caught: the view timer never starting a view change in normal mode — every node
/// stays in round 0 and there is no progress to height 60 in 60 s; likewise a view change
/// never given up for the next round (stuck in round 1).
#[test]
fn silent_leader_is_replaced() {
    let byzantine = [(2, Behaviour::SilentLeader)];
    let mut world = network(49, &Setup::equal(4), &byzantine);
    assert_live(&mut world, 60_000, 60);
    assert_replaced(&world, "silent leader");
    assert_never_proposed_by(&world, &byzantine);
}

/// Seven validators of equal stake, the two that lead views 1 and 2 (adjacent in the leader
/// cycle) silent: a height can meet both in a row, yet every height commits within bounded
/// time, and none of their proposals is ever committed.
///
/// Mutation caught: a view change never given up for the next round (the timeout in
/// view-change mode only retries) — stuck in round 1, whose primary is silent, with no
/// progress to height 20; likewise the view timer never starting a view change in normal
/// mode.
#[test]
fn f_faulty_leaders_in_a_row() {
    let setup = Setup::equal(7);
    let byzantine = leaders(&setup, 1, 2, Behaviour::Silent);
    let mut world = network(50, &setup, &byzantine);
    assert_live(&mut world, 30_000, 20);
    assert_never_proposed_by(&world, &byzantine);
    faulty_phases(&mut world, 1);
    assert_live(&mut world, 30_000, 10);
}

/// Validators 0 and 1 run twice (nodes 7 and 8 are their twins): together one Byzantine
/// faction of two sevenths of stake. Three successive partitions each put one twin of each
/// pair with two honest validators (four of seven: not a quorum) and the other twins with
/// the remaining three (five of seven: a quorum). Only that side may decide; the honest
/// nodes never disagree, and once healed they commit again.
///
/// Mutation caught: with the quorum rule weakened from `3w > 2S` to `2w > S`, four of seven
/// decide too, both sides commit different blocks at one height, and the simulator's
/// agreement check fails.
#[test]
fn twins_do_not_break_safety() {
    let mut setup = Setup::equal(7);
    setup.twins = vec![0, 1];
    let twins = [
        (0, Behaviour::Twin),
        (1, Behaviour::Twin),
        (7, Behaviour::Twin),
        (8, Behaviour::Twin),
    ];
    let mut world = network(51, &setup, &twins);
    world.faults = NetFaults {
        delay: (1, 30),
        drop: 0.02,
        duplicate: 0.02,
    };
    for small in [[2, 3], [4, 5], [5, 6]] {
        let groups = (0..9)
            .map(|j| u8::from(j > 1 && !small.contains(&j)))
            .collect();
        world.partition = Some(groups);
        world.run_until(world.now + 2_000);
    }
    world.partition = None;
    world.faults = NetFaults::CALM;
    assert_live(&mut world, 30_000, 10);
}

/// The network splits into four at the worst moment: every validator has sent its commit
/// vote for the last height of epoch 0, so each commits it, but every checkpoint vote for it
/// is lost. The window cannot pass the end of an epoch without that checkpoint, so once the
/// network heals the votes must reach the others somehow; blocks must commit into epoch 1.
///
/// Mutation caught: `catch_up` no longer calling `resend_checkpoint_votes` — every node
/// stays at height 40 with its low watermark at 36, and there is no progress to height 45.
#[test]
fn checkpoint_votes_lost_at_an_epoch_end_are_recovered() {
    let mut world = network(52, &Setup::equal(4), &[]);
    let end = world.genesis.epoch_length;
    let voted = |w: &World, i: usize| {
        w.nodes[i]
            .durable
            .iter()
            .any(|r| matches!(r, Record::Committed { vote, .. } if vote.payload.height == end))
    };
    while !(0..4).all(|i| voted(&world, i)) {
        assert!(
            world.now < 30_000,
            "height {end} never voted: {}",
            world.summary()
        );
        world.run_until(world.now + 1);
    }
    world.partition = Some(vec![0, 1, 2, 3]);
    world.run_until(world.now + 2_000);
    world.partition = None;
    assert_live(&mut world, 30_000, 5);
}

/// How many seeds a Twins sweep runs: `ALMAGILL_SIM_SEEDS`, or `default`.
fn seeds(default: u64) -> std::ops::Range<u64> {
    if let Some(seed) = env_number("ALMAGILL_SIM_SEED") {
        return seed..seed + 1;
    }
    0..env_number("ALMAGILL_SIM_SEEDS").unwrap_or(default)
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// One Twins run: `twins` of the `validators` (equal stake) run twice under one key; a few
/// phases of random partitions (each pair of twins split up) on a mildly faulty network,
/// during which the rounds, and with them the leaders, move at random; then a calm network on
/// which every honest node must commit again.
fn twins_run(seed: u64, validators: usize, twins: usize) {
    let mut rng = Rng::new(seed ^ 0x7715);
    let mut twinned: Vec<usize> = Vec::new();
    while twinned.len() < twins {
        let v = rng.below(validators as u64) as usize;
        if !twinned.contains(&v) {
            twinned.push(v);
        }
    }
    let mut setup = Setup::equal(validators);
    setup.twins = twinned.clone();
    let pairs: Vec<(usize, usize)> = twinned
        .iter()
        .enumerate()
        .map(|(k, &v)| (v, validators + k))
        .collect();
    let byzantine: Vec<_> = pairs
        .iter()
        .flat_map(|&(a, b)| [(a, Behaviour::Twin), (b, Behaviour::Twin)])
        .collect();
    let mut world = network(seed, &setup, &byzantine);
    world.faults = NetFaults {
        delay: (1, 40),
        drop: 0.03,
        duplicate: 0.03,
    };
    let nodes = world.nodes.len();
    for _ in 0..world.rng.between(2, 5) {
        let sides = world.rng.between(2, 3);
        let mut groups: Vec<u8> = (0..nodes).map(|_| world.rng.below(sides) as u8).collect();
        for &(a, b) in &pairs {
            if groups[a] == groups[b] {
                groups[b] = (groups[a] + 1) % sides as u8;
            }
        }
        world.partition = Some(groups);
        let until = world.now + world.rng.between(300, 1_500);
        world.run_until(until);
    }
    world.partition = None;
    world.faults = NetFaults::CALM;
    assert_live(&mut world, 60_000, 3);
}

/// Twins sweep: 4 validators, one of them twinned, over random partition schedules.
///
/// Mutation caught: the quorum rule weakened to `2w >= S` — with `ALMAGILL_SIM_SEEDS=60`,
/// at seed 6 node 3 commits a different block at height 4 and the agreement check fails.
#[test]
fn twins_sweep_4_validators_one_twin() {
    for seed in seeds(150) {
        twins_run(seed, 4, 1);
    }
}

/// Twins sweep: 7 validators, two of them twinned, over random partition schedules.
#[test]
fn twins_sweep_7_validators_two_twins() {
    for seed in seeds(100) {
        twins_run(seed, 7, 2);
    }
}
