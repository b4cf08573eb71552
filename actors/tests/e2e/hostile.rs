//! Hostile input on both ports of a node: the offending connection is refused or closed, and
//! nothing else the node does is affected. And a validator that gossips a forged signature:
//! its gossip is ignored for a while.

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use almagill::crypto::{Address, Keypair};
use almagill::encoding;
use almagill::tx::{Transaction, TxBody, TxKind};
use almagill_node::node::wire::Wire;
use serde_json::json;

use crate::harness::{first_and_last_answer, read_until_closed, rng, Net, DEADLINE};
use crate::peer_client::{connect, dial_with_proof, LinkTo, ValidatorLink};

const ALL: [usize; 4] = [0, 1, 2, 3];

/// How long the node may take to close a bad peer connection: its handshake timeout is 3 s.
const CLOSE_WITHIN: Duration = Duration::from_secs(20);

/// On node 0's peer port, random bytes, a 0xffffffff length prefix, half a frame followed
/// by silence, and complete Noise sessions whose proof is for another chain, for another
/// genesis, or from a key that is no validator's, each get their connection closed by the
/// node. On its admin port, non-UTF-8 bytes get
/// `ERR bad_request` and the connection stays usable; a 100 KB line gets `ERR too_long` and
/// the connection is closed; an unknown command is `unknown_command`; bad arguments are
/// `bad_request`, `bad_address` or `bad_amount`; a thousand idle admin connections held open
/// neither stop consensus (several blocks commit meanwhile) nor another client's answers.
/// Through all of it the network keeps committing and node 0 stays connected to its peers.
#[test]
fn bad_input_is_refused_and_consensus_goes_on() {
    let net = Net::launch(4);
    net.wait_height(&ALL, 2);
    let mut rng = rng();
    let peer_port = net.ports.peer(0);

    // --- the peer port ---
    let mut attacks: Vec<(&str, TcpStream)> = Vec::new();
    let mut random = connect(peer_port);
    random
        .write_all(&rng.bytes(4096))
        .expect("random bytes sent");
    attacks.push(("random bytes", random));
    let mut huge = connect(peer_port);
    let mut bytes = vec![0xff; 4];
    bytes.extend_from_slice(b"more bytes than anyone should buffer");
    huge.write_all(&bytes).expect("a huge length prefix sent");
    attacks.push(("a 0xffffffff length prefix", huge));
    let mut half = connect(peer_port);
    let mut bytes = 100u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[7u8; 10]);
    half.write_all(&bytes).expect("half a frame sent");
    attacks.push(("half a frame, then silence", half));

    // Well-formed sessions that prove the wrong things.
    let genesis_hash = net.genesis.hash();
    let stranger = almagill::crypto::Keypair::from_seed(rng.bytes(32).try_into().expect("32"));
    let chain_id = net.genesis.chain_id.as_str();
    for (what, chain, genesis) in [
        ("a proof for another chain", "another-chain", genesis_hash),
        (
            "a proof for another genesis",
            chain_id,
            almagill::crypto::Hash([0x5a; 32]),
        ),
        (
            "a proof from a key that is no validator's",
            chain_id,
            genesis_hash,
        ),
    ] {
        attacks.push((what, dial_with_proof(peer_port, chain, genesis, &stranger)));
    }
    for (what, mut stream) in attacks {
        if !read_until_closed(&mut stream, CLOSE_WITHIN) {
            net.fail(&format!(
                "node0 kept a peer connection open after {what} for {CLOSE_WITHIN:?}"
            ));
        }
    }

    // --- the admin port ---
    let mut admin = net.admin(0);
    admin
        .send_raw(b"\xff\xfe\xfd STATUS \xc3\x28\n")
        .expect("sent");
    let reply = admin.read_line().expect("an answer to non-UTF-8 bytes");
    assert!(
        reply.starts_with("ERR bad_request "),
        "non-UTF-8: `{reply}`"
    );
    assert_eq!(admin.ok("PING"), json!({ "pong": true }));

    // Empty lines get no answer; `\r\n` ends a line too; command names take any case;
    // words may be separated by several spaces.
    admin.send_raw(b"\n\r\n   \nPING\r\n").expect("sent");
    assert_eq!(
        admin.read_line().expect("one answer"),
        r#"OK {"pong":true}"#
    );
    assert_eq!(admin.ok("ping"), json!({ "pong": true }));
    assert_eq!(
        admin.ok("BALANCE    alice")["address"],
        net.address_of("alice")
    );

    assert_eq!(admin.err("FROBNICATE"), "unknown_command");
    assert_eq!(admin.err("STATUSX"), "unknown_command");
    let zeros = "0".repeat(64);
    for (line, code) in [
        ("BALANCE", "bad_request"),
        ("STATUS now", "bad_request"),
        ("SEND alice bob", "bad_request"),
        ("BALANCE nobody", "bad_address"),
        ("BALANCE 12345", "bad_address"),
        (&format!("BALANCE {zeros}0") as &str, "bad_address"),
        ("SEND alice nobody 1", "bad_address"),
        ("SEND nobody bob 1", "bad_address"),
        ("SEND alice bob lots", "bad_amount"),
        ("SEND alice bob 1.5", "bad_amount"),
        ("SEND alice bob -1", "bad_amount"),
        ("SEND alice bob 0.0000000000000000001agl", "bad_amount"),
        (
            "SEND alice bob 999999999999999999999999999999999999999999",
            "bad_amount",
        ),
        ("TX nothex", "bad_request"),
        ("BLOCK minus-one", "bad_request"),
        (&format!("WAIT {zeros} soon") as &str, "bad_request"),
        ("SUBMIT zz", "bad_request"),
        ("SUBMIT 00", "bad_request"),
    ] {
        assert_eq!(admin.err(line), code, "`{line}`");
    }
    assert_eq!(admin.ok("PING"), json!({ "pong": true }));

    // A 100 KB line: ERR too_long, then the connection is closed.
    let mut long = net.admin(0);
    let mut writer = long.stream().try_clone().expect("a second handle");
    let sender = std::thread::spawn(move || {
        let mut line = vec![b'A'; 100 * 1024];
        line.push(b'\n');
        // The node may close before reading it all: a failed write is expected then.
        let _ = writer.write_all(&line);
    });
    let reply = long.read_line();
    sender.join().expect("the writer thread");
    match reply {
        Ok(reply) => assert!(reply.starts_with("ERR too_long "), "100 KB line: `{reply}`"),
        Err(e) => net.fail(&format!("no `ERR too_long` for a 100 KB line: {e}")),
    }
    assert!(
        long.closed_within(DEADLINE),
        "the connection is closed after ERR too_long"
    );
    // Nothing else is affected.
    assert_eq!(admin.ok("PING"), json!({ "pong": true }));

    // A thousand idle admin connections.
    let address = SocketAddr::from(([127, 0, 0, 1], net.ports.admin(0)));
    let mut idle: Vec<TcpStream> = (0..1000)
        .map(|k| {
            TcpStream::connect_timeout(&address, Duration::from_secs(10))
                .unwrap_or_else(|e| net.fail(&format!("idle connection {k}: {e}")))
        })
        .collect();
    let held_at = net.height(0);
    net.wait_height(&ALL, held_at + 5);
    let mut other = net.admin(0);
    assert_eq!(other.ok("PING"), json!({ "pong": true }));
    other.ok("STATUS");
    // The idle connections were really accepted: the first and the last still answer.
    first_and_last_answer(&mut idle);
    drop(idle);

    // After all of it the node still commits, with its peers connected.
    let h = net.height(0);
    net.wait_height(&ALL, h + 3);
    net.wait_until(DEADLINE, "node0 to be connected to its 3 peers", || {
        net.try_ok(0, "PEERS").is_some_and(|p| {
            p.as_array()
                .is_some_and(|l| l.len() == 3 && l.iter().all(|e| e["connected"] == true))
        })
    });
    net.assert_same_chain(&ALL, h + 3);
}

