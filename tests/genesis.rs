//! Reading the genesis document, node configuration files and written amounts: exact
//! round trips, and clear refusals of everything malformed.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use almagill::amount::{format_agl, parse_amount, AmountError, AGL};
use almagill::config::{ConfigError, NodeConfig, NodeConfigFile, PeerConfig};
use almagill::genesis::{ConsensusParams, Genesis, GenesisError, MAX_SUPPLY};
use common::{address, arb_genesis, genesis, EPOCH_LENGTH, MIN_STAKE};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Genesis
// ---------------------------------------------------------------------------------------

/// The top-level fields of the hand-written genesis used below.
const TOP: &str = r#"
chain_id = "almagill-test"
genesis_time_ms = 1700000000000
min_stake = "1000"
epoch_length = 20
"#;

/// One `[[accounts]]` entry; `stake` is left out when `None`.
fn account_toml(name: &str, address_hex: &str, balance: &str, stake: Option<&str>) -> String {
    let mut text = format!(
        "\n[[accounts]]\nname = \"{name}\"\naddress = \"{address_hex}\"\nbalance = \"{balance}\"\n"
    );
    if let Some(stake) = stake {
        text.push_str(&format!("stake = \"{stake}\"\n"));
    }
    text
}

/// A validator `alice` (seed 1) and a plain account `bob` (seed 2).
fn standard_accounts() -> Vec<String> {
    vec![
        account_toml("alice", &address(1).to_string(), "2.5agl", Some("1agl")),
        account_toml("bob", &address(2).to_string(), "1500", None),
    ]
}

/// A genesis file from top-level text, an optional `[consensus]` body and accounts.
fn genesis_toml(top: &str, consensus: Option<&str>, accounts: &[String]) -> String {
    let mut text = top.to_string();
    if let Some(consensus) = consensus {
        text.push_str(&format!("\n[consensus]\n{consensus}\n"));
    }
    text.extend(accounts.iter().cloned());
    text
}

/// Asserts `text` is refused as invalid with a one-line message containing `needle`.
fn assert_invalid(text: &str, needle: &str) {
    match Genesis::from_toml(text) {
        Err(GenesisError::Invalid(message)) => {
            assert!(message.contains(needle), "`{message}` lacks `{needle}`");
            assert!(!message.contains('\n'));
        }
        other => panic!("expected Invalid containing `{needle}`, got {other:?}"),
    }
}

/// Asserts `text` is refused as not parsing, with a one-line message containing `needle`.
fn assert_parse_error(text: &str, needle: &str) {
    match Genesis::from_toml(text) {
        Err(GenesisError::Parse(message)) => {
            assert!(message.contains(needle), "`{message}` lacks `{needle}`");
            assert!(!message.contains('\n'));
        }
        other => panic!("expected Parse containing `{needle}`, got {other:?}"),
    }
}

/// The hand-written file parses to exactly the values it spells out, with defaults for
/// what it leaves out (alice's stake written, bob's defaulting to zero).
#[test]
fn hand_written_genesis_parses() {
    let text = genesis_toml(TOP, Some("window = 4"), &standard_accounts());
    let g = Genesis::from_toml(&text).expect("valid genesis");
    assert_eq!(g.chain_id, "almagill-test");
    assert_eq!(g.genesis_time_ms, 1_700_000_000_000);
    assert_eq!(g.min_stake, 1000);
    assert_eq!(g.epoch_length, 20);
    assert_eq!(g.consensus.window, 4);
    assert_eq!(
        g.consensus,
        ConsensusParams {
            window: 4,
            ..ConsensusParams::default()
        }
    );
    assert_eq!(g.accounts.len(), 2);
    assert_eq!(g.accounts[0].address, address(1));
    assert_eq!(g.accounts[0].balance, 25 * AGL / 10);
    assert_eq!(g.accounts[0].stake, AGL);
    assert_eq!(g.accounts[1].balance, 1500);
    assert_eq!(g.accounts[1].stake, 0);
    assert_eq!(g.supply(), 35 * AGL / 10 + 1500);
    let validators = g.validator_set().expect("alice validates");
    assert_eq!(validators.len(), 1);
    assert_eq!(validators.stake_of(&address(1)), Some(AGL));
}

