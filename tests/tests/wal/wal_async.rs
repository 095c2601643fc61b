//! The async API: the seed's verbs, many tasks, durability under each
//! policy, poisoning seen by every waiting task, and an executor that keeps
//! running while appends wait for their sync.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nori_wal::{Error, FsyncPolicy, Record, Wal, WalConfig};
use nori_wal_tests::simfs::{FsFaults, SimFs};
use nori_wal_tests::walkit::Scratch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_append_and_every_record_is_durable_and_read_back() {
    for policy in [FsyncPolicy::Always, FsyncPolicy::Batch(Duration::from_millis(2)), FsyncPolicy::Os] {
        let scratch = Scratch::new("async-tasks");
        let config = WalConfig::new(scratch.wal()).segment_size(64 << 10).fsync(policy);
        let (wal, _) = Wal::open(config.clone()).await.unwrap();
        let wal = Arc::new(wal);
        let mut tasks = Vec::new();
        for t in 0..16u32 {
            let wal = Arc::clone(&wal);
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..40u32 {
                    let value = format!("task {t} record {i}").into_bytes();
                    let lsn = wal.append(&Record::raw(&value)).await.unwrap();
                    if policy != FsyncPolicy::Os {
                        assert!(
                            wal.durable_lsn() >= Some(lsn),
                            "{policy:?}: append resolved before it was durable"
                        );
                    }
                    mine.push((lsn, value));
                }
                let batch = wal
                    .append_batch(&[Record::put(b"k", &t.to_le_bytes()), Record::delete(b"k")])
                    .await
                    .unwrap();
                assert_eq!(batch.end - batch.start, 2);
                mine
            }));
        }
        let mut expected = Vec::new();
        for task in tasks {
            expected.extend(task.await.unwrap());
        }
        wal.sync().await.unwrap();
        let mut got = Vec::new();
        let mut iter = wal.iter();
        while let Some(entry) = iter.try_next().await.unwrap() {
            if let Some(v) = entry.record.raw_payload() {
                got.push((entry.lsn, v.to_vec()));
            }
        }
        expected.sort();
        assert!(got == expected, "{policy:?}: {} of {} records read back", got.len(), expected.len());
        // Each waiting task is woken once, when its record is durable, not
        // at every sync: at most one wake-up per durable append or batch.
        let wakeups = wal.stats().task_wakeups;
        let durable_calls = 16 * 41;
        match policy {
            FsyncPolicy::Os => assert_eq!(wakeups, 0),
            _ => assert!(
                wakeups <= durable_calls,
                "{policy:?}: {wakeups} wake-ups for {durable_calls} appends"
            ),
        }
        let count = wal.next_lsn();
        drop(iter);
        Arc::try_unwrap(wal).unwrap().close().await.unwrap();
        let (_, info) = Wal::open(config).await.unwrap();
        assert_eq!(info.records, count, "{policy:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_executor_keeps_running_while_appends_wait_for_their_sync() {
    // One executor thread. If an append blocked it while waiting for the
    // batch window, the ticker below could not run meanwhile.
    let scratch = Scratch::new("async-executor");
    let window = Duration::from_millis(60);
    let (wal, _) = Wal::open(WalConfig::new(scratch.wal()).fsync(FsyncPolicy::Batch(window))).await.unwrap();
    let (lsn, during) = crate::ticks::ticks_during(async {
        wal.append(&Record::raw(b"waits for the window")).await.unwrap()
    })
    .await;
    assert_eq!(wal.durable_lsn(), Some(lsn));
    // A tick every millisecond or two over a 60 ms window: tens, unless the
    // executor stood still (then none).
    assert!(during >= 10, "the executor ran only {during} times while an append waited {window:?}");
    println!("the executor ran {during} times while an append waited for its batch sync");
}

