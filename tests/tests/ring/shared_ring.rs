//! The shared ring (`nori_wal::shared::SharedRing`): many threads append,
//! syncs are shared and run outside the lock, readers go on between
//! batches; every acknowledged record survives a power cut at any point of
//! the device's trace (I1), a failed sync poisons every waiter (I7); on a
//! simulated device and on a real image file through `RawDevice`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use nori_wal::shared::{Error, SharedConfig, SharedRing};
use nori_wal::{FsyncPolicy, Lsn, Record};
use nori_wal_core::ring::{RingConfig, RingLog};
use nori_wal_core::{BlockDevice, Geometry, RamDevice, SplitSync, SyncHandle};
use nori_wal_tests::sim::{Crash, Cut, Faults, SimDevice, SimError, TraceOp};

/// A simulated device that its sync handle shares: the handle's syncs go
/// into the same trace as the writes, in the order they happened. A sync
/// takes `sync_time` (a disk's), outside the device's lock; the handle
/// notes which thread made the last one. With [`two_writers`](Self::two_writers)
/// it has a write handle, and each program takes a while outside the lock,
/// so that the write-behind's two writers overlap; the trace then has the
/// programs in the order they completed.
#[derive(Clone)]
struct SharedSim {
    device: Arc<Mutex<SimDevice>>,
    sync_time: Duration,
    last_syncer: Arc<Mutex<Option<ThreadId>>>,
    /// How long a program takes, when the device has a write handle.
    two_writers: Option<Duration>,
    /// Programs under way now, and the most there have been at once.
    programs: Arc<(AtomicUsize, AtomicUsize)>,
}

impl SharedSim {
    fn new(device: SimDevice) -> Self {
        Self {
            device: Arc::new(Mutex::new(device)),
            sync_time: Duration::ZERO,
            last_syncer: Arc::default(),
            two_writers: None,
            programs: Arc::default(),
        }
    }

