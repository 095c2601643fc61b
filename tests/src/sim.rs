//! A simulated block device that records every write, so that the state of
//! the medium after a power cut at any operation can be rebuilt, and that
//! injects the faults of the fault model (F1–F20, defined in RELIABILITY.md).
//!
//! Test code only: not part of any published API.

use std::fmt;

use nori_wal_core::{AccessError, BlockDevice, DeviceError, DeviceErrorKind, Geometry, Op, check_access};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// One write-side operation, as issued to the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceOp {
    /// A program of `data` at `offset`.
    Program {
        /// Device offset.
        offset: u64,
        /// The bytes programmed.
        data: Vec<u8>,
    },
    /// An erase of `len` bytes at `offset`.
    Erase {
        /// Device offset.
        offset: u64,
        /// Bytes erased.
        len: u64,
    },
    /// A sync that returned `Ok`.
    Sync,
}

/// An error of the simulated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    /// A refused access (alignment, bounds, program of a unit not erased).
    Access(AccessError),
    /// An injected I/O error.
    Injected(&'static str),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Access(e) => write!(f, "{e}"),
            Self::Injected(what) => write!(f, "injected fault: {what}"),
        }
    }
}

impl DeviceError for SimError {
    fn kind(&self) -> DeviceErrorKind {
        match self {
            Self::Access(e) => e.kind,
            Self::Injected(_) => DeviceErrorKind::Io,
        }
    }
}

/// Faults injected while the log runs (as opposed to power cuts, which are
/// rebuilt afterwards from the trace).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// F11: the n-th sync (0-based) fails and drops every write since the
    /// last good sync; later syncs succeed.
    pub fail_sync: Option<u64>,
    /// F12: the n-th program fails after writing only its first half.
    pub fail_program: Option<u64>,
    /// F7: reads of this byte range fail.
    pub read_error: Option<(u64, u64)>,
    /// F7: reads of this byte range return zeros.
    pub read_zeros: Option<(u64, u64)>,
    /// F8: the n-th program lands this many bytes away from its offset.
    pub misdirect_program: Option<(u64, i64)>,
}

/// A simulated device: the current image, the durable image, and the trace
/// of writes.
#[derive(Debug, Clone)]
pub struct SimDevice {
    geometry: Geometry,
    base: Vec<u8>,
    image: Vec<u8>,
    durable: Vec<u8>,
    trace: Vec<TraceOp>,
    faults: Faults,
    syncs: u64,
    programs: u64,
    /// Programs refused because the unit was not blank: each one would break
    /// invariant I5 on real flash.
    pub program_twice_attempts: u64,
}

impl SimDevice {
    /// A device over `image` (taken as durable) with `geometry`.
    #[must_use]
    pub fn new(image: Vec<u8>, geometry: Geometry) -> Self {
        Self {
            geometry,
            base: image.clone(),
            durable: image.clone(),
            image,
            trace: Vec::new(),
            faults: Faults::default(),
            syncs: 0,
            programs: 0,
            program_twice_attempts: 0,
        }
    }

    /// A fresh device of `len` bytes: erased, or zeroed without an erase value.
    #[must_use]
    pub fn blank(len: usize, geometry: Geometry) -> Self {
        Self::new(vec![geometry.erase_value().unwrap_or(0); len], geometry)
    }

    /// Injects `faults` from now on.
    #[must_use]
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The image as the device would read it now.
    #[must_use]
    pub fn image(&self) -> &[u8] {
        &self.image
    }

    /// The image as of the last good sync.
    #[must_use]
    pub fn durable(&self) -> &[u8] {
        &self.durable
    }

    /// Every write issued so far.
    #[must_use]
    pub fn trace(&self) -> &[TraceOp] {
        &self.trace
    }

    /// The image the device started from.
    #[must_use]
    pub fn base(&self) -> &[u8] {
        &self.base
    }

    /// The image after a power cut now, as `cut` says.
    #[must_use]
    pub fn crash_image(&self, cut: Cut, rng: &mut SmallRng) -> Vec<u8> {
        Crash::new(&self.base, self.geometry, &self.trace).image(self.trace.len(), cut, rng)
    }

    fn apply(&mut self, op: &TraceOp) {
        apply(&mut self.image, self.geometry, op);
    }
}

