//! Shared machinery of the end-to-end tests: free ports, a network of real `almagill run`
//! processes in a temporary directory, an admin-port client, and waiting with a deadline.
//!
//! Nothing here sleeps to synchronise: every wait polls a condition until a deadline and,
//! if the deadline passes, fails with what was awaited and the last log lines of each node.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use almagill::amount::Amount;
use almagill::config::NodeConfigFile;
use almagill::crypto::{Address, Keypair};
use almagill::encoding;
use almagill::genesis::{ConsensusParams, Genesis};
use almagill::tx::{TxBody, TxKind};
use almagill_testkit::Rng;
use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_almagill");

/// How long any single wait may take before the test fails: generous, since a 2-core machine
/// runs several networks at once.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(100);

/// The view timeout written into the tests' genesis (the testnet default is 2000 ms), so
/// view changes after a crash take less wall time.
pub const VIEW_TIMEOUT_MS: u64 = 1000;
/// The idle interval that goes with it: at most half the view timeout.
pub const IDLE_BLOCK_INTERVAL_MS: u64 = 500;

/// Log lines of each node shown when a test fails.
const LOG_TAIL: usize = 20;

/// How long a node may take to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------------------

/// The test kit's generator, seeded from the clock, the process id and a counter, so
/// parallel tests and parallel test processes draw different numbers.
pub fn rng() -> Rng {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    Rng::new(
        nanos ^ (u64::from(std::process::id()) << 32) ^ count.wrapping_mul(0xA076_1D64_78BD_642F),
    )
}

// ---------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------

/// Every port handed out by [`Ports::reserve`] and not yet released, so tests running in
/// parallel threads never pick overlapping ports.
static PORTS_IN_USE: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// The kernel's range of ephemeral ports (outgoing connections take their local port from
/// it): a node port there could be taken by some client socket while the node is down.
fn ephemeral_range() -> Option<(u16, u16)> {
    let text = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut words = text.split_whitespace();
    let low = words.next()?.parse().ok()?;
    let high = words.next()?.parse().ok()?;
    Some((low, high))
}

/// A network's ports: peers on `base + i`, admin on `base + 100 + i`, metrics on
/// `base + 200 + i`, reserved in this process until dropped.
pub struct Ports {
    /// The base port.
    pub base: u16,
    ports: Vec<u16>,
}

impl Ports {
    /// Picks a random base in 20000..60000 whose `3 n` ports are free now (each can be
    /// bound on 127.0.0.1) and not reserved by another test; retries otherwise. Bases whose
    /// ports fall in the ephemeral range are avoided while others can be found.
    pub fn reserve(n: usize) -> Ports {
        let ephemeral = ephemeral_range();
        let mut rng = rng();
        let span = 40_000 - 200 - n as u64;
        for attempt in 0..20_000 {
            let base = 20_000 + rng.below(span) as u16;
            let ports: Vec<u16> = (0..n as u16)
                .flat_map(|i| [base + i, base + 100 + i, base + 200 + i])
                .collect();
            if attempt < 10_000 {
                if let Some((low, high)) = ephemeral {
                    if ports.iter().any(|p| (low..=high).contains(p)) {
                        continue;
                    }
                }
            }
            let mut in_use = PORTS_IN_USE.lock().unwrap_or_else(PoisonError::into_inner);
            if ports.iter().any(|p| in_use.contains(p)) {
                continue;
            }
            let bound: io::Result<Vec<TcpListener>> = ports
                .iter()
                .map(|&p| TcpListener::bind(("127.0.0.1", p)))
                .collect();
            if bound.is_err() {
                continue;
            }
            in_use.extend(ports.iter().copied());
            return Ports { base, ports };
        }
        panic!("found no {n} free port triples in 20000..60000");
    }

    /// Node `i`'s peer port.
    pub fn peer(&self, i: usize) -> u16 {
        self.base + i as u16
    }

    /// Node `i`'s admin port.
    pub fn admin(&self, i: usize) -> u16 {
        self.base + 100 + i as u16
    }

    /// Node `i`'s metrics port.
    pub fn metrics(&self, i: usize) -> u16 {
        self.base + 200 + i as u16
    }
}

