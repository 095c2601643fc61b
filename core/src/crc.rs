//! CRC32C (Castagnoli, the iSCSI polynomial `0x1EDC6F41`, reflected, initial
//! value and final XOR `0xFFFF_FFFF`): the one checksum of the format.
//!
//! Two implementations give bit-identical results:
//!
//! - the **portable** path ([`portable::crc32c_append`]) through the `crc`
//!   crate, available everywhere, `no_std`, with the lookup-table size chosen
//!   by a Cargo feature (see below);
//! - the **hardware** path (feature `std`): the CPU's CRC32C instructions
//!   (SSE4.2 on x86_64, the CRC extension on aarch64), detected at run time.
//!   Where the CPU lacks them, [`crc32c_append`] uses the portable path.
//!
//! | feature | table in flash/ROM | speed (x86_64, 4 KiB buffers) |
//! |---|---|---|
//! | neither `crc-table-1` nor `crc-table-16` | none | slowest (bit by bit, ~0.1 GB/s) |
//! | `crc-table-1` | 1 KiB | ~0.5 GB/s (byte at a time) |
//! | `crc-table-16` (default) | 16 KiB | ~5 GB/s (16 bytes at a time) |
//! | `std` on a CPU with CRC32C instructions | as above, plus the accelerator's tables | ~20 GB/s and more |
//!
//! Figures are indicative; `BENCHMARKS.md` has measured ratios and the
//! command that reproduces them. When both table features are enabled the
//! larger table wins, so features stay additive.
//!
//! ```
//! use nori_wal_core::crc;
//! // The standard check value of CRC-32C.
//! assert_eq!(crc::crc32c(b"123456789"), 0xE306_9283);
//! // Appending is the same as checksumming the concatenation.
//! let head = crc::crc32c(b"12345");
//! assert_eq!(crc::crc32c_append(head, b"6789"), 0xE306_9283);
//! ```

/// CRC32C of `data`.
///
/// ```
/// use nori_wal_core::crc;
/// assert_eq!(crc::crc32c(b"123456789"), 0xE306_9283);
/// ```
#[inline]
#[must_use]
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_append(0, data)
}

/// Continues the CRC32C `crc` (of some earlier bytes) over `data`: the result
/// equals the CRC32C of the earlier bytes followed by `data`. Start with `0`.
///
/// Uses the CPU's CRC32C instructions when the `std` feature is on and the
/// CPU has them, the portable path otherwise.
///
/// ```
/// use nori_wal_core::crc;
/// let head = crc::crc32c(b"nori");
/// assert_eq!(crc::crc32c_append(head, b"-wal"), crc::crc32c(b"nori-wal"));
/// ```
#[inline]
#[must_use]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(feature = "std")]
    if hardware::available() {
        return hardware::crc32c_append(crc, data);
    }
    portable::crc32c_append(crc, data)
}

/// Continues three CRC32Cs at once, each over its own bytes: the same
/// results as three calls of [`crc32c_append`]. Where the CPU has CRC32C
/// instructions the three are computed interleaved, eight bytes of each per
/// step, so that the instruction's latency (three cycles, one issued per
/// cycle) is paid once for three: a reader checking many small frames in a
/// row checks three at a time.
#[cfg(feature = "std")]
#[cfg_attr(
    not(feature = "v1"),
    allow(dead_code, reason = "format v1's reader alone checks frames three at a time without a prefix")
)]
#[inline]
pub(crate) fn crc32c_append_3(crcs: [u32; 3], data: [&[u8]; 3]) -> [u32; 3] {
    #[cfg(target_arch = "x86_64")]
    if let Some(three) = x86::append_3(crcs, data) {
        return three;
    }
    [crc32c_append(crcs[0], data[0]), crc32c_append(crcs[1], data[1]), crc32c_append(crcs[2], data[2])]
}

/// Three format v2 frame CRCs at once: each from `key_crc` (the epoch's
/// state) over its bound LSN (8 bytes, little endian), its header's first 4
/// bytes (`heads`, as read little endian) and its payload. The same results
/// as [`crc32c_append_3_after`] with those 12 bytes as prefixes, without
/// building them.
#[cfg(feature = "std")]
#[inline]
pub(crate) fn crc32c_frames_3(
    key_crc: u32,
    lsns: &[u64; 3],
    heads: &[u32; 3],
    data: &[&[u8]; 3],
) -> [u32; 3] {
    #[cfg(target_arch = "x86_64")]
    if let Some(three) = x86::frames_3(key_crc, lsns, heads, data) {
        return three;
    }
    core::array::from_fn(|k| {
        let mut prefix = [0u8; 12];
        prefix[..8].copy_from_slice(&lsns[k].to_le_bytes());
        prefix[8..].copy_from_slice(&heads[k].to_le_bytes());
        crc32c_append(crc32c_append(key_crc, &prefix), data[k])
    })
}

