//! `almagill bench`: the one command behind the throughput and latency figures. It writes a
//! local network into a temporary directory, starts its nodes, pre-signs transfers between
//! funded accounts, drives every node's admin port open-loop at the offered rate, and
//! reports what committed and how long each transaction took, measured from outside as a
//! client sees it: from the moment its `SUBMIT` line is written to the moment node 0's
//! `BLOCK` first lists it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use almagill::crypto::{Hash, Keypair};
use almagill::encoding;
use almagill::tx::{TxBody, TxKind};
use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::plot;
use super::signals::StopSignals;
use crate::files;

/// What a run is asked to do: the `bench` command's options.
#[derive(Clone, Debug, clap::Args)]
pub struct Plan {
    /// How many validators.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub validators: u16,
    /// Transfers offered per second, over all nodes.
    #[arg(long, value_name = "TX_PER_S", default_value_t = 2000)]
    pub rate: u64,
    /// Seconds measured, after the warm-up.
    #[arg(long, value_name = "S", default_value_t = 20)]
    pub duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, value_name = "S", default_value_t = 3)]
    pub warmup: u64,
    /// Funded accounts sending transfers (at least 2). The client sends each account's
    /// nonces in order without waiting for answers; a refused one is sent again 200 ms
    /// later, and meanwhile that account's transfers more than 64 nonces beyond it (what a
    /// node keeps waiting ahead of a gap) are refused too. Above about 320 transfers a
    /// second from one account these refusals feed themselves and the account never
    /// catches up; the default keeps every account far below that.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub accounts: u16,
    /// The network's base port (peers base+i, admin base+100+i, metrics base+200+i).
    #[arg(long, value_name = "PORT", default_value_t = 27000)]
    pub base_port: u16,
    /// Write per-second figures (offered, committed, p50, p99) to this CSV file.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Kill the last validator as the warm-up begins (the others take all the load), so
    /// that the window measures a network that has run --warmup seconds with one dead.
    #[arg(long)]
    pub kill_one: bool,
    /// Run each of these offered rates in turn, each on a fresh network (or on the
    /// --endpoints one), instead of --rate (e.g. 1000,2000,4000).
    #[arg(long, value_name = "RATES", value_delimiter = ',')]
    pub sweep: Vec<u64>,
    /// With --sweep, write a plot of latency against throughput to this SVG file.
    #[arg(long, value_name = "FILE", requires = "sweep")]
    pub svg: Option<PathBuf>,
    /// Write the network into this directory (which must not exist) instead of a
    /// temporary one, and leave it there, nodes stopped: a long chain to restart a node on.
    #[arg(long, value_name = "DIR", conflicts_with = "sweep")]
    pub keep: Option<PathBuf>,
    /// Drive a running network through these admin endpoints (e.g.
    /// 127.0.0.1:7100,127.0.0.1:7101) instead of starting one; the first endpoint's
    /// `BLOCK`s time the commits. Needs --key; the nodes' CPU and memory are not measured.
    #[arg(
        long,
        value_name = "ADDRS",
        value_delimiter = ',',
        requires = "key",
        conflicts_with_all = ["kill_one", "keep"]
    )]
    pub endpoints: Vec<SocketAddr>,
    /// With --endpoints, the key file of an account that funds the bench's accounts (each
    /// gets a fresh key and what its transfers need, by a `CreateAccount` transaction).
    #[arg(long, value_name = "FILE", requires = "endpoints")]
    pub key: Option<PathBuf>,
}

/// What one run measured.
struct Outcome {
    committed_per_s: f64,
    p50: f64,
    p99: f64,
}

/// Most transfers one run pre-signs: each holds a few hundred bytes in memory.
const MAX_TRANSFERS: u64 = 10_000_000;

/// How long a node may take to start committing.
const START_WITHIN: Duration = Duration::from_secs(60);
/// How long after the last offered transfer commits may still be seen.
const DRAIN: Duration = Duration::from_secs(10);
/// How often the watcher asks node 0 for its height.
const WATCH_EVERY: Duration = Duration::from_millis(5);
/// Most `BLOCK` requests the watcher sends in one write.
const WATCH_BATCH: u64 = 64;

