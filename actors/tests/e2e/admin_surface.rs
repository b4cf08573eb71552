//! The admin port under abuse by a local user (issue 11, acceptance 4 and 5): thousands of
//! idle connections, thousands of half-sent 64 KiB lines, a node whose open-file limit is
//! 1024, lines of Unicode whitespace, the validator's own key, and the admin token.
//!
//! Each test prints its figures (`cargo test -p almagill-node --test e2e admin_surface --
//! --nocapture`).

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{
    almagill, first_and_last_answer, rss_kib, str_field, u64_field, wait_for, Admin, Net, BIN,
    DEADLINE,
};

/// The length of the unfinished lines: just under the protocol's 64 KiB line limit.
const HALF_LINE: usize = 65_000;

/// Linux reports process CPU times in ticks of 1/100 s (`USER_HZ`) in `/proc/<pid>/stat`.
const TICKS_PER_SECOND: f64 = 100.0;

/// Raises this test process's soft open-file limit as far as the hard limit allows, and
/// returns how many connections it can then open with `spare` descriptors left over.
fn connections_allowed(wanted: usize, spare: u64) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum) {
        if current < maximum {
            let raised = Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            };
            setrlimit(Resource::Nofile, raised).expect("the soft limit can rise to the hard one");
        }
    }
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let allowed = usize::try_from(soft.saturating_sub(spare)).unwrap_or(usize::MAX);
    if allowed < wanted {
        eprintln!(
            "this machine's open-file limit ({soft}) allows only {allowed} of the {wanted} \
             connections asked for; using {allowed}"
        );
    }
    wanted.min(allowed)
}

/// Opens `n` connections to `port` that send nothing.
fn open_idle(net: &Net, port: u16, n: usize) -> Vec<TcpStream> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    (0..n)
        .map(|k| {
            TcpStream::connect_timeout(&address, Duration::from_secs(10))
                .unwrap_or_else(|e| net.fail(&format!("connection {k} of {n}: {e}")))
        })
        .collect()
}

/// A process's CPU time so far (user + system), from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("the node's stat");
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_secs_f64(ticks as f64 / TICKS_PER_SECOND)
}

/// Whether the node has closed `stream` (end of stream or reset) or is about to, reading
/// without waiting; `Some(bytes)` of what it sent before, `None` if it is still open.
fn closed_now(stream: &mut TcpStream) -> Option<Vec<u8>> {
    stream.set_nonblocking(true).expect("non-blocking");
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break true,
        }
    };
    stream.set_nonblocking(false).expect("blocking");
    closed.then_some(got)
}

/// How long the node takes to close `admin`, which must then be closed within `DEADLINE`.
fn time_to_close(net: &Net, admin: &mut Admin, what: &str) -> Duration {
    let started = Instant::now();
    if !admin.closed_within(DEADLINE) {
        net.fail(&format!(
            "the node did not close {what} within {DEADLINE:?}"
        ));
    }
    started.elapsed()
}

/// Acceptance 4, first part: with 5,000 idle connections open (the default idle timeout is
/// 300 s, so they stay), a new client's PING is answered within 1 s, and the idle ones
/// were really accepted (the first and last answer too).
#[test]
fn idle_connections_never_lock_a_client_out() {
    let wanted = 5_000;
    let n = connections_allowed(wanted, 200);
    let net = Net::launch(1);
    net.wait_height(&[0], 2);
    let started = Instant::now();
    let mut idle = open_idle(&net, net.ports.admin(0), n);
    eprintln!(
        "{n} idle admin connections opened in {:?}",
        started.elapsed()
    );
    let h = net.height(0);
    net.wait_height(&[0], h + 3);

    let started = Instant::now();
    let mut client = net.admin(0);
    let pong = client.ok("PING");
    let took = started.elapsed();
    eprintln!("with {n} idle connections open, a new client's connect + PING took {took:?}");
    assert_eq!(pong, json!({ "pong": true }));
    assert!(
        took < Duration::from_secs(1),
        "PING took {took:?} with {n} idle connections open"
    );
    first_and_last_answer(&mut idle);
    drop(idle);
    let h = net.height(0);
    net.wait_height(&[0], h + 3);
}

