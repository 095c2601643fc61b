//! The `nori-wal` command on real logs: every command, the exit codes of
//! `verify`, JSON that parses, and one-line errors.
#![cfg(feature = "cli")]

mod common;

use common::segment_files;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nori_wal::blocking::Wal;
use nori_wal::ring::{RingConfig, RingLog};
use nori_wal::{FsyncPolicy, Geometry, RamDevice, Record, WalConfig};

fn nori_wal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nori-wal")).args(args).output().expect("run nori-wal")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("nori-wal-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        if let Some(parent) = self.0.parent()
            && let Ok(entries) = std::fs::read_dir(parent)
        {
            let prefix = format!("{}.backup-", self.0.file_name().unwrap().to_string_lossy());
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

/// A synced log of `n` records over 4 KiB segments.
fn log(dir: &Path, n: u32) {
    let (wal, _) = Wal::open(WalConfig::new(dir).segment_size(4096).fsync(FsyncPolicy::Always)).unwrap();
    for i in 0..n {
        if i % 3 == 0 {
            wal.append(&Record::put(format!("key {i}").as_bytes(), b"value \"quoted\"\n")).unwrap();
        } else if i % 3 == 1 {
            wal.append(&Record::raw(&[0xFF, 0x00, i as u8])).unwrap();
        } else {
            wal.append(&Record::delete(format!("key {}", i - 2).as_bytes())).unwrap();
        }
    }
    wal.close().unwrap();
}

/// Tears the last frame of the newest segment, as a crash mid-write would.
fn tear_tail(dir: &Path) {
    let files = segment_files(dir);
    let last = files.last().unwrap();
    let bytes = std::fs::read(last).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() as u64;
    flip(last, end);
}

fn flip(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8];
    file.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x10;
    file.write_all_at(&b, offset).unwrap();
}

#[test]
fn info_dump_and_tail_show_the_log() {
    let scratch = Scratch::new("info");
    log(&scratch.0, 120);
    let dir = scratch.0.to_str().unwrap();
    let out = nori_wal(&["info", dir]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("records:         120") && text.contains("LSNs:            0 to 119"), "{text}");
    assert!(text.contains("health:          Clean"), "{text}");
    let out = nori_wal(&["dump", dir, "--from", "10", "--limit", "3"]);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.starts_with("10\traw\t0xff000a"), "{text}");
    let out = nori_wal(&["tail", dir, "-n", "2"]);
    assert_eq!(
        stdout(&out).lines().map(|l| l.split('\t').next().unwrap().to_string()).collect::<Vec<_>>(),
        ["118", "119"]
    );
}

