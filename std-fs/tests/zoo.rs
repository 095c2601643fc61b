//! A directory zoo: WAL directories as users leave them (damaged, mixed,
//! locked, unreadable, read-only), each run through every tool: `verify`
//! (exit code and message), `info`, `dump`, `repair --yes`, and
//! `Wal::open` in each recovery mode. Each row ends in a clear error or an
//! honest report; no acknowledged record is lost without a report; nothing
//! panics; `repair` leaves a backup. RELIABILITY.md has the table.
#![cfg(all(feature = "cli", unix))]

mod common;

use common::segment_files;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nori_wal::blocking::Wal;
use nori_wal::{Error, FsyncPolicy, Record, RecoveryMode, WalConfig};

/// Records in the zoo's log, and its segment size.
const RECORDS: u64 = 3000;
const SEGMENT: u64 = 64 << 10;

fn config(dir: &Path) -> WalConfig {
    WalConfig::new(dir).segment_size(SEGMENT).fsync(FsyncPolicy::Os)
}

/// The zoo's healthy log: `RECORDS` records of 100 bytes in 64 KiB segments
/// (six files), closed cleanly.
fn healthy(dir: &Path) {
    log_of(dir, 100);
}

/// A log of `RECORDS` records of `len` bytes.
fn log_of(dir: &Path, len: usize) {
    let (wal, _) = Wal::open(config(dir)).unwrap();
    for i in 0..RECORDS {
        let mut v = format!("record {i} ").into_bytes();
        v.resize(len, b'.');
        wal.append(&Record::raw(&v)).unwrap();
    }
    wal.close().unwrap();
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

fn xor(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8];
    file.read_exact_at(&mut b, offset).unwrap();
    file.write_all_at(&[b[0] ^ 0x40], offset).unwrap();
}

/// The end of the written bytes of a segment file.
fn written_end(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p as u64 + 1)
}

/// A scratch directory with the WAL in `wal/` and room beside it.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("nori-wal-zoo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self(root)
    }

    fn wal(&self) -> PathBuf {
        self.0.join("wal")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.join("ro")).output();
        // Restore what a row took away, so that the directory can go.
        let _ = Command::new("chmod").args(["-R", "u+rwX"]).arg(&self.0).output();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a case does to the healthy log, how the tools are run, and what
/// each must say.
struct Case {
    name: &'static str,
    damage: fn(&Scratch) -> PathBuf,
    /// Run the tools, and `Wal::open`, as an unprivileged user (root reads
    /// any file).
    unprivileged: bool,
    /// Another process holds the log open while the tools run.
    held: bool,
    /// `Wal::open` on the directory itself, not on a copy (a row where the
    /// directory cannot change).
    in_place: bool,
    expect: Expect,
}