/// `to_toml` then `from_toml` gives back the same genesis, for the test genesis.
#[test]
fn genesis_toml_round_trip_example() {
    let g = genesis(&[
        (1, 5, MIN_STAKE),
        (2, 7 * AGL + 1, 0),
        (3, 0, 3 * MIN_STAKE),
    ]);
    assert_eq!(Genesis::from_toml(&g.to_toml()), Ok(g));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// `to_toml` then `from_toml` gives back the same genesis, for any valid genesis
    /// (random chain ids, names, addresses, amounts up to the supply cap and timings).
    #[test]
    fn genesis_toml_round_trip(g in arb_genesis()) {
        prop_assert_eq!(Genesis::from_toml(&g.to_toml()), Ok(g));
    }
}

/// A field the format does not define is refused, at the top level, in `[consensus]` and
/// in an account (`deny_unknown_fields`).
#[test]
fn genesis_unknown_fields_rejected() {
    let accounts = standard_accounts();
    let top = format!("{TOP}colour = \"blue\"\n");
    assert_parse_error(&genesis_toml(&top, None, &accounts), "colour");
    assert_parse_error(
        &genesis_toml(TOP, Some("window = 4\nspeed = 9"), &accounts),
        "speed",
    );
    let mut extra = accounts.clone();
    extra[1].push_str("nickname = \"bobby\"\n");
    assert_parse_error(&genesis_toml(TOP, None, &extra), "nickname");
}

/// Text that is not TOML, or lacks a required field, is a parse error.
#[test]
fn genesis_not_toml_or_missing_field_rejected() {
    assert!(matches!(
        Genesis::from_toml("chain_id = "),
        Err(GenesisError::Parse(_))
    ));
    let no_chain_id = TOP.replace("chain_id = \"almagill-test\"", "");
    assert_parse_error(
        &genesis_toml(&no_chain_id, None, &standard_accounts()),
        "chain_id",
    );
    assert_parse_error(&genesis_toml(TOP, None, &[]), "accounts");
}

/// Two accounts with the same name are refused.
#[test]
fn genesis_duplicate_names_rejected() {
    let accounts = vec![
        account_toml("alice", &address(1).to_string(), "1", Some("1000")),
        account_toml("alice", &address(2).to_string(), "1", None),
    ];
    assert_invalid(&genesis_toml(TOP, None, &accounts), "`alice` appears twice");
}

/// Two accounts with the same address are refused, even written in different cases.
#[test]
fn genesis_duplicate_addresses_rejected() {
    let hex = address(1).to_string();
    let accounts = vec![
        account_toml("alice", &hex, "1", Some("1000")),
        account_toml("bob", &hex.to_uppercase(), "1", None),
    ];
    assert_invalid(&genesis_toml(TOP, None, &accounts), "appears twice");
}

/// A genesis holding no tokens at all is refused.
#[test]
fn genesis_zero_supply_rejected() {
    let accounts = vec![
        account_toml("alice", &address(1).to_string(), "0", Some("0")),
        account_toml("bob", &address(2).to_string(), "0agl", None),
    ];
    assert_invalid(&genesis_toml(TOP, None, &accounts), "supply is zero");
}

/// A supply over the cap (a quarter of u128, so quorum arithmetic cannot overflow) is
/// refused, including when the sum itself would overflow u128.
#[test]
fn genesis_supply_over_cap_rejected() {
    let mut g = genesis(&[(1, 0, MIN_STAKE)]);
    g.accounts[0].balance = MAX_SUPPLY - MIN_STAKE;
    assert_eq!(g.validate(), Ok(()));
    g.accounts[0].balance += 1;
    assert!(matches!(g.validate(), Err(GenesisError::Invalid(m)) if m.contains("supply")));
    let mut g = genesis(&[(1, 0, MIN_STAKE), (2, 0, 0)]);
    g.accounts[0].balance = u128::MAX;
    g.accounts[1].balance = u128::MAX;
    assert!(matches!(g.validate(), Err(GenesisError::Invalid(m)) if m.contains("supply")));
}

/// An account staking something but less than `min_stake` is refused.
#[test]
fn genesis_validator_below_min_stake_rejected() {
    let accounts = vec![
        account_toml("alice", &address(1).to_string(), "1", Some("1000")),
        account_toml("bob", &address(2).to_string(), "1", Some("999")),
    ];
    assert_invalid(&genesis_toml(TOP, None, &accounts), "below min_stake");
}

