//! Private by default: what the file WAL creates gets the documented modes
//! whatever the umask (the directory `0o700`, `LOCK` and segments `0o600`,
//! or the wider modes configured), modes wider than configured are
//! reported and left alone, and a link in place of one of the WAL's own
//! files is refused by name, with no byte outside the directory changed.
#![cfg(unix)]

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use nori_wal::blocking::Wal;
use nori_wal::wal::Inspection;
use nori_wal::{Error, Record, RecoveryMode, WalConfig};
use nori_wal_tests::walkit::{Scratch, segment_files};

/// The permission bits of `path` itself (a link is not followed).
fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A closed WAL in `dir`: several 4 KiB segments, rotated, and a suffix
/// cut (which writes a copy of the cut segment and renames it over it).
fn write_log(config: WalConfig) {
    let (wal, _) = Wal::open(config.segment_size(4096)).unwrap();
    for i in 0..300u32 {
        wal.append(&Record::raw(&i.to_le_bytes())).unwrap();
    }
    wal.truncate_after(250).unwrap();
    wal.append(&Record::raw(b"after the cut")).unwrap();
    wal.close().unwrap();
}

/// Runs the child test below in a process of its own under the umask
/// `mask` (set by a shell, which then becomes the test binary), writing a
/// WAL in `dir`; `wide` asks for the modes `0o640`/`0o750`.
fn write_under_umask(mask: &str, dir: &Path, wide: bool) {
    let name = nori_wal_tests::test_name(module_path!(), "umask_child_writes_a_log");
    let status = Command::new("sh")
        .args(["-c", &format!("umask {mask} && exec \"$0\" --exact {name} --nocapture --quiet")])
        .arg(std::env::current_exe().unwrap())
        .env("NORI_WAL_MODES_CHILD", dir)
        .env("NORI_WAL_MODES_WIDE", if wide { "1" } else { "0" })
        .status()
        .unwrap();
    assert!(status.success(), "the child under umask {mask} failed");
}

/// The child of [`write_under_umask`]; does nothing in a normal run.
#[test]
fn umask_child_writes_a_log() {
    let Some(dir) = std::env::var_os("NORI_WAL_MODES_CHILD") else { return };
    let config = WalConfig::new(PathBuf::from(dir));
    let wide = std::env::var("NORI_WAL_MODES_WIDE").is_ok_and(|v| v == "1");
    write_log(if wide { config.modes(0o640, 0o750) } else { config });
}

/// Every mode the WAL gave: its directory, `LOCK`, each segment.
fn modes(dir: &Path) -> (u32, u32, Vec<u32>) {
    let segments: Vec<u32> = segment_files(dir).iter().map(|p| mode_of(p)).collect();
    assert!(segments.len() >= 3, "the log spans several segments");
    (mode_of(dir), mode_of(&dir.join("LOCK")), segments)
}

#[test]
fn the_directory_and_files_are_private_whatever_the_umask() {
    for mask in ["022", "000", "077"] {
        let scratch = Scratch::new("modes-private");
        std::fs::create_dir_all(&scratch.0).unwrap();
        write_under_umask(mask, &scratch.wal(), false);
        let (dir, lock, segments) = modes(&scratch.wal());
        assert_eq!((dir, lock), (0o700, 0o600), "umask {mask}");
        assert!(segments.iter().all(|&m| m == 0o600), "umask {mask}: segments {segments:?}");
        // Reopened as it was left: nothing to report.
        let (_wal, info) = Wal::open(WalConfig::new(scratch.wal()).segment_size(4096)).unwrap();
        assert!(info.loose_permissions.is_empty(), "{:?}", info.loose_permissions);
    }
}

#[test]
fn configured_wider_modes_are_applied_exactly() {
    for mask in ["022", "000", "077"] {
        let scratch = Scratch::new("modes-wide");
        std::fs::create_dir_all(&scratch.0).unwrap();
        write_under_umask(mask, &scratch.wal(), true);
        let (dir, lock, segments) = modes(&scratch.wal());
        assert_eq!((dir, lock), (0o750, 0o640), "umask {mask}");
        assert!(segments.iter().all(|&m| m == 0o640), "umask {mask}: segments {segments:?}");
    }
}

#[test]
fn modes_that_take_the_owners_rights_are_refused() {
    let scratch = Scratch::new("modes-refused");
    for (file, dir) in [(0o400, 0o700), (0o600, 0o500), (0o1600, 0o700), (0o600, 0o40700)] {
        let err = Wal::open(WalConfig::new(scratch.wal()).modes(file, dir)).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{file:o}/{dir:o}: {err}");
        assert!(err.to_string().contains("0o600"), "{err}");
    }
    assert!(!scratch.wal().exists(), "nothing was created");
}

