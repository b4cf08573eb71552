//! The account rules, replays and forged signatures, end to end through the admin port.

use almagill::amount::AGL;
use almagill::encoding;
use almagill::tx::Transaction;

use crate::harness::{almagill, amount_field, is_hex64, str_field, u64_field, Net};

const ALL: [usize; 4] = [0, 1, 2, 3];

/// Signs a transfer of `amount` from alice to bob with nonce `nonce` using
/// `almagill tx transfer`, and returns its hex.
fn alice_pays_bob(net: &Net, amount: &str, nonce: u64) -> String {
    let dir = net.dir();
    almagill(&[
        "tx",
        "transfer",
        "--key",
        dir.join("keys/alice.key").to_str().expect("utf-8 path"),
        "--to",
        "bob",
        "--amount",
        amount,
        "--nonce",
        &nonce.to_string(),
        "--genesis",
        dir.join("genesis.toml").to_str().expect("utf-8 path"),
    ])
}

/// A transfer to a missing account is `unknown_account`; `CREATE` makes the account (its
/// balance shows once committed, on every node) and a second `CREATE` of it is
/// `account_exists`; overspending is `insufficient_funds`; a signed transaction submitted
/// twice is refused while pending (`duplicate`) and after it committed (`duplicate` or
/// `bad_nonce`) and applies once; one flipped bit in a signature is `invalid_signature`.
#[test]
fn account_rules_end_to_end() {
    let net = Net::launch(4);
    net.wait_height(&ALL, 1);

    // A fresh address, in no genesis.
    let fresh = almagill(&["keygen"]);
    let fresh = fresh.lines().last().unwrap_or_default().to_string();
    assert!(is_hex64(&fresh), "keygen prints an address: {fresh}");
    assert_eq!(
        net.err(0, &format!("SEND alice {fresh} 1")),
        "unknown_account"
    );
    assert_eq!(net.err(0, &format!("BALANCE {fresh}")), "unknown_account");

    // CREATE funds it.
    let created = net.ok(1, &format!("CREATE alice {fresh} 5agl"));
    let hash = str_field(&created, "tx").to_string();
    let height = net.wait_committed(1, &hash);
    assert_eq!(net.committed_everywhere(&ALL, &hash), height);
    for i in ALL {
        let b = net.ok(i, &format!("BALANCE {fresh}"));
        assert_eq!(b["address"], fresh.as_str(), "{b}");
        assert_eq!(amount_field(&b, "balance"), 5 * AGL, "node{i}: {b}");
        assert_eq!(amount_field(&b, "stake"), 0, "{b}");
        assert_eq!(b["nonce"], 0, "{b}");
    }
    // Now a transfer to it is admitted, and a second CREATE is refused.
    assert_eq!(
        net.err(0, &format!("CREATE bob {fresh} 1")),
        "account_exists"
    );
    assert_eq!(
        net.err(2, &format!("CREATE alice {fresh} 1")),
        "account_exists"
    );
    // No node holds the new account's key.
    assert_eq!(net.err(3, &format!("SEND {fresh} bob 1")), "no_key");

    // Overspending.
    assert_eq!(
        net.err(2, "SEND bob alice 1000001agl"),
        "insufficient_funds"
    );
    assert_eq!(
        net.err(3, &format!("SEND alice bob {}", u128::MAX)),
        "insufficient_funds"
    );

    // A replayed signed transaction.
    let alice = net.ok(0, "BALANCE alice");
    let nonce = u64_field(&alice, "nonce");
    let bob_before = amount_field(&net.ok(0, "BALANCE bob"), "balance");
    let signed = alice_pays_bob(&net, "1", nonce);
    let submitted = net.ok(1, &format!("SUBMIT {signed}"));
    let replay_hash = str_field(&submitted, "tx").to_string();
    assert!(is_hex64(&replay_hash), "{submitted}");
    let again = net.err(1, &format!("SUBMIT {signed}"));
    if again != "duplicate" {
        // Only acceptable if the first copy had already committed in between.
        assert_eq!(again, "bad_nonce", "the second SUBMIT while pending");
        let tx = net.ok(1, &format!("TX {replay_hash}"));
        assert_eq!(
            tx["status"], "committed",
            "a pending duplicate must be refused as `duplicate`: {tx}"
        );
    }
    let height = net.wait_committed(1, &replay_hash);
    assert_eq!(net.committed_everywhere(&ALL, &replay_hash), height);
    for i in ALL {
        let code = net.err(i, &format!("SUBMIT {signed}"));
        assert!(
            code == "duplicate" || code == "bad_nonce",
            "node{i}: a committed transaction submitted again -> {code}"
        );
    }
    // It applied exactly once.
    net.wait_height(&ALL, height + 2);
    for i in ALL {
        let a = net.ok(i, "BALANCE alice");
        assert_eq!(u64_field(&a, "nonce"), nonce + 1, "node{i}: {a}");
        let b = net.ok(i, "BALANCE bob");
        assert_eq!(amount_field(&b, "balance"), bob_before + 1, "node{i}: {b}");
    }

    // Staking: below the minimum is refused; the minimum moves balance to stake and back,
    // and the total supply never changes.
    assert_eq!(net.err(3, "STAKE bob 9999agl"), "below_min_stake");
    let bob = net.ok(3, "BALANCE bob");
    let staked = net.ok(3, "STAKE bob 10000agl");
    net.wait_committed(3, str_field(&staked, "tx"));
    let after = net.ok(3, "BALANCE bob");
    assert_eq!(amount_field(&after, "stake"), 10_000 * AGL, "{after}");
    assert_eq!(
        amount_field(&after, "balance"),
        amount_field(&bob, "balance") - 10_000 * AGL,
        "{after}"
    );
    let unstaked = net.ok(3, "UNSTAKE bob 10000agl");
    net.wait_committed(3, str_field(&unstaked, "tx"));
    assert_eq!(net.ok(3, "BALANCE bob")["balance"], bob["balance"]);
    for i in ALL {
        let supply = net.ok(i, "SUPPLY");
        assert_eq!(
            amount_field(&supply, "total"),
            net.genesis.supply(),
            "node{i}: {supply}"
        );
    }

    // One flipped bit in the signature.
    let next = alice_pays_bob(&net, "1", nonce + 1);
    let tx: Transaction =
        encoding::decode(&hex::decode(&next).expect("hex")).expect("a transaction");
    let mut signature = *tx.signature();
    signature.0[10] ^= 0x08;
    let forged = hex::encode(encoding::encode(&Transaction::new(
        tx.body().clone(),
        signature,
    )));
    assert_ne!(forged, next);
    for i in ALL {
        assert_eq!(
            net.err(i, &format!("SUBMIT {forged}")),
            "invalid_signature",
            "node{i}"
        );
    }
    // The genuine one is admitted and commits.
    let genuine = net.ok(2, &format!("SUBMIT {next}"));
    net.wait_committed(2, str_field(&genuine, "tx"));
}