/// Applies a write to an image.
pub fn apply(image: &mut [u8], geometry: Geometry, op: &TraceOp) {
    match op {
        TraceOp::Program { offset, data } => {
            image[*offset as usize..*offset as usize + data.len()].copy_from_slice(data);
        }
        TraceOp::Erase { offset, len } => {
            if let Some(erased) = geometry.erase_value() {
                image[*offset as usize..(*offset + *len) as usize].fill(erased);
            }
        }
        TraceOp::Sync => {}
    }
}

impl BlockDevice for SimDevice {
    type Error = SimError;

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn capacity(&self) -> u64 {
        self.image.len() as u64
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), SimError> {
        check_access(&self.geometry, self.capacity(), Op::Read, offset, buf.len() as u64)
            .map_err(SimError::Access)?;
        let end = offset + buf.len() as u64;
        if let Some((a, b)) = self.faults.read_error
            && offset < b
            && end > a
        {
            return Err(SimError::Injected("read error"));
        }
        buf.copy_from_slice(&self.image[offset as usize..end as usize]);
        if let Some((a, b)) = self.faults.read_zeros {
            for (i, byte) in buf.iter_mut().enumerate() {
                let at = offset + i as u64;
                if at >= a && at < b {
                    *byte = 0;
                }
            }
        }
        Ok(())
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), SimError> {
        check_access(&self.geometry, self.capacity(), Op::Program, offset, data.len() as u64)
            .map_err(SimError::Access)?;
        let n = self.programs;
        self.programs += 1;
        if let (Some(erased), false) = (self.geometry.erase_value(), self.geometry.program_twice()) {
            let target = &self.image[offset as usize..offset as usize + data.len()];
            if target.iter().any(|&b| b != erased) {
                self.program_twice_attempts += 1;
                return Err(SimError::Access(AccessError {
                    op: Op::Program,
                    offset,
                    len: data.len() as u64,
                    kind: DeviceErrorKind::NotErased,
                }));
            }
        }
        let mut offset = offset;
        if let Some((nth, delta)) = self.faults.misdirect_program
            && nth == n
        {
            let moved = offset as i64 + delta;
            if moved >= 0 && (moved as u64 + data.len() as u64) <= self.capacity() {
                offset = moved as u64;
            }
        }
        if self.faults.fail_program == Some(n) {
            let half = TraceOp::Program { offset, data: data[..data.len() / 2].to_vec() };
            self.apply(&half);
            self.trace.push(half);
            return Err(SimError::Injected("write error"));
        }
        let op = TraceOp::Program { offset, data: data.to_vec() };
        self.apply(&op);
        self.trace.push(op);
        Ok(())
    }

    fn erase(&mut self, offset: u64, len: u64) -> Result<(), SimError> {
        check_access(&self.geometry, self.capacity(), Op::Erase, offset, len).map_err(SimError::Access)?;
        let op = TraceOp::Erase { offset, len };
        self.apply(&op);
        self.trace.push(op);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), SimError> {
        let n = self.syncs;
        self.syncs += 1;
        if self.faults.fail_sync == Some(n) {
            // The writes since the last good sync are lost; the device says so once.
            self.image.clone_from(&self.durable);
            return Err(SimError::Injected("sync failed (EIO)"));
        }
        self.durable.clone_from(&self.image);
        self.trace.push(TraceOp::Sync);
        Ok(())
    }
}

/// How the medium looks after a power cut at one operation of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// F1: every write since the last sync is lost, the cut one too.
    DropUnsynced,
    /// F2: a random subset of the writes since the last sync persisted,
    /// the cut one included or not.
    RandomSubset,
    /// F2 exhaustively: the writes since the last sync persisted as the bits
    /// of this mask say (bit i for the i-th; the cut one is the last).
    Subset(u64),
    /// F3 / F9: everything before persisted; the cut write kept its first
    /// `n` bytes, rounded down to `granularity`, and the next `garbage`
    /// bytes are random (the program unit being written when the power went).
    Torn {
        /// Bytes of the cut write that reached the medium.
        n: usize,
        /// Rounds `n` down: 1 for a byte, 512 or 4096 for sectors.
        granularity: usize,
        /// Random bytes after the kept ones (a unit cut mid-program).
        garbage: usize,
    },
    /// F3: everything before persisted; each 512-byte sector of the cut write
    /// is old or new at random.
    MixedSectors,
    /// F10: everything before persisted; the cut erase left random bytes.
    EraseCut,
}

