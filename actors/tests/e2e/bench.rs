//! `almagill bench` end to end: a short run on ports the test reserves reports committed
//! transfers and their latency, and committed throughput stays above the CI floor.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{almagill, wait_for, Net, Ports, BIN};
use crate::localnet::{children_of, node_alive, Launcher};

/// Runs `almagill bench` with `args` on ports this test reserves; returns its output and
/// the committed transfers per second it reports.
fn bench(args: &[&str]) -> (String, f64) {
    let ports = Ports::reserve(4);
    let base = ports.base.to_string();
    let mut all = vec!["bench", "--base-port", &base];
    all.extend_from_slice(args);
    let out = almagill(&all);
    let committed = committed_figure(&out);
    drop(ports);
    (out, committed)
}

/// The committed transfers per second a bench's output reports.
fn committed_figure(out: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix("bench: committed "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no committed figure in:\n{out}"))
}

/// With `--endpoints` the bench drives a network it did not start: it creates its accounts
/// there, funded by the given key's account, and reports what committed.
#[test]
fn a_bench_drives_a_running_network_through_its_endpoints() {
    let net = Net::launch(4);
    let endpoints: Vec<String> = (0..4)
        .map(|i| format!("127.0.0.1:{}", net.ports.admin(i)))
        .collect();
    let key = net.dir().join("keys/alice.key");
    net.wait_height(&[0, 1, 2, 3], 1);
    let before = net.height(0);
    let out = almagill(&[
        "bench",
        "--endpoints",
        &endpoints.join(","),
        "--key",
        key.to_str().expect("a UTF-8 path"),
        "--rate",
        "100",
        "--duration",
        "2",
        "--warmup",
        "1",
        "--accounts",
        "40",
    ]);
    eprintln!("{out}");
    assert!(out.contains("bench: created 40 accounts"), "{out}");
    assert!(committed_figure(&out) > 0.0, "nothing committed:\n{out}");
    assert!(out.contains("the nodes are not measured"), "{out}");
    // The transfers went through the network that was already running.
    assert!(net.height(0) > before);
}

#[test]
fn a_short_bench_reports_committed_transfers_and_latency() {
    let (out, committed) = bench(&[
        "--rate",
        "300",
        "--duration",
        "2",
        "--warmup",
        "1",
        "--accounts",
        "4",
    ]);
    eprintln!("{out}");
    assert!(committed > 0.0, "nothing committed:\n{out}");
    assert!(out.contains("bench: latency p50 "), "{out}");
}

/// Committed transfers per second over a calibration of this machine: ed25519 batch
/// verifications per second on one core, measured in the same job, so a slower or busier
/// machine lowers both.
const FLOOR_RATIO: f64 = 0.02;

/// Batch signature verifications per second on this thread, over about a second.
fn calibration() -> f64 {
    use almagill::crypto::{signing_message, verify_batch, Keypair, SignedMessage};
    let keys: Vec<Keypair> = (0..64u8).map(|i| Keypair::from_seed([i; 32])).collect();
    let messages: Vec<Vec<u8>> = (0..256u32)
        .map(|i| signing_message(b"calibration\0", "bench", &i.to_le_bytes()))
        .collect();
    let signatures: Vec<_> = (0..256u32)
        .map(|i| keys[i as usize % 64].sign(b"calibration\0", "bench", &i.to_le_bytes()))
        .collect();
    let items: Vec<SignedMessage<'_>> = messages
        .iter()
        .zip(&signatures)
        .enumerate()
        .map(|(i, (m, s))| SignedMessage {
            signer: keys[i % 64].address(),
            message: m,
            signature: *s,
        })
        .collect();
    let started = std::time::Instant::now();
    let mut verified = 0;
    while started.elapsed() < std::time::Duration::from_secs(1) {
        assert!(verify_batch(&items).iter().all(|ok| *ok));
        verified += items.len();
    }
    verified as f64 / started.elapsed().as_secs_f64()
}

/// The regression floor: 3,000 transfers a second offered for 15 s must commit at least
/// [`FLOOR_RATIO`] times the calibration (about half the ratio measured on the development
/// machine, so a noisy machine does not fail it).
#[test]
fn committed_throughput_stays_above_the_floor() {
    let calibration = calibration();
    let (out, committed) = bench(&["--rate", "3000", "--duration", "15", "--warmup", "3"]);
    let ratio = committed / calibration;
    eprintln!(
        "floor: committed {committed:.0} tx/s, calibration {calibration:.0} verifications/s, \
         ratio {ratio:.4} (floor {FLOOR_RATIO})"
    );
    assert!(
        ratio >= FLOOR_RATIO,
        "committed {committed:.0} tx/s is below {FLOOR_RATIO} x {calibration:.0}:\n{out}"
    );
}

/// A bench stopped by SIGTERM (as `timeout` or a process manager stops it) stops the nodes
/// it started and removes their temporary directory, instead of leaving them running on
/// the ports of the next run.
///
/// Mutation caught: `stop_nodes_on_signal` not called — the bench dies at once and its
/// four nodes keep running (the wait for them to be gone fails; they are killed then).
#[test]
fn a_bench_stopped_by_sigterm_leaves_no_node_running() {
    let ports = Ports::reserve(4);
    let base = ports.base.to_string();
    let child = Command::new(BIN)
        .args([
            "bench",
            "--base-port",
            &base,
            "--rate",
            "50",
            "--warmup",
            "1",
            "--duration",
            "600",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("almagill bench starts");
    let pid = child.id();
    let dir = std::env::temp_dir().join(format!("almagill-bench-{pid}"));
    let _cleanup = RemoveOnDrop(dir.clone());
    let mut bench = Launcher {
        child,
        nodes: Vec::new(),
        dir: dir.clone(),
    };
    // The bench says what it offers once its network commits and its transfers are signed.
    let stdout = bench.child.stdout.take().expect("piped stdout");
    let offering = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.starts_with("bench: 4 nodes"));
    assert!(offering, "the bench ended before offering its load");
    bench.nodes = children_of(pid)
        .into_iter()
        .filter(|&p| node_alive(p, &dir))
        .collect();
    assert_eq!(bench.nodes.len(), 4, "the bench runs four nodes");

    rustix::process::kill_process(
        rustix::process::Pid::from_child(&bench.child),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM sent");
    let status = bench.child.wait().expect("the bench exits");
    let nodes = bench.nodes.clone();
    wait_for(
        Duration::from_secs(10),
        "the bench's nodes to be gone",
        || nodes.iter().all(|&p| !node_alive(p, &dir)),
        || format!("still running: {nodes:?}"),
    );
    assert_eq!(
        status.code(),
        Some(143),
        "the bench exits as stopped by SIGTERM"
    );
    assert!(!dir.exists(), "{} is left behind", dir.display());
    drop(ports);
}

/// Removes a directory on drop, so a failed test leaves no temporary directory behind.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
