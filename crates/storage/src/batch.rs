//! Record batch (message format v2) header: parsing, validation and the few
//! in-place rewrites the broker makes. Records themselves are never decoded.
//!
//! Byte layout (all integers big-endian), as defined by Kafka:
//!
//! | offset | size | field                                   |
//! |-------:|-----:|-----------------------------------------|
//! |      0 |    8 | base offset (assigned by the broker)    |
//! |      8 |    4 | batch length (bytes after this field)   |
//! |     12 |    4 | partition leader epoch (broker)         |
//! |     16 |    1 | magic (2)                               |
//! |     17 |    4 | CRC-32C of bytes 21..end                |
//! |     21 |    2 | attributes                              |
//! |     23 |    4 | last offset delta                       |
//! |     27 |    8 | base timestamp                          |
//! |     35 |    8 | max timestamp                           |
//! |     43 |    8 | producer id                             |
//! |     51 |    2 | producer epoch                          |
//! |     53 |    4 | base sequence                           |
//! |     57 |    4 | record count                            |
//! |     61 |    … | records (possibly compressed)           |
//!
//! Attributes: bits 0–2 compression codec, bit 3 timestamp type
//! (1 = LogAppendTime), bit 4 transactional, bit 5 control batch.
//! Base offset and leader epoch lie outside the CRC, so the broker can assign
//! them without recomputing it; setting LogAppendTime changes covered bytes and
//! recomputes the CRC.

use crate::error::{Result, StorageError};

/// Size of the fixed v2 batch header.
pub const HEADER_LEN: usize = 61;
/// Bytes before the batch-length field's coverage starts (base offset + length).
pub const LOG_OVERHEAD: usize = 12;
const CRC_START: usize = 21;
const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// The fields of one batch header that the broker acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Total bytes of the batch including the 12-byte log overhead.
    pub size: usize,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

impl BatchHeader {
    /// Reads the first 12 bytes: base offset and the total size of the batch.
    /// Returns `None` when fewer than 12 bytes are given. The size is not
    /// checked here beyond being non-negative.
    pub fn peek_size(buf: &[u8]) -> Option<Result<(i64, usize)>> {
        if buf.len() < LOG_OVERHEAD {
            return None;
        }
        let len = be_i32(buf, 8);
        if len < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Some(Err(StorageError::Corrupt(
                "batch length smaller than header",
            )));
        }
        Some(Ok((be_i64(buf, 0), LOG_OVERHEAD + len as usize)))
    }

    /// Parses a header from the start of `buf` (at least [`HEADER_LEN`] bytes).
    /// Checks length and magic, not the CRC.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader> {
        if buf.len() < HEADER_LEN {
            return Err(StorageError::Corrupt("truncated batch header"));
        }
        let (base_offset, size) = match Self::peek_size(buf) {
            Some(r) => r?,
            None => return Err(StorageError::Corrupt("truncated batch header")),
        };
        let magic = buf[16] as i8;
        if magic != 2 {
            return Err(StorageError::UnsupportedMagic(magic));
        }
        let h = BatchHeader {
            base_offset,
            size,
            partition_leader_epoch: be_i32(buf, 12),
            magic,
            crc: be_i32(buf, 17) as u32,
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            record_count: be_i32(buf, 57),
        };
        if h.last_offset_delta < 0 || h.record_count < 0 {
            return Err(StorageError::Corrupt(
                "negative record count or offset delta",
            ));
        }
        Ok(h)
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    /// Number of offsets the batch occupies.
    pub fn offset_count(&self) -> i64 {
        self.last_offset_delta as i64 + 1
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_TIMESTAMP_TYPE != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & 0x07
    }
    /// Last sequence number covered by the batch (wrapping like Kafka).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
    /// The timestamp that indexes this batch: its max timestamp.
    pub fn timestamp(&self) -> i64 {
        self.max_timestamp
    }
}

