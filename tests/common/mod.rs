//! Helpers shared by the core library's integration tests: keys from a one-byte seed, a
//! small genesis builder, signed transactions, and proptest strategies for the wire types.
//!
//! Each test file uses only some of these, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::fmt::Debug;
use std::sync::OnceLock;

use almagill::amount::Amount;
use almagill::block::{Block, BlockHeader, Proposal, ProposalHeader};
use almagill::certificate::{Certificate, CommitCertificate, Phase, Signed, VoteTarget};
use almagill::consensus::{
    CheckpointCertificate, CheckpointTarget, Message, NewView, Record, ViewChange,
};
use almagill::crypto::{Address, Hash, Keypair, Signature};
use almagill::genesis::{ConsensusParams, Genesis, GenesisAccount};
use almagill::ledger::{Account, TxError};
use almagill::merkle::Proof;
use almagill::tx::{Transaction, TxBody, TxKind};
use almagill_testkit::GenesisBuilder;
use proptest::collection::vec;
use proptest::prelude::*;

/// The chain id every test signs for.
pub const CHAIN_ID: &str = "almagill-test";

/// The minimum stake of the test genesis built by [`genesis`].
pub const MIN_STAKE: Amount = 1_000;

/// Blocks per epoch in the test genesis: the default checkpoint interval, the shortest
/// epoch the default consensus parameters allow (an epoch is a whole number of
/// checkpoint intervals).
pub const EPOCH_LENGTH: u64 = 10;

/// The key whose secret seed is 32 copies of `seed`. Keys are derived once and cached,
/// since deriving one costs a scalar multiplication.
pub fn keypair(seed: u8) -> Keypair {
    static KEYS: OnceLock<Vec<Keypair>> = OnceLock::new();
    KEYS.get_or_init(|| (0..=u8::MAX).map(|i| Keypair::from_seed([i; 32])).collect())
        [usize::from(seed)]
    .clone()
}

/// The address of [`keypair`]`(seed)`.
pub fn address(seed: u8) -> Address {
    keypair(seed).address()
}

/// A valid genesis for [`CHAIN_ID`] with accounts `(seed, balance, stake)`, minimum stake
/// [`MIN_STAKE`], epochs of [`EPOCH_LENGTH`] blocks and default consensus parameters.
/// Panics if the accounts make it invalid (e.g. no validator).
pub fn genesis(accounts: &[(u8, Amount, Amount)]) -> Genesis {
    builder(accounts).build()
}

/// The builder behind [`genesis`], for a test that changes something before building.
pub fn builder(accounts: &[(u8, Amount, Amount)]) -> GenesisBuilder {
    accounts.iter().fold(
        GenesisBuilder::new(CHAIN_ID)
            .time_ms(1_700_000_000_000)
            .min_stake(MIN_STAKE)
            .epoch_length(EPOCH_LENGTH),
        |b, &(seed, balance, stake)| {
            b.account(&format!("acct{seed}"), address(seed), balance, stake)
        },
    )
}

/// `kind` from [`keypair`]`(seed)` with `nonce`, signed for [`CHAIN_ID`].
pub fn signed(seed: u8, nonce: u64, kind: TxKind) -> Transaction {
    TxBody {
        from: address(seed),
        nonce,
        kind,
    }
    .sign(&keypair(seed), CHAIN_ID)
}

/// The proposal at `height` over `txs` (view `height`: round 0), proposed by
/// [`address`]`(1)`, with the right transaction root.
pub fn proposal(height: u64, txs: Vec<Transaction>) -> Proposal {
    Proposal::new(
        height,
        height,
        1_700_000_000_000u64.saturating_add(height),
        address(1),
        txs,
    )
}

/// The parent hash [`block`] puts under height `height`.
pub fn test_prev(height: u64) -> Hash {
    Hash::digest(b"test-prev", &[&height.to_le_bytes()])
}

/// [`proposal`]`(height, txs)` committed on top of [`test_prev`]`(height)`.
pub fn block(height: u64, txs: Vec<Transaction>) -> Block {
    Block::new(proposal(height, txs), test_prev(height))
}

/// 64 arbitrary bytes.
pub fn arb_bytes64() -> impl Strategy<Value = [u8; 64]> {
    vec(any::<u8>(), 64).prop_map(|v| v.try_into().expect("64 bytes"))
}

/// Any hash.
pub fn arb_hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

/// Any address (most are not valid public keys).
pub fn arb_address() -> impl Strategy<Value = Address> {
    any::<[u8; 32]>().prop_map(Address)
}

