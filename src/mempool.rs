//! The mempool's pure logic: which transactions a node admits, which it proposes, and what it
//! forgets when a block commits.
//!
//! Admission promises one thing: every admitted transaction would apply if the pending
//! transactions were executed in the order [`Pool::batch`] gives, starting from committed
//! state. So each check is made against committed state plus the sender's own pending
//! transactions, and only on the safe side: what pending transactions would spend is
//! subtracted, what they would credit (a transfer in, an unstake's tokens) is never counted,
//! since another sender's transaction may be dropped and an excluded one holds back what
//! follows it. A block may still carry a transaction that fails (another node admitted a
//! conflicting one first); the ledger records that and nothing breaks.
//!
//! Limits, as go-ethereum's txpool has them: no sender has a ceiling while the pool has room;
//! when it is full, a sender holding no more than its equal share pushes out the highest
//! nonce of a sender holding more (the largest first), so every sender is guaranteed an
//! equal share and none can starve the rest. A transaction already handed to a proposal in flight is never
//! pushed out. A transaction whose nonce is ahead of the sender's next (by at most
//! [`FUTURE_WINDOW`]) waits apart, unchecked against state, until the gap fills, whatever
//! order gossip brings nonces in; it expires after [`Limits::future_ttl_ms`].
//!
//! Signatures are not checked here: the caller verifies them in batches off the actor thread
//! and passes the result in. Time comes in as `now_ms`. Nothing here touches a clock, a
//! socket or a disk.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use thiserror::Error;

use crate::amount::Amount;
use crate::crypto::{Address, Hash};
use crate::encoding;
use crate::ledger::{check_stake, Account, Ledger, TxError};
use crate::tx::{Transaction, TxFormatError, TxKind};

mod commit;

/// How many committed transaction hashes the pool remembers, so that a replay arriving just
/// after its commit is refused as `duplicate` rather than only as a stale nonce.
pub const RECENT_COMMITTED: usize = 100_000;

/// How far ahead of a sender's next nonce a transaction may be and still wait in the pool.
pub const FUTURE_WINDOW: u64 = 64;

/// Bounds on what the pool holds, so that no client (or flood of gossip) can make a node
/// hold unbounded memory or propose unbounded work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most pending transactions in all.
    pub max_txs: usize,
    /// Most bytes of canonical encoding of all transactions held (pending and waiting).
    pub max_bytes: usize,
    /// Most transactions waiting for an earlier nonce, all senders together.
    pub max_future: usize,
    /// How long a transaction may wait for an earlier nonce before it is dropped.
    pub future_ttl_ms: u64,
}

impl Default for Limits {
    /// 50 000 pending transactions, 16 MiB, 1 024 waiting for 60 s at most.
    fn default() -> Limits {
        Limits {
            max_txs: 50_000,
            max_bytes: 16 * 1024 * 1024,
            max_future: 1024,
            future_ttl_ms: 60_000,
        }
    }
}

/// Which of the pool's [`Limits`] a refused transaction would have broken.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum Full {
    /// [`Limits::max_txs`], and the sender holds at least as many as anyone.
    #[error(
        "it holds its most transactions and this sender already has its share; \
         retry after the next block"
    )]
    Transactions,
    /// [`Limits::max_bytes`], and the sender holds at least as many as anyone.
    #[error(
        "it holds its most bytes and this sender already has its share; \
         retry after the next block"
    )]
    Bytes,
    /// [`Limits::max_future`]: too many transactions wait for earlier nonces.
    #[error(
        "too many transactions wait for earlier nonces; send the missing nonces first, \
         or retry after the next block"
    )]
    Future,
    /// Too many transactions wait for their signature check (the node's own queue, not
    /// the pool's: see the node's mempool actor).
    #[error("too many transactions wait for their signature check; retry shortly")]
    Checking,
}

