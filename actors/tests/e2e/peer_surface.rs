//! The peer port against a stranger with no key: relaying handshakes, holding the slots of
//! unauthenticated connections, and announcing huge frames before authenticating. Each test
//! prints its figures.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{Net, DEADLINE};

const ALL: [usize; 4] = [0, 1, 2, 3];

/// Node `i` shows all its peers connected in `PEERS`.
fn connected_to_all(net: &Net, i: usize) -> bool {
    net.try_ok(i, "PEERS").is_some_and(|p| {
        p.as_array()
            .is_some_and(|l| l.len() == net.n - 1 && l.iter().all(|e| e["connected"] == true))
    })
}

/// Restarts node `i` and returns how long it took, from the start of the process, until it
/// and every other node showed all their peers connected.
fn restart_and_time_connection(net: &mut Net, i: usize) -> Duration {
    net.start(i);
    let started = Instant::now();
    net.wait_until(
        DEADLINE,
        "the restarted node to be connected to all",
        || (0..net.n).all(|k| connected_to_all(net, k)),
    );
    started.elapsed()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Copies bytes from `from` to `to` until either closes; returns the bytes copied.
fn pump(mut from: TcpStream, mut to: TcpStream) -> u64 {
    let mut buf = [0u8; 4096];
    let mut copied = 0;
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                copied += n as u64;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    copied
}

/// A stranger with no key waits for node 3 to come back from a restart and, the moment its
/// port opens, connects to it and to node 0 and relays bytes both ways between the two,
/// again and again. No session comes of it: the nodes close every relayed pair; the restarted
/// node is connected to all its peers and blocks keep coming.
#[test]
fn a_relayed_handshake_gives_a_stranger_nothing() {
    let mut net = Net::launch(4);
    net.wait_height(&ALL, 3);
    net.kill(3);
    let (victim, other) = (net.ports.peer(3), net.ports.peer(0));
    let stop = Arc::new(AtomicBool::new(false));
    let relayed = Arc::new(AtomicU64::new(0));
    let longest = Arc::new(AtomicU64::new(0));
    let stranger = {
        let (stop, relayed, longest) = (stop.clone(), relayed.clone(), longest.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(a) =
                    TcpStream::connect_timeout(&loopback(victim), Duration::from_millis(50))
                else {
                    continue;
                };
                let Ok(b) = TcpStream::connect(loopback(other)) else {
                    continue;
                };
                let opened = Instant::now();
                let (a2, b2) = (a.try_clone().expect("clone"), b.try_clone().expect("clone"));
                let forth = thread::spawn(move || pump(a, b2));
                pump(b, a2);
                let _ = forth.join();
                let lasted = opened.elapsed().as_millis() as u64;
                longest.fetch_max(lasted, Ordering::Relaxed);
                relayed.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let took = restart_and_time_connection(&mut net, 3);
    let h = net.height(3);
    net.wait_height(&ALL, h + 5);
    stop.store(true, Ordering::Relaxed);
    stranger.join().expect("the stranger's thread");
    let pairs = relayed.load(Ordering::Relaxed);
    let longest = longest.load(Ordering::Relaxed);
    eprintln!(
        "relay: node3 connected to all peers {took:?} after its restart; {pairs} relayed pairs, \
         each closed by the nodes within {longest} ms at most; blocks {h} -> {}",
        net.height(3)
    );
    assert!(pairs > 0, "the stranger relayed at least one pair");
    assert!(
        longest < 5_000,
        "a relayed pair was kept open {longest} ms: it looks like a session"
    );
    assert!(
        took < Duration::from_secs(10),
        "connected only after {took:?}"
    );
}

/// Raises this process's soft limit on open files to its hard limit; returns the new limit.
fn raise_file_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Keeps `count` silent connections open to `port`, opening a new one for each the node
/// closes, until `stop`; counts the connections opened.
fn hold_slots(port: u16, count: usize, stop: Arc<AtomicBool>, opened: Arc<AtomicU64>) {
    let open = || {
        let stream =
            TcpStream::connect_timeout(&loopback(port), Duration::from_millis(200)).ok()?;
        stream.set_nonblocking(true).ok()?;
        opened.fetch_add(1, Ordering::Relaxed);
        Some(stream)
    };
    let mut held: Vec<Option<TcpStream>> = (0..count).map(|_| open()).collect();
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        for slot in held.iter_mut() {
            let closed = match slot {
                None => true,
                Some(stream) => match stream.read(&mut buf) {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(e) => e.kind() != ErrorKind::WouldBlock,
                },
            };
            if closed {
                *slot = open();
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Silent connections kept refilled on every peer port (5,000 per port as far as the file
/// limit allows) while a validator restarts: it is connected to all its peers regardless.
#[test]
fn a_flood_of_silent_connections_keeps_no_validator_out() {
    let limit = raise_file_limit();
    let per_port = 5_000.min((limit.saturating_sub(1_000) / 4) as usize);
    let mut net = Net::launch(4);
    net.wait_height(&ALL, 3);
    net.kill(3);
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    let floods: Vec<_> = ALL
        .iter()
        .map(|&i| {
            let (port, stop, opened) = (net.ports.peer(i), stop.clone(), opened.clone());
            thread::spawn(move || hold_slots(port, per_port, stop, opened))
        })
        .collect();
    // Let the flood fill every port the node 3 will meet before it comes back.
    let before = Instant::now();
    while opened.load(Ordering::Relaxed) < (3 * per_port) as u64 && before.elapsed() < DEADLINE {
        thread::sleep(Duration::from_millis(50));
    }
    let took = restart_and_time_connection(&mut net, 3);
    let h = net.height(3);
    net.wait_height(&ALL, h + 3);
    stop.store(true, Ordering::Relaxed);
    for flood in floods {
        flood.join().expect("a flood thread");
    }
    eprintln!(
        "slot flood: {per_port} silent connections kept on each of 4 peer ports \
         ({} opened in all); node3 connected to all peers {took:?} after its restart",
        opened.load(Ordering::Relaxed)
    );
    assert!(
        took < Duration::from_secs(15),
        "connected only after {took:?}"
    );
}

/// 400 unauthenticated connections each announce an 8 MiB frame and send it: the node
/// refuses each at its length prefix, and its memory barely moves.
#[test]
fn unauthenticated_frames_cost_no_memory() {
    let net = Net::launch(4);
    net.wait_height(&ALL, 2);
    let port = net.ports.peer(0);
    let before = net.rss_kib(0);
    let mut peak = before;
    let body = vec![0x42u8; 8 << 20];
    let mut streams = Vec::new();
    for _ in 0..400 {
        let Ok(mut stream) = TcpStream::connect(loopback(port)) else {
            continue;
        };
        stream
            .set_write_timeout(Some(Duration::from_millis(200)))
            .expect("a write timeout");
        let _ = stream.write_all(&((8u32 << 20).to_be_bytes()));
        // The node may close before taking it all: a failed write is expected then.
        let _ = stream.write_all(&body);
        streams.push(stream);
        peak = peak.max(net.rss_kib(0));
    }
    let h = net.height(0);
    net.wait_height(&ALL, h + 3);
    peak = peak.max(net.rss_kib(0));
    drop(streams);
    eprintln!(
        "pre-auth memory: node0 RSS {before} KiB before, {peak} KiB at most while 400 \
         connections sent 8 MiB frames (+{} KiB)",
        peak - before
    );
    assert!(
        peak - before < 20 * 1024,
        "RSS grew by {} KiB",
        peak - before
    );
}
