//! The shared ring on a raw device against the device's own speed, each
//! workload alternating with its baseline in the same run:
//!
//! - streaming 4 KiB and 128-byte records (`Os`, one sync at the end)
//!   against `dd` writing 1 MiB blocks with `oflag=direct conv=fdatasync`;
//!   and 4 KiB records with the write-behind's two writer threads (the
//!   default on a raw device) against one;
//! - one writer, a sync after each record (`Always`, the default) against
//!   a loop of 4 KiB `O_DIRECT` writes each followed by `fdatasync`: the
//!   headline row, one task through the async API as the README's Quick
//!   Example appends; then one thread through the blocking API;
//! - 64 threads (blocking API) and 64 tasks (async API), each append
//!   durable (`Always`), against the file WAL's 64 threads and 64 tasks
//!   on the same disk; and what the stack alone costs, a loop of 4 KiB
//!   `O_DIRECT` writes each followed by `fdatasync` on the ring's device
//!   against the same loop on a file on the disk.
//!
//! With `NORI_WAL_BENCH_FS_DIR` naming a directory on a file system that
//! lies on a loop device set up as the ring's, the 64-thread and 64-task
//! rows run again against the file WAL there, so that both sides pay the
//! loop driver's hop per request (the file WAL on the disk itself does
//! not).
//!
//! `NORI_WAL_BENCH_DEVICE=/dev/loopN` names a block device (`.ci/run` sets
//! up a loop device with direct I/O over a file on the disk); without it,
//! an image file in the target directory stands in. `--quick` is a smoke
//! run.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use std::sync::Arc;

use nori_wal::shared::{AsyncSharedRing, SharedConfig, SharedRing};
use nori_wal::{FsyncPolicy, Record};
use nori_wal_backends::raw::{RawDevice, RawError, RawOptions, RawSyncHandle};
use nori_wal_core::{BlockDevice, Geometry, SplitSync};

