//! A simulated NOR flash that implements the `embedded-storage` traits, so
//! that the flash backend is tested through the real interface.
//!
//! Bits only go from 1 to 0 when programmed; an erase sets the erase value;
//! a second program of a unit between erases is an error (ECC flash); a
//! power cut at any byte of a program or inside an erase leaves the bytes
//! being written undefined (random); programs, bytes programmed and erases
//! are counted per erase unit (wear). Every write is recorded in a trace
//! whose ops are durable as soon as they return (NOR flash has no cache).

use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};
use nori_wal_backends::nor::NorFlashDevice;
use nori_wal_core::Geometry;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::sim::TraceOp;

/// Wear of one erase unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wear {
    /// Erases of the unit.
    pub erases: u32,
    /// Program operations touching the unit.
    pub programs: u32,
    /// Bytes programmed in the unit.
    pub bytes_programmed: u64,
}

/// Where the power goes: during write-side operation `op` (0-based), after
/// `byte` bytes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerCut {
    /// The operation.
    pub op: usize,
    /// Bytes of it that reached the flash.
    pub byte: usize,
}

/// An error of the simulated flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimNorError {
    /// Offset or length not aligned.
    NotAligned,
    /// Outside the flash.
    OutOfBounds,
    /// A unit programmed twice between erases.
    ProgramTwice {
        /// Offset of the unit.
        offset: u32,
    },
    /// The power is off.
    PowerLost,
}

impl NorFlashError for SimNorError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::NotAligned => NorFlashErrorKind::NotAligned,
            Self::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            Self::ProgramTwice { .. } | Self::PowerLost => NorFlashErrorKind::Other,
        }
    }
}

/// A NOR flash of read unit `R`, write unit `W` and erase unit `E` bytes.
#[derive(Debug, Clone)]
pub struct SimNorFlash<const R: usize, const W: usize, const E: usize> {
    image: Vec<u8>,
    erase_value: u8,
    programmed: Vec<bool>,
    wear: Vec<Wear>,
    trace: Vec<TraceOp>,
    ops: usize,
    cut: Option<PowerCut>,
    dead: bool,
    /// Programs refused because the unit was already programmed.
    pub program_twice_attempts: u64,
    rng: SmallRng,
}

impl<const R: usize, const W: usize, const E: usize> SimNorFlash<R, W, E> {
    /// A flash holding `image`, whose erased bytes read `erase_value`. Units
    /// that do not read as erased count as programmed.
    #[must_use]
    pub fn from_image(image: Vec<u8>, erase_value: u8) -> Self {
        assert!(image.len().is_multiple_of(E), "flash size must be a multiple of the erase unit");
        let programmed = image.chunks(W).map(|u| u.iter().any(|&b| b != erase_value)).collect();
        let wear = vec![Wear::default(); image.len() / E];
        Self {
            image,
            erase_value,
            programmed,
            wear,
            trace: Vec::new(),
            ops: 0,
            cut: None,
            dead: false,
            program_twice_attempts: 0,
            rng: SmallRng::seed_from_u64(0x5EED),
        }
    }

    /// An erased flash of `len` bytes.
    #[must_use]
    pub fn erased(len: usize, erase_value: u8) -> Self {
        Self::from_image(vec![erase_value; len], erase_value)
    }

    /// Cuts the power at `cut`; seeds the randomness of undefined bytes.
    #[must_use]
    pub fn with_power_cut(mut self, cut: PowerCut, seed: u64) -> Self {
        self.cut = Some(cut);
        self.rng = SmallRng::seed_from_u64(seed);
        self
    }

    /// Whether the power went.
    #[must_use]
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// The flash contents.
    #[must_use]
    pub fn image(&self) -> &[u8] {
        &self.image
    }

    /// Every write so far, each followed by a sync (NOR writes are durable
    /// when they return).
    #[must_use]
    pub fn trace(&self) -> &[TraceOp] {
        &self.trace
    }

    /// Wear per erase unit.
    #[must_use]
    pub fn wear(&self) -> &[Wear] {
        &self.wear
    }

    /// The geometry of this flash with its erase value.
    #[must_use]
    pub fn geometry(erase_value: u8) -> Geometry {
        Geometry::try_new(R as u32, W as u32, E as u32, Some(erase_value), false)
            .expect("simulated flash geometry")
    }