/// Why a transaction was not admitted. Each maps to one admin protocol error code
/// ([`AdmitError::code`]), which is what a client sees.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum AdmitError {
    /// The caller's signature check failed.
    #[error("the signature does not verify")]
    InvalidSignature,
    /// The transaction is malformed on its own (zero amount, sent to itself).
    #[error(transparent)]
    Format(TxFormatError),
    /// The very same transaction is already pending, or was recently committed.
    #[error("transaction {0} is already pending or committed")]
    Duplicate(Hash),
    /// It does not apply on top of committed state and the sender's pending transactions.
    #[error(transparent)]
    Rejected(TxError),
    /// The pool is at one of its limits.
    #[error("the mempool is full: {0}")]
    MempoolFull(Full),
}

impl AdmitError {
    /// The admin protocol's error code for this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            AdmitError::InvalidSignature => "invalid_signature",
            AdmitError::Format(e) => e.code(),
            AdmitError::Duplicate(_) => "duplicate",
            AdmitError::Rejected(e) => e.code(),
            AdmitError::MempoolFull(_) => "mempool_full",
        }
    }
}

impl From<TxError> for AdmitError {
    fn from(e: TxError) -> AdmitError {
        AdmitError::Rejected(e)
    }
}

/// One pending transaction and what the pool derived from it once.
#[derive(Clone, Debug)]
struct Entry {
    tx: Transaction,
    hash: Hash,
    /// Length of its canonical encoding.
    size: usize,
}

/// What one sender's pending transactions do, in sum.
#[derive(Clone, Debug, Default)]
struct SenderState {
    /// Admission numbers of its pending transactions, in nonce order.
    seqs: VecDeque<u64>,
    /// Balance its pending transactions take (transfers, creations, stakes).
    spent: Amount,
    /// Stake its pending stakes add.
    staked: Amount,
    /// Stake its pending unstakes take.
    unstaked: Amount,
}

/// The mempool's contents and rules; the mempool actor owns one and feeds it transactions,
/// committed blocks and requests for a batch to propose.
#[derive(Clone, Debug)]
pub struct Pool {
    limits: Limits,
    /// Pending transactions by admission number: oldest first.
    pending: BTreeMap<u64, Entry>,
    /// Admission number of each pending transaction.
    by_hash: HashMap<Hash, u64>,
    /// Every sender with pending transactions.
    senders: HashMap<Address, SenderState>,
    /// Accounts a pending creation opens, with how many pending creations name each (at
    /// most one is admitted, but a count keeps removal exact whatever happens).
    created: HashMap<Address, usize>,
    /// Senders by how many transactions they have pending, for pushing out the largest.
    by_count: BTreeSet<(usize, Address)>,
    /// Transactions waiting for an earlier nonce of their sender, by (sender, nonce).
    future: BTreeMap<(Address, u64), Waiting>,
    /// Hashes of the waiting transactions.
    future_hashes: HashSet<Hash>,
    /// Transactions handed to proposals in flight (as of the last batch): never pushed out.
    in_flight: HashSet<Hash>,
    /// Sum of the sizes of all transactions held, pending and waiting.
    bytes: usize,
    /// The next admission number.
    next_seq: u64,
    /// Recently committed hashes, oldest first, and the same as a set.
    recent: VecDeque<Hash>,
    recent_set: HashSet<Hash>,
}

/// A transaction waiting for an earlier nonce of its sender.
#[derive(Clone, Debug)]
struct Waiting {
    entry: Entry,
    /// When it arrived, for expiry.
    arrived_ms: u64,
}

/// What admitting a transaction changes in its sender's sums.
struct Delta {
    spent: Amount,
    staked: Amount,
    unstaked: Amount,
}

impl Pool {
    /// An empty pool with these limits.
    pub fn new(limits: Limits) -> Pool {
        Pool {
            limits,
            pending: BTreeMap::new(),
            by_hash: HashMap::new(),
            senders: HashMap::new(),
            created: HashMap::new(),
            by_count: BTreeSet::new(),
            future: BTreeMap::new(),
            future_hashes: HashSet::new(),
            in_flight: HashSet::new(),
            bytes: 0,
            next_seq: 0,
            recent: VecDeque::new(),
            recent_set: HashSet::new(),
        }
    }

