//! Segment files: their names, their creation, and reading one through the
//! core's segment layer.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use nori_wal_core::format::{
    AnyHeader, EncodedFrame, EpochKey, MAX_SEGMENT_HEADER_LEN, Mark, SegmentHeader, Version, v2,
};
use nori_wal_core::ring::segment::{SegmentReader, WriteOrder};
use nori_wal_core::{BlockDevice, Geometry, Lsn};

use super::error::Error;
use crate::fs::{File, Fs, OpenMode};

/// The suffix of segment file names.
const SUFFIX: &str = ".wal";
/// Digits of the base LSN in a segment file name.
const DIGITS: usize = 20;
/// The lock file's name.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// Length of a mark frame in a segment of `version`.
pub(crate) const fn mark_frame_len(version: Version) -> u64 {
    nori_wal_core::format::frame_len_of(version, nori_wal_core::format::MARK_PAYLOAD_LEN as u64)
}

/// The smallest and largest segment sizes taken.
pub(crate) const MIN_SEGMENT: u64 = 4096;
pub(crate) const MAX_SEGMENT: u64 = 1 << 40;

/// The file name of the segment whose first LSN is `base`.
pub(crate) fn file_name(base: Lsn) -> String {
    format!("{base:0DIGITS$}{SUFFIX}")
}

/// The base LSN a segment file name gives, or `None` for any other name.
pub(crate) fn parse_name(name: &OsStr) -> Option<Lsn> {
    let name = name.to_str()?;
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether `name` has the suffix of a segment file (whether or not the
/// rest is a base LSN): such a file claims to be one of the WAL's.
pub(crate) fn claims_segment(name: &OsStr) -> bool {
    name.to_str().is_none_or(|n| n.ends_with(SUFFIX))
}

/// The suffix of a cut copy of a segment file that `truncate_after` writes
/// before renaming it over the segment; one found at recovery is the
/// leftover of an interrupted truncation.
pub(crate) const CUT_SUFFIX: &str = ".cut";

/// The name of the cut copy of the segment file `path`.
pub(crate) fn cut_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(CUT_SUFFIX);
    PathBuf::from(name)
}

/// Whether `name` is a cut copy of a segment file.
pub(crate) fn is_cut_name(name: &OsStr) -> bool {
    name.to_str().and_then(|n| n.strip_suffix(CUT_SUFFIX)).is_some_and(|n| parse_name(n.as_ref()).is_some())
}

/// The geometry of a segment file: byte-addressed, no erase (checked at
/// compile time).
const FILE_GEOMETRY: Geometry = match Geometry::block(1) {
    Ok(g) => g,
    Err(_) => panic!("one-byte units are valid"),
};

/// The geometry of a segment file.
pub(crate) const fn file_geometry() -> Geometry {
    FILE_GEOMETRY
}

/// Where the frames of a segment file of `version` start: after its
/// header (version 2 files record their size, so the longer form).
pub(crate) const fn frames_offset(version: Version) -> u64 {
    match version {
        Version::V1 => nori_wal_core::format::SEGMENT_HEADER_LEN as u64,
        Version::V2 => v2::SIZED_HEADER_LEN as u64,
    }
}

/// Where the frames of a segment file of `version` and `size` bytes end:
/// before the seal slot in version 2.
pub(crate) const fn frames_end(version: Version, size: u64) -> u64 {
    match version {
        Version::V1 => size,
        Version::V2 => size - v2::SEAL_LEN as u64,
    }
}

/// The segment size a header of a segment file records (version 2 files
/// are written `SIZED`; a header without a size is not one of the WAL's).
pub(crate) const fn size_of(header: &AnyHeader) -> u64 {
    match header.segment_size {
        Some(size) => size,
        None => 0,
    }
}

/// A segment file seen as a device of `capacity` bytes, for reading: bytes
/// past the end of the file read as zeros (never written). With a map of
/// the file, the reader checks the mapped bytes in place instead of copying
/// them out first.
pub(crate) struct FileDevice<'f, F: File> {
    pub(crate) file: &'f F,
    pub(crate) capacity: u64,
    pub(crate) map: Option<crate::fs::Map>,
}

