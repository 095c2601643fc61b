//! The hardware and portable CRC32C paths give identical results.

use nori_wal_core::crc::{self, Implementation};
use proptest::prelude::*;

#[test]
fn hardware_path_is_in_use_where_the_cpu_has_it() {
    let implementation = crc::implementation();
    println!("CRC32C implementation on this machine: {implementation:?}");
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("sse4.2") {
        assert_eq!(implementation, Implementation::Hardware);
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    assert_ne!(implementation, Implementation::Hardware);
}

/// Every length from 0 to 4 KiB + 64, at every start alignment within 16
/// bytes, and chained through an arbitrary split: the dispatching path (the
/// hardware one on this machine) equals the portable one.
#[test]
fn identical_on_every_length_and_alignment() {
    let data: Vec<u8> =
        (0..4096 + 64 + 16).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut checked = 0u32;
    for start in 0..16 {
        for len in 0..=(4096 + 64) {
            let slice = &data[start..start + len];
            let seed = len as u32 ^ 0x9E37_79B9;
            assert_eq!(
                crc::crc32c_append(seed, slice),
                crc::portable::crc32c_append(seed, slice),
                "start {start} len {len}"
            );
            checked += 1;
        }
    }
    println!("compared {checked} buffers");
}

proptest! {
    #[test]
    fn identical_on_arbitrary_input(seed in any::<u32>(), data in proptest::collection::vec(any::<u8>(), 0..20_000), split in any::<prop::sample::Index>()) {
        let whole = crc::portable::crc32c_append(seed, &data);
        prop_assert_eq!(crc::crc32c_append(seed, &data), whole);
        let (a, b) = data.split_at(split.index(data.len() + 1));
        prop_assert_eq!(crc::crc32c_append(crc::crc32c_append(seed, a), b), whole);
    }
}