/// Under `Always`, on tokio's multi-thread runtime (what `#[tokio::main]`
/// builds), a lone task's append syncs on the task's own thread, as a
/// blocking caller would, and not by handing the sync to the WAL's sync
/// thread and waiting to be woken; the runtime's other tasks go on
/// meanwhile, on one worker thread as on more. On the current-thread
/// runtime, where no task may block, the sync thread syncs and the
/// executor goes on too. Either way the record is durable when the append
/// returns.
#[test]
fn a_lone_append_under_always_syncs_on_its_own_thread_where_the_runtime_lets_it() {
    let sync_time = Duration::from_millis(20);
    for (flavor, workers) in [("multi-thread", 1), ("multi-thread", 2), ("current-thread", 1)] {
        let runtime = if flavor == "multi-thread" {
            tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap()
        } else {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
        };
        let fs = SimFs::new(FsFaults::default()).slow_syncs(sync_time);
        let config = WalConfig::new("/wal").segment_size(64 << 10);
        let wal = Arc::new(runtime.block_on(Wal::open_in(fs.clone(), config)).unwrap().0);
        // The first append starts the first segment, on the blocking pool.
        runtime.block_on(wal.append(&Record::raw(b"first"))).unwrap();
        // In `block_on` (the body of `#[tokio::main]`) and in a spawned task.
        for spawned in [false, true] {
            let (wal, fs) = (Arc::clone(&wal), fs.clone());
            let appends = async move {
                crate::ticks::ticks_during(async {
                    for i in 0..5u32 {
                        let lsn = wal.append(&Record::raw(&i.to_le_bytes())).await.unwrap();
                        assert!(wal.durable_lsn() >= Some(lsn), "{flavor}: LSN {lsn} not durable when acknowledged");
                        let here = std::thread::current().id();
                        let inline = fs.last_syncer() == Some(here);
                        assert_eq!(
                            inline,
                            flavor == "multi-thread",
                            "{flavor} ({workers} workers, spawned: {spawned}), append {i}: synced on the task's thread: {inline}"
                        );
                    }
                })
                .await
            };
            let ((), ticks) = if spawned {
                runtime.block_on(async { tokio::spawn(appends).await.unwrap() })
            } else {
                runtime.block_on(appends)
            };
            // Five syncs of 20 ms: a ticker every millisecond runs tens of
            // times unless the executor stood still.
            assert!(
                ticks >= 10,
                "{flavor} ({workers} workers, spawned: {spawned}): the executor ran {ticks} times"
            );
        }
    }
}

