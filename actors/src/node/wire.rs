//! What travels between nodes on a peer connection, and the handshake that opens one.
//!
//! Frames are a u32 big-endian length and a body in the canonical encoding, at most
//! [`MAX_FRAME`] bytes: the largest real message (a new view carrying full blocks) fits;
//! anything larger is a protocol violation and drops the connection.

use std::time::Duration;

use almagill::block::Block;
use almagill::certificate::CommitCertificate;
use almagill::consensus::Message;
use almagill::crypto::{self, Address, Hash, Keypair, Signature};
use almagill::encoding::{self, MAX_ENCODED_BYTES};
use almagill::tx::Transaction;
use anyhow::{anyhow, bail, Context, Result};
use bincode::{Decode, Encode};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// The largest frame a peer may send.
pub const MAX_FRAME: usize = MAX_ENCODED_BYTES;

/// How long a connection may take to prove who is on the other end.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Domain tag of the handshake signature.
const HANDSHAKE: &[u8] = b"almagill/handshake\0";

/// Everything one node sends another.
#[derive(Clone, Debug, Encode, Decode)]
pub enum Wire {
    /// First frame each way: who I am, on which chain, and a challenge for you to sign.
    Hello(Hello),
    /// Second frame: my signature over your challenge and both our keys.
    Proof(Signature),
    /// A consensus message.
    Consensus(Message),
    /// Transactions admitted to the sender's mempool (gossip).
    Txs(Vec<Transaction>),
    /// Asks for committed blocks `from..=to` with their certificates.
    GetBlocks {
        /// First height wanted.
        from: u64,
        /// Last height wanted.
        to: u64,
    },
    /// Committed blocks with their certificates, in height order.
    Blocks(Vec<(Block, CommitCertificate)>),
}

/// The opening frame of a connection.
#[derive(Clone, Debug, Encode, Decode)]
pub struct Hello {
    /// The chain the sender is on.
    pub chain_id: String,
    /// Its genesis hash: the same chain id with another genesis is another chain.
    pub genesis: Hash,
    /// The sender's validator key.
    pub address: Address,
    /// Random bytes the receiver must sign.
    pub challenge: [u8; 32],
}

/// A framed TCP connection.
pub type Connection = Framed<TcpStream, LengthDelimitedCodec>;

/// Frames a socket with the size limit.
pub fn frame(stream: TcpStream) -> Connection {
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec();
    Framed::new(stream, codec)
}

/// Encodes a message for the wire once; the bytes can be sent to every peer.
pub fn encode(wire: &Wire) -> Bytes {
    Bytes::from(encoding::encode(wire))
}

/// What the local node brings to a handshake.
pub struct Identity<'a> {
    /// Our key.
    pub key: &'a Keypair,
    /// Our chain id.
    pub chain_id: &'a str,
    /// Our genesis hash.
    pub genesis: Hash,
}

async fn next(connection: &mut Connection) -> Result<Wire> {
    let frame = connection
        .next()
        .await
        .ok_or_else(|| anyhow!("the connection closed during the handshake"))?
        .context("reading the handshake")?;
    encoding::decode(&frame).context("a malformed handshake frame")
}

/// Proves who we are and learns who the peer is: each side signs the other's fresh
/// challenge. `accept` decides whether a proven key may connect (a configured validator).
pub async fn handshake(
    connection: &mut Connection,
    me: &Identity<'_>,
    accept: impl Fn(&Address) -> bool,
) -> Result<Address> {
    let mut challenge = [0u8; 32];
    getrandom::fill(&mut challenge).map_err(|e| anyhow!("no randomness: {e}"))?;
    let hello = Wire::Hello(Hello {
        chain_id: me.chain_id.to_string(),
        genesis: me.genesis,
        address: me.key.address(),
        challenge,
    });
    let exchange = async {
        connection.send(encode(&hello)).await?;
        let Wire::Hello(theirs) = next(connection).await? else {
            bail!("the peer did not open with a hello");
        };
        if theirs.chain_id != me.chain_id || theirs.genesis != me.genesis {
            bail!("the peer is on chain `{}`, not ours", theirs.chain_id);
        }
        if theirs.address == me.key.address() || !accept(&theirs.address) {
            bail!("{} is not a validator we connect to", theirs.address);
        }
        let proof = me.key.sign(
            HANDSHAKE,
            me.chain_id,
            &proof_body(&theirs.challenge, &me.key.address(), &theirs.address),
        );
        connection.send(encode(&Wire::Proof(proof))).await?;
        let Wire::Proof(signature) = next(connection).await? else {
            bail!("the peer sent no proof");
        };
        let body = proof_body(&challenge, &theirs.address, &me.key.address());
        let expected = crypto::signing_message(HANDSHAKE, me.chain_id, &body);
        if !crypto::verify(&theirs.address, &expected, &signature) {
            bail!("the peer's proof does not verify for {}", theirs.address);
        }
        Ok(theirs.address)
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow!("the handshake timed out"))?
}

/// What a handshake proof signs: the verifier's challenge, then the prover's and the
/// verifier's keys, so a proof cannot be replayed to another node or reflected back.
fn proof_body(challenge: &[u8; 32], prover: &Address, verifier: &Address) -> Vec<u8> {
    let mut body = Vec::with_capacity(96);
    body.extend_from_slice(challenge);
    body.extend_from_slice(&prover.0);
    body.extend_from_slice(&verifier.0);
    body
}
