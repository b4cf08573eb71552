//! `almagill tx`: builds and signs a transaction offline and prints its canonical hex.

use std::path::Path;

use almagill::amount::parse_amount;
use almagill::crypto::Address;
use almagill::encoding;
use almagill::genesis::Genesis;
use almagill::tx::{TxBody, TxKind};
use anyhow::{anyhow, bail, Context, Result};

use crate::cli::TxKindArg;
use crate::files;

/// Signs the transaction described by the arguments and prints its hex.
pub fn run(
    kind: TxKindArg,
    key: &Path,
    to: Option<&str>,
    amount: Option<&str>,
    nonce: u64,
    genesis: &Path,
) -> Result<()> {
    let genesis = files::load_genesis(genesis)?;
    let key = files::load_key(key)?;
    let amount =
        parse_amount(amount.ok_or_else(|| anyhow!("--amount is required"))?).context("--amount")?;
    let recipient = |to: Option<&str>| -> Result<Address> {
        let to = to.ok_or_else(|| anyhow!("--to is required for this kind"))?;
        resolve(&genesis, to)
    };
    let kind = match kind {
        TxKindArg::Transfer => TxKind::Transfer {
            to: recipient(to)?,
            amount,
        },
        TxKindArg::Create => TxKind::CreateAccount {
            new_account: recipient(to)?,
            amount,
        },
        TxKindArg::Stake | TxKindArg::Unstake if to.is_some() => {
            bail!("--to does not apply to stake and unstake")
        }
        TxKindArg::Stake => TxKind::Stake { amount },
        TxKindArg::Unstake => TxKind::Unstake { amount },
    };
    let tx = TxBody {
        from: key.address(),
        nonce,
        kind,
    }
    .sign(&key, &genesis.chain_id);
    tx.check_format()
        .context("this transaction would be refused")?;
    println!("{}", hex::encode(encoding::encode(&tx)));
    Ok(())
}

fn resolve(genesis: &Genesis, text: &str) -> Result<Address> {
    genesis.resolve_address(text).ok_or_else(|| {
        anyhow!("--to `{text}` is neither 64 hex characters nor an account name in genesis")
    })
}