/// I1 for a lone writer that leads its syncs on its own thread: power
/// cuts taken by another thread while one task appends under `Always` on
/// the multi-thread runtime (small segments, so that segments are sealed
/// and started and marks of the durable point written as it goes) keep
/// every record acknowledged before the cut, and the log opens whole.
#[test]
fn power_cuts_while_a_lone_task_appends_keep_every_acknowledged_record() {
    use rand::SeedableRng;
    use std::sync::atomic::AtomicBool;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let fs = SimFs::new(FsFaults::default());
    let config = WalConfig::new("/wal").segment_size(16 << 10);
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let cutter = {
        let (fs, acked, done) = (fs.clone(), Arc::clone(&acked), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(0x10e);
            let mut images = Vec::new();
            while !done.load(Ordering::Acquire) {
                // Every record acknowledged before the cut began.
                let before = acked.load(Ordering::Acquire);
                let cut = if images.len() % 2 == 0 {
                    nori_wal_tests::simfs::FsCut::DropUnsynced
                } else {
                    nori_wal_tests::simfs::FsCut::RandomSubset
                };
                images.push((before, fs.crash(cut, &mut rng)));
                std::thread::sleep(Duration::from_micros(20));
            }
            images
        })
    };
    let value = |lsn: u64| format!("record {lsn} ").repeat(1 + (lsn % 7) as usize).into_bytes();
    runtime.block_on(async {
        let (wal, _) = Wal::open_in(fs.clone(), config.clone()).await.unwrap();
        for lsn in 0..2000u64 {
            assert_eq!(wal.append(&Record::raw(&value(lsn))).await.unwrap(), lsn);
            acked.store(lsn + 1, Ordering::Release);
        }
        assert!(wal.blocking().segment_count() > 5, "the run crossed segments");
    });
    done.store(true, Ordering::Release);
    let images = cutter.join().unwrap();
    assert!(images.len() >= 5, "only {} cuts were taken", images.len());
    for (before, image) in &images {
        let (wal, info) = nori_wal::blocking::Wal::open_in(image.clone(), config.clone())
            .unwrap_or_else(|e| panic!("a cut after {before} acknowledged appends: {e}"));
        assert!(info.corruption.is_none(), "after {before} acknowledged: {:?}", info.corruption);
        let mut iter = wal.iter().unwrap();
        let mut next = 0u64;
        while let Some(entry) = iter.try_next().unwrap() {
            assert_eq!(entry.lsn, next, "LSNs in order from 0");
            assert_eq!(entry.record.raw_payload(), Some(value(next).as_slice()), "LSN {next}");
            next += 1;
        }
        assert!(next >= *before, "a cut after {before} acknowledged appends kept {next}");
    }
    println!("{} power cuts checked", images.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_reaches_every_waiting_task() {
    let mut poisoned = 0;
    for (n, policy) in [0u64, 2, 5]
        .into_iter()
        .flat_map(|n| [(n, FsyncPolicy::Batch(Duration::from_millis(1))), (n, FsyncPolicy::Always)])
    {
        let fs = SimFs::new(FsFaults { fail_sync: Some(n), ..FsFaults::default() });
        let config = WalConfig::new("/wal").segment_size(64 << 10).fsync(policy);
        let (wal, _) = Wal::open_in(fs, config).await.unwrap();
        let wal = Arc::new(wal);
        let mut tasks = Vec::new();
        for t in 0..16u32 {
            let wal = Arc::clone(&wal);
            tasks.push(tokio::spawn(async move {
                for i in 0..50u32 {
                    if let Err(e) = wal.append(&Record::raw(format!("{t}/{i}").as_bytes())).await {
                        return Some(e);
                    }
                }
                None
            }));
        }
        let mut failed = 0;
        let all = tokio::time::timeout(Duration::from_secs(60), async {
            for task in tasks {
                if let Some(e) = task.await.unwrap() {
                    assert!(matches!(e, Error::Poisoned { .. } | Error::Io { .. }), "{e}");
                    failed += 1;
                }
            }
        })
        .await;
        assert!(all.is_ok(), "fail_sync {n}, {policy:?}: a task hung");
        assert!(failed > 0, "fail_sync {n}, {policy:?}: no task saw the failure");
        // A failed data sync poisons (a failed sync of a new segment's
        // header fails only the append that needed the segment).
        if wal.blocking().is_poisoned() {
            assert!(matches!(wal.append(&Record::raw(b"later")).await, Err(Error::Poisoned { .. })));
            poisoned += 1;
        }
    }
    assert!(poisoned >= 1, "no run poisoned the WAL");
}

/// Appends dropped part-way (timeouts of every length) never tear the log
/// and never lose an acknowledged record: after a power cut, every append
/// that resolved is there, intact, and the log is a contiguous prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_appends_leave_a_whole_log_and_lose_nothing_acknowledged() {
    use rand::SeedableRng;
    for policy in [FsyncPolicy::Always, FsyncPolicy::Batch(Duration::from_millis(1))] {
        let fs = SimFs::new(FsFaults::default());
        let config = WalConfig::new("/wal").segment_size(16 << 10).fsync(policy);
        let (wal, _) = Wal::open_in(fs.clone(), config.clone()).await.unwrap();
        let wal = Arc::new(wal);
        let mut tasks = Vec::new();
        for t in 0..16u64 {
            let wal = Arc::clone(&wal);
            tasks.push(tokio::spawn(async move {
                let (mut acknowledged, mut dropped) = (Vec::new(), 0);
                for i in 0..60u64 {
                    let value = format!("task {t} record {i}").into_bytes();
                    let limit = Duration::from_micros((t * 61 + i * 17) % 400);
                    let record = Record::raw(&value);
                    let append = wal.append(&record);
                    let outcome = if i % 7 == 3 {
                        // Dropped right after its first poll (it waits for
                        // a sync then), whatever the timer's resolution and
                        // the machine's speed.
                        tokio::select! {
                            biased;
                            lsn = append => Some(lsn),
                            () = std::future::ready(()) => None,
                        }
                    } else {
                        tokio::time::timeout(limit, append).await.ok()
                    };
                    match outcome {
                        Some(lsn) => acknowledged.push((lsn.unwrap(), value)),
                        None => dropped += 1,
                    }
                }
                (acknowledged, dropped)
            }));
        }
        let (mut acknowledged, mut dropped) = (Vec::new(), 0);
        for task in tasks {
            let (mine, n) = task.await.unwrap();
            acknowledged.extend(mine);
            dropped += n;
        }
        // A power cut now: only what was synced survives.
        let crashed =
            fs.crash(nori_wal_tests::simfs::FsCut::DropUnsynced, &mut rand::rngs::SmallRng::seed_from_u64(7));
        let (wal, info) = Wal::open_in(crashed, config).await.unwrap();
        let mut read = std::collections::BTreeMap::new();
        let mut iter = wal.iter();
        while let Some(entry) = iter.try_next().await.unwrap() {
            let Some(bytes) = entry.record.raw_payload() else { panic!("{:?}", entry.record) };
            read.insert(entry.lsn, bytes.to_vec());
        }
        assert!(info.corruption.is_none(), "{policy:?}: {:?}", info.corruption);
        let lsns: Vec<u64> = read.keys().copied().collect();
        assert!(lsns.windows(2).all(|w| w[1] == w[0] + 1), "{policy:?}: LSNs not contiguous");
        for (lsn, value) in &acknowledged {
            assert_eq!(read.get(lsn), Some(value), "{policy:?}: acknowledged LSN {lsn} lost or changed");
        }
        println!("{policy:?}: {} appends acknowledged, {dropped} dropped part way", acknowledged.len());
        assert!(dropped > 0 && !acknowledged.is_empty(), "{policy:?}: both kinds happened");
    }
}

