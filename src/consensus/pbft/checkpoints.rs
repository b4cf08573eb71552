//! Checkpoints: every `checkpoint_interval` heights validators sign their state root; a
//! quorum on one root makes it stable, which moves the low watermark and lets everything
//! below it go. A node that sees the network far ahead learns where to sync to.

use std::collections::BTreeMap;

use crate::certificate::{Certificate, Signed};
use crate::crypto::{Address, Hash};
use crate::validators::ValidatorSet;

use super::super::io::{Record, Target};
use super::super::message::{CheckpointCertificate, CheckpointTarget, Message};
use super::{genesis_checkpoint, Pbft};

/// Checkpoint votes kept per validator above the window: enough to see where the network
/// is, too few to fill memory.
const AHEAD_VOTES: usize = 4;

impl Pbft {
    pub(super) fn on_executed(
        &mut self,
        height: u64,
        state_root: Hash,
        next: Option<(u64, ValidatorSet)>,
    ) {
        self.executed = self.executed.max(height);
        if let Some((epoch, validators)) = next {
            self.add_epoch(epoch, validators);
            let heights: Vec<u64> = self.checkpoints.keys().copied().collect();
            for height in heights {
                self.try_stable(height);
            }
        }
        // Fetched blocks of an epoch whose validators were unknown may go on now.
        if !self.fetched.is_empty() {
            self.feed_fetched();
        }
        let interval = self.cfg.params.checkpoint_interval;
        if height % interval != 0 || height <= self.low() || !self.is_validator() {
            return;
        }
        let Some(key) = self.cfg.key.as_ref() else {
            return;
        };
        let vote = Signed::sign(
            CheckpointTarget { height, state_root },
            key,
            &self.cfg.chain_id,
        );
        self.record_checkpoint_vote(&vote);
        self.send(Target::All, Message::Checkpoint(vote));
    }

    pub(super) fn on_checkpoint(&mut self, from: Address, vote: Signed<CheckpointTarget>) {
        let height = vote.payload.height;
        if height <= self.low() {
            // The sender is behind: show it the way forward, within its allowance.
            if self.low() > 0 && self.is_member(&from) && self.answers.take(from, self.period()) {
                let proof = Message::CheckpointProof(self.stable.clone());
                self.send(Target::One(from), proof);
            }
            return;
        }
        // Far above the window the validator set may not be known yet; a current validator
        // may still say where the network is, which is how a lagging node learns to sync.
        let member = self
            .validators_at(height)
            .or_else(|| self.epoch().map(|e| &e.validators))
            .is_some_and(|v| v.stake_of(&vote.signer).is_some());
        let fresh = !self
            .checkpoints
            .get(&height)
            .is_some_and(|votes| votes.contains_key(&vote.signer));
        if height % self.cfg.params.checkpoint_interval == 0
            && member
            && fresh
            && vote.verify(&self.cfg.chain_id)
        {
            self.record_checkpoint_vote(&vote);
        }
    }

    /// Keeps a checkpoint vote, and makes the checkpoint stable if a quorum now agrees.
    /// Above the window a validator's votes are kept for its few highest heights only.
    fn record_checkpoint_vote(&mut self, vote: &Signed<CheckpointTarget>) {
        let target = vote.payload;
        self.checkpoints
            .entry(target.height)
            .or_default()
            .entry(vote.signer)
            .or_insert((target.state_root, vote.signature));
        let top = self.window_top();
        let above: Vec<u64> = self
            .checkpoints
            .range(top + 1..)
            .filter(|(_, votes)| votes.contains_key(&vote.signer))
            .map(|(height, _)| *height)
            .collect();
        if above.len() > AHEAD_VOTES {
            if let Some(votes) = self.checkpoints.get_mut(&above[0]) {
                votes.remove(&vote.signer);
            }
            self.checkpoints.retain(|_, votes| !votes.is_empty());
        }
        self.try_stable(target.height);
    }

