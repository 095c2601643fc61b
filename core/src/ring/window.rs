//! Reading device bytes through a caller's buffer, aligned to the read unit,
//! with the log's unwritten write buffer laid over the device.

use super::Error;
use super::error::{Fault, Step};
use crate::align::{align_down, align_up};
use crate::device::{BlockDevice, Op, check_access};

/// Bytes of the active segment that are in the write buffer and not yet on
/// the device: `bytes` belong at device offset `start`.
#[derive(Clone, Copy)]
pub(crate) struct Overlay<'a> {
    pub(crate) start: u64,
    pub(crate) bytes: &'a [u8],
}

impl Overlay<'_> {
    pub(crate) const NONE: Overlay<'static> = Overlay { start: 0, bytes: &[] };
}

/// A window of device bytes held in a buffer.
pub(crate) struct Window<'w> {
    buf: &'w mut [u8],
    /// Device offset of `buf[0]`.
    start: u64,
    /// Valid bytes in `buf`.
    len: usize,
}

impl<'w> Window<'w> {
    pub(crate) fn new(buf: &'w mut [u8]) -> Self {
        Self { buf, start: 0, len: 0 }
    }

    /// The largest span `get` can return at any offset.
    pub(crate) fn max_span(&self, read_unit: u32) -> u64 {
        self.buf.len().saturating_sub(read_unit as usize) as u64
    }

    /// The bytes `[offset, offset + len)` of the device, reading whole read
    /// units, never past `limit` (the end of the segment).
    pub(crate) fn get<D: BlockDevice>(
        &mut self,
        device: &mut D,
        fault: &mut Fault<D::Error>,
        overlay: Overlay<'_>,
        offset: u64,
        len: u64,
        limit: u64,
    ) -> Step<&[u8]> {
        let end = offset.saturating_add(len);
        if end > limit {
            return Err(fault.raise(Error::BufferTooSmall {
                needed: end - offset,
                available: limit.saturating_sub(offset),
            }));
        }
        if offset < self.start || end > self.start + self.len as u64 {
            self.fill(device, fault, overlay, offset, end, limit)?;
        }
        let from = (offset - self.start) as usize;
        Ok(&self.buf[from..from + len as usize])
    }

    fn fill<D: BlockDevice>(
        &mut self,
        device: &mut D,
        fault: &mut Fault<D::Error>,
        overlay: Overlay<'_>,
        offset: u64,
        end: u64,
        limit: u64,
    ) -> Step<()> {
        let unit = u64::from(device.geometry().read_unit());
        let start = align_down(offset, unit);
        let need_end = align_up(end, unit);
        let cap = align_down(self.buf.len() as u64, unit);
        if need_end - start > cap {
            return Err(fault.raise(Error::BufferTooSmall { needed: need_end - start, available: cap }));
        }
        // Read ahead as far as the buffer and the segment allow.
        let limit_aligned = align_up(limit, unit);
        let read_end = (start + cap).min(limit_aligned).max(need_end);
        let n = (read_end - start) as usize;
        self.len = 0;
        fault.lift(check_access(&device.geometry(), device.capacity(), Op::Read, start, n as u64))?;
        if let Err(e) = device.read(start, &mut self.buf[..n]) {
            return Err(fault.device(e));
        }
        // Lay the unwritten buffer over what the device holds.
        let ov_end = overlay.start + overlay.bytes.len() as u64;
        let lo = overlay.start.max(start);
        let hi = ov_end.min(read_end);
        if lo < hi {
            let src = &overlay.bytes[(lo - overlay.start) as usize..(hi - overlay.start) as usize];
            self.buf[(lo - start) as usize..(hi - start) as usize].copy_from_slice(src);
        }
        self.start = start;
        self.len = n;
        Ok(())
    }
}