#[test]
fn wider_modes_found_at_open_are_reported_and_left_alone() {
    let scratch = Scratch::new("modes-loose");
    let dir = scratch.wal();
    write_log(WalConfig::new(&dir));
    let first = segment_files(&dir)[0].clone();
    chmod(&dir, 0o755);
    chmod(&dir.join("LOCK"), 0o644);
    chmod(&first, 0o604);
    let (wal, info) = Wal::open(WalConfig::new(&dir).segment_size(4096)).unwrap();
    let mut reported: Vec<(PathBuf, u32, u32)> =
        info.loose_permissions.iter().map(|p| (p.path.clone(), p.mode, p.allowed)).collect();
    reported.sort();
    let mut expected =
        vec![(dir.clone(), 0o755, 0o700), (dir.join("LOCK"), 0o644, 0o600), (first.clone(), 0o604, 0o600)];
    expected.sort();
    assert_eq!(reported, expected);
    assert!(info.loose_permissions[0].to_string().contains("the WAL allows"));
    // Nothing was changed: the operator decides.
    assert_eq!((mode_of(&dir), mode_of(&dir.join("LOCK")), mode_of(&first)), (0o755, 0o644, 0o604));
    drop(wal);
    // A group that was given access on purpose is not reported.
    let (_wal, info) = Wal::open(WalConfig::new(&dir).segment_size(4096).modes(0o644, 0o755)).unwrap();
    assert!(info.loose_permissions.is_empty(), "{:?}", info.loose_permissions);
    // The read-only inspection (what `nori-wal info` prints) says it too.
    drop(_wal);
    let look = Inspection::open(&dir, RecoveryMode::TolerateTornTail).unwrap();
    assert_eq!(look.info().loose_permissions.len(), 3);
}

/// A file outside the WAL directory, and its bytes.
fn outside_file(scratch: &Scratch, name: &str, bytes: &[u8]) -> PathBuf {
    let outside = scratch.0.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let path = outside.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Opening the WAL and inspecting it are refused naming `link`, in every
/// recovery mode, and `target` keeps its bytes.
fn refused_naming(dir: &Path, link: &Path, target: &Path) {
    let before = std::fs::read(target).unwrap();
    for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::PointInTime, RecoveryMode::SkipDamaged] {
        match Wal::open(WalConfig::new(dir).segment_size(4096).recovery(mode)) {
            Err(Error::Symlink { path }) => assert_eq!(path, link, "{mode:?}"),
            other => panic!("{mode:?}: {other:?}"),
        }
        match Inspection::open(dir, mode) {
            Err(Error::Symlink { path }) => assert_eq!(path, link, "{mode:?}"),
            other => panic!("{mode:?}: {:?}", other.map(|_| ())),
        }
    }
    let err = Wal::open(WalConfig::new(dir)).unwrap_err();
    assert!(err.to_string().contains("symbolic link") && err.to_string().contains(&*link.to_string_lossy()));
    assert_eq!(std::fs::read(target).unwrap(), before, "a byte outside the directory changed");
    assert!(std::fs::symlink_metadata(link).unwrap().file_type().is_symlink(), "the link is left as it was");
}

#[test]
fn a_segment_that_is_a_link_is_refused() {
    let scratch = Scratch::new("link-segment");
    let dir = scratch.wal();
    write_log(WalConfig::new(&dir));
    // The newest segment moved out, a link to it left in its place.
    let newest = segment_files(&dir).pop().unwrap();
    let target = outside_file(&scratch, "moved.wal", &std::fs::read(&newest).unwrap());
    std::fs::remove_file(&newest).unwrap();
    symlink(&target, &newest).unwrap();
    refused_naming(&dir, &newest, &target);
}

#[test]
fn a_lock_that_is_a_link_is_refused() {
    let scratch = Scratch::new("link-lock");
    let dir = scratch.wal();
    write_log(WalConfig::new(&dir));
    let target = outside_file(&scratch, "precious", b"someone else's data");
    std::fs::remove_file(dir.join("LOCK")).unwrap();
    symlink(&target, dir.join("LOCK")).unwrap();
    let before = std::fs::read(&target).unwrap();
    match Wal::open(WalConfig::new(&dir).segment_size(4096)) {
        Err(Error::Symlink { path }) => assert_eq!(path, dir.join("LOCK")),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&target).unwrap(), before, "the LOCK's target was written");
}

#[test]
fn a_link_under_a_segment_name_pointing_outside_is_refused() {
    let scratch = Scratch::new("link-outside");
    let dir = scratch.wal();
    write_log(WalConfig::new(&dir));
    // A new name, past the log's end, pointing at a file outside; and one
    // pointing at a directory outside.
    let target = outside_file(&scratch, "precious", &[7u8; 8192]);
    let link = dir.join(format!("{:020}.wal", 99_999));
    symlink(&target, &link).unwrap();
    refused_naming(&dir, &link, &target);
    std::fs::remove_file(&link).unwrap();
    let link = dir.join(format!("{:020}.wal", 88_888));
    symlink(target.parent().unwrap(), &link).unwrap();
    match Wal::open(WalConfig::new(&dir).segment_size(4096)) {
        Err(Error::Symlink { path }) => assert_eq!(path, link),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_leftover_cut_copy_that_is_a_link_is_removed_not_followed() {
    let scratch = Scratch::new("link-cut");
    let dir = scratch.wal();
    write_log(WalConfig::new(&dir));
    let target = outside_file(&scratch, "precious", b"keep me");
    let first = segment_files(&dir)[0].clone();
    let mut cut = first.into_os_string();
    cut.push(".cut");
    symlink(&target, &cut).unwrap();
    let (wal, info) = Wal::open(WalConfig::new(&dir).segment_size(4096)).unwrap();
    assert!(info.corruption.is_none());
    assert!(std::fs::symlink_metadata(&cut).is_err(), "the leftover link was removed");
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    // And the next cut copy is created afresh, never through a link.
    symlink(&target, &cut).unwrap();
    wal.truncate_after(10).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
}