/// Runs the benchmark (or each rate of a sweep) and prints its summary.
pub fn run(plan: &Plan) -> Result<()> {
    if plan.sweep.is_empty() {
        return run_one(plan).map(|_| ());
    }
    let mut points = Vec::new();
    for &rate in &plan.sweep {
        let one = Plan {
            rate,
            csv: None,
            sweep: Vec::new(),
            svg: None,
            keep: None,
            ..plan.clone()
        };
        let outcome = run_one(&one)?;
        points.push((rate, outcome));
    }
    println!("bench: sweep | offered tx/s | committed tx/s | p50 ms | p99 ms");
    for (rate, o) in &points {
        println!(
            "bench: sweep | {rate} | {:.0} | {:.0} | {:.0}",
            o.committed_per_s, o.p50, o.p99
        );
    }
    if let Some(path) = &plan.svg {
        let plotted: Vec<plot::Point> = points
            .iter()
            .map(|(_, o)| plot::Point {
                throughput: o.committed_per_s,
                p50: o.p50,
                p99: o.p99,
            })
            .collect();
        let title = format!(
            "almagill bench --sweep: {} validators, {} s per rate",
            plan.validators, plan.duration
        );
        std::fs::write(path, plot::latency_svg(&title, &plotted))
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("bench: plot in {}", path.display());
    }
    Ok(())
}

