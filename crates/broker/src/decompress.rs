//! Bounded decompression of a record batch's records section.
//!
//! A producer controls both the compressed bytes and the sizes they claim,
//! so decompression must never allocate more than a limit the broker chose:
//! a few kilobytes of zeros can expand to gigabytes, and a snappy block can
//! claim any length in its header. Every codec here streams into a buffer
//! that stops growing at `limit` and reports [`DecompressError::TooLarge`]
//! instead (Kafka itself does not cap this; we refuse such a batch).
//!
//! Codec ids are the record batch attribute bits 0–2: 1 gzip, 2 snappy
//! (xerial framing, or a raw block as some clients send), 3 lz4 (frame
//! format), 4 zstd.

use std::io::Read;

/// Most bytes one batch may decompress to, in the log cleaner and when a
/// produce to a compacted topic is checked for keys. Far above what real
/// batches reach (a 1 MiB batch at 60:1), far below what would hurt the broker.
pub const DECOMPRESSED_LIMIT: usize = 64 << 20;

/// Why a records section could not be decompressed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecompressError {
    #[error("decompressed records exceed {limit} bytes")]
    TooLarge { limit: usize },
    #[error("unknown compression codec {0}")]
    UnknownCodec(i16),
    #[error("invalid {codec} data: {reason}")]
    Invalid { codec: &'static str, reason: String },
}

/// The xerial snappy-java stream header: magic, then version and
/// compatible version (4 bytes each).
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

fn invalid(codec: &'static str, e: impl std::fmt::Display) -> DecompressError {
    DecompressError::Invalid {
        codec,
        reason: e.to_string(),
    }
}

/// Reads `r` to the end, failing once more than `limit` bytes come out.
fn read_bounded(
    codec: &'static str,
    r: impl Read,
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    r.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| invalid(codec, e))?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge { limit });
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, checking the length it claims first.
fn snappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), DecompressError> {
    let len = snap::raw::decompress_len(block).map_err(|e| invalid("snappy", e))?;
    if out.len().saturating_add(len) > limit {
        return Err(DecompressError::TooLarge { limit });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let n = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| invalid("snappy", e))?;
    out.truncate(start + n);
    Ok(())
}

fn snappy(data: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    if !data.starts_with(XERIAL_MAGIC) {
        snappy_block(data, &mut out, limit)?;
        return Ok(out);
    }
    let mut rest = data
        .get(XERIAL_HEADER_LEN..)
        .ok_or_else(|| invalid("snappy", "truncated stream header"))?;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| invalid("snappy", "truncated block length"))?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = tail
            .get(..len)
            .ok_or_else(|| invalid("snappy", "block longer than the data"))?;
        snappy_block(block, &mut out, limit)?;
        rest = &tail[len..];
    }
    Ok(out)
}

/// Decompresses `data` with `codec`, producing at most `limit` bytes.
pub fn decompress(codec: i16, data: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    match codec {
        1 => read_bounded("gzip", flate2::read::MultiGzDecoder::new(data), limit),
        2 => snappy(data, limit),
        3 => {
            let d = lz4::Decoder::new(data).map_err(|e| invalid("lz4", e))?;
            read_bounded("lz4", d, limit)
        }
        4 => {
            let d = zstd::stream::read::Decoder::new(data).map_err(|e| invalid("zstd", e))?;
            read_bounded("zstd", d, limit)
        }
        other => Err(DecompressError::UnknownCodec(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

    /// Compresses with kafka-protocol's encoders: the same framing clients use.
    fn compress(codec: i16, plain: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        let fill = |b: &mut BytesMut| {
            b.extend_from_slice(plain);
            Ok(())
        };
        match codec {
            1 => Gzip::compress(&mut out, fill),
            2 => Snappy::compress(&mut out, fill),
            3 => Lz4::compress(&mut out, fill),
            4 => Zstd::compress(&mut out, fill),
            _ => unreachable!(),
        }
        .expect("compress");
        out.to_vec()
    }

    #[test]
    fn every_codec_round_trips_within_the_limit() {
        let plain: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for codec in 1..=4 {
            let packed = compress(codec, &plain);
            assert_eq!(
                decompress(codec, &packed, plain.len()).as_deref(),
                Ok(&plain[..]),
                "codec {codec}"
            );
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        for codec in 1..=4 {
            let packed = compress(codec, &zeros);
            assert!(packed.len() < 1 << 20, "codec {codec} compresses zeros");
            assert_eq!(
                decompress(codec, &packed, 1 << 20),
                Err(DecompressError::TooLarge { limit: 1 << 20 }),
                "codec {codec}"
            );
        }
    }

    #[test]
    fn a_snappy_header_claiming_gigabytes_allocates_nothing() {
        // Raw snappy: a varint length of ~4 GiB followed by nothing.
        let lie = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(matches!(
            decompress(2, &lie, 1 << 20),
            Err(DecompressError::TooLarge { .. })
        ));
        let mut xerial = XERIAL_MAGIC.to_vec();
        xerial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5]);
        xerial.extend_from_slice(&lie);
        assert!(matches!(
            decompress(2, &xerial, 1 << 20),
            Err(DecompressError::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let junk = Bytes::from_static(b"definitely not compressed data at all");
        for codec in 1..=4 {
            assert!(decompress(codec, &junk, 1 << 20).is_err(), "codec {codec}");
        }
        assert_eq!(
            decompress(7, &junk, 10),
            Err(DecompressError::UnknownCodec(7))
        );
    }
}
