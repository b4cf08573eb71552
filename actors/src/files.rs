//! Reading and writing the node's files, with errors that name the file.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use almagill::crypto::Keypair;
use almagill::genesis::Genesis;
use anyhow::{Context, Result};

use crate::admin::auth::AdminToken;

/// Reads a whole text file.
pub fn read_text(path: &Path, what: &str) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// Loads and validates a genesis file.
pub fn load_genesis(path: &Path) -> Result<Genesis> {
    Genesis::from_toml(&read_text(path, "genesis file")?)
        .with_context(|| format!("{}", path.display()))
}

/// Loads a key file.
pub fn load_key(path: &Path) -> Result<Keypair> {
    Keypair::from_key_file(&read_text(path, "key file")?)
        .with_context(|| format!("key file {} is malformed", path.display()))
}

/// Loads the admin token file named by a node's `admin_token_file`.
pub fn load_admin_token(path: &Path) -> Result<AdminToken> {
    AdminToken::from_file_text(&read_text(path, "admin token file")?)
        .with_context(|| format!("admin token file {} is unusable", path.display()))
}

/// Writes a key file readable by its owner only, refusing to overwrite an existing one.
pub fn write_key(path: &Path, key: &Keypair) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create key file {}", path.display()))?;
    file.write_all(key.to_key_file().as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write key file {}", path.display()))
}

/// Writes a text file, refusing to overwrite an existing one.
pub fn write_new(path: &Path, text: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A fresh key from the operating system's randomness.
pub fn new_key() -> Result<Keypair> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    Ok(Keypair::from_seed(seed))
}
