//! `almagill bench` end to end: a short run on ports the test reserves reports committed
//! transfers and their latency.

use crate::harness::{almagill, Ports};

#[test]
fn a_short_bench_reports_committed_transfers_and_latency() {
    let ports = Ports::reserve(4);
    let base = ports.base.to_string();
    let out = almagill(&[
        "bench",
        "--base-port",
        &base,
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
    let committed: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("bench: committed "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no committed figure in:\n{out}"));
    assert!(committed > 0.0, "nothing committed:\n{out}");
    assert!(out.contains("bench: latency p50 "), "{out}");
    drop(ports);
}
