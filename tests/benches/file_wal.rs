//! The file WAL against its baselines, each measured in the same run on the
//! same disk, with 128-byte records:
//!
//! - one writer, each append durable: `FsyncPolicy::Always` vs a raw loop of
//!   `pwrite` + `fdatasync` on a preallocated file;
//! - 64 writers, each append durable before it returns: nori-wal's
//!   threads and async tasks vs raft-engine 0.4 (one put per synced
//!   `write`) and okaywal 0.3 (`commit()` per entry);
//! - one writer, `FsyncPolicy::Os`: vs a `BufWriter` writing the same
//!   payload bytes;
//! - reopening and recovering a 1 GiB log with the page cache warm: vs
//!   reading the same files with `read` into one buffer;
//! - iterating a 1 GiB log through the maps, page cache warm: vs the same
//!   `read` baseline;
//! - 64 async tasks appending under `Batch`, each append resolving when
//!   durable: vs 64 threads doing `append` + `wait_durable` with the
//!   blocking API;
//! - LZ4 and Zstd on a text-like and a random payload: ratio and speed;
//! - `open` against the log's size (1 to 8 GiB) with every segment checked
//!   and with sealed segments trusted by their seals (`OpenCheck`);
//! - format version 2 against version 1, in alternating runs: one writer
//!   under `FsyncPolicy::Os`, then reopening (recovery) and a replay of
//!   what it wrote.
//!
//! `cargo bench -p nori-wal-tests --bench file_wal` (add `-- --quick` for a
//! smoke run with small sizes). `NORI_WAL_BENCH_DIR` picks the directory
//! (default: the system temporary directory).

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nori_wal::blocking::Wal;
use nori_wal::fs::{File as _, Fs, OpenMode, StdFs};
use nori_wal::{FsyncPolicy, Record, WalConfig};
use nori_wal_tests::bench::{Measurement, Settings, measure, print_table};

const RECORD: usize = 128;

