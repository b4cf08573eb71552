//! Throughput of the core's hot paths: signature verification (one by one and batched),
//! ledger execution of a full block, Merkle roots, and what a node does per transaction and
//! per vote: admitting a gossiped batch to the mempool, checking a proposal's body, checking
//! a vote and a commit certificate. Run with `cargo bench --bench core`.

use almagill::amount::AGL;
use almagill::block::{tx_root, Block, Proposal};
use almagill::certificate::{Certificate, Phase, Signed, VoteTarget};
use almagill::crypto::{self, Keypair, SignedMessage};
use almagill::genesis::Genesis;
use almagill::ledger::Ledger;
use almagill::mempool::{Limits, Pool};
use almagill::tx::{verify_signatures, Transaction, TxBody, TxKind, VerifiedTxs};
use almagill::validators::{Validator, ValidatorSet};
use almagill_testkit::GenesisBuilder;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

const CHAIN: &str = "bench";
/// Senders: enough that no key signs twice in a batch or body measured here, as on a chain
/// with many senders (the batch check merges the terms of signatures made with the same
/// key, which would flatter it).
const ACCOUNTS: usize = 2048;

fn keys() -> Vec<Keypair> {
    (0..ACCOUNTS)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Keypair::from_seed(seed)
        })
        .collect()
}

fn genesis(keys: &[Keypair]) -> Genesis {
    keys.iter()
        .enumerate()
        .fold(
            GenesisBuilder::new(CHAIN)
                .min_stake(AGL)
                .epoch_length(1_000_000),
            |b, (i, k)| b.account(&format!("a{i}"), k.address(), 1_000_000 * AGL, AGL),
        )
        .unchecked()
}

/// `count` transfers, round-robin over the accounts, with correct nonces from genesis.
fn transfers(keys: &[Keypair], count: usize) -> Vec<Transaction> {
    (0..count)
        .map(|i| {
            let from = &keys[i % keys.len()];
            TxBody {
                from: from.address(),
                nonce: (i / keys.len()) as u64,
                kind: TxKind::Transfer {
                    to: keys[(i + 1) % keys.len()].address(),
                    amount: 1 + i as u128,
                },
            }
            .sign(from, CHAIN)
        })
        .collect()
}

fn signatures(c: &mut Criterion) {
    let keys = keys();
    let txs = transfers(&keys, 1024);
    let messages: Vec<Vec<u8>> = txs.iter().map(|t| t.signing_message(CHAIN)).collect();
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single", |b| {
        b.iter(|| crypto::verify(&txs[0].body().from, &messages[0], txs[0].signature()))
    });
    for size in [16usize, 64, 256, 1024] {
        let items: Vec<SignedMessage<'_>> = txs[..size]
            .iter()
            .zip(&messages)
            .map(|(t, m)| SignedMessage {
                signer: t.body().from,
                message: m,
                signature: *t.signature(),
            })
            .collect();
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::new("batch", size), &items, |b, items| {
            b.iter(|| crypto::verify_batch(items))
        });
    }
    group.finish();
}

fn ledger(c: &mut Criterion) {
    let keys = keys();
    let genesis = genesis(&keys);
    let mut group = c.benchmark_group("ledger");
    for size in [100usize, 2000] {
        let proposal = Proposal::new(1, 1, 1, keys[0].address(), transfers(&keys, size));
        let block = Block::new(proposal, genesis.hash());
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::new("apply_block", size), &block, |b, block| {
            b.iter_batched(
                || Ledger::from_genesis(&genesis),
                |mut ledger| ledger.apply_block(block),
                BatchSize::LargeInput,
            )
        });
    }
    let txs = transfers(&keys, 2000);
    group.throughput(Throughput::Elements(2000));
    group.bench_function("tx_root/2000", |b| b.iter(|| tx_root(&txs)));
    group.finish();
}

/// What a node does per transaction and per vote on the hot path.
fn hot_path(c: &mut Criterion) {
    let keys = keys();
    let genesis = genesis(&keys);
    let ledger = Ledger::from_genesis(&genesis);
    let mut group = c.benchmark_group("hot_path");

    // A gossiped batch: its signatures checked in one batch, then each admitted.
    let batch = transfers(&keys, 256);
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("admit_gossip_batch/256", |b| {
        b.iter_batched(
            || (Pool::new(Limits::default()), batch.clone()),
            |(mut pool, txs)| {
                let verified = verify_signatures(&txs, CHAIN);
                for (tx, ok) in txs.into_iter().zip(verified) {
                    let _ = pool.admit(tx, ok, &ledger, 0);
                }
                pool
            },
            BatchSize::LargeInput,
        )
    });

    // A pre-prepare's body: root, duplicates and every signature.
    let proposal = Proposal::new(1, 1, 1, keys[0].address(), transfers(&keys, 2000));
    group.throughput(Throughput::Elements(2000));
    group.bench_function("check_proposal_body/2000", |b| {
        b.iter(|| proposal.check_body(CHAIN, 2000, &VerifiedTxs::default()))
    });
    // The same body once the mempool verified its transactions: each is checked once per
    // node.
    let verified = VerifiedTxs::default();
    verified.add(proposal.txs.iter().map(Transaction::hash));
    group.bench_function("check_proposal_body_known/2000", |b| {
        b.iter(|| proposal.check_body(CHAIN, 2000, &verified))
    });

    // A vote, and a commit certificate of three of four validators.
    let target = VoteTarget {
        phase: Phase::Commit,
        height: 1,
        view: 1,
        digest: proposal.digest(),
    };
    let votes: Vec<Signed<VoteTarget>> = keys[..4]
        .iter()
        .map(|k| Signed::sign(target, k, CHAIN))
        .collect();
    let validators = ValidatorSet::new(
        keys[..4]
            .iter()
            .map(|k| Validator {
                address: k.address(),
                stake: AGL,
            })
            .collect(),
    )
    .expect("four validators");
    let certificate = Certificate::new(target, votes[..3].iter().map(|v| (v.signer, v.signature)));
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_vote", |b| b.iter(|| votes[0].verify(CHAIN)));
    group.bench_function("verify_commit_certificate/3", |b| {
        b.iter(|| certificate.verify(CHAIN, &validators))
    });
    group.finish();
}

criterion_group!(benches, signatures, ledger, hot_path);
criterion_main!(benches);
