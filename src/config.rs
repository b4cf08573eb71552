//! A node's own configuration (`nodeN.toml`): who it is, where it listens, whom it talks to.
//!
//! Relative paths are resolved against the directory of the file that names them, so a
//! network directory can be moved as a whole. Reading the files is the node's job; this
//! module only parses and checks text.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::crypto::Address;
use crate::genesis::one_line;

/// A validator this node connects to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// A name for logs (`node1`).
    pub name: String,
    /// The peer's validator key, checked in the handshake.
    pub address: String,
    /// Where it listens for peers, `ip:port`.
    pub endpoint: String,
}

/// The node configuration file as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfigFile {
    /// The node's name in logs and `STATUS`.
    pub name: String,
    /// The validator key file.
    pub key_file: String,
    /// The genesis file.
    pub genesis: String,
    /// Where to listen for peers, `ip:port`.
    pub listen: String,
    /// Where to listen for admin clients; `ip:port` or just a port (then 127.0.0.1).
    /// Missing: 127.0.0.1 on the peer port plus 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    /// Where to serve Prometheus metrics, `ip:port`; missing: no metrics served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// Where the node keeps its blocks, state and votes.
    pub data_dir: String,
    /// Key files of accounts the node may sign for (admin `SEND` and friends). The node's
    /// validator key signs admin requests only if it is listed here too.
    #[serde(default)]
    pub wallets: Vec<String>,
    /// Seconds an admin connection may send nothing before the node closes it.
    /// Missing: [`DEFAULT_ADMIN_IDLE_TIMEOUT_S`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_idle_timeout_s: Option<u64>,
    /// A file holding the admin token: when set, the admin commands that sign answer
    /// `ERR unauthorized` on a connection until it sends `AUTH <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<String>,
    /// The other validators.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
}

/// A peer, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// A name for logs.
    pub name: String,
    /// Its validator key.
    pub address: Address,
    /// Where it listens.
    pub endpoint: SocketAddr,
}

/// A checked node configuration with absolute paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// The node's name.
    pub name: String,
    /// Path of the validator key file.
    pub key_file: PathBuf,
    /// Path of the genesis file.
    pub genesis: PathBuf,
    /// Peer listen address.
    pub listen: SocketAddr,
    /// Admin listen address.
    pub admin: SocketAddr,
    /// Metrics listen address, if metrics are served.
    pub metrics: Option<SocketAddr>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Wallet key files.
    pub wallets: Vec<PathBuf>,
    /// How long an admin connection may stay silent before it is closed.
    pub admin_idle_timeout: Duration,
    /// Path of the admin token file, if the signing commands need `AUTH`.
    pub admin_token_file: Option<PathBuf>,
    /// Peers.
    pub peers: Vec<Peer>,
}

/// The admin idle timeout when the config names none, as `spec/admin-protocol.md` says.
pub const DEFAULT_ADMIN_IDLE_TIMEOUT_S: u64 = 300;

/// The longest admin idle timeout accepted (a day): long enough for any script, and far from
/// the values where adding it to a clock could overflow.
pub const MAX_ADMIN_IDLE_TIMEOUT_S: u64 = 86_400;

/// Why a node configuration was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Not TOML, or not the expected fields.
    #[error("not a valid node config: {0}")]
    Parse(String),
    /// Well-formed but wrong.
    #[error("invalid node config: {0}")]
    Invalid(String),
}

fn invalid(reason: String) -> ConfigError {
    ConfigError::Invalid(reason)
}

fn socket(what: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse()
        .map_err(|_| invalid(format!("{what} `{text}` is not an ip:port address")))
}

impl NodeConfig {
    /// Parses `text`, resolving relative paths against `base_dir` (the file's directory).
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<NodeConfig, ConfigError> {
        let file = NodeConfigFile::from_toml(text)?;
        let path = |p: &str| base_dir.join(p);
        if file.name.is_empty() {
            return Err(invalid("name is empty".into()));
        }
        let listen = socket("listen", &file.listen)?;
        let admin = match &file.admin {
            None => SocketAddr::new([127, 0, 0, 1].into(), listen.port().saturating_add(100)),
            Some(text) => match text.parse::<u16>() {
                Ok(port) => SocketAddr::new([127, 0, 0, 1].into(), port),
                Err(_) => socket("admin", text)?,
            },
        };
        if admin == listen {
            return Err(invalid(format!("listen and admin are both {listen}")));
        }
        let metrics = match &file.metrics {
            None => None,
            Some(text) => Some(socket("metrics", text)?),
        };
        if let Some(taken) = metrics.filter(|m| *m == listen || *m == admin) {
            return Err(invalid(format!(
                "metrics {taken} is also the peer or admin address"
            )));
        }
        let idle_s = file
            .admin_idle_timeout_s
            .unwrap_or(DEFAULT_ADMIN_IDLE_TIMEOUT_S);
        if !(1..=MAX_ADMIN_IDLE_TIMEOUT_S).contains(&idle_s) {
            return Err(invalid(format!(
                "admin_idle_timeout_s {idle_s} is not between 1 and {MAX_ADMIN_IDLE_TIMEOUT_S}"
            )));
        }
        if file.admin_token_file.as_deref() == Some("") {
            return Err(invalid("admin_token_file is empty".into()));
        }
        let mut keys = BTreeSet::new();
        let mut peers = Vec::with_capacity(file.peers.len());
        for p in &file.peers {
            let address = Address::from_hex(&p.address)
                .map_err(|e| invalid(format!("peer `{}` address: {e}", p.name)))?;
            if !keys.insert(address) {
                return Err(invalid(format!("peer {address} is listed twice")));
            }
            peers.push(Peer {
                name: p.name.clone(),
                address,
                endpoint: socket(&format!("peer `{}` endpoint", p.name), &p.endpoint)?,
            });
        }
        Ok(NodeConfig {
            name: file.name,
            key_file: path(&file.key_file),
            genesis: path(&file.genesis),
            listen,
            admin,
            metrics,
            data_dir: path(&file.data_dir),
            wallets: file.wallets.iter().map(|w| path(w)).collect(),
            admin_idle_timeout: Duration::from_secs(idle_s),
            admin_token_file: file.admin_token_file.as_deref().map(path),
            peers,
        })
    }
}

impl NodeConfigFile {
    /// The file as written, parsed but not yet checked: for tools that edit a config and
    /// write it back ([`NodeConfig::from_toml`] checks it).
    pub fn from_toml(text: &str) -> Result<NodeConfigFile, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(one_line(&e.to_string())))
    }

    /// The file's TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("plain strings and tables always serialize")
    }
}