/// Any signature bytes.
pub fn arb_signature() -> impl Strategy<Value = Signature> {
    arb_bytes64().prop_map(Signature)
}

/// An amount, with the edges (0, 1, u128::MAX) well represented.
pub fn arb_amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(u128::MAX),
        0..1_000_000u128,
        any::<u128>(),
    ]
}

/// Any transaction kind, with arbitrary addresses and amounts.
pub fn arb_tx_kind() -> impl Strategy<Value = TxKind> {
    prop_oneof![
        (arb_address(), arb_amount()).prop_map(|(to, amount)| TxKind::Transfer { to, amount }),
        (arb_address(), arb_amount()).prop_map(|(new_account, amount)| TxKind::CreateAccount {
            new_account,
            amount
        }),
        arb_amount().prop_map(|amount| TxKind::Stake { amount }),
        arb_amount().prop_map(|amount| TxKind::Unstake { amount }),
    ]
}

/// Any transaction body.
pub fn arb_tx_body() -> impl Strategy<Value = TxBody> {
    (arb_address(), any::<u64>(), arb_tx_kind()).prop_map(|(from, nonce, kind)| TxBody {
        from,
        nonce,
        kind,
    })
}

/// Any transaction, its signature random bytes.
pub fn arb_transaction() -> impl Strategy<Value = Transaction> {
    (arb_tx_body(), arb_signature()).prop_map(|(body, signature)| Transaction::new(body, signature))
}

/// A transaction of any kind, properly signed for [`CHAIN_ID`] by one of a few test keys.
/// Its amount is non-zero and it is never addressed to its sender, so it passes `verify`.
pub fn arb_signed_transaction() -> impl Strategy<Value = Transaction> {
    (1u8..=8, any::<u64>(), arb_tx_kind()).prop_map(|(seed, nonce, mut kind)| {
        let from = address(seed);
        match &mut kind {
            TxKind::Transfer { to, amount }
            | TxKind::CreateAccount {
                new_account: to,
                amount,
            } => {
                if *to == from {
                    to.0[0] ^= 1;
                }
                *amount = (*amount).max(1);
            }
            TxKind::Stake { amount } | TxKind::Unstake { amount } => *amount = (*amount).max(1),
        }
        signed(seed, nonce, kind)
    })
}

/// Any proposal header.
pub fn arb_proposal_header() -> impl Strategy<Value = ProposalHeader> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        arb_address(),
        arb_hash(),
    )
        .prop_map(
            |(height, view, timestamp_ms, proposer, tx_root)| ProposalHeader {
                height,
                view,
                timestamp_ms,
                proposer,
                tx_root,
            },
        )
}

/// Any proposal of up to three transactions (its header need not match them).
pub fn arb_proposal() -> impl Strategy<Value = Proposal> {
    (arb_proposal_header(), vec(arb_transaction(), 0..4))
        .prop_map(|(header, txs)| Proposal { header, txs })
}

/// Any block header.
pub fn arb_block_header() -> impl Strategy<Value = BlockHeader> {
    (arb_hash(), arb_proposal_header()).prop_map(|(prev, proposal)| BlockHeader { prev, proposal })
}

/// Any block of up to three transactions (its header need not match them).
pub fn arb_block() -> impl Strategy<Value = Block> {
    (arb_block_header(), vec(arb_transaction(), 0..4))
        .prop_map(|(header, txs)| Block { header, txs })
}

/// Either phase.
pub fn arb_phase() -> impl Strategy<Value = Phase> {
    prop_oneof![Just(Phase::Prepare), Just(Phase::Commit)]
}

/// Any vote target.
pub fn arb_vote_target() -> impl Strategy<Value = VoteTarget> {
    (arb_phase(), any::<u64>(), any::<u64>(), arb_hash()).prop_map(
        |(phase, height, view, digest)| VoteTarget {
            phase,
            height,
            view,
            digest,
        },
    )
}

/// Any checkpoint target.
pub fn arb_checkpoint_target() -> impl Strategy<Value = CheckpointTarget> {
    (any::<u64>(), arb_hash())
        .prop_map(|(height, state_root)| CheckpointTarget { height, state_root })
}

/// Any statement of `payload`'s kind with any signer and signature bytes (most do not
/// verify).
pub fn arb_signed<T: Debug>(payload: impl Strategy<Value = T>) -> impl Strategy<Value = Signed<T>> {
    (payload, arb_address(), arb_signature()).prop_map(|(payload, signer, signature)| Signed {
        payload,
        signer,
        signature,
    })
}

