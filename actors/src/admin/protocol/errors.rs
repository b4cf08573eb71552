//! Errors: the protocol's codes, and the error a failed request answers with.

use std::fmt;

use super::commands::MAX_LINE;

/// A failed request: an error code from the spec's list and a short sentence for people.
/// The code is what scripts match on; the message may change freely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminError {
    /// One of [`ERROR_CODES`].
    pub code: &'static str,
    /// A short human sentence; [`err_line`] makes it single-line.
    pub message: String,
}

impl AdminError {
    /// An error with any code, for codes computed elsewhere (such as the ledger's
    /// `TxError::code()`); prefer the named constructors otherwise.
    /// A code outside the protocol's list becomes `internal`: clients only ever see
    /// listed codes.
    pub fn new(code: &'static str, message: impl Into<String>) -> AdminError {
        let code = if ERROR_CODES.contains(&code) {
            code
        } else {
            "internal"
        };
        AdminError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AdminError {}

/// Every error code of the protocol, in the spec's order: the only words that may follow
/// `ERR`. Codes about transactions come from the mempool and ledger (`AdmitError::code`).
pub const ERROR_CODES: &[&str] = &[
    "bad_request",
    "unknown_command",
    "bad_address",
    "bad_amount",
    "unknown_account",
    "account_exists",
    "no_key",
    "invalid_signature",
    "bad_nonce",
    "insufficient_funds",
    "below_min_stake",
    "duplicate",
    "mempool_full",
    "not_found",
    "timeout",
    "too_long",
    "unauthorized",
    "internal",
];

/// Named constructors for the codes the admin port itself produces.
macro_rules! constructors {
    ($($(#[$doc:meta])* $code:ident,)*) => {
        impl AdminError {
            $(
                $(#[$doc])*
                pub fn $code(message: impl Into<String>) -> AdminError {
                    AdminError::new(stringify!($code), message)
                }
            )*
        }
    };
}

constructors! {
    /// The request is malformed: not UTF-8, wrong number of arguments, a bad hash,
    /// height or transaction encoding.
    bad_request,
    /// The first word is not a command.
    unknown_command,
    /// An argument is neither 64 hex characters nor a genesis account name.
    bad_address,
    /// An amount is malformed, inexact or too large.
    bad_amount,
    /// The account does not exist.
    unknown_account,
    /// The node holds no key for the sending account.
    no_key,
    /// No such transaction or block.
    not_found,
    /// `WAIT` ended with the transaction still pending.
    timeout,
    /// The request line is over [`MAX_LINE`] bytes; the connection is then closed.
    too_long,
    /// A signing command before a successful `AUTH`, or `AUTH` with a wrong token.
    unauthorized,
    /// The node failed to answer (a bug, or the node is shutting down).
    internal,
}

/// The error for a line over [`MAX_LINE`] bytes, with the standard message; the server
/// sends it and then closes the connection.
pub fn too_long() -> AdminError {
    AdminError::too_long(format!(
        "the line is over {MAX_LINE} bytes; closing the connection"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_match_the_spec() {
        let spec = [
            "bad_request",
            "unknown_command",
            "bad_address",
            "bad_amount",
            "unknown_account",
            "account_exists",
            "no_key",
            "invalid_signature",
            "bad_nonce",
            "insufficient_funds",
            "below_min_stake",
            "duplicate",
            "mempool_full",
            "not_found",
            "timeout",
            "too_long",
            "unauthorized",
            "internal",
        ];
        assert_eq!(ERROR_CODES, spec);
        for code in spec {
            assert_eq!(AdminError::new(code, "m").code, code);
        }
        assert_eq!(AdminError::new("made_up", "m").code, "internal");
        let made = [
            AdminError::bad_request("m"),
            AdminError::unknown_command("m"),
            AdminError::bad_address("m"),
            AdminError::bad_amount("m"),
            AdminError::unknown_account("m"),
            AdminError::no_key("m"),
            AdminError::not_found("m"),
            AdminError::timeout("m"),
            AdminError::too_long("m"),
            AdminError::unauthorized("m"),
            AdminError::internal("m"),
        ];
        assert!(made.iter().all(|e| spec.contains(&e.code)));
    }
}
