//! What a WAL tells about itself: `stats()`, and, with the `tracing`
//! feature, spans and events.

#[cfg(feature = "tracing")]
use std::sync::Arc;
use std::sync::Mutex;

use nori_wal::blocking::Wal;
use nori_wal::ring::RecoveryCase;
use nori_wal::{FsyncPolicy, Record, WalConfig};

/// One test at a time: `tracing` caches, per call site, whether anyone
/// listens, and a WAL opened on another thread while the collector is being
/// installed can leave that cache stale.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nori-wal-obs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn stats_count_appends_syncs_rotations_and_recovery() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = scratch("stats");
    let config = WalConfig::new(&dir).segment_size(8192).fsync(FsyncPolicy::Always);
    {
        let (wal, _) = Wal::open(config.clone()).unwrap();
        for i in 0..400u32 {
            wal.append(&Record::raw(&i.to_le_bytes())).unwrap();
        }
        let stats = wal.stats();
        assert_eq!(stats.records, 400);
        assert!(stats.syncs >= 400 && stats.bytes_written > 400 * 20, "{stats:?}");
        assert!(stats.rotations >= 1 && stats.segments_created >= 2, "{stats:?}");
        assert_eq!(stats.segments as u64, stats.segments_created);
        assert_eq!(stats.sync_latency.counts.iter().sum::<u64>(), stats.syncs);
        let p50 = stats.sync_latency.quantile_micros(0.5).unwrap();
        let p99 = stats.sync_latency.quantile_micros(0.99).unwrap();
        assert!(p50 <= p99, "{p50} {p99}");
        assert_eq!(stats.recovery.case, RecoveryCase::Empty);
    }
    let (wal, _) = Wal::open(config).unwrap();
    let stats = wal.stats();
    assert_eq!((stats.records, stats.recovery.records), (0, 400));
    assert_eq!(stats.recovery.case, RecoveryCase::Clean);
    drop(wal);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Collects the messages of the events it sees.
#[cfg(feature = "tracing")]
struct Collect(Arc<Mutex<Vec<String>>>);

#[cfg(feature = "tracing")]
impl tracing::Subscriber for Collect {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0.lock().unwrap().push(format!("{} {}", event.metadata().level(), message.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[cfg(feature = "tracing")]
#[test]
fn tracing_events_tell_recovery_rotation_and_truncation() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = scratch("tracing");
    let seen = Arc::new(Mutex::new(Vec::new()));
    tracing::subscriber::with_default(Collect(Arc::clone(&seen)), || {
        let (wal, _) = Wal::open(WalConfig::new(&dir).segment_size(8192)).unwrap();
        for i in 0..300u32 {
            wal.append(&Record::raw(&i.to_le_bytes())).unwrap();
        }
        wal.truncate_before(100).unwrap();
        wal.truncate_after(250).unwrap();
        wal.restart_at(1000).unwrap();
    });
    let seen = seen.lock().unwrap().clone();
    for expected in [
        "INFO recovered",
        "DEBUG segment created",
        "DEBUG segment sealed",
        "INFO truncated before",
        "INFO truncated from",
        "INFO restarted",
    ] {
        assert!(seen.iter().any(|e| e == expected), "no `{expected}` in {seen:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
