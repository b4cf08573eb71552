//! Leader reputation: validators whose recent turns to lead ended in view changes are passed
//! over, so that one dead validator does not cost a view-change timeout at each of its turns.
//!
//! It is chain state, kept by the ledger, so that every node (a restarted or a state-synced
//! one too) has the same. Executing block `x`, the rounds that ended between the first
//! proposals of blocks `x - 1` and `x` (from the views in their headers, which a quorum
//! certified) are blamed on the validators that should have proposed `x` in them. Who leads
//! height `h` is decided by the blames up to its reference height (the checkpoint more than
//! two checkpoint intervals below `h`: every node working on `h` has executed it). Until
//! a blame reaches the reference height the blamed validator keeps its turns, and failing
//! them is the same outage: blames within [`episode`] heights of the one recorded are not
//! recorded again. A validator with `n` blames in the last [`MEMORY`] heights is passed over
//! for [`pass_over`]`(n)` heights after its last blame ([`WINDOW`], doubled by each further
//! blame, at most [`MEMORY`]), the most blamed first, while those passed over hold at most a
//! third of stake together; a skipped view goes to the next entry of the rotation that is
//! not skipped. So a recovered validator leads again after at most [`MEMORY`] heights, and a
//! dead one, blamed again at each return, comes back ever more rarely (each return costs a
//! view change or a few). Every input is on the chain, so every node computes the same
//! leaders; new views' primaries stay on the plain rotation (see `Pbft::primary`).
//!
//! Safety does not rest on who leads: a leader only proposes, and quorums decide. Leaders
//! chosen this way differ from the plain rotation only after view changes, which a quorum
//! certified.

use std::collections::BTreeMap;

use bincode::{Decode, Encode};

use crate::consensus::LeaderSchedule;
use crate::crypto::Address;
use crate::validators::ValidatorSet;

/// Heights a validator is passed over for after one blame: a minute or more at the hundred
/// or so small blocks a second of a loaded chain, hours at an idle chain's one a second.
/// Being passed over costs a validator nothing but its turns (blocks carry no reward), and
/// a dead validator's every return costs the chain a view-change timeout.
pub const WINDOW: u64 = 10_000;

/// Heights a blame is remembered for: the longest a validator is passed over.
pub const MEMORY: u64 = 100_000;

/// Most rounds blamed for one block: a long outage does not make executing a block long.
const MAX_BLAMED_ROUNDS: u64 = 64;

/// The blames that make validators skipped, as the ledger keeps them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Blames {
    /// The view of the last executed block's first proposal (0 at genesis).
    pub last_view: u64,
    /// `(height, validator)`, in height order, for the heights that may still count.
    pub blamed: Vec<(u64, Address)>,
}

impl Blames {
    /// Records block `height`, first proposed in `view`, with `validators` (its epoch's)
    /// and the blames so far; returns the validators blamed for the rounds that ended
    /// before it, and forgets blames too old to count for any height still worked on.
    pub fn record(
        &mut self,
        height: u64,
        view: u64,
        validators: Option<&ValidatorSet>,
        checkpoint_interval: u64,
    ) -> Vec<Address> {
        let round = view.saturating_sub(height);
        let previous = self.last_view.saturating_sub(height.saturating_sub(1));
        self.last_view = view;
        let mut blamed = Vec::new();
        if let (true, Some(validators)) = (round > previous, validators) {
            let schedule = LeaderSchedule::new(validators);
            let reference = reference_height(height, checkpoint_interval);
            let skipped = self.skipped(reference, validators);
            for r in previous..round.min(previous.saturating_add(MAX_BLAMED_ROUNDS)) {
                let view = height.saturating_add(r);
                blamed.push(leader(&schedule, view, &skipped));
            }
        }
        let episode = episode(checkpoint_interval);
        for address in &blamed {
            let in_episode = self
                .blamed
                .iter()
                .rev()
                .take_while(|(h, _)| height - h <= episode)
                .any(|(_, a)| a == address);
            if !in_episode {
                self.blamed.push((height, *address));
            }
        }
        let keep_above = height.saturating_sub(kept(checkpoint_interval));
        self.blamed.retain(|(h, _)| *h > keep_above);
        blamed
    }

    /// The validators skipped for heights whose reference height is `reference`: each
    /// blamed `n` times in the [`MEMORY`] up to it, within [`pass_over`]`(n)` of its last
    /// blame; the most blamed first (ties by address), while together they hold at most a
    /// third of `validators`' stake.
    pub fn skipped(&self, reference: u64, validators: &ValidatorSet) -> Vec<Address> {
        let from = reference.saturating_sub(MEMORY);
        // Per validator: how many blames, and the height of the last.
        let mut counts: BTreeMap<Address, (u64, u64)> = BTreeMap::new();
        for (height, address) in self
            .blamed
            .iter()
            .filter(|(h, a)| *h > from && *h <= reference && validators.stake_of(a).is_some())
        {
            let (n, last) = counts.entry(*address).or_default();
            *n += 1;
            *last = *height;
        }
        let mut ranked: Vec<(u64, Address)> = counts
            .into_iter()
            .filter(|(_, (n, last))| reference - last < pass_over(*n))
            .map(|(a, (n, _))| (n, a))
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut skipped = Vec::new();
        for (_, address) in ranked {
            skipped.push(address);
            if validators.has_honest(validators.weight(&skipped)) {
                skipped.pop();
            }
        }
        skipped
    }
}

/// Heights a validator blamed `n` times (at least once) in the last [`MEMORY`] is passed
/// over for after its last blame: [`WINDOW`], doubled by each blame after the first, at
/// most [`MEMORY`].
pub fn pass_over(n: u64) -> u64 {
    let doublings = n.saturating_sub(1).min(u64::from(u64::BITS - 1));
    WINDOW.saturating_mul(1u64 << doublings).min(MEMORY)
}

/// The height whose blames decide who leads `height`: the highest multiple of the
/// checkpoint interval more than two intervals below it (0 near genesis). Heights in flight
/// lie at most two intervals above the low watermark, so a node working on `height` has
/// executed this one.
pub fn reference_height(height: u64, checkpoint_interval: u64) -> u64 {
    let interval = checkpoint_interval.max(1);
    let below = height.saturating_sub(interval.saturating_mul(2).saturating_add(1));
    below - below % interval
}

/// Heights after a validator's blame within which further blames of it are the same
/// outage: until its blame reaches the reference height (at most three checkpoint
/// intervals later), its turns keep coming and failing. One outage counts once, so it
/// costs one window, not a doubling per failed turn.
pub fn episode(checkpoint_interval: u64) -> u64 {
    checkpoint_interval.saturating_mul(3)
}

/// Blames kept below the executed height: the [`MEMORY`] below the lowest reference height
/// a node may still ask about (execution can run up to two intervals past the low
/// watermark, and heights just above the watermark refer three intervals below it).
pub fn kept(checkpoint_interval: u64) -> u64 {
    MEMORY.saturating_add(checkpoint_interval.saturating_mul(6))
}

/// The leader of `view` with `skipped` passed over: the first entry of the rotation from
/// `view` on that is not skipped.
pub fn leader(schedule: &LeaderSchedule, view: u64, skipped: &[Address]) -> Address {
    let len = schedule.cycle().len() as u64;
    (0..len)
        .map(|k| schedule.leader(view.saturating_add(k)))
        .find(|l| !skipped.contains(l))
        .unwrap_or_else(|| schedule.leader(view))
}