    /// The thread that made the last sync through the sync handle.
    fn last_syncer(&self) -> Option<ThreadId> {
        *self.last_syncer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn slow_syncs(mut self, sync_time: Duration) -> Self {
        self.sync_time = sync_time;
        self
    }

    /// A write handle, and programs that take `program_time` each.
    fn two_writers(mut self, program_time: Duration) -> Self {
        self.two_writers = Some(program_time);
        self
    }

    /// The most programs that were under way at once.
    fn most_programs_at_once(&self) -> usize {
        self.programs.1.load(Ordering::SeqCst)
    }

    fn with<T>(&self, f: impl FnOnce(&mut SimDevice) -> T) -> T {
        f(&mut self.device.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl BlockDevice for SharedSim {
    type Error = SimError;

    fn geometry(&self) -> Geometry {
        self.with(|d| d.geometry())
    }

    fn capacity(&self) -> u64 {
        self.with(|d| d.capacity())
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), SimError> {
        self.with(|d| d.read(offset, buf))
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), SimError> {
        let under_way = self.programs.0.fetch_add(1, Ordering::SeqCst) + 1;
        self.programs.1.fetch_max(under_way, Ordering::SeqCst);
        if let Some(program_time) = self.two_writers {
            std::thread::sleep(program_time);
        }
        let result = self.with(|d| d.program(offset, data));
        self.programs.0.fetch_sub(1, Ordering::SeqCst);
        result
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), SimError> {
        self.with(|d| d.erase(offset, len))
    }

    fn sync(&mut self) -> Result<(), SimError> {
        self.with(BlockDevice::sync)
    }
}

struct SimHandle(SharedSim);

impl SyncHandle for SimHandle {
    type Error = SimError;

    fn sync(&self) -> Result<(), SimError> {
        std::thread::sleep(self.0.sync_time);
        *self.0.last_syncer.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(std::thread::current().id());
        self.0.with(BlockDevice::sync)
    }
}

impl SplitSync for SharedSim {
    type Handle = SimHandle;

    fn sync_handle(&self) -> Result<SimHandle, SimError> {
        Ok(SimHandle(self.clone()))
    }

    fn write_handle(&self) -> Result<Option<Self>, SimError> {
        Ok(self.two_writers.map(|_| self.clone()))
    }
}

const SEGMENT: u64 = 32 << 10;

fn geometry() -> Geometry {
    Geometry::block(512).unwrap()
}

fn sim(len: usize) -> SharedSim {
    SharedSim::new(SimDevice::blank(len, geometry()))
}

fn record(t: usize, i: usize) -> Vec<u8> {
    let mut v = format!("thread {t} record {i} ").into_bytes();
    v.resize(20 + (t * 7 + i * 13) % 90, b'.');
    v
}

/// An acknowledged append: its LSN, its payload, and how long the
/// device's trace was when the append returned (a power cut at or after
/// that point must keep it).
type Acked = (Lsn, Vec<u8>, usize);

/// `threads` threads append `per_thread` records each under `Always`.
fn durable_appends(
    ring: &SharedRing<SharedSim>,
    device: &SharedSim,
    threads: usize,
    per_thread: usize,
) -> Vec<Acked> {
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            let payload = record(t, i);
                            let lsn = ring.append(&Record::raw(&payload)).unwrap();
                            (lsn, payload, device.with(|d| d.trace().len()))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    })
}

fn read_all(ring: &SharedRing<SharedSim>) -> HashMap<Lsn, Vec<u8>> {
    let mut iter = ring.iter_from(ring.first_lsn());
    let mut out = HashMap::new();
    let mut last = None;
    while let Some(e) = iter.try_next().unwrap() {
        if let Some(l) = last {
            assert_eq!(e.lsn, l + 1, "LSNs in order, no gap");
        }
        last = Some(e.lsn);
        out.insert(e.lsn, e.record.raw_payload().unwrap().to_vec());
    }
    out
}

#[test]
fn threads_share_syncs_and_every_acknowledged_record_reads_back() {
    let device = sim(1 << 20).slow_syncs(Duration::from_micros(300));
    let (ring, _) = SharedRing::open(device.clone(), SharedConfig::new(SEGMENT).buffer(8 << 10)).unwrap();
    let acked = durable_appends(&ring, &device, 8, 100);
    let syncs = device.with(|d| d.trace().iter().filter(|op| matches!(op, TraceOp::Sync)).count());
    println!("{} durable appends from 8 threads took {syncs} syncs", acked.len());
    assert!(syncs < acked.len(), "syncs are shared: {syncs} for {} appends", acked.len());
    let mut lsns: Vec<Lsn> = acked.iter().map(|a| a.0).collect();
    lsns.sort_unstable();
    assert_eq!(lsns, (0..800).collect::<Vec<_>>(), "each append its own LSN");
    assert_eq!(ring.durable_lsn(), Some(799));
    let read = read_all(&ring);
    for (lsn, payload, _) in &acked {
        assert_eq!(read.get(lsn), Some(payload), "LSN {lsn}");
    }
}

/// I1 on the shared ring: a power cut at any point of the trace that the
/// threads and the shared syncs made keeps every record acknowledged
/// before it, with its bytes, and invents nothing.
#[test]
fn a_power_cut_anywhere_keeps_every_acknowledged_record() {
    // 512-byte and 4 KiB sectors.
    for sector in [512, 4096] {
        power_cuts_on(Geometry::block(sector).unwrap(), Writers::Threads);
    }
}

/// As above, through the async API: tasks append on themselves and wait
/// for the sync thread's syncs, mixed with a blocking thread's appends.
/// Tasks on tokio's multi-thread runtime (a lone one leads its sync on its
/// own thread, others ask the sync thread) and on the current-thread
/// runtime (the sync thread leads every sync).
#[test]
fn a_power_cut_anywhere_keeps_every_record_acknowledged_to_a_task() {
    for sector in [512, 4096] {
        for writers in [Writers::TasksMultiThread, Writers::TasksCurrentThread] {
            power_cuts_on(Geometry::block(sector).unwrap(), writers);
        }
    }
}

/// Who appends in a crash sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writers {
    Threads,
    TasksMultiThread,
    TasksCurrentThread,
}

/// `tasks` async tasks append `per_task` records each under `Always`, and
/// one blocking thread as many.
fn durable_async_appends(
    ring: SharedRing<SharedSim>,
    device: &SharedSim,
    (tasks, per_task): (usize, usize),
    multi_thread: bool,
) -> Vec<Acked> {
    use nori_wal::shared::AsyncSharedRing;
    let runtime = if multi_thread {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    };
    runtime.block_on(async {
        let ring = Arc::new(AsyncSharedRing::from(ring));
        let blocking = Arc::clone(ring.blocking());
        let thread_device = device.clone();
        let thread = std::thread::spawn(move || {
            (0..per_task)
                .map(|i| {
                    let payload = record(99, i);
                    let lsn = blocking.append(&Record::raw(&payload)).unwrap();
                    (lsn, payload, thread_device.with(|d| d.trace().len()))
                })
                .collect::<Vec<_>>()
        });
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let (ring, device) = (Arc::clone(&ring), device.clone());
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    for i in 0..per_task {
                        let payload = record(t, i);
                        let lsn = ring.append(&Record::raw(&payload)).await.unwrap();
                        assert!(
                            ring.blocking().durable_lsn() >= Some(lsn),
                            "LSN {lsn} durable when acknowledged"
                        );
                        acked.push((lsn, payload, device.with(|d| d.trace().len())));
                    }
                    acked
                })
            })
            .collect();
        let mut acked = thread.join().unwrap();
        for handle in handles {
            acked.extend(handle.await.unwrap());
        }
        acked
    })
}