/// What the tools must say: `verify`'s exit code and a piece of its
/// message, the exit codes of `info` and `dump`, `Wal::open`'s outcome in
/// each mode (torn-tail / point-in-time / skip-damaged / strict), and
/// `repair --yes`'s exit code and a piece of its message.
struct Expect {
    verify: (i32, &'static str),
    info: i32,
    dump: i32,
    open: &'static str,
    repair: (i32, &'static str),
}

fn nth(dir: &Path, n: usize) -> PathBuf {
    segment_files(dir)[n].clone()
}

/// A case with the healthy log's expectations and the tools run as is.
const fn case(name: &'static str, damage: fn(&Scratch) -> PathBuf, expect: Expect) -> Case {
    Case { name, damage, unprivileged: false, held: false, in_place: false, expect }
}

const HEALTHY: Expect = Expect {
    verify: (0, "healthy: 3000 records"),
    info: 0,
    dump: 0,
    open: "ok 3000 / ok 3000 / ok 3000 / ok 3000",
    repair: (0, "nothing to repair: 3000 records"),
};

/// Damage in the durable region: reported by every tool, refused by the
/// default and strict modes, read up to or past by the others; `repair`
/// in the default mode refuses it too (`--mode` picks another).
const fn corrupt(open: &'static str, at: &'static str) -> Expect {
    Expect { verify: (3, at), info: 3, dump: 3, open, repair: (3, at) }
}

/// A clear error, the same from every tool and every mode.
const fn refused(code: i32, says: &'static str, open: &'static str) -> Expect {
    Expect { verify: (code, says), info: code, dump: code, open, repair: (code, says) }
}

fn cases() -> Vec<Case> {
    vec![
        case("healthy", |s| s.wal(), HEALTHY),
        case(
            "flipped byte in a sealed segment",
            |s| {
                xor(&nth(&s.wal(), 2), 30_000);
                s.wal()
            },
            corrupt("Corrupt / ok 1489 / ok 2999 / Corrupt", "expected LSN 1489: frame checksum mismatch"),
        ),
        case(
            "zeroed 4 KiB block in a sealed segment",
            |s| {
                patch(&nth(&s.wal(), 1), 8192, &[0u8; 4096]);
                s.wal()
            },
            corrupt("Corrupt / ok 681 / ok 2961 / Corrupt", "expected LSN 681: frame checksum mismatch"),
        ),
        case(
            "deleted middle segment",
            |s| {
                std::fs::remove_file(nth(&s.wal(), 2)).unwrap();
                s.wal()
            },
            corrupt(
                "Corrupt / ok 1212 / ok 2394 / Corrupt",
                "expected LSN 1212: the segment holding it is missing",
            ),
        ),
        case(
            "damaged segment header",
            |s| {
                xor(&nth(&s.wal(), 3), 20);
                s.wal()
            },
            corrupt(
                "Corrupt / ok 1818 / ok 2394 / Corrupt",
                "expected LSN 1818: the segment holding it is missing",
            ),
        ),
        case(
            "garbage after the last frame (torn tail)",
            |s| {
                let last = segment_files(&s.wal()).pop().unwrap();
                patch(&last, written_end(&last) + 3, b"\x17garbage in the tail");
                s.wal()
            },
            Expect {
                verify: (2, "torn tail: the last write was cut by a crash; 3000 records intact"),
                info: 0,
                dump: 0,
                open: "ok 3000 / ok 3000 / ok 3000 / Corrupt",
                repair: (0, "repaired: 3000 records"),
            },
        ),
        // A segment file made at full size (format v2 says so in its
        // header) cannot be left shorter by a crash: the records past the
        // cut were acknowledged, and their loss is damage.
        case(
            "newest segment cut short (header intact)",
            |s| {
                let last = segment_files(&s.wal()).pop().unwrap();
                let end = written_end(&last);
                std::fs::OpenOptions::new().write(true).open(&last).unwrap().set_len(end / 2).unwrap();
                s.wal()
            },
            corrupt(
                "Corrupt / ok 2711 / ok 2711 / Corrupt",
                "expected LSN 2711: the file is 31137 bytes long but was created at 65536 bytes",
            ),
        ),
        case(
            "lost+found and notes.txt beside the log",
            |s| {
                std::fs::create_dir(s.wal().join("lost+found")).unwrap();
                std::fs::write(s.wal().join("notes.txt"), "hello").unwrap();
                s.wal()
            },
            HEALTHY,
        ),
        case(
            "a *.wal file that is not a segment",
            |s| {
                std::fs::write(s.wal().join("old.wal"), "not a segment").unwrap();
                s.wal()
            },
            refused(
                3,
                "old.wal is not a segment of this WAL",
                "ForeignFile / ForeignFile / ForeignFile / ForeignFile",
            ),
        ),
        case(
            "a segment replaced by a directory",
            |s| {
                let seg = nth(&s.wal(), 2);
                std::fs::remove_file(&seg).unwrap();
                std::fs::create_dir(&seg).unwrap();
                s.wal()
            },
            refused(
                3,
                "00000000000000001212.wal is not a segment of this WAL",
                "ForeignFile / ForeignFile / ForeignFile / ForeignFile",
            ),
        ),
        Case {
            unprivileged: true,
            in_place: true,
            ..case(
                "a segment without read permission",
                |s| {
                    std::fs::set_permissions(nth(&s.wal(), 2), std::fs::Permissions::from_mode(0o000))
                        .unwrap();
                    s.wal()
                },
                refused(
                    1,
                    "open /", // `open <path>: Permission denied`
                    "Io (permission denied) / Io (permission denied) / Io (permission denied) / Io (permission denied)",
                ),
            )
        },
        case(
            "a segment that is a symbolic link",
            |s| {
                let seg = nth(&s.wal(), 2);
                let moved = s.0.join("elsewhere.wal");
                std::fs::rename(&seg, &moved).unwrap();
                std::os::unix::fs::symlink(&moved, &seg).unwrap();
                s.wal()
            },
            refused(1, "is a symbolic link", "Symlink / Symlink / Symlink / Symlink"),
        ),
        case(
            "a segment of another WAL mixed in",
            |s| {
                let other = s.0.join("other");
                log_of(&other, 150);
                // A segment of the other log joins under its own name.
                let theirs = nth(&other, 2);
                assert!(!s.wal().join(theirs.file_name().unwrap()).exists());
                std::fs::copy(&theirs, s.wal().join(theirs.file_name().unwrap())).unwrap();
                s.wal()
            },
            // Its base falls inside one of this log's segments: the log ends
            // there, and none of the other log's records is returned.
            corrupt(
                "Corrupt / ok 828 / ok 828 / Corrupt",
                "expected LSN 1212: the segment holding it is missing",
            ),
        ),
        case(
            "a segment copied over from another WAL",
            |s| {
                let other = s.0.join("other");
                log_of(&other, 150);
                std::fs::copy(nth(&other, 2), nth(&s.wal(), 2)).unwrap();
                s.wal()
            },
            corrupt(
                "Corrupt / ok 1212 / ok 2394 / Corrupt",
                "expected LSN 1212: the segment holding it is missing",
            ),
        ),
        case(
            "a zero-length newest segment (rotation cut by a crash)",
            |s| {
                let last = segment_files(&s.wal()).pop().unwrap();
                let base: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
                std::fs::File::create(s.wal().join(format!("{:020}.wal", base + 100_000))).unwrap();
                s.wal()
            },
            Expect { repair: (0, "repaired: 3000 records"), ..HEALTHY },
        ),
        case(
            "a zero-length middle segment",
            |s| {
                std::fs::OpenOptions::new().write(true).open(nth(&s.wal(), 2)).unwrap().set_len(0).unwrap();
                s.wal()
            },
            corrupt(
                "Corrupt / ok 1212 / ok 2394 / Corrupt",
                "expected LSN 1212: the segment holding it is missing",
            ),
        ),
        case(
            "a LOCK file of garbage",
            |s| {
                std::fs::write(s.wal().join("LOCK"), vec![0xA5u8; 200]).unwrap();
                s.wal()
            },
            HEALTHY,
        ),
        Case {
            held: true,
            in_place: true,
            ..case(
                "the directory locked by another live process",
                |s| s.wal(),
                Expect {
                    verify: (0, "in use by a writer"),
                    info: 0,
                    dump: 0,
                    open: "Locked / Locked / Locked / Locked",
                    repair: (1, "in use by a writer: close it before repairing"),
                },
            )
        },
        // Unprivileged too, so that without a mount (a container that
        // refuses one) the directory's modes still stop the writer.
        Case {
            in_place: true,
            unprivileged: true,
            ..case(
                "a read-only directory (a read-only mount where the test may mount)",
                |s| {
                    let ro = s.0.join("ro");
                    std::fs::create_dir(&ro).unwrap();
                    let bind = Command::new("mount").arg("--bind").arg(s.wal()).arg(&ro).output();
                    if bind.is_ok_and(|o| o.status.success()) {
                        let remount =
                            Command::new("mount").args(["-o", "remount,bind,ro"]).arg(&ro).output().unwrap();
                        assert!(remount.status.success(), "remount read-only");
                        return ro;
                    }
                    // No mount here (not root): a directory this user cannot
                    // write, and the segments read-only.
                    std::fs::remove_dir(&ro).unwrap();
                    for seg in segment_files(&s.wal()) {
                        std::fs::set_permissions(seg, std::fs::Permissions::from_mode(0o400)).unwrap();
                    }
                    std::fs::set_permissions(s.wal(), std::fs::Permissions::from_mode(0o500)).unwrap();
                    s.wal()
                },
                // Opening for writing fails with the system's error (a
                // read-only file system, or permission denied), every mode.
                Expect { open: "Io", ..HEALTHY },
            )
        },
    ]
}

/// What one tool said.
fn said(out: &Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let code = out.status.code().map_or("signal".to_string(), |c| c.to_string());
    // The first line that says something, shortened.
    let first = text
        .lines()
        .find(|l| !l.starts_with("in use") && !l.starts_with("note:") && !l.trim().is_empty())
        .unwrap_or("")
        .to_string();
    format!("exit {code}: {first}")
}

/// Runs the `nori-wal` tool, as an unprivileged user when asked and
/// possible.
fn tool(args: &[&str], unprivileged: bool, bin: &Path) -> Output {
    let mut cmd = if unprivileged && is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args).output().expect("run nori-wal")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateTornTail,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipDamaged,
    RecoveryMode::Strict,
];

/// `Wal::open` in each mode: on a copy of the directory (opening may
/// repair), or on the directory itself; as an unprivileged user through a
/// child process of this test when asked.
fn opens(dir: &Path, case: &Case, scratch: &Scratch, exe: &Path) -> String {
    let outcomes: Vec<String> = MODES
        .iter()
        .enumerate()
        .map(|(i, &mode)| {
            let target = if case.in_place {
                dir.to_path_buf()
            } else {
                let copy = scratch.0.join(format!("copy-{i}"));
                let cp = Command::new("cp").arg("-a").arg(dir).arg(&copy).output().unwrap();
                assert!(cp.status.success(), "{}: copy the directory", case.name);
                copy
            };
            if case.unprivileged && is_root() {
                let out = Command::new("setpriv")
                    .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .arg(exe)
                    .args(["--exact", "the_zoo", "--nocapture", "--quiet"])
                    .env("NORI_WAL_ZOO_OPEN", format!("{i}:{}", target.display()))
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout);
                text.lines().find_map(|l| l.strip_prefix("opened: ")).unwrap_or("no answer").to_string()
            } else {
                outcome(Wal::open(config(&target).recovery(mode)).map(|(w, i)| (w, i.records)))
            }
        })
        .collect();
    outcomes.join(" / ")
}

