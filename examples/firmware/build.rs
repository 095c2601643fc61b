//! Puts `memory.x` where cortex-m-rt's `link.x` finds it, for the firmware
//! binaries on a Cortex-M target.

use std::path::PathBuf;

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if std::env::var_os("CARGO_FEATURE_FIRMWARE").is_some() && target.starts_with("thumb") {
        let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
        std::fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
        println!("cargo:rustc-link-search={}", out.display());
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
    }
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
}
