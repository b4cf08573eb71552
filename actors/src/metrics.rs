//! Prometheus metrics: what operators of CometBFT or Ethereum nodes scrape, served as text
//! on the node config's optional `metrics` address: OpenMetrics to a scraper that asks for
//! it (Prometheus does), the classic Prometheus text format (0.0.4) otherwise.
//!
//! Every actor holds a clone of [`Metrics`] (handles to shared atomics) and updates what it
//! sees; the server only encodes the registry. The README lists every metric.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

/// One label, e.g. `reason="bad_nonce"`.
pub type Label = [(&'static str, &'static str); 1];
/// Two labels, e.g. `direction="in",traffic="consensus"`.
pub type Labels2 = [(&'static str, &'static str); 2];
/// A family of histograms built by a plain function.
type Histograms = Family<Label, Histogram, fn() -> Histogram>;

/// The node's metrics.
#[derive(Clone)]
pub struct Metrics {
    /// Height of the last committed block.
    pub height: Gauge,
    /// The consensus round (view-change attempt) the node is in.
    pub round: Gauge,
    /// View changes this node has gone through.
    pub view_changes: Counter,
    /// Blocks committed.
    pub blocks: Counter,
    /// Transactions in committed blocks.
    pub transactions: Counter,
    /// Seconds between two commits.
    pub block_interval: Histogram,
    /// Transactions per committed block.
    pub block_size: Histogram,
    /// Seconds from a transaction's admission to this node's mempool to its commit.
    pub commit_latency: Histogram,
    /// Transactions pending in the mempool.
    pub mempool_size: Gauge,
    /// Transactions waiting for an earlier nonce.
    pub mempool_waiting: Gauge,
    /// Bytes held by the mempool.
    pub mempool_bytes: Gauge,
    /// Transactions refused, by reason (the admin protocol's error code).
    pub mempool_rejections: Family<Label, Counter>,
    /// Peers with an authenticated session.
    pub peers: Gauge,
    /// Bytes of frames received and sent, by direction and traffic class.
    pub p2p_bytes: Family<Labels2, Counter>,
    /// Seconds an append plus fsync takes, by log.
    pub fsync: Histograms,
    /// Blocks received from peers while catching up.
    pub synced_blocks: Counter,
    /// The height catch-up last asked up to.
    pub sync_target: Gauge,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    /// The metrics and the registry that encodes them.
    pub fn new() -> (Metrics, Registry) {
        let metrics = Metrics {
            height: Gauge::default(),
            round: Gauge::default(),
            view_changes: Counter::default(),
            blocks: Counter::default(),
            transactions: Counter::default(),
            block_interval: latency_histogram(),
            block_size: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            commit_latency: latency_histogram(),
            mempool_size: Gauge::default(),
            mempool_waiting: Gauge::default(),
            mempool_bytes: Gauge::default(),
            mempool_rejections: Family::default(),
            peers: Gauge::default(),
            p2p_bytes: Family::default(),
            fsync: Family::new_with_constructor(latency_histogram),
            synced_blocks: Counter::default(),
            sync_target: Gauge::default(),
        };
        let mut registry = Registry::default();
        let m = metrics.clone();
        let r = &mut registry;
        r.register(
            "consensus_height",
            "Height of the last committed block",
            m.height,
        );
        r.register(
            "consensus_round",
            "The round (view-change attempt) the node is in",
            m.round,
        );
        r.register(
            "consensus_view_changes",
            "View changes gone through",
            m.view_changes,
        );
        r.register("consensus_committed_blocks", "Blocks committed", m.blocks);
        r.register(
            "consensus_committed_transactions",
            "Transactions in committed blocks",
            m.transactions,
        );
        r.register(
            "consensus_block_interval_seconds",
            "Seconds between two commits",
            m.block_interval,
        );
        r.register(
            "consensus_block_size_transactions",
            "Transactions per committed block",
            m.block_size,
        );
        r.register(
            "mempool_commit_latency_seconds",
            "Seconds from admission to this node's mempool to commit",
            m.commit_latency,
        );
        r.register("mempool_size", "Transactions pending", m.mempool_size);
        r.register(
            "mempool_waiting",
            "Transactions waiting for an earlier nonce",
            m.mempool_waiting,
        );
        r.register("mempool_bytes", "Bytes held", m.mempool_bytes);
        r.register(
            "mempool_rejections",
            "Transactions refused, by reason",
            m.mempool_rejections,
        );
        r.register("p2p_peers", "Peers with an authenticated session", m.peers);
        r.register(
            "p2p_bytes",
            "Bytes of frames, by direction and traffic class",
            m.p2p_bytes,
        );
        r.register(
            "storage_fsync_seconds",
            "Seconds an append plus fsync takes, by log",
            m.fsync,
        );
        r.register(
            "sync_fetched_blocks",
            "Blocks received while catching up",
            m.synced_blocks,
        );
        r.register(
            "sync_target_height",
            "The height catch-up last asked up to",
            m.sync_target,
        );
        (metrics, registry)
    }