impl<F: File> BlockDevice for FileDevice<'_, F> {
    type Error = io::Error;

    fn geometry(&self) -> Geometry {
        file_geometry()
    }

    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => {
                    buf[done..].fill(0);
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }

    fn erase(&mut self, _offset: u64, _len: u64) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "segment files are not erased"))
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn bytes_in_place(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let bytes = self.map.as_ref()?.bytes();
        let start = usize::try_from(offset).ok()?;
        bytes.get(start..start.checked_add(usize::try_from(len).ok()?)?)
    }
}

/// An error of the core's segment layer reading a segment file.
pub(crate) type ReadError = nori_wal_core::ring::Error<io::Error>;

/// Runs `op` on a reader of the segment file `file` (at `path`, `len` bytes
/// long) under `header`: the one way the file WAL walks a segment's frames.
/// Bytes past the end of a file were never written, so reading stops there
/// whatever the header claims (a hostile size cannot make a walk scan a
/// terabyte of nothing). Segment files are fresh space: preallocated with
/// zeros, never an older lap.
pub(crate) fn read_segment<F: File, T>(
    file: &F,
    path: &Path,
    len: u64,
    header: AnyHeader,
    buffer: &mut [u8],
    mapped: bool,
    op: impl FnOnce(&mut SegmentReader<'_, '_, FileDevice<'_, F>>) -> Result<T, ReadError>,
) -> Result<T, Error> {
    let capacity = size_of(&header).min(len.max(header.frames_offset));
    // With `mapped`, and where the file system maps files (the `mmap`
    // feature), the reader checks the bytes in place. Only a caller that
    // holds the WAL's lock asks for it: no other process can shrink a file
    // under the map then (an inspection of a log in use reads with `pread`).
    // The map ends with this call, before recovery may cut the file.
    let map = if mapped { file.map(capacity.min(len)).ok().flatten() } else { None };
    let mut device = FileDevice { file, capacity, map };
    SegmentReader::with_header(&mut device, buffer, WriteOrder::AnyOrder, header)
        .and_then(|reader| op(&mut reader.fresh()))
        .map_err(|e| Error::from_segment(path, e))
}

/// Whether `header`, read from the file named by `base`, is one this WAL
/// writes: its base LSN matches the name, its start is not past it, it is
/// byte-addressed, it records its size, and that size is in the range the
/// WAL takes (a hostile size cannot make a reader scan or allocate a
/// terabyte).
pub(crate) fn plausible(header: &AnyHeader, base: Lsn) -> bool {
    header.base_lsn == base
        && header.log_start.is_none_or(|start| start <= base)
        && header.program_unit == 1
        && (MIN_SEGMENT..=MAX_SEGMENT).contains(&size_of(header))
        && header.frames_offset == frames_offset(header.version)
}

/// Reads the first bytes of a segment file and decodes its header, of
/// either version.
pub(crate) fn peek_header<F: File>(file: &F) -> io::Result<Result<AnyHeader, nori_wal_core::DecodeError>> {
    let mut bytes = [0u8; MAX_SEGMENT_HEADER_LEN];
    let mut device = FileDevice { file, capacity: MAX_SEGMENT_HEADER_LEN as u64, map: None };
    device.read(0, &mut bytes)?;
    Ok(AnyHeader::decode(&bytes))
}

/// What a new segment file is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewSegment {
    /// The format version it is written in.
    pub(crate) version: Version,
    pub(crate) epoch: u64,
    pub(crate) base_lsn: Lsn,
    /// The log's start when it is created (version 1 keeps it in the
    /// header; both keep it in the opening mark).
    pub(crate) log_start: Lsn,
    pub(crate) size: u64,
    /// Whether the file is allocated at its full size before any frame
    /// goes in (version 2 says so in its header: a shorter file with a
    /// valid header is then damage, never a crash).
    pub(crate) preallocate: bool,
}

impl NewSegment {
    /// The header's bytes followed by the opening mark `mark`, the header,
    /// and the mark's CRC (the first a seal covers).
    fn encode(&self, mark: Mark) -> Result<(Vec<u8>, AnyHeader, u32), nori_wal_core::EncodeError> {
        let (mut bytes, header): (Vec<u8>, AnyHeader) = match self.version {
            Version::V1 => {
                let header = SegmentHeader::new(self.epoch, self.base_lsn, self.size, 1)?
                    .with_log_start(self.log_start)?;
                let mut bytes = vec![0u8; nori_wal_core::format::SEGMENT_HEADER_LEN];
                header.encode(&mut bytes)?;
                (bytes, header.into())
            }
            Version::V2 => {
                let header = v2::SegmentHeader::new(self.epoch, self.base_lsn, 1)?
                    .sized(self.size)?
                    .preallocated(self.preallocate);
                let mut bytes = vec![0u8; header.len()];
                header.encode(&mut bytes)?;
                (bytes, header.into())
            }
        };
        let key = EpochKey::new(self.epoch);
        let crc = encode_mark(&mut bytes, self.version, &key, self.base_lsn, self.base_lsn, mark);
        Ok((bytes, header, crc))
    }
}

