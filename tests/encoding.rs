//! The canonical encoding: every wire type round-trips, every decodable byte string is the
//! one encoding of its value, and hostile input (random, truncated, padded, oversized, or
//! with huge length prefixes) is refused with an error, never a panic or a huge
//! allocation.

mod common;

use std::fmt::Debug;

use almagill::block::{Block, BlockHeader};
use almagill::certificate::{CommitCertificate, Phase, VoteTarget};
use almagill::crypto::{Address, Hash, Signature};
use almagill::encoding::{self, EncodingError, MAX_ENCODED_BYTES};
use almagill::genesis::{ConsensusParams, Genesis, GenesisAccount};
use almagill::ledger::{Account, TxError};
use almagill::merkle::Proof;
use almagill::tx::{Transaction, TxBody, TxKind};
use bincode::{Decode, Encode};
use common::{
    address, arb_account, arb_address, arb_block, arb_block_header, arb_commit_certificate,
    arb_genesis, arb_hash, arb_proof, arb_signature, arb_transaction, arb_tx_body, arb_tx_error,
    arb_tx_kind, arb_vote_target, block, genesis, signed, MIN_STAKE,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

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
    check_canonical::<Transaction>(bytes)?;
    check_canonical::<TxBody>(bytes)?;
    check_canonical::<TxKind>(bytes)?;
    check_canonical::<BlockHeader>(bytes)?;
    check_canonical::<Block>(bytes)?;
    check_canonical::<CommitCertificate>(bytes)?;
    check_canonical::<VoteTarget>(bytes)?;
    check_canonical::<Phase>(bytes)?;
    check_canonical::<Proof>(bytes)?;
    check_canonical::<Hash>(bytes)?;
    check_canonical::<Address>(bytes)?;
    check_canonical::<Signature>(bytes)?;
    check_canonical::<Account>(bytes)?;
    check_canonical::<TxError>(bytes)?;
    check_canonical::<Genesis>(bytes)?;
    check_canonical::<GenesisAccount>(bytes)?;
    check_canonical::<ConsensusParams>(bytes)?;
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
    refuse!(
        Transaction,
        TxBody,
        TxKind,
        BlockHeader,
        Block,
        CommitCertificate,
        VoteTarget,
        Phase,
        Proof,
        Hash,
        Address,
        Signature,
        Account,
        TxError,
        Genesis,
        GenesisAccount,
        ConsensusParams
    );
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
    /// Block headers round-trip; mutations stay canonical.
    block_header_round_trip: BlockHeader = arb_block_header();
    /// Blocks of up to four transactions round-trip; mutations stay canonical.
    block_round_trip: Block = arb_block();
    /// Commit certificates round-trip; mutations stay canonical.
    commit_certificate_round_trip: CommitCertificate = arb_commit_certificate();
    /// Vote targets of both phases round-trip; mutations stay canonical.
    vote_target_round_trip: VoteTarget = arb_vote_target();
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
        check_value(&tx.body).unwrap();
        check_value(&kind).unwrap();
        let bytes = encoding::encode(&tx);
        assert_eq!(&bytes[..32], &address(1).0);
        assert_eq!(&bytes[32..40], &u64::MAX.to_le_bytes());
        assert_eq!(&bytes[40..44], &(tag as u32).to_le_bytes());
        assert_eq!(&bytes[bytes.len() - 64..], &tx.signature.0);
        let amount_at = if tag < 2 { 44 + 32 } else { 44 };
        assert_eq!(
            &bytes[amount_at..amount_at + 16],
            &kind.amount().to_le_bytes()
        );
        assert_eq!(bytes.len(), amount_at + 16 + 64);
    }
}