/// A genesis in which nobody stakes is refused: there would be no validators.
#[test]
fn genesis_without_validators_rejected() {
    let accounts = vec![
        account_toml("alice", &address(1).to_string(), "5agl", None),
        account_toml("bob", &address(2).to_string(), "1500", Some("0")),
    ];
    assert_invalid(&genesis_toml(TOP, None, &accounts), "no validators");
}

/// Addresses that are not exactly 64 hex characters are refused, naming the account.
#[test]
fn genesis_bad_address_rejected() {
    let good = address(1).to_string();
    for bad in [
        format!("{}zz", &good[..62]),
        good[..63].to_string(),
        format!("{good}00"),
        String::new(),
        format!("0x{}", &good[..62]),
    ] {
        let accounts = vec![account_toml("alice", &bad, "1", Some("1000"))];
        assert_invalid(&genesis_toml(TOP, None, &accounts), "`alice` address");
    }
}

/// Amounts that are not exact (base units or AGL) are refused, naming what was wrong.
#[test]
fn genesis_bad_amounts_rejected() {
    let hex = address(1).to_string();
    for bad in ["12x", "1.5", "-3", "", "1.0000000000000000001agl"] {
        let accounts = vec![account_toml("alice", &hex, bad, Some("1000"))];
        assert_invalid(&genesis_toml(TOP, None, &accounts), "`alice` balance");
        let accounts = vec![account_toml("alice", &hex, "1", Some(bad))];
        assert_invalid(&genesis_toml(TOP, None, &accounts), "`alice` stake");
    }
    let top = TOP.replace("min_stake = \"1000\"", "min_stake = \"lots\"");
    assert_invalid(&genesis_toml(&top, None, &standard_accounts()), "min_stake");
    // An integer where an amount string belongs is a type error.
    let top = TOP.replace("min_stake = \"1000\"", "min_stake = 1000");
    assert_parse_error(&genesis_toml(&top, None, &standard_accounts()), "min_stake");
}

/// The default consensus parameters, which a genesis without `[consensus]` gets: a
/// checkpoint every 10 blocks and a window of 4 (within twice that). The test genesis uses
/// epochs of one checkpoint interval.
#[test]
fn consensus_defaults() {
    let defaults = ConsensusParams::default();
    assert_eq!(defaults.checkpoint_interval, 10);
    assert_eq!(defaults.window, 4);
    assert!(defaults.window <= 2 * defaults.checkpoint_interval);
    assert_eq!(EPOCH_LENGTH, defaults.checkpoint_interval);
    let g = Genesis::from_toml(&genesis_toml(TOP, None, &standard_accounts())).unwrap();
    assert_eq!(g.consensus, defaults);
}

/// An epoch must be a whole number of checkpoint intervals, so every epoch ends on a
/// checkpoint: one that is not (longer or shorter than an interval, with the default
/// interval or a written one) is refused, naming both numbers; one, two or many whole
/// intervals are fine, however the epoch compares with the window.
#[test]
fn genesis_epoch_not_whole_checkpoint_intervals_rejected() {
    let accounts = standard_accounts();
    let with_epoch = |epoch: u64, consensus: Option<&str>| {
        let top = TOP.replace("epoch_length = 20", &format!("epoch_length = {epoch}"));
        genesis_toml(&top, consensus, &accounts)
    };
    for epoch in [5, 9, 11, 15, 25, 99] {
        assert_invalid(
            &with_epoch(epoch, None),
            &format!("epoch_length {epoch} must be a multiple of consensus.checkpoint_interval 10"),
        );
    }
    assert_invalid(
        &with_epoch(20, Some("checkpoint_interval = 8")),
        "epoch_length 20 must be a multiple of consensus.checkpoint_interval 8",
    );
    assert_invalid(
        &with_epoch(20, Some("checkpoint_interval = 40\nwindow = 4")),
        "epoch_length 20 must be a multiple of consensus.checkpoint_interval 40",
    );
    for (epoch, consensus) in [
        (10, None),
        (20, None),
        (1_000, None),
        (8, Some("checkpoint_interval = 8")),
        (24, Some("checkpoint_interval = 8")),
        (7, Some("checkpoint_interval = 1\nwindow = 2")),
        // An epoch shorter than the window is fine: the window drains at its end.
        (3, Some("checkpoint_interval = 3\nwindow = 6")),
    ] {
        let text = with_epoch(epoch, consensus);
        let g = Genesis::from_toml(&text).unwrap_or_else(|e| panic!("{epoch} {consensus:?}: {e}"));
        assert_eq!(g.epoch_length, epoch);
    }
    // The same rule when validating a value built in code.
    let mut g = genesis(&[(1, 0, MIN_STAKE)]);
    g.epoch_length = 3 * g.consensus.checkpoint_interval;
    assert_eq!(g.validate(), Ok(()));
    g.epoch_length += 1;
    assert!(
        matches!(g.validate(), Err(GenesisError::Invalid(m)) if m.contains("multiple of consensus.checkpoint_interval"))
    );
}