/// One run at `plan.rate`, on a fresh network or the one at `plan.endpoints`.
fn run_one(plan: &Plan) -> Result<Outcome> {
    if plan.rate == 0 || plan.duration == 0 || plan.accounts < 2 {
        bail!("--rate and --duration must be above zero, and --accounts at least 2");
    }
    let transfers = plan
        .rate
        .saturating_mul(plan.warmup.saturating_add(plan.duration));
    if transfers > MAX_TRANSFERS {
        bail!(
            "--rate x (--warmup + --duration) is {transfers} transfers; the bench pre-signs at \
             most {MAX_TRANSFERS}"
        );
    }
    if !plan.endpoints.is_empty() {
        let target = fund(plan)?;
        return measure(plan, &target, None);
    }
    if plan.kill_one && plan.validators < 4 {
        bail!("--kill-one needs at least 4 validators, so that the others keep a quorum");
    }
    let dir = match &plan.keep {
        Some(dir) if dir.exists() => bail!("--keep {} already exists", dir.display()),
        Some(dir) => dir.clone(),
        None => {
            let dir = std::env::temp_dir().join(format!("almagill-bench-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            dir
        }
    };
    let names: Vec<String> = (0..plan.accounts).map(|i| format!("bench{i}")).collect();
    stop_nodes_on_signal()?;
    super::testnet::run(plan.validators, &dir, plan.base_port, &names)?;
    let temp = plan.keep.is_none().then(|| dir.clone());
    let mut nodes = Nodes::start(&dir, plan.validators, temp)?;
    let result = local_target(&dir, &names, &nodes.admin)
        .and_then(|target| measure(plan, &target, Some(&mut nodes)));
    nodes.stop();
    match &plan.keep {
        Some(dir) => println!("bench: the network is kept in {}", dir.display()),
        None => {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    result
}

/// What the load goes to: admin endpoints (node 0's first), the chain, and the funded
/// accounts that send it.
struct Target {
    admin: Vec<SocketAddr>,
    chain_id: String,
    keys: Vec<Keypair>,
}

/// The network the bench wrote into `dir`, with the keys of its funded accounts `names`.
fn local_target(dir: &Path, names: &[String], admin: &[SocketAddr]) -> Result<Target> {
    let genesis = files::load_genesis(&dir.join("genesis.toml"))?;
    let keys = names
        .iter()
        .map(|n| files::load_key(&dir.join(format!("keys/{n}.key"))))
        .collect::<Result<_>>()?;
    Ok(Target {
        admin: admin.to_vec(),
        chain_id: genesis.chain_id,
        keys,
    })
}

/// How long the bench waits for its accounts' creation to commit on a running network.
const FUND_WITHIN_MS: u64 = 60_000;

/// Makes `plan.accounts` fresh accounts on the network at `plan.endpoints`, funded by the
/// account whose key is in `plan.key` with what their transfers need, and waits until the
/// last is committed.
fn fund(plan: &Plan) -> Result<Target> {
    let path = plan.key.as_ref().context("--endpoints needs --key")?;
    let funder = files::load_key(path)?;
    let mut admin = Admin::connect(plan.endpoints[0])
        .with_context(|| format!("cannot reach {}", plan.endpoints[0]))?;
    let status = admin.request("STATUS")?;
    let chain_id = status["chain_id"]
        .as_str()
        .context("STATUS gave no chain_id")?
        .to_string();
    let account = admin.request(&format!("BALANCE {}", funder.address()))?;
    let nonce = account["nonce"].as_u64().context("BALANCE gave no nonce")?;
    let balance: u128 = account["balance"]
        .as_str()
        .and_then(|b| b.parse().ok())
        .context("BALANCE gave no balance")?;
    let transfers = plan.rate * (plan.warmup + plan.duration);
    // Every transfer moves one base unit; twice each account's share leaves room.
    let each = u128::from(transfers / u64::from(plan.accounts) + 1) * 2;
    let needed = each * u128::from(plan.accounts);
    if balance < needed {
        bail!(
            "the funding account {} holds {balance} base units; the bench needs {needed}",
            funder.address()
        );
    }
    let keys: Vec<Keypair> = (0..plan.accounts)
        .map(|_| files::new_key())
        .collect::<Result<_>>()?;
    // In batches the mempool takes from one sender (nonces at most 64 ahead).
    for (batch, chunk) in keys.chunks(32).enumerate() {
        let mut last = None;
        for (i, key) in chunk.iter().enumerate() {
            let tx = TxBody {
                from: funder.address(),
                nonce: nonce + (batch * 32 + i) as u64,
                kind: TxKind::CreateAccount {
                    new_account: key.address(),
                    amount: each,
                },
            }
            .sign(&funder, &chain_id);
            admin.request(&format!("SUBMIT {}", hex::encode(encoding::encode(&tx))))?;
            last = Some(tx.hash());
        }
        if let Some(hash) = last {
            let status = admin.request(&format!("WAIT {hash} {FUND_WITHIN_MS}"))?;
            if status["status"] != "committed" {
                bail!("the bench's accounts were not created: {status}");
            }
        }
    }
    println!(
        "bench: created {} accounts on the network at {}, {each} base units each",
        keys.len(),
        plan.endpoints[0]
    );
    Ok(Target {
        admin: plan.endpoints.clone(),
        chain_id,
        keys,
    })
}

/// The nodes a bench has running and the temporary directory they run from: what stopping
/// the bench by a signal must not leave behind.
struct Running {
    pids: Vec<u32>,
    temp: Option<PathBuf>,
}

static RUNNING: Mutex<Running> = Mutex::new(Running {
    pids: Vec::new(),
    temp: None,
});

/// On SIGTERM or SIGINT, stops the running nodes, removes their temporary directory and
/// exits: the nodes are processes of their own, and would otherwise keep running (holding
/// the ports of the next run). The handlers are in place when this returns.
fn stop_nodes_on_signal() -> Result<()> {
    static WATCHING: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if WATCHING.get().is_some() {
        return Ok(());
    }
    let mut signals = StopSignals::install()?;
    let _ = WATCHING.set(());
    thread::spawn(move || {
        let Err(code) = signals.run_until(std::future::pending::<std::convert::Infallible>());
        let running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        let pids: Vec<_> = running
            .pids
            .iter()
            .filter_map(|&p| rustix::process::Pid::from_raw(p as i32))
            .collect();
        for &pid in &pids {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        for &pid in &pids {
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        }
        if let Some(dir) = &running.temp {
            let _ = std::fs::remove_dir_all(dir);
        }
        eprintln!("bench: stopped by a signal; its nodes are stopped too");
        std::process::exit(code);
    });
    Ok(())
}

/// The network's node processes.
struct Nodes {
    children: Vec<Child>,
    admin: Vec<SocketAddr>,
}

impl Nodes {
    /// Starts the nodes of the network in `dir`; `temp`, if the directory goes with them.
    fn start(dir: &Path, validators: u16, temp: Option<PathBuf>) -> Result<Nodes> {
        RUNNING.lock().unwrap_or_else(PoisonError::into_inner).temp = temp;
        let exe = std::env::current_exe().context("cannot find the almagill binary")?;
        let mut nodes = Nodes {
            children: Vec::new(),
            admin: Vec::new(),
        };
        for i in 0..validators {
            let config = dir.join(format!("node{i}.toml"));
            let loaded = crate::node::load(&config)?;
            nodes.admin.push(loaded.config.admin);
            let log = std::fs::File::create(dir.join(format!("node{i}.log")))?;
            let child = Command::new(&exe)
                .arg("run")
                .arg("--config")
                .arg(&config)
                // Warnings only, so logging costs nothing measurable; ALMAGILL_BENCH_LOG
                // sets the nodes' filter instead (to see rounds with `--keep`).
                .env(
                    "RUST_LOG",
                    std::env::var("ALMAGILL_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start node{i}"))?;
            RUNNING
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pids
                .push(child.id());
            nodes.children.push(child);
        }
        Ok(nodes)
    }

    fn stop(&mut self) {
        for child in &mut self.children {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(child),
                rustix::process::Signal::TERM,
            );
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        running.pids.clear();
        running.temp = None;
    }

    /// SIGKILLs the last node.
    fn kill_last(&mut self) {
        if let Some(child) = self.children.last_mut() {
            let _ = child.kill();
            let _ = child.wait();
            // Reaped: its pid may be another process's from now on.
            let pid = child.id();
            RUNNING
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pids
                .retain(|&p| p != pid);
        }
    }

    /// CPU seconds each node has used so far.
    fn cpu_seconds(&self) -> Vec<f64> {
        self.children
            .iter()
            .map(|c| process_cpu_seconds(&format!("/proc/{}/stat", c.id())))
            .collect()
    }

    /// The nodes' process ids.
    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }
}

/// Resident memory of each process, in MB (0 for one that is gone).
fn rss_mb(pids: &[u32]) -> Vec<f64> {
    pids.iter()
        .map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.split_whitespace().next())
                        .and_then(|v| v.parse::<f64>().ok())
                })
                .map_or(0.0, |kib| kib / 1024.0)
        })
        .collect()
}