    fn check(&self, offset: u32, len: usize, unit: usize) -> Result<usize, SimNorError> {
        let offset = offset as usize;
        if !offset.is_multiple_of(unit) || !len.is_multiple_of(unit) {
            return Err(SimNorError::NotAligned);
        }
        if offset + len > self.image.len() {
            return Err(SimNorError::OutOfBounds);
        }
        if self.dead {
            return Err(SimNorError::PowerLost);
        }
        Ok(offset)
    }

    /// Programming moves bits away from their erased state only: with an
    /// erase value of 0xFF bits go 1 → 0, with 0x00 they go 0 → 1.
    fn programmed_bits(&self, old: u8, new: u8) -> u8 {
        match self.erase_value {
            0xFF => old & new,
            0x00 => old | new,
            // Mixed erased bits: those that are 1 when erased can only clear,
            // those that are 0 can only set.
            e => (old & new & e) | ((old | new) & !e),
        }
    }

    /// Whether this operation is the one the power goes in.
    fn cut_now(&mut self) -> Option<usize> {
        let op = self.ops;
        self.ops += 1;
        self.cut.filter(|c| c.op == op).map(|c| c.byte)
    }
}

impl<const R: usize, const W: usize, const E: usize> ErrorType for SimNorFlash<R, W, E> {
    type Error = SimNorError;
}

impl<const R: usize, const W: usize, const E: usize> ReadNorFlash for SimNorFlash<R, W, E> {
    const READ_SIZE: usize = R;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimNorError> {
        let at = self.check(offset, bytes.len(), R)?;
        bytes.copy_from_slice(&self.image[at..at + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.image.len()
    }
}

impl<const R: usize, const W: usize, const E: usize> NorFlash for SimNorFlash<R, W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimNorError> {
        let at = self.check(offset, bytes.len(), W)?;
        for unit in at / W..(at + bytes.len()) / W {
            if self.programmed[unit] {
                self.program_twice_attempts += 1;
                return Err(SimNorError::ProgramTwice { offset: (unit * W) as u32 });
            }
        }
        let cut = self.cut_now();
        let keep = cut.unwrap_or(bytes.len()).min(bytes.len());
        for (i, &b) in bytes[..keep].iter().enumerate() {
            self.image[at + i] = self.programmed_bits(self.image[at + i], b);
        }
        if cut.is_some() {
            // The unit being written when the power went: undefined bits.
            let unit_end = ((at + keep) / W + 1) * W;
            for i in at + keep..unit_end.min(at + bytes.len()) {
                let noise = self.rng.random::<u8>();
                self.image[i] = self.programmed_bits(self.image[i], noise);
            }
            self.dead = true;
        }
        for unit in at / W..(at + bytes.len()) / W {
            self.programmed[unit] = true;
        }
        let first = at / E;
        let last = (at + bytes.len() - 1) / E;
        for wear in &mut self.wear[first..=last] {
            wear.programs += 1;
        }
        self.wear[first].bytes_programmed += bytes.len() as u64;
        self.trace.push(TraceOp::Program { offset: at as u64, data: bytes.to_vec() });
        self.trace.push(TraceOp::Sync);
        if self.dead { Err(SimNorError::PowerLost) } else { Ok(()) }
    }

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimNorError> {
        if to < from {
            return Err(SimNorError::OutOfBounds);
        }
        let at = self.check(from, (to - from) as usize, E)?;
        let end = to as usize;
        let cut = self.cut_now();
        if cut.is_some() {
            // An interrupted erase: undefined contents.
            self.rng.fill(&mut self.image[at..end]);
            self.dead = true;
        } else {
            self.image[at..end].fill(self.erase_value);
        }
        for unit in at / W..end / W {
            self.programmed[unit] = cut.is_some();
        }
        for wear in &mut self.wear[at / E..end / E] {
            wear.erases += 1;
        }
        self.trace.push(TraceOp::Erase { offset: at as u64, len: (end - at) as u64 });
        self.trace.push(TraceOp::Sync);
        if self.dead { Err(SimNorError::PowerLost) } else { Ok(()) }
    }
}

/// The flash backend over a simulated flash: what the flash tests run on.
pub type SimNorDevice<const R: usize, const W: usize, const E: usize> = NorFlashDevice<SimNorFlash<R, W, E>>;
