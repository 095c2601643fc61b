//! LZ4 block compression of record payloads (feature `lz4`): into and out
//! of caller buffers, with no allocation, in safe Rust.
//!
//! ```
//! use nori_wal_core::format::lz4;
//!
//! let text = b"the same words, the same words, the same words again".repeat(4);
//! let mut packed = vec![0u8; lz4::max_compressed_len(text.len())];
//! let n = lz4::compress(&text, &mut packed).unwrap();
//! assert!(n < text.len());
//! let mut plain = vec![0u8; text.len()];
//! lz4::decompress(&packed[..n], &mut plain).unwrap();
//! assert_eq!(plain, text);
//! ```

use super::{DecodeError, Malformed};

/// The largest compressed length of `len` input bytes.
///
/// ```
/// use nori_wal_core::format::lz4;
/// assert!(lz4::max_compressed_len(1000) >= 1000);
/// ```
#[must_use]
pub fn max_compressed_len(len: usize) -> usize {
    lz4_flex::block::get_maximum_output_size(len)
}

/// Compresses `input` into `out`; returns the compressed length, or `None`
/// when `out` is too small (give it [`max_compressed_len`] bytes).
///
/// ```
/// use nori_wal_core::format::lz4;
/// let input = [7u8; 500];
/// let mut out = vec![0u8; lz4::max_compressed_len(input.len())];
/// let n = lz4::compress(&input, &mut out).unwrap();
/// assert!(n < 50);
/// assert_eq!(lz4::compress(&input, &mut [0u8; 2]), None, "too small a buffer");
/// ```
#[must_use]
pub fn compress(input: &[u8], out: &mut [u8]) -> Option<usize> {
    lz4_flex::block::compress_into(input, out).ok()
}

/// Decompresses `input` into all of `out`, whose length is the uncompressed
/// length recorded in the frame: decoding never writes past it.
///
/// # Errors
///
/// [`DecodeError::MalformedBody`] when `input` is not LZ4 data or does not
/// decompress to exactly `out.len()` bytes.
///
/// ```
/// use nori_wal_core::format::lz4;
/// let mut packed = vec![0u8; lz4::max_compressed_len(4)];
/// let n = lz4::compress(b"abcd", &mut packed).unwrap();
/// let mut plain = [0u8; 4];
/// lz4::decompress(&packed[..n], &mut plain).unwrap();
/// assert_eq!(&plain, b"abcd");
/// assert!(lz4::decompress(&packed[..n], &mut [0u8; 9]).is_err(), "not its recorded length");
/// ```
pub fn decompress(input: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
    match lz4_flex::block::decompress_into(input, out) {
        Ok(n) if n == out.len() => Ok(()),
        Ok(_) => Err(DecodeError::MalformedBody { reason: Malformed::Lz4Short }),
        Err(_) => Err(DecodeError::MalformedBody { reason: Malformed::Lz4Invalid }),
    }
}