/// Samples the nodes' RSS once a second until `stop`: (seconds since `from`, MB per node).
fn sample_rss(pids: &[u32], from: Instant, stop: &AtomicBool) -> Vec<(f64, Vec<f64>)> {
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let at = Instant::now();
        if at >= from {
            samples.push(((at - from).as_secs_f64(), rss_mb(pids)));
        }
        thread::sleep(Duration::from_secs(1));
    }
    samples
}

/// Shows the load's progress on the terminal until `stop`: seconds since `t0` out of
/// `seconds` (the first `warmup` of them warming up) and transfers committed so far. The
/// bar hides itself when stderr is not a terminal (CI, tests, a redirect).
fn show_progress(
    t0: Instant,
    warmup: u64,
    seconds: u64,
    stop: &AtomicBool,
    committed: &Mutex<HashMap<Hash, Instant>>,
) {
    let bar = ProgressBar::new(seconds);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    while !stop.load(Ordering::Relaxed) {
        let elapsed = Instant::now().saturating_duration_since(t0).as_secs();
        bar.set_position(elapsed.min(seconds));
        bar.set_prefix(if elapsed < warmup {
            "warm-up"
        } else {
            "measure"
        });
        let done = committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        bar.set_message(format!("{done} committed"));
        thread::sleep(Duration::from_millis(200));
    }
    bar.finish_and_clear();
}

/// Per node: RSS at the window's middle, at its end, the most seen, and the growth over
/// the second half in percent — what a soak run is judged by.
fn rss_summary(samples: &[(f64, Vec<f64>)], window: f64) -> String {
    let in_window: Vec<&(f64, Vec<f64>)> = samples.iter().filter(|(t, _)| *t <= window).collect();
    let (Some(middle), Some(end)) = (
        in_window.iter().find(|(t, _)| *t >= window / 2.0),
        in_window.last(),
    ) else {
        return "no samples".to_string();
    };
    let most = |node: usize| in_window.iter().map(|(_, mb)| mb[node]).fold(0.0, f64::max);
    let nodes = middle.1.len();
    let list = |f: &dyn Fn(usize) -> String| (0..nodes).map(f).collect::<Vec<_>>().join(" ");
    format!(
        "at {:.0} s: {}; at {:.0} s: {}; most: {}; second-half growth %: {}",
        middle.0,
        list(&|i| format!("{:.0}", middle.1[i])),
        end.0,
        list(&|i| format!("{:.0}", end.1[i])),
        list(&|i| format!("{:.0}", most(i))),
        list(&|i| format!("{:+.1}", (end.1[i] / middle.1[i].max(1e-9) - 1.0) * 100.0)),
    )
}

/// User plus system CPU seconds of a process, from its `/proc/<pid>/stat`.
fn process_cpu_seconds(stat_path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(stat_path) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; here 11 and 12 (0-based, after ')').
    (ticks(11) + ticks(12)) / 100.0
}

/// One line-based admin connection.
struct Admin {
    reader: BufReader<TcpStream>,
}

