//! Peer sessions: a Noise handshake bound to the TCP connection, a proof of each side's
//! validator key bound to that handshake, then every frame encrypted and authenticated.
//!
//! The handshake is `Noise_NN_25519_ChaChaPoly_SHA256`: fresh ephemeral keys each way, so
//! both sides hold session keys nobody else has. Each side then sends, encrypted, an [`Auth`]
//! whose signature covers the handshake hash: that hash is unique to this connection's
//! ephemeral keys, so a proof cannot be relayed to another connection. A stranger relaying
//! the frames of two validators gets two handshakes with different hashes and neither proof
//! verifies on the other; a stranger that merely forwards bytes cannot read or forge a frame.
//!
//! After the handshake a frame (up to [`MAX_FRAME`] bytes) travels as one or more Noise
//! messages, each at most 65,535 bytes on the wire: a one-byte flag (more follows / last)
//! and a piece of the frame, sealed under a nonce counted per direction.

use std::sync::Arc;
use std::time::Duration;

use almagill::crypto::{self, Address, Hash, Keypair, Signature};
use almagill::encoding;
use anyhow::{anyhow, bail, Context, Result};
use bincode::{Decode, Encode};
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use snow::StatelessTransportState;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::node::wire::MAX_FRAME;

/// The Noise protocol every session uses.
const PATTERN: &str = "Noise_NN_25519_ChaChaPoly_SHA256";
/// Bound into the handshake: a peer speaking another protocol version fails it.
const PROLOGUE: &[u8] = b"almagill/peer-session/1";
/// Domain tag of the signature over the handshake hash.
const AUTH_TAG: &[u8] = b"almagill/peer-session\0";
/// The largest Noise message.
const NOISE_MAX: usize = 65_535;
/// Noise's authentication tag on every message.
const TAG: usize = 16;
/// The bytes of a frame carried by one Noise message (after the flag byte).
const PIECE: usize = NOISE_MAX - TAG - 1;
/// The largest frame a peer may send before it is authenticated: the handshake messages and
/// the [`Auth`] are a few hundred bytes, so a stranger cannot make this node buffer more.
pub const PRE_AUTH_FRAME: usize = 1024;
/// How long a dialer may take to send its first handshake message.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a whole handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// A TCP connection framed as u32-length-prefixed messages.
pub type Connection = Framed<TcpStream, LengthDelimitedCodec>;

/// Frames a fresh socket with the pre-authentication size limit. Small messages (votes,
/// pre-prepares) go out at once: without `TCP_NODELAY`, Nagle's algorithm holds a write
/// back until the previous one is acknowledged, and the peer's delayed acknowledgement
/// made a vote wait 40 ms.
pub fn frame(stream: TcpStream) -> Connection {
    // Failing only leaves the socket as it was: slower, still correct.
    let _ = stream.set_nodelay(true);
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(PRE_AUTH_FRAME)
        .new_codec();
    Framed::new(stream, codec)
}

/// What the local node brings to a handshake.
pub struct Identity<'a> {
    /// Our validator key.
    pub key: &'a Keypair,
    /// Our chain id.
    pub chain_id: &'a str,
    /// Our genesis hash.
    pub genesis: Hash,
}

/// Which side of the handshake this node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The side that dialed.
    Initiator,
    /// The side that accepted.
    Responder,
}

/// Each side's proof, sent encrypted once the Noise handshake is done.
#[derive(Encode, Decode)]
struct Auth {
    /// The chain the sender is on.
    chain_id: String,
    /// Its genesis hash: the same chain id with another genesis is another chain.
    genesis: Hash,
    /// The sender's validator key.
    address: Address,
    /// The sender's signature over the handshake hash and its role.
    signature: Signature,
}

/// An authenticated session: who is on the other end, and the two halves of the channel.
pub struct Session {
    /// The peer's validator key, proven over this connection's handshake.
    pub peer: Address,
    /// Seals outgoing frames.
    pub sealer: Sealer,
    /// Opens incoming messages.
    pub opener: Opener,
    /// The framed connection, now with the post-authentication size limit.
    pub connection: Connection,
}

/// What the signature of `role` covers: the handshake hash and the role, so a proof cannot
/// be reflected back to the side that made it.
fn auth_body(handshake_hash: &[u8], role: Role) -> Vec<u8> {
    let mut body = handshake_hash.to_vec();
    body.push(match role {
        Role::Initiator => 0,
        Role::Responder => 1,
    });
    body
}

