//! Records packed into one buffer, a batch at a time, and lent from it:
//! how the async iterator and the shared ring's iterator hand out records
//! read under a lock or on another thread.

use nori_wal_core::ring::Entry;
use nori_wal_core::{Lsn, Record};

/// Records packed into one buffer: one copy each, no allocation per
/// record.
#[derive(Default)]
pub(crate) struct Packed {
    bytes: Vec<u8>,
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
        self.items.push(Item { lsn, kind, start, first, second });
    }

    pub(crate) fn entry(&self, item: Item) -> Entry<'_> {
        let first = &self.bytes[item.start..item.start + item.first];
        let record = match item.kind {
            ItemKind::Raw => Record::raw(first),
            ItemKind::Delete => Record::delete(first),
            ItemKind::Put => {
                let at = item.start + item.first;
                Record::put(first, &self.bytes[at..at + item.second])
            }
        };
        Entry { lsn: item.lsn, record }
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
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
