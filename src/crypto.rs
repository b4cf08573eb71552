//! Hashes, addresses, keys and the one signature-acceptance rule of the chain.
//!
//! Signing uses ed25519-dalek. Verification, single or batched, uses ed25519-zebra, which
//! implements ZIP-215: its batch and single checks accept exactly the same signatures. A
//! validator that batch-verifies and one that verifies one by one therefore always agree on
//! whether a block is valid; with rules where the two can differ, a crafted signature could
//! split the validators.

use std::cell::Cell;
use std::fmt;

use bincode::{Decode, Encode};
use ed25519_dalek::Signer;
use thiserror::Error;

/// Domain tags: every hash and signature starts with one, so bytes made for one purpose can
/// never be taken for another. Each ends in NUL, so no tag is a prefix of another.
pub mod domain {
    /// Signature over a transaction body.
    pub const TX_SIGN: &[u8] = b"almagill/tx-sign\0";
    /// Hash of a signed transaction: its identity.
    pub const TX_HASH: &[u8] = b"almagill/tx-hash\0";
    /// Hash of a block header: the block's identity.
    pub const BLOCK: &[u8] = b"almagill/block\0";
    /// Hash of a proposal header: what consensus votes on.
    pub const PROPOSAL: &[u8] = b"almagill/proposal\0";
    /// Signature on a checkpoint vote.
    pub const CHECKPOINT: &[u8] = b"almagill/checkpoint\0";
    /// Signature on a view change.
    pub const VIEW_CHANGE: &[u8] = b"almagill/view-change\0";
    /// Signature on a new view.
    pub const NEW_VIEW: &[u8] = b"almagill/new-view\0";
    /// Signature on a consensus vote.
    pub const VOTE: &[u8] = b"almagill/vote\0";
    /// Merkle leaf.
    pub const MERKLE_LEAF: &[u8] = b"almagill/merkle-leaf\0";
    /// Merkle inner node.
    pub const MERKLE_NODE: &[u8] = b"almagill/merkle-node\0";
    /// Root of an empty Merkle tree.
    pub const MERKLE_EMPTY: &[u8] = b"almagill/merkle-empty\0";
    /// Root of a non-empty Merkle tree: its leaf count and top node.
    pub const MERKLE_ROOT: &[u8] = b"almagill/merkle-root\0";
    /// A bucket of accounts in the state tree.
    pub const STATE_BUCKET: &[u8] = b"almagill/state-bucket\0";
    /// An inner node of the state tree.
    pub const STATE_NODE: &[u8] = b"almagill/state-node\0";
    /// The state root over the accounts' root and the validator sets.
    pub const STATE_ROOT: &[u8] = b"almagill/state-root\0";
    /// The genesis document.
    pub const GENESIS: &[u8] = b"almagill/genesis\0";
    /// Randomness for batch verification, derived from the batch itself.
    pub const BATCH_SEED: &[u8] = b"almagill/batch-seed\0";
}

/// Why a hex string could not be read as a hash, address or key.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HexError {
    /// Wrong number of characters.
    #[error("expected {expected} hex characters, got {got}")]
    Length {
        /// Characters expected.
        expected: usize,
        /// Characters given.
        got: usize,
    },
    /// Not lowercase or uppercase hex.
    #[error("not hex: {0}")]
    NotHex(String),
}

fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    if s.len() != 2 * N {
        return Err(HexError::Length {
            expected: 2 * N,
            got: s.len(),
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|e| HexError::NotHex(e.to_string()))?;
    Ok(out)
}

/// A blake3 digest: the identity of transactions, blocks and states.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Encode, Decode)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Hashes `parts` under a domain tag.
    pub fn digest(domain: &[u8], parts: &[&[u8]]) -> Hash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(domain);
        for part in parts {
            hasher.update(part);
        }
        Hash(*hasher.finalize().as_bytes())
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Hash, HexError> {
        parse_hex(s).map(Hash)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.short())
    }
}

impl Hash {
    /// The first 12 hex characters: how logs name a block or transaction.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

/// An account and a validator are named by their ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct Address(pub [u8; 32]);

impl Address {
    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Address, HexError> {
        parse_hex(s).map(Address)
    }

    /// The first 8 hex characters: how logs name a key that has no configured name.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", hex::encode(&self.0[..6]))
    }
}

/// An ed25519 signature, kept as raw bytes so that decoding never rejects one early:
/// validity is decided only by [`verify`].
#[derive(Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}..)", &hex::encode(&self.0[..6]))
    }
}

/// A signing key: an account's or a validator's secret.
#[derive(Clone)]
pub struct Keypair(ed25519_dalek::SigningKey);