/// The record the cancellation test writes at `lsn`: a put, a delete or a
/// raw record, of varied sizes.
fn varied(lsn: u64) -> nori_wal::RecordBuf {
    let value = format!("value {lsn}").repeat(1 + (lsn % 5) as usize).into_bytes();
    let key = format!("key {lsn}").into_bytes();
    match lsn % 3 {
        0 => nori_wal::RecordBuf::Put { key, value },
        1 => nori_wal::RecordBuf::Delete { key },
        _ => nori_wal::RecordBuf::Raw(value),
    }
}

/// The async iterator lends each record from a batch packed on the
/// blocking pool; a `try_next` cancelled while it waits for a batch loses
/// nothing: every record comes once, in order, with its bytes.
#[test]
fn async_iteration_cancelled_part_way_loses_no_record() {
    let scratch = Scratch::new("async-iter-cancel");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let (wal, _) = Wal::open(WalConfig::new(scratch.wal()).fsync(FsyncPolicy::Os)).await.unwrap();
        for lsn in 0..5000u64 {
            wal.append(&varied(lsn).as_record()).await.unwrap();
        }
        let mut iter = wal.iter();
        let (mut next, mut cancelled) = (0u64, 0);
        loop {
            match tokio::time::timeout(Duration::from_micros(50), iter.try_next()).await {
                Ok(Ok(Some(entry))) => {
                    assert_eq!(entry.lsn, next);
                    assert_eq!(entry.record, varied(next).as_record(), "LSN {next}");
                    next += 1;
                }
                Ok(Ok(None)) => break,
                Ok(Err(e)) => panic!("{e}"),
                Err(_) => cancelled += 1,
            }
        }
        assert_eq!(next, 5000, "every record once ({cancelled} reads cancelled)");
        drop(iter);
        wal.close().await.unwrap();
    });
}

/// Damage that appears in a segment after the WAL was opened: the async
/// iterator returns every record before it, in order, then the error,
/// then nothing — as the blocking iterator does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_iteration_reports_damage_after_the_records_before_it() {
    let scratch = Scratch::new("async-iter-damage");
    let config = WalConfig::new(scratch.wal()).segment_size(64 << 10).fsync(FsyncPolicy::Os);
    let (wal, _) = Wal::open(config).await.unwrap();
    let total = 20_000u64;
    for i in 0..total {
        wal.append(&Record::raw(format!("record {i:>12}").as_bytes())).await.unwrap();
    }
    wal.sync().await.unwrap();
    let segments = nori_wal_tests::walkit::segment_files(&scratch.wal());
    assert!(segments.len() > 4, "{} segments", segments.len());
    // A byte in the middle of the third segment's frames.
    nori_wal_tests::walkit::flip_bit(&segments[2], 32 << 10, 3);
    let blocking = blocking_lsns(&wal);
    let mut iter = wal.iter();
    let mut lsns = Vec::new();
    let error = loop {
        match iter.try_next().await {
            Ok(Some(entry)) => lsns.push(entry.lsn),
            Ok(None) => panic!("the damage was not reported; {} records read", lsns.len()),
            Err(e) => break e,
        }
    };
    assert!(matches!(error, Error::Corrupt(_)), "{error}");
    assert_eq!(lsns, blocking, "the async iterator and the blocking one disagree before the damage");
    assert!(lsns.iter().copied().eq(0..lsns.len() as u64) && (lsns.len() as u64) < total, "{}", lsns.len());
    assert!(iter.try_next().await.unwrap().is_none(), "records after the error");
}

