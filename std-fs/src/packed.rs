//! Records packed into one buffer, a batch at a time, and lent from it:
//! how the async iterator and the shared ring's iterator hand out records
//! read under a lock or on another thread.

use std::sync::Arc;

use nori_wal_core::ring::Entry;
use nori_wal_core::{Lsn, Record};

use crate::fs::Map;

/// Records packed into one buffer: one copy each, no allocation per
/// record.
#[derive(Default)]
pub(crate) struct Packed {
    bytes: Vec<u8>,
    /// Segment maps that records are lent from in place (no copy): each
    /// held until the batch is cleared.
    maps: Vec<Arc<Map>>,
    pub(crate) items: Vec<Item>,
    /// The next item to return.
    pub(crate) next: usize,
}

/// Where a record of a [`Packed`] batch is: its kind, and its key and
/// value (or payload) in the buffer.
#[derive(Clone, Copy)]
pub(crate) struct Item {
    lsn: Lsn,
    kind: ItemKind,
    /// Where the record's bytes are: 0 for `bytes`, `k` for `maps[k - 1]`.
    source: usize,
    start: usize,
    first: usize,
    second: usize,
}

#[derive(Clone, Copy)]
enum ItemKind {
    Put,
    Delete,
    Raw,
}

impl Packed {
    /// Lends `record` from `map` when its bytes lie there (held, not
    /// copied), else copies it as [`push`](Self::push) does.
    #[cfg(feature = "async")]
    pub(crate) fn push_in(&mut self, lsn: Lsn, record: &Record<'_>, map: Option<&Arc<Map>>) {
        if let Some(map) = map
            && let Some((kind, start, first, second)) = lent_from(map.bytes(), record)
        {
            if !self.maps.last().is_some_and(|last| Arc::ptr_eq(last, map)) {
                self.maps.push(Arc::clone(map));
            }
            let source = self.maps.len();
            self.items.push(Item { lsn, kind, source, start, first, second });
            return;
        }
        self.push(lsn, record);
    }

    /// Holds `map` for the records [`push_lent`](Self::push_lent) lends
    /// from it next; the source to name it by.
    #[cfg(feature = "async")]
    pub(crate) fn hold(&mut self, map: &Arc<Map>) -> usize {
        if !self.maps.last().is_some_and(|last| Arc::ptr_eq(last, map)) {
            self.maps.push(Arc::clone(map));
        }
        self.maps.len()
    }

    /// Lends `record`, which lies in `payload`, itself at `start` in the
    /// map `source` (from [`hold`](Self::hold)). What [`push_in`](Self::push_in)
    /// does for a record known to lie in a held map, without asking per
    /// record which map and whether it lies there: through `push_in`, an
    /// async replay took 1.15x–1.18x the time.
    #[cfg(feature = "async")]
    #[inline]
    pub(crate) fn push_lent(
        &mut self,
        lsn: Lsn,
        record: &Record<'_>,
        source: usize,
        payload: &[u8],
        start: usize,
    ) {
        // Addresses compared, never dereferenced: each part of a record
        // parsed from `payload` lies in it.
        let at = |part: &[u8]| start + (part.as_ptr() as usize).wrapping_sub(payload.as_ptr() as usize);
        let item = match *record {
            Record::Raw(bytes) => {
                Item { lsn, kind: ItemKind::Raw, source, start: at(bytes), first: bytes.len(), second: 0 }
            }
            Record::Delete { key } => {
                Item { lsn, kind: ItemKind::Delete, source, start: at(key), first: key.len(), second: 0 }
            }
            Record::Put { key, value } => Item {
                lsn,
                kind: ItemKind::Put,
                source,
                start: at(key),
                first: key.len(),
                second: value.len(),
            },
            // A kind this batch does not know how to lend: copied.
            _ => return self.push(lsn, record),
        };
        self.items.push(item);
    }

