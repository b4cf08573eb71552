//! The metrics address end to end: a real HTTP scrape answers the exposition text, and the
//! height and committed-transaction counters move as blocks commit.

use crate::harness::{str_field, Net, DEADLINE};

const ALL: [usize; 4] = [0, 1, 2, 3];

/// The value of the sample `name` (no labels) in exposition text.
fn sample(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in:\n{body}"))
}

#[test]
fn metrics_are_scraped_over_http_and_move() {
    let net = Net::launch(4);
    net.wait_height(&ALL, 2);
    let (head, body) = net.metrics_get(0, "/metrics", true);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: application/openmetrics-text"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    // Without asking: the classic text format, whose counters' HELP names the samples.
    let (head, classic) = net.metrics_get(0, "/metrics", false);
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(classic.contains("# TYPE consensus_committed_blocks_total counter\n"));
    assert!(!classic.contains("# EOF"));
    for name in [
        "consensus_height",
        "consensus_round",
        "consensus_view_changes_total",
        "consensus_committed_blocks_total",
        "consensus_committed_transactions_total",
        "consensus_block_interval_seconds_count",
        "consensus_block_size_transactions_count",
        "mempool_commit_latency_seconds_count",
        "mempool_size",
        "mempool_waiting",
        "mempool_bytes",
        "p2p_peers",
        "sync_fetched_blocks_total",
        "sync_target_height",
    ] {
        sample(&body, name);
    }
    assert_eq!(sample(&body, "p2p_peers"), 3.0);
    let height = sample(&body, "consensus_height");
    let txs = sample(&body, "consensus_committed_transactions_total");

    let sent = net.ok(0, "SEND alice bob 1");
    let hash = str_field(&sent, "tx").to_string();
    let done = net.ok(0, &format!("WAIT {hash} {}", DEADLINE.as_millis()));
    assert_eq!(str_field(&done, "status"), "committed");
    let h = net.height(0);
    net.wait_height(&[0], h + 1);
    let (_, after) = net.metrics_get(0, "/metrics", false);
    let (height2, txs2) = (
        sample(&after, "consensus_height"),
        sample(&after, "consensus_committed_transactions_total"),
    );
    eprintln!(
        "metrics: consensus_height {height} -> {height2}, committed transactions {txs} -> {txs2}"
    );
    assert!(height2 > height, "the height rose");
    assert!(txs2 > txs, "the committed-transaction counter rose");
    assert!(sample(&after, "mempool_commit_latency_seconds_count") >= 1.0);
    assert!(after.contains("p2p_bytes_total{direction=\"out\",traffic=\"consensus\"}"));
    assert!(after.contains("storage_fsync_seconds_count{log=\"votes\"}"));

    let (head, _) = net.metrics_get(0, "/other", false);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}