impl Admin {
    fn connect(address: SocketAddr) -> Result<Admin> {
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Admin {
            reader: BufReader::new(stream),
        })
    }

    fn request(&mut self, line: &str) -> Result<Value> {
        self.reader
            .get_mut()
            .write_all(format!("{line}\n").as_bytes())?;
        self.answer(line)?
    }

    /// Sends `lines` in one write, then reads their answers in order, calling `each` with
    /// each `OK` answer as it arrives (an `ERR` is skipped): one round trip for all of them,
    /// not one each. A failed read or write ends it with an error; the connection is then
    /// out of step and must be replaced.
    fn pipeline(&mut self, lines: &[String], mut each: impl FnMut(Value)) -> Result<()> {
        let mut out = String::new();
        for line in lines {
            out.push_str(line);
            out.push('\n');
        }
        self.reader.get_mut().write_all(out.as_bytes())?;
        for line in lines {
            if let Ok(value) = self.answer(line)? {
                each(value);
            }
        }
        Ok(())
    }

    /// Reads the answer to `line`: its JSON if `OK`, the error if `ERR`; reading failing or
    /// the connection closing is the outer error.
    fn answer(&mut self, line: &str) -> Result<Result<Value>> {
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            bail!("`{line}`: the connection closed");
        }
        Ok(match answer.strip_prefix("OK ") {
            Some(json) => serde_json::from_str(json).map_err(Into::into),
            None => Err(anyhow!("`{line}`: {}", answer.trim_end())),
        })
    }
}

/// The hashes of the transfers, in sending order, with when each was sent.
type Sent = Arc<Mutex<Vec<(Hash, Option<Instant>)>>>;

