//! `almagill testnet`: writes a complete, self-contained local network directory.

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use almagill::amount::AGL;
use almagill::config::{NodeConfigFile, PeerConfig};
use almagill::crypto::Keypair;
use almagill::genesis::{ConsensusParams, Genesis, GenesisAccount};
use anyhow::{bail, Context, Result};

use crate::files;

/// The chain id of networks made by this command.
const CHAIN_ID: &str = "almagill-local";
/// Each validator's opening balance and stake.
const VALIDATOR_BALANCE: u128 = 1_000_000 * AGL;
const VALIDATOR_STAKE: u128 = 100_000 * AGL;
/// Each extra account's opening balance.
const ACCOUNT_BALANCE: u128 = 1_000_000 * AGL;
/// The least stake that makes a validator.
const MIN_STAKE: u128 = 10_000 * AGL;
/// Blocks per epoch.
const EPOCH_LENGTH: u64 = 100;

/// Writes `validators` nodes and the extra `accounts` into `out`.
pub fn run(validators: u16, out: &Path, base_port: u16, accounts: &[String]) -> Result<()> {
    let last_metrics_port = u32::from(base_port) + 200 + u32::from(validators) - 1;
    if last_metrics_port > u32::from(u16::MAX) {
        bail!(
            "--base-port {base_port} leaves no room for {validators} admin and metrics ports \
             (base + 100 + i, base + 200 + i)"
        );
    }
    if out.join("genesis.toml").exists() {
        bail!(
            "{} already holds a network (genesis.toml); choose an empty directory",
            out.display()
        );
    }
    let node_names: Vec<String> = (0..validators).map(|i| format!("node{i}")).collect();
    let mut keys = Vec::new();
    for name in node_names.iter().chain(accounts) {
        keys.push((name.clone(), files::new_key()?));
    }
    let genesis = genesis(&keys, usize::from(validators))?;

    let keys_dir = out.join("keys");
    fs::create_dir_all(&keys_dir)
        .with_context(|| format!("cannot create {}", keys_dir.display()))?;
    for (name, key) in &keys {
        files::write_key(&keys_dir.join(format!("{name}.key")), key)?;
    }
    files::write_new(&out.join("genesis.toml"), &genesis.to_toml())?;
    let wallets: Vec<String> = accounts.iter().map(|a| format!("keys/{a}.key")).collect();
    for (i, (name, _)) in keys.iter().take(usize::from(validators)).enumerate() {
        let port = |offset: usize| usize::from(base_port) + offset;
        let peers = keys
            .iter()
            .take(usize::from(validators))
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, (peer, key))| PeerConfig {
                name: peer.clone(),
                address: key.address().to_string(),
                endpoint: format!("127.0.0.1:{}", port(j)),
            })
            .collect();
        let config = NodeConfigFile {
            name: name.clone(),
            key_file: format!("keys/{name}.key"),
            genesis: "genesis.toml".into(),
            listen: format!("127.0.0.1:{}", port(i)),
            admin: Some(format!("127.0.0.1:{}", port(100 + i))),
            metrics: Some(format!("127.0.0.1:{}", port(200 + i))),
            data_dir: format!("data/{name}"),
            // The shared accounts only: the validator key signs admin requests only if an
            // operator lists it here on purpose.
            wallets: wallets.clone(),
            admin_idle_timeout_s: None,
            admin_token_file: None,
            peers,
        };
        files::write_new(&out.join(format!("{name}.toml")), &config.to_toml())?;
    }
    println!(
        "wrote a {validators}-validator network to {} (chain {CHAIN_ID}); start it with: almagill localnet --dir {}",
        out.display(),
        out.display()
    );
    Ok(())
}

/// The genesis: the first `validators` keys stake, the rest are funded accounts.
fn genesis(keys: &[(String, Keypair)], validators: usize) -> Result<Genesis> {
    let genesis_time_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_millis() as u64;
    let genesis = Genesis {
        chain_id: CHAIN_ID.into(),
        genesis_time_ms,
        min_stake: MIN_STAKE,
        epoch_length: EPOCH_LENGTH,
        consensus: ConsensusParams::default(),
        accounts: keys
            .iter()
            .enumerate()
            .map(|(i, (name, key))| GenesisAccount {
                name: name.clone(),
                address: key.address(),
                balance: if i < validators {
                    VALIDATOR_BALANCE
                } else {
                    ACCOUNT_BALANCE
                },
                stake: if i < validators { VALIDATOR_STAKE } else { 0 },
            })
            .collect(),
    };
    genesis.validate()?;
    Ok(genesis)
}
