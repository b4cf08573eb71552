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
        self.refresh_waiting(ledger, now_ms);
        if quick && self.commits_in_order(committed, &hashes, ledger) {
            for hash in &hashes {
                if let Some(seq) = self.by_hash.get(hash).copied() {
                    self.remove_pending(seq);
                }
            }
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
    /// out `committed` and the recently committed (the waiting ones were refreshed already).
    fn recheck(&mut self, committed: &HashSet<Hash>, ledger: &Ledger, now_ms: u64) {
        let old = std::mem::take(&mut self.pending);
        self.by_hash.clear();
        self.senders.clear();
        self.created.clear();
        self.by_count.clear();
        self.bytes = self.future.values().map(|w| w.entry.size).sum();
        self.next_seq = 0;
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
    use crate::amount::Amount;
    use crate::crypto::Keypair;
    use crate::genesis::{ConsensusParams, Genesis, GenesisAccount};
    use crate::mempool::Limits;
    use crate::tx::TxBody;

    const CHAIN: &str = "commit-test";
    const MIN_STAKE: Amount = 1_000;

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

        fn pick<T: Copy>(&mut self, from: &[T]) -> T {
            from[self.roll(from.len() as u64) as usize]
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
        let by_count: Vec<_> = pool.by_count.iter().collect();
        let order: Vec<Hash> = pool.pending.values().map(|e| e.hash).collect();
        let waiting: Vec<_> = pool
            .future
            .iter()
            .map(|(k, w)| (*k, w.entry.hash))
            .collect();
        let mut in_flight: Vec<_> = pool.in_flight.iter().collect();
        in_flight.sort();
        format!(
            "{order:?}\n{senders:?}\n{created:?}\n{by_count:?}\n{waiting:?}\n{in_flight:?}\n{} {:?}",
            pool.bytes, pool.recent
        )
    }

    /// What every field of the pool must agree on, derived again from the transactions.
    fn assert_consistent(pool: &Pool) {
        let by_hash: HashMap<Hash, u64> = pool.pending.iter().map(|(q, e)| (e.hash, *q)).collect();
        assert_eq!(pool.by_hash, by_hash);
        let waiting: HashSet<Hash> = pool.future.values().map(|w| w.entry.hash).collect();
        assert_eq!(pool.future_hashes, waiting);
        let bytes: usize = pool.pending.values().map(|e| e.size).sum::<usize>()
            + pool.future.values().map(|w| w.entry.size).sum::<usize>();
        assert_eq!(pool.bytes, bytes);
        assert_eq!(pool.recent_set, pool.recent.iter().copied().collect());
        let mut created: HashMap<Address, usize> = HashMap::new();
        let mut sums: HashMap<Address, (Vec<u64>, Amount, Amount, Amount)> = HashMap::new();
        for (seq, entry) in &pool.pending {
            let body = entry.tx.body();
            let sum = sums.entry(body.from).or_default();
            sum.0.push(*seq);
            let amount = body.kind.amount();
            match body.kind {
                TxKind::Transfer { .. } => sum.1 += amount,
                TxKind::CreateAccount { new_account, .. } => {
                    sum.1 += amount;
                    *created.entry(new_account).or_default() += 1;
                }
                TxKind::Stake { .. } => {
                    sum.1 += amount;
                    sum.2 += amount;
                }
                TxKind::Unstake { .. } => sum.3 += amount,
            }
        }
        assert_eq!(pool.created, created);
        let held: HashMap<Address, (Vec<u64>, Amount, Amount, Amount)> = pool
            .senders
            .iter()
            .map(|(a, s)| {
                (
                    *a,
                    (
                        s.seqs.iter().copied().collect(),
                        s.spent,
                        s.staked,
                        s.unstaked,
                    ),
                )
            })
            .collect();
        assert_eq!(held, sums);
        let counts: BTreeSet<(usize, Address)> = pool
            .senders
            .iter()
            .map(|(a, s)| (s.seqs.len(), *a))
            .collect();
        assert_eq!(pool.by_count, counts);
    }

    /// Random admissions and commits (the pool's own batches, in its order or another
    /// leader's, with others' transactions that conflict with what it holds, duplicates,
    /// failures, creations of accounts it expects to be created, stakes and unstakes, a pool
    /// full enough to push transactions out, waiting transactions that expire or whose
    /// nonce a block uses): after each commit the quick way leaves exactly what a full
    /// re-check does, both for this commit and over the whole run (a pool that always
    /// re-checks runs beside it), and every field of the pool agrees with its transactions.
    /// Mutations caught: `commits_in_order` without its final nonce check (the quick way
    /// then keeps a sender's transactions after one of its committed ones failed), or
    /// without its check of other senders' creations; `remove_pending` not taking an
    /// unstake out of its sender's sums.
    #[test]
    fn the_quick_way_leaves_what_a_full_recheck_leaves() {
        let seeds: Vec<u8> = (1..=6).collect();
        let accounts = seeds
            .iter()
            .map(|&s| GenesisAccount {
                name: format!("a{s}"),
                address: key(s).address(),
                balance: 4_000,
                stake: if s <= 2 { 2 * MIN_STAKE } else { 0 },
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
        let limits = Limits {
            max_txs: 12,
            max_future: 6,
            future_ttl_ms: 1_500,
            ..Limits::default()
        };
        let (mut quick_commits, mut commits) = (0, 0);
        for run in 0..300u64 {
            let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (run + 1));
            let mut ledger = Ledger::from_genesis(&genesis);
            let mut pool = Pool::new(limits);
            let mut always = Pool::new(limits);
            let mut now = 0;
            for _ in 0..60 {
                now += dice.roll(400);
                // One sender makes half the draws, so that the pool fills and pushes out.
                let from = if dice.roll(2) == 0 {
                    1
                } else {
                    dice.pick(&seeds)
                };
                let next = ledger.account(&key(from).address()).map_or(0, |a| a.nonce);
                let held = pool.pending_count(&key(from).address()) as u64;
                let target = key(7 + dice.roll(3) as u8).address();
                let kind = match dice.roll(6) {
                    0 => TxKind::CreateAccount {
                        new_account: target,
                        amount: 1 + Amount::from(dice.roll(5)),
                    },
                    1 => TxKind::Stake {
                        amount: dice.pick(&[1, 500, 1_000, 1_500]),
                    },
                    2 => TxKind::Unstake {
                        amount: dice.pick(&[1, 500, 1_000, 1_001, 2_000]),
                    },
                    3 => TxKind::Transfer {
                        to: target,
                        amount: 1 + Amount::from(dice.roll(20)),
                    },
                    _ => TxKind::Transfer {
                        to: key(dice.pick(&seeds)).address(),
                        amount: 1 + Amount::from(dice.roll(900)),
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
                    let admitted = pool.admit(tx.clone(), true, &ledger, now);
                    assert_eq!(always.admit(tx, true, &ledger, now), admitted);
                    assert_consistent(&pool);
                    continue;
                }
                // A block: some of what the pool would propose, maybe with this transaction
                // (admitted elsewhere) before or after it, maybe twice the first one.
                let all = pool.batch(usize::MAX, &HashSet::new(), &HashSet::new());
                let exclude: HashSet<Hash> = all
                    .iter()
                    .filter(|_| dice.roll(5) == 0)
                    .map(Transaction::hash)
                    .collect();
                let max = 1 + dice.roll(6) as usize;
                let mut block = pool.propose(max, &exclude, &HashSet::new());
                assert_eq!(always.propose(max, &exclude, &HashSet::new()), block);
                match dice.roll(4) {
                    0 => block.insert(0, tx),
                    1 => block.push(tx),
                    _ => {}
                }
                if dice.roll(6) == 0 {
                    block.extend(block.first().cloned());
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
                always.commit(&block, &ledger, now, false);
                let hashes: Vec<Hash> = block.iter().map(Transaction::hash).collect();
                quick_commits += usize::from(pool.commits_in_order(&block, &hashes, &ledger));
                commits += 1;
                pool.on_commit(&block, &ledger, now);
                assert_consistent(&pool);
                assert_eq!(contents(&pool), contents(&reference), "run {run}");
                assert_eq!(contents(&pool), contents(&always), "run {run}");
            }
        }
        eprintln!("{quick_commits} of {commits} commits took the quick way");
        assert!(quick_commits * 3 > commits, "the quick way is rarely taken");
        assert!(quick_commits < commits, "the full re-check is never taken");
    }
}