    /// Counts a transaction refused for `reason`.
    pub fn rejected(&self, reason: &'static str) {
        self.rejected_many(reason, 1);
    }

    /// Counts `n` transactions refused for `reason` at once.
    pub fn rejected_many(&self, reason: &'static str, n: usize) {
        self.mempool_rejections
            .get_or_create(&[("reason", reason)])
            .inc_by(n as u64);
    }

    /// Counts `bytes` of `traffic` (`consensus` or `gossip`) going `direction` (`in`/`out`).
    pub fn traffic(&self, direction: &'static str, traffic: &'static str, bytes: usize) {
        self.p2p_bytes
            .get_or_create(&[("direction", direction), ("traffic", traffic)])
            .inc_by(bytes as u64);
    }

    /// Records how long an append with fsync to `log` took.
    pub fn fsynced(&self, log: &'static str, took: Duration) {
        self.fsync
            .get_or_create(&[("log", log)])
            .observe(took.as_secs_f64());
    }
}

/// The registry as OpenMetrics text.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut text, registry);
    text
}

/// OpenMetrics text as the classic Prometheus text format: a counter's `# HELP` and
/// `# TYPE` name its samples (`x_total`), and there is no `# EOF`.
pub fn classic(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{tag}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Longest a scraper may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request read.
const MAX_REQUEST: usize = 8 * 1024;

/// Serves `GET /metrics` on `listener` until the node stops.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    let mut pause = Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                pause = Duration::from_millis(10);
                actix_rt::spawn(answer(stream, registry.clone()));
            }
            Err(e) => {
                warn!(target: "metrics", "cannot accept ({e}); pausing {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Reads one HTTP request and answers it: the metrics for `GET /metrics`, 404 otherwise.
async fn answer(mut stream: TcpStream, registry: Arc<Registry>) {
    let mut request = Vec::new();
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < MAX_REQUEST {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return;
    }
    let wants_openmetrics = String::from_utf8_lossy(&request)
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("accept:") && l.contains("openmetrics"));
    let (status, content_type, body) = if !request.starts_with(b"GET /metrics ") {
        ("404 Not Found", "text/plain", "try /metrics\n".to_string())
    } else if wants_openmetrics {
        (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            render(&registry),
        )
    } else {
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            classic(&render(&registry)),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    if let Err(e) = stream.write_all(response.as_bytes()).await {
        debug!(target: "metrics", "cannot answer a scrape: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_and_counters_move() {
        let (metrics, registry) = Metrics::new();
        metrics.height.set(7);
        metrics.transactions.inc_by(3);
        metrics.rejected("bad_nonce");
        metrics.traffic("in", "consensus", 100);
        metrics.fsynced("votes", Duration::from_millis(2));
        let text = render(&registry);
        for line in [
            "consensus_height 7",
            "consensus_committed_transactions_total 3",
            "mempool_rejections_total{reason=\"bad_nonce\"} 1",
            "p2p_bytes_total{direction=\"in\",traffic=\"consensus\"} 100",
            "storage_fsync_seconds_count{log=\"votes\"} 1",
            "# TYPE consensus_block_interval_seconds histogram",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "`{line}` missing from:\n{text}"
            );
        }
    }
}