    /// The limits the pool enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// How many transactions are pending: what `STATUS` reports.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// How many transactions wait for an earlier nonce of their sender.
    pub fn waiting(&self) -> usize {
        self.future.len()
    }

    /// Whether nothing is pending, so there is nothing to propose.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The canonical encoding size of all transactions held, pending and waiting, bounded
    /// by [`Limits::max_bytes`].
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a transaction is held (pending or waiting): what `TX` answers `pending` from.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash) || self.future_hashes.contains(hash)
    }

    /// A pending transaction by hash, e.g. to answer a peer that asks for it.
    pub fn get(&self, hash: &Hash) -> Option<&Transaction> {
        let seq = self.by_hash.get(hash)?;
        self.pending.get(seq).map(|entry| &entry.tx)
    }

    /// How many transactions of `sender` are pending: with its committed nonce, the nonce
    /// its next transaction must carry (what `SEND` signs with).
    pub fn pending_count(&self, sender: &Address) -> usize {
        self.senders.get(sender).map_or(0, |s| s.seqs.len())
    }

    /// Whether a transaction was committed recently enough to be remembered.
    pub fn recently_committed(&self, hash: &Hash) -> bool {
        self.recent_set.contains(hash)
    }

    /// Admits `tx` if it would apply after committed state (`ledger`) and the sender's
    /// pending transactions, within the limits; or, if its nonce is ahead of the sender's
    /// next by at most [`FUTURE_WINDOW`], keeps it waiting for the gap to fill. Returns its
    /// hash. `verified` is the result of the caller's signature check
    /// (`tx.verify(chain_id).is_ok()`, or a batch check), done off the actor thread. Checks
    /// run cheapest first, each refusal giving the code a client sees: format, signature,
    /// duplicate, state (as the ledger would), limits.
    pub fn admit(
        &mut self,
        tx: Transaction,
        verified: bool,
        ledger: &Ledger,
        now_ms: u64,
    ) -> Result<Hash, AdmitError> {
        // Format first: if `verified` came from `Transaction::verify`, which also checks the
        // format, a malformed transaction still gets its precise code.
        tx.check_format().map_err(AdmitError::Format)?;
        if !verified {
            return Err(AdmitError::InvalidSignature);
        }
        if let Some(refusal) = self.quick_refusal(&tx, ledger) {
            return Err(refusal);
        }
        let hash = tx.hash();
        let size = encoding::encode(&tx).len();
        let from = tx.body().from;
        let entry = Entry { tx, hash, size };
        if let Some(next) = self.next_nonce(&from, ledger) {
            let nonce = entry.tx.body().nonce;
            if nonce > next && nonce - next <= FUTURE_WINDOW {
                return self.wait(entry, now_ms).map(|()| hash);
            }
        }
        self.admit_checked(entry, ledger)?;
        self.promote(from, ledger);
        Ok(hash)
    }

    /// The refusals [`Pool::admit`] would give that need no signature check: a transaction
    /// already held or recently committed, or a nonce its sender has used or that lies
    /// beyond [`FUTURE_WINDOW`]. The caller checks them before the signature, so that a
    /// client resending what cannot be admitted yet costs the node a lookup, not a
    /// verification.
    pub fn quick_refusal(&self, tx: &Transaction, ledger: &Ledger) -> Option<AdmitError> {
        let hash = tx.hash();
        if self.contains(&hash) || self.recent_set.contains(&hash) {
            return Some(AdmitError::Duplicate(hash));
        }
        let expected = self.next_nonce(&tx.body().from, ledger)?;
        let got = tx.body().nonce;
        (got < expected || got - expected > FUTURE_WINDOW)
            .then_some(AdmitError::Rejected(TxError::BadNonce { expected, got }))
    }

    /// The nonce `sender`'s next pending transaction must carry, if it has an account.
    fn next_nonce(&self, sender: &Address, ledger: &Ledger) -> Option<u64> {
        let account = ledger.account(sender)?;
        let pending = u64::try_from(self.pending_count(sender)).unwrap_or(u64::MAX);
        Some(account.nonce.saturating_add(pending))
    }

    /// Keeps a transaction with a future nonce until the gap before it fills.
    fn wait(&mut self, entry: Entry, now_ms: u64) -> Result<(), AdmitError> {
        let key = (entry.tx.body().from, entry.tx.body().nonce);
        if self.future.contains_key(&key) {
            // Another transaction with the same nonce waits already: the first one stays.
            return Err(AdmitError::Duplicate(entry.hash));
        }
        if self.future.len() >= self.limits.max_future {
            return Err(AdmitError::MempoolFull(Full::Future));
        }
        self.bytes = self
            .bytes
            .checked_add(entry.size)
            .filter(|b| *b <= self.limits.max_bytes)
            .ok_or(AdmitError::MempoolFull(Full::Bytes))?;
        self.future_hashes.insert(entry.hash);
        self.future.insert(
            key,
            Waiting {
                entry,
                arrived_ms: now_ms,
            },
        );
        Ok(())
    }

    /// Moves `sender`'s waiting transactions into the pending ones while their nonces
    /// follow on; one that no longer applies is dropped.
    fn promote(&mut self, sender: Address, ledger: &Ledger) {
        while let Some(next) = self.next_nonce(&sender, ledger) {
            let Some(waiting) = self.future.remove(&(sender, next)) else {
                return;
            };
            self.future_hashes.remove(&waiting.entry.hash);
            self.bytes -= waiting.entry.size;
            if self.admit_checked(waiting.entry, ledger).is_err() {
                return;
            }
        }
    }

    /// The transactions to propose next, at most `max`: oldest first across senders, each
    /// sender's in nonce order. A transaction in `exclude` (say, already in a block in
    /// flight) is skipped, and so is everything of its sender after it and any transfer to
    /// an account it would have created, since those would fail without it. A transaction
    /// in `committed` (in a block already committed, which this pool has not heard of yet)
    /// is only skipped: what comes after it applies.
    pub fn batch(
        &self,
        max: usize,
        exclude: &HashSet<Hash>,
        committed: &HashSet<Hash>,
    ) -> Vec<Transaction> {
        let mut out = Vec::new();
        // Senders whose next transaction is not in the batch: their later ones cannot be.
        let mut blocked: HashSet<Address> = HashSet::new();
        // Accounts whose pending creation is not in the batch.
        let mut not_created: HashSet<Address> = HashSet::new();
        for entry in self.pending.values() {
            if out.len() >= max {
                break;
            }
            if committed.contains(&entry.hash) {
                continue;
            }
            let body = entry.tx.body();
            let skip = blocked.contains(&body.from)
                || exclude.contains(&entry.hash)
                || matches!(body.kind, TxKind::Transfer { to, .. } if not_created.contains(&to));
            if skip {
                blocked.insert(body.from);
                if let TxKind::CreateAccount { new_account, .. } = body.kind {
                    not_created.insert(new_account);
                }
                continue;
            }
            out.push(entry.tx.clone());
        }
        out
    }

    /// The [`Pool::batch`] for a proposal: what `exclude` names (already in blocks in flight)
    /// and what the batch holds count as in flight until the next proposal, and are never
    /// pushed out to make room.
    pub fn propose(
        &mut self,
        max: usize,
        exclude: &HashSet<Hash>,
        committed: &HashSet<Hash>,
    ) -> Vec<Transaction> {
        let batch = self.batch(max, exclude, committed);
        self.in_flight = exclude
            .iter()
            .copied()
            .chain(batch.iter().map(Transaction::hash))
            .collect();
        batch
    }

    /// The state checks and the limits, then the insertion; nothing changes on a refusal.
    fn admit_checked(&mut self, entry: Entry, ledger: &Ledger) -> Result<(), AdmitError> {
        let delta = self.check_state(&entry.tx, ledger)?;
        let from = entry.tx.body().from;
        self.make_room(&from, entry.size)
            .map_err(AdmitError::MempoolFull)?;
        let new_bytes = self.bytes + entry.size;
        let seq = self.next_seq;
        self.next_seq = seq
            .checked_add(1)
            .ok_or(AdmitError::MempoolFull(Full::Transactions))?;

        // Every check is done: from here nothing can fail.
        if let TxKind::CreateAccount { new_account, .. } = entry.tx.body().kind {
            let count = self.created.entry(new_account).or_insert(0);
            *count = count.saturating_add(1);
        }
        let sender = self.senders.entry(from).or_default();
        self.by_count.remove(&(sender.seqs.len(), from));
        sender.seqs.push_back(seq);
        self.by_count.insert((sender.seqs.len(), from));
        sender.spent = delta.spent;
        sender.staked = delta.staked;
        sender.unstaked = delta.unstaked;
        self.bytes = new_bytes;
        self.by_hash.insert(entry.hash, seq);
        self.pending.insert(seq, entry);
        Ok(())
    }

    /// Makes room for a transaction of `size` bytes from `from`, if `from` would hold no more
    /// than its share ([`Limits::max_txs`] divided among the senders holding transactions),
    /// by pushing out the highest nonces of senders holding more than their share (the
    /// largest first); nothing changes if that is not enough. Senders all at their share
    /// push out nobody: an admitted transaction is lost to its client (the others after it
    /// wait on the gap), so it goes only to give a sender its share. A transaction in
    /// flight, or a creation (others' transfers may count on it), is never pushed out.
    fn make_room(&mut self, from: &Address, size: usize) -> Result<(), Full> {
        let fits = |pool: &Pool| {
            if pool.pending.len() >= pool.limits.max_txs {
                Err(Full::Transactions)
            } else if pool.bytes.saturating_add(size) > pool.limits.max_bytes {
                Err(Full::Bytes)
            } else {
                Ok(())
            }
        };
        let Err(full) = fits(self) else {
            return Ok(());
        };
        let mine = self.pending_count(from) + 1;
        let senders = self.senders.len() + usize::from(!self.senders.contains_key(from));
        let share = self.limits.max_txs / senders.max(1);
        if mine > share {
            return Err(full);
        }
        let mut victims = Vec::new();
        let (mut count, mut bytes) = (self.pending.len(), self.bytes);
        let mut taken: HashMap<Address, usize> = HashMap::new();
        // Plan first, so that a plan that falls short changes nothing.
        while count >= self.limits.max_txs || bytes.saturating_add(size) > self.limits.max_bytes {
            let larger = self
                .by_count
                .iter()
                .rev()
                .take_while(|(held, _)| *held > share);
            let victim = larger.into_iter().find_map(|&(held, sender)| {
                let held = held - taken.get(&sender).copied().unwrap_or(0);
                let state = &self.senders[&sender];
                let seq = *state.seqs.get(held.checked_sub(1)?)?;
                let entry = &self.pending[&seq];
                let evictable = held > share
                    && sender != *from
                    && !self.in_flight.contains(&entry.hash)
                    && !matches!(entry.tx.body().kind, TxKind::CreateAccount { .. });
                evictable.then_some((sender, entry.size))
            });
            let Some((sender, size)) = victim else {
                return Err(full);
            };
            *taken.entry(sender).or_insert(0) += 1;
            victims.push(sender);
            count -= 1;
            bytes -= size;
        }
        for sender in victims {
            if let Some(&seq) = self.senders.get(&sender).and_then(|s| s.seqs.back()) {
                self.remove_pending(seq);
            }
        }
        Ok(())
    }

    /// Takes pending transaction `seq` out of the pool and out of its sender's sums; it must
    /// be its sender's first or last (a commit takes the first, a push-out the last).
    fn remove_pending(&mut self, seq: u64) {
        let Some(entry) = self.pending.remove(&seq) else {
            return;
        };
        self.by_hash.remove(&entry.hash);
        self.bytes -= entry.size;
        let body = entry.tx.body();
        if let TxKind::CreateAccount { new_account, .. } = body.kind {
            if let Some(count) = self.created.get_mut(&new_account) {
                *count -= 1;
                if *count == 0 {
                    self.created.remove(&new_account);
                }
            }
        }
        let Some(state) = self.senders.get_mut(&body.from) else {
            return;
        };
        self.by_count.remove(&(state.seqs.len(), body.from));
        let (first, last) = (
            state.seqs.front() == Some(&seq),
            state.seqs.back() == Some(&seq),
        );
        debug_assert!(
            first || last,
            "a pending transaction leaves from either end"
        );
        if first {
            state.seqs.pop_front();
        } else if last {
            state.seqs.pop_back();
        }
        let amount = body.kind.amount();
        match body.kind {
            TxKind::Transfer { .. } | TxKind::CreateAccount { .. } => {
                state.spent = state.spent.saturating_sub(amount);
            }
            TxKind::Stake { .. } => {
                state.spent = state.spent.saturating_sub(amount);
                state.staked = state.staked.saturating_sub(amount);
            }
            TxKind::Unstake { .. } => state.unstaked = state.unstaked.saturating_sub(amount),
        }
        if state.seqs.is_empty() {
            self.senders.remove(&body.from);
        } else {
            self.by_count.insert((state.seqs.len(), body.from));
        }
    }

    /// Checks `tx` against committed state plus its sender's pending transactions, the way
    /// [`Ledger::check`] would once those have applied, crediting nothing that is pending.
    /// Returns the sender's sums with `tx` added.
    fn check_state(&self, tx: &Transaction, ledger: &Ledger) -> Result<Delta, TxError> {
        let body = tx.body();
        let account: &Account = ledger
            .account(&body.from)
            .ok_or(TxError::UnknownAccount(body.from))?;
        let empty = SenderState::default();
        let sender = self.senders.get(&body.from).unwrap_or(&empty);
        let pending = u64::try_from(sender.seqs.len()).unwrap_or(u64::MAX);
        let expected = account.nonce.saturating_add(pending);
        if body.nonce != expected || expected == u64::MAX {
            return Err(TxError::BadNonce {
                expected,
                got: body.nonce,
            });
        }
        let amount = body.kind.amount();
        // Funds left after the pending spends; a ledger that lost funds the sums assumed
        // (not the one the pool last saw) leaves zero, the safe side.
        let balance = account.balance.saturating_sub(sender.spent);
        let stake_left = account.stake.saturating_sub(sender.unstaked);
        // The stake once the pending stakes and unstakes apply: only the sender moves it.
        let stake_now = account
            .stake
            .saturating_add(sender.staked)
            .saturating_sub(sender.unstaked);
        let insufficient = |available: Amount| TxError::InsufficientFunds {
            available,
            needed: amount,
        };
        let spend = |available: Amount| -> Result<Amount, TxError> {
            if amount > available {
                return Err(insufficient(available));
            }
            sender
                .spent
                .checked_add(amount)
                .ok_or(insufficient(available))
        };
        let mut delta = Delta {
            spent: sender.spent,
            staked: sender.staked,
            unstaked: sender.unstaked,
        };
        match body.kind {
            TxKind::Transfer { to, .. } => {
                if ledger.account(&to).is_none() && !self.created.contains_key(&to) {
                    return Err(TxError::UnknownAccount(to));
                }
                delta.spent = spend(balance)?;
            }
            TxKind::CreateAccount { new_account, .. } => {
                if ledger.account(&new_account).is_some() || self.created.contains_key(&new_account)
                {
                    return Err(TxError::AccountExists(new_account));
                }
                delta.spent = spend(balance)?;
            }
            TxKind::Stake { .. } => {
                delta.spent = spend(balance)?;
                let after = stake_now.checked_add(amount).ok_or(insufficient(balance))?;
                check_stake(after, ledger.min_stake())?;
                delta.staked = sender
                    .staked
                    .checked_add(amount)
                    .ok_or(insufficient(balance))?;
            }
            TxKind::Unstake { .. } => {
                if amount > stake_left {
                    return Err(insufficient(stake_left));
                }
                check_stake(stake_now.saturating_sub(amount), ledger.min_stake())?;
                delta.unstaked = sender
                    .unstaked
                    .checked_add(amount)
                    .ok_or(insufficient(stake_left))?;
            }
        }
        Ok(delta)
    }
}