fn bench_dir(name: &str) -> PathBuf {
    let root = std::env::var("NORI_WAL_BENCH_DIR").map_or_else(|_| std::env::temp_dir(), PathBuf::from);
    let dir = root.join(format!("nori-wal-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn main() {
    let settings = Settings::from_args();
    let quick = std::env::args().any(|a| a == "--quick");
    // Names given on the command line pick sections: always, os, threads,
    // recovery, iterate, replay, async, async-iterate, compression, format,
    // scaling, open-check.
    let picked: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let run = |name: &str| picked.is_empty() || picked.iter().any(|p| p == name);
    let root = std::env::var("NORI_WAL_BENCH_DIR").map_or_else(|_| std::env::temp_dir(), PathBuf::from);
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("machine: {cores} cores; directory: {}", root.display());
    if run("always") {
        one_writer_always(settings);
    }
    if run("os") {
        one_writer_os(settings);
    }
    if run("threads") {
        many_threads_always(settings, if quick { 8 } else { 64 });
    }
    if run("recovery") {
        recovery(if quick { 64 << 20 } else { (1 << 30) + (64 << 20) }, quick);
    }
    if run("iterate") {
        iterate(if quick { 64 << 20 } else { (1 << 30) + (64 << 20) }, quick);
    }
    if run("replay") {
        replay(if quick { 64 << 20 } else { 1 << 30 }, quick);
    }
    if run("async") {
        let writers = if quick { 8 } else { 64 };
        async_one_writer(settings, FsyncPolicy::Always);
        async_one_writer(settings, FsyncPolicy::Os);
        async_durable(settings, writers, FsyncPolicy::Always);
        async_durable(settings, if quick { 64 } else { 1024 }, FsyncPolicy::Always);
        async_durable(settings, writers, FsyncPolicy::Batch(std::time::Duration::from_millis(1)));
        async_iterate(settings, if quick { 100_000 } else { 1_000_000 });
    }
    if picked.iter().any(|p| p == "async-iterate") {
        async_iterate(settings, if quick { 100_000 } else { 1_000_000 });
    }
    if run("compression") {
        compression(settings);
    }
    // Not in the default run: it writes 8 GiB.
    if picked.iter().any(|p| p == "open-check") {
        open_check(if quick { &[64 << 20, 128 << 20] } else { &[1 << 30, 2 << 30, 4 << 30, 8 << 30] });
    }
    if run("format") {
        formats(if quick { 200_000 } else { 2_000_000 }, if quick { 2 } else { 5 });
    }
    // Not in the default run: it takes a few minutes and rewrites the chart.
    if picked.iter().any(|p| p == "scaling") {
        scaling(quick);
    }
}

fn one_writer_always(settings: Settings) {
    let payload = [0x5Au8; RECORD];
    let dir = bench_dir("raw");
    let path = dir.join("raw.log");
    let file = StdFs.open(&path, OpenMode::CreateNew).unwrap();
    let size = 256u64 << 20;
    file.allocate(size).unwrap();
    file.sync_data().unwrap();
    let mut at = 0u64;
    let baseline = measure("pwrite + fdatasync (raw)", settings, 1, RECORD as u64, || {
        file.write_all_at(&payload, at).unwrap();
        file.sync_data().unwrap();
        at = (at + RECORD as u64) % size;
    });
    let wal_dir = bench_dir("always");
    let (wal, _) =
        Wal::open(WalConfig::new(&wal_dir).segment_size(256 << 20).fsync(FsyncPolicy::Always)).unwrap();
    let ours = measure("nori-wal Always", settings, 1, RECORD as u64, || {
        black_box(wal.append(&Record::raw(&payload)).unwrap());
    });
    print_table("One writer, every append durable (128 B)", &baseline, &[ours]);
    drop(wal);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(wal_dir);
}

fn one_writer_os(settings: Settings) {
    const PER_CALL: u64 = 10_000;
    const FILE: u64 = 64 << 20;
    let payload = [0x5Au8; RECORD];
    // The baseline writes the payloads through a BufWriter into 64 MiB
    // files, deleting all but the last two, as the WAL below rotates and
    // reclaims; it never syncs.
    let dir = bench_dir("bufwriter");
    let mut n = 0u64;
    let open = |n: u64| BufWriter::new(File::create(dir.join(format!("{n}.log"))).unwrap());
    let mut out = open(n);
    let mut in_file = 0u64;
    let baseline = measure("BufWriter, 64 MiB files", settings, PER_CALL, PER_CALL * RECORD as u64, || {
        for _ in 0..PER_CALL {
            out.write_all(black_box(&payload)).unwrap();
        }
        in_file += PER_CALL * RECORD as u64;
        if in_file >= FILE {
            out.flush().unwrap();
            n += 1;
            out = open(n);
            in_file = 0;
            if n >= 2 {
                let _ = std::fs::remove_file(dir.join(format!("{}.log", n - 2)));
            }
        }
    });
    drop(out);
    // The WAL: 64 MiB segments; like the baseline, a checkpointing user
    // keeps the two newest (reclaiming up to an LSN inside the older of the
    // two).
    let wal_dir = bench_dir("os");
    let (wal, _) = Wal::open(WalConfig::new(&wal_dir).segment_size(FILE).fsync(FsyncPolicy::Os)).unwrap();
    let (mut segments, mut inside_newest, mut inside_previous) = (wal.segment_count(), 0, 0);
    let ours = measure("nori-wal Os, 64 MiB segments", settings, PER_CALL, PER_CALL * RECORD as u64, || {
        for _ in 0..PER_CALL {
            black_box(wal.append(&Record::raw(black_box(&payload))).unwrap());
        }
        if wal.segment_count() > segments {
            inside_previous = inside_newest;
            inside_newest = wal.next_lsn() - 1;
            if inside_previous > wal.first_lsn() {
                wal.truncate_before(inside_previous).unwrap();
            }
            segments = wal.segment_count();
        }
    });
    print_table("One writer, Os policy (128 B)", &baseline, &[ours]);
    drop(wal);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(wal_dir);
}

#[derive(Debug)]
struct NoCheckpoints;

impl okaywal::LogManager for NoCheckpoints {
    fn recover(&mut self, _entry: &mut okaywal::Entry<'_>) -> std::io::Result<()> {
        Ok(())
    }

    fn checkpoint_to(
        &mut self,
        _last: okaywal::EntryId,
        _entries: &mut okaywal::SegmentReader,
        _wal: &okaywal::WriteAheadLog,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

/// `threads` writers, each append durable before it returns: raft-engine
/// (the baseline), okaywal, nori-wal's blocking API (threads) and its async
/// API (tasks on the multi-thread runtime, as the Quick Example uses it),
/// default configurations, one record per call.
fn many_threads_always(settings: Settings, threads: usize) {
    const PER_THREAD: u64 = 20;
    let payload = [0x5Au8; RECORD];
    let ops = threads as u64 * PER_THREAD;
    let bytes = ops * RECORD as u64;
    let on_threads = |each: &(dyn Fn(u64) + Sync)| {
        std::thread::scope(|s| {
            for t in 0..threads as u64 {
                s.spawn(move || (0..PER_THREAD).for_each(|_| each(t)));
            }
        });
    };
    let raft_dir = bench_dir("raft-engine");
    let config = raft_engine::Config { dir: raft_dir.display().to_string(), ..Default::default() };
    let engine = raft_engine::Engine::open(config).unwrap();
    let baseline = measure(&format!("raft-engine 0.4, {threads} threads"), settings, ops, bytes, || {
        on_threads(&|t| {
            let mut batch = raft_engine::LogBatch::default();
            batch.put(t + 1, b"key".to_vec(), payload.to_vec()).unwrap();
            black_box(engine.write(&mut batch, true).unwrap());
        });
    });
    drop(engine);
    let okay_dir = bench_dir("okaywal");
    let okay = okaywal::WriteAheadLog::recover(&okay_dir, NoCheckpoints).unwrap();
    let okay_row = measure(&format!("okaywal 0.3, {threads} threads"), settings, ops, bytes, || {
        on_threads(&|_| {
            let mut entry = okay.begin_entry().unwrap();
            entry.write_chunk(&payload).unwrap();
            entry.commit().unwrap();
        });
    });
    drop(okay);
    let wal_dir = bench_dir("threads");
    let (wal, _) = Wal::open(WalConfig::new(&wal_dir)).unwrap();
    let ours = measure(&format!("nori-wal Always, {threads} threads"), settings, ops, bytes, || {
        on_threads(&|_| {
            black_box(wal.append(&Record::raw(&payload)).unwrap());
        });
        if wal.next_lsn() - wal.first_lsn() >= 200_000 {
            wal.truncate_before(wal.next_lsn()).unwrap();
        }
    });
    let stats = wal.stats();
    drop(wal);
    let adir = bench_dir("threads-async");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let awal = std::sync::Arc::new(runtime.block_on(nori_wal::Wal::open(WalConfig::new(&adir))).unwrap().0);
    let tasks = measure(&format!("nori-wal Always, {threads} async tasks"), settings, ops, bytes, || {
        runtime.block_on(async_appends(&awal, threads, PER_THREAD));
        if awal.next_lsn() - awal.first_lsn() >= 200_000 {
            runtime.block_on(awal.truncate_before(awal.next_lsn())).unwrap();
        }
    });
    let astats = awal.stats();
    print_table(
        &format!("{threads} writers, every append durable before it returns (128 B, default configs)"),
        &baseline,
        &[okay_row.clone(), ours.clone(), tasks.clone()],
    );
    println!(
        "\nagainst okaywal: blocking {:.2}x, async {:.2}x; records per fdatasync: blocking {:.1}, async {:.1}",
        ours.ops_per_sec / okay_row.ops_per_sec,
        tasks.ops_per_sec / okay_row.ops_per_sec,
        stats.records as f64 / stats.syncs.max(1) as f64,
        astats.records as f64 / astats.syncs.max(1) as f64,
    );
    drop(awal);
    drop(runtime);
    for dir in [raft_dir, okay_dir, wal_dir, adir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `tasks` tasks on the current runtime, each appending `each` 128-byte
/// records one `append` at a time.
async fn async_appends(wal: &std::sync::Arc<nori_wal::Wal>, tasks: usize, each: u64) {
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let wal = std::sync::Arc::clone(wal);
            tokio::spawn(async move {
                for _ in 0..each {
                    black_box(wal.append(&Record::raw(&[0x5Au8; RECORD])).await.unwrap());
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
}

/// Writes `bytes` of 128-byte records, then times reopening (recovery)
/// against reading the files with `read`, page cache warm.
fn recovery(bytes: u64, quick: bool) {
    let dir = bench_dir("recovery");
    let config = WalConfig::new(&dir).segment_size(64 << 20).fsync(FsyncPolicy::Os);
    let payload = [0x5Au8; RECORD];
    {
        let (wal, _) = Wal::open(config.clone()).unwrap();
        let records = bytes / (RECORD as u64 + 16);
        let batch: Vec<Record<'_>> = (0..64).map(|_| Record::raw(&payload)).collect();
        for _ in 0..records / 64 {
            wal.append_batch(&batch).unwrap();
        }
        wal.close().unwrap();
    }
    let (files, total) = segment_files(&dir);
    let rounds = if quick { 2 } else { 7 };
    let read_rate = median(rounds, || read_files(&files));
    let mut recovered = 0;
    let recover_rate = median(rounds, || {
        let t = Instant::now();
        let (wal, info) = Wal::open(config.clone()).unwrap();
        recovered = info.records;
        let elapsed = t.elapsed().as_secs_f64();
        drop(wal);
        elapsed
    });
    let baseline = Measurement {
        name: "read() the files".into(),
        ops_per_sec: 1.0 / read_rate,
        bytes_per_sec: total as f64 / read_rate,
    };
    let ours = Measurement {
        name: format!("reopen + recover ({recovered} records)"),
        ops_per_sec: 1.0 / recover_rate,
        bytes_per_sec: total as f64 / recover_rate,
    };
    print_table(
        &format!("Recovery of a {} MiB log, page cache warm (128 B records in batches of 64)", total >> 20),
        &baseline,
        &[ours],
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn read_files(files: &[PathBuf]) -> f64 {
    let t = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    let mut sum = 0u64;
    for path in files {
        let mut f = File::open(Path::new(path)).unwrap();
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            sum = sum.wrapping_add(u64::from(buf[n - 1]));
        }
    }
    black_box(sum);
    t.elapsed().as_secs_f64()
}

/// The median of `rounds` timings (seconds).
fn median(rounds: usize, mut run: impl FnMut() -> f64) -> f64 {
    run();
    let mut times: Vec<f64> = (0..rounds).map(|_| run()).collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Writes a log of `bytes` of 128-byte records in batches of 64 into `dir`.
fn write_log(dir: &Path, bytes: u64) -> Vec<PathBuf> {
    let config = WalConfig::new(dir).segment_size(64 << 20).fsync(FsyncPolicy::Os);
    let payload = [0x5Au8; RECORD];
    let (wal, _) = Wal::open(config).unwrap();
    let records = bytes / (RECORD as u64 + 16);
    let batch: Vec<Record<'_>> = (0..64).map(|_| Record::raw(&payload)).collect();
    for _ in 0..records / 64 {
        wal.append_batch(&batch).unwrap();
    }
    wal.close().unwrap();
    segment_files(dir).0
}

/// The segment files of the WAL in `dir`, and their bytes in all.
fn segment_files(dir: &Path) -> (Vec<PathBuf>, u64) {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    let total = files.iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    (files, total)
}

/// Iterates the whole log through the blocking API (records borrowed from
/// the maps) against `read` of the same files.
fn iterate(bytes: u64, quick: bool) {
    let dir = bench_dir("iterate");
    let files = write_log(&dir, bytes);
    let total = segment_files(&dir).1;
    let (wal, _) = Wal::open(WalConfig::new(&dir).segment_size(64 << 20).fsync(FsyncPolicy::Os)).unwrap();
    let rounds = if quick { 2 } else { 7 };
    let read_time = median(rounds, || read_files(&files));
    let mut count = 0u64;
    let iter_time = median(rounds, || {
        let t = Instant::now();
        let mut iter = wal.iter().unwrap();
        let mut n = 0u64;
        let mut sum = 0u64;
        while let Some(entry) = iter.try_next().unwrap() {
            n += 1;
            if let Some(p) = entry.record.raw_payload() {
                sum = sum.wrapping_add(u64::from(p[0]));
            }
        }
        black_box(sum);
        count = n;
        t.elapsed().as_secs_f64()
    });
    let baseline = Measurement {
        name: "read() the files".into(),
        ops_per_sec: 1.0 / read_time,
        bytes_per_sec: total as f64 / read_time,
    };
    let ours = Measurement {
        name: format!("iterate through the maps ({count} records)"),
        ops_per_sec: count as f64 / iter_time,
        bytes_per_sec: total as f64 / iter_time,
    };
    print_table(
        &format!("Iterating a {} MiB log, page cache warm (128 B records)", total >> 20),
        &baseline,
        &[ours],
    );
    drop(wal);
    let _ = std::fs::remove_dir_all(dir);
}

/// A log of `bytes` of single 128-byte records (one record per frame, as
/// one `append` per record writes them), and the same of frames of 64
/// records: a replay (`open`, then iterate every record, what a key-value
/// store does at start) and `open` alone (recovery, every segment checked),
/// with the default configuration, each against `read()` of the same files
/// in the same run, page cache warm. The async API first (the seed's
/// Quick Example), then the blocking one.
fn replay(bytes: u64, quick: bool) {
    let rounds = if quick { 2 } else { 5 };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    for batch in [1usize, 64] {
        let dir = bench_dir(&format!("replay-{batch}"));
        let config = WalConfig::new(&dir);
        let payload = [0x5Au8; RECORD];
        {
            // Written without a sync per record (what is measured is reading).
            let (wal, _) = Wal::open(config.clone().fsync(FsyncPolicy::Os)).unwrap();
            let records: Vec<Record<'_>> = (0..batch).map(|_| Record::raw(&payload)).collect();
            let per_frame = (batch * (RECORD + 5) + 16) as u64;
            for _ in 0..bytes / per_frame {
                if batch == 1 {
                    wal.append(&records[0]).unwrap();
                } else {
                    wal.append_batch(&records).unwrap();
                }
            }
            wal.close().unwrap();
        }
        let (files, total) = segment_files(&dir);
        let mut held = 0;
        let blocking_open = |held: &mut u64| {
            let t = Instant::now();
            let (wal, info) = Wal::open(config.clone()).unwrap();
            *held = info.records;
            let elapsed = t.elapsed().as_secs_f64();
            drop(wal);
            elapsed
        };
        let blocking_replay = |held: u64| {
            let t = Instant::now();
            let (wal, _) = Wal::open(config.clone()).unwrap();
            let mut iter = wal.iter().unwrap();
            let (mut n, mut sum) = (0u64, 0u64);
            while let Some(entry) = iter.try_next().unwrap() {
                n += 1;
                if let Some(p) = entry.record.raw_payload() {
                    sum = sum.wrapping_add(u64::from(p[0]));
                }
            }
            assert_eq!(n, held);
            black_box(sum);
            let elapsed = t.elapsed().as_secs_f64();
            drop(iter);
            drop(wal);
            elapsed
        };
        let async_open = || {
            let t = Instant::now();
            let (wal, _) = runtime.block_on(nori_wal::Wal::open(config.clone())).unwrap();
            let elapsed = t.elapsed().as_secs_f64();
            drop(wal);
            elapsed
        };
        let async_replay_with = |config: &WalConfig, held: u64| {
            runtime.block_on(async {
                let t = Instant::now();
                let (wal, _) = nori_wal::Wal::open(config.clone()).await.unwrap();
                let mut iter = wal.iter();
                let (mut n, mut sum) = (0u64, 0u64);
                while let Some(entry) = iter.try_next().await.unwrap() {
                    n += 1;
                    if let Some(p) = entry.record.raw_payload() {
                        sum = sum.wrapping_add(u64::from(p[0]));
                    }
                }
                assert_eq!(n, held);
                black_box(sum);
                let elapsed = t.elapsed().as_secs_f64();
                drop(iter);
                drop(wal);
                elapsed
            })
        };
        let async_replay = |held: u64| async_replay_with(&config, held);
        // Sealed segments trusted by their seals at open, checked as they
        // are iterated: each frame checked once.
        let trusting = config.clone().open_check(nori_wal::wal::OpenCheck::Newest(1));
        // One warm-up of each, then rounds in which `read()` of the files
        // runs before each workload: each ratio is taken against the
        // baseline measured just before it (this machine's speed drifts),
        // and the median of the rounds' ratios is reported.
        blocking_open(&mut held);
        let _ = (
            read_files(&files),
            blocking_replay(held),
            async_open(),
            async_replay(held),
            async_replay_with(&trusting, held),
        );
        let mut rows: [(&str, Vec<f64>, Vec<f64>); 6] = [
            ("read() the files", Vec::new(), Vec::new()),
            ("**async: open, then iterate every record**", Vec::new(), Vec::new()),
            ("async: open (every segment checked)", Vec::new(), Vec::new()),
            ("blocking: open, then iterate every record", Vec::new(), Vec::new()),
            ("blocking: open (every segment checked)", Vec::new(), Vec::new()),
            (
                "async: open trusting sealed segments by their seals (`OpenCheck::Newest(1)`), then iterate every record",
                Vec::new(),
                Vec::new(),
            ),
        ];
        for _ in 0..rounds {
            for k in 1..rows.len() {
                let read = read_files(&files);
                let time = match k {
                    1 => async_replay(held),
                    2 => async_open(),
                    3 => blocking_replay(held),
                    4 => blocking_open(&mut held),
                    _ => async_replay_with(&trusting, held),
                };
                rows[0].1.push(read);
                rows[k].1.push(time);
                rows[k].2.push(read / time);
            }
        }
        let frames = if batch == 1 {
            "one record per frame".to_string()
        } else {
            format!("frames of {batch} records")
        };
        println!(
            "\n### Replay of a {} MiB log of {held} 128 B records, {frames} (default config, page cache warm; ops = records; {rounds} rounds, `read()` before each workload in each round)\n",
            total >> 20
        );
        println!("| what | records/s (median) | GB/s (median) | vs read() just before (median, min–max) |");
        println!("|---|---:|---:|---:|");
        for (name, times, ratios) in &mut rows {
            times.sort_by(f64::total_cmp);
            ratios.sort_by(f64::total_cmp);
            let time = times[times.len() / 2];
            let ratio = match (ratios.first(), ratios.get(ratios.len() / 2), ratios.last()) {
                (Some(lo), Some(mid), Some(hi)) => format!("{mid:.2}x ({lo:.2}–{hi:.2})"),
                _ => "1.00x".to_string(),
            };
            println!("| {name} | {:.3e} | {:.2} | {ratio} |", held as f64 / time, total as f64 / time / 1e9);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// 64 writers under `Batch(1 ms)`, each append durable before the writer
/// goes on: blocking threads (`append` + `wait_durable`) against async
/// tasks (`append().await`).
/// Keeps the two newest segments, as a checkpointing user does (and as the
/// `os` section does): otherwise the dirty pages of earlier runs are written
/// back during later ones, and whichever API runs second is throttled.
struct KeepTwo {
    segments: usize,
    inside_newest: u64,
    inside_previous: u64,
}

impl KeepTwo {
    fn new(wal: &Wal) -> Self {
        Self { segments: wal.segment_count(), inside_newest: 0, inside_previous: 0 }
    }

    fn reclaim(&mut self, wal: &Wal) {
        if wal.segment_count() > self.segments {
            self.inside_previous = self.inside_newest;
            self.inside_newest = wal.next_lsn() - 1;
            if self.inside_previous > wal.first_lsn() {
                wal.truncate_before(self.inside_previous).unwrap();
            }
            self.segments = wal.segment_count();
        }
    }
}

/// The seed's path: the async API, one record per `append`, one task,
/// under `policy` (`Always` is the default configuration, the headline);
/// against the blocking API on one thread. The task runs as
/// `#[tokio::main]` runs its body (`block_on` of a multi-thread runtime),
/// and, in a further row, on a current-thread runtime. The three take turns
/// for three rounds, each ratio against the blocking figure of its own
/// round (this machine's speed drifts within a run). All reclaim all but
/// their two newest segments, so that none is throttled by another's
/// write-back.
fn async_one_writer(settings: Settings, policy: FsyncPolicy) {
    // Appends per timed call: a durable append takes a sync.
    let per_call: u64 = if policy == FsyncPolicy::Always { 100 } else { 10_000 };
    let rounds = if settings.samples < 5 { 1 } else { 3 };
    let payload = [0x5Au8; RECORD];
    let config = |dir: &std::path::Path| WalConfig::new(dir).fsync(policy);
    let dir = bench_dir("one-blocking");
    let (wal, _) = Wal::open(config(&dir)).unwrap();
    let mut keep = KeepTwo::new(&wal);
    let runtimes = [
        (
            "async, one task (`#[tokio::main]`: multi-thread runtime)",
            tokio::runtime::Builder::new_multi_thread(),
        ),
        ("async, one task, current-thread runtime", tokio::runtime::Builder::new_current_thread()),
    ];
    let mut asyncs: Vec<_> = runtimes
        .into_iter()
        .enumerate()
        .map(|(i, (name, mut builder))| {
            let runtime = builder.enable_all().build().unwrap();
            let adir = bench_dir(&format!("one-async-{i}"));
            let wal = runtime.block_on(nori_wal::Wal::open(config(&adir))).unwrap().0;
            let keep = KeepTwo::new(wal.blocking());
            (name, runtime, adir, wal, keep)
        })
        .collect();
    let title =
        format!("One writer under {policy:?}, async against blocking (128 B, default config otherwise)");
    for round in 1..=rounds {
        let baseline = measure("blocking, one thread", settings, per_call, per_call * RECORD as u64, || {
            for _ in 0..per_call {
                black_box(wal.append(&Record::raw(black_box(&payload))).unwrap());
            }
            keep.reclaim(&wal);
        });
        let rows: Vec<_> = asyncs
            .iter_mut()
            .map(|(name, runtime, _, wal, keep)| {
                measure(name, settings, per_call, per_call * RECORD as u64, || {
                    runtime.block_on(async {
                        for _ in 0..per_call {
                            black_box(wal.append(&Record::raw(black_box(&payload))).await.unwrap());
                        }
                    });
                    keep.reclaim(wal.blocking());
                })
            })
            .collect();
        print_table(&format!("{title}, round {round} of {rounds}"), &baseline, &rows);
    }
    drop(wal);
    let _ = std::fs::remove_dir_all(&dir);
    for (_, runtime, adir, wal, _) in asyncs {
        drop(wal);
        drop(runtime);
        let _ = std::fs::remove_dir_all(adir);
    }
}

/// Reading back `records` single 128-byte records: the async iterator (a
/// trip to the blocking pool per batch of up to 8 192 records, lent from
/// the batch) against the blocking one (lent from the maps).
fn async_iterate(settings: Settings, records: u64) {
    let payload = [0x5Au8; RECORD];
    let dir = bench_dir("iterate-async");
    let (wal, _) = Wal::open(WalConfig::new(&dir).fsync(FsyncPolicy::Os)).unwrap();
    for _ in 0..records {
        wal.append(&Record::raw(&payload)).unwrap();
    }
    wal.close().unwrap();
    let (wal, _) = Wal::open(WalConfig::new(&dir)).unwrap();
    let baseline = measure("blocking iterator", settings, records, records * RECORD as u64, || {
        let mut iter = wal.iter().unwrap();
        let mut n = 0u64;
        while let Some(entry) = iter.try_next().unwrap() {
            black_box(&entry);
            n += 1;
        }
        assert_eq!(n, records);
    });
    drop(wal);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let wal = runtime.block_on(nori_wal::Wal::open(WalConfig::new(&dir))).unwrap().0;
    let ours = measure("async iterator", settings, records, records * RECORD as u64, || {
        runtime.block_on(async {
            let mut iter = wal.iter();
            let mut n = 0u64;
            while let Some(entry) = iter.try_next().await.unwrap() {
                black_box(&entry);
                n += 1;
            }
            assert_eq!(n, records);
        });
    });
    print_table(
        &format!("Iterating {records} single 128-byte records, async against blocking"),
        &baseline,
        &[ours],
    );
    drop(wal);
    drop(runtime);
    let _ = std::fs::remove_dir_all(dir);
}

/// Many writers, each append durable before the writer goes on: tasks on
/// the multi-thread runtime against threads, under `policy` (`Always`, the
/// default, or `Batch`, where a thread waits with `wait_durable`).
fn async_durable(settings: Settings, writers: usize, policy: FsyncPolicy) {
    const PER_WRITER: u64 = 20;
    let payload = [0x5Au8; RECORD];
    let ops = writers as u64 * PER_WRITER;
    let config = |dir: &std::path::Path| WalConfig::new(dir).fsync(policy);
    let dir = bench_dir("durable-blocking");
    let (wal, _) = Wal::open(config(&dir)).unwrap();
    let baseline =
        measure(&format!("blocking, {writers} threads"), settings, ops, ops * RECORD as u64, || {
            std::thread::scope(|s| {
                for _ in 0..writers {
                    s.spawn(|| {
                        for _ in 0..PER_WRITER {
                            let lsn = wal.append(&Record::raw(&payload)).unwrap();
                            if policy != FsyncPolicy::Always {
                                wal.wait_durable(lsn).unwrap();
                            }
                        }
                    });
                }
            });
        });
    drop(wal);
    let adir = bench_dir("durable-async");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let wal = std::sync::Arc::new(runtime.block_on(nori_wal::Wal::open(config(&adir))).unwrap().0);
    let before = wal.stats();
    let ours = measure(&format!("async, {writers} tasks"), settings, ops, ops * RECORD as u64, || {
        runtime.block_on(async_appends(&wal, writers, PER_WRITER));
    });
    let after = wal.stats();
    let appended = after.records - before.records;
    let title = format!("{writers} writers under {policy:?}, each append durable before the next (128 B)");
    print_table(&title, &baseline, &[ours]);
    println!(
        "\nasync: {:.2} task wake-ups per append, {:.1} records per fdatasync",
        (after.task_wakeups - before.task_wakeups) as f64 / appended.max(1) as f64,
        appended as f64 / (after.syncs - before.syncs).max(1) as f64,
    );
    drop(wal);
    drop(runtime);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(adir);
}

/// LZ4 and Zstd on 4 KiB of text-like and of random bytes: ratio, and
/// speed of compression and decompression against a copy of the input.
fn compression(settings: Settings) {
    let text: Vec<u8> = (0..)
        .map(|i| format!("{{\"id\": {i}, \"name\": \"user {i}\", \"email\": \"user{i}@example.com\", \"active\": {}}}\n", i % 3 == 0))
        .flat_map(String::into_bytes)
        .take(4096)
        .collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    for (name, input) in [("text-like", &text), ("random", &random)] {
        let len = input.len() as u64;
        let mut copy = vec![0u8; input.len()];
        let baseline = measure("memcpy", settings, 1, len, || {
            copy.copy_from_slice(black_box(input));
            black_box(&mut copy);
        });
        let mut packed = vec![0u8; nori_wal::format::lz4::max_compressed_len(input.len())];
        let n = nori_wal::format::lz4::compress(input, &mut packed).unwrap();
        let lz4_c =
            measure(&format!("LZ4 compress (ratio {:.3})", n as f64 / len as f64), settings, 1, len, || {
                black_box(nori_wal::format::lz4::compress(black_box(input), &mut packed));
            });
        let mut plain = vec![0u8; input.len()];
        let lz4_d = measure("LZ4 decompress", settings, 1, len, || {
            nori_wal::format::lz4::decompress(black_box(&packed[..n]), &mut plain).unwrap();
        });
        // Contexts reused, as the WAL keeps one per thread.
        let mut compressor = zstd::bulk::Compressor::new(3).unwrap();
        let mut decompressor = zstd::bulk::Decompressor::new().unwrap();
        let z = compressor.compress(input).unwrap();
        let ratio = z.len() as f64 / len as f64;
        let zstd_c = measure(&format!("Zstd level 3 compress (ratio {ratio:.3})"), settings, 1, len, || {
            black_box(compressor.compress(black_box(input)).unwrap());
        });
        let zstd_d = measure("Zstd decompress", settings, 1, len, || {
            decompressor.decompress_to_buffer(black_box(&z), &mut plain[..]).unwrap();
        });
        print_table(&format!("Compression of 4 KiB, {name}"), &baseline, &[lz4_c, lz4_d, zstd_c, zstd_d]);
    }
}

/// Durable appends per second against writers, for nori-wal (`Always`,
/// blocking threads and async tasks), okaywal and raw `pwrite` +
/// `fdatasync` (each writer syncing its own record, no group commit),
/// measured in one run; writes the chart to `docs/scaling.svg` and prints
/// the table.
fn scaling(quick: bool) {
    use plotters::prelude::*;
    let settings = Settings {
        samples: if quick { 2 } else { 5 },
        sample_time: std::time::Duration::from_millis(if quick { 20 } else { 250 }),
    };
    let threads: &[usize] = if quick { &[1, 4] } else { &[1, 2, 4, 8, 16, 32, 64] };
    let payload = [0x5Au8; RECORD];
    let per_thread = 10u64;
    let mut series: Vec<(&str, Vec<(usize, f64)>)> = vec![
        ("nori-wal Always", vec![]),
        ("okaywal 0.3", vec![]),
        ("raw pwrite + fdatasync", vec![]),
        ("nori-wal Always, async tasks", vec![]),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    for &n in threads {
        let ops = n as u64 * per_thread;
        let dir = bench_dir("scaling-nori");
        let (wal, _) =
            Wal::open(WalConfig::new(&dir).segment_size(64 << 20).fsync(FsyncPolicy::Always)).unwrap();
        let ours = measure("nori", settings, ops, ops, || {
            std::thread::scope(|s| {
                for _ in 0..n {
                    s.spawn(|| {
                        for _ in 0..per_thread {
                            black_box(wal.append(&Record::raw(&payload)).unwrap());
                        }
                    });
                }
            });
        });
        drop(wal);
        let _ = std::fs::remove_dir_all(&dir);
        let dir = bench_dir("scaling-okaywal");
        let okay = okaywal::WriteAheadLog::recover(&dir, NoCheckpoints).unwrap();
        let theirs = measure("okaywal", settings, ops, ops, || {
            std::thread::scope(|s| {
                for _ in 0..n {
                    s.spawn(|| {
                        for _ in 0..per_thread {
                            let mut entry = okay.begin_entry().unwrap();
                            entry.write_chunk(&payload).unwrap();
                            entry.commit().unwrap();
                        }
                    });
                }
            });
        });
        drop(okay);
        let _ = std::fs::remove_dir_all(&dir);
        let dir = bench_dir("scaling-raw");
        let file = StdFs.open(&dir.join("raw.log"), OpenMode::CreateNew).unwrap();
        file.allocate(64 << 20).unwrap();
        let next = std::sync::atomic::AtomicU64::new(0);
        let raw = measure("raw", settings, ops, ops, || {
            std::thread::scope(|s| {
                for _ in 0..n {
                    s.spawn(|| {
                        for _ in 0..per_thread {
                            let at = next.fetch_add(RECORD as u64, std::sync::atomic::Ordering::Relaxed)
                                % (64 << 20);
                            file.write_all_at(&payload, at).unwrap();
                            file.sync_data().unwrap();
                        }
                    });
                }
            });
        });
        drop(file);
        let _ = std::fs::remove_dir_all(&dir);
        // The async API, as many tasks on the multi-thread runtime.
        let dir = bench_dir("scaling-async");
        let config = WalConfig::new(&dir).segment_size(64 << 20).fsync(FsyncPolicy::Always);
        let wal = std::sync::Arc::new(runtime.block_on(nori_wal::Wal::open(config)).unwrap().0);
        let tasks = measure("async", settings, ops, ops, || {
            runtime.block_on(async_appends(&wal, n, per_thread));
        });
        drop(wal);
        let _ = std::fs::remove_dir_all(&dir);
        series[0].1.push((n, ours.ops_per_sec));
        series[1].1.push((n, theirs.ops_per_sec));
        series[2].1.push((n, raw.ops_per_sec));
        series[3].1.push((n, tasks.ops_per_sec));
        println!(
            "{n:>3} writers: nori-wal {:>9.0}/s  okaywal {:>9.0}/s  raw {:>9.0}/s  async {:>9.0}/s",
            ours.ops_per_sec, theirs.ops_per_sec, raw.ops_per_sec, tasks.ops_per_sec
        );
    }
    println!(
        "\n| writers | nori-wal `Always` | okaywal 0.3 | raw `pwrite` + `fdatasync` | nori-wal `Always`, async tasks |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for (i, &n) in threads.iter().enumerate() {
        let [a, b, c, d] = [0, 1, 2, 3].map(|k| series[k].1[i].1);
        println!("| {n} | {a:.0} | {b:.0} | {c:.0} | {d:.0} |");
    }
    if quick {
        return;
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/scaling.svg");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let top = series.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y)).fold(0.0, f64::max) * 1.1;
    let root = SVGBackend::new(&path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).unwrap();
    let mut chart = ChartBuilder::on(&root)
        .caption("Durable appends per second, 128-byte records (2 vCPUs, ext4)", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((1f64..64f64).log_scale(), 0f64..top)
        .unwrap();
    chart
        .configure_mesh()
        .x_desc("writers (threads; tasks for the async line)")
        .y_desc("appends/s, each durable before it returns")
        .x_labels(7)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .unwrap();
    let colors = [RED, BLUE, BLACK, MAGENTA];
    for ((name, points), color) in series.iter().zip(colors) {
        let points: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (x as f64, y)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .unwrap()
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled()))).unwrap();
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .unwrap();
    root.present().unwrap();
    println!("\nchart written to {}", path.display());
}

/// Format version 2 against version 1, run by run in turn (this machine is
/// shared: alternating keeps the two under the same load), through the
/// async API as the seed's Quick Example uses it: `records` single
/// 128-byte records, one `append` each, under `FsyncPolicy::Os` (under the
/// default `Always` both are bound by the disk's sync, which hides the
/// format), default configuration otherwise; then the log reopened
/// (recovery checks every frame) and replayed (open, then iterate every
/// record).
fn formats(records: u64, rounds: usize) {
    use nori_wal::Version;
    let payload = [0x5Au8; RECORD];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut times: [[Vec<f64>; 3]; 2] = Default::default();
    for round in 0..=rounds {
        for (v, version) in [Version::V1, Version::V2].into_iter().enumerate() {
            let dir = bench_dir(&format!("format-{version}"));
            let config = WalConfig::new(&dir).format(version);
            let (append, open, replay) = runtime.block_on(async {
                let t = Instant::now();
                let (wal, _) = nori_wal::Wal::open(config.clone().fsync(FsyncPolicy::Os)).await.unwrap();
                for _ in 0..records {
                    black_box(wal.append(&Record::raw(&payload)).await.unwrap());
                }
                wal.close().await.unwrap();
                let append = t.elapsed().as_secs_f64();
                let t = Instant::now();
                let (wal, info) = nori_wal::Wal::open(config.clone()).await.unwrap();
                let open = t.elapsed().as_secs_f64();
                assert_eq!(info.records, records);
                drop(wal);
                let t = Instant::now();
                let (wal, _) = nori_wal::Wal::open(config).await.unwrap();
                let mut iter = wal.iter();
                let mut n = 0u64;
                while let Some(entry) = iter.try_next().await.unwrap() {
                    black_box(entry.record.raw_payload());
                    n += 1;
                }
                assert_eq!(n, records);
                let replay = t.elapsed().as_secs_f64();
                drop(iter);
                drop(wal);
                (append, open, replay)
            });
            let (_, bytes) = segment_files(&dir);
            let _ = std::fs::remove_dir_all(&dir);
            // The first round warms up and is not counted.
            if round > 0 {
                for (k, time) in [append, open, replay].into_iter().enumerate() {
                    times[v][k].push(time);
                }
                println!(
                    "round {round} {version}: append {:.0} K/s, open {:.3} s, replay {:.3} s ({bytes} bytes of files)",
                    records as f64 / append / 1e3,
                    open,
                    replay
                );
            }
        }
    }
    println!(
        "\nFormat version 2 against version 1, {records} single 128-byte records, async API, {rounds} alternating rounds"
    );
    println!("{:<28} {:>12} {:>12} {:>12}", "step (median)", "v1", "v2", "v2 / v1");
    for (k, step) in
        ["Os appends (records/s)", "open (records/s)", "replay (records/s)"].into_iter().enumerate()
    {
        let rate = |v: usize| {
            let mut t = times[v][k].clone();
            t.sort_by(f64::total_cmp);
            records as f64 / t[t.len() / 2]
        };
        let (one, two) = (rate(0), rate(1));
        println!("{step:<28} {:>12.0} {:>12.0} {:>11.2}x", one, two, two / one);
    }
}

/// `open` (the async API, as the seed uses it) of a log grown to each size
/// in `sizes`, single 128-byte records, default configuration: every
/// segment checked (the default) against sealed segments trusted by their
/// seals with the newest two checked (`OpenCheck::Newest(2)`), and `read()`
/// of the files for scale. Medians of 3, page cache warm.
fn open_check(sizes: &[u64]) {
    use nori_wal::wal::OpenCheck;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = bench_dir("open-check");
    let config = WalConfig::new(&dir);
    let payload = [0x5Au8; RECORD];
    let mut written = 0u64;
    println!("\n### `open` against the log's size (single 128-byte records, default config; medians of 3)\n");
    println!(
        "| log | read() the files | open, every segment checked | open, `OpenCheck::Newest(2)` | trusted / every |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for &size in sizes {
        {
            let (wal, _) = Wal::open(config.clone().fsync(FsyncPolicy::Os)).unwrap();
            let frame = (RECORD + 8) as u64;
            while written < size / frame {
                wal.append(&Record::raw(&payload)).unwrap();
                written += 1;
            }
            wal.close().unwrap();
        }
        let (files, total) = segment_files(&dir);
        let read_time = median(3, || read_files(&files));
        let open = |check: OpenCheck| {
            median(3, || {
                let t = Instant::now();
                let (wal, info) =
                    runtime.block_on(nori_wal::Wal::open(config.clone().open_check(check))).unwrap();
                let elapsed = t.elapsed().as_secs_f64();
                assert_eq!(info.records, written);
                drop(wal);
                elapsed
            })
        };
        let every = open(OpenCheck::Everything);
        let newest = open(OpenCheck::Newest(2));
        println!(
            "| {:.1} GiB ({} files) | {:.3} s | {:.3} s | {:.3} s | {:.3}x |",
            total as f64 / f64::from(1u32 << 30),
            files.len(),
            read_time,
            every,
            newest,
            newest / every
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
