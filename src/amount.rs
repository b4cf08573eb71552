//! Amounts of AGL: integer base units, and the exact parsing of human-written amounts.

use thiserror::Error;

/// A count of base units. Every balance, stake and transfer is one; arithmetic on them is
/// always checked.
pub type Amount = u128;

/// Base units in one AGL.
pub const AGL: Amount = 1_000_000_000_000_000_000;

/// Decimal places of one AGL.
const AGL_DECIMALS: usize = 18;

/// Why a written amount was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AmountError {
    /// Not a decimal number of base units or of AGL.
    #[error("`{0}` is not an amount (base units like 1500, or AGL like 2.5agl)")]
    Malformed(String),
    /// More than 18 decimal places of AGL: not a whole number of base units.
    #[error("`{0}` is not a whole number of base units (at most 18 decimals of agl)")]
    Inexact(String),
    /// Too large for 128 bits.
    #[error("`{0}` is too large")]
    Overflow(String),
}

/// Parses `1500` (base units) or `2.5agl` (any case of `agl`), exactly or not at all.
pub fn parse_amount(text: &str) -> Result<Amount, AmountError> {
    let lower = text.to_ascii_lowercase();
    let Some(agl) = lower.strip_suffix("agl") else {
        return parse_units(text, text);
    };
    let (whole, fraction) = agl.split_once('.').unwrap_or((agl, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(AmountError::Malformed(text.to_string()));
    }
    let significant = fraction.trim_end_matches('0');
    if significant.len() > AGL_DECIMALS {
        return Err(AmountError::Inexact(text.to_string()));
    }
    // `whole` AGL followed by the fraction padded to 18 places is the count of base units.
    let units = format!("{whole}{significant:0<width$}", width = AGL_DECIMALS);
    parse_units(&units, text)
}

/// Reads a decimal count of base units; `original` is what the user wrote, for the error.
fn parse_units(digits: &str, original: &str) -> Result<Amount, AmountError> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AmountError::Malformed(original.to_string()));
    }
    digits
        .bytes()
        .try_fold(0u128, |acc, b| {
            acc.checked_mul(10)?.checked_add(Amount::from(b - b'0'))
        })
        .ok_or_else(|| AmountError::Overflow(original.to_string()))
}

/// Writes an amount as exact AGL for people: `2.5agl`, `1000agl`, `0.000000000000000001agl`.
/// [`parse_amount`] reads it back to the same value.
pub fn format_agl(amount: Amount) -> String {
    let whole = amount / AGL;
    let fraction = amount % AGL;
    if fraction == 0 {
        return format!("{whole}agl");
    }
    let digits = format!("{fraction:018}");
    format!("{whole}.{}agl", digits.trim_end_matches('0'))
}
