//! Errors of the storage engine.
//!
//! Two kinds: [`StorageError::Io`] is an internal failure (the caller should
//! report it as `KAFKA_STORAGE_ERROR` and may retry), every other variant is a
//! statement about the request that the caller maps to a precise Kafka error.

use std::io;

/// Everything the storage engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The file system failed. The partition stays usable for reads of data
    /// already written; the failed append was not acknowledged.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// A record batch failed validation (bad length, magic or CRC).
    #[error("corrupt record batch: {0}")]
    Corrupt(&'static str),
    /// A batch a producer may not send (a control batch).
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),
    /// The batch uses a message format older than v2 (magic 0 or 1).
    #[error("unsupported message format (magic {0})")]
    UnsupportedMagic(i8),
    /// A batch is larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: usize },
    /// The offset lies outside `[log_start_offset, log_end_offset]`.
    #[error("offset {offset} out of range [{start}, {end}]")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    /// Idempotent producer: the sequence number does not follow the last one.
    #[error("out of order sequence {got} for producer {producer_id}, expected {expected}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    /// Idempotent producer: the batch carries an epoch older than the current one.
    #[error("producer {producer_id} epoch {got} is fenced by epoch {current}")]
    ProducerFenced {
        producer_id: i64,
        current: i16,
        got: i16,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, StorageError>;
