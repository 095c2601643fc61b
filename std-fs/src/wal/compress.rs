//! Compression of single records: LZ4 (always) and Zstd (feature `zstd`).

#[cfg(feature = "zstd")]
use nori_wal_core::format::Malformed;
use nori_wal_core::format::{Compression, EncodedFrame, EpochKey, lz4};
use nori_wal_core::{DecodeError, Record};

use super::config::Codec;

/// A record's body, compressed.
pub(crate) struct Packed {
    pub(crate) codec: Compression,
    /// The body's length before compression.
    pub(crate) body_len: u32,
    pub(crate) data: Vec<u8>,
}

/// Compresses `record`'s body when `codec` asks for it, the body is at
/// least `min_len` long, and compression makes it smaller. `None` stores the
/// record plain (also when compressing fails).
pub(crate) fn compress(codec: Codec, min_len: usize, record: &Record<'_>) -> Option<Packed> {
    if codec == Codec::None {
        return None;
    }
    // The body as a frame would store it (the key is irrelevant here).
    let frame = EncodedFrame::record(EpochKey::new(0), 0, record).ok()?;
    let body_len = frame.len() - nori_wal_core::format::FRAME_HEADER_LEN;
    if body_len < min_len {
        return None;
    }
    let mut body = Vec::with_capacity(body_len);
    frame.for_each_payload_piece(|piece| body.extend_from_slice(piece));
    let (id, data) = match codec {
        Codec::Lz4 => {
            let mut out = vec![0u8; lz4::max_compressed_len(body.len())];
            let n = lz4::compress(&body, &mut out)?;
            out.truncate(n);
            (Compression::Lz4, out)
        }
        #[cfg(feature = "zstd")]
        Codec::Zstd { level } => (Compression::Zstd, zstd_compress(&body, level)?),
        _ => return None,
    };
    // Worth it only if the frame gets smaller (the length takes 4 bytes).
    let body_len = u32::try_from(body_len).ok()?;
    (data.len() + 4 < body.len()).then_some(Packed { codec: id, body_len, data })
}

/// Decompresses `data` into `out`, which is resized to `len`, the length
/// the frame records (checked against the caller's bound first): a hostile
/// frame cannot make this allocate more.
pub(crate) fn decompress(
    codec: Compression,
    data: &[u8],
    len: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    out.clear();
    out.resize(len, 0);
    match codec {
        Compression::Lz4 => lz4::decompress(data, out),
        #[cfg(feature = "zstd")]
        Compression::Zstd => match zstd_decompress(data, &mut out[..]) {
            Ok(n) if n == len => Ok(()),
            _ => Err(DecodeError::MalformedBody { reason: Malformed::ZstdInvalid }),
        },
        _ => Err(DecodeError::Compressed { codec }),
    }
}

/// Zstd contexts, kept per thread: making one costs more than compressing
/// a small record.
#[cfg(feature = "zstd")]
#[derive(Default)]
struct ZstdContexts {
    compressor: Option<(i32, zstd::bulk::Compressor<'static>)>,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
}

#[cfg(feature = "zstd")]
thread_local! {
    static ZSTD: std::cell::RefCell<ZstdContexts> = std::cell::RefCell::new(ZstdContexts::default());
}

#[cfg(feature = "zstd")]
fn zstd_compress(body: &[u8], level: i32) -> Option<Vec<u8>> {
    ZSTD.with(|cell| {
        let mut contexts = cell.try_borrow_mut().ok()?;
        if contexts.compressor.as_ref().is_none_or(|(l, _)| *l != level) {
            contexts.compressor = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        let (_, compressor) = contexts.compressor.as_mut()?;
        compressor.compress(body).ok()
    })
}

#[cfg(feature = "zstd")]
fn zstd_decompress(data: &[u8], out: &mut [u8]) -> std::io::Result<usize> {
    ZSTD.with(|cell| {
        let mut contexts = cell.try_borrow_mut().map_err(|_| std::io::Error::other("zstd context in use"))?;
        if contexts.decompressor.is_none() {
            contexts.decompressor = Some(zstd::bulk::Decompressor::new()?);
        }
        match contexts.decompressor.as_mut() {
            Some(decompressor) => decompressor.decompress_to_buffer(data, out),
            None => Err(std::io::Error::other("no zstd context")),
        }
    })
}
