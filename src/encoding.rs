//! Canonical encoding: the one module that owns bincode.
//!
//! Every byte string that is hashed, signed or sent between nodes is produced here, with one
//! explicit configuration: little-endian, fixed-width integers, and a size limit on every
//! decode. With fixed-width integers every value has exactly one encoding, so a decoded value
//! re-encodes to the very bytes it came from, and hashes agree on every node.

use bincode::config::{Configuration, Fixint, Limit, LittleEndian};
use bincode::{Decode, Encode};
use thiserror::Error;

/// The largest encoded value any decoder accepts, and so the most a decode can allocate.
/// It is sized for the largest real message: a view change or new view carrying every block
/// between the watermarks, which genesis bounds (`genesis::MAX_TXS_IN_WINDOW`).
pub const MAX_ENCODED_BYTES: usize = 8 * 1024 * 1024;

type Config = Configuration<LittleEndian, Fixint, Limit<MAX_ENCODED_BYTES>>;

const CONFIG: Config = bincode::config::standard()
    .with_little_endian()
    .with_fixed_int_encoding()
    .with_limit::<MAX_ENCODED_BYTES>();

/// Why bytes could not be decoded into a value.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EncodingError {
    /// The input is longer than any value may be.
    #[error("{len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The limit it broke.
        max: usize,
    },
    /// The bytes are not a valid encoding of the expected type.
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// A value decoded, but bytes were left over after it.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
}

/// Encodes a value in the canonical form.
pub fn encode<T: Encode>(value: &T) -> Vec<u8> {
    // Writing into a Vec has no limit and no I/O, and none of this crate's types has an
    // encoding that can fail, so this cannot error.
    bincode::encode_to_vec(value, CONFIG).expect("canonical encoding into a Vec is infallible")
}

/// Decodes exactly one value from `bytes`, refusing oversize input and trailing bytes.
/// Never panics, and never allocates more than [`MAX_ENCODED_BYTES`] whatever the input.
pub fn decode<T: Decode<()>>(bytes: &[u8]) -> Result<T, EncodingError> {
    if bytes.len() > MAX_ENCODED_BYTES {
        return Err(EncodingError::TooLarge {
            len: bytes.len(),
            max: MAX_ENCODED_BYTES,
        });
    }
    let (value, used) = bincode::decode_from_slice(bytes, CONFIG)
        .map_err(|e| EncodingError::Malformed(e.to_string()))?;
    match bytes.len() - used {
        0 => Ok(value),
        extra => Err(EncodingError::TrailingBytes(extra)),
    }
}
