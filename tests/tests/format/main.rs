//! The format: the codec, its properties, CRC32C, the golden vectors, one
//! format on every medium, and the fuzzers' corpora replayed.

mod codec;
mod codec_props;
mod crc;
mod fuzz_corpora;
mod golden;
mod one_format;
mod v2;