/// Any certificate on `payload`'s kind of statement with up to three votes (not
/// necessarily canonical or valid).
pub fn arb_certificate<T: Debug>(
    payload: impl Strategy<Value = T>,
) -> impl Strategy<Value = Certificate<T>> {
    (payload, vec((arb_address(), arb_signature()), 0..4))
        .prop_map(|(payload, votes)| Certificate { payload, votes })
}

/// Any commit (or prepared) certificate of up to three votes.
pub fn arb_commit_certificate() -> impl Strategy<Value = CommitCertificate> {
    arb_certificate(arb_vote_target())
}

/// Any checkpoint certificate of up to three votes.
pub fn arb_checkpoint_certificate() -> impl Strategy<Value = CheckpointCertificate> {
    arb_certificate(arb_checkpoint_target())
}

/// Any view change, with up to two prepared certificates.
pub fn arb_view_change() -> impl Strategy<Value = ViewChange> {
    (
        any::<u64>(),
        arb_checkpoint_certificate(),
        vec(arb_commit_certificate(), 0..3),
    )
        .prop_map(|(round, checkpoint, prepared)| ViewChange {
            round,
            checkpoint,
            prepared,
        })
}

/// Any new view, on up to two signed view changes, re-proposing up to three heights.
pub fn arb_new_view() -> impl Strategy<Value = NewView> {
    (
        any::<u64>(),
        vec(arb_signed(arb_view_change()), 0..3),
        vec((any::<u64>(), arb_hash()), 0..4),
    )
        .prop_map(|(round, view_changes, proposals)| NewView {
            round,
            view_changes,
            proposals,
        })
}

/// Any consensus message, of every variant.
pub fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (arb_proposal(), arb_signed(arb_vote_target()))
            .prop_map(|(proposal, vote)| Message::PrePrepare { proposal, vote }),
        arb_signed(arb_vote_target()).prop_map(Message::Vote),
        arb_signed(arb_checkpoint_target()).prop_map(Message::Checkpoint),
        arb_checkpoint_certificate().prop_map(Message::CheckpointProof),
        (arb_signed(arb_view_change()), vec(arb_proposal(), 0..3)).prop_map(
            |(view_change, bodies)| Message::ViewChange {
                view_change,
                bodies
            }
        ),
        (arb_signed(arb_new_view()), vec(arb_proposal(), 0..3))
            .prop_map(|(new_view, bodies)| Message::NewView { new_view, bodies }),
        any::<u64>().prop_map(|round| Message::FetchNewView { round }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(height, view)| Message::FetchProposal { height, view }),
    ]
}

/// Any consensus record, of every variant.
pub fn arb_record() -> impl Strategy<Value = Record> {
    prop_oneof![
        arb_signed(arb_vote_target()).prop_map(Record::Prepared),
        (
            arb_signed(arb_vote_target()),
            arb_commit_certificate(),
            arb_proposal()
        )
            .prop_map(|(vote, certificate, proposal)| Record::Committed {
                vote,
                certificate,
                proposal
            }),
        any::<u64>().prop_map(|round| Record::ViewChange { round }),
        arb_checkpoint_certificate().prop_map(Record::Stable),
    ]
}

/// Any Merkle proof of up to eight path elements.
pub fn arb_proof() -> impl Strategy<Value = Proof> {
    (any::<u64>(), any::<u64>(), vec(arb_hash(), 0..8)).prop_map(|(index, size, path)| Proof {
        index,
        size,
        path,
    })
}

/// Any account state.
pub fn arb_account() -> impl Strategy<Value = Account> {
    (arb_amount(), arb_amount(), any::<u64>()).prop_map(|(balance, stake, nonce)| Account {
        balance,
        stake,
        nonce,
    })
}

/// Any ledger error.
pub fn arb_tx_error() -> impl Strategy<Value = TxError> {
    prop_oneof![
        arb_address().prop_map(TxError::UnknownAccount),
        arb_address().prop_map(TxError::AccountExists),
        (any::<u64>(), any::<u64>())
            .prop_map(|(expected, got)| TxError::BadNonce { expected, got }),
        (arb_amount(), arb_amount())
            .prop_map(|(available, needed)| TxError::InsufficientFunds { available, needed }),
        (arb_amount(), arb_amount()).prop_map(|(stake, min)| TxError::BelowMinStake { stake, min }),
    ]
}

