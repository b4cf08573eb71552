//! A stranger's side of the peer port: raw frames, and a Noise handshake done the way a node
//! does it (`Noise_NN_25519_ChaChaPoly_SHA256`, then an encrypted proof), so tests can send
//! well-formed sessions that must still be refused. And a validator's side, through the
//! node's own session code, so tests can send what a misbehaving validator would.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use almagill::crypto::{Address, Hash, Keypair, Signature};
use almagill_node::node::session::{self, Identity, Session};
use almagill_node::node::wire::{self, Wire};
use bincode::Encode;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc as channel;

/// The node's Noise protocol and prologue (actors/src/node/session.rs).
const PATTERN: &str = "Noise_NN_25519_ChaChaPoly_SHA256";
const PROLOGUE: &[u8] = b"almagill/peer-session/1";
/// The domain tag of a session proof.
const AUTH_TAG: &[u8] = b"almagill/peer-session\0";

/// A session proof as the node encodes it: chain id, genesis hash, key, signature.
#[derive(Encode)]
struct Auth {
    chain_id: String,
    genesis: Hash,
    address: Address,
    signature: Signature,
}

/// A frame: a u32 big-endian length, then the body.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// Reads one frame's body.
pub fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body)?;
    Ok(body)
}

/// A connection to `port` on loopback with read and write timeouts.
pub fn connect(port: u16) -> TcpStream {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("cannot connect to port {port}: {e}"));
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .expect("a write timeout");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a read timeout");
    stream
}

/// Dials `port`, completes the Noise handshake and sends a proof claiming `chain_id`,
/// `genesis` and `key`'s address, signed by `key`: the connection the node must then close
/// unless all three are right.
pub fn dial_with_proof(port: u16, chain_id: &str, genesis: Hash, key: &Keypair) -> TcpStream {
    let mut stream = connect(port);
    let params = PATTERN.parse().expect("the node's pattern");
    let mut noise = snow::Builder::new(params)
        .prologue(PROLOGUE)
        .expect("a prologue")
        .build_initiator()
        .expect("an initiator");
    let mut out = vec![0u8; 1024];
    let n = noise.write_message(&[], &mut out).expect("message 1");
    stream.write_all(&frame(&out[..n])).expect("message 1 sent");
    let reply = read_frame(&mut stream).expect("the node's message 2");
    noise
        .read_message(&reply, &mut out)
        .expect("message 2 reads");
    let mut body = noise.get_handshake_hash().to_vec();
    body.push(0); // the dialer's role
    let auth = Auth {
        chain_id: chain_id.to_string(),
        genesis,
        address: key.address(),
        signature: key.sign(AUTH_TAG, chain_id, &body),
    };
    let mut plain = vec![1u8]; // one piece, the last
    plain.extend_from_slice(&almagill::encoding::encode(&auth));
    let mut transport = noise.into_transport_mode().expect("transport mode");
    let n = transport
        .write_message(&plain, &mut out)
        .expect("the proof sealed");
    stream.write_all(&frame(&out[..n])).expect("the proof sent");
    stream
}

/// A session with a node as one of its validators, held by a thread of its own that pings
/// every 500 ms (so the node keeps the link) and reads and drops what the node sends: what
/// [`ValidatorLink::send`] is given reaches the node as that validator's.
pub struct ValidatorLink {
    frames: Option<channel::UnboundedSender<Wire>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

/// Who the link speaks for and to whom.
pub struct LinkTo {
    /// The node's peer port.
    pub port: u16,
    /// The node's validator address.
    pub node: Address,
    /// The validator key the link proves.
    pub key: Keypair,
    /// The chain id.
    pub chain_id: String,
    /// The genesis hash.
    pub genesis: Hash,
}

impl ValidatorLink {
    /// Dials and authenticates; panics with the reason if the node refuses the session.
    pub fn open(to: LinkTo) -> ValidatorLink {
        let (frames, mut queued) = channel::unbounded_channel::<Wire>();
        let (ready, up) = mpsc::channel();
        let thread = thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let stream = tokio::net::TcpStream::connect(("127.0.0.1", to.port))
                    .await
                    .map_err(|e| format!("dialing: {e}"))?;
                let me = Identity {
                    key: &to.key,
                    chain_id: &to.chain_id,
                    genesis: to.genesis,
                };
                let Session {
                    mut sealer,
                    connection,
                    ..
                } = session::dial(session::frame(stream), &me, to.node)
                    .await
                    .map_err(|e| format!("the handshake: {e:#}"))?;
                let _ = ready.send(());
                let (mut sink, mut incoming) = connection.split();
                let mut ping = tokio::time::interval(Duration::from_millis(500));
                loop {
                    let message = tokio::select! {
                        next = queued.recv() => match next {
                            Some(message) => message,
                            None => return Ok(()),
                        },
                        _ = ping.tick() => Wire::Ping,
                        read = incoming.next() => match read {
                            Some(Ok(_)) => continue,
                            _ => return Err("the node closed the session".to_string()),
                        },
                    };
                    let sealed = sealer
                        .seal(&wire::encode(&message))
                        .map_err(|e| e.to_string())?;
                    for piece in sealed {
                        sink.send(piece)
                            .await
                            .map_err(|e| format!("sending: {e}"))?;
                    }
                }
            })
        });
        let mut link = ValidatorLink {
            frames: Some(frames),
            thread: Some(thread),
        };
        if up.recv_timeout(Duration::from_secs(30)).is_err() {
            panic!("no session with the node: {}", link.end());
        }
        link
    }

    /// Sends one message to the node; panics if the session has ended.
    pub fn send(&mut self, message: Wire) {
        let sent = self
            .frames
            .as_ref()
            .is_some_and(|f| f.send(message).is_ok());
        if !sent {
            panic!("the session with the node ended: {}", self.end());
        }
    }

    /// Closes the link and says how its thread ended.
    fn end(&mut self) -> String {
        self.frames = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Ok(()))) => "closed".to_string(),
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => "its thread panicked".to_string(),
            None => "already ended".to_string(),
        }
    }
}

impl Drop for ValidatorLink {
    fn drop(&mut self) {
        self.end();
    }
}
