//! Request lines in, typed commands out: the parser and what it parses into.

use almagill::amount::{parse_amount, Amount, AmountError};
use almagill::crypto::{Address, Hash};
use almagill::encoding;
use almagill::genesis::Genesis;
use almagill::tx::Transaction;

use super::errors::{too_long, AdminError};

/// The longest request line, in bytes, not counting its `\n` (a `\r` before it counts).
/// A longer line is answered `ERR too_long` and the connection is closed: it bounds what one
/// client can make the node buffer. The server enforces this while reading;
/// [`parse_line`] also refuses such a line, so the rule holds whoever calls it.
pub const MAX_LINE: usize = 64 * 1024;

/// How long `WAIT <hash>` waits when no `ms` is given, as the spec says.
pub const DEFAULT_WAIT_MS: u64 = 10_000;

/// The longest `WAIT` a client can ask for (10 minutes); larger values are clamped to it, so
/// no request can hold a connection's answer, and the waiter behind it, indefinitely.
pub const MAX_WAIT_MS: u64 = 600_000;

/// The most characters of a client's own text quoted back in an error message: enough to
/// recognise the mistake, without echoing a 64 KiB argument.
const MAX_ECHO_CHARS: usize = 64;

/// Every command: its name as written in the spec, and its usage, which `HELP` lists and a
/// wrong number of arguments quotes. The parser matches these names, so `HELP` can never
/// miss one.
pub const COMMANDS: &[(&str, &str)] = &[
    ("HELP", "HELP"),
    ("PING", "PING"),
    ("STATUS", "STATUS"),
    ("BALANCE", "BALANCE <addr>"),
    ("SUBMIT", "SUBMIT <hex>"),
    ("SEND", "SEND <from> <to> <amount>"),
    ("CREATE", "CREATE <from> <new_addr> <amount>"),
    ("STAKE", "STAKE <from> <amount>"),
    ("UNSTAKE", "UNSTAKE <from> <amount>"),
    ("TX", "TX <hash>"),
    ("WAIT", "WAIT <hash> [ms]"),
    ("BLOCK", "BLOCK <height|latest>"),
    ("VALIDATORS", "VALIDATORS"),
    ("PEERS", "PEERS"),
    ("SUPPLY", "SUPPLY"),
    ("QUIT", "QUIT"),
    ("AUTH", "AUTH <token>"),
];

/// Which block `BLOCK` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockRef {
    /// `BLOCK latest`: the last committed block.
    Latest,
    /// `BLOCK <n>`: the committed block at height `n`.
    Height(u64),
}

/// One parsed request, with its arguments already checked and typed, so the server only
/// has to carry it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `HELP`: list the commands.
    Help,
    /// `PING`: is the node answering?
    Ping,
    /// `STATUS`: the node's view of the chain.
    Status,
    /// `BALANCE <addr>`: an account in committed state.
    Balance {
        /// The account asked about.
        address: Address,
    },
    /// `SUBMIT <hex>`: admit a transaction someone else signed. Only its encoding is
    /// checked here; the mempool checks its signature and everything else.
    Submit {
        /// The decoded transaction.
        tx: Transaction,
    },
    /// `SEND <from> <to> <amount>`: the node signs a transfer for a key it holds.
    Send {
        /// The paying account, whose key the node must hold.
        from: Address,
        /// The existing recipient.
        to: Address,
        /// Base units moved.
        amount: Amount,
    },
    /// `CREATE <from> <new_addr> <amount>`: the node signs an account creation.
    Create {
        /// The funding account, whose key the node must hold.
        from: Address,
        /// The account to create.
        new_account: Address,
        /// Its opening balance.
        amount: Amount,
    },
    /// `STAKE <from> <amount>`: move balance to stake.
    Stake {
        /// The staking account, whose key the node must hold.
        from: Address,
        /// Base units staked.
        amount: Amount,
    },
    /// `UNSTAKE <from> <amount>`: move stake back to balance.
    Unstake {
        /// The unstaking account, whose key the node must hold.
        from: Address,
        /// Base units unstaked.
        amount: Amount,
    },
    /// `TX <hash>`: where a transaction is now.
    Tx {
        /// The transaction asked about.
        hash: Hash,
    },
    /// `WAIT <hash> [ms]`: like `TX`, answered once the transaction is decided or `ms` ends.
    Wait {
        /// The transaction waited on.
        hash: Hash,
        /// How long to wait: [`DEFAULT_WAIT_MS`] if not given, at most [`MAX_WAIT_MS`].
        timeout_ms: u64,
    },
    /// `BLOCK <height|latest>`: one committed block.
    Block {
        /// Which block.
        at: BlockRef,
    },
    /// `VALIDATORS`: the set for the next block.
    Validators,
    /// `PEERS`: the node's peers and whether each is connected.
    Peers,
    /// `SUPPLY`: the total in committed state against the genesis total.
    Supply,
    /// `QUIT`: answer, then close the connection.
    Quit,
    /// `AUTH <token>`: unlock the signing commands on this connection, when the node's
    /// config names an `admin_token_file`.
    Auth {
        /// The token offered, compared with the file's in constant time by the server.
        token: String,
    },
}