/// Verifies the CRC-32C of a complete batch.
pub fn crc_matches(batch: &[u8], header: &BatchHeader) -> bool {
    batch.len() == header.size && crc32c::crc32c(&batch[CRC_START..]) == header.crc
}

/// Splits a buffer of concatenated batches (a produce request's `records`)
/// into validated headers. Every batch must be complete, v2 and pass its CRC;
/// trailing partial bytes are an error.
pub fn validate_batches(buf: &[u8]) -> Result<Vec<BatchHeader>> {
    let mut out = Vec::with_capacity(1);
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let header = BatchHeader::parse(rest)?;
        if header.size > rest.len() {
            return Err(StorageError::Corrupt(
                "batch extends past the end of the records",
            ));
        }
        if !crc_matches(&rest[..header.size], &header) {
            return Err(StorageError::Corrupt("CRC mismatch"));
        }
        if header.record_count == 0 && !header.is_control() {
            return Err(StorageError::Corrupt("batch without records"));
        }
        out.push(header);
        pos += header.size;
    }
    if out.is_empty() {
        return Err(StorageError::Corrupt("no record batch"));
    }
    Ok(out)
}

/// Writes the broker-assigned base offset and leader epoch into a batch.
/// Neither is covered by the CRC.
pub fn assign_offset(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Marks a batch as LogAppendTime with the given time as its max timestamp
/// and recomputes the CRC.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attrs = be_i16(batch, 21) | ATTR_TIMESTAMP_TYPE;
    batch[21..23].copy_from_slice(&attrs.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A transaction marker's control record key (version 0, then the type).
const MARKER_ABORT: i16 = 0;
const MARKER_COMMIT: i16 = 1;

/// Builds a transaction marker: a control batch of one record for
/// `producer_id`/`epoch`, as Kafka's coordinator writes at the end of a
/// transaction. Key: version (0) and type (0 abort, 1 commit); value:
/// version (0) and the coordinator epoch. Offsets are assigned on append.
pub fn control_batch(
    producer_id: i64,
    epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    ts: i64,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&(if commit { MARKER_COMMIT } else { MARKER_ABORT }).to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut b = builder::keyed_batch(
        &[(Some(&key), Some(&value))],
        ts,
        Some((producer_id, epoch, -1)),
    );
    let attrs = ATTR_TRANSACTIONAL | ATTR_CONTROL;
    b[21..23].copy_from_slice(&attrs.to_be_bytes());
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Whether a control batch (its bytes, from the header on) is a commit
/// marker (`Some(true)`) or an abort marker (`Some(false)`); `None` when the
/// first record is not a readable marker.
pub fn marker_is_commit(batch: &[u8]) -> Option<bool> {
    fn varint(b: &[u8], pos: &mut usize) -> Option<i64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *b.get(*pos)?;
            *pos += 1;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return Some(((v >> 1) as i64) ^ -((v & 1) as i64));
            }
        }
        None
    }
    let mut pos = HEADER_LEN;
    varint(batch, &mut pos)?; // record length
    pos += 1; // attributes
    varint(batch, &mut pos)?; // timestamp delta
    varint(batch, &mut pos)?; // offset delta
    if varint(batch, &mut pos)? < 4 {
        return None;
    }
    let kind = i16::from_be_bytes([*batch.get(pos + 2)?, *batch.get(pos + 3)?]);
    match kind {
        MARKER_COMMIT => Some(true),
        MARKER_ABORT => Some(false),
        _ => None,
    }
}

/// Builds valid v2 batches of uncompressed records (for tests and tools;
/// the broker never builds client data itself).
pub mod builder {
    /// One record as (key, value); `None` is a null key or a tombstone.
    pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

