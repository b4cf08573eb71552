//! `almagill localnet`: every node of a network directory as a child process, its log lines
//! prefixed with its name, all stopped together.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::signals::StopSignals;

/// How long children get to stop cleanly before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The node configs of a network directory: `node*.toml`, in name order.
fn node_configs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read network directory {}", dir.display()))?;
    let mut configs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("node") && name.ends_with(".toml")
        })
        .collect();
    configs.sort();
    if configs.is_empty() {
        bail!(
            "{} holds no node*.toml; make one with `almagill testnet`",
            dir.display()
        );
    }
    Ok(configs)
}

/// Copies a child's output to ours, each line prefixed with the node's name.
fn relay(name: String, output: impl Read + Send + 'static) {
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(|l| l.ok()) {
            println!("[{name}] {line}");
        }
    });
}

/// Runs every node in `dir` until Ctrl-C (or SIGTERM), or until one of them exits.
pub fn run(dir: &Path) -> Result<()> {
    let configs = node_configs(dir)?;
    for config in &configs {
        crate::node::load(config)?;
    }
    // Before any node starts, so that a signal during start-up stops those started.
    let mut signals = StopSignals::install()?;
    let exe = std::env::current_exe().context("cannot find the almagill binary")?;
    let mut children: Vec<(String, Child)> = Vec::new();
    for config in &configs {
        let name = config
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("node")
            .to_string();
        let child = Command::new(&exe)
            .arg("run")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {name}"));
        let mut child = match child {
            Ok(child) => child,
            Err(e) => {
                stop(&mut children);
                return Err(e);
            }
        };
        if let Some(out) = child.stdout.take() {
            relay(name.clone(), out);
        }
        if let Some(err) = child.stderr.take() {
            relay(name.clone(), err);
        }
        children.push((name, child));
    }
    println!(
        "localnet: {} nodes running from {}; Ctrl-C stops them all",
        children.len(),
        dir.display()
    );
    let exited = signals
        .run_until(async {
            let mut poll = tokio::time::interval(Duration::from_millis(200));
            loop {
                poll.tick().await;
                for (name, child) in children.iter_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        return format!("{name} exited ({status})");
                    }
                }
            }
        })
        .ok();
    stop(&mut children);
    match exited {
        Some(reason) => bail!("{reason}; stopped the others"),
        None => Ok(()),
    }
}

/// Asks every child to stop (SIGTERM), waits, then kills any that remain.
fn stop(children: &mut [(String, Child)]) {
    for (_, child) in children.iter() {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(child),
            rustix::process::Signal::TERM,
        );
    }
    let deadline = Instant::now() + STOP_GRACE;
    for (name, child) in children.iter_mut() {
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Ok(None) = child.try_wait() {
            eprintln!("localnet: {name} did not stop in time; killing it");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