async fn next(connection: &mut Connection) -> Result<BytesMut> {
    connection
        .next()
        .await
        .ok_or_else(|| anyhow!("the connection closed during the handshake"))?
        .context("reading the handshake")
}

/// Reads the dialer's first handshake message, within [`FIRST_FRAME_TIMEOUT`]: a slot held
/// by a connection that says nothing is freed quickly.
pub async fn first_frame(connection: &mut Connection) -> Result<BytesMut> {
    tokio::time::timeout(FIRST_FRAME_TIMEOUT, next(connection))
        .await
        .map_err(|_| anyhow!("no handshake within {FIRST_FRAME_TIMEOUT:?}"))?
}

/// Runs the handshake as the dialer, expecting `expected` on the other end.
pub async fn dial(
    mut connection: Connection,
    me: &Identity<'_>,
    expected: Address,
) -> Result<Session> {
    let exchange = async {
        let mut noise = builder()?.build_initiator().map_err(noise_error)?;
        let mut out = vec![0u8; PRE_AUTH_FRAME];
        let n = noise.write_message(&[], &mut out).map_err(noise_error)?;
        connection.send(Bytes::copy_from_slice(&out[..n])).await?;
        let reply = next(&mut connection).await?;
        noise.read_message(&reply, &mut out).map_err(noise_error)?;
        authenticate(connection, noise, me, Role::Initiator, |a| *a == expected).await
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow!("the handshake timed out"))?
}

/// Runs the handshake as the listener, given the dialer's first message; `accept` decides
/// whether a proven key may connect.
pub async fn respond(
    mut connection: Connection,
    first: &[u8],
    me: &Identity<'_>,
    accept: impl Fn(&Address) -> bool,
) -> Result<Session> {
    let exchange = async {
        let mut noise = builder()?.build_responder().map_err(noise_error)?;
        let mut out = vec![0u8; PRE_AUTH_FRAME];
        noise.read_message(first, &mut out).map_err(noise_error)?;
        let n = noise.write_message(&[], &mut out).map_err(noise_error)?;
        connection.send(Bytes::copy_from_slice(&out[..n])).await?;
        authenticate(connection, noise, me, Role::Responder, accept).await
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow!("the handshake timed out"))?
}

fn builder() -> Result<snow::Builder<'static>> {
    let params = PATTERN.parse().map_err(noise_error)?;
    snow::Builder::new(params)
        .prologue(PROLOGUE)
        .map_err(noise_error)
}

fn noise_error(e: snow::Error) -> anyhow::Error {
    anyhow!("noise: {e}")
}

/// The finished Noise handshake's last step: each side sends its [`Auth`] and checks the
/// other's against this connection's handshake hash.
async fn authenticate(
    mut connection: Connection,
    noise: snow::HandshakeState,
    me: &Identity<'_>,
    role: Role,
    accept: impl Fn(&Address) -> bool,
) -> Result<Session> {
    let hash = noise.get_handshake_hash().to_vec();
    let transport = Arc::new(noise.into_stateless_transport_mode().map_err(noise_error)?);
    let mut sealer = Sealer {
        transport: transport.clone(),
        nonce: 0,
    };
    let mut opener = Opener {
        transport,
        nonce: 0,
        partial: Vec::new(),
    };
    let (their_role, first) = match role {
        Role::Initiator => (Role::Responder, true),
        Role::Responder => (Role::Initiator, false),
    };
    let ours = encoding::encode(&Auth {
        chain_id: me.chain_id.to_string(),
        genesis: me.genesis,
        address: me.key.address(),
        signature: me.key.sign(AUTH_TAG, me.chain_id, &auth_body(&hash, role)),
    });
    // The dialer proves itself first; the listener answers only a proven validator, so a
    // stranger learns nothing, and a dialer never takes a refused session for a link.
    if first {
        send_sealed(&mut connection, &mut sealer, &ours).await?;
    }
    let message = next(&mut connection).await?;
    let theirs = opener
        .open(&message)?
        .ok_or_else(|| anyhow!("the peer's proof does not fit one message"))?;
    let theirs: Auth = encoding::decode(&theirs).context("a malformed proof")?;
    if theirs.chain_id != me.chain_id || theirs.genesis != me.genesis {
        bail!("the peer is on chain `{}`, not ours", theirs.chain_id);
    }
    if theirs.address == me.key.address() || !accept(&theirs.address) {
        bail!("{} is not a validator we connect to", theirs.address);
    }
    let signed = crypto::signing_message(AUTH_TAG, me.chain_id, &auth_body(&hash, their_role));
    if !crypto::verify(&theirs.address, &signed, &theirs.signature) {
        bail!("the peer's proof does not verify for {}", theirs.address);
    }
    if !first {
        send_sealed(&mut connection, &mut sealer, &ours).await?;
    }
    connection.codec_mut().set_max_frame_length(NOISE_MAX);
    Ok(Session {
        peer: theirs.address,
        sealer,
        opener,
        connection,
    })
}

