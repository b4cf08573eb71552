//! What the pool forgets when blocks commit.
//!
//! Usually a block holds, for each of its senders with transactions here, exactly the next
//! ones held here, and all of them apply. Then they leave and nothing else needs a second
//! look: only a sender's own transactions take from its balance and its stake, and what the
//! block credited others never counted. Anything else (a sender's transaction that is not
//! its next one held here, one that failed, a creation of an account that a pending
//! creation also names) makes every pending transaction be checked again. Either way the
//! pool ends as a full re-check would leave it; the quick way costs the block's size, not
//! the pool's, which is what keeps a backlog from slowing every commit.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{Pool, FUTURE_WINDOW, RECENT_COMMITTED};
use crate::crypto::{Address, Hash};
use crate::ledger::Ledger;
use crate::tx::{Transaction, TxKind};

impl Pool {
    /// Brings the pool up to date after blocks commit: `committed` are their transactions
    /// and `ledger` the state after them. Committed transactions leave the pool and those
    /// whose nonce the ledger consumed are remembered as recently committed. (One that failed
    /// without consuming its nonce is not, so its sender may submit it again.) One that
    /// failed ahead of its turn (its nonce is above the sender's next: a block before it,
    /// holding the sender's earlier nonces, was replaced at a view change) stays, to be
    /// proposed again once those commit; its client was told it was admitted and will not
    /// send it again. Every other pending transaction still applies after the new state, in
    /// order; one whose earlier nonces are gone waits for them (as a transaction from gossip
    /// would), and those that no longer apply (stale nonce, funds gone, account created by
    /// someone else) are dropped. Waiting transactions whose nonce is now used, or that
    /// waited longer than [`super::Limits::future_ttl_ms`] by `now_ms`, are dropped; the
    /// rest are promoted if their turn came.
    pub fn on_commit(&mut self, committed: &[Transaction], ledger: &Ledger, now_ms: u64) {
        self.commit(committed, ledger, now_ms, true);
    }

    /// [`Pool::on_commit`]; with `quick` false every pending transaction is checked again
    /// even when the commit does not need it (the reference the quick way is tested against).
    fn commit(&mut self, committed: &[Transaction], ledger: &Ledger, now_ms: u64, quick: bool) {
        let hashes: Vec<Hash> = committed.iter().map(Transaction::hash).collect();
        let mut committed_hashes = HashSet::with_capacity(committed.len());
        for (tx, hash) in committed.iter().zip(&hashes) {
            let next = ledger.account(&tx.body().from).map(|a| a.nonce);
            if next.is_some_and(|next| next < tx.body().nonce) {
                continue;
            }
            committed_hashes.insert(*hash);
            if next.is_some_and(|next| next > tx.body().nonce) {
                self.remember(*hash);
            }
        }
        self.in_flight.retain(|h| !committed_hashes.contains(h));
        if quick && self.commits_in_order(committed, &hashes, ledger) {
            for hash in &hashes {
                if let Some(seq) = self.by_hash.get(hash).copied() {
                    self.remove_pending(seq);
                }
            }
            self.refresh_waiting(ledger, now_ms);
        } else {
            self.recheck(&committed_hashes, ledger, now_ms);
        }
        let senders: BTreeSet<Address> = self.future.keys().map(|(a, _)| *a).collect();
        for sender in senders {
            self.promote(sender, ledger);
        }
    }

    /// Whether `committed` (with their `hashes`) leave the pool without a re-check: each
    /// sender with transactions here committed exactly its first ones held here, in order,
    /// and all applied (the ledger's nonce is past the last); no other sender created an
    /// account that a pending creation names.
    fn commits_in_order(
        &self,
        committed: &[Transaction],
        hashes: &[Hash],
        ledger: &Ledger,
    ) -> bool {
        let mut taken: HashMap<Address, usize> = HashMap::new();
        for (tx, hash) in committed.iter().zip(hashes) {
            let body = tx.body();
            let Some(sender) = self.senders.get(&body.from) else {
                match body.kind {
                    TxKind::CreateAccount { new_account, .. }
                        if self.created.contains_key(&new_account) =>
                    {
                        return false
                    }
                    _ => continue,
                }
            };
            let k = taken.entry(body.from).or_insert(0);
            let held = sender.seqs.get(*k).and_then(|seq| self.pending.get(seq));
            if held.is_none_or(|entry| entry.hash != *hash) {
                return false;
            }
            *k += 1;
        }
        taken.iter().all(|(from, &k)| {
            let last = self.senders[from].seqs[k - 1];
            let nonce = self.pending[&last].tx.body().nonce;
            ledger
                .account(from)
                .is_some_and(|a| Some(a.nonce) == nonce.checked_add(1))
        })
    }

