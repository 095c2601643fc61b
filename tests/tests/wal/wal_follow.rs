//! The follower: a reader without the lock, for other processes. Here in
//! one process (the writer and the follower share no state but the
//! files): rotations, reclaim, cuts, damage reported once and at the right
//! LSN, durable-only reads; and across processes, a writer in a child
//! process under `Always` and `Os` while the follower reads.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nori_wal::blocking::Wal;
use nori_wal::wal::{FollowConfig, Follower};
use nori_wal::{Error, FsyncPolicy, Lsn, Record, WalConfig};
use nori_wal_tests::walkit::{Scratch, flip_bit, payload, segment_files};

fn value(lsn: Lsn) -> Vec<u8> {
    let mut v = format!("lsn {lsn}:").into_bytes();
    v.resize(v.len() + (lsn as usize * 7) % 90, b'a' + (lsn % 26) as u8);
    v
}

/// Everything the follower has now, as (LSN, payload), stopping at the
/// first error.
fn drain(follower: &mut Follower) -> Result<Vec<(Lsn, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    while let Some(e) = follower.try_next()? {
        out.push((e.lsn, payload(&e.record)));
    }
    Ok(out)
}

fn append_values(wal: &Wal, n: u64) {
    for _ in 0..n {
        let lsn = wal.next_lsn();
        assert_eq!(wal.append(&Record::raw(&value(lsn))).unwrap(), lsn);
    }
}

fn small(dir: std::path::PathBuf, fsync: FsyncPolicy) -> WalConfig {
    WalConfig::new(dir).segment_size(4096).fsync(fsync)
}

#[test]
fn follows_rotations_and_waits_for_new_records() {
    let scratch = Scratch::new("follow-rotate");
    let (wal, _) = Wal::open(small(scratch.wal(), FsyncPolicy::Os)).unwrap();
    let mut follower =
        Follower::open(FollowConfig::new(scratch.wal()).poll(Duration::from_millis(2))).unwrap();
    assert!(drain(&mut follower).unwrap().is_empty());
    append_values(&wal, 1000);
    wal.sync().unwrap();
    let files = segment_files(&scratch.wal()).len();
    assert!(files > 10, "the test needs rotations: {files} files");
    let got = drain(&mut follower).unwrap();
    assert_eq!(got.len(), 1000);
    for (i, (lsn, v)) in got.iter().enumerate() {
        assert_eq!(*lsn, i as Lsn);
        assert_eq!(*v, value(*lsn));
    }
    assert!(follower.try_next().unwrap().is_none());
    // A record appended later is waited for.
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        append_values(&wal, 1);
        wal.sync().unwrap();
        wal
    });
    let entry = follower.wait_next(Duration::from_secs(10)).unwrap().expect("the record appended");
    assert_eq!((entry.lsn, payload(&entry.record)), (1000, value(1000)));
    let wal = writer.join().unwrap();
    assert!(follower.wait_next(Duration::from_millis(20)).unwrap().is_none(), "nothing more");
    drop(wal);
    // From an LSN in the middle.
    let mut from = Follower::open(FollowConfig::new(scratch.wal()).from(633)).unwrap();
    assert_eq!(drain(&mut from).unwrap().first().map(|r| r.0), Some(633));
}

