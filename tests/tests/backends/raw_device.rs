//! The raw-partition backend on an image file and, in CI, on a real loop
//! block device: round trips, refusals, and a crash test that kills a
//! writer process and reopens.

use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

use nori_wal_backends::raw::{RawDevice, RawErrorKind, RawOptions, detect_signature};
use nori_wal_core::ring::{RingConfig, RingLog};
use nori_wal_core::{BlockDevice, Lsn, Record};
use nori_wal_tests::media::{ImageFile, loop_device};

const TMP: &str = env!("CARGO_TARGET_TMPDIR");

/// The loop device is shared by the tests of this binary: one at a time.
static LOOP: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Zeroes a device, so that a test starts from an empty log whatever ran on
/// it before.
fn wipe(path: &Path) {
    let mut device = RawDevice::open(path, RawOptions::default().force(true)).unwrap();
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < device.capacity() {
        let n = (device.capacity() - at).min(zeros.len() as u64) as usize;
        device.program(at, &zeros[..n]).unwrap();
        at += n as u64;
    }
    device.sync().unwrap();
}
const SEGMENT: u64 = 256 * 1024;

fn payload(lsn: Lsn) -> Vec<u8> {
    format!("raw record {lsn} {}", "x".repeat((lsn % 97) as usize)).into_bytes()
}

/// Appends `n` records with a sync every 10, then reopens and checks them.
fn round_trip(path: &Path, options: RawOptions, n: u64) {
    let mut buffer = vec![0u8; 64 * 1024];
    {
        let device = RawDevice::open(path, options).unwrap();
        let (mut log, info) = RingLog::open(device, RingConfig::new(SEGMENT), &mut buffer).unwrap();
        let start = log.next_lsn();
        assert_eq!(info.records, start);
        for lsn in start..start + n {
            assert_eq!(log.append(&Record::raw(&payload(lsn))).unwrap(), lsn);
            if lsn % 10 == 9 {
                log.sync().unwrap();
            }
        }
        log.sync().unwrap();
    }
    let device = RawDevice::open(path, options).unwrap();
    let (mut log, info) = RingLog::open(device, RingConfig::new(SEGMENT), &mut buffer).unwrap();
    assert!(info.corruption.is_none() && !info.torn_tail, "{info:?}");
    let mut read = vec![0u8; 64 * 1024];
    let first = log.first_lsn();
    let mut iter = log.iter_from(first, &mut read).unwrap();
    let mut count = 0;
    while let Some(entry) = iter.try_next().unwrap() {
        assert_eq!(entry.record, Record::raw(&payload(entry.lsn)));
        count += 1;
    }
    assert!(count >= n);
}

#[test]
fn image_file_round_trip() {
    let image = ImageFile::new(TMP, "raw-round-trip", 4 << 20);
    let device = RawDevice::open(&image.path, RawOptions::default()).unwrap();
    assert_eq!(device.geometry().program_unit(), 4096);
    assert_eq!(device.capacity(), 4 << 20);
    drop(device);
    round_trip(&image.path, RawOptions::default(), 500);
    round_trip(&image.path, RawOptions::default(), 500);
    // Never grown or shrunk.
    assert_eq!(std::fs::metadata(&image.path).unwrap().len(), 4 << 20);
}

#[test]
fn image_file_with_512_byte_sectors() {
    let image = ImageFile::new(TMP, "raw-512", 2 << 20);
    round_trip(&image.path, RawOptions::default().file_sector_size(512), 300);
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

#[test]
fn foreign_signatures_are_refused_unless_forced() {
    let cases: [(&str, u64, &[u8]); 5] = [
        ("ext2/3/4", 1080, &[0x53, 0xEF]),
        ("XFS", 0, b"XFSB"),
        ("GPT", 512, b"EFI PART"),
        ("LUKS", 0, b"LUKS\xba\xbe"),
        ("swap", 4086, b"SWAPSPACE2"),
    ];
    for (name, offset, bytes) in cases {
        let image = ImageFile::new(TMP, "raw-foreign", 1 << 20);
        write_at(&image.path, offset, bytes);
        let err = RawDevice::open(&image.path, RawOptions::default()).unwrap_err();
        assert!(matches!(err.kind, RawErrorKind::ForeignData { .. }), "{name}: {err}");
        let message = err.to_string();
        assert!(message.contains("force") && message.contains(&*image.path.to_string_lossy()), "{message}");
        assert!(RawDevice::open(&image.path, RawOptions::default().force(true)).is_ok(), "{name}");
    }
    // An MBR with a partition entry.
    let mut mbr = vec![0u8; 512];
    mbr[446 + 4] = 0x83;
    mbr[446 + 12] = 0x10;
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    assert_eq!(detect_signature(&mbr), Some("an MBR partition table"));
    // Blank space and a nori-wal log are not foreign.
    assert_eq!(detect_signature(&[0u8; 70_000]), None);
    let mut ours = vec![0u8; 70_000];
    ours[..8].copy_from_slice(b"NORIWAL\0");
    ours[1080..1082].copy_from_slice(&[0x53, 0xEF]);
    assert_eq!(detect_signature(&ours), None);
}

#[test]
fn bad_paths_get_clear_errors() {
    let err = RawDevice::open(TMP, RawOptions::default()).unwrap_err();
    assert!(matches!(err.kind, RawErrorKind::NotADevice), "{err}");
    let err = RawDevice::open(format!("{TMP}/does-not-exist.img"), RawOptions::default()).unwrap_err();
    assert!(matches!(err.kind, RawErrorKind::Io(_)), "{err}");
    let odd = ImageFile::new(TMP, "raw-odd", 4096 * 3 + 100);
    let err = RawDevice::open(&odd.path, RawOptions::default()).unwrap_err();
    assert!(matches!(err.kind, RawErrorKind::BadSize { .. }), "{err}");
    assert!(err.to_string().contains("final size"), "{err}");
}

#[test]
fn a_mounted_device_is_refused() {
    // The device the root file system is mounted from, if it is one.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = info.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        (fields.get(4) == Some(&"/")).then(|| fields.get(sep + 2).map(|s| s.to_string())).flatten()
    });
    match root.filter(|dev| dev.starts_with("/dev/") && Path::new(dev).exists()) {
        Some(dev) => {
            let err = RawDevice::open(&dev, RawOptions::default().force(true)).unwrap_err();
            assert!(matches!(err.kind, RawErrorKind::Mounted { .. }), "{dev}: {err}");
            assert!(err.to_string().contains("unmount"), "{err}");
        }
        None => eprintln!(
            "*** the root file system is not on a block device here: mounted check not exercised ***"
        ),
    }
}