async fn send_sealed(connection: &mut Connection, sealer: &mut Sealer, frame: &[u8]) -> Result<()> {
    for message in sealer.seal(frame)? {
        connection.send(message).await?;
    }
    Ok(())
}

/// The sending half of a session: turns frames into sealed Noise messages.
pub struct Sealer {
    transport: Arc<StatelessTransportState>,
    nonce: u64,
}

impl Sealer {
    /// Seals one frame as the Noise messages that carry it, in order.
    pub fn seal(&mut self, frame: &[u8]) -> Result<Vec<Bytes>> {
        let mut messages = Vec::with_capacity(frame.len() / PIECE + 1);
        let mut pieces = frame.chunks(PIECE).peekable();
        let mut plain = Vec::with_capacity(PIECE.min(frame.len()) + 1);
        loop {
            let piece = pieces.next().unwrap_or(&[]);
            plain.clear();
            plain.push(u8::from(pieces.peek().is_none()));
            plain.extend_from_slice(piece);
            let mut sealed = vec![0u8; plain.len() + TAG];
            let n = self
                .transport
                .write_message(self.nonce, &plain, &mut sealed)
                .map_err(noise_error)?;
            self.nonce += 1;
            sealed.truncate(n);
            messages.push(Bytes::from(sealed));
            if pieces.peek().is_none() {
                return Ok(messages);
            }
        }
    }
}

/// The receiving half of a session: opens Noise messages and joins them into frames.
pub struct Opener {
    transport: Arc<StatelessTransportState>,
    nonce: u64,
    /// The pieces of a frame whose last piece has not come yet.
    partial: Vec<u8>,
}

