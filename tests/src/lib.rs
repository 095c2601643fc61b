//! Shared helpers of the nori-wal integration tests and benchmarks.

pub mod bench;
pub mod crash;
pub mod fuzzing;
pub mod media;
pub mod nor;
pub mod sim;
pub mod simfs;
pub mod walkit;

use std::path::PathBuf;

/// Property-test cases: `PROPTEST_CASES` from the environment when set (for
/// long runs), `default` otherwise (the CI run).
#[must_use]
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// How many seeds a crash sweep runs: `NORI_WAL_SWEEP_SEEDS` from the
/// environment when set (for long runs), `default` otherwise (the CI run).
#[must_use]
pub fn sweep_seeds(default: u64) -> u64 {
    std::env::var("NORI_WAL_SWEEP_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The directory of checked-in fixtures.
#[must_use]
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Lowercase hex of `bytes`, wrapped at 32 bytes (64 digits) per line.
#[must_use]
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2 + bytes.len() / 32 + 1);
    for (i, chunk) in bytes.chunks(32).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for b in chunk {
            out.push_str(&format!("{b:02x}"));
        }
    }
    out.push('\n');
    out
}

/// Parses hex, ignoring whitespace and `#` comments to the end of a line.
///
/// # Errors
///
/// A message naming the first character that is not a hex digit, or an odd
/// number of digits.
pub fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|line| line.bytes().filter(|b| !b.is_ascii_whitespace()))
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits: {}", digits.len()));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
            u8::from_str_radix(s, 16).map_err(|_| format!("not a hex byte: {s:?}"))
        })
        .collect()
}

/// A golden vector: fixed inputs encoded, compared with a checked-in hex
/// fixture, and the fixture decoded and checked field by field.
pub struct GoldenCase {
    /// The fixture's file name, without `.hex`.
    pub name: &'static str,
    /// What the fixture holds (its first line).
    pub about: &'static str,
    /// Encodes the inputs today.
    pub encode: fn() -> Vec<u8>,
    /// Decodes the fixture and checks every field (panics if one is off).
    pub check: fn(&[u8]),
}

/// Runs golden vectors against the fixtures in `fixtures/<dir>`: every
/// fixture decodes to its inputs, every encoding matches its fixture, and
/// every fixture file has a case. With `NORI_WAL_BLESS` set, writes the
/// fixture of a *new* case (never one that exists: a changed encoding is a
/// new format version).
///
/// # Panics
///
/// On any mismatch, naming the fixtures whose encoding changed.
pub fn check_golden(dir: &str, cases: &[GoldenCase]) {
    let dir = fixtures_dir().join(dir);
    let bless = std::env::var_os("NORI_WAL_BLESS").is_some();
    let mut mismatches = Vec::new();
    for case in cases {
        let encoded = (case.encode)();
        let path = dir.join(format!("{}.hex", case.name));
        if bless && !path.exists() {
            std::fs::write(&path, format!("# {}\n{}", case.about, to_hex(&encoded))).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("fixture {} missing ({e}); see the test module's docs", path.display())
        });
        let fixture = from_hex(&text).unwrap();
        // The fixture decodes to the inputs, whatever the encoder does today.
        (case.check)(&fixture);
        if fixture != encoded {
            mismatches.push(format!(
                "{}:\n  fixture {}\n  encoded {}",
                case.name,
                to_hex(&fixture),
                to_hex(&encoded)
            ));
        }
    }
    assert!(mismatches.is_empty(), "encoding changed under {}:\n{}", dir.display(), mismatches.join("\n"));
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for name in &names {
        let stem = name.strip_suffix(".hex").unwrap_or_else(|| panic!("unexpected fixture file {name}"));
        assert!(cases.iter().any(|c| c.name == stem), "fixture {name} has no case");
    }
    assert_eq!(names.len(), cases.len());
}

/// The name the test harness gives the test function `name` of the module
/// `module` (pass `module_path!()`), for a test that runs itself again in a
/// child process with `--exact`: the module path without the crate.
///
/// ```
/// assert_eq!(nori_wal_tests::test_name("wal::wal_kill", "child"), "wal_kill::child");
/// assert_eq!(nori_wal_tests::test_name("golden", "child"), "child");
/// ```
#[must_use]
pub fn test_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_, path)) => format!("{path}::{name}"),
        None => name.to_owned(),
    }
}

/// A child process running the test `name` of `module` of the current
/// test binary again (the test sees `envs` and plays the child), its
/// standard output read line by line on a thread of its own: the lines
/// come through the receiver until the child exits or is killed (join the
/// thread after the kill to have them all).
///
/// # Panics
///
/// When the child cannot be started.
#[must_use]
pub fn spawn_child(
    module: &str,
    name: &str,
    envs: &[(&str, &std::ffi::OsStr)],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    use std::io::BufRead;
    let mut command = std::process::Command::new(std::env::current_exe().expect("the test binary"));
    command.args(["--exact", test_name(module, name).as_str(), "--nocapture", "--quiet"]);
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("the child's output");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx, reader)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&bytes)).unwrap(), bytes);
        assert_eq!(from_hex("# comment\n0a ff # trailing\n").unwrap(), vec![0x0a, 0xff]);
        assert!(from_hex("0").is_err());
        assert!(from_hex("zz").is_err());
    }
}