/// The image after a power cut at operation `at` of `trace`, starting from
/// `base`, the image before the trace.
pub struct Crash<'a> {
    base: &'a [u8],
    geometry: Geometry,
    trace: &'a [TraceOp],
    /// Durable images after each sync: (trace index of the sync, image).
    snapshots: Vec<(usize, Vec<u8>)>,
}

impl<'a> Crash<'a> {
    /// Prepares crash images for a trace.
    #[must_use]
    pub fn new(base: &'a [u8], geometry: Geometry, trace: &'a [TraceOp]) -> Self {
        let mut image = base.to_vec();
        let mut snapshots = Vec::new();
        for (i, op) in trace.iter().enumerate() {
            apply(&mut image, geometry, op);
            if *op == TraceOp::Sync {
                snapshots.push((i, image.clone()));
            }
        }
        Self { base, geometry, trace, snapshots }
    }

    /// The writes since the last sync before `at`, and the image after that sync.
    fn durable_before(&self, at: usize) -> (usize, Vec<u8>) {
        match self.snapshots.iter().rev().find(|(i, _)| *i < at) {
            Some((i, image)) => (i + 1, image.clone()),
            None => (0, self.base.to_vec()),
        }
    }

    /// Writes pending (unsynced) when the power goes at `at`, the cut one last.
    #[must_use]
    pub fn pending(&self, at: usize) -> usize {
        let (from, _) = self.durable_before(at);
        at + 1 - from
    }

    /// The image after a power cut during operation `at` (0-based; `at ==
    /// trace.len()` cuts after the last one).
    #[must_use]
    pub fn image(&self, at: usize, cut: Cut, rng: &mut SmallRng) -> Vec<u8> {
        let (from, mut image) = self.durable_before(at);
        let cut_op = self.trace.get(at);
        let before = &self.trace[from..at.min(self.trace.len())];
        match cut {
            Cut::DropUnsynced => {}
            Cut::RandomSubset => {
                for op in before.iter().chain(cut_op) {
                    if rng.random_bool(0.5) {
                        apply(&mut image, self.geometry, op);
                    }
                }
            }
            Cut::Subset(mask) => {
                for (i, op) in before.iter().chain(cut_op).enumerate() {
                    if mask >> i & 1 == 1 {
                        apply(&mut image, self.geometry, op);
                    }
                }
            }
            Cut::Torn { n, granularity, garbage } => {
                for op in before {
                    apply(&mut image, self.geometry, op);
                }
                if let Some(TraceOp::Program { offset, data }) = cut_op {
                    let keep = (n.min(data.len()) / granularity) * granularity;
                    let at = *offset as usize;
                    image[at..at + keep].copy_from_slice(&data[..keep]);
                    let g_end = (keep + garbage).min(data.len());
                    rng.fill(&mut image[at + keep..at + g_end]);
                }
            }
            Cut::MixedSectors => {
                for op in before {
                    apply(&mut image, self.geometry, op);
                }
                if let Some(TraceOp::Program { offset, data }) = cut_op {
                    for (i, sector) in data.chunks(512).enumerate() {
                        if rng.random_bool(0.5) {
                            let at = *offset as usize + i * 512;
                            image[at..at + sector.len()].copy_from_slice(sector);
                        }
                    }
                }
            }
            Cut::EraseCut => {
                for op in before {
                    apply(&mut image, self.geometry, op);
                }
                if let Some(TraceOp::Erase { offset, len }) = cut_op {
                    let range = *offset as usize..(*offset + *len) as usize;
                    // Undefined: some units untouched, some erased, some random.
                    let unit = self.geometry.erase_unit() as usize;
                    for chunk in image[range].chunks_mut(unit.min(512)) {
                        match rng.random_range(0..3) {
                            0 => {}
                            1 => chunk.fill(self.geometry.erase_value().unwrap_or(0)),
                            _ => rng.fill(chunk),
                        }
                    }
                }
            }
        }
        image
    }
}

/// A seeded RNG.
#[must_use]
pub fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}