impl Drop for Ports {
    fn drop(&mut self) {
        let mut in_use = PORTS_IN_USE.lock().unwrap_or_else(PoisonError::into_inner);
        for p in &self.ports {
            in_use.remove(p);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------

/// Polls `condition` every 100 ms until it holds; past `timeout`, panics naming `what` and
/// adding `context()` (typically the nodes' last log lines).
pub fn wait_for(
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> bool,
    context: impl FnOnce() -> String,
) {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {:?} waiting for: {what}\n{}",
                timeout,
                context()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// The last `lines` lines of a file (empty if it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------
// The admin client
// ---------------------------------------------------------------------------------------

/// One parsed admin response line.
#[derive(Debug)]
pub enum Reply {
    /// `OK <json>`.
    Ok(Value),
    /// `ERR <code> <message>`: the code.
    Err(String),
}

/// Parses a response line per the admin protocol; `Err` describes a malformed line.
pub fn parse_reply(line: &str) -> Result<Reply, String> {
    if let Some(json) = line.strip_prefix("OK ") {
        serde_json::from_str(json)
            .map(Reply::Ok)
            .map_err(|e| format!("`{line}`: OK with bad JSON: {e}"))
    } else if let Some(rest) = line.strip_prefix("ERR ") {
        let code = rest.split(' ').next().unwrap_or_default();
        if code.is_empty() {
            return Err(format!("`{line}`: ERR without a code"));
        }
        Ok(Reply::Err(code.to_string()))
    } else {
        Err(format!(
            "`{line}` is neither `OK <json>` nor `ERR <code> ...`"
        ))
    }
}

/// A connection to a node's admin port.
pub struct Admin {
    reader: BufReader<TcpStream>,
}

impl Admin {
    /// Connects to `127.0.0.1:port`.
    pub fn connect(port: u16) -> io::Result<Admin> {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        Ok(Admin {
            reader: BufReader::new(stream),
        })
    }

    /// The socket, for raw writes and timeouts.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Writes raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Reads exactly one response line (without its line ending); the end of the stream is
    /// an `UnexpectedEof` error.
    pub fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        let n = self.reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the node closed the connection (partial line: {:?})",
                    String::from_utf8_lossy(&line)
                ),
            ));
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Whether the node has closed the connection: reads until end of stream (or a reset),
    /// discarding anything still sent, for at most `timeout`.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        read_until_closed(self.reader.get_mut(), timeout)
    }

    /// Sends one request line and reads its one response line.
    pub fn request(&mut self, line: &str) -> io::Result<String> {
        self.send_raw(format!("{line}\n").as_bytes())?;
        self.read_line()
    }

    /// Sends `line`, expects `OK <json>` and returns the JSON.
    pub fn ok(&mut self, line: &str) -> Value {
        match self.request(line).map(|r| (parse_reply(&r), r)) {
            Ok((Ok(Reply::Ok(value)), _)) => value,
            Ok((_, reply)) => panic!("`{line}`: expected OK, got `{reply}`"),
            Err(e) => panic!("`{line}`: {e}"),
        }
    }

    /// Sends `line`, expects `ERR <code> ...` and returns the code.
    pub fn err(&mut self, line: &str) -> String {
        match self.request(line).map(|r| (parse_reply(&r), r)) {
            Ok((Ok(Reply::Err(code)), _)) => code,
            Ok((_, reply)) => panic!("`{line}`: expected ERR, got `{reply}`"),
            Err(e) => panic!("`{line}`: {e}"),
        }
    }
}

/// Reads from `stream` until the peer closes it (end of stream or reset), for at most
/// `timeout`; `false` if it is still open then.
pub fn read_until_closed(stream: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return true;
        }
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

// ---------------------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------------------

/// `value[key]` as a u64, or a panic naming the field.
pub fn u64_field(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("`{key}` is not an integer in {value}"))
}

/// `value[key]` as a string, or a panic naming the field.
pub fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string in {value}"))
}

/// `value[key]`, an amount (a JSON string of base units), as a number.
pub fn amount_field(value: &Value, key: &str) -> Amount {
    str_field(value, key)
        .parse()
        .unwrap_or_else(|e| panic!("`{key}` is not an amount in {value}: {e}"))
}

/// Whether `text` is 64 lowercase hex characters (an address or a hash).
pub fn is_hex64(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The round of a `STATUS` answer: its view is that of the next height plus the round.
pub fn round_of(status: &Value) -> u64 {
    u64_field(status, "view") - u64_field(status, "height") - 1
}

/// What the tests compare of a committed block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: String,
    /// Its parent's hash.
    pub prev: String,
    /// The state root after it.
    pub state_root: String,
    /// Its transactions' hashes.
    pub txs: Vec<String>,
}