/// Drives `target` at `plan.rate` and prints what committed; `nodes`, when the bench
/// started them, are measured too (CPU, memory) and may be killed (`--kill-one`).
fn measure(plan: &Plan, target: &Target, mut nodes: Option<&mut Nodes>) -> Result<Outcome> {
    let keys = &target.keys;
    let to = keys[0].address();
    let started = Instant::now();
    let height = || -> Option<u64> {
        Admin::connect(target.admin[0])
            .ok()?
            .request("STATUS")
            .ok()?["height"]
            .as_u64()
    };
    while height().unwrap_or(0) < 2 {
        if started.elapsed() > START_WITHIN {
            bail!("the network did not start committing within {START_WITHIN:?}; see its logs");
        }
        thread::sleep(Duration::from_millis(100));
    }

    // Pre-sign everything: account i's nonces go to node i mod n, in order.
    let total = plan.rate * (plan.warmup + plan.duration);
    // With --kill-one the last node gets no load: it dies as the warm-up starts.
    let n = target.admin.len() - usize::from(plan.kill_one);
    let mut per_node: Vec<Vec<(Hash, String)>> = vec![Vec::new(); n];
    let mut nonces = vec![0u64; keys.len()];
    for k in 0..total as usize {
        let i = k % keys.len();
        let key = &keys[i];
        let tx = TxBody {
            from: key.address(),
            nonce: nonces[i],
            kind: TxKind::Transfer {
                to: if i == 0 { keys[1].address() } else { to },
                amount: 1,
            },
        }
        .sign(key, &target.chain_id);
        nonces[i] += 1;
        per_node[i % n].push((
            tx.hash(),
            format!("SUBMIT {}\n", hex::encode(encoding::encode(&tx))),
        ));
    }
    println!(
        "bench: {} nodes, {total} transfers pre-signed from {} accounts; offering {} tx/s \
         for {} s after {} s of warm-up",
        target.admin.len(),
        keys.len(),
        plan.rate,
        plan.duration,
        plan.warmup
    );

    let stop = Arc::new(AtomicBool::new(false));
    let committed: Arc<Mutex<HashMap<Hash, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let watcher = {
        let (stop, committed, address) = (stop.clone(), committed.clone(), target.admin[0]);
        thread::spawn(move || watch(address, &stop, &committed))
    };
    let t0 = Instant::now() + Duration::from_millis(100);
    let window_start = t0 + Duration::from_secs(plan.warmup);
    let window_end = window_start + Duration::from_secs(plan.duration);
    let sampler = {
        let (stop, pids) = (
            stop.clone(),
            nodes.as_ref().map(|n| n.pids()).unwrap_or_default(),
        );
        thread::spawn(move || sample_rss(&pids, window_start, &stop))
    };
    let progress = {
        let (stop, committed) = (stop.clone(), committed.clone());
        let (warmup, seconds) = (plan.warmup, plan.warmup + plan.duration);
        thread::spawn(move || show_progress(t0, warmup, seconds, &stop, &committed))
    };
    let mut senders = Vec::new();
    let mut sent_lists = Vec::new();
    for (node, lines) in per_node.into_iter().enumerate() {
        let sent: Sent = Arc::new(Mutex::new(lines.iter().map(|(h, _)| (*h, None)).collect()));
        sent_lists.push(sent.clone());
        let address = target.admin[node];
        // Each node's share of the rate is its share of the transfers, so all end together.
        let rate = plan.rate as f64 * lines.len() as f64 / total as f64;
        let committed = committed.clone();
        senders.push(thread::spawn(move || {
            let plan = Drive {
                address,
                lines,
                rate,
                t0,
                until: window_end,
            };
            drive(plan, &sent, &committed)
        }));
    }
    if let Some(nodes) = nodes.as_mut().filter(|_| plan.kill_one) {
        nodes.kill_last();
        println!(
            "bench: killed node{} as the warm-up began",
            nodes.admin.len() - 1
        );
    }
    // CPU is counted over the measured window, as the transfers it is divided by are.
    thread::sleep(window_start.saturating_duration_since(Instant::now()));
    let client_cpu = process_cpu_seconds("/proc/self/stat");
    let cpu_before = nodes.as_ref().map(|n| n.cpu_seconds());
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    let (mut retried, mut rebroadcast) = (0, 0);
    for sender in senders {
        let driven = sender
            .join()
            .map_err(|_| anyhow!("a client thread failed"))??;
        for (code, count) in driven.refused {
            *refusals.entry(code).or_default() += count;
        }
        retried += driven.retried;
        rebroadcast += driven.rebroadcast;
    }
    let refused: usize = refusals.values().sum();
    let load_end = Instant::now();
    let cpu_after = nodes.as_ref().map(|n| n.cpu_seconds());
    let client_cpu = process_cpu_seconds("/proc/self/stat") - client_cpu;
    // Let what was sent commit.
    let all: Vec<(Hash, Option<Instant>)> = sent_lists
        .iter()
        .flat_map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).clone())
        .collect();
    let drain_until = Instant::now() + DRAIN;
    while Instant::now() < drain_until {
        let seen = committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        if seen + refused >= all.len() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let _ = progress.join();
    let rss_samples = sampler.join().unwrap_or_default();
    let committed = committed
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();

    let mut latencies = latency_histogram();
    let mut per_second: Vec<(u64, u64, Histogram<u64>)> = Vec::new();
    for (hash, sent_at) in &all {
        let Some(sent_at) = sent_at else { continue };
        if *sent_at < window_start {
            continue;
        }
        let second = (*sent_at - window_start).as_secs();
        let slot = second as usize;
        if per_second.len() <= slot {
            per_second.resize_with(slot + 1, || (0, 0, latency_histogram()));
        }
        per_second[slot].0 = second;
        per_second[slot].1 += 1;
        if let Some(at) = committed.get(hash) {
            let us = u64::try_from((*at - *sent_at).as_micros()).unwrap_or(u64::MAX);
            latencies.saturating_record(us);
            per_second[slot].2.saturating_record(us);
        }
    }
    let window = (load_end - window_start).as_secs_f64().max(1e-3);
    let done = latencies.len() as usize;
    // A quantile of a histogram in milliseconds (not a number when it is empty).
    let pct = |q: f64, h: &Histogram<u64>| -> f64 {
        if h.is_empty() {
            return f64::NAN;
        }
        h.value_at_quantile(q) as f64 / 1000.0
    };
    let cpu: Vec<String> = cpu_before
        .iter()
        .flatten()
        .zip(cpu_after.iter().flatten())
        .map(|(b, a)| {
            // A killed node's CPU can no longer be read (both read as nothing).
            if a <= b {
                "killed".to_string()
            } else {
                format!("{:.3}", (a - b) / (done.max(1) as f64 / 1000.0))
            }
        })
        .collect();
    let rss: Vec<String> = rss_mb(&nodes.as_ref().map(|n| n.pids()).unwrap_or_default())
        .iter()
        .map(|m| format!("{m:.0}"))
        .collect();
    println!(
        "bench: committed {:.0} tx/s ({done} of those offered in the {window:.1} s window; {refused} refused{})",
        done as f64 / window,
        if refusals.is_empty() {
            String::new()
        } else {
            let codes: Vec<String> = refusals.iter().map(|(c, n)| format!("{c} {n}")).collect();
            format!(": {}", codes.join(", "))
        }
    );
    println!(
        "bench: the client sent {retried} refused transfers again and rebroadcast {rebroadcast} \
         not committed 3 s after they were sent"
    );
    println!(
        "bench: latency p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        pct(0.5, &latencies),
        pct(0.9, &latencies),
        pct(0.99, &latencies),
        pct(1.0, &latencies)
    );
    if nodes.is_some() {
        println!(
            "bench: CPU seconds per 1,000 committed transfers, per node: {}; RSS MB per node: \
             {}; the bench client used {client_cpu:.1} CPU s",
            cpu.join(" "),
            rss.join(" ")
        );
        println!(
            "bench: RSS MB per node over the window, {}",
            rss_summary(&rss_samples, window)
        );
    } else {
        println!("bench: the bench client used {client_cpu:.1} CPU s (the nodes are not measured)");
    }
    if let Some(path) = &plan.csv {
        let mut csv = String::from("second,offered,committed,p50_ms,p99_ms\n");
        for (second, offered, lat) in per_second {
            csv.push_str(&format!(
                "{second},{offered},{},{:.1},{:.1}\n",
                lat.len(),
                pct(0.5, &lat),
                pct(0.99, &lat)
            ));
        }
        std::fs::write(path, csv).with_context(|| format!("cannot write {}", path.display()))?;
        println!("bench: per-second figures in {}", path.display());
    }
    Ok(Outcome {
        committed_per_s: done as f64 / window,
        p50: pct(0.5, &latencies),
        p99: pct(0.99, &latencies),
    })
}