fn power_cuts_on(geometry: Geometry, writers: Writers) {
    let device = SharedSim::new(SimDevice::blank(2 << 20, geometry)).slow_syncs(Duration::from_micros(100));
    let (ring, _) = SharedRing::open(device.clone(), SharedConfig::new(SEGMENT).buffer(8 << 10)).unwrap();
    let acked = if writers == Writers::Threads {
        let acked = durable_appends(&ring, &device, 4, 60);
        drop(ring);
        acked
    } else {
        durable_async_appends(ring, &device, (4, 60), writers == Writers::TasksMultiThread)
    };
    let checked = keeps_every_acknowledged_record(&device, geometry, &acked);
    println!("{checked} crash images checked ({geometry:?}, {writers:?})");
}

/// Every power cut over `device`'s trace (at each point, in three ways)
/// keeps each acknowledged record whose trace length is at or before the
/// cut, and invents none; the images checked.
fn keeps_every_acknowledged_record(device: &SharedSim, geometry: Geometry, acked: &[Acked]) -> usize {
    let (base, trace) = device.with(|d| (d.base().to_vec(), d.trace().to_vec()));
    let crash = Crash::new(&base, geometry, &trace);
    let mut rng = nori_wal_tests::sim::rng(0x5a4e);
    let payloads: HashMap<Lsn, &Vec<u8>> = acked.iter().map(|(l, p, _)| (*l, p)).collect();
    let mut checked = 0;
    for at in 0..=trace.len() {
        for cut in [Cut::DropUnsynced, Cut::RandomSubset, Cut::Torn { n: 700, granularity: 512, garbage: 0 }]
        {
            let image = crash.image(at, cut, &mut rng);
            let ram = RamDevice::new(image, geometry).unwrap();
            let mut buffer = vec![0u8; 8 << 10];
            let (mut log, _) = RingLog::open(ram, RingConfig::new(SEGMENT), &mut buffer)
                .unwrap_or_else(|e| panic!("cut at {at} ({cut:?}): {e}"));
            let mut read = vec![0u8; 8 << 10];
            let first = log.first_lsn();
            let mut iter = log.iter_from(first, &mut read).unwrap();
            let mut got = HashMap::new();
            while let Some(e) = iter.try_next().unwrap() {
                let p = e.record.raw_payload().unwrap().to_vec();
                assert_eq!(
                    payloads.get(&e.lsn).map(|p| p.as_slice()),
                    Some(p.as_slice()),
                    "cut at {at}: LSN {} invented",
                    e.lsn
                );
                got.insert(e.lsn, p);
            }
            for (lsn, payload, when) in acked {
                if *when <= at {
                    assert_eq!(
                        got.get(lsn),
                        Some(payload),
                        "cut at {at} ({cut:?}): acknowledged LSN {lsn} lost"
                    );
                }
            }
            checked += 1;
        }
    }
    checked
}