/// A new segment file, created durably: given the permission bits `mode`,
/// preallocated, its header and opening mark `first_mark` written and
/// synced, the directory synced. Nothing of it is left behind when
/// creation fails. Returns the file, its path, its header and the CRC of
/// the opening mark (the first a seal covers).
pub(crate) fn create<S: Fs>(
    fs: &S,
    dir: &Path,
    new: &NewSegment,
    first_mark: Mark,
    mode: u32,
) -> Result<(S::File, PathBuf, AnyHeader, u32), Error> {
    let path = dir.join(file_name(new.base_lsn));
    // Encoded first: a header that does not encode creates no file.
    let (bytes, header, mark_crc) = new.encode(first_mark).map_err(Error::Encode)?;
    let file = fs.open(&path, OpenMode::CreateNew).map_err(|e| Error::io("create segment", &path, e))?;
    let written = (|| {
        file.set_mode(mode)?;
        if new.preallocate {
            file.allocate(new.size)?;
        }
        file.write_all_at(&bytes, 0)?;
        file.sync_data()?;
        fs.sync_dir(dir)
    })();
    match written {
        Ok(()) => Ok((file, path, header, mark_crc)),
        Err(e) => {
            drop(file);
            // Best effort: a file left here holds no record and recovery
            // removes it.
            let _ = fs.remove(&path).and_then(|()| fs.sync_dir(dir));
            Err(Error::io("prepare segment", &path, e))
        }
    }
}

/// Appends a mark frame to `out`, in a segment of `version` and base LSN
/// `base`, before the record of LSN `next`; returns the frame's CRC (what
/// a seal covers).
pub(crate) fn encode_mark(
    out: &mut Vec<u8>,
    version: Version,
    key: &EpochKey,
    base: Lsn,
    next: Lsn,
    mark: Mark,
) -> u32 {
    let start = out.len();
    match version {
        Version::V1 => {
            EncodedFrame::mark(*key, (next - base) as u32, mark).append_to(out);
            0
        }
        Version::V2 => {
            v2::EncodedFrame::mark(mark).append_to(out, key, next);
            crc_field(&out[start..], v2::FRAME_HEADER_LEN) // a mark is a short frame
        }
    }
}

/// The stored CRC of a format v2 frame this process wrote at the start of
/// `frame`, whose header is `header_len` bytes long: the header's last 4
/// bytes, what a seal's checksum covers.
#[inline]
pub(crate) fn crc_field(frame: &[u8], header_len: usize) -> u32 {
    let crc = &frame[header_len - 4..header_len];
    u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]])
}

/// Where the epochs of a log without segments start: a number from the
/// clock (microseconds since 1970 over 16, about 2^47 now), so that blocks
/// a file system hands back from an earlier log in the same place (deleted
/// and created again) hold frames of other epochs and never validate
/// (invariant I6). Fits format version 2's 48-bit epochs, with 2^47 epochs
/// of room.
pub(crate) fn fresh_epochs() -> u64 {
    let micros =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros());
    ((micros as u64) >> 4).clamp(1, v2::MAX_EPOCH)
}

/// The epoch of a new segment of `version` after segments whose highest
/// epoch is `max`: the next one, or, where that is beyond what `version`
/// holds (a log whose version 1 segments took epochs from a finer clock),
/// a fresh one from the clock (recovery takes a version 2 segment after
/// such a version 1 one as in order). `None` when the epochs are spent.
pub(crate) fn next_epoch(max: u64, version: Version) -> Option<u64> {
    let next = max.checked_add(1)?;
    match version {
        Version::V2 if next > v2::MAX_EPOCH => Some(fresh_epochs()),
        _ => Some(next),
    }
}

