//! The admin token: what `AUTH <token>` is checked against when the node's config names an
//! `admin_token_file`. Until a connection has sent the right token, the commands that sign
//! with the node's wallet keys (`SEND`, `CREATE`, `STAKE`, `UNSTAKE`) answer
//! `ERR unauthorized` on it; reads and `SUBMIT` never need it.

/// The token, kept only as its blake3 hash: checking a candidate hashes it and compares the
/// two hashes with `blake3::Hash`'s constant-time `==`, so the time an `AUTH` takes tells a
/// client nothing about how much of its guess was right, nor the token's length.
#[derive(Clone)]
pub struct AdminToken(blake3::Hash);

/// Why the text of a token file is not a usable token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Nothing but whitespace: every guess would have to be refused, or none.
    Empty,
    /// Whitespace inside the token: `AUTH` takes one word, so no request could carry it.
    Whitespace,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenError::Empty => "it is empty",
            TokenError::Whitespace => "the token holds whitespace (AUTH takes one word)",
        })
    }
}

impl std::error::Error for TokenError {}

impl AdminToken {
    /// The token in a token file's text: the text without the whitespace around it (so a
    /// file written by `echo` works), which must be one non-empty word.
    pub fn from_file_text(text: &str) -> Result<AdminToken, TokenError> {
        let token = text.trim();
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        if token.chars().any(char::is_whitespace) {
            return Err(TokenError::Whitespace);
        }
        Ok(AdminToken(blake3::hash(token.as_bytes())))
    }

    /// Whether `candidate` is the token, in time that does not depend on either.
    pub fn matches(&self, candidate: &str) -> bool {
        blake3::hash(candidate.as_bytes()) == self.0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_the_file_text_without_surrounding_whitespace() {
        let token = AdminToken::from_file_text("  s3cret-Token\n").unwrap();
        assert!(token.matches("s3cret-Token"));
        for wrong in [
            "",
            "s3cret-token",
            "s3cret-Token ",
            " s3cret-Token",
            "s3cret-Toke",
        ] {
            assert!(!token.matches(wrong), "{wrong:?}");
        }
        assert_eq!(format!("{token:?}"), "AdminToken(..)");
    }

    #[test]
    fn empty_or_spaced_tokens_are_refused() {
        for text in ["", "\n", " \t\r\n "] {
            assert_eq!(
                AdminToken::from_file_text(text).unwrap_err(),
                TokenError::Empty
            );
        }
        for text in ["two words", "a\tb\n", "a\u{a0}b"] {
            assert_eq!(
                AdminToken::from_file_text(text).unwrap_err(),
                TokenError::Whitespace
            );
        }
    }
}