    /// Makes the checkpoint at `height` stable if validators holding a quorum of stake
    /// agree on its state root.
    fn try_stable(&mut self, height: u64) {
        let (Some(validators), Some(votes)) =
            (self.validators_at(height), self.checkpoints.get(&height))
        else {
            return;
        };
        let mut roots: Vec<Hash> = votes.values().map(|(root, _)| *root).collect();
        roots.sort();
        roots.dedup();
        for state_root in roots {
            let agreeing: Vec<_> = votes
                .iter()
                .filter(|(signer, (root, _))| {
                    *root == state_root && validators.stake_of(signer).is_some()
                })
                .map(|(signer, (_, signature))| (*signer, *signature))
                .collect();
            if validators.is_quorum(validators.weight(agreeing.iter().map(|(s, _)| s))) {
                let target = CheckpointTarget { height, state_root };
                self.set_stable(Certificate::new(target, agreeing));
                return;
            }
        }
    }

    /// The highest checkpoint height above this node's reach that validators holding more
    /// than a third of stake (so at least one honest) claim: proof the network is ahead.
    pub(super) fn ahead_height(&self) -> Option<u64> {
        let validators = &self.epoch()?.validators;
        let reach = self.committed.max(self.window_top());
        let mut claims: BTreeMap<Address, u64> = BTreeMap::new();
        for (height, votes) in self.checkpoints.range(reach + 1..) {
            for signer in votes.keys() {
                claims.insert(*signer, *height);
            }
        }
        let mut by_height: Vec<(u64, Address)> = claims.into_iter().map(|(a, h)| (h, a)).collect();
        by_height.sort_by(|a, b| b.cmp(a));
        let mut signers = Vec::new();
        for (height, signer) in by_height {
            signers.push(signer);
            if validators.has_honest(validators.weight(&signers)) {
                return Some(height);
            }
        }
        None
    }

    /// Sends again this node's checkpoint votes above the low watermark. A checkpoint whose
    /// votes were lost would otherwise never become stable; at an epoch's end, where the
    /// window drains and waits for exactly that checkpoint, the chain would stop.
    pub(super) fn resend_checkpoint_votes(&mut self) {
        let Some(me) = self.me else { return };
        let own: Vec<Signed<CheckpointTarget>> = self
            .checkpoints
            .iter()
            .filter_map(|(height, votes)| {
                votes.get(&me).map(|(state_root, signature)| Signed {
                    payload: CheckpointTarget {
                        height: *height,
                        state_root: *state_root,
                    },
                    signer: me,
                    signature: *signature,
                })
            })
            .collect();
        for vote in own {
            self.send(Target::All, Message::Checkpoint(vote));
        }
    }

    pub(super) fn on_checkpoint_proof(&mut self, certificate: CheckpointCertificate) {
        if certificate.payload.height > self.low() && self.checkpoint_valid(&certificate) {
            self.set_stable(certificate);
        }
    }

    /// Whether `certificate` proves a stable checkpoint: the genesis one, this node's own
    /// stable checkpoint (compared whole), or a quorum of valid signatures at a multiple of
    /// the interval.
    pub(super) fn checkpoint_valid(&self, certificate: &CheckpointCertificate) -> bool {
        let height = certificate.payload.height;
        if height == 0 {
            return *certificate == genesis_checkpoint(self.cfg.genesis_state_root);
        }
        if *certificate == self.stable {
            return true;
        }
        height % self.cfg.params.checkpoint_interval == 0
            && self
                .validators_at(height)
                .is_some_and(|v| certificate.verify(&self.cfg.chain_id, v).is_ok())
    }

    /// Moves the low watermark up to a proven checkpoint and forgets what lies below it.
    pub(super) fn set_stable(&mut self, certificate: CheckpointCertificate) {
        let height = certificate.payload.height;
        if height <= self.low() {
            return;
        }
        self.actions
            .persist
            .push(Record::Stable(certificate.clone()));
        self.actions.prune_below = Some(height);
        self.stable = certificate;
        self.slots = self.slots.split_off(&(height + 1));
        self.checkpoints = self.checkpoints.split_off(&(height + 1));
        self.voted.retain(|&(_, h, _), _| h > height);
        self.verified.retain(|_, h| *h > height);
        self.proposed_to = self.proposed_to.max(height);
        // Keep the epoch of the checkpoint itself: view changes carry it as their proof,
        // and it is checked against that epoch's validators (the one just ended, when the
        // checkpoint is an epoch's last block).
        let keep_from = self.epoch_of(self.committed.min(height));
        self.epochs = self.epochs.split_off(&keep_from);
        if height > self.committed {
            self.request_sync(height);
        }
        self.replay_early();
    }
}