const SEGMENT: u64 = 16 << 20;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // Words after `--` other than flags pick sections: `one`, `threads`,
    // `stream`; none runs them all.
    let picked: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let run = |section: &str| picked.is_empty() || picked.iter().any(|p| p == section);
    let rounds = if quick { 1 } else { 3 };
    let (device, scratch) = target();
    println!("nori-wal shared ring on {} ({} rounds)", device.display(), rounds);
    let stream_bytes: u64 = if quick { 16 << 20 } else { 256 << 20 };
    let mut rows = Vec::new();
    // The headline: the default configuration (`Always`), one writer, one
    // 128-byte record per append, each durable when it returns.
    let syncs = if quick { 200 } else { 2000 };
    if run("one") {
        rows.push(compare(
            rounds,
            "**default config (`Always`), one task, async API, one record per append** (records/s)",
            || direct_sync_loop(&device, syncs),
            || durable_one_async(&device, syncs),
        ));
        rows.push(compare(
            rounds,
            "`Always`, one thread, blocking API (records/s)",
            || direct_sync_loop(&device, syncs),
            || durable_one(&device, syncs),
        ));
    }
    let per_thread = if quick { 20 } else { 100 };
    if run("threads") {
        // 64 threads and 64 tasks against the file WAL in `dir`.
        let against_file_wal = |rows: &mut Vec<_>, dir: &Path, place: &str| {
            rows.push(compare(
                rounds,
                &format!("64 threads, each append durable, blocking API (records/s; baseline: the file WAL's 64 threads{place})"),
                || file_wal_threads(dir, 64, per_thread),
                || durable_threads(&device, 64, per_thread),
            ));
            rows.push(compare(
                rounds,
                &format!(
                    "64 tasks, each append durable, async API (records/s; baseline: the file WAL's 64 tasks{place})"
                ),
                || file_wal_tasks(dir, 64, per_thread),
                || durable_tasks(&device, 64, per_thread),
            ));
        };
        against_file_wal(&mut rows, &scratch, "");
        // What a durable write costs on the device the ring writes to,
        // against a file on the disk the file WAL writes to: the stack's
        // own cost, no log on either side.
        let written = written_file(&scratch);
        rows.push(compare(
            rounds,
            "(the stack, no log) 4 KiB `O_DIRECT` write + `fdatasync`: on the ring's device (baseline: on a file on the disk)",
            || direct_sync_loop(&written, syncs),
            || direct_sync_loop(&device, syncs),
        ));
        // The same file WAL on a file system on a loop device like the
        // ring's, so that both pay the loop driver's hop per request.
        if let Some(stacked) = stacked_dir() {
            let _cleanup = RemoveOnDrop(stacked.clone());
            against_file_wal(&mut rows, &stacked, " on ext4 on a loop device like the ring's");
        }
    }
    if run("stream") {
        rows.push(compare(
            rounds,
            "streaming 4 KiB records, `Os`, blocking API (payload bytes/s)",
            || dd(&device, stream_bytes),
            || stream(&device, 4096, stream_bytes),
        ));
        rows.push(compare(
            rounds,
            "streaming 4 KiB records as above, two writer threads (default; baseline: one, on a device without a write handle)",
            || stream_one_writer(&device, 4096, stream_bytes),
            || stream(&device, 4096, stream_bytes),
        ));
        rows.push(compare(
            rounds,
            "streaming 128-byte records, `Os`, blocking API (payload bytes/s)",
            || dd(&device, stream_bytes),
            || stream(&device, 128, stream_bytes / 4),
        ));
        rows.push(compare(
            rounds,
            "streaming 128-byte records, `Os`, async API (payload bytes/s)",
            || dd(&device, stream_bytes),
            || stream_async(&device, 128, stream_bytes / 4),
        ));
    }
    println!();
    println!("| workload | baseline | shared ring | ratio |");
    println!("|---|---:|---:|---:|");
    for (name, base, ours) in rows {
        println!("| {name} | {} | {} | {} |", range(&base), range(&ours), ratios(&base, &ours));
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The device to write to, and a scratch directory on the disk.
fn target() -> (PathBuf, PathBuf) {
    let scratch =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("raw-ring-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    if let Some(dev) = std::env::var_os("NORI_WAL_BENCH_DEVICE").filter(|d| !d.is_empty()) {
        return (PathBuf::from(dev), scratch);
    }
    let image = scratch.join("image");
    std::fs::File::create(&image).unwrap().set_len(512 << 20).unwrap();
    (image, scratch)
}

/// A scratch directory under `NORI_WAL_BENCH_FS_DIR` (a file system on a
/// loop device set up as the ring's is; `.ci/run` makes one with ext4),
/// if that names one.
fn stacked_dir() -> Option<PathBuf> {
    let root = std::env::var_os("NORI_WAL_BENCH_FS_DIR").filter(|d| !d.is_empty())?;
    let dir = PathBuf::from(root).join(format!("raw-ring-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Some(dir)
}

/// Removes a directory tree when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs baseline and ours `rounds` times each, alternating; returns the
/// rates of each.
fn compare(
    rounds: usize,
    name: &str,
    mut baseline: impl FnMut() -> f64,
    mut ours: impl FnMut() -> f64,
) -> (String, Vec<f64>, Vec<f64>) {
    let (mut b, mut o) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        b.push(baseline());
        o.push(ours());
    }
    println!("{name}: baseline {b:?}, shared ring {o:?}");
    (name.to_string(), b, o)
}

fn range(v: &[f64]) -> String {
    let (lo, hi) = v.iter().fold((f64::MAX, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    if (hi - lo) / hi < 0.005 { format!("{lo:.3e}") } else { format!("{lo:.3e}–{hi:.3e}") }
}

/// The per-round ratios, lowest to highest.
fn ratios(base: &[f64], ours: &[f64]) -> String {
    let mut r: Vec<f64> = base.iter().zip(ours).map(|(b, o)| o / b).collect();
    r.sort_by(f64::total_cmp);
    match (r.first(), r.last()) {
        (Some(lo), Some(hi)) if hi - lo > 0.005 => format!("{lo:.2}–{hi:.2}x"),
        (Some(lo), _) => format!("{lo:.2}x"),
        _ => String::new(),
    }
}

/// `dd` writing `bytes` in 1 MiB blocks with direct I/O and a final
/// fdatasync: bytes per second.
fn dd(device: &Path, bytes: u64) -> f64 {
    let started = Instant::now();
    let out = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", device.display()))
        .args(["bs=1M", &format!("count={}", bytes >> 20), "oflag=direct", "conv=fdatasync,notrunc"])
        .output()
        .expect("run dd");
    assert!(out.status.success(), "dd: {}", String::from_utf8_lossy(&out.stderr));
    bytes as f64 / started.elapsed().as_secs_f64()
}

/// A fresh ring on `device` (each segment's first sector zeroed first,
/// so that what a baseline or an earlier round left is not recovered).
fn open(device: &Path, policy: FsyncPolicy) -> SharedRing<RawDevice> {
    ring_on(wiped(device), policy)
}

/// `device`, each segment's first sector zeroed, opened as a raw device.
fn wiped(device: &Path) -> RawDevice {
    wipe(device);
    RawDevice::open(device, RawOptions::default().force(true)).unwrap()
}

/// A ring on `raw`, of the bench's segments, overwriting its oldest.
fn ring_on<D: SplitSync<Error = RawError, Handle = RawSyncHandle> + Send + 'static>(
    raw: D,
    policy: FsyncPolicy,
) -> SharedRing<D> {
    let config = SharedConfig::new(SEGMENT).fsync(policy).ring(
        nori_wal_core::ring::RingConfig::new(SEGMENT)
            .when_full(nori_wal_core::ring::FullPolicy::OverwriteOldest),
    );
    SharedRing::open(raw, config).unwrap().0
}

/// One writer appends `len`-byte records until `bytes` of payload, then
/// syncs: payload bytes per second.
fn stream(device: &Path, len: usize, bytes: u64) -> f64 {
    stream_on(open(device, FsyncPolicy::Os), len, bytes)
}

/// [`stream`] through a device that hides the raw device's write handle,
/// so that the write-behind has one writer thread.
fn stream_one_writer(device: &Path, len: usize, bytes: u64) -> f64 {
    stream_on(ring_on(OneWriter(wiped(device)), FsyncPolicy::Os), len, bytes)
}

fn stream_on<D: SplitSync<Error = RawError, Handle = RawSyncHandle> + Send + 'static>(
    ring: SharedRing<D>,
    len: usize,
    bytes: u64,
) -> f64 {
    let payload = vec![0x5Au8; len];
    let n = bytes / len as u64;
    let started = Instant::now();
    for _ in 0..n {
        ring.append(&Record::raw(&payload)).unwrap();
    }
    ring.sync().unwrap();
    let rate = (n * len as u64) as f64 / started.elapsed().as_secs_f64();
    ring.close().unwrap();
    rate
}

/// A raw device without a write handle.
struct OneWriter(RawDevice);

impl BlockDevice for OneWriter {
    type Error = RawError;

    fn geometry(&self) -> Geometry {
        self.0.geometry()
    }

    fn capacity(&self) -> u64 {
        self.0.capacity()
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), RawError> {
        self.0.read(offset, buf)
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), RawError> {
        self.0.program(offset, data)
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), RawError> {
        self.0.erase(offset, len)
    }

    fn sync(&mut self) -> Result<(), RawError> {
        BlockDevice::sync(&mut self.0)
    }
}

impl SplitSync for OneWriter {
    type Handle = RawSyncHandle;

    fn sync_handle(&self) -> Result<RawSyncHandle, RawError> {
        self.0.sync_handle()
    }
}

/// One writer, each 128-byte append durable: records per second.
fn durable_one(device: &Path, n: u64) -> f64 {
    let ring = open(device, FsyncPolicy::Always);
    let payload = [0x5Au8; 128];
    let started = Instant::now();
    for _ in 0..n {
        ring.append(&Record::raw(&payload)).unwrap();
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    ring.close().unwrap();
    rate
}

/// `threads` threads, each 128-byte append durable: records per second.
fn durable_threads(device: &Path, threads: usize, per_thread: usize) -> f64 {
    let ring = open(device, FsyncPolicy::Always);
    let rate = threaded(threads, per_thread, |p| {
        ring.append(&Record::raw(p)).unwrap();
    });
    ring.close().unwrap();
    rate
}

/// A runtime as `#[tokio::main]` makes one (multi-thread, a worker per
/// CPU).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

/// One task, each 128-byte append durable, through the async API:
/// records per second.
fn durable_one_async(device: &Path, n: u64) -> f64 {
    let ring = AsyncSharedRing::from(open(device, FsyncPolicy::Always));
    let rate = runtime().block_on(async {
        let payload = [0x5Au8; 128];
        let started = Instant::now();
        for _ in 0..n {
            ring.append(&Record::raw(&payload)).await.unwrap();
        }
        n as f64 / started.elapsed().as_secs_f64()
    });
    ring.blocking().sync().unwrap();
    rate
}

/// One task appends `len`-byte records through the async API until
/// `bytes` of payload, then syncs: payload bytes per second.
fn stream_async(device: &Path, len: usize, bytes: u64) -> f64 {
    let ring = AsyncSharedRing::from(open(device, FsyncPolicy::Os));
    runtime().block_on(async {
        let payload = vec![0x5Au8; len];
        let n = bytes / len as u64;
        let started = Instant::now();
        for _ in 0..n {
            ring.append(&Record::raw(&payload)).await.unwrap();
        }
        ring.sync().await.unwrap();
        (n * len as u64) as f64 / started.elapsed().as_secs_f64()
    })
}

/// `tasks` tasks, each 128-byte append durable, through the async API:
/// records per second.
fn durable_tasks(device: &Path, tasks: usize, per_task: usize) -> f64 {
    let ring = Arc::new(AsyncSharedRing::from(open(device, FsyncPolicy::Always)));
    tasked(&runtime(), tasks, per_task, || {
        let ring = Arc::clone(&ring);
        async move {
            let payload = [0x5Au8; 128];
            for _ in 0..per_task {
                ring.append(&Record::raw(&payload)).await.unwrap();
            }
        }
    })
}

/// The file WAL's async API with `tasks` tasks, each append durable, in a
/// directory under `scratch`: records per second.
fn file_wal_tasks(scratch: &Path, tasks: usize, per_task: usize) -> f64 {
    let dir = scratch.join("wal");
    let _ = std::fs::remove_dir_all(&dir);
    let runtime = runtime();
    let wal = Arc::new(runtime.block_on(nori_wal::Wal::open(nori_wal::WalConfig::new(&dir))).unwrap().0);
    let rate = tasked(&runtime, tasks, per_task, || {
        let wal = Arc::clone(&wal);
        async move {
            let payload = [0x5Au8; 128];
            for _ in 0..per_task {
                wal.append(&Record::raw(&payload)).await.unwrap();
            }
        }
    });
    drop(wal);
    std::thread::sleep(Duration::from_millis(10));
    rate
}

/// `tasks` tasks on `runtime`, each made by `task` and appending
/// `per_task` records: records per second.
fn tasked<F>(runtime: &tokio::runtime::Runtime, tasks: usize, per_task: usize, task: impl Fn() -> F) -> f64
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    runtime.block_on(async {
        let started = Instant::now();
        let handles: Vec<_> = (0..tasks).map(|_| tokio::spawn(task())).collect();
        for handle in handles {
            handle.await.unwrap();
        }
        (tasks * per_task) as f64 / started.elapsed().as_secs_f64()
    })
}

/// `threads` threads each calling `append` `per_thread` times with a
/// 128-byte payload: calls per second.
fn threaded(threads: usize, per_thread: usize, append: impl Fn(&[u8]) + Sync) -> f64 {
    let payload = [0x5Au8; 128];
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per_thread {
                    append(&payload);
                }
            });
        }
    });
    (threads * per_thread) as f64 / started.elapsed().as_secs_f64()
}