#[test]
fn reclaim_below_the_follower_is_reported_with_the_first_lsn_left() {
    let scratch = Scratch::new("follow-reclaim");
    let (wal, _) = Wal::open(small(scratch.wal(), FsyncPolicy::Os)).unwrap();
    append_values(&wal, 400);
    wal.sync().unwrap();
    let mut follower = Follower::open(FollowConfig::new(scratch.wal())).unwrap();
    for lsn in 0..10 {
        assert_eq!(follower.try_next().unwrap().unwrap().lsn, lsn);
    }
    wal.truncate_before(300).unwrap();
    let first = wal.first_lsn();
    assert_eq!(first, 300);
    // The follower reads on until it next reads from the files, then says
    // what it missed and where it goes on.
    let mut seen = Vec::new();
    let err = loop {
        match follower.try_next() {
            Ok(Some(e)) => seen.push(e.lsn),
            Ok(None) => panic!("no report of the reclaim; read {seen:?}"),
            Err(e) => break e,
        }
    };
    match err {
        Error::Reclaimed { lsn, first: f } => {
            assert_eq!(lsn, 10 + seen.len() as Lsn);
            assert_eq!(f, first);
            assert!(err.to_string().contains("truncate_before"), "{err}");
        }
        e => panic!("expected Reclaimed, got {e}"),
    }
    let rest = drain(&mut follower).unwrap();
    assert_eq!(rest.first().map(|r| r.0), Some(first));
    assert_eq!(rest.last().map(|r| r.0), Some(399));
    assert!(rest.iter().all(|(lsn, v)| *v == value(*lsn)));
    // Following from below the start says so at once.
    let mut late = Follower::open(FollowConfig::new(scratch.wal()).from(5)).unwrap();
    assert!(matches!(late.try_next(), Err(Error::Reclaimed { lsn: 5, first: 300 })));
    assert_eq!(late.try_next().unwrap().unwrap().lsn, 300);
}

#[test]
fn a_cut_behind_the_follower_is_reported_and_the_new_records_follow() {
    for (name, cut_at, read) in [("inside", 149, 200), ("exact-segment", 0, 60), ("ahead", 250, 200)] {
        let scratch = Scratch::new(&format!("follow-cut-{name}"));
        let (wal, _) = Wal::open(small(scratch.wal(), FsyncPolicy::Os)).unwrap();
        append_values(&wal, 300);
        wal.sync().unwrap();
        let mut follower = Follower::open(FollowConfig::new(scratch.wal())).unwrap();
        for lsn in 0..read {
            assert_eq!(follower.try_next().unwrap().unwrap().lsn, lsn);
        }
        wal.truncate_after(cut_at).unwrap();
        // New records with other values take the LSNs from the cut on.
        for _ in 0..100 {
            let lsn = wal.next_lsn();
            wal.append(&Record::raw(format!("new {lsn}").as_bytes())).unwrap();
        }
        wal.sync().unwrap();
        let keep = cut_at + 1;
        let mut got = Vec::new();
        let mut cuts = Vec::new();
        loop {
            match follower.try_next() {
                Ok(Some(e)) => got.push((e.lsn, payload(&e.record))),
                Ok(None) => break,
                Err(Error::Cut { lsn, next }) => cuts.push((lsn, next)),
                Err(e) => panic!("{name}: {e}"),
            }
        }
        if keep < read {
            assert_eq!(cuts.len(), 1, "{name}: one report of the cut, got {cuts:?}");
            let (lsn, next) = cuts[0];
            assert_eq!(next, keep, "{name}");
            assert!(lsn > keep, "{name}: {lsn}");
            // After the report, the new records from the cut on, in order.
            let after: Vec<_> = got.iter().skip_while(|(l, _)| *l != keep).cloned().collect();
            assert_eq!(after.len(), 100, "{name}");
            for (i, (l, v)) in after.iter().enumerate() {
                assert_eq!(*l, keep + i as Lsn);
                assert_eq!(*v, format!("new {l}").into_bytes(), "{name}");
            }
        } else {
            assert!(cuts.is_empty(), "{name}: the cut fell after the follower: {cuts:?}");
            let expected: Vec<Lsn> = (read..keep + 100).collect();
            assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), expected, "{name}");
            assert!(got.iter().all(|(l, v)| if *l < keep {
                *v == value(*l)
            } else {
                *v == format!("new {l}").into_bytes()
            }));
        }
    }
}

