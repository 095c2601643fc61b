//! The soak test: rounds of two kinds, for a set time.
//!
//! - A child process runs 4 writer threads under `Always`, a reader
//!   checking every record it sees, and a thread that reclaims and rotates;
//!   the parent kills it with SIGKILL at a random moment, reopens the WAL and
//!   checks I1 (every acknowledged record not reclaimed is there, with its
//!   value) and I2 (contiguous LSNs, every record one that was appended).
//! - In process, on the simulated file system: the same mix with a sync that
//!   fails at a random point (F11) and a power cut at a random operation,
//!   then the same checks.
//!
//! `NORI_WAL_SOAK_SECS` sets the time (default 4 s, the CI run).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nori_wal::blocking::Wal;
use nori_wal::fs::Fs;
use nori_wal::{FsyncPolicy, Lsn, Record, WalConfig};
use nori_wal_tests::simfs::{FsCut, FsFaults, SimFs};
use nori_wal_tests::walkit::{Scratch, payload, try_read_all};
use rand::Rng;

/// The value writer `t` appends as its `i`-th record, self-checking.
fn value(t: u32, i: u32) -> Vec<u8> {
    let check = (u64::from(t) * 1_000_003 + u64::from(i) * 7919) % 1_000_000_007;
    let mut v = format!("t{t} i{i} c{check} ").into_bytes();
    v.resize(v.len() + (i as usize * 37) % 400, b'a' + (t % 26) as u8);
    v
}

/// Whether `v` is a value some writer appended.
fn authentic(v: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(v) else { return false };
    let mut parts = text.split(' ');
    let (Some(t), Some(i)) = (parts.next(), parts.next()) else { return false };
    let (Some(t), Some(i)) = (t.strip_prefix('t'), i.strip_prefix('i')) else { return false };
    match (t.parse(), i.parse()) {
        (Ok(t), Ok(i)) => value(t, i) == v,
        _ => false,
    }
}

fn config(dir: &Path) -> WalConfig {
    WalConfig::new(dir).segment_size(128 << 10).fsync(FsyncPolicy::Always)
}

/// The workload of a round, on any file system: writers report each
/// acknowledged record through `ack`; stops when `stop` is set or an
/// operation fails.
fn workload<S: Fs>(wal: &Wal<S>, stop: &AtomicBool, ack: &(dyn Fn(Lsn, u32, u32) + Sync), start: u32) {
    std::thread::scope(|s| {
        for t in 0..4u32 {
            s.spawn(move || {
                let mut i = start;
                while !stop.load(Ordering::Relaxed) {
                    match wal.append(&Record::raw(&value(t, i))) {
                        Ok(lsn) => ack(lsn, t, i),
                        Err(_) => return,
                    }
                    i += 1;
                }
            });
        }
        // A reader: every record it sees is authentic and in order.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut iter) = wal.iter() else { return };
                let mut last: Option<Lsn> = None;
                while let Ok(Some(entry)) = iter.try_next() {
                    let v = payload(&entry.record);
                    assert!(authentic(&v), "a reader saw a record never appended at {}", entry.lsn);
                    assert!(last.is_none_or(|l| entry.lsn == l + 1), "a reader saw a gap");
                    last = Some(entry.lsn);
                }
            }
        });
        // Reclaim and rotation.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(3));
                let keep = wal.next_lsn().saturating_sub(2000).max(wal.first_lsn());
                if wal.truncate_before(keep).is_err() || wal.rotate().is_err() {
                    return;
                }
            }
        });
    });
}

/// Checks a reopened log against the acknowledged records.
fn check(records: &[(Lsn, Vec<u8>)], acked: &HashMap<Lsn, (u32, u32)>, first: Lsn, what: &str) {
    for w in records.windows(2) {
        assert_eq!(w[1].0, w[0].0 + 1, "{what}: LSNs not contiguous");
    }
    let by_lsn: HashMap<Lsn, &Vec<u8>> = records.iter().map(|(l, v)| (*l, v)).collect();
    for (lsn, v) in records {
        assert!(authentic(v), "{what}: LSN {lsn} holds a record never appended");
    }
    for (&lsn, &(t, i)) in acked {
        if lsn >= first {
            assert!(
                by_lsn.get(&lsn).is_some_and(|v| **v == value(t, i)),
                "{what}: acknowledged LSN {lsn} lost or changed"
            );
        }
    }
}