    pub(crate) fn push(&mut self, lsn: Lsn, record: &Record<'_>) {
        let start = self.bytes.len();
        let (kind, first, second) = match (record.raw_payload(), record.key(), record.value()) {
            (Some(payload), _, _) => {
                self.bytes.extend_from_slice(payload);
                (ItemKind::Raw, payload.len(), 0)
            }
            (None, Some(key), Some(value)) => {
                self.bytes.extend_from_slice(key);
                self.bytes.extend_from_slice(value);
                (ItemKind::Put, key.len(), value.len())
            }
            (None, key, _) => {
                let key = key.unwrap_or_default();
                self.bytes.extend_from_slice(key);
                (ItemKind::Delete, key.len(), 0)
            }
        };
        self.items.push(Item { lsn, kind, source: 0, start, first, second });
    }

    #[inline]
    pub(crate) fn entry(&self, item: Item) -> Entry<'_> {
        let bytes = match item.source.checked_sub(1) {
            None => &self.bytes[..],
            Some(k) => self.maps[k].bytes(),
        };
        let first = &bytes[item.start..item.start + item.first];
        let record = match item.kind {
            ItemKind::Raw => Record::raw(first),
            ItemKind::Delete => Record::delete(first),
            ItemKind::Put => {
                let at = item.start + item.first;
                Record::put(first, &bytes[at..at + item.second])
            }
        };
        Entry { lsn: item.lsn, record }
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.maps.clear();
        self.items.clear();
        self.next = 0;
    }

    /// Bytes held.
    pub(crate) fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The next record, if any is left.
    pub(crate) fn next_entry(&mut self) -> Option<Entry<'_>> {
        let item = *self.items.get(self.next)?;
        self.next += 1;
        Some(self.entry(item))
    }
}

/// Where `record` lies in `bytes`, as an item's kind, start and lengths,
/// when all of it does (a put's value right after its key).
#[cfg(feature = "async")]
fn lent_from(bytes: &[u8], record: &Record<'_>) -> Option<(ItemKind, usize, usize, usize)> {
    // Addresses compared, never dereferenced: a slice that starts inside
    // `bytes` and ends within it is that part of `bytes`.
    let base = bytes.as_ptr() as usize;
    let offset = |part: &[u8]| {
        let at = (part.as_ptr() as usize).checked_sub(base)?;
        (at.checked_add(part.len())? <= bytes.len()).then_some(at)
    };
    match (record.raw_payload(), record.key(), record.value()) {
        (Some(payload), _, _) => Some((ItemKind::Raw, offset(payload)?, payload.len(), 0)),
        (None, Some(key), Some(value)) => {
            let start = offset(key)?;
            (offset(value)? == start + key.len()).then_some((ItemKind::Put, start, key.len(), value.len()))
        }
        (None, Some(key), None) => Some((ItemKind::Delete, offset(key)?, key.len(), 0)),
        (None, None, _) => None,
    }
}

#[cfg(all(test, feature = "async"))]
mod tests {
    use super::*;

    #[test]
    fn records_are_lent_only_from_inside_the_bytes() {
        let bytes = b"0123keyvalue89".to_vec();
        let raw = Record::raw(&bytes[4..7]);
        assert!(matches!(lent_from(&bytes, &raw), Some((ItemKind::Raw, 4, 3, 0))));
        let put = Record::put(&bytes[4..7], &bytes[7..12]);
        assert!(matches!(lent_from(&bytes, &put), Some((ItemKind::Put, 4, 3, 5))));
        let delete = Record::delete(&bytes[4..7]);
        assert!(matches!(lent_from(&bytes, &delete), Some((ItemKind::Delete, 4, 3, 0))));
        // A value apart from its key, or bytes elsewhere, are copied.
        assert!(lent_from(&bytes, &Record::put(&bytes[4..7], &bytes[8..12])).is_none());
        let elsewhere = b"key".to_vec();
        assert!(lent_from(&bytes, &Record::delete(&elsewhere)).is_none());
        assert!(lent_from(&bytes[..6], &raw).is_none(), "running past the end");
        assert!(lent_from(&bytes[5..], &raw).is_none(), "starting before the start");
    }
}