impl Keypair {
    /// Builds the key from its 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Reads a key file's text: the 64-hex-character seed, surrounding whitespace allowed.
    pub fn from_key_file(text: &str) -> Result<Keypair, HexError> {
        parse_hex(text.trim()).map(Keypair::from_seed)
    }

    /// The text of a key file for this key (see [`Keypair::from_key_file`]).
    pub fn to_key_file(&self) -> String {
        format!("{}\n", hex::encode(self.0.to_bytes()))
    }

    /// The address (public key) of this key.
    pub fn address(&self) -> Address {
        Address(self.0.verifying_key().to_bytes())
    }

    /// Signs `body` for `purpose` on chain `chain_id`; see [`signing_message`].
    pub fn sign(&self, purpose: &[u8], chain_id: &str, body: &[u8]) -> Signature {
        let message = signing_message(purpose, chain_id, body);
        Signature(self.0.sign(&message).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.address())
    }
}

/// The exact bytes a signature covers: domain tag, chain id (length-prefixed), then the
/// canonical body. Binding the chain id makes a signature for one chain useless on another.
pub fn signing_message(purpose: &[u8], chain_id: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(purpose.len() + 2 + chain_id.len() + body.len());
    message.extend_from_slice(purpose);
    message.extend_from_slice(&(chain_id.len() as u16).to_le_bytes());
    message.extend_from_slice(chain_id.as_bytes());
    message.extend_from_slice(body);
    message
}

thread_local! {
    /// Signatures checked on this thread so far.
    static CHECKED: Cell<u64> = const { Cell::new(0) };
}

/// How many signatures this thread has checked so far (a batch counts each of its items).
/// Signature checks are the costly part of handling a message, so this is how tests show
/// that what a hostile peer can make a node verify is bounded.
pub fn signatures_checked() -> u64 {
    CHECKED.with(Cell::get)
}

fn count_checks(n: usize) {
    CHECKED.with(|c| c.set(c.get().saturating_add(n as u64)));
}

/// Checks one signature under the chain's rule (ZIP-215).
pub fn verify(signer: &Address, message: &[u8], signature: &Signature) -> bool {
    count_checks(1);
    let Ok(key) = ed25519_zebra::VerificationKey::try_from(signer.0) else {
        return false;
    };
    key.verify(&ed25519_zebra::Signature::from_bytes(&signature.0), message)
        .is_ok()
}

/// One signature to check: who signed, what they signed, and the signature.
pub struct SignedMessage<'a> {
    /// The claimed signer.
    pub signer: Address,
    /// The exact signed bytes ([`signing_message`]).
    pub message: &'a [u8],
    /// The signature to check.
    pub signature: Signature,
}

/// Checks many signatures at once; the answer for each is exactly what [`verify`] would say.
///
/// A batch that passes costs about half as much as checking one by one. When it fails, each
/// signature is checked alone to find the bad ones. The batch's random weights come from a
/// hash of the whole batch, so the check is deterministic, yet no one can choose signatures
/// that fool it without first breaking blake3.
pub fn verify_batch(items: &[SignedMessage<'_>]) -> Vec<bool> {
    if items.len() < 2 {
        return items
            .iter()
            .map(|i| verify(&i.signer, i.message, &i.signature))
            .collect();
    }
    count_checks(items.len());
    let mut seed = blake3::Hasher::new();
    seed.update(domain::BATCH_SEED);
    let mut batch = ed25519_zebra::batch::Verifier::new();
    for item in items {
        seed.update(&item.signer.0);
        seed.update(&item.signature.0);
        seed.update(&(item.message.len() as u64).to_le_bytes());
        seed.update(item.message);
        batch.queue((
            ed25519_zebra::VerificationKeyBytes::from(item.signer.0),
            ed25519_zebra::Signature::from_bytes(&item.signature.0),
            item.message,
        ));
    }
    if batch.verify(HashRng(seed.finalize_xof())).is_ok() {
        return vec![true; items.len()];
    }
    items
        .iter()
        .map(|i| verify(&i.signer, i.message, &i.signature))
        .collect()
}

/// The position of the first signature that does not verify, if any.
pub fn first_invalid(items: &[SignedMessage<'_>]) -> Option<usize> {
    verify_batch(items).iter().position(|ok| !ok)
}

/// A deterministic random stream: blake3's extendable output over the batch being checked.
struct HashRng(blake3::OutputReader);

impl rand_core::RngCore for HashRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

/// blake3's output is a pseudorandom function of its input, unpredictable without it.
impl rand_core::CryptoRng for HashRng {}
