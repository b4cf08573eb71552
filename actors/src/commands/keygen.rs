//! `almagill keygen`: a new key, written to a 0600 file if asked, its address printed.

use std::path::Path;

use anyhow::Result;

use crate::files;

/// Makes a key, writes it if `out` is given, and prints the address.
pub fn run(out: Option<&Path>) -> Result<()> {
    let key = files::new_key()?;
    if let Some(path) = out {
        files::write_key(path, &key)?;
    }
    println!("{}", key.address());
    Ok(())
}