/// The lock file also keeps the log's start for `truncate_after`, which may
/// remove the segments whose marks recorded it: two 32-byte slots written in
/// turn (a torn write spoils one), each `magic | sequence | log_start | crc`.
const START_MAGIC: &[u8; 8] = b"NWSTART\0";
const START_SLOT: usize = 32;
/// Bytes of the lock file that keep the log's start.
pub(crate) const START_LEN: u64 = 2 * START_SLOT as u64;

/// The log's start recorded in the lock file, and its sequence number.
pub(crate) fn read_start<F: File>(file: &F) -> io::Result<Option<(u64, Lsn)>> {
    let mut bytes = [0u8; 2 * START_SLOT];
    let mut device = FileDevice { file, capacity: bytes.len() as u64, map: None };
    device.read(0, &mut bytes)?;
    let best = bytes
        .chunks_exact(START_SLOT)
        .filter_map(|slot| {
            let crc = u32::from_le_bytes(slot[24..28].try_into().ok()?);
            if &slot[..8] != START_MAGIC || nori_wal_core::crc::crc32c(&slot[..24]) != crc {
                return None;
            }
            let seq = u64::from_le_bytes(slot[8..16].try_into().ok()?);
            let start = u64::from_le_bytes(slot[16..24].try_into().ok()?);
            Some((seq, start))
        })
        .max();
    Ok(best)
}

/// Records `log_start` in the lock file durably, as sequence `seq`.
pub(crate) fn write_start<F: File>(file: &F, seq: u64, log_start: Lsn) -> io::Result<()> {
    let mut slot = [0u8; START_SLOT];
    slot[..8].copy_from_slice(START_MAGIC);
    slot[8..16].copy_from_slice(&seq.to_le_bytes());
    slot[16..24].copy_from_slice(&log_start.to_le_bytes());
    let crc = nori_wal_core::crc::crc32c(&slot[..24]);
    slot[24..28].copy_from_slice(&crc.to_le_bytes());
    file.write_all_at(&slot, (seq % 2) * START_SLOT as u64)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::StdFs;

    fn lock_file_with(bytes: &[u8]) -> (crate::fs::StdFile, PathBuf) {
        let dir = std::env::temp_dir().join(format!("nori-wal-start-{}-{}", std::process::id(), bytes.len()));
        let _ = std::fs::remove_dir_all(&dir);
        StdFs.create_dir_all(&dir).unwrap();
        let path = dir.join(LOCK_FILE);
        let file = StdFs.open(&path, OpenMode::CreateNew).unwrap();
        file.write_all_at(bytes, 0).unwrap();
        (file, dir)
    }

    #[test]
    fn the_start_record_reads_only_what_was_written_whole() {
        // Zeros, 0xFF, garbage, an empty file: no record.
        let mut garbage = [0u8; 64];
        for (i, b) in garbage.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(151).wrapping_add(7);
        }
        for (i, bytes) in
            [vec![0u8; 64], vec![0xFF; 64], garbage.to_vec(), Vec::new(), vec![0x4E; 10]].iter().enumerate()
        {
            let mut bytes = bytes.clone();
            bytes.extend(std::iter::repeat_n(0, i)); // distinct scratch names
            let (file, dir) = lock_file_with(&bytes);
            assert_eq!(read_start(&file).unwrap(), None, "input {i}");
            std::fs::remove_dir_all(dir).unwrap();
        }
        // Two records; the later one torn: the earlier one wins.
        let (file, dir) = lock_file_with(&[]);
        write_start(&file, 1, 100).unwrap();
        write_start(&file, 2, 200).unwrap();
        assert_eq!(read_start(&file).unwrap(), Some((2, 200)));
        let mut slot = [0u8; START_SLOT];
        crate::fs::read_exact_at(&file, &mut slot, 0).unwrap();
        slot[20] ^= 0x40; // a torn write of the newer slot
        file.write_all_at(&slot, 0).unwrap();
        assert_eq!(read_start(&file).unwrap(), Some((1, 100)));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn only_segment_names_parse() {
        assert_eq!(parse_name(OsStr::new("00000000000000000042.wal")), Some(42));
        for name in [
            "42.wal",
            "0000000000000000004x.wal",
            "00000000000000000042.wal.cut",
            "LOCK",
            "",
            "99999999999999999999.wal",
        ] {
            assert_eq!(parse_name(OsStr::new(name)), None, "{name}");
        }
        assert!(is_cut_name(OsStr::new("00000000000000000042.wal.cut")));
        assert!(!is_cut_name(OsStr::new("notes.cut")));
    }
}
