//! A key-value store on the file WAL: every change is logged before it is
//! applied; on start the map is the last checkpoint plus a replay of the WAL
//! after it; a checkpoint writes the map and reclaims the WAL below it
//! with `truncate_before`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nori_wal::blocking::Wal;
use nori_wal::{FsyncPolicy, Lsn, Record, WalConfig};

/// The map the store serves.
type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// The store: the map, the WAL, and where checkpoints go.
struct Store {
    map: Map,
    wal: Wal,
    checkpoint: PathBuf,
}

impl Store {
    fn open(dir: &Path) -> Result<Self, Box<dyn std::error::Error>> {
        let checkpoint = dir.join("checkpoint");
        // The checkpoint: the LSN it covers up to, then key/value pairs.
        let (mut map, from) = match std::fs::read(&checkpoint) {
            Ok(bytes) => decode(&bytes)?,
            Err(_) => (BTreeMap::new(), 0),
        };
        let config = WalConfig::new(dir.join("wal")).fsync(FsyncPolicy::Always).segment_size(64 << 10);
        let (wal, info) = Wal::open(config)?;
        let mut replayed = 0;
        let mut iter = wal.iter_from(from.max(wal.first_lsn()))?;
        while let Some(entry) = iter.try_next()? {
            apply(&mut map, &entry.record);
            replayed += 1;
        }
        drop(iter);
        println!("opened: checkpoint at LSN {from}, {replayed} records replayed ({:?})", info.case);
        Ok(Self { map, wal, checkpoint })
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), nori_wal::Error> {
        let record = Record::put(key, value);
        self.wal.append(&record)?; // durable before the map changes
        apply(&mut self.map, &record);
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), nori_wal::Error> {
        let record = Record::delete(key);
        self.wal.append(&record)?;
        apply(&mut self.map, &record);
        Ok(())
    }

    /// Writes the map (atomically: a temporary file, synced, renamed) and
    /// reclaims the WAL below the LSN it covers.
    fn checkpoint(&mut self) -> Result<Lsn, Box<dyn std::error::Error>> {
        let upto = self.wal.next_lsn();
        let tmp = self.checkpoint.with_extension("tmp");
        let file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut &file, &encode(&self.map, upto))?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.checkpoint)?;
        if let Some(dir) = self.checkpoint.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        self.wal.truncate_before(upto)?;
        Ok(upto)
    }
}

fn apply(map: &mut Map, record: &Record<'_>) {
    match (record.key(), record.value()) {
        (Some(k), Some(v)) => {
            map.insert(k.to_vec(), v.to_vec());
        }
        (Some(k), None) => {
            map.remove(k);
        }
        _ => {}
    }
}

fn encode(map: &Map, upto: Lsn) -> Vec<u8> {
    let mut out = upto.to_le_bytes().to_vec();
    for (k, v) in map {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

fn decode(bytes: &[u8]) -> Result<(Map, Lsn), String> {
    let bad = || "the checkpoint file is damaged".to_string();
    let (upto, mut rest) = bytes.split_first_chunk::<8>().ok_or_else(bad)?;
    let mut map = BTreeMap::new();
    let take = |rest: &mut &[u8]| -> Result<Vec<u8>, String> {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
        let len = u32::from_le_bytes(*len) as usize;
        let item = tail.get(..len).ok_or_else(bad)?.to_vec();
        *rest = &tail[len..];
        Ok(item)
    };
    while !rest.is_empty() {
        let k = take(&mut rest)?;
        let v = take(&mut rest)?;
        map.insert(k, v);
    }
    Ok((map, u64::from_le_bytes(*upto)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("nori-wal-kv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut expected = BTreeMap::new();
    {
        let mut store = Store::open(&dir)?;
        for i in 0..500u32 {
            let key = format!("user:{}", i % 120).into_bytes();
            if i % 7 == 0 {
                store.delete(&key)?;
                expected.remove(&key);
            } else {
                let value = format!("v{i}").into_bytes();
                store.put(&key, &value)?;
                expected.insert(key, value);
            }
            if i == 300 {
                let upto = store.checkpoint()?;
                println!("checkpoint at LSN {upto}: WAL now starts at {}", store.wal.first_lsn());
            }
        }
        println!("{} keys before the restart", store.map.len());
    } // "crash": nothing but the WAL and the checkpoint survive
    let store = Store::open(&dir)?;
    assert!(store.map == expected, "the rebuilt map differs");
    println!("{} keys after the restart: identical", store.map.len());
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