/// Which implementation [`crc32c_append`] uses on this machine.
///
/// ```
/// use nori_wal_core::crc::{self, Implementation};
/// if crc::implementation() == Implementation::Hardware {
///     println!("the CPU computes CRC32C");
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Implementation {
    /// The CPU's CRC32C instructions (feature `std`).
    Hardware,
    /// The portable `crc` crate path with a 16-way table (16 KiB).
    Table16,
    /// The portable `crc` crate path with a 1-way table (1 KiB).
    Table1,
    /// The portable `crc` crate path, bit by bit, no table.
    NoTable,
}

/// The implementation [`crc32c_append`] uses on this machine and build.
///
/// ```
/// use nori_wal_core::crc;
/// println!("CRC32C by {:?}", crc::implementation());
/// ```
#[must_use]
pub fn implementation() -> Implementation {
    #[cfg(feature = "std")]
    if hardware::available() {
        return Implementation::Hardware;
    }
    portable::IMPLEMENTATION
}

/// The portable CRC32C, `no_std`, through the `crc` crate.
pub mod portable {
    use crc::{CRC_32_ISCSI, Crc};

    #[cfg(feature = "crc-table-16")]
    type Table = crc::Table<16>;
    #[cfg(all(feature = "crc-table-1", not(feature = "crc-table-16")))]
    type Table = crc::Table<1>;
    #[cfg(not(any(feature = "crc-table-1", feature = "crc-table-16")))]
    type Table = crc::NoTable;

    #[cfg(feature = "crc-table-16")]
    pub(super) const IMPLEMENTATION: super::Implementation = super::Implementation::Table16;
    #[cfg(all(feature = "crc-table-1", not(feature = "crc-table-16")))]
    pub(super) const IMPLEMENTATION: super::Implementation = super::Implementation::Table1;
    #[cfg(not(any(feature = "crc-table-1", feature = "crc-table-16")))]
    pub(super) const IMPLEMENTATION: super::Implementation = super::Implementation::NoTable;

    // A `static`, not a `const`: the table is placed once in read-only memory.
    static CASTAGNOLI: Crc<u32, Table> = Crc::<u32, Table>::new(&CRC_32_ISCSI);

    /// Continues the CRC32C `crc` over `data` with the portable
    /// implementation. Identical results to [`super::crc32c_append`].
    ///
    /// ```
    /// use nori_wal_core::crc;
    /// let data = b"nori-wal";
    /// assert_eq!(crc::portable::crc32c_append(0, data), crc::crc32c(data));
    /// ```
    #[inline]
    #[must_use]
    pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
        // The `crc` crate takes the initial register value in the
        // algorithm's unreflected form; continuing a finished CRC means
        // undoing the final XOR and the reflection.
        let mut digest = CASTAGNOLI.digest_with_initial((!crc).reverse_bits());
        digest.update(data);
        digest.finalize()
    }
}

#[cfg(feature = "std")]
mod hardware {
    /// Whether the CPU has CRC32C instructions (cached by std after the
    /// first call).
    #[inline]
    pub(super) fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("sse4.2")
        }
        #[cfg(target_arch = "aarch64")]
        {
            std::arch::is_aarch64_feature_detected!("crc")
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            false
        }
    }

    /// Inputs shorter than this take the CPU's instruction eight bytes at
    /// a time ([`super::x86`]); longer ones go to the `crc32c` crate, which
    /// splits them into three interleaved streams and pays a setup that
    /// dominates below a few hundred bytes (a frame of one small record).
    #[cfg(target_arch = "x86_64")]
    pub(super) const SMALL: usize = 256;

    #[inline]
    pub(super) fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
        #[cfg(target_arch = "x86_64")]
        if data.len() < SMALL
            && let Some(crc) = super::x86::append(crc, data)
        {
            return crc;
        }
        crc32c::crc32c_append(crc, data)
    }
}