/// The window may be at most twice the checkpoint interval, so every block in flight stays
/// between the watermarks: one over is refused, naming both numbers; up to it is fine.
#[test]
fn genesis_window_over_twice_checkpoint_interval_rejected() {
    let accounts = standard_accounts();
    assert_invalid(
        &genesis_toml(TOP, Some("window = 21"), &accounts),
        "consensus.window 21 must be at most twice consensus.checkpoint_interval 10",
    );
    for window in [1, 10, 19, 20] {
        let consensus = format!("window = {window}");
        let g = Genesis::from_toml(&genesis_toml(TOP, Some(&consensus), &accounts)).unwrap();
        assert_eq!(g.consensus.window, window);
    }
    assert_invalid(
        &genesis_toml(TOP, Some("checkpoint_interval = 1\nwindow = 3"), &accounts),
        "consensus.window 3 must be at most twice consensus.checkpoint_interval 1",
    );
    assert!(Genesis::from_toml(&genesis_toml(
        TOP,
        Some("checkpoint_interval = 1\nwindow = 2"),
        &accounts
    ))
    .is_ok());
    // A huge window against a huge interval: no overflow in `2 * checkpoint_interval`, and
    // a view change would then carry far too many blocks.
    let mut g = genesis(&[(1, 0, MIN_STAKE)]);
    let most = i64::MAX as u64;
    g.consensus.checkpoint_interval = most;
    g.epoch_length = most;
    g.consensus.window = most;
    assert!(
        matches!(g.validate(), Err(GenesisError::Invalid(m)) if m.contains("must fit in one message"))
    );
    g.consensus.checkpoint_interval = most / 4;
    g.epoch_length = most / 4;
    assert!(
        matches!(g.validate(), Err(GenesisError::Invalid(m)) if m.contains("must be at most twice"))
    );
}

/// Every block between the watermarks must fit in one view change: genesis bounds
/// `2 * checkpoint_interval * max_block_txs`.
#[test]
fn genesis_window_of_blocks_too_large_for_a_message_rejected() {
    let mut g = genesis(&[(1, 0, MIN_STAKE)]);
    g.consensus.checkpoint_interval = 10;
    g.epoch_length = 10;
    g.consensus.max_block_txs = 2_000;
    assert_eq!(g.validate(), Ok(()));
    g.consensus.max_block_txs = 2_001;
    assert!(
        matches!(g.validate(), Err(GenesisError::Invalid(m)) if m.contains("must fit in one message"))
    );
}

