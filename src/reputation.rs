//! Leader reputation: validators whose recent turns to lead ended in view changes are passed
//! over, so that one dead validator does not cost a view-change timeout at each of its turns.
//!
//! It is chain state, kept by the ledger, so that every node (a restarted or a state-synced
//! one too) has the same. Rounds only rise; a block's round is that of its first proposal
//! (the view in its header, which a quorum certified, less its height). Executing a block
//! first proposed in a round above every earlier block's, the rounds that ended since are
//! blamed on the validators that should have proposed it in them; no other block records a
//! blame. The leader of height `h` in a round is decided by every blame below `h`, and by
//! the failed turns at `h` in the rounds since the chain's last (the blames `h`'s block
//! will record; see [`Blames::leaders`]), so that a validator that keeps failing a height
//! stops leading it. A node knows all that once it has committed `h - 1`, or once it has
//! committed a block of `h`'s round or a later one (the blames of that round and every
//! earlier one lie at or below the round's first block), so within a round blocks stay in
//! flight together, and only the first fresh proposal of a round waits for the blocks
//! below it. A validator blamed `n` times in the last
//! [`MEMORY`] heights is passed over for [`pass_over`]`(n)` heights after its last blame
//! ([`WINDOW`], doubled by each further blame, at most [`MEMORY`]), the most blamed first,
//! while those passed over hold at most a third of stake together; a skipped view goes to
//! the next entry of the rotation that is not skipped. So a dead validator costs one view
//! change, at its first failed turn; a recovered one leads again after at most [`MEMORY`]
//! heights; a dead one, blamed again at each return, comes back ever more rarely. New
//! views' primaries stay on the plain rotation (see `Pbft::primary`).
//!
//! Safety does not rest on who leads: a leader only proposes, and quorums decide. Leaders
//! chosen this way differ from the plain rotation only after view changes, which a quorum
//! certified.

use std::collections::BTreeMap;

use bincode::{Decode, Encode};

use crate::consensus::LeaderSchedule;
use crate::crypto::Address;
use crate::validators::ValidatorSet;

/// Heights a validator is passed over for after one blame: a few minutes at the couple of
/// hundred small blocks a second of a loaded chain, hours at an idle chain's one a second.
/// Being passed over costs a validator nothing but its turns (blocks carry no reward), and
/// a dead validator's every return costs the chain a view-change timeout (at 10,000
/// heights that was one stall of seconds every 50 s under load).
pub const WINDOW: u64 = 30_000;

/// Heights a blame is remembered for: the longest a validator is passed over.
pub const MEMORY: u64 = 300_000;

/// Most rounds blamed for one block: a long outage does not make executing a block long.
const MAX_BLAMED_ROUNDS: u64 = 64;

/// The blames that make validators skipped, as the ledger keeps them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Blames {
    /// The highest round of an executed block (0 at genesis).
    pub top_round: u64,
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
        let mut blamed = Vec::new();
        if let (true, Some(validators)) = (round > self.top_round, validators) {
            let schedule = LeaderSchedule::new(validators);
            let below = height.saturating_sub(1);
            blamed = self.leaders(&schedule, validators, height, round, below);
            blamed.pop();
        }
        self.top_round = self.top_round.max(round);
        self.blamed.extend(blamed.iter().map(|a| (height, *a)));
        let keep_above = height.saturating_sub(kept(checkpoint_interval));
        self.blamed.retain(|(h, _)| *h > keep_above);
        blamed
    }

    /// The leaders of `height` in each round from the chain's highest (`top_round`, or at
    /// most [`MAX_BLAMED_ROUNDS`] back) to `round`; the last leads `height` in `round`.
    /// Each round's leader is the rotation's with validators passed over: first those that
    /// failed `height` in the rounds before (the blames its block will record), the most
    /// failed first, then the latest; then those blamed at or below `below` (see
    /// [`Blames::skipped`]); while together they hold at most a third of stake. So a
    /// leader that keeps failing a height stops leading it, whoever else failed it once
    /// (a round whose primary was down fails whoever leads). Every input is chain state as
    /// of `below`, so every node asking with the same `below` gets the same leaders.
    pub fn leaders(
        &self,
        schedule: &LeaderSchedule,
        validators: &ValidatorSet,
        height: u64,
        round: u64,
        below: u64,
    ) -> Vec<Address> {
        let blamed = self.ranked(below, validators);
        let first = self
            .top_round
            .min(round)
            .max(round.saturating_sub(MAX_BLAMED_ROUNDS));
        // (times failed, last round failed, validator), the most failed and latest first.
        let mut failed: Vec<(u64, u64, Address)> = Vec::new();
        let mut leaders = Vec::new();
        for r in first..=round {
            let order = failed.iter().map(|(_, _, a)| a).chain(&blamed);
            let l = leader(
                schedule,
                height.saturating_add(r),
                &within_a_third(order, validators),
            );
            leaders.push(l);
            match failed.iter_mut().find(|(_, _, a)| *a == l) {
                Some(entry) => *entry = (entry.0 + 1, r, l),
                None => failed.push((1, r, l)),
            }
            failed.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        }
        leaders
    }

    /// The validators skipped for the height above `below`, from the blames at or below
    /// it: each blamed `n` times in the [`MEMORY`] up to it, within [`pass_over`]`(n)` of
    /// its last blame; the most blamed first (ties by address), while together they hold
    /// at most a third of `validators`' stake.
    pub fn skipped(&self, below: u64, validators: &ValidatorSet) -> Vec<Address> {
        within_a_third(self.ranked(below, validators).iter(), validators)
    }

    /// The validators blamed within their pass-over at `below`, the most blamed first.
    fn ranked(&self, below: u64, validators: &ValidatorSet) -> Vec<Address> {
        let from = below.saturating_sub(MEMORY);
        // Per validator: how many blames, and the height of the last.
        let mut counts: BTreeMap<Address, (u64, u64)> = BTreeMap::new();
        for (height, address) in self
            .blamed
            .iter()
            .filter(|(h, a)| *h > from && *h <= below && validators.stake_of(a).is_some())
        {
            let (n, last) = counts.entry(*address).or_default();
            *n += 1;
            *last = *height;
        }
        let mut ranked: Vec<(u64, Address)> = counts
            .into_iter()
            .filter(|(_, (n, last))| below - last < pass_over(*n))
            .map(|(a, (n, _))| (n, a))
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked.into_iter().map(|(_, a)| a).collect()
    }
}

/// The `candidates`, in order, while together they hold at most a third of `validators`'
/// stake (so those left hold an honest validator).
fn within_a_third<'a>(
    candidates: impl Iterator<Item = &'a Address>,
    validators: &ValidatorSet,
) -> Vec<Address> {
    let mut skipped = Vec::new();
    for address in candidates {
        if skipped.contains(address) {
            continue;
        }
        skipped.push(*address);
        if validators.has_honest(validators.weight(&skipped)) {
            skipped.pop();
        }
    }
    skipped
}

/// Heights a validator blamed `n` times (at least once) in the last [`MEMORY`] is passed
/// over for after its last blame: [`WINDOW`], doubled by each blame after the first, at
/// most [`MEMORY`].
pub fn pass_over(n: u64) -> u64 {
    let doublings = n.saturating_sub(1).min(u64::from(u64::BITS - 1));
    WINDOW.saturating_mul(1u64 << doublings).min(MEMORY)
}

/// Blames kept below the executed height: the [`MEMORY`] below the lowest height a node
/// may still ask about (execution can run up to two intervals past the low watermark, the
/// floor of every height in flight), with four intervals to spare.
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