/// I1 with the write-behind's two writers (a device with a write handle):
/// one thread streams records of about 1 KB under `Os` and syncs every
/// 60, while two programs at a time go to the device and complete in
/// either order. A power cut anywhere keeps every record that a completed
/// sync covered.
#[test]
fn a_power_cut_anywhere_keeps_every_synced_record_written_two_at_a_time() {
    for sector in [512, 4096] {
        let geometry = Geometry::block(sector).unwrap();
        let device =
            SharedSim::new(SimDevice::blank(2 << 20, geometry)).two_writers(Duration::from_micros(300));
        let config = SharedConfig::new(SEGMENT).buffer(8 << 10).fsync(FsyncPolicy::Os);
        let (ring, _) = SharedRing::open(device.clone(), config).unwrap();
        let mut acked = Vec::new();
        let mut unsynced = Vec::new();
        // Seven syncs: every record appended is acknowledged.
        for i in 0..420 {
            let mut payload = format!("record {i} ").into_bytes();
            payload.resize(600 + i * 37 % 500, b'.');
            unsynced.push((ring.append(&Record::raw(&payload)).unwrap(), payload));
            if i % 60 == 59 {
                ring.sync().unwrap();
                let at = device.with(|d| d.trace().len());
                acked.extend(unsynced.drain(..).map(|(lsn, payload)| (lsn, payload, at)));
            }
        }
        drop(ring);
        assert!(
            device.most_programs_at_once() >= 2,
            "two programs were under way at once ({} at most)",
            device.most_programs_at_once()
        );
        let checked = keeps_every_acknowledged_record(&device, geometry, &acked);
        println!("{checked} crash images checked ({geometry:?}, two writers)");
    }
}

/// A background write that fails (F12: half of it reached the device) is
/// reported by the next call, and the log is poisoned from then on; with
/// one writer thread and with two.
#[test]
fn a_failed_background_write_poisons_the_log() {
    for two_writers in [false, true] {
        let mut device = SharedSim::new(
            SimDevice::blank(1 << 20, geometry())
                .with_faults(Faults { fail_program: Some(3), ..Faults::default() }),
        );
        if two_writers {
            device = device.two_writers(Duration::from_micros(200));
        }
        let config = SharedConfig::new(SEGMENT).fsync(FsyncPolicy::Os).buffer(4 << 10);
        let (ring, _) = SharedRing::open(device.clone(), config).unwrap();
        let mut first_error = None;
        for i in 0..2000 {
            if let Err(e) = ring.append(&Record::raw(&record(0, i))) {
                first_error = Some(e.to_string());
                break;
            }
        }
        let first = first_error.expect("the fourth program failed");
        assert!(
            first.contains("injected") || first.contains("program") || first.contains("poisoned"),
            "{first}"
        );
        assert!(matches!(ring.append(&Record::raw(b"later")), Err(Error::Poisoned { .. })));
        assert!(ring.sync().is_err(), "nothing more is made durable");
    }
}