fn outcome(opened: Result<(Wal, u64), Error>) -> String {
    match opened {
        Ok((wal, records)) => {
            drop(wal);
            format!("ok {records}")
        }
        Err(Error::Io { source, .. }) => format!("Io ({})", source.kind()),
        Err(e) => format!("{e:?}").split([' ', '(', '{']).next().unwrap_or("").to_string(),
    }
}

/// The children of this test: one opens a WAL in a mode and says how it
/// went, one holds a WAL open until its input closes.
fn child() -> bool {
    if let Ok(spec) = std::env::var("NORI_WAL_ZOO_OPEN") {
        let (i, dir) = spec.split_once(':').unwrap();
        let mode = MODES[i.parse::<usize>().unwrap()];
        println!(
            "opened: {}",
            outcome(Wal::open(config(Path::new(dir)).recovery(mode)).map(|(w, i)| (w, i.records)))
        );
        return true;
    }
    if let Ok(dir) = std::env::var("NORI_WAL_ZOO_HOLD") {
        let (wal, _) = Wal::open(config(Path::new(&dir))).unwrap();
        println!("held");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        drop(wal);
        return true;
    }
    false
}

/// Copies `from` to a private directory with mode 0755 (so that an
/// unprivileged user may run it).
fn runnable(from: &Path, name: &str) -> PathBuf {
    let to = std::env::temp_dir().join(format!("nori-wal-zoo-{name}-{}", std::process::id()));
    std::fs::copy(from, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    to
}

#[test]
fn the_zoo() {
    use std::io::BufRead as _;
    if child() {
        return;
    }
    let bin = runnable(Path::new(env!("CARGO_BIN_EXE_nori-wal")), "bin");
    let exe = runnable(&std::env::current_exe().unwrap(), "test");
    let mut table = Vec::new();
    let mut wrong = Vec::new();
    for case in cases() {
        let scratch = Scratch::new(&case.name.replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
        healthy(&scratch.wal());
        let dir = (case.damage)(&scratch);
        if case.unprivileged && is_root() {
            Command::new("chown").args(["-R", "65534:65534"]).arg(&scratch.0).output().unwrap();
        }
        let holder = case.held.then(|| {
            let mut holder = Command::new(&exe)
                .args(["--exact", "the_zoo", "--nocapture", "--quiet"])
                .env("NORI_WAL_ZOO_HOLD", &dir)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let held = std::io::BufReader::new(holder.stdout.as_mut().unwrap())
                .lines()
                .map_while(Result::ok)
                .any(|l| l.trim() == "held");
            assert!(held, "the holder opened the log");
            holder
        });
        let d = dir.to_str().unwrap();
        let verify = tool(&["verify", d], case.unprivileged, &bin);
        let info = tool(&["info", d], case.unprivileged, &bin);
        let dump = tool(&["dump", d], case.unprivileged, &bin);
        let open = opens(&dir, &case, &scratch, &exe);
        let repair = tool(&["repair", "--yes", d], case.unprivileged, &bin);
        if let Some(mut holder) = holder {
            drop(holder.stdin.take());
            holder.wait().unwrap();
        }
        for out in [&verify, &info, &dump, &repair] {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!err.contains("panicked"), "{}: a tool panicked: {err}", case.name);
            assert!(out.status.code().is_some(), "{}: a tool died of a signal", case.name);
        }
        // A repair that changed anything made a backup first, and says so.
        let repaired = String::from_utf8_lossy(&repair.stdout).into_owned();
        if repaired.contains("repaired:") {
            let line = repaired.lines().find_map(|l| l.strip_prefix("backup: ")).expect("a backup line");
            let path = line.split(" (").next().unwrap();
            assert!(Path::new(path).is_dir(), "{}: the backup {path} is there", case.name);
        }
        let e = &case.expect;
        let text = |o: &Output| {
            format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
        };
        let checks = [
            ("verify", verify.status.code() == Some(e.verify.0) && text(&verify).contains(e.verify.1)),
            ("info", info.status.code() == Some(e.info)),
            ("dump", dump.status.code() == Some(e.dump)),
            ("open", open == e.open || e.open == "Io" && open.split(" / ").all(|o| o.starts_with("Io ("))),
            ("repair", repair.status.code() == Some(e.repair.0) && text(&repair).contains(e.repair.1)),
        ];
        for (tool, ok) in checks {
            if !ok {
                wrong.push(format!("{}: {tool} says otherwise", case.name));
            }
        }
        table.push(format!(
            "| {} | {} | {} | {} | {} | {} |",
            case.name,
            said(&verify),
            said(&info).split(':').next().unwrap_or(""),
            said(&dump).split(':').next().unwrap_or(""),
            open,
            said(&repair)
        ));
    }
    let _ = std::fs::remove_file(&bin);
    let _ = std::fs::remove_file(&exe);
    println!(
        "| case | verify | info | dump | open: torn-tail / point-in-time / skip-damaged / strict | repair --yes |"
    );
    println!("|---|---|---|---|---|---|");
    for row in &table {
        println!("{row}");
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