#[test]
fn damage_in_a_sealed_segment_is_reported_once_at_its_lsn_while_the_writer_goes_on() {
    let scratch = Scratch::new("follow-damage");
    let (wal, _) = Wal::open(small(scratch.wal(), FsyncPolicy::Os)).unwrap();
    append_values(&wal, 300);
    wal.sync().unwrap();
    // Damage the third segment's second record frame (a sealed segment).
    let files = segment_files(&scratch.wal());
    let victim = files[2].clone();
    let base: Lsn = victim.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let next_base: Lsn = files[3].file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let first_frame = 56 + 32; // after the segment header and its first mark
    let second = first_frame + 16 + value(base).len() as u64 + 1;
    flip_bit(&victim, second + 20, 3);
    let mut follower = Follower::open(FollowConfig::new(scratch.wal())).unwrap();
    let mut got = Vec::new();
    let mut errors = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match follower.try_next() {
            Ok(Some(e)) => got.push(e.lsn),
            Ok(None) => {
                if got.last() == Some(&(wal.next_lsn() - 1)) {
                    break;
                }
                // The writer goes on meanwhile.
                append_values(&wal, 10);
                wal.sync().unwrap();
            }
            Err(e) => errors.push(e),
        }
    }
    assert_eq!(errors.len(), 1, "one report: {errors:?}");
    match &errors[0] {
        Error::Corrupt(c) => {
            assert_eq!(c.lsn, base + 1, "{}", errors[0]);
            assert_eq!(c.segment, victim);
        }
        e => panic!("expected Corrupt, got {e}"),
    }
    // Every record but those of the damaged segment from the damage on.
    let expected: Vec<Lsn> = (0..=base).chain(next_base..wal.next_lsn()).collect();
    assert_eq!(got, expected);
}

#[test]
fn durable_only_returns_what_a_mark_covers() {
    let scratch = Scratch::new("follow-durable");
    let (wal, _) = Wal::open(WalConfig::new(scratch.wal()).fsync(FsyncPolicy::Os)).unwrap();
    append_values(&wal, 10);
    wal.sync().unwrap();
    let mut all = Follower::open(FollowConfig::new(scratch.wal())).unwrap();
    let mut durable = Follower::open(FollowConfig::new(scratch.wal()).durable_only(true)).unwrap();
    assert_eq!(drain(&mut all).unwrap().len(), 10, "written: returned by default");
    assert!(drain(&mut durable).unwrap().is_empty(), "not durable: held back");
    wal.sync().unwrap();
    assert!(drain(&mut durable).unwrap().is_empty(), "the mark comes with the next frame");
    append_values(&wal, 1);
    wal.sync().unwrap();
    assert_eq!(
        drain(&mut durable).unwrap().iter().map(|r| r.0).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    wal.close().unwrap();
    assert_eq!(
        drain(&mut durable).unwrap().iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![10],
        "a clean close"
    );
}

/// Appends from several threads until killed or for `NORI_WAL_LIVE_SECS`,
/// printing the LSN it reached now and then.
fn live_writer(dir: &str, policy: &str) {
    let fsync = if policy == "os" { FsyncPolicy::Os } else { FsyncPolicy::Always };
    let segment = if policy == "os" { 64 << 10 } else { 1 << 20 };
    let (wal, _) = Wal::open(WalConfig::new(dir).segment_size(segment).fsync(fsync)).expect("writer opens");
    let secs: u64 = std::env::var("NORI_WAL_LIVE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let until = Instant::now() + Duration::from_secs(secs);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while Instant::now() < until {
                    // Bursts, so that the log stays small on any disk.
                    for _ in 0..200 {
                        wal.append(&Record::raw(&[0x42; 64])).expect("append");
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
    });
    println!("end {}", wal.next_lsn());
    wal.close().expect("close");
}

#[test]
fn a_follower_in_another_process_gets_every_record_in_order() {
    if let Ok(spec) = std::env::var("NORI_WAL_LIVE_WRITER") {
        let (policy, dir) = spec.split_once(':').unwrap();
        live_writer(dir, policy);
        return;
    }
    for policy in ["always", "os"] {
        let scratch = Scratch::new(&format!("follow-live-{policy}"));
        std::fs::create_dir_all(scratch.wal()).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &nori_wal_tests::test_name(
                    module_path!(),
                    "a_follower_in_another_process_gets_every_record_in_order",
                ),
                "--nocapture",
                "--quiet",
            ])
            .env("NORI_WAL_LIVE_WRITER", format!("{policy}:{}", scratch.wal().display()))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut follower =
            Follower::open(FollowConfig::new(scratch.wal()).poll(Duration::from_millis(5))).unwrap();
        let mut next = 0;
        let started = Instant::now();
        loop {
            match follower.wait_next(Duration::from_millis(100)) {
                Ok(Some(e)) => {
                    assert_eq!(e.lsn, next, "{policy}: out of order or a gap");
                    assert_eq!(payload(&e.record), vec![0x42; 64]);
                    next += 1;
                }
                Ok(None) => {
                    if child.try_wait().unwrap().is_some() {
                        break;
                    }
                }
                Err(e) => panic!("{policy}: the follower failed after {next} records: {e}"),
            }
            assert!(started.elapsed() < Duration::from_secs(120), "{policy}: the writer hangs");
        }
        let status = child.wait().unwrap();
        assert!(status.success());
        let lines: Vec<String> =
            BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok).collect();
        let end: Lsn = lines
            .iter()
            .find_map(|line| line.trim().strip_prefix("end ")?.parse().ok())
            .expect("the writer's end");
        // What was written after the last wait is read now.
        while let Some(e) = follower.try_next().unwrap() {
            assert_eq!(e.lsn, next);
            next += 1;
        }
        assert_eq!(next, end, "{policy}: every record");
        assert!(end > 1000, "{policy}: the writer wrote {end} records");
        println!("{policy}: followed {end} records in another process");
    }
}