#[test]
fn dump_json_parses() {
    let scratch = Scratch::new("json");
    log(&scratch.0, 30);
    let out = nori_wal(&["dump", scratch.0.to_str().unwrap(), "--json"]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(lines.len(), 30);
    assert_eq!(lines[0]["kind"], "put");
    assert_eq!(lines[0]["value"], "value \"quoted\"\n");
    assert_eq!(lines[1]["payload"], "hex:ff0001");
    assert_eq!(lines[2]["kind"], "delete");
}

#[test]
fn verify_exit_codes_say_healthy_torn_or_corrupt() {
    let scratch = Scratch::new("verify");
    log(&scratch.0, 200);
    let dir = scratch.0.to_str().unwrap();
    let out = nori_wal(&["verify", dir]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("healthy: 200 records"));
    // Damage in the middle: corrupt, with the LSN and the offset.
    let files = segment_files(&scratch.0);
    assert!(files.len() >= 3);
    flip(&files[1], 80);
    let out = nori_wal(&["verify", dir]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("corrupt") && text.contains("offset") && text.contains("expected LSN"), "{text}");
    // A torn tail: its own exit code.
    let scratch = Scratch::new("verify-torn");
    log(&scratch.0, 50);
    tear_tail(&scratch.0);
    let out = nori_wal(&["verify", scratch.0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("torn tail"), "{}", stdout(&out));
}

#[test]
fn repair_asks_for_yes_makes_a_backup_and_cuts_the_tail() {
    let scratch = Scratch::new("repair");
    log(&scratch.0, 50);
    tear_tail(&scratch.0);
    let dir = scratch.0.to_str().unwrap();
    let out = nori_wal(&["repair", dir]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("--yes"), "{}", stdout(&out));
    assert_eq!(nori_wal(&["verify", dir]).status.code(), Some(2), "nothing changed without --yes");
    // What is not the WAL's (a directory of its own mount) is not copied.
    std::fs::create_dir(scratch.0.join("lost+found")).unwrap();
    let out = nori_wal(&["repair", dir, "--yes"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    // Where the backup went, and how big it is.
    let line = text.lines().find_map(|l| l.strip_prefix("backup: ")).expect("a backup line");
    let (path, size) = line.split_once(" (").unwrap();
    let files = segment_files(Path::new(path)).len() + 1; // and LOCK
    let bytes: u64 = std::fs::read_dir(path).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert_eq!(size, format!("{files} files, {bytes} bytes)"), "{text}");
    assert!(text.contains("not copied (not the WAL's files): lost+found"), "{text}");
    assert_eq!(nori_wal(&["verify", dir]).status.code(), Some(0));
}

#[test]
fn repair_puts_the_backup_where_it_is_told() {
    let scratch = Scratch::new("repair-elsewhere");
    log(&scratch.0, 50);
    tear_tail(&scratch.0);
    let elsewhere = Scratch::new("repair-backups");
    std::fs::create_dir_all(&elsewhere.0).unwrap();
    let dir = scratch.0.to_str().unwrap();
    let out = nori_wal(&["repair", dir, "--yes", "--backup-dir", elsewhere.0.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let line = text.lines().find_map(|l| l.strip_prefix("backup: ")).expect("a backup line");
    let path = PathBuf::from(line.split(" (").next().unwrap());
    assert_eq!(path.parent(), Some(elsewhere.0.as_path()), "{text}");
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("{}.backup-", scratch.0.file_name().unwrap().to_string_lossy())),
        "{name}"
    );
    // The backup is the log as it was: torn.
    assert_eq!(nori_wal(&["verify", path.to_str().unwrap()]).status.code(), Some(2));
    assert_eq!(nori_wal(&["verify", dir]).status.code(), Some(0));
    // A backup directory that cannot take it: nothing changes.
    tear_tail(&scratch.0);
    let out = nori_wal(&["repair", dir, "--yes", "--backup-dir", "/nonexistent/nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing changed"), "{:?}", out);
    assert_eq!(
        nori_wal(&["verify", dir]).status.code(),
        Some(2),
        "still torn: not repaired without a backup"
    );
    // --no-backup and --backup-dir together are refused.
    let both = nori_wal(&["repair", dir, "--yes", "--no-backup", "--backup-dir", "/tmp"]);
    assert_eq!(both.status.code(), Some(2), "a usage error");
}

/// The permission bits of `path` itself.
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn repair_backups_keep_the_private_modes_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("repair-modes");
    log(&scratch.0, 50);
    tear_tail(&scratch.0);
    // One file a group may read: its copy keeps exactly that.
    let first = segment_files(&scratch.0)[0].clone();
    std::fs::set_permissions(&first, std::fs::Permissions::from_mode(0o640)).unwrap();
    let dir = scratch.0.to_str().unwrap();
    let out = Command::new("sh")
        .args(["-c", "umask 000 && exec \"$0\" repair --yes \"$1\""])
        .arg(env!("CARGO_BIN_EXE_nori-wal"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    let line = text.lines().find_map(|l| l.strip_prefix("backup: ")).expect("a backup line");
    let backup = PathBuf::from(line.split(" (").next().unwrap());
    assert!(backup.starts_with(scratch.0.parent().unwrap()), "beside the WAL: {}", backup.display());
    assert_eq!(mode_of(&backup), 0o700, "the backup directory");
    let mut copies = 0;
    for entry in std::fs::read_dir(&backup).unwrap() {
        let copy = entry.unwrap().path();
        let original = scratch.0.join(copy.file_name().unwrap());
        let want = if original == first { 0o640 } else { 0o600 };
        assert_eq!(mode_of(&copy), want, "{}", copy.display());
        copies += 1;
    }
    assert_eq!(copies, segment_files(&scratch.0).len() + 1, "every segment and LOCK");
}

#[test]
fn verify_leaves_other_names_alone_and_reports_a_false_segment_as_corrupt() {
    let scratch = Scratch::new("verify-names");
    log(&scratch.0, 20);
    let dir = scratch.0.to_str().unwrap();
    std::fs::create_dir(scratch.0.join("lost+found")).unwrap();
    std::fs::write(scratch.0.join("notes.txt"), b"not the WAL's").unwrap();
    assert_eq!(nori_wal(&["verify", dir]).status.code(), Some(0), "other names are not the WAL's");
    std::fs::write(scratch.0.join("copy.wal"), b"claims to be a segment").unwrap();
    let out = nori_wal(&["verify", dir]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("copy.wal"));
}

/// `repair --mode skip-damaged` declares the damage it skips lost, as
/// holes (format v2): the log then opens in every mode, and every count
/// the tools print agrees. A log of format v1 has no holes: the tool says
/// that it still needs that mode.
#[test]
fn repair_past_damage_declares_it_lost_or_says_the_log_still_needs_that_mode() {
    let scratch = Scratch::new("repair-holes");
    let write = |dir: &Path, version, policy| {
        let config = WalConfig::new(dir).segment_size(4096).fsync(policy).format(version);
        let (wal, _) = Wal::open(config).unwrap();
        for i in 0..800u32 {
            wal.append(&Record::raw(&i.to_le_bytes())).unwrap();
        }
        wal.close().unwrap();
    };
    write(&scratch.0, nori_wal::Version::V2, FsyncPolicy::Os);
    let files = segment_files(&scratch.0);
    assert!(files.len() >= 3);
    // The fourth record's payload: after the 32-byte header, the opening
    // mark (24 bytes) and three frames of 12.
    flip(&files[0], 32 + 24 + 3 * 12 + 9);
    let dir = scratch.0.to_str().unwrap();
    assert_eq!(nori_wal(&["verify", dir]).status.code(), Some(3));
    let out = nori_wal(&["repair", dir, "--yes", "--mode", "skip-damaged"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("declared lost: 1 LSNs, as holes in 1 rewritten segments"), "{text}");
    assert!(text.contains("repaired: 799 records"), "{text}");
    let out = nori_wal(&["verify", dir, "--mode", "strict"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("799 records"), "{}", stdout(&out));
    let (wal, info) = Wal::open(WalConfig::new(&scratch.0).recovery(nori_wal::RecoveryMode::Strict)).unwrap();
    assert_eq!((info.records, info.holes, info.case), (799, 1, nori_wal::ring::RecoveryCase::Clean));
    let mut iter = wal.iter().unwrap();
    let mut lsns = Vec::new();
    while let Some(entry) = iter.try_next().unwrap() {
        assert_eq!(entry.record, Record::raw(&(entry.lsn as u32).to_le_bytes()));
        lsns.push(entry.lsn);
    }
    assert_eq!(lsns, (0..800).filter(|&l| l != 3).collect::<Vec<u64>>());
    drop(iter);
    drop(wal);
    // Format v1: the damage stays, and the tool says so.
    let scratch = Scratch::new("repair-skip-v1");
    write(&scratch.0, nori_wal::Version::V1, FsyncPolicy::Always);
    // The first record's payload in v1: after a 56-byte header and a
    // 32-byte mark, a frame of 20 (later marks claim it durable).
    flip(&segment_files(&scratch.0)[0], 56 + 32 + 17);
    let dir = scratch.0.to_str().unwrap();
    let out = nori_wal(&["repair", dir, "--yes", "--mode", "skip-damaged"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("still damaged") && text.contains("SkipDamaged"), "{text}");
    assert!(!text.contains("repaired:"), "{text}");
    // A torn tail, by contrast, is repaired for every mode.
    let scratch = Scratch::new("repair-torn");
    log(&scratch.0, 50);
    tear_tail(&scratch.0);
    let out = nori_wal(&["repair", scratch.0.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("repaired:"));
}

#[test]
fn info_reports_files_open_to_more_users_than_allowed() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("info-modes");
    log(&scratch.0, 10);
    let dir = scratch.0.to_str().unwrap();
    assert!(!stdout(&nori_wal(&["info", dir])).contains("permissions:"), "private: nothing to say");
    std::fs::set_permissions(scratch.0.join("LOCK"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = stdout(&nori_wal(&["info", dir]));
    let line = out.lines().find(|l| l.starts_with("permissions:")).expect("a permissions line");
    assert!(line.contains("LOCK has mode 0o644; the WAL allows 0o600"), "{line}");
    assert_eq!(mode_of(&scratch.0.join("LOCK")), 0o644, "info changes nothing");
}

#[test]
fn images_and_flash_dumps_are_read_with_their_geometry() {
    let scratch = Scratch::new("image");
    std::fs::create_dir_all(&scratch.0).unwrap();
    let geometry = Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap();
    let mut device = RamDevice::new(vec![0xFF; 4 * 4096], geometry).unwrap();
    let mut buffer = [0u8; 512];
    {
        let (mut log, _) = RingLog::open(&mut device, RingConfig::new(4096), &mut buffer).unwrap();
        for i in 0..20u8 {
            log.append(&Record::raw(&[i])).unwrap();
        }
        log.sync().unwrap();
    }
    let path = scratch.0.join("flash.bin");
    std::fs::write(&path, device.bytes()).unwrap();
    let p = path.to_str().unwrap();
    let flash =
        ["--segment-size", "4096", "--program-unit", "8", "--erase-unit", "4096", "--erase-value", "0xff"];
    let out = nori_wal(&[&["info", p][..], &flash].concat());
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("records:         20"), "{}", stdout(&out));
    let out = nori_wal(&[&["verify", p][..], &flash].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = nori_wal(&[&["dump", p, "--limit", "2"][..], &flash].concat());
    assert_eq!(stdout(&out), "0\traw\t0x00\n1\traw\t0x01\n");
    // Without a geometry: a clear one-line error.
    let out = nori_wal(&["info", p]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--segment-size"), "{err}");
}

/// `verify` checks a format v2 ring's seals against its frames: a seal that
/// checks out but holds the wrong count is damage in every mode; a torn
/// seal loses nothing and is reported in `--mode strict`. An image read
/// with another segment size than it was written with is refused, naming
/// the size.
#[test]
fn verify_checks_the_seals_of_a_v2_ring() {
    use nori_wal::format::{EpochKey, Seal, v2};
    let scratch = Scratch::new("image-seals");
    std::fs::create_dir_all(&scratch.0).unwrap();
    let geometry = Geometry::try_new(1, 8, 4096, Some(0xFF), false).unwrap();
    let mut device = RamDevice::new(vec![0xFF; 4 * 4096], geometry).unwrap();
    let mut buffer = [0u8; 512];
    {
        let (mut log, _) = RingLog::open(&mut device, RingConfig::new(4096), &mut buffer).unwrap();
        for i in 0..300u32 {
            log.append(&Record::raw(&i.to_le_bytes())).unwrap();
            log.sync().unwrap();
        }
    }
    let image = device.bytes().to_vec();
    let flash =
        ["--segment-size", "4096", "--program-unit", "8", "--erase-unit", "4096", "--erase-value", "0xff"];
    let verify = |name: &str, image: &[u8], extra: &[&str]| {
        let path = scratch.0.join(name);
        std::fs::write(&path, image).unwrap();
        nori_wal(&[&["verify", path.to_str().unwrap()][..], &flash, extra].concat())
    };
    let out = verify("healthy.bin", &image, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = verify("healthy.bin", &image, &["--mode", "strict"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Slot 0 is sealed (a later segment follows it): rewrite its seal with
    // a record count one short, under a CRC that holds.
    let header = nori_wal::format::AnyHeader::decode_in(&image, 4096).unwrap();
    let seal_at = 4096 - 16;
    let key = EpochKey::new(header.epoch);
    let frame = v2::decode_frame(&image[seal_at..4096], &key, header.base_lsn).unwrap();
    let nori_wal::format::Body::Seal(seal) = frame.body().unwrap() else { panic!("not a seal") };
    let mut wrong = image.clone();
    let bad = Seal { records: seal.records - 1, ..seal };
    v2::EncodedFrame::seal(bad).write_to(&mut wrong[seal_at..4096], &key, header.base_lsn).unwrap();
    let out = verify("wrong-seal.bin", &wrong, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stdout(&out).contains("seal"), "{}", stdout(&out));
    // A torn seal: nothing lost; only strict reports it.
    let mut torn = image.clone();
    torn[seal_at + 9] ^= 0x40;
    let out = verify("torn-seal.bin", &torn, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = verify("torn-seal.bin", &torn, &["--mode", "strict"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    // Another segment size: refused, naming the one the ring was written with.
    let path = scratch.0.join("healthy.bin");
    let other =
        ["--segment-size", "8192", "--program-unit", "8", "--erase-unit", "4096", "--erase-value", "0xff"];
    let out = nori_wal(&[&["verify", path.to_str().unwrap()][..], &other].concat());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("4096-byte segments"), "{out:?}");
}

/// `verify` checks the seals of a WAL directory written in format v2 (as
/// recovery does), and `info` names each segment's version.
#[test]
fn verify_checks_the_seals_of_a_v2_wal_directory() {
    use nori_wal::format::{AnyHeader, Body, EpochKey, Seal, v2};
    let scratch = Scratch::new("dir-seals");
    let dir = scratch.0.join("wal");
    {
        let (wal, _) = Wal::open(WalConfig::new(&dir).segment_size(4096).fsync(FsyncPolicy::Os)).unwrap();
        for i in 0..400u32 {
            wal.append(&Record::raw(&i.to_le_bytes())).unwrap();
        }
        wal.close().unwrap();
    }
    let path = dir.to_str().unwrap();
    let out = nori_wal(&["verify", path, "--mode", "strict"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = nori_wal(&["info", path]);
    assert!(stdout(&out).contains("format v2"), "{}", stdout(&out));
    // The first segment is sealed: its seal rewritten a record short, under
    // a CRC that holds.
    let first = &segment_files(&dir)[0];
    let mut bytes = std::fs::read(first).unwrap();
    let header = AnyHeader::decode(&bytes).unwrap();
    let key = EpochKey::new(header.epoch);
    let at = bytes.len() - v2::SEAL_LEN;
    let frame = v2::decode_frame(&bytes[at..], &key, header.base_lsn).unwrap();
    let Body::Seal(seal) = frame.body().unwrap() else { panic!("not a seal") };
    let bad = Seal { records: seal.records - 1, ..seal };
    v2::EncodedFrame::seal(bad).write_to(&mut bytes[at..], &key, header.base_lsn).unwrap();
    std::fs::write(first, &bytes).unwrap();
    let out = nori_wal(&["verify", path]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stdout(&out).contains("seal"), "{}", stdout(&out));
}

#[test]
fn errors_are_one_line_and_every_command_has_help() {
    let out = nori_wal(&["info", "/nonexistent/nori-wal"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("nori-wal: error:"), "{err}");
    for command in ["info", "dump", "verify", "repair", "tail", "bench"] {
        let out = nori_wal(&[command, "--help"]);
        assert!(out.status.success(), "{command} --help");
        assert!(stdout(&out).contains("Usage:"), "{command}");
    }
}

/// The writer of the live tests: appends 64-byte records from four threads
/// until its standard input closes, then prints the LSN it reached.
fn live_writer(spec: &str) {
    let (policy, dir) = spec.split_once(':').expect("policy:dir");
    let (fsync, segment) =
        if policy == "os" { (FsyncPolicy::Os, 64 << 10) } else { (FsyncPolicy::Always, 1 << 20) };
    let (wal, _) = Wal::open(WalConfig::new(dir).segment_size(segment).fsync(fsync)).expect("writer opens");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Bursts of 200 (about 1.6 MB/s from each thread under
                    // `Os`), so that the log stays small on any disk.
                    for _ in 0..200 {
                        wal.append(&Record::raw(&[0x42; 64])).expect("append");
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            });
        }
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line); // until closed
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    println!("end {}", wal.next_lsn());
    wal.close().expect("close");
}

#[test]
fn verify_and_tail_f_on_a_log_being_written_never_cry_wolf() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    if let Ok(spec) = std::env::var("NORI_WAL_CLI_LIVE_WRITER") {
        live_writer(&spec);
        return;
    }
    for policy in ["always", "os"] {
        let scratch = Scratch::new(&format!("live-{policy}"));
        std::fs::create_dir_all(&scratch.0).unwrap();
        let mut writer = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "verify_and_tail_f_on_a_log_being_written_never_cry_wolf",
                "--nocapture",
                "--quiet",
            ])
            .env("NORI_WAL_CLI_LIVE_WRITER", format!("{policy}:{}", scratch.0.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for the writer's first segment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while segment_files(&scratch.0).is_empty() {
            assert!(std::time::Instant::now() < deadline, "{policy}: the writer wrote nothing");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let dir = scratch.0.to_str().unwrap();
        let mut tail = Command::new(env!("CARGO_BIN_EXE_nori-wal"))
            .args(["tail", "-f", "-n", "1000000000", dir])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let tail_out = tail.stdout.take().unwrap();
        let printed = std::thread::spawn(move || {
            let mut lsns = Vec::new();
            for line in BufReader::new(tail_out).lines() {
                let line = line.unwrap();
                lsns.push(line.split('\t').next().unwrap().parse::<u64>().unwrap());
            }
            lsns
        });
        let mut in_use = 0;
        for round in 0..50 {
            let out = nori_wal(&["verify", dir]);
            let text = stdout(&out);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{policy}: verify round {round} said: {text} {err}");
            assert!(text.contains("healthy"), "{text}");
            in_use += u32::from(text.contains("in use by a writer"));
            // Spread over seconds, so that the writer rotates meanwhile.
            std::thread::sleep(std::time::Duration::from_millis(60));
        }
        assert!(in_use > 40, "{policy}: verify saw the writer only {in_use} times in 50");
        let info = nori_wal(&["info", dir]);
        assert!(stdout(&info).contains("in use:"), "{}", stdout(&info));
        // Stop the writer; tail -f catches up with its end.
        drop(writer.stdin.take());
        let lines: Vec<String> =
            BufReader::new(writer.stdout.take().unwrap()).lines().map_while(Result::ok).collect();
        let end: u64 =
            lines.iter().find_map(|l| l.trim().strip_prefix("end ")?.parse().ok()).expect("the writer's end");
        assert!(writer.wait().unwrap().success());
        std::thread::sleep(std::time::Duration::from_secs(2));
        assert!(tail.try_wait().unwrap().is_none(), "{policy}: tail -f stopped while the log was written");
        tail.kill().unwrap();
        let mut errors = String::new();
        std::io::Read::read_to_string(&mut tail.stderr.take().unwrap(), &mut errors).unwrap();
        tail.wait().unwrap();
        let lsns = printed.join().unwrap();
        assert!(errors.is_empty(), "{policy}: tail -f said: {errors}");
        assert_eq!(lsns.first(), Some(&0), "{policy}");
        assert!(lsns.windows(2).all(|w| w[1] == w[0] + 1), "{policy}: tail -f skipped or repeated");
        assert_eq!(lsns.last().map(|l| l + 1), Some(end), "{policy}: tail -f printed every record");
        // At rest, the same log is healthy.
        assert_eq!(nori_wal(&["verify", dir]).status.code(), Some(0));
        let files = segment_files(&scratch.0).len();
        assert!(files > 2, "{policy}: the writer rotated ({files} files)");
        println!("{policy}: 50 verifies and tail -f over {end} records in {files} files written meanwhile");
    }
}

#[test]
fn bench_refuses_a_device_that_holds_a_file_system() {
    let scratch = Scratch::new("bench-device");
    std::fs::create_dir_all(&scratch.0).unwrap();
    let image = scratch.0.join("disk.img");
    let file = std::fs::File::create(&image).unwrap();
    file.set_len(4 << 20).unwrap();
    // The ext2/3/4 superblock magic.
    std::os::unix::fs::FileExt::write_all_at(&file, &[0x53, 0xEF], 1080).unwrap();
    let out = nori_wal(&["bench", "--device", image.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ext2/3/4 file system"), "{err}");
    assert!(stdout(&out).is_empty(), "nothing ran: {}", stdout(&out));
}