/// Other rule breaks: zero minimum stake, zero epoch length, window or checkpoint
/// interval, zero view timeout, an idle interval outside its bounds, a block size over the cap, a bad account name, and
/// integers TOML could not write back.
#[test]
fn genesis_other_rules_enforced() {
    let accounts = standard_accounts();
    let top = TOP.replace("min_stake = \"1000\"", "min_stake = \"0\"");
    assert_invalid(&genesis_toml(&top, None, &accounts), "min_stake");
    let top = TOP.replace("epoch_length = 20", "epoch_length = 0");
    assert_invalid(&genesis_toml(&top, None, &accounts), "epoch_length");
    assert_invalid(
        &genesis_toml(TOP, Some("window = 0"), &accounts),
        "consensus.window and consensus.checkpoint_interval must be above zero",
    );
    assert_invalid(
        &genesis_toml(TOP, Some("checkpoint_interval = 0"), &accounts),
        "consensus.checkpoint_interval must be above zero",
    );
    assert_invalid(
        &genesis_toml(TOP, Some("view_timeout_ms = 0"), &accounts),
        "view_timeout_ms",
    );
    // The idle interval lies between the block interval and half the view timeout.
    assert_invalid(
        &genesis_toml(TOP, Some("idle_block_interval_ms = 199"), &accounts),
        "idle_block_interval_ms 199 must be at least consensus.block_interval_ms 200",
    );
    assert_invalid(
        &genesis_toml(TOP, Some("idle_block_interval_ms = 1001"), &accounts),
        "at most half of consensus.view_timeout_ms 2000",
    );
    assert_invalid(
        &genesis_toml(TOP, Some("max_block_txs = 10001"), &accounts),
        "max_block_txs",
    );
    let bad_name = vec![account_toml(
        "al ice",
        &address(1).to_string(),
        "1",
        Some("1000"),
    )];
    assert_invalid(&genesis_toml(TOP, None, &bad_name), "account name");
    // A u64 above i64::MAX cannot be written as TOML, so validation refuses it rather
    // than letting `to_toml` fail later.
    let mut g = genesis(&[(1, 0, MIN_STAKE)]);
    g.genesis_time_ms = i64::MAX as u64;
    assert_eq!(Genesis::from_toml(&g.to_toml()), Ok(g.clone()));
    g.genesis_time_ms = u64::MAX;
    assert!(matches!(g.validate(), Err(GenesisError::Invalid(m)) if m.contains("genesis_time_ms")));
    let mut g = genesis(&[(1, 0, MIN_STAKE)]);
    g.consensus.checkpoint_interval = i64::MAX as u64 + 1;
    assert!(
        matches!(g.validate(), Err(GenesisError::Invalid(m)) if m.contains("checkpoint_interval"))
    );
}

/// Chain ids must be 1 to 64 letters, digits, `-`, `_` or `.`.
#[test]
fn genesis_chain_id_rules() {
    let accounts = standard_accounts();
    let with_id = |id: &str| {
        let top = TOP.replace("almagill-test", id);
        genesis_toml(&top, None, &accounts)
    };
    for bad in [
        "",
        "my chain",
        "chain!",
        "chaîne",
        "a/b",
        "x\\ty",
        &"a".repeat(65),
    ] {
        assert_invalid(&with_id(bad), "chain_id");
    }
    for good in ["a", "Main-net_2.0", &"z".repeat(64)] {
        assert_eq!(
            Genesis::from_toml(&with_id(good)).map(|g| g.chain_id),
            Ok(good.to_string())
        );
    }
}

// ---------------------------------------------------------------------------------------
// Node configuration
// ---------------------------------------------------------------------------------------

/// A node configuration with the given extra top-level lines and peers.
fn node_toml(extra: &str, peers: &[(&str, String, &str)]) -> String {
    let mut text = format!(
        "name = \"node0\"\nkey_file = \"keys/node0.key\"\ngenesis = \"../genesis.toml\"\n\
         listen = \"127.0.0.1:7000\"\ndata_dir = \"data/node0\"\n\
         wallets = [\"keys/alice.key\", \"/abs/bob.key\"]\n{extra}\n"
    );
    for (name, address_hex, endpoint) in peers {
        text.push_str(&format!(
            "\n[[peers]]\nname = \"{name}\"\naddress = \"{address_hex}\"\nendpoint = \"{endpoint}\"\n"
        ));
    }
    text
}

/// Two valid peers.
fn two_peers() -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("node1", address(2).to_string(), "127.0.0.1:7001"),
        ("node2", address(3).to_string(), "10.0.0.3:7002"),
    ]
}

/// The base directory the tests resolve against.
fn base() -> PathBuf {
    PathBuf::from("/net/testnet")
}