    fn varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            if z < 0x80 {
                out.push(z as u8);
                return;
            }
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }

    /// A batch of `values` (null keys) with timestamps `ts + i` and an
    /// optional `(producer id, epoch, base sequence)`.
    pub fn batch(values: &[&[u8]], ts: i64, producer: Option<(i64, i16, i32)>) -> Vec<u8> {
        let kv: Vec<KeyValue<'_>> = values.iter().map(|v| (None, Some(*v))).collect();
        keyed_batch(&kv, ts, producer)
    }

    /// A batch of (key, value) records; `None` is a null key or a tombstone.
    pub fn keyed_batch(kv: &[KeyValue<'_>], ts: i64, producer: Option<(i64, i16, i32)>) -> Vec<u8> {
        let mut records = Vec::new();
        for (i, (k, v)) in kv.iter().enumerate() {
            let mut r = Vec::new();
            r.push(0u8); // attributes
            varint(&mut r, i as i64); // timestamp delta
            varint(&mut r, i as i64); // offset delta
            match k {
                Some(k) => {
                    varint(&mut r, k.len() as i64);
                    r.extend_from_slice(k);
                }
                None => varint(&mut r, -1),
            }
            match v {
                Some(v) => {
                    varint(&mut r, v.len() as i64);
                    r.extend_from_slice(v);
                }
                None => varint(&mut r, -1),
            }
            varint(&mut r, 0); // headers
            varint(&mut records, r.len() as i64);
            records.extend_from_slice(&r);
        }
        let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
        let n = kv.len() as i32;
        let mut b = Vec::new();
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // length, patched
        b.extend_from_slice(&0i32.to_be_bytes());
        b.push(2);
        b.extend_from_slice(&0u32.to_be_bytes()); // crc, patched
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(n - 1).to_be_bytes());
        b.extend_from_slice(&ts.to_be_bytes());
        b.extend_from_slice(&(ts + n as i64 - 1).to_be_bytes());
        b.extend_from_slice(&pid.to_be_bytes());
        b.extend_from_slice(&epoch.to_be_bytes());
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&n.to_be_bytes());
        b.extend_from_slice(&records);
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::builder::batch;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_validates_a_batch() {
        let b = batch(&[b"a", b"bc"], 1000, Some((7, 1, 5)));
        let hs = validate_batches(&b).expect("valid");
        assert_eq!(hs.len(), 1);
        let h = hs[0];
        assert_eq!(h.record_count, 2);
        assert_eq!(h.last_offset_delta, 1);
        assert_eq!(h.max_timestamp, 1001);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (7, 1, 5)
        );
        assert_eq!(h.last_sequence(), 6);
    }

    #[test]
    fn rejects_flipped_bit_and_truncation() {
        let mut b = batch(&[b"hello"], 1, None);
        let last = b.len() - 1;
        b[last] ^= 1;
        assert!(matches!(
            validate_batches(&b),
            Err(StorageError::Corrupt(_))
        ));
        let b = batch(&[b"hello"], 1, None);
        assert!(validate_batches(&b[..b.len() - 1]).is_err());
        assert!(validate_batches(&b[..30]).is_err());
    }

    #[test]
    fn offset_assignment_keeps_crc_and_append_time_recomputes_it() {
        let mut b = batch(&[b"x"], 5, None);
        assign_offset(&mut b, 42, 3);
        let h = validate_batches(&b).expect("crc still valid")[0];
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.partition_leader_epoch, 3);
        set_log_append_time(&mut b, 999);
        let h = validate_batches(&b).expect("crc recomputed")[0];
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 999);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = validate_batches(&data);
        }

        #[test]
        fn mutated_batches_are_rejected_or_identical(
            values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..5),
            at in any::<prop::sample::Index>(), bit in 0u8..8,
        ) {
            let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
            let mut b = batch(&refs, 77, None);
            let i = at.index(b.len());
            b[i] ^= 1 << bit;
            // Flips outside the CRC (base offset, leader epoch) are allowed to pass;
            // any other flip must be caught.
            let r = validate_batches(&b);
            if i >= 17 { prop_assert!(r.is_err()); }
        }
    }
}
