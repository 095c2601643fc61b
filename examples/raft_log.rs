//! A Raft-style replicated log on the file WAL: entries carry their term; a
//! follower whose suffix conflicts with the leader's drops it with
//! `truncate_after` and takes the leader's entries.

use nori_wal::blocking::Wal;
use nori_wal::{FsyncPolicy, Lsn, Record, WalConfig};

/// An entry: its term, then the command.
fn entry(term: u64, command: &str) -> Vec<u8> {
    let mut bytes = term.to_le_bytes().to_vec();
    bytes.extend_from_slice(command.as_bytes());
    bytes
}

fn term_of(payload: &[u8]) -> u64 {
    payload.first_chunk::<8>().map_or(0, |t| u64::from_le_bytes(*t))
}

/// The follower side of AppendEntries: entries from `prev + 1` on.
fn append_entries(wal: &Wal, prev: Lsn, entries: &[Vec<u8>]) -> Result<(), Box<dyn std::error::Error>> {
    let mut at = prev + 1;
    for (i, e) in entries.iter().enumerate() {
        if at < wal.next_lsn() {
            // Already have an entry there: same term, keep; else conflict.
            let mut iter = wal.iter_from(at)?;
            let existing = iter.try_next()?.ok_or("entry vanished")?;
            let existing_term = term_of(existing.record.raw_payload().unwrap_or_default());
            drop(iter);
            if existing_term == term_of(e) {
                at += 1;
                continue;
            }
            println!(
                "conflict at LSN {at}: term {existing_term} vs leader's {}; dropping LSN {at} on",
                term_of(e)
            );
            wal.truncate_after(at - 1)?;
        }
        for e in &entries[i..] {
            wal.append(&Record::raw(e))?;
        }
        return Ok(());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("nori-wal-raft-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (wal, _) = Wal::open(WalConfig::new(&dir).fsync(FsyncPolicy::Always).segment_size(64 << 10))?;
    // LSN 0 is a sentinel, as Raft indices start at 1.
    wal.append(&Record::raw(&entry(0, "")))?;
    // Term 1: entries 1..=8 from an old leader, of which 6..=8 never committed.
    for i in 1..=8 {
        wal.append(&Record::raw(&entry(1, &format!("set x={i}"))))?;
    }
    // The new leader (term 2) agrees up to 5 and sends 6..=9 from its log.
    let leader: Vec<Vec<u8>> =
        (6..=9).map(|i| entry(if i <= 5 { 1 } else { 2 }, &format!("set y={i}"))).collect();
    append_entries(&wal, 5, &leader)?;
    let mut terms = Vec::new();
    let mut iter = wal.iter_from(1)?;
    while let Some(e) = iter.try_next()? {
        terms.push(term_of(e.record.raw_payload().unwrap_or_default()));
    }
    drop(iter);
    println!("log after AppendEntries: terms {terms:?}");
    assert_eq!(terms, [1, 1, 1, 1, 1, 2, 2, 2, 2]);
    // Durable: a restart sees the same log.
    drop(wal);
    let (wal, info) = Wal::open(WalConfig::new(&dir).segment_size(64 << 10))?;
    assert_eq!((info.first_lsn, info.last_lsn), (Some(0), Some(9)));
    println!("after a restart: LSNs {:?} to {:?}, as before", info.first_lsn, info.last_lsn);
    drop(wal);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