#[test]
fn damage_in_the_newest_segment_is_reported_once_the_writer_is_past_it() {
    let scratch = Scratch::new("follow-damage-newest");
    let (wal, _) = Wal::open(WalConfig::new(scratch.wal()).fsync(FsyncPolicy::Always)).unwrap();
    append_values(&wal, 5);
    let files = segment_files(&scratch.wal());
    assert_eq!(files.len(), 1);
    let mut follower = Follower::open(FollowConfig::new(scratch.wal())).unwrap();
    assert_eq!(drain(&mut follower).unwrap().len(), 5);
    // The next record is damaged once written: before the writer is past
    // it, the follower waits (it may be a write in flight).
    append_values(&wal, 1);
    let end = std::fs::read(&files[0]).unwrap().iter().rposition(|&b| b != 0).unwrap() as u64;
    flip_bit(&files[0], end - 2, 1);
    assert!(drain(&mut follower).unwrap().is_empty(), "not yet known to be damage");
    // The writer goes on: now it is damage, reported once, at its LSN.
    append_values(&wal, 3);
    let err = drain(&mut follower).unwrap_err();
    match &err {
        Error::Corrupt(c) => assert_eq!((c.lsn, &c.segment), (5, &files[0]), "{err}"),
        e => panic!("expected Corrupt, got {e}"),
    }
    let rest = drain(&mut follower).unwrap();
    assert_eq!(rest.iter().map(|r| r.0).collect::<Vec<_>>(), vec![6, 7, 8]);
    assert!(rest.iter().all(|(l, v)| *v == value(*l)));
}

#[test]
fn the_async_follower_waits_for_records_and_loses_none_when_cancelled() {
    let scratch = Scratch::new("follow-async");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let (wal, _) = nori_wal::Wal::open(small(scratch.wal(), FsyncPolicy::Always)).await.unwrap();
        let mut follower = nori_wal::Follower::open(FollowConfig::new(scratch.wal())).await.unwrap();
        // Cancelled while it waits: nothing is there yet.
        let waited = tokio::time::timeout(Duration::from_millis(50), follower.next()).await;
        assert!(waited.is_err(), "no record yet");
        for lsn in 0..300 {
            assert_eq!(wal.append(&Record::raw(&value(lsn))).await.unwrap(), lsn);
        }
        // Some reads cancelled part-way through; every record still comes,
        // once, in order.
        let mut next = 0;
        while next < 300 {
            // A timeout cancels the read under way: it is taken up next time.
            if let Ok(entry) = tokio::time::timeout(Duration::from_micros(200), follower.next()).await {
                let entry = entry.unwrap();
                assert_eq!((entry.lsn, payload(&entry.record.as_record())), (next, value(next)));
                next += 1;
            }
        }
        assert!(follower.try_next().await.unwrap().is_none());
        // A record appended by another task while the follower waits.
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            wal.append(&Record::raw(b"late")).await.unwrap();
            wal
        });
        let entry = follower.next().await.unwrap();
        assert_eq!((entry.lsn, payload(&entry.record.as_record())), (300, b"late".to_vec()));
        writer.await.unwrap().close().await.unwrap();
    });
}