/// How long the client waits before sending again a transfer refused for a full mempool
/// (`mempool_full` asks to retry after the next block) or for a nonce too far ahead (one
/// before it was refused), as a real client would.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// How long after it was last sent an admitted transfer that has not committed is sent
/// again, as wallets rebroadcast: a full mempool may have pushed it out to give another
/// sender its share (the node answers `duplicate` if it still holds it).
const REBROADCAST_AFTER: Duration = Duration::from_secs(3);

/// One client connection's load: its transfers, in nonce order per account, and when to
/// send them.
struct Drive {
    address: SocketAddr,
    lines: Vec<(Hash, String)>,
    /// Transfers a second.
    rate: f64,
    /// When the first is due.
    t0: Instant,
    /// When the load ends: nothing is sent again after it.
    until: Instant,
}

/// Sends `plan.lines` to one node open-loop at `plan.rate` a second from `plan.t0`,
/// recording in `sent` when each first went out; a reader takes the answers. A transfer
/// refused for a full mempool or a nonce too far ahead is sent again after
/// [`RETRY_AFTER`], and one admitted but not in `committed` after [`REBROADCAST_AFTER`],
/// until `plan.until`. Returns how many transfers were refused for good (refused and not
/// sent again, or still waiting to be sent again when the load ended), by the error code of
/// their last answer, and how many lines went out again.
fn drive(plan: Drive, sent: &Sent, committed: &Mutex<HashMap<Hash, Instant>>) -> Result<Driven> {
    let Drive {
        address,
        lines,
        rate,
        t0,
        until,
    } = plan;
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    // Each transfer leaves when it is due, not when the last one is acknowledged.
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    // Which line each answer is for, in the order they went out; refused ones, with when
    // to send them again.
    let order: Arc<Mutex<VecDeque<usize>>> = Arc::default();
    let retry: Arc<Mutex<VecDeque<(Instant, usize, String)>>> = Arc::default();
    let reader = {
        let (order, retry) = (order.clone(), retry.clone());
        thread::spawn(move || {
            let mut refused: BTreeMap<String, usize> = BTreeMap::new();
            let mut reader = BufReader::new(stream);
            let mut answer = String::new();
            loop {
                answer.clear();
                if reader.read_line(&mut answer).unwrap_or(0) == 0 {
                    break;
                }
                let i = order
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop_front();
                if let Some(error) = answer.strip_prefix("ERR ") {
                    let code = error.split_whitespace().next().unwrap_or("").to_string();
                    let retry_later = code == "mempool_full" || code == "bad_nonce";
                    match (retry_later, i) {
                        (true, Some(i)) => {
                            let again = Instant::now() + RETRY_AFTER;
                            retry
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push_back((again, i, code));
                        }
                        // A rebroadcast transfer the node still holds.
                        _ if code == "duplicate" => {}
                        _ => *refused.entry(code).or_default() += 1,
                    }
                }
            }
            refused
        })
    };
    let is_committed = |i: usize| {
        committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&lines[i].0)
    };
    // When each line was last sent (for the rebroadcast), and the first line that may
    // still need it: everything before it has committed.
    let mut last_sent: Vec<Option<Instant>> = vec![None; lines.len()];
    let mut oldest = 0;
    let mut next_rebroadcast = t0 + REBROADCAST_AFTER;
    let (mut retried, mut rebroadcast) = (0, 0);
    let mut batch = String::new();
    let mut k = 0;
    loop {
        let now = Instant::now();
        // Everything due by now goes out in one write: refused ones due again, transfers
        // to rebroadcast, then new ones.
        let due = ((now.saturating_duration_since(t0)).as_secs_f64() * rate) as usize;
        let upto = due.min(lines.len());
        let mut again = Vec::new();
        {
            let mut retry = retry.lock().unwrap_or_else(PoisonError::into_inner);
            while retry
                .front()
                .is_some_and(|(at, _, _)| *at <= now && now < until)
            {
                again.extend(retry.pop_front().map(|(_, i, _)| i));
            }
        }
        again.retain(|i| !is_committed(*i));
        retried += again.len();
        if now >= next_rebroadcast && now < until {
            next_rebroadcast = now + Duration::from_secs(1);
            let map = committed.lock().unwrap_or_else(PoisonError::into_inner);
            while oldest < k && map.contains_key(&lines[oldest].0) {
                oldest += 1;
            }
            for i in oldest..k {
                let stale = last_sent[i].is_some_and(|at| at + REBROADCAST_AFTER <= now);
                if stale && !map.contains_key(&lines[i].0) {
                    again.push(i);
                    rebroadcast += 1;
                }
            }
        }
        if upto <= k && again.is_empty() {
            if k >= lines.len() && now >= until {
                break;
            }
            thread::sleep(Duration::from_micros(500));
            continue;
        }
        batch.clear();
        let fresh = k..upto.max(k);
        {
            let mut order = order.lock().unwrap_or_else(PoisonError::into_inner);
            for i in again.iter().copied().chain(fresh.clone()) {
                batch.push_str(&lines[i].1);
                order.push_back(i);
            }
        }
        // Stamped before the write: when the node reads slower than the client offers, the
        // write blocks, and that wait is part of the transfers' latency (stamped after it,
        // a transfer could show as committed before it was sent).
        let at = Instant::now();
        writer.write_all(batch.as_bytes())?;
        for i in again.iter().copied().chain(fresh.clone()) {
            last_sent[i] = Some(at);
        }
        let mut sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
        for entry in &mut sent[fresh] {
            entry.1 = Some(at);
        }
        k = upto.max(k);
    }
    // No more lines: the node answers what it has and closes, which ends the reader.
    writer.shutdown(std::net::Shutdown::Write)?;
    let mut refused = reader
        .join()
        .map_err(|_| anyhow!("a reader thread failed"))?;
    for (_, i, code) in retry
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
    {
        if !is_committed(i) {
            *refused.entry(code).or_default() += 1;
        }
    }
    Ok(Driven {
        refused,
        retried,
        rebroadcast,
    })
}