#[test]
fn a_failed_sync_poisons_every_waiter_and_every_later_call() {
    let device = SharedSim::new(
        SimDevice::blank(1 << 20, geometry()).with_faults(Faults { fail_sync: Some(4), ..Faults::default() }),
    );
    let (ring, _) = SharedRing::open(device.clone(), SharedConfig::new(SEGMENT)).unwrap();
    let results: Vec<Result<Lsn, String>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let ring = &ring;
                s.spawn(move || {
                    (0..50)
                        .map(|i| ring.append(&Record::raw(&record(t, i))).map_err(|e| e.to_string()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let failed = results.iter().filter(|r| r.is_err()).count();
    assert!(failed > 0, "the fifth sync failed");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(e.contains("sync failed (EIO)") || e.contains("poisoned"), "{e}");
    }
    match ring.append(&Record::raw(b"later")) {
        Err(Error::Poisoned { cause }) => assert!(cause.to_string().contains("sync failed"), "{cause}"),
        other => panic!("expected Poisoned, got {other:?}"),
    }
    assert!(ring.sync().is_err());
    // What was acknowledged is durable: reopen from the durable image.
    drop(ring);
    let durable = device.with(|d| d.durable().to_vec());
    let (reopened, _) = SharedRing::open(sim_from(durable), SharedConfig::new(SEGMENT)).unwrap();
    let read = read_all(&reopened);
    for lsn in results.iter().filter_map(|r| r.as_ref().ok()) {
        assert!(read.contains_key(lsn), "acknowledged LSN {lsn} lost");
    }
}

fn sim_from(image: Vec<u8>) -> SharedSim {
    SharedSim::new(SimDevice::new(image, geometry()))
}

#[test]
fn batch_makes_records_durable_within_the_window_and_os_only_when_asked() {
    let device = sim(1 << 20);
    let config = SharedConfig::new(SEGMENT).fsync(FsyncPolicy::Batch(Duration::from_millis(5)));
    let (ring, _) = SharedRing::open(device.clone(), config).unwrap();
    let lsn = ring.append(&Record::raw(b"batched")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ring.durable_lsn() < Some(lsn) {
        assert!(Instant::now() < deadline, "the batch thread never synced");
        std::thread::sleep(Duration::from_millis(1));
    }
    ring.close().unwrap();

    let device = sim(1 << 20);
    let (ring, _) =
        SharedRing::open(device.clone(), SharedConfig::new(SEGMENT).fsync(FsyncPolicy::Os)).unwrap();
    let syncs = || device.with(|d| d.trace().iter().filter(|op| matches!(op, TraceOp::Sync)).count());
    let before = syncs();
    for i in 0..100 {
        ring.append(&Record::raw(&record(0, i))).unwrap();
    }
    assert_eq!(syncs(), before, "no sync asked for, none made");
    assert_eq!(ring.durable_lsn(), None);
    ring.wait_durable(50).unwrap();
    assert_eq!(ring.durable_lsn(), Some(99), "one sync covers everything appended before it");
    ring.close().unwrap();
}

#[test]
fn readers_go_on_while_threads_append_and_reclaim() {
    let device = sim(1 << 20);
    let config = SharedConfig::new(SEGMENT).fsync(FsyncPolicy::Os).buffer(4 << 10);
    let (ring, _) = SharedRing::open(device.clone(), config).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for i in 0..5000 {
                ring.append(&Record::raw(&record(1, i))).unwrap();
                if i % 500 == 499 {
                    // Keep the last 1 000 records: the ring never fills.
                    ring.truncate_before(ring.next_lsn().saturating_sub(1000)).unwrap();
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Release);
        });
        let mut rounds = 0;
        while !stop.load(std::sync::atomic::Ordering::Acquire) {
            let first = ring.first_lsn();
            let mut iter = ring.iter_from(first);
            let mut expect = first;
            loop {
                match iter.try_next() {
                    Ok(Some(e)) => {
                        assert_eq!(e.lsn, expect, "in order, no gap");
                        assert_eq!(e.record.raw_payload().unwrap(), record(1, e.lsn as usize).as_slice());
                        expect += 1;
                    }
                    Ok(None) => break,
                    // Reclaimed under the reader between two batches.
                    Err(Error::Ring(nori_wal_core::ring::Error::LsnOutOfRange { .. })) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            rounds += 1;
        }
        writer.join().unwrap();
        assert!(rounds > 0);
    });
    assert_eq!(ring.next_lsn(), 5000);
}

/// The shared ring on a real image file through `RawDevice` (`O_DIRECT`,
/// `fdatasync` of a duplicate descriptor outside the lock).
#[test]
fn on_a_raw_image_every_acknowledged_record_survives_a_reopen() {
    use nori_wal_backends::raw::{RawDevice, RawOptions};
    let image = nori_wal_tests::media::ImageFile::new(env!("CARGO_TARGET_TMPDIR"), "shared-ring", 8 << 20);
    let acked: Vec<(Lsn, Vec<u8>)> = {
        let device = RawDevice::open(&image.path, RawOptions::default()).unwrap();
        let (ring, _) = SharedRing::open(device, SharedConfig::new(1 << 20)).unwrap();
        let acked = std::thread::scope(|s| {
            let workers: Vec<_> = (0..8)
                .map(|t| {
                    let ring = &ring;
                    s.spawn(move || {
                        (0..100)
                            .map(|i| {
                                let p = record(t, i);
                                (ring.append(&Record::raw(&p)).unwrap(), p)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
        });
        ring.close().unwrap();
        acked
    };
    let device = RawDevice::open(&image.path, RawOptions::default()).unwrap();
    let (ring, info) = SharedRing::open(device, SharedConfig::new(1 << 20)).unwrap();
    assert!(info.corruption.is_none());
    let mut iter = ring.iter_from(ring.first_lsn());
    let mut read = HashMap::new();
    while let Some(e) = iter.try_next().unwrap() {
        read.insert(e.lsn, e.record.raw_payload().unwrap().to_vec());
    }
    for (lsn, p) in &acked {
        assert_eq!(read.get(lsn), Some(p), "LSN {lsn}");
    }
}

/// On a raw image, where the write-behind writes through two handles of
/// the device (two writes in flight): a stream of records of 1 to 3 KB
/// under `Os`, in buffers of 128 KiB, then a sync, reads back whole after
/// a reopen.
#[test]
fn on_a_raw_image_a_stream_written_two_at_a_time_reads_back_whole() {
    use nori_wal_backends::raw::{RawDevice, RawOptions};
    let image =
        nori_wal_tests::media::ImageFile::new(env!("CARGO_TARGET_TMPDIR"), "shared-ring-stream", 8 << 20);
    let config = || SharedConfig::new(1 << 20).buffer(128 << 10).fsync(FsyncPolicy::Os);
    let payload = |i: usize| {
        let mut p = format!("record {i} ").into_bytes();
        p.resize(1000 + i * 131 % 2000, (i % 251) as u8);
        p
    };
    let lsns: Vec<Lsn> = {
        let device = RawDevice::open(&image.path, RawOptions::default()).unwrap();
        let (ring, _) = SharedRing::open(device, config()).unwrap();
        let lsns = (0..2000).map(|i| ring.append(&Record::raw(&payload(i))).unwrap()).collect();
        ring.sync().unwrap();
        ring.close().unwrap();
        lsns
    };
    let device = RawDevice::open(&image.path, RawOptions::default()).unwrap();
    let (ring, info) = SharedRing::open(device, config()).unwrap();
    assert!(info.corruption.is_none());
    let mut iter = ring.iter_from(ring.first_lsn());
    let mut read = Vec::new();
    while let Some(e) = iter.try_next().unwrap() {
        read.push((e.lsn, e.record.raw_payload().unwrap().to_vec()));
    }
    assert_eq!(read.len(), lsns.len(), "every record back");
    for ((lsn, p), (i, expected)) in read.iter().zip(lsns.iter().enumerate()) {
        assert_eq!(lsn, expected);
        assert_eq!(p, &payload(i), "LSN {lsn}");
    }
}

/// A ring made afresh where an earlier ring lay, the start of each segment
/// zeroed (its header alone, or the first 4 KiB as a tool that wipes by the
/// page does), the same records written again under `Always` (F5: stale
/// valid records). The earlier ring filled and sealed the first segment;
/// the new one writes fewer records there, is reopened and goes on, then
/// is reopened again. The earlier ring's frames and seal left in the first
/// segment never pass for the new ring's, since the new ring's epochs start
/// from the clock: it opens whole, with exactly its own records. (With
/// epochs from 1 for both, the earlier ring's 105 records after the new
/// ring's 20 came back as the new ring's.)
#[test]
fn a_new_ring_over_an_earlier_one_whose_headers_were_zeroed_opens_with_its_own_records() {
    const SEG: u64 = 64 << 10;
    let config = || SharedConfig::new(SEG);
    let payload = |i: usize| format!("record {i:05} ").repeat(4).into_bytes();
    // Opens the ring on `image`, appends `range`, closes it: the image after.
    let session =
        |image: Vec<u8>, range: std::ops::Range<usize>| -> Result<(Vec<u8>, u64), Error<SimError>> {
            let device = sim_from(image);
            let (ring, info) = SharedRing::open(device.clone(), config())?;
            assert!(info.corruption.is_none(), "{:?}", info.corruption);
            for i in range {
                ring.append(&Record::raw(&payload(i))).unwrap();
            }
            ring.close().unwrap();
            Ok((device.with(|d| d.image().to_vec()), info.records))
        };
    for zeroed in [512, 4096] {
        // The earlier ring: the first segment filled and sealed, the second
        // begun.
        let (mut image, _) = session(vec![0u8; 8 * SEG as usize], 0..200).unwrap();
        for slot in 0..8 {
            image[slot * SEG as usize..slot * SEG as usize + zeroed].fill(0);
        }
        // The new ring: 100 records in the first segment; reopened, 50 more.
        let (image, records) = session(image, 0..20).unwrap();
        assert_eq!(records, 0, "zeroed {zeroed}: a ring made afresh");
        let (image, records) = session(image, 20..30).unwrap();
        assert_eq!(records, 20, "zeroed {zeroed}: only the new ring's records");
        let (ring, info) = SharedRing::open(sim_from(image), config())
            .unwrap_or_else(|e| panic!("zeroed {zeroed}: a healthy log refused: {e}"));
        assert!(info.corruption.is_none(), "zeroed {zeroed}: {:?}", info.corruption);
        let mut iter = ring.iter_from(ring.first_lsn());
        let mut next = 0;
        while let Some(e) = iter.try_next().unwrap() {
            assert_eq!((e.lsn, e.record.raw_payload()), (next as Lsn, Some(payload(next).as_slice())));
            next += 1;
        }
        assert_eq!(next, 30, "zeroed {zeroed}: every acknowledged record, and no other");
    }
}

/// The async face: 32 tasks append durably (their syncs shared with a
/// blocking thread's), and an async reader gets every record.
#[test]
fn async_tasks_and_threads_share_the_ring() {
    use nori_wal::shared::AsyncSharedRing;
    let device = sim(1 << 20).slow_syncs(Duration::from_micros(200));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let (ring, _) = AsyncSharedRing::open(device.clone(), SharedConfig::new(SEGMENT)).await.unwrap();
        let ring = Arc::new(ring);
        let blocking = Arc::clone(ring.blocking());
        let thread = std::thread::spawn(move || {
            (0..50)
                .map(|i| (blocking.append(&Record::raw(&record(99, i))).unwrap(), record(99, i)))
                .collect::<Vec<_>>()
        });
        let tasks: Vec<_> = (0..32)
            .map(|t| {
                let ring = Arc::clone(&ring);
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    for i in 0..10 {
                        let p = record(t, i);
                        acked.push((ring.append(&Record::raw(&p)).await.unwrap(), p));
                    }
                    acked
                })
            })
            .collect();
        let mut acked = thread.join().unwrap();
        for task in tasks {
            acked.extend(task.await.unwrap());
        }
        assert_eq!(acked.len(), 370);
        let mut iter = ring.iter_from(0);
        let mut read = HashMap::new();
        while let Some(e) = iter.try_next().await.unwrap() {
            read.insert(e.lsn, e.record.raw_payload().unwrap().to_vec());
        }
        for (lsn, p) in &acked {
            assert_eq!(read.get(lsn), Some(p), "LSN {lsn}");
        }
        assert_eq!(ring.blocking().durable_lsn(), Some(369));
    });
}

/// Under `Always`, on tokio's multi-thread runtime, a lone task's append
/// syncs on the task's own thread, as a blocking caller would (no hand-off
/// to the sync thread and back), while the runtime's other tasks go on; on
/// the current-thread runtime the sync thread syncs. Either way the record
/// is durable when the append returns.
#[test]
fn a_lone_async_append_under_always_syncs_on_its_own_thread_where_the_runtime_lets_it() {
    use nori_wal::shared::AsyncSharedRing;
    for multi_thread in [true, false] {
        let runtime = if multi_thread {
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
        } else {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
        };
        let device = sim(1 << 20).slow_syncs(Duration::from_millis(20));
        runtime.block_on(async {
            let (ring, _) = AsyncSharedRing::open(device.clone(), SharedConfig::new(SEGMENT)).await.unwrap();
            // The first append starts the first segment, on the blocking pool.
            ring.append(&Record::raw(b"first")).await.unwrap();
            let ((), during) = crate::ticks::ticks_during(async {
                for i in 0..5usize {
                    let lsn = ring.append(&Record::raw(&record(0, i))).await.unwrap();
                    assert!(
                        ring.blocking().durable_lsn() >= Some(lsn),
                        "LSN {lsn} not durable when acknowledged"
                    );
                    let inline = device.last_syncer() == Some(std::thread::current().id());
                    assert_eq!(
                        inline, multi_thread,
                        "multi-thread runtime: {multi_thread}; append {i} synced here: {inline}"
                    );
                }
            })
            .await;
            // Five syncs of 20 ms: a ticker every millisecond runs tens of
            // times unless the executor stood still.
            assert!(during >= 10, "multi-thread runtime: {multi_thread}; the executor ran {during} times");
        });
    }
}

/// The async `sync` and `wait_durable`: under `Batch` with a window far
/// longer than the test, the sync thread syncs at once when asked; under
/// `Os` the sync runs on the blocking pool. Either way the records are
/// durable when the call returns.
#[test]
fn async_sync_and_wait_durable_make_records_durable_at_once() {
    use nori_wal::shared::AsyncSharedRing;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        for policy in [FsyncPolicy::Batch(Duration::from_secs(3600)), FsyncPolicy::Os] {
            let device = sim(1 << 20);
            let config = SharedConfig::new(SEGMENT).fsync(policy);
            let (ring, _) = AsyncSharedRing::open(device.clone(), config).await.unwrap();
            let syncs = || device.with(|d| d.trace().iter().filter(|op| matches!(op, TraceOp::Sync)).count());
            let before = syncs();
            let first = ring.append(&Record::raw(b"one")).await.unwrap();
            assert_eq!(ring.blocking().durable_lsn(), None, "{policy:?}: not durable before a sync");
            let started = std::time::Instant::now();
            // Bounded: a sync that waited for the window would hang here.
            let bound = Duration::from_secs(30);
            tokio::time::timeout(bound, ring.wait_durable(first))
                .await
                .expect("no wait for the window")
                .unwrap();
            assert_eq!(ring.blocking().durable_lsn(), Some(first), "{policy:?}");
            let second = ring.append(&Record::raw(b"two")).await.unwrap();
            tokio::time::timeout(bound, ring.sync()).await.expect("no wait for the window").unwrap();
            assert_eq!(ring.blocking().durable_lsn(), Some(second), "{policy:?}");
            assert!(started.elapsed() < 2 * bound, "{policy:?}: no wait for the window");
            assert!(syncs() >= before + 2, "{policy:?}: each call synced the device");
            // Nothing new: returns at once, with no sync.
            let after = syncs();
            ring.sync().await.unwrap();
            assert_eq!(syncs(), after, "{policy:?}: nothing to sync");
        }
    });
}
