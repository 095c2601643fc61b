//! The kill test: a child process appends under `FsyncPolicy::Always` and
//! reports each acknowledged LSN through a pipe; the parent kills it with
//! SIGKILL at random moments, many times, and checks after each reopen that
//! every acknowledged record is there, intact, and nothing else is new but
//! the one append that may have been in flight.
//!
//! `NORI_WAL_KILL_ROUNDS` sets the number of kills (default 25).

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use nori_wal::blocking::Wal;
use nori_wal::{FsyncPolicy, Record, WalConfig};
use nori_wal_tests::walkit::{Scratch, read_all};
use rand::Rng;

fn config(dir: &Path) -> WalConfig {
    // Small segments: kills land around rotations too.
    WalConfig::new(dir).segment_size(256 << 10).fsync(FsyncPolicy::Always)
}

/// The value stored at `lsn`: its length varies with the LSN.
fn value(lsn: u64) -> Vec<u8> {
    let mut v = format!("lsn {lsn} ").into_bytes();
    v.resize(v.len() + (lsn as usize * 7919) % 700, b'a' + (lsn % 26) as u8);
    v
}

/// The child: appends until killed, printing each acknowledged LSN.
fn child(dir: &str) {
    use std::io::Write;
    let (wal, _) = Wal::open(config(Path::new(dir))).expect("child opens the WAL");
    let mut out = std::io::stdout().lock();
    loop {
        let lsn = wal.next_lsn();
        let got = wal.append(&Record::raw(&value(lsn))).expect("child appends");
        assert_eq!(got, lsn);
        writeln!(out, "{lsn}").expect("report");
        out.flush().expect("report");
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_append() {
    if let Ok(dir) = std::env::var("NORI_WAL_KILL_CHILD") {
        child(&dir);
        return;
    }
    let rounds: u32 = std::env::var("NORI_WAL_KILL_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(25);
    let scratch = Scratch::new("kill");
    let mut rng = nori_wal_tests::sim::rng(0x6b11);
    let mut acked_total = 0u64;
    let mut max_acked: Option<u64> = None;
    for round in 0..rounds {
        let (mut child, lines, reader) = nori_wal_tests::spawn_child(
            module_path!(),
            "sigkill_at_random_moments_loses_no_acknowledged_append",
            &[("NORI_WAL_KILL_CHILD", scratch.wal().as_os_str())],
        );
        let (tx, rx) = mpsc::channel();
        let numbers = std::thread::spawn(move || {
            for line in lines {
                if let Ok(lsn) = line.trim().parse::<u64>() {
                    let _ = tx.send(lsn);
                }
            }
        });
        // Wait for the child to be appending, then kill it at a random moment.
        let first = rx.recv_timeout(Duration::from_secs(30)).expect("the child acknowledged nothing");
        std::thread::sleep(Duration::from_micros(rng.random_range(0..30_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        numbers.join().unwrap();
        let mut acked = vec![first];
        acked.extend(rx.try_iter());
        let last_acked = *acked.last().unwrap();
        acked_total += acked.len() as u64;
        max_acked = max_acked.max(Some(last_acked));

        let (wal, info) = Wal::open(config(&scratch.wal())).unwrap();
        let records = read_all(&wal);
        for pair in records.windows(2) {
            assert_eq!(pair[1].0, pair[0].0 + 1, "round {round}: LSNs not contiguous");
        }
        for (lsn, v) in &records {
            assert!(*v == value(*lsn), "round {round}: LSN {lsn} holds a value never written there");
        }
        let end = records.last().map_or(0, |r| r.0 + 1);
        assert!(
            end > last_acked,
            "round {round}: acknowledged LSN {last_acked} lost (log ends at {end}), {info:?}"
        );
        assert!(
            end <= last_acked + 2,
            "round {round}: {} records beyond the last acknowledged one",
            end - last_acked - 1
        );
        assert_eq!(records.first().map(|r| r.0), Some(0));
    }
    println!(
        "kill test: {rounds} SIGKILLs, {acked_total} acknowledged appends checked, log at LSN {}",
        max_acked.unwrap_or(0)
    );
}