/// What one client connection's load came to.
struct Driven {
    /// Transfers refused for good, by the error code of their last answer.
    refused: BTreeMap<String, usize>,
    /// Lines sent again after a refusal asking to retry (`mempool_full`, `bad_nonce`).
    retried: usize,
    /// Lines sent again because they had not committed [`REBROADCAST_AFTER`] after the last
    /// send.
    rebroadcast: usize,
}

/// A histogram of latencies in microseconds, from 1 µs to an hour, to three significant
/// digits: percentiles from it are exact to 0.1 %, in bounded memory however long the run.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("the bounds are valid")
}

/// Follows node 0's height and records when each transaction first appears in a block.
fn watch(address: SocketAddr, stop: &AtomicBool, committed: &Mutex<HashMap<Hash, Instant>>) {
    let Ok(mut admin) = Admin::connect(address) else {
        return;
    };
    let mut seen = admin
        .request("STATUS")
        .ok()
        .and_then(|s| s["height"].as_u64())
        .unwrap_or(0);
    while !stop.load(Ordering::Relaxed) {
        let height = admin
            .request("STATUS")
            .ok()
            .and_then(|s| s["height"].as_u64())
            .unwrap_or(seen);
        // Pipelined: one request at a time fell behind when blocks came every 15 ms, and
        // stayed behind, adding its lag to every latency.
        let lines: Vec<String> = (seen + 1..=height.min(seen + WATCH_BATCH))
            .map(|h| format!("BLOCK {h}"))
            .collect();
        let read = admin.pipeline(&lines, |block| {
            let at = Instant::now();
            let mut map = committed.lock().unwrap_or_else(PoisonError::into_inner);
            for tx in block["txs"].as_array().into_iter().flatten() {
                if let Some(hash) = tx.as_str().and_then(|t| Hash::from_hex(t).ok()) {
                    map.entry(hash).or_insert(at);
                }
            }
        });
        if read.is_err() {
            // Out of step: a new connection asks again from the first height not read.
            match Admin::connect(address) {
                Ok(fresh) => admin = fresh,
                Err(_) => return,
            }
            continue;
        }
        seen += lines.len() as u64;
        if seen >= height {
            thread::sleep(WATCH_EVERY);
        }
    }
}