/// Parses one request line: its raw bytes without the trailing `\n` (a trailing `\r` is
/// dropped here). `None` means the line is blank (empty, or only ASCII spaces and tabs),
/// which gets no response; any other line gets the command, or the error to answer with.
pub fn parse_line(line: &[u8], genesis: &Genesis) -> Option<Result<Command, AdminError>> {
    if line.len() > MAX_LINE {
        return Some(Err(too_long()));
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(text) = std::str::from_utf8(line) else {
        return Some(Err(AdminError::bad_request(
            "the request is not UTF-8 text",
        )));
    };
    if is_blank(text) {
        return None;
    }
    Some(parse_words(text, genesis))
}

/// Whether a line gets no response: empty, or only ASCII spaces and tabs, exactly as the
/// spec says. (`str::trim` would also drop Unicode whitespace, leaving such a line without
/// an answer.)
fn is_blank(text: &str) -> bool {
    text.bytes().all(|b| b == b' ' || b == b'\t')
}

/// Parses a line that is not blank into a command.
fn parse_words(text: &str, genesis: &Genesis) -> Result<Command, AdminError> {
    let mut words = text.split_ascii_whitespace();
    // Only ASCII whitespace other than space and tab (a form feed, a lone `\r`): no word.
    let Some(word) = words.next() else {
        return Err(AdminError::unknown_command(
            "the line holds no command; HELP lists them",
        ));
    };
    let args: Vec<&str> = words.collect();
    let Some(&(name, usage)) = COMMANDS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
    else {
        return Err(AdminError::unknown_command(format!(
            "{} is not a command; HELP lists them",
            quote(word)
        )));
    };
    let address = |text: &str| parse_address(text, genesis);
    let command = match (name, args.as_slice()) {
        ("HELP", []) => Command::Help,
        ("PING", []) => Command::Ping,
        ("STATUS", []) => Command::Status,
        ("BALANCE", [a]) => Command::Balance {
            address: address(a)?,
        },
        ("SUBMIT", [hex]) => Command::Submit {
            tx: parse_transaction(hex)?,
        },
        ("SEND", [from, to, amount]) => Command::Send {
            from: address(from)?,
            to: address(to)?,
            amount: parse_amount_arg(amount)?,
        },
        ("CREATE", [from, new_account, amount]) => Command::Create {
            from: address(from)?,
            new_account: address(new_account)?,
            amount: parse_amount_arg(amount)?,
        },
        ("STAKE", [from, amount]) => Command::Stake {
            from: address(from)?,
            amount: parse_amount_arg(amount)?,
        },
        ("UNSTAKE", [from, amount]) => Command::Unstake {
            from: address(from)?,
            amount: parse_amount_arg(amount)?,
        },
        ("TX", [hash]) => Command::Tx {
            hash: parse_hash(hash)?,
        },
        ("WAIT", [hash]) => Command::Wait {
            hash: parse_hash(hash)?,
            timeout_ms: DEFAULT_WAIT_MS,
        },
        ("WAIT", [hash, ms]) => Command::Wait {
            hash: parse_hash(hash)?,
            timeout_ms: parse_wait_ms(ms)?,
        },
        ("BLOCK", [at]) => Command::Block {
            at: parse_block_ref(at)?,
        },
        ("VALIDATORS", []) => Command::Validators,
        ("PEERS", []) => Command::Peers,
        ("SUPPLY", []) => Command::Supply,
        ("QUIT", []) => Command::Quit,
        ("AUTH", [token]) => Command::Auth {
            token: token.to_string(),
        },
        _ => {
            return Err(AdminError::bad_request(format!(
                "wrong number of arguments; usage: {usage}"
            )))
        }
    };
    Ok(command)
}

/// 64 hex characters (any case) or a genesis account name.
fn parse_address(text: &str, genesis: &Genesis) -> Result<Address, AdminError> {
    genesis.resolve_address(text).ok_or_else(|| {
        AdminError::bad_address(format!(
            "{} is not an address (64 hex characters) or a genesis account name",
            quote(text)
        ))
    })
}

/// Base units (`1500`) or AGL (`2.5agl`), exactly.
fn parse_amount_arg(text: &str) -> Result<Amount, AdminError> {
    parse_amount(text).map_err(|e| {
        let text = quote(text);
        AdminError::bad_amount(match e {
            AmountError::Malformed(_) => {
                format!("{text} is not an amount (base units like 1500, or AGL like 2.5agl)")
            }
            AmountError::Inexact(_) => {
                format!("{text} is not a whole number of base units (at most 18 decimals of agl)")
            }
            AmountError::Overflow(_) => format!("{text} is too large"),
        })
    })
}

/// A transaction hash: 64 hex characters (any case).
fn parse_hash(text: &str) -> Result<Hash, AdminError> {
    Hash::from_hex(text).map_err(|e| {
        AdminError::bad_request(format!(
            "{} is not a transaction hash (64 hex characters): {e}",
            quote(text)
        ))
    })
}

/// `latest` (exactly: arguments are case-sensitive) or a decimal height.
fn parse_block_ref(text: &str) -> Result<BlockRef, AdminError> {
    if text == "latest" {
        return Ok(BlockRef::Latest);
    }
    parse_decimal(text).map(BlockRef::Height).ok_or_else(|| {
        AdminError::bad_request(format!(
            "{} is not a block height (a number, or `latest`)",
            quote(text)
        ))
    })
}

/// Milliseconds to wait: a decimal number, clamped to [`MAX_WAIT_MS`] (even one too large
/// for 64 bits).
fn parse_wait_ms(text: &str) -> Result<u64, AdminError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AdminError::bad_request(format!(
            "{} is not a number of milliseconds",
            quote(text)
        )));
    }
    Ok(parse_decimal(text).map_or(MAX_WAIT_MS, |ms| ms.min(MAX_WAIT_MS)))
}