    /// Checks every pending transaction again against `ledger`, in admission order, leaving
    /// out `committed` and the recently committed.
    fn recheck(&mut self, committed: &HashSet<Hash>, ledger: &Ledger, now_ms: u64) {
        let old = std::mem::take(&mut self.pending);
        self.by_hash.clear();
        self.senders.clear();
        self.created.clear();
        self.by_count.clear();
        self.bytes = self.future.values().map(|w| w.entry.size).sum();
        self.next_seq = 0;
        self.refresh_waiting(ledger, now_ms);
        for entry in old.into_values() {
            if committed.contains(&entry.hash) || self.recent_set.contains(&entry.hash) {
                continue;
            }
            // A refusal drops the transaction: that is the point of checking again.
            let nonce = entry.tx.body().nonce;
            match self.next_nonce(&entry.tx.body().from, ledger) {
                Some(next) if nonce > next && nonce - next <= FUTURE_WINDOW => {
                    let _ = self.wait(entry, now_ms);
                }
                _ => {
                    let _ = self.admit_checked(entry, ledger);
                }
            }
        }
    }

    /// Drops the waiting transactions whose nonce `ledger` has used, or that waited longer
    /// than [`super::Limits::future_ttl_ms`] by `now_ms`.
    fn refresh_waiting(&mut self, ledger: &Ledger, now_ms: u64) {
        let ttl = self.limits.future_ttl_ms;
        let mut dropped = Vec::new();
        self.future.retain(|(sender, nonce), w| {
            let used = ledger.account(sender).is_none_or(|a| a.nonce > *nonce);
            let keep = !used && now_ms.saturating_sub(w.arrived_ms) <= ttl;
            if !keep {
                dropped.push((w.entry.hash, w.entry.size));
            }
            keep
        });
        for (hash, size) in dropped {
            self.future_hashes.remove(&hash);
            self.bytes -= size;
        }
    }