/// The documented sizes of fixed-size values, and a vector's u64 length prefix.
#[test]
fn fixed_sizes_and_length_prefixes() {
    assert_eq!(encoding::encode(&Hash([7; 32])), vec![7; 32]);
    assert_eq!(encoding::encode(&Signature([9; 64])), vec![9; 64]);
    assert_eq!(encoding::encode(&Account::default()).len(), 40);
    assert_eq!(encoding::encode(&Phase::Commit), 1u32.to_le_bytes());
    let header = block(1, vec![]).header;
    assert_eq!(encoding::encode(&header).len(), HEADER_LEN);
    let proof = Proof {
        index: 1,
        size: 2,
        path: vec![Hash([3; 32])],
    };
    let bytes = encoding::encode(&proof);
    assert_eq!(&bytes[16..24], &1u64.to_le_bytes());
    assert_eq!(bytes.len(), 24 + 32);
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
        check_every_decoder(&bytes[..40])?;
        check_every_decoder(&bytes)?;
    }
}

/// Encoded sizes of wire values: a phase, transaction kinds and errors, hashes, accounts,
/// consensus parameters, vote targets, bodies, transactions, headers, blocks, proofs and
/// certificates of a few elements, and an empty genesis.
const WIRE_SIZES: [usize; 22] = [
    4, 20, 32, 36, 40, 52, 56, 60, 64, 84, 88, 92, 120, 124, 128, 152, 156, 248, 252, 284, 376, 408,
];

/// Mostly-zero bytes, usually of one of the [`WIRE_SIZES`].
fn arb_sparse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let len = prop_oneof![3 => proptest::sample::select(&WIRE_SIZES[..]), 1 => 0usize..420];
    len.prop_flat_map(|len| {
        vec(
            prop_oneof![8 => Just(0u8), 1 => 1u8..4, 1 => any::<u8>()],
            len,
        )
    })
}

/// Encoded length of a block header.
const HEADER_LEN: usize = 8 + 8 + 32 + 8 + 32 + 32;

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

/// A block whose transaction count claims up to u64::MAX transactions is refused.
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
}

/// A certificate claiming up to u64::MAX votes is refused.
#[test]
fn huge_vote_count_refused() {
    let mut cert = CommitCertificate {
        height: 1,
        view: 0,
        block: Hash([1; 32]),
        votes: vec![],
    };
    cert.votes.push((address(1), Signature([2; 64])));
    let bytes = encoding::encode(&cert);
    let head = &bytes[..48];
    assert_huge_lengths_refused::<CommitCertificate>(head, &[]);
    assert_huge_lengths_refused::<CommitCertificate>(head, &bytes[56..]);
    assert_eq!(encoding::decode::<CommitCertificate>(&bytes), Ok(cert));
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
    // After the chain id: time (8), min stake (16), epoch (8), consensus (36).
    let accounts_at = 8 + g.chain_id.len() + 8 + 16 + 8 + 36;
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
    too_large!(
        Transaction,
        TxBody,
        TxKind,
        BlockHeader,
        Block,
        CommitCertificate,
        VoteTarget,
        Phase,
        Proof,
        Hash,
        Address,
        Signature,
        Account,
        TxError,
        Genesis,
        GenesisAccount,
        ConsensusParams
    );
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

/// The largest real message, a block of the most transactions any genesis allows, each of
/// the largest kind, decodes well within the limit.
#[test]
fn largest_block_decodes() {
    let tx = signed(
        1,
        0,
        TxKind::Transfer {
            to: address(2),
            amount: u128::MAX,
        },
    );
    let txs: Vec<Transaction> = (0..u64::from(almagill::genesis::MAX_BLOCK_TXS))
        .map(|nonce| Transaction {
            body: TxBody {
                nonce,
                ..tx.body.clone()
            },
            ..tx.clone()
        })
        .collect();
    let b = Block {
        header: block(1, vec![]).header,
        txs,
    };
    let bytes = encoding::encode(&b);
    assert!(bytes.len() < MAX_ENCODED_BYTES / 4);
    assert!(encoding::decode::<Block>(&bytes) == Ok(b));
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
}

/// Out-of-range enum tags (a fifth transaction kind, a third phase, a sixth error) and
/// invalid UTF-8 in a string are refused.
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
    let mut g = genesis(&[(1, 5, MIN_STAKE)]);
    g.chain_id = "ab".into();
    let mut bytes = encoding::encode(&g);
    bytes[8] = 0xff;
    assert!(encoding::decode::<Genesis>(&bytes).is_err());
}