fn child(dir: &str) {
    let (wal, _) = Wal::open(config(Path::new(dir))).expect("child opens");
    let out = std::sync::Mutex::new(std::io::stdout());
    let start: u32 = std::env::var("NORI_WAL_SOAK_START").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let stop = AtomicBool::new(false);
    workload(
        &wal,
        &stop,
        &|lsn, t, i| {
            let mut out = out.lock().unwrap();
            let _ = writeln!(out, "{lsn} {t} {i}");
            let _ = out.flush();
        },
        start,
    );
}

#[test]
fn soak_kills_sync_failures_readers_rotation_and_reclaim() {
    if let Ok(dir) = std::env::var("NORI_WAL_SOAK_CHILD") {
        child(&dir);
        return;
    }
    let secs: u64 = std::env::var("NORI_WAL_SOAK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let scratch = Scratch::new("soak");
    let mut rng = nori_wal_tests::sim::rng(0x50a4);
    let (mut kills, mut sim_rounds, mut acked_total) = (0u64, 0u64, 0u64);
    let mut acked: HashMap<Lsn, (u32, u32)> = HashMap::new();
    let mut round = 0u32;
    while Instant::now() < deadline {
        round += 1;
        // A killed child process.
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                nori_wal_tests::test_name(
                    module_path!(),
                    "soak_kills_sync_failures_readers_rotation_and_reclaim",
                )
                .as_str(),
                "--nocapture",
                "--quiet",
            ])
            .env("NORI_WAL_SOAK_CHILD", scratch.wal())
            .env("NORI_WAL_SOAK_START", (round * 1_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split(' ').map(str::parse::<u64>);
                if let (Some(Ok(lsn)), Some(Ok(t)), Some(Ok(i))) = (parts.next(), parts.next(), parts.next())
                {
                    seen.push((lsn, t as u32, i as u32));
                }
            }
            seen
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(20..200)));
        assert!(
            child.try_wait().unwrap().is_none(),
            "round {round}: the child died before it was killed (a reader check failed?)"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        for (lsn, t, i) in reader.join().unwrap() {
            acked.insert(lsn, (t, i));
            acked_total += 1;
        }
        let (wal, _) = Wal::open(config(&scratch.wal())).unwrap();
        let records = try_read_all(&wal).unwrap();
        check(&records, &acked, wal.first_lsn(), &format!("kill round {round}"));
        // LSNs above the log's end may be given again: forget them.
        let next = wal.next_lsn();
        acked.retain(|&lsn, _| lsn < next);
        drop(wal);
        kills += 1;

        // A simulated round: a failing sync, then a power cut.
        let fs = SimFs::new(FsFaults { fail_sync: Some(rng.random_range(0..60)), ..FsFaults::default() });
        let sim_acked = std::sync::Mutex::new(HashMap::new());
        {
            let (wal, _) = Wal::open_in(fs.clone(), config(Path::new("/soak"))).unwrap();
            let stop = AtomicBool::new(false);
            let run_for = Duration::from_millis(rng.random_range(5..40));
            std::thread::scope(|s| {
                s.spawn(|| {
                    std::thread::sleep(run_for);
                    stop.store(true, Ordering::Relaxed);
                });
                workload(
                    &wal,
                    &stop,
                    &|lsn, t, i| {
                        sim_acked.lock().unwrap().insert(lsn, (t, i));
                    },
                    0,
                );
            });
            std::mem::forget(wal);
        }
        let crashed =
            fs.crash(if rng.random_bool(0.5) { FsCut::RandomSubset } else { FsCut::DropUnsynced }, &mut rng);
        let (wal, _) = Wal::open_in(crashed, config(Path::new("/soak"))).unwrap();
        let records = try_read_all(&wal).unwrap();
        check(&records, &sim_acked.lock().unwrap(), wal.first_lsn(), &format!("simulated round {round}"));
        sim_rounds += 1;
    }
    println!(
        "soak: {kills} SIGKILL rounds, {sim_rounds} simulated sync-failure + power-cut rounds, {acked_total} acknowledged appends checked"
    );
    assert!(kills > 0 && sim_rounds > 0);
}