/// With the feature `notify` (on in these tests through `cli`), a waiting
/// follower is woken by the file system, not by its polling: polling every
/// 30 s, it still gets a record appended during its wait at once.
#[test]
fn a_waiting_follower_is_woken_by_the_file_system() {
    let scratch = Scratch::new("follow-notify");
    let (wal, _) = Wal::open(WalConfig::new(scratch.wal())).unwrap();
    append_values(&wal, 1);
    let mut follower =
        Follower::open(FollowConfig::new(scratch.wal()).poll(Duration::from_secs(30))).unwrap();
    assert_eq!(follower.try_next().unwrap().map(|e| e.lsn), Some(0));
    // The watch starts with the first wait.
    assert!(follower.wait_next(Duration::from_millis(10)).unwrap().is_none());
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        append_values(&wal, 1);
        wal
    });
    let started = Instant::now();
    let entry = follower.wait_next(Duration::from_secs(60)).unwrap().expect("the record appended");
    assert_eq!(entry.lsn, 1);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(20), "woken by polling after {waited:?}, not by the file system");
    drop(writer.join().unwrap());
}

/// Damages a segment file from an offset on.
type Damage = fn(&std::path::Path, u64);

/// What a follower reads is untrusted: after the last frame of a closed
/// log, zeros, erased-looking `0xFF`, garbage or a torn frame end what it
/// returns (it waits there, with no error: nothing shows a writer past
/// them), and a segment header claiming a size no WAL writes is not
/// trusted (nothing is read or allocated through it).
#[test]
fn garbage_blank_and_torn_bytes_end_what_a_follower_returns() {
    use nori_wal_tests::walkit::overwrite;
    let tails: [(&str, Damage); 4] = [
        ("zeros", |_, _| {}),
        ("0xFF", |p, end| overwrite(p, end, &[0xFF; 4096])),
        ("garbage", |p, end| {
            overwrite(p, end, &(0..4096u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>())
        }),
        ("a torn last frame", |p, end| flip_bit(p, end - 40, 2)),
    ];
    for (name, damage) in tails {
        let scratch = Scratch::new(&format!("follow-untrusted-{}", name.replace(' ', "-")));
        let (wal, _) = Wal::open(WalConfig::new(scratch.wal()).fsync(FsyncPolicy::Os)).unwrap();
        append_values(&wal, 50);
        wal.sync().unwrap();
        let file = segment_files(&scratch.wal()).pop().unwrap();
        let written_end = |file: &std::path::Path| {
            let bytes = std::fs::read(file).unwrap();
            bytes.iter().rposition(|&b| b != 0).unwrap() as u64 + 1
        };
        // Where the last record's frame ends.
        let end = written_end(&file);
        drop(wal);
        // A crash image: the clean close's mark is gone, then the damage.
        let closed = written_end(&file);
        overwrite(&file, end, &vec![0u8; (closed - end) as usize]);
        damage(&file, end);
        let mut follower =
            Follower::open(FollowConfig::new(scratch.wal()).poll(Duration::from_millis(1))).unwrap();
        let got = drain(&mut follower).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = if name == "a torn last frame" { 49 } else { 50 };
        assert_eq!(got.len(), expected, "{name}");
        assert!(got.iter().all(|(l, v)| *v == value(*l)), "{name}: only what was written");
        assert!(follower.wait_next(Duration::from_millis(20)).unwrap().is_none(), "{name}: it waits");
    }
    // A header claiming a segment of 2^41 bytes.
    let scratch = Scratch::new("follow-untrusted-header");
    let (wal, _) = Wal::open(WalConfig::new(scratch.wal())).unwrap();
    append_values(&wal, 5);
    drop(wal);
    let file = segment_files(&scratch.wal()).pop().unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let header = nori_wal::format::v2::SegmentHeader::decode(&bytes).unwrap();
    let header = header.sized(1 << 41).unwrap();
    let mut encoded = vec![0u8; header.len()];
    header.encode(&mut encoded).unwrap();
    overwrite(&file, 0, &encoded);
    let mut follower = Follower::open(FollowConfig::new(scratch.wal())).unwrap();
    assert!(drain(&mut follower).unwrap().is_empty(), "nothing read through an implausible header");
}
