//! The canonical encoding: every wire type round-trips, every decodable byte string is the
//! one encoding of its value, and hostile input (random, truncated, padded, oversized, or
//! with huge length prefixes, at the top or nested deep inside consensus messages) is
//! refused with an error, never a panic or a huge allocation.

mod common;

use std::fmt::Debug;

use almagill::block::{Block, BlockHeader, Proposal, ProposalHeader};
use almagill::certificate::{Certificate, CommitCertificate, Phase, Signable, Signed, VoteTarget};
use almagill::consensus::{
    CheckpointCertificate, CheckpointTarget, Message, NewView, Record, ViewChange,
};
use almagill::crypto::{Address, Hash, Signature};
use almagill::encoding::{self, EncodingError, MAX_ENCODED_BYTES};
use almagill::genesis::{ConsensusParams, Genesis, GenesisAccount};
use almagill::ledger::{Account, TxError};
use almagill::merkle::Proof;
use almagill::tx::{Transaction, TxBody, TxKind};
use bincode::{Decode, Encode};
use common::{
    address, arb_account, arb_address, arb_block, arb_block_header, arb_checkpoint_certificate,
    arb_checkpoint_target, arb_commit_certificate, arb_genesis, arb_hash, arb_message,
    arb_new_view, arb_phase, arb_proof, arb_proposal, arb_proposal_header, arb_record,
    arb_signature, arb_signed, arb_transaction, arb_tx_body, arb_tx_error, arb_tx_kind,
    arb_view_change, arb_vote_target, block, genesis, keypair, proposal, signed, CHAIN_ID,
    MIN_STAKE,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

/// Calls the macro `$m` with every wire type: everything that is hashed, signed, sent
/// between nodes or stored, so that every list of decoders below is the same list.
macro_rules! with_every_wire_type {
    ($m:ident) => {
        $m!(
            Transaction,
            TxBody,
            TxKind,
            ProposalHeader,
            Proposal,
            BlockHeader,
            Block,
            Phase,
            VoteTarget,
            Signed<VoteTarget>,
            CommitCertificate,
            CheckpointTarget,
            Signed<CheckpointTarget>,
            CheckpointCertificate,
            ViewChange,
            Signed<ViewChange>,
            NewView,
            Signed<NewView>,
            Message,
            Record,
            Proof,
            Hash,
            Address,
            Signature,
            Account,
            TxError,
            Genesis,
            GenesisAccount,
            ConsensusParams
        )
    };
}

/// Round trip, trailing bytes and truncation for one value: it decodes back to itself;
/// with bytes appended it is refused as `TrailingBytes`; every strict prefix is refused.
fn check_value<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Encode + Decode<()> + PartialEq + Debug,
{
    let bytes = encoding::encode(value);
    let decoded = encoding::decode::<T>(&bytes);
    prop_assert_eq!(decoded.as_ref(), Ok(value));
    for extra in [&[0u8][..], &[0xff], &[0; 7]] {
        let padded = [&bytes[..], extra].concat();
        prop_assert_eq!(
            encoding::decode::<T>(&padded),
            Err(EncodingError::TrailingBytes(extra.len()))
        );
    }
    for len in 0..bytes.len() {
        prop_assert!(
            encoding::decode::<T>(&bytes[..len]).is_err(),
            "prefix of {}",
            len
        );
    }
    Ok(())
}

/// If `bytes` decode as a `T`, they are exactly the encoding of what they decode to.
fn check_canonical<T>(bytes: &[u8]) -> Result<(), TestCaseError>
where
    T: Encode + Decode<()> + PartialEq + Debug,
{
    if let Ok(value) = encoding::decode::<T>(bytes) {
        prop_assert_eq!(encoding::encode(&value), bytes, "{:?}", value);
    }
    Ok(())
}

/// Feeds `bytes` to the decoder of every wire type: each returns (no panic), and any that
/// succeeds re-encodes to exactly `bytes`.
fn check_every_decoder(bytes: &[u8]) -> Result<(), TestCaseError> {
    macro_rules! canonical {
        ($($ty:ty),*) => {
            $(check_canonical::<$ty>(bytes)?;)*
        };
    }
    with_every_wire_type!(canonical);
    Ok(())
}

/// Asserts every decoder refuses `bytes`.
fn assert_every_decoder_refuses(bytes: &[u8]) {
    macro_rules! refuse {
        ($($ty:ty),*) => {
            $(assert!(
                encoding::decode::<$ty>(bytes).is_err(),
                "{} accepted {} bytes",
                stringify!($ty),
                bytes.len()
            );)*
        };
    }
    with_every_wire_type!(refuse);
}

/// A valid encoding with a few bytes overwritten (often with small values, which keep
/// tags and lengths plausible) and possibly cut short.
fn mutate(bytes: &[u8], edits: &[(Index, u8)], cut: Option<Index>) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if !out.is_empty() {
        for (at, value) in edits {
            let i = at.index(out.len());
            out[i] = *value;
        }
    }
    if let Some(cut) = cut {
        out.truncate(cut.index(out.len() + 1));
    }
    out
}

/// Byte edits for [`mutate`].
fn arb_edits() -> impl Strategy<Value = Vec<(Index, u8)>> {
    vec((any::<Index>(), prop_oneof![0u8..4, any::<u8>()]), 1..4)
}