impl BlockInfo {
    /// Reads a `BLOCK` answer.
    pub fn from_json(block: &Value) -> BlockInfo {
        BlockInfo {
            height: u64_field(block, "height"),
            hash: str_field(block, "hash").to_string(),
            prev: str_field(block, "prev").to_string(),
            state_root: str_field(block, "state_root").to_string(),
            txs: block["txs"]
                .as_array()
                .unwrap_or_else(|| panic!("`txs` is not an array in {block}"))
                .iter()
                .map(|t| t.as_str().expect("a tx hash string").to_string())
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The network
// ---------------------------------------------------------------------------------------

/// A network of `n` validators written by `almagill testnet` into a temporary directory,
/// each a real `almagill run` process whose stderr goes to `node<i>.log` there. Dropping it
/// SIGKILLs every node still running; the directory goes with the `TempDir`.
pub struct Net {
    /// How many nodes.
    pub n: usize,
    /// The reserved ports.
    pub ports: Ports,
    /// The genesis the nodes run (as tuned by [`Net::create`]).
    pub genesis: Genesis,
    children: Vec<Option<Child>>,
    /// Byte offset of each node's log where its current run began.
    log_start: Vec<u64>,
    /// One cached admin connection per node, dropped whenever the node stops or starts.
    conns: Mutex<Vec<Option<Admin>>>,
    tmp: TempDir,
}

impl Net {
    /// Writes an `n`-validator network and starts every node.
    pub fn launch(n: usize) -> Net {
        Net::launch_with(n, None)
    }

    /// Like [`Net::launch`], with the genesis `epoch_length` set to `epoch_length` if given
    /// (the testnet default is 100 blocks).
    pub fn launch_with(n: usize, epoch_length: Option<u64>) -> Net {
        let mut net = Net::create(n, epoch_length);
        for i in 0..n {
            net.start(i);
        }
        net
    }

    /// Writes an `n`-validator network with `almagill testnet` on free ports, with a shorter
    /// view timeout ([`VIEW_TIMEOUT_MS`]) and the given epoch length; starts nothing.
    pub fn create(n: usize, epoch_length: Option<u64>) -> Net {
        let tmp = tempfile::Builder::new()
            .prefix("almagill-e2e-")
            .tempdir()
            .expect("a temporary directory");
        let ports = Ports::reserve(n);
        let dir = tmp.path().join("net");
        let out = Command::new(BIN)
            .arg("testnet")
            .arg("--validators")
            .arg(n.to_string())
            .arg("--out")
            .arg(&dir)
            .arg("--base-port")
            .arg(ports.base.to_string())
            .output()
            .expect("almagill testnet runs");
        assert!(
            out.status.success(),
            "almagill testnet failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = dir.join("genesis.toml");
        let text = fs::read_to_string(&path).expect("genesis.toml is written");
        let mut genesis = Genesis::from_toml(&text).unwrap_or_else(|e| panic!("genesis: {e}"));
        genesis.consensus.view_timeout_ms = VIEW_TIMEOUT_MS;
        genesis.consensus.idle_block_interval_ms = IDLE_BLOCK_INTERVAL_MS;
        if let Some(epoch_length) = epoch_length {
            genesis.epoch_length = epoch_length;
        }
        genesis
            .validate()
            .unwrap_or_else(|e| panic!("tuned genesis: {e}"));
        fs::write(&path, genesis.to_toml()).expect("genesis.toml is writable");
        Net {
            n,
            ports,
            genesis,
            children: (0..n).map(|_| None).collect(),
            log_start: vec![0; n],
            conns: Mutex::new((0..n).map(|_| None).collect()),
            tmp,
        }
    }

    /// Replaces the consensus parameters of a network not started yet, and rewrites its
    /// genesis file.
    pub fn set_consensus(&mut self, params: ConsensusParams) {
        self.genesis.consensus = params;
        self.genesis
            .validate()
            .unwrap_or_else(|e| panic!("consensus parameters {:?}: {e}", self.genesis.consensus));
        fs::write(self.dir().join("genesis.toml"), self.genesis.to_toml())
            .expect("genesis.toml is writable");
    }

    /// The network directory (`genesis.toml`, `node<i>.toml`, `keys/`, `data/`).
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("net")
    }

    /// Node `i`'s config file.
    pub fn config(&self, i: usize) -> PathBuf {
        self.dir().join(format!("node{i}.toml"))
    }

    /// Node `i`'s log file (every run of it, appended).
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.tmp.path().join(format!("node{i}.log"))
    }

    /// Node `i`'s data directory.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir().join("data").join(format!("node{i}"))
    }

    /// The genesis address of account `name`, as hex.
    pub fn address_of(&self, name: &str) -> String {
        self.genesis
            .account_named(name)
            .unwrap_or_else(|| panic!("no account {name} in genesis"))
            .address
            .to_string()
    }

    /// Node `i`'s validator address, as hex.
    pub fn address(&self, i: usize) -> String {
        self.address_of(&format!("node{i}"))
    }

    /// The node whose validator address is `address`.
    pub fn node_index(&self, address: &str) -> Option<usize> {
        (0..self.n).find(|&i| self.address(i) == address)
    }

    /// The genesis balance of account `name`.
    pub fn genesis_balance(&self, name: &str) -> Amount {
        self.genesis
            .account_named(name)
            .unwrap_or_else(|| panic!("no account {name} in genesis"))
            .balance
    }

    fn drop_conn(&mut self, i: usize) {
        self.conns.get_mut().unwrap_or_else(PoisonError::into_inner)[i] = None;
    }

    /// Starts node `i` (`almagill run --config <dir>/node<i>.toml`, `RUST_LOG=info`), its
    /// output appended to its log file.
    pub fn start(&mut self, i: usize) {
        self.spawn(i, Command::new(BIN), &[]);
    }

    /// Like [`Net::start`], with `almagill run --state-sync`.
    pub fn start_state_sync(&mut self, i: usize) {
        self.spawn(i, Command::new(BIN), &["--state-sync"]);
    }

    /// Like [`Net::start`], with the node's open-file limit (soft and hard) set to `limit`
    /// by the shell that then `exec`s it, as `ulimit -n <limit>` before a start would.
    pub fn start_with_file_limit(&mut self, i: usize, limit: u64) {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
            .arg(BIN);
        self.spawn(i, sh, &[]);
    }

    /// Starts node `i` with `command` (the binary, or a shell that `exec`s it), adding the
    /// `run --config` arguments and `extra`, the environment and the log file.
    fn spawn(&mut self, i: usize, mut command: Command, extra: &[&str]) {
        assert!(self.children[i].is_none(), "node{i} is already running");
        self.drop_conn(i);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .expect("the log file opens");
        self.log_start[i] = log.metadata().map_or(0, |m| m.len());
        let child = command
            .arg("run")
            .arg("--config")
            .arg(self.config(i))
            .args(extra)
            // ALMAGILL_E2E_LOG sets the nodes' RUST_LOG instead (to debug a failing test).
            .env(
                "RUST_LOG",
                std::env::var("ALMAGILL_E2E_LOG").unwrap_or_else(|_| "info".to_string()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file clones"))
            .stderr(log)
            .spawn()
            .expect("almagill run starts");
        self.children[i] = Some(child);
    }

    /// Node `i`'s process id; it must be running.
    pub fn pid(&self, i: usize) -> u32 {
        self.children[i]
            .as_ref()
            .unwrap_or_else(|| panic!("node{i} is not running"))
            .id()
    }

    /// Node `i`'s resident memory in KiB.
    pub fn rss_kib(&self, i: usize) -> u64 {
        rss_kib(self.pid(i))
    }

    /// Rewrites node `i`'s config file through `edit` (the node reads it at its next start).
    pub fn edit_config(&self, i: usize, edit: impl FnOnce(&mut NodeConfigFile)) {
        let path = self.config(i);
        let text = fs::read_to_string(&path).expect("the node config is readable");
        let mut file =
            NodeConfigFile::from_toml(&text).unwrap_or_else(|e| panic!("node{i}.toml: {e}"));
        edit(&mut file);
        fs::write(&path, file.to_toml()).expect("the node config is writable");
    }

    /// Whether node `i` is running as far as this harness knows.
    pub fn running(&self, i: usize) -> bool {
        self.children[i].is_some()
    }

    /// SIGKILLs node `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        self.drop_conn(i);
        let mut child = self.children[i]
            .take()
            .unwrap_or_else(|| panic!("node{i} is not running"));
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Sends SIGTERM to node `i` and waits for it to exit; returns its exit status.
    pub fn terminate(&mut self, i: usize) -> ExitStatus {
        self.drop_conn(i);
        let mut child = self.children[i]
            .take()
            .unwrap_or_else(|| panic!("node{i} is not running"));
        let pid = rustix::process::Pid::from_child(&child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM is sent");
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            if let Some(status) = child.try_wait().expect("the node can be waited on") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "node{i} did not exit within {STOP_GRACE:?} of SIGTERM\n{}",
                    self.logs_tail(LOG_TAIL)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts node `i` again with the same config and data directory, SIGKILLing it first
    /// if it is running.
    pub fn restart(&mut self, i: usize) {
        if self.running(i) {
            self.kill(i);
        }
        self.start(i);
    }

    /// Deletes node `i`'s data directory (`data/node<i>`); the node must be stopped.
    pub fn wipe(&mut self, i: usize) {
        assert!(!self.running(i), "wipe node{i} only while it is stopped");
        let dir = self.data_dir(i);
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("the data dir is removable");
        }
    }

    /// The last `lines` log lines of every node, for failure messages.
    pub fn logs_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for i in 0..self.n {
            out.push_str(&format!(
                "---- node{i} ({}) last log lines ----\n{}\n",
                if self.running(i) {
                    "running"
                } else {
                    "stopped"
                },
                tail(&self.log_path(i), lines)
            ));
        }
        out
    }

    /// Node `i`'s log since its current (or last) start.
    pub fn current_log(&self, i: usize) -> String {
        let bytes = fs::read(self.log_path(i)).unwrap_or_default();
        let start = (self.log_start[i] as usize).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// Panics with `message` and every node's last log lines.
    pub fn fail(&self, message: &str) -> ! {
        panic!("{message}\n{}", self.logs_tail(LOG_TAIL))
    }

    /// Polls `condition` until it holds or `timeout` passes; then fails naming `what`, with
    /// the last log lines of each node.
    pub fn wait_until(&self, timeout: Duration, what: &str, condition: impl FnMut() -> bool) {
        wait_for(timeout, what, condition, || self.logs_tail(LOG_TAIL));
    }

    // ----- metrics -----

    /// `GET path` on node `i`'s metrics port (asking for OpenMetrics if `openmetrics`): the
    /// status line and headers, and the body.
    pub fn metrics_get(&self, i: usize, path: &str, openmetrics: bool) -> (String, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.ports.metrics(i)))
            .unwrap_or_else(|e| self.fail(&format!("node{i}'s metrics port: {e}")));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("a timeout");
        let accept = if openmetrics {
            "Accept: application/openmetrics-text; version=1.0.0\r\n"
        } else {
            ""
        };
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\n{accept}\r\n"
        )
        .expect("sent");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("an answer");
        let (head, body) = response.split_once("\r\n\r\n").expect("headers end");
        (head.to_string(), body.to_string())
    }

    /// The value of `sample` (a name with its labels, as exposed) in node `i`'s metrics; 0
    /// while it is not exposed (a labelled counter appears at its first increment).
    pub fn metric(&self, i: usize, sample: &str) -> f64 {
        let (_, body) = self.metrics_get(i, "/metrics", false);
        body.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    // ----- admin -----

    /// Sends one line to node `i`'s admin port (over a cached connection) and returns the
    /// response line. A cached connection the node closed meanwhile (its idle timeout, in a
    /// long test) is replaced once.
    pub fn request(&self, i: usize, line: &str) -> io::Result<String> {
        let mut conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(Ok(reply)) = conns[i].as_mut().map(|c| c.request(line)) {
            return Ok(reply);
        }
        let mut conn = Admin::connect(self.ports.admin(i))?;
        let result = conn.request(line);
        conns[i] = result.is_ok().then_some(conn);
        result
    }

    /// A new admin connection to node `i`.
    pub fn admin(&self, i: usize) -> Admin {
        Admin::connect(self.ports.admin(i))
            .unwrap_or_else(|e| self.fail(&format!("cannot connect to node{i}'s admin port: {e}")))
    }

    /// Sends `line` to node `i`; `Some(json)` if it answered `OK`.
    pub fn try_ok(&self, i: usize, line: &str) -> Option<Value> {
        match parse_reply(&self.request(i, line).ok()?) {
            Ok(Reply::Ok(value)) => Some(value),
            _ => None,
        }
    }

    /// Sends `line` to node `i`, asserts `OK <json>` and returns the JSON.
    pub fn ok(&self, i: usize, line: &str) -> Value {
        match self.request(i, line) {
            Ok(reply) => match parse_reply(&reply) {
                Ok(Reply::Ok(value)) => value,
                Ok(Reply::Err(_)) => {
                    self.fail(&format!("node{i}: `{line}` -> `{reply}`, expected OK"))
                }
                Err(e) => self.fail(&format!("node{i}: `{line}`: {e}")),
            },
            Err(e) => self.fail(&format!("node{i}: `{line}`: {e}")),
        }
    }

    /// Sends `line` to node `i`, asserts `ERR <code> ...` and returns the code.
    pub fn err(&self, i: usize, line: &str) -> String {
        match self.request(i, line) {
            Ok(reply) => match parse_reply(&reply) {
                Ok(Reply::Err(code)) => code,
                Ok(Reply::Ok(_)) => {
                    self.fail(&format!("node{i}: `{line}` -> `{reply}`, expected ERR"))
                }
                Err(e) => self.fail(&format!("node{i}: `{line}`: {e}")),
            },
            Err(e) => self.fail(&format!("node{i}: `{line}`: {e}")),
        }
    }

    /// Node `i`'s `STATUS`.
    pub fn status(&self, i: usize) -> Value {
        self.ok(i, "STATUS")
    }

    /// Node `i`'s committed height (`STATUS`), if it answers.
    pub fn try_height(&self, i: usize) -> Option<u64> {
        self.try_ok(i, "STATUS").and_then(|s| s["height"].as_u64())
    }

    /// Node `i`'s committed height (`STATUS`).
    pub fn height(&self, i: usize) -> u64 {
        u64_field(&self.status(i), "height")
    }

    /// The height of node `i`'s last executed block (`BLOCK latest`; 0 at genesis), if it
    /// answers.
    pub fn try_executed(&self, i: usize) -> Option<u64> {
        let reply = self.request(i, "BLOCK latest").ok()?;
        match parse_reply(&reply).ok()? {
            Reply::Ok(block) => block["height"].as_u64(),
            Reply::Err(code) if code == "not_found" => Some(0),
            Reply::Err(_) => None,
        }
    }

    /// Waits until every node of `nodes` has committed height `height` (`STATUS`).
    pub fn wait_height(&self, nodes: &[usize], height: u64) {
        self.wait_until(
            DEADLINE,
            &format!("nodes {nodes:?} to reach height {height}"),
            || {
                nodes
                    .iter()
                    .all(|&i| self.try_height(i).is_some_and(|h| h >= height))
            },
        );
    }

    /// Waits until every node of `nodes` has executed height `height` (`BLOCK latest`).
    pub fn wait_executed(&self, nodes: &[usize], height: u64) {
        self.wait_until(
            DEADLINE,
            &format!("nodes {nodes:?} to execute height {height}"),
            || {
                nodes
                    .iter()
                    .all(|&i| self.try_executed(i).is_some_and(|h| h >= height))
            },
        );
    }

    /// The highest committed height among `nodes`.
    pub fn max_height(&self, nodes: &[usize]) -> u64 {
        nodes.iter().map(|&i| self.height(i)).max().unwrap_or(0)
    }

    /// Waits until every node (all must be running) shows every peer connected, both in
    /// `STATUS` (`peers`) and in `PEERS`.
    pub fn wait_all_connected(&self) {
        let n = self.n;
        self.wait_until(
            DEADLINE,
            "every node to be connected to all its peers",
            || {
                (0..n).all(|i| {
                    self.try_ok(i, "STATUS")
                        .is_some_and(|s| s["peers"].as_u64() == Some(n as u64 - 1))
                        && self.try_ok(i, "PEERS").is_some_and(|p| {
                            p.as_array().is_some_and(|l| {
                                l.len() == n - 1 && l.iter().all(|e| e["connected"] == true)
                            })
                        })
                })
            },
        );
    }

    /// Node `i`'s `BLOCK <height>`.
    pub fn block(&self, i: usize, height: u64) -> Value {
        self.ok(i, &format!("BLOCK {height}"))
    }

    /// Node `i`'s blocks `1..=height` (which it must have executed), checking on the way
    /// that each links to the one before and carries a commit certificate of more than two
    /// thirds of the (equal) stake.
    pub fn chain(&self, i: usize, height: u64) -> Vec<BlockInfo> {
        let mut admin = self.admin(i);
        let mut chain: Vec<BlockInfo> = Vec::new();
        for h in 1..=height {
            let line = format!("BLOCK {h}");
            let block = match admin.request(&line).map(|r| (parse_reply(&r), r)) {
                Ok((Ok(Reply::Ok(block)), _)) => block,
                Ok((_, reply)) => self.fail(&format!("node{i}: `{line}` -> `{reply}`")),
                Err(e) => self.fail(&format!("node{i}: `{line}`: {e}")),
            };
            let info = BlockInfo::from_json(&block);
            assert_eq!(info.height, h, "node{i}: BLOCK {h} answered {block}");
            if let Some(parent) = chain.last() {
                assert_eq!(
                    info.prev,
                    parent.hash,
                    "node{i}: block {h}'s prev is not block {}'s hash",
                    h - 1
                );
            }
            let signers = u64_field(&block, "signers");
            assert!(
                signers * 3 > 2 * self.n as u64 && signers <= self.n as u64,
                "node{i}: block {h} has {signers} signers of {} equal-stake validators: {block}",
                self.n
            );
            chain.push(info);
        }
        chain
    }

    /// Waits until every node of `nodes` has executed `height`, then asserts they hold the
    /// same blocks `1..=height` (hash, parent, state root, transactions); returns them.
    pub fn assert_same_chain(&self, nodes: &[usize], height: u64) -> Vec<BlockInfo> {
        self.wait_executed(nodes, height);
        let first = self.chain(nodes[0], height);
        for &i in &nodes[1..] {
            let other = self.chain(i, height);
            for (a, b) in first.iter().zip(&other) {
                if a != b {
                    self.fail(&format!(
                        "node{} and node{i} disagree at height {}:\n  {a:?}\n  {b:?}",
                        nodes[0], a.height
                    ));
                }
            }
        }
        first
    }

    /// `WAIT <hash> 60000` on node `i`; asserts the transaction committed and returns its
    /// height.
    ///
    /// `ERR not_found` is asked again (within [`DEADLINE`]) rather than failed on: the node
    /// can answer it for a transaction at the very moment it executes (its `TX`/`WAIT` reads
    /// the ledger, then the mempool, and the transaction can move from the one to the other
    /// in between). `four_validators_agree` checks that race on its own; here a transaction
    /// that is really lost still fails, at the deadline.
    pub fn wait_committed(&self, i: usize, hash: &str) -> u64 {
        let line = format!("WAIT {hash} 60000");
        let mut answer = None;
        self.wait_until(DEADLINE, &format!("node{i}: `{line}` to answer"), || {
            let reply = self
                .request(i, &line)
                .unwrap_or_else(|e| self.fail(&format!("node{i}: `{line}`: {e}")));
            match parse_reply(&reply) {
                Ok(Reply::Ok(value)) => {
                    answer = Some(value);
                    true
                }
                Ok(Reply::Err(code)) if code == "not_found" => false,
                _ => self.fail(&format!("node{i}: `{line}` -> `{reply}`")),
            }
        });
        let answer = answer.expect("answered");
        if answer["status"] != "committed" || answer["tx"] != hash {
            self.fail(&format!(
                "node{i}: `{line}` -> {answer}, expected committed"
            ));
        }
        u64_field(&answer, "height")
    }

    /// Polls `TX <hash>` on every node of `nodes` until each shows it committed, and asserts
    /// they all give the same height, which is returned.
    pub fn committed_everywhere(&self, nodes: &[usize], hash: &str) -> u64 {
        let mut heights = vec![None; self.n];
        self.wait_until(
            DEADLINE,
            &format!("TX {hash} committed on nodes {nodes:?}"),
            || {
                for &i in nodes {
                    if heights[i].is_none() {
                        if let Some(tx) = self.try_ok(i, &format!("TX {hash}")) {
                            if tx["status"] == "committed" {
                                heights[i] = tx["height"].as_u64();
                            } else if tx["status"] != "pending" {
                                self.fail(&format!("node{i}: TX {hash} -> {tx}"));
                            }
                        }
                    }
                }
                nodes.iter().all(|&i| heights[i].is_some())
            },
        );
        let first = heights[nodes[0]].expect("committed");
        for &i in nodes {
            assert_eq!(
                heights[i],
                Some(first),
                "TX {hash}: node{i} and node{} disagree on its height",
                nodes[0]
            );
        }
        first
    }

    /// The height in node `i`'s "recovered from disk ... height=H" log line of its current
    /// run, waiting for it to appear.
    pub fn recovered_height(&self, i: usize) -> u64 {
        let mut found = None;
        self.wait_until(
            DEADLINE,
            &format!("node{i} to log `recovered from disk ... height=H`"),
            || {
                found = self
                    .current_log(i)
                    .lines()
                    .find(|l| l.contains("recovered from disk"))
                    .and_then(|l| {
                        let rest = &l[l.find("height=")? + "height=".len()..];
                        let digits: String =
                            rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                        digits.parse().ok()
                    });
                found.is_some()
            },
        );
        found.expect("found")
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.conns
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        for child in self.children.iter_mut() {
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            // ALMAGILL_E2E_KEEP=1 keeps a failed test's directory (configs, data, logs).
            let kept = std::env::var_os("ALMAGILL_E2E_KEEP").is_some();
            if kept {
                self.tmp.disable_cleanup(true);
            }
            eprintln!(
                "network in {} ({}); last log lines:\n{}",
                self.tmp.path().display(),
                if kept { "kept" } else { "removed now" },
                self.logs_tail(LOG_TAIL)
            );
        }
    }
}

/// Runs `almagill <args>` to completion and returns its trimmed stdout; panics on failure.
pub fn almagill(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("the almagill binary runs");
    assert!(
        out.status.success(),
        "almagill {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

// ---------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------

/// Pre-signed transfers of 1 base unit from `from` (a key in the network's `keys/`) to
/// `to`, with the given nonces, as `SUBMIT` lines' hex.
pub fn signed_transfers(
    net: &Net,
    from: &str,
    to: &str,
    nonces: impl Iterator<Item = u64>,
) -> Vec<String> {
    let text =
        std::fs::read_to_string(net.dir().join(format!("keys/{from}.key"))).expect("the key file");
    let key = Keypair::from_key_file(&text).expect("a key");
    let to = Address::from_hex(&net.address_of(to)).expect("an address");
    nonces
        .map(|nonce| {
            let tx = TxBody {
                from: key.address(),
                nonce,
                kind: TxKind::Transfer { to, amount: 1 },
            }
            .sign(&key, &net.genesis.chain_id);
            hex::encode(encoding::encode(&tx))
        })
        .collect()
}

/// Commits `total` transfers in full blocks: alice and bob each send half, pipelined in
/// chunks of 5,000 to nodes 0 and 1, each chunk committed before the next (the mempool
/// holds 10,000). Nonces run from 0: alice's next is `total / 2`.
pub fn load(net: &Net, total: u64) {
    const CHUNK: u64 = 5_000;
    for start in (0..total / 2).step_by(CHUNK as usize) {
        let nonces = start..start + CHUNK;
        let alice = signed_transfers(net, "alice", "bob", nonces.clone());
        let bob = signed_transfers(net, "bob", "alice", nonces);
        let alice = pipeline(net, 0, &alice);
        let bob = pipeline(net, 1, &bob);
        // Each on the node it was sent to: gossip may not have brought it elsewhere yet.
        wait_committed(net, 0, &alice[alice.len() - 1]);
        wait_committed(net, 1, &bob[bob.len() - 1]);
    }
}

/// Writes every line at once on one connection, then reads one answer per line; returns the
/// transaction hashes, failing on any `ERR`.
pub fn pipeline(net: &Net, node: usize, signed: &[String]) -> Vec<String> {
    let mut admin = net.admin(node);
    let mut lines = String::new();
    for hex in signed {
        lines.push_str(&format!("SUBMIT {hex}\n"));
    }
    let mut writer = admin.stream().try_clone().expect("a second handle");
    let sender = std::thread::spawn(move || writer.write_all(lines.as_bytes()));
    let hashes = (0..signed.len())
        .map(|k| {
            let reply = admin.read_line().expect("an answer");
            let Some(json) = reply.strip_prefix("OK ") else {
                net.fail(&format!("transaction {k} refused: `{reply}`"));
            };
            let value: serde_json::Value = serde_json::from_str(json).expect("JSON");
            str_field(&value, "tx").to_string()
        })
        .collect();
    sender
        .join()
        .expect("the writer")
        .expect("all lines written");
    hashes
}

/// Waits until `hash` is committed on `node`.
pub fn wait_committed(net: &Net, node: usize, hash: &str) {
    let mut admin = net.admin(node);
    let status = admin.ok(&format!("WAIT {hash} {}", DEADLINE.as_millis()));
    assert_eq!(
        str_field(&status, "status"),
        "committed",
        "{hash}: {status}"
    );
}

/// A process's resident memory in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("process {pid}'s /proc status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS for process {pid}"))
}

/// The first and the last of a set of idle admin connections still answer `PING`: they
/// were really accepted and kept.
pub fn first_and_last_answer(idle: &mut [TcpStream]) {
    let last = idle.len() - 1;
    for k in [0, last] {
        let stream = &mut idle[k];
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("a read timeout");
        stream.write_all(b"PING\n").expect("PING sent");
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).expect("an answer");
        assert!(
            buf[..n].starts_with(b"OK {\"pong\":true}"),
            "idle connection {k}: {:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
}
