//! `almagill localnet` runs the repo's shipped `config/` network as one command.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::harness::{str_field, tail, wait_for, Admin, Ports, BIN, DEADLINE};

/// Rewrites the shipped ports in a node file: `127.0.0.1:70xx` (peers) to `base + xx` and
/// `127.0.0.1:71xx` (admin) to `base + 100 + xx`.
fn rewrite_ports(text: &str, base: u16) -> String {
    const HOST: &str = "127.0.0.1:";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(HOST) {
        let (before, after) = rest.split_at(at + HOST.len());
        out.push_str(before);
        let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
        let port: u16 = digits.parse().expect("a port after 127.0.0.1:");
        let new = match port {
            7000..=7099 => base + (port - 7000),
            7100..=7199 => base + 100 + (port - 7100),
            7200..=7299 => base + 200 + (port - 7200),
            _ => panic!("unexpected port {port} in the shipped config"),
        };
        out.push_str(&new.to_string());
        rest = &after[digits.len()..];
    }
    out.push_str(rest);
    out
}

/// Copies the shipped network (genesis, node files, keys; not any `data/`) into `to`, with
/// its ports moved to `base`.
fn copy_config(from: &Path, to: &Path, base: u16) {
    fs::create_dir_all(to.join("keys")).expect("the copy's directories");
    fs::copy(from.join("genesis.toml"), to.join("genesis.toml")).expect("genesis copied");
    let mut nodes = 0;
    for entry in fs::read_dir(from).expect("config/ is readable") {
        let path = entry.expect("an entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("node") && name.ends_with(".toml") {
            let text = fs::read_to_string(&path).expect("a node file");
            let moved = rewrite_ports(&text, base);
            assert!(
                !moved.contains("127.0.0.1:70") && !moved.contains("127.0.0.1:71"),
                "{name}: every shipped port is rewritten"
            );
            fs::write(to.join(name), moved).expect("a node file written");
            nodes += 1;
        }
    }
    assert_eq!(nodes, 4, "the shipped config has four nodes");
    for entry in fs::read_dir(from.join("keys")).expect("config/keys is readable") {
        let path = entry.expect("an entry").path();
        fs::copy(
            &path,
            to.join("keys").join(path.file_name().expect("a name")),
        )
        .expect("a key copied");
    }
}

/// The pids of `parent`'s children (from `/proc`).
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // `pid (comm) state ppid ...`: comm may hold spaces, so split after `)`.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

/// Whether `pid` is a live `almagill run` of the network in `dir` (a reaped pid, a zombie
/// or a reused pid is not).
pub fn node_alive(pid: u32, dir: &Path) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let cmdline = String::from_utf8_lossy(&cmdline);
    cmdline.contains("run") && cmdline.contains(dir.to_str().expect("a UTF-8 path"))
}

/// A command that starts node processes (`localnet`, `bench`) and the nodes it started:
/// whatever is left is SIGKILLed on drop.
pub struct Launcher {
    pub child: Child,
    pub nodes: Vec<u32>,
    pub dir: PathBuf,
}

impl Drop for Launcher {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for &pid in &self.nodes {
            if node_alive(pid, &self.dir) {
                if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }
}

/// The shipped `config/` (copied to a temporary directory with its ports moved to free
/// ones) runs under `almagill localnet`: every node's log lines come out prefixed with its
/// name and show blocks committed; a transfer through node 0's admin port commits; SIGTERM
/// stops the whole thing with exit 0 and no node left running.
#[test]
fn localnet_runs_the_shipped_config() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let tmp = tempfile::Builder::new()
        .prefix("almagill-e2e-localnet-")
        .tempdir()
        .expect("a temporary directory");
    let ports = Ports::reserve(4);
    let dir = tmp.path().join("config");
    copy_config(&shipped, &dir, ports.base);

    let stderr_path = tmp.path().join("localnet.stderr");
    let stderr = fs::File::create(&stderr_path).expect("a stderr file");
    let child = Command::new(BIN)
        .arg("localnet")
        .arg("--dir")
        .arg(&dir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("almagill localnet starts");
    let mut localnet = Launcher {
        child,
        nodes: Vec::new(),
        dir: dir.clone(),
    };
    let stdout = localnet.child.stdout.take().expect("piped stdout");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        })
    };
    let context = |lines: &Arc<Mutex<Vec<String>>>| {
        let lines = lines.lock().unwrap_or_else(PoisonError::into_inner);
        format!(
            "---- localnet stdout (last lines) ----\n{}\n---- localnet stderr ----\n{}",
            lines[lines.len().saturating_sub(40)..].join("\n"),
            tail(&stderr_path, 20)
        )
    };

    let pid = localnet.child.id();
    wait_for(
        DEADLINE,
        "lines `[node0]`..`[node3]` with `block committed` on localnet's stdout",
        || {
            let found = children_of(pid);
            for p in found {
                if !localnet.nodes.contains(&p) {
                    localnet.nodes.push(p);
                }
            }
            let lines = lines.lock().unwrap_or_else(PoisonError::into_inner);
            (0..4).all(|k| {
                let prefix = format!("[node{k}] ");
                lines
                    .iter()
                    .any(|l| l.starts_with(&prefix) && l.contains("block committed"))
            })
        },
        || context(&lines),
    );
    let nodes: Vec<u32> = localnet
        .nodes
        .iter()
        .copied()
        .filter(|&p| node_alive(p, &dir))
        .collect();
    assert_eq!(
        nodes.len(),
        4,
        "localnet runs four nodes: {nodes:?}\n{}",
        context(&lines)
    );

    // A transfer through node 0's admin port.
    let mut admin = Admin::connect(ports.admin(0))
        .unwrap_or_else(|e| panic!("node0's admin port: {e}\n{}", context(&lines)));
    let sent = admin.ok("SEND alice bob 1");
    let hash = str_field(&sent, "tx");
    let done = admin.ok(&format!("WAIT {hash} 60000"));
    assert_eq!(done["status"], "committed", "{done}\n{}", context(&lines));
    drop(admin);

    // SIGTERM stops everything, with exit 0.
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&localnet.child),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM sent");
    let mut status = None;
    wait_for(
        DEADLINE,
        "localnet to exit after SIGTERM",
        || {
            status = localnet.child.try_wait().expect("waitable");
            status.is_some()
        },
        || context(&lines),
    );
    let status = status.expect("exited");
    assert!(
        status.success(),
        "localnet exited with {status} after SIGTERM\n{}",
        context(&lines)
    );
    wait_for(
        Duration::from_secs(10),
        "localnet's nodes to be gone",
        || nodes.iter().all(|&p| !node_alive(p, &dir)),
        || format!("still running: {nodes:?}\n{}", context(&lines)),
    );
    for i in 0..4 {
        let address = SocketAddr::from(([127, 0, 0, 1], ports.admin(i)));
        assert!(
            TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_err(),
            "node{i}'s admin port still accepts connections"
        );
    }
    reader.join().expect("the stdout reader");
    let lines = lines.lock().unwrap_or_else(PoisonError::into_inner);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("localnet: 4 nodes running")),
        "localnet announces its nodes"
    );
}