/// A validator that gossips a transaction whose signature does not verify is not listened
/// to for a while (an honest node gossips only what it checked). Over a session with node 0
/// as validator 3 (whose node is not running): a transfer it gossips is admitted and
/// committed, so the path works; then a forged transfer (counted as `invalid_signature`);
/// then the next, valid, transfer it gossips is dropped (counted as `muted_peer`, and node 0
/// does not hold it), while the same transfer submitted by a client is admitted and
/// committed.
///
/// Mutation caught: the mempool not calling `mute` on a gossiped bad signature — the wait
/// for `muted_peer` times out (the next gossiped transfer is admitted).
#[test]
fn a_validator_that_gossips_a_bad_signature_is_not_listened_to() {
    let mut net = Net::create(4, None);
    for i in 0..3 {
        net.start(i);
    }
    net.wait_height(&[0, 1, 2], 2);
    let key = |name: &str| {
        let text = fs::read_to_string(net.dir().join(format!("keys/{name}.key"))).expect("a key");
        Keypair::from_key_file(&text).expect("a key file")
    };
    let alice = key("alice");
    let bob = Address::from_hex(&net.address_of("bob")).expect("bob's address");
    let chain_id = net.genesis.chain_id.clone();
    let transfer = |nonce: u64, signer: &Keypair| -> Transaction {
        TxBody {
            from: alice.address(),
            nonce,
            kind: TxKind::Transfer { to: bob, amount: 1 },
        }
        .sign(signer, &chain_id)
    };
    let mut link = ValidatorLink::open(LinkTo {
        port: net.ports.peer(0),
        node: Address::from_hex(&net.address(0)).expect("node0's address"),
        key: key("node3"),
        chain_id: chain_id.clone(),
        genesis: net.genesis.hash(),
    });

    let first = transfer(0, &alice);
    link.send(Wire::Txs(vec![first.clone()]));
    net.wait_committed(0, &first.hash().to_string());

    let forged = transfer(1, &Keypair::from_seed([7; 32]));
    link.send(Wire::Txs(vec![forged]));
    let refused = |reason: &str| {
        net.metric(
            0,
            &format!("mempool_rejections_total{{reason=\"{reason}\"}}"),
        )
    };
    net.wait_until(DEADLINE, "node0 to refuse the forged transfer", || {
        refused("invalid_signature") >= 1.0
    });

    let next = transfer(1, &alice);
    let hash = next.hash().to_string();
    link.send(Wire::Txs(vec![next.clone()]));
    net.wait_until(
        DEADLINE,
        "node0 to drop the muted validator's gossip",
        || refused("muted_peer") >= 1.0,
    );
    assert_eq!(net.err(0, &format!("TX {hash}")), "not_found");

    let submitted = net.ok(
        0,
        &format!("SUBMIT {}", hex::encode(encoding::encode(&next))),
    );
    assert_eq!(submitted["tx"], hash.as_str(), "SUBMIT answers the hash");
    net.wait_committed(0, &hash);
}