/// Acceptance 4, second part: 4,000 connections each holding a 65,000-byte unfinished line
/// grow the node's memory by a bounded amount, and once they are closed its resident memory
/// is back within 20 MB of where it started.
#[test]
fn half_lines_leave_no_memory_behind() {
    let wanted = 4_000;
    let n = connections_allowed(wanted, 200);
    let net = Net::launch(1);
    net.wait_height(&[0], 3);
    let pid = net.pid(0);
    let before = rss_kib(pid);

    let address = SocketAddr::from(([127, 0, 0, 1], net.ports.admin(0)));
    let line = vec![b'a'; HALF_LINE];
    let started = Instant::now();
    let mut sent = 0usize;
    let mut peak = before;
    let mut streams = Vec::with_capacity(n);
    for k in 0..n {
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(10))
            .unwrap_or_else(|e| net.fail(&format!("connection {k}: {e}")));
        // Whatever the kernel takes without waiting: the node reads what its budget allows
        // and TCP holds back the rest, which is the point.
        stream.set_nonblocking(true).expect("non-blocking");
        let mut off = 0;
        while off < line.len() {
            match stream.write(&line[off..]) {
                Ok(w) => off += w,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        sent += off;
        streams.push(stream);
        if k % 500 == 499 {
            peak = peak.max(rss_kib(pid));
        }
    }
    let with = rss_kib(pid);
    peak = peak.max(with);
    eprintln!(
        "{n} connections took {} MB of unfinished lines in {:?} ({} bytes each asked)",
        sent / 1_000_000,
        started.elapsed(),
        HALF_LINE
    );
    // The node still answers while they are held.
    assert_eq!(net.admin(0).ok("PING"), json!({ "pong": true }));
    peak = peak.max(rss_kib(pid));
    drop(streams);

    let limit = before + 20 * 1024;
    wait_for(
        DEADLINE,
        "the node's RSS to come back within 20 MB of where it started",
        || rss_kib(pid) <= limit,
        || {
            format!(
                "RSS before {before} KiB, peak {peak} KiB, now {} KiB",
                rss_kib(pid)
            )
        },
    );
    let after = rss_kib(pid);
    eprintln!(
        "node RSS: before {:.1} MB, with {n} half-lines {:.1} MB (peak {:.1} MB), after they \
         closed {:.1} MB",
        before as f64 / 1024.0,
        with as f64 / 1024.0,
        peak as f64 / 1024.0,
        after as f64 / 1024.0
    );
    let h = net.height(0);
    net.wait_height(&[0], h + 3);
}

/// Acceptance 4, third part: a validator started under `ulimit -n 1024` (soft and hard, so
/// it cannot raise it) with 1,100 idle admin connections: the connections past its cap are
/// refused at once, its CPU stays low (no accept loop spinning), its vote log is pruned
/// (rewritten) meanwhile without error, blocks keep committing, and nothing in its log says
/// `Too many open files`.
#[test]
fn a_low_file_limit_costs_no_spin_and_no_vote_log_error() {
    let wanted = 1_100;
    let n = connections_allowed(wanted, 200);
    let all = [0, 1, 2, 3];
    let mut net = Net::create(4, None);
    // Blocks at the block interval even when idle, so that the vote log reaches its
    // pruning batch (256 records) within the deadline.
    let mut params = net.genesis.consensus.clone();
    params.idle_block_interval_ms = params.block_interval_ms;
    net.set_consensus(params);
    net.start_with_file_limit(0, 1024);
    for i in 1..4 {
        net.start(i);
    }
    net.wait_height(&all, 2);
    let pid = net.pid(0);

    let mut idle = open_idle(&net, net.ports.admin(0), n);
    let h = net.max_height(&all);
    // The refused ones are closed at once; give the node a moment to reach the last.
    net.wait_height(&all, h + 2);
    let (mut refused, mut told) = (0, 0);
    for stream in &mut idle {
        if let Some(got) = closed_now(stream) {
            refused += 1;
            told += usize::from(got.starts_with(b"ERR internal "));
        }
    }
    eprintln!(
        "under ulimit -n 1024: of {n} idle admin connections, {} held and {refused} refused at \
         once ({told} of them told `ERR internal`)",
        n - refused
    );
    assert!(
        refused > 0,
        "a node with 1024 files accepted {n} admin connections"
    );
    assert_eq!(told, refused, "each refused connection is told why");

    let votes = net.data_dir(0).join("votes.log");
    let size = || fs::metadata(&votes).map_or(0, |m| m.len());
    let cpu_before = cpu_time(pid);
    let started = Instant::now();
    let h = net.max_height(&all);
    let mut largest = size();
    net.wait_until(
        DEADLINE,
        "node0's vote log to be pruned (rewritten smaller)",
        || {
            let now = size();
            largest = largest.max(now);
            now < largest
        },
    );
    net.wait_height(&all, h + 5);
    let elapsed = started.elapsed();
    let cpu = cpu_time(pid) - cpu_before;
    let share = cpu.as_secs_f64() / elapsed.as_secs_f64();
    eprintln!(
        "node0 over {elapsed:?} with {} idle admin connections: {cpu:?} of CPU ({:.1}% of one \
         core), heights {h} -> {}, vote log pruned from {largest} bytes",
        n - refused,
        share * 100.0,
        net.height(0)
    );
    assert!(
        share < 0.5,
        "node0 used {:.0}% of a core with idle connections",
        share * 100.0
    );
    drop(idle);
    let log = net.current_log(0);
    assert!(
        !log.contains("Too many open files"),
        "node0's log: {}",
        net.logs_tail(40)
    );
    assert!(
        log.contains("open_files=Some(1024)"),
        "node0 logs its file limit: {}",
        net.logs_tail(40)
    );
}

/// Acceptance 4, last part, and the framing timeouts: every line that is not blank gets
/// exactly one answer, whatever whitespace it is made of; a line left unfinished is closed
/// after the line timeout (10 s).
#[test]
fn every_line_but_blank_ones_gets_one_answer() {
    let net = Net::launch(1);
    net.wait_height(&[0], 1);
    let mut unfinished = net.admin(0);
    unfinished.send_raw(b"PIN").expect("half a line sent");

    let mut admin = net.admin(0);
    let answered = [
        "\u{a0}", "\u{2028}", "\u{2029}", "\u{3000}", "\u{feff}", "\u{85}", "\x0b", "\x0c", "\r\r",
    ];
    let blank = ["", " ", "\t \t", "\r"];
    let mut batch = String::new();
    for (k, line) in answered.iter().enumerate() {
        batch.push_str(line);
        batch.push('\n');
        batch.push_str(blank[k % blank.len()]);
        batch.push('\n');
    }
    batch.push_str("PING\nQUIT\n");
    admin.send_raw(batch.as_bytes()).expect("the batch is sent");
    let mut replies = Vec::new();
    while let Ok(line) = admin.read_line() {
        replies.push(line);
    }
    eprintln!(
        "{} whitespace-only lines and {} blank ones pipelined, then PING and QUIT: {} answers",
        answered.len(),
        answered.len(),
        replies.len()
    );
    assert_eq!(replies.len(), answered.len() + 2, "{replies:#?}");
    for (reply, line) in replies.iter().zip(answered) {
        assert!(
            reply.starts_with("ERR unknown_command "),
            "{line:?} -> {reply}"
        );
    }
    assert_eq!(replies[answered.len()], "OK {\"pong\":true}");
    assert_eq!(replies[answered.len() + 1], "OK {\"bye\":true}");

    let took = time_to_close(
        &net,
        &mut unfinished,
        "a connection with an unfinished line",
    );
    eprintln!("a connection that sent `PIN` and no newline was closed after {took:?}");
}

/// Acceptance 5: the validator key signs nothing through the admin port unless the config
/// lists it in `wallets`; with `admin_token_file` set, the signing commands answer
/// `ERR unauthorized` on each connection until it sends the token, and work after; the
/// idle timeout closes a silent connection.
#[test]
fn the_admin_port_signs_only_with_listed_keys_and_after_auth() {
    let mut net = Net::launch(1);
    net.wait_height(&[0], 1);
    let fresh = almagill(&["keygen"]);
    let mut admin = net.admin(0);
    for line in [
        "SEND node0 alice 1".to_string(),
        "STAKE node0 1agl".to_string(),
        "UNSTAKE node0 100000agl".to_string(),
        format!("CREATE node0 {fresh} 1"),
    ] {
        assert_eq!(admin.err(&line), "no_key", "{line}");
    }
    // The shared accounts testnet lists still sign, and AUTH without a token file changes
    // nothing.
    let sent = admin.ok("SEND alice bob 1");
    net.wait_committed(0, str_field(&sent, "tx"));
    assert_eq!(admin.ok("AUTH anything"), json!({ "auth": true }));
    let help = admin.ok("HELP");
    assert!(
        help["commands"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("AUTH"))),
        "{help}"
    );
    eprintln!("node0 without its key in `wallets`: SEND/STAKE/UNSTAKE/CREATE node0 -> ERR no_key");
    drop(admin);

    // List the validator key, require a token, and shorten the idle timeout.
    let token = "7f3c9a1e5b2d4c6e8a0f1b3d5c7e9a2b";
    fs::write(net.dir().join("admin.token"), format!("{token}\n")).expect("token file");
    net.terminate(0);
    net.edit_config(0, |file| {
        file.wallets.push("keys/node0.key".into());
        file.admin_token_file = Some("admin.token".into());
        file.admin_idle_timeout_s = Some(3);
    });
    net.start(0);
    net.wait_height(&[0], net.recovered_height(0) + 1);

    let mut admin = net.admin(0);
    for line in [
        "SEND node0 bob 1",
        "SEND alice bob 1",
        "STAKE node0 1agl",
        "UNSTAKE node0 1agl",
    ] {
        assert_eq!(admin.err(line), "unauthorized", "{line}");
    }
    // Reads and SUBMIT need no token.
    let nonce = u64_field(&admin.ok("BALANCE alice"), "nonce");
    let genesis = net.dir().join("genesis.toml");
    let alice_key = net.dir().join("keys").join("alice.key");
    let tx = almagill(&[
        "tx",
        "transfer",
        "--key",
        alice_key.to_str().expect("a UTF-8 path"),
        "--to",
        "bob",
        "--amount",
        "1",
        "--nonce",
        &nonce.to_string(),
        "--genesis",
        genesis.to_str().expect("a UTF-8 path"),
    ]);
    let submitted = admin.ok(&format!("SUBMIT {tx}"));
    assert_eq!(admin.err("AUTH wrong-token"), "unauthorized");
    assert_eq!(admin.err("SEND node0 bob 1"), "unauthorized");
    assert_eq!(admin.ok(&format!("AUTH {token}")), json!({ "auth": true }));
    let sent = admin.ok("SEND node0 bob 1");
    // Another connection is not authorized by this one's AUTH.
    assert_eq!(net.admin(0).err("SEND node0 bob 1"), "unauthorized");
    for hash in [str_field(&submitted, "tx"), str_field(&sent, "tx")] {
        let answer = admin.ok(&format!("WAIT {hash} 60000"));
        assert_eq!(answer["status"], "committed", "{answer}");
    }
    eprintln!("with admin_token_file: SEND before AUTH -> ERR unauthorized; after -> committed");

    let took = time_to_close(
        &net,
        &mut admin,
        "a connection silent past the idle timeout",
    );
    eprintln!("with admin_idle_timeout_s = 3, a silent connection was closed after {took:?}");
}

/// A node whose `admin_token_file` is missing or empty refuses to start, naming the file.
#[test]
fn an_unusable_token_file_stops_the_start() {
    let net = Net::create(1, None);
    let token = net.dir().join("admin.token");
    net.edit_config(0, |file| file.admin_token_file = Some("admin.token".into()));
    for (contents, expected) in [
        (None, "cannot read admin token file"),
        (Some(" \n"), "it is empty"),
    ] {
        if let Some(text) = contents {
            fs::write(&token, text).expect("token file");
        }
        let mut child = Command::new(BIN)
            .arg("run")
            .arg("--config")
            .arg(net.config(0))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("almagill run starts");
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().expect("waitable") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("almagill run kept running with token file {contents:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr)
            .expect("stderr is text");
        assert!(!status.success(), "started with token file {contents:?}");
        assert!(
            stderr.contains(expected) && stderr.contains("admin.token"),
            "{contents:?}: {stderr}"
        );
        eprintln!("token file {contents:?}: {}", stderr.trim());
    }
}