/// Zeroes the first 4 KiB of every segment slot.
fn wipe(device: &Path) {
    use std::os::unix::fs::FileExt;
    let file =
        std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_DIRECT).open(device).unwrap();
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let len = if len == 0 { block_device_len(device) } else { len };
    let mut raw = vec![0u8; 8192];
    let at = raw.as_ptr().align_offset(4096);
    let block = &mut raw[at..at + 4096];
    let mut offset = 0;
    while offset < len {
        file.write_all_at(block, offset).unwrap();
        offset += SEGMENT;
    }
    file.sync_data().unwrap();
}

/// The size of a block device (its metadata says 0).
fn block_device_len(device: &Path) -> u64 {
    use std::io::Seek;
    std::fs::File::open(device).and_then(|mut f| f.seek(std::io::SeekFrom::End(0))).unwrap_or(0)
}

/// A loop of 4 KiB `O_DIRECT` writes, each followed by `fdatasync`:
/// writes per second.
fn direct_sync_loop(device: &Path, n: u64) -> f64 {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_DIRECT).open(device).unwrap();
    // An aligned 4 KiB block.
    let mut raw = vec![0x5Au8; 8192];
    let at = raw.as_ptr().align_offset(4096);
    let block = &mut raw[at..at + 4096];
    block.fill(0x5A);
    let started = Instant::now();
    for i in 0..n {
        file.write_all_at(block, (i % 1024) * 4096).unwrap();
        file.sync_data().unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// A 4 MiB file in `scratch`, every block written (so that a write over it
/// allocates nothing).
fn written_file(scratch: &Path) -> PathBuf {
    let path = scratch.join("written");
    std::fs::write(&path, vec![0u8; 4 << 20]).unwrap();
    std::fs::File::open(&path).and_then(|f| f.sync_all()).unwrap();
    path
}

/// The file WAL with `threads` threads, each append durable, in a
/// directory under `scratch`: records per second.
fn file_wal_threads(scratch: &Path, threads: usize, per_thread: usize) -> f64 {
    let dir = scratch.join("wal");
    let _ = std::fs::remove_dir_all(&dir);
    let (wal, _) = nori_wal::blocking::Wal::open(nori_wal::WalConfig::new(&dir)).unwrap();
    let rate = threaded(threads, per_thread, |p| {
        wal.append(&Record::raw(p)).unwrap();
    });
    drop(wal);
    std::thread::sleep(Duration::from_millis(10));
    rate
}