/// A valid genesis document: random chain id, timing, accounts and stakes, with at least
/// one validator and distinct names and addresses.
pub fn arb_genesis() -> impl Strategy<Value = Genesis> {
    // The checkpoint interval is often small (so the window and the epoch's multiple
    // reach their limits) and sometimes anything TOML can write.
    let params = (
        1u64..=i64::MAX as u64,
        any::<u64>().prop_map(|b| b % 100_000),
        1u32..=almagill::genesis::MAX_BLOCK_TXS,
        any::<u64>(),
        prop_oneof![1u64..=40, 1u64..=almagill::genesis::MAX_TXS_IN_WINDOW / 2],
        any::<u64>(),
    );
    let accounts = vec(
        (
            "[a-zA-Z0-9_-]{1,32}",
            any::<[u8; 32]>(),
            0u128..=u128::MAX / 64,
            any::<bool>(),
            0u128..=u128::MAX / 64,
        ),
        1..6,
    );
    (
        "[a-zA-Z0-9._-]{1,64}",
        0u64..=i64::MAX as u64,
        1u128..=u128::MAX / 64,
        prop_oneof![Just(0u64), 0u64..=1_000, any::<u64>()],
        params,
        accounts,
    )
        .prop_map(
            |(chain_id, genesis_time_ms, min_stake, extra_intervals, params, accounts)| {
                let (view_timeout_ms, block_interval_ms, max_block_txs, window, checkpoint, idle) =
                    params;
                // block interval <= idle interval <= half the view timeout.
                let half_timeout = view_timeout_ms / 2;
                let block_interval_ms = block_interval_ms % (half_timeout + 1);
                let idle_block_interval_ms =
                    block_interval_ms + idle % (half_timeout - block_interval_ms + 1);
                // The window is 1 to twice the checkpoint interval (capped at 64); the
                // epoch is a whole number of intervals that TOML can still write.
                let window = 1 + window % (2 * checkpoint).min(64);
                // Every block between the watermarks fits in one view change.
                let most_txs = almagill::genesis::MAX_TXS_IN_WINDOW / (2 * checkpoint);
                let max_block_txs =
                    1 + (max_block_txs - 1) % most_txs.min(u64::from(u32::MAX)) as u32;
                let most_intervals = i64::MAX as u64 / checkpoint;
                let epoch_length = checkpoint * (1 + extra_intervals % most_intervals);
                let mut seen_names = std::collections::BTreeSet::new();
                let mut seen_addresses = std::collections::BTreeSet::new();
                let mut genesis_accounts: Vec<GenesisAccount> = accounts
                    .into_iter()
                    .filter(|(name, address, ..)| {
                        seen_names.insert(name.clone()) && seen_addresses.insert(*address)
                    })
                    .map(|(name, address, balance, staked, extra)| GenesisAccount {
                        name,
                        address: Address(address),
                        balance,
                        // A stake is either none or at least the minimum.
                        stake: if staked { min_stake + extra } else { 0 },
                    })
                    .collect();
                // At least one validator.
                let first = &mut genesis_accounts[0];
                first.stake = first.stake.max(min_stake);
                let genesis = Genesis {
                    chain_id,
                    genesis_time_ms,
                    min_stake,
                    epoch_length,
                    consensus: ConsensusParams {
                        view_timeout_ms,
                        block_interval_ms,
                        idle_block_interval_ms,
                        max_block_txs,
                        window,
                        checkpoint_interval: checkpoint,
                    },
                    accounts: genesis_accounts,
                };
                genesis.validate().expect("generated genesis is valid");
                genesis
            },
        )
}

/// One of the four transaction kinds, picked by `index` (0 transfer, 1 create, 2 stake,
/// anything else unstake), moving `amount` (to `to`, where the kind has a recipient).
pub fn tx_kind(index: u8, to: Address, amount: Amount) -> TxKind {
    match index {
        0 => TxKind::Transfer { to, amount },
        1 => TxKind::CreateAccount {
            new_account: to,
            amount,
        },
        2 => TxKind::Stake { amount },
        _ => TxKind::Unstake { amount },
    }
}

/// The genesis the ledger and mempool property tests start from: seeds 1 to 4 exist (1 to 3
/// as validators, with different stakes and balances); 5 to 8 do not.
pub fn test_genesis() -> Genesis {
    genesis(&[
        (1, 10_000, 5 * MIN_STAKE),
        (2, 3_000, MIN_STAKE),
        (3, 0, 2 * MIN_STAKE),
        (4, 50_000, 0),
    ])
}