/// The async iterator reads the segments with two readers at once, each
/// through its own segment: across many segments, from any LSN, records
/// come in order, each once; segments reclaimed (`truncate_before`) while
/// it reads stay readable to it, as they do to the blocking iterator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_iteration_across_segments_reads_in_order_while_segments_are_reclaimed() {
    let scratch = Scratch::new("async-iter-lanes");
    let config = WalConfig::new(scratch.wal()).segment_size(64 << 10).fsync(FsyncPolicy::Os);
    let (wal, _) = Wal::open(config).await.unwrap();
    let total = 30_000u64;
    for lsn in 0..total {
        wal.append(&varied(lsn).as_record()).await.unwrap();
    }
    let segments = nori_wal_tests::walkit::segment_files(&scratch.wal()).len();
    assert!(segments > 10, "{segments} segments");
    for from in [0, 1, 4_999, 12_345, total - 1, total] {
        let mut iter = wal.iter_from(from);
        let mut next = from;
        while let Some(entry) = iter.try_next().await.unwrap() {
            assert_eq!(entry.lsn, next);
            assert_eq!(entry.record, varied(next).as_record(), "LSN {next}, from {from}");
            next += 1;
        }
        assert_eq!(next, total, "from {from}");
    }
    // An LSN past the log: the first read reports it, then nothing.
    let mut iter = wal.iter_from(total + 1);
    assert!(matches!(iter.try_next().await, Err(Error::LsnOutOfRange { lsn, .. }) if lsn == total + 1));
    assert!(iter.try_next().await.unwrap().is_none());
    // Dropped part way, with both readers ahead of it: nothing is lost to
    // the next iterator.
    let mut iter = wal.iter();
    assert_eq!(iter.try_next().await.unwrap().map(|e| e.lsn), Some(0));
    drop(iter);
    // Reclaimed while the iterator is part way: it still reads them.
    let mut iter = wal.iter();
    let first = iter.try_next().await.unwrap().map(|e| e.lsn);
    assert_eq!(first, Some(0));
    wal.truncate_before(total - 10).await.unwrap();
    assert!(
        nori_wal_tests::walkit::segment_files(&scratch.wal()).len() < segments,
        "segments were reclaimed"
    );
    let mut next = 1;
    while let Some(entry) = iter.try_next().await.unwrap() {
        assert_eq!(entry.lsn, next);
        assert_eq!(entry.record, varied(next).as_record(), "LSN {next} after the reclaim");
        next += 1;
    }
    assert_eq!(next, total);
    drop(iter);
    wal.close().await.unwrap();
}

/// A log opened under `SkipDamaged` whose damage ends a segment: the
/// blocking iterator steps over the lost record to the next segment, and
/// the async one, whose readers each end where the next segment begins,
/// returns the same records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_iteration_steps_over_damage_skipped_at_the_end_of_a_segment() {
    let scratch = Scratch::new("async-iter-skip-tail");
    let config = WalConfig::new(scratch.wal()).segment_size(64 << 10).fsync(FsyncPolicy::Os);
    let record = |lsn: u64| format!("{lsn:>100}").into_bytes();
    {
        let (wal, _) = Wal::open(config.clone()).await.unwrap();
        for lsn in 0..3_000u64 {
            wal.append(&Record::raw(&record(lsn))).await.unwrap();
        }
        wal.close().await.unwrap();
    }
    let files = nori_wal_tests::walkit::segment_files(&scratch.wal());
    assert!(files.len() > 3, "{} segments", files.len());
    // The last record of the second segment damaged.
    let base =
        |path: &std::path::Path| -> u64 { path.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
    let last = base(&files[2]) - 1;
    let bytes = std::fs::read(&files[1]).unwrap();
    let at =
        bytes.windows(100).position(|w| w == record(last).as_slice()).expect("the record is in its segment");
    nori_wal_tests::walkit::flip_bit(&files[1], at as u64 + 50, 2);
    let (wal, _) = Wal::open(config.recovery(nori_wal::RecoveryMode::SkipDamaged)).await.unwrap();
    let blocking = blocking_lsns(&wal);
    assert!(
        !blocking.contains(&last) && blocking.contains(&(last + 1)),
        "the damaged record alone is skipped"
    );
    let mut iter = wal.iter();
    let mut lsns = Vec::new();
    while let Some(entry) = iter.try_next().await.unwrap() {
        assert_eq!(entry.record, Record::raw(&record(entry.lsn)));
        lsns.push(entry.lsn);
    }
    assert_eq!(lsns, blocking);
    drop(iter);
    wal.close().await.unwrap();
}

/// The LSNs the blocking iterator returns, up to the first error.
fn blocking_lsns(wal: &Wal) -> Vec<u64> {
    let mut iter = wal.blocking().iter().unwrap();
    let mut lsns = Vec::new();
    while let Ok(Some(entry)) = iter.try_next() {
        lsns.push(entry.lsn);
    }
    lsns
}