/// The CPU's CRC32C instruction on short inputs (x86_64, SSE4.2): the one
/// module of this crate with `unsafe` (calling a function compiled for a
/// CPU feature, which the caller must have detected).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(unsafe_code)]
mod x86 {
    use core::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u32, _mm_crc32_u64};

    /// Continues the CRC32C `crc` over `data` with the CPU's instruction;
    /// `None` on a CPU without SSE4.2.
    #[inline]
    pub(super) fn append(crc: u32, data: &[u8]) -> Option<u32> {
        if !std::is_x86_feature_detected!("sse4.2") {
            return None;
        }
        // SAFETY: `words` is compiled for SSE4.2, which the CPU was just
        // found to have.
        Some(unsafe { words(crc, data) })
    }

    /// Three CRC32Cs at once; `None` on a CPU without SSE4.2.
    #[cfg_attr(not(feature = "v1"), allow(dead_code, reason = "used by format v1's reader"))]
    #[inline]
    pub(super) fn append_3(crcs: [u32; 3], data: [&[u8]; 3]) -> Option<[u32; 3]> {
        if !std::is_x86_feature_detected!("sse4.2") {
            return None;
        }
        // SAFETY: `interleaved` is compiled for SSE4.2, which the CPU was
        // just found to have.
        Some(unsafe { interleaved(crcs, data) })
    }

    /// Three format v2 frame CRCs; `None` on a CPU without SSE4.2.
    #[inline]
    pub(super) fn frames_3(
        key_crc: u32,
        lsns: &[u64; 3],
        heads: &[u32; 3],
        data: &[&[u8]; 3],
    ) -> Option<[u32; 3]> {
        if !std::is_x86_feature_detected!("sse4.2") {
            return None;
        }
        // SAFETY: `interleaved_frames` is compiled for SSE4.2, which the
        // CPU was just found to have.
        Some(unsafe { interleaved_frames(key_crc, lsns, heads, data) })
    }

    /// [`interleaved`] after each frame's bound LSN and header word.
    #[target_feature(enable = "sse4.2")]
    fn interleaved_frames(key_crc: u32, lsns: &[u64; 3], heads: &[u32; 3], data: &[&[u8]; 3]) -> [u32; 3] {
        let key = u64::from(!key_crc);
        let mut s0 = _mm_crc32_u64(key, lsns[0]);
        let mut s1 = _mm_crc32_u64(key, lsns[1]);
        let mut s2 = _mm_crc32_u64(key, lsns[2]);
        s0 = u64::from(_mm_crc32_u32(s0 as u32, heads[0]));
        s1 = u64::from(_mm_crc32_u32(s1 as u32, heads[1]));
        s2 = u64::from(_mm_crc32_u32(s2 as u32, heads[2]));
        streams([s0, s1, s2], *data)
    }

    /// Three CRC32Cs interleaved (see [`streams`]).
    #[cfg_attr(not(feature = "v1"), allow(dead_code, reason = "used by format v1's reader"))]
    #[target_feature(enable = "sse4.2")]
    fn interleaved(crcs: [u32; 3], data: [&[u8]; 3]) -> [u32; 3] {
        streams(crcs.map(|c| u64::from(!c)), data)
    }

    /// The three streams from their CRC states (inverted, as the
    /// instruction keeps them): their common length in words, eight bytes
    /// of each per step; then each stream's rest on its own.
    #[target_feature(enable = "sse4.2")]
    #[inline]
    fn streams(state: [u64; 3], data: [&[u8]; 3]) -> [u32; 3] {
        let [(w0, _), (w1, _), (w2, _)] = data.map(<[u8]>::as_chunks::<8>);
        let common = w0.len().min(w1.len()).min(w2.len());
        let [mut s0, mut s1, mut s2] = state;
        for ((a, b), c) in w0[..common].iter().zip(&w1[..common]).zip(&w2[..common]) {
            s0 = _mm_crc32_u64(s0, u64::from_le_bytes(*a));
            s1 = _mm_crc32_u64(s1, u64::from_le_bytes(*b));
            s2 = _mm_crc32_u64(s2, u64::from_le_bytes(*c));
        }
        let done = common * 8;
        if data.iter().all(|d| d.len() == done) {
            return [!(s0 as u32), !(s1 as u32), !(s2 as u32)];
        }
        [rest(s0, &data[0][done..]), rest(s1, &data[1][done..]), rest(s2, &data[2][done..])]
    }

    /// A stream of [`streams`] finished on its own over its `rest`.
    #[target_feature(enable = "sse4.2")]
    fn rest(state: u64, rest: &[u8]) -> u32 {
        let crc = !(state as u32);
        if rest.is_empty() {
            crc
        } else if rest.len() < super::hardware::SMALL {
            words(crc, rest)
        } else {
            crc32c::crc32c_append(crc, rest)
        }
    }

    /// Continues the CRC32C `crc` over `data`, eight bytes per instruction.
    #[target_feature(enable = "sse4.2")]
    fn words(crc: u32, data: &[u8]) -> u32 {
        let mut state = u64::from(!crc);
        let mut words = data.chunks_exact(8);
        for word in &mut words {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            state = _mm_crc32_u64(state, u64::from_le_bytes(bytes));
        }
        let mut state = state as u32;
        for &byte in words.remainder() {
            state = _mm_crc32_u8(state, byte);
        }
        !state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Check values from RFC 3720 (iSCSI), appendix B.4, plus the catalogue
    /// check value. They run under every table feature in CI.
    #[test]
    fn known_vectors() {
        let ascending: [u8; 32] = core::array::from_fn(|i| i as u8);
        let descending: [u8; 32] = core::array::from_fn(|i| 31 - i as u8);
        let cases: [(&[u8], u32); 5] = [
            (b"123456789", 0xE306_9283),
            (&[0u8; 32], 0x8A91_36AA),
            (&[0xFFu8; 32], 0x62A8_AB43),
            (&ascending, 0x46DD_794E),
            (&descending, 0x113F_DB5C),
        ];
        for (data, expected) in cases {
            assert_eq!(crc32c(data), expected);
            assert_eq!(portable::crc32c_append(0, data), expected);
            for split in 0..=data.len() {
                let (a, b) = data.split_at(split);
                assert_eq!(crc32c_append(crc32c(a), b), expected);
                assert_eq!(portable::crc32c_append(portable::crc32c_append(0, a), b), expected);
            }
        }
        assert_eq!(crc32c(&[]), 0);
    }

    /// The dispatching CRC (the CPU's instruction on short inputs, the
    /// `crc32c` crate on long ones, where the CPU has them) against the
    /// portable one: every length to 600 bytes at every alignment to 8,
    /// continued from several CRCs.
    #[test]
    fn every_path_matches_the_portable_one() {
        let mut data = [0u8; 608];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for b in &mut data {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        for start in 0..8 {
            for len in 0..=600 {
                let piece = &data[start..start + len];
                for crc in [0, 1, 0xFFFF_FFFF, 0xE306_9283] {
                    assert_eq!(
                        crc32c_append(crc, piece),
                        portable::crc32c_append(crc, piece),
                        "start {start}, len {len}, crc {crc:#x}"
                    );
                }
            }
        }
    }

    /// Three at once: the same as one at a time, for lengths that end
    /// together and apart, short and long.
    #[cfg(feature = "std")]
    #[test]
    fn three_at_once_match_one_at_a_time() {
        let data: [u8; 1200] = core::array::from_fn(|i| (i * 131 + i / 7) as u8);
        for (a, b, c) in [(0, 0, 0), (144, 144, 144), (144, 13, 300), (7, 1000, 64), (1199, 3, 256)] {
            let bufs = [&data[..a], &data[1..=b], &data[a.min(5)..a.min(5) + c]];
            let crcs = [0, 0xDEAD_BEEF, 42];
            let expected: [u32; 3] = core::array::from_fn(|k| portable::crc32c_append(crcs[k], bufs[k]));
            assert_eq!(crc32c_append_3(crcs, bufs), expected, "{a} {b} {c}");
            // As v2 frames: from one state, after each bound LSN and header
            // word, as if those 12 bytes and the data were one.
            let lsns: [u64; 3] = [0, 1 << 40 | 77, u64::MAX];
            let heads: [u32; 3] = [0, 0xFC03_0080, 0xFFFF_FFFF];
            let expected: [u32; 3] = core::array::from_fn(|k| {
                let mut prefix = [0u8; 12];
                prefix[..8].copy_from_slice(&lsns[k].to_le_bytes());
                prefix[8..].copy_from_slice(&heads[k].to_le_bytes());
                portable::crc32c_append(portable::crc32c_append(crcs[1], &prefix), bufs[k])
            });
            assert_eq!(crc32c_frames_3(crcs[1], &lsns, &heads, &bufs), expected, "as frames: {a} {b} {c}");
        }
    }

    #[test]
    fn implementation_matches_features() {
        let implementation = implementation();
        #[cfg(not(feature = "std"))]
        assert_eq!(implementation, portable::IMPLEMENTATION);
        #[cfg(feature = "std")]
        assert!(implementation == Implementation::Hardware || implementation == portable::IMPLEMENTATION);
    }
}