    /// Adds a committed hash to the bounded memory of recent commits.
    fn remember(&mut self, hash: Hash) {
        if !self.recent_set.insert(hash) {
            return;
        }
        self.recent.push_back(hash);
        while self.recent.len() > RECENT_COMMITTED {
            if let Some(old) = self.recent.pop_front() {
                self.recent_set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::genesis::{ConsensusParams, Genesis, GenesisAccount};
    use crate::mempool::Limits;
    use crate::tx::TxBody;

    const CHAIN: &str = "commit-test";
    const MIN_STAKE: u128 = 1_000;

    fn key(seed: u8) -> Keypair {
        Keypair::from_seed([seed; 32])
    }

    /// A generator of small numbers from a seed (xorshift): the same run for the same seed.
    struct Dice(u64);

    impl Dice {
        fn roll(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// What the pool holds, without its admission numbers (a re-check renumbers them).
    fn contents(pool: &Pool) -> String {
        let mut senders: Vec<String> = pool
            .senders
            .iter()
            .map(|(a, s)| {
                let held: Vec<Hash> = s.seqs.iter().map(|q| pool.pending[q].hash).collect();
                format!("{a:?} {held:?} {} {} {}", s.spent, s.staked, s.unstaked)
            })
            .collect();
        senders.sort();
        let mut created: Vec<_> = pool.created.iter().collect();
        created.sort();
        let mut by_count: Vec<_> = pool.by_count.iter().collect();
        by_count.sort();
        let order: Vec<Hash> = pool.pending.values().map(|e| e.hash).collect();
        let waiting: Vec<_> = pool
            .future
            .iter()
            .map(|(k, w)| (*k, w.entry.hash))
            .collect();
        let mut in_flight: Vec<_> = pool.in_flight.iter().collect();
        in_flight.sort();
        assert_eq!(pool.by_hash.len(), pool.pending.len());
        assert_eq!(pool.future_hashes.len(), pool.future.len());
        format!(
            "{order:?}\n{senders:?}\n{created:?}\n{by_count:?}\n{waiting:?}\n{in_flight:?}\n{} {:?}",
            pool.bytes, pool.recent
        )
    }

    /// Random admissions and commits (the pool's own batches, in its order or another
    /// leader's, with others' transactions that conflict with what it holds, failures,
    /// creations of accounts it expects to be created): after each commit the quick way
    /// leaves exactly what a full re-check does.
    /// Mutations caught: `commits_in_order` without its final nonce check (the quick way
    /// then keeps a sender's transactions after one of its committed ones failed), or
    /// without its check of other senders' creations.
    #[test]
    fn the_quick_way_leaves_what_a_full_recheck_leaves() {
        let seeds: Vec<u8> = (1..=6).collect();
        let accounts = seeds
            .iter()
            .map(|&s| GenesisAccount {
                name: format!("a{s}"),
                address: key(s).address(),
                balance: 60,
                stake: if s == 1 { MIN_STAKE } else { 0 },
            })
            .collect();
        let genesis = Genesis {
            chain_id: CHAIN.into(),
            genesis_time_ms: 0,
            min_stake: MIN_STAKE,
            epoch_length: 1_000,
            consensus: ConsensusParams::default(),
            accounts,
        };
        let (mut quick_commits, mut commits) = (0, 0);
        for run in 0..300u64 {
            let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (run + 1));
            let mut ledger = Ledger::from_genesis(&genesis);
            let limits = Limits {
                max_txs: 24,
                max_future: 6,
                ..Limits::default()
            };
            let mut pool = Pool::new(limits);
            let mut now = 0;
            for _ in 0..60 {
                now += dice.roll(400);
                let from = seeds[dice.roll(6) as usize];
                let next = ledger.account(&key(from).address()).map_or(0, |a| a.nonce);
                let held = pool.pending_count(&key(from).address()) as u64;
                let target = key(7 + dice.roll(3) as u8).address();
                let kind = match dice.roll(6) {
                    0 => TxKind::CreateAccount {
                        new_account: target,
                        amount: 1 + u128::from(dice.roll(5)),
                    },
                    1 => TxKind::Stake {
                        amount: u128::from(dice.roll(3)) * MIN_STAKE / 2 + 1,
                    },
                    2 => TxKind::Unstake {
                        amount: 1 + u128::from(dice.roll(MIN_STAKE as u64)),
                    },
                    3 => TxKind::Transfer {
                        to: target,
                        amount: 1 + u128::from(dice.roll(20)),
                    },
                    _ => TxKind::Transfer {
                        to: key(seeds[dice.roll(6) as usize]).address(),
                        amount: 1 + u128::from(dice.roll(30)),
                    },
                };
                let nonce = match dice.roll(5) {
                    0 => next,
                    1 => next + held + 1 + dice.roll(3),
                    _ => next + held,
                };
                let body = TxBody {
                    from: key(from).address(),
                    nonce,
                    kind,
                };
                let tx = body.sign(&key(from), CHAIN);
                if dice.roll(3) > 0 {
                    let _ = pool.admit(tx, true, &ledger, now);
                    continue;
                }
                // A block: some of what the pool would propose, maybe with this transaction
                // (admitted elsewhere) before or after it.
                let all = pool.batch(usize::MAX, &HashSet::new(), &HashSet::new());
                let exclude: HashSet<Hash> = all
                    .iter()
                    .filter(|_| dice.roll(5) == 0)
                    .map(Transaction::hash)
                    .collect();
                let mut block = pool.propose(1 + dice.roll(8) as usize, &exclude, &HashSet::new());
                match dice.roll(4) {
                    0 => block.insert(0, tx),
                    1 => block.push(tx),
                    _ => {}
                }
                if dice.roll(3) == 0 {
                    // Another leader's order: each sender's nonces in turn, senders by
                    // address, so a transfer may come before the creation of its recipient.
                    block.sort_by_key(|tx| tx.body().from);
                }
                for tx in &block {
                    let _ = ledger.apply_tx(tx);
                }
                let mut reference = pool.clone();
                reference.commit(&block, &ledger, now, false);
                let hashes: Vec<Hash> = block.iter().map(Transaction::hash).collect();
                quick_commits += usize::from(pool.commits_in_order(&block, &hashes, &ledger));
                commits += 1;
                pool.on_commit(&block, &ledger, now);
                assert_eq!(contents(&pool), contents(&reference), "run {run}");
            }
        }
        eprintln!("{quick_commits} of {commits} commits took the quick way");
        assert!(quick_commits * 3 > commits, "the quick way is rarely taken");
        assert!(quick_commits < commits, "the full re-check is never taken");
    }
}