/// Declares, for each wire type, a property test that random values pass
/// [`check_value`] and that mutations of their encodings pass [`check_every_decoder`].
macro_rules! wire_type_tests {
    ($($(#[$doc:meta])* $name:ident: $ty:ty = $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]
            $(
                $(#[$doc])*
                #[test]
                fn $name(
                    value in $strategy,
                    edits in arb_edits(),
                    cut in proptest::option::of(any::<Index>()),
                ) {
                    check_value::<$ty>(&value)?;
                    check_every_decoder(&mutate(&encoding::encode(&value), &edits, cut))?;
                }
            )*
        }
    };
}

wire_type_tests! {
    /// Transactions of every kind, with arbitrary fields and signature bytes, round-trip;
    /// mutated encodings decode canonically or not at all.
    transaction_round_trip: Transaction = arb_transaction();
    /// Transaction bodies round-trip; mutations stay canonical.
    tx_body_round_trip: TxBody = arb_tx_body();
    /// Transaction kinds round-trip; mutations stay canonical.
    tx_kind_round_trip: TxKind = arb_tx_kind();
    /// Proposal headers round-trip; mutations stay canonical.
    proposal_header_round_trip: ProposalHeader = arb_proposal_header();
    /// Proposals of up to three transactions round-trip; mutations stay canonical.
    proposal_round_trip: Proposal = arb_proposal();
    /// Block headers round-trip; mutations stay canonical.
    block_header_round_trip: BlockHeader = arb_block_header();
    /// Blocks of up to three transactions round-trip; mutations stay canonical.
    block_round_trip: Block = arb_block();
    /// Both phases round-trip; mutations stay canonical.
    phase_round_trip: Phase = arb_phase();
    /// Vote targets of both phases round-trip; mutations stay canonical.
    vote_target_round_trip: VoteTarget = arb_vote_target();
    /// Signed votes round-trip; mutations stay canonical.
    signed_vote_round_trip: Signed<VoteTarget> = arb_signed(arb_vote_target());
    /// Commit (and prepared) certificates round-trip; mutations stay canonical.
    commit_certificate_round_trip: CommitCertificate = arb_commit_certificate();
    /// Checkpoint targets round-trip; mutations stay canonical.
    checkpoint_target_round_trip: CheckpointTarget = arb_checkpoint_target();
    /// Signed checkpoint votes round-trip; mutations stay canonical.
    signed_checkpoint_round_trip: Signed<CheckpointTarget> = arb_signed(arb_checkpoint_target());
    /// Checkpoint certificates round-trip; mutations stay canonical.
    checkpoint_certificate_round_trip: CheckpointCertificate = arb_checkpoint_certificate();
    /// View changes with their checkpoint and prepared certificates round-trip;
    /// mutations stay canonical.
    view_change_round_trip: ViewChange = arb_view_change();
    /// Signed view changes round-trip; mutations stay canonical.
    signed_view_change_round_trip: Signed<ViewChange> = arb_signed(arb_view_change());
    /// New views, with the signed view changes inside them, round-trip; mutations stay
    /// canonical.
    new_view_round_trip: NewView = arb_new_view();
    /// Signed new views round-trip; mutations stay canonical.
    signed_new_view_round_trip: Signed<NewView> = arb_signed(arb_new_view());
    /// Consensus messages of every variant round-trip; mutations stay canonical.
    message_round_trip: Message = arb_message();
    /// Consensus records of every variant round-trip; mutations stay canonical.
    record_round_trip: Record = arb_record();
    /// Merkle proofs round-trip; mutations stay canonical.
    proof_round_trip: Proof = arb_proof();
    /// Hashes round-trip; mutations stay canonical.
    hash_round_trip: Hash = arb_hash();
    /// Addresses round-trip; mutations stay canonical.
    address_round_trip: Address = arb_address();
    /// Signatures round-trip; mutations stay canonical.
    signature_round_trip: Signature = arb_signature();
    /// Ledger accounts round-trip; mutations stay canonical.
    account_round_trip: Account = arb_account();
    /// Ledger errors of every kind round-trip; mutations stay canonical.
    tx_error_round_trip: TxError = arb_tx_error();
    /// Genesis documents round-trip; mutations stay canonical.
    genesis_round_trip: Genesis = arb_genesis();
}

/// One transaction of every kind, with extreme field values, round-trips, and the
/// encoding is the documented fixed-width little-endian layout.
#[test]
fn every_tx_kind_round_trips_with_fixed_layout() {
    let kinds = [
        TxKind::Transfer {
            to: address(2),
            amount: u128::MAX,
        },
        TxKind::CreateAccount {
            new_account: Address([0xff; 32]),
            amount: 0,
        },
        TxKind::Stake { amount: 1 },
        TxKind::Unstake { amount: 1 << 100 },
    ];
    for (tag, kind) in kinds.into_iter().enumerate() {
        let tx = signed(1, u64::MAX, kind.clone());
        check_value(&tx).unwrap();
        check_value(tx.body()).unwrap();
        check_value(&kind).unwrap();
        let bytes = encoding::encode(&tx);
        assert_eq!(&bytes[..32], &address(1).0);
        assert_eq!(&bytes[32..40], &u64::MAX.to_le_bytes());
        assert_eq!(&bytes[40..44], &(tag as u32).to_le_bytes());
        assert_eq!(&bytes[bytes.len() - 64..], &tx.signature().0);
        let amount_at = if tag < 2 { 44 + 32 } else { 44 };
        assert_eq!(
            &bytes[amount_at..amount_at + 16],
            &kind.amount().to_le_bytes()
        );
        assert_eq!(bytes.len(), amount_at + 16 + 64);
    }
}

/// Encoded length of a proposal header.
const PROPOSAL_HEADER_LEN: usize = 8 + 8 + 8 + 32 + 32;

/// Encoded length of a block header: the parent hash, then the proposal header.
const HEADER_LEN: usize = 32 + PROPOSAL_HEADER_LEN;

/// Encoded length of a vote target: phase tag, height, view, digest.
const VOTE_TARGET_LEN: usize = 4 + 8 + 8 + 32;

/// Encoded length of a checkpoint target: height, state root.
const CHECKPOINT_TARGET_LEN: usize = 8 + 32;

/// Encoded length of a signed vote: the target, the signer, the signature.
const SIGNED_VOTE_LEN: usize = VOTE_TARGET_LEN + 32 + 64;

// ---------------------------------------------------------------------------------------
// Sample consensus values, properly signed.
// ---------------------------------------------------------------------------------------

/// The body re-proposed at `height` in the samples: two transactions.
fn body(height: u64) -> Proposal {
    proposal(
        height,
        vec![
            signed(1, height, TxKind::Stake { amount: 5 }),
            signed(
                2,
                height,
                TxKind::Transfer {
                    to: address(3),
                    amount: 9,
                },
            ),
        ],
    )
}

/// A certificate on `payload` by `signers`, built (sorted, deduplicated) by
/// `Certificate::new`.
fn certificate<T: Signable + Clone>(payload: T, signers: &[u8]) -> Certificate<T> {
    let votes: Vec<(Address, Signature)> = signers
        .iter()
        .map(|&seed| {
            let vote = Signed::sign(payload.clone(), &keypair(seed), CHAIN_ID);
            (vote.signer, vote.signature)
        })
        .collect();
    Certificate::new(payload, votes)
}

/// What the samples vote for at `height`: [`body`]`(height)` in view `height + 1`.
fn target(phase: Phase, height: u64) -> VoteTarget {
    VoteTarget {
        phase,
        height,
        view: height + 1,
        digest: body(height).digest(),
    }
}

/// The samples' checkpoint at `height`.
fn checkpoint(height: u64) -> CheckpointTarget {
    CheckpointTarget {
        height,
        state_root: Hash::digest(b"test-state", &[&height.to_le_bytes()]),
    }
}

/// A view change to round 3 signed by `seed`: a checkpoint at 10 signed by two validators,
/// and prepared certificates of three for heights 11 and 12.
fn view_change(seed: u8) -> Signed<ViewChange> {
    let view_change = ViewChange {
        round: 3,
        checkpoint: certificate(checkpoint(10), &[1, 2]),
        prepared: vec![
            certificate(target(Phase::Prepare, 11), &[1, 2, 3]),
            certificate(target(Phase::Prepare, 12), &[2, 3, 4]),
        ],
    };
    Signed::sign(view_change, &keypair(seed), CHAIN_ID)
}

/// A new view for round 3 on three view changes, re-proposing heights 11 and 12.
fn new_view() -> Signed<NewView> {
    let new_view = NewView {
        round: 3,
        view_changes: vec![view_change(1), view_change(2), view_change(3)],
        proposals: vec![(11, body(11).digest()), (12, body(12).digest())],
    };
    Signed::sign(new_view, &keypair(4), CHAIN_ID)
}

/// One message of every variant, in tag order.
fn every_message() -> Vec<Message> {
    vec![
        Message::PrePrepare {
            proposal: body(11),
            vote: Signed::sign(target(Phase::Prepare, 11), &keypair(1), CHAIN_ID),
        },
        Message::Vote(Signed::sign(
            target(Phase::Commit, 11),
            &keypair(2),
            CHAIN_ID,
        )),
        Message::Checkpoint(Signed::sign(checkpoint(10), &keypair(3), CHAIN_ID)),
        Message::CheckpointProof(certificate(checkpoint(10), &[1, 2, 3])),
        Message::ViewChange {
            view_change: view_change(2),
            bodies: vec![body(11), body(12)],
        },
        Message::NewView {
            new_view: new_view(),
            bodies: vec![body(11), body(12)],
        },
        Message::FetchNewView { round: 3 },
        Message::FetchProposal { height: 4, view: 5 },
    ]
}

/// One record of every variant, in tag order.
fn every_record() -> Vec<Record> {
    vec![
        Record::Prepared(Signed::sign(
            target(Phase::Prepare, 11),
            &keypair(1),
            CHAIN_ID,
        )),
        Record::Committed {
            vote: Signed::sign(target(Phase::Commit, 11), &keypair(1), CHAIN_ID),
            certificate: certificate(target(Phase::Prepare, 11), &[1, 2, 3]),
            proposal: body(11),
        },
        Record::ViewChange { round: 3 },
        Record::Stable(certificate(checkpoint(10), &[1, 2, 3])),
    ]
}

/// A message's encoding after its tag: each field's encoding in declaration order.
fn message_fields(message: &Message) -> Vec<u8> {
    match message {
        Message::PrePrepare { proposal, vote } => {
            [encoding::encode(proposal), encoding::encode(vote)].concat()
        }
        Message::Vote(vote) => encoding::encode(vote),
        Message::Checkpoint(vote) => encoding::encode(vote),
        Message::CheckpointProof(certificate) => encoding::encode(certificate),
        Message::ViewChange {
            view_change,
            bodies,
        } => [encoding::encode(view_change), encoding::encode(bodies)].concat(),
        Message::NewView { new_view, bodies } => {
            [encoding::encode(new_view), encoding::encode(bodies)].concat()
        }
        Message::FetchNewView { round } => encoding::encode(round),
        Message::FetchProposal { height, view } => {
            [encoding::encode(height), encoding::encode(view)].concat()
        }
    }
}

/// A record's encoding after its tag: each field's encoding in declaration order.
fn record_fields(record: &Record) -> Vec<u8> {
    match record {
        Record::Prepared(vote) => encoding::encode(vote),
        Record::Committed {
            vote,
            certificate,
            proposal,
        } => [
            encoding::encode(vote),
            encoding::encode(certificate),
            encoding::encode(proposal),
        ]
        .concat(),
        Record::ViewChange { round } => encoding::encode(round),
        Record::Stable(certificate) => encoding::encode(certificate),
    }
}

/// Every consensus message and record variant round-trips (with every prefix refused),
/// and is encoded as its variant's u32 tag followed by its fields in order; a signed
/// statement is its payload, signer and signature; a certificate its payload, then the
/// u64 vote count and the votes.
#[test]
fn every_message_and_record_variant_round_trips_with_fixed_layout() {
    let messages = every_message();
    assert_eq!(messages.len(), 8);
    for (tag, message) in messages.iter().enumerate() {
        check_value(message).unwrap();
        let bytes = encoding::encode(message);
        assert_eq!(&bytes[..4], &(tag as u32).to_le_bytes(), "{message:?}");
        assert_eq!(&bytes[4..], &message_fields(message)[..], "{message:?}");
    }
    let records = every_record();
    assert_eq!(records.len(), 4);
    for (tag, record) in records.iter().enumerate() {
        check_value(record).unwrap();
        let bytes = encoding::encode(record);
        assert_eq!(&bytes[..4], &(tag as u32).to_le_bytes(), "{record:?}");
        assert_eq!(&bytes[4..], &record_fields(record)[..], "{record:?}");
    }
    let vote = Signed::sign(target(Phase::Commit, 5), &keypair(1), CHAIN_ID);
    let bytes = encoding::encode(&vote);
    assert_eq!(bytes.len(), SIGNED_VOTE_LEN);
    assert_eq!(
        &bytes[..VOTE_TARGET_LEN],
        &encoding::encode(&vote.payload)[..]
    );
    assert_eq!(&bytes[VOTE_TARGET_LEN..VOTE_TARGET_LEN + 32], &address(1).0);
    assert_eq!(&bytes[VOTE_TARGET_LEN + 32..], &vote.signature.0);
    let signed_view_change = view_change(2);
    assert_eq!(
        encoding::encode(&signed_view_change),
        [
            encoding::encode(&signed_view_change.payload),
            address(2).0.to_vec(),
            signed_view_change.signature.0.to_vec()
        ]
        .concat()
    );
    let cert = certificate(checkpoint(10), &[3, 1, 2]);
    let bytes = encoding::encode(&cert);
    assert_eq!(
        &bytes[..CHECKPOINT_TARGET_LEN],
        &encoding::encode(&cert.payload)[..]
    );
    assert_eq!(
        &bytes[CHECKPOINT_TARGET_LEN..CHECKPOINT_TARGET_LEN + 8],
        &3u64.to_le_bytes()
    );
    assert_eq!(bytes.len(), CHECKPOINT_TARGET_LEN + 8 + 3 * (32 + 64));
    for vc in [view_change(1), view_change(3)] {
        check_value(&vc).unwrap();
        check_value(&vc.payload).unwrap();
    }
    let nv = new_view();
    check_value(&nv).unwrap();
    check_value(&nv.payload).unwrap();
}

/// The documented sizes of fixed-size values, and a vector's u64 length prefix.
#[test]
fn fixed_sizes_and_length_prefixes() {
    assert_eq!(encoding::encode(&Hash([7; 32])), vec![7; 32]);
    assert_eq!(encoding::encode(&Signature([9; 64])), vec![9; 64]);
    assert_eq!(encoding::encode(&Account::default()).len(), 40);
    assert_eq!(encoding::encode(&Phase::Commit), 1u32.to_le_bytes());
    assert_eq!(encoding::encode(&Phase::Prepare), 0u32.to_le_bytes());
    let header = block(1, vec![]).header;
    assert_eq!(encoding::encode(&header).len(), HEADER_LEN);
    assert_eq!(
        encoding::encode(&header.proposal).len(),
        PROPOSAL_HEADER_LEN
    );
    assert_eq!(
        encoding::encode(&header),
        [header.prev.0.to_vec(), encoding::encode(&header.proposal)].concat()
    );
    assert_eq!(
        encoding::encode(&target(Phase::Prepare, 1)).len(),
        VOTE_TARGET_LEN
    );
    assert_eq!(
        encoding::encode(&checkpoint(1)).len(),
        CHECKPOINT_TARGET_LEN
    );
    let checkpoint_vote = Signed::sign(checkpoint(1), &keypair(1), CHAIN_ID);
    assert_eq!(
        encoding::encode(&checkpoint_vote).len(),
        CHECKPOINT_TARGET_LEN + 32 + 64
    );
    assert_eq!(
        encoding::encode(&Message::FetchNewView { round: 7 }),
        [6u32.to_le_bytes().to_vec(), 7u64.to_le_bytes().to_vec()].concat()
    );
    assert_eq!(
        encoding::encode(&Record::ViewChange { round: 7 }),
        [2u32.to_le_bytes().to_vec(), 7u64.to_le_bytes().to_vec()].concat()
    );
    let proof = Proof {
        index: 1,
        size: 2,
        path: vec![Hash([3; 32])],
    };
    let bytes = encoding::encode(&proof);
    assert_eq!(&bytes[16..24], &1u64.to_le_bytes());
    assert_eq!(bytes.len(), 24 + 32);
    let p = proposal(3, vec![signed(1, 0, TxKind::Stake { amount: 1 })]);
    let bytes = encoding::encode(&p);
    assert_eq!(
        &bytes[PROPOSAL_HEADER_LEN..PROPOSAL_HEADER_LEN + 8],
        &1u64.to_le_bytes()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random byte strings of any length, fed to every decoder, never panic; any that
    /// decode are the exact encoding of the value they decode to.
    #[test]
    fn random_bytes_decode_canonically_or_not_at_all(bytes in vec(any::<u8>(), 0..600)) {
        check_every_decoder(&bytes)?;
    }

    /// The same for byte strings that are mostly zeros and mostly of the exact length of
    /// some wire value, which decode far more often (zero or small tags and lengths).
    #[test]
    fn sparse_bytes_decode_canonically_or_not_at_all(bytes in arb_sparse_bytes()) {
        check_every_decoder(&bytes)?;
    }

    /// Fixed-size values decode from any bytes of their size, canonically.
    #[test]
    fn fixed_size_values_accept_any_bytes(bytes in vec(any::<u8>(), 64)) {
        prop_assert_eq!(encoding::decode::<Hash>(&bytes[..32]), Ok(Hash(bytes[..32].try_into().unwrap())));
        prop_assert_eq!(encoding::decode::<Address>(&bytes[32..]), Ok(Address(bytes[32..].try_into().unwrap())));
        prop_assert_eq!(encoding::decode::<Signature>(&bytes), Ok(Signature(bytes[..].try_into().unwrap())));
        let checkpoint = CheckpointTarget {
            height: u64::from_le_bytes(bytes[..8].try_into().unwrap()),
            state_root: Hash(bytes[8..40].try_into().unwrap()),
        };
        prop_assert_eq!(encoding::decode::<CheckpointTarget>(&bytes[..40]), Ok(checkpoint));
        check_every_decoder(&bytes[..40])?;
        check_every_decoder(&bytes[..52])?;
        check_every_decoder(&bytes)?;
    }
}

/// Encoded sizes of wire values, so that sparse inputs often have exactly the length of
/// one: small values of every wire type (a phase, transaction kinds and errors, hashes,
/// accounts, consensus parameters, an empty genesis and account, proofs, proposals,
/// blocks, certificates, view changes and new views of zero to two elements, signed or
/// not), and minimal and sample messages and records of every variant.
fn wire_sizes() -> Vec<usize> {
    let len = |bytes: Vec<u8>| bytes.len();
    let tx = signed(1, 0, TxKind::Stake { amount: 1 });
    let transfer = signed(
        1,
        0,
        TxKind::Transfer {
            to: address(2),
            amount: 1,
        },
    );
    let vote = Signed::sign(target(Phase::Commit, 1), &keypair(1), CHAIN_ID);
    let checkpoint_vote = Signed::sign(checkpoint(1), &keypair(1), CHAIN_ID);
    let commits = |n: usize| Certificate {
        payload: vote.payload,
        votes: vec![(vote.signer, vote.signature); n],
    };
    let checkpoints = |n: usize| Certificate {
        payload: checkpoint_vote.payload,
        votes: vec![(vote.signer, vote.signature); n],
    };
    let proposals = |n: usize| proposal(1, vec![tx.clone(); n]);
    let view_changes = |n: usize| ViewChange {
        round: 1,
        checkpoint: checkpoints(n),
        prepared: vec![commits(n); n],
    };
    fn unsigned<T>(payload: T) -> Signed<T> {
        Signed {
            payload,
            signer: address(1),
            signature: Signature([1; 64]),
        }
    }
    let new_views = |n: usize| NewView {
        round: 1,
        view_changes: vec![unsigned(view_changes(n)); n],
        proposals: vec![(1, Hash::default()); n],
    };
    let mut g = genesis(&[(1, 5, MIN_STAKE)]);
    g.chain_id.clear();
    g.accounts.clear();
    let mut sizes = vec![
        len(encoding::encode(&Phase::Prepare)),
        len(encoding::encode(&tx.body().kind)),
        len(encoding::encode(&transfer.body().kind)),
        len(encoding::encode(&tx.body())),
        len(encoding::encode(&transfer.body())),
        len(encoding::encode(&tx)),
        len(encoding::encode(&transfer)),
        len(encoding::encode(&TxError::UnknownAccount(address(1)))),
        len(encoding::encode(&TxError::BadNonce {
            expected: 1,
            got: 2,
        })),
        len(encoding::encode(&Hash::default())),
        len(encoding::encode(&Signature([0; 64]))),
        len(encoding::encode(&Account::default())),
        len(encoding::encode(&ConsensusParams::default())),
        len(encoding::encode(&g)),
        len(encoding::encode(&GenesisAccount {
            name: String::new(),
            address: common::address(1),
            balance: 0,
            stake: 0,
        })),
        len(encoding::encode(&vote)),
        len(encoding::encode(&vote.payload)),
        len(encoding::encode(&checkpoint_vote)),
        len(encoding::encode(&checkpoint_vote.payload)),
    ];
    for n in 0..3 {
        sizes.extend([
            len(encoding::encode(&Proof {
                index: 0,
                size: 1,
                path: vec![Hash::default(); n],
            })),
            len(encoding::encode(&proposals(n))),
            len(encoding::encode(&block(1, vec![tx.clone(); n]))),
            len(encoding::encode(&commits(n))),
            len(encoding::encode(&checkpoints(n))),
            len(encoding::encode(&view_changes(n))),
            len(encoding::encode(&unsigned(view_changes(n)))),
            len(encoding::encode(&new_views(n))),
            len(encoding::encode(&unsigned(new_views(n)))),
        ]);
    }
    let minimal_messages = [
        Message::PrePrepare {
            proposal: proposals(0),
            vote: vote.clone(),
        },
        Message::CheckpointProof(checkpoints(0)),
        Message::ViewChange {
            view_change: unsigned(view_changes(0)),
            bodies: vec![],
        },
        Message::NewView {
            new_view: unsigned(new_views(0)),
            bodies: vec![],
        },
    ];
    sizes.extend(
        minimal_messages
            .iter()
            .chain(&every_message())
            .map(|m| len(encoding::encode(m))),
    );
    let minimal_records = [
        Record::Committed {
            vote: vote.clone(),
            certificate: commits(0),
            proposal: proposals(0),
        },
        Record::Stable(checkpoints(0)),
    ];
    sizes.extend(
        minimal_records
            .iter()
            .chain(&every_record())
            .map(|r| len(encoding::encode(r))),
    );
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// Mostly-zero bytes, usually of one of the [`wire_sizes`].
fn arb_sparse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let len = prop_oneof![3 => proptest::sample::select(wire_sizes()), 1 => 0usize..420];
    len.prop_flat_map(|len| {
        vec(
            prop_oneof![8 => Just(0u8), 1 => 1u8..4, 1 => any::<u8>()],
            len,
        )
    })
}

/// Length prefixes far beyond the input (up to u64::MAX) are refused at once, without
/// allocating for them.
/// The last is the most 96-byte votes the size limit lets a decoder reserve room for.
const HUGE_LENGTHS: [u64; 6] = [
    u64::MAX,
    u64::MAX / 2,
    1 << 40,
    1 << 32,
    (MAX_ENCODED_BYTES as u64) + 1,
    (MAX_ENCODED_BYTES as u64) / 96,
];

/// `prefix`, then each huge length, then `tail`: every one is refused by `T`'s decoder.
fn assert_huge_lengths_refused<T: Decode<()> + Debug>(prefix: &[u8], tail: &[u8]) {
    for len in HUGE_LENGTHS {
        let bytes = [prefix, &len.to_le_bytes(), tail].concat();
        let result = encoding::decode::<T>(&bytes);
        assert!(
            matches!(result, Err(EncodingError::Malformed(_))),
            "length {len}: {result:?}"
        );
    }
}

/// `value`'s encoding holds the length prefix `count` at byte `at` (checked, so the test
/// really aims at a length); with any huge length there instead, whether the rest of the
/// encoding follows or not, `T`'s decoder refuses the bytes.
fn assert_huge_length_at<T>(value: &T, at: usize, count: usize)
where
    T: Encode + Decode<()> + PartialEq + Debug,
{
    let bytes = encoding::encode(value);
    assert_eq!(
        &bytes[at..at + 8],
        &(count as u64).to_le_bytes(),
        "no length {count} at byte {at} of {value:?}"
    );
    assert_eq!(encoding::decode::<T>(&bytes).as_ref(), Ok(value));
    assert_huge_lengths_refused::<T>(&bytes[..at], &[]);
    assert_huge_lengths_refused::<T>(&bytes[..at], &bytes[at + 8..]);
}

/// A block or proposal whose transaction count claims up to u64::MAX transactions is
/// refused.
#[test]
fn huge_tx_count_refused() {
    let good = block(1, vec![signed(1, 0, TxKind::Stake { amount: 5 })]);
    let bytes = encoding::encode(&good);
    let header = &bytes[..HEADER_LEN];
    let one_tx = &bytes[HEADER_LEN + 8..];
    assert_huge_lengths_refused::<Block>(header, &[]);
    assert_huge_lengths_refused::<Block>(header, one_tx);
    // The count prefix really is where the test puts it.
    let rebuilt = [header, &1u64.to_le_bytes(), one_tx].concat();
    assert_eq!(encoding::decode::<Block>(&rebuilt), Ok(good));
    assert_huge_length_at(&body(4), PROPOSAL_HEADER_LEN, 2);
}

/// A certificate, of votes or of checkpoints, claiming up to u64::MAX votes is refused.
#[test]
fn huge_vote_count_refused() {
    let mut cert = CommitCertificate {
        payload: VoteTarget {
            phase: Phase::Commit,
            height: 1,
            view: 0,
            digest: Hash([1; 32]),
        },
        votes: vec![],
    };
    cert.votes.push((address(1), Signature([2; 64])));
    let bytes = encoding::encode(&cert);
    let head = &bytes[..VOTE_TARGET_LEN];
    assert_huge_lengths_refused::<CommitCertificate>(head, &[]);
    assert_huge_lengths_refused::<CommitCertificate>(head, &bytes[VOTE_TARGET_LEN + 8..]);
    assert_eq!(encoding::decode::<CommitCertificate>(&bytes), Ok(cert));
    assert_huge_length_at(
        &certificate(checkpoint(10), &[1, 2, 3]),
        CHECKPOINT_TARGET_LEN,
        3,
    );
}

/// Where each length prefix sits in an encoding, with the length it holds.
type Lengths = Vec<(usize, usize)>;

/// `lengths` of a value that sits `by` bytes into a larger encoding.
fn shifted(lengths: Lengths, by: usize) -> Lengths {
    lengths.into_iter().map(|(at, n)| (at + by, n)).collect()
}

/// The length prefix of a list starting at `at`, then those inside each item.
fn list_lengths<T: Encode>(items: &[T], at: usize, each: fn(&T) -> Lengths) -> Lengths {
    let mut out = vec![(at, items.len())];
    let mut at = at + 8;
    for item in items {
        out.extend(shifted(each(item), at));
        at += encoding::encode(item).len();
    }
    out
}

fn certificate_lengths<T: Encode>(certificate: &Certificate<T>) -> Lengths {
    vec![(
        encoding::encode(&certificate.payload).len(),
        certificate.votes.len(),
    )]
}

fn proposal_lengths(proposal: &Proposal) -> Lengths {
    vec![(PROPOSAL_HEADER_LEN, proposal.txs.len())]
}

/// A view change's: its checkpoint's votes, its prepared list, each certificate's votes.
fn view_change_lengths(view_change: &ViewChange) -> Lengths {
    let mut out = shifted(certificate_lengths(&view_change.checkpoint), 8);
    let prepared_at = 8 + encoding::encode(&view_change.checkpoint).len();
    out.extend(list_lengths(
        &view_change.prepared,
        prepared_at,
        certificate_lengths,
    ));
    out
}

fn signed_view_change_lengths(signed: &Signed<ViewChange>) -> Lengths {
    view_change_lengths(&signed.payload)
}

/// A new view's: its list of view changes, everything inside each, its proposal list.
fn new_view_lengths(new_view: &NewView) -> Lengths {
    let mut out = list_lengths(&new_view.view_changes, 8, signed_view_change_lengths);
    let proposals_at = 16
        + new_view
            .view_changes
            .iter()
            .map(|vc| encoding::encode(vc).len())
            .sum::<usize>();
    out.push((proposals_at, new_view.proposals.len()));
    out
}

/// Every length prefix in a message, after its 4-byte tag.
fn message_lengths(message: &Message) -> Lengths {
    let lengths = match message {
        Message::PrePrepare { proposal, .. } => proposal_lengths(proposal),
        Message::Vote(_)
        | Message::Checkpoint(_)
        | Message::FetchNewView { .. }
        | Message::FetchProposal { .. } => vec![],
        Message::CheckpointProof(certificate) => certificate_lengths(certificate),
        Message::ViewChange {
            view_change,
            bodies,
        } => {
            let mut out = view_change_lengths(&view_change.payload);
            let bodies_at = encoding::encode(view_change).len();
            out.extend(list_lengths(bodies, bodies_at, proposal_lengths));
            out
        }
        Message::NewView { new_view, bodies } => {
            let mut out = new_view_lengths(&new_view.payload);
            let bodies_at = encoding::encode(new_view).len();
            out.extend(list_lengths(bodies, bodies_at, proposal_lengths));
            out
        }
    };
    shifted(lengths, 4)
}

/// Every length prefix in a record, after its 4-byte tag.
fn record_lengths(record: &Record) -> Lengths {
    let lengths = match record {
        Record::Prepared(_) | Record::ViewChange { .. } => vec![],
        Record::Committed {
            certificate,
            proposal,
            ..
        } => {
            let mut out = shifted(certificate_lengths(certificate), SIGNED_VOTE_LEN);
            let proposal_at = SIGNED_VOTE_LEN + encoding::encode(certificate).len();
            out.extend(shifted(proposal_lengths(proposal), proposal_at));
            out
        }
        Record::Stable(certificate) => certificate_lengths(certificate),
    };
    shifted(lengths, 4)
}

/// Every length prefix anywhere inside a consensus message or record, set to any huge
/// length, is refused: a view change's checkpoint votes, its prepared list and each
/// prepared certificate's votes; a new view's list of view changes, everything inside
/// each of them, and its proposal list; the bodies beside a view change or new view and
/// each body's transactions; a pre-prepare's, a commit record's and a certificate's lists.
#[test]
fn huge_lengths_inside_consensus_messages_refused() {
    let mut checked = 0;
    for message in every_message() {
        for (at, count) in message_lengths(&message) {
            assert_huge_length_at(&message, at, count);
            checked += 1;
        }
    }
    for record in every_record() {
        for (at, count) in record_lengths(&record) {
            assert_huge_length_at(&record, at, count);
            checked += 1;
        }
    }
    let signed_view_change = view_change(1);
    for (at, count) in view_change_lengths(&signed_view_change.payload) {
        assert_huge_length_at(&signed_view_change.payload, at, count);
        assert_huge_length_at(&signed_view_change, at, count);
        checked += 1;
    }
    let signed_new_view = new_view();
    for (at, count) in new_view_lengths(&signed_new_view.payload) {
        assert_huge_length_at(&signed_new_view.payload, at, count);
        assert_huge_length_at(&signed_new_view, at, count);
        checked += 1;
    }
    // Pre-prepare 1, checkpoint proof 1, view change 4 + 1 + 2, new view 1 + 3 * 4 + 1 +
    // 1 + 2; commit record 2, stable record 1; then a view change 4, a new view 14.
    assert_eq!(checked, 1 + 1 + 7 + 17 + 3 + 4 + 14);
}

/// A Merkle proof claiming a path of up to u64::MAX hashes is refused.
#[test]
fn huge_proof_path_refused() {
    let proof = Proof {
        index: 0,
        size: 2,
        path: vec![Hash([5; 32])],
    };
    let bytes = encoding::encode(&proof);
    assert_huge_lengths_refused::<Proof>(&bytes[..16], &[]);
    assert_huge_lengths_refused::<Proof>(&bytes[..16], &bytes[24..]);
}

/// A genesis whose chain id, account list or account name claims a huge length is
/// refused.
#[test]
fn huge_genesis_lengths_refused() {
    let g = genesis(&[(1, 5, MIN_STAKE)]);
    let bytes = encoding::encode(&g);
    // The chain id's length comes first.
    assert_huge_lengths_refused::<Genesis>(&[], &bytes[8..]);
    // After the chain id: time (8), min stake (16), epoch (8), consensus (44).
    let accounts_at = 8 + g.chain_id.len() + 8 + 16 + 8 + 44;
    assert_eq!(&bytes[accounts_at..accounts_at + 8], &1u64.to_le_bytes());
    assert_huge_lengths_refused::<Genesis>(&bytes[..accounts_at], &bytes[accounts_at + 8..]);
    assert_huge_lengths_refused::<Genesis>(&bytes[..accounts_at + 8], &bytes[accounts_at + 16..]);
}

/// Inputs longer than `MAX_ENCODED_BYTES` are refused as `TooLarge` by every decoder,
/// before any decoding.
#[test]
fn oversized_input_refused() {
    let oversized = vec![0u8; MAX_ENCODED_BYTES + 1];
    macro_rules! too_large {
        ($($ty:ty),*) => {
            $(assert_eq!(
                encoding::decode::<$ty>(&oversized).map(|_| ()),
                Err(EncodingError::TooLarge { len: MAX_ENCODED_BYTES + 1, max: MAX_ENCODED_BYTES }),
                "{}",
                stringify!($ty)
            );)*
        };
    }
    with_every_wire_type!(too_large);
    // At the limit it is an ordinary decode: here, zeros after a 32-byte hash.
    assert_eq!(
        encoding::decode::<Hash>(&oversized[..MAX_ENCODED_BYTES]),
        Err(EncodingError::TrailingBytes(MAX_ENCODED_BYTES - 32))
    );
}

/// A value whose encoding is exactly `MAX_ENCODED_BYTES` long decodes; one byte more is
/// `TooLarge`.
#[test]
fn encoding_at_the_limit_decodes() {
    let mut g = genesis(&[(1, 5, MIN_STAKE)]);
    g.accounts.clear();
    g.chain_id.clear();
    let base = encoding::encode(&g).len();
    g.chain_id = "c".repeat(MAX_ENCODED_BYTES - base);
    let bytes = encoding::encode(&g);
    assert_eq!(bytes.len(), MAX_ENCODED_BYTES);
    assert!(encoding::decode::<Genesis>(&bytes) == Ok(g));
    let longer = [&bytes[..], &[0]].concat();
    assert!(matches!(
        encoding::decode::<Genesis>(&longer),
        Err(EncodingError::TooLarge { .. })
    ));
}

/// The largest transaction: a transfer (or creation) of the largest amount.
fn largest_tx(nonce: u64) -> Transaction {
    signed(
        1,
        nonce,
        TxKind::Transfer {
            to: address(2),
            amount: u128::MAX,
        },
    )
}

/// `count` copies of [`largest_tx`], with distinct nonces (only the first one signed:
/// signing is not what is measured here).
fn largest_txs(count: u64) -> Vec<Transaction> {
    let tx = largest_tx(0);
    (0..count)
        .map(|nonce| {
            let body = TxBody {
                nonce,
                ..tx.body().clone()
            };
            Transaction::new(body, *tx.signature())
        })
        .collect()
}

/// The largest block, a block of the most transactions any genesis allows, each of the
/// largest kind, decodes well within the limit; so do the same transactions as a
/// proposal, in a pre-prepare and in a commit record.
#[test]
fn largest_block_decodes() {
    let txs = largest_txs(u64::from(almagill::genesis::MAX_BLOCK_TXS));
    let b = Block {
        header: block(1, vec![]).header,
        txs,
    };
    let bytes = encoding::encode(&b);
    assert!(bytes.len() < MAX_ENCODED_BYTES / 4);
    assert!(encoding::decode::<Block>(&bytes) == Ok(b.clone()));
    let p = proposal(1, b.txs);
    let vote = Signed::sign(target(Phase::Prepare, 1), &keypair(1), CHAIN_ID);
    let pre_prepare = Message::PrePrepare {
        proposal: p.clone(),
        vote,
    };
    let bytes = encoding::encode(&pre_prepare);
    assert!(bytes.len() < MAX_ENCODED_BYTES / 4);
    assert!(encoding::decode::<Message>(&bytes) == Ok(pre_prepare));
    let record = Record::Committed {
        vote: Signed::sign(target(Phase::Commit, 1), &keypair(1), CHAIN_ID),
        certificate: certificate(target(Phase::Prepare, 1), &[1, 2, 3, 4]),
        proposal: p,
    };
    let bytes = encoding::encode(&record);
    assert!(bytes.len() < MAX_ENCODED_BYTES / 4);
    assert!(encoding::decode::<Record>(&bytes) == Ok(record));
}

/// Under the default consensus parameters, the largest view change and new view of four
/// validators decode within the limit: a prepared certificate of every validator, and a
/// full body of the largest transactions, for each of the `2 * checkpoint_interval`
/// heights a view change can hold above its checkpoint; for a new view, three such view
/// changes beside the bodies.
#[test]
fn largest_view_change_and_new_view_decode_with_default_parameters() {
    let params = ConsensusParams::default();
    let heights = 10..10 + 2 * params.checkpoint_interval;
    let validators = [1, 2, 3, 4];
    let full = largest_txs(u64::from(params.max_block_txs));
    let bodies: Vec<Proposal> = heights
        .clone()
        .map(|height| proposal(height + 1, full.clone()))
        .collect();
    let view_change = |seed: u8| {
        let payload = ViewChange {
            round: 1,
            checkpoint: certificate(checkpoint(10), &validators),
            prepared: bodies
                .iter()
                .map(|b| {
                    let t = VoteTarget {
                        phase: Phase::Prepare,
                        height: b.header.height,
                        view: b.header.view,
                        digest: b.digest(),
                    };
                    // One real signature copied to every signer: sizes are what matters.
                    let vote = Signed::sign(t, &keypair(seed), CHAIN_ID);
                    Certificate {
                        payload: t,
                        votes: validators
                            .iter()
                            .map(|&s| (address(s), vote.signature))
                            .collect(),
                    }
                })
                .collect(),
        };
        Signed::sign(payload, &keypair(seed), CHAIN_ID)
    };
    let message = Message::ViewChange {
        view_change: view_change(1),
        bodies: bodies.clone(),
    };
    let bytes = encoding::encode(&message);
    assert!(bytes.len() <= MAX_ENCODED_BYTES, "{} bytes", bytes.len());
    assert!(encoding::decode::<Message>(&bytes) == Ok(message));
    let new_view = NewView {
        round: 1,
        view_changes: vec![view_change(1), view_change(2), view_change(3)],
        proposals: bodies
            .iter()
            .map(|b| (b.header.height, b.digest()))
            .collect(),
    };
    let message = Message::NewView {
        new_view: Signed::sign(new_view, &keypair(2), CHAIN_ID),
        bodies,
    };
    let bytes = encoding::encode(&message);
    assert!(bytes.len() <= MAX_ENCODED_BYTES, "{} bytes", bytes.len());
    assert!(encoding::decode::<Message>(&bytes) == Ok(message));
}

/// Every strict prefix of valid encodings, and the empty input, is refused by the
/// decoders of every type that is at least that long, and by its own decoder.
#[test]
fn truncated_encodings_refused() {
    assert_every_decoder_refuses(&[]);
    let txs = vec![
        signed(
            1,
            3,
            TxKind::Transfer {
                to: address(2),
                amount: 77,
            },
        ),
        signed(2, 0, TxKind::Unstake { amount: 1 }),
    ];
    let b = block(4, txs.clone());
    let bytes = encoding::encode(&b);
    for len in 0..bytes.len() {
        assert!(
            encoding::decode::<Block>(&bytes[..len]).is_err(),
            "prefix {len}"
        );
    }
    let g = genesis(&[(1, 5, MIN_STAKE), (2, 6, 0)]);
    let bytes = encoding::encode(&g);
    for len in 0..bytes.len() {
        assert!(
            encoding::decode::<Genesis>(&bytes[..len]).is_err(),
            "prefix {len}"
        );
    }
    // Every message and record variant, down to the nested view changes of a new view.
    for message in every_message() {
        let bytes = encoding::encode(&message);
        for len in 0..bytes.len() {
            assert!(
                encoding::decode::<Message>(&bytes[..len]).is_err(),
                "prefix {len} of {message:?}"
            );
        }
    }
    for record in every_record() {
        let bytes = encoding::encode(&record);
        for len in 0..bytes.len() {
            assert!(
                encoding::decode::<Record>(&bytes[..len]).is_err(),
                "prefix {len} of {record:?}"
            );
        }
    }
}

/// Out-of-range enum tags (a fifth transaction kind, a third phase, a sixth error, an
/// eighth message, a fifth record, and a third phase deep inside a message) and invalid
/// UTF-8 in a string are refused.
#[test]
fn invalid_tags_and_strings_refused() {
    let mut kind = encoding::encode(&TxKind::Stake { amount: 1 });
    kind[..4].copy_from_slice(&4u32.to_le_bytes());
    assert!(encoding::decode::<TxKind>(&kind).is_err());
    kind[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(encoding::decode::<TxKind>(&kind).is_err());
    assert!(encoding::decode::<Phase>(&2u32.to_le_bytes()).is_err());
    let mut error = encoding::encode(&TxError::UnknownAccount(address(1)));
    error[..4].copy_from_slice(&5u32.to_le_bytes());
    assert!(encoding::decode::<TxError>(&error).is_err());
    for tag in [7, 8, u32::MAX] {
        let mut message = encoding::encode(&Message::FetchNewView { round: 1 });
        message[..4].copy_from_slice(&tag.to_le_bytes());
        assert!(encoding::decode::<Message>(&message).is_err(), "tag {tag}");
    }
    for tag in [4, u32::MAX] {
        let mut record = encoding::encode(&Record::ViewChange { round: 1 });
        record[..4].copy_from_slice(&tag.to_le_bytes());
        assert!(encoding::decode::<Record>(&record).is_err(), "tag {tag}");
    }
    // The phase of a vote: in a vote message, in a pre-prepare after its proposal, and in
    // the first prepared certificate of the first view change inside a new view.
    let messages = every_message();
    let new_view = match &messages[5] {
        Message::NewView { new_view, .. } => new_view,
        other => panic!("not a new view: {other:?}"),
    };
    let first_view_change = &new_view.payload.view_changes[0].payload;
    let prepared_at = 4 + 8 + 8 + 8 + encoding::encode(&first_view_change.checkpoint).len() + 8;
    for (message, phase_at) in [
        (&messages[1], 4),
        (&messages[0], 4 + encoding::encode(&body(11)).len()),
        (&messages[5], prepared_at),
    ] {
        let mut bytes = encoding::encode(message);
        let phase = u32::from_le_bytes(bytes[phase_at..phase_at + 4].try_into().unwrap());
        assert!(phase < 2, "no phase at byte {phase_at}");
        bytes[phase_at..phase_at + 4].copy_from_slice(&2u32.to_le_bytes());
        assert!(encoding::decode::<Message>(&bytes).is_err(), "{message:?}");
        bytes[phase_at..phase_at + 4].copy_from_slice(&1u32.to_le_bytes());
        assert!(encoding::decode::<Message>(&bytes).is_ok(), "{message:?}");
    }
    let mut g = genesis(&[(1, 5, MIN_STAKE)]);
    g.chain_id = "ab".into();
    let mut bytes = encoding::encode(&g);
    bytes[8] = 0xff;
    assert!(encoding::decode::<Genesis>(&bytes).is_err());
}
