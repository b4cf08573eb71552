//! The admin protocol without sockets: request lines in, typed commands out; typed answers
//! in, response lines out.
//!
//! The contract is `spec/admin-protocol.md`. In short: one UTF-8 request line, words split by
//! spaces, command names case-insensitive and arguments not; exactly one response line per
//! request that is not blank, either `OK <json>` or `ERR <code> <message>`. Blank means empty
//! or only ASCII spaces and tabs: any other character, Unicode whitespace included (U+00A0,
//! U+2028, `\x0b`, ...), makes a request that is answered, so a pipelining client that
//! counts its requests never falls out of step with the answers.
//!
//! Choices the spec leaves open, made here:
//! - Addresses and hashes are accepted in any case of hex on input (people paste them from
//!   many places) and always printed in lowercase. An address may also be a genesis account
//!   name; names are at most 32 characters, so they can never be mistaken for 64 hex ones.
//! - Words are split on any ASCII whitespace (space, tab, ...), a superset of "one or more
//!   spaces": no argument ever contains whitespace, so nothing valid is read differently.
//! - `WAIT`'s `ms` is clamped to [`MAX_WAIT_MS`] rather than refused, so a script asking for
//!   "a long time" gets the longest wait the node allows.
//! - Key order inside a JSON object is not part of the contract (clients look fields up by
//!   name); `serde_json` writes them sorted.
//! - Nothing here panics, whatever the bytes: the parser is fuzzed by the tests below.

mod commands;
mod errors;
mod replies;

pub use commands::*;
pub use errors::*;
pub use replies::*;

/// What the protocol's unit tests share: a genesis with named accounts and a signed
/// transaction.
#[cfg(test)]
mod fixtures {
    use almagill::amount::AGL;
    use almagill::crypto::{Address, Hash, Keypair};
    use almagill::genesis::Genesis;
    use almagill::tx::{Transaction, TxBody, TxKind};
    use almagill_testkit::GenesisBuilder;

    pub const ALICE: Address = Address([0xa1; 32]);
    pub const BOB: Address = Address([0xb0; 32]);
    pub const NODE0: Address = Address([0x10; 32]);
    pub const HASH: Hash = Hash([0xab; 32]);

    pub fn genesis() -> Genesis {
        GenesisBuilder::new("almagill-test")
            .time_ms(1_700_000_000_000)
            .min_stake(100 * AGL)
            .epoch_length(10)
            .account("alice", ALICE, 1_000 * AGL, 0)
            .account("bob", BOB, 1_000 * AGL, 0)
            .account("node0", NODE0, 1_000 * AGL, 100 * AGL)
            .unchecked()
    }

    pub fn signed_tx() -> Transaction {
        TxBody {
            from: Keypair::from_seed([7; 32]).address(),
            nonce: 3,
            kind: TxKind::Transfer {
                to: BOB,
                amount: 5 * AGL,
            },
        }
        .sign(&Keypair::from_seed([7; 32]), "almagill-test")
    }
}