#[test]
fn loop_block_device_round_trip() {
    let Some(device) = loop_device("loop_block_device_round_trip") else { return };
    let _one_at_a_time = LOOP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    wipe(&device);
    let raw = RawDevice::open(&device, RawOptions::default().force(true)).unwrap();
    println!(
        "{}: {} bytes, {}-byte sectors",
        device.display(),
        raw.capacity(),
        raw.geometry().program_unit()
    );
    drop(raw);
    round_trip(&device, RawOptions::default().force(true), 400);
}

/// The child side of the crash test: appends and syncs forever, printing
/// each acknowledged LSN. Does nothing unless the parent set the variable.
#[test]
fn crash_child_writer() {
    let Some(path) = std::env::var_os("NORI_WAL_CRASH_CHILD") else { return };
    let device = RawDevice::open(&path, RawOptions::default().force(true)).unwrap();
    let mut buffer = vec![0u8; 64 * 1024];
    let (mut log, _) = RingLog::open(
        device,
        RingConfig::new(SEGMENT).when_full(nori_wal_core::ring::FullPolicy::OverwriteOldest),
        &mut buffer,
    )
    .unwrap();
    let mut out = std::io::stdout().lock();
    loop {
        let lsn = log.append(&Record::raw(&payload(log.next_lsn()))).unwrap();
        if lsn % 3 == 0 {
            log.sync().unwrap();
            writeln!(out, "acked {lsn}").unwrap();
            out.flush().unwrap();
        }
    }
}

/// Kills the writer process at several moments and reopens: every LSN it
/// acknowledged is there, and everything read back is what was written.
fn crash_test_on(path: &Path) {
    let mut last_acked = None;
    for round in 0..4 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                nori_wal_tests::test_name(module_path!(), "crash_child_writer").as_str(),
                "--nocapture",
                "--test-threads=1",
            ])
            .env("NORI_WAL_CRASH_CHILD", path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut acked = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("acked ") {
                acked = Some(n.parse::<Lsn>().unwrap());
                if acked.unwrap() >= 300 * (round + 1) {
                    child.kill().unwrap();
                    break;
                }
            }
        }
        child.wait().unwrap();
        let acked = acked.expect("the child acknowledged something");
        let device = RawDevice::open(path, RawOptions::default().force(true)).unwrap();
        let mut buffer = vec![0u8; 64 * 1024];
        let (mut log, info) = RingLog::open(device, RingConfig::new(SEGMENT), &mut buffer).unwrap();
        assert!(info.corruption.is_none(), "{info:?}");
        assert!(
            log.next_lsn() > acked,
            "round {round}: acknowledged {acked}, recovered up to {}",
            log.next_lsn()
        );
        let mut read = vec![0u8; 64 * 1024];
        let first = log.first_lsn();
        let mut iter = log.iter_from(first, &mut read).unwrap();
        while let Some(entry) = iter.try_next().unwrap() {
            assert_eq!(entry.record, Record::raw(&payload(entry.lsn)));
        }
        println!("round {round}: killed after LSN {acked} was acknowledged; recovered {:?}", info.last_lsn);
        last_acked = Some(acked);
    }
    assert!(last_acked.is_some());
}

#[test]
fn crash_by_kill_on_an_image_file() {
    let image = ImageFile::new(TMP, "raw-kill", 2 << 20);
    crash_test_on(&image.path);
}

#[test]
fn crash_by_kill_on_a_loop_block_device() {
    let Some(device) = loop_device("crash_by_kill_on_a_loop_block_device") else { return };
    let _one_at_a_time = LOOP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    wipe(&device);
    crash_test_on(&device);
}
