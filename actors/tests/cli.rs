//! The `almagill` command line, driven as a user would: real processes, real files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use almagill::config::NodeConfig;
use almagill::encoding;
use almagill::genesis::Genesis;
use almagill::tx::{Transaction, TxKind};

fn almagill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_almagill"))
        .args(args)
        .output()
        .expect("the almagill binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// A usage or input error: non-zero exit, one line on stderr starting with `error:`, and no
/// panic or backtrace.
fn assert_clear_error(out: &Output) {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "expected failure, got success: {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one line, got: {err}"
    );
    assert!(
        err.starts_with("error:"),
        "expected `error: ...`, got: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

fn testnet(dir: &Path, validators: &str) {
    let out = almagill(&[
        "testnet",
        "--validators",
        validators,
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "testnet failed: {}", stderr(&out));
}

/// `testnet` writes a genesis and node configs that load and validate, with the ports and
/// accounts the spec promises, and keys written owner-only.
#[test]
fn testnet_writes_a_network_that_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let out = almagill(&[
        "testnet",
        "--validators",
        "4",
        "--out",
        dir.to_str().unwrap(),
        "--base-port",
        "9000",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let genesis = Genesis::from_toml(&std::fs::read_to_string(dir.join("genesis.toml")).unwrap())
        .expect("genesis validates");
    assert_eq!(genesis.validator_set().unwrap().len(), 4);
    assert!(genesis.account_named("alice").is_some() && genesis.account_named("bob").is_some());
    for i in 0..4u16 {
        let path = dir.join(format!("node{i}.toml"));
        let config = NodeConfig::from_toml(&std::fs::read_to_string(&path).unwrap(), &dir)
            .expect("node config validates");
        assert_eq!(config.listen.to_string(), format!("127.0.0.1:{}", 9000 + i));
        assert_eq!(config.admin.to_string(), format!("127.0.0.1:{}", 9100 + i));
        assert_eq!(config.peers.len(), 3);
        assert_eq!(config.wallets.len(), 2);
        for key in std::iter::once(&config.key_file).chain(&config.wallets) {
            let mode = std::fs::metadata(key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
        let node_key = std::fs::read_to_string(&config.key_file).unwrap();
        let address = almagill::crypto::Keypair::from_key_file(&node_key)
            .unwrap()
            .address();
        assert!(genesis
            .validator_set()
            .unwrap()
            .stake_of(&address)
            .is_some());
    }
    // Writing over an existing network is refused.
    assert_clear_error(&almagill(&[
        "testnet",
        "--validators",
        "4",
        "--out",
        dir.to_str().unwrap(),
    ]));
}

/// `tx transfer` prints hex that decodes to a transaction signed by the key, for the
/// genesis's chain, to the named account.
#[test]
fn tx_prints_a_valid_signed_transaction() {
    let tmp = tempfile::tempdir().unwrap();
    testnet(tmp.path(), "1");
    let genesis_path = tmp.path().join("genesis.toml");
    let genesis = Genesis::from_toml(&std::fs::read_to_string(&genesis_path).unwrap()).unwrap();
    let out = almagill(&[
        "tx",
        "transfer",
        "--key",
        tmp.path().join("keys/alice.key").to_str().unwrap(),
        "--to",
        "bob",
        "--amount",
        "2.5agl",
        "--nonce",
        "7",
        "--genesis",
        genesis_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = hex::decode(stdout(&out)).expect("hex");
    let tx: Transaction = encoding::decode(&bytes).expect("canonical transaction");
    tx.verify(&genesis.chain_id).expect("valid signature");
    assert_eq!(
        tx.body().from,
        genesis.account_named("alice").unwrap().address
    );
    assert_eq!(tx.body().nonce, 7);
    assert_eq!(
        tx.body().kind,
        TxKind::Transfer {
            to: genesis.account_named("bob").unwrap().address,
            amount: 25 * 10u128.pow(17)
        }
    );
    assert!(tx.verify("another-chain").is_err());
}

/// `keygen --out` writes a 0600 key file whose address is the one printed, and will not
/// overwrite it.
#[test]
fn keygen_writes_an_owner_only_key() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("k");
    let out = almagill(&["keygen", "--out", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key =
        almagill::crypto::Keypair::from_key_file(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(stdout(&out), key.address().to_string());
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_clear_error(&almagill(&["keygen", "--out", path.to_str().unwrap()]));
}

/// Bad arguments, missing files and invalid configs each give one clear line and a
/// non-zero exit.
#[test]
fn bad_input_gives_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    testnet(tmp.path(), "1");
    let genesis = tmp.path().join("genesis.toml");
    let genesis = genesis.to_str().unwrap();
    let alice = tmp.path().join("keys/alice.key");
    let alice = alice.to_str().unwrap();
    let junk = tmp.path().join("junk");
    std::fs::write(&junk, "not a key\n").unwrap();
    let junk = junk.to_str().unwrap();
    let node0 = tmp.path().join("node0.toml");
    let node0 = node0.to_str().unwrap();
    // Every case is one command line; the temp paths have no spaces.
    let tx = |rest: &str| format!("tx transfer --key {alice} --nonce 0 --genesis {genesis} {rest}");
    let cases = [
        "no-such-command".to_string(),
        "testnet --validators 0 --out x".into(),
        "testnet --validators four --out x".into(),
        "testnet --validators 4 --out x --base-port 65500".into(),
        "testnet --validators 2 --out x --accounts node1".into(),
        tx(""),
        tx("--to carol --amount 1"),
        tx("--to bob --amount 1.5"),
        tx("--to bob --amount 0"),
        format!("tx transfer --key {alice} --to bob --amount 1 --nonce -1 --genesis {genesis}"),
        format!("tx stake --key {alice} --to bob --amount 1 --nonce 0 --genesis {genesis}"),
        format!("tx transfer --key {junk} --to bob --amount 1 --nonce 0 --genesis {genesis}"),
        format!(
            "tx transfer --key /nonexistent/k --to bob --amount 1 --nonce 0 --genesis {genesis}"
        ),
        format!("tx transfer --key {alice} --to bob --amount 1 --nonce 0 --genesis {node0}"),
        format!("tx transfer --key {alice} --to bob --amount 1 --nonce 0 --genesis {junk}"),
        "bench --rate 0".into(),
        "bench --accounts 1".into(),
        "bench --keep x --sweep 1000,2000".into(),
        format!("bench --keep {}", tmp.path().display()),
    ];
    for case in &cases {
        let args: Vec<&str> = case.split_whitespace().collect();
        assert_clear_error(&almagill(&args));
    }
}

/// `--help` explains every subcommand and exits 0.
#[test]
fn help_lists_every_command() {
    let out = almagill(&["--help"]);
    assert!(out.status.success());
    for command in ["run", "localnet", "testnet", "keygen", "tx", "bench"] {
        assert!(
            stdout(&out).contains(command),
            "{command} missing from --help"
        );
        assert!(almagill(&[command, "--help"]).status.success());
    }
}
