//! Alignment to power-of-two units with masks: no division, which a
//! Cortex-M would otherwise run through a 64-bit division routine.

/// Whether `x` is a multiple of `unit`, a power of two.
#[inline]
pub(crate) const fn is_aligned(x: u64, unit: u64) -> bool {
    x & unit.wrapping_sub(1) == 0
}

/// `x` rounded down to a multiple of `unit`, a power of two.
#[inline]
pub(crate) const fn align_down(x: u64, unit: u64) -> u64 {
    x & !unit.wrapping_sub(1)
}

/// `x` rounded up to a multiple of `unit`, a power of two (saturating).
/// Out of line without `std`: one copy is smaller than the seven inlined.
#[cfg_attr(feature = "std", inline)]
#[cfg_attr(not(feature = "std"), inline(never))]
pub(crate) const fn align_up(x: u64, unit: u64) -> u64 {
    align_down(x.saturating_add(unit.wrapping_sub(1)), unit)
}

/// `a / b` for a divisor that is not a power of two, by shift and subtract:
/// small code, used once when a log opens.
pub(crate) const fn div(a: u64, b: u64) -> u64 {
    if b == 0 {
        return 0;
    }
    // Long division, most significant bit first; `rem < b` throughout, so
    // the shift cannot lose a bit when `b` fits in 63 bits, and when it does
    // not, the quotient is 0 or 1.
    if b > u64::MAX >> 1 {
        return if a >= b { 1 } else { 0 };
    }
    let mut quotient = 0;
    let mut rem: u64 = 0;
    let mut i = 64;
    while i > 0 {
        i -= 1;
        rem = (rem << 1) | ((a >> i) & 1);
        if rem >= b {
            rem -= b;
            quotient |= 1 << i;
        }
    }
    quotient
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_match_arithmetic() {
        for unit in [1u64, 2, 4, 8, 512, 4096, 1 << 20] {
            for x in [0u64, 1, 7, 8, 511, 512, 513, 4095, 4096, 123_456_789, u64::MAX - 10] {
                assert_eq!(is_aligned(x, unit), x % unit == 0);
                assert_eq!(align_down(x, unit), x - x % unit);
                if x < u64::MAX - unit {
                    assert_eq!(align_up(x, unit), x.div_ceil(unit) * unit);
                }
            }
        }
        for (a, b) in [(0u64, 3u64), (10, 3), (1 << 40, 12_288), (u64::MAX, 7), (5, 9), (999, 1)] {
            assert_eq!(div(a, b), a / b);
        }
        assert_eq!(div(5, 0), 0);
    }
}