/// Relative paths resolve against the configuration file's directory; absolute ones are
/// kept as they are. Peers are parsed to addresses and socket addresses.
#[test]
fn node_config_resolves_relative_paths() {
    let config = NodeConfig::from_toml(&node_toml("", &two_peers()), &base()).expect("valid");
    assert_eq!(config.name, "node0");
    assert_eq!(config.key_file, Path::new("/net/testnet/keys/node0.key"));
    assert_eq!(config.genesis, Path::new("/net/testnet/../genesis.toml"));
    assert_eq!(config.data_dir, Path::new("/net/testnet/data/node0"));
    assert_eq!(
        config.wallets,
        vec![
            PathBuf::from("/net/testnet/keys/alice.key"),
            PathBuf::from("/abs/bob.key")
        ]
    );
    assert_eq!(
        config.listen,
        "127.0.0.1:7000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.peers.len(), 2);
    assert_eq!(config.peers[0].address, address(2));
    assert_eq!(
        config.peers[1].endpoint,
        "10.0.0.3:7002".parse::<SocketAddr>().unwrap()
    );
    let elsewhere = NodeConfig::from_toml(&node_toml("", &[]), Path::new("rel")).unwrap();
    assert_eq!(elsewhere.key_file, Path::new("rel/keys/node0.key"));
}

/// With no `admin`, the admin port is 127.0.0.1 on the peer port plus 100, even when the
/// node listens on another interface.
#[test]
fn node_config_admin_defaults_to_listen_port_plus_100() {
    let config = NodeConfig::from_toml(&node_toml("", &[]), &base()).unwrap();
    assert_eq!(
        config.admin,
        "127.0.0.1:7100".parse::<SocketAddr>().unwrap()
    );
    let text = node_toml("", &[]).replace("127.0.0.1:7000", "0.0.0.0:9000");
    let config = NodeConfig::from_toml(&text, &base()).unwrap();
    assert_eq!(
        config.admin,
        "127.0.0.1:9100".parse::<SocketAddr>().unwrap()
    );
}

/// A bare admin port means 127.0.0.1 on that port; a full `ip:port` is taken as given.
#[test]
fn node_config_admin_port_or_address() {
    let config = NodeConfig::from_toml(&node_toml("admin = \"8123\"", &[]), &base()).unwrap();
    assert_eq!(
        config.admin,
        "127.0.0.1:8123".parse::<SocketAddr>().unwrap()
    );
    let text = node_toml("admin = \"0.0.0.0:8124\"", &[]);
    let config = NodeConfig::from_toml(&text, &base()).unwrap();
    assert_eq!(config.admin, "0.0.0.0:8124".parse::<SocketAddr>().unwrap());
    for bad in ["localhost:8000", "99999", "127.0.0.1", ""] {
        let text = node_toml(&format!("admin = \"{bad}\""), &[]);
        assert!(
            matches!(NodeConfig::from_toml(&text, &base()), Err(ConfigError::Invalid(m)) if m.contains("admin")),
            "admin `{bad}` accepted"
        );
    }
    // The admin port may not be the peer port.
    let text = node_toml("admin = \"7000\"", &[]);
    assert!(matches!(
        NodeConfig::from_toml(&text, &base()),
        Err(ConfigError::Invalid(_))
    ));
}

/// Fields the format does not define are refused, at the top level and in a peer.
#[test]
fn node_config_unknown_fields_rejected() {
    let text = node_toml("threads = 4", &[]);
    assert!(
        matches!(NodeConfig::from_toml(&text, &base()), Err(ConfigError::Parse(m)) if m.contains("threads"))
    );
    let text = format!("{}colour = \"red\"\n", node_toml("", &two_peers()));
    assert!(
        matches!(NodeConfig::from_toml(&text, &base()), Err(ConfigError::Parse(m)) if m.contains("colour"))
    );
}

/// An endpoint or listen address that is not `ip:port` is refused, naming the field.
#[test]
fn node_config_bad_endpoint_rejected() {
    for bad in ["node1:7001", "127.0.0.1", "127.0.0.1:70000", ""] {
        let peers = vec![("node1", address(2).to_string(), bad)];
        let result = NodeConfig::from_toml(&node_toml("", &peers), &base());
        assert!(
            matches!(&result, Err(ConfigError::Invalid(m)) if m.contains("`node1` endpoint")),
            "endpoint `{bad}`: {result:?}"
        );
    }
    let text = node_toml("", &[]).replace("127.0.0.1:7000", "localhost:7000");
    assert!(
        matches!(NodeConfig::from_toml(&text, &base()), Err(ConfigError::Invalid(m)) if m.contains("listen"))
    );
    let peers = vec![("node1", "nothex".to_string(), "127.0.0.1:7001")];
    assert!(matches!(
        NodeConfig::from_toml(&node_toml("", &peers), &base()),
        Err(ConfigError::Invalid(m)) if m.contains("`node1` address")
    ));
}

/// The same peer key listed twice is refused, even under different names and endpoints.
#[test]
fn node_config_duplicate_peer_rejected() {
    let peers = vec![
        ("node1", address(2).to_string(), "127.0.0.1:7001"),
        ("again", address(2).to_string(), "127.0.0.1:7005"),
    ];
    assert!(matches!(
        NodeConfig::from_toml(&node_toml("", &peers), &base()),
        Err(ConfigError::Invalid(m)) if m.contains("twice")
    ));
}

/// A `NodeConfigFile` written with `to_toml` reads back to the same configuration.
#[test]
fn node_config_file_round_trip() {
    let file = NodeConfigFile {
        name: "node3".into(),
        key_file: "node3.key".into(),
        genesis: "genesis.toml".into(),
        listen: "127.0.0.1:7003".into(),
        admin: Some("7203".into()),
        metrics: Some("127.0.0.1:7303".into()),
        data_dir: "data".into(),
        wallets: vec!["alice.key".into()],
        admin_idle_timeout_s: Some(30),
        admin_token_file: Some("token".into()),
        peers: vec![PeerConfig {
            name: "node0".into(),
            address: address(1).to_string(),
            endpoint: "127.0.0.1:7000".into(),
        }],
    };
    let config = NodeConfig::from_toml(&file.to_toml(), Path::new("/n")).unwrap();
    assert_eq!(
        config.admin,
        "127.0.0.1:7203".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.key_file, Path::new("/n/node3.key"));
    assert_eq!(config.wallets, vec![PathBuf::from("/n/alice.key")]);
    assert_eq!(config.admin_idle_timeout, Duration::from_secs(30));
    assert_eq!(config.admin_token_file, Some(PathBuf::from("/n/token")));
    assert_eq!(config.peers[0].address, address(1));
    assert_eq!(config.metrics, "127.0.0.1:7303".parse().ok());
    let without_admin = NodeConfigFile {
        admin: None,
        metrics: None,
        admin_idle_timeout_s: None,
        admin_token_file: None,
        ..file
    };
    assert!(!without_admin.to_toml().contains("admin"));
    let read = NodeConfig::from_toml(&without_admin.to_toml(), Path::new("/n")).unwrap();
    assert_eq!(read.metrics, None, "no metrics address: no metrics");
    let clash = NodeConfigFile {
        metrics: Some("127.0.0.1:7003".into()),
        ..without_admin
    };
    assert!(matches!(
        NodeConfig::from_toml(&clash.to_toml(), Path::new("/n")),
        Err(ConfigError::Invalid(m)) if m.contains("metrics")
    ));
}

/// The admin settings: the idle timeout defaults to the spec's 300 s and must be between
/// 1 s and a day; the token file is optional, resolved like every path, and not empty.
#[test]
fn node_config_admin_settings() {
    let config = NodeConfig::from_toml(&node_toml("", &[]), &base()).unwrap();
    assert_eq!(config.admin_idle_timeout, Duration::from_secs(300));
    assert_eq!(config.admin_token_file, None);
    let text = node_toml(
        "admin_idle_timeout_s = 5\nadmin_token_file = \"secret/admin.token\"",
        &[],
    );
    let config = NodeConfig::from_toml(&text, &base()).unwrap();
    assert_eq!(config.admin_idle_timeout, Duration::from_secs(5));
    assert_eq!(
        config.admin_token_file,
        Some(PathBuf::from("/net/testnet/secret/admin.token"))
    );
    let day = node_toml("admin_idle_timeout_s = 86400", &[]);
    assert!(NodeConfig::from_toml(&day, &base()).is_ok());
    for bad in ["0", "86401", "9223372036854775807"] {
        let text = node_toml(&format!("admin_idle_timeout_s = {bad}"), &[]);
        assert!(
            matches!(NodeConfig::from_toml(&text, &base()), Err(ConfigError::Invalid(m)) if m.contains("admin_idle_timeout_s")),
            "admin_idle_timeout_s = {bad} accepted"
        );
    }
    for bad in ["-1", "\"300\"", "1.5"] {
        let text = node_toml(&format!("admin_idle_timeout_s = {bad}"), &[]);
        assert!(
            matches!(
                NodeConfig::from_toml(&text, &base()),
                Err(ConfigError::Parse(_))
            ),
            "admin_idle_timeout_s = {bad} accepted"
        );
    }
    let text = node_toml("admin_token_file = \"\"", &[]);
    assert!(
        matches!(NodeConfig::from_toml(&text, &base()), Err(ConfigError::Invalid(m)) if m.contains("admin_token_file"))
    );
}

// ---------------------------------------------------------------------------------------
// Amounts
// ---------------------------------------------------------------------------------------

/// Amounts in AGL (any case of the suffix) and in base units parse exactly.
#[test]
fn amounts_parse_exactly() {
    assert_eq!(parse_amount("2.5agl"), Ok(25 * 10u128.pow(17)));
    assert_eq!(parse_amount("1AGL"), Ok(AGL));
    assert_eq!(parse_amount("1Agl"), Ok(AGL));
    assert_eq!(parse_amount("0.000000000000000001agl"), Ok(1));
    assert_eq!(parse_amount("1.000000000000000000000agl"), Ok(AGL));
    assert_eq!(parse_amount("1.agl"), Ok(AGL));
    assert_eq!(parse_amount(".5agl"), Ok(AGL / 2));
    assert_eq!(parse_amount("0"), Ok(0));
    assert_eq!(parse_amount("1500"), Ok(1500));
    assert_eq!(parse_amount("007"), Ok(7));
    assert_eq!(parse_amount(&u128::MAX.to_string()), Ok(u128::MAX));
}

/// More than 18 significant decimals of AGL is not a whole number of base units.
#[test]
fn amounts_inexact_rejected() {
    let text = "1.0000000000000000001agl";
    assert_eq!(parse_amount(text), Err(AmountError::Inexact(text.into())));
    assert!(matches!(
        parse_amount("0.0000000000000000005AGL"),
        Err(AmountError::Inexact(_))
    ));
}

/// Anything that is not a plain decimal count (or a decimal of AGL) is malformed.
#[test]
fn amounts_malformed_rejected() {
    for bad in [
        "1.5", "-1", "", "agl", ".agl", "1..5agl", "1.5.agl", "+1", " 1", "1 ", "1e3", "0x10",
        "1,000", "one", "1 agl", "1.-5agl", "-1agl", "1aglagl",
    ] {
        assert_eq!(
            parse_amount(bad),
            Err(AmountError::Malformed(bad.into())),
            "`{bad}`"
        );
    }
}

/// Amounts too large for 128 bits overflow, in base units or in AGL.
#[test]
fn amounts_overflow_rejected() {
    let over = "340282366920938463463374607431768211456"; // u128::MAX + 1
    assert_eq!(parse_amount(over), Err(AmountError::Overflow(over.into())));
    assert!(matches!(
        parse_amount(&"9".repeat(60)),
        Err(AmountError::Overflow(_))
    ));
    // The largest whole AGL that fits, and one more.
    let whole = u128::MAX / AGL;
    assert_eq!(parse_amount(&format!("{whole}agl")), Ok(whole * AGL));
    assert!(matches!(
        parse_amount(&format!("{}agl", whole + 1)),
        Err(AmountError::Overflow(_))
    ));
}

/// `format_agl` writes the shortest exact form.
#[test]
fn amounts_format() {
    assert_eq!(format_agl(0), "0agl");
    assert_eq!(format_agl(1), "0.000000000000000001agl");
    assert_eq!(format_agl(25 * 10u128.pow(17)), "2.5agl");
    assert_eq!(format_agl(1000 * AGL), "1000agl");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Every u128 reads back from `format_agl` and from its plain decimal form.
    #[test]
    fn amounts_round_trip(x in any::<u128>()) {
        prop_assert_eq!(parse_amount(&format_agl(x)), Ok(x));
        prop_assert_eq!(parse_amount(&format_agl(x).to_uppercase()), Ok(x));
        prop_assert_eq!(parse_amount(&x.to_string()), Ok(x));
    }

    /// Every whole number of AGL up to the largest that fits reads back exactly.
    #[test]
    fn amounts_whole_agl_round_trip(whole in 0..=u128::MAX / AGL) {
        prop_assert_eq!(parse_amount(&format!("{whole}agl")), Ok(whole * AGL));
    }

    /// Parsing never panics, whatever the text.
    #[test]
    fn amounts_parse_never_panics(text in "[0-9a-zA-Z.+-]{0,48}") {
        let _ = parse_amount(&text);
    }
}
