//! Records: what a log stores, over borrowed bytes.

use core::fmt;

/// One logged record, borrowing its bytes.
///
/// A key-value store logs [`put`](Record::put) and [`delete`](Record::delete);
/// a journal logs [`raw`](Record::raw) payloads. Each record gets its own LSN.
///
/// ```
/// use nori_wal_core::Record;
///
/// let put = Record::put(b"user:42", b"alice@example.com");
/// assert_eq!(put.key(), Some(&b"user:42"[..]));
/// // Debug shows printable bytes as text.
/// assert_eq!(format!("{put:?}"), r#"Put { key: "user:42", value: "alice@example.com" }"#);
///
/// let raw = Record::raw(&[0x01, 0xFF]);
/// assert_eq!(format!("{raw:?}"), "Raw(0x01ff)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Record<'a> {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: &'a [u8],
    },
    /// Opaque bytes, for journals that are not key-value shaped.
    Raw(&'a [u8]),
}

impl<'a> Record<'a> {
    /// A record that sets `key` to `value`.
    #[must_use]
    pub const fn put(key: &'a [u8], value: &'a [u8]) -> Self {
        Self::Put { key, value }
    }

    /// A record that removes `key`.
    #[must_use]
    pub const fn delete(key: &'a [u8]) -> Self {
        Self::Delete { key }
    }

    /// A record of opaque bytes.
    #[must_use]
    pub const fn raw(payload: &'a [u8]) -> Self {
        Self::Raw(payload)
    }

    /// The key of a put or delete; `None` for a raw record.
    #[must_use]
    pub const fn key(&self) -> Option<&'a [u8]> {
        match *self {
            Self::Put { key, .. } | Self::Delete { key } => Some(key),
            Self::Raw(_) => None,
        }
    }

    /// The value of a put; `None` otherwise.
    #[must_use]
    pub const fn value(&self) -> Option<&'a [u8]> {
        match *self {
            Self::Put { value, .. } => Some(value),
            Self::Delete { .. } | Self::Raw(_) => None,
        }
    }

    /// The payload of a raw record; `None` otherwise.
    #[must_use]
    pub const fn raw_payload(&self) -> Option<&'a [u8]> {
        match *self {
            Self::Raw(payload) => Some(payload),
            Self::Put { .. } | Self::Delete { .. } => None,
        }
    }
}

impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Put { key, value } => {
                f.debug_struct("Put").field("key", &Bytes(key)).field("value", &Bytes(value)).finish()
            }
            Self::Delete { key } => f.debug_struct("Delete").field("key", &Bytes(key)).finish(),
            Self::Raw(payload) => f.debug_tuple("Raw").field(&Bytes(payload)).finish(),
        }
    }
}

/// Shows bytes as a quoted string when they are printable UTF-8 and as hex
/// otherwise; long values are cut with their length shown.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Bytes<'a>(pub &'a [u8]);

/// How many bytes [`Bytes`] shows before cutting.
const SHOWN: usize = 64;

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.0[..self.0.len().min(SHOWN)];
        let printable = core::str::from_utf8(shown)
            .ok()
            .filter(|s| !s.is_empty() && s.chars().all(|c| !c.is_control() || c == ' '));
        match printable {
            Some(text) => write!(f, "{text:?}")?,
            None if self.0.is_empty() => f.write_str("\"\"")?,
            None => {
                f.write_str("0x")?;
                for byte in shown {
                    write!(f, "{byte:02x}")?;
                }
            }
        }
        if self.0.len() > SHOWN {
            write!(f, "...({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}