impl Opener {
    /// Opens one message: the whole frame once its last piece is in, `None` before. A message
    /// that does not authenticate, or a frame over [`MAX_FRAME`], is an error (the caller
    /// drops the peer).
    pub fn open(&mut self, message: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut plain = vec![0u8; message.len()];
        let n = self
            .transport
            .read_message(self.nonce, message, &mut plain)
            .map_err(|_| anyhow!("a message that does not authenticate"))?;
        self.nonce += 1;
        let Some((&last, piece)) = plain[..n].split_first() else {
            bail!("an empty message");
        };
        if self.partial.len() + piece.len() > MAX_FRAME {
            bail!("a frame over {MAX_FRAME} bytes");
        }
        self.partial.extend_from_slice(piece);
        match last {
            0 => Ok(None),
            1 => Ok(Some(std::mem::take(&mut self.partial))),
            _ => bail!("a message with an unknown flag"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    const CHAIN: &str = "session-test";

    fn key(seed: u8) -> Keypair {
        Keypair::from_seed([seed; 32])
    }

    fn identity(key: &Keypair) -> Identity<'_> {
        Identity {
            key,
            chain_id: CHAIN,
            genesis: Hash([7; 32]),
        }
    }

    fn run<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    /// A listener, and a connection to it from each end.
    async fn pair() -> (Connection, Connection) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let address = listener.local_addr().expect("an address");
        let (dialed, accepted) = tokio::join!(TcpStream::connect(address), listener.accept());
        (
            frame(dialed.expect("dialed")),
            frame(accepted.expect("accepted").0),
        )
    }

    /// Both ends of a handshake between keys `a` (dialing) and `b`.
    async fn handshake(a: &Keypair, b: &Keypair) -> (Result<Session>, Result<Session>) {
        let (dialer, mut listener) = pair().await;
        let b_address = b.address();
        let (ours, theirs) = (identity(a), identity(b));
        let responder = async {
            let first = first_frame(&mut listener).await?;
            respond(listener, &first, &theirs, |_| true).await
        };
        tokio::join!(dial(dialer, &ours, b_address), responder)
    }

    #[test]
    fn a_session_proves_both_keys_and_carries_frames_of_any_size() {
        run(async {
            let (a, b) = (key(1), key(2));
            let (ours, theirs) = handshake(&a, &b).await;
            let (mut ours, mut theirs) = (ours.expect("dialer"), theirs.expect("responder"));
            assert_eq!(ours.peer, b.address());
            assert_eq!(theirs.peer, a.address());
            for size in [0, 1, PIECE, PIECE + 1, 3 * PIECE + 17] {
                let frame: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
                let sealed = ours.sealer.seal(&frame).expect("sealed");
                assert!(sealed.iter().all(|m| m.len() <= NOISE_MAX));
                let mut opened = None;
                for message in &sealed {
                    assert!(opened.is_none(), "the frame ends at its last message");
                    opened = theirs.opener.open(message).expect("opens");
                }
                assert_eq!(opened, Some(frame), "a frame of {size} bytes");
            }
        });
    }

    #[test]
    fn a_tampered_or_replayed_message_is_refused() {
        run(async {
            let (ours, theirs) = handshake(&key(1), &key(2)).await;
            let (mut ours, mut theirs) = (ours.expect("dialer"), theirs.expect("responder"));
            let sealed = ours.sealer.seal(b"hello").expect("sealed").remove(0);
            let mut tampered = sealed.to_vec();
            tampered[3] ^= 1;
            assert!(theirs.opener.open(&tampered).is_err());
            assert_eq!(
                theirs.opener.open(&sealed).expect("opens"),
                Some(b"hello".to_vec())
            );
            assert!(theirs.opener.open(&sealed).is_err(), "a replay is refused");
        });
    }

    #[test]
    fn a_key_the_listener_does_not_accept_is_refused_on_both_ends() {
        run(async {
            let (dialer, mut listener) = pair().await;
            let (a, b) = (key(1), key(2));
            let (a_id, b_id) = (identity(&a), identity(&b));
            let responder = async {
                let first = first_frame(&mut listener).await?;
                respond(listener, &first, &b_id, |_| false).await
            };
            let (ours, theirs) = tokio::join!(dial(dialer, &a_id, b.address()), responder);
            assert!(theirs.is_err());
            assert!(ours.is_err(), "the dialer gets no proof back");
        });
    }

    /// A stranger with no validator key sits where validator `a` dials `b` (a network
    /// blip, a restart) and dials `b` itself, handing `b` the proof `a` gave it: the proof
    /// covers the other connection's handshake hash, so it does not verify, and `a` gets no
    /// proof back either.
    #[test]
    fn a_relayed_proof_does_not_verify() {
        run(async {
            let (a, b) = (key(1), key(2));
            let (a_side, mut stranger_to_a) = pair().await;
            let b_address = b.address();
            let a_dials = tokio::spawn(async move {
                let me = identity(&a);
                dial(a_side, &me, b_address).await
            });
            // The stranger answers `a` as a listener would and reads a's proof.
            let mut noise = builder().unwrap().build_responder().unwrap();
            let mut out = vec![0u8; PRE_AUTH_FRAME];
            let first = first_frame(&mut stranger_to_a).await.unwrap();
            noise.read_message(&first, &mut out).unwrap();
            let n = noise.write_message(&[], &mut out).unwrap();
            stranger_to_a
                .send(Bytes::copy_from_slice(&out[..n]))
                .await
                .unwrap();
            let mut opener = Opener {
                transport: Arc::new(noise.into_stateless_transport_mode().unwrap()),
                nonce: 0,
                partial: Vec::new(),
            };
            let message = next(&mut stranger_to_a).await.unwrap();
            let proof_of_a = opener.open(&message).unwrap().unwrap();

            // It dials `b` and relays that proof as its own.
            let (mut stranger_to_b, mut b_side) = pair().await;
            let b_listens = tokio::spawn(async move {
                let first = first_frame(&mut b_side).await?;
                let me = identity(&b);
                respond(b_side, &first, &me, |_| true).await
            });
            let mut noise = builder().unwrap().build_initiator().unwrap();
            let n = noise.write_message(&[], &mut out).unwrap();
            stranger_to_b
                .send(Bytes::copy_from_slice(&out[..n]))
                .await
                .unwrap();
            let reply = next(&mut stranger_to_b).await.unwrap();
            noise.read_message(&reply, &mut out).unwrap();
            let mut sealer = Sealer {
                transport: Arc::new(noise.into_stateless_transport_mode().unwrap()),
                nonce: 0,
            };
            send_sealed(&mut stranger_to_b, &mut sealer, &proof_of_a)
                .await
                .unwrap();
            let error = b_listens.await.unwrap().err().expect("b refuses");
            assert!(
                format!("{error:#}").contains("does not verify"),
                "{error:#}"
            );
            drop(stranger_to_a);
            assert!(a_dials.await.unwrap().is_err(), "a gets no session");
        });
    }
}
