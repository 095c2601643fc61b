//! Event sourcing on the file WAL: an account's events are the truth; a
//! snapshot of its state every 100 events (kept with the LSN it covers)
//! lets a restart replay only the events after it, and the WAL below the
//! snapshot is reclaimed.

use nori_wal::blocking::Wal;
use nori_wal::{FsyncPolicy, Lsn, Record, WalConfig};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Account {
    balance: i64,
    events: u64,
}

fn apply(account: &mut Account, event: &[u8]) {
    let text = std::str::from_utf8(event).unwrap_or_default();
    if let Some(n) = text.strip_prefix("deposit ").and_then(|n| n.parse::<i64>().ok()) {
        account.balance += n;
    } else if let Some(n) = text.strip_prefix("withdraw ").and_then(|n| n.parse::<i64>().ok()) {
        account.balance -= n;
    }
    account.events += 1;
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("nori-wal-events-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = WalConfig::new(&dir)
        .fsync(FsyncPolicy::Batch(std::time::Duration::from_millis(2)))
        .segment_size(16 << 10);
    let mut snapshot: (Account, Lsn) = (Account::default(), 0);
    let mut live = Account::default();
    {
        let (wal, _) = Wal::open(config.clone())?;
        for i in 0..1050u64 {
            let event =
                if i % 3 == 0 { format!("withdraw {}", i % 50) } else { format!("deposit {}", i % 70) };
            let lsn = wal.append(&Record::raw(event.as_bytes()))?;
            apply(&mut live, event.as_bytes());
            if (lsn + 1) % 100 == 0 {
                // The snapshot covers every event below `lsn + 1`; once the
                // events are durable, those below it are reclaimed.
                wal.wait_durable(lsn)?;
                snapshot = (live, lsn + 1);
                wal.truncate_before(lsn + 1)?;
            }
        }
        wal.sync()?;
        println!(
            "1050 events: balance {}, snapshot at LSN {}, WAL starts at {}",
            live.balance,
            snapshot.1,
            wal.first_lsn()
        );
    }
    // Restart: the snapshot, then the events after it.
    let (wal, _) = Wal::open(config)?;
    let (mut rebuilt, from) = snapshot;
    let mut iter = wal.iter_from(from)?;
    let mut replayed = 0;
    while let Some(e) = iter.try_next()? {
        apply(&mut rebuilt, e.record.raw_payload().unwrap_or_default());
        replayed += 1;
    }
    drop(iter);
    assert_eq!(rebuilt, live, "rebuilt state differs");
    println!("rebuilt from the snapshot and {replayed} events: balance {}, identical", rebuilt.balance);
    drop(wal);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