/// Plain decimal digits only (no sign, no spaces) as a u64; `None` if not, or too large.
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The hex of one transaction in the canonical encoding, as `almagill tx ...` prints it.
fn parse_transaction(text: &str) -> Result<Transaction, AdminError> {
    let bytes = hex::decode(text).map_err(|e| {
        AdminError::bad_request(format!(
            "SUBMIT takes the hex of one signed transaction: {e}"
        ))
    })?;
    encoding::decode::<Transaction>(&bytes).map_err(|e| {
        AdminError::bad_request(format!(
            "the hex is not a transaction in the canonical encoding: {e}"
        ))
    })
}

/// A client's text quoted for an error message, shortened to [`MAX_ECHO_CHARS`].
fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("`{}...`", &text[..cut]),
        None => format!("`{text}`"),
    }
}

#[cfg(test)]
mod tests {
    use almagill::amount::AGL;
    use proptest::prelude::*;

    use super::super::fixtures::*;
    use super::super::{err_line, ERROR_CODES};
    use super::*;

    fn parse(line: &str) -> Option<Result<Command, AdminError>> {
        parse_line(line.as_bytes(), &genesis())
    }

    fn ok(line: &str) -> Command {
        match parse(line) {
            Some(Ok(command)) => command,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    fn err(line: &str) -> AdminError {
        match parse(line) {
            Some(Err(e)) => e,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    fn hex64(address: Address) -> String {
        address.to_string()
    }

    #[test]
    fn argumentless_commands_parse() {
        for (line, command) in [
            ("HELP", Command::Help),
            ("PING", Command::Ping),
            ("STATUS", Command::Status),
            ("VALIDATORS", Command::Validators),
            ("PEERS", Command::Peers),
            ("SUPPLY", Command::Supply),
            ("QUIT", Command::Quit),
        ] {
            assert_eq!(ok(line), command, "{line}");
        }
    }

    #[test]
    fn auth_takes_one_case_sensitive_token() {
        assert_eq!(
            ok("auth S3cret-Token"),
            Command::Auth {
                token: "S3cret-Token".into()
            }
        );
        for line in ["AUTH", "AUTH a b"] {
            let e = err(line);
            assert_eq!(e.code, "bad_request", "{line}");
            assert!(e.message.contains("AUTH <token>"), "{line}: {}", e.message);
        }
    }

    #[test]
    fn command_names_are_case_insensitive() {
        assert_eq!(ok("ping"), Command::Ping);
        assert_eq!(ok("PiNg"), Command::Ping);
        assert_eq!(ok("status"), Command::Status);
        assert_eq!(ok("balance alice"), Command::Balance { address: ALICE });
        assert_eq!(
            ok(&format!("wAiT {HASH}")),
            Command::Wait {
                hash: HASH,
                timeout_ms: DEFAULT_WAIT_MS
            }
        );
    }

    #[test]
    fn arguments_are_case_sensitive() {
        // Account names are not folded: `ALICE` is not `alice`.
        assert_eq!(err("BALANCE ALICE").code, "bad_address");
        assert_eq!(err("BLOCK LATEST").code, "bad_request");
    }

    #[test]
    fn every_listed_command_parses() {
        let hash = HASH.to_string();
        let tx = hex::encode(encoding::encode(&signed_tx()));
        for (name, _) in COMMANDS {
            let args = match *name {
                "BALANCE" => "alice".to_string(),
                "SUBMIT" => tx.clone(),
                "SEND" | "CREATE" => "alice bob 1".to_string(),
                "STAKE" | "UNSTAKE" => "alice 1".to_string(),
                "TX" | "WAIT" => hash.clone(),
                "BLOCK" => "latest".to_string(),
                "AUTH" => "token".to_string(),
                _ => String::new(),
            };
            let line = format!("{name} {args}");
            assert!(matches!(parse(&line), Some(Ok(_))), "{line}");
        }
    }

    #[test]
    fn balance_takes_names_and_hex() {
        assert_eq!(ok("BALANCE alice"), Command::Balance { address: ALICE });
        assert_eq!(
            ok(&format!("BALANCE {}", hex64(BOB))),
            Command::Balance { address: BOB }
        );
        // Any case of hex is accepted; it is printed back in lowercase.
        let upper = hex64(BOB).to_uppercase();
        assert_eq!(
            ok(&format!("BALANCE {upper}")),
            Command::Balance { address: BOB }
        );
        // An address that is in no genesis is still an address (it may be created later).
        let stranger = Address([0x5e; 32]);
        assert_eq!(
            ok(&format!("BALANCE {stranger}")),
            Command::Balance { address: stranger }
        );
    }

    #[test]
    fn transaction_commands_parse() {
        assert_eq!(
            ok("SEND alice bob 2.5agl"),
            Command::Send {
                from: ALICE,
                to: BOB,
                amount: 5 * AGL / 2
            }
        );
        assert_eq!(
            ok(&format!("SEND {} {} 1500", hex64(ALICE), hex64(BOB))),
            Command::Send {
                from: ALICE,
                to: BOB,
                amount: 1500
            }
        );
        let new = Address([0x42; 32]);
        assert_eq!(
            ok(&format!("CREATE alice {new} 10AGL")),
            Command::Create {
                from: ALICE,
                new_account: new,
                amount: 10 * AGL
            }
        );
        assert_eq!(
            ok("STAKE node0 100agl"),
            Command::Stake {
                from: NODE0,
                amount: 100 * AGL
            }
        );
        assert_eq!(
            ok("UNSTAKE node0 0.000000000000000001agl"),
            Command::Unstake {
                from: NODE0,
                amount: 1
            }
        );
    }

    #[test]
    fn submit_decodes_a_transaction() {
        let tx = signed_tx();
        let hex = hex::encode(encoding::encode(&tx));
        assert_eq!(
            ok(&format!("SUBMIT {hex}")),
            Command::Submit { tx: tx.clone() }
        );
        assert_eq!(
            ok(&format!("submit {}", hex.to_uppercase())),
            Command::Submit { tx }
        );
    }

    #[test]
    fn submit_refuses_what_is_not_a_transaction() {
        assert_eq!(err("SUBMIT xyz").code, "bad_request");
        assert_eq!(err("SUBMIT abc").code, "bad_request"); // odd length
        assert_eq!(err("SUBMIT 00").code, "bad_request"); // too short
        let mut bytes = encoding::encode(&signed_tx());
        bytes.push(0);
        let e = err(&format!("SUBMIT {}", hex::encode(&bytes)));
        assert_eq!(e.code, "bad_request");
        assert!(e.message.contains("trailing"), "{}", e.message);
    }

    #[test]
    fn tx_wait_and_block_parse() {
        assert_eq!(ok(&format!("TX {HASH}")), Command::Tx { hash: HASH });
        assert_eq!(
            ok(&format!("TX {}", HASH.to_string().to_uppercase())),
            Command::Tx { hash: HASH }
        );
        assert_eq!(
            ok(&format!("WAIT {HASH}")),
            Command::Wait {
                hash: HASH,
                timeout_ms: DEFAULT_WAIT_MS
            }
        );
        assert_eq!(
            ok(&format!("WAIT {HASH} 250")),
            Command::Wait {
                hash: HASH,
                timeout_ms: 250
            }
        );
        assert_eq!(
            ok(&format!("WAIT {HASH} 0")),
            Command::Wait {
                hash: HASH,
                timeout_ms: 0
            }
        );
        // Over the cap, even over u64: clamped, not refused.
        for big in ["600001", "18446744073709551615", "99999999999999999999999"] {
            assert_eq!(
                ok(&format!("WAIT {HASH} {big}")),
                Command::Wait {
                    hash: HASH,
                    timeout_ms: MAX_WAIT_MS
                }
            );
        }
        for bad in ["-1", "+5", "1.5", "10s", "ten"] {
            assert_eq!(
                err(&format!("WAIT {HASH} {bad}")).code,
                "bad_request",
                "{bad}"
            );
        }
        assert_eq!(
            ok("BLOCK latest"),
            Command::Block {
                at: BlockRef::Latest
            }
        );
        assert_eq!(
            ok("block 0"),
            Command::Block {
                at: BlockRef::Height(0)
            }
        );
        assert_eq!(
            ok("BLOCK 42"),
            Command::Block {
                at: BlockRef::Height(42)
            }
        );
        assert_eq!(
            ok("BLOCK 18446744073709551615"),
            Command::Block {
                at: BlockRef::Height(u64::MAX)
            }
        );
        for bad in ["-1", "+1", "18446744073709551616", "x", "1e3"] {
            assert_eq!(err(&format!("BLOCK {bad}")).code, "bad_request", "{bad}");
        }
    }

    #[test]
    fn crlf_and_extra_whitespace_are_accepted() {
        assert_eq!(ok("PING\r"), Command::Ping);
        assert_eq!(
            ok("  SEND   alice \t bob    2.5agl  \r"),
            Command::Send {
                from: ALICE,
                to: BOB,
                amount: 5 * AGL / 2
            }
        );
        assert_eq!(ok("BALANCE alice\r"), Command::Balance { address: ALICE });
    }

    #[test]
    fn empty_lines_get_no_response() {
        for line in ["", "\r", "   ", " \t \r", "\t\t"] {
            assert_eq!(parse(line), None, "{line:?}");
        }
    }

    #[test]
    fn unicode_and_other_whitespace_lines_get_one_answer() {
        for line in [
            "\u{a0}", "\u{2028}", "\u{2029}", "\u{3000}", "\u{feff}", "\u{85}", "\x0b", "\x0c",
            " \x0c\t", "\r\r", " \u{a0} ",
        ] {
            let e = err(line);
            assert_eq!(e.code, "unknown_command", "{line:?}");
            assert_eq!(err_line(&e).matches('\n').count(), 1, "{line:?}");
        }
        // Unicode whitespace is not a word separator either: it is part of a word.
        assert_eq!(err("PING\u{a0}").code, "unknown_command");
    }

    #[test]
    fn wrong_arity_is_bad_request_with_usage() {
        for (line, usage) in [
            ("PING now", "PING"),
            ("BALANCE", "BALANCE <addr>"),
            ("BALANCE alice bob", "BALANCE <addr>"),
            ("SEND alice bob", "SEND <from> <to> <amount>"),
            ("SEND alice bob 1 2", "SEND <from> <to> <amount>"),
            ("CREATE alice", "CREATE <from> <new_addr> <amount>"),
            ("STAKE alice", "STAKE <from> <amount>"),
            ("UNSTAKE", "UNSTAKE <from> <amount>"),
            ("TX", "TX <hash>"),
            ("WAIT", "WAIT <hash> [ms]"),
            ("WAIT a b c", "WAIT <hash> [ms]"),
            ("BLOCK", "BLOCK <height|latest>"),
            ("SUBMIT", "SUBMIT <hex>"),
            ("quit now", "QUIT"),
        ] {
            let e = err(line);
            assert_eq!(e.code, "bad_request", "{line}");
            assert!(e.message.contains(usage), "{line}: {}", e.message);
        }
    }

    #[test]
    fn unknown_commands() {
        for line in ["FOO", "PINGS", "pong", "BALANCEalice", "\u{1f600}", "ÿ"] {
            let e = err(line);
            assert_eq!(e.code, "unknown_command", "{line}");
        }
    }

    #[test]
    fn bad_addresses() {
        for arg in [
            "carol",
            "Alice",
            "",
            &hex64(ALICE)[..63],
            &format!("{}0", hex64(ALICE)),
            &format!("g{}", &hex64(ALICE)[1..]),
        ] {
            if arg.is_empty() {
                continue;
            }
            assert_eq!(err(&format!("BALANCE {arg}")).code, "bad_address", "{arg}");
            assert_eq!(
                err(&format!("SEND alice {arg} 1")).code,
                "bad_address",
                "{arg}"
            );
        }
    }

    #[test]
    fn bad_amounts() {
        for arg in [
            "x",
            "1.5",
            "-1",
            "agl",
            "1.0000000000000000001agl",
            "340282366920938463463374607431768211456",
            "1e18",
        ] {
            assert_eq!(
                err(&format!("SEND alice bob {arg}")).code,
                "bad_amount",
                "{arg}"
            );
            assert_eq!(err(&format!("STAKE alice {arg}")).code, "bad_amount");
        }
    }

    #[test]
    fn bad_hashes() {
        for arg in ["abc", "zz", &format!("{HASH}00"), &HASH.to_string()[1..]] {
            assert_eq!(err(&format!("TX {arg}")).code, "bad_request", "{arg}");
            assert_eq!(err(&format!("WAIT {arg} 5")).code, "bad_request", "{arg}");
        }
    }

    #[test]
    fn non_utf8_is_bad_request() {
        for bytes in [&b"\xff"[..], b"PING \xc3", b"BALANCE \xfe\xfe\r", b"\x80"] {
            let e = parse_line(bytes, &genesis()).unwrap().unwrap_err();
            assert_eq!(e.code, "bad_request");
        }
    }

    #[test]
    fn overlong_lines_are_too_long() {
        let line = vec![b' '; MAX_LINE + 1];
        let e = parse_line(&line, &genesis()).unwrap().unwrap_err();
        assert_eq!(e.code, "too_long");
        assert_eq!(too_long().code, "too_long");
        // Exactly MAX_LINE is still a line.
        let mut line = b"PING".to_vec();
        line.resize(MAX_LINE, b' ');
        assert_eq!(parse_line(&line, &genesis()), Some(Ok(Command::Ping)));
    }

    #[test]
    fn errors_echo_only_a_short_quote() {
        let long = "x".repeat(10_000);
        let e = err(&format!("BALANCE {long}"));
        assert!(e.message.len() < 200, "{}", e.message.len());
        let e = err(&long);
        assert!(e.message.len() < 200, "{}", e.message.len());
    }

    /// Words that make random lines reach deep into the parser.
    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(
                COMMANDS
                    .iter()
                    .map(|(n, _)| n.to_string())
                    .collect::<Vec<_>>()
            ),
            Just("alice".to_string()),
            Just("latest".to_string()),
            Just(HASH.to_string()),
            Just(hex::encode(encoding::encode(&signed_tx()))),
            "[0-9]{0,25}(agl|AGL)?",
            "[0-9a-fA-F]{0,70}",
            "\\PC{0,20}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn parse_line_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let answer = parse_line(&bytes, &genesis());
            if let Some(Err(e)) = answer {
                prop_assert!(ERROR_CODES.contains(&e.code));
                prop_assert_eq!(err_line(&e).matches('\n').count(), 1);
            }
        }

        #[test]
        fn structured_lines_never_panic(
            words in prop::collection::vec(word(), 0..6),
            separator in "[ \t]{1,3}",
            crlf in any::<bool>(),
        ) {
            let mut line = words.join(&separator);
            if crlf {
                line.push('\r');
            }
            match parse_line(line.as_bytes(), &genesis()) {
                None => prop_assert!(is_blank(line.strip_suffix('\r').unwrap_or(&line))),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    prop_assert!(ERROR_CODES.contains(&e.code));
                    let out = err_line(&e);
                    prop_assert!(out.ends_with('\n'));
                    prop_assert_eq!(out.matches('\n').count(), 1);
                    prop_assert!(!out.contains('\r'));
                }
            }
        }

        /// Exactly the blank lines go unanswered, whatever whitespace (ASCII, Unicode or
        /// control) the others are made of.
        #[test]
        fn only_blank_lines_go_unanswered(
            chars in prop::collection::vec(
                prop_oneof![
                    Just(' '), Just('\t'), Just('\r'), Just('\x0b'), Just('\x0c'),
                    Just('\u{85}'), Just('\u{a0}'), Just('\u{1680}'), Just('\u{2000}'),
                    Just('\u{200b}'), Just('\u{2028}'), Just('\u{2029}'), Just('\u{202f}'),
                    Just('\u{3000}'), Just('\u{feff}'), any::<char>(),
                ],
                0..12,
            ),
        ) {
            let line: String = chars.into_iter().collect();
            let body = line.strip_suffix('\r').unwrap_or(&line);
            let blank = body.chars().all(|c| c == ' ' || c == '\t');
            match parse_line(line.as_bytes(), &genesis()) {
                None => prop_assert!(blank, "{:?} went unanswered", line),
                Some(answer) => {
                    prop_assert!(!blank, "{:?} was answered", line);
                    if let Err(e) = answer {
                        prop_assert_eq!(err_line(&e).matches('\n').count(), 1);
                    }
                }
            }
        }
    }
}
